/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewd's configuration file: INI-like, "[Section]" headers, "Key=value"
 * lines, whole-line comments starting with '#' or ';'. Every key has a
 * default; an empty value ("Key=") sets the default again. Unknown sections,
 * unknown keys, keys given twice and bad values are errors that name the
 * file and line, what is wrong and what is allowed. */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Longest line accepted, without its line break. */
#define CONFIG_LINE_MAX 4096
#define CONFIG_WARN_DAYS_MAX 16
#define CONFIG_WARN_DAYS_LIMIT 3650
#define CONFIG_POLL_INTERVAL_MAX (7 * 24 * 3600)

typedef struct Config {
        int log_level;                            /* [Daemon] LogLevel: a syslog level */
        unsigned warn_days[CONFIG_WARN_DAYS_MAX]; /* [Expiry] WarnDays: descending, no duplicates */
        size_t n_warn_days;                       /* at least one */
        char *portal_url;                         /* [Portal] Url, or NULL: no portal configured */
        char *portal_ca_bundle;                   /* [Portal] CABundle, or NULL: the system's CAs */
        char *portal_cmp_trusted;                 /* [Portal] CmpTrustedCA, or NULL: CABundle */
        unsigned portal_poll_interval_sec;        /* [Portal] PollIntervalSec: until the portal says */
        char *mgm_key_dir; /* [Renewal] ManagementKeyDirectory, or NULL: the default */
} Config;

/* SYSCONFDIR/keyrenew/keyrenewd.conf */
const char *config_default_path(void);
/* SYSCONFDIR/keyrenew/management-keys */
const char *config_default_mgm_key_dir(void);

/* Sets every key to its default. Cannot fail. */
void config_init(Config *c);
/* Frees what c holds and sets the defaults again. */
void config_done(Config *c);

/* Reads the defaults overridden by the file at path into *ret. A file that
 * does not exist is fine (the defaults) unless must_exist. On failure
 * *ret_error is a translated message for the user ("FILE:LINE: ..." for
 * what is wrong in the file) and the return value -EINVAL for a bad file,
 * -ENOMEM, or the errno of opening or reading it. ret is written only on
 * success, ret_error only on failure. */
int config_load(const char *path, bool must_exist, Config *ret, char **ret_error);

/* The same for an open stream; name is what messages call it. */
int config_parse(FILE *f, const char *name, Config *ret, char **ret_error);
