/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "token-bus.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "expiry.h"
#include "macro.h"
#include "manager.h"

#define BIT(p) (UINT32_C(1) << (p))

static const char *const token_property_names[_TOKEN_PROP_MAX] = {
        [TOKEN_PROP_READER] = "Reader",
        [TOKEN_PROP_LABEL] = "Label",
        [TOKEN_PROP_CHUID] = "Chuid",
        [TOKEN_PROP_FIRMWARE_VERSION] = "FirmwareVersion",
        [TOKEN_PROP_PRESENT] = "Present",
        [TOKEN_PROP_PIN_RETRIES_LEFT] = "PinRetriesLeft",
        [TOKEN_PROP_STATE] = "State",
        [TOKEN_PROP_PROGRESS] = "Progress",
        [TOKEN_PROP_LAST_ERROR] = "LastError",
        [TOKEN_PROP_LAST_SEEN] = "LastSeen",
        [TOKEN_PROP_CERTIFICATES] = "Certificates",
        [TOKEN_PROP_RENEWAL_STEP] = "RenewalStep",
        [TOKEN_PROP_MANAGEMENT_KEY] = "ManagementKey",
};

static const char *const cert_property_names[_CERT_PROP_MAX] = {
        [CERT_PROP_DAYS_LEFT] = "DaysLeft",
        [CERT_PROP_STATUS] = "Status",
        [CERT_PROP_KEY_ORIGIN] = "KeyOrigin",
        [CERT_PROP_PIN_POLICY] = "PinPolicy",
        [CERT_PROP_TOUCH_POLICY] = "TouchPolicy",
        [CERT_PROP_RENEWAL_STATE] = "RenewalState",
        [CERT_PROP_RENEWAL_ORDER] = "RenewalOrder",
        [CERT_PROP_PORTAL_URL] = "PortalUrl",
        [CERT_PROP_REJECT_REASON] = "RejectReason",
        [CERT_PROP_RENEWAL_REKEY] = "RenewalRekey",
        [CERT_PROP_RENEWAL_VALIDITY_DAYS] = "RenewalValidityDays",
        [CERT_PROP_RENEWAL_CHECKED] = "RenewalChecked",
};

/* Times on the bus: microseconds since the epoch, UTC; 0 for before it. */
static uint64_t time_to_usec(time_t t) {
        return t > 0 ? (uint64_t) t * UINT64_C(1000000) : 0;
}

static const char *empty_if_null(const char *s) {
        return s ? s : "";
}

/* --- org.keyrenew.KeyRenew1.Token --- */

static int token_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        TokenObject *t = userdata;
        char version[16] = "";
        const char *v;

        if (strcmp(property, "Reader") == 0)
                v = t->reader;
        else if (strcmp(property, "Driver") == 0)
                v = t->driver;
        else if (strcmp(property, "Serial") == 0)
                v = t->identity.serial;
        else if (strcmp(property, "Chuid") == 0)
                v = t->identity.guid;
        else if (strcmp(property, "Label") == 0)
                v = t->identity.label;
        else if (strcmp(property, "FirmwareVersion") == 0) {
                if (t->identity.has_version)
                        (void) snprintf(version, sizeof version, "%u.%u.%u", t->identity.version[0],
                                        t->identity.version[1], t->identity.version[2]);
                v = version;
        } else if (strcmp(property, "State") == 0)
                v = token_state_to_string(t->state);
        else if (strcmp(property, "RenewalStep") == 0)
                v = empty_if_null(t->renewal_step);
        else if (strcmp(property, "ManagementKey") == 0)
                v = empty_if_null(t->mgm_key);
        else
                v = empty_if_null(t->last_error);
        return sd_bus_message_append(reply, "s", v);
}

static int token_get_present(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        TokenObject *t = userdata;

        return sd_bus_message_append(reply, "b", t->present);
}

static int token_get_pin_retries_left(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply, void *userdata,
                                      sd_bus_error *error) {
        TokenObject *t = userdata;

        return sd_bus_message_append(reply, "i", (int32_t) t->pin_retries);
}

static int token_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        TokenObject *t = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) t->progress);
}

static int token_get_last_seen(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        TokenObject *t = userdata;

        return sd_bus_message_append(reply, "t", t->last_seen_usec);
}

