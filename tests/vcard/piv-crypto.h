/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The card's cryptography, on OpenSSL 3 EVP: key pairs for the PIV
 * algorithms, the raw private key operations GENERAL AUTHENTICATE asks for,
 * and the block cipher of the management key. Negative errno on failure:
 * -EINVAL for input the operation refuses, -EIO when OpenSSL fails. */

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tlv.h"

/* A new key pair for PIV_ALG_RSA1024/RSA2048/ECCP256/ECCP384. */
int piv_key_generate(uint8_t alg, EVP_PKEY **ret);

/* The PIV algorithm of a key, 0 when it is none of the four. */
uint8_t piv_key_algorithm(EVP_PKEY *pkey);

/* Writes the public key as the card shows it: 81 modulus 82 exponent for
 * RSA, 86 uncompressed point for EC (inside 7F49 for GENERATE, bare in
 * GET METADATA's tag 04). */
int piv_key_put_public(EVP_PKEY *pkey, TlvWriter *w);

/* RSA: the raw private operation on a block as long as the modulus (the
 * client did the padding). EC: an ECDSA signature (DER) over a hash,
 * truncated to the curve as ECDSA does. */
int piv_key_sign(EVP_PKEY *pkey, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                 size_t *ret_len);

/* ECDH with the peer's uncompressed point: the shared X coordinate. */
int piv_key_ecdh(EVP_PKEY *pkey, const uint8_t *point, size_t point_len, uint8_t *out, size_t cap,
                 size_t *ret_len);

/* One ECB block (8 bytes for 3DES, 16 for AES) with the management key. */
int piv_mgm_crypt(uint8_t alg, const uint8_t *key, size_t key_len, int encrypt, const uint8_t *in,
                  uint8_t *out);
