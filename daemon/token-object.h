/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's model of a token (a key it has seen, present or not) and of
 * the certificates on it, as token-bus.c shows them on the bus. A token is
 * known by its serial (or, for a card that has none, by its first
 * certificate); it stays when the card is pulled out (Present false) and is
 * remembered across restarts by token-store.c. Every change is collected
 * and sent as one PropertiesChanged per object by token_object_flush().
 * Everything here runs on the loop thread. */

#include <PCSC/pcsclite.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "macro.h"
#include "token-worker.h"
#include "token.h"
#include "x509-info.h"

typedef struct Manager Manager;

/* The token's State on the bus. */
typedef enum TokenState {
        TOKEN_STATE_IDLE,              /* nothing to do */
        TOKEN_STATE_CHECKING,          /* being read */
        TOKEN_STATE_EXPIRING,          /* a certificate has crossed a warning threshold */
        TOKEN_STATE_EXPIRED,           /* a certificate has expired */
        TOKEN_STATE_FAILED,            /* the last read failed: LastError says why */
        TOKEN_STATE_LOCKED,            /* the PIN is blocked */
        TOKEN_STATE_RENEWAL_AVAILABLE, /* the portal approved a renewal of a certificate */
        TOKEN_STATE_AWAITING_PIN,      /* a renewal waits for the PIN */
        TOKEN_STATE_RENEWING,          /* a renewal is under way */
        TOKEN_STATE_RENEWED,           /* the last renewal is done, until the next read */
        _TOKEN_STATE_MAX,
} TokenState;

const char *token_state_to_string(TokenState s);

typedef struct TokenObject TokenObject;

typedef struct CertObject {
        TokenObject *token;
        char *path;
        unsigned slot;
        char slot_name[8];
        uint8_t *der;
        size_t der_len;
        X509Info *info;
        bool has_metadata;
        TokenKeyMetadata metadata;
        int64_t days_left; /* at the last evaluation */
        int level;         /* expiry level (expiry.h) at the last evaluation */
        int announced;     /* the last expiry level announced; remembered */
        /* The renewal as the portal last reported it (remembered): "none"
         * and empty before any answer. */
        char *portal_id; /* ISSUER_HASH:SERIAL; NULL when the certificate has no serial or issuer */
        char *renewal_state;
        char *renewal_order;
        char *portal_url;
        char *reject_reason;
        char *renewal_cmp; /* where to send the order's CMP messages; not on the bus */
        bool renewal_rekey;
        unsigned renewal_validity_days;
        uint64_t renewal_checked_usec; /* when the portal said so; 0: never */
        char *announced_order;         /* the last order announced as approved; remembered */
        sd_bus_slot *bus_slot;
        uint32_t dirty; /* properties to announce */
} CertObject;

struct TokenObject {
        Manager *manager;
        sd_bus *bus;
        char *path;
        char *name;   /* the last element of path: unique, [A-Za-z0-9_] */
        char key[64]; /* what the token is known by: its serial, or "cert-" and a fingerprint */
        char driver[16];
        TokenIdentity identity;
        char reader[MAX_READERNAME]; /* where it is, or was last seen */
        bool present;
        bool checking;
        bool failed;
        int pin_retries; /* -1: unknown */
        TokenState state;
        unsigned progress;
        TokenState renewal_phase; /* AWAITING_PIN, RENEWING or RENEWED; IDLE: none */
        const char *renewal_step; /* static: RenewalStep on the bus, "" none */
        const char *mgm_key;      /* static: ManagementKey on the bus, "" not looked at */
        char *last_error;         /* NULL: none */
        uint64_t last_seen_usec;
        CertObject **certs; /* in slot order */
        size_t n_certs;
        sd_bus_slot *bus_slot;
        bool published;
        uint32_t dirty;
        sd_bus_message **waiters; /* Token.Refresh() calls waiting for the read */
        size_t n_waiters;
};

