/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Serves daemon/polkit-check and daemon/agent-registry on the system bus
 * (DBUS_SYSTEM_BUS_ADDRESS: a private one in tests/integration/
 * test_polkit_agent.py) as org.keyrenew.Probe, so that a test can call
 * them as a real client would. Not installed. Exits 0 on SIGTERM after
 * cancelling the checks still waiting for polkit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent-registry.h"
#include "polkit-check.h"

#define PROBE_NAME "org.keyrenew.Probe"
#define PROBE_PATH "/org/keyrenew/Probe"
#define PROBE_INTERFACE "org.keyrenew.Probe"
#define MAX_PENDING 16

typedef struct Pending {
        PolkitCheck *check;
        sd_bus_message *call;
        char *action;
} Pending;

typedef struct Probe {
        sd_bus *bus;
        AgentRegistry *agents;
        Pending pending[MAX_PENDING];
} Probe;

static void pending_clear(Pending *p) {
        p->check = polkit_check_cancel(p->check);
        p->call = sd_bus_message_unref(p->call);
        free(p->action);
        p->action = NULL;
}

static void on_checked(PolkitCheck *check, PolkitResult result, int error, void *userdata) {
        Pending *p = userdata;
        sd_bus_error e = SD_BUS_ERROR_NULL;

        p->check = NULL; /* freed when we return */
        fprintf(stderr, "polkit-agent-probe: %s: %s (%s)\n", p->action, polkit_result_to_string(result),
                strerror(-error));
        /* The caller may be gone: a reply to nobody is dropped by the bus. */
        if (polkit_check_result_to_bus_error(result, error, p->action, &e) < 0)
                (void) sd_bus_reply_method_error(p->call, &e);
        else
                (void) sd_bus_reply_method_return(p->call, NULL);
        sd_bus_error_free(&e);
        pending_clear(p);
}

static int method_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Probe *probe = userdata;
        const char *action;
        Pending *p = NULL;
        int r;

        r = sd_bus_message_read(m, "s", &action);
        if (r < 0)
                return r;
        for (unsigned i = 0; !p && i < MAX_PENDING; i++)
                if (!probe->pending[i].call)
                        p = &probe->pending[i];
        if (!p)
                return -EBUSY;
        p->action = strdup(action);
        if (!p->action)
                return -ENOMEM;
        r = polkit_check_start(probe->bus, m, action, on_checked, p, &p->check);
        if (r < 0) {
                pending_clear(p);
                return sd_bus_error_set_errnof(error, -r, "polkit_check_start: %s", strerror(-r));
        }
        p->call = sd_bus_message_ref(m);
        return 1;
}

static int method_pending(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Probe *probe = userdata;
        uint32_t n = 0;

        for (unsigned i = 0; i < MAX_PENDING; i++)
                n += probe->pending[i].check != NULL;
        return sd_bus_reply_method_return(m, "u", n);
}

static int method_register_agent(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Probe *probe = userdata;
        char *session = NULL;
        const char *path;
        uid_t uid;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = agent_caller_identity(m, &uid, &session);
        if (r >= 0)
                r = agent_registry_register(probe->agents, sd_bus_message_get_sender(m), path, session, uid);
        free(session);
        if (r == -EEXIST)
                return sd_bus_error_set(error, "org.keyrenew.KeyRenew1.Error.AgentExists",
                                        "Your session already has an agent.");
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int method_unregister_agent(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Probe *probe = userdata;
        const char *path;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = agent_registry_unregister(probe->agents, sd_bus_message_get_sender(m), path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int method_find_agent(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Probe *probe = userdata;
        const Agent *a;
        int r;

        r = agent_registry_find_for_message(probe->agents, m, &a);
        if (r == -ENOENT)
                return sd_bus_error_set(error, "org.keyrenew.KeyRenew1.Error.NoAgent", "No agent for you.");
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "so", a->owner, a->path);
}

static int method_agent_count(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, "u", agent_registry_count(((Probe *) userdata)->agents));
}

static const sd_bus_vtable probe_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Check", SD_BUS_ARGS("s", action), SD_BUS_NO_RESULT, method_check,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Pending", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", n), method_pending,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RegisterAgent", SD_BUS_ARGS("o", path), SD_BUS_NO_RESULT,
                                method_register_agent, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UnregisterAgent", SD_BUS_ARGS("o", path), SD_BUS_NO_RESULT,
                                method_unregister_agent, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("FindAgent", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", owner, "o", path),
                                method_find_agent, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AgentCount", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", n), method_agent_count,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int run(Probe *probe) {
        sd_event *event = NULL;
        sd_bus_slot *slot = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_bus_open_system(&probe->bus);
        if (r >= 0)
                r = sd_bus_attach_event(probe->bus, event, 0);
        if (r >= 0)
                r = agent_registry_new(probe->bus, &probe->agents);
        if (r >= 0)
                r = sd_bus_add_object_vtable(probe->bus, &slot, PROBE_PATH, PROBE_INTERFACE, probe_vtable,
                                             probe);
        if (r >= 0)
                r = sd_bus_request_name(probe->bus, PROBE_NAME, 0);
        if (r >= 0)
                r = sd_event_loop(event);

        for (unsigned i = 0; i < MAX_PENDING; i++)
                pending_clear(&probe->pending[i]);
        probe->agents = agent_registry_free(probe->agents);
        sd_bus_slot_unref(slot);
        probe->bus = sd_bus_flush_close_unref(probe->bus);
        sd_event_unref(event);
        return r;
}

int main(void) {
        Probe probe = { 0 };
        int r;

        r = run(&probe);
        if (r < 0) {
                fprintf(stderr, "polkit-agent-probe: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
