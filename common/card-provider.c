/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "card-provider.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "rsa-pad.h"

/* How card_key_new() hands the key's reference to the KEYMGMT's import:
 * in-process only, so the struct itself travels in an octet string. */
#define PARAM_CARD_KEY "keyrenew-card-key"
#define PROPERTIES "provider=" CARD_PROVIDER_NAME

#define SIG_MAX 512u

typedef struct ProvCtx {
        OSSL_LIB_CTX *libctx;
        const OSSL_CORE_HANDLE *handle;
        OSSL_FUNC_core_new_error_fn *new_error;
        OSSL_FUNC_core_vset_error_fn *vset_error;
} ProvCtx;

typedef struct CardKeyRef {
        Token *token;
        unsigned slot;
        TokenAlgorithm alg;
        EVP_PKEY *pub;
        const char *pin; /* the caller's, verified before: for keys that want a fresh VERIFY */
} CardKeyRef;

typedef struct CardKey {
        ProvCtx *prov;
        CardKeyRef ref; /* ref.pub: a reference of our own */
} CardKey;

typedef struct CardSig {
        ProvCtx *prov;
        CardKey *key;
        EVP_MD *md;
        EVP_MD_CTX *mdctx;
        int pad_mode; /* RSA: RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
        EVP_MD *mgf1_md;
        int saltlen; /* RSA_PSS_SALTLEN_DIGEST, _MAX, _AUTO or bytes */
} CardSig;

static void raise_error(ProvCtx *p, int error, const char *fmt, ...) {
        va_list ap;

        p->new_error(p->handle);
        va_start(ap, fmt);
        p->vset_error(p->handle, error < 0 ? -error : error, fmt, ap);
        va_end(ap);
}

/* ---- KEYMGMT ---- */

static void *key_new(void *provctx) {
        CardKey *k = calloc(1, sizeof *k);

        if (k)
                k->prov = provctx;
        return k;
}

static void key_free(void *keydata) {
        CardKey *k = keydata;

        if (k) {
                EVP_PKEY_free(k->ref.pub);
                free(k);
        }
}

static int key_import(void *keydata, int selection, const OSSL_PARAM params[]) {
        const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, PARAM_CARD_KEY);
        CardKey *k = keydata;
        CardKeyRef ref;

        if (!k || !p || p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != sizeof ref)
                return 0;
        memcpy(&ref, p->data, sizeof ref);
        if (!ref.token || !ref.pub || !EVP_PKEY_up_ref(ref.pub))
                return 0;
        EVP_PKEY_free(k->ref.pub);
        k->ref = ref;
        return 1;
}

static const OSSL_PARAM *key_import_types(int selection) {
        static const OSSL_PARAM types[] = {
                OSSL_PARAM_octet_string(PARAM_CARD_KEY, NULL, 0),
                OSSL_PARAM_END,
        };

        return types;
}

/* The card holds the private half: a key made by card_key_new() has it
 * all, as far as OpenSSL needs to know. */
static int key_has(const void *keydata, int selection) {
        const CardKey *k = keydata;

        return k && k->ref.pub;
}

static int key_match(const void *keydata1, const void *keydata2, int selection) {
        const CardKey *a = keydata1, *b = keydata2;

        return a->ref.pub && b->ref.pub && EVP_PKEY_eq(a->ref.pub, b->ref.pub) == 1;
}

/* Size, bits, default digest, group, the public numbers: as the public
 * key (the default provider's) says. */
static int key_get_params(void *keydata, OSSL_PARAM params[]) {
        CardKey *k = keydata;

        return k->ref.pub && EVP_PKEY_get_params(k->ref.pub, params);
}

static const OSSL_PARAM *key_gettable_params(void *provctx) {
        static const OSSL_PARAM gettable[] = {
                OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
                OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
                OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
                OSSL_PARAM_END,
        };

        return gettable;
}

/* Public parts only: a request for the private key fails, which makes
 * OpenSSL sign with this provider rather than with a copy elsewhere. */
static int key_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg) {
        CardKey *k = keydata;
        OSSL_PARAM *params = NULL;
        int r;

        if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) || !k->ref.pub)
                return 0;
        if (EVP_PKEY_todata(k->ref.pub, EVP_PKEY_PUBLIC_KEY, &params) != 1)
                return 0;
        r = cb(params, cbarg);
        OSSL_PARAM_free(params);
        return r;
}

