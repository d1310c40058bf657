/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-ca.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CA_ORGANIZATION "keyrenew tests"

typedef struct ExtSpec {
        int nid;
        const char *value;
} ExtSpec;

static const char *const ca_kind_names[_CA_KIND_MAX] = {
        [CA_RSA] = "rsa",
        [CA_EC] = "ec",
};

const char *ca_kind_to_string(CaKind k) {
        return k >= 0 && k < _CA_KIND_MAX ? ca_kind_names[k] : NULL;
}

int ca_kind_from_string(const char *s, CaKind *ret) {
        for (CaKind k = 0; k < _CA_KIND_MAX; k++)
                if (strcmp(s, ca_kind_names[k]) == 0) {
                        *ret = k;
                        return 0;
                }
        return -EINVAL;
}

static int generate_key(CaKind kind, EVP_PKEY **ret) {
        EVP_PKEY *k = kind == CA_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048)
                                     : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

        if (!k)
                return -EIO;
        *ret = k;
        return 0;
}

static int make_name(const char *common_name, X509_NAME **ret) {
        _cleanup_(X509_NAME_freep) X509_NAME *n = X509_NAME_new();

        if (!n ||
            !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *) CA_ORGANIZATION, -1,
                                        -1, 0) ||
            !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1, -1,
                                        0))
                return -EIO;
        *ret = TAKE_PTR(n);
        return 0;
}

/* issuer is NULL for a self-signed certificate. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        X509V3_CTX ctx;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
        ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
        if (!ext || !X509_add_ext(cert, ext, -1))
                return -EIO;
        return 0;
}

static int copy_exts(X509 *cert, X509 *from) {
        static const int nids[] = { NID_key_usage, NID_ext_key_usage, NID_subject_alt_name };

        for (size_t i = 0; i < ELEMENTSOF(nids); i++) {
                int idx = X509_get_ext_by_NID(from, nids[i], -1);

                if (idx >= 0 && !X509_add_ext(cert, X509_get_ext(from, idx), -1))
                        return -EIO;
        }
        return 0;
}

static int set_random_serial(X509 *cert) {
        _cleanup_(BN_freep) BIGNUM *bn = BN_new();

        /* 127 random bits with the top one set: always 16 bytes, positive. */
        if (!bn || !BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
            !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
                return -EIO;
        return 0;
}

/* issuer and issuer_key are NULL for a self-signed certificate, which then
 * is signed by key; copy_from may be NULL. */
static int cert_build(X509 *issuer, EVP_PKEY *issuer_key, const X509_NAME *subject, EVP_PKEY *key, int days,
                      const ExtSpec *exts, size_t n_exts, X509 *copy_from, X509 **ret) {
        _cleanup_(X509_freep) X509 *c = X509_new();
        int r;

        if (!c || !X509_set_version(c, X509_VERSION_3) || set_random_serial(c) < 0 ||
            /* A minute back: a client whose clock is slightly behind still accepts it. */
            !X509_gmtime_adj(X509_getm_notBefore(c), -60) ||
            !X509_time_adj_ex(X509_getm_notAfter(c), days, 0, NULL) || !X509_set_subject_name(c, subject) ||
            !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : subject) ||
            !X509_set_pubkey(c, key))
                return -EIO;
        r = add_ext(c, issuer, NID_subject_key_identifier, "hash");
        if (r >= 0 && issuer)
                r = add_ext(c, issuer, NID_authority_key_identifier, "keyid:always");
        for (size_t i = 0; r >= 0 && i < n_exts; i++)
                if (exts[i].value)
                        r = add_ext(c, issuer, exts[i].nid, exts[i].value);
        if (r >= 0 && copy_from)
                r = copy_exts(c, copy_from);
        if (r < 0)
                return r;
        if (X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) <= 0)
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}

