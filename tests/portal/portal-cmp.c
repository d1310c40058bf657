/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "portal-cmp.h"

#include <errno.h>
#include <openssl/cmp.h>
#include <openssl/cmperr.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "portal-db.h"
#include "tlv.h"

/* OSSL_CMP_SRV_CTX keeps one transaction's state (transactionID, nonces,
 * certReqId): one context per open transaction lets several clients renew
 * at once (protocol rule 5). */
#define MAX_TRANSACTIONS 32
#define TRANSACTION_IDLE_SECONDS (15 * 60)
/* How long after its end of validity a certificate may still be renewed. */
#define RENEWAL_GRACE_SECONDS (30 * 24 * 3600)

/* PKIBody choices (RFC 4210 section 5.1.2), as OSSL_CMP_MSG_get_bodytype()
 * returns them; OpenSSL 3.0 keeps its names for them internal. */
enum {
        PKIBODY_KUR = 7,
        PKIBODY_RP = 12,
        PKIBODY_PKICONF = 19,
        PKIBODY_GENP = 22,
        PKIBODY_ERROR = 23,
};

#define TEXT_NO_ORDER "no approved renewal order for this certificate"
#define TEXT_NOT_VALID "the certificate to renew is no longer valid"

typedef struct Transaction {
        CmpServer *server;
        ASN1_OCTET_STRING *id;
        OSSL_CMP_SRV_CTX *srv;
        time_t used;
        char order_id[ORDER_ID_SIZE]; /* the order this transaction's kur was for */
} Transaction;

struct CmpServer {
        sqlite3 *db;
        const PortalCas *cas;
        Transaction tx[MAX_TRANSACTIONS];
};

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_CMP_MSG *, OSSL_CMP_MSG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_CMP_CTX *, OSSL_CMP_CTX_free)

static OSSL_CMP_PKISI *reject(int fail_info_bit, const char *text) {
        log_info("CMP request rejected: %s", text);
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection, 1 << fail_info_bit, text);
}

static OSSL_CMP_PKISI *system_failure(sqlite3 *db) {
        log_error("CMP request failed in the database: %s", sqlite3_errmsg(db));
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection,
                                       1 << OSSL_CMP_PKIFAILUREINFO_systemFailure,
                                       "the portal could not process the request; try again later");
}

/* OpenSSL's own CMP messages are debug output: the callbacks log each
 * decision, and the generic protection check they would complain about is
 * replaced by signed_by(). */
static int cmp_log(const char *func, const char *file, int line, OSSL_CMP_severity level, const char *msg) {
        log_debug("openssl cmp: %s", msg);
        return 1;
}

/* Whether req's protection is a signature by cert's key. The portal pins
 * the certificate rather than validating a chain: what counts is that the
 * holder of this very certificate sent the request. Key usage is not
 * checked, as an encryption key's holder proves possession the same way. */
static bool signed_by(const OSSL_CMP_MSG *req, X509 *cert) {
        _cleanup_(OSSL_CMP_CTX_freep) OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
        bool ok = ctx && OSSL_CMP_CTX_set_log_cb(ctx, cmp_log) && OSSL_CMP_CTX_set1_srvCert(ctx, cert) &&
                  OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IGNORE_KEYUSAGE, 1) &&
                  OSSL_CMP_validate_msg(ctx, req);

        ERR_clear_error();
        return ok;
}

/* The certificate template's publicKey. OpenSSL 3.0 has no getter for it
 * (OSSL_CRMF_CERTTEMPLATE_get0_publicKey() came with 3.2), so it is read
 * from the template's DER: the [6] IMPLICIT SubjectPublicKeyInfo. */