static const OSSL_PARAM *rsa_export_types(int selection) {
        static const OSSL_PARAM types[] = {
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
                OSSL_PARAM_END,
        };

        return selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY ? NULL : types;
}

static const OSSL_PARAM *ec_export_types(int selection) {
        static const OSSL_PARAM types[] = {
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                OSSL_PARAM_END,
        };

        return selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY ? NULL : types;
}

static const char *rsa_query_operation_name(int operation_id) {
        return "RSA";
}

static const char *ec_query_operation_name(int operation_id) {
        return "ECDSA";
}

#define KEYMGMT_COMMON                                                                         \
        { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void)) key_new },                                   \
                { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void)) key_free },                         \
                { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void)) key_import },                     \
                { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void)) key_import_types },         \
                { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void)) key_has },                           \
                { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void)) key_match },                       \
                { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void)) key_get_params },             \
                { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void)) key_gettable_params }, { \
                OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void)) key_export                          \
        }

static const OSSL_DISPATCH rsa_keymgmt[] = {
        KEYMGMT_COMMON,
        { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void)) rsa_export_types },
        { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void)) rsa_query_operation_name },
        { 0, NULL },
};

static const OSSL_DISPATCH ec_keymgmt[] = {
        KEYMGMT_COMMON,
        { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void)) ec_export_types },
        { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void)) ec_query_operation_name },
        { 0, NULL },
};

/* ---- SIGNATURE ---- */

static void *sig_newctx(void *provctx, const char *propq) {
        CardSig *s = calloc(1, sizeof *s);

        if (s) {
                s->prov = provctx;
                s->pad_mode = RSA_PKCS1_PADDING;
                s->saltlen = RSA_PSS_SALTLEN_DIGEST;
        }
        return s;
}

static void sig_freectx(void *ctx) {
        CardSig *s = ctx;

        if (s) {
                EVP_MD_free(s->md);
                EVP_MD_free(s->mgf1_md);
                EVP_MD_CTX_free(s->mdctx);
                free(s);
        }
}

static void *sig_dupctx(void *ctx) {
        CardSig *s = ctx, *d = calloc(1, sizeof *d);

        if (!d)
                return NULL;
        *d = *s;
        d->md = d->mgf1_md = NULL;
        d->mdctx = NULL;
        if ((s->md && (!EVP_MD_up_ref(s->md) || !(d->md = s->md))) ||
            (s->mgf1_md && (!EVP_MD_up_ref(s->mgf1_md) || !(d->mgf1_md = s->mgf1_md))) ||
            (s->mdctx && (!(d->mdctx = EVP_MD_CTX_new()) || !EVP_MD_CTX_copy_ex(d->mdctx, s->mdctx)))) {
                sig_freectx(d);
                return NULL;
        }
        return d;
}

static bool is_rsa(const CardSig *s) {
        return s->key->ref.alg == TOKEN_ALG_RSA2048;
}

static int set_md(CardSig *s, EVP_MD **where, const char *name) {
        EVP_MD *md = EVP_MD_fetch(s->prov->libctx, name, NULL);

        if (!md)
                return 0;
        EVP_MD_free(*where);
        *where = md;
        return 1;
}

static int set_pad_mode(CardSig *s, const OSSL_PARAM *p) {
        const char *name = NULL;
        int mode = 0;

        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
                if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
                        return 0;
                mode = strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
                       : strcmp(name, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0   ? RSA_PKCS1_PSS_PADDING
                                                                         : 0;
        } else if (!OSSL_PARAM_get_int(p, &mode))
                return 0;
        /* The card does raw RSA; only the encodings written here exist. */
        if (mode != RSA_PKCS1_PADDING && mode != RSA_PKCS1_PSS_PADDING)
                return 0;
        s->pad_mode = mode;
        return 1;
}

