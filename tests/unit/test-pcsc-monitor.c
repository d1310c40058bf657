/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <PCSC/winscard.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "assert.h"
#include "macro.h"
#include "pcsc-monitor.h"

/* Without pcscd, the monitor reports "no-service" again and again with a
 * doubling wait, and closing it wakes it from that wait at once. */

typedef struct Test {
        uv_loop_t loop;
        PcscMonitor *monitor;
        unsigned retries[8];
        size_t n_retries;
        uint64_t closed_ms;
} Test;

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void on_event(PcscMonitor *m, const PcscEvent *e, void *userdata) {
        Test *t = userdata;
        uint64_t start;

        ASSERT_EQ(e->type, PCSC_EVENT_STATE);
        ASSERT_EQ(e->state, PCSC_STATE_NO_SERVICE);
        ASSERT_EQ(e->error, SCARD_E_NO_SERVICE);
        ASSERT_TRUE(t->n_retries < ELEMENTSOF(t->retries));
        t->retries[t->n_retries++] = e->retry_ms;
        if (t->n_retries < 3)
                return;
        /* It now sleeps 2 s; closing must not wait for that. */
        start = now_ms();
        pcsc_monitor_close(t->monitor);
        t->closed_ms = now_ms() - start;
}

static void test_no_service(void) {
        Test t = {};

        ASSERT_EQ(uv_loop_init(&t.loop), 0);
        ASSERT_EQ(pcsc_monitor_new(&t.loop, on_event, &t, &t.monitor), 0);
        ASSERT_EQ(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(t.n_retries, 3);
        ASSERT_EQ(t.retries[0], 500);
        ASSERT_EQ(t.retries[1], 1000);
        ASSERT_EQ(t.retries[2], 2000);
        ASSERT_TRUE(t.closed_ms < 200);
        ASSERT_EQ(uv_loop_close(&t.loop), 0);
}

static void test_close_at_once(void) {
        uv_loop_t loop;
        PcscMonitor *m;

        /* Closed before the loop ever ran: no event, no leak. */
        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(pcsc_monitor_new(&loop, NULL, NULL, &m), 0);
        pcsc_monitor_close(m);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(uv_loop_close(&loop), 0);
}

static void test_state_names(void) {
        ASSERT_STREQ(pcsc_state_to_string(PCSC_STATE_NO_SERVICE), "no-service");
        ASSERT_STREQ(pcsc_state_to_string(PCSC_STATE_NO_READERS), "no-readers");
        ASSERT_STREQ(pcsc_state_to_string(PCSC_STATE_CONNECTED), "connected");
        ASSERT_TRUE(!pcsc_state_to_string(_PCSC_STATE_MAX));
}

int main(void) {
        /* pcsc-lite's client looks for pcscd here: nobody is there. */
        setenv("PCSCLITE_CSOCK_NAME", "/nonexistent/keyrenew-test/pcscd.comm", 1);
        RUN(test_state_names);
        RUN(test_no_service);
        RUN(test_close_at_once);
        return 0;
}
