/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <libnotify/notify.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "tray-pinentry.h"
#include "tray-record.h"
#include "tray-sni.h"
#include "tray.h"

#define BUS_ROOT_PATH "/org/keyrenew/KeyRenew1"
#define MANAGER_IFACE "org.keyrenew.KeyRenew1.Manager"
#define TOKEN_IFACE "org.keyrenew.KeyRenew1.Token"
#define CERT_IFACE "org.keyrenew.KeyRenew1.Certificate"
#define AGENT_IFACE "org.keyrenew.KeyRenew1.Agent"
#define ERROR_PREFIX "org.keyrenew.KeyRenew1.Error."
#define TRAY_AGENT_PATH "/org/keyrenew/tray/agent"

/* What keyrenewd shows of a token and a certificate, as far as the
 * tray needs it. */
typedef struct TrayToken {
        char *path;
        char *serial;
        char *label;
        char *state;
        char *step;
        bool present;
        uint32_t progress;
} TrayToken;

typedef struct TrayCert {
        char *path;
        char *token;
        char *slot;
        char *subject;
        char *renewal_state;
        char *order;
        char *portal_url;
        char *reject_reason;
        char *issuer_hash;
        char *serial;
        char *status;
        int32_t days_left;
        uint64_t not_after;
} TrayCert;

/* The one notification of a certificate: each new one replaces it. */
typedef struct TrayNote {
        Tray *tray;
        char *cert; /* its path: the object may come and go, the note stays */
        NotifyNotification *n;
        char *prompted;        /* the state last prompted for ("approved:ORDER:1") */
        int64_t snoozed_until; /* monotonic usec; 0 not snoozed */
        guint snooze_timer;
        guint settle_timer; /* the key is out: ask for it if it stays out */
        bool settled;
        bool busy;            /* a renewal the tray takes part in is under way */
        sd_bus_slot *call;    /* our Manager.Renew */
        char *last_error;     /* why the last try failed: shown in the PIN dialog */
        bool cancel_is_later; /* no buttons: the PIN dialog was the question */
        int showing;          /* the kind of notification on screen (tray-notify.c) */
} TrayNote;

struct Tray {
        TrayOptions options;
        sd_bus *bus;
        GHashTable *tokens, *certs, *notes;
        TrayRecord *warned;  /* the last expiry threshold shown, per certificate */
        TrayRecord *snoozed; /* until when "Later" put a prompt off, per certificate object */
        TraySni *sni;        /* NULL: no status icon */
        bool actions;        /* the notification server shows buttons */
        bool markup;
        sd_bus_slot *agent_object;
        bool registered;
        sd_bus_message *request; /* the RequestPin being answered */
        char *request_cert;
        char *request_text; /* what the PIN dialog says */
        TrayPinentry *pinentry;
};

/* tray.c */
TrayNote *tray_note(Tray *t, const char *cert);
void tray_evaluate(Tray *t, const char *cert);
int tray_renew(Tray *t, TrayNote *note, bool accept_key_loss);
void tray_snooze(TrayNote *note);

/* tray-agent.c */
int tray_agent_export(Tray *t);
int tray_agent_register(Tray *t);
void tray_agent_cancel(Tray *t, const char *cert);
void tray_agent_unregister(Tray *t);

/* tray-notify.c: the texts and buttons of each notification. */
void note_free(TrayNote *note);
void note_close(TrayNote *note);
void note_expiring(TrayNote *note, const TrayCert *c, uint32_t days_left);
void note_approved(TrayNote *note, const TrayCert *c, const TrayToken *tok);
void note_insert_key(TrayNote *note, const TrayCert *c, const TrayToken *tok);
void note_order(TrayNote *note, const TrayCert *c);
void note_progress(TrayNote *note, const TrayCert *c, const TrayToken *tok);
void note_done(TrayNote *note, const TrayCert *c, uint64_t not_after, const char *message);
void note_failed(TrayNote *note, const TrayCert *c, const char *error, const char *message);
void note_confirm(TrayNote *note, const TrayCert *c, const char *message);
/* "CN=x,O=y" -> "x" in buf */
const char *cert_name(const TrayCert *c, char *buf, size_t size);