static int set_saltlen(CardSig *s, const OSSL_PARAM *p) {
        const char *name = NULL;
        int len = 0;

        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
                if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
                        return 0;
                if (strcmp(name, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
                        len = RSA_PSS_SALTLEN_DIGEST;
                else if (strcmp(name, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0 ||
                         strcmp(name, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
                        len = RSA_PSS_SALTLEN_MAX;
                else
                        len = atoi(name);
        } else if (!OSSL_PARAM_get_int(p, &len))
                return 0;
        if (len == RSA_PSS_SALTLEN_AUTO)
                len = RSA_PSS_SALTLEN_MAX;
        if (len < RSA_PSS_SALTLEN_MAX)
                return 0;
        s->saltlen = len;
        return 1;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[]) {
        CardSig *s = ctx;
        const OSSL_PARAM *p;
        const char *name = NULL;

        if (!params)
                return 1;
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
        if (p && (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(s, &s->md, name)))
                return 0;
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
        if (p && !set_pad_mode(s, p))
                return 0;
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
        if (p && !set_saltlen(s, p))
                return 0;
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
        if (p && (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(s, &s->mgf1_md, name)))
                return 0;
        return 1;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *ctx, void *provctx) {
        static const OSSL_PARAM settable[] = {
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
                OSSL_PARAM_END,
        };

        return settable;
}

static int hash_size(const CardSig *s) {
        return s->md ? EVP_MD_get_size(s->md) : 0;
}

/* The salt in bytes: RSA_PSS_SALTLEN_MAX is what the modulus leaves. */
static int salt_bytes(const CardSig *s) {
        int em_len = (EVP_PKEY_get_bits(s->key->ref.pub) - 1 + 7) / 8;

        if (s->saltlen == RSA_PSS_SALTLEN_DIGEST)
                return hash_size(s);
        if (s->saltlen == RSA_PSS_SALTLEN_MAX)
                return em_len - hash_size(s) - 2;
        return s->saltlen;
}

static X509_ALGOR *md_algor(const EVP_MD *md) {
        X509_ALGOR *a = X509_ALGOR_new();

        if (a)
                X509_ALGOR_set_md(a, md);
        return a;
}

/* RSASSA-PSS-params (RFC 4055): hash, MGF1 with its hash, salt length;
 * SHA-1 (the defaults, which DER would leave out) is not offered. */
static int pss_algorithm(const CardSig *s, X509_ALGOR *ret) {
        const EVP_MD *mgf1 = s->mgf1_md ? s->mgf1_md : s->md;
        RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
        X509_ALGOR *mgf1_hash = NULL;
        ASN1_STRING *mgf1_param = NULL, *packed = NULL;
        int salt = salt_bytes(s), ok = 0;

        if (pss && !EVP_MD_is_a(s->md, "SHA1") && !EVP_MD_is_a(mgf1, "SHA1") &&
            (pss->hashAlgorithm = md_algor(s->md)) && (pss->maskGenAlgorithm = X509_ALGOR_new()) &&
            (mgf1_hash = md_algor(mgf1)) &&
            (mgf1_param = ASN1_item_pack(mgf1_hash, ASN1_ITEM_rptr(X509_ALGOR), NULL)) &&
            X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, mgf1_param)) {
                mgf1_param = NULL;
                if ((salt == 20 ||
                     ((pss->saltLength = ASN1_INTEGER_new()) && ASN1_INTEGER_set(pss->saltLength, salt))) &&
                    (packed = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL)) &&
                    X509_ALGOR_set0(ret, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, packed)) {
                        packed = NULL;
                        ok = 1;
                }
        }
        ASN1_STRING_free(packed);
        ASN1_STRING_free(mgf1_param);
        X509_ALGOR_free(mgf1_hash);
        RSA_PSS_PARAMS_free(pss);
        return ok;
}

/* The signature's AlgorithmIdentifier, DER: OpenSSL asks a provider's
 * key for it when signing a CSR, a certificate or a CMP message. */
static int put_algorithm_id(const CardSig *s, OSSL_PARAM *p) {
        X509_ALGOR *a = X509_ALGOR_new();
        unsigned char *der = NULL;
        int nid = NID_undef, len, ok = 0;

        if (!a || !s->md)
                ok = 0;
        else if (is_rsa(s) && s->pad_mode == RSA_PKCS1_PSS_PADDING)
                ok = pss_algorithm(s, a);
        else
                ok = OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(s->md),
                                            is_rsa(s) ? EVP_PKEY_RSA : EVP_PKEY_EC) &&
                     X509_ALGOR_set0(a, OBJ_nid2obj(nid), is_rsa(s) ? V_ASN1_NULL : V_ASN1_UNDEF, NULL);
        if (ok) {
                len = i2d_X509_ALGOR(a, &der);
                ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t) len);
        }
        OPENSSL_free(der);
        X509_ALGOR_free(a);
        return ok;
}

