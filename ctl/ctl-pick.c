/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-pick.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool renewable(const CtlCert *c) {
        return c->renewal_state &&
               (strcmp(c->renewal_state, "approved") == 0 || strcmp(c->renewal_state, "issued") == 0);
}

static int add(CtlCert ***list, size_t *n, CtlCert *c) {
        CtlCert **grown = realloc(*list, (*n + 2) * sizeof(CtlCert *));

        if (!grown)
                return -ENOMEM;
        grown[(*n)++] = c;
        grown[*n] = NULL;
        *list = grown;
        return 0;
}

static const CtlToken *find_token(const CtlManager *m, const char *serial, size_t len) {
        for (size_t i = 0; i < m->n_tokens; i++) {
                const char *s = m->tokens[i]->serial;

                if (s && strlen(s) == len && strncmp(s, serial, len) == 0)
                        return m->tokens[i];
        }
        return NULL;
}

/* The certificates target names, before they are counted. */
static int collect(const CtlManager *m, const char *target, CtlCert ***list, size_t *n) {
        const CtlToken *t = NULL;
        const char *slash = target ? strchr(target, '/') : NULL;
        int r = 0;

        if (target && target[0] == '/') {
                for (size_t i = 0; i < m->n_certs; i++)
                        if (strcmp(m->certs[i]->path, target) == 0)
                                return add(list, n, m->certs[i]);
                return -ENOENT;
        }
        if (target) {
                t = find_token(m, target, slash ? (size_t) (slash - target) : strlen(target));
                if (!t)
                        return -ENODEV;
        }
        if (slash) {
                for (size_t i = 0; i < t->n_certs; i++)
                        if (t->certs[i]->slot && strcasecmp(t->certs[i]->slot, slash + 1) == 0)
                                return add(list, n, t->certs[i]);
                return -ENOENT;
        }
        for (size_t i = 0; i < m->n_tokens && r >= 0; i++) {
                if (t && m->tokens[i] != t)
                        continue;
                for (size_t j = 0; j < m->tokens[i]->n_certs && r >= 0; j++)
                        if (renewable(m->tokens[i]->certs[j]))
                                r = add(list, n, m->tokens[i]->certs[j]);
        }
        return r;
}

int ctl_pick(const CtlManager *m, const char *target, CtlCert ***ret) {
        _cleanup_free_ CtlCert **list = calloc(1, sizeof(CtlCert *));
        size_t n = 0;
        int r;

        if (!list)
                return -ENOMEM;
        r = collect(m, target, &list, &n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        return (int) n;
}

const CtlToken *ctl_token_of(const CtlManager *m, const CtlCert *c) {
        for (size_t i = 0; i < m->n_tokens; i++)
                for (size_t j = 0; j < m->tokens[i]->n_certs; j++)
                        if (m->tokens[i]->certs[j] == c)
                                return m->tokens[i];
        return NULL;
}

void ctl_cert_name(const CtlManager *m, const CtlCert *c, char *buf, size_t size) {
        const CtlToken *t = ctl_token_of(m, c);

        if (t && t->serial && *t->serial && c->slot)
                snprintf(buf, size, "%s/%s", t->serial, c->slot);
        else
                snprintf(buf, size, "%s", c->path);
}
