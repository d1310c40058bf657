/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-json.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static json_t *strv_to_json(char **l) {
        json_t *a = json_array();

        if (!a)
                return NULL;
        for (char **i = l; *i; i++)
                if (json_array_append_new(a, json_string(*i)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *number_to_json(const CtlProperty *p, const CtlNumber *n) {
        if (!n->known)
                return json_null();
        if (p->signature[0] == 'b')
                return json_boolean(n->value);
        return json_integer(n->value);
}

/* Every property of the table, null when the daemon did not give it. The
 * lists of object paths are left out: the nested objects replace them. */
static int properties_to_json(const CtlProperty *table, const void *object, json_t *o) {
        for (const CtlProperty *p = table; p->name; p++) {
                const void *field = (const char *) object + p->offset;
                json_t *v;

                if (p->signature[0] == 'a' && p->signature[1] == 'o')
                        continue;
                if (p->signature[0] == 'a')
                        v = *(char **const *) field ? strv_to_json(*(char **const *) field) : json_null();
                else if (p->signature[0] == 's' || p->signature[0] == 'o')
                        v = *(char *const *) field ? json_string(*(char *const *) field) : json_null();
                else
                        v = number_to_json(p, field);
                if (!v || json_object_set_new(o, p->name, v) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static json_t *cert_to_json(const CtlCert *c) {
        _cleanup_(json_decrefp) json_t *o = json_object();

        if (!o || json_object_set_new(o, "Path", json_string(c->path)) < 0 ||
            properties_to_json(ctl_cert_properties, c, o) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *token_to_json(const CtlToken *t) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_t *certs;

        if (!o || json_object_set_new(o, "Path", json_string(t->path)) < 0 ||
            properties_to_json(ctl_token_properties, t, o) < 0)
                return NULL;
        certs = json_array();
        if (json_object_set_new(o, "Certificates", certs) < 0)
                return NULL;
        for (size_t i = 0; i < t->n_certs; i++)
                if (json_array_append_new(certs, cert_to_json(t->certs[i])) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

int ctl_json_print(const CtlManager *m, FILE *f) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_t *tokens;

        if (!o || properties_to_json(ctl_manager_properties, m, o) < 0)
                return -ENOMEM;
        tokens = json_array();
        if (json_object_set_new(o, "Tokens", tokens) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_tokens; i++)
                if (json_array_append_new(tokens, token_to_json(m->tokens[i])) < 0)
                        return -ENOMEM;
        return ctl_json_dump(o, f);
}

int ctl_json_dump(json_t *v, FILE *f) {
        if (json_dumpf(v, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -EIO;
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}

/* One variant of a basic type as JSON; *ret stays NULL for other types,
 * which the caller skips. */
static int read_variant(sd_bus_message *m, json_t **ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (!contents || strlen(contents) != 1 || !strchr("sobyniuqxt", contents[0]))
                return sd_bus_message_skip(m, "v");
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        switch (contents[0]) {
        case 's':
        case 'o': {
                const char *s;

                r = sd_bus_message_read_basic(m, contents[0], &s);
                if (r >= 0)
                        *ret = json_string(s);
                break;
        }
        case 'b': {
                int b;

                r = sd_bus_message_read_basic(m, 'b', &b);
                if (r >= 0)
                        *ret = json_boolean(b);
                break;
        }
        default: {
                union {
                        uint8_t y;
                        int16_t n;
                        uint16_t q;
                        int32_t i;
                        uint32_t u;
                        int64_t x;
                        uint64_t t;
                } v;

                r = sd_bus_message_read_basic(m, contents[0], &v);
                if (r < 0)
                        break;
                switch (contents[0]) {
                case 'y':
                        *ret = json_integer(v.y);
                        break;
                case 'n':
                        *ret = json_integer(v.n);
                        break;
                case 'q':
                        *ret = json_integer(v.q);
                        break;
                case 'i':
                        *ret = json_integer(v.i);
                        break;
                case 'u':
                        *ret = json_integer(v.u);
                        break;
                case 'x':
                        *ret = json_integer(v.x);
                        break;
                default:
                        /* JSON's integers are signed 64 bits; keyrenewd's
                         * t values are times and fit. */
                        *ret = json_integer((json_int_t) v.t);
                }
        }
        }
        if (r < 0)
                return r;
        if (!*ret)
                return -ENOMEM;
        return sd_bus_message_exit_container(m);
}

int ctl_json_read_dict(sd_bus_message *m, json_t **ret) {
        _cleanup_(json_decrefp) json_t *o = json_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                _cleanup_(json_decrefp) json_t *v = NULL;
                const char *key;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r >= 0)
                        r = read_variant(m, &v);
                /* json_object_set_new() takes v even when it fails. */
                if (r >= 0 && v && json_object_set_new(o, key, TAKE_PTR(v)) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}
