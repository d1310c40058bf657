/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-portal: the reference portal's HTTPS server (renewal status,
 * CMP, CRLs, order pages) on 127.0.0.1. See README.md next to it. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "portal-ca.h"
#include "portal-cmp.h"
#include "portal-db.h"
#include "portal-order.h"

#define PROG "keyrenew-portal"
#define MAX_CERTS 64
#define MAX_CMP_BODY (1024 * 1024)
#define DEFAULT_POLL_INTERVAL 21600
#define CMP_PATH "/.well-known/cmp/p/renew"

typedef struct CrlCache {
        long long number; /* 0: not made yet */
        uint8_t *der;
        size_t len;
} CrlCache;

typedef struct Portal {
        sqlite3 *db;
        PortalCas cas;
        CmpServer *cmp;
        char base_url[64];
        long long poll_interval;
        CrlCache crl[_CA_KIND_MAX];
} Portal;

/* One HTTP request: the body received so far, and when the portal started
 * working on it (once it had all of it). */
typedef struct Request {
        struct timespec start;
        uint8_t *body;
        size_t len;
        bool too_big;
} Request;

static int64_t elapsed_us(const struct timespec *start) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (int64_t) (now.tv_sec - start->tv_sec) * 1000000 + (now.tv_nsec - start->tv_nsec) / 1000;
}

/* Queues an answer. headers are name, value pairs ending in NULL. Every
 * answer says how long the portal worked on it (X-Portal-Time-Us), so that
 * a client's share of a renewal can be measured apart from the portal's. */
