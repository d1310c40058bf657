/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>

#include "assert.h"
#include "macro.h"
#include "portal-schedule.h"

#define SEC(x) ((usec_t) (x) *USEC_PER_SEC)
/* rnd values: none, half (5 %) and the most (just under 10 %) of the jitter. */
#define RND_NONE 0u
#define RND_HALF 0x80000000u
#define RND_MAX 0xffffffffu
#define T0 SEC(1000)

static void test_clamp_and_jitter(void) {
        ASSERT_EQ(portal_poll_interval_clamp(0), 60);
        ASSERT_EQ(portal_poll_interval_clamp(59), 60);
        ASSERT_EQ(portal_poll_interval_clamp(3600), 3600);
        ASSERT_EQ(portal_poll_interval_clamp(604801), 604800);
        ASSERT_EQ(portal_poll_interval_clamp(UINT64_MAX), 604800);

        ASSERT_EQ(portal_schedule_jitter(SEC(600), RND_NONE), 0);
        ASSERT_EQ(portal_schedule_jitter(SEC(600), RND_HALF), SEC(30));
        /* 65535/65536 of 10 %: below 10 %, never at it. */
        ASSERT_EQ(portal_schedule_jitter(SEC(600), RND_MAX), SEC(60) * 65535 / 65536);
        ASSERT_TRUE(portal_schedule_jitter(SEC(604800), RND_MAX) < SEC(60480));
}

static void test_first_poll_and_interval(void) {
        PortalSchedule s;

        portal_schedule_init(&s, 0, T0);
        /* Poll at once; the default interval is clamped up to a minute. */
        ASSERT_EQ(s.next, T0);
        ASSERT_EQ(s.interval, SEC(60));

        portal_schedule_init(&s, 21600, T0);
        portal_schedule_answered(&s, T0, 0, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(21600));
        /* The portal's interval replaces the default; jitter up to 10 %. */
        portal_schedule_answered(&s, T0, 3600, RND_HALF);
        ASSERT_EQ(s.next, T0 + SEC(3600) + SEC(180));
        /* 304: keep the interval the portal gave last. */
        portal_schedule_answered(&s, T0 + SEC(10), 0, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(10) + SEC(3600));
        /* Out-of-range hints are clamped. */
        portal_schedule_answered(&s, T0, 5, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(60));
        portal_schedule_answered(&s, T0, 10000000, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(604800));
}

static void test_backoff(void) {
        static const unsigned expected[] = { 60, 120, 240, 480, 960, 1920, 3600, 3600 };
        PortalSchedule s;
        usec_t now = T0;

        portal_schedule_init(&s, 3600, T0);
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                portal_schedule_failed(&s, now, RND_NONE);
                ASSERT_EQ(s.next, now + SEC(expected[i]));
                now = s.next;
        }
        /* Jitter on a backoff step is up to 10 % of that step. */
        portal_schedule_init(&s, 3600, T0);
        portal_schedule_failed(&s, T0, RND_HALF);
        ASSERT_EQ(s.next, T0 + SEC(63));
        portal_schedule_failed(&s, T0, RND_HALF);
        ASSERT_EQ(s.next, T0 + SEC(126));
        /* An answer ends the backoff. */
        portal_schedule_answered(&s, T0, 0, RND_NONE);
        portal_schedule_failed(&s, T0, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(60));
        /* However long the portal stays down, no overflow: capped at the interval. */
        for (int i = 0; i < 200; i++)
                portal_schedule_failed(&s, T0, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(3600));
        /* The cap follows the portal's interval, even below the first step's double. */
        portal_schedule_init(&s, 90, T0);
        portal_schedule_failed(&s, T0, RND_NONE);
        portal_schedule_failed(&s, T0, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(90));
}

static void test_retry_after(void) {
        PortalSchedule s;

        portal_schedule_init(&s, 3600, T0);
        portal_schedule_retry_after(&s, T0, 7200, RND_NONE);
        /* At least as long as told, even beyond the interval. */
        ASSERT_EQ(s.next, T0 + SEC(7200));
        portal_schedule_retry_after(&s, T0, 7200, RND_HALF);
        ASSERT_EQ(s.next, T0 + SEC(7200) + SEC(360));
        /* Shorter than a minute: a minute. Longer than a week: a week. */
        portal_schedule_retry_after(&s, T0, 0, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(60));
        portal_schedule_retry_after(&s, T0, UINT64_MAX, RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(604800));
        /* It counts as a failure: a later failure backs off further. */
        portal_schedule_init(&s, 3600, T0);
        portal_schedule_retry_after(&s, T0, 100, RND_NONE);
        portal_schedule_failed(&s, T0 + SEC(100), RND_NONE);
        ASSERT_EQ(s.next, T0 + SEC(100) + SEC(120));
}

static void test_ask_now(void) {
        PortalSchedule s;

        portal_schedule_init(&s, 21600, T0);
        portal_schedule_answered(&s, T0, 0, RND_NONE);
        /* A key inserted an hour later: poll now. */
        ASSERT_TRUE(portal_schedule_ask_now(&s, T0 + SEC(3600)));
        ASSERT_EQ(s.next, T0 + SEC(3600));
        portal_schedule_answered(&s, T0 + SEC(3601), 0, RND_NONE);
        /* Again 59 s after the last ask-now: deferred to the end of its
         * minute, not dropped until the regular poll; more asks within it
         * change nothing. */
        ASSERT_TRUE(portal_schedule_ask_now(&s, T0 + SEC(3659)));
        ASSERT_EQ(s.next, T0 + SEC(3660));
        ASSERT_TRUE(!portal_schedule_ask_now(&s, T0 + SEC(3659) + 500000));
        ASSERT_EQ(s.next, T0 + SEC(3660));
        /* The next minute is counted from that poll. */
        portal_schedule_answered(&s, T0 + SEC(3661), 0, RND_NONE);
        ASSERT_TRUE(portal_schedule_ask_now(&s, T0 + SEC(3700)));
        ASSERT_EQ(s.next, T0 + SEC(3720));
        /* A poll already due is not moved, and does not use up the minute. */
        ASSERT_TRUE(!portal_schedule_ask_now(&s, T0 + SEC(3710)));
        ASSERT_EQ(s.next, T0 + SEC(3720));

        /* A Retry-After wins over a key insertion: the poll moves to its end. */
        portal_schedule_init(&s, 21600, T0);
        portal_schedule_retry_after(&s, T0, 600, RND_HALF);
        ASSERT_EQ(s.next, T0 + SEC(630));
        ASSERT_TRUE(portal_schedule_ask_now(&s, T0 + SEC(10)));
        ASSERT_EQ(s.next, T0 + SEC(600));
        /* Once it has passed, an ask-now polls at once. */
        portal_schedule_answered(&s, T0 + SEC(601), 0, RND_NONE);
        ASSERT_TRUE(portal_schedule_ask_now(&s, T0 + SEC(700)));
        ASSERT_EQ(s.next, T0 + SEC(700));

        /* A backoff does not hold back a key insertion. */
        portal_schedule_init(&s, 21600, T0);
        portal_schedule_failed(&s, T0, RND_NONE);
        ASSERT_TRUE(portal_schedule_ask_now(&s, T0 + SEC(5)));
        ASSERT_EQ(s.next, T0 + SEC(5));
}

int main(void) {
        RUN(test_clamp_and_jitter);
        RUN(test_first_poll_and_interval);
        RUN(test_backoff);
        RUN(test_retry_after);
        RUN(test_ask_now);
        return 0;
}
