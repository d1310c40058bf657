/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Logging for the programs (common/'s other modules never log: they return
 * errors and let the program decide). Messages go to stderr or, with
 * structured fields, to the systemd journal; LOG_TARGET_AUTO picks the
 * journal when stderr is connected to it (JOURNAL_STREAM), as under a unit. */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
} LogTarget;

/* Sets where messages go and the identifier shown with them. */
void log_setup(const char *ident, LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
LogTarget log_get_target(void);

/* "debug".."emerg" or "0".."7" to a syslog level; -EINVAL otherwise. */
int log_level_from_string(const char *s, int *ret_level);
/* "auto", "stderr", "journal"; -EINVAL otherwise. */
int log_target_from_string(const char *s, LogTarget *ret_target);

/* Logs format at level with extra journal fields (a NULL-terminated array of
 * "KEY=value" strings, or NULL). error, when non-zero, is an errno (sign
 * ignored) recorded as ERRNO= and appended as ": strerror". Returns -|error|
 * so callers can write `return log_error_errno(r, ...)`. */
int log_fields(int level, int error, const char *const *fields, const char *format, ...) _printf_(4, 5);
int log_fieldsv(int level, int error, const char *const *fields, const char *format, va_list ap)
        _printf_(4, 0);

#define LOG_FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#define log_full_errno(level, error, ...) log_fields((level), (error), NULL, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
