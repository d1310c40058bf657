/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PIV applet driven APDU by APDU, as a client would. */

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "assert.h"
#include "hex.h"
#include "macro.h"
#include "piv-applet.h"
#include "piv-crypto.h"
#include "tlv.h"

typedef struct Resp {
        uint8_t data[PIV_APDU_RESPONSE_MAX];
        size_t len; /* without the status word */
        uint16_t sw;
} Resp;

static void transmit(PivCard *c, const uint8_t *apdu, size_t len, Resp *r) {
        size_t n;

        ASSERT_EQ(piv_applet_process(c, apdu, len, r->data, sizeof r->data, &n), 0);
        ASSERT_TRUE(n >= 2);
        r->len = n - 2;
        r->sw = (uint16_t) (r->data[n - 2] << 8 | r->data[n - 1]);
}

/* Sends an APDU written in hex, returns the status word. */
static uint16_t send_hex(PivCard *c, const char *hex, Resp *r) {
        uint8_t apdu[300];
        Resp scratch;
        size_t len;

        ASSERT_EQ(hex_decode_into(hex, apdu, sizeof apdu, &len), 0);
        transmit(c, apdu, len, r ? r : &scratch);
        return r ? r->sw : scratch.sw;
}

/* Sends header + data (chained in 255-byte pieces like yubico-piv-tool,
 * no Le) and collects the whole answer through GET RESPONSE. */
static uint16_t send_long(PivCard *c, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data, size_t len,
                          uint8_t *out, size_t *out_len) {
        uint8_t apdu[5 + 255];
        static const uint8_t get_response[] = { 0x00, 0xC0, 0x00, 0x00, 0x00 };
        size_t off = 0, got = 0;
        Resp r;

        do {
                size_t n = len - off > 255 ? 255 : len - off;
                apdu[0] = len - off > 255 ? 0x10 : 0x00;
                apdu[1] = ins;
                apdu[2] = p1;
                apdu[3] = p2;
                apdu[4] = (uint8_t) n;
                memcpy(apdu + 5, data + off, n);
                transmit(c, apdu, 5 + n, &r);
                off += n;
                if (off < len)
                        ASSERT_EQ(r.sw, 0x9000);
        } while (off < len);
        for (;;) {
                if (out) {
                        memcpy(out + got, r.data, r.len);
                        got += r.len;
                }
                if (r.sw >> 8 != 0x61)
                        break;
                transmit(c, get_response, sizeof get_response, &r);
        }
        if (out_len)
                *out_len = got;
        return r.sw;
}

static PivCard *selected_card(void) {
        PivCard *c = piv_card_new();

        ASSERT_TRUE(c);
        ASSERT_EQ(send_hex(c, "00A4040009A00000030800001000", NULL), 0x9000);
        return c;
}

static void authenticate_mgm(PivCard *c) {
        uint8_t apdu[64], witness[16], challenge[16] = { 1, 2, 3 }, expect[16];
        size_t bs = piv_mgm_block_size(c->mgm_alg);
        uint8_t head[] = { 0x00, 0x87, c->mgm_alg, 0x9B };
        Resp r;
        Tlv t;

        memcpy(apdu, head, 4);
        memcpy(apdu + 4, (uint8_t[]){ 0x04, 0x7C, 0x02, 0x80, 0x00 }, 5);
        transmit(c, apdu, 9, &r);
        ASSERT_EQ(r.sw, 0x9000);
        ASSERT_EQ(r.len, 4 + bs);
        ASSERT_EQ(piv_mgm_crypt(c->mgm_alg, c->mgm_key, c->mgm_key_len, 0, r.data + 4, witness), 0);

        apdu[4] = (uint8_t) (2 + 2 * (2 + bs));
        apdu[5] = 0x7C;
        apdu[6] = (uint8_t) (2 * (2 + bs));
        apdu[7] = 0x80;
        apdu[8] = (uint8_t) bs;
        memcpy(apdu + 9, witness, bs);
        apdu[9 + bs] = 0x81;
        apdu[10 + bs] = (uint8_t) bs;
        memcpy(apdu + 11 + bs, challenge, bs);
        transmit(c, apdu, 11 + 2 * bs, &r);
        ASSERT_EQ(r.sw, 0x9000);
        ASSERT_EQ(tlv_find(r.data + 2, r.len - 2, 0x82, &t), 0);
        ASSERT_EQ(piv_mgm_crypt(c->mgm_alg, c->mgm_key, c->mgm_key_len, 1, challenge, expect), 0);
        ASSERT_EQ(t.length, bs);
        ASSERT_MEMEQ(t.value, expect, bs);
        ASSERT_TRUE(c->session.mgm_authenticated);
}

