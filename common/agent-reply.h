/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What every PIN agent (keyrenewctl, keyrenew-tray) does the same way on
 * the org.keyrenew.KeyRenew1.Agent interface. */

#include <systemd/sd-bus.h>

/* The Agent interface: "the card's PIN, 1 to 8 characters". */
#define AGENT_PIN_MAX_LEN 8

/* Only keyrenewd may learn the PIN: 0 when the sender of m is the unique
 * name that owns org.keyrenew.KeyRenew1 right now; otherwise sets error
 * to AccessDenied and returns its negative errno. */
int agent_check_caller(sd_bus_message *m, sd_bus_error *error);

/* Answers request with pin. The reply is marked sensitive (sd-bus wipes
 * it when it is freed) and flushed out at once, so that it is freed soon. */
int agent_reply_pin(sd_bus_message *request, const char *pin);
