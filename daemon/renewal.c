/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "renewal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "card-provider.h"
#include "cmp-client.h"
#include "hex.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "piv.h"
#include "portal-status.h"
#include "secmem.h"

#define ERROR_PREFIX "org.keyrenew.KeyRenew1.Error."

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)

static const char *const bus_errors[_RENEWAL_ERROR_MAX] = {
        [RENEWAL_OK] = "",
        [RENEWAL_ERROR_CANCELLED] = ERROR_PREFIX "Cancelled",
        [RENEWAL_ERROR_WRONG_PIN] = ERROR_PREFIX "WrongPin",
        [RENEWAL_ERROR_PIN_BLOCKED] = ERROR_PREFIX "PinBlocked",
        [RENEWAL_ERROR_MANAGEMENT_KEY] = ERROR_PREFIX "ManagementKey",
        [RENEWAL_ERROR_NOT_SUPPORTED] = ERROR_PREFIX "NotSupported",
        [RENEWAL_ERROR_INTERRUPTED] = ERROR_PREFIX "Interrupted",
        [RENEWAL_ERROR_NO_RENEWAL] = ERROR_PREFIX "NoRenewal",
        [RENEWAL_ERROR_PORTAL] = ERROR_PREFIX "PortalError",
        [RENEWAL_ERROR_NOT_CONFIGURED] = ERROR_PREFIX "NotConfigured",
        [RENEWAL_ERROR_CARD] = ERROR_PREFIX "CardError",
};

const char *renewal_error_to_bus_error(RenewalError e) {
        return e >= 0 && e < _RENEWAL_ERROR_MAX ? bus_errors[e] : bus_errors[RENEWAL_ERROR_CARD];
}

typedef struct Run {
        Token *t;
        const RenewalParams *p;
        RenewalOutcome *out;
        RenewalJournal *j;
        X509 *old_cert;
        EVP_PKEY *old_key;   /* on the card */
        EVP_PKEY *new_key;   /* on the card; the old key again when the order keeps it */
        int install_error;   /* why the install step deferred */
        bool install_called; /* the portal's certificate was for our new key */
} Run;

static void report(Run *run, const char *step, unsigned percent) {
        if (run->p->progress)
                run->p->progress(step, percent, run->p->userdata);
}

/* The first failure is the one the user hears about. */
_printf_(4, 5) static void fail(Run *run, RenewalError e, int r, const char *fmt, ...) {
        va_list ap;

        if (run->out->error != RENEWAL_OK)
                return;
        run->out->error = e;
        run->out->errno_value = r < 0 ? r : -EIO;
        va_start(ap, fmt);
        (void) vsnprintf(run->out->message, sizeof run->out->message, fmt, ap);
        va_end(ap);
}

static bool card_gone(int r) {
        return r == -ENOMEDIUM || r == -ECONNRESET || r == -ENODEV || r == -ECONNREFUSED || r == -ECANCELED;
}

/* Whether the card went away. A card pulled out in the middle of an
 * exchange often shows as a failed transmit (-EIO) before pcscd notices,
 * and OpenSSL reports a failed signature without its cause: ask the card. */
static bool card_lost(Run *run) {
        TokenPinStatus st;
        int r = token_pin_status(run->t, &st);

        /* Unresponsive or mute (the transport's -EIO) is as good as gone. */
        return card_gone(r) || r == -EIO;
}

/* what: a translated phrase, "writing the certificate". */
static void fail_card(Run *run, int r, const char *what) {
        if (card_gone(r) || card_lost(run))
                fail(run, RENEWAL_ERROR_INTERRUPTED, r,
                     _("The key was pulled out (or reset) while %s. Plug it in again: the renewal goes on "
                       "from where it stopped."),
                     what);
        else
                fail(run, RENEWAL_ERROR_CARD, r,
                     _("The key failed while %s (%s). Plug it in again to retry; if it fails again, contact "
                       "the CA's help line."),
                     what, strerror(-r));
}

static void fail_state(Run *run, int r) {
        fail(run, RENEWAL_ERROR_INTERRUPTED, r,
             _("keyrenewd could not record the renewal's progress in its state directory (%s); nothing was "
               "lost. Free some disk space or ask your administrator, then renew again."),
             strerror(-r));
}