static int template_pubkey(const OSSL_CRMF_MSG *crm, EVP_PKEY **ret) {
        unsigned char *der = NULL;
        int len = i2d_OSSL_CRMF_CERTTEMPLATE(OSSL_CRMF_MSG_get0_tmpl(crm), &der);
        uint8_t spki[4096];
        const unsigned char *p = spki;
        TlvWriter w;
        Tlv seq, key;
        size_t n;
        EVP_PKEY *k = NULL;
        int r;

        if (len <= 0)
                return -EIO;
        r = tlv_parse_single(der, (size_t) len, &seq);
        if (r >= 0)
                r = seq.tag == 0x30 ? tlv_find(seq.value, seq.length, 0xA6, &key) : -EBADMSG;
        if (r >= 0) {
                tlv_writer_init(&w, spki, sizeof(spki));
                (void) tlv_put(&w, 0x30, key.value, key.length);
                r = tlv_writer_finish(&w, &n);
        }
        if (r >= 0) {
                k = d2i_PUBKEY(NULL, &p, (long) n);
                r = k ? 0 : -EBADMSG;
        }
        OPENSSL_free(der);
        if (r < 0)
                return r;
        *ret = k;
        return 0;
}

/* The status of a PKIStatusInfo; OpenSSL 3.0 has no public getter. */
static int pkisi_status(const OSSL_CMP_PKISI *si) {
        unsigned char *der = NULL;
        int len = i2d_OSSL_CMP_PKISI(si, &der), status = -EBADMSG;
        TlvReader rd;
        Tlv seq, st;

        if (len > 0 && tlv_parse_single(der, (size_t) len, &seq) >= 0 && seq.tag == 0x30) {
                tlv_reader_enter(&seq, &rd);
                if (tlv_reader_next(&rd, &st) == 1 && st.tag == 0x02 && st.length == 1)
                        status = st.value[0];
        }
        OPENSSL_free(der);
        return status;
}

/* The answer is signed by the CMP signer of the CA the request is about,
 * which the client trusts through the CA that issued its certificate. */
static int use_signer(Transaction *tx, const PortalCa *ca) {
        OSSL_CMP_CTX *ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(tx->srv);

        return OSSL_CMP_CTX_set1_cert(ctx, ca->cmp_cert) && OSSL_CMP_CTX_set1_pkey(ctx, ca->cmp_key) ? 0
                                                                                                     : -EIO;
}

/* The certificate already issued for o, if it is for the key with this hash. */
static OSSL_CMP_PKISI *issued_again(sqlite3 *db, const Order *o, const char *key_hash, const char *refusal,
                                    X509 **ret_cert) {
        _cleanup_(cert_row_done) CertRow issued = {};

        if (db_cert_get(db, o->issuer_hash, o->new_serial, &issued) < 0)
                return system_failure(db);
        if (strcmp(issued.pubkey_hash, key_hash) != 0)
                return reject(OSSL_CMP_PKIFAILUREINFO_badRequest, refusal);
        log_info("order %s: kur repeated, answering with certificate %s again", o->id, o->new_serial);
        *ret_cert = TAKE_PTR(issued.cert);
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

static OSSL_CMP_PKISI *issue_new(sqlite3 *db, const PortalCa *ca, Order *o, X509 *old, EVP_PKEY *key,
                                 X509 **ret_cert) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        CertSpec spec = {
                .subject = X509_get_subject_name(old),
                .pubkey = key,
                .days = o->validity_days,
                .copy_from = old,
        };
        int r;

        r = ca_issue(ca, &spec, &cert);
        if (r >= 0)
                r = serial_to_string(X509_get0_serialNumber(cert), o->new_serial);
        if (r < 0) {
                log_error("order %s: issuing the certificate failed", o->id);
                return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection,
                                               1 << OSSL_CMP_PKIFAILUREINFO_systemFailure,
                                               "the portal could not issue the certificate");
        }
        o->state = ORDER_ISSUED;
        if (db_cert_put(db, cert, o->id) < 0 || db_order_update(db, o) < 0)
                return system_failure(db);
        log_info("order %s: issued certificate %s", o->id, o->new_serial);
        *ret_cert = TAKE_PTR(cert);
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

/* Checks a kur against its order and issues (or finds again) the new
 * certificate. Runs inside a database transaction. */
