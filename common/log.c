/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#define LOG_MAX_FIELDS 16

static const char *log_ident = "keyrenew";
static LogTarget log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;

static const char *const level_names[] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* True when fd 2 is the stream systemd connected to the journal. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident, LogTarget target) {
        if (ident)
                log_ident = ident;
        if (target == LOG_TARGET_AUTO)
                target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        log_target = target;
}

void log_set_max_level(int level) {
        if (level >= LOG_EMERG && level <= LOG_DEBUG)
                log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

LogTarget log_get_target(void) {
        return log_target;
}

int log_level_from_string(const char *s, int *ret_level) {
        char *end;
        long l;

        if (!s || !*s)
                return -EINVAL;
        for (int i = 0; i < (int) ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0) {
                        *ret_level = i;
                        return 0;
                }
        errno = 0;
        l = strtol(s, &end, 10);
        if (errno != 0 || *end || l < LOG_EMERG || l > LOG_DEBUG)
                return -EINVAL;
        *ret_level = (int) l;
        return 0;
}

int log_target_from_string(const char *s, LogTarget *ret_target) {
        static const char *const names[] = { "auto", "stderr", "journal" };

        for (size_t i = 0; s && i < ELEMENTSOF(names); i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret_target = (LogTarget) i;
                        return 0;
                }
        return -EINVAL;
}

static void log_to_stderr(int level, const char *const *fields, const char *msg) {
        fprintf(stderr, "%s: %s%s", log_ident,
                level <= LOG_ERR       ? "error: "
                : level == LOG_WARNING ? "warning: "
                                       : "",
                msg);
        for (size_t i = 0; fields && fields[i]; i++)
                fprintf(stderr, "%s%s", i == 0 ? " [" : " ", fields[i]);
        fputs(fields && fields[0] ? "]\n" : "\n", stderr);
}

static void log_to_journal(int level, int error, const char *const *fields, const char *msg) {
        struct iovec iov[LOG_MAX_FIELDS + 4];
        char prio[16], err[32], ident[64], *m = NULL;
        size_t n = 0;

        snprintf(prio, sizeof prio, "PRIORITY=%d", level);
        snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", log_ident);
        iov[n++] = (struct iovec){ prio, strlen(prio) };
        iov[n++] = (struct iovec){ ident, strlen(ident) };
        if (error) {
                snprintf(err, sizeof err, "ERRNO=%d", error);
                iov[n++] = (struct iovec){ err, strlen(err) };
        }
        for (size_t i = 0; fields && fields[i] && i < LOG_MAX_FIELDS; i++)
                iov[n++] = (struct iovec){ (void *) fields[i], strlen(fields[i]) };
        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return;
        iov[n++] = (struct iovec){ m, strlen(m) };
        /* The journal may be gone (early boot, containers): then stderr. */
        if (sd_journal_sendv(iov, (int) n) < 0)
                log_to_stderr(level, fields, msg);
        free(m);
}

int log_fieldsv(int level, int error, const char *const *fields, const char *format, va_list ap) {
        char msg[2048];
        int saved = errno;
        size_t len;

        error = abs(error);
        if (level > log_max_level) {
                errno = saved;
                return -error;
        }
        vsnprintf(msg, sizeof msg, format, ap);
        len = strlen(msg);
        if (error)
                snprintf(msg + len, sizeof msg - len, ": %s", strerror(error));
        if (log_target == LOG_TARGET_JOURNAL)
                log_to_journal(level, error, fields, msg);
        else
                log_to_stderr(level, fields, msg);
        errno = saved;
        return -error;
}

int log_fields(int level, int error, const char *const *fields, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_fieldsv(level, error, fields, format, ap);
        va_end(ap);
        return r;
}
