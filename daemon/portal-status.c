/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-status.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "portal-schedule.h"

#define BASE_URL_MAX 512
#define ISSUER_HASH_LEN 64
#define SERIAL_HEX_MAX 40
#define PORTAL_ERROR_DESCRIPTION_MAX 512

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup)

static void curl_freep(char **p) {
        curl_free(*p);
}

/* The protocol's serial from x509-info's: lower-case, no leading zeros. */
static char *serial_normalize(const char *hex) {
        bool negative = hex[0] == '-';
        const char *digits = hex + negative;
        char *out, *o;

        while (digits[0] == '0' && digits[1] != '\0')
                digits++;
        out = malloc(strlen(digits) + 2);
        if (!out)
                return NULL;
        o = out;
        /* Zero has no sign, whatever the encoding said. */
        if (negative && strcmp(digits, "0") != 0)
                *o++ = '-';
        for (const char *d = digits; *d; d++)
                *o++ = (char) tolower((unsigned char) *d);
        *o = '\0';
        return out;
}

int portal_cert_id_from_info(const X509Info *info, char **ret) {
        _cleanup_free_ char *serial = NULL;
        char *id;

        if (!info->serial || !*info->serial || strlen(info->issuer_hash) != ISSUER_HASH_LEN)
                return -EINVAL;
        serial = serial_normalize(info->serial);
        if (!serial)
                return -ENOMEM;
        if (asprintf(&id, "%s:%s", info->issuer_hash, serial) < 0)
                return -ENOMEM;
        *ret = id;
        return 0;
}

static bool is_lower_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool portal_cert_id_is_valid(const char *s) {
        const char *serial;
        size_t n;

        if (!s || strnlen(s, PORTAL_CERT_ID_MAX + 1) > PORTAL_CERT_ID_MAX)
                return false;
        for (size_t i = 0; i < ISSUER_HASH_LEN; i++)
                if (!is_lower_hex(s[i]))
                        return false;
        if (s[ISSUER_HASH_LEN] != ':')
                return false;
        serial = s + ISSUER_HASH_LEN + 1;
        if (serial[0] == '-')
                serial++;
        n = strlen(serial);
        if (n == 0 || n > SERIAL_HEX_MAX ||
            (serial[0] == '0' && (n > 1 || serial != s + ISSUER_HASH_LEN + 1)))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_lower_hex(serial[i]))
                        return false;
        return true;
}

static bool host_is_loopback(const char *host) {
        return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
               strcasecmp(host, "localhost") == 0;
}

/* Whether part of u is absent (or empty, for a bare '?' or '#'). */
static bool url_part_absent(CURLU *u, CURLUPart part) {
        _cleanup_(curl_freep) char *v = NULL;

        return curl_url_get(u, part, &v, 0) != CURLUE_OK || !v || !*v;
}

