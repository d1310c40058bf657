/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PIN and management key: VERIFY, GENERAL AUTHENTICATE of 9B, the
 * PIN-protected management key (Printed Information) and ADMIN DATA. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "apdu.h"
#include "piv-internal.h"
#include "piv.h"
#include "secmem.h"
#include "tlv.h"

#define INS_VERIFY 0x20
#define INS_GENERAL_AUTHENTICATE 0x87
#define INS_GET_DATA 0xCB
#define INS_GET_RESPONSE 0xC0
#define INS_GET_METADATA 0xF7

#define PIV_PIN_REFERENCE 0x80
#define PIV_MGM_REFERENCE 0x9B
#define PIV_PIN_SIZE 8
#define PIV_OBJECT_PRINTED 0x5FC109u
#define PIV_OBJECT_ADMIN_DATA 0x5FFF00u
/* ADMIN DATA 53 { 80 { 81 flags } }: Yubico's flag for a management key
 * kept in Printed Information. */
#define ADMIN_FLAG_MGM_PROTECTED 0x02u

/* One short response: 256 bytes and SW1 SW2. */
#define RESPONSE_PIECE (256u + 2u)
/* Printed Information with a management key is a few dozen bytes. */
#define SECRET_RESPONSE_MAX 1024u

const uint8_t piv_default_mgm_key_3des[24] = {
        1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
};

/* An exchange whose command or answer holds a secret: apdu.c would copy
 * both through stack and heap buffers that are neither locked nor wiped,
 * so this one goes straight to the transport with locked buffers. cmd is
 * a short APDU; the answer's data (GET RESPONSE followed) go to resp, a
 * secmem buffer of cap bytes. */
static int secret_exchange(Token *t, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t cap,
                           size_t *ret_len, uint16_t *ret_sw) {
        _cleanup_secmem_ uint8_t *piece = secmem_alloc(RESPONSE_PIECE);
        TokenTransport *tr = t->transport;
        uint8_t get_response[5] = { cmd[0], INS_GET_RESPONSE, 0, 0, 0 };
        size_t len = 0, n = 0;
        uint16_t sw;
        int r;

        if (!piece)
                return negative_errno();
        r = tr->transmit(tr->userdata, cmd, cmd_len, piece, RESPONSE_PIECE, &n);
        for (bool first = true;; first = false) {
                if (r < 0)
                        return r;
                if (n < 2 || n > RESPONSE_PIECE || n - 2 > cap - len)
                        return -EBADMSG;
                /* A card that keeps saying "more" without giving any
                 * would keep us here forever (T=0 cards may answer the
                 * command itself with 61xx alone). */
                if (!first && n == 2)
                        return -EBADMSG;
                memcpy(resp + len, piece, n - 2);
                len += n - 2;
                sw = (uint16_t) (piece[n - 2] << 8 | piece[n - 1]);
                if ((sw >> 8) != 0x61)
                        break;
                get_response[4] = (uint8_t) sw;
                r = tr->transmit(tr->userdata, get_response, sizeof get_response, piece, RESPONSE_PIECE, &n);
        }

        *ret_len = len;
        *ret_sw = sw;
        return 0;
}

int piv_verify_pin(Token *t, const char *pin, int *ret_retries_left) {
        _cleanup_secmem_ uint8_t *cmd = NULL;
        uint8_t nothing[1];
        size_t n = 0, len;
        uint16_t sw;
        int r;

        /* An empty VERIFY would only ask for the state; never send it for
         * a PIN. */
        len = pin ? strnlen(pin, PIV_PIN_SIZE + 1) : 0;
        if (len == 0 || len > PIV_PIN_SIZE)
                return -EINVAL;

        cmd = secmem_alloc(5 + PIV_PIN_SIZE);
        if (!cmd)
                return negative_errno();
        memcpy(cmd, (const uint8_t[]){ 0x00, INS_VERIFY, 0x00, PIV_PIN_REFERENCE, PIV_PIN_SIZE }, 5);
        memset(cmd + 5, 0xFF, PIV_PIN_SIZE);
        memcpy(cmd + 5, pin, len);

        r = secret_exchange(t, cmd, 5 + PIV_PIN_SIZE, nothing, 0, &n, &sw);
        if (r < 0)
                return r;
        r = apdu_sw_to_errno(sw);
        if (r == -EKEYREJECTED && ret_retries_left)
                *ret_retries_left = apdu_sw_retries(sw);
        return r;
}

static const EVP_CIPHER *mgm_cipher(TokenAlgorithm alg, size_t *ret_key_size) {
        switch (alg) {
        case TOKEN_ALG_3DES:
                *ret_key_size = 24;
                return EVP_des_ede3_ecb();
        case TOKEN_ALG_AES128:
                *ret_key_size = 16;
                return EVP_aes_128_ecb();
        case TOKEN_ALG_AES192:
                *ret_key_size = 24;
                return EVP_aes_192_ecb();
        case TOKEN_ALG_AES256:
                *ret_key_size = 32;
                return EVP_aes_256_ecb();
        default:
                return NULL;
        }
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)

