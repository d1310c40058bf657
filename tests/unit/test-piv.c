/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "assert.h"
#include "macro.h"
#include "piv.h"
#include "scripted-card.h"
#include "tlv.h"
#include "token.h"

#define SELECT "00 A4 04 00 05 A0 00 00 03 08 00"
/* A YubiKey's answer: 61 { 4F PIX, 79 { 4F NIST RID } }, and one with a label. */
#define APT "61 11 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08 90 00"
#define APT_LABEL \
        "61 1B 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08 50 08 54 65 73 74 0A 50 49 56 90 00"
#define GET_SERIAL "00 F8 00 00 00"
#define GET_VERSION "00 FD 00 00 00"
#define GET_CHUID "00 CB 3F FF 05 5C 03 5F C1 02 00"
#define FASCN "D4 E7 39 DA 73 9C ED 39 CE 73 9D 83 68 58 21 08 42 10 84 21 C8 42 10 C3 EB"
#define GUID "00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF"
#define ZERO_GUID "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"

static ScriptedCard card;

static Token *open_token(const char *apt) {
        Token *t = NULL;

        script(&card, SELECT, apt);
        ASSERT_EQ(token_open(&card.transport, &t), 0);
        ASSERT_STREQ(token_driver_name(t), "piv");
        return t;
}

static void test_not_piv(void) {
        Token *t = NULL;

        scripted_card_init(&card);
        script(&card, SELECT, "6A 82");
        ASSERT_EQ(token_open(&card.transport, &t), -EMEDIUMTYPE);
        script(&card, SELECT, "6D 00");
        ASSERT_EQ(token_open(&card.transport, &t), -EMEDIUMTYPE);
        /* The card is gone: that is no "wrong card". */
        script_error(&card, SELECT, -ENOMEDIUM);
        ASSERT_EQ(token_open(&card.transport, &t), -ENOMEDIUM);
        /* A template that does not parse. */
        script(&card, SELECT, "61 13 4F 06 00 00 10 00 01 00 90 00");
        ASSERT_EQ(token_open(&card.transport, &t), -EBADMSG);
        script(&card, SELECT, "4F 06 00 00 10 00 01 00 90 00");
        ASSERT_EQ(token_open(&card.transport, &t), -EBADMSG);
        ASSERT_TRUE(!t);
        /* A transaction that cannot start. */
        card.next_begin = -EBUSY;
        ASSERT_EQ(token_open(&card.transport, &t), -EBUSY);
        scripted_card_finish(&card);
}

static void test_identify_yubikey(void) {
        _cleanup_(token_freep) Token *t = NULL;
        TokenIdentity id;

        scripted_card_init(&card);
        t = open_token(APT);
        script(&card, GET_SERIAL, "00 BC 61 4E 90 00");
        script(&card, GET_VERSION, "05 04 03 90 00");
        script(&card, GET_CHUID,
               "53 3B 30 19 " FASCN " 34 10 " GUID " 35 08 32 30 33 30 30 31 30 31 3E 00 FE 00 90 00");
        ASSERT_EQ(token_identify(t, &id), 0);
        ASSERT_EQ(id.serial_source, TOKEN_SERIAL_VENDOR);
        ASSERT_STREQ(id.serial, "12345678");
        ASSERT_STREQ(id.guid, "00112233445566778899aabbccddeeff");
        ASSERT_STREQ(id.fascn, "d4e739da739ced39ce739d836858210842108421c84210c3eb");
        ASSERT_STREQ(id.label, "");
        ASSERT_TRUE(id.has_version);
        ASSERT_EQ(id.version[0], 5);
        ASSERT_EQ(id.version[1], 4);
        ASSERT_EQ(id.version[2], 3);
        scripted_card_finish(&card);
}

