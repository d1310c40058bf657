/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tray.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tray-bus.h"
#include "tray-internal.h"

/* A renewal writes to the card and talks to the portal; keyrenewd ends
 * it itself well before this. */
#define RENEW_TIMEOUT_USEC (10ULL * 60ULL * G_USEC_PER_SEC)
/* How long a key must stay out before the tray asks for it. */
#define SETTLE_MSEC 3000

typedef struct PropSpec {
        const char *name;
        char type;
        size_t offset;
} PropSpec;

static const PropSpec token_props[] = {
        { "Serial", 's', offsetof(TrayToken, serial) },   { "Label", 's', offsetof(TrayToken, label) },
        { "State", 's', offsetof(TrayToken, state) },     { "RenewalStep", 's', offsetof(TrayToken, step) },
        { "Present", 'b', offsetof(TrayToken, present) }, { "Progress", 'u', offsetof(TrayToken, progress) },
};

static const PropSpec cert_props[] = {
        { "Token", 'o', offsetof(TrayCert, token) },
        { "Slot", 's', offsetof(TrayCert, slot) },
        { "Subject", 's', offsetof(TrayCert, subject) },
        { "RenewalState", 's', offsetof(TrayCert, renewal_state) },
        { "RenewalOrder", 's', offsetof(TrayCert, order) },
        { "PortalUrl", 's', offsetof(TrayCert, portal_url) },
        { "RejectReason", 's', offsetof(TrayCert, reject_reason) },
        { "IssuerHash", 's', offsetof(TrayCert, issuer_hash) },
        { "Serial", 's', offsetof(TrayCert, serial) },
        { "Status", 's', offsetof(TrayCert, status) },
        { "DaysLeft", 'i', offsetof(TrayCert, days_left) },
        { "NotAfter", 't', offsetof(TrayCert, not_after) },
};

static bool streq_ptr(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static void token_free(TrayToken *t) {
        free(t->path);
        free(t->serial);
        free(t->label);
        free(t->state);
        free(t->step);
        free(t);
}

static void cert_free(TrayCert *c) {
        free(c->path);
        free(c->token);
        free(c->slot);
        free(c->subject);
        free(c->renewal_state);
        free(c->order);
        free(c->portal_url);
        free(c->reject_reason);
        free(c->issuer_hash);
        free(c->serial);
        free(c->status);
        free(c);
}

static int read_value(sd_bus_message *m, char type, void *field) {
        char sig[2] = { type, 0 };
        const char *s;
        int b, r;

        switch (type) {
        case 's':
        case 'o':
                r = sd_bus_message_read(m, sig, &s);
                if (r > 0) {
                        char *copy = strdup(s);

                        if (!copy)
                                return -ENOMEM;
                        free(*(char **) field);
                        *(char **) field = copy;
                }
                return r;
        case 'b':
                r = sd_bus_message_read(m, "b", &b);
                if (r > 0)
                        *(bool *) field = b;
                return r;
        default:
                return sd_bus_message_read_basic(m, type, field);
        }
}

/* One "name": variant entry: stored when spec knows it with this type. */
static int read_prop(sd_bus_message *m, const PropSpec *spec, size_t n, void *obj) {
        const char *name, *contents;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r >= 0)
                r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(spec[i].name, name) != 0 || contents[0] != spec[i].type || contents[1])
                        continue;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r >= 0)
                        r = read_value(m, spec[i].type, (char *) obj + spec[i].offset);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                return r;
        }
        return sd_bus_message_skip(m, "v");
}

static int read_props(sd_bus_message *m, const PropSpec *spec, size_t n, void *obj) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = read_prop(m, spec, n, obj);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static TrayToken *token_get(Tray *t, const char *path) {
        TrayToken *tok = g_hash_table_lookup(t->tokens, path);

        if (tok)
                return tok;
        tok = calloc(1, sizeof(*tok));
        if (!tok || !(tok->path = strdup(path))) {
                free(tok);
                return NULL;
        }
        g_hash_table_insert(t->tokens, tok->path, tok);
        return tok;
}

static TrayCert *cert_get(Tray *t, const char *path) {
        TrayCert *c = g_hash_table_lookup(t->certs, path);

        if (c)
                return c;
        c = calloc(1, sizeof(*c));
        if (!c || !(c->path = strdup(path))) {
                free(c);
                return NULL;
        }
        g_hash_table_insert(t->certs, c->path, c);
        return c;
}

/* Every certificate of the token, or the certificate, looks again at
 * what it should tell the user. */
