/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A token: a card (or USB key) spoken to by one driver over one transport.
 * Each public call below runs inside one transaction of the transport
 * (begin ... end), so that no other program's APDUs come in between; when
 * the transport reports that the card was reset, the driver selects its
 * application again before the call goes on.
 *
 * Return values: 0 (or as documented) on success, else a negative errno:
 * the transport's (see pcsc-transport.h: -ENOMEDIUM the card is gone,
 * -ECONNRESET reset in the middle of the call, ...), the card's status word
 * as apdu.h maps it (-ENOENT nothing there, -EACCES PIN needed, ...),
 * -EBADMSG for data from the card that do not parse, -ENOMEM. Out-parameters
 * are written only on success. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "macro.h"
#include "token-transport.h"

typedef struct Token Token;

typedef enum TokenSerialSource {
        TOKEN_SERIAL_NONE,   /* the card gave nothing to tell it apart */
        TOKEN_SERIAL_VENDOR, /* the maker's serial number (YubiKey: GET SERIAL), decimal */
        TOKEN_SERIAL_GUID,   /* PIV CHUID GUID, hex */
        TOKEN_SERIAL_FASCN,  /* PIV CHUID FASC-N, hex of its 25 bytes */
} TokenSerialSource;

typedef struct TokenIdentity {
        TokenSerialSource serial_source;
        char serial[51];    /* as serial_source says; "" for TOKEN_SERIAL_NONE */
        char guid[33];      /* CHUID GUID, lower-case hex; "" without one */
        char fascn[51];     /* CHUID FASC-N, lower-case hex; "" without one */
        char label[65];     /* the application's label (PIV: from SELECT); "" without one */
        bool has_version;   /* the firmware said its version (YubiKey: GET VERSION) */
        uint8_t version[3]; /* major, minor, patch */
} TokenIdentity;

typedef struct TokenCertificate {
        unsigned slot;     /* the driver's key slot; PIV: the key reference, 0x9A */
        char slot_name[8]; /* PIV: "9a", as yubico-piv-tool and OpenSC name it */
        uint8_t *der;      /* the certificate, DER, uncompressed */
        size_t der_len;
} TokenCertificate;

typedef struct TokenPinStatus {
        bool verified; /* already verified in this card session */
        int retries;   /* tries left; 0 blocked; -1 when verified (the card does not say) */
} TokenPinStatus;

typedef enum TokenKeyOrigin {
        TOKEN_KEY_ORIGIN_UNKNOWN,
        TOKEN_KEY_ORIGIN_GENERATED, /* made on the card: it never left it */
        TOKEN_KEY_ORIGIN_IMPORTED,
} TokenKeyOrigin;

/* The YubiKey PIV policies (their numbers as the card sends them). */
typedef enum TokenPinPolicy {
        TOKEN_PIN_POLICY_DEFAULT,
        TOKEN_PIN_POLICY_NEVER,
        TOKEN_PIN_POLICY_ONCE,
        TOKEN_PIN_POLICY_ALWAYS,
        TOKEN_PIN_POLICY_MATCH_ONCE,
        TOKEN_PIN_POLICY_MATCH_ALWAYS,
} TokenPinPolicy;

typedef enum TokenTouchPolicy {
        TOKEN_TOUCH_POLICY_DEFAULT,
        TOKEN_TOUCH_POLICY_NEVER,
        TOKEN_TOUCH_POLICY_ALWAYS,
        TOKEN_TOUCH_POLICY_CACHED,
} TokenTouchPolicy;

typedef struct TokenKeyMetadata {
        uint8_t algorithm_id;  /* PIV algorithm identifier (SP 800-78-4; 0x07 RSA 2048, 0x11 P-256) */
        const char *algorithm; /* static: "rsa1024", "rsa2048", "rsa3072", "rsa4096", "ec-p256",
                                * "ec-p384", "ed25519", "x25519", or "unknown" */
        TokenPinPolicy pin_policy;
        TokenTouchPolicy touch_policy;
        TokenKeyOrigin origin;
} TokenKeyMetadata;

