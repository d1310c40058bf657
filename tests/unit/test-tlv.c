/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>

#include "assert.h"
#include "macro.h"
#include "tlv.h"

/* Expects exactly one malformed TLV at the start of buf, and the reader
 * left where it was. */
static void expect_malformed(const uint8_t *buf, size_t len) {
        TlvReader r;
        Tlv t;

        tlv_reader_init(&r, buf, len);
        ASSERT_EQ(tlv_reader_next(&r, &t), -EBADMSG);
        ASSERT_TRUE(r.pos == buf);
        ASSERT_EQ(tlv_parse_single(buf, len, &t), -EBADMSG);
}

static void test_short_and_long_lengths(void) {
        uint8_t buf[300];
        Tlv t;

        static const uint8_t one[] = { 0x53, 0x02, 0xAA, 0xBB };
        static const uint8_t nonminimal[] = { 0x01, 0x81, 0x01, 0x07 };

        /* 1-byte length */
        ASSERT_EQ(tlv_parse_single(one, sizeof one, &t), 0);
        ASSERT_EQ(t.tag, 0x53);
        ASSERT_EQ(t.length, 2);
        ASSERT_EQ(t.value[1], 0xBB);
        ASSERT_TRUE(!t.constructed);

        /* 2-byte length (81 xx) */
        buf[0] = 0x53, buf[1] = 0x81, buf[2] = 0x80;
        ASSERT_EQ(tlv_parse_single(buf, 3 + 0x80, &t), 0);
        ASSERT_EQ(t.length, 0x80);
        ASSERT_TRUE(t.value == buf + 3);

        /* 3-byte length (82 xx xx) */
        buf[0] = 0x70, buf[1] = 0x82, buf[2] = 0x01, buf[3] = 0x00;
        ASSERT_EQ(tlv_parse_single(buf, 4 + 0x100, &t), 0);
        ASSERT_EQ(t.length, 0x100);

        /* BER allows a non-minimal long form: some cards send 81 05. */
        ASSERT_EQ(tlv_parse_single(nonminimal, sizeof nonminimal, &t), 0);
        ASSERT_EQ(t.length, 1);
        ASSERT_EQ(t.value[0], 7);

        /* zero length */
        ASSERT_EQ(tlv_parse_single((const uint8_t[]){ 0x53, 0x00 }, 2, &t), 0);
        ASSERT_EQ(t.length, 0);
}

static void test_four_byte_length_field(void) {
        /* 83 xx xx xx: allowed, but here it claims more than the buffer. */
        static const uint8_t big[] = { 0x53, 0x83, 0x01, 0x00, 0x00, 0x00 };
        static const uint8_t ok[] = { 0x53, 0x83, 0x00, 0x00, 0x01, 0x42 };
        Tlv t;

        expect_malformed(big, sizeof big);
        ASSERT_EQ(tlv_parse_single(ok, sizeof ok, &t), 0);
        ASSERT_EQ(t.length, 1);
}

static void test_multibyte_tags(void) {
        static const uint8_t getdata[] = { 0x5C, 0x03, 0x5F, 0xC1, 0x05 };
        static const uint8_t pubkey[] = { 0x7F, 0x49, 0x03, 0x86, 0x01, 0x04 };
        TlvReader r;
        Tlv t, inner;

        ASSERT_EQ(tlv_parse_single(getdata, sizeof getdata, &t), 0);
        ASSERT_EQ(t.tag, 0x5C);
        ASSERT_EQ(t.length, 3);

        /* 0x5FC105 is itself a three-byte tag, as PIV writes it in PUT DATA */
        ASSERT_EQ(tlv_parse_single((const uint8_t[]){ 0x5F, 0xC1, 0x05, 0x00 }, 4, &t), 0);
        ASSERT_EQ(t.tag, 0x5FC105);

        ASSERT_EQ(tlv_parse_single(pubkey, sizeof pubkey, &t), 0);
        ASSERT_EQ(t.tag, 0x7F49);
        ASSERT_TRUE(t.constructed);
        tlv_reader_enter(&t, &r);
        ASSERT_EQ(tlv_reader_next(&r, &inner), 1);
        ASSERT_EQ(inner.tag, 0x86);
        ASSERT_EQ(inner.value[0], 0x04);
        ASSERT_EQ(tlv_reader_next(&r, &inner), 0);
}

