/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-client.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "macro.h"

#ifndef PORTAL_INSECURE_HTTP_FOR_TESTS
#define PORTAL_INSECURE_HTTP_FOR_TESTS 0
#endif

#define RETRY_AFTER_MAX 64

/* What the last answered poll said for one batch (one request URL). */
typedef struct BatchCache {
        char *url;
        char *etag;           /* NULL: none to send */
        PortalStatus *answer; /* NULL: never answered */
} BatchCache;

typedef enum TransferOutcome {
        OUTCOME_FAILED,
        OUTCOME_ANSWERED,     /* 200, parsed */
        OUTCOME_NOT_MODIFIED, /* 304, the cached answer stands */
        OUTCOME_REFUSED,      /* 400: not retried before the next regular poll */
        OUTCOME_RETRY_AFTER,  /* 429 or 503 with a Retry-After */
} TransferOutcome;

/* One request of a poll. */
typedef struct Transfer {
        CurlLoopRequest req;
        PortalClient *client;
        const PortalBatch *batch;
        BatchCache *cache;
        CURL *easy;
        struct curl_slist *headers;
        char *body;
        size_t body_len, body_cap;
        bool body_too_big;
        char etag[PORTAL_ETAG_MAX + 1];
        char retry_after[RETRY_AFTER_MAX + 1];
        /* The outcome, once finished. */
        bool finished;
        TransferOutcome outcome;
        int error;
        char *message;
        long http_status;
        unsigned long long retry_after_sec;
        PortalStatus *answer;
} Transfer;

struct PortalClient {
        uv_loop_t *loop;
        CurlLoop *curl;
        uv_timer_t timer;
        char *base_url;
        char *ca_bundle;
        bool http;
        unsigned default_interval_sec, connect_timeout_ms, timeout_ms;
        uint32_t (*random_u32)(void *userdata);
        void *random_userdata;
        PortalClientResultFn on_result;
        void *userdata;

        PortalSchedule schedule;
        char **certs; /* what the daemon knows */
        size_t n_certs;
        char **unknown; /* answered "known": false: not asked until inserted again */
        size_t n_unknown;
        BatchCache *cache; /* one per batch of the last poll */
        size_t n_cache;

        /* The poll under way. */
        PortalBatch *batches;
        size_t n_batches;
        Transfer *transfers;
        size_t n_pending;

        bool started, polling, ask_now_pending, closing;
        PortalClientCloseFn close_cb;
        void *close_userdata;
};

bool portal_client_allows_http_loopback(void) {
        return PORTAL_INSECURE_HTTP_FOR_TESTS;
}

static uint32_t random_u32_default(void *userdata) {
        uint32_t v;

        /* Only a jitter: when the pool is not ready, any spread will do. */
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint32_t) uv_hrtime();
        return v;
}

static uint32_t draw(PortalClient *c) {
        return c->random_u32(c->random_userdata);
}

