/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Asks polkit, asynchronously, whether the sender of a D-Bus method call
 * may perform an action: org.freedesktop.PolicyKit1.Authority's
 * CheckAuthorization over sd-bus, with the caller as a "system-bus-name"
 * subject (polkit looks up its uid, pid and session itself, so nothing
 * the caller says about itself is trusted). No libpolkit.
 *
 * Everything here runs on the thread that dispatches the bus (the loop
 * thread): start, the callback and cancel. Anything but ALLOWED is a
 * refusal; when polkit cannot be asked the answer is ERROR, never allowed. */

#include <systemd/sd-bus.h>

#define POLKIT_ACTION_RENEW "org.keyrenew.renew"
#define POLKIT_ACTION_MANAGE "org.keyrenew.manage"

#define BUS_ERROR_NOT_AUTHORIZED "org.keyrenew.KeyRenew1.Error.NotAuthorized"

typedef enum PolkitResult {
        POLKIT_RESULT_ALLOWED,
        POLKIT_RESULT_DENIED,
        /* Allowed after authentication, which the caller did not allow
         * (no ALLOW_INTERACTIVE_AUTHORIZATION flag on its call). */
        POLKIT_RESULT_CHALLENGE,
        /* polkit could not be asked or its answer not read; error says why. */
        POLKIT_RESULT_ERROR,
} PolkitResult;

typedef struct PolkitCheck PolkitCheck;

/* Called once with the answer; error is a negative errno for
 * POLKIT_RESULT_ERROR, 0 otherwise. check is freed when this returns:
 * forget the handle here, and do not cancel it. */
typedef void (*polkit_check_cb)(PolkitCheck *check, PolkitResult result, int error, void *userdata);

/* Starts asking whether the sender of method_call may perform action,
 * with user interaction (a password dialog) only when method_call carries
 * ALLOW_INTERACTIVE_AUTHORIZATION. bus is the bus method_call came in on
 * (the system bus; polkit lives there). On success *ret is the handle
 * until cb has run or polkit_check_cancel(). cb is never called when this
 * fails. Returns 0, -EINVAL for a missing argument, -ENXIO when
 * method_call has no sender (a direct connection, which polkit cannot
 * identify), or a negative errno from sd-bus. */
int polkit_check_start(sd_bus *bus, sd_bus_message *method_call, const char *action, polkit_check_cb cb,
                       void *userdata, PolkitCheck **ret);

/* Abandons the check (the caller went away, shutdown): cb is not called
 * and check is freed. NULL is fine. Returns NULL. */
PolkitCheck *polkit_check_cancel(PolkitCheck *check);

/* The bus boundary: for anything but POLKIT_RESULT_ALLOWED sets ret_error
 * to BUS_ERROR_NOT_AUTHORIZED with a translated text naming action and
 * returns the negative errno sd-bus hands back (-EACCES); returns 0 and
 * leaves ret_error alone when allowed. */
int polkit_check_result_to_bus_error(PolkitResult result, int error, const char *action,
                                     sd_bus_error *ret_error);

const char *polkit_result_to_string(PolkitResult result);
