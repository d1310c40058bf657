/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The private key operation: GENERAL AUTHENTICATE of a key slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "piv-internal.h"
#include "piv.h"
#include "tlv.h"

#define INS_GENERAL_AUTHENTICATE 0x87
#define RSA2048_SIZE 256u
/* 7C, 82 00, 81 and their lengths around the biggest input. */
#define REQUEST_MAX (RSA2048_SIZE + 16u)

/* ECDSA signs the leftmost bits of the hash, as many as the order has;
 * PIV cards want exactly the field size, so shorter ones get zeros in
 * front (the same number). */
static size_t fit_input(TokenAlgorithm alg, const uint8_t *in, size_t in_len, uint8_t *out) {
        size_t size;

        switch (alg) {
        case TOKEN_ALG_RSA2048:
                if (in_len != RSA2048_SIZE)
                        return 0;
                memcpy(out, in, in_len);
                return in_len;
        case TOKEN_ALG_ECCP256:
        case TOKEN_ALG_ECCP384:
                size = alg == TOKEN_ALG_ECCP256 ? 32 : 48;
                if (in_len == 0)
                        return 0;
                if (in_len >= size)
                        memcpy(out, in, size);
                else {
                        memset(out, 0, size - in_len);
                        memcpy(out + size - in_len, in, in_len);
                }
                return size;
        default:
                return 0;
        }
}

/* 7C { 82 signature } → a malloc()ed copy; an RSA signature the card
 * sent without its leading zeros gets them back. */
static int parse_signature(TokenAlgorithm alg, const uint8_t *buf, size_t len, uint8_t **ret,
                           size_t *ret_len) {
        Tlv outer, sig;
        size_t n, pad = 0;
        uint8_t *out;

        if (tlv_parse_single(buf, len, &outer) < 0 || outer.tag != 0x7C ||
            tlv_find(outer.value, outer.length, 0x82, &sig) < 0 || sig.length == 0)
                return -EBADMSG;
        if (alg == TOKEN_ALG_RSA2048) {
                if (sig.length > RSA2048_SIZE)
                        return -EBADMSG;
                pad = RSA2048_SIZE - sig.length;
        }
        n = pad + sig.length;
        out = calloc(1, n);
        if (!out)
                return -ENOMEM;
        memcpy(out + pad, sig.value, sig.length);
        *ret = out;
        *ret_len = n;
        return 0;
}

int piv_sign(Token *t, unsigned slot, TokenAlgorithm alg, const uint8_t *in, size_t in_len,
             uint8_t **ret_sig, size_t *ret_sig_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t input[RSA2048_SIZE], req[REQUEST_MAX];
        size_t n, req_len = 0, len = 0;
        TlvWriter w;
        int r;

        if (piv_slot_object(slot) == 0 || !in)
                return -EINVAL;
        n = fit_input(alg, in, in_len, input);
        if (n == 0)
                return -EINVAL;

        tlv_writer_init(&w, req, sizeof req);
        (void) tlv_open(&w, 0x7C);
        (void) tlv_put(&w, 0x82, NULL, 0);
        (void) tlv_put(&w, 0x81, input, n);
        (void) tlv_close(&w);
        r = tlv_writer_finish(&w, &req_len);
        if (r < 0)
                return r;

        r = apdu_call(t->transport,
                      &(ApduCommand){ .ins = INS_GENERAL_AUTHENTICATE,
                                      .p1 = alg,
                                      .p2 = (uint8_t) slot,
                                      .data = req,
                                      .data_len = req_len,
                                      .want_data = true },
                      &buf, &len);
        /* -EINVAL (6A86): the key in the slot is of another algorithm. */
        if (r < 0)
                return r;
        return parse_signature(alg, buf, len, ret_sig, ret_sig_len);
}