static RenewalStop stop_asked(Run *run) {
        return run->p->stop ? (RenewalStop) atomic_load(run->p->stop) : RENEWAL_STOP_NONE;
}

static bool cancelled(Run *run) {
        return stop_asked(run) != RENEWAL_STOP_NONE;
}

static void fail_stopping(Run *run) {
        fail(run, RENEWAL_ERROR_INTERRUPTED, -ESHUTDOWN,
             _("keyrenewd is stopping. Nothing was lost: the renewal goes on from where it stopped when it "
               "starts again and you renew again (or plug the key in)."));
}

static int verify_pin(Run *run) {
        int tries = -1, r;

        report(run, "pin", 5);
        r = token_verify_pin(run->t, run->p->pin, &tries);
        /* The wrong PIN that spent the last try blocked it. */
        if (r == -EKEYREJECTED && tries == 0)
                r = -ENOLCK;
        if (r == -EKEYREJECTED) {
                run->out->tries_left = tries;
                fail(run, RENEWAL_ERROR_WRONG_PIN, r,
                     _("Wrong PIN: %d tries left before the key locks. Nothing was changed; renew again "
                       "with "
                       "the right PIN."),
                     tries);
        } else if (r == -ENOLCK) {
                run->out->tries_left = 0;
                fail(run, RENEWAL_ERROR_PIN_BLOCKED, r,
                     _("The key's PIN is blocked. Unblock it with the PUK (yubico-piv-tool -a unblock-pin) "
                       "or call the CA's help line, then renew again."));
        } else if (r == -EINVAL) {
                fail(run, RENEWAL_ERROR_WRONG_PIN, r,
                     _("A PIV PIN has 1 to 8 characters; nothing was sent to the key. Renew again."));
        } else if (r < 0) {
                fail_card(run, r, _("checking the PIN"));
        }
        return r;
}

/* An admin's management key for this token: the file named as the
 * token's serial in the configured directory, the key in hex, readable by
 * nobody else. 0 with *ret NULL when there is none. Read and decoded in
 * locked memory only. */
