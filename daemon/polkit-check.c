/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "polkit-check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "i18n.h"
#include "macro.h"

/* polkit's CheckAuthorizationFlags. */
#define POLKIT_FLAG_ALLOW_USER_INTERACTION 1u

/* A person typing a password takes longer than sd-bus's 25 s default;
 * polkit's own dialog times out well before this. */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (5ull * 60 * 1000 * 1000)

struct PolkitCheck {
        sd_bus_slot *slot;
        polkit_check_cb cb;
        void *userdata;
};

static void polkit_check_free(PolkitCheck *c) {
        sd_bus_slot_unref(c->slot);
        free(c);
}

/* The answer's (bba{ss}): is_authorized, is_challenge, details. */
static int read_authorization_result(sd_bus_message *reply, PolkitResult *ret) {
        int authorized, challenge, r;

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0)
                return r;
        *ret = authorized  ? POLKIT_RESULT_ALLOWED
               : challenge ? POLKIT_RESULT_CHALLENGE
                           : POLKIT_RESULT_DENIED;
        return 0;
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitCheck *c = userdata;
        PolkitResult result = POLKIT_RESULT_ERROR;
        int error = 0;

        if (sd_bus_message_is_method_error(reply, NULL))
                error = -sd_bus_error_get_errno(sd_bus_message_get_error(reply));
        else
                error = read_authorization_result(reply, &result);
        if (error < 0)
                result = POLKIT_RESULT_ERROR;
        else if (result == POLKIT_RESULT_ERROR)
                error = -EBADMSG;

        c->cb(c, result, error, c->userdata);
        polkit_check_free(c);
        return 0;
}

static int new_check_call(sd_bus *bus, const char *sender, const char *action, int interactive,
                          sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", sender,
                                  action, 0, interactive ? POLKIT_FLAG_ALLOW_USER_INTERACTION : 0u, "");
        if (r < 0)
                return r;
        /* polkit may show a dialog on our behalf only if the caller allowed it. */
        r = sd_bus_message_set_allow_interactive_authorization(call, interactive);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(call);
        return 0;
}

int polkit_check_start(sd_bus *bus, sd_bus_message *method_call, const char *action, polkit_check_cb cb,
                       void *userdata, PolkitCheck **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_free_ PolkitCheck *c = NULL;
        const char *sender;
        int interactive, r;

        if (!bus || !method_call || !action || !cb || !ret)
                return -EINVAL;
        sender = sd_bus_message_get_sender(method_call);
        if (!sender)
                return -ENXIO;
        interactive = sd_bus_message_get_allow_interactive_authorization(method_call) > 0;

        r = new_check_call(bus, sender, action, interactive, &call);
        if (r < 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->cb = cb;
        c->userdata = userdata;
        r = sd_bus_call_async(bus, &c->slot, call, on_reply, c,
                              interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

PolkitCheck *polkit_check_cancel(PolkitCheck *check) {
        if (check)
                polkit_check_free(check);
        return NULL;
}

static const char *denied_text(const char *action) {
        if (strcmp(action, POLKIT_ACTION_RENEW) == 0)
                return _(
                        "You are not allowed to renew certificates on this computer: org.keyrenew.renew was "
                        "refused. Ask an administrator.");
        if (strcmp(action, POLKIT_ACTION_MANAGE) == 0)
                return _("You are not allowed to manage keyrenew on this computer: org.keyrenew.manage was "
                         "refused. Ask an administrator.");
        return NULL;
}

int polkit_check_result_to_bus_error(PolkitResult result, int error, const char *action,
                                     sd_bus_error *ret_error) {
        const char *text;
        int r;

        switch (result) {
        case POLKIT_RESULT_ALLOWED:
                return 0;
        case POLKIT_RESULT_CHALLENGE:
                r = sd_bus_error_setf(ret_error, BUS_ERROR_NOT_AUTHORIZED,
                                      _("Authentication is needed for %s, but this request did not allow "
                                        "asking for it. Try again from your desktop session."),
                                      action);
                break;
        case POLKIT_RESULT_ERROR:
                r = sd_bus_error_setf(ret_error, BUS_ERROR_NOT_AUTHORIZED,
                                      _("Could not ask polkit whether %s is allowed (%s), so it is refused. "
                                        "Is polkit running?"),
                                      action, strerror(error < 0 ? -error : EIO));
                break;
        case POLKIT_RESULT_DENIED:
        default:
                text = denied_text(action);
                if (text)
                        r = sd_bus_error_set(ret_error, BUS_ERROR_NOT_AUTHORIZED, text);
                else
                        r = sd_bus_error_setf(ret_error, BUS_ERROR_NOT_AUTHORIZED,
                                              _("You are not allowed to do this on this computer: %s was "
                                                "refused. Ask an administrator."),
                                              action);
                break;
        }
        /* Our error name maps to no errno of its own; say what it means. */
        return r == -ENOMEM ? r : -EACCES;
}

const char *polkit_result_to_string(PolkitResult result) {
        switch (result) {
        case POLKIT_RESULT_ALLOWED:
                return "allowed";
        case POLKIT_RESULT_DENIED:
                return "denied";
        case POLKIT_RESULT_CHALLENGE:
                return "challenge";
        case POLKIT_RESULT_ERROR:
                return "error";
        }
        return NULL;
}
