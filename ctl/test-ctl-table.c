/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/assert.h"
#include "ctl-table.h"
#include "macro.h"

/* Prints t into a string. */
static char *print(const Table *t, bool header, bool color) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ASSERT_TRUE(f);
        ASSERT_EQ(table_print(t, f, header, color), 0);
        ASSERT_EQ(fclose(f), 0);
        return buf;
}

static Table *two_rows(void) {
        static const char *const headers[] = { "KEY", "SUBJECT", "LEFT" };
        Table *t = table_new(3, headers);

        ASSERT_TRUE(t);
        ASSERT_EQ(table_add_cell(t, "12345678", NULL), 0);
        ASSERT_EQ(table_add_cell(t, "张三", NULL), 0);
        ASSERT_EQ(table_add_cell(t, "9 days", "\x1b[0;1;33m"), 0);
        ASSERT_EQ(table_add_cell(t, "1", NULL), 0);
        ASSERT_EQ(table_add_cell(t, "Alice Encryption", NULL), 0);
        ASSERT_EQ(table_add_cell(t, NULL, NULL), 0);
        return t;
}

static void test_width(void) {
        ASSERT_EQ(text_width(""), 0u);
        ASSERT_EQ(text_width("Alice"), 5u);
        /* CJK characters take two cells each. */
        ASSERT_EQ(text_width("张三"), 4u);
        ASSERT_EQ(text_width("剩 9 天"), 7u);
        /* A byte that does not decode counts one cell. */
        ASSERT_EQ(text_width("a\xff"
                             "b"),
                  3u);
}

static void test_layout(void) {
        _cleanup_(table_freep) Table *t = two_rows();
        _cleanup_free_ char *out = print(t, true, false);

        ASSERT_EQ(table_rows(t), 2u);
        /* Columns as wide as the widest cell, two blanks between them, none
         * at the end of a line; the CJK subject is padded by its width. */
        ASSERT_STREQ(out, "KEY       SUBJECT           LEFT\n"
                          "12345678  张三              9 days\n"
                          "1         Alice Encryption\n");
}

static void test_no_header_same_columns(void) {
        _cleanup_(table_freep) Table *t = two_rows();
        _cleanup_free_ char *out = print(t, false, false);

        ASSERT_STREQ(out, "12345678  张三              9 days\n"
                          "1         Alice Encryption\n");
}

static void test_color(void) {
        _cleanup_(table_freep) Table *t = two_rows();
        _cleanup_free_ char *out = print(t, true, true);

        /* The header underlined, the coloured cell wrapped, and the colour
         * codes take no width. */
        ASSERT_STREQ(out,
                     "\x1b[0;4mKEY\x1b[0m       \x1b[0;4mSUBJECT\x1b[0m           \x1b[0;4mLEFT\x1b[0m\n"
                     "12345678  张三              \x1b[0;1;33m9 days\x1b[0m\n"
                     "1         Alice Encryption\n");
}

static void test_empty(void) {
        static const char *const headers[] = { "A", "B" };
        _cleanup_(table_freep) Table *t = table_new(2, headers);
        _cleanup_free_ char *with = NULL, *without = NULL;

        ASSERT_TRUE(t);
        with = print(t, true, false);
        without = print(t, false, false);
        ASSERT_STREQ(with, "A  B\n");
        ASSERT_STREQ(without, "");
}

int main(void) {
        /* Widths are measured in the locale's encoding: UTF-8 here. */
        ASSERT_TRUE(setlocale(LC_ALL, "C.UTF-8"));
        RUN(test_width);
        RUN(test_layout);
        RUN(test_no_header_same_columns);
        RUN(test_color);
        RUN(test_empty);
        return EXIT_SUCCESS;
}