static int read_configured_mgm_key(Run *run, uint8_t **ret, size_t *ret_len) {
        const char *dir = run->p->mgm_key_dir, *serial = run->p->token_serial;
        _cleanup_secmem_ char *text = NULL;
        _cleanup_secmem_ uint8_t *key = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;
        size_t len;

        *ret = NULL;
        if (!dir || serial[strspn(serial, "0123456789abcdefABCDEF-")] != '\0')
                return 0;
        if (asprintf(&path, "%s/%s", dir, serial) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* A secret others can read is no longer the admin's alone. */
        if (!S_ISREG(st.st_mode) || (st.st_mode & 0077) != 0)
                return -EPERM;
        text = secmem_alloc(128);
        key = secmem_alloc(32);
        if (!text || !key)
                return -ENOMEM;
        n = read(fd, text, 127);
        if (n < 0)
                return -errno;
        text[strcspn(text, " \t\r\n")] = '\0';
        if (hex_decode_into(text, key, 32, &len) < 0 || (len != 16 && len != 24 && len != 32))
                return -EBADMSG;
        *ret = TAKE_PTR(key);
        *ret_len = len;
        return 0;
}

/* The management key: kept behind the PIN on the card (as ykman and
 * yubico-piv-tool set it up), one the admin configured for this key, or
 * still the factory default (flagged). */
static int authenticate_mgm(Run *run) {
        _cleanup_secmem_ uint8_t *key = NULL;
        size_t len = 0;
        TokenAlgorithm alg = TOKEN_ALG_3DES;
        TokenMgmInfo info;
        int r;

        r = token_mgm_info(run->t, &info);
        if (r >= 0 && !info.pin_protected) {
                r = read_configured_mgm_key(run, &key, &len);
                if (r < 0) {
                        fail(run, RENEWAL_ERROR_MANAGEMENT_KEY, r,
                             _("The management key configured for this key in %s cannot be used (%s): it "
                               "must "
                               "be the key in hex, in a file only its owner can read. Ask your "
                               "administrator."),
                             run->p->mgm_key_dir, strerror(-r));
                        return r;
                }
        }
        if (r >= 0 && info.pin_protected) {
                run->out->mgm_key = "pin-protected";
                r = token_get_protected_mgm_key(run->t, &key, &len, &alg);
        } else if (r >= 0 && key) {
                run->out->mgm_key = "configured";
                alg = TOKEN_ALG_DEFAULT;
        } else if (r >= 0 && info.is_default == 1) {
                run->out->mgm_key = "default";
                len = sizeof piv_default_mgm_key_3des;
                key = secmem_alloc(len);
                if (!key)
                        return -ENOMEM;
                memcpy(key, piv_default_mgm_key_3des, len);
        } else if (r >= 0) {
                run->out->mgm_key = "unknown";
                fail(run, RENEWAL_ERROR_MANAGEMENT_KEY, -EACCES,
                     _("keyrenew does not know this key's management key (it is neither kept behind the PIN "
                       "on the key, nor configured for it, nor the factory default), so it cannot write the "
                       "new certificate. Ask the CA or your administrator."));
                return -EACCES;
        }
        if (r >= 0)
                r = token_authenticate_mgm(run->t, key, len, alg);
        if (r == -EKEYREJECTED || (r == -EBADMSG && key))
                fail(run, RENEWAL_ERROR_MANAGEMENT_KEY, r,
                     _("The key refused the management key keyrenew has for it, so the new certificate "
                       "cannot "
                       "be written. Ask the CA or your administrator for the right one."));
        else if (r < 0)
                fail_card(run, r, _("unlocking it for writing"));
        return r;
}

/* A re-key makes the new key next to the old one: in the highest retired
 * slot with neither key nor certificate. Only cards that can then move it
 * into the original slot (YubiKey 5.7's MOVE KEY) do. */
static int pick_new_slot(Run *run, uint8_t *ret) {
        TokenIdentity id;
        TokenKeyMetadata md;
        TokenCertificate c;
        int r;

        r = token_identify(run->t, &id);
        if (r < 0)
                return r;
        if (!id.has_version || id.version[0] < 5 || (id.version[0] == 5 && id.version[1] < 7))
                return -EOPNOTSUPP;
        for (unsigned slot = PIV_SLOT_RETIRED_LAST; slot >= PIV_SLOT_RETIRED_FIRST; slot--) {
                r = token_read_certificate(run->t, slot, &c);
                if (r >= 0)
                        token_certificate_done(&c);
                if (r == -ENOENT)
                        r = token_key_metadata(run->t, slot, &md);
                if (r == -ENOENT) {
                        *ret = (uint8_t) slot;
                        return 0;
                }
                if (r < 0 && card_gone(r))
                        return r;
        }
        return -ENOSPC;
}

static int cert_id_of(X509 *x, char **ret) {
        X509Info *info = NULL;
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der), r = -EINVAL;

        if (len > 0)
                r = x509_info_parse(der, (size_t) len, &info);
        if (r >= 0)
                r = portal_cert_id_from_info(info, ret);
        x509_info_free(info);
        OPENSSL_free(der);
        return r;
}

static int start_journal(Run *run) {
        const RenewalParams *p = run->p;
        _cleanup_free_ char *old_id = NULL;
        RenewalJournalStart start = {
                .order_id = p->order_id,
                .token_serial = p->token_serial,
                .slot = (uint8_t) p->slot,
                .new_slot = (uint8_t) p->slot,
                .old_cert = p->old_cert,
                .old_cert_len = p->old_cert_len,
                .rekey = p->rekey,
                .cmp_url = p->cmp_url,
                .uid = p->uid,
        };
        int r;

        if (p->rekey) {
                r = pick_new_slot(run, &start.new_slot);
                if (r == -EOPNOTSUPP || r == -ENOSPC) {
                        fail(run, RENEWAL_ERROR_NOT_SUPPORTED, r,
                             r == -ENOSPC
                                     ? _("This renewal needs a new key, and the key has no free slot to "
                                         "make it in. Ask the CA for a renewal that keeps the key.")
                                     : _("This renewal needs a new key, and this key cannot put a new "
                                         "key in place of the old one (that needs YubiKey firmware 5.7 "
                                         "or later). Ask the CA for a renewal that keeps the key."));
                        return r;
                }
                if (r < 0) {
                        fail_card(run, r, _("looking for room for the new key"));
                        return r;
                }
        }
        r = cert_id_of(run->old_cert, &old_id);
        if (r < 0)
                return r;
        start.old_cert_id = old_id;
        r = renewal_journal_start(p->dir_fd, &start, time(NULL), &run->j);
        if (r < 0)
                fail_state(run, r);
        else
                report(run, "started", 10);
        return r;
}