static usec_t now_usec(PortalClient *c) {
        return uv_now(c->loop) * 1000;
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

static bool strv_contains(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

static int strv_copy(char *const *v, size_t n, char ***ret) {
        char **copy = calloc(n > 0 ? n : 1, sizeof(char *));

        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                copy[i] = strdup(v[i]);
                if (!copy[i]) {
                        strv_free(copy, i);
                        return -ENOMEM;
                }
        }
        *ret = copy;
        return 0;
}

static void cache_free(BatchCache *cache, size_t n) {
        for (size_t i = 0; cache && i < n; i++) {
                free(cache[i].url);
                free(cache[i].etag);
                portal_status_free(cache[i].answer);
        }
        free(cache);
}

static void transfer_release(Transfer *t) {
        curl_loop_stop(&t->req);
        if (t->easy)
                curl_easy_cleanup(t->easy);
        t->easy = NULL;
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        free(t->body);
        t->body = NULL;
}

static void transfer_free(Transfer *t) {
        transfer_release(t);
        free(t->message);
        portal_status_free(t->answer);
}

/* Abandons the poll under way, if any, without a callback. */
static void poll_drop(PortalClient *c) {
        for (size_t i = 0; c->transfers && i < c->n_batches; i++)
                transfer_free(&c->transfers[i]);
        free(c->transfers);
        c->transfers = NULL;
        portal_batches_free(c->batches, c->n_batches);
        c->batches = NULL;
        c->n_batches = 0;
        c->n_pending = 0;
        c->polling = false;
}

static void on_timer(uv_timer_t *timer);

static void arm_timer(PortalClient *c) {
        usec_t now = now_usec(c), next = c->schedule.next;
        uint64_t delay_ms = next > now ? (next - now + 999) / 1000 : 0;

        (void) uv_timer_start(&c->timer, on_timer, delay_ms, 0);
}

/* Stores a header's value when the line is "name: value" and the value is
 * printable ASCII that fits; else leaves out empty. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap) {
        size_t name_len = strlen(name);
        const char *v, *end = line + len;

        if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
                return;
        for (v = line + name_len + 1; v < end && (*v == ' ' || *v == '\t'); v++)
                ;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        out[0] = '\0';
        if ((size_t) (end - v) >= cap)
                return;
        for (const char *p = v; p < end; p++)
                if (*p < 0x20 || *p > 0x7e)
                        return;
        memcpy(out, v, (size_t) (end - v));
        out[end - v] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata) {
        Transfer *t = userdata;
        size_t len = size * n;

        /* Each response (a 100 Continue, say) starts afresh. */
        if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                t->etag[0] = '\0';
                t->retry_after[0] = '\0';
                return len;
        }
        header_value(line, len, "ETag", t->etag, sizeof t->etag);
        header_value(line, len, "Retry-After", t->retry_after, sizeof t->retry_after);
        return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        Transfer *t = userdata;
        size_t len = size * n;

        /* Returning less than len aborts the transfer (CURLE_WRITE_ERROR). */
        if (len > PORTAL_BODY_MAX - t->body_len) {
                t->body_too_big = true;
                return 0;
        }
        if (t->body_len + len > t->body_cap) {
                size_t cap = t->body_cap > 0 ? t->body_cap * 2 : 16384;
                char *p;

                while (cap < t->body_len + len)
                        cap *= 2;
                if (cap > PORTAL_BODY_MAX)
                        cap = PORTAL_BODY_MAX;
                p = realloc(t->body, cap);
                if (!p)
                        return 0;
                t->body = p;
                t->body_cap = cap;
        }
        memcpy(t->body + t->body_len, data, len);
        t->body_len += len;
        return len;
}

static int transfer_headers(Transfer *t) {
        _cleanup_free_ char *inm = NULL;
        struct curl_slist *l;

        l = curl_slist_append(NULL, "Accept: application/json");
        if (!l)
                return -ENOMEM;
        t->headers = l;
        if (t->cache->etag) {
                if (asprintf(&inm, "If-None-Match: %s", t->cache->etag) < 0)
                        return -ENOMEM;
                l = curl_slist_append(t->headers, inm);
                if (!l)
                        return -ENOMEM;
                t->headers = l;
        }
        return 0;
}

