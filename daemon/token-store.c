/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "token-store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic-file.h"
#include "expiry.h"
#include "hex.h"
#include "log.h"
#include "macro.h"
#include "portal-status.h"

#define STORE_MAGIC "keyrenew-token 1"
#define STORE_SUFFIX ".token"
/* A handful of certificates of a few KiB each, in hex. */
#define STORE_LINE_MAX (64u * 1024u)

static const char *const serial_sources[] = {
        [TOKEN_SERIAL_NONE] = "none",
        [TOKEN_SERIAL_VENDOR] = "vendor",
        [TOKEN_SERIAL_GUID] = "guid",
        [TOKEN_SERIAL_FASCN] = "fascn",
};

static int tokens_dir(const char *dir, char **ret) {
        return asprintf(ret, "%s/tokens", dir) < 0 ? -ENOMEM : 0;
}

/* Text fields are single lines: a line break (which no card or reader
 * name should hold) is written as a space. */
static void write_field(FILE *f, const char *key, const char *value) {
        if (!value[0])
                return;
        fprintf(f, "%s ", key);
        for (const char *p = value; *p; p++)
                fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
        fputc('\n', f);
}

/* A portal's text (a reject reason may hold line breaks) kept exactly:
 * '\\' and line breaks escaped. */
static void write_escaped(FILE *f, const char *key, const char *value) {
        if (!value)
                return;
        fprintf(f, "%s ", key);
        for (const char *p = value; *p; p++)
                if (*p == '\\')
                        fputs("\\\\", f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else if (*p == '\r')
                        fputs("\\r", f);
                else
                        fputc(*p, f);
        fputc('\n', f);
}

/* What the portal last said about c, after its "cert" line. */
static void write_renewal(FILE *f, const CertObject *c) {
        if (c->renewal_checked_usec == 0 && !c->announced_order)
                return;
        fprintf(f, "renewal %s %d %u %" PRIu64 "\n", c->renewal_state, c->renewal_rekey,
                c->renewal_validity_days, c->renewal_checked_usec);
        write_escaped(f, "renewal-order", c->renewal_order);
        write_escaped(f, "renewal-page", c->portal_url);
        write_escaped(f, "renewal-reason", c->reject_reason);
        write_escaped(f, "renewal-cmp", c->renewal_cmp);
        write_escaped(f, "renewal-announced", c->announced_order);
}

static int write_token(FILE *f, const TokenObject *t) {
        const TokenIdentity *id = &t->identity;

        fprintf(f, "%s\n", STORE_MAGIC);
        write_field(f, "key", t->key);
        write_field(f, "driver", t->driver);
        write_field(f, "serial-source", serial_sources[id->serial_source]);
        write_field(f, "serial", id->serial);
        write_field(f, "guid", id->guid);
        write_field(f, "fascn", id->fascn);
        write_field(f, "label", id->label);
        if (id->has_version)
                fprintf(f, "version %u.%u.%u\n", id->version[0], id->version[1], id->version[2]);
        write_field(f, "reader", t->reader);
        fprintf(f, "last-seen %" PRIu64 "\n", t->last_seen_usec);
        fprintf(f, "pin-retries %d\n", t->pin_retries);
        for (size_t i = 0; i < t->n_certs; i++) {
                const CertObject *c = t->certs[i];
                _cleanup_free_ char *hex = hex_encode(c->der, c->der_len);

                if (!hex)
                        return -ENOMEM;
                fprintf(f, "cert %s %d %s\n", c->slot_name, c->announced, hex);
                write_renewal(f, c);
        }
        return 0;
}

/* t's file name under dir and what it is to hold. */
static int format_token(const char *dir, const TokenObject *t, char **ret_path, char **ret_text,
                        size_t *ret_len) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t len = 0;
        int r;

        if (asprintf(&path, "%s/tokens/%s" STORE_SUFFIX, dir, t->name) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        r = write_token(f, t);
        if (r < 0)
                return r;
        /* Closing the stream is what makes text and len final. */
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret_path = TAKE_PTR(path);
        *ret_text = TAKE_PTR(text);
        *ret_len = len;
        return 0;
}

static int write_file(const char *dir, const char *path, const char *text, size_t len) {
        _cleanup_free_ char *tokens = NULL;
        int r;

        r = tokens_dir(dir, &tokens);
        if (r < 0)
                return r;
        /* systemd makes the state directory; --state-dir may name a new one. */
        if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || (mkdir(tokens, 0700) < 0 && errno != EEXIST))
                return negative_errno();
        return atomic_file_write(path, text, len, 0600);
}

