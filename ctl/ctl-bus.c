/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-bus.h"

#include <errno.h>
#include <string.h>

#include "config.h"

#define ROOT_PATH "/org/keyrenew/KeyRenew1"
#define MANAGER_IFACE "org.keyrenew.KeyRenew1.Manager"
#define TOKEN_IFACE "org.keyrenew.KeyRenew1.Token"
#define CERT_IFACE "org.keyrenew.KeyRenew1.Certificate"

/* Refresh reads every card; a slow card with a long certificate chain takes
 * seconds, several of them more: far above sd-bus's 25 s default is fine. */
#define REFRESH_TIMEOUT_USEC (120ULL * 1000000ULL)

const CtlProperty ctl_manager_properties[] = {
        { "Version", "s", offsetof(CtlManager, version) },
        { "Readers", "as", offsetof(CtlManager, readers) },
        { "PcscState", "s", offsetof(CtlManager, pcsc_state) },
        { "Tokens", "ao", offsetof(CtlManager, token_paths) },
        { "PortalState", "s", offsetof(CtlManager, portal_state) },
        { "PortalReachable", "b", offsetof(CtlManager, portal_reachable) },
        { "PortalError", "s", offsetof(CtlManager, portal_error) },
        { "LastPortalCheck", "t", offsetof(CtlManager, last_portal_check) },
        { "NextPortalCheck", "t", offsetof(CtlManager, next_portal_check) },
        {},
};

const CtlProperty ctl_token_properties[] = {
        { "Reader", "s", offsetof(CtlToken, reader) },
        { "Driver", "s", offsetof(CtlToken, driver) },
        { "Serial", "s", offsetof(CtlToken, serial) },
        { "Chuid", "s", offsetof(CtlToken, chuid) },
        { "Label", "s", offsetof(CtlToken, label) },
        { "FirmwareVersion", "s", offsetof(CtlToken, firmware_version) },
        { "Present", "b", offsetof(CtlToken, present) },
        { "PinRetriesLeft", "i", offsetof(CtlToken, pin_retries_left) },
        { "State", "s", offsetof(CtlToken, state) },
        { "Progress", "u", offsetof(CtlToken, progress) },
        { "RenewalStep", "s", offsetof(CtlToken, renewal_step) },
        { "ManagementKey", "s", offsetof(CtlToken, management_key) },
        { "LastError", "s", offsetof(CtlToken, last_error) },
        { "LastSeen", "t", offsetof(CtlToken, last_seen) },
        { "Certificates", "ao", offsetof(CtlToken, certificate_paths) },
        {},
};

const CtlProperty ctl_cert_properties[] = {
        { "Token", "o", offsetof(CtlCert, token) },
        { "Slot", "s", offsetof(CtlCert, slot) },
        { "Subject", "s", offsetof(CtlCert, subject) },
        { "Issuer", "s", offsetof(CtlCert, issuer) },
        { "Serial", "s", offsetof(CtlCert, serial) },
        { "IssuerHash", "s", offsetof(CtlCert, issuer_hash) },
        { "Fingerprint", "s", offsetof(CtlCert, fingerprint) },
        { "NotBefore", "t", offsetof(CtlCert, not_before) },
        { "NotAfter", "t", offsetof(CtlCert, not_after) },
        { "DaysLeft", "i", offsetof(CtlCert, days_left) },
        { "Status", "s", offsetof(CtlCert, status) },
        { "KeyType", "s", offsetof(CtlCert, key_type) },
        { "KeyBits", "u", offsetof(CtlCert, key_bits) },
        { "Curve", "s", offsetof(CtlCert, curve) },
        { "Usage", "as", offsetof(CtlCert, usage) },
        { "KeyOrigin", "s", offsetof(CtlCert, key_origin) },
        { "PinPolicy", "s", offsetof(CtlCert, pin_policy) },
        { "TouchPolicy", "s", offsetof(CtlCert, touch_policy) },
        { "RenewalState", "s", offsetof(CtlCert, renewal_state) },
        { "RenewalOrder", "s", offsetof(CtlCert, renewal_order) },
        { "PortalUrl", "s", offsetof(CtlCert, portal_url) },
        { "RejectReason", "s", offsetof(CtlCert, reject_reason) },
        { "RenewalRekey", "b", offsetof(CtlCert, renewal_rekey) },
        { "RenewalValidityDays", "u", offsetof(CtlCert, renewal_validity_days) },
        { "RenewalChecked", "t", offsetof(CtlCert, renewal_checked) },
        {},
};

static void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