int ca_issue(const PortalCa *ca, const CertSpec *spec, X509 **ret) {
        const ExtSpec exts[] = {
                { NID_basic_constraints, "critical,CA:FALSE" },
                { NID_key_usage, spec->copy_from ? NULL : spec->key_usage },
                { NID_ext_key_usage, spec->copy_from ? NULL : spec->ext_key_usage },
        };

        return cert_build(ca->cert, ca->key, spec->subject, spec->pubkey, spec->days, exts, ELEMENTSOF(exts),
                          spec->copy_from, ret);
}

static char *dir_file(const char *dir, const char *prefix, CaKind kind, const char *suffix) {
        char *p = NULL;

        if (asprintf(&p, "%s/%s%s%s%s", dir, prefix, kind < _CA_KIND_MAX ? "-" : "",
                     kind < _CA_KIND_MAX ? ca_kind_to_string(kind) : "", suffix) < 0)
                return NULL;
        return p;
}

static int create_one_ca(const char *dir, CaKind kind, int days, PortalCa *ca) {
        static const ExtSpec ca_exts[] = {
                { NID_basic_constraints, "critical,CA:TRUE" },
                { NID_key_usage, "critical,keyCertSign,cRLSign" },
        };
        static const ExtSpec cmp_exts[] = {
                { NID_basic_constraints, "critical,CA:FALSE" },
                { NID_key_usage, "critical,digitalSignature" },
        };
        _cleanup_(X509_NAME_freep) X509_NAME *ca_name = NULL, *cmp_name = NULL;
        char cn[64];
        int r;

        ca->kind = kind;
        snprintf(cn, sizeof(cn), "keyrenew Test CA (%s)", kind == CA_RSA ? "RSA" : "EC");
        r = make_name(cn, &ca_name);
        if (r >= 0)
                r = generate_key(kind, &ca->key);
        if (r >= 0)
                r = cert_build(NULL, NULL, ca_name, ca->key, days, ca_exts, ELEMENTSOF(ca_exts), NULL,
                               &ca->cert);
        if (r < 0)
                return r;
        snprintf(cn, sizeof(cn), "keyrenew Test CMP signer (%s)", kind == CA_RSA ? "RSA" : "EC");
        r = make_name(cn, &cmp_name);
        if (r >= 0)
                r = generate_key(kind, &ca->cmp_key);
        if (r >= 0)
                r = cert_build(ca->cert, ca->key, cmp_name, ca->cmp_key, days, cmp_exts,
                               ELEMENTSOF(cmp_exts), NULL, &ca->cmp_cert);
        if (r < 0)
                return r;

        struct {
                const char *prefix, *suffix;
                X509 *cert;
                EVP_PKEY *key;
        } files[] = {
                { "ca", ".pem", ca->cert, NULL },
                { "ca", ".key", NULL, ca->key },
                { "cmp", ".pem", ca->cmp_cert, NULL },
                { "cmp", ".key", NULL, ca->cmp_key },
        };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = dir_file(dir, files[i].prefix, kind, files[i].suffix);

                if (!p)
                        return -ENOMEM;
                r = files[i].cert ? pem_write_cert(p, files[i].cert) : pem_write_key(p, files[i].key);
        }
        return r;
}

