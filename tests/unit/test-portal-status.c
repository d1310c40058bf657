/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "macro.h"
#include "portal-status.h"
#include "x509-info.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123"
#define A H1 ":1a2b3c"
#define B H1 ":77"
#define C H2 ":1"

/* The asked set of most tests: sorted, as a batch holds it. */
static char *const asked[] = { A, B, C };

static void test_cert_id_valid(void) {
        ASSERT_TRUE(portal_cert_id_is_valid(A));
        ASSERT_TRUE(portal_cert_id_is_valid(H1 ":0"));
        ASSERT_TRUE(portal_cert_id_is_valid(H1 ":-1f"));
        ASSERT_TRUE(portal_cert_id_is_valid(H1 ":1234567890123456789012345678901234567890"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 ":12345678901234567890123456789012345678901"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 ":01"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 ":-0"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 ":1A"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 ":"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 "1"));
        ASSERT_TRUE(!portal_cert_id_is_valid("111:1"));
        ASSERT_TRUE(!portal_cert_id_is_valid(H1 ":1&cert=x"));
        ASSERT_TRUE(!portal_cert_id_is_valid(""));
        ASSERT_TRUE(!portal_cert_id_is_valid(NULL));
}

static void check_id(const char *serial, const char *expected) {
        X509Info info = { .serial = (char *) serial, .issuer_hash = H1 };
        _cleanup_free_ char *id = NULL;

        ASSERT_EQ(portal_cert_id_from_info(&info, &id), 0);
        ASSERT_STREQ(id, expected);
}

static int read_file(const char *name, uint8_t **ret, size_t *ret_len) {
        const char *dir = getenv("KEYRENEW_TEST_DATA");
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        uint8_t *buf = malloc(65536);
        size_t n;

        ASSERT_TRUE(dir && buf && asprintf(&path, "%s/%s", dir, name) > 0);
        f = fopen(path, "re");
        ASSERT_TRUE(f);
        n = fread(buf, 1, 65536, f);
        *ret = buf;
        *ret_len = n;
        return 0;
}

static void test_cert_id_from_info(void) {
        X509Info none = { .serial = NULL, .issuer_hash = H1 };
        _cleanup_(x509_info_freep) X509Info *info = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *id = NULL;
        size_t len;

        check_id("0a03", H1 ":a03");
        check_id("00", H1 ":0");
        check_id("-00ff", H1 ":-ff");
        check_id("-00", H1 ":0");
        ASSERT_EQ(portal_cert_id_from_info(&none, &id), -EINVAL);

        /* A real certificate: serial 0x0A03; the hash is SHA-256 over the
         * issuer Name's DER, computed independently of OpenSSL. */
        read_file("ec-p384.der", &der, &len);
        ASSERT_EQ(x509_info_parse(der, len, &info), 0);
        ASSERT_EQ(portal_cert_id_from_info(info, &id), 0);
        ASSERT_STREQ(id, "10852997d7659ee5a7f086fcb86c74cf92558bff9ed3787f619ae9c3ea7ac404:a03");
        ASSERT_TRUE(portal_cert_id_is_valid(id));
}

static void test_base_url(void) {
        ASSERT_TRUE(portal_base_url_is_valid("https://portal.example-ca.cn/keyrenew/v1", false));
        ASSERT_TRUE(portal_base_url_is_valid("https://127.0.0.1:46000", false));
        ASSERT_TRUE(!portal_base_url_is_valid("http://portal.example-ca.cn/keyrenew/v1", false));
        ASSERT_TRUE(!portal_base_url_is_valid("http://portal.example-ca.cn/keyrenew/v1", true));
        ASSERT_TRUE(!portal_base_url_is_valid("http://127.0.0.1:46000", false));
        ASSERT_TRUE(portal_base_url_is_valid("http://127.0.0.1:46000", true));
        ASSERT_TRUE(portal_base_url_is_valid("http://[::1]:46000/x", true));
        ASSERT_TRUE(portal_base_url_is_valid("http://localhost/x", true));
        ASSERT_TRUE(!portal_base_url_is_valid("ftp://portal.example-ca.cn/", true));
        ASSERT_TRUE(!portal_base_url_is_valid("https://portal.example-ca.cn/?a=b", false));
        ASSERT_TRUE(!portal_base_url_is_valid("https://portal.example-ca.cn/?", false));
        ASSERT_TRUE(!portal_base_url_is_valid("https://portal.example-ca.cn/#x", false));
        ASSERT_TRUE(!portal_base_url_is_valid("https://user:pw@portal.example-ca.cn/", false));
        ASSERT_TRUE(!portal_base_url_is_valid("portal.example-ca.cn", false));
        ASSERT_TRUE(!portal_base_url_is_valid("", false));
}