static bool is_list(const CtlProperty *p) {
        return p->signature[0] == 'a';
}

static bool is_string(const CtlProperty *p) {
        return strchr("so", p->signature[0]) != NULL;
}

static void properties_free(const CtlProperty *table, void *object) {
        for (const CtlProperty *p = table; p->name; p++) {
                void *field = (char *) object + p->offset;

                if (is_list(p))
                        strv_free(*(char ***) field);
                else if (is_string(p))
                        free(*(char **) field);
        }
}

static int read_strv(sd_bus_message *m, char **ret) {
        char **l = NULL;
        int r;

        r = sd_bus_message_read_strv(m, &l);
        if (r < 0)
                return r;
        /* sd-bus gives NULL for an empty array; NULL here means unknown. */
        if (!l && !(l = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *(char ***) ret = l;
        return 0;
}

/* Reads the variant of one property into field, whose type the table
 * gives. A variant of another type is skipped: the property stays unknown
 * rather than being misread. */
static int read_property(sd_bus_message *m, const CtlProperty *p, void *field) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (!contents || strcmp(contents, p->signature) != 0)
                return sd_bus_message_skip(m, "v");

        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        switch (p->signature[0]) {
        case 'a':
                r = read_strv(m, field);
                break;
        case 's':
        case 'o': {
                const char *s;
                char *copy;

                r = sd_bus_message_read_basic(m, p->signature[0], &s);
                if (r < 0)
                        break;
                copy = strdup(s);
                if (!copy)
                        return -ENOMEM;
                *(char **) field = copy;
                break;
        }
        case 'b': {
                int b;

                r = sd_bus_message_read_basic(m, 'b', &b);
                if (r >= 0)
                        *(CtlNumber *) field = (CtlNumber){ true, !!b };
                break;
        }
        case 'i': {
                int32_t i;

                r = sd_bus_message_read_basic(m, 'i', &i);
                if (r >= 0)
                        *(CtlNumber *) field = (CtlNumber){ true, i };
                break;
        }
        case 'u': {
                uint32_t u;

                r = sd_bus_message_read_basic(m, 'u', &u);
                if (r >= 0)
                        *(CtlNumber *) field = (CtlNumber){ true, u };
                break;
        }
        case 't': {
                uint64_t t;

                r = sd_bus_message_read_basic(m, 't', &t);
                if (r >= 0)
                        *(CtlNumber *) field = (CtlNumber){ true, (int64_t) t };
                break;
        }
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Reads an a{sv} into object along table. */
static int read_properties(sd_bus_message *m, const CtlProperty *table, void *object) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const CtlProperty *p;
                const char *name;

                r = sd_bus_message_read_basic(m, 's', &name);
                if (r < 0)
                        return r;
                for (p = table; p->name; p++)
                        if (strcmp(p->name, name) == 0)
                                break;
                if (p->name)
                        r = read_property(m, p, (char *) object + p->offset);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static CtlToken *token_free(CtlToken *t) {
        if (!t)
                return NULL;
        properties_free(ctl_token_properties, t);
        free(t->path);
        free(t->certs);
        free(t);
        return NULL;
}

static CtlCert *cert_free(CtlCert *c) {
        if (!c)
                return NULL;
        properties_free(ctl_cert_properties, c);
        free(c->path);
        free(c);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CtlToken *, token_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(CtlCert *, cert_free)

CtlManager *ctl_manager_free(CtlManager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_tokens; i++)
                token_free(m->tokens[i]);
        for (size_t i = 0; i < m->n_certs; i++)
                cert_free(m->certs[i]);
        free(m->tokens);
        free(m->certs);
        properties_free(ctl_manager_properties, m);
        free(m);
        return NULL;
}

static int append(void ***array, size_t *n, void *item) {
        void **grown = realloc(*array, (*n + 2) * sizeof(void *));

        if (!grown)
                return -ENOMEM;
        grown[(*n)++] = item;
        grown[*n] = NULL;
        *array = grown;
        return 0;
}

/* One object of GetManagedObjects' answer: its interfaces, of which a Token
 * or a Certificate becomes a struct; others are skipped. */
static int read_object(sd_bus_message *m, const char *path, CtlManager *manager) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                const char *iface;

                r = sd_bus_message_read_basic(m, 's', &iface);
                if (r < 0)
                        return r;
                if (strcmp(iface, TOKEN_IFACE) == 0) {
                        _cleanup_(token_freep) CtlToken *t = calloc(1, sizeof(*t));

                        if (!t || !(t->path = strdup(path)))
                                return -ENOMEM;
                        r = read_properties(m, ctl_token_properties, t);
                        if (r >= 0)
                                r = append((void ***) &manager->tokens, &manager->n_tokens, t);
                        if (r >= 0)
                                TAKE_PTR(t);
                } else if (strcmp(iface, CERT_IFACE) == 0) {
                        _cleanup_(cert_freep) CtlCert *c = calloc(1, sizeof(*c));

                        if (!c || !(c->path = strdup(path)))
                                return -ENOMEM;
                        r = read_properties(m, ctl_cert_properties, c);
                        if (r >= 0)
                                r = append((void ***) &manager->certs, &manager->n_certs, c);
                        if (r >= 0)
                                TAKE_PTR(c);
                } else
                        r = sd_bus_message_skip(m, "a{sv}");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_managed_objects(sd_bus_message *m, CtlManager *manager) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;

                r = sd_bus_message_read_basic(m, 'o', &path);
                if (r < 0)
                        return r;
                r = read_object(m, path, manager);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static CtlCert *find_cert(CtlManager *m, const char *path) {
        for (size_t i = 0; i < m->n_certs; i++)
                if (strcmp(m->certs[i]->path, path) == 0)
                        return m->certs[i];
        return NULL;
}

static CtlToken *take_token(CtlManager *m, const char *path) {
        for (size_t i = 0; i < m->n_tokens; i++) {
                CtlToken *t = m->tokens[i];

                if (t && strcmp(t->path, path) == 0) {
                        m->tokens[i] = NULL;
                        return t;
                }
        }
        return NULL;
}

/* Puts the tokens in the order the Manager lists them, and each token's
 * certificates in the order it lists them (slot order). A token the
 * Manager does not list (an older daemon, or a race with a key going
 * away between the two calls) comes after the listed ones. */
static int link_objects(CtlManager *m) {
        _cleanup_free_ CtlToken **ordered = calloc(m->n_tokens + 1, sizeof(CtlToken *));
        size_t n = 0;

        if (!ordered)
                return -ENOMEM;
        for (char **p = m->token_paths; p && *p; p++) {
                CtlToken *t = take_token(m, *p);

                if (t)
                        ordered[n++] = t;
        }
        for (size_t i = 0; i < m->n_tokens; i++)
                if (m->tokens[i])
                        ordered[n++] = m->tokens[i];
        free(m->tokens);
        m->tokens = TAKE_PTR(ordered);

        for (size_t i = 0; i < m->n_tokens; i++) {
                CtlToken *t = m->tokens[i];

                for (char **p = t->certificate_paths; p && *p; p++) {
                        CtlCert *c = find_cert(m, *p);
                        int r;

                        if (!c)
                                continue;
                        r = append((void ***) &t->certs, &t->n_certs, c);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int ctl_bus_connect(CtlBusKind kind, const char *address, sd_bus **ret_bus) {
        sd_bus *bus = NULL;
        int r;

        switch (kind) {
        case CTL_BUS_SYSTEM:
                r = sd_bus_open_system(&bus);
                break;
        case CTL_BUS_SESSION:
                r = sd_bus_open_user(&bus);
                break;
        default:
                r = sd_bus_new(&bus);
                if (r < 0)
                        break;
                r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
                if (r < 0)
                        bus = sd_bus_unref(bus);
        }
        if (r < 0)
                return r;
        *ret_bus = bus;
        return 0;
}

int ctl_manager_fetch(sd_bus *bus, sd_bus_error *error, CtlManager **ret_manager) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *props = NULL, *objects = NULL;
        _cleanup_(ctl_manager_freep) CtlManager *m = NULL;
        int r;

        r = sd_bus_call_method(bus, KEYRENEW_BUS_NAME, ROOT_PATH, "org.freedesktop.DBus.Properties",
                               "GetAll", error, &props, "s", MANAGER_IFACE);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, KEYRENEW_BUS_NAME, ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", error, &objects, NULL);
        if (r < 0)
                return r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = read_properties(props, ctl_manager_properties, m);
        if (r >= 0)
                r = read_managed_objects(objects, m);
        if (r >= 0)
                r = link_objects(m);
        if (r < 0)
                return r;
        *ret_manager = TAKE_PTR(m);
        return 0;
}

int ctl_manager_refresh(sd_bus *bus, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, KEYRENEW_BUS_NAME, ROOT_PATH, MANAGER_IFACE,
                                           "Refresh");
        if (r < 0)
                return r;
        return sd_bus_call(bus, call, REFRESH_TIMEOUT_USEC, error, &reply);
}
