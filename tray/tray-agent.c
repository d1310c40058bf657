/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent-reply.h"
#include "config.h"
#include "i18n.h"
#include "secmem.h"
#include "tray-internal.h"

static void request_done(Tray *t) {
        t->pinentry = tray_pinentry_free(t->pinentry);
        t->request = sd_bus_message_unref(t->request);
        free(t->request_cert);
        t->request_cert = NULL;
        g_free(t->request_text);
        t->request_text = NULL;
}

static void reply_cancelled(Tray *t, const char *why) {
        (void) sd_bus_reply_method_errorf(t->request, ERROR_PREFIX "Cancelled", "%s", why);
        request_done(t);
}

static int open_dialog(Tray *t, const char *error);

static void on_pin(int r, char *pin, void *userdata) {
        Tray *t = userdata;
        _cleanup_secmem_ char *secret = pin;

        t->pinentry = tray_pinentry_free(t->pinentry);
        if (r == 0 && strlen(secret) > AGENT_PIN_MAX_LEN) {
                /* Nothing was sent: no try is spent. Ask again. */
                r = open_dialog(t, _("A PIN has 1 to 8 characters: nothing was sent to the key."));
                if (r >= 0)
                        return;
        }
        if (r == 0) {
                r = agent_reply_pin(t->request, secret);
                if (r < 0)
                        g_warning("Cannot send the PIN to keyrenewd: %s", strerror(-r));
                request_done(t);
                return;
        }
        if (r != -ECANCELED)
                g_warning("The PIN dialog failed: %s", strerror(-r));
        reply_cancelled(t, r == -ECANCELED ? "The user cancelled the PIN dialog."
                                           : "keyrenew-tray could not show the PIN dialog.");
}

typedef struct PinInfo {
        const char *serial, *label, *subject, *error;
        uint64_t not_after;
        int32_t retries;
        bool resume;
} PinInfo;