static int sig_get_ctx_params(void *ctx, OSSL_PARAM params[]) {
        CardSig *s = ctx;
        OSSL_PARAM *p;

        if (!s->key)
                return 0;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
        if (p && !put_algorithm_id(s, p))
                return 0;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
        if (p && s->md && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(s->md)))
                return 0;
        if (!is_rsa(s))
                return 1;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
        if (p && !OSSL_PARAM_set_int(p, s->pad_mode))
                return 0;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
        if (p && !OSSL_PARAM_set_int(p, salt_bytes(s)))
                return 0;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
        if (p && (s->mgf1_md || s->md) &&
            !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(s->mgf1_md ? s->mgf1_md : s->md)))
                return 0;
        return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *ctx, void *provctx) {
        static const OSSL_PARAM gettable[] = {
                OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
                OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL),
                OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
                OSSL_PARAM_END,
        };

        return gettable;
}

static int sig_sign_init(void *ctx, void *keydata, const OSSL_PARAM params[]) {
        CardSig *s = ctx;

        if (!keydata || !((CardKey *) keydata)->ref.pub)
                return 0;
        s->key = keydata;
        return sig_set_ctx_params(s, params);
}

/* A key whose PIN policy is "always" (9C by default) answers a signature
 * with -EACCES until the PIN is verified again right before it: with the
 * PIN the caller verified already, do that once. This is not a guess at
 * a PIN (the same one the card took), so it costs no try when right. */
static int card_sign(const CardKeyRef *k, const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len) {
        int r = token_sign(k->token, k->slot, k->alg, in, len, ret, ret_len);

        if (r == -EACCES && k->pin) {
                r = token_verify_pin(k->token, k->pin, NULL);
                if (r >= 0)
                        r = token_sign(k->token, k->slot, k->alg, in, len, ret, ret_len);
        }
        return r;
}

/* The card's operation on a hash: encoded here for RSA, as it is for
 * ECDSA. */
static int sign_hash(CardSig *s, unsigned char *sig, size_t *siglen, size_t sigsize,
                     const unsigned char *hash, size_t hash_len) {
        const CardKeyRef *k = &s->key->ref;
        _cleanup_free_ uint8_t *out = NULL;
        uint8_t block[SIG_MAX];
        size_t block_len = (size_t) EVP_PKEY_get_size(k->pub), n = 0;
        const char *md = s->md ? EVP_MD_get0_name(s->md) : NULL;
        int r = 0;

        if (is_rsa(s)) {
                if (!md || block_len > sizeof block)
                        r = -EINVAL;
                else if (s->pad_mode == RSA_PKCS1_PSS_PADDING)
                        r = rsa_pad_pss(md, s->mgf1_md ? EVP_MD_get0_name(s->mgf1_md) : md,
                                        (size_t) salt_bytes(s), hash, hash_len,
                                        (unsigned) EVP_PKEY_get_bits(k->pub), block, block_len);
                else
                        r = rsa_pad_pkcs1(md, hash, hash_len, block, block_len);
                if (r >= 0)
                        r = card_sign(k, block, block_len, &out, &n);
        } else
                r = card_sign(k, hash, hash_len, &out, &n);
        if (r >= 0 && n > sigsize)
                r = -ENOBUFS;
        if (r < 0) {
                raise_error(s->prov, r, "card signature in slot %02x: %s", k->slot, strerror(-r));
                return 0;
        }
        memcpy(sig, out, n);
        *siglen = n;
        return 1;
}

