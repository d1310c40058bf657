/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assert.h"
#include "atomic-file.h"
#include "macro.h"

static char dir[] = "/tmp/test-atomic-file-XXXXXX";

static char *read_back(const char *name) {
        static char buf[256];
        char path[128];
        size_t n;
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static unsigned count_entries(void) {
        DIR *d = opendir(dir);
        struct dirent *e;
        unsigned n = 0;

        ASSERT_TRUE(d);
        while ((e = readdir(d)))
                n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        return n;
}

static void test_write_replace_and_mode(void) {
        char path[128];
        struct stat st;

        snprintf(path, sizeof path, "%s/state", dir);
        ASSERT_EQ(atomic_file_write(path, "first", 5, 0600), 0);
        ASSERT_STREQ(read_back("state"), "first");
        ASSERT_EQ(atomic_file_write(path, "second!", 7, 0600), 0);
        ASSERT_STREQ(read_back("state"), "second!");
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0600);
        /* No temporary file is left behind. */
        ASSERT_EQ(count_entries(), 1);
}

static void test_leftover_temporary_file(void) {
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int fd = -1;
        struct stat st;

        /* A crash left a world-readable temporary file: its mode is fixed. */
        fd = openat(dir_fd, "j.tmp", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(fchmod(fd, 0644), 0);
        ASSERT_EQ(write_all(fd, "torn", 4), 0);
        ASSERT_EQ(atomic_file_write_at(dir_fd, "j", "j.tmp", "whole", 5, 0600), 0);
        ASSERT_STREQ(read_back("j"), "whole");
        ASSERT_EQ(fstatat(dir_fd, "j", &st, 0), 0);
        ASSERT_EQ(st.st_mode & 0777, 0600);
        ASSERT_EQ(fstatat(dir_fd, "j.tmp", &st, 0), -1);
}

static void test_failure_leaves_target(void) {
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char path[128];

        snprintf(path, sizeof path, "%s/state", dir);
        ASSERT_EQ(atomic_file_write(path, "kept", 4, 0600), 0);
        /* Renaming onto a folder fails: the target and the folder stay clean. */
        ASSERT_EQ(mkdirat(dir_fd, "sub", 0700), 0);
        ASSERT_TRUE(atomic_file_write_at(dir_fd, "sub", "sub.tmp", "x", 1, 0600) < 0);
        ASSERT_EQ(faccessat(dir_fd, "sub.tmp", F_OK, 0), -1);
        ASSERT_STREQ(read_back("state"), "kept");
        ASSERT_EQ(atomic_file_write("/nonexistent-folder/x", "x", 1, 0600), -ENOENT);
        ASSERT_EQ(unlinkat(dir_fd, "sub", AT_REMOVEDIR), 0);
}

static void remove_all(void) {
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        ASSERT_TRUE(dir_fd >= 0);
        (void) unlinkat(dir_fd, "state", 0);
        (void) unlinkat(dir_fd, "j", 0);
        ASSERT_EQ(count_entries(), 0);
        ASSERT_EQ(rmdir(dir), 0);
}

int main(void) {
        ASSERT_TRUE(mkdtemp(dir));
        RUN(test_write_replace_and_mode);
        RUN(test_leftover_temporary_file);
        RUN(test_failure_leaves_target);
        remove_all();
        return 0;
}
