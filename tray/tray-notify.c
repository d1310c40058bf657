/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "i18n.h"
#include "tray-internal.h"

/* What is on screen, so that closing a prompt means "Later" and closing
 * a result means nothing. */
enum {
        SHOWING_NOTHING,
        SHOWING_PROMPT,
        SHOWING_OTHER,
};

#define ICON "application-certificate"

const char *cert_name(const TrayCert *c, char *buf, size_t size) {
        const char *subject = c && c->subject ? c->subject : "";
        const char *cn = strstr(subject, "CN=");
        size_t len;

        /* RFC 2253 order puts CN first; a name without one is shown whole. */
        if (cn && (cn == subject || cn[-1] == ','))
                subject = cn + 3;
        len = strcspn(subject, ",");
        if (len == 0) {
                snprintf(buf, size, "%s", c && c->slot ? c->slot : "?");
                return buf;
        }
        snprintf(buf, size, "%.*s", (int) len, subject);
        return buf;
}

static const char *key_serial(const TrayNote *note, const TrayCert *c) {
        TrayToken *tok = c && c->token ? g_hash_table_lookup(note->tray->tokens, c->token) : NULL;

        return tok && tok->serial ? tok->serial : "";
}

static char *date_of(uint64_t usec) {
        g_autoptr(GDateTime) when = g_date_time_new_from_unix_local((gint64) (usec / G_USEC_PER_SEC));

        /* ISO 8601: the same in every language, never ambiguous. */
        return when ? g_date_time_format(when, "%Y-%m-%d") : g_strdup("?");
}

static void on_closed(NotifyNotification *n, gpointer userdata) {
        TrayNote *note = userdata;

        /* 2: the user dismissed it, which for a question means "Later". */
        if (note->showing == SHOWING_PROMPT && notify_notification_get_closed_reason(n) == 2)
                tray_snooze(note);
        note->showing = SHOWING_NOTHING;
}

/* A fresh text on the one notification of the certificate: it replaces
 * what was there (same id) instead of piling up. */
static NotifyNotification *begin(TrayNote *note, const char *summary, GString *body, int showing) {
        g_autofree char *text = g_string_free(body, FALSE);
        g_autofree char *escaped = note->tray->markup ? g_markup_escape_text(text, -1) : NULL;

        if (!note->n) {
                note->n = notify_notification_new(summary, escaped ? escaped : text, ICON);
                g_signal_connect(note->n, "closed", G_CALLBACK(on_closed), note);
        } else
                notify_notification_update(note->n, summary, escaped ? escaped : text, ICON);
        notify_notification_clear_actions(note->n);
        notify_notification_clear_hints(note->n);
        notify_notification_set_app_name(note->n, "keyrenew-tray");
        notify_notification_set_hint(note->n, "desktop-entry", g_variant_new_string("keyrenew-tray"));
        notify_notification_set_timeout(note->n, showing == SHOWING_PROMPT ? NOTIFY_EXPIRES_NEVER
                                                                           : NOTIFY_EXPIRES_DEFAULT);
        note->showing = showing;
        return note->n;
}

static void show(TrayNote *note) {
        g_autoptr(GError) error = NULL;

        if (!notify_notification_show(note->n, &error))
                g_warning("Cannot show a notification: %s", error->message);
}

void note_close(TrayNote *note) {
        if (note->n && note->showing != SHOWING_NOTHING) {
                note->showing = SHOWING_NOTHING;
                (void) notify_notification_close(note->n, NULL);
        }
}

void note_free(TrayNote *note) {
        if (!note)
                return;
        note_close(note);
        if (note->n)
                g_object_unref(note->n);
        if (note->snooze_timer)
                g_source_remove(note->snooze_timer);
        if (note->settle_timer)
                g_source_remove(note->settle_timer);
        sd_bus_slot_unref(note->call);
        free(note->cert);
        free(note->prompted);
        free(note->last_error);
        free(note);
}

static void on_update(NotifyNotification *n, char *action, gpointer userdata) {
        TrayNote *note = userdata;
        int r = tray_renew(note->tray, note, strcmp(action, "accept") == 0);

        if (r < 0 && r != -EBUSY)
                g_warning("Cannot start the renewal: %s", strerror(-r));
}

static void on_later(NotifyNotification *n, char *action, gpointer userdata) {
        tray_snooze(userdata);
}

static void on_open(NotifyNotification *n, char *action, gpointer userdata) {
        const char *url = g_object_get_data(G_OBJECT(n), "url");
        g_autoptr(GError) error = NULL;
        char *argv[] = { (char *) "xdg-open", (char *) url, NULL };

        if (url && !g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &error))
                g_warning("Cannot open %s: %s", url, error->message);
}

/* Without buttons, the portal's address is in the text, for the user to
 * copy. */