static enum MHD_Result respond(struct MHD_Connection *c, const Request *req, unsigned status,
                               const char *type, const void *body, size_t len, const char *const *headers) {
        struct MHD_Response *rsp =
                MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret = MHD_NO;
        char us[32];

        if (!rsp)
                return MHD_NO;
        if (type && MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES)
                goto finish;
        for (size_t i = 0; headers && headers[i]; i += 2)
                if (MHD_add_response_header(rsp, headers[i], headers[i + 1]) != MHD_YES)
                        goto finish;
        snprintf(us, sizeof(us), "%lld", (long long) elapsed_us(&req->start));
        if (MHD_add_response_header(rsp, "X-Portal-Time-Us", us) != MHD_YES)
                goto finish;
        ret = MHD_queue_response(c, status, rsp);
finish:
        MHD_destroy_response(rsp);
        return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, const Request *req, unsigned status,
                                    const char *text) {
        return respond(c, req, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static enum MHD_Result respond_json_error(struct MHD_Connection *c, const Request *req, unsigned status,
                                          const char *code, const char *message,
                                          const char *const *headers) {
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s, s:s}", "error", code, "message", message);
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

        if (!s)
                return MHD_NO;
        return respond(c, req, status, "application/json", s, strlen(s), headers);
}

/* The fault a test asked for with 'keyrenew-portal-admin fault set'. */
typedef struct Fault {
        long long status;      /* 429, 500 or 503; 0: none */
        long long retry_after; /* -1: no Retry-After */
        long long body;        /* FAULT_BODY_* in a 200 answer */
        long long delay_ms;    /* answer this late */
} Fault;

static bool fault_set(const Fault *f) {
        return f->status != 0 || f->body != FAULT_BODY_NONE || f->delay_ms > 0;
}

/* Reads the fault, for a number of answers (then cleared) or until cleared. */
static int take_fault(Portal *p, Fault *ret) {
        Fault f;
        long long count;
        int r;

        r = db_setting_get(p->db, "fault_status", 0, &f.status);
        if (r >= 0)
                r = db_setting_get(p->db, "fault_retry_after", -1, &f.retry_after);
        if (r >= 0)
                r = db_setting_get(p->db, "fault_body", FAULT_BODY_NONE, &f.body);
        if (r >= 0)
                r = db_setting_get(p->db, "fault_delay_ms", 0, &f.delay_ms);
        if (r >= 0)
                r = db_setting_get(p->db, "fault_count", -1, &count);
        /* Only a counted fault writes: the normal answer stays read-only. */
        if (r >= 0 && fault_set(&f) && count > 0) {
                r = db_begin(p->db);
                if (r >= 0)
                        r = db_setting_set(p->db, "fault_count", count - 1);
                if (r >= 0 && count == 1)
                        r = db_setting_set(p->db, "fault_status", 0);
                if (r >= 0 && count == 1)
                        r = db_setting_set(p->db, "fault_body", FAULT_BODY_NONE);
                if (r >= 0 && count == 1)
                        r = db_setting_set(p->db, "fault_delay_ms", 0);
                if (r >= 0)
                        r = db_commit(p->db);
                if (r < 0)
                        db_rollback(p->db);
        }
        if (r < 0)
                return r;
        *ret = f;
        return 0;
}

/* A slow portal. The server answers from MHD's one internal thread, so
 * this holds every other connection too: a whole portal that is slow. */
static void fault_delay(const Fault *f) {
        struct timespec ts = { .tv_sec = f->delay_ms / 1000, .tv_nsec = f->delay_ms % 1000 * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A 200 answer that no client may take: not JSON, or twice the 1 MiB a
 * client reads (valid-looking JSON up to its cap, so that only the size is
 * wrong). */
static enum MHD_Result respond_fault_body(struct MHD_Connection *c, const Request *req, const Fault *f) {
        static const char head[] = "{\"version\":1,\"poll_interval\":60,\"certificates\":[],\"padding\":\"";
        static const char garbage[] = "<html><body>oops</body></html>\n";
        const size_t len = 2 * 1024 * 1024;
        _cleanup_free_ char *big = NULL;

        if (f->body == FAULT_BODY_GARBAGE)
                return respond(c, req, MHD_HTTP_OK, "text/html", garbage, strlen(garbage), NULL);
        big = malloc(len);
        if (!big)
                return MHD_NO;
        memcpy(big, head, strlen(head));
        memset(big + strlen(head), 'x', len - strlen(head) - 2);
        memcpy(big + len - 2, "\"}", 2);
        return respond(c, req, MHD_HTTP_OK, "application/json", big, len, NULL);
}

typedef struct CertArgs {
        char *values[MAX_CERTS];
        size_t n;
        const char *bad; /* the first malformed value */
        bool too_many;
} CertArgs;

static enum MHD_Result collect_cert(void *userdata, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
        CertArgs *a = userdata;
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];

        if (strcmp(key, "cert") != 0)
                return MHD_YES;
        if (!value || cert_id_parse(value, hash, serial) < 0) {
                if (!a->bad)
                        a->bad = value ? value : "";
                return MHD_YES;
        }
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->values[i], value) == 0)
                        return MHD_YES;
        if (a->n == MAX_CERTS) {
                a->too_many = true;
                return MHD_NO;
        }
        a->values[a->n++] = (char *) value;
        return MHD_YES;
}

static int cert_entry(Portal *p, const char *cert, json_t **ret) {
        _cleanup_(json_decrefp) json_t *entry = NULL, *order = NULL;
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];
        bool known;
        Order o;
        int r;

        r = cert_id_parse(cert, hash, serial);
        if (r < 0)
                return r;
        known = cas_find(&p->cas, hash) != NULL;
        r = known ? db_order_newest(p->db, hash, serial, &o) : -ENOENT;
        if (r >= 0) {
                r = order_to_json(p->db, &o, p->base_url, &order);
                order_done(&o);
        } else if (r == -ENOENT)
                r = 0;
        if (r < 0)
                return r;
        entry = json_pack("{s:s, s:b, s:O}", "cert", cert, "known", known, "order",
                          order ? order : json_null());
        if (!entry)
                return -ENOMEM;
        *ret = TAKE_PTR(entry);
        return 0;
}

