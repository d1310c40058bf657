/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The data of one virtual PIV card: what survives unplugging (keys, data
 * objects, PIN/PUK and their counters, the management key) and the session
 * state that a power cycle or reset clears. piv-applet.c works on it,
 * card-state.c reads and writes it, nothing here does I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Algorithm identifiers of SP 800-78-4 table 6-2 plus Yubico's AES ones. */
#define PIV_ALG_3DES 0x03
#define PIV_ALG_RSA1024 0x06
#define PIV_ALG_RSA2048 0x07
#define PIV_ALG_AES128 0x08
#define PIV_ALG_AES192 0x0A
#define PIV_ALG_AES256 0x0C
#define PIV_ALG_ECCP256 0x11
#define PIV_ALG_ECCP384 0x14

/* PIN policies as Yubico numbers them (GENERATE tag AA, METADATA tag 02). */
#define PIV_PIN_POLICY_DEFAULT 0
#define PIV_PIN_POLICY_NEVER 1
#define PIV_PIN_POLICY_ONCE 2
#define PIV_PIN_POLICY_ALWAYS 3

#define PIV_ORIGIN_GENERATED 1
#define PIV_ORIGIN_IMPORTED 2

#define PIV_REF_PIN 0x80
#define PIV_REF_PUK 0x81
#define PIV_SLOT_MGM 0x9B
#define PIV_SLOT_DELETE 0xFF /* Yubico MOVE KEY's P1 that deletes */

/* Data object tags (SP 800-73-4 part 1 table 3, and Yubico's). */
#define PIV_OBJ_CCC 0x5FC107
#define PIV_OBJ_CHUID 0x5FC102
#define PIV_OBJ_PRINTED 0x5FC109
#define PIV_OBJ_KEY_HISTORY 0x5FC10C
#define PIV_OBJ_DISCOVERY 0x7E
#define PIV_OBJ_BIT 0x7F61
#define PIV_OBJ_ADMIN_DATA 0x5FFF00

/* A YubiKey stores objects of at most 3063 bytes: its 3072-byte buffer
 * less the 5C and 53 headers. Clients size their buffers on it. */
#define PIV_OBJECT_MAX 3063
/* The longest command data after chaining: a full PUT DATA. */
#define PIV_COMMAND_MAX 4096
/* The longest answer: a full object, or a signature in its template. */
#define PIV_RESPONSE_MAX 4096

#define PIV_PIN_SIZE 8
#define PIV_MGM_KEY_MAX 32
#define PIV_KEY_SLOTS 24 /* 9A 9C 9D 9E and the 20 retired slots 82-95 */

typedef struct PivKey {
        uint8_t slot;      /* 0: this entry is free */
        uint8_t algorithm; /* PIV_ALG_RSA2048, PIV_ALG_ECCP256, ... */
        uint8_t pin_policy;
        uint8_t touch_policy;
        uint8_t origin;
        uint32_t uses; /* private key operations done, for tests */
        EVP_PKEY *pkey;
} PivKey;

typedef struct PivObject {
        uint32_t tag;
        uint8_t *data; /* the whole object as GET DATA returns it (53 ..., 7E ...) */
        size_t len;
} PivObject;

typedef enum PivAuthStep {
        PIV_AUTH_NONE,
        PIV_AUTH_WITNESS_SENT,   /* mutual: we sent an encrypted witness */
        PIV_AUTH_CHALLENGE_SENT, /* external: we sent a plain challenge */
} PivAuthStep;

/* Cleared at power on, power off and reset: nothing here is persisted. */
typedef struct PivSession {
        bool selected;
        bool pin_verified;
        bool pin_fresh; /* VERIFY done since the last "PIN always" key use */
        bool mgm_authenticated;
        PivAuthStep auth_step;
        uint8_t auth_secret[16];

        bool chaining;
        uint8_t chain_ins, chain_p1, chain_p2;
        size_t chain_len;
        uint8_t chain[PIV_COMMAND_MAX];

        size_t pending_off, pending_len;
        uint8_t pending[PIV_RESPONSE_MAX];
} PivSession;