static void test_identify_plain_card(void) {
        _cleanup_(token_freep) Token *t = NULL;
        TokenIdentity id;

        scripted_card_init(&card);
        t = open_token(APT_LABEL);

        /* No YubiKey commands: the GUID is the serial; the label is made
         * printable. */
        script(&card, GET_SERIAL, "6D 00");
        script(&card, GET_VERSION, "6D 00");
        script(&card, GET_CHUID, "53 2D 30 19 " FASCN " 34 10 " GUID " 90 00");
        ASSERT_EQ(token_identify(t, &id), 0);
        ASSERT_EQ(id.serial_source, TOKEN_SERIAL_GUID);
        ASSERT_STREQ(id.serial, "00112233445566778899aabbccddeeff");
        ASSERT_STREQ(id.label, "Test?PIV");
        ASSERT_TRUE(!id.has_version);

        /* A GUID of zeros means none: the FASC-N is next. A serial answer
         * of the wrong size is no serial. */
        script(&card, GET_SERIAL, "01 02 90 00");
        script(&card, GET_VERSION, "6E 00");
        script(&card, GET_CHUID, "53 2D 30 19 " FASCN " 34 10 " ZERO_GUID " 90 00");
        ASSERT_EQ(token_identify(t, &id), 0);
        ASSERT_EQ(id.serial_source, TOKEN_SERIAL_FASCN);
        ASSERT_STREQ(id.serial, "d4e739da739ced39ce739d836858210842108421c84210c3eb");

        /* No CHUID at all: nothing to tell the card apart, and no error. */
        script(&card, GET_SERIAL, "6D 00");
        script(&card, GET_VERSION, "6D 00");
        script(&card, GET_CHUID, "6A 82");
        ASSERT_EQ(token_identify(t, &id), 0);
        ASSERT_EQ(id.serial_source, TOKEN_SERIAL_NONE);
        ASSERT_STREQ(id.serial, "");

        /* A CHUID with a GUID of the wrong size, or cut short. */
        script(&card, GET_SERIAL, "6D 00");
        script(&card, GET_VERSION, "6D 00");
        script(&card, GET_CHUID, "53 04 34 02 00 11 90 00");
        ASSERT_EQ(token_identify(t, &id), -EBADMSG);
        script(&card, GET_SERIAL, "6D 00");
        script(&card, GET_VERSION, "6D 00");
        script(&card, GET_CHUID, "53 2D 30 19 " FASCN " 34 10 00 11 22 90 00");
        ASSERT_EQ(token_identify(t, &id), -EBADMSG);

        /* Transport errors end it. */
        script_error(&card, GET_SERIAL, -ENOMEDIUM);
        ASSERT_EQ(token_identify(t, &id), -ENOMEDIUM);
        scripted_card_finish(&card);
}

/* 53 { 70 der, 71 certinfo, FE } as the card stores it. */
static uint8_t *cert_object(const uint8_t *der, size_t len, uint8_t certinfo, size_t *ret_len) {
        size_t cap = len + 32;
        uint8_t *buf = malloc(cap);
        TlvWriter w;

        ASSERT_TRUE(buf);
        tlv_writer_init(&w, buf, cap);
        tlv_open(&w, 0x53);
        tlv_put(&w, 0x70, der, len);
        tlv_put_u8(&w, 0x71, certinfo);
        tlv_put(&w, 0xFE, NULL, 0);
        tlv_close(&w);
        ASSERT_EQ(tlv_writer_finish(&w, ret_len), 0);
        return buf;
}

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *ret_len) {
        z_stream z = { .next_in = (Bytef *) in, .avail_in = (uInt) len };
        size_t cap = len + 128;
        uint8_t *out = malloc(cap);

        ASSERT_TRUE(out);
        ASSERT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_out = out;
        z.avail_out = (uInt) cap;
        ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
        *ret_len = z.total_out;
        ASSERT_EQ(deflateEnd(&z), Z_OK);
        return out;
}

static void get_data_cmd(char out[static 40], unsigned slot) {
        snprintf(out, 40, "00 CB 3F FF 05 5C 03 5F C1 %02X 00", piv_slot_object(slot) & 0xFF);
}

static void script_object(unsigned slot, const uint8_t *der, size_t len, uint8_t certinfo) {
        _cleanup_free_ uint8_t *obj = NULL;
        char cmd[40];
        size_t n;

        obj = cert_object(der, len, certinfo, &n);
        get_data_cmd(cmd, slot);
        script_long(&card, cmd, obj, n, 0x9000);
}

