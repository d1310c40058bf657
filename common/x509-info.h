/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What keyrenew shows and asks about a certificate, read from its DER with
 * OpenSSL 3. Strings are UTF-8 (names keep their Chinese characters) and
 * malloc()ed with the X509Info. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

typedef enum X509Usage {
        X509_USAGE_SIGNING = 1 << 0,    /* digitalSignature or nonRepudiation */
        X509_USAGE_ENCRYPTION = 1 << 1, /* keyEncipherment, dataEncipherment or keyAgreement */
} X509Usage;

typedef struct X509Info {
        /* RFC 2253 order and escaping (most specific first: "CN=张三,O=…,C=CN"),
         * except that UTF-8 is left as it is rather than \-escaped. Always
         * valid UTF-8: OpenSSL 3 refuses to decode a certificate with
         * bytes that are not UTF-8 in a UTF8String (such as GBK), and
         * converts the other string types, reading bytes above 7F in a
         * PrintableString or T61String as Latin-1. */
        char *subject;
        char *issuer;
        /* The serial number as lower-case hex of its big-endian bytes, as
         * DER holds them without the sign byte ("0a1b…"); "-" first for a
         * (non-conforming) negative one. */
        char *serial;
        time_t not_before;
        time_t not_after;
        /* "rsa", "rsa-pss", "ec", "sm2", "ed25519", "ed448" or "unknown"
         * (key_bits then 0). "sm2" is an EC key on curve SM2, or a key
         * whose algorithm OID is SM2's own (1.2.156.10197.1.301), which
         * OpenSSL cannot decode but some CAs issue. */
        const char *key_type;
        unsigned key_bits;
        /* "P-256", "P-384", "P-521", "SM2" or OpenSSL's group name for
         * EC-type keys; NULL for others. */
        char *curve;
        /* OpenSSL's short name of the signature algorithm, e.g.
         * "RSA-SHA256", "ecdsa-with-SHA256", "SM2-SM3" (1.2.156.10197.1.501). */
        const char *signature_algorithm;
        /* From the keyUsage extension; both bits when the certificate has
         * none (RFC 5280: the key may then be used for anything). */
        X509Usage usage;
        bool has_key_usage;
        /* The portal's key of a certificate is (issuer_hash, serial):
         * issuer_hash is SHA-256 over the DER encoding of the issuer Name,
         * exactly as it stands in the certificate, in lower-case hex. */
        char issuer_hash[65];
        /* SHA-256 over the whole certificate, lower-case hex. */
        char fingerprint[65];
} X509Info;

/* Parses one DER certificate that fills the buffer exactly. Returns 0,
 * -EBADMSG for anything that is not one (trailing bytes, garbage, a name or
 * date OpenSSL cannot read), -ENOMEM. A key of an unknown algorithm is no
 * reason to fail: key_type says "unknown". */
int x509_info_parse(const void *der, size_t len, X509Info **ret);
X509Info *x509_info_free(X509Info *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509Info *, x509_info_free)

/* Whole days from now until notAfter, rounded down: 0 on the last day,
 * negative once expired (-1 during the first day after). */
int64_t x509_info_days_left(const X509Info *i, time_t now);

/* "signing", "encryption", "signing,encryption" or "" (usage 0). */
const char *x509_usage_to_string(X509Usage u);