static void test_batches(void) {
        char *const certs[] = { C, A, B, A, C };
        char *const bad[] = { A, H1 ":0A" };
        PortalBatch *b = NULL;
        size_t n = 99;

        ASSERT_EQ(portal_batches_build("https://p.example/v1/", certs, ELEMENTSOF(certs), &b, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(b[0].url, "https://p.example/v1/renewals?cert=" A "&cert=" B "&cert=" C);
        ASSERT_EQ(b[0].n_certs, 3);
        ASSERT_STREQ(b[0].certs[0], A);
        ASSERT_STREQ(b[0].certs[2], C);
        portal_batches_free(b, n);

        ASSERT_EQ(portal_batches_build("https://p.example", certs, 1, &b, &n), 0);
        ASSERT_STREQ(b[0].url, "https://p.example/renewals?cert=" C);
        portal_batches_free(b, n);

        ASSERT_EQ(portal_batches_build("https://p.example", certs, 0, &b, &n), 0);
        ASSERT_TRUE(!b);
        ASSERT_EQ(n, 0);

        b = (PortalBatch *) 1;
        ASSERT_EQ(portal_batches_build("https://p.example", bad, ELEMENTSOF(bad), &b, &n), -EINVAL);
        ASSERT_TRUE(b == (PortalBatch *) 1);
}

static void test_batches_split(void) {
        char *certs[130 * 2];
        PortalBatch *b = NULL;
        size_t n, longest = 0;

        /* 130 distinct, each given twice, in descending order. */
        for (int i = 0; i < 130; i++) {
                ASSERT_TRUE(asprintf(&certs[i], H2 ":%x", 0xfffff - i) > 0);
                certs[130 + i] = certs[i];
        }
        ASSERT_EQ(portal_batches_build("https://p.example", certs, ELEMENTSOF(certs), &b, &n), 0);
        ASSERT_EQ(n, 3);
        ASSERT_EQ(b[0].n_certs, 64);
        ASSERT_EQ(b[1].n_certs, 64);
        ASSERT_EQ(b[2].n_certs, 2);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < b[i].n_certs; j++) {
                        const char *prev = j > 0 ? b[i].certs[j - 1] : i > 0 ? b[i - 1].certs[63] : "";

                        ASSERT_TRUE(strcmp(prev, b[i].certs[j]) < 0);
                }
        ASSERT_STREQ(b[0].certs[0], H2 ":fff7e");
        ASSERT_STREQ(b[2].certs[1], H2 ":fffff");
        ASSERT_TRUE(strstr(b[0].url, "?cert=" H2 ":fff7e&cert=" H2 ":fff7f&"));
        for (size_t i = 0; i < n; i++)
                longest = strlen(b[i].url) > longest ? strlen(b[i].url) : longest;
        ASSERT_TRUE(longest < PORTAL_URL_MAX);
        portal_batches_free(b, n);
        for (int i = 0; i < 130; i++)
                free(certs[i]);
}

static void test_batch_longest_url(void) {
        char *certs[64];
        char base[514];
        PortalBatch *b = NULL;
        size_t n;

        /* The longest base URL and 64 of the longest identifiers still fit
         * the 8192 bytes every portal must take. */
        memcpy(base, "https://p.example/", 18);
        memset(base + 18, 'x', sizeof base - 19);
        base[513] = '\0';
        ASSERT_TRUE(!portal_base_url_is_valid(base, false));
        base[512] = '\0';
        ASSERT_TRUE(portal_base_url_is_valid(base, false));
        for (int i = 0; i < 64; i++)
                ASSERT_TRUE(asprintf(&certs[i], H2 ":-%040x", i + 1) > 0);
        for (int i = 0; i < 64; i++)
                certs[i][66] = 'f';
        ASSERT_EQ(portal_batches_build(base, certs, 64, &b, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_TRUE(strlen(b[0].url) <= PORTAL_URL_MAX);
        portal_batches_free(b, n);
        for (int i = 0; i < 64; i++)
                free(certs[i]);
}

#define ORDER_APPROVED                                                                          \
        "{\"id\":\"R2026-000123\",\"state\":\"approved\",\"rekey\":true,\"validity_days\":365," \
        "\"page\":\"https://portal.example-ca.cn/orders/R2026-000123\","                        \
        "\"cmp\":\"https://portal.example-ca.cn/.well-known/cmp/p/"                             \
        "renew\",\"updated\":\"2026-11-27T08:00:00Z\"}"

static const char good[] =
        "{\"version\":1,\"poll_interval\":21600,\"future\":{\"x\":[1,2]},\"certificates\":["
        "{\"cert\":\"" C "\",\"known\":false,\"order\":null},"
        "{\"cert\":\"" A "\",\"known\":true,\"order\":" ORDER_APPROVED ",\"hint\":\"ignored\"},"
        "{\"cert\":\"" B "\",\"known\":true,\"order\":null}]}";

static void test_parse_good(void) {
        _cleanup_free_ char *message = NULL;
        PortalStatus *st = NULL;
        const PortalOrder *o;

        ASSERT_EQ(portal_status_parse(good, strlen(good), asked, 3, &st, &message), 0);
        ASSERT_TRUE(!message);
        ASSERT_EQ(st->poll_interval_sec, 21600);
        ASSERT_EQ(st->n_certs, 3);
        /* In the order asked, whatever the order answered. */
        ASSERT_STREQ(st->certs[0].cert, A);
        ASSERT_STREQ(st->certs[1].cert, B);
        ASSERT_STREQ(st->certs[2].cert, C);
        ASSERT_TRUE(st->certs[0].known && st->certs[1].known && !st->certs[2].known);
        ASSERT_TRUE(!st->certs[1].order && !st->certs[2].order);
        o = st->certs[0].order;
        ASSERT_STREQ(o->id, "R2026-000123");
        ASSERT_EQ(o->state, PORTAL_ORDER_APPROVED);
        ASSERT_STREQ(o->state_name, "approved");
        ASSERT_TRUE(o->rekey);
        ASSERT_EQ(o->validity_days, 365);
        ASSERT_STREQ(o->page, "https://portal.example-ca.cn/orders/R2026-000123");
        ASSERT_STREQ(o->cmp, "https://portal.example-ca.cn/.well-known/cmp/p/renew");
        ASSERT_TRUE(!o->reject_reason);
        ASSERT_TRUE(!o->has_not_after);
        ASSERT_EQ(o->updated, 1795766400);
        portal_status_free(st);
}

/* Parses an answer about A alone whose order is order_json. */
static int parse_order(const char *order_json, PortalStatus **ret, char **ret_message) {
        _cleanup_free_ char *body = NULL;
        char *const one[] = { A };

        ASSERT_TRUE(asprintf(&body,
                             "{\"version\":1,\"poll_interval\":3600,\"certificates\":["
                             "{\"cert\":\"" A "\",\"known\":true,\"order\":%s}]}",
                             order_json) > 0);
        return portal_status_parse(body, strlen(body), one, 1, ret, ret_message);
}

#define ORDER(state, extra)                                                             \
        "{\"id\":\"R1\",\"state\":\"" state "\",\"rekey\":false,\"validity_days\":730," \
        "\"page\":\"https://p.example/o/R1\",\"updated\":\"2026-11-27T10:00:00.123+02:00\"" extra "}"

static void test_parse_states(void) {
        _cleanup_free_ char *reason = NULL, *order = NULL;
        PortalStatus *st = NULL;

        ASSERT_EQ(parse_order(ORDER("awaiting-payment", ""), &st, NULL), 0);
        ASSERT_EQ(st->certs[0].order->state, PORTAL_ORDER_AWAITING_PAYMENT);
        ASSERT_TRUE(!st->certs[0].order->rekey);
        ASSERT_EQ(st->certs[0].order->updated, 1795766400);
        st = portal_status_free(st);

        ASSERT_EQ(parse_order(ORDER("under-review", ""), &st, NULL), 0);
        ASSERT_EQ(st->certs[0].order->state, PORTAL_ORDER_UNDER_REVIEW);
        st = portal_status_free(st);

        ASSERT_EQ(parse_order(ORDER("issued", ",\"cmp\":\"https://p.example/cmp\","
                                              "\"not_after\":\"2027-11-27T08:00:00Z\""),
                              &st, NULL),
                  0);
        ASSERT_EQ(st->certs[0].order->state, PORTAL_ORDER_ISSUED);
        ASSERT_TRUE(st->certs[0].order->has_not_after);
        ASSERT_EQ(st->certs[0].order->not_after, 1795766400 + 365 * 86400);
        st = portal_status_free(st);

        ASSERT_EQ(parse_order(ORDER("installed", ",\"not_after\":\"2027-11-27T08:00:00Z\""), &st, NULL), 0);
        ASSERT_EQ(st->certs[0].order->state, PORTAL_ORDER_INSTALLED);
        st = portal_status_free(st);

        /* A state from a later version: kept as is, the answer still good. */
        ASSERT_EQ(parse_order(ORDER("on-hold", ",\"cmp\":12"), &st, NULL), -EBADMSG);
        ASSERT_EQ(parse_order(ORDER("on-hold", ""), &st, NULL), 0);
        ASSERT_EQ(st->certs[0].order->state, PORTAL_ORDER_UNKNOWN);
        ASSERT_STREQ(st->certs[0].order->state_name, "on-hold");
        ASSERT_STREQ(portal_order_state_to_string(st->certs[0].order->state), "unknown");
        st = portal_status_free(st);

        /* A rejection with 1024 Chinese characters (3 bytes each) and a line break. */
        reason = malloc(1024 * 3 + 1);
        for (int i = 0; i < 1023; i++)
                memcpy(reason + 3 * i, "\xe8\xaf\x81", 3);
        memcpy(reason + 1023 * 3, "\\n", 3);
        ASSERT_TRUE(asprintf(&order, ORDER("rejected", ",\"reject_reason\":\"%s\""), reason) > 0);
        ASSERT_EQ(parse_order(order, &st, NULL), 0);
        ASSERT_EQ(st->certs[0].order->state, PORTAL_ORDER_REJECTED);
        ASSERT_EQ(strlen(st->certs[0].order->reject_reason), 1023 * 3 + 1);
        st = portal_status_free(st);
}

static void expect_bad(const char *body, int error, const char *needle) {
        _cleanup_free_ char *message = NULL;
        PortalStatus *st = NULL;

        ASSERT_EQ(portal_status_parse(body, strlen(body), asked, 3, &st, &message), error);
        ASSERT_TRUE(!st);
        if (!message || !strstr(message, needle)) {
                fprintf(stderr, "message \"%s\" does not name \"%s\"\n", message ? message : "(null)",
                        needle);
                abort();
        }
}

static void expect_bad_order(const char *order_json, const char *needle) {
        _cleanup_free_ char *message = NULL;
        PortalStatus *st = NULL;

        ASSERT_EQ(parse_order(order_json, &st, &message), -EBADMSG);
        ASSERT_TRUE(!st);
        if (!message || !strstr(message, needle)) {
                fprintf(stderr, "message \"%s\" does not name \"%s\"\n", message ? message : "(null)",
                        needle);
                abort();
        }
}

#define ENTRIES3                                                            \
        "{\"cert\":\"" A "\",\"known\":true,\"order\":null},{\"cert\":\"" B \
        "\",\"known\":true,\"order\":null},"                                \
        "{\"cert\":\"" C "\",\"known\":true,\"order\":null}"

static void test_parse_malformed_top(void) {
        expect_bad("", -EBADMSG, "not valid JSON");
        expect_bad("<html>", -EBADMSG, "not valid JSON");
        expect_bad("{\"version\":1,", -EBADMSG, "not valid JSON");
        expect_bad("[1]", -EBADMSG, "not a JSON object");
        expect_bad("{\"version\":1,\"version\":1,\"poll_interval\":60,\"certificates\":[" ENTRIES3 "]}",
                   -EBADMSG, "duplicate");
        expect_bad("{\"version\":2,\"poll_interval\":60,\"certificates\":[" ENTRIES3 "]}", -EPROTONOSUPPORT,
                   "version 2");
        expect_bad("{\"version\":\"1\",\"poll_interval\":60,\"certificates\":[" ENTRIES3 "]}", -EBADMSG,
                   "\"version\" is not an integer");
        expect_bad("{\"poll_interval\":60,\"certificates\":[" ENTRIES3 "]}", -EBADMSG,
                   "\"version\" is missing");
        expect_bad("{\"version\":1,\"poll_interval\":1.5,\"certificates\":[" ENTRIES3 "]}", -EBADMSG,
                   "\"poll_interval\" is not an integer");
        expect_bad("{\"version\":1,\"poll_interval\":60}", -EBADMSG, "\"certificates\" is missing");
        expect_bad("{\"version\":1,\"poll_interval\":60,\"certificates\":{}}", -EBADMSG, "not an array");
}

static void test_parse_malformed_entries(void) {
        static const char *const prefix = "{\"version\":1,\"poll_interval\":60,\"certificates\":[";
        static const struct {
                const char *entries, *needle;
        } cases[] = {
                /* A missing, C answered twice, D never asked. */
                { "{\"cert\":\"" B "\",\"known\":true,\"order\":null},{\"cert\":\"" C
                  "\",\"known\":true,\"order\":null}",
                  "2 certificates answered, 3 asked" },
                { ENTRIES3 ",{\"cert\":\"" H2 ":2\",\"known\":true,\"order\":null}",
                  "4 certificates answered" },
                { "{\"cert\":\"" A "\",\"known\":true,\"order\":null},{\"cert\":\"" C
                  "\",\"known\":true,\"order\":null},{\"cert\":\"" C "\",\"known\":true,\"order\":null}",
                  "certificates[2]: certificate " C " is answered twice" },
                { "{\"cert\":\"" A "\",\"known\":true,\"order\":null},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":null},{\"cert\":\"" H2 ":2\",\"known\":true,\"order\":null}",
                  "certificates[2]: certificate " H2 ":2 was not asked about" },
                /* The same certificate in upper case is not the one asked. */
                { "{\"cert\":\"" A "\",\"known\":true,\"order\":null},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":null},{\"cert\":"
                  "\"ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFAB"
                  "CDEFABCDEF0123:1\",\"known\":true,\"order\":null}",
                  "was not asked about" },
                { "1,2,3", "certificates[0]: not an object" },
                { "{\"cert\":\"" A "\",\"known\":\"yes\",\"order\":null},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":null},{\"cert\":\"" C "\",\"known\":true,\"order\":null}",
                  "certificates[0]: \"known\" is not a boolean" },
                { "{\"cert\":\"" A "\",\"known\":true},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":null},{\"cert\":\"" C "\",\"known\":true,\"order\":null}",
                  "certificates[0]: \"order\" is missing" },
                { "{\"cert\":\"" A "\",\"known\":true,\"order\":null},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":5},{\"cert\":\"" C "\",\"known\":true,\"order\":null}",
                  "certificates[1]: \"order\" is neither an object nor null" },
                { "{\"cert\":7,\"known\":true,\"order\":null},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":null},{\"cert\":\"" C "\",\"known\":true,\"order\":null}",
                  "certificates[0]: \"cert\" is not a string" },
                { "{\"cert\":\"" A "\",\"known\":true,\"known\":false,\"order\":null},{\"cert\":\"" B
                  "\",\"known\":true,\"order\":null},{\"cert\":\"" C "\",\"known\":true,\"order\":null}",
                  "duplicate" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *body = NULL;

                ASSERT_TRUE(asprintf(&body, "%s%s]}", prefix, cases[i].entries) > 0);
                expect_bad(body, -EBADMSG, cases[i].needle);
        }
}

static void test_parse_malformed_orders(void) {
        _cleanup_free_ char *long_reason = NULL, *order = NULL;

        expect_bad_order(ORDER("approved", ""), "certificates[0].order: \"cmp\" is missing");
        expect_bad_order(ORDER("issued", ",\"cmp\":\"https://p.example/c\""), "\"not_after\" is missing");
        expect_bad_order(ORDER("installed", ""), "\"not_after\" is missing");
        expect_bad_order(ORDER("rejected", ""), "\"reject_reason\" is missing");
        expect_bad_order(ORDER("approved", ",\"cmp\":\"http://p.example/c\""),
                         "\"cmp\" is not an https URL");
        expect_bad_order(ORDER("approved", ",\"cmp\":\"HTTPS://p.example/c\""),
                         "\"cmp\" is not an https URL");
        expect_bad_order(ORDER("approved", ",\"cmp\":\"https://\""), "\"cmp\" is not an https URL");
        expect_bad_order(ORDER("approved", ",\"cmp\":\"https://p.example/a b\""),
                         "\"cmp\" is not an https URL");
        expect_bad_order(
                "{\"id\":\"R1\",\"state\":\"approved\",\"rekey\":1,\"validity_days\":1,\"page\":\"https://"
                "p\",\"cmp\":\"https://p\",\"updated\":\"2026-11-27T08:00:00Z\"}",
                "\"rekey\" is not a boolean");
        expect_bad_order(
                "{\"id\":\"R1\",\"state\":\"approved\",\"rekey\":true,\"validity_days\":\"365\",\"page\":"
                "\"https://p\",\"cmp\":\"https://p\",\"updated\":\"2026-11-27T08:00:00Z\"}",
                "\"validity_days\" is not an integer");
        expect_bad_order("{\"id\":\"R1\",\"state\":\"approved\",\"rekey\":true,\"validity_days\":0,\"page\":"
                         "\"https://p\",\"cmp\":\"https://p\",\"updated\":\"2026-11-27T08:00:00Z\"}",
                         "\"validity_days\" is not between");
        expect_bad_order("{\"id\":\"R1\",\"state\":\"approved\",\"rekey\":true,\"validity_days\":1,\"page\":"
                         "\"http://p\",\"cmp\":\"https://p\",\"updated\":\"2026-11-27T08:00:00Z\"}",
                         "\"page\" is not an https URL");
        expect_bad_order("{\"id\":\"R1\",\"state\":\"approved\",\"rekey\":true,\"validity_days\":1,\"page\":"
                         "\"https://p\",\"cmp\":\"https://p\"}",
                         "\"updated\" is missing");
        expect_bad_order(ORDER("approved", ",\"cmp\":null"), "\"cmp\" is not a string");
        expect_bad_order("{\"id\":\"R1\",\"state\":3,\"rekey\":true}", "\"state\" is not a string");
        expect_bad_order("{\"state\":\"approved\"}", "\"id\" is missing");
        expect_bad_order("{\"id\":\"\",\"state\":\"approved\"}", "\"id\" is empty or longer than 64");
        expect_bad_order("{\"id\":\"R12345678901234567890123456789012345678901234567890123456789012345\","
                         "\"state\":\"approved\"}",
                         "\"id\" is empty or longer than 64");
        expect_bad_order("{\"id\":\"R1\\u001b[2J\",\"state\":\"approved\"}",
                         "\"id\" is not printable ASCII");
        expect_bad_order("{\"id\":\"\xe8\xaf\x81\",\"state\":\"approved\"}",
                         "\"id\" is not printable ASCII");
        expect_bad_order(ORDER("rejected", ",\"reject_reason\":\"bad\\u0007\""), "control characters");
        expect_bad_order("{\"id\":\"R1\",\"state\":\"approved\",\"rekey\":true,\"validity_days\":1,\"page\":"
                         "\"https://p\",\"cmp\":\"https://p\",\"updated\":\"2026-11-27 08:00:00Z\"}",
                         "\"updated\" is not an RFC 3339 date-time");
        expect_bad_order(ORDER("installed", ",\"not_after\":\"2027-02-30T08:00:00Z\""),
                         "\"not_after\" is not an RFC 3339");

        long_reason = malloc(1025 * 3 + 1);
        for (int i = 0; i < 1025; i++)
                memcpy(long_reason + 3 * i, "\xe8\xaf\x81", 3);
        long_reason[1025 * 3] = '\0';
        ASSERT_TRUE(asprintf(&order, ORDER("rejected", ",\"reject_reason\":\"%s\""), long_reason) > 0);
        expect_bad_order(order, "\"reject_reason\" is longer than 1024 characters");
}

static void test_parse_interval_clamped(void) {
        char *const one[] = { A };
        static const struct {
                const char *value;
                unsigned expected;
        } cases[] = { { "-5", 60 }, { "0", 60 }, { "59", 60 }, { "3600", 3600 }, { "9999999999", 604800 } };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *body = NULL;
                PortalStatus *st = NULL;

                ASSERT_TRUE(asprintf(&body,
                                     "{\"version\":1,\"poll_interval\":%s,\"certificates\":[{\"cert\":\"" A
                                     "\",\"known\":false,\"order\":null}]}",
                                     cases[i].value) > 0);
                ASSERT_EQ(portal_status_parse(body, strlen(body), one, 1, &st, NULL), 0);
                ASSERT_EQ(st->poll_interval_sec, cases[i].expected);
                portal_status_free(st);
        }
}

static void test_timestamps(void) {
        time_t t = 7;

        ASSERT_EQ(portal_parse_timestamp("2026-11-27T08:00:00Z", &t), 0);
        ASSERT_EQ(t, 1795766400);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27t08:00:00.5z", &t), 0);
        ASSERT_EQ(t, 1795766400);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T16:00:00+08:00", &t), 0);
        ASSERT_EQ(t, 1795766400);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T07:00:00-01:00", &t), 0);
        ASSERT_EQ(t, 1795766400);
        ASSERT_EQ(portal_parse_timestamp("2016-12-31T23:59:60Z", &t), 0);
        ASSERT_EQ(t, 1483228799);
        t = 7;
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T08:00:00", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T08:00:00.Z", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("2026-13-01T08:00:00Z", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("2026-02-29T08:00:00Z", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T24:00:00Z", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T08:00:00Zjunk", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("2026-11-27T08:00:00+8:00", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("26-11-27T08:00:00Z", &t), -EINVAL);
        ASSERT_EQ(portal_parse_timestamp("", &t), -EINVAL);
        ASSERT_EQ(t, 7);
}

static void test_retry_after(void) {
        const time_t date = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
        unsigned long long s = 7;

        ASSERT_EQ(portal_parse_retry_after("120", 0, &s), 0);
        ASSERT_EQ(s, 120);
        ASSERT_EQ(portal_parse_retry_after("0", 0, &s), 0);
        ASSERT_EQ(s, 0);
        ASSERT_EQ(portal_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", date - 30, &s), 0);
        ASSERT_EQ(s, 30);
        ASSERT_EQ(portal_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", date + 30, &s), 0);
        ASSERT_EQ(s, 0);
        s = 7;
        ASSERT_EQ(portal_parse_retry_after("99999999999999999999999", 0, &s), -EINVAL);
        ASSERT_EQ(portal_parse_retry_after("soon", 0, &s), -EINVAL);
        ASSERT_EQ(portal_parse_retry_after("", 0, &s), -EINVAL);
        ASSERT_EQ(portal_parse_retry_after("-5", 0, &s), -EINVAL);
        ASSERT_EQ(s, 7);
}

static void test_error_body(void) {
        static const char body[] = "{\"error\":\"bad-cert\",\"message\":\"cert 3 is not\\u001b hex\"}";
        _cleanup_free_ char *d = NULL;

        ASSERT_EQ(portal_error_body_describe(body, strlen(body), &d), 0);
        ASSERT_STREQ(d, "bad-cert: cert 3 is not? hex");
        ASSERT_EQ(portal_error_body_describe("oops", 4, &d), -EBADMSG);
        ASSERT_EQ(portal_error_body_describe("{\"message\":\"x\"}", 15, &d), -EBADMSG);
}

int main(void) {
        RUN(test_cert_id_valid);
        RUN(test_cert_id_from_info);
        RUN(test_base_url);
        RUN(test_batches);
        RUN(test_batches_split);
        RUN(test_batch_longest_url);
        RUN(test_parse_good);
        RUN(test_parse_states);
        RUN(test_parse_malformed_top);
        RUN(test_parse_malformed_entries);
        RUN(test_parse_malformed_orders);
        RUN(test_parse_interval_clamped);
        RUN(test_timestamps);
        RUN(test_retry_after);
        RUN(test_error_body);
        return 0;
}