/* Tries each driver on the card behind transport (which must outlive the
 * token). -EMEDIUMTYPE when no driver speaks this card. */
int token_open(TokenTransport *transport, Token **ret);
Token *token_free(Token *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Token *, token_free)

/* "piv" */
const char *token_driver_name(const Token *t);

/* Serial, CHUID, label and firmware version: whatever the card offers. */
int token_identify(Token *t, TokenIdentity *ret);

/* Every certificate on the token, in slot order; slots without one are left
 * out (so *ret_n may be 0, and *ret then NULL). Free with
 * token_certificates_free(). */
int token_list_certificates(Token *t, TokenCertificate **ret, size_t *ret_n);

/* One slot's certificate; -ENOENT when the slot has none, -EINVAL for a
 * slot the driver does not have. Free with token_certificate_done(). */
int token_read_certificate(Token *t, unsigned slot, TokenCertificate *ret);

/* The PIN's tries left, found out without spending one. */
int token_pin_status(Token *t, TokenPinStatus *ret);

/* What the card tells about the key in a slot (YubiKey 5.3 and later);
 * -EOPNOTSUPP when the card does not say, -ENOENT for an empty slot. */
int token_key_metadata(Token *t, unsigned slot, TokenKeyMetadata *ret);

/* The writing half. Secrets (PIN, management key) are passed and returned
 * in secmem.h memory and never copied out of locked memory: the APDUs that
 * carry them are built, sent and answered in locked buffers, wiped after
 * use. Nothing here retries a PIN or a key: a wrong one costs the user a
 * try (PIN) and is reported at once. */

/* PIV algorithm identifiers (SP 800-78-4 table 6-2, with Yubico's AES
 * management keys). */
typedef enum TokenAlgorithm {
        TOKEN_ALG_DEFAULT = 0x00, /* management key: what the card says (GET METADATA), else 3DES */
        TOKEN_ALG_3DES = 0x03,
        TOKEN_ALG_RSA2048 = 0x07,
        TOKEN_ALG_AES128 = 0x08,
        TOKEN_ALG_AES192 = 0x0A,
        TOKEN_ALG_AES256 = 0x0C,
        TOKEN_ALG_ECCP256 = 0x11,
        TOKEN_ALG_ECCP384 = 0x14,
} TokenAlgorithm;

typedef struct TokenMgmInfo {
        TokenAlgorithm algorithm; /* 3DES when the card does not say */
        /* 1: the card still has the well-known default 3DES key
         * 010203040506070801020304050607080102030405060708 (anyone may
         * write to it); 0: another key; -1: the card would not tell. */
        int is_default;
        /* ADMIN DATA (5FFF00) says the key is kept in Printed Information,
         * behind the PIN: token_get_protected_mgm_key() reads it. */
        bool pin_protected;
} TokenMgmInfo;

/* VERIFY of the PIV PIN (1 to 8 characters, NUL-terminated, in secmem
 * memory). Returns 0 when verified; -EKEYREJECTED for a wrong PIN, and
 * then (only then) *ret_retries_left, which may be NULL, says how many
 * tries are left; -ENOLCK when the PIN is blocked (some cards answer the
 * wrong PIN that spends the last try so, YubiKeys with "0 tries left");
 * -EINVAL for an empty or too long PIN (nothing sent). Never retried.
 * The PIN is padded and sent from locked memory, wiped afterwards. */
int token_verify_pin(Token *t, const char *pin, int *ret_retries_left);

/* Authenticates with the management key (key_len bytes in secmem memory),
 * mutual authentication: the card proves it knows the key too. alg
 * TOKEN_ALG_DEFAULT asks the card (GET METADATA of 9B) and falls back to
 * 3DES. -EKEYREJECTED for a wrong key (PIV management keys have no retry
 * counter), -EINVAL when key_len does not fit the algorithm or the card
 * has a key of another algorithm, -EBADMSG when the card's answer to our
 * challenge is wrong (the card does not know the key). The card stays
 * authenticated for this card session (until reset or power off). */
int token_authenticate_mgm(Token *t, const uint8_t *key, size_t key_len, TokenAlgorithm alg);

