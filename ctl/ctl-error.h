/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl's exit statuses (part of its interface: documented in
 * docs/man/keyrenewctl.1.scd) and keyrenewd's errors in the user's words. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

typedef enum CtlExit {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,
        CTL_EXIT_USAGE = 2,
        CTL_EXIT_NO_DAEMON = 3,
        /* 4 meant "not built yet" before renew and history were built. */
        CTL_EXIT_CANCELLED = 5,
        CTL_EXIT_PIN = 6,
        CTL_EXIT_CONFIRM = 7,
        CTL_EXIT_ABSENT = 8,
        CTL_EXIT_NOTHING = 9,
} CtlExit;

#define CTL_ERROR_PREFIX "org.keyrenew.KeyRenew1.Error."
#define CTL_ERROR_CANCELLED CTL_ERROR_PREFIX "Cancelled"
#define CTL_ERROR_CONFIRMATION_REQUIRED CTL_ERROR_PREFIX "ConfirmationRequired"
#define CTL_ERROR_AGENT_EXISTS CTL_ERROR_PREFIX "AgentExists"

/* Whether error says keyrenewd is not on the bus (not running, not
 * activatable). */
bool ctl_bus_error_is_daemon_missing(const sd_bus_error *error);

/* What a failed call means to the user and what to do about it, translated;
 * NULL for an error this version has no words for. */
const char *ctl_bus_error_text(const sd_bus_error *error);

/* The exit status a D-Bus error ends keyrenewctl with. */
int ctl_bus_error_status(const sd_bus_error *error);

/* Says on stderr why talking to keyrenewd failed (r, and error when the
 * daemon or the bus answered one) and what to do next; returns the exit
 * status. */
int ctl_error_report(int r, const sd_bus_error *error);