static int make_new_key(Run *run) {
        RenewalJournal *j = run->j;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        unsigned char *spki = NULL;
        TokenKeyMetadata md = { .pin_policy = TOKEN_PIN_POLICY_DEFAULT,
                                .touch_policy = TOKEN_TOUCH_POLICY_DEFAULT };
        TokenAlgorithm alg;
        int len, r = 0;

        if (!j->rekey) {
                pub = EVP_PKEY_dup(X509_get0_pubkey(run->old_cert));
                r = pub ? 0 : -ENOMEM;
        } else {
                r = card_key_algorithm(X509_get0_pubkey(run->old_cert), &alg);
                if (r < 0) {
                        fail(run, RENEWAL_ERROR_NOT_SUPPORTED, r,
                             _("keyrenew can make new RSA 2048, P-256 and P-384 keys only; this certificate "
                               "has another kind. Ask the CA."));
                        return r;
                }
                /* The new key is used as the old one was: same PIN and touch policies. */
                if (token_key_metadata(run->t, j->slot, &md) < 0)
                        md = (TokenKeyMetadata){};
                r = token_generate_key(run->t, j->new_slot, alg, md.pin_policy, md.touch_policy, &pub);
                if (r < 0) {
                        fail_card(run, r, _("making the new key"));
                        return r;
                }
        }
        len = r >= 0 ? i2d_PUBKEY(pub, &spki) : 0;
        r = len > 0 ? renewal_journal_key_generated(run->p->dir_fd, j, spki, (size_t) len, time(NULL))
                    : -ENOMEM;
        OPENSSL_free(spki);
        if (r < 0)
                fail_state(run, r);
        else
                report(run, "key-generated", 25);
        return r;
}

static EVP_PKEY *journal_public_key(const RenewalJournal *j) {
        const unsigned char *p = j->new_public_key;

        return d2i_PUBKEY(NULL, &p, (long) j->new_public_key_len);
}

/* The card keys that sign: the old one (the request's protection) and the
 * new one (its proof of possession). */
static int load_keys(Run *run) {
        OSSL_LIB_CTX *libctx = run->p->libctx;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = journal_public_key(run->j);
        int r;

        if (!pub)
                return -EBADMSG;
        r = card_key_new_with_pin(libctx, run->t, run->j->slot, X509_get0_pubkey(run->old_cert), run->p->pin,
                                  &run->old_key);
        if (r >= 0)
                r = card_key_new_with_pin(libctx, run->t, run->j->new_slot, pub, run->p->pin, &run->new_key);
        return r;
}

/* Reads slot's certificate back and has key sign against it: -EBADMSG when
 * the card holds another certificate, -EKEYREJECTED when the signature does
 * not verify, the card's errors otherwise. */
static int check_on_card(Run *run, unsigned slot, EVP_PKEY *key) {
        TokenCertificate back = {};
        int r;

        r = token_read_certificate(run->t, slot, &back);
        if (r >= 0 &&
            (back.der_len != run->j->new_cert_len || memcmp(back.der, run->j->new_cert, back.der_len) != 0))
                r = -EBADMSG;
        token_certificate_done(&back);
        if (r >= 0) {
                const unsigned char *p = run->j->new_cert;
                X509 *x = d2i_X509(NULL, &p, (long) run->j->new_cert_len);

                r = x ? card_key_check(key, X509_get0_pubkey(x)) : -EBADMSG;
                X509_free(x);
        }
        return r;
}

