/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-schedule.h"

/* 60 s << 20 is far beyond the longest interval: stop doubling there so the
 * shift cannot overflow however long the portal stays down. */
#define BACKOFF_MAX_DOUBLINGS 20u

unsigned portal_poll_interval_clamp(uint64_t sec) {
        if (sec < PORTAL_POLL_INTERVAL_MIN_SEC)
                return PORTAL_POLL_INTERVAL_MIN_SEC;
        if (sec > PORTAL_POLL_INTERVAL_MAX_SEC)
                return PORTAL_POLL_INTERVAL_MAX_SEC;
        return (unsigned) sec;
}

usec_t portal_schedule_jitter(usec_t base, uint32_t rnd) {
        /* 16 bits of rnd are plenty and keep the product far from overflow:
         * a week / 10 in microseconds times 2^16 is below 2^52. */
        return base / 10 * (rnd >> 16) / 65536;
}

void portal_schedule_init(PortalSchedule *s, unsigned default_interval_sec, usec_t now) {
        *s = (PortalSchedule){
                .interval = portal_poll_interval_clamp(default_interval_sec) * USEC_PER_SEC,
                .next = now,
                .not_before = now,
        };
}

void portal_schedule_answered(PortalSchedule *s, usec_t now, unsigned poll_interval_sec, uint32_t rnd) {
        if (poll_interval_sec > 0)
                s->interval = portal_poll_interval_clamp(poll_interval_sec) * USEC_PER_SEC;
        s->failures = 0;
        s->next = now + s->interval + portal_schedule_jitter(s->interval, rnd);
}

void portal_schedule_failed(PortalSchedule *s, usec_t now, uint32_t rnd) {
        unsigned doublings = s->failures < BACKOFF_MAX_DOUBLINGS ? s->failures : BACKOFF_MAX_DOUBLINGS;
        usec_t wait = ((usec_t) PORTAL_BACKOFF_FIRST_SEC * USEC_PER_SEC) << doublings;

        if (wait > s->interval)
                wait = s->interval;
        s->failures++;
        s->next = now + wait + portal_schedule_jitter(wait, rnd);
}

void portal_schedule_retry_after(PortalSchedule *s, usec_t now, uint64_t retry_after_sec, uint32_t rnd) {
        usec_t wait;

        if (retry_after_sec < PORTAL_BACKOFF_FIRST_SEC)
                retry_after_sec = PORTAL_BACKOFF_FIRST_SEC;
        if (retry_after_sec > PORTAL_POLL_INTERVAL_MAX_SEC)
                retry_after_sec = PORTAL_POLL_INTERVAL_MAX_SEC;
        wait = retry_after_sec * USEC_PER_SEC;
        s->failures++;
        s->not_before = now + wait;
        s->next = s->not_before + portal_schedule_jitter(wait, rnd);
}

bool portal_schedule_ask_now(PortalSchedule *s, usec_t now) {
        usec_t at = now > s->not_before ? now : s->not_before;
        usec_t gap_end = s->last_ask_now + PORTAL_ASK_NOW_MIN_GAP_SEC * USEC_PER_SEC;

        /* Deferred, not dropped: a key plugged in right after another one
         * is asked about within the minute, not at the next regular poll
         * hours later. */
        if (s->asked_now && at < gap_end)
                at = gap_end;
        if (at >= s->next)
                return false;
        s->next = at;
        s->last_ask_now = at;
        s->asked_now = true;
        return true;
}
