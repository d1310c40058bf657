/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "assert.h"
#include "hex.h"
#include "macro.h"
#include "scripted-card.h"

static ScriptedCard card;

static void begin(void) {
        scripted_card_init(&card);
        ASSERT_EQ(card.transport.begin(card.transport.userdata), 0);
}

static void finish(void) {
        card.transport.end(card.transport.userdata);
        scripted_card_finish(&card);
}

static void test_case1_and_case2(void) {
        ApduResponse r;

        begin();
        /* Case 1: header only. Case 2: Le = 00. */
        script(&card, "00 20 00 80", "63 C2");
        script(&card, "00 FD 00 00 00", "05 04 03 90 00");
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0x20, .p2 = 0x80 }, &r), 0);
        ASSERT_EQ(r.sw, 0x63C2);
        ASSERT_EQ(r.len, 0);
        ASSERT_TRUE(!r.data);
        apdu_response_done(&r);

        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r), 0);
        ASSERT_EQ(r.sw, 0x9000);
        ASSERT_EQ(r.len, 3);
        ASSERT_MEMEQ(r.data, "\x05\x04\x03", 3);
        apdu_response_done(&r);
        finish();
}

/* Scripts a PUT DATA piece: header (CLA cla), Lc, n bytes of data, and Le
 * 00 when le; answered with resp_hex. */
static void script_piece(uint8_t cla, const uint8_t *data, size_t n, bool le, const char *resp_hex) {
        _cleanup_free_ uint8_t *resp = NULL;
        uint8_t cmd[261] = { cla, 0xDB, 0x3F, 0xFF, (uint8_t) n };
        size_t resp_len;

        memcpy(cmd + 5, data, n);
        cmd[5 + n] = 0x00;
        ASSERT_EQ(hex_decode(resp_hex, &resp, &resp_len), 0);
        script_bytes(&card, cmd, 5 + n + le, resp, resp_len);
}

static void test_chaining(void) {
        uint8_t data[600];
        ApduCommand c = {
                .ins = 0xDB, .p1 = 0x3F, .p2 = 0xFF, .data = data, .data_len = sizeof data, .want_data = true
        };
        ApduResponse r;

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) i;

        /* 600 bytes: 255 + 255 with CLA 10, then 90 with CLA 00 and Le. */
        begin();
        script_piece(0x10, data, 255, false, "90 00");
        script_piece(0x10, data + 255, 255, false, "90 00");
        script_piece(0x00, data + 510, 90, true, "AA 90 00");
        ASSERT_EQ(apdu_exchange(&card.transport, &c, &r), 0);
        ASSERT_EQ(r.sw, 0x9000);
        ASSERT_EQ(r.len, 1);
        ASSERT_EQ(r.data[0], 0xAA);
        apdu_response_done(&r);

        /* The card refuses the second piece: the chain stops there. */
        script_piece(0x10, data, 255, false, "90 00");
        script_piece(0x10, data + 255, 255, false, "6A 84");
        ASSERT_EQ(apdu_call(&card.transport, &c, NULL, NULL), -ENOSPC);

        /* Exactly 255 bytes need no chaining. */
        c.data_len = 255;
        c.want_data = false;
        script_piece(0x00, data, 255, false, "90 00");
        ASSERT_EQ(apdu_call(&card.transport, &c, NULL, NULL), 0);
        finish();
}

static void test_get_response(void) {
        uint8_t data[1000];
        _cleanup_free_ uint8_t *out = NULL;
        size_t len = 0;

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 7);
        begin();
        script_long(&card, "00 CB 3F FF 05 5C 03 5F C1 05 00", data, sizeof data, 0x9000);
        ASSERT_EQ(apdu_call(&card.transport,
                            &(ApduCommand){ .ins = 0xCB,
                                            .p1 = 0x3F,
                                            .p2 = 0xFF,
                                            .data = (const uint8_t[]){ 0x5C, 0x03, 0x5F, 0xC1, 0x05 },
                                            .data_len = 5,
                                            .want_data = true },
                            &out, &len),
                  0);
        ASSERT_EQ(len, sizeof data);
        ASSERT_MEMEQ(out, data, sizeof data);
        /* 256 + 256 + 256 + 232: three GET RESPONSEs, the last for E8. */
        ASSERT_EQ(card.n_steps, 4);
        ASSERT_EQ(card.steps[3].cmd[4], 0xE8);
        finish();
}