static void add_link(TrayNote *note, GString *body, const char *url) {
        if (!url || !*url)
                return;
        if (note->tray->actions)
                return;
        g_string_append_printf(body, "\n%s", url);
}

static void link_action(TrayNote *note, const char *url, const char *label) {
        if (!url || !*url || !note->tray->actions)
                return;
        g_object_set_data_full(G_OBJECT(note->n), "url", g_strdup(url), g_free);
        notify_notification_add_action(note->n, "open", label, on_open, note, NULL);
}

void note_expiring(TrayNote *note, const TrayCert *c, uint32_t days_left) {
        GString *body = g_string_new(NULL);
        g_autofree char *summary = NULL, *date = date_of(c->not_after);
        char name[256];

        if (c->days_left < 0)
                summary = g_strdup(_("Certificate expired"));
        else if (days_left == 0)
                summary = g_strdup(_("Certificate expires today"));
        else
                summary = g_strdup_printf(ngettext("Certificate expires in %u day",
                                                   "Certificate expires in %u days", days_left),
                                          days_left);
        g_string_append_printf(body, _("The certificate of %s on key %s is valid until %s."),
                               cert_name(c, name, sizeof(name)), key_serial(note, c), date);
        g_string_append_printf(body, "\n%s", _("Apply for its renewal on your CA's portal."));
        add_link(note, body, c->portal_url);
        begin(note, summary, body, SHOWING_OTHER);
        link_action(note, c->portal_url, _("Renew on the portal"));
        show(note);
}

void note_approved(TrayNote *note, const TrayCert *c, const TrayToken *tok) {
        GString *body = g_string_new(NULL);
        char name[256];

        g_string_append_printf(body, _("The CA approved the renewal of the certificate of %s (order %s)."),
                               cert_name(c, name, sizeof(name)), c->order ? c->order : "");
        g_string_append_printf(
                body, "\n%s",
                _("Updating takes a few seconds; even if the key is pulled out, nothing is lost."));
        if (!note->tray->actions)
                g_string_append_printf(
                        body, "\n%s",
                        _("A PIN dialog opens now: enter the PIN to update, or choose Later to do it "
                          "another time."));
        begin(note, _("Your certificate can be renewed"), body, SHOWING_PROMPT);
        if (note->tray->actions) {
                notify_notification_add_action(note->n, "default", _("Update now"), on_update, note, NULL);
                notify_notification_add_action(note->n, "update", _("Update now"), on_update, note, NULL);
                notify_notification_add_action(note->n, "later", _("Later"), on_later, note, NULL);
        }
        notify_notification_set_urgency(note->n, NOTIFY_URGENCY_NORMAL);
        show(note);
}

void note_insert_key(TrayNote *note, const TrayCert *c, const TrayToken *tok) {
        GString *body = g_string_new(NULL);
        char name[256];

        g_string_append_printf(body, _("The CA approved the renewal of the certificate of %s (order %s)."),
                               cert_name(c, name, sizeof(name)), c->order ? c->order : "");
        g_string_append_printf(body, "\n");
        g_string_append_printf(body, _("Plug in key %s to update it."), key_serial(note, c));
        begin(note, _("Insert your key to finish the renewal"), body, SHOWING_PROMPT);
        if (note->tray->actions)
                notify_notification_add_action(note->n, "later", _("Later"), on_later, note, NULL);
        show(note);
}

void note_order(TrayNote *note, const TrayCert *c) {
        GString *body = g_string_new(NULL);
        const char *state = c->renewal_state, *order = c->order ? c->order : "", *summary;
        char name[256];

        cert_name(c, name, sizeof(name));
        if (strcmp(state, "rejected") == 0) {
                summary = _("Renewal rejected");
                g_string_append_printf(
                        body, _("The CA rejected order %s for the certificate of %s: %s"), order, name,
                        c->reject_reason && *c->reject_reason ? c->reject_reason : _("no reason given"));
                g_string_append_printf(body, "\n%s", _("The order page says what to do next."));
        } else if (strcmp(state, "under-review") == 0) {
                summary = _("Renewal under review");
                g_string_append_printf(body, _("The CA is reviewing order %s for the certificate of %s."),
                                       order, name);
                g_string_append_printf(body, "\n%s", _("You will be told here when it is approved."));
        } else {
                summary = _("Renewal awaiting payment");
                g_string_append_printf(
                        body, _("Order %s for the certificate of %s waits for payment on the CA's portal."),
                        order, name);
        }
        add_link(note, body, c->portal_url);
        begin(note, summary, body, SHOWING_OTHER);
        link_action(note, c->portal_url, _("Open the order page"));
        show(note);
}

