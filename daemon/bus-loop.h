/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Drives an sd-bus connection from a libuv loop: a poll handle on the bus's
 * fd for the events sd_bus_get_events() asks for and a timer for the
 * absolute deadline of sd_bus_get_timeout(), both re-armed by a prepare
 * handle before the loop sleeps, and sd_bus_process() run until it has
 * nothing left each time one of them fires. */

#include <systemd/sd-bus.h>
#include <uv.h>

typedef struct BusLoop BusLoop;

/* Called once when the connection fails or is closed (error is a negative
 * errno); the bus loop has stopped watching it and only bus_loop_close()
 * is left to do. */
typedef void (*bus_loop_fail_cb)(BusLoop *b, int error, void *userdata);

/* Starts driving bus (which must be started, e.g. by sd_bus_open_system()
 * or sd_bus_start()) from loop; takes a reference to it. fail_cb is never
 * called when this fails. Returns 0 or a negative errno. */
int bus_loop_new(uv_loop_t *loop, sd_bus *bus, bus_loop_fail_cb fail_cb, void *userdata, BusLoop **ret);

/* Stops and closes the handles; the last close callback flushes and closes
 * the connection, drops the reference and frees b. fail_cb is not called
 * any more. NULL is fine. */
void bus_loop_close(BusLoop *b);