/* The management key's algorithm, whether it is the default key and
 * whether it is PIN-protected. On cards without GET METADATA this tries a
 * mutual authentication with the default key (which costs nothing: the
 * key has no retry counter; when it succeeds the card stays
 * authenticated). */
int token_mgm_info(Token *t, TokenMgmInfo *ret);

/* The PIN-protected management key from Printed Information (5FC109,
 * 53 { 88 { 89 key } }), as yubico-piv-tool and ykman store it. Needs the
 * PIN verified before (token_verify_pin(); -EACCES otherwise); -ENOENT
 * when the card keeps no such key. *ret_key is secmem memory
 * (secmem_free() it); *ret_alg from GET METADATA, else from the key's
 * length (24 bytes: 3DES). */
int token_get_protected_mgm_key(Token *t, uint8_t **ret_key, size_t *ret_key_len, TokenAlgorithm *ret_alg);

/* Generates a key pair in slot (needs the management key authenticated:
 * -EACCES otherwise), replacing the key there; alg TOKEN_ALG_RSA2048,
 * TOKEN_ALG_ECCP256 or TOKEN_ALG_ECCP384; the policies are sent when not
 * _DEFAULT. *ret_public is the new public key (EVP_PKEY_free() it). */
int token_generate_key(Token *t, unsigned slot, TokenAlgorithm alg, TokenPinPolicy pin_policy,
                       TokenTouchPolicy touch_policy, EVP_PKEY **ret_public);

/* The card's private key operation in slot (GENERAL AUTHENTICATE). RSA:
 * in is the whole encoded block, exactly the modulus size (the card does
 * raw RSA; see rsa-pad.h for PKCS#1 v1.5 and PSS); EC: in is the hash,
 * cut or left-padded with zeros to the curve's size here, and the
 * signature is DER (ECDSA-Sig-Value). -EACCES when the key's PIN policy
 * wants a (fresh) VERIFY first: PIN "always" keys (9C by default) need
 * token_verify_pin() before each signature; -ENOENT for an empty slot;
 * -EINVAL when alg is not the key's. *ret_sig: free(). */
int token_sign(Token *t, unsigned slot, TokenAlgorithm alg, const uint8_t *in, size_t in_len,
               uint8_t **ret_sig, size_t *ret_sig_len);

/* Writes a certificate (DER, uncompressed) to slot's object, 53 { 70 cert,
 * 71 00, FE }; needs the management key authenticated (-EACCES).
 * -ENOSPC when the card has no room for it. der NULL deletes the object. */
int token_put_certificate(Token *t, unsigned slot, const uint8_t *der, size_t der_len);

/* token_move_key()'s to_slot that deletes the key instead of moving it. */
#define TOKEN_SLOT_DELETE 0xFFu

/* Moves the key in from_slot to to_slot, replacing the key there; from_slot
 * is empty afterwards. to_slot TOKEN_SLOT_DELETE deletes the key in
 * from_slot instead. The key keeps its policies and its origin (a key
 * generated on the card stays "generated"); certificates stay where they
 * are: the caller writes them (token_put_certificate()).
 *
 * This is how a renewal replaces a key: the new one is generated in a free
 * retired slot (0x82..0x95) while the old one still signs, then moved over
 * it. Generate it with the policies the destination wants spelt out:
 * _DEFAULT means the generating slot's (PIN "once" in 82..95, where 9C's
 * is "always").
 *
 * Needs the management key authenticated (-EACCES otherwise); -ENOENT
 * when from_slot holds no key; -EOPNOTSUPP when the card does not have
 * the command (YubiKey MOVE KEY, firmware 5.7 and later; older YubiKeys
 * and other PIV cards answer 6D00); -EINVAL, with nothing sent, when the
 * slots are the same or either is no key slot (9A, 9C, 9D, 9E, 82..95;
 * the attestation key F9 cannot be moved). */
int token_move_key(Token *t, unsigned from_slot, unsigned to_slot);

void token_certificate_done(TokenCertificate *c);
void token_certificates_free(TokenCertificate *c, size_t n);