static void test_malformed(void) {
        /* truncated tag: multi-byte tag with nothing after its first byte */
        expect_malformed((const uint8_t[]){ 0x5F }, 1);
        /* truncated tag: continuation bit set on the last byte */
        expect_malformed((const uint8_t[]){ 0x5F, 0xC1 }, 2);
        /* tag of four bytes */
        expect_malformed((const uint8_t[]){ 0x5F, 0x81, 0x81, 0x01, 0x00 }, 5);
        /* no length at all */
        expect_malformed((const uint8_t[]){ 0x53 }, 1);
        /* truncated long lengths */
        expect_malformed((const uint8_t[]){ 0x53, 0x81 }, 2);
        expect_malformed((const uint8_t[]){ 0x53, 0x82, 0x01 }, 3);
        expect_malformed((const uint8_t[]){ 0x53, 0x83, 0x00, 0x01 }, 4);
        /* indefinite length */
        expect_malformed((const uint8_t[]){ 0x70, 0x80, 0x53, 0x00, 0x00, 0x00 }, 6);
        /* length field of five bytes */
        expect_malformed((const uint8_t[]){ 0x53, 0x84, 0x00, 0x00, 0x00, 0x01, 0xAA }, 7);
        /* lengths past the buffer, in each form */
        expect_malformed((const uint8_t[]){ 0x53, 0x03, 0xAA, 0xBB }, 4);
        expect_malformed((const uint8_t[]){ 0x53, 0x81, 0x90, 0xAA }, 4);
        expect_malformed((const uint8_t[]){ 0x53, 0x82, 0xFF, 0xFF, 0xAA }, 5);
}

static void test_trailing_data(void) {
        static const uint8_t two[] = { 0x01, 0x00, 0x02, 0x00 };
        Tlv t;

        ASSERT_EQ(tlv_parse_single(two, sizeof two, &t), -EBADMSG);
        ASSERT_EQ(tlv_parse_single(two, 0, &t), -EBADMSG);
        ASSERT_EQ(tlv_parse_single(NULL, 0, &t), -EBADMSG);
}

static void test_nested_value_past_container(void) {
        /* The outer TLV is fine, but its inner one claims more than the outer
         * holds (though not more than the whole buffer): entering must stop
         * the inner reader at the container's end. */
        static const uint8_t buf[] = { 0x7C, 0x02, 0x82, 0x03, 0xAA, 0xBB, 0xCC };
        TlvReader r, in;
        Tlv outer, inner;

        tlv_reader_init(&r, buf, sizeof buf);
        ASSERT_EQ(tlv_reader_next(&r, &outer), 1);
        ASSERT_EQ(outer.tag, 0x7C);
        tlv_reader_enter(&outer, &in);
        ASSERT_EQ(tlv_reader_next(&in, &inner), -EBADMSG);
}

static void test_find(void) {
        static const uint8_t apt[] = {
                0x4F, 0x02, 0x00, 0x01, 0x79, 0x03, 0x4F, 0x01, 0xA0, 0xAC, 0x03, 0x80, 0x01, 0x03,
        };
        static const uint8_t bad[] = { 0x4F, 0x01, 0x00, 0x79, 0x05, 0x00 };
        Tlv t;

        ASSERT_EQ(tlv_find(apt, sizeof apt, 0xAC, &t), 0);
        ASSERT_EQ(t.length, 3);
        ASSERT_EQ(tlv_find(apt, sizeof apt, 0x80, &t), -ENOENT); /* only nested */
        ASSERT_EQ(tlv_find(bad, sizeof bad, 0x4F, &t), 0);       /* found before the bad part */
        ASSERT_EQ(tlv_find(bad, sizeof bad, 0xAC, &t), -EBADMSG);
}

static void test_writer_lengths(void) {
        static uint8_t value[0x10000];
        static uint8_t out[0x10010];
        size_t sizes[] = { 0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000 };
        size_t expect_len_bytes[] = { 1, 1, 1, 2, 2, 3, 3, 4 };

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                TlvWriter w;
                size_t n;
                Tlv t;

                tlv_writer_init(&w, out, sizeof out);
                ASSERT_EQ(tlv_put(&w, 0x53, value, sizes[i]), 0);
                ASSERT_EQ(tlv_writer_finish(&w, &n), 0);
                ASSERT_EQ(n, 1 + expect_len_bytes[i] + sizes[i]);
                ASSERT_EQ(tlv_length_size(sizes[i]), expect_len_bytes[i]);
                ASSERT_EQ(tlv_parse_single(out, n, &t), 0);
                ASSERT_EQ(t.length, sizes[i]);
        }
}