static OSSL_CMP_PKISI *renew(Transaction *tx, const PortalCa *ca, const OSSL_CMP_MSG *req,
                             const OSSL_CRMF_MSG *crm, const char *hash, const char *serial,
                             X509 **ret_cert) {
        sqlite3 *db = tx->server->db;
        _cleanup_(order_done) Order o = {};
        _cleanup_(cert_row_done) CertRow old = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        OSSL_CMP_PKISI *si;
        char key_hash[HASH_HEX_SIZE];
        bool same_key;
        int r;

        r = db_cert_get(db, hash, serial, &old);
        if (r >= 0)
                r = db_order_newest(db, hash, serial, &o);
        if (r == -ENOENT ||
            (r >= 0 && o.state != ORDER_APPROVED && o.state != ORDER_ISSUED && o.state != ORDER_INSTALLED))
                return reject(OSSL_CMP_PKIFAILUREINFO_badRequest, TEXT_NO_ORDER);
        if (r < 0)
                return system_failure(db);
        if (!signed_by(req, old.cert))
                return reject(OSSL_CMP_PKIFAILUREINFO_badMessageCheck,
                              "request not signed by the certificate being renewed");
        if (template_pubkey(crm, &key) < 0 || pubkey_hash(key, key_hash) < 0)
                return reject(OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
                              "the request carries no usable public key");
        same_key = strcmp(key_hash, old.pubkey_hash) == 0;

        if (o.state == ORDER_INSTALLED)
                /* A client that lost the pkiConf may only learn the outcome
                 * by asking again in a new transaction (OSSL_CMP_SRV_CTX
                 * takes no certConf without a kur before it): same key, same
                 * certificate, and its certConf changes nothing. The old
                 * certificate is revoked by now, so this comes before that check. */
                si = issued_again(db, &o, key_hash, TEXT_NO_ORDER, ret_cert);
        else if (old.revoked_at != 0)
                si = reject(OSSL_CMP_PKIFAILUREINFO_certRevoked, TEXT_NOT_VALID);
        else if (old.not_after + RENEWAL_GRACE_SECONDS < time(NULL))
                si = reject(OSSL_CMP_PKIFAILUREINFO_badTime, TEXT_NOT_VALID);
        else if (o.rekey && same_key)
                si = reject(OSSL_CMP_PKIFAILUREINFO_badCertTemplate, "this order requires a new key");
        else if (!o.rekey && !same_key)
                si = reject(OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
                            "this order renews the certificate for its current key");
        else if (o.state == ORDER_ISSUED)
                /* Rule 3: a retry gets the certificate issued before. */
                si = issued_again(db, &o, key_hash, "order already issued for another key; contact the CA",
                                  ret_cert);
        else
                si = issue_new(db, ca, &o, old.cert, key, ret_cert);
        if (*ret_cert)
                snprintf(tx->order_id, sizeof(tx->order_id), "%s", o.id);
        return si;
}

static OSSL_CMP_PKISI *on_cert_request(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int cert_req_id,
                                       const OSSL_CRMF_MSG *crm, const X509_REQ *p10cr, X509 **cert_out,
                                       STACK_OF(X509) * *chain_out, STACK_OF(X509) * *ca_pubs) {
        Transaction *tx = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv);
        sqlite3 *db = tx->server->db;
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];
        const OSSL_CRMF_CERTID *cid;
        const PortalCa *ca;
        STACK_OF(X509) *chain = NULL;
        X509 *cert = NULL, *ca_cert = NULL;
        OSSL_CMP_PKISI *si;

        if (OSSL_CMP_MSG_get_bodytype(req) != PKIBODY_KUR || !crm)
                return reject(OSSL_CMP_PKIFAILUREINFO_badRequest,
                              "this portal only renews certificates: send kur");
        cid = OSSL_CRMF_MSG_get0_regCtrl_oldCertID(crm);
        if (!cid)
                return reject(OSSL_CMP_PKIFAILUREINFO_badRequest, "kur without the oldCertID control");
        if (name_hash(OSSL_CRMF_CERTID_get0_issuer(cid), hash) < 0 ||
            serial_to_string(OSSL_CRMF_CERTID_get0_serialNumber(cid), serial) < 0)
                return reject(OSSL_CMP_PKIFAILUREINFO_badDataFormat, "unreadable oldCertID");
        ca = cas_find(tx->server->cas, hash);
        if (!ca)
                return reject(OSSL_CMP_PKIFAILUREINFO_badRequest, TEXT_NO_ORDER);
        if (use_signer(tx, ca) < 0 || db_begin(db) < 0)
                return system_failure(db);
        si = renew(tx, ca, req, crm, hash, serial, &cert);
        if (cert) {
                chain = sk_X509_new_null();
                ca_cert = X509_dup(ca->cert);
                if (!chain || !ca_cert || !sk_X509_push(chain, ca_cert) || db_commit(db) < 0) {
                        X509_free(ca_cert);
                        sk_X509_free(chain);
                        X509_free(cert);
                        OSSL_CMP_PKISI_free(si);
                        db_rollback(db);
                        return system_failure(db);
                }
                *cert_out = cert;
                *chain_out = chain;
        } else
                db_rollback(db);
        return si;
}