static int transfer_setup(Transfer *t) {
        PortalClient *c = t->client;
        CURL *e;
        int r;

        t->easy = e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        r = transfer_headers(t);
        if (r < 0)
                return r;
        /* Verification stays at libcurl's default (on); set anyway so that
         * no default elsewhere can turn it off. */
        if (curl_easy_setopt(e, CURLOPT_URL, t->batch->url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->http ? "http" : "https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) c->connect_timeout_ms) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) c->timeout_ms) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) PORTAL_BODY_MAX) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, "keyrenew/" PACKAGE_VERSION) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, t) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, t) != CURLE_OK)
                return -EIO;
        /* A configured bundle replaces the system's trust, CA directory included. */
        if (c->ca_bundle && (curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_bundle) != CURLE_OK ||
                             curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK))
                return -EIO;
        return 0;
}

static int set_message(Transfer *t, int error, const char *format, ...) _printf_(3, 4);
static int set_message(Transfer *t, int error, const char *format, ...) {
        va_list ap;

        free(t->message);
        va_start(ap, format);
        if (vasprintf(&t->message, format, ap) < 0)
                t->message = NULL;
        va_end(ap);
        t->error = error;
        t->outcome = OUTCOME_FAILED;
        return error;
}

static void conclude_failed_transfer(Transfer *t, int error) {
        /* Too big either way: curl refuses a Content-Length over the cap
         * itself, before on_body() sees a byte. */
        if (t->body_too_big || t->req.result == CURLE_FILESIZE_EXCEEDED)
                set_message(t, -EFBIG, "%s: the answer is larger than %d bytes", t->batch->url,
                            PORTAL_BODY_MAX);
        else
                set_message(t, error, "%s: %s", t->batch->url,
                            t->req.message[0] ? t->req.message : curl_easy_strerror(t->req.result));
}

static void conclude_answer(Transfer *t) {
        _cleanup_free_ char *why = NULL;
        int r;

        r = portal_status_parse(t->body ? t->body : "", t->body_len, t->batch->certs, t->batch->n_certs,
                                &t->answer, &why);
        if (r < 0) {
                set_message(t, r, "%s: bad answer: %s", t->batch->url, why ? why : "out of memory");
                return;
        }
        t->outcome = OUTCOME_ANSWERED;
}

static void conclude_busy(Transfer *t) {
        time_t wall = time(NULL);

        set_message(t, -EAGAIN, "%s: HTTP %ld%s%s", t->batch->url, t->http_status,
                    t->retry_after[0] ? ", Retry-After: " : " without Retry-After", t->retry_after);
        if (t->retry_after[0] && portal_parse_retry_after(t->retry_after, wall, &t->retry_after_sec) >= 0)
                t->outcome = OUTCOME_RETRY_AFTER;
}

static void conclude_refused(Transfer *t) {
        _cleanup_free_ char *why = NULL;

        (void) portal_error_body_describe(t->body ? t->body : "", t->body_len, &why);
        set_message(t, -EBADMSG, "%s: the portal refused the query (HTTP 400): %s", t->batch->url,
                    why ? why : "no explanation");
        t->outcome = OUTCOME_REFUSED;
}

static void transfer_conclude(Transfer *t, int error) {
        if (error < 0) {
                conclude_failed_transfer(t, error);
                return;
        }
        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->http_status);
        switch (t->http_status) {
        case 200:
                conclude_answer(t);
                break;
        case 304:
                if (t->cache->answer)
                        t->outcome = OUTCOME_NOT_MODIFIED;
                else
                        set_message(t, -EBADMSG, "%s: 304 Not Modified, but nothing was cached",
                                    t->batch->url);
                break;
        case 400:
                conclude_refused(t);
                break;
        case 429:
        case 503:
                conclude_busy(t);
                break;
        default:
                set_message(t, -EIO, "%s: HTTP status %ld", t->batch->url, t->http_status);
        }
}

static void poll_finish(PortalClient *c);

static void on_transfer_done(CurlLoopRequest *req, int error) {
        Transfer *t = (Transfer *) ((char *) req - offsetof(Transfer, req));
        PortalClient *c = t->client;

        transfer_conclude(t, error);
        transfer_release(t);
        t->finished = true;
        if (--c->n_pending == 0)
                poll_finish(c);
}

static void transfer_start(PortalClient *c, Transfer *t, const PortalBatch *b, BatchCache *cache) {
        int r;

        t->client = c;
        t->batch = b;
        t->cache = cache;
        r = transfer_setup(t);
        if (r >= 0)
                r = curl_loop_start(c->curl, &t->req, t->easy, on_transfer_done);
        if (r < 0) {
                set_message(t, r, "%s: cannot start the request", b->url);
                transfer_release(t);
                t->finished = true;
                return;
        }
        c->n_pending++;
}

