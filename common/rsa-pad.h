/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* RSA signature encodings done in software, for cards that only do raw
 * RSA (PIV): the result goes to token_sign() as the block to raise to d.
 * md_name and mgf1_md_name are OpenSSL digest names ("SHA256", "SHA2-384",
 * ...); hash is the message's hash with that digest. Return 0, -EINVAL
 * for a hash of the wrong length, a digest without a DigestInfo here
 * (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512) or a block too small. */

#include <stddef.h>
#include <stdint.h>

/* EMSA-PKCS1-v1_5 (RFC 8017 9.2): 00 01 FF .. FF 00 DigestInfo, exactly
 * block_len (the modulus size) bytes. */
int rsa_pad_pkcs1(const char *md_name, const uint8_t *hash, size_t hash_len, uint8_t *block,
                  size_t block_len);

/* EMSA-PSS (RFC 8017 9.1.1) with MGF1 and a random salt of salt_len
 * bytes, for a modulus of mod_bits bits; block_len is the modulus size
 * (a leading 00 when the encoding is one byte shorter). */
int rsa_pad_pss(const char *md_name, const char *mgf1_md_name, size_t salt_len, const uint8_t *hash,
                size_t hash_len, unsigned mod_bits, uint8_t *block, size_t block_len);