static void changed(Tray *t, const char *path) {
        GHashTableIter it;
        TrayCert *c;

        if (g_hash_table_contains(t->certs, path)) {
                tray_evaluate(t, path);
                return;
        }
        g_hash_table_iter_init(&it, t->certs);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                if (streq_ptr(c->token, path))
                        tray_evaluate(t, c->path);
}

/* One interface's properties of path (GetManagedObjects, InterfacesAdded,
 * PropertiesChanged all carry them). */
static int read_interface(Tray *t, sd_bus_message *m, const char *path, const char *iface) {
        if (strcmp(iface, TOKEN_IFACE) == 0) {
                TrayToken *tok = token_get(t, path);

                return tok ? read_props(m, token_props, ELEMENTSOF(token_props), tok) : -ENOMEM;
        }
        if (strcmp(iface, CERT_IFACE) == 0) {
                TrayCert *c = cert_get(t, path);

                return c ? read_props(m, cert_props, ELEMENTSOF(cert_props), c) : -ENOMEM;
        }
        return sd_bus_message_skip(m, "a{sv}");
}

static int read_interfaces(Tray *t, sd_bus_message *m, const char *path) {
        const char *iface;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                r = sd_bus_message_read(m, "s", &iface);
                if (r >= 0)
                        r = read_interface(t, m, path, iface);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *path;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = read_interfaces(t, m, path);
        if (r < 0)
                g_warning("InterfacesAdded: %s", strerror(-r));
        changed(t, path);
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        g_auto(GStrv) ifaces = NULL;
        const char *path;

        if (sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_read_strv(m, &ifaces) < 0)
                return 0;
        for (char **i = ifaces; *i; i++) {
                if (strcmp(*i, TOKEN_IFACE) == 0)
                        g_hash_table_remove(t->tokens, path);
                else if (strcmp(*i, CERT_IFACE) == 0)
                        g_hash_table_remove(t->certs, path);
        }
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *iface, *path = sd_bus_message_get_path(m);
        int r;

        if (!path || (!g_hash_table_contains(t->tokens, path) && !g_hash_table_contains(t->certs, path)))
                return 0;
        r = sd_bus_message_read(m, "s", &iface);
        if (r >= 0)
                r = read_interface(t, m, path, iface);
        if (r < 0)
                g_warning("PropertiesChanged of %s: %s", path, strerror(-r));
        changed(t, path);
        return 0;
}

/* keyrenewd's default [Expiry] WarnDays: for a certificate the tray
 * finds expiring when it starts, the warning keyrenewd sent last. */
static unsigned threshold_of(int32_t days_left) {
        static const unsigned thresholds[] = { 1, 3, 7, 14, 30 };

        if (days_left < 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(thresholds); i++)
                if ((unsigned) days_left < thresholds[i])
                        return thresholds[i];
        /* Beyond the defaults (WarnDays set higher): a threshold just
         * above, so that the defaults still warn when crossed. */
        return (unsigned) days_left + 1;
}

/* Once per threshold and certificate, unless a renewal under way or
 * waiting says more than the date. */
static void warn_expiry(Tray *t, TrayCert *c, uint32_t days_left, unsigned threshold) {
        const char *state = c->renewal_state ? c->renewal_state : "none";
        g_autofree char *id = NULL;
        TrayNote *note;
        uint64_t shown;

        if (strcmp(state, "none") != 0 && strcmp(state, "unknown") != 0 && strcmp(state, "installed") != 0)
                return;
        id = g_strdup_printf("%s:%s", c->issuer_hash ? c->issuer_hash : "", c->serial ? c->serial : "");
        note = tray_note(t, c->path);
        if (!note || note->busy || (tray_record_get(t->warned, id, &shown) && shown <= threshold))
                return;
        note_expiring(note, c, days_left);
        if (tray_record_set(t->warned, id, threshold) < 0)
                g_warning("Cannot remember the expiry warning of %s", id);
}

static int on_managed_objects(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *path;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                return 0; /* keyrenewd is not there: NameOwnerChanged brings it */
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = read_interfaces(t, reply, path);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                g_warning("GetManagedObjects: %s", strerror(-r));
        {
                g_autofree char **paths = (char **) g_hash_table_get_keys_as_array(t->certs, NULL);

                for (char **p = paths; *p; p++) {
                        TrayCert *c = g_hash_table_lookup(t->certs, *p);

                        /* A warning keyrenewd sent while nobody was logged in. */
                        if (c->status && strcmp(c->status, "valid") != 0)
                                warn_expiry(t, c, (uint32_t) MAX(c->days_left, 0),
                                            threshold_of(c->days_left));
                        tray_evaluate(t, *p);
                }
        }
        return 0;
}

