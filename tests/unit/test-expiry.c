/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "expiry.h"

#include "assert.h"
#include "macro.h"

#define DAY 86400
/* 2026-12-01T00:00:00Z */
#define NOT_AFTER ((time_t) 1796083200)

static const unsigned defaults[] = { 30, 14, 7, 3, 1 };

static int level_at(int64_t seconds_before) {
        return expiry_level(defaults, ELEMENTSOF(defaults), NOT_AFTER, NOT_AFTER - seconds_before);
}

static void test_levels(void) {
        /* Exactly 30 days before notAfter, 30 whole days are left: not yet. */
        ASSERT_EQ(level_at(31 * DAY), EXPIRY_LEVEL_NONE);
        ASSERT_EQ(level_at(30 * DAY), EXPIRY_LEVEL_NONE);
        ASSERT_EQ(level_at(30 * DAY - 1), 30);
        ASSERT_EQ(level_at(14 * DAY), 30);
        ASSERT_EQ(level_at(14 * DAY - 1), 14);
        ASSERT_EQ(level_at(10 * DAY), 14);
        ASSERT_EQ(level_at(7 * DAY - 1), 7);
        ASSERT_EQ(level_at(3 * DAY - 1), 3);
        ASSERT_EQ(level_at(DAY), 3);
        ASSERT_EQ(level_at(DAY - 1), 1);
        /* The last second is still valid (RFC 5280: notAfter is inclusive). */
        ASSERT_EQ(level_at(0), 1);
        ASSERT_EQ(level_at(-1), 0);
        ASSERT_EQ(level_at(-400 * DAY), 0);
}

static void test_levels_any_order(void) {
        static const unsigned unsorted[] = { 7, 60 };

        ASSERT_EQ(expiry_level(unsorted, 2, NOT_AFTER, NOT_AFTER - 50 * DAY), 60);
        ASSERT_EQ(expiry_level(unsorted, 2, NOT_AFTER, NOT_AFTER - 5 * DAY), 7);
        ASSERT_EQ(expiry_level(unsorted, 2, NOT_AFTER, NOT_AFTER - 61 * DAY), EXPIRY_LEVEL_NONE);
}

static void test_status(void) {
        ASSERT_EQ(expiry_level_status(EXPIRY_LEVEL_NONE), EXPIRY_STATUS_VALID);
        ASSERT_EQ(expiry_level_status(30), EXPIRY_STATUS_EXPIRING);
        ASSERT_EQ(expiry_level_status(1), EXPIRY_STATUS_EXPIRING);
        ASSERT_EQ(expiry_level_status(0), EXPIRY_STATUS_EXPIRED);
        ASSERT_STREQ(expiry_status_to_string(EXPIRY_STATUS_VALID), "valid");
        ASSERT_STREQ(expiry_status_to_string(EXPIRY_STATUS_EXPIRING), "expiring");
        ASSERT_STREQ(expiry_status_to_string(EXPIRY_STATUS_EXPIRED), "expired");
        ASSERT_TRUE(expiry_status_to_string(_EXPIRY_STATUS_MAX) == NULL);
}

static void test_announce(void) {
        ASSERT_TRUE(!expiry_should_announce(EXPIRY_LEVEL_NONE, EXPIRY_LEVEL_NONE));
        ASSERT_TRUE(expiry_should_announce(30, EXPIRY_LEVEL_NONE));
        ASSERT_TRUE(!expiry_should_announce(30, 30));
        ASSERT_TRUE(expiry_should_announce(14, 30));
        ASSERT_TRUE(!expiry_should_announce(30, 14)); /* e.g. WarnDays changed */
        ASSERT_TRUE(expiry_should_announce(0, 1));
        ASSERT_TRUE(!expiry_should_announce(0, 0));
        ASSERT_TRUE(!expiry_should_announce(EXPIRY_LEVEL_NONE, 14));
}

/* Walks a certificate's life from timer to timer, as the daemon does, and
 * checks that every threshold is met on time and none is announced twice. */
static void test_walk(void) {
        time_t now = NOT_AFTER - 45 * DAY - 1234;
        int announced = EXPIRY_LEVEL_NONE, n = 0;
        int seen[8];

        while (now < NOT_AFTER + 3 * DAY) {
                time_t next = expiry_next_change(NOT_AFTER, now);
                int level = expiry_level(defaults, ELEMENTSOF(defaults), NOT_AFTER, now);

                ASSERT_TRUE(next > now);
                ASSERT_TRUE(next - now <= DAY);
                /* Nothing changes before the next change. */
                ASSERT_EQ(expiry_level(defaults, ELEMENTSOF(defaults), NOT_AFTER, next - 1), level);
                if (expiry_should_announce(level, announced)) {
                        /* Announced in the first second of its crossing. */
                        ASSERT_TRUE(expiry_level(defaults, ELEMENTSOF(defaults), NOT_AFTER, now - 1) !=
                                    level);
                        ASSERT_TRUE(n < (int) ELEMENTSOF(seen));
                        seen[n++] = level;
                        announced = level;
                }
                now = next;
        }
        ASSERT_EQ(n, 6);
        ASSERT_EQ(seen[0], 30);
        ASSERT_EQ(seen[1], 14);
        ASSERT_EQ(seen[2], 7);
        ASSERT_EQ(seen[3], 3);
        ASSERT_EQ(seen[4], 1);
        ASSERT_EQ(seen[5], 0);
}

static void test_next_change(void) {
        /* With 10 days and 5 s left, days left drop to 9 at 10 days - 1 s
         * before notAfter... */
        ASSERT_EQ(expiry_next_change(NOT_AFTER, NOT_AFTER - 10 * DAY - 5), NOT_AFTER - 10 * DAY + 1);
        /* ...and on the exact boundary, one second later. */
        ASSERT_EQ(expiry_next_change(NOT_AFTER, NOT_AFTER - 10 * DAY), NOT_AFTER - 10 * DAY + 1);
        ASSERT_EQ(expiry_next_change(NOT_AFTER, NOT_AFTER), NOT_AFTER + 1);
        ASSERT_EQ(expiry_next_change(NOT_AFTER, NOT_AFTER + 1), NOT_AFTER + DAY + 1);
        ASSERT_EQ(expiry_next_change(NOT_AFTER, NOT_AFTER + DAY), NOT_AFTER + DAY + 1);
}

int main(void) {
        RUN(test_levels);
        RUN(test_levels_any_order);
        RUN(test_status);
        RUN(test_announce);
        RUN(test_walk);
        RUN(test_next_change);
        return 0;
}