/* One block with the management key, ECB (SP 800-73-4 appendix A).
 * EVP_CIPHER_CTX_free() cleanses the key schedule. */
static int mgm_crypt(TokenAlgorithm alg, const uint8_t *key, bool encrypt, const uint8_t *in, uint8_t *out) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        size_t key_size;
        const EVP_CIPHER *cipher = mgm_cipher(alg, &key_size);
        int n = 0;

        if (!ctx)
                return -ENOMEM;
        if (EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, encrypt) != 1 ||
            EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
            EVP_CipherUpdate(ctx, out, &n, in, EVP_CIPHER_get_block_size(cipher)) != 1 ||
            n != EVP_CIPHER_get_block_size(cipher))
                return -EIO;
        return 0;
}

/* 7C { tag block } out of an answer, exactly bs bytes. */
static int auth_item(const uint8_t *buf, size_t len, uint32_t tag, size_t bs, const uint8_t **ret) {
        Tlv outer, item;

        if (tlv_parse_single(buf, len, &outer) < 0 || outer.tag != 0x7C ||
            tlv_find(outer.value, outer.length, tag, &item) < 0 || item.length != bs)
                return -EBADMSG;
        *ret = item.value;
        return 0;
}

/* GET METADATA of 9B: 01 algorithm, 05 default key. 1 when the card does
 * not offer it. */
static int mgm_metadata(Token *t, TokenAlgorithm *ret_alg, bool *ret_default) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        Tlv f;
        int r;

        r = apdu_call(t->transport,
                      &(ApduCommand){ .ins = INS_GET_METADATA, .p2 = PIV_MGM_REFERENCE, .want_data = true },
                      &buf, &len);
        if (r == -EOPNOTSUPP || r == -EINVAL || r == -EPROTO || r == -ENOENT)
                return 1;
        if (r < 0)
                return r;
        if (tlv_find(buf, len, 0x01, &f) < 0 || f.length != 1)
                return -EBADMSG;
        *ret_alg = f.value[0];
        if (ret_default)
                *ret_default = tlv_find(buf, len, 0x05, &f) == 0 && f.length == 1 && f.value[0] == 1;
        return 0;
}

static int mgm_exchange(Token *t, TokenAlgorithm alg, const uint8_t *data, size_t n, uint8_t **ret,
                        size_t *ret_len) {
        return apdu_call(t->transport,
                         &(ApduCommand){ .ins = INS_GENERAL_AUTHENTICATE,
                                         .p1 = alg,
                                         .p2 = PIV_MGM_REFERENCE,
                                         .data = data,
                                         .data_len = n,
                                         .want_data = true },
                         ret, ret_len);
}

/* Mutual authentication (SP 800-73-4 appendix A.3, as yubico-piv-tool
 * does it): the card sends a witness encrypted with the key, we answer
 * with it decrypted and a challenge of ours, which the card must give
 * back encrypted. The witness and challenge are one-time values, not
 * secrets; the key stays in the caller's locked memory and OpenSSL's
 * cipher context. */
static int mutual_auth(Token *t, const uint8_t *key, TokenAlgorithm alg) {
        _cleanup_free_ uint8_t *a1 = NULL, *a2 = NULL;
        uint8_t msg[4 + 2 * (2 + 16)], witness[16], challenge[16], expect[16];
        const uint8_t *item;
        size_t key_size, bs, n1 = 0, n2 = 0;
        int r;

        bs = EVP_CIPHER_get_block_size(mgm_cipher(alg, &key_size));
        r = mgm_exchange(t, alg, (const uint8_t[]){ 0x7C, 0x02, 0x80, 0x00 }, 4, &a1, &n1);
        if (r < 0)
                return r;
        r = auth_item(a1, n1, 0x80, bs, &item);
        if (r < 0)
                return r;
        r = mgm_crypt(alg, key, false, item, witness);
        if (r < 0)
                return r;
        if (RAND_bytes(challenge, (int) bs) != 1)
                return -EIO;

        msg[0] = 0x7C;
        msg[1] = (uint8_t) (4 + 2 * bs);
        msg[2] = 0x80;
        msg[3] = (uint8_t) bs;
        memcpy(msg + 4, witness, bs);
        msg[4 + bs] = 0x81;
        msg[5 + bs] = (uint8_t) bs;
        memcpy(msg + 6 + bs, challenge, bs);
        r = mgm_exchange(t, alg, msg, 6 + 2 * bs, &a2, &n2);
        /* The card did not get its witness back: the key is wrong. */
        if (r == -EACCES)
                return -EKEYREJECTED;
        if (r < 0)
                return r;
        r = auth_item(a2, n2, 0x82, bs, &item);
        if (r < 0)
                return r;
        r = mgm_crypt(alg, key, true, challenge, expect);
        if (r < 0)
                return r;
        return CRYPTO_memcmp(item, expect, bs) == 0 ? 0 : -EBADMSG;
}

