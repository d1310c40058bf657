/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* For drivers only: the ops table behind token.h. An op runs inside the
 * transaction token.c opened and follows token.h's conventions. */

#include "token.h"

typedef struct TokenDriver {
        const char *name;

        /* Selects the driver's application on the card: when the token is
         * opened, and again after every card reset. 0 when the card speaks
         * this driver; -ENOENT when it does not (token_open() then tries
         * the next driver); other errors end token_open(). May replace
         * t->data (freed with free_data). */
        int (*select)(Token *t);
        void (*free_data)(void *data);

        int (*identify)(Token *t, TokenIdentity *ret);
        int (*list_certificates)(Token *t, TokenCertificate **ret, size_t *ret_n);
        int (*read_certificate)(Token *t, unsigned slot, TokenCertificate *ret);
        int (*pin_status)(Token *t, TokenPinStatus *ret);
        int (*key_metadata)(Token *t, unsigned slot, TokenKeyMetadata *ret);

        int (*verify_pin)(Token *t, const char *pin, int *ret_retries_left);
        int (*authenticate_mgm)(Token *t, const uint8_t *key, size_t key_len, TokenAlgorithm alg);
        int (*mgm_info)(Token *t, TokenMgmInfo *ret);
        int (*get_protected_mgm_key)(Token *t, uint8_t **ret_key, size_t *ret_key_len,
                                     TokenAlgorithm *ret_alg);
        int (*generate_key)(Token *t, unsigned slot, TokenAlgorithm alg, TokenPinPolicy pin_policy,
                            TokenTouchPolicy touch_policy, EVP_PKEY **ret_public);
        int (*sign)(Token *t, unsigned slot, TokenAlgorithm alg, const uint8_t *in, size_t in_len,
                    uint8_t **ret_sig, size_t *ret_sig_len);
        int (*put_certificate)(Token *t, unsigned slot, const uint8_t *der, size_t der_len);
        int (*move_key)(Token *t, unsigned from_slot, unsigned to_slot);
} TokenDriver;

struct Token {
        const TokenDriver *driver;
        TokenTransport *transport;
        void *data; /* the driver's */
};
