/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "piv-session.h"

#include <string.h>

#include "piv.h"
#include "secmem.h"
#include "token.h"
#include "x509-info.h"

/* Longer than one short APDU, so that PUT DATA is chained; any bytes
 * serve: a card does not parse the certificates it stores. */
static const uint8_t put_der[300] = { 0x30, 0x82, 0x01, 0x28 };

static void ingest(const TokenCertificate *c) {
        _cleanup_(x509_info_freep) X509Info *info = NULL;

        (void) x509_info_parse(c->der, c->der_len, &info);
}

static void read_side(Token *t) {
        TokenCertificate *certs = NULL, one = {};
        TokenKeyMetadata meta;
        TokenIdentity id;
        TokenPinStatus pin;
        TokenMgmInfo mgm;
        size_t n = 0;

        (void) token_identify(t, &id);
        if (token_list_certificates(t, &certs, &n) == 0) {
                for (size_t i = 0; i < n; i++)
                        ingest(&certs[i]);
                token_certificates_free(certs, n);
        }
        (void) token_pin_status(t, &pin);
        (void) token_key_metadata(t, PIV_SLOT_AUTHENTICATION, &meta);
        (void) token_key_metadata(t, PIV_SLOT_SIGNATURE, &meta);
        (void) token_mgm_info(t, &mgm);
        if (token_read_certificate(t, PIV_SLOT_SIGNATURE, &one) == 0) {
                ingest(&one);
                token_certificate_done(&one);
        }
}

static void secret_side(Token *t) {
        char *pin = secmem_alloc(9);
        uint8_t *mgm = secmem_alloc(24), *key = NULL;
        size_t key_len = 0;
        TokenAlgorithm alg;
        int retries;

        if (!pin || !mgm)
                goto out;
        memcpy(pin, "123456", 7);
        memcpy(mgm, piv_default_mgm_key_3des, 24);
        (void) token_verify_pin(t, pin, &retries);
        if (token_get_protected_mgm_key(t, &key, &key_len, &alg) == 0)
                secmem_free(key);
        (void) token_authenticate_mgm(t, mgm, 24, TOKEN_ALG_DEFAULT);
out:
        secmem_free(mgm);
        secmem_free(pin);
}

static void write_side(Token *t) {
        static const uint8_t hash[32] = { 1, 2, 3 };
        uint8_t block[256] = { 0x00, 0x01 };
        TokenCertificate back = {};
        EVP_PKEY *pub = NULL;
        uint8_t *sig = NULL;
        size_t sig_len = 0;

        if (token_generate_key(t, 0x82, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_ONCE, TOKEN_TOUCH_POLICY_DEFAULT,
                               &pub) == 0)
                EVP_PKEY_free(pub);
        if (token_generate_key(t, PIV_SLOT_KEY_MANAGEMENT, TOKEN_ALG_ECCP384, TOKEN_PIN_POLICY_DEFAULT,
                               TOKEN_TOUCH_POLICY_DEFAULT, &pub) == 0)
                EVP_PKEY_free(pub);
        if (token_sign(t, PIV_SLOT_AUTHENTICATION, TOKEN_ALG_ECCP256, hash, sizeof hash, &sig, &sig_len) ==
            0)
                free(sig);
        memset(block + 2, 0xFF, 200);
        if (token_sign(t, PIV_SLOT_CARD_AUTHENTICATION, TOKEN_ALG_RSA2048, block, sizeof block, &sig,
                       &sig_len) == 0)
                free(sig);
        (void) token_put_certificate(t, 0x82, put_der, sizeof put_der);
        if (token_read_certificate(t, 0x82, &back) == 0)
                token_certificate_done(&back);
        (void) token_move_key(t, 0x82, PIV_SLOT_AUTHENTICATION);
        (void) token_put_certificate(t, 0x82, NULL, 0);
}

void piv_session_run(TokenTransport *transport) {
        _cleanup_(token_freep) Token *t = NULL;

        if (token_open(transport, &t) < 0)
                return;
        read_side(t);
        secret_side(t);
        write_side(t);
}