/* certConf: the client has the new certificate on its key (accepted), or
 * could not install it (rejection). */
static int on_cert_conf(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int cert_req_id,
                        const ASN1_OCTET_STRING *cert_hash, const OSSL_CMP_PKISI *si) {
        Transaction *tx = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv);
        sqlite3 *db = tx->server->db;
        _cleanup_(order_done) Order o = {};
        _cleanup_(cert_row_done) CertRow old = {}, issued = {};
        ASN1_OCTET_STRING *expected = NULL;
        bool accepted = !si || pkisi_status(si) == OSSL_CMP_PKISTATUS_accepted;
        int r;

        if (tx->order_id[0] == '\0') {
                ERR_raise(ERR_LIB_CMP, CMP_R_ERROR_UNEXPECTED_CERTCONF);
                return 0;
        }
        if (db_begin(db) < 0)
                goto db_error;
        r = db_order_get(db, tx->order_id, &o);
        if (r >= 0)
                r = db_cert_get(db, o.issuer_hash, o.serial, &old);
        if (r >= 0 && o.new_serial[0] == '\0') {
                /* Answered before (a rejection put it back to approved). */
                db_rollback(db);
                return 1;
        }
        if (r >= 0)
                r = db_cert_get(db, o.issuer_hash, o.new_serial, &issued);
        if (r < 0)
                goto db_error;
        if (!signed_by(req, old.cert) && !signed_by(req, issued.cert)) {
                db_rollback(db);
                ERR_raise_data(ERR_LIB_CMP, CMP_R_ERROR_VALIDATING_PROTECTION,
                               "certConf not signed by the old or the new certificate");
                return 0;
        }
        expected = X509_digest_sig(issued.cert, NULL, NULL);
        r = expected && ASN1_OCTET_STRING_cmp(expected, cert_hash) == 0;
        ASN1_OCTET_STRING_free(expected);
        if (!r) {
                db_rollback(db);
                ERR_raise(ERR_LIB_CMP, CMP_R_CERTHASH_UNMATCHED);
                return 0;
        }
        if (o.state == ORDER_ISSUED && accepted) {
                /* Rule 1: the old certificate goes only now. */
                o.state = ORDER_INSTALLED;
                r = db_cert_revoke(db, o.issuer_hash, o.serial, CRL_REASON_SUPERSEDED);
                if (r >= 0)
                        r = db_order_update(db, &o);
                if (r >= 0)
                        log_info("order %s: certificate %s installed, %s revoked", o.id, o.new_serial,
                                 o.serial);
        } else if (o.state == ORDER_ISSUED) {
                /* The client could not install it: withdraw it, the order stays paid. */
                r = db_cert_revoke(db, o.issuer_hash, o.new_serial, CRL_REASON_CESSATION_OF_OPERATION);
                o.state = ORDER_APPROVED;
                o.new_serial[0] = '\0';
                if (r >= 0)
                        r = db_order_update(db, &o);
                if (r >= 0)
                        log_info("order %s: the client rejected the new certificate; revoked it, order "
                                 "approved "
                                 "again",
                                 o.id);
        }
        if (r >= 0)
                r = db_commit(db);
        if (r < 0)
                goto db_error;
        return 1;

db_error:
        log_error("certConf for order %s: database error: %s", tx->order_id, sqlite3_errmsg(db));
        db_rollback(db);
        ERR_raise(ERR_LIB_CMP, CMP_R_ERROR_PROCESSING_MESSAGE);
        return 0;
}