static int create_tls(const char *dir, const PortalCa *ca, int days) {
        const ExtSpec exts[] = {
                { NID_basic_constraints, "critical,CA:FALSE" },
                { NID_key_usage, ca->kind == CA_RSA ? "critical,digitalSignature,keyEncipherment"
                                                    : "critical,digitalSignature" },
                { NID_ext_key_usage, "serverAuth" },
                { NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost" },
        };
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *cert_path = dir_file(dir, "tls", _CA_KIND_MAX, ".pem");
        _cleanup_free_ char *key_path = dir_file(dir, "tls", _CA_KIND_MAX, ".key");
        int r;

        if (!cert_path || !key_path)
                return -ENOMEM;
        r = make_name("keyrenew test portal", &name);
        if (r >= 0)
                r = generate_key(ca->kind, &key);
        if (r >= 0)
                r = cert_build(ca->cert, ca->key, name, key, days, exts, ELEMENTSOF(exts), NULL, &cert);
        if (r >= 0)
                r = pem_write_key(key_path, key);
        if (r >= 0)
                r = pem_write_cert(cert_path, cert);
        return r;
}

static int write_bundle(const char *dir, const PortalCas *cas) {
        _cleanup_free_ char *path = dir_file(dir, "ca-bundle", _CA_KIND_MAX, ".pem");
        _cleanup_fclose_ FILE *f = NULL;

        if (!path)
                return -ENOMEM;
        f = fopen(path, "we");
        if (!f)
                return negative_errno();
        for (CaKind k = 0; k < _CA_KIND_MAX; k++)
                if (!PEM_write_X509(f, cas->ca[k].cert))
                        return -EIO;
        if (fflush(f) != 0)
                return negative_errno();
        return 0;
}

int cas_create(const char *dir, CaKind tls_ca, int days) {
        _cleanup_free_ char *probe = dir_file(dir, "ca", CA_EC, ".pem");
        PortalCas cas = {};
        int r = 0;

        if (!probe)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        if (access(probe, F_OK) == 0)
                return -EEXIST;
        for (CaKind k = 0; r >= 0 && k < _CA_KIND_MAX; k++)
                r = create_one_ca(dir, k, days, &cas.ca[k]);
        if (r >= 0)
                r = create_tls(dir, &cas.ca[tls_ca], days);
        if (r >= 0)
                r = write_bundle(dir, &cas);
        cas_done(&cas);
        return r;
}

int cas_load(const char *dir, PortalCas *ret) {
        PortalCas cas = {};
        int r = 0;

        for (CaKind k = 0; r >= 0 && k < _CA_KIND_MAX; k++) {
                PortalCa *ca = &cas.ca[k];
                _cleanup_free_ char *cert = dir_file(dir, "ca", k, ".pem");
                _cleanup_free_ char *key = dir_file(dir, "ca", k, ".key");
                _cleanup_free_ char *cmp_cert = dir_file(dir, "cmp", k, ".pem");
                _cleanup_free_ char *cmp_key = dir_file(dir, "cmp", k, ".key");

                ca->kind = k;
                if (!cert || !key || !cmp_cert || !cmp_key) {
                        r = -ENOMEM;
                        break;
                }
                r = pem_read_cert(cert, &ca->cert);
                if (r >= 0)
                        r = pem_read_key(key, &ca->key);
                if (r >= 0)
                        r = pem_read_cert(cmp_cert, &ca->cmp_cert);
                if (r >= 0)
                        r = pem_read_key(cmp_key, &ca->cmp_key);
                if (r >= 0)
                        r = name_hash(X509_get_subject_name(ca->cert), ca->issuer_hash);
        }
        if (r < 0) {
                cas_done(&cas);
                return r;
        }
        *ret = cas;
        return 0;
}

void cas_done(PortalCas *cas) {
        for (CaKind k = 0; k < _CA_KIND_MAX; k++) {
                PortalCa *ca = &cas->ca[k];

                X509_free(ca->cert);
                EVP_PKEY_free(ca->key);
                X509_free(ca->cmp_cert);
                EVP_PKEY_free(ca->cmp_key);
                *ca = (PortalCa){};
        }
}

const PortalCa *cas_find(const PortalCas *cas, const char *issuer_hash) {
        for (CaKind k = 0; k < _CA_KIND_MAX; k++)
                if (strcmp(cas->ca[k].issuer_hash, issuer_hash) == 0)
                        return &cas->ca[k];
        return NULL;
}

const PortalCa *cas_find_issuer(const PortalCas *cas, X509 *cert) {
        for (CaKind k = 0; k < _CA_KIND_MAX; k++)
                if (X509_check_issued(cas->ca[k].cert, cert) == X509_V_OK &&
                    X509_verify(cert, cas->ca[k].key) == 1)
                        return &cas->ca[k];
        return NULL;
}

int ca_make_crl(const PortalCa *ca, long number, const CrlEntry *entries, size_t n, X509_CRL **ret) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = X509_CRL_new();
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *aki = NULL;
        ASN1_TIME *last = NULL, *next = NULL;
        ASN1_INTEGER *num = NULL;
        X509V3_CTX ctx;
        int r = -EIO;

        if (!crl || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
            !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)))
                return -EIO;
        last = X509_gmtime_adj(NULL, 0);
        next = X509_gmtime_adj(NULL, 24 * 3600);
        num = ASN1_INTEGER_new();
        if (!last || !next || !num || !X509_CRL_set1_lastUpdate(crl, last) ||
            !X509_CRL_set1_nextUpdate(crl, next) || !ASN1_INTEGER_set(num, number) ||
            !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
                goto finish;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
        aki = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        if (!aki || !X509_CRL_add_ext(crl, aki, -1))
                goto finish;
        for (size_t i = 0; i < n; i++) {
                X509_REVOKED *rev = X509_REVOKED_new();
                _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
                ASN1_TIME *when = ASN1_TIME_set(NULL, entries[i].when);
                ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
                bool ok = rev && when && reason && serial_from_string(entries[i].serial, &serial) >= 0 &&
                          X509_REVOKED_set_serialNumber(rev, serial) &&
                          X509_REVOKED_set_revocationDate(rev, when) &&
                          ASN1_ENUMERATED_set(reason, entries[i].reason) &&
                          X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) &&
                          X509_CRL_add0_revoked(crl, rev);

                ASN1_TIME_free(when);
                ASN1_ENUMERATED_free(reason);
                if (!ok) {
                        X509_REVOKED_free(rev);
                        goto finish;
                }
        }
        if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0)
                goto finish;
        *ret = TAKE_PTR(crl);
        r = 0;