static void test_select(void) {
        _cleanup_(piv_card_freep) PivCard *c = piv_card_new();
        Resp r;
        Tlv apt, pix;

        /* nothing is selected after power on */
        ASSERT_EQ(send_hex(c, "00FD000000", NULL), 0x6D00);
        ASSERT_EQ(send_hex(c, "00A4040005A000000308", &r), 0x9000);
        ASSERT_EQ(tlv_parse_single(r.data, r.len, &apt), 0);
        ASSERT_EQ(apt.tag, 0x61);
        ASSERT_EQ(tlv_find(apt.value, apt.length, 0x4F, &pix), 0);
        ASSERT_EQ(pix.length, 6);
        /* the YubiKey OTP AID is not here, and PIV stays selected */
        ASSERT_EQ(send_hex(c, "00A4040008A000000527200101", NULL), 0x6A82);
        ASSERT_EQ(send_hex(c, "00FD000000", &r), 0x9000);
        ASSERT_EQ(r.len, 3);
        ASSERT_EQ(send_hex(c, "00F8000000", &r), 0x9000);
        ASSERT_EQ(r.len, 4);
        ASSERT_EQ(send_hex(c, "80FD000000", NULL), 0x6E00);
        /* YubiKey's management application: PIV is left, its PIN forgotten */
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00A4040008A000000527471117", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x6D00);
        ASSERT_EQ(send_hex(c, "00A4040005A000000308", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x63C3);
        ASSERT_EQ(send_hex(c, "00A4", NULL), 0x6700);
        ASSERT_EQ(send_hex(c, "00A4040009A0000003", NULL), 0x6700);
        piv_card_session_reset(c);
        ASSERT_EQ(send_hex(c, "00FD000000", NULL), 0x6D00);
}

static void test_mgm_key(uint8_t alg, const char *key_hex) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();
        static const char put[] = "00DB3FFF0A5C035FC1095303010203";
        char apdu[64];
        size_t len;

        if (key_hex) {
                c->mgm_alg = alg;
                ASSERT_EQ(hex_decode_into(key_hex, c->mgm_key, sizeof c->mgm_key, &len), 0);
                c->mgm_key_len = len;
        }
        ASSERT_EQ(send_hex(c, put, NULL), 0x6982);
        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, put, NULL), 0x9000);

        /* external authentication with a wrong answer fails and forgets */
        snprintf(apdu, sizeof apdu, "0087%02X9B047C028100", alg);
        ASSERT_EQ(send_hex(c, apdu, NULL), 0x9000);
        if (piv_mgm_block_size(alg) == 8)
                snprintf(apdu, sizeof apdu, "0087%02X9B0C7C0A82080000000000000000", alg);
        else
                snprintf(apdu, sizeof apdu, "0087%02X9B147C12821000000000000000000000000000000000", alg);
        ASSERT_EQ(send_hex(c, apdu, NULL), 0x6982);
        ASSERT_TRUE(!c->session.mgm_authenticated);
        ASSERT_EQ(send_hex(c, put, NULL), 0x6982);

        /* a witness answered without having asked for one */
        if (piv_mgm_block_size(alg) == 8)
                snprintf(apdu, sizeof apdu, "0087%02X9B0C7C0A80080000000000000000", alg);
        else
                snprintf(apdu, sizeof apdu, "0087%02X9B147C12801000000000000000000000000000000000", alg);
        ASSERT_EQ(send_hex(c, apdu, NULL), 0x6982);
        /* the wrong algorithm */
        snprintf(apdu, sizeof apdu, "0087%02X9B047C028000",
                 alg == PIV_ALG_3DES ? PIV_ALG_AES128 : PIV_ALG_3DES);
        ASSERT_EQ(send_hex(c, apdu, NULL), 0x6A86);
}

