/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The renewal on the bus: Manager.Renew, Cancel, RegisterAgent,
 * UnregisterAgent and GetHistory (dbus/org.keyrenew.KeyRenew1.xml), the
 * PIN asked of the caller's agent, the renewal run on the token's worker
 * (renewal.h), the logind inhibitor while it runs, and the resume of an
 * interrupted renewal when its key is read again. Loop thread only. */

#include <systemd/sd-bus.h>

#include "manager.h"

#define BUS_ERROR_NO_SUCH_CERTIFICATE "org.keyrenew.KeyRenew1.Error.NoSuchCertificate"
#define BUS_ERROR_NO_RENEWAL "org.keyrenew.KeyRenew1.Error.NoRenewal"
#define BUS_ERROR_BUSY "org.keyrenew.KeyRenew1.Error.Busy"
#define BUS_ERROR_NO_AGENT "org.keyrenew.KeyRenew1.Error.NoAgent"
#define BUS_ERROR_AGENT_EXISTS "org.keyrenew.KeyRenew1.Error.AgentExists"
#define BUS_ERROR_NO_SUCH_AGENT "org.keyrenew.KeyRenew1.Error.NoSuchAgent"
#define BUS_ERROR_CONFIRMATION_REQUIRED "org.keyrenew.KeyRenew1.Error.ConfirmationRequired"
#define BUS_ERROR_CANCELLED "org.keyrenew.KeyRenew1.Error.Cancelled"
#define BUS_ERROR_INTERRUPTED "org.keyrenew.KeyRenew1.Error.Interrupted"
#define BUS_ERROR_NOT_CONFIGURED "org.keyrenew.KeyRenew1.Error.NotConfigured"

#define AGENT_BUS_INTERFACE "org.keyrenew.KeyRenew1.Agent"

/* Sets up the agents' registry, the card provider and the state directory
 * for renewals, and writes to the history the renewals a previous run
 * finished but did not file. */
int manager_renew_init(Manager *m, const ManagerSettings *settings);
/* Asks every renewal to stop at its next step boundary (they stay
 * resumable) and withdraws the PIN requests; before the readers' workers
 * are closed (which waits for the runs). */
void manager_renew_stop(Manager *m);
/* Then answers the calls still waiting and frees it all. */
void manager_renew_done(Manager *m);

int manager_renew_method(Manager *m, sd_bus_message *call, sd_bus_error *error);
int manager_cancel_method(Manager *m, sd_bus_message *call, sd_bus_error *error);
int manager_register_agent_method(Manager *m, sd_bus_message *call, sd_bus_error *error);
int manager_unregister_agent_method(Manager *m, sd_bus_message *call, sd_bus_error *error);
int manager_get_history_method(Manager *m, sd_bus_message *call, sd_bus_error *error);

/* The card in r is being pulled out: a renewal running on its worker keeps
 * the worker (it finishes at the next step, which fails) and true is
 * returned; the caller must then not close it. A renewal waiting for the
 * PIN ends. */
bool manager_renew_card_removed(Manager *m, Reader *r);
/* t was read in r: resumes an interrupted renewal of t when the user who
 * started it has an agent. */
void manager_renew_token_read(Manager *m, Reader *r, TokenObject *t);