finish:
        ASN1_TIME_free(last);
        ASN1_TIME_free(next);
        ASN1_INTEGER_free(num);
        return r;
}

static void sha256_hex(const void *data, size_t n, char ret[static HASH_HEX_SIZE]) {
        unsigned char md[SHA256_DIGEST_LENGTH];

        SHA256(data, n, md);
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
}

int name_hash(const X509_NAME *name, char ret[static HASH_HEX_SIZE]) {
        const unsigned char *der = NULL;
        size_t len = 0;

        if (!X509_NAME_get0_der(name, &der, &len))
                return -EIO;
        sha256_hex(der, len, ret);
        return 0;
}

int pubkey_hash(EVP_PKEY *key, char ret[static HASH_HEX_SIZE]) {
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(key, &der);

        if (len <= 0)
                return -EIO;
        sha256_hex(der, (size_t) len, ret);
        OPENSSL_free(der);
        return 0;
}

int serial_to_string(const ASN1_INTEGER *serial, char ret[static SERIAL_HEX_SIZE]) {
        _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex, *p, *digits;
        int r = 0;

        if (!bn)
                return -EIO;
        hex = BN_bn2hex(bn);
        if (!hex)
                return -EIO;
        digits = hex[0] == '-' ? hex + 1 : hex;
        p = digits;
        while (p[0] == '0' && p[1] != '\0')
                p++;
        if (strlen(p) > 40)
                r = -E2BIG;
        else {
                for (char *q = p; *q; q++)
                        if (*q >= 'A' && *q <= 'F')
                                *q = (char) (*q - 'A' + 'a');
                snprintf(ret, SERIAL_HEX_SIZE, "%s%s", digits != hex ? "-" : "", p);
        }
        OPENSSL_free(hex);
        return r;
}

