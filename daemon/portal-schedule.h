/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* When to ask the portal for the renewal status (docs/portal-protocol.md,
 * "Caching, pacing and errors"). Pure logic: every function takes the
 * current time and, where a jitter is drawn, a random 32-bit value, so the
 * caller owns the clock and the random source and tests can fix both.
 *
 * Times are microseconds on any monotonic clock the caller chooses. */

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC ((usec_t) 1000000)

#define PORTAL_POLL_INTERVAL_MIN_SEC 60u
#define PORTAL_POLL_INTERVAL_MAX_SEC 604800u
#define PORTAL_POLL_INTERVAL_DEFAULT_SEC (6u * 3600u)
/* The first wait after a failure; it doubles up to the poll interval. */
#define PORTAL_BACKOFF_FIRST_SEC 60u
/* Key insertions and refreshes move the next poll earlier at most this often. */
#define PORTAL_ASK_NOW_MIN_GAP_SEC 60u

typedef struct PortalSchedule {
        usec_t interval;     /* the portal's poll_interval, else the configured default */
        usec_t next;         /* when to poll next */
        usec_t not_before;   /* a Retry-After: nothing polls earlier, not even a key insertion */
        usec_t last_ask_now; /* when the poll an ask-now last moved earlier is due */
        bool asked_now;      /* last_ask_now is set */
        unsigned failures;   /* consecutive failed polls */
} PortalSchedule;

/* Clamps seconds to the protocol's poll interval range. */
unsigned portal_poll_interval_clamp(uint64_t sec);

/* A fresh schedule (as at daemon start): poll at once, then every
 * default_interval_sec (clamped) until the portal says otherwise. */
void portal_schedule_init(PortalSchedule *s, unsigned default_interval_sec, usec_t now);

/* The portal answered (200, 304, or a 400 that must not be retried before
 * the next regular poll). poll_interval_sec is the answer's value, or 0 to
 * keep the interval in force (304, 400). Next poll: interval + jitter. */
void portal_schedule_answered(PortalSchedule *s, usec_t now, unsigned poll_interval_sec, uint32_t rnd);

/* A failure without a server hint: the next poll after 60 s doubling per
 * consecutive failure, capped at the interval, plus jitter. */
void portal_schedule_failed(PortalSchedule *s, usec_t now, uint32_t rnd);

/* 429 or 503 with Retry-After: wait at least retry_after_sec (raised to the
 * first backoff step, capped at the longest poll interval), plus jitter;
 * nothing may poll before the hint has passed. Counts as a failure. */
void portal_schedule_retry_after(PortalSchedule *s, usec_t now, uint64_t retry_after_sec, uint32_t rnd);

/* A key was inserted or the user asked for a refresh: poll now (or as soon
 * as a Retry-After allows), but no sooner than a minute after the poll an
 * earlier ask-now moved. Returns true when the next poll moved earlier. */
bool portal_schedule_ask_now(PortalSchedule *s, usec_t now);

/* Up to 10 % of base, scaled by rnd / 2^32. */
usec_t portal_schedule_jitter(usec_t base, uint32_t rnd);
