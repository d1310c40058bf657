/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "token.h"

#include <errno.h>
#include <stdlib.h>

#include "piv.h"
#include "token-driver.h"

static const TokenDriver *const drivers[] = {
        &piv_driver,
};

static int transport_begin(TokenTransport *tr) {
        return tr->begin ? tr->begin(tr->userdata) : 0;
}

static void transport_end(TokenTransport *tr) {
        if (tr->end)
                tr->end(tr->userdata);
}

/* Opens the transaction of one public call; a card reset since the last
 * one lost the selected application, so select it again. */
static int transaction_begin(Token *t) {
        int r;

        r = transport_begin(t->transport);
        if (r <= 0)
                return r;
        r = t->driver->select(t);
        if (r < 0)
                transport_end(t->transport);
        return r;
}

static int select_driver(Token *t) {
        int r = -ENOENT;

        for (size_t i = 0; i < ELEMENTSOF(drivers) && r == -ENOENT; i++) {
                t->driver = drivers[i];
                r = t->driver->select(t);
        }
        return r == -ENOENT ? -EMEDIUMTYPE : r;
}

int token_open(TokenTransport *transport, Token **ret) {
        _cleanup_(token_freep) Token *t = NULL;
        int r;

        if (!transport || !transport->transmit || !ret)
                return -EINVAL;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->transport = transport;

        r = transport_begin(transport);
        if (r < 0)
                return r;
        r = select_driver(t);
        transport_end(transport);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(t);
        return 0;
}

Token *token_free(Token *t) {
        if (t) {
                if (t->data)
                        t->driver->free_data(t->data);
                free(t);
        }
        return NULL;
}

const char *token_driver_name(const Token *t) {
        return t->driver->name;
}

int token_identify(Token *t, TokenIdentity *ret) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->identify(t, ret);
        transport_end(t->transport);
        return r;
}

int token_list_certificates(Token *t, TokenCertificate **ret, size_t *ret_n) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->list_certificates(t, ret, ret_n);
        transport_end(t->transport);
        return r;
}

int token_read_certificate(Token *t, unsigned slot, TokenCertificate *ret) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->read_certificate(t, slot, ret);
        transport_end(t->transport);
        return r;
}

int token_pin_status(Token *t, TokenPinStatus *ret) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->pin_status(t, ret);
        transport_end(t->transport);
        return r;
}

int token_key_metadata(Token *t, unsigned slot, TokenKeyMetadata *ret) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->key_metadata(t, slot, ret);
        transport_end(t->transport);
        return r;
}

int token_verify_pin(Token *t, const char *pin, int *ret_retries_left) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->verify_pin(t, pin, ret_retries_left);
        transport_end(t->transport);
        return r;
}

int token_authenticate_mgm(Token *t, const uint8_t *key, size_t key_len, TokenAlgorithm alg) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->authenticate_mgm(t, key, key_len, alg);
        transport_end(t->transport);
        return r;
}

int token_mgm_info(Token *t, TokenMgmInfo *ret) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->mgm_info(t, ret);
        transport_end(t->transport);
        return r;
}

int token_get_protected_mgm_key(Token *t, uint8_t **ret_key, size_t *ret_key_len, TokenAlgorithm *ret_alg) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->get_protected_mgm_key(t, ret_key, ret_key_len, ret_alg);
        transport_end(t->transport);
        return r;
}

int token_generate_key(Token *t, unsigned slot, TokenAlgorithm alg, TokenPinPolicy pin_policy,
                       TokenTouchPolicy touch_policy, EVP_PKEY **ret_public) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->generate_key(t, slot, alg, pin_policy, touch_policy, ret_public);
        transport_end(t->transport);
        return r;
}

int token_sign(Token *t, unsigned slot, TokenAlgorithm alg, const uint8_t *in, size_t in_len,
               uint8_t **ret_sig, size_t *ret_sig_len) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->sign(t, slot, alg, in, in_len, ret_sig, ret_sig_len);
        transport_end(t->transport);
        return r;
}

int token_put_certificate(Token *t, unsigned slot, const uint8_t *der, size_t der_len) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->put_certificate(t, slot, der, der_len);
        transport_end(t->transport);
        return r;
}

int token_move_key(Token *t, unsigned from_slot, unsigned to_slot) {
        int r;

        r = transaction_begin(t);
        if (r < 0)
                return r;
        r = t->driver->move_key(t, from_slot, to_slot);
        transport_end(t->transport);
        return r;
}

void token_certificate_done(TokenCertificate *c) {
        if (c) {
                free(c->der);
                c->der = NULL;
                c->der_len = 0;
        }
}

void token_certificates_free(TokenCertificate *c, size_t n) {
        if (!c)
                return;
        for (size_t i = 0; i < n; i++)
                token_certificate_done(&c[i]);
        free(c);
}