int serial_from_string(const char *s, ASN1_INTEGER **ret) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        ASN1_INTEGER *i;

        if (BN_hex2bn(&bn, s) != (int) strlen(s))
                return -EINVAL;
        i = BN_to_ASN1_INTEGER(bn, NULL);
        if (!i)
                return -EIO;
        *ret = i;
        return 0;
}

int cert_get_id(X509 *cert, char ret_issuer_hash[static HASH_HEX_SIZE],
                char ret_serial[static SERIAL_HEX_SIZE]) {
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];
        int r;

        r = name_hash(X509_get_issuer_name(cert), hash);
        if (r >= 0)
                r = serial_to_string(X509_get0_serialNumber(cert), serial);
        if (r < 0)
                return r;
        memcpy(ret_issuer_hash, hash, sizeof(hash));
        memcpy(ret_serial, serial, sizeof(serial));
        return 0;
}

static bool is_lower_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int cert_id_parse(const char *s, char ret_issuer_hash[static HASH_HEX_SIZE],
                  char ret_serial[static SERIAL_HEX_SIZE]) {
        const char *serial;
        size_t n;

        for (size_t i = 0; i < HASH_HEX_SIZE - 1; i++)
                if (!is_lower_hex(s[i]))
                        return -EINVAL;
        if (s[HASH_HEX_SIZE - 1] != ':')
                return -EINVAL;
        serial = s + HASH_HEX_SIZE;
        n = strlen(serial);
        /* At most 20 bytes (RFC 5280): 40 digits after an optional sign. */
        if (n - (serial[0] == '-') > SERIAL_HEX_SIZE - 2)
                return -EINVAL;
        for (size_t i = serial[0] == '-' ? 1 : 0; i < n; i++)
                if (!is_lower_hex(serial[i]))
                        return -EINVAL;
        /* Exactly one spelling per number: no leading zeros, no "-0". */
        if (strcmp(serial, "0") != 0) {
                const char *digits = serial[0] == '-' ? serial + 1 : serial;

                if (digits[0] == '\0' || digits[0] == '0')
                        return -EINVAL;
        }
        memcpy(ret_issuer_hash, s, HASH_HEX_SIZE - 1);
        ret_issuer_hash[HASH_HEX_SIZE - 1] = '\0';
        memcpy(ret_serial, serial, n + 1);
        return 0;
}

int pem_read_cert(const char *path, X509 **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        X509 *c;

        if (!f)
                return negative_errno();
        c = PEM_read_X509(f, NULL, NULL, NULL);
        if (!c)
                return -EBADMSG;
        *ret = c;
        return 0;
}

int pem_read_key(const char *path, EVP_PKEY **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        EVP_PKEY *k;

        if (!f)
                return negative_errno();
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!k)
                return -EBADMSG;
        *ret = k;
        return 0;
}

int pem_write_cert(const char *path, X509 *cert) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return negative_errno();
        if (!PEM_write_X509(f, cert))
                return -EIO;
        return fflush(f) == 0 ? 0 : negative_errno();
}

int pem_write_key(const char *path, EVP_PKEY *key) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        _cleanup_fclose_ FILE *f = NULL;

        if (fd < 0)
                return negative_errno();
        f = fdopen(fd, "w");
        if (!f)
                return negative_errno();
        TAKE_FD(fd);
        if (!PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
                return -EIO;
        return fflush(f) == 0 ? 0 : negative_errno();
}

int cert_to_pem(X509 *cert, char **ret) {
        _cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data, *s;
        long n;

        if (!b || !PEM_write_bio_X509(b, cert))
                return -EIO;
        n = BIO_get_mem_data(b, &data);
        s = strndup(data, (size_t) n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int time_to_rfc3339(time_t t, char ret[static 21]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(ret, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -ERANGE;
        return 0;
}

int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret) {
        struct tm tm;

        if (!ASN1_TIME_to_tm(t, &tm))
                return -EINVAL;
        *ret = timegm(&tm);
        return 0;
}
