/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PIN agents clients registered (Manager.RegisterAgent(o) /
 * UnregisterAgent(o)), and which one to ask for a given caller.
 *
 * An agent is (owner: the unique bus name that registered it, its object
 * path) and belongs to the owner's uid and login session, as the bus and
 * logind tell them, never as the client says.
 *
 * Rules:
 * - One agent per (uid, session). A second registration for the same
 *   (uid, session) is refused with -EEXIST (unless it is the very same
 *   owner and path again, which is a no-op): a later client of the session
 *   must not silently take the PIN prompts away from the tray the user is
 *   looking at. The first agent leaves by UnregisterAgent or by leaving the
 *   bus.
 * - An agent is only ever found for a caller of the same uid.
 * - A caller gets the agent of its own session. When a session is unknown
 *   (a caller outside any logind session, or a private test bus without
 *   logind), the agent of the same uid without a session is the match, and
 *   failing that, a caller without a session gets the agent of its uid if
 *   that uid has exactly one.
 * - With a bus, an agent is dropped when its owner leaves the bus
 *   (NameOwnerChanged for the unique name).
 *
 * Loop thread only, like the bus it watches. */

#include <sys/types.h>
#include <systemd/sd-bus.h>

typedef struct AgentRegistry AgentRegistry;

typedef struct Agent {
        char *owner;   /* unique bus name, ":1.42" */
        char *path;    /* the agent object's path */
        char *session; /* logind session id, or NULL if unknown */
        uid_t uid;
} Agent;

/* Called for each agent removed while the registry lives (unregistered,
 * or its owner left the bus), already out of the registry and freed when
 * this returns: e.g. to fail a PIN request waiting for it. It must not
 * change the registry. */
typedef void (*agent_removed_cb)(AgentRegistry *reg, const Agent *agent, void *userdata);

/* bus may be NULL: then owners leaving are not noticed (unit tests). */
int agent_registry_new(sd_bus *bus, AgentRegistry **ret);
AgentRegistry *agent_registry_free(AgentRegistry *reg);
void agent_registry_set_removed_callback(AgentRegistry *reg, agent_removed_cb cb, void *userdata);

/* Returns 0 when registered (or the same registration again), -EINVAL for
 * an invalid owner or object path, -EEXIST when (uid, session) already has
 * another agent, -ENOMEM, or an sd-bus error installing the watch. */
int agent_registry_register(AgentRegistry *reg, const char *owner, const char *path, const char *session,
                            uid_t uid);

/* Only the owner that registered path can unregister it. Returns 0, or
 * -ENOENT when owner has no agent at path. */
int agent_registry_unregister(AgentRegistry *reg, const char *owner, const char *path);

/* Drops every agent of owner (it left the bus). Returns how many. */
unsigned agent_registry_forget_owner(AgentRegistry *reg, const char *owner);

/* The agent for a caller with this uid and session (NULL if unknown), by
 * the rules above; NULL when there is none. Valid until the registry
 * changes. */
const Agent *agent_registry_find(const AgentRegistry *reg, uid_t uid, const char *session);

unsigned agent_registry_count(const AgentRegistry *reg);

/* The sender of method_call as the bus driver vouches for it: its
 * effective uid and, where logind knows it, its session (*ret_session
 * NULL otherwise; free it). Returns 0 or a negative errno (-ENODATA when
 * the bus gives no uid, -EPERM when the uid could only be read from /proc). */
int agent_caller_identity(sd_bus_message *method_call, uid_t *ret_uid, char **ret_session);

/* agent_caller_identity() then agent_registry_find(): the agent to ask for
 * the caller of method_call. Returns 0 with *ret set, -ENOENT when the
 * caller's user has no agent, or the error of agent_caller_identity(). */
int agent_registry_find_for_message(const AgentRegistry *reg, sd_bus_message *method_call,
                                    const Agent **ret);
