/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/assert.h"
#include "ctl-pick.h"
#include "macro.h"

/* Two keys as ctl_manager_fetch() links them: 111 with 9a approved and
 * 9d issued, 222 with 9c approved; 333 has nothing to renew. */
static CtlCert certs[] = {
        { .path = "/k/111/9a", .slot = "9a", .renewal_state = "approved" },
        { .path = "/k/111/9d", .slot = "9d", .renewal_state = "issued" },
        { .path = "/k/222/9c", .slot = "9c", .renewal_state = "approved" },
        { .path = "/k/333/9a", .slot = "9a", .renewal_state = "installed" },
        { .path = "/k/333/9c", .slot = "9c" }, /* an older daemon: no RenewalState */
};
static CtlCert *certs_111[] = { &certs[0], &certs[1], NULL };
static CtlCert *certs_222[] = { &certs[2], NULL };
static CtlCert *certs_333[] = { &certs[3], &certs[4], NULL };
static CtlToken tokens[] = {
        { .serial = "111", .certs = certs_111, .n_certs = 2 },
        { .serial = "222", .certs = certs_222, .n_certs = 1 },
        { .serial = "333", .certs = certs_333, .n_certs = 2 },
};
static CtlToken *token_list[] = { &tokens[0], &tokens[1], &tokens[2], NULL };
static CtlCert *cert_list[] = { &certs[0], &certs[1], &certs[2], &certs[3], &certs[4], NULL };
static const CtlManager manager = { .tokens = token_list, .n_tokens = 3, .certs = cert_list, .n_certs = 5 };

/* The paths ctl_pick() gives for target, joined by spaces; or its error. */
static char *pick(const char *target) {
        _cleanup_free_ CtlCert **list = NULL;
        char *out = calloc(1, 256);
        int n = ctl_pick(&manager, target, &list);

        ASSERT_TRUE(out);
        if (n < 0) {
                snprintf(out, 256, "%s", strerror(-n));
                return out;
        }
        ASSERT_TRUE(list[n] == NULL);
        for (int i = 0; i < n; i++)
                snprintf(out + strlen(out), 256 - strlen(out), "%s%s", i ? " " : "", list[i]->path);
        return out;
}

static void check(const char *target, const char *expected) {
        _cleanup_free_ char *got = pick(target);

        ASSERT_STREQ(got, expected);
}

static void test_any_key(void) {
        check(NULL, "/k/111/9a /k/111/9d /k/222/9c");
}

static void test_serial(void) {
        check("111", "/k/111/9a /k/111/9d");
        check("222", "/k/222/9c");
        check("333", "");
        /* A prefix of a serial is not that serial. */
        check("11", strerror(ENODEV));
        check("", strerror(ENODEV));
}

static void test_serial_and_slot(void) {
        check("111/9d", "/k/111/9d");
        check("111/9D", "/k/111/9d");
        /* Whatever its renewal state: keyrenewd judges. */
        check("333/9a", "/k/333/9a");
        check("333/9c", "/k/333/9c");
        check("111/9c", strerror(ENOENT));
        check("111/", strerror(ENOENT));
        check("999/9a", strerror(ENODEV));
}

static void test_path(void) {
        check("/k/222/9c", "/k/222/9c");
        check("/k/333/9a", "/k/333/9a");
        check("/k/444/9a", strerror(ENOENT));
}

static void test_names(void) {
        char buf[64];
        CtlCert orphan = { .path = "/k/x", .slot = "9a" };

        ASSERT_TRUE(ctl_token_of(&manager, &certs[2]) == &tokens[1]);
        ctl_cert_name(&manager, &certs[1], buf, sizeof(buf));
        ASSERT_STREQ(buf, "111/9d");
        /* A certificate no key lists: its path. */
        ASSERT_TRUE(ctl_token_of(&manager, &orphan) == NULL);
        ctl_cert_name(&manager, &orphan, buf, sizeof(buf));
        ASSERT_STREQ(buf, "/k/x");
}

int main(void) {
        RUN(test_any_key);
        RUN(test_serial);
        RUN(test_serial_and_slot);
        RUN(test_path);
        RUN(test_names);
        return 0;
}