/* Keeps the cache of each batch whose URL (so whose set) is unchanged. */
static int cache_rebuild(PortalClient *c) {
        BatchCache *cache = calloc(c->n_batches, sizeof(BatchCache));

        if (!cache)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_batches; i++) {
                for (size_t j = 0; j < c->n_cache; j++)
                        if (c->cache[j].url && strcmp(c->cache[j].url, c->batches[i].url) == 0) {
                                cache[i] = c->cache[j];
                                c->cache[j] = (BatchCache){};
                                break;
                        }
                if (!cache[i].url)
                        cache[i].url = strdup(c->batches[i].url);
                if (!cache[i].url) {
                        cache_free(cache, c->n_batches);
                        return -ENOMEM;
                }
        }
        cache_free(c->cache, c->n_cache);
        c->cache = cache;
        c->n_cache = c->n_batches;
        return 0;
}

static int poll_prepare(PortalClient *c) {
        _cleanup_free_ char **asked = calloc(c->n_certs > 0 ? c->n_certs : 1, sizeof(char *));
        size_t n = 0;
        int r;

        if (!asked)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_certs; i++)
                if (!strv_contains(c->unknown, c->n_unknown, c->certs[i]))
                        asked[n++] = c->certs[i];
        r = portal_batches_build(c->base_url, asked, n, &c->batches, &c->n_batches);
        if (r < 0)
                return r;
        if (c->n_batches == 0)
                return 0;
        r = cache_rebuild(c);
        if (r < 0)
                return r;
        c->transfers = calloc(c->n_batches, sizeof(Transfer));
        return c->transfers ? 0 : -ENOMEM;
}

static void poll_begin(PortalClient *c) {
        int r;

        r = poll_prepare(c);
        if (r < 0) {
                log_error_errno(r, "Cannot prepare the portal status request");
                poll_drop(c);
                portal_schedule_failed(&c->schedule, now_usec(c), draw(c));
                arm_timer(c);
                return;
        }
        if (c->n_batches == 0) {
                /* Nothing to ask about: look again after an interval. */
                poll_drop(c);
                portal_schedule_answered(&c->schedule, now_usec(c), 0, draw(c));
                arm_timer(c);
                return;
        }
        c->polling = true;
        for (size_t i = 0; i < c->n_batches; i++)
                transfer_start(c, &c->transfers[i], &c->batches[i], &c->cache[i]);
        if (c->n_pending == 0)
                poll_finish(c);
}

static void on_timer(uv_timer_t *timer) {
        poll_begin(timer->data);
}

