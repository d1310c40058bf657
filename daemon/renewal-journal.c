/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "renewal-journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic-file.h"
#include "hex.h"
#include "x509-info.h"

#define MAGIC "keyrenew-renewal-journal"
#define VERSION 1
#define PREFIX "renewal-"
#define SUFFIX ".journal"
#define TMP_SUFFIX ".tmp"
#define HISTORY "history.jsonl"
#define HEADER_LEN (sizeof(MAGIC) - 1 + 3 + 64 + 1) /* "MAGIC 1 <hex>\n" */

static const char *const step_names[_RENEWAL_STEP_MAX] = {
        [RENEWAL_STARTED] = "started",     [RENEWAL_KEY_GENERATED] = "key-generated",
        [RENEWAL_ISSUED] = "issued",       [RENEWAL_WRITTEN] = "written",
        [RENEWAL_VERIFIED] = "verified",   [RENEWAL_CONFIRMED] = "confirmed",
        [RENEWAL_DONE] = "done",           [RENEWAL_FAILED] = "failed",
        [RENEWAL_CANCELLED] = "cancelled",
};

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

const char *renewal_step_to_string(RenewalStep s) {
        return s >= 0 && s < _RENEWAL_STEP_MAX ? step_names[s] : NULL;
}

int renewal_step_from_string(const char *s, RenewalStep *ret) {
        for (RenewalStep i = 0; s && i < _RENEWAL_STEP_MAX; i++)
                if (strcmp(s, step_names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

bool renewal_step_is_final(RenewalStep s) {
        return s == RENEWAL_DONE || s == RENEWAL_FAILED || s == RENEWAL_CANCELLED;
}

RenewalJournal *renewal_journal_free(RenewalJournal *j) {
        if (!j)
                return NULL;
        free(j->order_id);
        free(j->token_serial);
        free(j->old_cert_id);
        free(j->cmp_url);
        free(j->old_cert);
        free(j->new_public_key);
        free(j->new_cert);
        free(j->reason);
        free(j);
        return NULL;
}

static bool order_id_is_valid(const char *id) {
        size_t n = id ? strnlen(id, RENEWAL_ORDER_ID_MAX + 1) : 0;

        if (n == 0 || n > RENEWAL_ORDER_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (id[i] < 0x20 || id[i] > 0x7e)
                        return false;
        return true;
}

/* Printable, short and without a ':' ambiguity: ISSUER_HASH:SERIAL. */
static bool text_is_valid(const char *s, size_t max) {
        size_t n = s ? strnlen(s, max + 1) : 0;

        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static bool cert_id_is_valid(const char *id) {
        const char *colon = id ? strchr(id, ':') : NULL;

        if (!colon || colon - id != 64 || strspn(id, "0123456789abcdef") != 64)
                return false;
        colon++;
        if (*colon == '-')
                colon++;
        return *colon && strlen(colon) <= 40 && strspn(colon, "0123456789abcdef") == strlen(colon);
}

static int file_name(const char *order_id, const char *suffix, char **ret) {
        _cleanup_free_ char *hex = hex_encode(order_id, strlen(order_id));
        char *name = NULL;

        if (!hex || asprintf(&name, PREFIX "%s" SUFFIX "%s", hex, suffix) < 0)
                return -ENOMEM;
        *ret = name;
        return 0;
}

static int sha256_hex(const void *data, size_t len, char out[static 65]) {
        unsigned char md[32];
        unsigned mdlen = 0;

        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof(md))
                return -EIO;
        return hex_format(md, sizeof(md), 0, out, 65) < 0 ? -EIO : 0;
}

static int set_hex(json_t *o, const char *key, const uint8_t *data, size_t len) {
        _cleanup_free_ char *hex = NULL;

        if (!data)
                return 0;
        hex = hex_encode(data, len);
        if (!hex || json_object_set_new(o, key, json_string(hex)) < 0)
                return -ENOMEM;
        return 0;
}

static json_t *journal_to_json(const RenewalJournal *j) {
        json_auto_t *o = json_pack(
                "{s:s, s:i, s:s, s:s, s:I, s:s, s:s, s:i, s:i, s:s, s:b, s:s, s:I, s:I, s:I}", "format",
                MAGIC, "version", VERSION, "step", renewal_step_to_string(j->step), "reached",
                renewal_step_to_string(j->reached), "seq", (json_int_t) j->seq, "order", j->order_id,
                "token", j->token_serial, "slot", (int) j->slot, "new_slot", (int) j->new_slot, "old_cert",
                j->old_cert_id, "rekey", j->rekey, "cmp", j->cmp_url, "uid", (json_int_t) j->uid, "created",
                (json_int_t) j->created, "updated", (json_int_t) j->updated);

        if (!o || set_hex(o, "old_cert_der", j->old_cert, j->old_cert_len) < 0 ||
            set_hex(o, "new_public_key", j->new_public_key, j->new_public_key_len) < 0 ||
            set_hex(o, "new_cert", j->new_cert, j->new_cert_len) < 0 ||
            (j->reason && json_object_set_new(o, "reason", json_string(j->reason)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

/* Temporary file, fsync, rename, fsync of the directory: after a crash the
 * journal is either the old step or the new one, whole. */
static int journal_write(int dir_fd, const RenewalJournal *j) {
        _cleanup_free_ char *name = NULL, *tmp = NULL, *body = NULL, *file = NULL;
        json_auto_t *o = journal_to_json(j);
        char digest[65];
        int r;

        if (!o)
                return -ENOMEM;
        body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!body)
                return -ENOMEM;
        r = sha256_hex(body, strlen(body), digest);
        if (r < 0)
                return r;
        if (asprintf(&file, MAGIC " %d %s\n%s\n", VERSION, digest, body) < 0)
                return -ENOMEM;
        r = file_name(j->order_id, "", &name);
        if (r < 0)
                return r;
        r = file_name(j->order_id, TMP_SUFFIX, &tmp);
        if (r < 0)
                return r;
        return atomic_file_write_at(dir_fd, name, tmp, file, strlen(file), 0600);
}

/* The buffer starts at the file's size, not at max: the history's max is
 * 64 MiB, which every read allocated (and under ASan poisoned) up front. It
 * grows when the file does while it is read. */
static int read_file_at(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap;
        struct stat st;

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        /* One byte more than the size, to see the end without a second read into a full buffer. */
        cap = (size_t) st.st_size + 1;
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (len == cap) {
                        char *p;

                        if (cap > max)
                                return -EFBIG;
                        cap = cap > max / 2 ? max + 1 : 2 * cap;
                        p = realloc(buf, cap + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                k = read(fd, buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (len > max)
                return -EFBIG;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int get_string(json_t *o, const char *key, bool required, char **ret) {
        json_t *v = json_object_get(o, key);
        char *s;

        if (!v) {
                if (required)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        s = strdup(json_string_value(v));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int get_hex(json_t *o, const char *key, uint8_t **ret, size_t *ret_len) {
        json_t *v = json_object_get(o, key);
        int r;

        if (!v) {
                *ret = NULL;
                *ret_len = 0;
                return 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strspn(json_string_value(v), "0123456789abcdef") != json_string_length(v))
                return -EBADMSG;
        r = hex_decode(json_string_value(v), ret, ret_len);
        return r == -ENOMEM ? r : r < 0 ? -EBADMSG : 0;
}

static int get_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t *ret) {
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 0;
}

static int get_step(json_t *o, const char *key, RenewalStep *ret) {
        json_t *v = json_object_get(o, key);

        return json_is_string(v) && renewal_step_from_string(json_string_value(v), ret) == 0 ? 0 : -EBADMSG;
}

/* Does the certificate certify exactly this SubjectPublicKeyInfo? */
static int cert_matches_key(const uint8_t *cert, size_t cert_len, const uint8_t *spki, size_t spki_len) {
        const unsigned char *p = cert;
        X509 *x = d2i_X509(NULL, &p, (long) cert_len);
        unsigned char *der = NULL;
        int n, r;

        if (!x || p != cert + cert_len) {
                X509_free(x);
                return -EBADMSG;
        }
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        r = n > 0 && (size_t) n == spki_len && memcmp(der, spki, spki_len) == 0 ? 0 : -EKEYREJECTED;
        OPENSSL_free(der);
        X509_free(x);
        return r;
}

static const char *const known_keys[] = {
        "format",  "version",  "step",           "reached",      "seq",    "order", "token",
        "slot",    "new_slot", "old_cert",       "old_cert_der", "rekey",  "cmp",   "uid",
        "created", "updated",  "new_public_key", "new_cert",     "reason",
};

static bool only_known_keys(json_t *o) {
        const char *key;
        json_t *v;

        json_object_foreach(o, key, v) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(known_keys) && !found; i++)
                        found = strcmp(key, known_keys[i]) == 0;
                if (!found)
                        return false;
        }
        return true;
}

/* What each step must and must not carry: a file that says ISSUED without a
 * certificate is as corrupt as one with a bad checksum. */
static int journal_check(const RenewalJournal *j) {
        bool final_bad = renewal_step_is_final(j->step) && j->step != RENEWAL_DONE;

        if (!order_id_is_valid(j->order_id) || !text_is_valid(j->token_serial, 256) ||
            !cert_id_is_valid(j->old_cert_id) || !text_is_valid(j->cmp_url, 2048) || !j->old_cert ||
            j->seq == 0 || j->updated < j->created)
                return -EBADMSG;
        if (final_bad ? (!j->reason || renewal_step_is_final(j->reached))
                      : (j->reason || j->reached != j->step))
                return -EBADMSG;
        if ((j->reached >= RENEWAL_KEY_GENERATED) != (j->new_public_key != NULL))
                return -EBADMSG;
        if ((j->reached >= RENEWAL_ISSUED) != (j->new_cert != NULL))
                return -EBADMSG;
        if (j->new_cert &&
            cert_matches_key(j->new_cert, j->new_cert_len, j->new_public_key, j->new_public_key_len) < 0)
                return -EBADMSG;
        /* Each write is one step: fewer writes than steps is a forged file. */
        if (j->seq < (uint64_t) j->reached + 1 + (final_bad ? 1 : 0))
                return -EBADMSG;
        return 0;
}

static int journal_from_json(json_t *o, RenewalJournal **ret) {
        _cleanup_(renewal_journal_freep) RenewalJournal *j = calloc(1, sizeof(*j));
        json_t *format = json_object_get(o, "format"), *rekey = json_object_get(o, "rekey");
        json_int_t version, seq, slot, new_slot, uid, created, updated;
        int r;

        if (!j)
                return -ENOMEM;
        if (!json_is_object(o) || !only_known_keys(o) || !json_is_string(format) ||
            strcmp(json_string_value(format), MAGIC) != 0 ||
            get_int(o, "version", VERSION, VERSION, &version) < 0 ||
            get_int(o, "seq", 1, INT64_MAX, &seq) < 0 || get_int(o, "slot", 0, 255, &slot) < 0 ||
            get_int(o, "new_slot", 0, 255, &new_slot) < 0 || get_int(o, "uid", -1, UINT32_MAX, &uid) < 0 ||
            get_int(o, "created", 0, INT64_MAX, &created) < 0 ||
            get_int(o, "updated", 0, INT64_MAX, &updated) < 0 || get_step(o, "step", &j->step) < 0 ||
            get_step(o, "reached", &j->reached) < 0 || !json_is_boolean(rekey))
                return -EBADMSG;
        j->seq = (uint64_t) seq;
        j->slot = (uint8_t) slot;
        j->new_slot = (uint8_t) new_slot;
        j->uid = uid;
        j->created = created;
        j->updated = updated;
        j->rekey = json_is_true(rekey);
        if ((r = get_string(o, "order", true, &j->order_id)) < 0 ||
            (r = get_string(o, "token", true, &j->token_serial)) < 0 ||
            (r = get_string(o, "old_cert", true, &j->old_cert_id)) < 0 ||
            (r = get_string(o, "cmp", true, &j->cmp_url)) < 0 ||
            (r = get_string(o, "reason", false, &j->reason)) < 0 ||
            (r = get_hex(o, "old_cert_der", &j->old_cert, &j->old_cert_len)) < 0 ||
            (r = get_hex(o, "new_public_key", &j->new_public_key, &j->new_public_key_len)) < 0 ||
            (r = get_hex(o, "new_cert", &j->new_cert, &j->new_cert_len)) < 0)
                return r;
        r = journal_check(j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

static int journal_parse(const char *buf, size_t len, RenewalJournal **ret) {
        char header[HEADER_LEN + 1], digest[65];
        const char *body = buf + HEADER_LEN;
        size_t body_len;
        json_auto_t *o = NULL;
        int r;

        if (len < HEADER_LEN + 3 || buf[len - 1] != '\n' || memchr(buf, '\0', len))
                return -EBADMSG;
        body_len = len - HEADER_LEN - 1;
        r = sha256_hex(body, body_len, digest);
        if (r < 0)
                return r;
        (void) snprintf(header, sizeof(header), MAGIC " %d %s\n", VERSION, digest);
        if (memcmp(buf, header, HEADER_LEN) != 0)
                return -EBADMSG;
        o = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return -EBADMSG;
        return journal_from_json(o, ret);
}

static int journal_load_file(int dir_fd, const char *name, RenewalJournal **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r;

        r = read_file_at(dir_fd, name, RENEWAL_FILE_MAX, &buf, &len);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        return journal_parse(buf, len, ret);
}

int renewal_journal_load(int dir_fd, const char *order_id, RenewalJournal **ret) {
        _cleanup_(renewal_journal_freep) RenewalJournal *j = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        if (!order_id_is_valid(order_id))
                return -EINVAL;
        r = file_name(order_id, "", &name);
        if (r < 0)
                return r;
        r = journal_load_file(dir_fd, name, &j);
        if (r < 0)
                return r;
        /* The name says which order the file is for; a renamed file is not it. */
        if (strcmp(j->order_id, order_id) != 0)
                return -EBADMSG;
        *ret = TAKE_PTR(j);
        return 0;
}

int renewal_journal_start(int dir_fd, const RenewalJournalStart *start, time_t now, RenewalJournal **ret) {
        _cleanup_(renewal_journal_freep) RenewalJournal *j = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        if (!start || !order_id_is_valid(start->order_id) || !text_is_valid(start->token_serial, 256) ||
            !cert_id_is_valid(start->old_cert_id) || !text_is_valid(start->cmp_url, 2048) ||
            !start->old_cert || start->old_cert_len == 0 || start->old_cert_len > 65536 || start->uid < -1 ||
            start->uid > UINT32_MAX || now < 0)
                return -EINVAL;
        r = file_name(start->order_id, "", &name);
        if (r < 0)
                return r;
        if (faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return -EEXIST;
        if (errno != ENOENT)
                return negative_errno();

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->order_id = strdup(start->order_id);
        j->token_serial = strdup(start->token_serial);
        j->old_cert_id = strdup(start->old_cert_id);
        j->cmp_url = strdup(start->cmp_url);
        j->old_cert = malloc(start->old_cert_len);
        if (!j->order_id || !j->token_serial || !j->old_cert_id || !j->cmp_url || !j->old_cert)
                return -ENOMEM;
        memcpy(j->old_cert, start->old_cert, start->old_cert_len);
        j->old_cert_len = start->old_cert_len;
        j->step = j->reached = RENEWAL_STARTED;
        j->seq = 1;
        j->slot = start->slot;
        j->new_slot = start->new_slot;
        j->rekey = start->rekey;
        j->uid = start->uid;
        j->created = j->updated = now;
        r = journal_write(dir_fd, j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

/* Writes next, which is j one step on (sharing j's other fields), and only
 * once it is on disk makes j so: on failure j is left as it was. */
static int journal_commit(int dir_fd, RenewalJournal *j, RenewalJournal *next, time_t now) {
        int r;

        next->seq = j->seq + 1;
        next->updated = now > j->updated ? now : j->updated;
        r = journal_write(dir_fd, next);
        if (r < 0)
                return r;
        *j = *next;
        return 0;
}

int renewal_journal_key_generated(int dir_fd, RenewalJournal *j, const void *spki, size_t len, time_t now) {
        RenewalJournal next;
        const unsigned char *p = spki;
        EVP_PKEY *pkey;
        uint8_t *copy;
        int r;

        if (!j || j->step != RENEWAL_STARTED || !spki || len == 0 || len > 16384)
                return -EINVAL;
        /* A key that OpenSSL cannot read back would make the request fail later. */
        pkey = d2i_PUBKEY(NULL, &p, (long) len);
        EVP_PKEY_free(pkey);
        if (!pkey || p != (const unsigned char *) spki + len)
                return -EINVAL;
        copy = malloc(len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, spki, len);
        next = *j;
        next.step = next.reached = RENEWAL_KEY_GENERATED;
        next.new_public_key = copy;
        next.new_public_key_len = len;
        r = journal_commit(dir_fd, j, &next, now);
        if (r < 0)
                free(copy);
        return r;
}

int renewal_journal_issued(int dir_fd, RenewalJournal *j, const void *cert, size_t len, time_t now) {
        RenewalJournal next;
        uint8_t *copy;
        int r;

        if (!j || j->step != RENEWAL_KEY_GENERATED || !cert || len == 0 || len > 65536)
                return -EINVAL;
        r = cert_matches_key(cert, len, j->new_public_key, j->new_public_key_len);
        if (r < 0)
                return r == -EBADMSG ? -EINVAL : r;
        copy = malloc(len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, cert, len);
        next = *j;
        next.step = next.reached = RENEWAL_ISSUED;
        next.new_cert = copy;
        next.new_cert_len = len;
        r = journal_commit(dir_fd, j, &next, now);
        if (r < 0)
                free(copy);
        return r;
}

int renewal_journal_advance(int dir_fd, RenewalJournal *j, RenewalStep step, time_t now) {
        RenewalJournal next;

        if (!j || step < RENEWAL_WRITTEN || step > RENEWAL_DONE || j->step != step - 1)
                return -EINVAL;
        next = *j;
        next.step = next.reached = step;
        return journal_commit(dir_fd, j, &next, now);
}

int renewal_journal_end(int dir_fd, RenewalJournal *j, RenewalStep step, const char *reason, time_t now) {
        RenewalJournal next;
        char *copy;
        int r;

        if (!j || (step != RENEWAL_FAILED && step != RENEWAL_CANCELLED) || renewal_step_is_final(j->step) ||
            !text_is_valid(reason, 4096))
                return -EINVAL;
        copy = strdup(reason);
        if (!copy)
                return -ENOMEM;
        next = *j;
        next.step = step;
        next.reason = copy;
        r = journal_commit(dir_fd, j, &next, now);
        if (r < 0)
                free(copy);
        return r;
}

int renewal_journal_remove(int dir_fd, const RenewalJournal *j) {
        _cleanup_free_ char *name = NULL;
        int r;

        if (!j || !renewal_step_is_final(j->step))
                return -EBUSY;
        r = file_name(j->order_id, "", &name);
        if (r < 0)
                return r;
        if (unlinkat(dir_fd, name, 0) < 0)
                return negative_errno();
        return fsync(dir_fd) < 0 ? negative_errno() : 0;
}

void renewal_journal_list_free(RenewalJournal **list, size_t n) {
        for (size_t i = 0; list && i < n; i++)
                renewal_journal_free(list[i]);
        free(list);
}

static void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static int cmp_journal(const void *a, const void *b) {
        return strcmp((*(RenewalJournal *const *) a)->order_id, (*(RenewalJournal *const *) b)->order_id);
}

static bool is_journal_name(const char *name) {
        size_t n = strlen(name);

        return n > strlen(PREFIX) + strlen(SUFFIX) && strncmp(name, PREFIX, strlen(PREFIX)) == 0 &&
               strcmp(name + n - strlen(SUFFIX), SUFFIX) == 0;
}

static int push(void **array, size_t *n, size_t size, const void *item) {
        void *a = reallocarray(*array, *n + 2, size);

        if (!a)
                return -ENOMEM;
        memcpy((char *) a + *n * size, item, size);
        memset((char *) a + (*n + 1) * size, 0, size);
        *array = a;
        (*n)++;
        return 0;
}

int renewal_journal_list(int dir_fd, bool include_final, RenewalJournal ***ret, size_t *ret_n,
                         char ***ret_bad) {
        RenewalJournal **list = NULL;
        char **bad = NULL;
        size_t n = 0, n_bad = 0;
        _cleanup_(closedirp) DIR *d = NULL;
        int fd, r = 0;
        struct dirent *de;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                close(fd);
                return r;
        }
        bad = calloc(1, sizeof(char *));
        if (!bad)
                return -ENOMEM;
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                RenewalJournal *j = NULL;
                _cleanup_free_ char *expected = NULL;
                char *copy;

                if (!is_journal_name(de->d_name))
                        continue;
                r = journal_load_file(dir_fd, de->d_name, &j);
                if (r == -ENOMEM)
                        break;
                if (r >= 0 && (r = file_name(j->order_id, "", &expected)) >= 0 &&
                    strcmp(expected, de->d_name) != 0)
                        r = -EBADMSG;
                if (r < 0) {
                        renewal_journal_free(j);
                        copy = strdup(de->d_name);
                        r = copy ? push((void **) &bad, &n_bad, sizeof(char *), &copy) : -ENOMEM;
                        if (r < 0)
                                free(copy);
                        continue;
                }
                if (!include_final && renewal_step_is_final(j->step)) {
                        renewal_journal_free(j);
                        continue;
                }
                r = push((void **) &list, &n, sizeof(RenewalJournal *), &j);
                if (r < 0)
                        renewal_journal_free(j);
        }
        if (r >= 0 && errno != 0)
                r = negative_errno();
        if (r < 0) {
                renewal_journal_list_free(list, n);
                strv_free(bad);
                return r;
        }
        if (n > 0)
                qsort(list, n, sizeof(*list), cmp_journal);
        *ret = list;
        *ret_n = n;
        *ret_bad = bad;
        return 0;
}

static int new_cert_facts(const RenewalJournal *j, char **ret_serial, char **ret_not_after) {
        _cleanup_(x509_info_freep) X509Info *info = NULL;
        const char *digits;
        bool neg;
        char buf[32];
        struct tm tm;
        int r;

        if (!j->new_cert) {
                *ret_serial = *ret_not_after = NULL;
                return 0;
        }
        r = x509_info_parse(j->new_cert, j->new_cert_len, &info);
        if (r < 0)
                return r;
        if (!gmtime_r(&info->not_after, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        /* The protocol's spelling, as in old_cert: no leading zeros. */
        neg = info->serial[0] == '-';
        digits = info->serial + neg + strspn(info->serial + neg, "0");
        if (asprintf(ret_serial, "%s%s", neg ? "-" : "", *digits ? digits : "0") < 0)
                *ret_serial = NULL;
        *ret_not_after = strdup(buf);
        if (!*ret_serial || !*ret_not_after) {
                free(*ret_serial);
                free(*ret_not_after);
                return -ENOMEM;
        }
        return 0;
}

static int history_has(int dir_fd, const RenewalJournal *j) {
        json_auto_t *h = NULL;
        size_t bad, i;
        json_t *e;
        int r;

        r = renewal_history_read(dir_fd, &h, &bad);
        if (r < 0)
                return r;
        json_array_foreach(h, i, e) {
                json_t *seq = json_object_get(e, "journal_seq");
                if (strcmp(json_string_value(json_object_get(e, "order")), j->order_id) == 0 &&
                    json_is_integer(seq) && json_integer_value(seq) == (json_int_t) j->seq)
                        return 1;
        }
        return 0;
}

int renewal_history_append(int dir_fd, const RenewalJournal *j, time_t now) {
        _cleanup_free_ char *serial = NULL, *not_after = NULL, *body = NULL, *line = NULL;
        _cleanup_close_ int fd = -1;
        json_auto_t *o = NULL;
        struct stat st;
        char last = 0;
        int r;

        if (!j || !renewal_step_is_final(j->step))
                return -EBUSY;
        r = history_has(dir_fd, j);
        if (r != 0)
                return r < 0 ? r : 0;
        /* The load checks the certificate against the key with d2i_X509()
         * alone, which takes dates x509-info cannot read: record the outcome
         * without the new serial and date then, or the journal could never
         * be removed (its history line is written first). */
        if (new_cert_facts(j, &serial, &not_after) == -ENOMEM)
                return -ENOMEM;
        o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s?, s:s?, s:I, s:s, s:s?, s:I}", "order", j->order_id,
                      "token", j->token_serial, "slot", (int) j->slot, "old_cert", j->old_cert_id,
                      "old_serial", strchr(j->old_cert_id, ':') + 1, "new_serial", serial, "not_after",
                      not_after, "time", (json_int_t) now, "outcome", renewal_step_to_string(j->step),
                      "reason", j->reason, "journal_seq", (json_int_t) j->seq);
        if (!o)
                return -ENOMEM;
        body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!body || asprintf(&line, "%s\n", body) < 0)
                return -ENOMEM;

        fd = openat(dir_fd, HISTORY, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size == 0 && fchmod(fd, 0600) < 0)
                return negative_errno();
        /* After a torn append, start a line of our own. */
        if (st.st_size > 0 && (pread(fd, &last, 1, st.st_size - 1) != 1 || last != '\n'))
                r = write_all(fd, "\n", 1);
        if (r >= 0)
                r = write_all(fd, line, strlen(line));
        if (r < 0)
                return r;
        if (fsync(fd) < 0)
                return negative_errno();
        /* The first line also created the file: its name must last too. */
        return st.st_size == 0 && fsync(dir_fd) < 0 ? negative_errno() : 0;
}

int renewal_history_read(int dir_fd, json_t **ret, size_t *ret_bad) {
        _cleanup_free_ char *buf = NULL;
        json_auto_t *a = json_array();
        size_t len = 0, bad = 0;
        int r;

        if (!a)
                return -ENOMEM;
        r = read_file_at(dir_fd, HISTORY, 64 * 1024 * 1024, &buf, &len);
        if (r < 0 && r != -ENOENT)
                return r;
        for (char *p = buf, *nl; r >= 0 && p && p < buf + len; p = nl + 1) {
                json_t *o;

                nl = memchr(p, '\n', len - (size_t) (p - buf));
                if (!nl) {
                        bad++; /* a torn last line */
                        break;
                }
                o = json_loadb(p, (size_t) (nl - p), JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(o) || !json_is_string(json_object_get(o, "order"))) {
                        json_decref(o);
                        bad++;
                        continue;
                }
                if (json_array_append_new(a, o) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        *ret_bad = bad;
        return 0;
}
