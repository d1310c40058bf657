/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The running daemon: one libuv loop with the bus connection, the PC/SC
 * monitor and the manager; systemd notifications and watchdog; SIGTERM and
 * SIGINT end it cleanly. */

#include "manager.h"

/* Runs until SIGTERM or SIGINT (or until the bus connection fails) on bus:
 * "system", "session" or a D-Bus address, with the manager's settings.
 * Returns the exit status. */
int daemon_run(const char *bus, const ManagerSettings *settings);