static int unknown_add(PortalClient *c, const char *cert) {
        char **v;

        if (strv_contains(c->unknown, c->n_unknown, cert))
                return 0;
        v = realloc(c->unknown, (c->n_unknown + 1) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        c->unknown = v;
        v[c->n_unknown] = strdup(cert);
        if (!v[c->n_unknown])
                return -ENOMEM;
        c->n_unknown++;
        return 0;
}

/* Takes each answered transfer's result into its cache entry. */
static void poll_absorb(PortalClient *c) {
        for (size_t i = 0; i < c->n_batches; i++) {
                Transfer *t = &c->transfers[i];
                BatchCache *cache = t->cache;

                if (t->outcome == OUTCOME_ANSWERED) {
                        portal_status_free(cache->answer);
                        cache->answer = TAKE_PTR(t->answer);
                        free(cache->etag);
                        cache->etag = t->etag[0] ? strdup(t->etag) : NULL;
                }
                if (t->outcome != OUTCOME_ANSWERED && t->outcome != OUTCOME_NOT_MODIFIED)
                        continue;
                for (size_t j = 0; j < cache->answer->n_certs; j++)
                        if (!cache->answer->certs[j].known &&
                            unknown_add(c, cache->answer->certs[j].cert) < 0)
                                log_error_errno(ENOMEM,
                                                "Cannot remember a certificate the portal does not know");
        }
}

static void poll_reschedule(PortalClient *c) {
        unsigned long long retry_after = 0;
        bool retry = false, failed = false;
        unsigned interval = 0;
        usec_t now = now_usec(c);

        for (size_t i = 0; i < c->n_batches; i++) {
                Transfer *t = &c->transfers[i];

                if (t->outcome == OUTCOME_RETRY_AFTER) {
                        retry = true;
                        if (t->retry_after_sec > retry_after)
                                retry_after = t->retry_after_sec;
                } else if (t->outcome == OUTCOME_FAILED)
                        failed = true;
                else if (t->outcome == OUTCOME_ANSWERED && t->cache->answer->poll_interval_sec > interval)
                        interval = t->cache->answer->poll_interval_sec;
        }
        if (retry)
                portal_schedule_retry_after(&c->schedule, now, retry_after, draw(c));
        else if (failed)
                portal_schedule_failed(&c->schedule, now, draw(c));
        else
                portal_schedule_answered(&c->schedule, now, interval, draw(c));
        if (c->ask_now_pending)
                (void) portal_schedule_ask_now(&c->schedule, now);
        c->ask_now_pending = false;
}

static int result_build(PortalClient *c, PortalPollResult *res, const PortalCertStatus ***ret_certs) {
        const PortalCertStatus **certs = NULL;
        size_t n = 0, total = 0;

        res->not_modified = true;
        res->http_status = c->n_batches > 0 ? c->transfers[0].http_status : 0;
        for (size_t i = 0; i < c->n_batches; i++) {
                Transfer *t = &c->transfers[i];

                if (t->outcome != OUTCOME_NOT_MODIFIED)
                        res->not_modified = false;
                if (t->outcome == OUTCOME_ANSWERED || t->outcome == OUTCOME_NOT_MODIFIED)
                        total += t->cache->answer->n_certs;
                else if (res->error == 0) {
                        res->error = t->error;
                        res->error_message = t->message ? t->message : "out of memory";
                        res->http_status = t->http_status;
                }
        }
        certs = calloc(total > 0 ? total : 1, sizeof(PortalCertStatus *));
        if (!certs)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_batches; i++) {
                Transfer *t = &c->transfers[i];

                if (t->outcome != OUTCOME_ANSWERED && t->outcome != OUTCOME_NOT_MODIFIED)
                        continue;
                for (size_t j = 0; j < t->cache->answer->n_certs; j++)
                        certs[n++] = &t->cache->answer->certs[j];
        }
        res->certs = certs;
        res->n_certs = n;
        *ret_certs = certs;
        return 0;
}

static void poll_log(PortalClient *c, const PortalPollResult *res) {
        uint64_t next_ms = portal_client_next_poll_ms(c), now = uv_now(c->loop);
        unsigned long long in_sec = next_ms > now ? (next_ms - now) / 1000 : 0;

        if (res->error < 0)
                log_warning_errno(res->error, "Portal status check failed, next try in %llu s: %s", in_sec,
                                  res->error_message);
        else
                log_debug("Portal status: %zu certificates%s, next check in %llu s", res->n_certs,
                          res->not_modified ? " (not modified)" : "", in_sec);
}

/* Hands the result to the callback. The callback may stop, restart or
 * close the client, so the poll's memory is taken out of the client first
 * and freed here afterwards. */
static void poll_deliver(PortalClient *c, const PortalPollResult *res) {
        Transfer *transfers = TAKE_PTR(c->transfers);
        PortalBatch *batches = TAKE_PTR(c->batches);
        size_t n_batches = c->n_batches;

        c->n_batches = 0;
        c->n_pending = 0;
        c->on_result(c, res, c->userdata);
        for (size_t i = 0; i < n_batches; i++)
                transfer_free(&transfers[i]);
        free(transfers);
        portal_batches_free(batches, n_batches);
}

static void poll_finish(PortalClient *c) {
        _cleanup_free_ const PortalCertStatus **certs = NULL;
        PortalPollResult res = {};
        int r;

        poll_absorb(c);
        poll_reschedule(c);
        r = result_build(c, &res, &certs);
        c->polling = false;
        arm_timer(c);
        if (r < 0) {
                log_error_errno(r, "Cannot report the portal status");
                poll_drop(c);
                return;
        }
        poll_log(c, &res);
        poll_deliver(c, &res);
}

