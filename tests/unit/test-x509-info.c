/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "assert.h"
#include "macro.h"
#include "scripted-card.h"
#include "x509-info.h"

/* The fixtures' dates (tests/data/README.md). */
#define T_2021_01_01 1609459200
#define T_2025_01_01 1735689600
#define T_2027_01_01 1798761600

static X509Info *parse_file(const char *name) {
        _cleanup_free_ uint8_t *der = NULL;
        X509Info *i = NULL;
        size_t len;

        der = read_test_file(name, &len);
        ASSERT_EQ(x509_info_parse(der, len, &i), 0);
        ASSERT_TRUE(i);
        return i;
}

static void test_rsa2048(void) {
        _cleanup_(x509_info_freep) X509Info *i = parse_file("rsa2048.der");

        ASSERT_STREQ(i->subject, "CN=RSA Signer,O=keyrenew tests,C=CN");
        ASSERT_STREQ(i->issuer, "CN=keyrenew Test CA,O=keyrenew tests,C=CN");
        ASSERT_STREQ(i->serial, "1001");
        ASSERT_EQ(i->not_before, T_2025_01_01);
        ASSERT_EQ(i->not_after, T_2027_01_01);
        ASSERT_STREQ(i->key_type, "rsa");
        ASSERT_EQ(i->key_bits, 2048);
        ASSERT_TRUE(!i->curve);
        ASSERT_STREQ(i->signature_algorithm, "RSA-SHA256");
        ASSERT_TRUE(i->has_key_usage);
        ASSERT_EQ(i->usage, X509_USAGE_SIGNING);
        ASSERT_STREQ(x509_usage_to_string(i->usage), "signing");
        /* Computed with dd | sha256sum, see tests/data/README.md. */
        ASSERT_STREQ(i->issuer_hash, "10852997d7659ee5a7f086fcb86c74cf92558bff9ed3787f619ae9c3ea7ac404");
        ASSERT_STREQ(i->fingerprint, "974c1f4b6d4879f2623a8ae437223b9c7bee9ac5c81d11dc616fb95bb2adf3b1");
}

static void test_ec(void) {
        _cleanup_(x509_info_freep) X509Info *p256 = parse_file("ec-p256.der");
        _cleanup_(x509_info_freep) X509Info *p384 = parse_file("ec-p384.der");
        _cleanup_(x509_info_freep) X509Info *ca = parse_file("rsa-ca.der");

        ASSERT_STREQ(p256->subject, "CN=李四 (加密),O=keyrenew tests,C=CN");
        ASSERT_STREQ(p256->key_type, "ec");
        ASSERT_EQ(p256->key_bits, 256);
        ASSERT_STREQ(p256->curve, "P-256");
        ASSERT_EQ(p256->usage, X509_USAGE_ENCRYPTION);
        ASSERT_STREQ(x509_usage_to_string(p256->usage), "encryption");
        ASSERT_STREQ(p256->serial, "1002");

        ASSERT_STREQ(p384->key_type, "ec");
        ASSERT_EQ(p384->key_bits, 384);
        ASSERT_STREQ(p384->curve, "P-384");
        /* No keyUsage extension: the key may be used for anything. */
        ASSERT_TRUE(!p384->has_key_usage);
        ASSERT_EQ(p384->usage, X509_USAGE_SIGNING | X509_USAGE_ENCRYPTION);
        ASSERT_STREQ(p384->serial, "0a03");

        /* Same issuer, same hash; and the CA's own subject is that issuer. */
        ASSERT_STREQ(p256->issuer_hash, p384->issuer_hash);
        ASSERT_STREQ(ca->issuer_hash, p256->issuer_hash);
        /* keyCertSign alone is neither. */
        ASSERT_EQ(ca->usage, 0);
        ASSERT_STREQ(x509_usage_to_string(ca->usage), "");
}

static void test_sm2_and_chinese_names(void) {
        _cleanup_(x509_info_freep) X509Info *i = parse_file("sm2.der");

        ASSERT_STREQ(i->subject, "CN=张三,O=深圳市测试有限公司,C=CN");
        ASSERT_STREQ(i->issuer, "CN=测试 SM2 CA,O=测试认证中心,C=CN");
        ASSERT_STREQ(i->key_type, "sm2");
        ASSERT_EQ(i->key_bits, 256);
        ASSERT_STREQ(i->curve, "SM2");
        ASSERT_STREQ(i->signature_algorithm, "SM2-SM3");
        ASSERT_EQ(i->usage, X509_USAGE_SIGNING | X509_USAGE_ENCRYPTION);
        ASSERT_STREQ(x509_usage_to_string(i->usage), "signing,encryption");
        /* DER holds 00 C0 FF EE; the sign byte is not part of the serial. */
        ASSERT_STREQ(i->serial, "c0ffee");
        ASSERT_STREQ(i->issuer_hash, "fcf0fbd338f9595b544f6c86db15a5a361b005f0c57ac9f6816c232458500b16");
        ASSERT_STREQ(i->fingerprint, "c3f02fdfbd8bb7f8e9c85bc01736ba154bac359aac1b21583af416654e9902fe");
}

