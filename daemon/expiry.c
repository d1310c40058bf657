/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "expiry.h"

#define DAY 86400

/* Whole days rounded towards minus infinity, as x509_info_days_left(). */
static int64_t days_left(time_t not_after, time_t now) {
        int64_t d = (int64_t) not_after - (int64_t) now;

        return d >= 0 ? d / DAY : -((-d + DAY - 1) / DAY);
}

const char *expiry_status_to_string(ExpiryStatus s) {
        static const char *const names[_EXPIRY_STATUS_MAX] = {
                [EXPIRY_STATUS_VALID] = "valid",
                [EXPIRY_STATUS_EXPIRING] = "expiring",
                [EXPIRY_STATUS_EXPIRED] = "expired",
        };

        return s >= 0 && s < _EXPIRY_STATUS_MAX ? names[s] : NULL;
}

int expiry_level(const unsigned *warn_days, size_t n_warn, time_t not_after, time_t now) {
        int64_t left = days_left(not_after, now);
        int level = EXPIRY_LEVEL_NONE;

        if (left < 0)
                return 0;
        for (size_t i = 0; i < n_warn; i++)
                if (left < (int64_t) warn_days[i] &&
                    (level == EXPIRY_LEVEL_NONE || (int) warn_days[i] < level))
                        level = (int) warn_days[i];
        return level;
}

ExpiryStatus expiry_level_status(int level) {
        return level == EXPIRY_LEVEL_NONE ? EXPIRY_STATUS_VALID
               : level == 0               ? EXPIRY_STATUS_EXPIRED
                                          : EXPIRY_STATUS_EXPIRING;
}

bool expiry_should_announce(int level, int announced) {
        return level != EXPIRY_LEVEL_NONE && (announced == EXPIRY_LEVEL_NONE || level < announced);
}

time_t expiry_next_change(time_t not_after, time_t now) {
        /* days_left() drops from q to q - 1 once fewer than q whole days
         * are left, i.e. one second after notAfter - q days. */
        int64_t q = days_left(not_after, now);

        return (time_t) ((int64_t) not_after - q * DAY + 1);
}