static void report_new_cert(Run *run, X509 *cert) {
        const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        struct tm tm;
        size_t n = 0;

        for (int i = 0; serial && i < serial->length && n + 3 <= sizeof run->out->new_serial; i++)
                n += (size_t) snprintf(run->out->new_serial + n, sizeof run->out->new_serial - n, "%02x",
                                       serial->data[i]);
        if (na && ASN1_TIME_to_tm(na, &tm) == 1)
                run->out->new_not_after = (int64_t) timegm(&tm);
}

/* The install step, inside the CMP transaction (see cmp-client.h): journal
 * the certificate, write it, read it back, test-sign. A step the journal
 * says is done is not done again. */
static CmpConfirm install(const uint8_t *der, size_t len, X509 *cert, void *userdata,
                          const char **ret_reason) {
        Run *run = userdata;
        RenewalJournal *j = run->j;
        int r = 0;

        run->install_called = true;
        if (j->new_cert && (len != j->new_cert_len || memcmp(der, j->new_cert, len) != 0)) {
                *ret_reason = "the portal issued another certificate than before for this order";
                return CMP_CONFIRM_REJECT;
        }
        if (!j->new_cert)
                r = renewal_journal_issued(run->p->dir_fd, j, der, len, time(NULL));
        report_new_cert(run, cert);
        if (r >= 0)
                report(run, "issued", 50);
        if (r >= 0 && cancelled(run))
                r = -ECANCELED;
        if (r >= 0 && j->step < RENEWAL_WRITTEN) {
                r = token_put_certificate(run->t, j->new_slot, der, len);
                if (r >= 0)
                        r = renewal_journal_advance(run->p->dir_fd, j, RENEWAL_WRITTEN, time(NULL));
                if (r >= 0)
                        report(run, "written", 65);
        }
        if (r >= 0 && j->step < RENEWAL_VERIFIED) {
                r = check_on_card(run, j->new_slot, run->new_key);
                if (r == -EBADMSG || r == -EKEYREJECTED) {
                        /* Same key: put the old certificate back, the portal revokes the new one. */
                        if (!j->rekey)
                                (void) token_put_certificate(run->t, j->slot, j->old_cert, j->old_cert_len);
                        *ret_reason = "the certificate on the key did not verify";
                        return CMP_CONFIRM_REJECT;
                }
                if (r >= 0)
                        r = renewal_journal_advance(run->p->dir_fd, j, RENEWAL_VERIFIED, time(NULL));
                if (r >= 0)
                        report(run, "verified", 80);
        }
        run->install_error = r;
        return r >= 0 ? CMP_CONFIRM_ACCEPT : CMP_CONFIRM_DEFER;
}

static void fail_install(Run *run) {
        int r = run->install_error;

        if (r == -ECANCELED && stop_asked(run) == RENEWAL_STOP_SHUTDOWN)
                fail_stopping(run);
        else if (r == -ECANCELED && cancelled(run))
                fail(run, RENEWAL_ERROR_CANCELLED, r,
                     _("Stopped. The CA has already issued the new certificate: renew again to put it on "
                       "the "
                       "key (no second order, no second charge)."));
        else if (card_gone(r) || r == -EIO || r == -EACCES || r == -ENOSPC)
                fail_card(run, r, _("writing the new certificate"));
        else
                fail_state(run, r);
}

/* Whether the portal turned the request down for good (as opposed to not
 * answering): then this order cannot go on from this journal. */
static bool portal_refused(const CmpResult *res) {
        return res->stage == CMP_STAGE_REQUEST && (res->fail_info != 0 || res->pki_status == 2);
}

