/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The expiry policy, as pure functions of the certificate's notAfter, the
 * configured warning thresholds ([Expiry] WarnDays) and a "now" the caller
 * passes in (so tests can move time).
 *
 * Days left are whole days until notAfter, rounded down
 * (x509_info_days_left()): 0 on the last day, negative once expired.
 * A threshold of T days is crossed once fewer than T whole days are left
 * (DaysLeft <= T - 1). The certificate has expired once DaysLeft < 0, which
 * the policy treats as an implicit last threshold of 0. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Nothing crossed (as an "expiry level", see below). */
#define EXPIRY_LEVEL_NONE (-1)

typedef enum ExpiryStatus {
        EXPIRY_STATUS_VALID,    /* no threshold crossed */
        EXPIRY_STATUS_EXPIRING, /* a threshold crossed, not yet expired */
        EXPIRY_STATUS_EXPIRED,
        _EXPIRY_STATUS_MAX,
} ExpiryStatus;

/* "valid", "expiring", "expired" */
const char *expiry_status_to_string(ExpiryStatus s);

/* The expiry level of a certificate at now: the smallest of warn_days
 * (n_warn entries, any order) that is crossed, 0 when expired, or
 * EXPIRY_LEVEL_NONE. Levels only go down as time passes. */
int expiry_level(const unsigned *warn_days, size_t n_warn, time_t not_after, time_t now);

ExpiryStatus expiry_level_status(int level);

/* Whether reaching level is news after announced (the level last
 * announced for the same certificate, or EXPIRY_LEVEL_NONE): once per
 * threshold, never again for the same or a larger one. */
bool expiry_should_announce(int level, int announced);

/* The first second after now at which the certificate's days left (and so
 * possibly its level) change: notAfter minus a whole number of days, plus
 * one second. Always later than now. */
time_t expiry_next_change(time_t not_after, time_t now);
