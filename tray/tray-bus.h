/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* sd-bus driven from the GLib main loop. The system bus is sd-bus and
 * not GDBus because the PIN crosses it: sd_bus_message_sensitive() has
 * sd-bus wipe the reply that carries it, where GDBus copies it into
 * GVariants and message blobs that nobody wipes. libnotify needs GLib's
 * loop, so sd-bus joins that loop as a GSource (its fd, its events and
 * its time-out, read again before every poll). */

#include <glib.h>
#include <systemd/sd-bus.h>

/* Connects to address ("system" for the system bus, else a D-Bus
 * address) and attaches the connection to the default main context. */
int tray_bus_open(const char *address, sd_bus **ret);

/* Detaches and closes the connection (after flushing what is queued). */
sd_bus *tray_bus_close(sd_bus *bus);
