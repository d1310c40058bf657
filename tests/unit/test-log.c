/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "assert.h"
#include "log.h"

/* Runs fn with stderr sent to a temporary file and returns what it wrote. */
static char *capture_stderr(void (*fn)(void)) {
        static char out[4096];
        FILE *tmp = tmpfile();
        int saved = dup(STDERR_FILENO);
        size_t n;

        ASSERT_TRUE(tmp && saved >= 0);
        fflush(stderr);
        ASSERT_TRUE(dup2(fileno(tmp), STDERR_FILENO) >= 0);
        fn();
        fflush(stderr);
        ASSERT_TRUE(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        rewind(tmp);
        n = fread(out, 1, sizeof out - 1, tmp);
        out[n] = '\0';
        fclose(tmp);
        return out;
}

static void emit_plain(void) {
        ASSERT_EQ(log_info("card in reader %s", "Virtual PCD 00 00"), 0);
}

static void emit_error(void) {
        ASSERT_EQ(log_error_errno(-ENOENT, "cannot open %s", "x.conf"), -ENOENT);
        ASSERT_EQ(log_warning_errno(EPIPE, "portal gone"), -EPIPE);
}

static void emit_fields(void) {
        log_fields(LOG_NOTICE, 0, LOG_FIELDS("KEYRENEW_TOKEN=1234", "KEYRENEW_ORDER=7"), "renewed");
}

static void emit_filtered(void) {
        ASSERT_EQ(log_debug("hidden"), 0);
        ASSERT_EQ(log_debug_errno(-EIO, "hidden too"), -EIO);
}

static void test_stderr_format(void) {
        log_setup("test-log", LOG_TARGET_STDERR);
        log_set_max_level(LOG_INFO);
        ASSERT_STREQ(capture_stderr(emit_plain), "test-log: card in reader Virtual PCD 00 00\n");
        ASSERT_STREQ(capture_stderr(emit_error),
                     "test-log: error: cannot open x.conf: No such file or directory\n"
                     "test-log: warning: portal gone: Broken pipe\n");
        ASSERT_STREQ(capture_stderr(emit_fields),
                     "test-log: renewed [KEYRENEW_TOKEN=1234 KEYRENEW_ORDER=7]\n");
        ASSERT_STREQ(capture_stderr(emit_filtered), "");
}

static void test_errno_preserved(void) {
        log_setup("test-log", LOG_TARGET_STDERR);
        errno = EAGAIN;
        (void) capture_stderr(emit_error);
        ASSERT_EQ(errno, EAGAIN);
}

static void test_auto_target(void) {
        unsetenv("JOURNAL_STREAM");
        log_setup(NULL, LOG_TARGET_AUTO);
        ASSERT_EQ(log_get_target(), LOG_TARGET_STDERR);
        /* A JOURNAL_STREAM that names another file is not ours. */
        setenv("JOURNAL_STREAM", "1:1", 1);
        log_setup(NULL, LOG_TARGET_AUTO);
        ASSERT_EQ(log_get_target(), LOG_TARGET_STDERR);
        unsetenv("JOURNAL_STREAM");
}

static void test_journal_target_does_not_lose_messages(void) {
        /* With no journald to take it, a message still reaches stderr. */
        log_setup("test-log", LOG_TARGET_JOURNAL);
        ASSERT_EQ(log_get_target(), LOG_TARGET_JOURNAL);
        (void) capture_stderr(emit_fields); /* must not crash either way */
        log_setup("test-log", LOG_TARGET_STDERR);
}

static void test_parsers(void) {
        LogTarget t;
        int l;

        ASSERT_EQ(log_level_from_string("debug", &l), 0);
        ASSERT_EQ(l, LOG_DEBUG);
        ASSERT_EQ(log_level_from_string("err", &l), 0);
        ASSERT_EQ(l, LOG_ERR);
        ASSERT_EQ(log_level_from_string("4", &l), 0);
        ASSERT_EQ(l, LOG_WARNING);
        ASSERT_EQ(log_level_from_string("8", &l), -EINVAL);
        ASSERT_EQ(log_level_from_string("-1", &l), -EINVAL);
        ASSERT_EQ(log_level_from_string("loud", &l), -EINVAL);
        ASSERT_EQ(log_level_from_string("", &l), -EINVAL);
        ASSERT_EQ(log_level_from_string("3x", &l), -EINVAL);
        ASSERT_EQ(log_target_from_string("journal", &t), 0);
        ASSERT_EQ(t, LOG_TARGET_JOURNAL);
        ASSERT_EQ(log_target_from_string("syslog", &t), -EINVAL);
        log_set_max_level(99);
        ASSERT_EQ(log_get_max_level(), LOG_INFO);
}

int main(void) {
        RUN(test_stderr_format);
        RUN(test_errno_preserved);
        RUN(test_auto_target);
        RUN(test_journal_target_does_not_lose_messages);
        RUN(test_parsers);
        return 0;
}
