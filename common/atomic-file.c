/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "atomic-file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

int write_all(int fd, const void *data, size_t n) {
        const char *p = data;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int write_tmp(int dir_fd, const char *tmp_name, const void *data, size_t n, mode_t mode) {
        _cleanup_close_ int fd =
                openat(dir_fd, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
        int r;

        if (fd < 0)
                return negative_errno();
        /* O_CREAT's mode does not apply to a file left over by a crash. */
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        r = write_all(fd, data, n);
        if (r < 0)
                return r;
        return fsync(fd) < 0 ? negative_errno() : 0;
}

int atomic_file_write_at(int dir_fd, const char *name, const char *tmp_name, const void *data, size_t n,
                         mode_t mode) {
        int r = write_tmp(dir_fd, tmp_name, data, n, mode);

        if (r >= 0 && renameat(dir_fd, tmp_name, dir_fd, name) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp_name, 0);
                return r;
        }
        return fsync(dir_fd) < 0 ? negative_errno() : 0;
}

int atomic_file_write(const char *path, const void *data, size_t n, mode_t mode) {
        _cleanup_free_ char *dir_copy = strdup(path), *base_copy = strdup(path), *tmp = NULL;
        _cleanup_close_ int dir_fd = -1;
        const char *base;

        if (!dir_copy || !base_copy)
                return -ENOMEM;
        base = basename(base_copy);
        if (asprintf(&tmp, ".%s.tmp", base) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        dir_fd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return negative_errno();
        return atomic_file_write_at(dir_fd, base, tmp, data, n, mode);
}
