/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewd's objects as keyrenewctl sees them: everything fetched in two
 * calls (the Manager's properties, then GetManagedObjects) into plain C
 * structs. A property the daemon does not export (an older or newer
 * daemon) stays unknown: NULL for strings and lists, known == false for
 * numbers and booleans. Properties keyrenewctl does not know are ignored. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "macro.h"

typedef struct CtlNumber {
        bool known;
        int64_t value; /* b, i, u and t all fit */
} CtlNumber;

typedef struct CtlCert {
        char *path;
        char *token;
        char *slot;
        char *subject;
        char *issuer;
        char *serial;
        char *issuer_hash;
        char *fingerprint;
        CtlNumber not_before; /* µs since the epoch */
        CtlNumber not_after;
        CtlNumber days_left;
        char *status;
        char *key_type;
        CtlNumber key_bits;
        char *curve;
        char **usage;
        char *key_origin;
        char *pin_policy;
        char *touch_policy;
        char *renewal_state;
        char *renewal_order;
        char *portal_url;
        char *reject_reason;
        CtlNumber renewal_rekey;
        CtlNumber renewal_validity_days;
        CtlNumber renewal_checked;
} CtlCert;

typedef struct CtlToken {
        char *path;
        char *reader;
        char *driver;
        char *serial;
        char *chuid;
        char *label;
        char *firmware_version;
        CtlNumber present;
        CtlNumber pin_retries_left;
        char *state;
        CtlNumber progress;
        char *renewal_step;
        char *management_key;
        char *last_error;
        CtlNumber last_seen;
        char **certificate_paths;
        CtlCert **certs; /* in the order of certificate_paths, NULL-terminated */
        size_t n_certs;
} CtlToken;

typedef struct CtlManager {
        char *version;
        char **readers;
        char *pcsc_state;
        char **token_paths;
        char *portal_state;
        CtlNumber portal_reachable;
        char *portal_error;
        CtlNumber last_portal_check;
        CtlNumber next_portal_check;
        CtlToken **tokens; /* in the order of token_paths */
        size_t n_tokens;
        CtlCert **certs; /* every certificate object, owned here */
        size_t n_certs;
} CtlManager;

/* One property: its bus name, its D-Bus signature ("s", "as", "ao", "b",
 * "i", "u", "t") and where it lives in its struct. The tables end with a
 * NULL name; ctl-json.c walks the same tables, so the JSON shows exactly
 * the bus's names. */
typedef struct CtlProperty {
        const char *name;
        const char *signature;
        size_t offset;
} CtlProperty;

extern const CtlProperty ctl_manager_properties[];
extern const CtlProperty ctl_token_properties[];
extern const CtlProperty ctl_cert_properties[];

typedef enum CtlBusKind {
        CTL_BUS_SYSTEM,
        CTL_BUS_SESSION,
        CTL_BUS_ADDRESS,
} CtlBusKind;

/* Connects to the system bus, the session bus or the bus at address.
 * -errno when the bus cannot be reached. */
int ctl_bus_connect(CtlBusKind kind, const char *address, sd_bus **ret_bus);

/* Fetches the manager with its tokens and certificates. On a D-Bus error,
 * returns a negative errno and fills error (when it is given). */
int ctl_manager_fetch(sd_bus *bus, sd_bus_error *error, CtlManager **ret_manager);

/* Manager.Refresh(): waits until every plugged-in card is read again. */
int ctl_manager_refresh(sd_bus *bus, sd_bus_error *error);

CtlManager *ctl_manager_free(CtlManager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(CtlManager *, ctl_manager_free)
