/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Checks for unit tests: a failed check names the file, line and values and
 * aborts, so meson sees the test fail (and sanitizers still report). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                                        \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

#define ASSERT_EQ(a, b)                                                                                   \
        do {                                                                                              \
                long long _a = (long long) (a), _b = (long long) (b);                                     \
                if (_a != _b) {                                                                           \
                        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, \
                                #b, _a, _b);                                                              \
                        abort();                                                                          \
                }                                                                                         \
        } while (0)

#define ASSERT_STREQ(a, b)                                                               \
        do {                                                                             \
                const char *_a = (a), *_b = (b);                                         \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                 \
                        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                                _a ? _a : "(null)", _b ? _b : "(null)");                 \
                        abort();                                                         \
                }                                                                        \
        } while (0)

#define ASSERT_MEMEQ(a, b, n) ASSERT_TRUE(memcmp((a), (b), (n)) == 0)

/* Runs one test function and says so, so a log shows how far it got. */
#define RUN(test)                                  \
        do {                                       \
                fprintf(stderr, "%s...\n", #test); \
                test();                            \
        } while (0)
