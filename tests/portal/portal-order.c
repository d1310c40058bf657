/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-order.h"

#include <errno.h>
#include <string.h>

#define CMP_PATH "/.well-known/cmp/p/renew"

static int set_new(json_t *obj, const char *key, json_t *value) {
        return value && json_object_set_new(obj, key, value) == 0 ? 0 : -ENOMEM;
}

static int set_time(json_t *obj, const char *key, time_t t) {
        char buf[21];
        int r = time_to_rfc3339(t, buf);

        return r < 0 ? r : set_new(obj, key, json_string(buf));
}

static int set_url(json_t *obj, const char *key, const char *base_url, const char *path, const char *id) {
        _cleanup_free_ char *url = NULL;

        if (asprintf(&url, "%s%s%s", base_url, path, id ? id : "") < 0)
                return -ENOMEM;
        return set_new(obj, key, json_string(url));
}

/* The new certificate's end of validity. */
static int set_not_after(sqlite3 *db, json_t *obj, const Order *o) {
        CertRow c;
        int r = db_cert_get(db, o->issuer_hash, o->new_serial, &c);

        if (r < 0)
                return r;
        r = set_time(obj, "not_after", c.not_after);
        cert_row_done(&c);
        return r;
}

int order_to_json(sqlite3 *db, const Order *o, const char *base_url, json_t **ret) {
        _cleanup_(json_decrefp) json_t *obj = json_object();
        int r;

        if (!obj)
                return -ENOMEM;
        r = set_new(obj, "id", json_string(o->id));
        if (r >= 0)
                r = set_new(obj, "state", json_string(order_state_to_string(o->state)));
        if (r >= 0)
                r = set_new(obj, "rekey", json_boolean(o->rekey));
        if (r >= 0)
                r = set_new(obj, "validity_days", json_integer(o->validity_days));
        if (r >= 0 && base_url)
                r = set_url(obj, "page", base_url, "/orders/", o->id);
        if (r >= 0 && base_url && (o->state == ORDER_APPROVED || o->state == ORDER_ISSUED))
                r = set_url(obj, "cmp", base_url, CMP_PATH, NULL);
        if (r >= 0 && o->state == ORDER_REJECTED)
                r = set_new(obj, "reject_reason", json_string(o->reject_reason ? o->reject_reason : ""));
        if (r >= 0 && (o->state == ORDER_ISSUED || o->state == ORDER_INSTALLED))
                r = set_not_after(db, obj, o);
        if (r >= 0)
                r = set_time(obj, "updated", o->updated);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(obj);
        return 0;
}

int utf8_text_length(const char *s, size_t *ret) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = 0;

        while (*p) {
                unsigned c = *p, len = c < 0x80             ? 1
                                       : (c & 0xe0) == 0xc0 ? 2
                                       : (c & 0xf0) == 0xe0 ? 3
                                       : (c & 0xf8) == 0xf0 ? 4
                                                            : 0;
                uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;

                if (len == 0 || (len == 1 && c < 0x20 && c != '\n') || c == 0x7f)
                        return -EILSEQ;
                for (unsigned i = 1; i < len; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return -EILSEQ;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return -EILSEQ;
                p += len;
                n++;
        }
        *ret = n;
        return 0;
}
