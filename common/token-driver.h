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

        /* Room for the writing half when it is built: verify PIN,
         * authenticate with the management key, generate a key, sign,
         * put a certificate. */
} TokenDriver;

struct Token {
        const TokenDriver *driver;
        TokenTransport *transport;
        void *data; /* the driver's */
};
