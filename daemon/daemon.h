/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The running daemon: one libuv loop with the bus connection, the PC/SC
 * monitor and the manager; systemd notifications and watchdog; SIGTERM and
 * SIGINT end it cleanly. */

/* Runs until SIGTERM or SIGINT (or until the bus connection fails) on bus:
 * "system", "session" or a D-Bus address. Returns the exit status. */
int daemon_run(const char *bus);
