/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "assert.h"
#include "hex.h"
#include "macro.h"

static void test_encode(void) {
        static const uint8_t data[] = { 0x00, 0x9b, 0xff, 0x3b };
        _cleanup_free_ char *s = hex_encode(data, sizeof data);
        _cleanup_free_ char *empty = hex_encode(data, 0);

        ASSERT_STREQ(s, "009bff3b");
        ASSERT_STREQ(empty, "");
}

static void test_format(void) {
        static const uint8_t data[] = { 0x3b, 0x88, 0x80 };
        char buf[16];

        ASSERT_EQ(hex_format(data, 3, ' ', buf, sizeof buf), 0);
        ASSERT_STREQ(buf, "3B 88 80");
        ASSERT_EQ(hex_format(data, 3, 0, buf, sizeof buf), 0);
        ASSERT_STREQ(buf, "3B8880");
        ASSERT_EQ(hex_format(data, 0, ' ', buf, sizeof buf), 0);
        ASSERT_STREQ(buf, "");
        /* "3B 88 80" needs 9 bytes with its NUL. */
        ASSERT_EQ(hex_format(data, 3, ' ', buf, 8), -ENOBUFS);
        ASSERT_STREQ(buf, "");
        ASSERT_EQ(hex_format(data, 3, ' ', buf, 9), 0);
}

static void test_decode(void) {
        _cleanup_free_ uint8_t *b = NULL;
        uint8_t small[2];
        size_t n = 99;

        ASSERT_EQ(hex_decode("3B 88:80\n0a", &b, &n), 0);
        ASSERT_EQ(n, 4);
        ASSERT_MEMEQ(b, "\x3b\x88\x80\x0a", 4);

        ASSERT_EQ(hex_decode_into("", small, sizeof small, &n), 0);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(hex_decode_into("abc", small, sizeof small, &n), -EINVAL);
        ASSERT_EQ(hex_decode_into("a bc", small, sizeof small, &n), -EINVAL);
        ASSERT_EQ(hex_decode_into("zz", small, sizeof small, &n), -EINVAL);
        ASSERT_EQ(hex_decode_into("010203", small, sizeof small, &n), -ENOBUFS);
        ASSERT_EQ(hex_decode_into("0102", small, sizeof small, &n), 0);
        ASSERT_EQ(n, 2);
}

static void test_roundtrip(void) {
        uint8_t all[256];
        _cleanup_free_ uint8_t *back = NULL;
        _cleanup_free_ char *s = NULL;
        size_t n;

        for (int i = 0; i < 256; i++)
                all[i] = (uint8_t) i;
        s = hex_encode(all, sizeof all);
        ASSERT_TRUE(s);
        ASSERT_EQ(hex_decode(s, &back, &n), 0);
        ASSERT_EQ(n, 256);
        ASSERT_MEMEQ(back, all, 256);
}

int main(void) {
        RUN(test_encode);
        RUN(test_format);
        RUN(test_decode);
        RUN(test_roundtrip);
        return 0;
}