static int request_certificate(Run *run) {
        RenewalJournal *j = run->j;
        CmpClientOptions o = {
                .url = j->cmp_url,
                .ca_bundle = run->p->ca_bundle,
                .trusted = run->p->cmp_trusted,
                .old_cert = run->old_cert,
                .old_key = run->old_key,
                .new_key = run->new_key,
        };
        _cleanup_(X509_freep) X509 *cert = NULL;
        CmpResult res;
        int r;

        report(run, "requesting", 35);
        r = cmp_client_renew(&o, install, run, &cert, &res);
        log_debug("CMP: %u HTTP exchange(s) in %.1f ms, %.1f ms of it the portal's own (%s)", res.exchanges,
                  res.wait_us / 1000.0, res.portal_us / 1000.0,
                  res.portal_us_known ? "X-Portal-Time-Us" : "unknown");
        if (r >= 0) {
                r = renewal_journal_advance(run->p->dir_fd, j, RENEWAL_CONFIRMED, time(NULL));
                if (r < 0)
                        fail_state(run, r);
                else
                        report(run, "confirmed", 90);
                return r;
        }
        if (r == -EINPROGRESS) {
                fail_install(run);
        } else if (r == -ECANCELED) {
                (void) renewal_journal_end(run->p->dir_fd, j, RENEWAL_FAILED, cmp_result_message(&res, r),
                                           time(NULL));
                if (run->install_called)
                        fail(run, RENEWAL_ERROR_CARD, r,
                             _("The new certificate did not work on the key, so keyrenew refused it and the "
                               "CA "
                               "revoked it; the old certificate still works. Renew again; if it fails "
                               "again, "
                               "contact the CA's help line."));
                else
                        fail(run, RENEWAL_ERROR_PORTAL, r,
                             _("The CA's portal issued a certificate for another key, so keyrenew refused "
                               "it "
                               "and the CA revoked it; the key was not changed. Call the CA's help line."));
        } else if (portal_refused(&res) && j->step < RENEWAL_ISSUED) {
                (void) renewal_journal_end(run->p->dir_fd, j, RENEWAL_FAILED, cmp_result_message(&res, r),
                                           time(NULL));
                fail(run, r == -ENOENT ? RENEWAL_ERROR_NO_RENEWAL : RENEWAL_ERROR_PORTAL, r,
                     _("The CA's portal refused the renewal: %s. The key was not changed; see the order "
                       "page or call the CA's help line."),
                     cmp_result_message(&res, r));
        } else if (r == -EIO || card_lost(run)) {
                /* A signature the card did not make (it may be gone). */
                fail_card(run, -EIO, _("signing the request"));
        } else {
                fail(run, RENEWAL_ERROR_PORTAL, r,
                     _("The CA's portal could not be reached or answered wrongly (%s). Nothing was lost: "
                       "renew again later and the renewal goes on from where it stopped."),
                     cmp_result_message(&res, r));
        }
        return r;
}

/* After a re-key the new key and certificate go where the old ones were,
 * so that programs find them in the slot they know. Each command is safe
 * to repeat: a key already moved leaves the retired slot empty. Then the
 * slot must sign against its certificate, as after the install step. */
static int promote(Run *run) {
        RenewalJournal *j = run->j;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = journal_public_key(j), *key = NULL;
        int r;

        if (!pub)
                return -EBADMSG;
        r = token_move_key(run->t, j->new_slot, j->slot);
        if (r == -ENOENT)
                r = 0;
        if (r >= 0)
                r = token_put_certificate(run->t, j->slot, j->new_cert, j->new_cert_len);
        if (r >= 0) {
                r = token_put_certificate(run->t, j->new_slot, NULL, 0);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0)
                r = card_key_new_with_pin(run->p->libctx, run->t, j->slot, pub, run->p->pin, &key);
        if (r >= 0)
                r = check_on_card(run, j->slot, key);
        return r;
}

static int finish(Run *run) {
        RenewalJournal *j = run->j;
        int r = 0;

        if (j->new_slot != j->slot) {
                r = promote(run);
                if (r < 0) {
                        fail_card(run, r, _("moving the new key into place"));
                        return r;
                }
        }
        run->out->rekeyed = j->rekey;
        r = renewal_journal_advance(run->p->dir_fd, j, RENEWAL_DONE, time(NULL));
        if (r < 0)
                fail_state(run, r);
        else
                report(run, "done", 100);
        return r;
}

