/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A key on a card as an ordinary OpenSSL 3 EVP_PKEY: X509_REQ_sign(),
 * EVP_DigestSign(), OSSL_CMP protection and the like sign with the card
 * and never see a private key.
 *
 * How: a provider, "keyrenew-card", built into this library (added with
 * OSSL_PROVIDER_add_builtin() and loaded into a library context). Its
 * KEYMGMT for "RSA" and "EC" holds the slot's public key and a reference
 * to (token, slot); its SIGNATURE ("RSA": PKCS#1 v1.5 and PSS, padded here
 * in software; "ECDSA": DER signatures) calls token_sign(). The key's
 * public half is exported to other providers (encoders for the CSR's
 * SubjectPublicKeyInfo, verification), its private half never: so OpenSSL
 * always signs with this provider's SIGNATURE.
 *
 * The provider never sees a PIN. Before signing, the caller verifies the
 * PIN on the token (token_verify_pin()); a key whose PIN policy is
 * "always" (slot 9C by default) needs a VERIFY before every signature, or
 * the signing call fails (OpenSSL's error queue then holds the -errno of
 * token_sign(), e.g. -EACCES, as the reason).
 *
 * Threads: a signature runs token_sign() on the calling thread, one PC/SC
 * transaction; a Token is not thread-safe, so use the key only on the
 * thread that owns the token (the daemon's token worker). The token must
 * outlive the key. */

#include <openssl/evp.h>

#include "token.h"

#define CARD_PROVIDER_NAME "keyrenew-card"

/* Loads the provider into libctx (NULL: OpenSSL's default context); the
 * default provider stays available there (the fallback is kept). The
 * context's default property query becomes "?provider!=keyrenew-card" so
 * that ordinary fetches of "RSA" or "EC" (key generation, parsing) still
 * get the default provider's. Give it a context of its own
 * (OSSL_LIB_CTX_new()) to leave the process's default context untouched;
 * the keys work with the ordinary calls either way (X509_REQ_sign() with
 * no context finds the signature through the key's own provider).
 * *ret: OSSL_PROVIDER_unload() it once every card key is freed. Loading
 * again is harmless (one more reference to unload). */
int card_provider_load(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **ret);

/* An EVP_PKEY in libctx, where card_provider_load() loaded the provider
 * (-ENXIO otherwise), for the key in slot of t, whose public half is
 * public_key (RSA 2048, EC P-256 or P-384: from token_generate_key() or
 * the slot's certificate). public_key is not taken over (the key holds a
 * reference of its own). -EINVAL for another kind of key. Free with
 * EVP_PKEY_free(). */
int card_key_new(OSSL_LIB_CTX *libctx, Token *t, unsigned slot, EVP_PKEY *public_key, EVP_PKEY **ret);

/* The same for a key whose PIN policy may be "always": pin (secmem
 * memory, NUL-terminated, already verified on t by the caller, alive as
 * long as the key) is verified again when the card wants it right before
 * a signature, at most once per signature. */
int card_key_new_with_pin(OSSL_LIB_CTX *libctx, Token *t, unsigned slot, EVP_PKEY *public_key,
                          const char *pin, EVP_PKEY **ret);

/* The PIV algorithm of a public key the provider can use (RSA 2048, EC
 * P-256 or P-384); -EINVAL for another. */
int card_key_algorithm(EVP_PKEY *public_key, TokenAlgorithm *ret);

/* Signs a random challenge with key (on the card) and verifies the
 * signature with public_key: whether the key in the slot is the one a
 * certificate certifies. -EIO when the card did not sign, -EKEYREJECTED
 * when the signature does not verify. */
int card_key_check(EVP_PKEY *key, EVP_PKEY *public_key);