static void test_mgm_keys(void) {
        test_mgm_key(PIV_ALG_3DES, NULL);
        test_mgm_key(PIV_ALG_AES128, "00112233445566778899aabbccddeeff");
        test_mgm_key(PIV_ALG_AES192, "00112233445566778899aabbccddeeff0011223344556677");
        test_mgm_key(PIV_ALG_AES256, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

static void test_pin_retries_and_block(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();

        ASSERT_EQ(send_hex(c, "0020008000", NULL), 0x63C3);               /* status, with Lc 0 */
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x63C3);                 /* status, no Lc */
        ASSERT_EQ(send_hex(c, "0020008007313131313131FF", NULL), 0x6A80); /* PINs come padded to 8 */
        ASSERT_EQ(send_hex(c, "0020008008313131313131FFFF", NULL), 0x63C2);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(c->pin_retries_left, 3);
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "0020FF80", NULL), 0x9000); /* P1 FF: forget the PIN */
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x63C3);
        for (unsigned left = 2; left > 0; left--)
                ASSERT_EQ(send_hex(c, "0020008008393939393939FFFF", NULL), 0x63C0 | left);
        ASSERT_EQ(send_hex(c, "0020008008393939393939FFFF", NULL), 0x6983);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x6983);
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x6983);
        ASSERT_TRUE(c->dirty);

        /* a wrong PUK costs a PUK retry, the right one unblocks */
        ASSERT_EQ(send_hex(c, "002C00801031323334353637FF373737373737FFFF", NULL), 0x63C2);
        ASSERT_EQ(send_hex(c, "002C00801031323334353637383737373737FFFFFF", NULL),
                  0x6A80); /* short new PIN */
        ASSERT_EQ(send_hex(c, "002C0080103132333435363738373737373737FFFF", NULL), 0x9000);
        ASSERT_EQ(c->puk_retries_left, 3);
        ASSERT_EQ(send_hex(c, "0020008008373737373737FFFF", NULL), 0x9000);

        /* change the PIN, then the PUK */
        ASSERT_EQ(send_hex(c, "0024008010373737373737FFFF38383838383838FF", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "0020008008373737373737FFFF", NULL), 0x63C2);
        ASSERT_EQ(send_hex(c, "002000800838383838383838FF", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00240081103132333435363738FFFFFFFFFFFFFFFF", NULL), 0x6A80);
        ASSERT_EQ(send_hex(c, "00240081103132333435363738393939393939FFFF", NULL), 0x9000);
        ASSERT_EQ(memcmp(c->puk, "999999\xff\xff", 8), 0);
}

/* PUT DATA of a big object in chained pieces, GET DATA served in pieces. */
static void test_chaining_and_get_response(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();
        uint8_t cmd[2100], out[2100];
        size_t out_len;
        Resp r;

        authenticate_mgm(c);
        memcpy(cmd, (uint8_t[]){ 0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x82, 0x07, 0xD0 }, 9);
        for (size_t i = 0; i < 2000; i++)
                cmd[9 + i] = (uint8_t) i;
        ASSERT_EQ(send_long(c, 0xDB, 0x3F, 0xFF, cmd, 2009, NULL, NULL), 0x9000);
        ASSERT_EQ(send_long(c, 0xCB, 0x3F, 0xFF, cmd, 5, out, &out_len), 0x9000);
        ASSERT_EQ(out_len, 2004);
        ASSERT_MEMEQ(out, cmd + 5, 2004);

        /* the first read asks for 8 bytes; the rest waits, announced */
        ASSERT_EQ(send_hex(c, "00CB3FFF055C035FC10508", &r), 0x6100);
        ASSERT_EQ(r.len, 8);
        ASSERT_EQ(send_hex(c, "00C0000010", &r), 0x6100);
        ASSERT_EQ(r.len, 16);
        ASSERT_MEMEQ(r.data, cmd + 13, 16);
        /* a new command drops what was not fetched */
        ASSERT_EQ(send_hex(c, "00200080", NULL), 0x63C3);
        ASSERT_EQ(send_hex(c, "00C0000000", NULL), 0x6985);

        /* an abandoned chain does not leak into the next command */
        ASSERT_EQ(send_hex(c, "10DB3FFF035C035F", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00CB3FFF055C035FC107", NULL), 0x6A82);
        ASSERT_TRUE(!c->session.chaining);

        /* a chain longer than any command: 16 pieces fit, the 17th not */
        memset(cmd, 0, sizeof cmd);
        memcpy(cmd, (uint8_t[]){ 0x10, 0xDB, 0x3F, 0xFF, 0xFF }, 5);
        for (unsigned i = 0; i < 17; i++) {
                transmit(c, cmd, 5 + 255, &r);
                ASSERT_EQ(r.sw, i < 16 ? 0x9000 : 0x6700);
        }
        ASSERT_TRUE(!c->session.chaining);
        ASSERT_EQ(piv_card_object(c, 0x5FC105)->len, 2004);
}

static EVP_PKEY *public_key_from(const uint8_t *p, size_t len, uint8_t alg) {
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg == PIV_ALG_RSA2048 ? "RSA" : "EC", NULL);
        EVP_PKEY *pkey = NULL;
        OSSL_PARAM *params;
        BIGNUM *n = NULL, *e = NULL;
        Tlv outer, t;

        ASSERT_EQ(tlv_parse_single(p, len, &outer), 0);
        ASSERT_EQ(outer.tag, 0x7F49);
        if (alg == PIV_ALG_RSA2048) {
                ASSERT_EQ(tlv_find(outer.value, outer.length, 0x81, &t), 0);
                n = BN_bin2bn(t.value, (int) t.length, NULL);
                ASSERT_EQ(tlv_find(outer.value, outer.length, 0x82, &t), 0);
                e = BN_bin2bn(t.value, (int) t.length, NULL);
                ASSERT_TRUE(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n));
                ASSERT_TRUE(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e));
        } else {
                ASSERT_EQ(tlv_find(outer.value, outer.length, 0x86, &t), 0);
                ASSERT_TRUE(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0));
                ASSERT_TRUE(
                        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, t.value, t.length));
        }
        params = OSSL_PARAM_BLD_to_param(bld);
        ASSERT_TRUE(EVP_PKEY_fromdata_init(ctx) > 0);
        ASSERT_TRUE(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        EVP_PKEY_CTX_free(ctx);
        BN_free(n);
        BN_free(e);
        return pkey;
}

