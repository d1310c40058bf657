/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the tray remembers across logins, one number per certificate, in a
 * file of its own under $XDG_STATE_HOME/keyrenew-tray/: the expiry
 * warnings shown ("warned": the last threshold, so that a tray started
 * after keyrenewd sent one shows it once and never twice) and the renewals
 * put off with "Later" ("snoozed": until when, in Unix seconds). One
 * "ID NUMBER" line each, the file rewritten atomically on every change. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct TrayRecord TrayRecord;

/* Reads $XDG_STATE_HOME/keyrenew-tray/name; a missing or unreadable file
 * is an empty record. */
int tray_record_load(const char *name, TrayRecord **ret);

/* id's number; false when id has none. */
bool tray_record_get(const TrayRecord *r, const char *id, uint64_t *ret_value);

/* Sets id's number and writes the file. */
int tray_record_set(TrayRecord *r, const char *id, uint64_t value);

/* Forgets id, writing the file if id was there. */
int tray_record_unset(TrayRecord *r, const char *id);

TrayRecord *tray_record_free(TrayRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(TrayRecord *, tray_record_free)
