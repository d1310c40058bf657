/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the renewal journal's reader, daemon/renewal-journal.h,
 * over arbitrary file contents in a private temporary directory.
 *
 * Input: one mode byte, then
 *   mode 0: a whole journal file, for renewal_journal_load() (the
 *     checksum stops nearly everything here: seeds are valid files);
 *   mode 1: the journal's JSON object only: the target writes the header
 *     with its SHA-256 itself, so that the strict parse and the checks
 *     behind the checksum are what is fuzzed;
 *   mode 2: a history.jsonl, for renewal_history_read().
 * A journal that loads must survive what the daemon does next with it:
 * listed by renewal_journal_list(), ended (CANCELLED, when not final yet)
 * and written again, which must load again as the same renewal, and its
 * history line appended and read back. Seeds are journals and history
 * lines of renewals against the reference portal. */

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "macro.h"
#include "renewal-journal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                        \
        do {                                                                                            \
                if (!(x)) {                                                                             \
                        fprintf(stderr, "fuzz-renewal-journal: %s:%d: %s failed\n", __FILE__, __LINE__, \
                                #x);                                                                    \
                        abort();                                                                        \
                }                                                                                       \
        } while (0)

#define ORDER "R2026-000001"
#define MAGIC "keyrenew-renewal-journal"

static int dir_fd = -1;
static char dir_path[64];
static char *journal_name; /* renewal-<hex of ORDER>.journal */

static void remove_dir(void) {
        (void) unlinkat(dir_fd, journal_name, 0);
        (void) unlinkat(dir_fd, "history.jsonl", 0);
        (void) rmdir(dir_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        _cleanup_free_ char *hex = NULL;
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

        /* Every journal write is fsync()ed: tmpfs makes that free. */
        (void) snprintf(dir_path, sizeof dir_path, "%s/fuzz-renewal-journal.XXXXXX", base);
        if (!mkdtemp(dir_path))
                abort();
        dir_fd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        hex = hex_encode(ORDER, strlen(ORDER));
        if (dir_fd < 0 || !hex || asprintf(&journal_name, "renewal-%s.journal", hex) < 0 ||
            atexit(remove_dir) != 0)
                abort();
        return 0;
}

static void put_file(const char *name, const void *a, size_t a_len, const void *b, size_t b_len) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || (a_len > 0 && write(fd, a, a_len) != (ssize_t) a_len) ||
            (b_len > 0 && write(fd, b, b_len) != (ssize_t) b_len))
                abort();
}

/* The header the journal's writer puts before its JSON: the SHA-256 of
 * the JSON (the line break after it excluded), in upper-case hex as
 * hex_format() writes it. */
static void put_json(const uint8_t *json, size_t len) {
        _cleanup_free_ char *header = NULL, *body = NULL;
        unsigned char md[32];
        unsigned md_len = 0;
        char hex[65];

        if (!EVP_Digest(json, len, md, &md_len, EVP_sha256(), NULL) ||
            hex_format(md, md_len, 0, hex, sizeof hex) < 0 || asprintf(&header, MAGIC " 1 %s\n", hex) < 0 ||
            !(body = malloc(len + 1)))
                abort();
        if (len > 0)
                memcpy(body, json, len);
        body[len] = '\n';
        put_file(journal_name, header, strlen(header), body, len + 1);
}

static bool same_renewal(const RenewalJournal *a, const RenewalJournal *b) {
        return strcmp(a->order_id, b->order_id) == 0 && strcmp(a->token_serial, b->token_serial) == 0 &&
               strcmp(a->old_cert_id, b->old_cert_id) == 0 && strcmp(a->cmp_url, b->cmp_url) == 0 &&
               a->slot == b->slot && a->new_slot == b->new_slot && a->rekey == b->rekey &&
               a->uid == b->uid && a->old_cert_len == b->old_cert_len &&
               memcmp(a->old_cert, b->old_cert, a->old_cert_len) == 0 &&
               a->new_cert_len == b->new_cert_len &&
               (a->new_cert_len == 0 || memcmp(a->new_cert, b->new_cert, a->new_cert_len) == 0);
}

static void history(void) {
        json_t *h = NULL;
        size_t bad = 0;

        CHECK(renewal_history_read(dir_fd, &h, &bad) == 0 && json_is_array(h));
        json_decref(h);
}

/* What the daemon does with a journal it found. */
static void follow_up(RenewalJournal *j) {
        _cleanup_(renewal_journal_freep) RenewalJournal *again = NULL;
        RenewalJournal **list = NULL;
        char **bad = NULL;
        size_t n = 0;

        CHECK(renewal_journal_list(dir_fd, true, &list, &n, &bad) == 0);
        CHECK(n == 1 && bad && !bad[0] && strcmp(list[0]->order_id, ORDER) == 0);
        renewal_journal_list_free(list, n);
        free(bad);

        if (!renewal_step_is_final(j->step)) {
                CHECK(renewal_journal_end(dir_fd, j, RENEWAL_CANCELLED, "fuzz", j->updated) == 0);
                CHECK(renewal_journal_load(dir_fd, ORDER, &again) == 0);
                CHECK(again->step == RENEWAL_CANCELLED && again->seq == j->seq && same_renewal(j, again));
        }
        (void) unlinkat(dir_fd, "history.jsonl", 0);
        CHECK(renewal_history_append(dir_fd, j, j->updated) == 0);
        /* A second append of the same journal adds nothing. */
        CHECK(renewal_history_append(dir_fd, j, j->updated) == 0);
        history();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(renewal_journal_freep) RenewalJournal *j = NULL;
        int r;

        if (size < 1)
                return 0;
        switch (data[0]) {
        case 0:
        case 1:
                if (data[0] == 0)
                        put_file(journal_name, data + 1, size - 1, NULL, 0);
                else
                        put_json(data + 1, size - 1);
                r = renewal_journal_load(dir_fd, ORDER, &j);
                CHECK(r == 0 || r == -EBADMSG);
                if (r == 0)
                        follow_up(j);
                (void) unlinkat(dir_fd, journal_name, 0);
                break;
        case 2:
                put_file("history.jsonl", data + 1, size - 1, NULL, 0);
                history();
                (void) unlinkat(dir_fd, "history.jsonl", 0);
                break;
        }
        return 0;
}