static const char *step_text(const char *step) {
        static const struct {
                const char *step, *text;
        } steps[] = {
                { "pin", N_("Waiting for the PIN") },
                { "started", N_("Starting") },
                { "key-generated", N_("New key made on the key") },
                { "requesting", N_("Asking the CA for the new certificate") },
                { "issued", N_("The CA issued the new certificate") },
                { "written", N_("New certificate written to the key") },
                { "verified", N_("New certificate checked") },
                { "confirmed", N_("Confirmed to the CA") },
                { "done", N_("Done") },
        };

        for (size_t i = 0; step && i < ELEMENTSOF(steps); i++)
                if (strcmp(steps[i].step, step) == 0)
                        return _(steps[i].text);
        return _("Preparing");
}

void note_progress(TrayNote *note, const TrayCert *c, const TrayToken *tok) {
        GString *body = g_string_new(NULL);
        char name[256];
        const char *state = tok->state ? tok->state : "";
        /* Until keyrenewd takes the renewal up, Progress and RenewalStep
         * are those of the last read or renewal. */
        bool started = strcmp(state, "awaiting-pin") == 0 || strcmp(state, "renewing") == 0;
        uint32_t progress = started ? MIN(tok->progress, 100u) : 0;

        g_string_append_printf(body, _("Certificate of %s: %s (%u%%)."), cert_name(c, name, sizeof(name)),
                               started ? step_text(tok->step) : step_text(NULL), progress);
        g_string_append_printf(body, "\n%s", _("Do not remove the key."));
        begin(note, _("Renewing the certificate"), body, SHOWING_OTHER);
        notify_notification_set_timeout(note->n, NOTIFY_EXPIRES_NEVER);
        notify_notification_set_hint(note->n, "value", g_variant_new_int32((int32_t) progress));
        show(note);
}

void note_done(TrayNote *note, const TrayCert *c, uint64_t not_after, const char *message) {
        GString *body = g_string_new(NULL);
        g_autofree char *date = not_after ? date_of(not_after) : NULL;
        char name[256];

        cert_name(c, name, sizeof(name));
        if (date)
                g_string_append_printf(body, _("The certificate of %s is renewed: valid until %s."), name,
                                       date);
        else
                g_string_append(body, message ? message : "");
        g_string_append_printf(body, "\n%s", _("You can remove the key now."));
        begin(note, _("Certificate renewed"), body, SHOWING_OTHER);
        show(note);
}

static bool error_named(const char *error, const char *name) {
        return error && g_str_has_prefix(error, ERROR_PREFIX) &&
               strcmp(error + strlen(ERROR_PREFIX), name) == 0;
}

void note_failed(TrayNote *note, const TrayCert *c, const char *error, const char *message) {
        GString *body = g_string_new(message);
        const char *summary = _("Renewal failed"), *next;
        bool retry = true;

        if (error_named(error, "WrongPin")) {
                summary = _("Wrong PIN");
                next = _("Nothing was changed. Try again with the right PIN: each wrong PIN costs a try.");
        } else if (error_named(error, "PinBlocked")) {
                summary = _("PIN blocked");
                next = _("Unblock the PIN with the PUK (your CA's tool, or yubico-piv-tool), then renew "
                         "again.");
                retry = false;
        } else if (!error || error_named(error, "Interrupted") || error_named(error, "TokenAbsent")) {
                summary = error ? _("Renewal interrupted") : summary;
                next = _("Plug the key in again: the renewal goes on from where it stopped.");
                retry = false;
        } else
                next = _("Try again later. If it keeps failing, run 'keyrenewctl status' or ask your CA.");
        g_string_append_printf(body, "\n%s", next);
        if (retry && !note->tray->actions)
                g_string_append_printf(body, "\n%s",
                                       _("To try again, unplug the key and plug it in again."));
        begin(note, summary, body, SHOWING_OTHER);
        if (retry && note->tray->actions) {
                notify_notification_add_action(note->n, "retry", _("Try again"), on_update, note, NULL);
                notify_notification_add_action(note->n, "later", _("Later"), on_later, note, NULL);
        }
        notify_notification_set_urgency(note->n, NOTIFY_URGENCY_CRITICAL);
        show(note);
}

void note_confirm(TrayNote *note, const TrayCert *c, const char *message) {
        GString *body = g_string_new(NULL);

        g_string_append(
                body,
                _("This renewal replaces a key that decrypts. Whatever was encrypted to the old key (mail, "
                  "files, sealed bids) can no longer be decrypted once it is gone: decrypt what you still "
                  "need first."));
        if (!note->tray->actions)
                g_string_append_printf(body, "\n%s",
                                       _("To go on, run: keyrenewctl renew --accept-key-loss"));
        begin(note, _("The old key will be replaced"), body, SHOWING_PROMPT);
        if (note->tray->actions) {
                notify_notification_add_action(note->n, "accept", _("Replace the key"), on_update, note,
                                               NULL);
                notify_notification_add_action(note->n, "later", _("Later"), on_later, note, NULL);
        }
        show(note);
}
