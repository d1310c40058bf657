/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "piv-crypto.h"

#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "macro.h"
#include "piv-card.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER *, EVP_CIPHER_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)

static const char *curve_of(uint8_t alg) {
        return alg == PIV_ALG_ECCP256 ? "P-256" : alg == PIV_ALG_ECCP384 ? "P-384" : NULL;
}

int piv_key_generate(uint8_t alg, EVP_PKEY **ret) {
        EVP_PKEY *pkey;

        switch (alg) {
        case PIV_ALG_RSA1024:
        case PIV_ALG_RSA2048:
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) (alg == PIV_ALG_RSA1024 ? 1024 : 2048));
                break;
        case PIV_ALG_ECCP256:
        case PIV_ALG_ECCP384:
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve_of(alg));
                break;
        default:
                return -EINVAL;
        }
        if (!pkey)
                return -EIO;
        *ret = pkey;
        return 0;
}

uint8_t piv_key_algorithm(EVP_PKEY *pkey) {
        char group[32];

        if (EVP_PKEY_is_a(pkey, "RSA")) {
                switch (EVP_PKEY_get_bits(pkey)) {
                case 1024:
                        return PIV_ALG_RSA1024;
                case 2048:
                        return PIV_ALG_RSA2048;
                default:
                        return 0;
                }
        }
        if (EVP_PKEY_is_a(pkey, "EC") &&
            EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL)) {
                if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
                        return PIV_ALG_ECCP256;
                if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
                        return PIV_ALG_ECCP384;
        }
        return 0;
}

static int put_bn(EVP_PKEY *pkey, const char *param, uint32_t tag, TlvWriter *w) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        uint8_t buf[512];
        int n;

        if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
                return -EIO;
        n = BN_bn2bin(bn, buf);
        if (n < 0 || (size_t) n > sizeof buf)
                return -EIO;
        return tlv_put(w, tag, buf, (size_t) n);
}

int piv_key_put_public(EVP_PKEY *pkey, TlvWriter *w) {
        uint8_t point[133];
        size_t len;
        int r;

        if (EVP_PKEY_is_a(pkey, "RSA")) {
                r = put_bn(pkey, OSSL_PKEY_PARAM_RSA_N, 0x81, w);
                if (r < 0)
                        return r;
                return put_bn(pkey, OSSL_PKEY_PARAM_RSA_E, 0x82, w);
        }
        if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof point,
                                             &len))
                return -EIO;
        return tlv_put(w, 0x86, point, len);
}

int piv_key_sign(EVP_PKEY *pkey, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                 size_t *ret_len) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        bool rsa = EVP_PKEY_is_a(pkey, "RSA");
        size_t len = cap;

        if (!ctx)
                return -ENOMEM;
        if (rsa) {
                /* The client padded the block; the card only raises it to d. */
                if (in_len != (size_t) EVP_PKEY_get_size(pkey))
                        return -EINVAL;
                if (EVP_PKEY_decrypt_init(ctx) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) <= 0)
                        return -EIO;
                if (EVP_PKEY_decrypt(ctx, out, &len, in, in_len) <= 0)
                        return -EINVAL; /* a block not below the modulus */
        } else {
                if (in_len == 0 || in_len > 64)
                        return -EINVAL;
                if (EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_sign(ctx, out, &len, in, in_len) <= 0)
                        return -EIO;
        }
        *ret_len = len;
        return 0;
}

static int peer_key(EVP_PKEY *own, const uint8_t *point, size_t point_len, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        const char *curve = curve_of(piv_key_algorithm(own));
        EVP_PKEY *peer = NULL;

        if (!bld || !ctx || !curve)
                return -ENOMEM;
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len))
                return -ENOMEM;
        params = OSSL_PARAM_BLD_to_param(bld);
        if (!params)
                return -ENOMEM;
        if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0)
                return -EINVAL; /* not a point of this curve */
        *ret = peer;
        return 0;
}

int piv_key_ecdh(EVP_PKEY *pkey, const uint8_t *point, size_t point_len, uint8_t *out, size_t cap,
                 size_t *ret_len) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        size_t len = cap;
        int r;

        if (!EVP_PKEY_is_a(pkey, "EC") || point_len == 0 || point[0] != 0x04)
                return -EINVAL;
        r = peer_key(pkey, point, point_len, &peer);
        if (r < 0)
                return r;
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, peer) <= 0)
                return -EINVAL;
        if (EVP_PKEY_derive(ctx, out, &len) <= 0)
                return -EIO;
        *ret_len = len;
        return 0;
}

static const char *cipher_name(uint8_t alg) {
        switch (alg) {
        case PIV_ALG_3DES:
                return "DES-EDE3-ECB";
        case PIV_ALG_AES128:
                return "AES-128-ECB";
        case PIV_ALG_AES192:
                return "AES-192-ECB";
        case PIV_ALG_AES256:
                return "AES-256-ECB";
        default:
                return NULL;
        }
}

int piv_mgm_crypt(uint8_t alg, const uint8_t *key, size_t key_len, int encrypt, const uint8_t *in,
                  uint8_t *out) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        _cleanup_(EVP_CIPHER_freep) EVP_CIPHER *cipher = NULL;
        const char *name = cipher_name(alg);
        int block = (int) piv_mgm_block_size(alg), n = 0;

        if (!name || key_len != piv_mgm_key_size(alg))
                return -EINVAL;
        if (!ctx)
                return -ENOMEM;
        cipher = EVP_CIPHER_fetch(NULL, name, NULL);
        if (!cipher)
                return -EIO;
        if (!EVP_CipherInit_ex2(ctx, cipher, key, NULL, encrypt, NULL) ||
            !EVP_CIPHER_CTX_set_padding(ctx, 0) || !EVP_CipherUpdate(ctx, out, &n, in, block) || n != block)
                return -EIO;
        return 0;
}
