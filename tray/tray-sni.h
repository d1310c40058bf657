/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A status icon where the desktop shows one (StatusNotifierItem, with a
 * com.canonical.dbusmenu menu): the keys, their certificates and what
 * each needs; a click on an approved renewal starts it. The
 * notifications never depend on it. On the session bus with GDBus: no
 * secret crosses it, and GLib's loop is the tray's. */

#include <gio/gio.h>

#include "macro.h"

typedef struct Tray Tray;
typedef struct TraySni TraySni;

/* Exports the item and the menu on session, and registers with the
 * StatusNotifierWatcher whenever one is on the bus. */
int tray_sni_new(Tray *t, GDBusConnection *session, TraySni **ret);

/* The keys or their states changed: the menu, status and tool tip follow. */
void tray_sni_changed(TraySni *s);

TraySni *tray_sni_free(TraySni *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(TraySni *, tray_sni_free)
