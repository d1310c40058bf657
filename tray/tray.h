/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenew-tray: follows keyrenewd on the system bus, tells the person at
 * the desktop what a certificate needs (libnotify), is the session's PIN
 * agent (the user's pinentry) and runs the renewal they ask for. */

#include <gio/gio.h>
#include <stdint.h>

#include "macro.h"

typedef struct TrayOptions {
        const char *bus;      /* "system" or a D-Bus address */
        const char *pinentry; /* the program */
        uint64_t snooze_usec; /* how long "Later" keeps a prompt away */
} TrayOptions;

typedef struct Tray Tray;

/* Connects, registers the agent and asks keyrenewd what it knows; the
 * rest happens in the GLib main loop. */
int tray_new(const TrayOptions *options, Tray **ret);

/* Offers a status icon with a menu of the keys on the session bus, for
 * desktops that show one. */
int tray_show_icon(Tray *t, GDBusConnection *session);

/* Withdraws the prompts and the agent. */
Tray *tray_free(Tray *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tray *, tray_free)
