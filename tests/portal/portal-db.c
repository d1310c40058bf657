/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-db.h"

#include <errno.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)

/* Answers to CMP requests are kept this long for repeated requests. */
#define REPLY_KEEP_SECONDS (7 * 24 * 3600)

static const char schema[] =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS orders ("
        " num INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,"
        " issuer_hash TEXT NOT NULL, serial TEXT NOT NULL, state TEXT NOT NULL,"
        " review INTEGER NOT NULL, rekey INTEGER NOT NULL, validity_days INTEGER NOT NULL,"
        " reject_reason TEXT, new_serial TEXT NOT NULL DEFAULT '',"
        " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS orders_cert ON orders (issuer_hash, serial);"
        "CREATE TABLE IF NOT EXISTS certs ("
        " issuer_hash TEXT NOT NULL, serial TEXT NOT NULL, pubkey_hash TEXT NOT NULL,"
        " subject TEXT NOT NULL, order_id TEXT NOT NULL DEFAULT '', not_after INTEGER NOT NULL,"
        " revoked_at INTEGER NOT NULL DEFAULT 0, revoke_reason INTEGER NOT NULL DEFAULT 0,"
        " der BLOB NOT NULL, PRIMARY KEY (issuer_hash, serial));"
        "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS cmp_replies ("
        " request_sha256 TEXT PRIMARY KEY, reply BLOB NOT NULL, created INTEGER NOT NULL);";

static const char *const order_state_names[_ORDER_STATE_MAX] = {
        [ORDER_AWAITING_PAYMENT] = "awaiting-payment",
        [ORDER_UNDER_REVIEW] = "under-review",
        [ORDER_APPROVED] = "approved",
        [ORDER_REJECTED] = "rejected",
        [ORDER_ISSUED] = "issued",
        [ORDER_INSTALLED] = "installed",
};

const char *order_state_to_string(OrderState s) {
        return s >= 0 && s < _ORDER_STATE_MAX ? order_state_names[s] : NULL;
}

static int order_state_from_string(const char *s, OrderState *ret) {
        for (OrderState i = 0; i < _ORDER_STATE_MAX; i++)
                if (strcmp(s, order_state_names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

void order_done(Order *o) {
        free(o->reject_reason);
        o->reject_reason = NULL;
}

void cert_row_done(CertRow *c) {
        X509_free(c->cert);
        c->cert = NULL;
}

int db_open(const char *dir, bool create, sqlite3 **ret) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_free_ char *path = NULL;
        int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);

        if (asprintf(&path, "%s/portal.db", dir) < 0)
                return -ENOMEM;
        if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK)
                return db ? -EIO : -ENOMEM;
        /* The admin command and the server write the same file. */
        if (sqlite3_busy_timeout(db, 10000) != SQLITE_OK)
                return -EIO;
        if (create && sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
                return -EIO;
        *ret = TAKE_PTR(db);
        return 0;
}

int db_begin(sqlite3 *db) {
        return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int db_commit(sqlite3 *db) {
        return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

void db_rollback(sqlite3 *db) {
        (void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret) {
        return sqlite3_prepare_v2(db, sql, -1, ret, NULL) == SQLITE_OK ? 0 : -EIO;
}

static void copy_column(sqlite3_stmt *st, int col, char *buf, size_t cap) {
        const unsigned char *s = sqlite3_column_text(st, col);

        snprintf(buf, cap, "%s", s ? (const char *) s : "");
}

#define ORDER_COLUMNS                                                                        \
        "num, id, issuer_hash, serial, state, review, rekey, validity_days, reject_reason, " \
        "new_serial, created, updated"

static int order_from_row(sqlite3_stmt *st, Order *ret) {
        Order o = {
                .num = sqlite3_column_int64(st, 0),
                .review = sqlite3_column_int(st, 5) != 0,
                .rekey = sqlite3_column_int(st, 6) != 0,
                .validity_days = sqlite3_column_int(st, 7),
                .created = (time_t) sqlite3_column_int64(st, 10),
                .updated = (time_t) sqlite3_column_int64(st, 11),
        };
        const unsigned char *state = sqlite3_column_text(st, 4);
        const unsigned char *reason = sqlite3_column_text(st, 8);

        copy_column(st, 1, o.id, sizeof(o.id));
        copy_column(st, 2, o.issuer_hash, sizeof(o.issuer_hash));
        copy_column(st, 3, o.serial, sizeof(o.serial));
        copy_column(st, 9, o.new_serial, sizeof(o.new_serial));
        if (!state || order_state_from_string((const char *) state, &o.state) < 0)
                return -EBADMSG;
        if (reason) {
                o.reject_reason = strdup((const char *) reason);
                if (!o.reject_reason)
                        return -ENOMEM;
        }
        *ret = o;
        return 0;
}

/* Steps st to its first row and reads it as an order. */
static int order_step(sqlite3_stmt *st, Order *ret) {
        int r = sqlite3_step(st);

        if (r == SQLITE_DONE)
                return -ENOENT;
        if (r != SQLITE_ROW)
                return -EIO;
        return order_from_row(st, ret);
}

int db_order_create(sqlite3 *db, Order *o) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *max = NULL, *ins = NULL;
        time_t now = time(NULL);
        struct tm tm;
        int64_t num;
        char id[ORDER_ID_SIZE];

        if (prepare(db, "SELECT COALESCE(MAX(num), 0) + 1 FROM orders", &max) < 0 ||
            sqlite3_step(max) != SQLITE_ROW)
                return -EIO;
        num = sqlite3_column_int64(max, 0);
        if (!gmtime_r(&now, &tm))
                return -ERANGE;
        snprintf(id, sizeof(id), "R%04d-%06lld", tm.tm_year + 1900, (long long) num);
        if (prepare(db,
                    "INSERT INTO orders (" ORDER_COLUMNS
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, '', ?9, ?9)",
                    &ins) < 0 ||
            sqlite3_bind_int64(ins, 1, num) != SQLITE_OK ||
            sqlite3_bind_text(ins, 2, id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_bind_text(ins, 3, o->issuer_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(ins, 4, o->serial, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(ins, 5, order_state_to_string(o->state), -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(ins, 6, o->review) != SQLITE_OK ||
            sqlite3_bind_int(ins, 7, o->rekey) != SQLITE_OK ||
            sqlite3_bind_int(ins, 8, o->validity_days) != SQLITE_OK ||
            sqlite3_bind_int64(ins, 9, (sqlite3_int64) now) != SQLITE_OK || sqlite3_step(ins) != SQLITE_DONE)
                return -EIO;
        o->num = num;
        memcpy(o->id, id, sizeof(id));
        o->created = o->updated = now;
        return 0;
}

int db_order_get(sqlite3 *db, const char *id, Order *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (prepare(db, "SELECT " ORDER_COLUMNS " FROM orders WHERE id = ?1", &st) < 0 ||
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EIO;
        return order_step(st, ret);
}

int db_order_newest(sqlite3 *db, const char *issuer_hash, const char *serial, Order *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (prepare(db,
                    "SELECT " ORDER_COLUMNS " FROM orders WHERE issuer_hash = ?1 AND serial = ?2 "
                    "ORDER BY num DESC LIMIT 1",
                    &st) < 0 ||
            sqlite3_bind_text(st, 1, issuer_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EIO;
        return order_step(st, ret);
}

int db_order_update(sqlite3 *db, Order *o) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        time_t now = time(NULL);

        if (prepare(db,
                    "UPDATE orders SET state = ?1, reject_reason = ?2, new_serial = ?3, updated = ?4 "
                    "WHERE id = ?5",
                    &st) < 0 ||
            sqlite3_bind_text(st, 1, order_state_to_string(o->state), -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, o->reject_reason, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, o->new_serial, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(st, 4, (sqlite3_int64) now) != SQLITE_OK ||
            sqlite3_bind_text(st, 5, o->id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE)
                return -EIO;
        if (sqlite3_changes(db) != 1)
                return -ENOENT;
        o->updated = now;
        return 0;
}

int db_order_foreach(sqlite3 *db, int (*cb)(const Order *o, void *userdata), void *userdata) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int r;

        if (prepare(db, "SELECT " ORDER_COLUMNS " FROM orders ORDER BY num", &st) < 0)
                return -EIO;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                Order o;
                int k = order_from_row(st, &o);

                if (k >= 0) {
                        k = cb(&o, userdata);
                        order_done(&o);
                }
                if (k < 0)
                        return k;
        }
        return r == SQLITE_DONE ? 0 : -EIO;
}

int db_cert_put(sqlite3 *db, X509 *cert, const char *order_id) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
        char issuer_hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE], key_hash[HASH_HEX_SIZE];
        unsigned char *der = NULL;
        time_t not_after;
        int len, r;

        if (!subject)
                return -ENOMEM;
        r = cert_get_id(cert, issuer_hash, serial);
        if (r >= 0)
                r = pubkey_hash(X509_get0_pubkey(cert), key_hash);
        if (r >= 0)
                r = asn1_time_to_time_t(X509_get0_notAfter(cert), &not_after);
        if (r < 0)
                return r;
        len = i2d_X509(cert, &der);
        if (len <= 0)
                return -EIO;
        r = -EIO;
        if (prepare(db,
                    "INSERT OR IGNORE INTO certs (issuer_hash, serial, pubkey_hash, subject, order_id, "
                    "not_after, der) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &st) >= 0 &&
            sqlite3_bind_text(st, 1, issuer_hash, -1, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_text(st, 3, key_hash, -1, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_text(st, 4, subject, -1, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_text(st, 5, order_id, -1, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_int64(st, 6, (sqlite3_int64) not_after) == SQLITE_OK &&
            sqlite3_bind_blob(st, 7, der, len, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_DONE)
                r = 0;
        OPENSSL_free(der);
        return r;
}

int db_cert_get(sqlite3 *db, const char *issuer_hash, const char *serial, CertRow *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        CertRow c = {};
        const unsigned char *der;
        int r;

        if (prepare(db,
                    "SELECT pubkey_hash, order_id, not_after, revoked_at, der FROM certs "
                    "WHERE issuer_hash = ?1 AND serial = ?2",
                    &st) < 0 ||
            sqlite3_bind_text(st, 1, issuer_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EIO;
        r = sqlite3_step(st);
        if (r == SQLITE_DONE)
                return -ENOENT;
        if (r != SQLITE_ROW)
                return -EIO;
        snprintf(c.issuer_hash, sizeof(c.issuer_hash), "%s", issuer_hash);
        snprintf(c.serial, sizeof(c.serial), "%s", serial);
        copy_column(st, 0, c.pubkey_hash, sizeof(c.pubkey_hash));
        copy_column(st, 1, c.order_id, sizeof(c.order_id));
        c.not_after = (time_t) sqlite3_column_int64(st, 2);
        c.revoked_at = (time_t) sqlite3_column_int64(st, 3);
        der = sqlite3_column_blob(st, 4);
        c.cert = der ? d2i_X509(NULL, &der, sqlite3_column_bytes(st, 4)) : NULL;
        if (!c.cert)
                return -EBADMSG;
        *ret = c;
        return 0;
}

static int crl_number_name(const char *issuer_hash, char *buf, size_t cap) {
        return snprintf(buf, cap, "crl-number:%s", issuer_hash) < (int) cap ? 0 : -ENOBUFS;
}

int db_crl_number(sqlite3 *db, const char *issuer_hash, long long *ret) {
        char name[96];
        int r = crl_number_name(issuer_hash, name, sizeof(name));

        return r < 0 ? r : db_setting_get(db, name, 1, ret);
}

int db_cert_revoke(sqlite3 *db, const char *issuer_hash, const char *serial, int reason) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        long long number;
        char name[96];
        int r;

        if (prepare(db,
                    "UPDATE certs SET revoked_at = ?1, revoke_reason = ?2 "
                    "WHERE issuer_hash = ?3 AND serial = ?4 AND revoked_at = 0",
                    &st) < 0 ||
            sqlite3_bind_int64(st, 1, (sqlite3_int64) time(NULL)) != SQLITE_OK ||
            sqlite3_bind_int(st, 2, reason) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, issuer_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 4, serial, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE)
                return -EIO;
        if (sqlite3_changes(db) == 0)
                return 0;
        r = crl_number_name(issuer_hash, name, sizeof(name));
        if (r >= 0)
                r = db_setting_get(db, name, 1, &number);
        if (r >= 0)
                r = db_setting_set(db, name, number + 1);
        return r;
}

int db_crl_entries(sqlite3 *db, const char *issuer_hash, CrlEntry **ret, size_t *ret_n) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        _cleanup_free_ CrlEntry *entries = NULL;
        size_t n = 0, cap = 0;
        int r;

        if (prepare(db,
                    "SELECT serial, revoked_at, revoke_reason FROM certs "
                    "WHERE issuer_hash = ?1 AND revoked_at != 0 ORDER BY revoked_at",
                    &st) < 0 ||
            sqlite3_bind_text(st, 1, issuer_hash, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EIO;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        CrlEntry *p = reallocarray(entries, ncap, sizeof(CrlEntry));

                        if (!p)
                                return -ENOMEM;
                        entries = p;
                        cap = ncap;
                }
                copy_column(st, 0, entries[n].serial, sizeof(entries[n].serial));
                entries[n].when = (time_t) sqlite3_column_int64(st, 1);
                entries[n].reason = sqlite3_column_int(st, 2);
                n++;
        }
        if (r != SQLITE_DONE)
                return -EIO;
        *ret = TAKE_PTR(entries);
        *ret_n = n;
        return 0;
}

int db_setting_get(sqlite3 *db, const char *name, long long def, long long *ret) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        int r;

        if (prepare(db, "SELECT value FROM settings WHERE name = ?1", &st) < 0 ||
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EIO;
        r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
                *ret = def;
        else
                return -EIO;
        return 0;
}

int db_setting_set(sqlite3 *db, const char *name, long long value) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

        if (prepare(db, "INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)", &st) < 0 ||
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, value) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
                return -EIO;
        return 0;
}

int db_reply_get(sqlite3 *db, const char *request_hash, uint8_t **ret, size_t *ret_len) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
        const void *blob;
        uint8_t *copy;
        int r, n;

        if (prepare(db, "SELECT reply FROM cmp_replies WHERE request_sha256 = ?1", &st) < 0 ||
            sqlite3_bind_text(st, 1, request_hash, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EIO;
        r = sqlite3_step(st);
        if (r == SQLITE_DONE)
                return -ENOENT;
        if (r != SQLITE_ROW)
                return -EIO;
        blob = sqlite3_column_blob(st, 0);
        n = sqlite3_column_bytes(st, 0);
        if (!blob || n <= 0)
                return -EBADMSG;
        copy = malloc((size_t) n);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, blob, (size_t) n);
        *ret = copy;
        *ret_len = (size_t) n;
        return 0;
}

int db_reply_put(sqlite3 *db, const char *request_hash, const uint8_t *reply, size_t len) {
        _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL, *old = NULL;
        sqlite3_int64 now = (sqlite3_int64) time(NULL);

        if (len > INT32_MAX)
                return -E2BIG;
        if (prepare(db, "DELETE FROM cmp_replies WHERE created < ?1", &old) < 0 ||
            sqlite3_bind_int64(old, 1, now - REPLY_KEEP_SECONDS) != SQLITE_OK ||
            sqlite3_step(old) != SQLITE_DONE)
                return -EIO;
        if (prepare(db,
                    "INSERT OR REPLACE INTO cmp_replies (request_sha256, reply, created) VALUES (?1, ?2, "
                    "?3)",
                    &st) < 0 ||
            sqlite3_bind_text(st, 1, request_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(st, 2, reply, (int) len, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(st, 3, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
                return -EIO;
        return 0;
}
