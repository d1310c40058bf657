/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PIN dialog: the user's pinentry, spoken to in the Assuan protocol
 * (the one gpg-agent speaks to it) from the GLib main loop, so the tray
 * goes on answering the bus while the person types. The PIN only ever
 * sits in locked memory (secmem.h). */

#include "macro.h"

typedef struct TrayPinentry TrayPinentry;

/* What the dialog shows; NULL fields are left out. */
typedef struct TrayPinentryText {
        const char *title;
        const char *description;
        const char *prompt;
        const char *error; /* why the last try failed, in red */
        const char *ok;
        const char *cancel;
} TrayPinentryText;

/* r: 0 with pin (secmem, the callee's to secmem_free()), -ECANCELED when
 * the user cancelled, another negative errno when the dialog failed. */
typedef void (*tray_pinentry_cb)(int r, char *pin, void *userdata);

/* Starts program (e.g. /usr/bin/pinentry) with text; cb runs once, from
 * the main loop, unless the dialog is freed first. */
int tray_pinentry_start(const char *program, const TrayPinentryText *text, tray_pinentry_cb cb,
                        void *userdata, TrayPinentry **ret);

/* Closes the dialog if it is still open (cb is not called) and frees p. */
TrayPinentry *tray_pinentry_free(TrayPinentry *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(TrayPinentry *, tray_pinentry_free)
