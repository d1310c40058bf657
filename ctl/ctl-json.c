/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-json.h"

#include <errno.h>
#include <jansson.h>

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
        if (json_dumpf(o, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -EIO;
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}