/* The journal of this order: an earlier run's (resume), or a new one. */
static int open_journal(Run *run) {
        const RenewalParams *p = run->p;
        int r;

        r = renewal_journal_load(p->dir_fd, p->order_id, &run->j);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                fail_state(run, r);
                return r;
        }
        if (strcmp(run->j->token_serial, p->token_serial) != 0 || renewal_step_is_final(run->j->step)) {
                fail(run, RENEWAL_ERROR_NO_RENEWAL, -EEXIST,
                     _("This order was already renewed on another key, or has ended. See the history."));
                return -EEXIST;
        }
        run->out->resumed = true;
        return 0;
}

static int parse_old_cert(Run *run) {
        const uint8_t *der = run->j ? run->j->old_cert : run->p->old_cert;
        size_t len = run->j ? run->j->old_cert_len : run->p->old_cert_len;
        const unsigned char *q = der;

        run->old_cert = der ? d2i_X509(NULL, &q, (long) len) : NULL;
        return run->old_cert ? 0 : -EINVAL;
}

static void end_journal(Run *run) {
        RenewalJournal *j = run->j;

        if (!j)
                return;
        if (run->out->error == RENEWAL_ERROR_CANCELLED && j->step < RENEWAL_ISSUED)
                (void) renewal_journal_end(run->p->dir_fd, j, RENEWAL_CANCELLED, "cancelled by the user",
                                           time(NULL));
        if (renewal_step_is_final(j->step) && renewal_history_append(run->p->dir_fd, j, time(NULL)) >= 0)
                (void) renewal_journal_remove(run->p->dir_fd, j);
        run->out->step = j->step;
}

static void check_cancel(Run *run, int *r) {
        if (*r < 0 || !cancelled(run))
                return;
        if (stop_asked(run) == RENEWAL_STOP_SHUTDOWN)
                fail_stopping(run);
        else
                fail(run, RENEWAL_ERROR_CANCELLED, -ECANCELED,
                     _("The renewal was cancelled; the key's certificate was not changed."));
        *r = -ECANCELED;
}

static void run_steps(Run *run) {
        int r;

        r = verify_pin(run);
        check_cancel(run, &r);
        if (r >= 0)
                r = authenticate_mgm(run);
        if (r >= 0 && !run->j)
                r = start_journal(run);
        check_cancel(run, &r);
        if (r >= 0 && run->j->step == RENEWAL_STARTED)
                r = make_new_key(run);
        check_cancel(run, &r);
        if (r >= 0 && run->j->step < RENEWAL_CONFIRMED) {
                r = load_keys(run);
                if (r < 0)
                        fail_card(run, r, _("preparing the key to sign"));
                else
                        r = request_certificate(run);
        }
        if (r >= 0 && run->j->step == RENEWAL_CONFIRMED)
                r = finish(run);
}

int renewal_run(Token *t, const RenewalParams *params, RenewalOutcome *ret) {
        RenewalOutcome out = { .step = _RENEWAL_STEP_MAX, .tries_left = -1, .mgm_key = "" };
        Run run = { .t = t, .p = params, .out = &out };

        if (!t || !params || !ret || !params->order_id || !params->token_serial || !params->pin ||
            !params->cmp_url)
                return -EINVAL;
        if (!params->cmp_trusted) {
                fail(&run, RENEWAL_ERROR_NOT_CONFIGURED, -ENOKEY,
                     _("keyrenewd has no CA certificates to check the portal's answers with ([Portal] "
                       "CmpTrustedCA or CABundle in keyrenewd.conf). Ask your administrator."));
        } else if (open_journal(&run) >= 0 && parse_old_cert(&run) < 0) {
                fail(&run, RENEWAL_ERROR_NO_RENEWAL, -EINVAL,
                     _("The certificate to renew could not be read. Refresh and try again."));
        } else if (out.error == RENEWAL_OK) {
                run_steps(&run);
        }
        end_journal(&run);
        if (out.error == RENEWAL_OK && out.message[0] == '\0')
                (void) snprintf(out.message, sizeof out.message, "%s",
                                _("The key has its new certificate."));
        X509_free(run.old_cert);
        EVP_PKEY_free(run.old_key);
        EVP_PKEY_free(run.new_key);
        renewal_journal_free(run.j);
        *ret = out;
        return 0;
}
