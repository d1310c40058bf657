/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* One thread per card, which does all of that card's I/O so that the loop
 * thread never waits for a card. A read connects to the card (once; the
 * connection is kept until a read fails), opens the token, identifies it,
 * reads every certificate with its key's metadata and the PIN's tries left
 * (without spending one), each step one PC/SC transaction. What it finds is
 * delivered on the loop thread, in order (uv_async):
 *
 *   TOKEN_READ_IDENTIFIED  driver and identity, as soon as they are known
 *   TOKEN_READ_DONE        certificates, metadata and PIN status
 *   TOKEN_READ_FAILED      error and step, instead of whatever was left
 *
 * Reads asked for while one runs are folded into one more read after it. */

#include <PCSC/pcsclite.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "renewal.h"
#include "token.h"

typedef enum TokenReadStage {
        TOKEN_READ_IDENTIFIED,
        TOKEN_READ_DONE,
        TOKEN_READ_FAILED,
} TokenReadStage;

typedef struct TokenSlotRead {
        TokenCertificate cert;
        bool has_metadata; /* the card told about the key (YubiKey 5.3+) */
        TokenKeyMetadata metadata;
} TokenSlotRead;

typedef struct TokenRead {
        TokenReadStage stage;
        int error;          /* FAILED: a negative errno as token.h documents */
        const char *step;   /* FAILED: "connect", "open", "identify", "certificates", "metadata", "pin" */
        const char *driver; /* IDENTIFIED, DONE: static, "piv" */
        TokenIdentity identity;
        TokenSlotRead *slots; /* DONE: in slot order */
        size_t n_slots;
        TokenPinStatus pin; /* DONE */
} TokenRead;

typedef struct TokenWorker TokenWorker;

/* r and what it points to belong to the worker and are gone after the
 * callback returns. The callback may close the worker. */
typedef void (*token_worker_read_cb)(TokenWorker *w, const TokenRead *r, void *userdata);

/* A renewal run by the worker (token_worker_renew()): its steps as they
 * pass, then its outcome. */
typedef struct TokenRenewalEvent {
        const char *step; /* progress: static, renewal.h's step names */
        unsigned percent;
        const RenewalOutcome *outcome; /* NULL for progress; set once, last */
} TokenRenewalEvent;

typedef void (*token_worker_renewal_cb)(TokenWorker *w, const TokenRenewalEvent *e, void *userdata);

/* Starts the thread for the card in reader; it waits for
 * token_worker_read(). Returns 0 or a negative errno; read_cb is never
 * called when this fails. */
int token_worker_new(uv_loop_t *loop, const char *reader, token_worker_read_cb read_cb, void *userdata,
                     TokenWorker **ret);

/* Asks for a read. Never fails: a read already waiting covers this one. */
void token_worker_read(TokenWorker *w);

/* Runs renewal_run() with params on the worker's thread, once the read
 * under way (if any) is over; events come to cb on the loop thread, the
 * outcome last. params and what it points to (the PIN, the cancel flag)
 * must stay valid until the outcome is delivered or the worker is closed.
 * The card is reset when the renewal ends, so that neither the verified
 * PIN nor the management key's authentication outlive it. Returns 0, or
 * -EBUSY while another renewal is queued or running. */
int token_worker_renew(TokenWorker *w, const RenewalParams *params, token_worker_renewal_cb cb,
                       void *userdata);

/* Whether a read is waiting, running, or its results are not all
 * delivered yet. */
bool token_worker_busy(const TokenWorker *w);

const char *token_worker_reader(const TokenWorker *w);

/* Stops the thread and waits for it: it stops after the PC/SC call in
 * progress (one that fails at once when the card has gone), so this is
 * quick. Drops undelivered results, closes the async handle and frees w in
 * its close callback. No read_cb after this. NULL is fine. */
void token_worker_close(TokenWorker *w);
