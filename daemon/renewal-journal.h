/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The durable record of one renewal: one file per order in the state
 * directory, rewritten at every step (temporary file, fsync, rename over
 * the old one, fsync of the directory) BEFORE the caller acts on the step,
 * so that after a crash, a pulled key or a reboot the next start resumes
 * from the last step that is surely on disk.
 *
 * File "renewal-<hex of the order id>.journal", mode 0600:
 *
 *   keyrenew-renewal-journal 1 <sha256 of the rest, 64 hex digits>\n
 *   <one JSON object>\n
 *
 * A torn or altered file fails the checksum or the strict parse and is
 * reported as -EBADMSG, never read as some other step. It holds no secret:
 * public keys, certificates and identifiers only.
 *
 * The history (history.jsonl, 0600) gets one JSON line per finished
 * renewal, appended with a single write() and fsync()ed.
 *
 * Not thread-safe per journal: one RenewalJournal belongs to one thread
 * (the token's worker). Different orders may be written concurrently. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

/* In order. FAILED and CANCELLED end a renewal from any step before DONE. */
typedef enum RenewalStep {
        RENEWAL_STARTED,       /* order, token, slot, old certificate, rekey */
        RENEWAL_KEY_GENERATED, /* the new public key: a retry must reuse it */
        RENEWAL_ISSUED,        /* the new certificate, before it goes on the card */
        RENEWAL_WRITTEN,       /* the certificate is on the card */
        RENEWAL_VERIFIED,      /* read back, test signature verified */
        RENEWAL_CONFIRMED,     /* certConf accepted, pkiConf received */
        RENEWAL_DONE,
        RENEWAL_FAILED,
        RENEWAL_CANCELLED,
        _RENEWAL_STEP_MAX,
} RenewalStep;

#define RENEWAL_ORDER_ID_MAX 64
#define RENEWAL_FILE_MAX (256 * 1024)

typedef struct RenewalJournal {
        RenewalStep step;
        /* For FAILED/CANCELLED: the last step reached before; else == step. */
        RenewalStep reached;
        uint64_t seq; /* writes so far, 1 after start */
        char *order_id;
        char *token_serial;
        uint8_t slot;      /* PIV key reference, e.g. 0x9a */
        uint8_t new_slot;  /* where the new key is made: slot, or a free retired slot to move from */
        char *old_cert_id; /* ISSUER_HASH:SERIAL */
        /* DER: a resume signs the request as its holder, even once the card has the new one. */
        uint8_t *old_cert;
        size_t old_cert_len;
        bool rekey;
        char *cmp_url;           /* the order's CMP URL, for a resume while the portal is not asked */
        int64_t uid;             /* who started it, whose PIN agent a resume asks; -1 unknown */
        uint8_t *new_public_key; /* DER SubjectPublicKeyInfo, from KEY_GENERATED */
        size_t new_public_key_len;
        uint8_t *new_cert; /* DER, from ISSUED */
        size_t new_cert_len;
        char *reason;    /* FAILED/CANCELLED only */
        int64_t created; /* Unix seconds */
        int64_t updated;
} RenewalJournal;

const char *renewal_step_to_string(RenewalStep s);
/* -EINVAL for an unknown name. */
int renewal_step_from_string(const char *s, RenewalStep *ret);
bool renewal_step_is_final(RenewalStep s);

RenewalJournal *renewal_journal_free(RenewalJournal *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(RenewalJournal *, renewal_journal_free)

typedef struct RenewalJournalStart {
        const char *order_id; /* 1 to 64 printable ASCII characters */
        const char *token_serial;
        uint8_t slot;
        uint8_t new_slot;        /* == slot unless the key moves in from another slot */
        const char *old_cert_id; /* ISSUER_HASH:SERIAL */
        const uint8_t *old_cert; /* DER, at most 64 KiB */
        size_t old_cert_len;
        bool rekey;
        const char *cmp_url; /* printable, at most 2048 bytes */
        int64_t uid;         /* -1: unknown */
} RenewalJournalStart;

/* Creates and writes the STARTED journal of a new renewal. Returns 0,
 * -EEXIST when a journal for that order exists (load it instead), -EINVAL,
 * -ENOMEM or the errno of the file system. */
int renewal_journal_start(int dir_fd, const RenewalJournalStart *start, time_t now, RenewalJournal **ret);

/* STARTED -> KEY_GENERATED with the new (for rekey false: the current) key's
 * DER SubjectPublicKeyInfo. On failure j is unchanged. */
int renewal_journal_key_generated(int dir_fd, RenewalJournal *j, const void *spki, size_t len, time_t now);

/* KEY_GENERATED -> ISSUED with the DER certificate, which must parse and
 * certify exactly the recorded public key (-EKEYREJECTED otherwise). */
int renewal_journal_issued(int dir_fd, RenewalJournal *j, const void *cert, size_t len, time_t now);

/* ISSUED -> WRITTEN -> VERIFIED -> CONFIRMED -> DONE, one step at a time.
 * Returns -EINVAL for anything but the next step. */
int renewal_journal_advance(int dir_fd, RenewalJournal *j, RenewalStep step, time_t now);

/* Any step before DONE -> FAILED or CANCELLED, with a reason for the user
 * (and the log). -EINVAL after DONE/FAILED/CANCELLED. */
int renewal_journal_end(int dir_fd, RenewalJournal *j, RenewalStep step, const char *reason, time_t now);

/* Reads the journal of one order. -ENOENT when there is none, -EBADMSG
 * when the file is torn, altered or inconsistent. */
int renewal_journal_load(int dir_fd, const char *order_id, RenewalJournal **ret);

/* Removes a finished journal's file once its history line is written.
 * -EBUSY for a journal that is not DONE/FAILED/CANCELLED. */
int renewal_journal_remove(int dir_fd, const RenewalJournal *j);

/* The journals in the directory, sorted by order id: the unfinished ones
 * (to resume at start or when their key is inserted) and, with
 * include_final, the finished ones too. A finished journal still on disk at
 * start means the daemon stopped between its last step and its removal:
 * renewal_history_append() it (a repeat is harmless) and remove it. Files
 * that cannot be read are not skipped silently: their names go to *ret_bad
 * (NULL-terminated, may be empty) so that the caller reports them. Leftover
 * temporary files of an interrupted write are ignored (their rename never
 * happened). */
int renewal_journal_list(int dir_fd, bool include_final, RenewalJournal ***ret, size_t *ret_n,
                         char ***ret_bad);
void renewal_journal_list_free(RenewalJournal **list, size_t n);

/* Appends the outcome of a DONE, FAILED or CANCELLED journal to
 * history.jsonl: {"order","token","slot","old_cert","old_serial",
 * "new_serial","not_after","time","outcome","reason","journal_seq"}; does
 * nothing when that journal's line (same order and seq) is there already.
 * -EBUSY when j is not final. */
int renewal_history_append(int dir_fd, const RenewalJournal *j, time_t now);

/* The history as a JSON array of those objects, oldest first. A line that
 * is not a complete JSON object (a torn last append) is left out and
 * counted in *ret_bad. -ENOENT-free: no file is an empty array. */
int renewal_history_read(int dir_fd, json_t **ret, size_t *ret_bad);