static void test_list_certificates(void) {
        _cleanup_free_ uint8_t *rsa = NULL, *sm2 = NULL, *big = NULL, *p256 = NULL, *p256_gz = NULL;
        _cleanup_(token_freep) Token *t = NULL;
        size_t rsa_len, sm2_len, big_len, p256_len, p256_gz_len, n = 0;
        TokenCertificate *certs = NULL;
        char cmd[40];

        rsa = read_test_file("rsa2048.der", &rsa_len);
        sm2 = read_test_file("sm2.der", &sm2_len);
        big = read_test_file("big.der", &big_len);
        p256 = read_test_file("ec-p256.der", &p256_len);
        p256_gz = gzip(p256, p256_len, &p256_gz_len);

        scripted_card_init(&card);
        t = open_token(APT);
        script_object(0x9A, rsa, rsa_len, 0x00); /* 4 rounds of GET RESPONSE */
        script_object(0x9C, sm2, sm2_len, 0x00);
        script_object(0x9D, big, big_len, 0x00); /* 10 rounds */
        get_data_cmd(cmd, 0x9E);
        script(&card, cmd, "6A 82");
        script_object(0x82, p256_gz, p256_gz_len, 0x01);
        get_data_cmd(cmd, 0x83);
        /* A "deleted" certificate: an object with nothing in it. */
        script(&card, cmd, "53 00 90 00");
        get_data_cmd(cmd, 0x84);
        script(&card, cmd, "53 05 70 00 71 01 00 90 00");
        for (unsigned slot = 0x85; slot <= 0x95; slot++) {
                get_data_cmd(cmd, slot);
                script(&card, cmd, "6A 82");
        }
        ASSERT_EQ(token_list_certificates(t, &certs, &n), 0);
        ASSERT_EQ(n, 4);
        ASSERT_EQ(certs[0].slot, 0x9A);
        ASSERT_STREQ(certs[0].slot_name, "9a");
        ASSERT_EQ(certs[0].der_len, rsa_len);
        ASSERT_MEMEQ(certs[0].der, rsa, rsa_len);
        ASSERT_EQ(certs[1].slot, 0x9C);
        ASSERT_EQ(certs[1].der_len, sm2_len);
        ASSERT_MEMEQ(certs[1].der, sm2, sm2_len);
        ASSERT_EQ(certs[2].slot, 0x9D);
        ASSERT_EQ(certs[2].der_len, big_len);
        ASSERT_MEMEQ(certs[2].der, big, big_len);
        ASSERT_EQ(certs[3].slot, 0x82);
        ASSERT_STREQ(certs[3].slot_name, "82");
        ASSERT_EQ(certs[3].der_len, p256_len);
        ASSERT_MEMEQ(certs[3].der, p256, p256_len);
        token_certificates_free(certs, n);

        /* An empty card. */
        for (size_t i = 0; i < 24; i++) {
                static const unsigned slots[] = { 0x9A, 0x9C, 0x9D, 0x9E };

                get_data_cmd(cmd, i < 4 ? slots[i] : 0x82 + (unsigned) i - 4);
                script(&card, cmd, "6A 82");
        }
        certs = (TokenCertificate *) 1;
        ASSERT_EQ(token_list_certificates(t, &certs, &n), 0);
        ASSERT_EQ(n, 0);
        ASSERT_TRUE(!certs);

        /* A transport error half-way drops what was read. */
        script_object(0x9A, rsa, rsa_len, 0x00);
        get_data_cmd(cmd, 0x9C);
        script_error(&card, cmd, -ENOMEDIUM);
        ASSERT_EQ(token_list_certificates(t, &certs, &n), -ENOMEDIUM);
        scripted_card_finish(&card);
}

static void expect_read(Token *t, const char *resp_hex, int expected) {
        TokenCertificate c = { .der = (uint8_t *) 1 };

        script(&card, "00 CB 3F FF 05 5C 03 5F C1 0A 00", resp_hex);
        ASSERT_EQ(token_read_certificate(t, 0x9C, &c), expected);
        ASSERT_TRUE(c.der == (uint8_t *) 1);
}

