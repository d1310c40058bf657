/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "agent-registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

typedef struct AgentEntry {
        Agent agent;
        AgentRegistry *registry;
        sd_bus_slot *name_watch;  /* NameOwnerChanged for the owner */
        sd_bus_slot *owner_check; /* GetNameOwner, in case it left before the watch */
} AgentEntry;

struct AgentRegistry {
        sd_bus *bus;
        AgentEntry **entries;
        unsigned n_entries;
        agent_removed_cb removed_cb;
        void *removed_userdata;
};

static int streq_null(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}

static void agent_entry_free(AgentEntry *e) {
        sd_bus_slot_unref(e->name_watch);
        sd_bus_slot_unref(e->owner_check);
        free(e->agent.owner);
        free(e->agent.path);
        free(e->agent.session);
        free(e);
}

int agent_registry_new(sd_bus *bus, AgentRegistry **ret) {
        AgentRegistry *reg;

        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        reg->bus = sd_bus_ref(bus);
        *ret = reg;
        return 0;
}

AgentRegistry *agent_registry_free(AgentRegistry *reg) {
        if (!reg)
                return NULL;
        for (unsigned i = 0; i < reg->n_entries; i++)
                agent_entry_free(reg->entries[i]);
        free(reg->entries);
        sd_bus_unref(reg->bus);
        free(reg);
        return NULL;
}

static void forget_owner_of(AgentEntry *e) {
        /* Forgetting frees e and the owner string with it. */
        _cleanup_free_ char *owner = strdup(e->agent.owner);

        if (owner)
                agent_registry_forget_owner(e->registry, owner);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old_owner, *new_owner;

        /* The match's arg0 is the owner, so any empty new owner is it leaving. */
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && new_owner[0] == '\0')
                forget_owner_of(userdata);
        return 0;
}

static int on_owner_checked(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AgentEntry *e = userdata;

        e->owner_check = sd_bus_slot_unref(e->owner_check);
        if (sd_bus_message_is_method_error(reply, NULL))
                forget_owner_of(e);
        return 0;
}

/* The watch first, then the question: the bus answers in order, so an
 * owner that left before the watch was in place is caught by the answer. */