static void verify_signature(EVP_PKEY *pub, const uint8_t *digest, const uint8_t *answer, size_t len) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        Tlv outer, sig;

        ASSERT_EQ(tlv_parse_single(answer, len, &outer), 0);
        ASSERT_EQ(outer.tag, 0x7C);
        ASSERT_EQ(tlv_find(outer.value, outer.length, 0x82, &sig), 0);
        ASSERT_TRUE(EVP_PKEY_verify_init(ctx) > 0);
        if (EVP_PKEY_is_a(pub, "RSA")) {
                ASSERT_TRUE(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0);
                ASSERT_TRUE(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
        }
        ASSERT_EQ(EVP_PKEY_verify(ctx, sig.value, sig.length, digest, 32), 1);
        EVP_PKEY_CTX_free(ctx);
}

/* 7C { 82 00, 81 block } around what the client sends for a signature. */
static size_t sign_request(const uint8_t *block, size_t len, uint8_t *out) {
        TlvWriter w;
        size_t n;

        tlv_writer_init(&w, out, 400);
        tlv_open(&w, 0x7C);
        tlv_put(&w, 0x82, NULL, 0);
        tlv_put(&w, 0x81, block, len);
        tlv_close(&w);
        ASSERT_EQ(tlv_writer_finish(&w, &n), 0);
        return n;
}