bool portal_base_url_is_valid(const char *url, bool allow_http_loopback) {
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL;

        if (!url || strnlen(url, BASE_URL_MAX + 1) > BASE_URL_MAX)
                return false;
        /* curl would quietly drop a "?" or "#" with nothing after it. */
        if (strpbrk(url, "?#"))
                return false;
        u = curl_url();
        if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
                return false;
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
                return false;
        if (!url_part_absent(u, CURLUPART_USER) || !url_part_absent(u, CURLUPART_PASSWORD))
                return false;
        if (strcmp(scheme, "https") == 0)
                return true;
        return allow_http_loopback && strcmp(scheme, "http") == 0 && host_is_loopback(host);
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

void portal_batches_free(PortalBatch *b, size_t n) {
        for (size_t i = 0; b && i < n; i++) {
                free(b[i].url);
                for (size_t j = 0; j < b[i].n_certs; j++)
                        free(b[i].certs[j]);
                free(b[i].certs);
        }
        free(b);
}

static int batch_fill(PortalBatch *b, const char *base, size_t base_len, char *const *certs, size_t n) {
        static const char path[] = "/renewals";
        size_t len = base_len + strlen(path) + 1, o;

        b->certs = calloc(n, sizeof(char *));
        if (!b->certs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                b->certs[i] = strdup(certs[i]);
                if (!b->certs[i])
                        return -ENOMEM;
                b->n_certs++;
                len += strlen("?cert=") + strlen(certs[i]);
        }
        b->url = malloc(len);
        if (!b->url)
                return -ENOMEM;
        memcpy(b->url, base, base_len);
        o = base_len;
        memcpy(b->url + o, path, strlen(path));
        o += strlen(path);
        /* Identifiers are hex, ':' and '-': nothing to escape in a query. */
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(b->url + o, len - o, "%ccert=%s", i == 0 ? '?' : '&', certs[i]);
        return 0;
}

int portal_batches_build(const char *base_url, char *const *certs, size_t n_certs, PortalBatch **ret,
                         size_t *ret_n) {
        _cleanup_free_ char **sorted = NULL;
        PortalBatch *batches = NULL;
        size_t base_len = strlen(base_url), n = 0, n_batches;
        int r = 0;

        for (size_t i = 0; i < n_certs; i++)
                if (!portal_cert_id_is_valid(certs[i]))
                        return -EINVAL;
        if (base_len > 0 && base_url[base_len - 1] == '/')
                base_len--;
        if (n_certs > 0) {
                sorted = malloc(n_certs * sizeof(char *));
                if (!sorted)
                        return -ENOMEM;
                memcpy(sorted, certs, n_certs * sizeof(char *));
                qsort(sorted, n_certs, sizeof(char *), cmp_strp);
                for (size_t i = 0; i < n_certs; i++)
                        if (n == 0 || strcmp(sorted[n - 1], sorted[i]) != 0)
                                sorted[n++] = sorted[i];
        }
        n_batches = (n + PORTAL_BATCH_MAX - 1) / PORTAL_BATCH_MAX;
        if (n_batches > 0) {
                batches = calloc(n_batches, sizeof(PortalBatch));
                if (!batches)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n_batches && r >= 0; i++) {
                size_t first = i * PORTAL_BATCH_MAX;
                size_t count = n - first < PORTAL_BATCH_MAX ? n - first : PORTAL_BATCH_MAX;

                r = batch_fill(&batches[i], base_url, base_len, sorted + first, count);
        }
        if (r < 0) {
                portal_batches_free(batches, n_batches);
                return r;
        }
        *ret = batches;
        *ret_n = n_batches;
        return 0;
}

static const char *const order_state_names[_PORTAL_ORDER_STATE_MAX] = {
        [PORTAL_ORDER_AWAITING_PAYMENT] = "awaiting-payment",
        [PORTAL_ORDER_UNDER_REVIEW] = "under-review",
        [PORTAL_ORDER_APPROVED] = "approved",
        [PORTAL_ORDER_REJECTED] = "rejected",
        [PORTAL_ORDER_ISSUED] = "issued",
        [PORTAL_ORDER_INSTALLED] = "installed",
        [PORTAL_ORDER_UNKNOWN] = "unknown",
};

const char *portal_order_state_to_string(PortalOrderState s) {
        return s >= 0 && s < _PORTAL_ORDER_STATE_MAX ? order_state_names[s] : NULL;
}

static PortalOrderState order_state_from_string(const char *s) {
        for (int i = 0; i < PORTAL_ORDER_UNKNOWN; i++)
                if (strcmp(s, order_state_names[i]) == 0)
                        return (PortalOrderState) i;
        return PORTAL_ORDER_UNKNOWN;
}

static int digits(const char **p, size_t n, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char) (*p)[i]))
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

static int expect(const char **p, const char *any_of) {
        if (**p == '\0' || !strchr(any_of, **p))
                return -EINVAL;
        (*p)++;
        return 0;
}

