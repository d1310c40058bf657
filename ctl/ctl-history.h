/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl history: Manager.GetHistory() as a table, or as JSON. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Prints the renewals that ended, oldest first; returns the exit status
 * (ctl-error.h), having said on stderr what went wrong. */
int ctl_history(sd_bus *bus, bool json, bool legend, bool color);