typedef struct PivCard {
        uint32_t serial;
        uint8_t version[3];

        uint8_t pin[PIV_PIN_SIZE]; /* padded with FF as VERIFY sends it */
        uint8_t puk[PIV_PIN_SIZE];
        uint8_t pin_retries_max, pin_retries_left;
        uint8_t puk_retries_max, puk_retries_left;

        uint8_t mgm_alg;
        uint8_t mgm_touch;
        uint8_t mgm_key[PIV_MGM_KEY_MAX];
        size_t mgm_key_len;

        PivKey keys[PIV_KEY_SLOTS];
        PivObject *objects;
        size_t n_objects;

        /* Set when persistent data changed; whoever saves the card clears it. */
        bool dirty;

        PivSession session;
} PivCard;

extern const uint8_t piv_default_pin[PIV_PIN_SIZE];
extern const uint8_t piv_default_puk[PIV_PIN_SIZE];
extern const uint8_t piv_default_mgm_key[24];

/* A card with default PIN, PUK and 3DES management key, no keys, no
 * objects, serial 0. NULL on ENOMEM. */
PivCard *piv_card_new(void);

/* PIN, PUK, their counters and the management key as a new card has them. */
void piv_card_default_credentials(PivCard *c);
void piv_card_free(PivCard *c);
static inline void piv_card_freep(PivCard **c) {
        if (*c)
                piv_card_free(*c);
}

/* Forgets PIN and management key authentication, selection, chains and
 * pending answers: what a power cycle or a reset does. */
void piv_card_session_reset(PivCard *c);

bool piv_slot_is_key(uint8_t slot);
/* The certificate object that belongs to a key slot, 0 for none. */
uint32_t piv_slot_cert_tag(uint8_t slot);
uint8_t piv_slot_default_pin_policy(uint8_t slot);

PivKey *piv_card_key(PivCard *c, uint8_t slot);
/* The entry for slot, taking a free one if needed; NULL if slot is no key
 * slot. */
PivKey *piv_card_key_slot(PivCard *c, uint8_t slot);
/* Puts pkey (taking it over) into the slot. Returns 0 or -EINVAL. */
int piv_card_set_key(PivCard *c, uint8_t slot, uint8_t algorithm, uint8_t pin_policy, uint8_t touch_policy,
                     uint8_t origin, EVP_PKEY *pkey);

/* Moves the key in from to to, replacing the key there, with its
 * policies, origin and use counter (it is the same key); to
 * PIV_SLOT_DELETE deletes it. Certificate objects stay. -ENOENT when from
 * holds no key, -EINVAL when to is from or no key slot. */
int piv_card_move_key(PivCard *c, uint8_t from, uint8_t to);

const PivObject *piv_card_object(const PivCard *c, uint32_t tag);
/* Stores a copy of data as the object (len 0 deletes it). 0 or -ENOMEM. */
int piv_card_set_object(PivCard *c, uint32_t tag, const void *data, size_t len);

/* Pads a PIN to the 8 bytes VERIFY carries. -EINVAL when longer than 8. */
int piv_pin_pad(const char *pin, uint8_t ret[PIV_PIN_SIZE]);
/* A padded PIN is digits or letters, then only FF: length 6 to 8. */
bool piv_pin_padded_is_valid(const uint8_t pin[PIV_PIN_SIZE]);

/* Management key algorithms: block and key sizes, 0 for anything else. */
size_t piv_mgm_key_size(uint8_t alg);
size_t piv_mgm_block_size(uint8_t alg);

const char *piv_alg_to_string(uint8_t alg);
/* "3des", "aes128", "rsa2048", "eccp256", ...; 0 when unknown. */
uint8_t piv_alg_from_string(const char *s);