static void test_generate_and_sign_ec(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();
        uint8_t digest[32], req[400], out[600];
        size_t req_len, out_len;
        EVP_PKEY *pub;
        Resp r;

        ASSERT_EQ(send_hex(c, "0047009A05AC03800111", NULL), 0x6982);
        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "0047009B05AC03800111", NULL), 0x6B00);
        ASSERT_EQ(send_hex(c, "0047009A05AC03800199", NULL), 0x6A80);
        ASSERT_EQ(send_hex(c, "0047009C05AC03800111", &r), 0x9000);
        ASSERT_EQ(send_hex(c, "0047009A05AC03800111", &r), 0x9000);
        pub = public_key_from(r.data, r.len, PIV_ALG_ECCP256);
        ASSERT_EQ(EVP_Digest("hello", 5, digest, NULL, EVP_sha256(), NULL), 1);
        req_len = sign_request(digest, 32, req);

        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9A, req, req_len, out, &out_len), 0x6982);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_long(c, 0x87, 0x07, 0x9A, req, req_len, out, &out_len), 0x6A86);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9A, req, req_len, out, &out_len), 0x9000);
        verify_signature(pub, digest, out, out_len);
        ASSERT_EQ(piv_card_key(c, 0x9A)->uses, 1);

        /* 9C wants the PIN right before each use */
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9C, req, req_len, out, &out_len), 0x9000);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9C, req, req_len, out, &out_len), 0x6982);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9C, req, req_len, out, &out_len), 0x9000);

        /* metadata of the key shows what was generated */
        ASSERT_EQ(send_hex(c, "00F7009A00", &r), 0x9000);
        ASSERT_EQ(r.data[0], 0x01);
        ASSERT_EQ(r.data[2], PIV_ALG_ECCP256);
        ASSERT_EQ(send_hex(c, "00F7009D00", NULL), 0x6A88);
        ASSERT_EQ(send_hex(c, "00F7008000", &r), 0x9000);
        ASSERT_MEMEQ(r.data, ((uint8_t[]){ 0x01, 0x01, 0xFF, 0x05, 0x01, 0x01, 0x06, 0x02, 0x03, 0x03 }),
                     10);
        ASSERT_EQ(send_hex(c, "00F7009B00", &r), 0x9000);
        ASSERT_MEMEQ(r.data, ((uint8_t[]){ 0x01, 0x01, 0x03 }), 3);
        EVP_PKEY_free(pub);
}

static void test_ecdh(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();
        EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *pub;
        uint8_t point[65], req[100], out[200], expect[32];
        size_t len, out_len, req_len, expect_len = sizeof expect;
        EVP_PKEY_CTX *ctx;
        TlvWriter w;
        Resp r;
        Tlv outer, secret;

        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "0047009D05AC03800111", &r), 0x9000);
        pub = public_key_from(r.data, r.len, PIV_ALG_ECCP256);
        ASSERT_TRUE(EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                                    sizeof point, &len));
        tlv_writer_init(&w, req, sizeof req);
        tlv_open(&w, 0x7C);
        tlv_put(&w, 0x82, NULL, 0);
        tlv_put(&w, 0x85, point, len);
        tlv_close(&w);
        ASSERT_EQ(tlv_writer_finish(&w, &req_len), 0);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9D, req, req_len, out, &out_len), 0x9000);
        ASSERT_EQ(tlv_parse_single(out, out_len, &outer), 0);
        ASSERT_EQ(tlv_find(outer.value, outer.length, 0x82, &secret), 0);

        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
        ASSERT_TRUE(EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, pub) > 0);
        ASSERT_TRUE(EVP_PKEY_derive(ctx, expect, &expect_len) > 0);
        ASSERT_EQ(secret.length, expect_len);
        ASSERT_MEMEQ(secret.value, expect, expect_len);

        /* a point that is not on the curve */
        req[7] ^= 0x01;
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9D, req, req_len, out, &out_len), 0x6A80);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(peer);
}

