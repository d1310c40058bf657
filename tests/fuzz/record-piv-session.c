/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Records seeds for fuzz-piv-responses: piv-session.c run against the
 * virtual card's applet (tests/vcard), in-process, with every answer the
 * card gave written out in the fuzz target's input format (4-byte reset
 * mask, then 2-byte length + answer each).
 *
 *   record-piv-session DATA-DIR OUT-DIR
 *
 * DATA-DIR holds the test certificates (tests/data). Each seed is one card
 * set up differently; make-corpus.py runs this. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "card-objects.h"
#include "macro.h"
#include "piv-applet.h"
#include "piv-card.h"
#include "piv-crypto.h"
#include "piv-session.h"
#include "tlv.h"

typedef struct Recorder {
        PivCard *card;
        uint32_t resets;
        unsigned transaction;
        uint8_t *out;
        size_t len, cap;
} Recorder;

_noreturn_ static void die(const char *what) {
        fprintf(stderr, "record-piv-session: %s\n", what);
        exit(EXIT_FAILURE);
}

static void append(Recorder *r, const void *p, size_t n) {
        if (r->len + n > r->cap) {
                r->cap = (r->len + n) * 2;
                r->out = realloc(r->out, r->cap);
                if (!r->out)
                        die("out of memory");
        }
        memcpy(r->out + r->len, p, n);
        r->len += n;
}

static int rec_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                        size_t *ret_len) {
        Recorder *r = userdata;
        uint8_t prefix[2];
        int k;

        k = piv_applet_process(r->card, cmd, cmd_len, resp, resp_cap, ret_len);
        if (k < 0)
                die("the applet failed");
        prefix[0] = (uint8_t) (*ret_len >> 8);
        prefix[1] = (uint8_t) *ret_len;
        append(r, prefix, 2);
        append(r, resp, *ret_len);
        return 0;
}

static int rec_begin(void *userdata) {
        Recorder *r = userdata;
        unsigned i = r->transaction++;

        if (i >= 32 || !(r->resets >> i & 1u))
                return 0;
        piv_card_session_reset(r->card);
        return 1;
}

static X509 *load_cert(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        X509 *x;

        if (asprintf(&path, "%s/%s", dir, name) < 0 || !(f = fopen(path, "rb")) ||
            !(x = d2i_X509_fp(f, NULL)))
                die(name);
        return x;
}

static void put_cert(PivCard *c, const char *dir, uint8_t slot, const char *name) {
        X509 *x = load_cert(dir, name);

        if (card_objects_put_certificate(c, slot, x) < 0)
                die("cannot store a certificate");
        X509_free(x);
}

/* The certificate object with CertInfo 01: gzip, as some cards keep them. */
static void put_gzip_cert(PivCard *c, const char *dir, uint8_t slot, const char *name) {
        X509 *x = load_cert(dir, name);
        unsigned char *der = NULL;
        uint8_t gz[4096], obj[4200];
        z_stream z = {};
        size_t n = 0;
        TlvWriter w;
        int len = i2d_X509(x, &der);

        if (len <= 0 || deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                die("cannot compress");
        z.next_in = der;
        z.avail_in = (uInt) len;
        z.next_out = gz;
        z.avail_out = sizeof gz;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
                die("cannot compress");
        tlv_writer_init(&w, obj, sizeof obj);
        (void) tlv_open(&w, 0x53);
        (void) tlv_put(&w, 0x70, gz, z.total_out);
        (void) tlv_put_u8(&w, 0x71, 0x01);
        (void) tlv_put(&w, 0xFE, NULL, 0);
        (void) tlv_close(&w);
        if (tlv_writer_finish(&w, &n) < 0 || piv_card_set_object(c, piv_slot_cert_tag(slot), obj, n) < 0)
                die("cannot store a compressed certificate");
        (void) deflateEnd(&z);
        OPENSSL_free(der);
        X509_free(x);
}

static void set_key(PivCard *c, uint8_t slot, uint8_t alg, uint8_t pin_policy) {
        EVP_PKEY *k = NULL;

        if (piv_key_generate(alg, &k) < 0 ||
            piv_card_set_key(c, slot, alg, pin_policy, 1, PIV_ORIGIN_GENERATED, k) < 0)
                die("cannot make a key");
}

typedef enum Setup {
        SETUP_FULL,    /* a YubiKey-like card in use: CHUID, four certificates, keys, protected key */
        SETUP_EMPTY,   /* out of the box: nothing stored */
        SETUP_GZIP,    /* certificates kept compressed */
        SETUP_BLOCKED, /* PIN blocked, another management key */
} Setup;

static PivCard *make_card(Setup setup, const char *dir) {
        PivCard *c = piv_card_new();

        if (!c)
                die("out of memory");
        c->serial = 19088743;
        memcpy(c->version, (const uint8_t[]){ 5, 7, 1 }, 3);
        if (setup == SETUP_EMPTY)
                return c;
        if (card_objects_put_chuid(c) < 0)
                die("cannot store the CHUID");
        set_key(c, 0x9A, PIV_ALG_ECCP256, PIV_PIN_POLICY_ONCE);
        set_key(c, 0x9C, PIV_ALG_ECCP256, PIV_PIN_POLICY_ALWAYS);
        set_key(c, 0x9E, PIV_ALG_RSA2048, PIV_PIN_POLICY_NEVER);
        if (setup == SETUP_GZIP) {
                put_gzip_cert(c, dir, 0x9A, "ec-p256.der");
                put_gzip_cert(c, dir, 0x9C, "rsa2048.der");
                return c;
        }
        put_cert(c, dir, 0x9A, "ec-p256.der");
        put_cert(c, dir, 0x9C, "sm2.der");
        put_cert(c, dir, 0x9D, "ec-p384.der");
        put_cert(c, dir, 0x95, "big.der");
        if (setup == SETUP_BLOCKED) {
                c->pin_retries_left = 0;
                memset(c->mgm_key, 0x5A, c->mgm_key_len);
                return c;
        }
        if (card_objects_put_protected_mgm(c) < 0)
                die("cannot store the protected management key");
        return c;
}

static void record(const char *dir, const char *out_dir, const char *name, Setup setup, uint32_t resets) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        Recorder r = { .card = make_card(setup, dir), .resets = resets };
        TokenTransport transport = {
                .transmit = rec_transmit,
                .begin = rec_begin,
                .userdata = &r,
        };
        uint8_t mask[4] = { resets, resets >> 8, resets >> 16, resets >> 24 };

        append(&r, mask, sizeof mask);
        piv_session_run(&transport);
        if (asprintf(&path, "%s/%s", out_dir, name) < 0 || !(f = fopen(path, "wbe")) ||
            fwrite(r.out, 1, r.len, f) != r.len)
                die(name);
        free(r.out);
        piv_card_free(r.card);
}

int main(int argc, char **argv) {
        if (argc != 3)
                die("usage: record-piv-session DATA-DIR OUT-DIR");
        record(argv[1], argv[2], "full", SETUP_FULL, 0);
        /* Resets before identify, the certificate list and the read of 9C
         * (transactions 1, 2 and 7; 0 is token_open()). */
        record(argv[1], argv[2], "full-resets", SETUP_FULL, 1u << 1 | 1u << 2 | 1u << 7);
        record(argv[1], argv[2], "empty", SETUP_EMPTY, 0);
        record(argv[1], argv[2], "gzip", SETUP_GZIP, 0);
        record(argv[1], argv[2], "blocked", SETUP_BLOCKED, 0);
        return EXIT_SUCCESS;
}
