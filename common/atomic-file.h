/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Files that a crash leaves either as they were or as they were meant to
 * be, never torn: the data goes to a temporary file in the same folder,
 * is fsync()ed, renamed over the target, and the folder is fsync()ed so
 * the rename itself is on disk when the call returns. One writer per
 * target at a time: the temporary file's name is fixed. */

#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes to fd, retrying on EINTR and short writes. */
int write_all(int fd, const void *data, size_t n);

/* Writes data as name in the folder dir_fd, by way of tmp_name (in the
 * same folder), with the given mode. Returns 0 or -errno; on failure the
 * target is untouched and the temporary file removed. */
int atomic_file_write_at(int dir_fd, const char *name, const char *tmp_name, const void *data, size_t n,
                         mode_t mode);

/* The same for a path; the temporary file is ".NAME.tmp" beside it. */
int atomic_file_write(const char *path, const void *data, size_t n, mode_t mode);