static void test_generate_and_sign_rsa(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();
        /* DigestInfo prefix of SHA-256, RFC 8017 9.2 */
        static const uint8_t prefix[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                          0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
        uint8_t gen[400], block[256], digest[32], req[400], out[600];
        size_t gen_len, req_len, out_len;
        EVP_PKEY *pub;

        authenticate_mgm(c);
        ASSERT_EQ(send_long(c, 0x47, 0x00, 0x9E, (uint8_t[]){ 0xAC, 0x03, 0x80, 0x01, 0x07 }, 5, gen,
                            &gen_len),
                  0x9000);
        ASSERT_TRUE(gen_len > 256); /* came in two pieces */
        pub = public_key_from(gen, gen_len, PIV_ALG_RSA2048);

        ASSERT_EQ(EVP_Digest("hello", 5, digest, NULL, EVP_sha256(), NULL), 1);
        memset(block, 0xFF, sizeof block);
        block[0] = 0x00;
        block[1] = 0x01;
        block[256 - 52] = 0x00;
        memcpy(block + 256 - 51, prefix, sizeof prefix);
        memcpy(block + 256 - 32, digest, 32);
        req_len = sign_request(block, sizeof block, req);
        /* 9E needs no PIN */
        ASSERT_EQ(send_long(c, 0x87, 0x07, 0x9E, req, req_len, out, &out_len), 0x9000);
        verify_signature(pub, digest, out, out_len);
        /* a block of the wrong size */
        req_len = sign_request(block, 255, req);
        ASSERT_EQ(send_long(c, 0x87, 0x07, 0x9E, req, req_len, out, &out_len), 0x6A80);
        EVP_PKEY_free(pub);
}

static void test_get_data_access(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();

        ASSERT_EQ(send_hex(c, "00CB3FFF055C035FC109", NULL), 0x6982);
        ASSERT_EQ(send_hex(c, "00CB3FFF035C017E", NULL), 0x6A82);
        ASSERT_EQ(send_hex(c, "00CB3FFE035C017E", NULL), 0x6A86);
        ASSERT_EQ(send_hex(c, "00CB3FFF035D017E", NULL), 0x6A80);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00CB3FFF055C035FC109", NULL), 0x6A82);
        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "00DB3FFF075C035FC1095300", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00DB3FFF075C035FC1097E00", NULL), 0x6A80);
        ASSERT_EQ(send_hex(c, "00DB3FFF075C03AABBCC5300", NULL), 0x6A80);
        ASSERT_EQ(send_hex(c, "00DB3FFF075C035FC1095301", NULL), 0x6A80);
        /* Yubico SET MANAGEMENT KEY to AES-128 */
        ASSERT_EQ(send_hex(c, "00FFFFFF13089B1000112233445566778899AABBCCDDEEFF", NULL), 0x9000);
        ASSERT_EQ(c->mgm_alg, PIV_ALG_AES128);
        authenticate_mgm(c);
}

static void test_reset(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();

        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "0047009A05AC03800111", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00DB3FFF085C035FC1025301AA", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00DB3FFF097E075F2F024000AABB", NULL), 0x6A80);
        ASSERT_EQ(send_hex(c, "00DB3FFF0A5C017E7E055F2F024000", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00FB0000", NULL), 0x6985);
        for (unsigned i = 0; i < 3; i++) {
                send_hex(c, "0020008008393939393939FFFF", NULL);
                send_hex(c, "002C0080103939393939393939393939393939FFFF", NULL);
        }
        ASSERT_EQ(c->pin_retries_left + c->puk_retries_left, 0);
        ASSERT_EQ(send_hex(c, "00FB0000", NULL), 0x9000);
        ASSERT_TRUE(!piv_card_key(c, 0x9A));
        ASSERT_EQ(c->n_objects, 1);
        ASSERT_TRUE(piv_card_object(c, PIV_OBJ_DISCOVERY));
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "0047009A05AC03800111", NULL), 0x6982);
        authenticate_mgm(c);
}

/* Yubico MOVE KEY (F6, 5.7): the key generated in 95 signs from 9A once
 * moved, with its policy, origin and use counter; 95 is empty then, and
 * the certificate objects stay where they were. P1 FF deletes. */
