/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The portal's SQLite database (DIR/portal.db): orders, the certificates
 * the portal knows (imported or issued) with their revocation, settings
 * (fault injection, poll interval, CRL numbers) and the CMP answers already
 * given, so that a repeated request gets the very same answer. The admin
 * command and the server share it; every write is one transaction.
 * Functions return 0, -ENOENT when a row is absent, -EIO for an SQLite error
 * (sqlite3_errmsg() tells more) or another negative errno. */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "portal-ca.h"

#define ORDER_ID_SIZE 24
#define REJECT_REASON_MAX 1024 /* UTF-8 characters, as the protocol allows */

typedef enum OrderState {
        ORDER_AWAITING_PAYMENT,
        ORDER_UNDER_REVIEW,
        ORDER_APPROVED,
        ORDER_REJECTED,
        ORDER_ISSUED,
        ORDER_INSTALLED,
        _ORDER_STATE_MAX,
} OrderState;

typedef struct Order {
        int64_t num;
        char id[ORDER_ID_SIZE];
        char issuer_hash[HASH_HEX_SIZE]; /* the old certificate */
        char serial[SERIAL_HEX_SIZE];
        OrderState state;
        bool review; /* paid orders go to a person's review first */
        bool rekey;
        int validity_days;
        char *reject_reason;              /* NULL unless rejected */
        char new_serial[SERIAL_HEX_SIZE]; /* "" until issued */
        time_t created, updated;
} Order;

typedef struct CertRow {
        char issuer_hash[HASH_HEX_SIZE];
        char serial[SERIAL_HEX_SIZE];
        char pubkey_hash[HASH_HEX_SIZE];
        char order_id[ORDER_ID_SIZE]; /* the order it was issued for, or "" */
        time_t not_after;
        time_t revoked_at; /* 0 while valid */
        X509 *cert;
} CertRow;

const char *order_state_to_string(OrderState s);
void order_done(Order *o);
void cert_row_done(CertRow *c);

/* Opens DIR/portal.db; create makes it and its tables. */
int db_open(const char *dir, bool create, sqlite3 **ret);
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3 *, sqlite3_close)

/* BEGIN IMMEDIATE: the writer lock is taken at once, so the checks made
 * inside the transaction still hold when it writes. */
int db_begin(sqlite3 *db);
int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);

/* Inserts o as a new order and fills in num, id, created and updated. */
int db_order_create(sqlite3 *db, Order *o);
int db_order_get(sqlite3 *db, const char *id, Order *ret);
/* The newest order for the certificate ISSUER_HASH:SERIAL. */
int db_order_newest(sqlite3 *db, const char *issuer_hash, const char *serial, Order *ret);
/* Writes o's state, reject_reason and new_serial, and sets updated to now. */
int db_order_update(sqlite3 *db, Order *o);
int db_order_foreach(sqlite3 *db, int (*cb)(const Order *o, void *userdata), void *userdata);

/* Records a certificate (issued for order_id, or "" when imported);
 * recording one already known does nothing. */
int db_cert_put(sqlite3 *db, X509 *cert, const char *order_id);
int db_cert_get(sqlite3 *db, const char *issuer_hash, const char *serial, CertRow *ret);
/* Revokes a known certificate and bumps its CA's CRL number; revoking it
 * again changes nothing. */
int db_cert_revoke(sqlite3 *db, const char *issuer_hash, const char *serial, int reason);
int db_crl_entries(sqlite3 *db, const char *issuer_hash, CrlEntry **ret, size_t *ret_n);
int db_crl_number(sqlite3 *db, const char *issuer_hash, long long *ret);

/* The fault_body setting: what a faulty 200 status answer carries. */
enum {
        FAULT_BODY_NONE,
        FAULT_BODY_GARBAGE,
        FAULT_BODY_OVERSIZED
};

/* What 'keyrenew-portal-admin cmp-fault set' does to one kind of CMP
 * message (settings cmp_fault_kind, cmp_fault_at: the request's body type,
 * cmp_fault_count). */
typedef enum CmpFaultKind {
        CMP_FAULT_NONE,
        CMP_FAULT_STATUS_500, /* 500 before the message is processed */
        CMP_FAULT_DROP,       /* processed, then the connection closed without an answer */
        CMP_FAULT_TRUNCATED,  /* processed, half the answer sent */
        CMP_FAULT_GARBAGE,    /* processed, a body that is not a PKIMessage sent */
} CmpFaultKind;

/* PKIBody choices of RFC 4210 (OpenSSL 3.0 keeps its names internal). */
#define CMP_BODY_KUR 7
#define CMP_BODY_CERTCONF 24

int db_setting_get(sqlite3 *db, const char *name, long long def, long long *ret);
int db_setting_set(sqlite3 *db, const char *name, long long value);

int db_reply_get(sqlite3 *db, const char *request_hash, uint8_t **ret, size_t *ret_len);
int db_reply_put(sqlite3 *db, const char *request_hash, const uint8_t *reply, size_t len);