int piv_authenticate_mgm(Token *t, const uint8_t *key, size_t key_len, TokenAlgorithm alg) {
        size_t key_size = 0;
        int r;

        if (!key)
                return -EINVAL;
        if (alg == TOKEN_ALG_DEFAULT) {
                r = mgm_metadata(t, &alg, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        alg = TOKEN_ALG_3DES;
        }
        if (!mgm_cipher(alg, &key_size) || key_size != key_len)
                return -EINVAL;
        /* A card with a key of another algorithm answers 6A86: -EINVAL. */
        return mutual_auth(t, key, alg);
}

static int mgm_protected(Token *t, bool *ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        Tlv content, admin, flags;
        int r;

        r = piv_get_object(t, PIV_OBJECT_ADMIN_DATA, &buf, &content);
        if (r == -ENOENT) {
                *ret = false;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = tlv_find(content.value, content.length, 0x80, &admin) == 0 &&
               tlv_find(admin.value, admin.length, 0x81, &flags) == 0 && flags.length >= 1 &&
               (flags.value[0] & ADMIN_FLAG_MGM_PROTECTED);
        return 0;
}

int piv_mgm_info(Token *t, TokenMgmInfo *ret) {
        TokenMgmInfo info = { .algorithm = TOKEN_ALG_3DES, .is_default = -1 };
        bool is_default = false;
        int r;

        r = mgm_metadata(t, &info.algorithm, &is_default);
        if (r < 0)
                return r;
        if (r == 0)
                info.is_default = is_default;
        else {
                r = mutual_auth(t, piv_default_mgm_key_3des, TOKEN_ALG_3DES);
                if (r == 0 || r == -EKEYREJECTED)
                        info.is_default = r == 0;
                else if (r != -EINVAL && r != -EOPNOTSUPP)
                        return r;
        }
        r = mgm_protected(t, &info.pin_protected);
        if (r < 0)
                return r;

        *ret = info;
        return 0;
}

static TokenAlgorithm alg_from_key_size(size_t n) {
        return n == 16 ? TOKEN_ALG_AES128 : n == 32 ? TOKEN_ALG_AES256 : TOKEN_ALG_3DES;
}

/* 53 { 88 { 89 key } } in the locked answer; the key is copied to locked
 * memory only. */
static int parse_printed(const uint8_t *buf, size_t len, uint8_t **ret_key, size_t *ret_len) {
        Tlv content, outer, key;
        uint8_t *k;

        if (tlv_parse_single(buf, len, &content) < 0 || content.tag != 0x53)
                return -EBADMSG;
        if (tlv_find(content.value, content.length, 0x88, &outer) < 0 ||
            tlv_find(outer.value, outer.length, 0x89, &key) < 0)
                return -ENOENT;
        if (key.length != 16 && key.length != 24 && key.length != 32)
                return -EBADMSG;
        k = secmem_alloc(key.length);
        if (!k)
                return negative_errno();
        memcpy(k, key.value, key.length);
        *ret_key = k;
        *ret_len = key.length;
        return 0;
}

int piv_get_protected_mgm_key(Token *t, uint8_t **ret_key, size_t *ret_key_len, TokenAlgorithm *ret_alg) {
        static const uint8_t cmd[] = { 0x00, INS_GET_DATA, 0x3F, 0xFF, 0x05, 0x5C,
                                       0x03, 0x5F,         0xC1, 0x09, 0x00 };
        _cleanup_secmem_ uint8_t *resp = secmem_alloc(SECRET_RESPONSE_MAX);
        _cleanup_secmem_ uint8_t *key = NULL;
        TokenAlgorithm alg;
        size_t len = 0, key_len = 0;
        uint16_t sw;
        int r;

        if (!resp)
                return negative_errno();
        r = secret_exchange(t, cmd, sizeof cmd, resp, SECRET_RESPONSE_MAX, &len, &sw);
        if (r < 0)
                return r;
        r = apdu_sw_to_errno(sw);
        if (r < 0)
                return r;
        if (len == 0)
                return -ENOENT;
        r = parse_printed(resp, len, &key, &key_len);
        if (r < 0)
                return r;
        r = mgm_metadata(t, &alg, NULL);
        if (r < 0)
                return r;
        if (r > 0)
                alg = alg_from_key_size(key_len);

        *ret_key = TAKE_PTR(key);
        *ret_key_len = key_len;
        *ret_alg = alg;
        return 0;
}
