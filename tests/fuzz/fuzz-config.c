/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: keyrenewd's configuration file, daemon/config-file.h,
 * over arbitrary file contents (read through fmemopen(), as config_load()
 * reads the file through a FILE).
 *
 * A file that parses must leave a configuration within the documented
 * limits; one that does not must say where ("fuzz.conf:LINE: ..." or
 * "fuzz.conf: ..."). Seeds are the shipped daemon/keyrenewd.conf and
 * variations of it. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-file.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                    \
        do {                                                                                        \
                if (!(x)) {                                                                         \
                        fprintf(stderr, "fuzz-config: %s:%d: %s failed\n", __FILE__, __LINE__, #x); \
                        abort();                                                                    \
                }                                                                                   \
        } while (0)

static void check_config(const Config *c) {
        CHECK(c->log_level >= 0 && c->log_level <= 7);
        CHECK(c->n_warn_days >= 1 && c->n_warn_days <= CONFIG_WARN_DAYS_MAX);
        for (size_t i = 0; i < c->n_warn_days; i++) {
                CHECK(c->warn_days[i] >= 1 && c->warn_days[i] <= CONFIG_WARN_DAYS_LIMIT);
                CHECK(i == 0 || c->warn_days[i] < c->warn_days[i - 1]);
        }
        CHECK(!c->portal_url || strncasecmp(c->portal_url, "http", 4) == 0);
        CHECK(!c->portal_ca_bundle || c->portal_ca_bundle[0] == '/');
        CHECK(!c->portal_cmp_trusted || c->portal_cmp_trusted[0] == '/');
        CHECK(!c->mgm_key_dir || c->mgm_key_dir[0] == '/');
        CHECK(c->portal_poll_interval_sec >= 1 && c->portal_poll_interval_sec <= CONFIG_POLL_INTERVAL_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *error = NULL;
        Config c;
        int r;

        /* fmemopen() wants at least one byte; an empty file is the defaults. */
        if (size == 0)
                return 0;
        f = fmemopen((void *) data, size, "r");
        if (!f)
                abort();
        r = config_parse(f, "fuzz.conf", &c, &error);
        CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                CHECK(!error);
                check_config(&c);
                config_done(&c);
        } else
                CHECK(error && strncmp(error, "fuzz.conf:", 10) == 0);
        return 0;
}
