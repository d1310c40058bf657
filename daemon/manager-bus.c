/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "manager-bus.h"

#include <string.h>

#include "config.h"
#include "i18n.h"
#include "manager-renew.h"
#include "token-bus.h"

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_readers(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && i < m->n_readers; i++)
                r = sd_bus_message_append(reply, "s", m->readers[i].name);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int property_get_pcsc_state(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", pcsc_state_to_string(m->pcsc_state));
}

static int property_get_tokens(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < m->n_tokens; i++)
                if (m->tokens[i]->published)
                        r = sd_bus_message_append(reply, "o", m->tokens[i]->path);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int property_get_portal_state(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", portal_state_to_string(m->portal_state));
}

static int property_get_portal_reachable(sd_bus *bus, const char *path, const char *interface,
                                         const char *property, sd_bus_message *reply, void *userdata,
                                         sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "b", m->portal_state == PORTAL_STATE_REACHABLE);
}

static int property_get_portal_error(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->portal_error ? m->portal_error : "");
}

static int property_get_portal_check(sd_bus *bus, const char *path, const char *interface,
                                     const char *property, sd_bus_message *reply, void *userdata,
                                     sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "t",
                                     strcmp(property, "LastPortalCheck") == 0 ? m->last_portal_check_usec
                                                                              : m->next_portal_check_usec);
}

static int method_refresh(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return manager_refresh(userdata, message, error);
}

const char *manager_bus_shown(const char *s, char buf[static BUS_SHOWN_MAX]) {
        size_t n = strlen(s);

        if (n < BUS_SHOWN_MAX)
                return s;
        n = BUS_SHOWN_MAX - sizeof "…";
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        memcpy(buf, s, n);
        memcpy(buf + n, "…", sizeof "…");
        return buf;
}

static int method_get_token(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        char shown[BUS_SHOWN_MAX];
        const char *serial;
        TokenObject *t;
        int r;

        r = sd_bus_message_read(message, "s", &serial);
        if (r < 0)
                return r;
        t = manager_find_token_by_serial(m, serial);
        if (!t || !t->published)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_TOKEN,
                                         _("No key with serial %s is known."),
                                         manager_bus_shown(serial, shown));
        return sd_bus_reply_method_return(message, "o", t->path);
}

static int method_renew(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return manager_renew_method(userdata, message, error);
}

static int method_cancel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return manager_cancel_method(userdata, message, error);
}

static int method_register_agent(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return manager_register_agent_method(userdata, message, error);
}

static int method_unregister_agent(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return manager_unregister_agent_method(userdata, message, error);
}

static int method_get_history(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return manager_get_history_method(userdata, message, error);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Readers", "as", property_get_readers, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PcscState", "s", property_get_pcsc_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Tokens", "ao", property_get_tokens, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PortalState", "s", property_get_portal_state, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PortalReachable", "b", property_get_portal_reachable, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PortalError", "s", property_get_portal_error, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastPortalCheck", "t", property_get_portal_check, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NextPortalCheck", "t", property_get_portal_check, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Refresh", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_refresh,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetToken", SD_BUS_ARGS("s", serial), SD_BUS_RESULT("o", token),
                                method_get_token, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Renew", SD_BUS_ARGS("o", certificate, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", result), method_renew, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_ARGS("o", certificate), SD_BUS_NO_RESULT, method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RegisterAgent", SD_BUS_ARGS("o", agent), SD_BUS_NO_RESULT,
                                method_register_agent, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UnregisterAgent", SD_BUS_ARGS("o", agent), SD_BUS_NO_RESULT,
                                method_unregister_agent, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetHistory", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", history),
                                method_get_history, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("RenewalFinished", SD_BUS_ARGS("o", certificate, "s", outcome, "s", message),
                                0),
        SD_BUS_VTABLE_END,
};

int manager_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_object_manager(m->bus, &m->object_manager_slot, MANAGER_BUS_PATH);
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(m->bus, &m->manager_slot, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE,
                                     manager_vtable, m);
        if (r < 0)
                manager_bus_unregister(m);
        return r;
}

void manager_bus_unregister(Manager *m) {
        m->manager_slot = sd_bus_slot_unref(m->manager_slot);
        m->object_manager_slot = sd_bus_slot_unref(m->object_manager_slot);
}

int manager_bus_emit_changed_strv(Manager *m, char **names) {
        return sd_bus_emit_properties_changed_strv(m->bus, MANAGER_BUS_PATH, MANAGER_BUS_INTERFACE, names);
}
