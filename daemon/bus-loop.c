/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-loop.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

struct BusLoop {
        sd_bus *bus;
        uv_poll_t poll;
        uv_timer_t timer;
        uv_prepare_t prepare;
        int events;     /* the uv_poll events being watched, -1 before the first arming */
        uint64_t until; /* the deadline the timer is armed for, UINT64_MAX for none */
        unsigned n_open;
        bool done; /* failed or closing: nothing is armed any more */
        bus_loop_fail_cb fail_cb;
        void *userdata;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void bus_loop_fail(BusLoop *b, int error) {
        if (b->done)
                return;
        b->done = true;
        (void) uv_poll_stop(&b->poll);
        (void) uv_timer_stop(&b->timer);
        (void) uv_prepare_stop(&b->prepare);
        b->fail_cb(b, error, b->userdata);
}

static void bus_loop_process(BusLoop *b) {
        int r;

        do
                r = sd_bus_process(b->bus, NULL);
        while (r > 0);
        /* A disconnect is processed as a message and closes the bus (and its
         * fd): stop polling that fd before anything can reuse the number. */
        if (r == 0 && sd_bus_is_open(b->bus) <= 0)
                r = -ECONNRESET;
        if (r < 0)
                bus_loop_fail(b, r);
}

static void bus_loop_poll_cb(uv_poll_t *handle, int status, int events) {
        BusLoop *b = handle->data;

        if (status < 0)
                bus_loop_fail(b, status);
        else
                bus_loop_process(b);
}

static void bus_loop_timer_cb(uv_timer_t *handle) {
        BusLoop *b = handle->data;

        b->until = UINT64_MAX;
        bus_loop_process(b);
}

static int bus_loop_arm_poll(BusLoop *b) {
        int events, r;

        r = sd_bus_get_events(b->bus);
        if (r < 0)
                return r;
        events = (r & POLLIN ? UV_READABLE : 0) | (r & POLLOUT ? UV_WRITABLE : 0);
        if (events == b->events)
                return 0;
        r = uv_poll_start(&b->poll, events, bus_loop_poll_cb);
        if (r < 0)
                return r;
        b->events = events;
        return 0;
}

static int bus_loop_arm_timer(BusLoop *b) {
        uint64_t until, now;
        int r;

        r = sd_bus_get_timeout(b->bus, &until);
        if (r < 0)
                return r;
        if (until == b->until)
                return 0;
        if (until == UINT64_MAX) {
                (void) uv_timer_stop(&b->timer);
        } else {
                /* The deadline is absolute; libuv wants milliseconds from its
                 * own idea of now, so bring that up to date first. */
                uv_update_time(b->timer.loop);
                now = now_usec();
                r = uv_timer_start(&b->timer, bus_loop_timer_cb,
                                   until > now ? (until - now + 999) / 1000 : 0, 0);
                if (r < 0)
                        return r;
        }
        b->until = until;
        return 0;
}

static void bus_loop_prepare_cb(uv_prepare_t *handle) {
        BusLoop *b = handle->data;
        int r;

        r = bus_loop_arm_poll(b);
        if (r >= 0)
                r = bus_loop_arm_timer(b);
        if (r < 0)
                bus_loop_fail(b, r);
}

int bus_loop_new(uv_loop_t *loop, sd_bus *bus, bus_loop_fail_cb fail_cb, void *userdata, BusLoop **ret) {
        BusLoop *b;
        int fd, r;

        fd = sd_bus_get_fd(bus);
        if (fd < 0)
                return fd;
        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        r = uv_poll_init(loop, &b->poll, fd);
        if (r < 0) {
                free(b);
                return r;
        }
        /* Neither can fail. */
        (void) uv_timer_init(loop, &b->timer);
        (void) uv_prepare_init(loop, &b->prepare);
        b->poll.data = b->timer.data = b->prepare.data = b;
        b->n_open = 3;
        b->bus = sd_bus_ref(bus);
        b->events = -1;
        b->until = UINT64_MAX;
        b->fail_cb = fail_cb;
        b->userdata = userdata;
        (void) uv_prepare_start(&b->prepare, bus_loop_prepare_cb);
        *ret = b;
        return 0;
}

static void bus_loop_close_cb(uv_handle_t *handle) {
        BusLoop *b = handle->data;

        if (--b->n_open > 0)
                return;
        sd_bus_flush_close_unref(b->bus);
        free(b);
}

void bus_loop_close(BusLoop *b) {
        if (!b)
                return;
        b->done = true;
        uv_close((uv_handle_t *) &b->poll, bus_loop_close_cb);
        uv_close((uv_handle_t *) &b->timer, bus_loop_close_cb);
        uv_close((uv_handle_t *) &b->prepare, bus_loop_close_cb);
}
