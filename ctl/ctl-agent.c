/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-agent.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "agent-reply.h"
#include "config.h"
#include "ctl-error.h"
#include "ctl-json.h"
#include "ctl-status.h"
#include "i18n.h"

#define ROOT_PATH "/org/keyrenew/KeyRenew1"
#define MANAGER_IFACE "org.keyrenew.KeyRenew1.Manager"
#define AGENT_IFACE "org.keyrenew.KeyRenew1.Agent"

struct CtlAgent {
        sd_bus *bus;
        sd_event *event;
        sd_bus_slot *object;
        PromptSource source;
        bool registered;
        sd_bus_message *request; /* the RequestPin being answered */
        char *certificate;       /* its certificate */
        Prompt *prompt;
};

static void request_done(CtlAgent *a) {
        a->request = sd_bus_message_unref(a->request);
        free(a->certificate);
        a->certificate = NULL;
}

static void reply_cancelled(CtlAgent *a, const char *why) {
        (void) sd_bus_reply_method_errorf(a->request, CTL_ERROR_CANCELLED, "%s", why);
        request_done(a);
}

static const char *again_question(PromptSource source) {
        return source == PROMPT_TTY ? _("A PIN has 1 to 8 characters. PIN (an empty line cancels): ") : "";
}

static void on_pin(Prompt *p, int r, const char *line, void *userdata) {
        CtlAgent *a = userdata;

        if (r == -E2BIG && a->source == PROMPT_TTY) {
                /* Nothing was sent: no PIN try is spent. Ask again. */
                a->prompt = prompt_free(a->prompt);
                r = prompt_start(a->event, a->source, true, AGENT_PIN_MAX_LEN, again_question(a->source),
                                 on_pin, a, &a->prompt);
                if (r < 0) {
                        fprintf(stderr, _("Cannot ask for the PIN: %s\n"), strerror(-r));
                        reply_cancelled(a, "keyrenewctl could not ask for the PIN again.");
                }
                return;
        }
        if (r == 0 && *line) {
                r = agent_reply_pin(a->request, line);
                request_done(a);
                if (r < 0)
                        fprintf(stderr, _("Cannot send the PIN to keyrenewd: %s\n"), strerror(-r));
        } else if (r == -E2BIG) {
                fprintf(stderr, "%s\n", _("A PIN has 1 to 8 characters: nothing was sent to the key."));
                reply_cancelled(a, "The PIN given to keyrenewctl was too long.");
        } else if (r == 0 || r == -ECANCELED)
                reply_cancelled(a, "The user cancelled at keyrenewctl's PIN prompt.");
        else {
                fprintf(stderr, _("Cannot read the PIN: %s\n"), strerror(-r));
                reply_cancelled(a, "keyrenewctl could not read the PIN.");
        }
        /* Wipes the line. */
        a->prompt = prompt_free(a->prompt);
}

static const char *info_string(json_t *info, const char *key) {
        const char *s = json_string_value(json_object_get(info, key));

        return s && *s ? s : NULL;
}

/* What the user needs to decide to type the PIN: which key, for which
 * certificate, how many tries are left, why the last one failed. */
static char *pin_question(json_t *info, PromptSource source) {
        const char *label = info_string(info, "TokenLabel"), *error = info_string(info, "Error");
        json_t *retries = json_object_get(info, "RetriesLeft"),
               *not_after = json_object_get(info, "NotAfter");
        char name[256], when[64];
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&text, &size);
        if (!f)
                return NULL;
        fprintf(f, _("keyrenewd asks for the PIN of key %s"),
                info_string(info, "TokenSerial") ? info_string(info, "TokenSerial") : _("(no serial)"));
        if (label)
                fprintf(f, " \"%s\"", label);
        fputc('\n', f);
        ctl_subject_name(name, sizeof(name), info_string(info, "Subject"));
        if (json_is_integer(not_after)) {
                CtlNumber n = { true, json_integer_value(not_after) };

                ctl_format_time(when, sizeof(when), &n, true);
                fprintf(f, _("to renew the certificate of %s (valid until %s).\n"), name, when);
        } else
                fprintf(f, _("to renew the certificate of %s.\n"), name);
        if (json_is_true(json_object_get(info, "Resume")))
                fprintf(f, "%s\n", _("This finishes a renewal that was interrupted."));
        if (error)
                fprintf(f, _("The last try failed: %s\n"), error);
        if (json_is_integer(retries) && json_integer_value(retries) >= 0)
                fprintf(f,
                        ngettext("%d try left before the PIN is blocked.\n",
                                 "%d tries left before the PIN is blocked.\n",
                                 (unsigned long) json_integer_value(retries)),
                        (int) json_integer_value(retries));
        if (source == PROMPT_TTY)
                fputs(_("PIN (an empty line cancels): "), f);
        else
                fprintf(f, "%s\n", _("Reading the PIN from standard input."));
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