static int sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize, const unsigned char *tbs,
                    size_t tbslen) {
        CardSig *s = ctx;

        if (!sig) {
                *siglen = (size_t) EVP_PKEY_get_size(s->key->ref.pub);
                return 1;
        }
        if (s->md && tbslen != (size_t) hash_size(s))
                return 0;
        return sign_hash(s, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_digest_sign_init(void *ctx, const char *mdname, void *keydata, const OSSL_PARAM params[]) {
        CardSig *s = ctx;

        if (!sig_sign_init(ctx, keydata, params))
                return 0;
        if (!set_md(s, &s->md, mdname ? mdname : "SHA256"))
                return 0;
        if (!s->mdctx && !(s->mdctx = EVP_MD_CTX_new()))
                return 0;
        return EVP_DigestInit_ex2(s->mdctx, s->md, NULL);
}

static int sig_digest_sign_update(void *ctx, const unsigned char *data, size_t len) {
        CardSig *s = ctx;

        return s->mdctx && EVP_DigestUpdate(s->mdctx, data, len);
}

static int sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize) {
        CardSig *s = ctx;
        unsigned char hash[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        if (!s->mdctx)
                return 0;
        if (!sig) {
                *siglen = (size_t) EVP_PKEY_get_size(s->key->ref.pub);
                return 1;
        }
        if (!EVP_DigestFinal_ex(s->mdctx, hash, &len))
                return 0;
        return sign_hash(s, sig, siglen, sigsize, hash, len);
}

/* Verification needs no card: the default provider does it with the
 * public key. A certificate or CSR built with X509_set_pubkey() on a card
 * key holds that key as its public key, so this is what checks it. PSS
 * salts of any length are accepted. */
static int verify_hash(CardSig *s, const unsigned char *sig, size_t siglen, const unsigned char *hash,
                       size_t hash_len) {
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(s->prov->libctx, s->key->ref.pub, NULL);
        int ok;

        ok = pctx && EVP_PKEY_verify_init(pctx) == 1 &&
             (!s->md || EVP_PKEY_CTX_set_signature_md(pctx, s->md) == 1) &&
             (!is_rsa(s) || EVP_PKEY_CTX_set_rsa_padding(pctx, s->pad_mode) == 1) &&
             (!is_rsa(s) || s->pad_mode != RSA_PKCS1_PSS_PADDING ||
              (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1 &&
               (!s->mgf1_md || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, s->mgf1_md) == 1))) &&
             EVP_PKEY_verify(pctx, sig, siglen, hash, hash_len) == 1;
        EVP_PKEY_CTX_free(pctx);
        return ok;
}

static int sig_verify(void *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                      size_t tbslen) {
        return verify_hash(ctx, sig, siglen, tbs, tbslen);
}

static int sig_digest_verify_final(void *ctx, const unsigned char *sig, size_t siglen) {
        CardSig *s = ctx;
        unsigned char hash[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        if (!s->mdctx || !EVP_DigestFinal_ex(s->mdctx, hash, &len))
                return 0;
        return verify_hash(s, sig, siglen, hash, len);
}

static const OSSL_DISPATCH signature[] = {
        { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void)) sig_newctx },
        { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void)) sig_freectx },
        { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void)) sig_dupctx },
        { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void)) sig_sign_init },
        { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void)) sig_sign },
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void)) sig_digest_sign_init },
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void)) sig_digest_sign_update },
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void)) sig_digest_sign_final },
        { OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void)) sig_sign_init },
        { OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void)) sig_verify },
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void)) sig_digest_sign_init },
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void)) sig_digest_sign_update },
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void)) sig_digest_verify_final },
        { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void)) sig_get_ctx_params },
        { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void)) sig_gettable_ctx_params },
        { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void)) sig_set_ctx_params },
        { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void)) sig_settable_ctx_params },
        { 0, NULL },
};

/* ---- the provider ---- */

static const OSSL_ALGORITHM keymgmt_algorithms[] = {
        { "RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPERTIES, rsa_keymgmt, "RSA key on a card" },
        { "EC:id-ecPublicKey:1.2.840.10045.2.1", PROPERTIES, ec_keymgmt, "EC key on a card" },
        { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM signature_algorithms[] = {
        { "RSA:rsaEncryption:1.2.840.113549.1.1.1", PROPERTIES, signature, "RSA signature by a card" },
        { "ECDSA", PROPERTIES, signature, "ECDSA signature by a card" },
        { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id, int *no_cache) {
        *no_cache = 0;
        switch (operation_id) {
        case OSSL_OP_KEYMGMT:
                return keymgmt_algorithms;
        case OSSL_OP_SIGNATURE:
                return signature_algorithms;
        default:
                return NULL;
        }
}

static void provider_teardown(void *provctx) {
        free(provctx);
}

static const OSSL_DISPATCH provider_functions[] = {
        { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void)) provider_query },
        { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void)) provider_teardown },
        { 0, NULL },
};