int portal_client_init(uv_loop_t *loop, CurlLoop *curl, const PortalClientOptions *o, PortalClient **ret) {
        PortalClient *c;

        if (!o->on_result || !portal_base_url_is_valid(o->base_url, PORTAL_INSECURE_HTTP_FOR_TESTS))
                return -EINVAL;
        c = calloc(1, sizeof(PortalClient));
        if (!c)
                return -ENOMEM;
        *c = (PortalClient){
                .loop = loop,
                .curl = curl,
                .base_url = strdup(o->base_url),
                .ca_bundle = o->ca_bundle ? strdup(o->ca_bundle) : NULL,
                .http = strncasecmp(o->base_url, "http:", 5) == 0,
                .default_interval_sec =
                        o->poll_interval_sec > 0 ? o->poll_interval_sec : PORTAL_POLL_INTERVAL_DEFAULT_SEC,
                .connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                                : PORTAL_CONNECT_TIMEOUT_MS_DEFAULT,
                .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : PORTAL_TIMEOUT_MS_DEFAULT,
                .random_u32 = o->random_u32 ? o->random_u32 : random_u32_default,
                .random_userdata = o->random_userdata,
                .on_result = o->on_result,
                .userdata = o->userdata,
        };
        if (!c->base_url || (o->ca_bundle && !c->ca_bundle) || uv_timer_init(loop, &c->timer) < 0) {
                free(c->base_url);
                free(c->ca_bundle);
                free(c);
                return -ENOMEM;
        }
        c->timer.data = c;
        portal_schedule_init(&c->schedule, c->default_interval_sec, now_usec(c));
        *ret = c;
        return 0;
}

int portal_client_set_certs(PortalClient *c, char *const *certs, size_t n_certs) {
        char **copy;
        int r;

        for (size_t i = 0; i < n_certs; i++)
                if (!portal_cert_id_is_valid(certs[i]))
                        return -EINVAL;
        r = strv_copy(certs, n_certs, &copy);
        if (r < 0)
                return r;
        strv_free(c->certs, c->n_certs);
        c->certs = copy;
        c->n_certs = n_certs;
        return 0;
}

int portal_client_start(PortalClient *c) {
        if (c->closing)
                return -ESHUTDOWN;
        if (c->started)
                return -EBUSY;
        c->started = true;
        portal_schedule_init(&c->schedule, c->default_interval_sec, now_usec(c));
        arm_timer(c);
        return 0;
}

void portal_client_stop(PortalClient *c) {
        poll_drop(c);
        (void) uv_timer_stop(&c->timer);
        c->started = false;
        c->ask_now_pending = false;
}

void portal_client_refresh(PortalClient *c) {
        if (!c->started)
                return;
        if (c->polling)
                c->ask_now_pending = true;
        else if (portal_schedule_ask_now(&c->schedule, now_usec(c)))
                arm_timer(c);
}

int portal_client_key_inserted(PortalClient *c, char *const *certs, size_t n_certs) {
        size_t n = 0;

        /* Ask again about what the portal disowned: the key may be its own now. */
        for (size_t i = 0; i < c->n_unknown; i++) {
                if (strv_contains(certs, n_certs, c->unknown[i]))
                        free(c->unknown[i]);
                else
                        c->unknown[n++] = c->unknown[i];
        }
        c->n_unknown = n;
        portal_client_refresh(c);
        return 0;
}

uint64_t portal_client_next_poll_ms(const PortalClient *c) {
        if (!c->started || c->polling)
                return 0;
        return c->schedule.next / 1000;
}

static void on_closed(uv_handle_t *h) {
        PortalClient *c = h->data;
        PortalClientCloseFn cb = c->close_cb;
        void *userdata = c->close_userdata;

        cache_free(c->cache, c->n_cache);
        strv_free(c->certs, c->n_certs);
        strv_free(c->unknown, c->n_unknown);
        free(c->base_url);
        free(c->ca_bundle);
        free(c);
        if (cb)
                cb(userdata);
}

void portal_client_close(PortalClient *c, PortalClientCloseFn close_cb, void *userdata) {
        if (c->closing)
                return;
        portal_client_stop(c);
        c->closing = true;
        c->close_cb = close_cb;
        c->close_userdata = userdata;
        uv_close((uv_handle_t *) &c->timer, on_closed);
}
