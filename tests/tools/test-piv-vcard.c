/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew's PIV driver against the virtual card's applet, in-process: two
 * implementations of SP 800-73-4 written apart, meeting without pcscd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "assert.h"
#include "card-objects.h"
#include "hex.h"
#include "macro.h"
#include "piv-applet.h"
#include "piv-card.h"
#include "tlv.h"
#include "token.h"

typedef struct Link {
        PivCard *card;
        bool reset_next; /* the next transaction finds the card reset */
        unsigned apdus;
} Link;

static int link_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                         size_t *ret_len) {
        Link *l = userdata;

        l->apdus++;
        return piv_applet_process(l->card, cmd, cmd_len, resp, resp_cap, ret_len);
}

static int link_begin(void *userdata) {
        Link *l = userdata;

        if (!l->reset_next)
                return 0;
        l->reset_next = false;
        piv_card_session_reset(l->card);
        return 1;
}

static X509 *load_cert(const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        X509 *x;

        ASSERT_TRUE(asprintf(&path, "%s/%s", getenv("KEYRENEW_TEST_DATA"), name) > 0);
        ASSERT_TRUE(f = fopen(path, "rb"));
        ASSERT_TRUE(x = d2i_X509_fp(f, NULL));
        return x;
}

static void put_cert(PivCard *card, uint8_t slot, const char *name) {
        X509 *x = load_cert(name);

        ASSERT_EQ(card_objects_put_certificate(card, slot, x), 0);
        X509_free(x);
}

static void expect_cert(const TokenCertificate *c, unsigned slot, const char *name) {
        X509 *x = load_cert(name);
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);

        ASSERT_EQ(c->slot, slot);
        ASSERT_EQ(c->der_len, n);
        ASSERT_MEMEQ(c->der, der, (size_t) n);
        OPENSSL_free(der);
        X509_free(x);
}

static void test_against_applet(void) {
        _cleanup_(piv_card_freep) PivCard *card = piv_card_new();
        _cleanup_(token_freep) Token *t = NULL;
        _cleanup_free_ char *guid = NULL;
        TokenCertificate *certs = NULL;
        TokenKeyMetadata m;
        TokenIdentity id;
        TokenPinStatus pin;
        const PivObject *chuid;
        Tlv content, field;
        EVP_PKEY *key;
        size_t n = 0;
        Link link = {};
        TokenTransport transport = {
                .transmit = link_transmit,
                .begin = link_begin,
                .userdata = &link,
        };

        ASSERT_TRUE(card);
        link.card = card;
        card->serial = 19088743;
        memcpy(card->version, (const uint8_t[]){ 5, 7, 1 }, 3);
        ASSERT_EQ(card_objects_put_chuid(card), 0);
        put_cert(card, 0x9A, "rsa2048.der");
        put_cert(card, 0x9C, "sm2.der");
        put_cert(card, 0x9D, "ec-p256.der");
        put_cert(card, 0x82, "big.der");
        ASSERT_TRUE(key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
        ASSERT_EQ(piv_card_set_key(card, 0x9D, PIV_ALG_ECCP256, PIV_PIN_POLICY_ALWAYS, 1,
                                   PIV_ORIGIN_GENERATED, key),
                  0);

        ASSERT_EQ(token_open(&transport, &t), 0);

        ASSERT_EQ(token_identify(t, &id), 0);
        ASSERT_EQ(id.serial_source, TOKEN_SERIAL_VENDOR);
        ASSERT_STREQ(id.serial, "19088743");
        ASSERT_TRUE(id.has_version);
        ASSERT_EQ(id.version[0], 5);
        ASSERT_EQ(id.version[1], 7);
        ASSERT_EQ(id.version[2], 1);
        /* The GUID is what the applet stored: 53 { 30 FASC-N, 34 GUID, ... }. */
        ASSERT_TRUE(chuid = piv_card_object(card, PIV_OBJ_CHUID));
        ASSERT_EQ(tlv_parse_single(chuid->data, chuid->len, &content), 0);
        ASSERT_EQ(tlv_find(content.value, content.length, 0x34, &field), 0);
        ASSERT_TRUE(guid = hex_encode(field.value, field.length));
        ASSERT_STREQ(id.guid, guid);

        ASSERT_EQ(token_list_certificates(t, &certs, &n), 0);
        ASSERT_EQ(n, 4);
        expect_cert(&certs[0], 0x9A, "rsa2048.der");
        expect_cert(&certs[1], 0x9C, "sm2.der");
        expect_cert(&certs[2], 0x9D, "ec-p256.der");
        expect_cert(&certs[3], 0x82, "big.der");
        token_certificates_free(certs, n);

        ASSERT_EQ(token_pin_status(t, &pin), 0);
        ASSERT_TRUE(!pin.verified);
        ASSERT_EQ(pin.retries, 3);
        card->pin_retries_left = 1;
        ASSERT_EQ(token_pin_status(t, &pin), 0);
        ASSERT_EQ(pin.retries, 1);
        card->pin_retries_left = 0;
        ASSERT_EQ(token_pin_status(t, &pin), 0);
        ASSERT_EQ(pin.retries, 0);
        card->pin_retries_left = 3;
        /* Asking spent nothing. */
        ASSERT_EQ(card->pin_retries_left, 3);

        ASSERT_EQ(token_key_metadata(t, 0x9D, &m), 0);
        ASSERT_STREQ(m.algorithm, "ec-p256");
        ASSERT_EQ(m.pin_policy, TOKEN_PIN_POLICY_ALWAYS);
        ASSERT_EQ(m.touch_policy, TOKEN_TOUCH_POLICY_NEVER);
        ASSERT_EQ(m.origin, TOKEN_KEY_ORIGIN_GENERATED);
        ASSERT_EQ(token_key_metadata(t, 0x9A, &m), -ENOENT);

        /* After a reset the applet knows no selection: the driver selects
         * again before it asks. */
        link.reset_next = true;
        ASSERT_EQ(token_pin_status(t, &pin), 0);
        ASSERT_EQ(pin.retries, 3);
        ASSERT_TRUE(card->session.selected);
}

int main(void) {
        RUN(test_against_applet);
        return 0;
}
