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

/* The token's State on the bus. Renewal brings its own states
 * (renewal-available, awaiting-pin, renewing, renewed) with it. */
typedef enum TokenState {
        TOKEN_STATE_IDLE,     /* nothing to do */
        TOKEN_STATE_CHECKING, /* being read */
        TOKEN_STATE_EXPIRING, /* a certificate has crossed a warning threshold */
        TOKEN_STATE_EXPIRED,  /* a certificate has expired */
        TOKEN_STATE_FAILED,   /* the last read failed: LastError says why */
        TOKEN_STATE_LOCKED,   /* the PIN is blocked */
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
        /* The renewal as the portal reports it; "none" and empty until the
         * portal client is wired in. */
        char *renewal_state;
        char *renewal_order;
        char *portal_url;
        char *reject_reason;
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
        char *last_error; /* NULL: none */
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

/* Works out DaysLeft and Status of every certificate at now, and the
 * token's State. */
void token_object_evaluate(TokenObject *t, const unsigned *warn_days, size_t n_warn, time_t now);
/* The earliest time after now at which an evaluation could change
 * anything, or 0 when nothing will (no certificates). */
time_t token_object_next_change(const TokenObject *t, time_t now);

/* Puts t and its certificates on the bus (InterfacesAdded). */
int token_object_publish(TokenObject *t);
/* Sends what changed since the last flush: new certificates
 * (InterfacesAdded), PropertiesChanged, and ExpiryWarning for each
 * certificate that reached an expiry level not announced before (see
 * expiry.h), unless the token is being read. Returns true when an
 * announcement was made (what is remembered changed). Nothing before
 * token_object_publish(). */
bool token_object_flush(TokenObject *t);

/* Answers the waiting Token.Refresh() calls: with success, or with error
 * (a D-Bus error name) and message. */
void token_object_reply_waiters(TokenObject *t, const char *error, const char *message);