/* sm2.der with its key's algorithm OID replaced by oid (and no curve
 * parameters), signed again by a throw-away key: what OpenSSL cannot make
 * from the command line. */
static uint8_t *with_key_algorithm(const char *oid, size_t *ret_len) {
        _cleanup_free_ uint8_t *der = NULL;
        const unsigned char *p, *point;
        unsigned char *out = NULL, *point_copy;
        EVP_PKEY *signer;
        uint8_t *result;
        int point_len, n;
        size_t len;
        X509 *x;

        der = read_test_file("sm2.der", &len);
        p = der;
        ASSERT_TRUE(x = d2i_X509(NULL, &p, (long) len));
        ASSERT_EQ(X509_PUBKEY_get0_param(NULL, &point, &point_len, NULL, X509_get_X509_PUBKEY(x)), 1);
        ASSERT_TRUE(point_copy = OPENSSL_memdup(point, (size_t) point_len));
        ASSERT_EQ(X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_txt2obj(oid, 1), V_ASN1_UNDEF, NULL,
                                         point_copy, point_len),
                  1);
        ASSERT_TRUE(signer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
        ASSERT_TRUE(X509_sign(x, signer, EVP_sha256()) > 0);
        n = i2d_X509(x, &out);
        ASSERT_TRUE(n > 0);
        ASSERT_TRUE(result = malloc((size_t) n));
        memcpy(result, out, (size_t) n);
        OPENSSL_free(out);
        EVP_PKEY_free(signer);
        X509_free(x);
        *ret_len = (size_t) n;
        return result;
}

static void test_undecodable_keys(void) {
        _cleanup_(x509_info_freep) X509Info *sm2 = NULL, *unknown = NULL;
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;
        size_t a_len, b_len;

        a = with_key_algorithm("1.2.156.10197.1.301", &a_len);
        ASSERT_EQ(x509_info_parse(a, a_len, &sm2), 0);
        ASSERT_STREQ(sm2->key_type, "sm2");
        ASSERT_EQ(sm2->key_bits, 256);
        ASSERT_STREQ(sm2->curve, "SM2");
        ASSERT_STREQ(sm2->subject, "CN=张三,O=深圳市测试有限公司,C=CN");

        b = with_key_algorithm("1.3.6.1.4.1.55555.1", &b_len);
        ASSERT_EQ(x509_info_parse(b, b_len, &unknown), 0);
        ASSERT_STREQ(unknown->key_type, "unknown");
        ASSERT_EQ(unknown->key_bits, 0);
        ASSERT_TRUE(!unknown->curve);
}

/* A self-signed certificate whose CN is the given bytes, as a string of
 * the given ASN.1 type, unchecked. */