static int status_body(Portal *p, const CertArgs *a, char **ret) {
        _cleanup_(json_decrefp) json_t *root = NULL, *list = json_array();
        long long poll_interval;
        int r;

        if (!list)
                return -ENOMEM;
        r = db_setting_get(p->db, "poll_interval", p->poll_interval, &poll_interval);
        for (size_t i = 0; r >= 0 && i < a->n; i++) {
                json_t *entry;

                r = cert_entry(p, a->values[i], &entry);
                if (r >= 0 && json_array_append_new(list, entry) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return r;
        root = json_pack("{s:i, s:I, s:O}", "version", 1, "poll_interval", (json_int_t) poll_interval,
                         "certificates", list);
        *ret = root ? json_dumps(root, JSON_COMPACT) : NULL;
        return *ret ? 0 : -ENOMEM;
}

/* The ETag is the answer's own digest: it changes exactly when the answer does. */
static void make_etag(const char *body, char ret[static 36]) {
        unsigned char md[SHA256_DIGEST_LENGTH];

        SHA256((const unsigned char *) body, strlen(body), md);
        ret[0] = '"';
        for (size_t i = 0; i < 16; i++)
                snprintf(ret + 1 + 2 * i, 3, "%02x", md[i]);
        ret[33] = '"';
        ret[34] = '\0';
}

static bool etag_matches(const char *if_none_match, const char *etag) {
        return if_none_match && (strcmp(if_none_match, "*") == 0 || strstr(if_none_match, etag));
}

static enum MHD_Result handle_renewals(Portal *p, struct MHD_Connection *c, const Request *req) {
        _cleanup_free_ char *body = NULL;
        char etag[36], retry[24];
        CertArgs a = {};
        Fault fault;
        int r;

        r = take_fault(p, &fault);
        if (r < 0) {
                log_error("reading the fault settings: %s", sqlite3_errmsg(p->db));
                return respond_json_error(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                                          "database error", NULL);
        }
        if (fault.delay_ms > 0)
                fault_delay(&fault);
        if (fault.status == 500)
                return respond_json_error(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                                          "the portal failed (a test fault)", NULL);
        if (fault.status != 0) {
                snprintf(retry, sizeof(retry), "%lld", fault.retry_after);
                return respond_json_error(
                        c, req, (unsigned) fault.status,
                        fault.status == 429 ? "too-many-requests" : "unavailable",
                        "the portal is busy; try again later",
                        fault.retry_after >= 0
                                ? (const char *const[]){ MHD_HTTP_HEADER_RETRY_AFTER, retry, NULL }
                                : NULL);
        }
        if (fault.body != FAULT_BODY_NONE)
                return respond_fault_body(c, req, &fault);
        (void) MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_cert, &a);
        if (a.bad) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg,
                             "'%.200s' is not ISSUER_HASH:SERIAL (64 lower-case hex digits, ':', the serial "
                             "in lower-case hex without leading zeros)",
                             a.bad) < 0)
                        return MHD_NO;
                return respond_json_error(c, req, MHD_HTTP_BAD_REQUEST, "bad-cert", msg, NULL);
        }
        if (a.too_many)
                return respond_json_error(c, req, MHD_HTTP_BAD_REQUEST, "bad-cert",
                                          "more than 64 cert parameters; split the request", NULL);
        if (a.n == 0)
                return respond_json_error(c, req, MHD_HTTP_BAD_REQUEST, "bad-cert",
                                          "no cert parameter: ask /renewals?cert=ISSUER_HASH:SERIAL", NULL);
        r = status_body(p, &a, &body);
        if (r < 0) {
                log_error("building the status answer failed: %s",
                          r == -EIO ? sqlite3_errmsg(p->db) : strerror(-r));
                return respond_json_error(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                                          "the portal could not answer", NULL);
        }
        make_etag(body, etag);
        if (etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
                         etag))
                return respond(c, req, MHD_HTTP_NOT_MODIFIED, NULL, "", 0,
                               (const char *const[]){ MHD_HTTP_HEADER_ETAG, etag, NULL });
        return respond(c, req, MHD_HTTP_OK, "application/json", body, strlen(body),
                       (const char *const[]){ MHD_HTTP_HEADER_ETAG, etag, MHD_HTTP_HEADER_CACHE_CONTROL,
                                              "no-cache", NULL });
}