static int token_get_certificates(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        TokenObject *t = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "o");
        /* Only those already on the bus: a new one joins at the flush. */
        for (size_t i = 0; r >= 0 && i < t->n_certs; i++)
                if (t->certs[i]->bus_slot)
                        r = sd_bus_message_append(reply, "o", t->certs[i]->path);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int token_method_refresh(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        TokenObject *t = userdata;

        return manager_refresh_token(t->manager, t, m, error);
}

static const sd_bus_vtable token_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Reader", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Driver", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Serial", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Chuid", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Label", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FirmwareVersion", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Present", "b", token_get_present, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PinRetriesLeft", "i", token_get_pin_retries_left, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "u", token_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RenewalStep", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ManagementKey", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", token_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastSeen", "t", token_get_last_seen, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Certificates", "ao", token_get_certificates, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Refresh", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, token_method_refresh,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* --- org.keyrenew.KeyRenew1.Certificate --- */

static const char *key_origin_to_string(const CertObject *c) {
        if (!c->has_metadata)
                return "";
        switch (c->metadata.origin) {
        case TOKEN_KEY_ORIGIN_GENERATED:
                return "generated";
        case TOKEN_KEY_ORIGIN_IMPORTED:
                return "imported";
        default:
                return "";
        }
}

static const char *pin_policy_to_string(const CertObject *c) {
        static const char *const names[] = {
                [TOKEN_PIN_POLICY_DEFAULT] = "default",
                [TOKEN_PIN_POLICY_NEVER] = "never",
                [TOKEN_PIN_POLICY_ONCE] = "once",
                [TOKEN_PIN_POLICY_ALWAYS] = "always",
                [TOKEN_PIN_POLICY_MATCH_ONCE] = "match-once",
                [TOKEN_PIN_POLICY_MATCH_ALWAYS] = "match-always",
        };
        unsigned p = c->metadata.pin_policy;

        return c->has_metadata && p < ELEMENTSOF(names) ? names[p] : "";
}

static const char *touch_policy_to_string(const CertObject *c) {
        static const char *const names[] = {
                [TOKEN_TOUCH_POLICY_DEFAULT] = "default",
                [TOKEN_TOUCH_POLICY_NEVER] = "never",
                [TOKEN_TOUCH_POLICY_ALWAYS] = "always",
                [TOKEN_TOUCH_POLICY_CACHED] = "cached",
        };
        unsigned p = c->metadata.touch_policy;

        return c->has_metadata && p < ELEMENTSOF(names) ? names[p] : "";
}

static int cert_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;
        const X509Info *i = c->info;
        const char *v;

        if (strcmp(property, "Slot") == 0)
                v = c->slot_name;
        else if (strcmp(property, "Subject") == 0)
                v = i->subject;
        else if (strcmp(property, "Issuer") == 0)
                v = i->issuer;
        else if (strcmp(property, "Serial") == 0)
                v = i->serial;
        else if (strcmp(property, "IssuerHash") == 0)
                v = i->issuer_hash;
        else if (strcmp(property, "Fingerprint") == 0)
                v = i->fingerprint;
        else if (strcmp(property, "KeyType") == 0)
                v = i->key_type;
        else if (strcmp(property, "Curve") == 0)
                v = empty_if_null(i->curve);
        else if (strcmp(property, "Status") == 0)
                v = expiry_status_to_string(expiry_level_status(c->level));
        else if (strcmp(property, "KeyOrigin") == 0)
                v = key_origin_to_string(c);
        else if (strcmp(property, "PinPolicy") == 0)
                v = pin_policy_to_string(c);
        else if (strcmp(property, "TouchPolicy") == 0)
                v = touch_policy_to_string(c);
        else if (strcmp(property, "RenewalState") == 0)
                v = c->renewal_state;
        else if (strcmp(property, "RenewalOrder") == 0)
                v = empty_if_null(c->renewal_order);
        else if (strcmp(property, "PortalUrl") == 0)
                v = empty_if_null(c->portal_url);
        else
                v = empty_if_null(c->reject_reason);
        return sd_bus_message_append(reply, "s", v);
}

static int cert_get_token(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;

        return sd_bus_message_append(reply, "o", c->token->path);
}

