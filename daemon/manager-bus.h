/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The Manager as the bus shows it: org.keyrenew.KeyRenew1.Manager and the
 * ObjectManager at /org/keyrenew/KeyRenew1. */

#include "manager.h"

#define MANAGER_BUS_PATH "/org/keyrenew/KeyRenew1"
#define MANAGER_BUS_INTERFACE "org.keyrenew.KeyRenew1.Manager"

int manager_bus_register(Manager *m);
void manager_bus_unregister(Manager *m);

/* Emits PropertiesChanged for the named properties (a NULL-terminated
 * list of names). */
int manager_bus_emit_changed_strv(Manager *m, char **names);
#define manager_bus_emit_changed(m, ...) manager_bus_emit_changed_strv((m), (char *[]){ __VA_ARGS__, NULL })

/* A caller's string as an error message may quote it: cut, at a character
 * boundary, to fit size bytes with "…" (a caller may send megabytes). */
#define BUS_SHOWN_MAX 80
const char *manager_bus_shown(const char *s, char buf[static BUS_SHOWN_MAX]);