static OSSL_CMP_PKISI *on_rr(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, const X509_NAME *issuer,
                             const ASN1_INTEGER *serial_number) {
        Transaction *tx = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv);
        sqlite3 *db = tx->server->db;
        _cleanup_(cert_row_done) CertRow c = {};
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];
        const PortalCa *ca;
        int r;

        if (!issuer || !serial_number)
                return reject(OSSL_CMP_PKIFAILUREINFO_badCertTemplate, "rr needs the issuer and the serial");
        if (name_hash(issuer, hash) < 0 || serial_to_string(serial_number, serial) < 0)
                return reject(OSSL_CMP_PKIFAILUREINFO_badDataFormat, "unreadable issuer or serial");
        ca = cas_find(tx->server->cas, hash);
        if (!ca)
                return reject(OSSL_CMP_PKIFAILUREINFO_badCertId,
                              "this portal did not issue that certificate");
        if (use_signer(tx, ca) < 0 || db_begin(db) < 0)
                return system_failure(db);
        r = db_cert_get(db, hash, serial, &c);
        if (r == -ENOENT) {
                db_rollback(db);
                return reject(OSSL_CMP_PKIFAILUREINFO_badCertId,
                              "this portal did not issue that certificate");
        }
        if (r < 0) {
                db_rollback(db);
                return system_failure(db);
        }
        if (!signed_by(req, c.cert)) {
                db_rollback(db);
                return reject(OSSL_CMP_PKIFAILUREINFO_badMessageCheck,
                              "request not signed by the certificate to revoke");
        }
        if (c.revoked_at != 0) {
                db_rollback(db);
                return reject(OSSL_CMP_PKIFAILUREINFO_certRevoked, "the certificate is already revoked");
        }
        r = db_cert_revoke(db, hash, serial, CRL_REASON_UNSPECIFIED);
        if (r >= 0)
                r = db_commit(db);
        if (r < 0) {
                db_rollback(db);
                return system_failure(db);
        }
        log_info("certificate %s revoked at its holder's request", serial);
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

static int on_genm(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, const STACK_OF(OSSL_CMP_ITAV) * in,
                   STACK_OF(OSSL_CMP_ITAV) * *out) {
        ERR_raise_data(ERR_LIB_CMP, CMP_R_UNEXPECTED_PKIBODY, "this portal answers no general messages");
        return 0;
}

static void on_error(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, const OSSL_CMP_PKISI *si,
                     const ASN1_INTEGER *code, const OSSL_CMP_PKIFREETEXT *details) {
        char buf[256];

        log_info("the client reported an error: %s",
                 si ? OSSL_CMP_snprint_PKIStatusInfo(si, buf, sizeof(buf)) : "(no status)");
}

static int on_poll_req(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int cert_req_id,
                       OSSL_CMP_MSG **cert_req, int64_t *check_after) {
        /* The portal answers at once and never asks a client to poll. */
        ERR_raise(ERR_LIB_CMP, CMP_R_UNEXPECTED_PKIBODY);
        return 0;
}

static void transaction_clear(Transaction *tx) {
        OSSL_CMP_SRV_CTX_free(tx->srv);
        ASN1_OCTET_STRING_free(tx->id);
        *tx = (Transaction){};
}

static int transaction_start(CmpServer *s, Transaction *tx, const ASN1_OCTET_STRING *id) {
        OSSL_CMP_CTX *ctx;

        *tx = (Transaction){ .server = s, .used = time(NULL) };
        tx->id = ASN1_OCTET_STRING_dup(id);
        tx->srv = OSSL_CMP_SRV_CTX_new(NULL, NULL);
        if (!tx->id || !tx->srv)
                goto fail;
        ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(tx->srv);
        /* Protection is checked by the callbacks against the very certificate
         * the request is about (signed_by()), so that each failure gets the
         * failInfo the protocol names; OpenSSL would answer badRequest. */
        if (!OSSL_CMP_SRV_CTX_init(tx->srv, tx, on_cert_request, on_rr, on_genm, on_error, on_cert_conf,
                                   on_poll_req) ||
            !OSSL_CMP_SRV_CTX_set_accept_unprotected(tx->srv, 1) ||
            !OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(tx->srv, 0) ||
            !OSSL_CMP_CTX_set_log_cb(ctx, cmp_log) || use_signer(tx, &s->cas->ca[CA_EC]) < 0)
                goto fail;
        return 0;
fail:
        transaction_clear(tx);
        return -ENOMEM;
}

