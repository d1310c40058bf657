/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The expiry warnings the user has been shown, so that a tray started
 * after keyrenewd sent one (at the next login, say) shows it once, and a
 * warning is never shown twice: kept in
 * $XDG_STATE_HOME/keyrenew-tray/warned, one "ISSUERHASH:SERIAL THRESHOLD"
 * line per certificate. */

#include <stdbool.h>

#include "macro.h"

typedef struct TrayWarned TrayWarned;

/* Reads the file; a missing or unreadable one is an empty record. */
int tray_warned_load(TrayWarned **ret);

/* Whether threshold (days; 0 expired) is smaller than the last one shown
 * for the certificate id, or none was. */
bool tray_warned_is_new(const TrayWarned *w, const char *id, unsigned threshold);

/* Remembers threshold for id and writes the file (atomically). */
int tray_warned_record(TrayWarned *w, const char *id, unsigned threshold);

TrayWarned *tray_warned_free(TrayWarned *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(TrayWarned *, tray_warned_free)