static int load(Tray *t) {
        return sd_bus_call_method_async(t->bus, NULL, KEYRENEW_BUS_NAME, BUS_ROOT_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                        on_managed_objects, t, NULL);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        t->registered = false;
        if (!*new_owner) {
                /* Its PIN request died with it. */
                if (t->request_cert)
                        tray_agent_cancel(t, t->request_cert);
                return 0;
        }
        g_hash_table_remove_all(t->certs);
        g_hash_table_remove_all(t->tokens);
        if (tray_agent_register(t) < 0 || load(t) < 0)
                g_warning("Cannot follow keyrenewd again");
        return 0;
}

static int on_expiry_warning(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *path = sd_bus_message_get_path(m);
        TrayCert *c = path ? g_hash_table_lookup(t->certs, path) : NULL;
        uint32_t days, threshold;

        if (c && sd_bus_message_read(m, "uu", &days, &threshold) >= 0)
                warn_expiry(t, c, days, threshold);
        return 0;
}

/* Only for renewals the tray answered the PIN of without calling Renew
 * itself (keyrenewd resumed one when the key came back): its own call's
 * answer says more, and keyrenewctl's renewals are shown by keyrenewctl. */
static int on_renewal_finished(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Tray *t = userdata;
        const char *path, *outcome, *message;
        TrayNote *note;
        TrayCert *c;

        if (sd_bus_message_read(m, "oss", &path, &outcome, &message) < 0)
                return 0;
        note = g_hash_table_lookup(t->notes, path);
        if (!note || !note->busy || note->call)
                return 0;
        note->busy = false;
        c = g_hash_table_lookup(t->certs, path);
        if (strcmp(outcome, "done") == 0)
                note_done(note, c, 0, message);
        else if (strcmp(outcome, "cancelled") == 0)
                tray_snooze(note);
        else
                note_failed(note, c, NULL, message);
        return 0;
}

static int add_matches(Tray *t) {
        static const struct {
                const char *iface, *member;
                sd_bus_message_handler_t handler;
        } signals[] = {
                { "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_interfaces_added },
                { "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved", on_interfaces_removed },
                { "org.freedesktop.DBus.Properties", "PropertiesChanged", on_properties_changed },
                { CERT_IFACE, "ExpiryWarning", on_expiry_warning },
                { MANAGER_IFACE, "RenewalFinished", on_renewal_finished },
        };
        int r;

        /* Floating slots: they go with the connection. */
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                r = sd_bus_match_signal_async(t->bus, NULL, KEYRENEW_BUS_NAME, NULL, signals[i].iface,
                                              signals[i].member, signals[i].handler, NULL, t);
                if (r < 0)
                        return r;
        }
        return sd_bus_add_match_async(
                t->bus, NULL,
                "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                "member='NameOwnerChanged',arg0='" KEYRENEW_BUS_NAME "'",
                on_owner_changed, NULL, t);
}

static gboolean on_snooze_over(gpointer userdata);

/* Keeps note's prompts away for usec from now. */
static void snooze_for(TrayNote *note, uint64_t usec) {
        if (note->snooze_timer)
                g_source_remove(note->snooze_timer);
        note->snoozed_until = g_get_monotonic_time() + (int64_t) usec;
        note->snooze_timer = g_timeout_add_seconds((guint) CLAMP(usec / G_USEC_PER_SEC, 1, G_MAXUINT),
                                                   on_snooze_over, note);
}

static void snooze_forget(TrayNote *note) {
        if (tray_record_unset(note->tray->snoozed, note->cert) < 0)
                g_warning("Cannot forget that %s was put off", note->cert);
}

/* A "Later" of an earlier tray (before a logout) still holds, for no
 * longer than this tray's own snooze: the file is the user's to edit. */
static void snooze_restore(TrayNote *note) {
        uint64_t until, now = (uint64_t) g_get_real_time() / G_USEC_PER_SEC;
        uint64_t most = note->tray->options.snooze_usec / G_USEC_PER_SEC;

        if (!tray_record_get(note->tray->snoozed, note->cert, &until))
                return;
        if (until > now)
                snooze_for(note, MIN(until - now, most) * G_USEC_PER_SEC);
        else
                snooze_forget(note);
}

TrayNote *tray_note(Tray *t, const char *cert) {
        TrayNote *note = g_hash_table_lookup(t->notes, cert);

        if (note)
                return note;
        note = calloc(1, sizeof(*note));
        if (!note || !(note->cert = strdup(cert))) {
                free(note);
                return NULL;
        }
        note->tray = t;
        g_hash_table_insert(t->notes, note->cert, note);
        snooze_restore(note);
        return note;
}