/* The offset in seconds east of UTC that ends an RFC 3339 date-time. */
static int parse_offset(const char *p, long *ret) {
        int sign, h, m;

        if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
                *ret = 0;
                return 0;
        }
        if (p[0] != '+' && p[0] != '-')
                return -EINVAL;
        sign = p[0] == '-' ? -1 : 1;
        p++;
        if (digits(&p, 2, &h) < 0 || expect(&p, ":") < 0 || digits(&p, 2, &m) < 0 || *p || h > 23 || m > 59)
                return -EINVAL;
        *ret = sign * (h * 3600L + m * 60L);
        return 0;
}

int portal_parse_timestamp(const char *s, time_t *ret) {
        struct tm tm = {}, check;
        const char *p = s;
        int f[6];
        long offset;
        time_t t;

        if (digits(&p, 4, &f[0]) < 0 || expect(&p, "-") < 0 || digits(&p, 2, &f[1]) < 0 ||
            expect(&p, "-") < 0 || digits(&p, 2, &f[2]) < 0 || expect(&p, "Tt") < 0 ||
            digits(&p, 2, &f[3]) < 0 || expect(&p, ":") < 0 || digits(&p, 2, &f[4]) < 0 ||
            expect(&p, ":") < 0 || digits(&p, 2, &f[5]) < 0)
                return -EINVAL;
        if (*p == '.') {
                if (!isdigit((unsigned char) p[1]))
                        return -EINVAL;
                for (p++; isdigit((unsigned char) *p); p++)
                        ;
        }
        if (parse_offset(p, &offset) < 0)
                return -EINVAL;
        tm.tm_year = f[0] - 1900;
        tm.tm_mon = f[1] - 1;
        tm.tm_mday = f[2];
        tm.tm_hour = f[3];
        tm.tm_min = f[4];
        /* A leap second counts as the second before it. */
        tm.tm_sec = f[5] == 60 ? 59 : f[5];
        check = tm;
        t = timegm(&tm);
        /* timegm() normalises "February 30": a changed field means it was out of range. */
        if (t == (time_t) -1 || tm.tm_mon != check.tm_mon || tm.tm_mday != check.tm_mday ||
            tm.tm_hour != check.tm_hour || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec ||
            f[5] > 60)
                return -EINVAL;
        *ret = t - offset;
        return 0;
}

int portal_parse_retry_after(const char *value, time_t wall_now, unsigned long long *ret_sec) {
        unsigned long long sec = 0;
        time_t t;

        if (!value || !*value)
                return -EINVAL;
        if (strspn(value, "0123456789") == strlen(value)) {
                for (const char *p = value; *p; p++) {
                        if (sec > (ULLONG_MAX - 9) / 10)
                                return -EINVAL;
                        sec = sec * 10 + (unsigned long long) (*p - '0');
                }
                *ret_sec = sec;
                return 0;
        }
        t = curl_getdate(value, NULL);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret_sec = t > wall_now ? (unsigned long long) (t - wall_now) : 0;
        return 0;
}

static PortalOrder *portal_order_free(PortalOrder *o) {
        if (!o)
                return NULL;
        free(o->id);
        free(o->state_name);
        free(o->page);
        free(o->cmp);
        free(o->reject_reason);
        free(o);
        return NULL;
}

PortalStatus *portal_status_free(PortalStatus *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_certs; i++) {
                free(s->certs[i].cert);
                portal_order_free(s->certs[i].order);
        }
        free(s->certs);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PortalOrder *, portal_order_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(PortalStatus *, portal_status_free)

/* Where a message is going and the path of the value being checked. */
typedef struct Parse {
        char **message;
        char where[64];
} Parse;

static int bad(Parse *p, int r, const char *format, ...) _printf_(3, 4);
static int bad(Parse *p, int r, const char *format, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int n;

        if (!p->message || *p->message)
                return r;
        va_start(ap, format);
        n = vasprintf(&what, format, ap);
        va_end(ap);
        if (n < 0 || asprintf(p->message, "%s%s%s", p->where, *p->where ? ": " : "", what) < 0)
                *p->message = NULL;
        return r;
}