static void test_move_key(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();
        uint8_t digest[32], req[400], out[600];
        size_t req_len, out_len;
        EVP_PKEY *pub, *old;
        PivKey *k;
        Resp r;

        memcpy(c->version, (uint8_t[]){ 5, 7, 0 }, 3);
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x6982);
        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x6A88);
        ASSERT_EQ(send_hex(c, "0047009A05AC03800111", &r), 0x9000);
        old = public_key_from(r.data, r.len, PIV_ALG_ECCP256);
        ASSERT_EQ(send_hex(c, "0047009505AC03800111", &r), 0x9000);
        pub = public_key_from(r.data, r.len, PIV_ALG_ECCP256);
        ASSERT_EQ(piv_card_set_object(c, 0x5FC10D, "\x53\x01\x00", 3), 0);

        /* the new key signs from 95 while the old one is still in 9A */
        ASSERT_EQ(EVP_Digest("renewed", 7, digest, NULL, EVP_sha256(), NULL), 1);
        req_len = sign_request(digest, 32, req);
        ASSERT_EQ(send_hex(c, "0020008008313233343536FFFF", NULL), 0x9000);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x95, req, req_len, out, &out_len), 0x9000);
        verify_signature(pub, digest, out, out_len);

        /* slots that are none, the same one, the attestation key, data */
        ASSERT_EQ(send_hex(c, "00F6F995", NULL), 0x6A86);
        ASSERT_EQ(send_hex(c, "00F69595", NULL), 0x6A86);
        ASSERT_EQ(send_hex(c, "00F69A9B", NULL), 0x6A86);
        ASSERT_EQ(send_hex(c, "00F6FFFF", NULL), 0x6A86);
        ASSERT_EQ(send_hex(c, "00F69A950100", NULL), 0x6700);
        ASSERT_EQ(piv_card_key(c, 0x95)->uses, 1);

        c->dirty = false;
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x9000);
        ASSERT_TRUE(c->dirty);
        ASSERT_TRUE(!piv_card_key(c, 0x95));
        k = piv_card_key(c, 0x9A);
        ASSERT_TRUE(k);
        ASSERT_EQ(EVP_PKEY_eq(k->pkey, pub), 1);
        ASSERT_TRUE(EVP_PKEY_eq(k->pkey, old) != 1);
        ASSERT_EQ(k->algorithm, PIV_ALG_ECCP256);
        ASSERT_EQ(k->pin_policy, PIV_PIN_POLICY_ONCE);
        ASSERT_EQ(k->origin, PIV_ORIGIN_GENERATED);
        ASSERT_EQ(k->uses, 1);
        ASSERT_TRUE(piv_card_object(c, 0x5FC10D));
        ASSERT_TRUE(!piv_card_object(c, 0x5FC105));

        /* 9A signs with the moved key; 95 has none; metadata agrees */
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x9A, req, req_len, out, &out_len), 0x9000);
        verify_signature(pub, digest, out, out_len);
        ASSERT_EQ(k->uses, 2);
        ASSERT_EQ(send_long(c, 0x87, 0x11, 0x95, req, req_len, out, &out_len), 0x6A88);
        ASSERT_EQ(send_hex(c, "00F7009500", NULL), 0x6A88);
        ASSERT_EQ(send_hex(c, "00F7009A00", &r), 0x9000);
        ASSERT_MEMEQ(r.data, ((uint8_t[]){ 0x01, 0x01, 0x11, 0x02, 0x02, 0x02, 0x01, 0x03, 0x01, 0x01 }),
                     10);
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x6A88);

        /* the management key is forgotten with the session */
        piv_card_session_reset(c);
        ASSERT_EQ(send_hex(c, "00A4040005A000000308", NULL), 0x9000);
        ASSERT_EQ(send_hex(c, "00F6FF9A", NULL), 0x6982);
        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "00F6FF9A", NULL), 0x9000);
        ASSERT_TRUE(!piv_card_key(c, 0x9A));
        ASSERT_EQ(send_hex(c, "00F6FF9A", NULL), 0x6A88);
        ASSERT_EQ(send_hex(c, "00F7009A00", NULL), 0x6A88);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(old);
}

/* Before 5.7 a YubiKey does not know the instruction. */
static void test_move_key_old_firmware(void) {
        _cleanup_(piv_card_freep) PivCard *c = selected_card();

        authenticate_mgm(c);
        ASSERT_EQ(send_hex(c, "0047009505AC03800111", NULL), 0x9000);
        memcpy(c->version, (uint8_t[]){ 5, 6, 9 }, 3);
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x6D00);
        ASSERT_EQ(send_hex(c, "00F6FF95", NULL), 0x6D00);
        memcpy(c->version, (uint8_t[]){ 5, 4, 3 }, 3);
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x6D00);
        ASSERT_TRUE(piv_card_key(c, 0x95));
        ASSERT_TRUE(!piv_card_key(c, 0x9A));
        memcpy(c->version, (uint8_t[]){ 6, 0, 0 }, 3);
        ASSERT_EQ(send_hex(c, "00F69A95", NULL), 0x9000);
}

int main(void) {
        RUN(test_select);
        RUN(test_mgm_keys);
        RUN(test_pin_retries_and_block);
        RUN(test_chaining_and_get_response);
        RUN(test_generate_and_sign_ec);
        RUN(test_ecdh);
        RUN(test_generate_and_sign_rsa);
        RUN(test_get_data_access);
        RUN(test_reset);
        RUN(test_move_key);
        RUN(test_move_key_old_firmware);
        return 0;
}