static int read_info(sd_bus_message *m, PinInfo *info) {
        const char *key;
        int r, b;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        break;
                if (strcmp(key, "TokenSerial") == 0)
                        r = sd_bus_message_read(m, "v", "s", &info->serial);
                else if (strcmp(key, "TokenLabel") == 0)
                        r = sd_bus_message_read(m, "v", "s", &info->label);
                else if (strcmp(key, "Subject") == 0)
                        r = sd_bus_message_read(m, "v", "s", &info->subject);
                else if (strcmp(key, "Error") == 0)
                        r = sd_bus_message_read(m, "v", "s", &info->error);
                else if (strcmp(key, "NotAfter") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->not_after);
                else if (strcmp(key, "RetriesLeft") == 0)
                        r = sd_bus_message_read(m, "v", "i", &info->retries);
                else if (strcmp(key, "Resume") == 0 && (r = sd_bus_message_read(m, "v", "b", &b)) >= 0)
                        info->resume = b;
                else
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* What the person needs to decide to type the PIN: which key, which
 * certificate, how many tries are left. */
static char *describe(const PinInfo *info, const TrayCert *c) {
        GString *s = g_string_new(NULL);
        char name[256] = "";
        TrayCert shown = { .subject = (char *) info->subject };

        cert_name(info->subject && *info->subject ? &shown : c, name, sizeof(name));
        g_string_append_printf(s, _("Renew the certificate of %s"), name);
        if (info->not_after) {
                g_autoptr(GDateTime) when =
                        g_date_time_new_from_unix_local((gint64) (info->not_after / G_USEC_PER_SEC));
                g_autofree char *date = when ? g_date_time_format(when, "%Y-%m-%d") : NULL;

                if (date)
                        g_string_append_printf(s, _(" (valid until %s)"), date);
        }
        g_string_append(s, "\n");
        if (info->label && *info->label)
                g_string_append_printf(s, _("Key: %s \"%s\""), info->serial ? info->serial : "",
                                       info->label);
        else
                g_string_append_printf(s, _("Key: %s"), info->serial ? info->serial : "");
        g_string_append(s, "\n");
        if (info->resume)
                g_string_append_printf(s, "%s\n", _("This finishes a renewal that was interrupted."));
        if (info->retries >= 0)
                g_string_append_printf(s,
                                       ngettext("%d try left before the PIN is blocked.",
                                                "%d tries left before the PIN is blocked.",
                                                (unsigned long) info->retries),
                                       (int) info->retries);
        g_string_append_printf(s, "\n%s", _("Do not remove the key until the renewal is over."));
        return g_string_free(s, FALSE);
}

static int open_dialog(Tray *t, const char *error) {
        TrayNote *note = g_hash_table_lookup(t->notes, t->request_cert);
        TrayPinentryText text = {
                .title = _("Certificate renewal"),
                .description = t->request_text,
                .prompt = _("PIN:"),
                .error = error,
                .ok = _("Renew"),
                .cancel = note && note->cancel_is_later ? _("Later") : _("Cancel"),
        };

        return tray_pinentry_start(t->options.pinentry, &text, on_pin, t, &t->pinentry);
}

/* The error shown: keyrenewd's, else why the tray's last try failed. */
static const char *last_error(Tray *t, const PinInfo *info, const char *cert) {
        TrayNote *note = g_hash_table_lookup(t->notes, cert);

        if (info->error && *info->error)
                return info->error;
        return note ? note->last_error : NULL;
}

static int method_request_pin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        PinInfo info = { .retries = -1 };
        const char *cert;
        TrayNote *note;
        int r;

        r = agent_check_caller(m, error);
        if (r < 0)
                return r;
        if (t->request)
                return sd_bus_error_set(error, ERROR_PREFIX "Cancelled",
                                        "keyrenew-tray is answering another PIN request.");
        r = sd_bus_message_read(m, "o", &cert);
        if (r >= 0)
                r = read_info(m, &info);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Expected (o, a{sv}).");
        t->request_cert = strdup(cert);
        t->request_text = describe(&info, g_hash_table_lookup(t->certs, cert));
        if (!t->request_cert) {
                request_done(t);
                return -ENOMEM;
        }
        r = open_dialog(t, last_error(t, &info, cert));
        if (r < 0) {
                request_done(t);
                g_warning("Cannot start the PIN dialog %s: %s", t->options.pinentry, strerror(-r));
                return sd_bus_error_setf(error, ERROR_PREFIX "Cancelled",
                                         "keyrenew-tray cannot show the PIN dialog: %s", strerror(-r));
        }
        t->request = sd_bus_message_ref(m);
        /* A renewal keyrenewd resumes by itself: the tray follows it too. */
        note = tray_note(t, cert);
        if (note)
                note->busy = true;
        tray_evaluate(t, cert);
        return 1;
}

void tray_agent_cancel(Tray *t, const char *cert) {
        if (t->request && strcmp(t->request_cert, cert) == 0)
                reply_cancelled(t, "The request was withdrawn.");
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *cert;
        int r;

        r = agent_check_caller(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "o", &cert);
        if (r < 0)
                return r;
        tray_agent_cancel(t, cert);
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* Unprivileged for sd-bus: keyrenewd runs as a user of its own;
         * agent_check_caller() is the check. */
        SD_BUS_METHOD_WITH_ARGS("RequestPin", SD_BUS_ARGS("o", certificate, "a{sv}", info),
                                SD_BUS_RESULT("s", pin), method_request_pin, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_ARGS("o", certificate), SD_BUS_NO_RESULT, method_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int tray_agent_export(Tray *t) {
        return sd_bus_add_object_vtable(t->bus, &t->agent_object, TRAY_AGENT_PATH, AGENT_IFACE, agent_vtable,
                                        t);
}

static int on_registered(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                g_message("Not the PIN agent of this session: %s", e->message ? e->message : e->name);
        else
                t->registered = true;
        return 0;
}

int tray_agent_register(Tray *t) {
        return sd_bus_call_method_async(t->bus, NULL, KEYRENEW_BUS_NAME, BUS_ROOT_PATH, MANAGER_IFACE,
                                        "RegisterAgent", on_registered, t, "o", TRAY_AGENT_PATH);
}

void tray_agent_unregister(Tray *t) {
        if (t->registered)
                (void) sd_bus_call_method(t->bus, KEYRENEW_BUS_NAME, BUS_ROOT_PATH, MANAGER_IFACE,
                                          "UnregisterAgent", NULL, NULL, "o", TRAY_AGENT_PATH);
        t->registered = false;
}
