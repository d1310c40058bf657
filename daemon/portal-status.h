/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Part 1 of docs/portal-protocol.md, "Renewal status", without any I/O:
 * naming certificates (ISSUER_HASH:SERIAL), building the request URLs, and
 * checking and parsing the portal's JSON answer. */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "x509-info.h"

/* 64 hex digits, ':', up to 40 hex digits of serial (RFC 5280's 20 octets)
 * with an optional '-': the longest accepted identifier, NUL excluded. 64
 * of them with "cert=" and '&' still fit the 8192 bytes a portal must
 * accept, with room for the base URL. */
#define PORTAL_CERT_ID_MAX (64 + 1 + 1 + 40)
#define PORTAL_BATCH_MAX 64
#define PORTAL_URL_MAX 8192
/* Limits on the answer's strings (bytes unless said otherwise). */
#define PORTAL_ORDER_ID_MAX 64
#define PORTAL_STATE_NAME_MAX 64
#define PORTAL_ANSWER_URL_MAX 2048
#define PORTAL_REJECT_REASON_MAX_CHARS 1024
#define PORTAL_TIMESTAMP_MAX 64
#define PORTAL_VALIDITY_DAYS_MAX 36525

/* "ISSUER_HASH:SERIAL" of a certificate x509-info parsed (its issuer_hash
 * is the protocol's; its serial keeps DER's leading zero digits, dropped
 * here). Returns 0 and a malloc()ed string, -EINVAL when info has no
 * serial or issuer hash, -ENOMEM. */
int portal_cert_id_from_info(const X509Info *info, char **ret);

/* Whether s is an identifier as the protocol writes them (lower-case hex,
 * no leading zeros in the serial) within PORTAL_CERT_ID_MAX. */
bool portal_cert_id_is_valid(const char *s);

/* Whether url may be a portal base URL: https (or, when allow_http_loopback,
 * http to 127.0.0.1, ::1 or localhost), with a host, without user
 * information, query or fragment, at most 512 bytes. */
bool portal_base_url_is_valid(const char *url, bool allow_http_loopback);

/* One request: at most PORTAL_BATCH_MAX certificates, sorted, distinct. */
typedef struct PortalBatch {
        char *url;
        char **certs;
        size_t n_certs;
} PortalBatch;

/* Sorts (byte order) and de-duplicates certs and splits them into as few
 * batches as possible, filled in order. base_url is used as given, less one
 * trailing '/'. Returns 0 (with *ret NULL and *ret_n 0 for no
 * certificates), -EINVAL for an identifier that is not valid (see above),
 * -ENOMEM. */
int portal_batches_build(const char *base_url, char *const *certs, size_t n_certs, PortalBatch **ret,
                         size_t *ret_n);
void portal_batches_free(PortalBatch *b, size_t n);

typedef enum PortalOrderState {
        PORTAL_ORDER_AWAITING_PAYMENT,
        PORTAL_ORDER_UNDER_REVIEW,
        PORTAL_ORDER_APPROVED,
        PORTAL_ORDER_REJECTED,
        PORTAL_ORDER_ISSUED,
        PORTAL_ORDER_INSTALLED,
        PORTAL_ORDER_UNKNOWN, /* a state this client does not know: nothing to do, shown as is */
        _PORTAL_ORDER_STATE_MAX,
} PortalOrderState;

/* The protocol's name of a known state; "unknown" for PORTAL_ORDER_UNKNOWN. */
const char *portal_order_state_to_string(PortalOrderState s);

typedef struct PortalOrder {
        char *id;
        PortalOrderState state;
        char *state_name; /* as the portal wrote it */
        bool rekey;
        unsigned validity_days;
        char *page;
        char *cmp;           /* NULL when not given; always given for approved and issued */
        char *reject_reason; /* NULL when not given; always given for rejected */
        bool has_not_after;  /* always for issued and installed */
        time_t not_after;
        time_t updated;
} PortalOrder;

typedef struct PortalCertStatus {
        char *cert;
        bool known;
        PortalOrder *order; /* NULL: no order */
} PortalCertStatus;

typedef struct PortalStatus {
        unsigned poll_interval_sec; /* clamped to the protocol's range */
        PortalCertStatus *certs;    /* one per certificate asked, in the order asked */
        size_t n_certs;
} PortalStatus;

/* Checks and parses an answer to a request for asked (sorted and distinct,
 * as in a PortalBatch). Returns 0 and the answer, or -EBADMSG for a body
 * that breaks the protocol (not a JSON object, a duplicate key, a missing
 * or mistyped field, a string too long, a URL that is not https, a
 * certificate not asked or asked and not answered),
 * -EPROTONOSUPPORT for another version, -ENOMEM. On failure *ret_message,
 * when ret_message is not NULL, is a malloc()ed sentence for the log naming
 * the offending field (it may be NULL after -ENOMEM). */
int portal_status_parse(const char *body, size_t len, char *const *asked, size_t n_asked, PortalStatus **ret,
                        char **ret_message);
PortalStatus *portal_status_free(PortalStatus *s);

/* A 400 answer's body, {"error": "...", "message": "..."}, as one line for
 * the log ("bad-cert: ..."), control characters dropped, at most 512
 * bytes. Returns 0, -EBADMSG when the body is not such an object, -ENOMEM. */
int portal_error_body_describe(const char *body, size_t len, char **ret);

/* An RFC 3339 date-time ("2026-11-27T08:00:00Z", fraction and numeric
 * offset allowed) as seconds since the epoch; -EINVAL otherwise. */
int portal_parse_timestamp(const char *s, time_t *ret);

/* A Retry-After value, delay-seconds or an HTTP-date, as seconds to wait
 * from wall_now (0 for a date in the past); -EINVAL otherwise. */
int portal_parse_retry_after(const char *value, time_t wall_now, unsigned long long *ret_sec);
