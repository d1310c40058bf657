/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GENERATE ASYMMETRIC KEY PAIR and the public key it answers with. */
#include <errno.h>
#include <stdlib.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "apdu.h"
#include "piv-internal.h"
#include "piv.h"
#include "tlv.h"

#define INS_GENERATE 0x47

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)

/* The builder keeps pointers to the numbers: they must live until
 * OSSL_PARAM_BLD_to_param(), done here. */
static int build_rsa(OSSL_PARAM_BLD *bld, const uint8_t *buf, size_t len, OSSL_PARAM **ret) {
        _cleanup_(BN_freep) BIGNUM *n = NULL, *e = NULL;
        Tlv fn, fe;

        if (tlv_find(buf, len, 0x81, &fn) < 0 || tlv_find(buf, len, 0x82, &fe) < 0)
                return -EBADMSG;
        /* RSA 2048: the card must not hand us a shorter modulus. */
        if (fn.length != 256 || fn.value[0] < 0x80 || fe.length == 0 || fe.length > 8)
                return -EBADMSG;
        n = BN_bin2bn(fn.value, (int) fn.length, NULL);
        e = BN_bin2bn(fe.value, (int) fe.length, NULL);
        if (!n || !e)
                return -ENOMEM;
        if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
                return -ENOMEM;
        *ret = OSSL_PARAM_BLD_to_param(bld);
        return *ret ? 0 : -ENOMEM;
}

static int build_ec(OSSL_PARAM_BLD *bld, const char *curve, size_t field, const uint8_t *buf, size_t len,
                    OSSL_PARAM **ret) {
        Tlv point;

        if (tlv_find(buf, len, 0x86, &point) < 0)
                return -EBADMSG;
        /* Uncompressed: 04 X Y. */
        if (point.length != 1 + 2 * field || point.value[0] != 0x04)
                return -EBADMSG;
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.value, point.length))
                return -ENOMEM;
        *ret = OSSL_PARAM_BLD_to_param(bld);
        return *ret ? 0 : -ENOMEM;
}

int piv_parse_public_key(TokenAlgorithm alg, const uint8_t *buf, size_t len, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *pkey = NULL;
        int r;

        if (!bld)
                return -ENOMEM;
        switch (alg) {
        case TOKEN_ALG_RSA2048:
                r = build_rsa(bld, buf, len, &params);
                break;
        case TOKEN_ALG_ECCP256:
                r = build_ec(bld, "P-256", 32, buf, len, &params);
                break;
        case TOKEN_ALG_ECCP384:
                r = build_ec(bld, "P-384", 48, buf, len, &params);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return r;

        ctx = EVP_PKEY_CTX_new_from_name(NULL, alg == TOKEN_ALG_RSA2048 ? "RSA" : "EC", NULL);
        if (!ctx)
                return -ENOMEM;
        /* fromdata checks that an EC point is on the curve. */
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
                return -EBADMSG;
        *ret = pkey;
        return 0;
}

static int policy_byte(uint32_t tag, unsigned policy, TlvWriter *w) {
        return policy == 0 ? 0 : tlv_put_u8(w, tag, (uint8_t) policy);
}

int piv_generate_key(Token *t, unsigned slot, TokenAlgorithm alg, TokenPinPolicy pin_policy,
                     TokenTouchPolicy touch_policy, EVP_PKEY **ret_public) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t tmpl[16];
        size_t n = 0, len = 0;
        TlvWriter w;
        Tlv key;
        int r;

        if (piv_slot_object(slot) == 0 ||
            (alg != TOKEN_ALG_RSA2048 && alg != TOKEN_ALG_ECCP256 && alg != TOKEN_ALG_ECCP384))
                return -EINVAL;

        tlv_writer_init(&w, tmpl, sizeof tmpl);
        (void) tlv_open(&w, 0xAC);
        (void) tlv_put_u8(&w, 0x80, alg);
        (void) policy_byte(0xAA, pin_policy, &w);
        (void) policy_byte(0xAB, touch_policy, &w);
        (void) tlv_close(&w);
        r = tlv_writer_finish(&w, &n);
        if (r < 0)
                return r;

        r = apdu_call(t->transport,
                      &(ApduCommand){ .ins = INS_GENERATE,
                                      .p2 = (uint8_t) slot,
                                      .data = tmpl,
                                      .data_len = n,
                                      .want_data = true },
                      &buf, &len);
        if (r < 0)
                return r;
        if (tlv_parse_single(buf, len, &key) < 0 || key.tag != 0x7F49)
                return -EBADMSG;
        return piv_parse_public_key(alg, key.value, key.length, ret_public);
}