static bool snoozed(const TrayNote *note) {
        return note->snoozed_until && g_get_monotonic_time() < note->snoozed_until;
}

static gboolean on_snooze_over(gpointer userdata) {
        TrayNote *note = userdata;

        note->snooze_timer = 0;
        note->snoozed_until = 0;
        snooze_forget(note);
        /* The prompt is due again, even for the same state. */
        free(note->prompted);
        note->prompted = NULL;
        tray_evaluate(note->tray, note->cert);
        return G_SOURCE_REMOVE;
}

void tray_snooze(TrayNote *note) {
        uint64_t usec = note->tray->options.snooze_usec;
        uint64_t now = (uint64_t) g_get_real_time() / G_USEC_PER_SEC;

        note_close(note);
        snooze_for(note, usec);
        if (tray_record_set(note->tray->snoozed, note->cert, now + usec / G_USEC_PER_SEC) < 0)
                g_warning("Cannot remember that %s was put off; a new login asks again", note->cert);
}

/* What a certificate in this state asks of the user, as a key that
 * changes when the question does ("" nothing). */
static char *prompt_key(const TrayCert *c, const TrayToken *tok) {
        const char *state = c->renewal_state ? c->renewal_state : "";

        if (strcmp(state, "approved") == 0 || strcmp(state, "issued") == 0)
                return g_strdup_printf("approved:%s:%d", c->order ? c->order : "", tok && tok->present);
        if (strcmp(state, "under-review") == 0 || strcmp(state, "rejected") == 0 ||
            strcmp(state, "awaiting-payment") == 0)
                return g_strdup_printf("%s:%s", state, c->order ? c->order : "");
        return g_strdup("");
}

static bool renewing(const TrayToken *tok) {
        return tok && (streq_ptr(tok->state, "awaiting-pin") || streq_ptr(tok->state, "renewing"));
}

static void prompt(TrayNote *note, const TrayCert *c, const TrayToken *tok) {
        const char *state = c->renewal_state;

        if (strcmp(state, "approved") != 0 && strcmp(state, "issued") != 0)
                note_order(note, c);
        else if (!tok || !tok->present)
                note_insert_key(note, c, tok);
        else {
                note_approved(note, c, tok);
                /* Without buttons the PIN dialog is the question: its
                 * Cancel means "Later". */
                if (!note->tray->actions && tray_renew(note->tray, note, false) >= 0)
                        note->cancel_is_later = true;
        }
}

static gboolean on_settled(gpointer userdata) {
        TrayNote *note = userdata;

        note->settle_timer = 0;
        note->settled = true;
        tray_evaluate(note->tray, note->cert);
        note->settled = false;
        return G_SOURCE_REMOVE;
}

void tray_evaluate(Tray *t, const char *cert) {
        TrayCert *c = g_hash_table_lookup(t->certs, cert);
        TrayToken *tok = c && c->token ? g_hash_table_lookup(t->tokens, c->token) : NULL;
        g_autofree char *key = NULL;
        TrayNote *note;

        if (!c)
                return;
        tray_sni_changed(t->sni);
        note = tray_note(t, cert);
        if (!note)
                return;
        if (note->busy) {
                /* Not while the PIN is asked for: the question (or, without
                 * buttons, the prompt that explains the PIN dialog) stays. */
                if (tok && streq_ptr(tok->state, "renewing"))
                        note_progress(note, c, tok);
                return;
        }
        key = prompt_key(c, tok);
        if (note->settle_timer && !g_str_has_suffix(key, ":0")) {
                g_source_remove(note->settle_timer);
                note->settle_timer = 0;
        }
        if (renewing(tok) || streq_ptr(key, note->prompted) || snoozed(note))
                return;
        /* "Insert your key" only for a key that stays out: not for one
         * pulled and plugged in again at once, nor for the moment a
         * restarted keyrenewd shows a key before it has seen the reader. */
        if (g_str_has_suffix(key, ":0") && !note->settled) {
                if (!note->settle_timer)
                        note->settle_timer = g_timeout_add(SETTLE_MSEC, on_settled, note);
                return;
        }
        free(note->prompted);
        note->prompted = TAKE_PTR(key);
        if (*note->prompted)
                prompt(note, c, tok);
}

static bool error_is(const sd_bus_error *e, const char *name) {
        return e->name && g_str_has_prefix(e->name, ERROR_PREFIX) &&
               strcmp(e->name + strlen(ERROR_PREFIX), name) == 0;
}