static bool is_printable_ascii(const char *s) {
        for (; *s; s++)
                if (*s < 0x20 || *s > 0x7e)
                        return false;
        return true;
}

static size_t utf8_chars(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        n++;
        return n;
}

/* Gets key's value when it has the type wanted. A missing key is an error
 * when required, else *ret is NULL. A JSON null counts as missing for
 * optional fields only. */
static int get(Parse *p, json_t *obj, const char *key, json_type type, bool required, json_t **ret) {
        static const char *const type_names[] = {
                [JSON_OBJECT] = "an object",   [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
                [JSON_INTEGER] = "an integer", [JSON_REAL] = "a number",  [JSON_TRUE] = "a boolean",
                [JSON_FALSE] = "a boolean",    [JSON_NULL] = "null",
        };
        json_t *v = json_object_get(obj, key);

        if (!v || (!required && json_is_null(v))) {
                *ret = NULL;
                return required ? bad(p, -EBADMSG, "\"%s\" is missing", key) : 0;
        }
        if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v)))
                return bad(p, -EBADMSG, "\"%s\" is not %s", key, type_names[type]);
        *ret = v;
        return 0;
}

/* A string of at most max bytes, printable ASCII, copied. */
static int get_ascii(Parse *p, json_t *obj, const char *key, bool required, size_t max, char **ret) {
        json_t *v;
        char *s;
        int r;

        r = get(p, obj, key, JSON_STRING, required, &v);
        if (r < 0 || !v) {
                *ret = NULL;
                return r;
        }
        if (json_string_length(v) == 0 || json_string_length(v) > max)
                return bad(p, -EBADMSG, "\"%s\" is empty or longer than %zu bytes", key, max);
        if (!is_printable_ascii(json_string_value(v)))
                return bad(p, -EBADMSG, "\"%s\" is not printable ASCII", key);
        s = strdup(json_string_value(v));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool url_is_https(const char *url) {
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL;

        return u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK && strcmp(scheme, "https") == 0 &&
               curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host;
}

static int get_url(Parse *p, json_t *obj, const char *key, bool required, char **ret) {
        _cleanup_free_ char *url = NULL;
        int r;

        r = get_ascii(p, obj, key, required, PORTAL_ANSWER_URL_MAX, &url);
        if (r < 0)
                return r;
        /* Lower-case "https://" only: the protocol says https, not hTTpS. */
        if (url && (strncmp(url, "https://", 8) != 0 || strchr(url, ' ') || !url_is_https(url)))
                return bad(p, -EBADMSG, "\"%s\" is not an https URL", key);
        *ret = TAKE_PTR(url);
        return 0;
}

static int get_time(Parse *p, json_t *obj, const char *key, bool required, bool *ret_has, time_t *ret) {
        _cleanup_free_ char *s = NULL;
        time_t t = 0;
        int r;

        r = get_ascii(p, obj, key, required, PORTAL_TIMESTAMP_MAX, &s);
        if (r < 0)
                return r;
        if (s && portal_parse_timestamp(s, &t) < 0)
                return bad(p, -EBADMSG, "\"%s\" is not an RFC 3339 date-time", key);
        if (ret_has)
                *ret_has = s != NULL;
        *ret = t;
        return 0;
}

static int get_reject_reason(Parse *p, json_t *obj, bool required, char **ret) {
        json_t *v;
        char *s;
        int r;

        r = get(p, obj, "reject_reason", JSON_STRING, required, &v);
        if (r < 0 || !v) {
                *ret = NULL;
                return r;
        }
        if (utf8_chars(json_string_value(v)) > PORTAL_REJECT_REASON_MAX_CHARS)
                return bad(p, -EBADMSG, "\"reject_reason\" is longer than %d characters",
                           PORTAL_REJECT_REASON_MAX_CHARS);
        /* Shown in notifications and logs: no terminal or layout control. */
        for (const char *c = json_string_value(v); *c; c++)
                if (((unsigned char) *c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f)
                        return bad(p, -EBADMSG, "\"reject_reason\" contains control characters");
        s = strdup(json_string_value(v));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int parse_order_details(Parse *p, json_t *obj, PortalOrder *o) {
        json_t *v;
        int r;

        r = get(p, obj, "rekey", JSON_TRUE, true, &v);
        if (r < 0)
                return r;
        o->rekey = json_is_true(v);
        r = get(p, obj, "validity_days", JSON_INTEGER, true, &v);
        if (r < 0)
                return r;
        if (json_integer_value(v) < 1 || json_integer_value(v) > PORTAL_VALIDITY_DAYS_MAX)
                return bad(p, -EBADMSG, "\"validity_days\" is not between 1 and %d",
                           PORTAL_VALIDITY_DAYS_MAX);
        o->validity_days = (unsigned) json_integer_value(v);
        r = get_url(p, obj, "page", true, &o->page);
        if (r < 0)
                return r;
        r = get_url(p, obj, "cmp", o->state == PORTAL_ORDER_APPROVED || o->state == PORTAL_ORDER_ISSUED,
                    &o->cmp);
        if (r < 0)
                return r;
        r = get_reject_reason(p, obj, o->state == PORTAL_ORDER_REJECTED, &o->reject_reason);
        if (r < 0)
                return r;
        r = get_time(p, obj, "not_after",
                     o->state == PORTAL_ORDER_ISSUED || o->state == PORTAL_ORDER_INSTALLED,
                     &o->has_not_after, &o->not_after);
        if (r < 0)
                return r;
        return get_time(p, obj, "updated", true, NULL, &o->updated);
}

static int parse_order(Parse *p, json_t *obj, PortalOrder **ret) {
        _cleanup_(portal_order_freep) PortalOrder *o = calloc(1, sizeof(PortalOrder));
        int r;

        if (!o)
                return -ENOMEM;
        r = get_ascii(p, obj, "id", true, PORTAL_ORDER_ID_MAX, &o->id);
        if (r < 0)
                return r;
        r = get_ascii(p, obj, "state", true, PORTAL_STATE_NAME_MAX, &o->state_name);
        if (r < 0)
                return r;
        o->state = order_state_from_string(o->state_name);
        r = parse_order_details(p, obj, o);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int find_asked(char *const *asked, size_t n_asked, const char *cert, size_t *ret) {
        char *const *hit = bsearch(&cert, asked, n_asked, sizeof(char *), cmp_strp);

        if (!hit)
                return -ENOENT;
        *ret = (size_t) (hit - asked);
        return 0;
}

static int parse_entry(Parse *p, json_t *e, char *const *asked, PortalStatus *st) {
        _cleanup_free_ char *cert = NULL;
        PortalCertStatus *slot;
        json_t *known, *order;
        size_t i;
        int r;

        if (!json_is_object(e))
                return bad(p, -EBADMSG, "not an object");
        r = get_ascii(p, e, "cert", true, PORTAL_CERT_ID_MAX, &cert);
        if (r < 0)
                return r;
        if (find_asked(asked, st->n_certs, cert, &i) < 0)
                return bad(p, -EBADMSG, "certificate %s was not asked about", cert);
        slot = &st->certs[i];
        if (slot->cert)
                return bad(p, -EBADMSG, "certificate %s is answered twice", cert);
        r = get(p, e, "known", JSON_TRUE, true, &known);
        if (r < 0)
                return r;
        /* Present, and an object or null. */
        order = json_object_get(e, "order");
        if (!order)
                return bad(p, -EBADMSG, "\"order\" is missing");
        if (!json_is_null(order) && !json_is_object(order))
                return bad(p, -EBADMSG, "\"order\" is neither an object nor null");
        if (json_is_object(order)) {
                size_t len = strlen(p->where);

                snprintf(p->where + len, sizeof p->where - len, ".order");
                r = parse_order(p, order, &slot->order);
                if (r < 0)
                        return r;
                p->where[len] = '\0';
        }
        slot->known = json_is_true(known);
        slot->cert = TAKE_PTR(cert);
        return 0;
}

static int parse_certificates(Parse *p, json_t *array, char *const *asked, PortalStatus *st) {
        json_t *e;
        size_t i;
        int r;

        if (json_array_size(array) != st->n_certs)
                return bad(p, -EBADMSG, "%zu certificates answered, %zu asked", json_array_size(array),
                           st->n_certs);
        json_array_foreach(array, i, e) {
                snprintf(p->where, sizeof p->where, "certificates[%zu]", i);
                r = parse_entry(p, e, asked, st);
                if (r < 0)
                        return r;
        }
        /* As many entries as asked, none twice, none unasked: all answered. */
        p->where[0] = '\0';
        return 0;
}

static int parse_top(Parse *p, json_t *root, char *const *asked, PortalStatus *st) {
        json_t *v;
        int r;

        if (!json_is_object(root))
                return bad(p, -EBADMSG, "the answer is not a JSON object");
        r = get(p, root, "version", JSON_INTEGER, true, &v);
        if (r < 0)
                return r;
        if (json_integer_value(v) != 1)
                return bad(p, -EPROTONOSUPPORT, "protocol version %" JSON_INTEGER_FORMAT " is not supported",
                           json_integer_value(v));
        r = get(p, root, "poll_interval", JSON_INTEGER, true, &v);
        if (r < 0)
                return r;
        st->poll_interval_sec =
                portal_poll_interval_clamp(json_integer_value(v) < 0 ? 0 : (uint64_t) json_integer_value(v));
        r = get(p, root, "certificates", JSON_ARRAY, true, &v);
        if (r < 0)
                return r;
        return parse_certificates(p, v, asked, st);
}

int portal_status_parse(const char *body, size_t len, char *const *asked, size_t n_asked, PortalStatus **ret,
                        char **ret_message) {
        _cleanup_(portal_status_freep) PortalStatus *st = NULL;
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_free_ char *message = NULL;
        Parse p = { .message = &message };
        json_error_t err;
        int r;

        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
        if (!root) {
                r = bad(&p, -EBADMSG, "the answer is not valid JSON: %s (line %d, column %d)", err.text,
                        err.line, err.column);
                goto fail;
        }
        st = calloc(1, sizeof(PortalStatus));
        if (!st || (n_asked > 0 && !(st->certs = calloc(n_asked, sizeof(PortalCertStatus))))) {
                r = -ENOMEM;
                goto fail;
        }
        st->n_certs = n_asked;
        r = parse_top(&p, root, asked, st);
        if (r < 0)
                goto fail;
        *ret = TAKE_PTR(st);
        return 0;
fail:
        if (ret_message)
                *ret_message = TAKE_PTR(message);
        return r;
}

/* Appends printable ASCII of s to out (of cap bytes, holding *o), others as '?'. */
static void append_sanitized(char *out, size_t cap, size_t *o, const char *s) {
        for (; *s && *o + 1 < cap; s++)
                out[(*o)++] = *s >= 0x20 && *s <= 0x7e ? *s : '?';
        out[*o] = '\0';
}

int portal_error_body_describe(const char *body, size_t len, char **ret) {
        _cleanup_(json_decrefp) json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        const char *error, *message;
        char *out;
        size_t o = 0;

        error = json_string_value(json_object_get(root, "error"));
        message = json_string_value(json_object_get(root, "message"));
        if (!error)
                return -EBADMSG;
        out = malloc(PORTAL_ERROR_DESCRIPTION_MAX + 1);
        if (!out)
                return -ENOMEM;
        out[0] = '\0';
        append_sanitized(out, PORTAL_ERROR_DESCRIPTION_MAX + 1, &o, error);
        if (message) {
                append_sanitized(out, PORTAL_ERROR_DESCRIPTION_MAX + 1, &o, ": ");
                append_sanitized(out, PORTAL_ERROR_DESCRIPTION_MAX + 1, &o, message);
        }
        *ret = out;
        return 0;
}