static int provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                         void **provctx) {
        OSSL_FUNC_core_get_libctx_fn *get_libctx = NULL;
        ProvCtx *p = calloc(1, sizeof *p);

        if (!p)
                return 0;
        for (; in->function_id != 0; in++)
                switch (in->function_id) {
                case OSSL_FUNC_CORE_GET_LIBCTX:
                        get_libctx = OSSL_FUNC_core_get_libctx(in);
                        break;
                case OSSL_FUNC_CORE_NEW_ERROR:
                        p->new_error = OSSL_FUNC_core_new_error(in);
                        break;
                case OSSL_FUNC_CORE_VSET_ERROR:
                        p->vset_error = OSSL_FUNC_core_vset_error(in);
                        break;
                }
        if (!get_libctx || !p->new_error || !p->vset_error) {
                free(p);
                return 0;
        }
        /* A built-in provider lives in the library context that loaded
         * it: its "core context" is that OSSL_LIB_CTX. */
        p->libctx = (OSSL_LIB_CTX *) get_libctx(handle);
        p->handle = handle;
        *out = provider_functions;
        *provctx = p;
        return 1;
}

int card_provider_load(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **ret) {
        OSSL_PROVIDER *prov;

        if (!ret)
                return -EINVAL;
        if (!OSSL_PROVIDER_add_builtin(libctx, CARD_PROVIDER_NAME, provider_init))
                return -ENOMEM;
        /* Keep the fallback: loading any provider explicitly would
         * otherwise leave the context without the default one. */
        prov = OSSL_PROVIDER_try_load(libctx, CARD_PROVIDER_NAME, 1);
        if (!prov)
                return -EIO;
        if (!EVP_set_default_properties(libctx, "?provider!=" CARD_PROVIDER_NAME)) {
                (void) OSSL_PROVIDER_unload(prov);
                return -ENOMEM;
        }
        *ret = prov;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)

int card_key_algorithm(EVP_PKEY *pub, TokenAlgorithm *ret) {
        char group[32];

        if (EVP_PKEY_is_a(pub, "RSA") && EVP_PKEY_get_bits(pub) == 2048)
                *ret = TOKEN_ALG_RSA2048;
        else if (EVP_PKEY_is_a(pub, "EC") &&
                 EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                                NULL) &&
                 (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
                *ret = TOKEN_ALG_ECCP256;
        else if (EVP_PKEY_is_a(pub, "EC") &&
                 EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                                NULL) &&
                 (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0))
                *ret = TOKEN_ALG_ECCP384;
        else
                return -EINVAL;
        return 0;
}

int card_key_new(OSSL_LIB_CTX *libctx, Token *t, unsigned slot, EVP_PKEY *public_key, EVP_PKEY **ret) {
        return card_key_new_with_pin(libctx, t, slot, public_key, NULL, ret);
}

int card_key_new_with_pin(OSSL_LIB_CTX *libctx, Token *t, unsigned slot, EVP_PKEY *public_key,
                          const char *pin, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        CardKeyRef ref = { .token = t, .slot = slot, .pub = public_key, .pin = pin };
        OSSL_PARAM params[] = {
                OSSL_PARAM_octet_string(PARAM_CARD_KEY, &ref, sizeof ref),
                OSSL_PARAM_END,
        };
        EVP_PKEY *pkey = NULL;
        int r;

        if (!t || !public_key || !ret)
                return -EINVAL;
        r = card_key_algorithm(public_key, &ref.alg);
        if (r < 0)
                return r;
        if (!OSSL_PROVIDER_available(libctx, CARD_PROVIDER_NAME))
                return -ENXIO;

        ctx = EVP_PKEY_CTX_new_from_name(libctx, ref.alg == TOKEN_ALG_RSA2048 ? "RSA" : "EC", PROPERTIES);
        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1)
                return -EIO;
        *ret = pkey;
        return 0;
}

int card_key_check(EVP_PKEY *key, EVP_PKEY *public_key) {
        unsigned char challenge[32], sig[SIG_MAX];
        size_t sig_len = sizeof sig;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok;

        ok = ctx && RAND_bytes(challenge, sizeof challenge) == 1 &&
             EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, challenge, sizeof challenge) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -EIO;
        ctx = EVP_MD_CTX_new();
        ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, public_key) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, challenge, sizeof challenge) == 1;
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -EKEYREJECTED;
}
