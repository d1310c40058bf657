/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared between the files of the PIV driver. */

#include <stddef.h>
#include <stdint.h>

#include "tlv.h"
#include "token-driver.h"

/* Reads a data object with GET DATA. Returns 0, the response in *ret_buf
 * (free() it) and in *ret_content the value of its 53 container, which
 * points into *ret_buf; -ENOENT when the card has no such object;
 * -EBADMSG when the response is not exactly one 53 TLV. */
int piv_get_object(Token *t, uint32_t object, uint8_t **ret_buf, Tlv *ret_content);

int piv_read_certificate(Token *t, unsigned slot, TokenCertificate *ret);
int piv_list_certificates(Token *t, TokenCertificate **ret, size_t *ret_n);

/* The writing half: piv-auth.c, piv-keygen.c, piv-sign.c, piv-cert-write.c,
 * piv-move.c. */
int piv_verify_pin(Token *t, const char *pin, int *ret_retries_left);
int piv_authenticate_mgm(Token *t, const uint8_t *key, size_t key_len, TokenAlgorithm alg);
int piv_mgm_info(Token *t, TokenMgmInfo *ret);
int piv_get_protected_mgm_key(Token *t, uint8_t **ret_key, size_t *ret_key_len, TokenAlgorithm *ret_alg);
int piv_generate_key(Token *t, unsigned slot, TokenAlgorithm alg, TokenPinPolicy pin_policy,
                     TokenTouchPolicy touch_policy, EVP_PKEY **ret_public);
int piv_sign(Token *t, unsigned slot, TokenAlgorithm alg, const uint8_t *in, size_t in_len,
             uint8_t **ret_sig, size_t *ret_sig_len);
int piv_put_certificate(Token *t, unsigned slot, const uint8_t *der, size_t der_len);
int piv_move_key(Token *t, unsigned from_slot, unsigned to_slot);

/* Parses a public key as GENERATE and GET METADATA give it, the value of
 * 7F49: { 81 modulus, 82 exponent } for RSA, { 86 point } for EC. */
int piv_parse_public_key(TokenAlgorithm alg, const uint8_t *buf, size_t len, EVP_PKEY **ret);
