/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl renew: Manager.Renew() with keyrenewctl as the PIN agent of
 * the session, the renewal's steps on stderr as the token reports them,
 * and the outcome. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "ctl-bus.h"

typedef struct CtlRenewOptions {
        const char *target;   /* see ctl_pick(): NULL, SERIAL, SERIAL/SLOT or a path */
        bool accept_key_loss; /* AcceptKeyLoss without asking */
        bool pin_stdin;       /* the PIN from standard input, nothing asked on the terminal */
        bool json;            /* the result as JSON on stdout */
} CtlRenewOptions;

/* Renews on bus the certificate of m that o->target names. Says on
 * stdout how it went, on stderr why not and what to do; returns the exit
 * status (ctl-error.h). */
int ctl_renew(sd_bus *bus, const CtlManager *m, const CtlRenewOptions *o);
