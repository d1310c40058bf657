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

void token_certificate_done(TokenCertificate *c);
void token_certificates_free(TokenCertificate *c, size_t n);