static int cert_get_time(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;
        time_t t = strcmp(property, "NotBefore") == 0 ? c->info->not_before : c->info->not_after;

        return sd_bus_message_append(reply, "t", time_to_usec(t));
}

static int cert_get_days_left(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;
        int64_t d = c->days_left;

        return sd_bus_message_append(reply, "i",
                                     (int32_t) (d < INT32_MIN   ? INT32_MIN
                                                : d > INT32_MAX ? INT32_MAX
                                                                : d));
}

static int cert_get_key_bits(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) c->info->key_bits);
}

static int cert_get_usage(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r >= 0 && (c->info->usage & X509_USAGE_SIGNING))
                r = sd_bus_message_append(reply, "s", "signing");
        if (r >= 0 && (c->info->usage & X509_USAGE_ENCRYPTION))
                r = sd_bus_message_append(reply, "s", "encryption");
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int cert_get_renewal_rekey(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        CertObject *c = userdata;

        return sd_bus_message_append(reply, "b", c->renewal_rekey);
}

static int cert_get_renewal_validity_days(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        CertObject *c = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) c->renewal_validity_days);
}

static int cert_get_renewal_checked(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error) {
        CertObject *c = userdata;

        return sd_bus_message_append(reply, "t", c->renewal_checked_usec);
}

static const sd_bus_vtable cert_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Token", "o", cert_get_token, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Slot", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Subject", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Issuer", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Serial", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("IssuerHash", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Fingerprint", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NotBefore", "t", cert_get_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NotAfter", "t", cert_get_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DaysLeft", "i", cert_get_days_left, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Status", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("KeyType", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("KeyBits", "u", cert_get_key_bits, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Curve", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Usage", "as", cert_get_usage, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("KeyOrigin", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PinPolicy", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TouchPolicy", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RenewalState", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RenewalOrder", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PortalUrl", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RejectReason", "s", cert_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RenewalRekey", "b", cert_get_renewal_rekey, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RenewalValidityDays", "u", cert_get_renewal_validity_days, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RenewalChecked", "t", cert_get_renewal_checked, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_SIGNAL_WITH_ARGS("ExpiryWarning", SD_BUS_ARGS("u", days_left, "u", threshold), 0),
        SD_BUS_SIGNAL_WITH_ARGS("RenewalAvailable", SD_BUS_ARGS("s", order, "b", key_present), 0),
        SD_BUS_VTABLE_END,
};

int token_bus_add(TokenObject *t) {
        return sd_bus_add_object_vtable(t->bus, &t->bus_slot, t->path, TOKEN_BUS_INTERFACE, token_vtable, t);
}

int cert_bus_add(CertObject *c) {
        return sd_bus_add_object_vtable(c->token->bus, &c->bus_slot, c->path, CERT_BUS_INTERFACE,
                                        cert_vtable, c);
}

static int emit_changed(sd_bus *bus, const char *path, const char *interface, const char *const *names,
                        size_t n_names, uint32_t dirty) {
        const char *list[32 + 1];
        size_t n = 0;

        for (size_t p = 0; p < n_names && n < ELEMENTSOF(list) - 1; p++)
                if (dirty & BIT(p))
                        list[n++] = names[p];
        list[n] = NULL;
        if (n == 0)
                return 0;
        return sd_bus_emit_properties_changed_strv(bus, path, interface, (char **) list);
}

int token_bus_emit_changed(TokenObject *t, uint32_t dirty) {
        return emit_changed(t->bus, t->path, TOKEN_BUS_INTERFACE, token_property_names, _TOKEN_PROP_MAX,
                            dirty);
}

int cert_bus_emit_changed(CertObject *c, uint32_t dirty) {
        return emit_changed(c->token->bus, c->path, CERT_BUS_INTERFACE, cert_property_names, _CERT_PROP_MAX,
                            dirty);
}

int cert_bus_emit_expiry_warning(CertObject *c, uint32_t days_left, uint32_t threshold) {
        return sd_bus_emit_signal(c->token->bus, c->path, CERT_BUS_INTERFACE, "ExpiryWarning", "uu",
                                  days_left, threshold);
}

int cert_bus_emit_renewal_available(CertObject *c, const char *order, bool key_present) {
        return sd_bus_emit_signal(c->token->bus, c->path, CERT_BUS_INTERFACE, "RenewalAvailable", "sb",
                                  order, (int) key_present);
}