static void test_writer_nesting(void) {
        uint8_t big[200] = { 0 };
        uint8_t out[512];
        TlvWriter w;
        TlvReader r, in;
        Tlv t, u;
        size_t n;

        tlv_writer_init(&w, out, sizeof out);
        tlv_open(&w, 0x7C);
        tlv_put(&w, 0x82, NULL, 0);
        tlv_put(&w, 0x81, big, sizeof big); /* pushes the container past 127 */
        tlv_close(&w);
        tlv_put_u8(&w, 0x5FC102, 0x42);
        ASSERT_EQ(tlv_writer_finish(&w, &n), 0);

        ASSERT_EQ(out[0], 0x7C);
        ASSERT_EQ(out[1], 0x81); /* the container's length grew to 81 xx */
        ASSERT_EQ(out[2], 2 + 3 + sizeof big);

        tlv_reader_init(&r, out, n);
        ASSERT_EQ(tlv_reader_next(&r, &t), 1);
        ASSERT_TRUE(t.constructed);
        tlv_reader_enter(&t, &in);
        ASSERT_EQ(tlv_reader_next(&in, &u), 1);
        ASSERT_EQ(u.tag, 0x82);
        ASSERT_EQ(u.length, 0);
        ASSERT_EQ(tlv_reader_next(&in, &u), 1);
        ASSERT_EQ(u.tag, 0x81);
        ASSERT_EQ(u.length, sizeof big);
        ASSERT_EQ(tlv_reader_next(&in, &u), 0);
        ASSERT_EQ(tlv_reader_next(&r, &t), 1);
        ASSERT_EQ(t.tag, 0x5FC102);
        ASSERT_EQ(t.value[0], 0x42);
        ASSERT_EQ(tlv_reader_next(&r, &t), 0);
}

static void test_writer_errors(void) {
        uint8_t out[8];
        TlvWriter w;
        size_t n;

        /* overflow is sticky and later calls change nothing */
        tlv_writer_init(&w, out, sizeof out);
        ASSERT_EQ(tlv_put(&w, 0x53, "0123456789", 10), -ENOBUFS);
        ASSERT_EQ(tlv_put(&w, 0x53, "", 0), -ENOBUFS);
        ASSERT_EQ(tlv_writer_finish(&w, &n), -ENOBUFS);

        /* a tag of four bytes */
        tlv_writer_init(&w, out, sizeof out);
        ASSERT_EQ(tlv_put(&w, 0x5FC10203, "", 0), -EINVAL);

        /* an unclosed container */
        tlv_writer_init(&w, out, sizeof out);
        ASSERT_EQ(tlv_open(&w, 0x7C), 0);
        ASSERT_EQ(tlv_writer_finish(&w, &n), -EBADMSG);

        /* closing what was never opened */
        tlv_writer_init(&w, out, sizeof out);
        ASSERT_EQ(tlv_close(&w), -EINVAL);

        /* too deep */
        {
                uint8_t deep[64];
                tlv_writer_init(&w, deep, sizeof deep);
                for (int i = 0; i < TLV_MAX_DEPTH; i++)
                        ASSERT_EQ(tlv_open(&w, 0x70), 0);
                ASSERT_EQ(tlv_open(&w, 0x70), -E2BIG);
        }

        /* a container whose length must widen, with no room to do so */
        {
                uint8_t tight[2 + 2 + 126];
                uint8_t v[126] = { 0 };
                tlv_writer_init(&w, tight, sizeof tight);
                ASSERT_EQ(tlv_open(&w, 0x70), 0);
                ASSERT_EQ(tlv_put(&w, 0x53, v, sizeof v), 0); /* value is 128 bytes */
                ASSERT_EQ(tlv_close(&w), -ENOBUFS);
        }
}

static void test_sizes(void) {
        ASSERT_EQ(tlv_tag_size(0x53), 1);
        ASSERT_EQ(tlv_tag_size(0x7F49), 2);
        ASSERT_EQ(tlv_tag_size(0x5FC105), 3);
}

int main(void) {
        RUN(test_short_and_long_lengths);
        RUN(test_four_byte_length_field);
        RUN(test_multibyte_tags);
        RUN(test_malformed);
        RUN(test_trailing_data);
        RUN(test_nested_value_past_container);
        RUN(test_find);
        RUN(test_writer_lengths);
        RUN(test_writer_nesting);
        RUN(test_writer_errors);
        RUN(test_sizes);
        return 0;
}
