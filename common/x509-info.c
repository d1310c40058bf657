/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "x509-info.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hex.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

static int name_to_string(const X509_NAME *name, char **ret) {
        _cleanup_(BIO_freep) BIO *b = NULL;
        /* RFC 2253 escapes every byte above 0x7F; keep UTF-8 readable. */
        unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
        char *p = NULL, *s;
        long len;

        b = BIO_new(BIO_s_mem());
        if (!b)
                return -ENOMEM;
        if (X509_NAME_print_ex(b, name, 0, flags) < 0)
                return -EBADMSG;
        len = BIO_get_mem_data(b, &p);
        if (len < 0)
                return -EBADMSG;
        /* The BIO's bytes have no NUL after them: no str*() on them. */
        s = malloc((size_t) len + 1);
        if (!s)
                return -ENOMEM;
        if (len > 0)
                memcpy(s, p, (size_t) len);
        s[len] = 0;
        *ret = s;
        return 0;
}

static int serial_to_string(const ASN1_INTEGER *serial, char **ret) {
        const unsigned char *p = ASN1_STRING_get0_data(serial);
        int n = ASN1_STRING_length(serial);
        bool negative = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
        _cleanup_free_ char *hex = NULL;
        char *s;

        if (n <= 0)
                return -EBADMSG;
        hex = hex_encode(p, (size_t) n);
        if (!hex)
                return -ENOMEM;
        if (asprintf(&s, "%s%s", negative ? "-" : "", hex) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int time_to_time_t(const ASN1_TIME *t, time_t *ret) {
        struct tm tm = {};
        time_t v;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return -EBADMSG;
        v = timegm(&tm);
        if (v == (time_t) -1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static const char *curve_name(const char *group) {
        static const struct {
                const char *group, *name;
        } table[] = {
                { "prime256v1", "P-256" },
                { "secp384r1", "P-384" },
                { "secp521r1", "P-521" },
                { "SM2", "SM2" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcmp(table[i].group, group) == 0)
                        return table[i].name;
        return group;
}

/* A key OpenSSL cannot decode, going by the algorithm's OID alone. Some
 * Chinese CAs name SM2 itself (1.2.156.10197.1.301) as the algorithm,
 * without the id-ecPublicKey and curve parameters OpenSSL expects. */
static int undecoded_key_info(X509 *x, X509Info *i) {
        ASN1_OBJECT *alg = NULL;

        if (X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, X509_get_X509_PUBKEY(x)) != 1 || !alg)
                return -EBADMSG;
        if (OBJ_obj2nid(alg) != NID_sm2) {
                i->key_type = "unknown";
                return 0;
        }
        i->key_type = "sm2";
        i->key_bits = 256;
        i->curve = strdup("SM2");
        return i->curve ? 0 : -ENOMEM;
}

static int key_info(X509 *x, X509Info *i) {
        static const struct {
                const char *openssl, *name;
        } types[] = {
                { "RSA", "rsa" }, { "RSA-PSS", "rsa-pss" }, { "SM2", "sm2" },
                { "EC", "ec" },   { "ED25519", "ed25519" }, { "ED448", "ed448" },
        };
        EVP_PKEY *k = X509_get0_pubkey(x);
        char group[80];

        if (!k)
                return undecoded_key_info(x, i);
        i->key_type = "unknown";
        for (size_t n = 0; n < ELEMENTSOF(types); n++)
                if (EVP_PKEY_is_a(k, types[n].openssl)) {
                        i->key_type = types[n].name;
                        break;
                }
        i->key_bits = (unsigned) EVP_PKEY_get_bits(k);

        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) == 1) {
                /* Later OpenSSL may call an SM2-curve key plain "EC". */
                if (strcmp(group, "SM2") == 0)
                        i->key_type = "sm2";
                i->curve = strdup(curve_name(group));
                if (!i->curve)
                        return -ENOMEM;
        }
        return 0;
}

static void key_usage(X509 *x, X509Info *i) {
        uint32_t ku = X509_get_key_usage(x);

        i->has_key_usage = (X509_get_extension_flags(x) & EXFLAG_KUSAGE) != 0;
        if (!i->has_key_usage) {
                i->usage = X509_USAGE_SIGNING | X509_USAGE_ENCRYPTION;
                return;
        }
        i->usage = 0;
        if (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))
                i->usage |= X509_USAGE_SIGNING;
        if (ku & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT | KU_KEY_AGREEMENT))
                i->usage |= X509_USAGE_ENCRYPTION;
}

static int sha256_hex(const void *p, size_t n, char out[static 65]) {
        _cleanup_free_ char *hex = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
                return -ENOMEM;
        hex = hex_encode(md, len);
        if (!hex)
                return -ENOMEM;
        memcpy(out, hex, 65);
        return 0;
}

static int digests(X509 *x, const void *der, size_t len, X509Info *i) {
        const unsigned char *name_der = NULL;
        size_t name_len = 0;
        int r;

        if (X509_NAME_get0_der(X509_get_issuer_name(x), &name_der, &name_len) != 1)
                return -EBADMSG;
        r = sha256_hex(name_der, name_len, i->issuer_hash);
        if (r < 0)
                return r;
        return sha256_hex(der, len, i->fingerprint);
}

static int fill(X509 *x, const void *der, size_t len, X509Info *i) {
        int r;

        r = name_to_string(X509_get_subject_name(x), &i->subject);
        if (r >= 0)
                r = name_to_string(X509_get_issuer_name(x), &i->issuer);
        if (r >= 0)
                r = serial_to_string(X509_get0_serialNumber(x), &i->serial);
        if (r >= 0)
                r = time_to_time_t(X509_get0_notBefore(x), &i->not_before);
        if (r >= 0)
                r = time_to_time_t(X509_get0_notAfter(x), &i->not_after);
        if (r >= 0)
                r = key_info(x, i);
        if (r >= 0)
                r = digests(x, der, len, i);
        if (r < 0)
                return r;

        i->signature_algorithm = OBJ_nid2sn(X509_get_signature_nid(x));
        key_usage(x, i);
        return 0;
}

int x509_info_parse(const void *der, size_t len, X509Info **ret) {
        _cleanup_(x509_info_freep) X509Info *i = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        const unsigned char *p = der;
        int r;

        if (!der || len == 0 || len > LONG_MAX || !ret)
                return -EINVAL;

        x = d2i_X509(NULL, &p, (long) len);
        if (!x || p != (const unsigned char *) der + len)
                r = -EBADMSG;
        else {
                i = calloc(1, sizeof *i);
                r = i ? fill(x, der, len, i) : -ENOMEM;
        }
        /* Leave no reasons on this thread's OpenSSL error queue for some
         * later, unrelated caller to find. */
        ERR_clear_error();
        if (r < 0)
                return r;

        *ret = TAKE_PTR(i);
        return 0;
}

X509Info *x509_info_free(X509Info *i) {
        if (i) {
                free(i->subject);
                free(i->issuer);
                free(i->serial);
                free(i->curve);
                free(i);
        }
        return NULL;
}

int64_t x509_info_days_left(const X509Info *i, time_t now) {
        int64_t d = (int64_t) i->not_after - (int64_t) now;

        return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

const char *x509_usage_to_string(X509Usage u) {
        switch (u & (X509_USAGE_SIGNING | X509_USAGE_ENCRYPTION)) {
        case X509_USAGE_SIGNING:
                return "signing";
        case X509_USAGE_ENCRYPTION:
                return "encryption";
        case X509_USAGE_SIGNING | X509_USAGE_ENCRYPTION:
                return "signing,encryption";
        default:
                return "";
        }
}