static void test_malformed_objects(void) {
        _cleanup_free_ uint8_t *rsa = NULL, *obj = NULL, *gz = NULL;
        _cleanup_(token_freep) Token *t = NULL;
        size_t rsa_len, n, gz_len;
        TokenCertificate c;

        rsa = read_test_file("rsa2048.der", &rsa_len);
        scripted_card_init(&card);
        t = open_token(APT);

        expect_read(t, "6A 82", -ENOENT);
        expect_read(t, "90 00", -ENOENT);
        /* Not a 53; a 53 running past the data; bytes after the 53. */
        expect_read(t, "54 03 70 01 30 90 00", -EBADMSG);
        expect_read(t, "53 82 03 50 70 01 90 00", -EBADMSG);
        expect_read(t, "53 03 70 01 30 00 90 00", -EBADMSG);
        /* Inside: a 70 running past its 53, two 70s, a CertInfo of two bytes. */
        expect_read(t, "53 03 70 05 30 90 00", -EBADMSG);
        expect_read(t, "53 06 70 01 30 70 01 30 90 00", -EBADMSG);
        expect_read(t, "53 07 70 01 30 71 02 00 00 90 00", -EBADMSG);
        expect_read(t, "53 04 70 82 01 90 00", -EBADMSG);
        /* "Compressed" data that are not gzip. */
        expect_read(t, "53 08 70 03 30 01 00 71 01 01 90 00", -EBADMSG);

        /* gzip cut short; gzip with bytes after it. */
        gz = gzip(rsa, rsa_len, &gz_len);
        obj = cert_object(gz, gz_len - 5, 0x01, &n);
        script_long(&card, "00 CB 3F FF 05 5C 03 5F C1 0A 00", obj, n, 0x9000);
        ASSERT_EQ(token_read_certificate(t, 0x9C, &c), -EBADMSG);
        free(obj);
        gz = realloc(gz, gz_len + 1);
        ASSERT_TRUE(gz);
        gz[gz_len] = 0;
        obj = cert_object(gz, gz_len + 1, 0x01, &n);
        script_long(&card, "00 CB 3F FF 05 5C 03 5F C1 0A 00", obj, n, 0x9000);
        ASSERT_EQ(token_read_certificate(t, 0x9C, &c), -EBADMSG);
        /* Intact, it reads. */
        free(obj);
        obj = cert_object(gz, gz_len, 0x01, &n);
        script_long(&card, "00 CB 3F FF 05 5C 03 5F C1 0A 00", obj, n, 0x9000);
        ASSERT_EQ(token_read_certificate(t, 0x9C, &c), 0);
        ASSERT_EQ(c.der_len, rsa_len);
        ASSERT_MEMEQ(c.der, rsa, rsa_len);
        token_certificate_done(&c);

        /* No such slot: no APDU either. */
        ASSERT_EQ(token_read_certificate(t, 0x9B, &c), -EINVAL);
        ASSERT_EQ(token_read_certificate(t, 0x96, &c), -EINVAL);
        scripted_card_finish(&card);
}

static void test_slot_objects(void) {
        ASSERT_EQ(piv_slot_object(0x9A), 0x5FC105);
        ASSERT_EQ(piv_slot_object(0x9C), 0x5FC10A);
        ASSERT_EQ(piv_slot_object(0x9D), 0x5FC10B);
        ASSERT_EQ(piv_slot_object(0x9E), 0x5FC101);
        ASSERT_EQ(piv_slot_object(0x82), 0x5FC10D);
        ASSERT_EQ(piv_slot_object(0x95), 0x5FC120);
        ASSERT_EQ(piv_slot_object(0x81), 0);
        ASSERT_EQ(piv_slot_object(0x9B), 0);
        ASSERT_EQ(piv_slot_object(0xF9), 0);
}

