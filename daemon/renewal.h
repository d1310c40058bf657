/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* One renewal of one certificate on one card, start to finish or resumed
 * from its journal: the transaction of docs/architecture.md ("The
 * renewal"). Blocking; it runs on the token's worker thread, which owns
 * the Token, and reports each step through a callback.
 *
 *   pin            VERIFY (never retried: a wrong PIN ends the run)
 *   started        journal written (order, slots, old certificate)
 *   key-generated  the new key made on the card (re-key: in a free retired
 *                  slot, the old key still in place), its public key journaled
 *   requesting     CMP kur protected by the old key, POPO by the new
 *   issued         the certificate journaled before it touches the card
 *   written        on the card (re-key: in the new key's slot)
 *   verified       read back, a test signature checked against it
 *   confirmed      certConf accepted by the portal (which revokes the old one)
 *   done           re-key: the new key and certificate moved into the
 *                  original slot (MOVE KEY, YubiKey 5.7); history written
 *
 * Each step is journaled before the next one acts on it. Whatever stops a
 * run (the key pulled out, the daemon killed, the portal unreachable) leaves
 * the journal at the last step that is surely done, and the next run for
 * the same order goes on from there without a second key or certificate.
 * The old certificate is revoked only once the new one is confirmed; until
 * then the card always has a key that matches the certificate in its
 * slot. */

#include <openssl/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "renewal-journal.h"
#include "token.h"

typedef enum RenewalError {
        RENEWAL_OK,
        RENEWAL_ERROR_CANCELLED, /* by the user, before anything was issued */
        RENEWAL_ERROR_WRONG_PIN, /* tries_left says how many are left */
        RENEWAL_ERROR_PIN_BLOCKED,
        RENEWAL_ERROR_MANAGEMENT_KEY, /* the card's management key is not known */
        RENEWAL_ERROR_NOT_SUPPORTED,  /* the card cannot do what the order needs */
        RENEWAL_ERROR_INTERRUPTED,    /* stopped at a step boundary; resumable */
        RENEWAL_ERROR_NO_RENEWAL, /* the portal has no order to renew, or the card not that certificate */
        RENEWAL_ERROR_PORTAL,     /* the portal refused or failed; resumable unless the journal ended */
        RENEWAL_ERROR_NOT_CONFIGURED, /* no CMP trust anchors */
        RENEWAL_ERROR_CARD,           /* the card failed in another way */
        _RENEWAL_ERROR_MAX,
} RenewalError;

/* The D-Bus error name (org.keyrenew.KeyRenew1.Error.*) of each. */
const char *renewal_error_to_bus_error(RenewalError e);

/* Why another thread wants a run to stop at its next step boundary. */
typedef enum RenewalStop {
        RENEWAL_STOP_NONE,
        RENEWAL_STOP_CANCEL,   /* the user cancelled: ends the renewal unless issued */
        RENEWAL_STOP_SHUTDOWN, /* the daemon stops: the renewal stays resumable */
} RenewalStop;

typedef void (*renewal_progress_fn)(const char *step, unsigned percent, void *userdata);

typedef struct RenewalParams {
        int dir_fd; /* the state directory, where the journal and history live */
        /* A new renewal: the order and the certificate as the portal and
         * the card reported them. A resume takes them from the journal
         * (order_id must match). */
        const char *order_id;
        const char *token_serial;
        unsigned slot;
        const uint8_t *old_cert; /* DER */
        size_t old_cert_len;
        bool rekey;
        const char *cmp_url;
        int64_t uid;             /* who asked, -1 unknown: a resume asks this user's agent */
        const char *ca_bundle;   /* TLS; NULL: the system's */
        const char *cmp_trusted; /* PEM of the CMP signer's CAs; NULL: not configured */
        const char *mgm_key_dir; /* admins' management keys, one file per token serial; NULL: none */
        const char *pin;         /* secmem memory, NUL-terminated; the caller frees it */
        OSSL_LIB_CTX *libctx;    /* where card_provider_load() put the card provider */
        atomic_int *stop;        /* a RenewalStop, set by another thread */
        renewal_progress_fn progress;
        void *userdata;
} RenewalParams;

typedef struct RenewalOutcome {
        RenewalError error;
        int errno_value;       /* the negative errno behind error, 0 for RENEWAL_OK */
        RenewalStep step;      /* the journal's step at the end; _RENEWAL_STEP_MAX: no journal */
        bool resumed;          /* a journal of an earlier run was there */
        bool rekeyed;          /* a new key replaced the old one */
        int tries_left;        /* WRONG_PIN: the PIN tries left; -1 otherwise */
        const char *mgm_key;   /* static: "pin-protected", "configured", "default", "unknown" or "" */
        char new_serial[64];   /* hex, "" before issuance */
        int64_t new_not_after; /* Unix seconds, 0 before issuance */
        char message[1024];    /* for the user, translated: what happened and what to do next */
} RenewalOutcome;

/* Runs (or resumes) the renewal of params->order_id with the card behind
 * t. Returns 0 when the outcome is in *ret (always, unless -ENOMEM or
 * -EINVAL for missing parameters). The journal is removed and a history
 * line written when the renewal ends (done, failed or cancelled). */
int renewal_run(Token *t, const RenewalParams *params, RenewalOutcome *ret);
