/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PIV driver's whole public surface, called in one fixed order over one
 * transport: what fuzz-piv-responses runs over answers from its input, and
 * what record-piv-session runs against the virtual card to record those
 * answers as seeds. The same order in both is what makes a recorded
 * session replay as the card answered it. */

#include "token-transport.h"

/* Runs every call; a failing call does not stop the ones after it (the
 * driver must cope with whatever state the card was left in), only a
 * failing token_open() does. The certificates read are parsed as the
 * daemon parses them (x509-info). */
void piv_session_run(TokenTransport *transport);