/* The CMP fault set for messages of the request's body type, taken once
 * (counted) or until cleared. */
static int take_cmp_fault(Portal *p, const Request *req, CmpFaultKind *ret) {
        const unsigned char *q = req->body;
        OSSL_CMP_MSG *msg = d2i_OSSL_CMP_MSG(NULL, &q, (long) req->len);
        long long kind, at, count;
        int r, type = msg ? OSSL_CMP_MSG_get_bodytype(msg) : -1;

        OSSL_CMP_MSG_free(msg);
        r = db_setting_get(p->db, "cmp_fault_kind", CMP_FAULT_NONE, &kind);
        if (r >= 0)
                r = db_setting_get(p->db, "cmp_fault_at", -1, &at);
        if (r >= 0)
                r = db_setting_get(p->db, "cmp_fault_count", -1, &count);
        if (r < 0)
                return r;
        if (kind == CMP_FAULT_NONE || at != type) {
                *ret = CMP_FAULT_NONE;
                return 0;
        }
        if (count > 0) {
                r = db_begin(p->db);
                if (r >= 0)
                        r = db_setting_set(p->db, "cmp_fault_count", count - 1);
                if (r >= 0 && count == 1)
                        r = db_setting_set(p->db, "cmp_fault_kind", CMP_FAULT_NONE);
                if (r >= 0)
                        r = db_commit(p->db);
                if (r < 0) {
                        db_rollback(p->db);
                        return r;
                }
        }
        *ret = (CmpFaultKind) kind;
        return 0;
}

static enum MHD_Result respond_cmp_fault(struct MHD_Connection *c, const Request *req, CmpFaultKind fault,
                                         const uint8_t *reply, size_t len) {
        static const char garbage[] = "<html><body>proxy error</body></html>\n";

        switch (fault) {
        case CMP_FAULT_DROP:
                return MHD_NO;
        case CMP_FAULT_TRUNCATED:
                return respond(c, req, MHD_HTTP_OK, "application/pkixcmp", reply, len / 2, NULL);
        case CMP_FAULT_GARBAGE:
                return respond(c, req, MHD_HTTP_OK, "application/pkixcmp", garbage, strlen(garbage), NULL);
        default:
                return respond(c, req, MHD_HTTP_OK, "application/pkixcmp", reply, len, NULL);
        }
}

static enum MHD_Result handle_cmp(Portal *p, struct MHD_Connection *c, const Request *req) {
        const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        _cleanup_free_ uint8_t *reply = NULL;
        CmpFaultKind fault = CMP_FAULT_NONE;
        size_t len = 0;
        int r;

        if (req->too_big)
                return respond_text(c, req, MHD_HTTP_CONTENT_TOO_LARGE, "a PKIMessage is at most 1 MiB\n");
        if (!type || strcasecmp(type, "application/pkixcmp") != 0)
                return respond_text(c, req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                    "send a DER PKIMessage as application/pkixcmp (RFC 6712)\n");
        r = take_cmp_fault(p, req, &fault);
        if (r < 0) {
                log_error("reading the CMP fault settings: %s", sqlite3_errmsg(p->db));
                return MHD_NO;
        }
        if (fault == CMP_FAULT_STATUS_500)
                return respond_text(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                    "the portal failed (a test fault)\n");
        r = cmp_server_handle(p->cmp, req->body, req->len, &reply, &len);
        if (r == -EBADMSG)
                return respond_text(c, req, MHD_HTTP_BAD_REQUEST, "the body is not a DER PKIMessage\n");
        if (r < 0) {
                log_error("CMP processing failed: %s", strerror(-r));
                return respond_text(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "CMP processing failed\n");
        }
        return respond_cmp_fault(c, req, fault, reply, len);
}