/* A token known by key (its serial, or another unique string) with the
 * identity read from the card or remembered. Not on the bus until
 * token_object_publish(). */
int token_object_new(Manager *m, sd_bus *bus, const char *key, const char *driver, const TokenIdentity *id,
                     TokenObject **ret);
/* Takes t and its certificates off the bus without telling anyone (the
 * daemon is stopping) and frees it. Waiting Refresh() calls are dropped. */
TokenObject *token_object_free(TokenObject *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TokenObject *, token_object_free)

/* Adds a certificate from DER (for remembered tokens). -EBADMSG when it
 * does not parse, -EEXIST when the slot is taken. */
int token_object_add_certificate(TokenObject *t, unsigned slot, const uint8_t *der, size_t der_len,
                                 int announced);

/* The certificate in slot, or NULL. */
CertObject *token_object_find_cert(TokenObject *t, unsigned slot);

/* A certificate's renewal as the portal reports it. Strings may be NULL
 * (shown as ""); state NULL means "none". */
typedef struct CertRenewal {
        const char *state;
        const char *order;
        const char *page;
        const char *reject_reason;
        const char *cmp;
        bool rekey;
        unsigned validity_days;
} CertRenewal;

/* Takes what the portal said about c at checked_usec (or, from the store,
 * what it last said). Returns true when anything shown changed; -ENOMEM
 * leaves c as it was. */
int cert_object_set_renewal(CertObject *c, const CertRenewal *r, uint64_t checked_usec);
/* Remembers order as announced (from the store); NULL: none. */
int cert_object_set_announced_order(CertObject *c, const char *order);

/* The card is in reader and being read. */
void token_object_begin_check(TokenObject *t, const char *reader, uint64_t now_usec);
/* Takes what a finished read found: identity, certificates (a slot whose
 * certificate changed gets a new object), their keys' metadata, PIN tries
 * left. */
void token_object_apply_read(TokenObject *t, const TokenRead *r);
/* The read failed; message says why, for LastError. */
void token_object_read_failed(TokenObject *t, const char *message);
/* The card was pulled out. */
void token_object_set_absent(TokenObject *t, uint64_t now_usec);

/* A renewal's phase (TOKEN_STATE_AWAITING_PIN, _RENEWING, _RENEWED, or
 * _IDLE when it is over and shows no more), its step (a static string) and
 * progress; message, when not NULL, becomes LastError ("" clears it). */
void token_object_set_renewal(TokenObject *t, TokenState phase, const char *step, unsigned percent,
                              const char *message);
/* What the management key turned out to be (static: "pin-protected", ...). */
void token_object_set_mgm_key(TokenObject *t, const char *kind);
/* The certificate whose object is at path, or NULL. */
CertObject *token_object_find_cert_by_path(TokenObject *t, const char *path);

/* Works out DaysLeft and Status of every certificate at now, and the
 * token's State. */
void token_object_evaluate(TokenObject *t, const unsigned *warn_days, size_t n_warn, time_t now);
/* The earliest time after now at which an evaluation could change
 * anything, or 0 when nothing will (no certificates). */
time_t token_object_next_change(const TokenObject *t, time_t now);

/* Puts t and its certificates on the bus (InterfacesAdded). */
int token_object_publish(TokenObject *t);
/* Sends what changed since the last flush: new certificates
 * (InterfacesAdded), PropertiesChanged, ExpiryWarning for each
 * certificate that reached an expiry level not announced before (see
 * expiry.h), unless the token is being read, and RenewalAvailable for each
 * approved order not announced before, when renewal_news (held back while
 * it is not known yet whether the key is plugged in). Returns true when an
 * announcement was made (what is remembered changed). Nothing before
 * token_object_publish(). */
bool token_object_flush(TokenObject *t, bool renewal_news);

/* Answers the waiting Token.Refresh() calls: with success, or with error
 * (a D-Bus error name) and message. */
void token_object_reply_waiters(TokenObject *t, const char *error, const char *message);
