/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The portal's spelling of certificate ids, serials and reject reasons, and
 * a CA issuing and revoking for real (in a temporary directory). */
#include <errno.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/assert.h"
#include "portal-ca.h"
#include "portal-db.h"
#include "portal-order.h"

#define HASH_A "5d41402abc4b2a76b9719d911017c592d10f1e2e4cd0bd04fd01dd8c1b9f4a3c"

static void test_cert_id_parse(void) {
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];

        ASSERT_EQ(cert_id_parse(HASH_A ":1a2b3c", hash, serial), 0);
        ASSERT_STREQ(hash, HASH_A);
        ASSERT_STREQ(serial, "1a2b3c");
        ASSERT_EQ(cert_id_parse(HASH_A ":0", hash, serial), 0);
        ASSERT_STREQ(serial, "0");
        ASSERT_EQ(cert_id_parse(HASH_A ":-7f", hash, serial), 0);
        ASSERT_STREQ(serial, "-7f");
        ASSERT_EQ(cert_id_parse(HASH_A ":"
                                       "1234567890123456789012345678901234567890",
                                hash, serial),
                  0);

        ASSERT_EQ(cert_id_parse(HASH_A ":"
                                       "12345678901234567890123456789012345678901",
                                hash, serial),
                  -EINVAL);
        ASSERT_EQ(cert_id_parse(HASH_A ":01", hash, serial), -EINVAL);
        ASSERT_EQ(cert_id_parse(HASH_A ":-0", hash, serial), -EINVAL);
        ASSERT_EQ(cert_id_parse(HASH_A ":-", hash, serial), -EINVAL);
        ASSERT_EQ(cert_id_parse(HASH_A ":", hash, serial), -EINVAL);
        ASSERT_EQ(cert_id_parse(HASH_A ":1A", hash, serial), -EINVAL);
        ASSERT_EQ(cert_id_parse(HASH_A "1", hash, serial), -EINVAL);
        ASSERT_EQ(cert_id_parse("5D41402abc4b2a76b9719d911017c592d10f1e2e4cd0bd04fd01dd8c1b9f4a3c:1", hash,
                                serial),
                  -EINVAL);
        ASSERT_EQ(cert_id_parse("", hash, serial), -EINVAL);
}

static void test_serial_round_trip(void) {
        static const char *const cases[] = {
                "0", "1", "ff", "100", "-1f", "7fffffffffffffffffffffffffffffff"
        };
        char s[SERIAL_HEX_SIZE];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *n = NULL;

                ASSERT_EQ(serial_from_string(cases[i], &n), 0);
                ASSERT_EQ(serial_to_string(n, s), 0);
                ASSERT_STREQ(s, cases[i]);
        }
}

static void test_utf8_text_length(void) {
        size_t n;

        ASSERT_EQ(utf8_text_length("材料不清晰", &n), 0);
        ASSERT_EQ(n, 5);
        ASSERT_EQ(utf8_text_length("line\nbreak 🙂", &n), 0);
        ASSERT_EQ(n, 12);
        ASSERT_EQ(utf8_text_length("", &n), 0);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(utf8_text_length("tab\there", &n), -EILSEQ);
        ASSERT_EQ(utf8_text_length("\xc0\xaf", &n), -EILSEQ);         /* overlong '/' */
        ASSERT_EQ(utf8_text_length("\xed\xa0\x80", &n), -EILSEQ);     /* a surrogate */
        ASSERT_EQ(utf8_text_length("\xe6\x9d", &n), -EILSEQ);         /* cut short */
        ASSERT_EQ(utf8_text_length("\xf4\x90\x80\x80", &n), -EILSEQ); /* past U+10FFFF */
        ASSERT_EQ(utf8_text_length("\x7f", &n), -EILSEQ);
}

/* A portal directory: issue, record, revoke and list for the CRL. */
static void test_issue_and_revoke(void) {
        char dir[] = "/tmp/test-portal-ca.XXXXXX";
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE], cmd[128];
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ CrlEntry *entries = NULL;
        PortalCas cas = {};
        long long number;
        CertRow row;
        size_t n;

        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_EQ(cas_create(dir, CA_EC, 2), 0);
        ASSERT_EQ(cas_create(dir, CA_EC, 2), -EEXIST);
        ASSERT_EQ(cas_load(dir, &cas), 0);
        ASSERT_EQ(db_open(dir, true, &db), 0);

        const PortalCa *ca = &cas.ca[CA_RSA];
        CertSpec spec = {
                .subject = X509_get_subject_name(ca->cmp_cert),
                .pubkey = ca->cmp_key,
                .days = 10,
                .key_usage = "critical,digitalSignature",
        };
        ASSERT_EQ(ca_issue(ca, &spec, &cert), 0);
        ASSERT_TRUE(cas_find_issuer(&cas, cert) == ca);
        ASSERT_TRUE(cas_find_issuer(&cas, ca->cert) == ca); /* self-signed */
        ASSERT_TRUE(cas_find_issuer(&cas, cas.ca[CA_EC].cmp_cert) == &cas.ca[CA_EC]);
        ASSERT_EQ(cert_get_id(cert, hash, serial), 0);
        ASSERT_STREQ(hash, ca->issuer_hash);
        ASSERT_TRUE(cas_find(&cas, hash) == ca);
        ASSERT_TRUE(cas_find(&cas, HASH_A) == NULL);
        ASSERT_EQ(strlen(serial), 32); /* 127 random bits, the top one set */

        ASSERT_EQ(db_cert_put(db, cert, "R2026-000001"), 0);
        ASSERT_EQ(db_cert_put(db, cert, "R2026-000001"), 0);
        ASSERT_EQ(db_cert_get(db, hash, serial, &row), 0);
        ASSERT_STREQ(row.order_id, "R2026-000001");
        ASSERT_EQ(row.revoked_at, 0);
        ASSERT_EQ(X509_cmp(row.cert, cert), 0);
        cert_row_done(&row);
        ASSERT_EQ(db_cert_get(db, hash, "1", &row), -ENOENT);

        ASSERT_EQ(db_crl_number(db, hash, &number), 0);
        ASSERT_EQ(number, 1);
        ASSERT_EQ(db_cert_revoke(db, hash, serial, CRL_REASON_SUPERSEDED), 0);
        ASSERT_EQ(db_cert_revoke(db, hash, serial, CRL_REASON_KEY_COMPROMISE), 0);
        ASSERT_EQ(db_crl_number(db, hash, &number), 0);
        ASSERT_EQ(number, 2); /* the second revocation changed nothing */
        ASSERT_EQ(db_crl_entries(db, hash, &entries, &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(entries[0].serial, serial);
        ASSERT_EQ(entries[0].reason, CRL_REASON_SUPERSEDED);

        ASSERT_EQ(ca_make_crl(ca, number, entries, n, &crl), 0);
        ASSERT_EQ(X509_CRL_verify(crl, ca->key), 1);
        ASSERT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);

        cas_done(&cas);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ASSERT_EQ(system(cmd), 0);
}

int main(void) {
        RUN(test_cert_id_parse);
        RUN(test_serial_round_trip);
        RUN(test_utf8_text_length);
        RUN(test_issue_and_revoke);
        return 0;
}