/* The CRL, made again only when a revocation changed its number. */
static int crl_get(Portal *p, const PortalCa *ca, const uint8_t **ret, size_t *ret_len) {
        CrlCache *cache = &p->crl[ca->kind];
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ CrlEntry *entries = NULL;
        unsigned char *der = NULL;
        long long number;
        size_t n;
        int r, len;

        r = db_crl_number(p->db, ca->issuer_hash, &number);
        if (r >= 0 && number != cache->number) {
                r = db_crl_entries(p->db, ca->issuer_hash, &entries, &n);
                if (r >= 0)
                        r = ca_make_crl(ca, (long) number, entries, n, &crl);
                if (r >= 0) {
                        len = i2d_X509_CRL(crl, &der);
                        r = len > 0 ? 0 : -EIO;
                }
                if (r >= 0) {
                        OPENSSL_free(cache->der);
                        *cache = (CrlCache){ .number = number, .der = der, .len = (size_t) len };
                }
        }
        if (r < 0)
                return r;
        *ret = cache->der;
        *ret_len = cache->len;
        return 0;
}

static enum MHD_Result handle_crl(Portal *p, struct MHD_Connection *c, const Request *req,
                                  const char *which) {
        const uint8_t *der;
        CaKind kind;
        size_t len;

        if (ca_kind_from_string(which, &kind) < 0)
                return respond_text(c, req, MHD_HTTP_NOT_FOUND, "CRLs are /crl/rsa and /crl/ec\n");
        if (crl_get(p, &p->cas.ca[kind], &der, &len) < 0) {
                log_error("making the %s CRL failed", which);
                ERR_clear_error();
                return respond_text(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "the CRL could not be made\n");
        }
        return respond(c, req, MHD_HTTP_OK, "application/pkix-crl", der, len, NULL);
}

static int html_escape(FILE *f, const char *s) {
        for (; *s; s++) {
                const char *e = *s == '<'    ? "&lt;"
                                : *s == '>'  ? "&gt;"
                                : *s == '&'  ? "&amp;"
                                : *s == '"'  ? "&quot;"
                                : *s == '\'' ? "&#39;"
                                             : NULL;

                if (e ? fputs(e, f) < 0 : fputc(*s, f) == EOF)
                        return -EIO;
        }
        return 0;
}

static const char *state_text(OrderState s) {
        static const char *const text[_ORDER_STATE_MAX] = {
                [ORDER_AWAITING_PAYMENT] = "Awaiting payment: pay for the renewal to continue.",
                [ORDER_UNDER_REVIEW] = "Paid; your papers are being reviewed.",
                [ORDER_APPROVED] = "Approved: insert your key and choose \"Update now\".",
                [ORDER_REJECTED] = "Rejected by the review.",
                [ORDER_ISSUED] = "The new certificate was issued; its installation is not confirmed yet.",
                [ORDER_INSTALLED] = "Done: the new certificate is on your key; the old one is revoked.",
        };
        return text[s];
}