int token_store_save(const char *dir, const TokenObject *t) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len;
        int r;

        r = format_token(dir, t, &path, &text, &len);
        if (r < 0)
                return r;
        return write_file(dir, path, text, len);
}

/* One token file with a write under way on the thread pool. */
typedef struct PendingFile {
        struct PendingFile *next;
        TokenStoreWriter *writer;
        uv_work_t work;
        char *path;
        char *text; /* being written: the pool thread's until the work is done */
        size_t len;
        char *newer; /* asked for meanwhile: written next */
        size_t newer_len;
        int error;
} PendingFile;

struct TokenStoreWriter {
        uv_loop_t *loop;
        char *dir;
        PendingFile *pending;
        bool closing;
};

int token_store_writer_new(uv_loop_t *loop, const char *dir, TokenStoreWriter **ret) {
        TokenStoreWriter *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        w->loop = loop;
        w->dir = strdup(dir);
        if (!w->dir) {
                free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

static void writer_free(TokenStoreWriter *w) {
        free(w->dir);
        free(w);
}

static void pending_free(PendingFile *p) {
        free(p->path);
        free(p->text);
        free(p->newer);
        free(p);
}

static void on_write(uv_work_t *work) {
        PendingFile *p = work->data;

        p->error = write_file(p->writer->dir, p->path, p->text, p->len);
}

static void on_written(uv_work_t *work, int status) {
        PendingFile *p = work->data;
        TokenStoreWriter *w = p->writer;

        if (p->error < 0)
                log_warning_errno(p->error, "Cannot remember a token in %s", p->path);
        free(p->text);
        p->text = TAKE_PTR(p->newer);
        p->len = p->newer_len;
        if (p->text && uv_queue_work(w->loop, &p->work, on_write, on_written) >= 0)
                return;
        for (PendingFile **q = &w->pending; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        break;
                }
        pending_free(p);
        if (w->closing && !w->pending)
                writer_free(w);
}

int token_store_writer_save(TokenStoreWriter *w, const TokenObject *t) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        PendingFile *p;
        size_t len;
        int r;

        r = format_token(w->dir, t, &path, &text, &len);
        if (r < 0)
                return r;
        for (p = w->pending; p; p = p->next)
                if (strcmp(p->path, path) == 0) {
                        free(p->newer);
                        p->newer = TAKE_PTR(text);
                        p->newer_len = len;
                        return 0;
                }
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (PendingFile){ .writer = w, .path = TAKE_PTR(path), .text = TAKE_PTR(text), .len = len };
        p->work.data = p;
        r = uv_queue_work(w->loop, &p->work, on_write, on_written);
        if (r < 0) {
                pending_free(p);
                return r;
        }
        p->next = w->pending;
        w->pending = p;
        return 0;
}

void token_store_writer_close(TokenStoreWriter *w) {
        if (!w)
                return;
        w->closing = true;
        if (!w->pending)
                writer_free(w);
}

/* What a file holds, before it becomes a token. */
typedef struct Record {
        char key[64];
        char driver[16];
        TokenIdentity identity;
        char reader[MAX_READERNAME];
        uint64_t last_seen_usec;
        int pin_retries;
} Record;

static int copy_value(char *out, size_t cap, const char *value) {
        return snprintf(out, cap, "%s", value) >= (int) cap ? -EBADMSG : 0;
}

static int parse_serial_source(const char *value, TokenSerialSource *ret) {
        for (size_t i = 0; i < ELEMENTSOF(serial_sources); i++)
                if (strcmp(value, serial_sources[i]) == 0) {
                        *ret = (TokenSerialSource) i;
                        return 0;
                }
        return -EBADMSG;
}

static int parse_int(const char *value, long long min, long long max, long long *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end || v < min || v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int parse_version(const char *value, TokenIdentity *id) {
        unsigned v[3];
        int n = 0;

        if (sscanf(value, "%3u.%3u.%3u%n", &v[0], &v[1], &v[2], &n) != 3 || value[n] || v[0] > 255 ||
            v[1] > 255 || v[2] > 255)
                return -EBADMSG;
        for (size_t i = 0; i < 3; i++)
                id->version[i] = (uint8_t) v[i];
        id->has_version = true;
        return 0;
}

static int parse_field(Record *rec, const char *key, const char *value) {
        TokenIdentity *id = &rec->identity;
        long long v;
        int r;

        if (strcmp(key, "key") == 0)
                return copy_value(rec->key, sizeof rec->key, value);
        if (strcmp(key, "driver") == 0)
                return copy_value(rec->driver, sizeof rec->driver, value);
        if (strcmp(key, "serial-source") == 0)
                return parse_serial_source(value, &id->serial_source);
        if (strcmp(key, "serial") == 0)
                return copy_value(id->serial, sizeof id->serial, value);
        if (strcmp(key, "guid") == 0)
                return copy_value(id->guid, sizeof id->guid, value);
        if (strcmp(key, "fascn") == 0)
                return copy_value(id->fascn, sizeof id->fascn, value);
        if (strcmp(key, "label") == 0)
                return copy_value(id->label, sizeof id->label, value);
        if (strcmp(key, "version") == 0)
                return parse_version(value, id);
        if (strcmp(key, "reader") == 0)
                return copy_value(rec->reader, sizeof rec->reader, value);
        if (strcmp(key, "last-seen") == 0) {
                r = parse_int(value, 0, LLONG_MAX, &v);
                rec->last_seen_usec = (uint64_t) v;
                return r;
        }
        if (strcmp(key, "pin-retries") == 0) {
                r = parse_int(value, -1, 255, &v);
                rec->pin_retries = (int) v;
                return r;
        }
        return -EBADMSG;
}

/* Undoes write_escaped() in place. */
static int unescape(char *s) {
        char *o = s;

        for (const char *p = s; *p; p++) {
                if (*p != '\\') {
                        *o++ = *p;
                        continue;
                }
                p++;
                if (*p == '\\')
                        *o++ = '\\';
                else if (*p == 'n')
                        *o++ = '\n';
                else if (*p == 'r')
                        *o++ = '\r';
                else
                        return -EBADMSG;
        }
        *o = '\0';
        return 0;
}

/* "renewal STATE REKEY VALIDITY-DAYS CHECKED-USEC" and the "renewal-*"
 * lines after it, each for the certificate of the last "cert" line. */
static int parse_renewal(CertObject *c, const char *key, char *value) {
        CertRenewal r = {
                .state = c->renewal_state,
                .order = c->renewal_order,
                .page = c->portal_url,
                .reject_reason = c->reject_reason,
                .cmp = c->renewal_cmp,
                .rekey = c->renewal_rekey,
                .validity_days = c->renewal_validity_days,
        };
        char state[PORTAL_STATE_NAME_MAX + 1];
        unsigned long long checked;
        int rekey, n = 0, k;

        if (strcmp(key, "renewal") == 0) {
                if (sscanf(value, "%64s %d %u %llu%n", state, &rekey, &r.validity_days, &checked, &n) != 4 ||
                    value[n] || (rekey != 0 && rekey != 1))
                        return -EBADMSG;
                r.state = state;
                r.rekey = rekey;
                k = cert_object_set_renewal(c, &r, checked);
                return k < 0 ? k : 0;
        }
        if (unescape(value) < 0)
                return -EBADMSG;
        if (strcmp(key, "renewal-order") == 0)
                r.order = value;
        else if (strcmp(key, "renewal-page") == 0)
                r.page = value;
        else if (strcmp(key, "renewal-reason") == 0)
                r.reject_reason = value;
        else if (strcmp(key, "renewal-cmp") == 0)
                r.cmp = value;
        else if (strcmp(key, "renewal-announced") == 0)
                return cert_object_set_announced_order(c, value);
        else
                return -EBADMSG;
        k = cert_object_set_renewal(c, &r, c->renewal_checked_usec);
        return k < 0 ? k : 0;
}

/* "cert SLOT ANNOUNCED DER-HEX" */
static int parse_cert(TokenObject *t, const char *value, CertObject **ret) {
        _cleanup_free_ uint8_t *der = NULL;
        unsigned slot;
        int announced, n = 0, r;
        size_t len;

        if (sscanf(value, "%2x %d %n", &slot, &announced, &n) != 2 || n == 0 ||
            announced < EXPIRY_LEVEL_NONE)
                return -EBADMSG;
        r = hex_decode(value + n, &der, &len);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        r = token_object_add_certificate(t, slot, der, len, announced);
        if (r < 0)
                return r;
        *ret = token_object_find_cert(t, slot);
        return 0;
}

/* Splits "key value" in place; value may be empty. */
static void split_line(char *line, const char **ret_key, char **ret_value) {
        char *space = strchr(line, ' ');

        *ret_key = line;
        *ret_value = line + strlen(line);
        if (space) {
                *space = '\0';
                *ret_value = space + 1;
        }
}

static int read_line(FILE *f, char **buf, size_t *cap) {
        ssize_t n = getline(buf, cap, f);

        if (n < 0)
                return ferror(f) ? -EIO : 0;
        if ((size_t) n > STORE_LINE_MAX)
                return -EBADMSG;
        if (n > 0 && (*buf)[n - 1] == '\n')
                (*buf)[n - 1] = '\0';
        return 1;
}

int token_store_load(const char *path, Manager *m, sd_bus *bus, TokenObject **ret) {
        _cleanup_(token_object_freep) TokenObject *t = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        Record rec = { .pin_retries = -1 };
        const char *key = NULL;
        char *value = NULL;
        CertObject *last = NULL;
        size_t cap = 0;
        bool more;
        int r;

        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        r = read_line(f, &line, &cap);
        if (r <= 0 || strcmp(line, STORE_MAGIC) != 0)
                return r < 0 ? r : -EBADMSG;

        /* The token's own fields come first, its certificates after. */
        while ((r = read_line(f, &line, &cap)) > 0) {
                split_line(line, &key, &value);
                if (strcmp(key, "cert") == 0)
                        break;
                r = parse_field(&rec, key, value);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        more = r > 0;
        if (!rec.key[0] || !rec.driver[0])
                return -EBADMSG;
        r = token_object_new(m, bus, rec.key, rec.driver, &rec.identity, &t);
        if (r < 0)
                return r;
        (void) snprintf(t->reader, sizeof t->reader, "%s", rec.reader);
        t->last_seen_usec = rec.last_seen_usec;
        t->pin_retries = rec.pin_retries;

        /* line holds the first certificate, split, if there is one; what
         * the portal said about it follows it. */
        while (more) {
                if (last && strncmp(key, "renewal", strlen("renewal")) == 0)
                        r = parse_renewal(last, key, value);
                else if (strcmp(key, "cert") == 0)
                        r = parse_cert(t, value, &last);
                else
                        return -EBADMSG;
                if (r < 0)
                        return r == -ENOMEM ? r : -EBADMSG;
                r = read_line(f, &line, &cap);
                if (r < 0)
                        return r;
                more = r > 0;
                if (more)
                        split_line(line, &key, &value);
        }
        *ret = TAKE_PTR(t);
        return 0;
}

static bool is_token_file(const char *name) {
        size_t n = strlen(name);

        return name[0] != '.' && n > strlen(STORE_SUFFIX) &&
               strcmp(name + n - strlen(STORE_SUFFIX), STORE_SUFFIX) == 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

int token_store_load_all(const char *dir, Manager *m, sd_bus *bus, token_store_found_cb found_cb,
                         void *userdata) {
        _cleanup_free_ char *tokens = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *e;
        int r, n = 0;

        r = tokens_dir(dir, &tokens);
        if (r < 0)
                return r;
        d = opendir(tokens);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        while ((e = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                TokenObject *t;

                if (!is_token_file(e->d_name))
                        continue;
                if (asprintf(&path, "%s/%s", tokens, e->d_name) < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                r = token_store_load(path, m, bus, &t);
                if (r < 0) {
                        log_warning_errno(r, "Ignoring the remembered token in %s", path);
                        continue;
                }
                found_cb(t, userdata);
                n++;
        }
        return n;
}
