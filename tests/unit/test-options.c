/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

#include "assert.h"
#include "options.h"

#define ARGV(...) ((char *[]){ "keyrenewd", __VA_ARGS__, NULL })

/* Parses with stdout and stderr sent to /dev/null (help, errors). */
static int parse(int argc, char **argv, Options *ret, CliAction *ret_action) {
        int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
        FILE *null = fopen("/dev/null", "w");
        int r;

        ASSERT_TRUE(null && saved_out >= 0 && saved_err >= 0);
        fflush(stdout);
        fflush(stderr);
        dup2(fileno(null), STDOUT_FILENO);
        dup2(fileno(null), STDERR_FILENO);
        r = options_parse(argc, argv, ret, ret_action);
        fflush(stdout);
        fflush(stderr);
        dup2(saved_out, STDOUT_FILENO);
        dup2(saved_err, STDERR_FILENO);
        close(saved_out);
        close(saved_err);
        fclose(null);
        return r;
}

static void test_defaults(void) {
        char *argv[] = { "keyrenewd", NULL };
        CliAction action = CLI_EXIT;
        Options o;

        ASSERT_EQ(parse(1, argv, &o, &action), 0);
        ASSERT_EQ(action, CLI_RUN);
        ASSERT_TRUE(!o.config_path);
        ASSERT_EQ(o.log_level, -1);
        ASSERT_EQ(o.log_target, LOG_TARGET_AUTO);
        ASSERT_STREQ(o.bus, "system");
}

static void test_all(void) {
        char **argv = ARGV("--config", "/tmp/k.conf", "--log-level", "debug", "--log-target", "stderr",
                           "--bus", "unix:path=/tmp/x/bus");
        CliAction action;
        Options o;

        ASSERT_EQ(parse(9, argv, &o, &action), 0);
        ASSERT_EQ(action, CLI_RUN);
        ASSERT_STREQ(o.config_path, "/tmp/k.conf");
        ASSERT_EQ(o.log_level, LOG_DEBUG);
        ASSERT_EQ(o.log_target, LOG_TARGET_STDERR);
        ASSERT_STREQ(o.bus, "unix:path=/tmp/x/bus");

        argv = ARGV("-c", "k.conf", "--bus=session", "--log-level=3");
        ASSERT_EQ(parse(5, argv, &o, &action), 0);
        ASSERT_STREQ(o.config_path, "k.conf");
        ASSERT_STREQ(o.bus, "session");
        ASSERT_EQ(o.log_level, LOG_ERR);
}

static void test_help_version(void) {
        CliAction action = CLI_RUN;
        Options o;

        ASSERT_EQ(parse(2, ARGV("--help"), &o, &action), 0);
        ASSERT_EQ(action, CLI_EXIT);
        action = CLI_RUN;
        ASSERT_EQ(parse(2, ARGV("-V"), &o, &action), 0);
        ASSERT_EQ(action, CLI_EXIT);
}

static void test_bad(void) {
        CliAction action;
        Options o;

        ASSERT_EQ(parse(3, ARGV("--bus", "nowhere"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(3, ARGV("--bus", ":x=y"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(3, ARGV("--bus", "unix:"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(3, ARGV("--log-level", "loud"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(3, ARGV("--log-target", "syslog"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(2, ARGV("--config"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(2, ARGV("--frobnicate"), &o, &action), -EINVAL);
        ASSERT_EQ(parse(2, ARGV("extra"), &o, &action), -EINVAL);
}

int main(void) {
        RUN(test_defaults);
        RUN(test_all);
        RUN(test_help_version);
        RUN(test_bad);
        return 0;
}