static void test_pin_status(void) {
        _cleanup_(token_freep) Token *t = NULL;
        TokenPinStatus s;

        scripted_card_init(&card);
        t = open_token(APT);
        /* VERIFY without data: case 1, no Lc, no Le. */
        script(&card, "00 20 00 80", "63 C3");
        ASSERT_EQ(token_pin_status(t, &s), 0);
        ASSERT_TRUE(!s.verified);
        ASSERT_EQ(s.retries, 3);
        script(&card, "00 20 00 80", "90 00");
        ASSERT_EQ(token_pin_status(t, &s), 0);
        ASSERT_TRUE(s.verified);
        ASSERT_EQ(s.retries, -1);
        script(&card, "00 20 00 80", "69 83");
        ASSERT_EQ(token_pin_status(t, &s), 0);
        ASSERT_TRUE(!s.verified);
        ASSERT_EQ(s.retries, 0);
        script(&card, "00 20 00 80", "63 C0");
        ASSERT_EQ(token_pin_status(t, &s), 0);
        ASSERT_EQ(s.retries, 0);
        script(&card, "00 20 00 80", "6A 88");
        ASSERT_EQ(token_pin_status(t, &s), -ENOENT);

        /* The card was reset since the last call: SELECT again first. */
        card.next_begin = 1;
        script(&card, SELECT, APT);
        script(&card, "00 20 00 80", "63 C2");
        ASSERT_EQ(token_pin_status(t, &s), 0);
        ASSERT_EQ(s.retries, 2);
        /* ... and if PIV is gone after the reset, say so. */
        card.next_begin = 1;
        script(&card, SELECT, "6A 82");
        ASSERT_EQ(token_pin_status(t, &s), -ENOENT);
        scripted_card_finish(&card);
}

static void test_key_metadata(void) {
        _cleanup_(token_freep) Token *t = NULL;
        TokenKeyMetadata m;

        scripted_card_init(&card);
        t = open_token(APT);
        /* 01 algorithm, 02 policy (PIN once, touch cached), 03 origin
         * generated, 04 public key (left alone). */
        script(&card, "00 F7 00 9A 00", "01 01 07 02 02 02 03 03 01 01 04 03 81 01 00 90 00");
        ASSERT_EQ(token_key_metadata(t, 0x9A, &m), 0);
        ASSERT_EQ(m.algorithm_id, 0x07);
        ASSERT_STREQ(m.algorithm, "rsa2048");
        ASSERT_EQ(m.pin_policy, TOKEN_PIN_POLICY_ONCE);
        ASSERT_EQ(m.touch_policy, TOKEN_TOUCH_POLICY_CACHED);
        ASSERT_EQ(m.origin, TOKEN_KEY_ORIGIN_GENERATED);

        script(&card, "00 F7 00 9C 00", "01 01 11 02 02 01 01 03 01 02 90 00");
        ASSERT_EQ(token_key_metadata(t, 0x9C, &m), 0);
        ASSERT_STREQ(m.algorithm, "ec-p256");
        ASSERT_EQ(m.pin_policy, TOKEN_PIN_POLICY_NEVER);
        ASSERT_EQ(m.origin, TOKEN_KEY_ORIGIN_IMPORTED);

        script(&card, "00 F7 00 9D 00", "01 01 99 90 00");
        ASSERT_EQ(token_key_metadata(t, 0x9D, &m), 0);
        ASSERT_STREQ(m.algorithm, "unknown");

        script(&card, "00 F7 00 9E 00", "6A 88");
        ASSERT_EQ(token_key_metadata(t, 0x9E, &m), -ENOENT);
        script(&card, "00 F7 00 9E 00", "6D 00");
        ASSERT_EQ(token_key_metadata(t, 0x9E, &m), -EOPNOTSUPP);
        script(&card, "00 F7 00 9E 00", "6B 00");
        ASSERT_EQ(token_key_metadata(t, 0x9E, &m), -EOPNOTSUPP);
        /* No algorithm; a policy out of range; a TLV cut short. */
        script(&card, "00 F7 00 9E 00", "03 01 01 90 00");
        ASSERT_EQ(token_key_metadata(t, 0x9E, &m), -EBADMSG);
        script(&card, "00 F7 00 9E 00", "01 01 07 02 02 09 01 90 00");
        ASSERT_EQ(token_key_metadata(t, 0x9E, &m), -EBADMSG);
        script(&card, "00 F7 00 9E 00", "01 01 07 02 05 01 90 00");
        ASSERT_EQ(token_key_metadata(t, 0x9E, &m), -EBADMSG);
        ASSERT_EQ(token_key_metadata(t, 0x9B, &m), -EINVAL);
        scripted_card_finish(&card);
}

int main(void) {
        RUN(test_not_piv);
        RUN(test_identify_yubikey);
        RUN(test_identify_plain_card);
        RUN(test_list_certificates);
        RUN(test_malformed_objects);
        RUN(test_slot_objects);
        RUN(test_pin_status);
        RUN(test_key_metadata);
        return 0;
}
