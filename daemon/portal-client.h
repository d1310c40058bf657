/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's renewal status client (docs/portal-protocol.md part 1): on
 * the schedule of portal-schedule.h, one batched GET per poll for every
 * certificate the daemon knows (split by 64), over curl-loop.h, parsed by
 * portal-status.h, each poll's outcome handed to a callback.
 *
 * TLS: the peer and host name are always verified, against the configured
 * CA bundle or else libcurl's default (the system's). Only https is spoken;
 * a build configured with -Dportal_insecure_http_for_tests=true also allows
 * http to 127.0.0.1, ::1 and localhost. Redirects are not followed: the
 * base URL is configured, and a portal that moved is a failure the log
 * names. Each transfer has a connect and a total time-out, and a body over
 * 1 MiB is abandoned as soon as it is seen. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "curl-loop.h"
#include "portal-schedule.h"
#include "portal-status.h"

#define PORTAL_BODY_MAX (1024 * 1024)
#define PORTAL_CONNECT_TIMEOUT_MS_DEFAULT 10000u
#define PORTAL_TIMEOUT_MS_DEFAULT 30000u
#define PORTAL_ETAG_MAX 256

typedef struct PortalClient PortalClient;

/* A poll's outcome, valid during the callback only. */
typedef struct PortalPollResult {
        /* 0 when every request of the poll was answered, else the first
         * failure: a curl_loop_errno() code, -EBADMSG (bad answer or 4xx),
         * -EPROTONOSUPPORT, -EFBIG (body over 1 MiB), -EAGAIN (429 or 503),
         * -EIO (another HTTP status). */
        int error;
        const char *error_message; /* for the log; NULL when error is 0 */
        long http_status;          /* of the first failed request, else of the first (0: no answer) */
        bool not_modified;         /* every request was answered 304 */
        /* The status of each certificate whose request was answered (200,
         * or 304 with the answer kept from before), sorted by cert. */
        const PortalCertStatus *const *certs;
        size_t n_certs;
} PortalPollResult;

typedef void (*PortalClientResultFn)(PortalClient *c, const PortalPollResult *result, void *userdata);
typedef void (*PortalClientCloseFn)(void *userdata);

typedef struct PortalClientOptions {
        const char *base_url;        /* required, see portal_base_url_is_valid() */
        const char *ca_bundle;       /* [Portal] CABundle; NULL: libcurl's default (the system's) */
        unsigned poll_interval_sec;  /* [Portal] PollIntervalSec: before any answer; 0: 6 h */
        unsigned connect_timeout_ms; /* 0: 10 s */
        unsigned timeout_ms;         /* 0: 30 s */
        /* The jitter's random source; NULL: getrandom(). */
        uint32_t (*random_u32)(void *userdata);
        void *random_userdata;
        PortalClientResultFn on_result;
        void *userdata;
} PortalClientOptions;

/* Whether this build lets the base URL be http to the loopback (tests). */
bool portal_client_allows_http_loopback(void);

/* Returns 0, -EINVAL for a base URL this build does not accept or no
 * on_result, -ENOMEM. Nothing runs before start. curl must outlive the
 * client: close the client first (its close callback is the moment to
 * close the CurlLoop). */
int portal_client_init(uv_loop_t *loop, CurlLoop *curl, const PortalClientOptions *options,
                       PortalClient **ret);

/* The certificates to ask about ("ISSUER_HASH:SERIAL", any order,
 * duplicates fine), replacing the previous set from the next poll on.
 * Returns 0, -EINVAL for an identifier that is not valid, -ENOMEM. */
int portal_client_set_certs(PortalClient *c, char *const *certs, size_t n_certs);

/* Polls at once, then on schedule (a fresh schedule, as at daemon start).
 * Answers cached for ETags are kept across stop and start. */
int portal_client_start(PortalClient *c);
/* Stops polling; a poll under way is abandoned without a callback. */
void portal_client_stop(PortalClient *c);

/* A key holding certs was inserted: ask about them again even if the
 * portal said they are not its own, and poll now, or once a Retry-After
 * allows, or a minute after the last poll an ask-now moved earlier. */
int portal_client_key_inserted(PortalClient *c, char *const *certs, size_t n_certs);
/* The user asked for a refresh: poll now, as limited above. */
void portal_client_refresh(PortalClient *c);

/* When the next poll is due, in milliseconds of uv_now(); 0 while a poll
 * is under way or the client is stopped. */
uint64_t portal_client_next_poll_ms(const PortalClient *c);

/* Stops and frees the client once its timer has closed, then calls
 * close_cb (if any). The CurlLoop stays the caller's. */
void portal_client_close(PortalClient *c, PortalClientCloseFn close_cb, void *userdata);
