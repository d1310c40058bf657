/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The reference portal's test CAs: one RSA and one EC CA, each with a CMP
 * signing certificate, plus the portal's TLS certificate, all kept as PEM
 * files in the portal's directory. Functions return 0 or a negative errno
 * (-EIO for an OpenSSL failure, whose details stay on OpenSSL's error queue);
 * they never log. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <time.h>

#include "macro.h"

/* 64 hex digits and a NUL. */
#define HASH_HEX_SIZE 65
/* A serial of up to 20 bytes (RFC 5280) as hex, a sign and a NUL. */
#define SERIAL_HEX_SIZE 42
/* ISSUER_HASH:SERIAL and a NUL. */
#define CERT_ID_SIZE (HASH_HEX_SIZE + SERIAL_HEX_SIZE)

typedef enum CaKind {
        CA_RSA,
        CA_EC,
        _CA_KIND_MAX,
} CaKind;

typedef struct PortalCa {
        CaKind kind;
        X509 *cert;
        EVP_PKEY *key;
        X509 *cmp_cert; /* signs the CMP answers about certificates this CA issued */
        EVP_PKEY *cmp_key;
        char issuer_hash[HASH_HEX_SIZE]; /* of the certificates this CA issues */
} PortalCa;

typedef struct PortalCas {
        PortalCa ca[_CA_KIND_MAX];
} PortalCas;

const char *ca_kind_to_string(CaKind k);
int ca_kind_from_string(const char *s, CaKind *ret);

/* Creates both CAs, their CMP signers and the TLS certificate (issued by
 * tls_ca, for 127.0.0.1, ::1 and localhost) in dir, valid for days days.
 * -EEXIST when dir already holds a CA. */
int cas_create(const char *dir, CaKind tls_ca, int days);
int cas_load(const char *dir, PortalCas *ret);
void cas_done(PortalCas *cas);
/* The CA whose certificates carry this issuer hash, or NULL. */
const PortalCa *cas_find(const PortalCas *cas, const char *issuer_hash);
/* The CA that signed cert (its signature verifies), or NULL. */
const PortalCa *cas_find_issuer(const PortalCas *cas, X509 *cert);

/* What a certificate issued for a customer contains besides its key. */
typedef struct CertSpec {
        const X509_NAME *subject;
        EVP_PKEY *pubkey;
        int days;
        const char *key_usage;     /* as openssl.cnf writes it, or NULL */
        const char *ext_key_usage; /* or NULL */
        X509 *copy_from;           /* a renewal: keyUsage, extendedKeyUsage, subjectAltName from here */
} CertSpec;

int ca_issue(const PortalCa *ca, const CertSpec *spec, X509 **ret);

typedef struct CrlEntry {
        char serial[SERIAL_HEX_SIZE];
        time_t when;
        int reason; /* CRL_REASON_* */
} CrlEntry;

int ca_make_crl(const PortalCa *ca, long number, const CrlEntry *entries, size_t n, X509_CRL **ret);

/* SHA-256 of the DER of name, as the portal protocol's issuer_hash. */
int name_hash(const X509_NAME *name, char ret[static HASH_HEX_SIZE]);
/* The protocol's serial text: lower-case hex without leading zeros. */
int serial_to_string(const ASN1_INTEGER *serial, char ret[static SERIAL_HEX_SIZE]);
int serial_from_string(const char *s, ASN1_INTEGER **ret);
int cert_get_id(X509 *cert, char ret_issuer_hash[static HASH_HEX_SIZE],
                char ret_serial[static SERIAL_HEX_SIZE]);
/* Checks and splits ISSUER_HASH:SERIAL as the protocol writes it; -EINVAL
 * when it is not written exactly so. */
int cert_id_parse(const char *s, char ret_issuer_hash[static HASH_HEX_SIZE],
                  char ret_serial[static SERIAL_HEX_SIZE]);
/* SHA-256 of the SubjectPublicKeyInfo, to compare keys. */
int pubkey_hash(EVP_PKEY *key, char ret[static HASH_HEX_SIZE]);

int pem_read_cert(const char *path, X509 **ret);
int pem_read_key(const char *path, EVP_PKEY **ret);
int pem_write_cert(const char *path, X509 *cert);
/* Writes an unencrypted PKCS#8 key readable by its owner only. */
int pem_write_key(const char *path, EVP_PKEY *key);
/* Writes a certificate as PEM to a malloc()ed string. */
int cert_to_pem(X509 *cert, char **ret);

int time_to_rfc3339(time_t t, char ret[static 21]);
/* An ASN1_TIME as seconds since the epoch. */
int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret);

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_CRL *, X509_CRL_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_INTEGER *, ASN1_INTEGER_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)