static uint64_t result_not_after(sd_bus_message *reply) {
        uint64_t not_after = 0;
        const char *key;

        if (sd_bus_message_enter_container(reply, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                if (sd_bus_message_read(reply, "s", &key) < 0)
                        break;
                if (strcmp(key, "NotAfter") == 0)
                        (void) sd_bus_message_read(reply, "v", "t", &not_after);
                else
                        (void) sd_bus_message_skip(reply, "v");
                (void) sd_bus_message_exit_container(reply);
        }
        return not_after;
}

static void renew_failed(TrayNote *note, const TrayCert *c, const sd_bus_error *e) {
        const char *message = e->message && *e->message ? e->message : e->name;
        TrayToken *tok = c && c->token ? g_hash_table_lookup(note->tray->tokens, c->token) : NULL;

        /* The failure stays on screen until the key's state changes:
         * then the prompt for the new state replaces it. */
        free(note->prompted);
        note->prompted = c ? prompt_key(c, tok) : NULL;
        if (error_is(e, "Cancelled")) {
                tray_snooze(note);
                return;
        }
        free(note->last_error);
        note->last_error = strdup(message);
        if (error_is(e, "ConfirmationRequired"))
                note_confirm(note, c, message);
        else
                note_failed(note, c, e->name, message);
}

static int on_renew_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        TrayNote *note = userdata;
        TrayCert *c = g_hash_table_lookup(note->tray->certs, note->cert);
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        note->call = sd_bus_slot_unref(note->call);
        note->busy = false;
        note->cancel_is_later = false;
        if (e) {
                renew_failed(note, c, e);
                return 0;
        }
        free(note->last_error);
        note->last_error = NULL;
        note_done(note, c, result_not_after(reply), NULL);
        return 0;
}

int tray_renew(Tray *t, TrayNote *note, bool accept_key_loss) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (note->call)
                return -EBUSY;
        r = sd_bus_message_new_method_call(t->bus, &m, KEYRENEW_BUS_NAME, BUS_ROOT_PATH, MANAGER_IFACE,
                                           "Renew");
        if (r >= 0)
                r = sd_bus_message_append(m, "o", note->cert);
        if (r >= 0)
                r = accept_key_loss ? sd_bus_message_append(m, "a{sv}", 1, "AcceptKeyLoss", "b", 1)
                                    : sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call_async(t->bus, &note->call, m, on_renew_reply, note, RENEW_TIMEOUT_USEC);
        if (r < 0)
                return r;
        note->busy = true;
        tray_evaluate(t, note->cert);
        return 0;
}

static void notes_free(gpointer p) {
        note_free(p);
}

static bool has_cap(GList *caps, const char *cap) {
        return g_list_find_custom(caps, cap, (GCompareFunc) strcmp) != NULL;
}

static void read_server_caps(Tray *t) {
        GList *caps = notify_get_server_caps();

        t->actions = has_cap(caps, "actions");
        t->markup = has_cap(caps, "body-markup");
        g_list_free_full(caps, g_free);
}

int tray_new(const TrayOptions *options, Tray **ret) {
        _cleanup_(tray_freep) Tray *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->options = *options;
        t->tokens = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) token_free);
        t->certs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) cert_free);
        t->notes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, notes_free);
        read_server_caps(t);
        r = tray_record_load("warned", &t->warned);
        if (r >= 0)
                r = tray_record_load("snoozed", &t->snoozed);
        if (r >= 0)
                r = tray_bus_open(options->bus, &t->bus);
        if (r >= 0)
                r = add_matches(t);
        if (r >= 0)
                r = tray_agent_export(t);
        if (r < 0)
                return r;
        /* Without keyrenewd (yet), NameOwnerChanged starts both later. */
        (void) tray_agent_register(t);
        r = load(t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

int tray_show_icon(Tray *t, GDBusConnection *session) {
        return tray_sni_new(t, session, &t->sni);
}

Tray *tray_free(Tray *t) {
        if (!t)
                return NULL;
        t->sni = tray_sni_free(t->sni);
        if (t->request_cert)
                tray_agent_cancel(t, t->request_cert);
        if (t->notes)
                g_hash_table_destroy(t->notes);
        if (t->bus)
                tray_agent_unregister(t);
        sd_bus_slot_unref(t->agent_object);
        t->bus = tray_bus_close(t->bus);
        if (t->certs)
                g_hash_table_destroy(t->certs);
        if (t->tokens)
                g_hash_table_destroy(t->tokens);
        tray_record_free(t->warned);
        tray_record_free(t->snoozed);
        free(t);
        return NULL;
}
