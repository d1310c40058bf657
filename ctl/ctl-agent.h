/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl as a PIN agent (org.keyrenew.KeyRenew1.Agent) on its own
 * bus connection: keyrenewd's RequestPin is answered from the terminal
 * (echo off) or from standard input, while the sd-event loop goes on.
 * Only calls from the owner of org.keyrenew.KeyRenew1 are answered. The
 * PIN stays in locked memory and is wiped once it is in the reply. */

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "ctl-prompt.h"
#include "macro.h"

/* Where keyrenewctl exports its agent on its connection. */
#define CTL_AGENT_PATH "/org/keyrenew/ctl/agent"

typedef struct CtlAgent CtlAgent;

/* Exports the agent object on bus (attached to event). */
int ctl_agent_new(sd_bus *bus, sd_event *event, PromptSource source, CtlAgent **ret);

/* Manager.RegisterAgent(); on a D-Bus error fills error. */
int ctl_agent_register(CtlAgent *a, sd_bus_error *error);

/* Ctrl-C: cancels the PIN prompt that is open (keyrenewd gets Cancelled).
 * False when none is open. */
bool ctl_agent_interrupt(CtlAgent *a);

/* Manager.UnregisterAgent() when registered, then frees a; a PIN request
 * still open is answered Cancelled. */
CtlAgent *ctl_agent_free(CtlAgent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(CtlAgent *, ctl_agent_free)
