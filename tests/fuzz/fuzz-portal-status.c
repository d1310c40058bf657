/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the portal's renewal status answers,
 * daemon/portal-status.h, without any I/O.
 *
 * Input: one mode byte, then the text.
 *   mode 0: the first line lists the certificates asked about (identifiers
 *     separated by spaces; portal_batches_build() checks, sorts and
 *     de-duplicates them, as the client does before asking), the rest is
 *     the answer's body for portal_status_parse();
 *   mode 1: a 400 answer's body for portal_error_body_describe();
 *   mode 2: an RFC 3339 timestamp for portal_parse_timestamp();
 *   mode 3: a Retry-After header value for portal_parse_retry_after();
 *   mode 4: a base URL for portal_base_url_is_valid() (both ways).
 * Results are checked against portal-status.h's promises: an answer that
 * parses has one entry per certificate asked, in order, and every field
 * its order's state requires; a refusal comes with a message. Seeds are
 * answers of the reference portal (tests/portal). */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "portal-schedule.h"
#include "portal-status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                           \
        do {                                                                                               \
                if (!(x)) {                                                                                \
                        fprintf(stderr, "fuzz-portal-status: %s:%d: %s failed\n", __FILE__, __LINE__, #x); \
                        abort();                                                                           \
                }                                                                                          \
        } while (0)

/* The certificates of the first line, as a batch (NULL when none or
 * invalid: then nothing is asked). */
static PortalBatch *asked_batch(char *line, size_t *ret_n) {
        char *certs[PORTAL_BATCH_MAX], *save = NULL;
        PortalBatch *b = NULL;
        size_t n = 0;
        int r;

        for (char *w = strtok_r(line, " ", &save); w && n < PORTAL_BATCH_MAX; w = strtok_r(NULL, " ", &save))
                certs[n++] = w;
        r = portal_batches_build("https://portal.example/keyrenew/", certs, n, &b, ret_n);
        CHECK(r == 0 || r == -EINVAL);
        if (r < 0)
                return NULL;
        CHECK(*ret_n == (n > 0));
        if (b) {
                CHECK(strncmp(b->url, "https://portal.example/keyrenew/renewals?cert=", 46) == 0);
                for (size_t i = 1; i < b->n_certs; i++)
                        CHECK(strcmp(b->certs[i - 1], b->certs[i]) < 0);
        }
        return b;
}

static void check_order(const PortalOrder *o) {
        CHECK(o->id && o->state_name && o->page && strncmp(o->page, "https://", 8) == 0);
        CHECK(o->state >= 0 && o->state < _PORTAL_ORDER_STATE_MAX && portal_order_state_to_string(o->state));
        CHECK(o->validity_days >= 1 && o->validity_days <= PORTAL_VALIDITY_DAYS_MAX);
        if (o->state == PORTAL_ORDER_APPROVED || o->state == PORTAL_ORDER_ISSUED)
                CHECK(o->cmp && strncmp(o->cmp, "https://", 8) == 0);
        if (o->state == PORTAL_ORDER_REJECTED)
                CHECK(o->reject_reason);
        if (o->state == PORTAL_ORDER_ISSUED || o->state == PORTAL_ORDER_INSTALLED)
                CHECK(o->has_not_after);
}

static void status(char *text, size_t len) {
        char *nl = memchr(text, '\n', len), *body = nl ? nl + 1 : text + len;
        _cleanup_free_ char *message = NULL;
        PortalStatus *st = NULL;
        PortalBatch *b;
        size_t n_batches = 0;
        int r;

        if (nl)
                *nl = '\0';
        b = asked_batch(nl ? text : (char[]){ "" }, &n_batches);
        r = portal_status_parse(body, len - (size_t) (body - text), b ? b->certs : NULL, b ? b->n_certs : 0,
                                &st, &message);
        CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
        if (r < 0)
                CHECK(message);
        else {
                CHECK(st->n_certs == (b ? b->n_certs : 0));
                CHECK(st->poll_interval_sec >= PORTAL_POLL_INTERVAL_MIN_SEC &&
                      st->poll_interval_sec <= PORTAL_POLL_INTERVAL_MAX_SEC);
                for (size_t i = 0; i < st->n_certs; i++) {
                        CHECK(st->certs[i].cert && strcmp(st->certs[i].cert, b->certs[i]) == 0);
                        if (st->certs[i].order)
                                check_order(st->certs[i].order);
                }
        }
        portal_status_free(st);
        portal_batches_free(b, n_batches);
}

static void error_body(const char *text, size_t len) {
        _cleanup_free_ char *line = NULL;
        int r;

        r = portal_error_body_describe(text, len, &line);
        CHECK(r == 0 || r == -EBADMSG);
        if (r == 0) {
                CHECK(strlen(line) <= 512);
                for (const char *c = line; *c; c++)
                        CHECK(*c >= 0x20 && *c <= 0x7e);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned long long sec;
        char *text;
        time_t t = 0;

        if (size < 1)
                return 0;
        /* The parsers take C strings (or a length): a NUL-terminated copy
         * with ASan's bounds right after it. */
        text = malloc(size);
        if (!text)
                abort();
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        switch (data[0]) {
        case 0:
                status(text, size - 1);
                break;
        case 1:
                error_body(text, size - 1);
                break;
        case 2:
                CHECK(portal_parse_timestamp(text, &t) == 0 || t == 0);
                break;
        case 3:
                (void) portal_parse_retry_after(text, 1764230400, &sec);
                break;
        case 4:
                CHECK(!portal_base_url_is_valid(text, false) || portal_base_url_is_valid(text, true));
                break;
        }
        free(text);
        return 0;
}
