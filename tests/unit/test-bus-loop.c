/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <time.h>
#include <uv.h>

#include "assert.h"
#include "bus-loop.h"
#include "macro.h"

#define BIG_SIZE (40 << 20)

/* Two ends of a socketpair, a server and a client connection, both driven
 * by BusLoop on one libuv loop. */
typedef struct Test {
        uv_loop_t loop;
        sd_bus *server, *client;
        BusLoop *server_loop, *client_loop;
        uint64_t started_ms;
        char *big; /* more than sd-bus's 8 MB socket buffer: needs POLLOUT */
        int echoed, timed_out, client_failed;
} Test;

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int method_echo(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *s;
        int r;

        r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", s);
}

/* Never answers: the caller's timeout must end the call. */
static int method_never(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return 1;
}

static const sd_bus_vtable test_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Echo", SD_BUS_ARGS("s", text), SD_BUS_RESULT("s", text), method_echo, 0),
        SD_BUS_METHOD("Never", "", "", method_never, 0),
        SD_BUS_VTABLE_END,
};

static void fail_unexpected(BusLoop *b, int error, void *userdata) {
        fprintf(stderr, "unexpected bus failure: %s\n", strerror(-error));
        abort();
}

static void client_failed(BusLoop *b, int error, void *userdata) {
        Test *t = userdata;

        ASSERT_TRUE(error < 0);
        t->client_failed++;
        bus_loop_close(t->client_loop);
}

static int never_done(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Test *t = userdata;
        uint64_t elapsed = now_ms() - t->started_ms;

        /* The timer alone ends this call: nothing arrives on the fd. */
        ASSERT_EQ(sd_bus_message_get_errno(m), ETIMEDOUT);
        ASSERT_TRUE(elapsed >= 200);
        ASSERT_TRUE(elapsed < 2000);
        t->timed_out++;
        /* Closing the server's end is a disconnect for the client. */
        bus_loop_close(t->server_loop);
        return 1;
}

static int echo_done(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        Test *t = userdata;
        const char *s;

        ASSERT_EQ(sd_bus_message_is_method_error(m, NULL), 0);
        ASSERT_TRUE(sd_bus_message_read(m, "s", &s) > 0);
        ASSERT_STREQ(s, t->big);
        t->echoed++;

        ASSERT_TRUE(sd_bus_message_new_method_call(t->client, &call, NULL, "/test", "org.keyrenew.Test",
                                                   "Never") >= 0);
        t->started_ms = now_ms();
        ASSERT_TRUE(sd_bus_call_async(t->client, NULL, call, never_done, t, 200 * 1000) >= 0);
        return 1;
}

static void test_call_timeout_disconnect(void) {
        Test t = {};
        sd_id128_t id;
        int fds[2];

        ASSERT_EQ(uv_loop_init(&t.loop), 0);
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
        ASSERT_EQ(sd_id128_randomize(&id), 0);

        ASSERT_EQ(sd_bus_new(&t.server), 0);
        ASSERT_TRUE(sd_bus_set_fd(t.server, fds[0], fds[0]) >= 0);
        ASSERT_TRUE(sd_bus_set_server(t.server, 1, id) >= 0);
        ASSERT_TRUE(sd_bus_add_object_vtable(t.server, NULL, "/test", "org.keyrenew.Test", test_vtable,
                                             &t) >= 0);
        ASSERT_TRUE(sd_bus_start(t.server) >= 0);

        ASSERT_EQ(sd_bus_new(&t.client), 0);
        ASSERT_TRUE(sd_bus_set_fd(t.client, fds[1], fds[1]) >= 0);
        ASSERT_TRUE(sd_bus_start(t.client) >= 0);

        ASSERT_EQ(bus_loop_new(&t.loop, t.server, fail_unexpected, &t, &t.server_loop), 0);
        ASSERT_EQ(bus_loop_new(&t.loop, t.client, client_failed, &t, &t.client_loop), 0);
        /* The bus loops hold their own references. */
        t.server = sd_bus_unref(t.server);

        t.big = malloc(BIG_SIZE);
        ASSERT_TRUE(t.big);
        memset(t.big, 'k', BIG_SIZE - 1);
        t.big[BIG_SIZE - 1] = '\0';
        ASSERT_TRUE(sd_bus_call_method_async(t.client, NULL, NULL, "/test", "org.keyrenew.Test", "Echo",
                                             echo_done, &t, "s", t.big) >= 0);
        ASSERT_EQ(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(t.echoed, 1);
        ASSERT_EQ(t.timed_out, 1);
        ASSERT_EQ(t.client_failed, 1);
        t.client = sd_bus_unref(t.client);
        free(t.big);
        /* Every handle was closed and freed in its close callback. */
        ASSERT_EQ(uv_loop_close(&t.loop), 0);
}

static void test_new_fails_cleanly(void) {
        uv_loop_t loop;
        sd_bus *bus;
        BusLoop *b = NULL;

        ASSERT_EQ(uv_loop_init(&loop), 0);
        /* Not started: no fd to watch. */
        ASSERT_EQ(sd_bus_new(&bus), 0);
        ASSERT_TRUE(bus_loop_new(&loop, bus, fail_unexpected, NULL, &b) < 0);
        ASSERT_TRUE(!b);
        bus_loop_close(NULL);
        sd_bus_unref(bus);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(uv_loop_close(&loop), 0);
}

int main(void) {
        RUN(test_call_timeout_disconnect);
        RUN(test_new_fails_cleanly);
        return 0;
}