static int method_request_pin(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(json_decrefp) json_t *info = NULL;
        _cleanup_free_ char *text = NULL, *copy = NULL;
        CtlAgent *a = userdata;
        const char *certificate;
        int r;

        r = agent_check_caller(m, error);
        if (r < 0)
                return r;
        if (a->request)
                return sd_bus_error_set(error, CTL_ERROR_CANCELLED,
                                        "keyrenewctl is answering another PIN request.");
        r = sd_bus_message_read(m, "o", &certificate);
        if (r >= 0)
                r = ctl_json_read_dict(m, &info);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Expected (o, a{sv}).");
        text = pin_question(info, a->source);
        copy = strdup(certificate);
        if (!text || !copy)
                return -ENOMEM;
        r = prompt_start(a->event, a->source, true, AGENT_PIN_MAX_LEN, text, on_pin, a, &a->prompt);
        if (r < 0) {
                fprintf(stderr, _("Cannot ask for the PIN: %s\n"), strerror(-r));
                return sd_bus_error_setf(error, CTL_ERROR_CANCELLED,
                                         "keyrenewctl cannot ask for the PIN: %s", strerror(-r));
        }
        /* Answered when the line is in (on_pin), or withdrawn (Cancel). */
        a->certificate = TAKE_PTR(copy);
        a->request = sd_bus_message_ref(m);
        return 1;
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CtlAgent *a = userdata;
        const char *certificate;
        int r;

        r = agent_check_caller(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "o", &certificate);
        if (r < 0)
                return r;
        if (a->request && strcmp(a->certificate, certificate) == 0) {
                a->prompt = prompt_abort(a->prompt, _("The PIN request was withdrawn."));
                reply_cancelled(a, "The request was withdrawn.");
        }
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

int ctl_agent_new(sd_bus *bus, sd_event *event, PromptSource source, CtlAgent **ret) {
        _cleanup_(ctl_agent_freep) CtlAgent *a = calloc(1, sizeof(*a));
        int r;

        if (!a)
                return -ENOMEM;
        a->bus = sd_bus_ref(bus);
        a->event = sd_event_ref(event);
        a->source = source;
        r = sd_bus_add_object_vtable(bus, &a->object, CTL_AGENT_PATH, AGENT_IFACE, agent_vtable, a);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

int ctl_agent_register(CtlAgent *a, sd_bus_error *error) {
        int r;

        r = sd_bus_call_method(a->bus, KEYRENEW_BUS_NAME, ROOT_PATH, MANAGER_IFACE, "RegisterAgent", error,
                               NULL, "o", CTL_AGENT_PATH);
        if (r < 0)
                return r;
        a->registered = true;
        return 0;
}

bool ctl_agent_interrupt(CtlAgent *a) {
        if (!a->request)
                return false;
        a->prompt = prompt_abort(a->prompt, _("Cancelled."));
        reply_cancelled(a, "The user cancelled at keyrenewctl's PIN prompt.");
        return true;
}

CtlAgent *ctl_agent_free(CtlAgent *a) {
        if (!a)
                return NULL;
        if (a->request) {
                a->prompt = prompt_free(a->prompt);
                reply_cancelled(a, "keyrenewctl is leaving.");
        }
        if (a->registered)
                (void) sd_bus_call_method(a->bus, KEYRENEW_BUS_NAME, ROOT_PATH, MANAGER_IFACE,
                                          "UnregisterAgent", NULL, NULL, "o", CTL_AGENT_PATH);
        sd_bus_slot_unref(a->object);
        sd_event_unref(a->event);
        sd_bus_unref(a->bus);
        free(a);
        return NULL;
}