/* The open transaction with this ID, or a new one in a free (or the least
 * recently used) slot. */
static int transaction_get(CmpServer *s, const ASN1_OCTET_STRING *id, Transaction **ret) {
        Transaction *slot = NULL;
        time_t now = time(NULL);
        int r = 0;

        for (size_t i = 0; i < MAX_TRANSACTIONS; i++) {
                Transaction *tx = &s->tx[i];

                if (tx->srv && tx->used + TRANSACTION_IDLE_SECONDS < now)
                        transaction_clear(tx);
                if (tx->srv && ASN1_OCTET_STRING_cmp(tx->id, id) == 0) {
                        tx->used = now;
                        *ret = tx;
                        return 0;
                }
                if (!slot || (slot->srv && (!tx->srv || tx->used < slot->used)))
                        slot = tx;
        }
        if (slot->srv) {
                log_notice("too many open CMP transactions; dropping the oldest");
                transaction_clear(slot);
        }
        r = transaction_start(s, slot, id);
        if (r < 0)
                return r;
        *ret = slot;
        return 0;
}

static void request_hash(const uint8_t *data, size_t len, char ret[static HASH_HEX_SIZE]) {
        unsigned char md[SHA256_DIGEST_LENGTH];

        SHA256(data, len, md);
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
}

static int process(CmpServer *s, const uint8_t *request, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_(OSSL_CMP_MSG_freep) OSSL_CMP_MSG *req = NULL, *rsp = NULL;
        const unsigned char *p = request;
        const ASN1_OCTET_STRING *tid;
        unsigned char *der = NULL;
        Transaction *tx;
        int n, type, r;

        req = d2i_OSSL_CMP_MSG(NULL, &p, (long) len);
        if (!req || p != request + len)
                return -EBADMSG;
        tid = OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(req));
        if (!tid)
                return -EBADMSG;
        r = transaction_get(s, tid, &tx);
        if (r < 0)
                return r;
        rsp = OSSL_CMP_SRV_process_request(tx->srv, req);
        ERR_clear_error();
        if (!rsp) {
                transaction_clear(tx);
                return -EIO;
        }
        type = OSSL_CMP_MSG_get_bodytype(rsp);
        if (type == PKIBODY_PKICONF || type == PKIBODY_RP || type == PKIBODY_ERROR || type == PKIBODY_GENP)
                transaction_clear(tx);
        n = i2d_OSSL_CMP_MSG(rsp, &der);
        if (n <= 0)
                return -EIO;
        *ret = malloc((size_t) n);
        if (!*ret) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(*ret, der, (size_t) n);
        *ret_len = (size_t) n;
        OPENSSL_free(der);
        return 0;
}

int cmp_server_handle(CmpServer *s, const uint8_t *request, size_t len, uint8_t **ret, size_t *ret_len) {
        char hash[HASH_HEX_SIZE];
        uint8_t *reply = NULL;
        size_t reply_len = 0;
        int r;

        request_hash(request, len, hash);
        r = db_reply_get(s->db, hash, &reply, &reply_len);
        if (r == -ENOENT) {
                r = process(s, request, len, &reply, &reply_len);
                if (r >= 0 && db_reply_put(s->db, hash, reply, reply_len) < 0)
                        log_warning("could not keep the CMP answer for a repeated request: %s",
                                    sqlite3_errmsg(s->db));
        } else if (r >= 0)
                log_info("repeated CMP request: answering as before");
        if (r < 0)
                return r;
        *ret = reply;
        *ret_len = reply_len;
        return 0;
}

int cmp_server_new(sqlite3 *db, const PortalCas *cas, CmpServer **ret) {
        CmpServer *s = calloc(1, sizeof(CmpServer));

        if (!s)
                return -ENOMEM;
        s->db = db;
        s->cas = cas;
        *ret = s;
        return 0;
}

void cmp_server_free(CmpServer *s) {
        if (!s)
                return;
        for (size_t i = 0; i < MAX_TRANSACTIONS; i++)
                if (s->tx[i].srv)
                        transaction_clear(&s->tx[i]);
        free(s);
}
