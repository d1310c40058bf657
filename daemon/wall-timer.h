/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A timer at a wall-clock time (CLOCK_REALTIME), driven from the libuv
 * loop: a timerfd in a uv_poll. Unlike uv_timer (CLOCK_MONOTONIC, which
 * stands still while the machine sleeps) it fires on time after a suspend,
 * and it also fires at once when the clock is set, so that the owner can
 * work out its next time again. Certificates end at wall-clock times. */

#include <time.h>
#include <uv.h>

typedef struct WallTimer WallTimer;

/* Called on the loop thread when the time has come or the clock was set;
 * the timer is then disarmed. */
typedef void (*wall_timer_cb)(WallTimer *t, void *userdata);

int wall_timer_new(uv_loop_t *loop, wall_timer_cb cb, void *userdata, WallTimer **ret);

/* Fires at `at` (seconds since the epoch; at once when past), replacing
 * any earlier setting; 0 disarms. */
int wall_timer_set(WallTimer *t, time_t at);

/* Stops it; t is freed in the close callback. NULL is fine. */
void wall_timer_close(WallTimer *t);