static int agent_entry_watch(AgentEntry *e, sd_bus *bus) {
        _cleanup_free_ char *match = NULL;
        int r;

        if (asprintf(&match,
                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
                     e->agent.owner) < 0)
                return -ENOMEM;
        r = sd_bus_add_match_async(bus, &e->name_watch, match, on_name_owner_changed, NULL, e);
        if (r < 0)
                return r;
        return sd_bus_call_method_async(bus, &e->owner_check, "org.freedesktop.DBus",
                                        "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                                        on_owner_checked, e, "s", e->agent.owner);
}

static int agent_entry_new(AgentRegistry *reg, const char *owner, const char *path, const char *session,
                           uid_t uid, AgentEntry **ret) {
        AgentEntry *e;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->registry = reg;
        e->agent.uid = uid;
        e->agent.owner = strdup(owner);
        e->agent.path = strdup(path);
        e->agent.session = session ? strdup(session) : NULL;
        if (!e->agent.owner || !e->agent.path || (session && !e->agent.session)) {
                agent_entry_free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

int agent_registry_register(AgentRegistry *reg, const char *owner, const char *path, const char *session,
                            uid_t uid) {
        AgentEntry *e = NULL, **entries;
        int r;

        if (!reg || !owner || owner[0] != ':' || !path || !sd_bus_object_path_is_valid(path) ||
            (session && session[0] == '\0'))
                return -EINVAL;
        for (unsigned i = 0; i < reg->n_entries; i++) {
                const Agent *a = &reg->entries[i]->agent;

                if (a->uid == uid && streq_null(a->session, session))
                        return strcmp(a->owner, owner) == 0 && strcmp(a->path, path) == 0 ? 0 : -EEXIST;
        }

        entries = reallocarray(reg->entries, reg->n_entries + 1, sizeof(*entries));
        if (!entries)
                return -ENOMEM;
        reg->entries = entries;
        r = agent_entry_new(reg, owner, path, session, uid, &e);
        if (r >= 0 && reg->bus)
                r = agent_entry_watch(e, reg->bus);
        if (r < 0) {
                if (e)
                        agent_entry_free(e);
                return r;
        }
        reg->entries[reg->n_entries++] = e;
        return 0;
}

void agent_registry_set_removed_callback(AgentRegistry *reg, agent_removed_cb cb, void *userdata) {
        reg->removed_cb = cb;
        reg->removed_userdata = userdata;
}

static void remove_at(AgentRegistry *reg, unsigned i) {
        AgentEntry *e = reg->entries[i];

        memmove(reg->entries + i, reg->entries + i + 1, (reg->n_entries - i - 1) * sizeof(*reg->entries));
        reg->n_entries--;
        if (reg->removed_cb)
                reg->removed_cb(reg, &e->agent, reg->removed_userdata);
        agent_entry_free(e);
}

int agent_registry_unregister(AgentRegistry *reg, const char *owner, const char *path) {
        for (unsigned i = 0; reg && owner && path && i < reg->n_entries; i++) {
                const Agent *a = &reg->entries[i]->agent;

                if (strcmp(a->owner, owner) == 0 && strcmp(a->path, path) == 0) {
                        remove_at(reg, i);
                        return 0;
                }
        }
        return -ENOENT;
}

unsigned agent_registry_forget_owner(AgentRegistry *reg, const char *owner) {
        unsigned n = 0;

        for (unsigned i = 0; reg && owner && i < reg->n_entries;)
                if (strcmp(reg->entries[i]->agent.owner, owner) == 0) {
                        remove_at(reg, i);
                        n++;
                } else
                        i++;
        return n;
}

const Agent *agent_registry_find(const AgentRegistry *reg, uid_t uid, const char *session) {
        const Agent *sessionless = NULL, *only = NULL;
        unsigned n_of_uid = 0;

        for (unsigned i = 0; reg && i < reg->n_entries; i++) {
                const Agent *a = &reg->entries[i]->agent;

                if (a->uid != uid)
                        continue;
                if (session && streq_null(a->session, session))
                        return a;
                if (!a->session)
                        sessionless = a;
                only = a;
                n_of_uid++;
        }
        if (sessionless)
                return sessionless;
        return !session && n_of_uid == 1 ? only : NULL;
}

unsigned agent_registry_count(const AgentRegistry *reg) {
        return reg ? reg->n_entries : 0;
}

int agent_caller_identity(sd_bus_message *method_call, uid_t *ret_uid, char **ret_session) {
        sd_bus_creds *creds = NULL;
        const char *session = NULL;
        char *copy = NULL;
        uid_t uid;
        int r;

        /* The effective uid is what the bus driver saw on the socket; the
         * session is looked up (augmented) from the caller's cgroup, which
         * is racy but only ever chooses among agents of that uid. */
        r = sd_bus_query_sender_creds(
                method_call, SD_BUS_CREDS_EUID | SD_BUS_CREDS_SESSION | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID)
                r = -EPERM; /* a uid read from /proc is no proof */
        else
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r >= 0 && sd_bus_creds_get_session(creds, &session) >= 0 && session) {
                copy = strdup(session);
                if (!copy)
                        r = -ENOMEM;
        }
        sd_bus_creds_unref(creds);
        if (r < 0)
                return r;
        *ret_uid = uid;
        *ret_session = copy;
        return 0;
}

int agent_registry_find_for_message(const AgentRegistry *reg, sd_bus_message *method_call,
                                    const Agent **ret) {
        _cleanup_free_ char *session = NULL;
        const Agent *a;
        uid_t uid;
        int r;

        r = agent_caller_identity(method_call, &uid, &session);
        if (r < 0)
                return r;
        a = agent_registry_find(reg, uid, session);
        if (!a)
                return -ENOENT;
        *ret = a;
        return 0;
}
