/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "wall-timer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "macro.h"

struct WallTimer {
        uv_poll_t poll;
        int fd;
        wall_timer_cb cb;
        void *userdata;
};

static void wall_timer_poll_cb(uv_poll_t *handle, int status, int events) {
        WallTimer *t = handle->data;
        uint64_t expirations;

        /* ECANCELED: the clock was set; either way the owner looks again. */
        if (read(t->fd, &expirations, sizeof expirations) < 0 && errno == EAGAIN)
                return;
        (void) wall_timer_set(t, 0);
        t->cb(t, t->userdata);
}

int wall_timer_new(uv_loop_t *loop, wall_timer_cb cb, void *userdata, WallTimer **ret) {
        WallTimer *t;
        int r;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->cb = cb;
        t->userdata = userdata;
        t->fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (t->fd < 0) {
                r = negative_errno();
                free(t);
                return r;
        }
        r = uv_poll_init(loop, &t->poll, t->fd);
        if (r < 0) {
                (void) close(t->fd);
                free(t);
                return r;
        }
        t->poll.data = t;
        *ret = t;
        return 0;
}

int wall_timer_set(WallTimer *t, time_t at) {
        struct itimerspec its = {};
        int r;

        if (at == 0)
                return timerfd_settime(t->fd, 0, &its, NULL) < 0 ? negative_errno() : uv_poll_stop(&t->poll);
        /* 0 would disarm it: before the epoch is as past as 1 s after it. */
        its.it_value.tv_sec = at > 0 ? at : 1;
        if (timerfd_settime(t->fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
                return negative_errno();
        r = uv_poll_start(&t->poll, UV_READABLE, wall_timer_poll_cb);
        return r < 0 ? r : 0;
}

static void wall_timer_close_cb(uv_handle_t *handle) {
        WallTimer *t = handle->data;

        (void) close(t->fd);
        free(t);
}

void wall_timer_close(WallTimer *t) {
        if (!t)
                return;
        uv_close((uv_handle_t *) &t->poll, wall_timer_close_cb);
}