static void test_wrong_le(void) {
        ApduResponse r;

        begin();
        /* 6Cxx: the same command again with Le = xx, then 61xx as usual. */
        script(&card, "00 F8 00 00 00", "6C 04");
        script(&card, "00 F8 00 00 04", "00 01 02 61 02");
        script(&card, "00 C0 00 00 02", "03 04 90 00");
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xF8, .want_data = true }, &r), 0);
        ASSERT_EQ(r.sw, 0x9000);
        ASSERT_EQ(r.len, 5);
        ASSERT_MEMEQ(r.data, "\x00\x01\x02\x03\x04", 5);
        apdu_response_done(&r);

        /* Only once: a second 6C is the card's final word. */
        script(&card, "00 F8 00 00 00", "6C 04");
        script(&card, "00 F8 00 00 04", "6C 05");
        ASSERT_EQ(apdu_call(&card.transport, &(ApduCommand){ .ins = 0xF8, .want_data = true }, NULL, NULL),
                  -EPROTO);
        finish();
}

static void test_bad_responses(void) {
        uint8_t big[256] = {};
        ApduResponse r;

        begin();
        /* Fewer than two bytes: no status word. */
        script(&card, "00 FD 00 00 00", "90");
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r),
                  -EBADMSG);
        script(&card, "00 FD 00 00 00", "");
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r),
                  -EBADMSG);

        /* 61xx and then GET RESPONSE gives nothing but 61xx again. */
        script(&card, "00 FD 00 00 00", "01 61 10");
        script(&card, "00 C0 00 00 10", "61 10");
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r),
                  -EBADMSG);

        /* A card that never stops sending is cut off at APDU_RESPONSE_MAX. */
        {
                uint8_t resp[258];
                size_t rounds = APDU_RESPONSE_MAX / 256 + 1;

                memcpy(resp, big, 256);
                resp[256] = 0x61, resp[257] = 0x00;
                script_bytes(&card, (const uint8_t[]){ 0x00, 0xFD, 0x00, 0x00, 0x00 }, 5, resp, sizeof resp);
                for (size_t i = 1; i < rounds; i++)
                        script_bytes(&card, (const uint8_t[]){ 0x00, 0xC0, 0x00, 0x00, 0x00 }, 5, resp,
                                     sizeof resp);
        }
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r),
                  -EBADMSG);

        /* Transport errors come through as they are. */
        script_error(&card, "00 FD 00 00 00", -ENOMEDIUM);
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r),
                  -ENOMEDIUM);
        script(&card, "00 FD 00 00 00", "01 61 01");
        script_error(&card, "00 C0 00 00 01", -ECONNRESET);
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .want_data = true }, &r),
                  -ECONNRESET);

        /* Nonsense from the caller. */
        ASSERT_EQ(apdu_exchange(&card.transport, &(ApduCommand){ .ins = 0xFD, .data_len = 3 }, &r), -EINVAL);
        finish();
}

static void test_call_drops_data_on_error(void) {
        uint8_t *out = (uint8_t *) 1;
        size_t len = 77;

        begin();
        script(&card, "00 CB 3F FF 00", "01 02 6A 82");
        ASSERT_EQ(apdu_call(&card.transport,
                            &(ApduCommand){ .ins = 0xCB, .p1 = 0x3F, .p2 = 0xFF, .want_data = true }, &out,
                            &len),
                  -ENOENT);
        /* Out-parameters untouched on failure. */
        ASSERT_TRUE(out == (uint8_t *) 1);
        ASSERT_EQ(len, 77);
        finish();
}

static void test_status_words(void) {
        static const struct {
                uint16_t sw;
                int error;
        } table[] = {
                { 0x9000, 0 },           { 0x63C3, -EKEYREJECTED }, { 0x63C0, -EKEYREJECTED },
                { 0x6983, -ENOLCK },     { 0x6982, -EACCES },       { 0x6985, -EPERM },
                { 0x6A82, -ENOENT },     { 0x6A88, -ENOENT },       { 0x6A80, -EINVAL },
                { 0x6A86, -EINVAL },     { 0x6700, -EINVAL },       { 0x6D00, -EOPNOTSUPP },
                { 0x6E00, -EOPNOTSUPP }, { 0x6A84, -ENOSPC },       { 0x6581, -EIO },
                { 0x6F00, -EIO },        { 0x6300, -EPROTO },       { 0x1234, -EPROTO },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                ASSERT_EQ(apdu_sw_to_errno(table[i].sw), table[i].error);
        ASSERT_EQ(apdu_sw_retries(0x63C5), 5);
        ASSERT_EQ(apdu_sw_retries(0x63C0), 0);
        ASSERT_EQ(apdu_sw_retries(0x63CF), 15);
        ASSERT_EQ(apdu_sw_retries(0x6300), -1);
        ASSERT_EQ(apdu_sw_retries(0x9000), -1);
        ASSERT_EQ(apdu_sw_retries(0x6983), -1);
}

int main(void) {
        RUN(test_case1_and_case2);
        RUN(test_chaining);
        RUN(test_get_response);
        RUN(test_wrong_le);
        RUN(test_bad_responses);
        RUN(test_call_drops_data_on_error);
        RUN(test_status_words);
        return 0;
}
