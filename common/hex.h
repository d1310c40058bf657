/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of n bytes, NUL-terminated, malloc()ed; NULL on ENOMEM. */
char *hex_encode(const void *data, size_t n);

/* Upper-case hex with sep (0 for none) between bytes, into out of cap bytes.
 * Returns 0, or -ENOBUFS when out is too small (out is then "" if cap > 0). */
int hex_format(const void *data, size_t n, char sep, char *out, size_t cap);

/* Decodes hex; white space and ':' between byte pairs are allowed.
 * Returns 0 and a malloc()ed buffer, -EINVAL on a bad digit or an odd digit
 * count, -ENOMEM. *ret and *ret_len are written only on success. */
int hex_decode(const char *s, uint8_t **ret, size_t *ret_len);

/* As hex_decode() into a caller's buffer; -ENOBUFS when it does not fit. */
int hex_decode_into(const char *s, uint8_t *buf, size_t cap, size_t *ret_len);