static int order_page(const Order *o, char **ret, size_t *ret_len) {
        char *buf = NULL, updated[21] = "";
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        int r;

        if (!f)
                return -ENOMEM;
        (void) time_to_rfc3339(o->updated, updated);
        fprintf(f,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<title>Order %s</title></head><body>\n<h1>Renewal order %s</h1>\n<dl>\n"
                "<dt>State</dt><dd id=\"state\">%s</dd><dd>%s</dd>\n"
                "<dt>Certificate</dt><dd><code>%s:%s</code></dd>\n"
                "<dt>New key</dt><dd>%s</dd>\n<dt>Validity</dt><dd>%d days</dd>\n",
                o->id, o->id, order_state_to_string(o->state), state_text(o->state), o->issuer_hash,
                o->serial, o->rekey ? "yes" : "no", o->validity_days);
        r = 0;
        if (o->reject_reason) {
                fputs("<dt>Reason</dt><dd id=\"reject-reason\">", f);
                r = html_escape(f, o->reject_reason);
                fputs("</dd>\n", f);
        }
        if (o->new_serial[0])
                fprintf(f, "<dt>New certificate</dt><dd><code>%s</code></dd>\n", o->new_serial);
        fprintf(f, "<dt>Updated</dt><dd>%s</dd>\n</dl>\n</body></html>\n", updated);
        if (fclose(f) != 0 || r < 0) {
                free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static enum MHD_Result handle_order(Portal *p, struct MHD_Connection *c, const Request *req,
                                    const char *id) {
        _cleanup_free_ char *page = NULL;
        size_t len;
        Order o;
        int r;

        r = db_order_get(p->db, id, &o);
        if (r == -ENOENT)
                return respond_text(c, req, MHD_HTTP_NOT_FOUND, "no such order\n");
        if (r < 0)
                return respond_text(c, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error\n");
        r = order_page(&o, &page, &len);
        order_done(&o);
        if (r < 0)
                return MHD_NO;
        return respond(c, req, MHD_HTTP_OK, "text/html; charset=utf-8", page, len, NULL);
}

static enum MHD_Result dispatch(Portal *p, struct MHD_Connection *c, const Request *req, const char *url,
                                const char *method) {
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

        if (strcmp(url, "/renewals") == 0)
                return get ? handle_renewals(p, c, req)
                           : respond_text(c, req, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n");
        if (strcmp(url, CMP_PATH) == 0)
                return post ? handle_cmp(p, c, req)
                            : respond_text(c, req, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST (RFC 6712)\n");
        if (get && strncmp(url, "/crl/", 5) == 0)
                return handle_crl(p, c, req, url + 5);
        if (get && strncmp(url, "/orders/", 8) == 0)
                return handle_order(p, c, req, url + 8);
        return respond_text(c, req, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **state) {
        Request *req = *state;

        if (!req) {
                req = calloc(1, sizeof(Request));
                if (!req)
                        return MHD_NO;
                *state = req;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                if (!req->too_big && req->len + *upload_size <= MAX_CMP_BODY) {
                        uint8_t *b = realloc(req->body, req->len + *upload_size);

                        if (!b)
                                return MHD_NO;
                        memcpy(b + req->len, upload, *upload_size);
                        req->body = b;
                        req->len += *upload_size;
                } else
                        req->too_big = true;
                *upload_size = 0;
                return MHD_YES;
        }
        clock_gettime(CLOCK_MONOTONIC, &req->start);
        return dispatch(cls, c, req, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code) {
        Request *req = *state;

        if (req) {
                free(req->body);
                free(req);
                *state = NULL;
        }
}

/* libmicrohttpd hands us its own format strings; clang cannot see that. */
_printf_(2, 0) static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        log_fieldsv(LOG_NOTICE, 0, NULL, fmt, ap);
}

static int listen_socket(int port, int *ret_fd, int *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        socklen_t len = sizeof(sa);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;

        if (fd < 0)
                return negative_errno();
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return negative_errno();
        *ret_port = ntohs(sa.sin_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static char *read_file(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char *buf = NULL;
        size_t len = 0;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return NULL;
        f = fopen(path, "re");
        if (!f || getdelim(&buf, &len, '\0', f) < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static const char usage[] =
        "Usage: " PROG " --dir DIR [--port N] [--poll-interval SECONDS] [--public-host HOST] [--verbose]\n"
        "Serves the keyrenew portal protocol over HTTPS on 127.0.0.1 from DIR (made by\n"
        "'keyrenew-portal-admin init DIR'). --port 0 (the default) takes a free port;\n"
        "the line \"listening on https://127.0.0.1:PORT\" on stdout tells which.\n"
        "--public-host names the host in the page and cmp URLs (default 127.0.0.1).\n"
        "Stops on SIGTERM or SIGINT.\n";

typedef struct Options {
        const char *dir;
        const char *host;
        long port;
        long long poll_interval;
        bool verbose;
} Options;

static int parse_options(int argc, char **argv, Options *o) {
        static const struct option options[] = {
                { "dir", required_argument, NULL, 'd' },
                { "port", required_argument, NULL, 'p' },
                { "poll-interval", required_argument, NULL, 'i' },
                { "public-host", required_argument, NULL, 'H' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        char *end;
        int c;

        *o = (Options){ .dir = getenv("KEYRENEW_PORTAL_DIR"),
                        .host = "127.0.0.1",
                        .poll_interval = DEFAULT_POLL_INTERVAL };
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        o->dir = optarg;
                        break;
                case 'p':
                        o->port = strtol(optarg, &end, 10);
                        if (*end || end == optarg || o->port < 0 || o->port > 65535)
                                return -EINVAL;
                        break;
                case 'i':
                        o->poll_interval = strtoll(optarg, &end, 10);
                        if (*end || end == optarg || o->poll_interval < 60 || o->poll_interval > 604800)
                                return -EINVAL;
                        break;
                case 'H':
                        o->host = optarg;
                        break;
                case 'v':
                        o->verbose = true;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        exit(EXIT_SUCCESS);
                default:
                        return -EINVAL;
                }
        return optind == argc && o->dir ? 0 : -EINVAL;
}

static void portal_done(Portal *p) {
        cmp_server_free(p->cmp);
        for (CaKind k = 0; k < _CA_KIND_MAX; k++)
                OPENSSL_free(p->crl[k].der);
        cas_done(&p->cas);
        sqlite3_close(p->db);
}

static int run(const Options *o, Portal *p) {
        _cleanup_free_ char *key = read_file(o->dir, "tls.key"), *cert = read_file(o->dir, "tls.pem");
        _cleanup_close_ int fd = -1;
        struct MHD_Daemon *d;
        sigset_t mask;
        int r, port, sig;

        if (!key || !cert)
                return log_error_errno(ENOENT, "cannot read %s/tls.key and tls.pem", o->dir);
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                return log_error_errno(ENOTSUP, "this libmicrohttpd has no TLS support");
        r = listen_socket((int) o->port, &fd, &port);
        if (r < 0)
                return log_error_errno(r, "cannot listen on 127.0.0.1:%ld", o->port);
        snprintf(p->base_url, sizeof(p->base_url), "https://%s:%d", o->host, port);

        /* The signals are taken by sigwait() below, not by MHD's thread. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        d = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TLS | MHD_USE_ERROR_LOG, 0, NULL,
                NULL, on_request, p, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_HTTPS_MEM_KEY, key,
                MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 256 * 1024, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
        if (!d)
                return log_error_errno(EIO, "the HTTPS server did not start");
        TAKE_FD(fd); /* MHD closes it */
        printf("listening on %s\n", p->base_url);
        fflush(stdout);
        log_info("serving %s on %s", o->dir, p->base_url);
        if (sigwait(&mask, &sig) != 0)
                sig = 0;
        log_info("stopping on signal %d", sig);
        MHD_stop_daemon(d);
        return 0;
}

int main(int argc, char **argv) {
        Portal p = {};
        Options o;
        int r;

        log_setup(PROG, LOG_TARGET_STDERR);
        if (parse_options(argc, argv, &o) < 0) {
                fputs(usage, stderr);
                return 2;
        }
        if (o.verbose)
                log_set_max_level(LOG_DEBUG);
        p.poll_interval = o.poll_interval;
        r = db_open(o.dir, false, &p.db);
        if (r < 0) {
                log_error("cannot open %s/portal.db; run 'keyrenew-portal-admin init %s' first", o.dir,
                          o.dir);
                portal_done(&p);
                return 1;
        }
        r = cas_load(o.dir, &p.cas);
        if (r >= 0)
                r = cmp_server_new(p.db, &p.cas, &p.cmp);
        if (r < 0)
                log_error_errno(r, "cannot load the test CAs from %s", o.dir);
        else
                r = run(&o, &p);
        portal_done(&p);
        return r < 0 ? 1 : 0;
}