static uint8_t *with_raw_cn(int type, const char *cn, size_t *ret_len) {
        unsigned char *out = NULL;
        EVP_PKEY *key;
        X509_NAME *name;
        uint8_t *result;
        X509 *x;
        int n;

        ASSERT_TRUE(key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
        ASSERT_TRUE(x = X509_new());
        ASSERT_TRUE(name = X509_NAME_new());
        ASSERT_EQ(X509_NAME_add_entry_by_NID(name, NID_commonName, type, (const unsigned char *) cn, -1, -1,
                                             0),
                  1);
        ASSERT_EQ(X509_set_subject_name(x, name), 1);
        ASSERT_EQ(X509_set_issuer_name(x, name), 1);
        ASSERT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
        ASSERT_TRUE(X509_gmtime_adj(X509_getm_notBefore(x), 0));
        ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
        ASSERT_EQ(X509_set_pubkey(x, key), 1);
        ASSERT_TRUE(X509_sign(x, key, EVP_sha256()) > 0);
        n = i2d_X509(x, &out);
        ASSERT_TRUE(n > 0);
        ASSERT_TRUE(result = malloc((size_t) n));
        memcpy(result, out, (size_t) n);
        OPENSSL_free(out);
        X509_NAME_free(name);
        X509_free(x);
        EVP_PKEY_free(key);
        *ret_len = (size_t) n;
        return result;
}

static void expect_subject(int type, const char *cn, const char *subject) {
        _cleanup_(x509_info_freep) X509Info *i = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;

        der = with_raw_cn(type, cn, &len);
        ASSERT_EQ(x509_info_parse(der, len, &i), 0);
        ASSERT_STREQ(i->subject, subject);
        ASSERT_STREQ(i->issuer, subject);
}

static void test_names_stay_utf8(void) {
        _cleanup_free_ uint8_t *der = NULL;
        X509Info *i = NULL;
        uint8_t *cn;
        size_t len;

        /* "张三" in GBK in place of "RSA " in the UTF8String of the CN:
         * OpenSSL 3 does not decode such a certificate at all. */
        der = read_test_file("rsa2048.der", &len);
        ASSERT_TRUE(cn = memmem(der + 100, len - 100, "RSA Signer", 10));
        memcpy(cn, "\xD5\xC5\xC8\xFD", 4);
        ASSERT_EQ(x509_info_parse(der, len, &i), -EBADMSG);
        /* ... while valid UTF-8, 4-byte characters too, is left alone. */
        memcpy(cn, "\xF0\x9F\x94\x91", 4);
        ASSERT_EQ(x509_info_parse(der, len, &i), 0);
        ASSERT_STREQ(i->subject, "CN=\xF0\x9F\x94\x91Signer,O=keyrenew tests,C=CN");
        x509_info_free(i);

        /* The same GBK bytes in a PrintableString are read as Latin-1. */
        expect_subject(V_ASN1_PRINTABLESTRING, "\xD5\xC5", "CN=\xC3\x95\xC3\x85");
        /* Control characters and RFC 2253 specials come out escaped. */
        expect_subject(V_ASN1_UTF8STRING,
                       "a\x01"
                       "b",
                       "CN=a\\01b");
        expect_subject(V_ASN1_UTF8STRING, "Doe, John+1", "CN=Doe\\, John\\+1");
}

static void test_days_left(void) {
        _cleanup_(x509_info_freep) X509Info *expired = parse_file("expired.der");
        _cleanup_(x509_info_freep) X509Info *i = parse_file("rsa2048.der");

        ASSERT_EQ(expired->not_after, T_2021_01_01);
        ASSERT_EQ(x509_info_days_left(expired, T_2021_01_01 - 1), 0);
        ASSERT_EQ(x509_info_days_left(expired, T_2021_01_01), 0);
        ASSERT_EQ(x509_info_days_left(expired, T_2021_01_01 + 1), -1);
        ASSERT_EQ(x509_info_days_left(expired, T_2021_01_01 + 86400), -1);
        ASSERT_EQ(x509_info_days_left(expired, T_2021_01_01 + 86401), -2);
        ASSERT_EQ(x509_info_days_left(expired, T_2025_01_01), -1461);

        ASSERT_EQ(x509_info_days_left(i, T_2027_01_01 - 30 * 86400), 30);
        ASSERT_EQ(x509_info_days_left(i, T_2027_01_01 - 30 * 86400 + 1), 29);
        ASSERT_EQ(x509_info_days_left(i, T_2025_01_01), 730);
}

static void expect_bad(const uint8_t *p, size_t n) {
        X509Info *i = (X509Info *) 1;

        ASSERT_EQ(x509_info_parse(p, n, &i), -EBADMSG);
        ASSERT_TRUE(i == (X509Info *) 1);
}

static void test_garbage(void) {
        _cleanup_free_ uint8_t *garbage = NULL, *der = NULL, *longer = NULL;
        size_t garbage_len, len;
        X509Info *i = NULL;

        garbage = read_test_file("garbage.bin", &garbage_len);
        expect_bad(garbage, garbage_len);

        der = read_test_file("rsa2048.der", &len);
        /* Every truncation, from a copy of exactly that size so that
         * valgrind and ASan see any read past it. */
        for (size_t n = 1; n < len; n++) {
                _cleanup_free_ uint8_t *cut = malloc(n);

                ASSERT_TRUE(cut);
                memcpy(cut, der, n);
                expect_bad(cut, n);
        }
        /* A trailing byte. */
        ASSERT_TRUE(longer = malloc(len + 1));
        memcpy(longer, der, len);
        longer[len] = 0;
        expect_bad(longer, len + 1);
        /* A flipped length byte of the outer SEQUENCE. */
        longer[3] ^= 0x01;
        expect_bad(longer, len);

        ASSERT_EQ(x509_info_parse(der, 0, &i), -EINVAL);
        ASSERT_EQ(x509_info_parse(NULL, 5, &i), -EINVAL);
}

int main(void) {
        RUN(test_rsa2048);
        RUN(test_ec);
        RUN(test_sm2_and_chinese_names);
        RUN(test_undecodable_keys);
        RUN(test_names_stay_utf8);
        RUN(test_days_left);
        RUN(test_garbage);
        return 0;
}
