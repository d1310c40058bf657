/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hex.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int unhex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

static bool is_separator(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':';
}

char *hex_encode(const void *data, size_t n) {
        static const char digits[] = "0123456789abcdef";
        const uint8_t *p = data;
        char *out = malloc(n * 2 + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 0xf];
        }
        out[2 * n] = '\0';
        return out;
}

int hex_format(const void *data, size_t n, char sep, char *out, size_t cap) {
        static const char digits[] = "0123456789ABCDEF";
        const uint8_t *p = data;
        size_t need = n * (sep ? 3 : 2) + (sep && n > 0 ? 0 : 1);
        size_t o = 0;

        if (cap > 0)
                out[0] = '\0';
        if (need > cap)
                return -ENOBUFS;
        for (size_t i = 0; i < n; i++) {
                if (sep && i > 0)
                        out[o++] = sep;
                out[o++] = digits[p[i] >> 4];
                out[o++] = digits[p[i] & 0xf];
        }
        out[o] = '\0';
        return 0;
}

/* Counts the bytes s encodes; -EINVAL when it is not hex. Separators may
 * only stand between byte pairs, never inside one. */
static int hex_count(const char *s, size_t *ret_n) {
        size_t n = 0;

        for (const char *c = s; *c;) {
                if (is_separator(*c)) {
                        c++;
                        continue;
                }
                if (unhex_digit(c[0]) < 0 || unhex_digit(c[1]) < 0)
                        return -EINVAL;
                c += 2;
                n++;
        }
        *ret_n = n;
        return 0;
}

int hex_decode_into(const char *s, uint8_t *buf, size_t cap, size_t *ret_len) {
        size_t n, o = 0;
        int r = hex_count(s, &n);

        if (r < 0)
                return r;
        if (n > cap)
                return -ENOBUFS;
        for (const char *c = s; *c;) {
                if (is_separator(*c)) {
                        c++;
                        continue;
                }
                buf[o++] = (uint8_t) (unhex_digit(c[0]) << 4 | unhex_digit(c[1]));
                c += 2;
        }
        *ret_len = n;
        return 0;
}

int hex_decode(const char *s, uint8_t **ret, size_t *ret_len) {
        uint8_t *buf;
        size_t n, len;
        int r = hex_count(s, &n);

        if (r < 0)
                return r;
        buf = malloc(n > 0 ? n : 1);
        if (!buf)
                return -ENOMEM;
        r = hex_decode_into(s, buf, n, &len);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}
