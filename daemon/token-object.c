/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "token-object.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expiry.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "portal-status.h"
#include "token-bus.h"

#define BIT(p) (UINT32_C(1) << (p))
#define streq(a, b) (strcmp((a), (b)) == 0)

const char *token_state_to_string(TokenState s) {
        static const char *const names[_TOKEN_STATE_MAX] = {
                [TOKEN_STATE_IDLE] = "idle",
                [TOKEN_STATE_CHECKING] = "checking",
                [TOKEN_STATE_EXPIRING] = "expiring",
                [TOKEN_STATE_EXPIRED] = "expired",
                [TOKEN_STATE_FAILED] = "failed",
                [TOKEN_STATE_LOCKED] = "locked",
                [TOKEN_STATE_RENEWAL_AVAILABLE] = "renewal-available",
                [TOKEN_STATE_AWAITING_PIN] = "awaiting-pin",
                [TOKEN_STATE_RENEWING] = "renewing",
                [TOKEN_STATE_RENEWED] = "renewed",
        };

        return s >= 0 && s < _TOKEN_STATE_MAX ? names[s] : NULL;
}

static void token_changed(TokenObject *t, TokenProperty p) {
        t->dirty |= BIT(p);
}

static void cert_changed(CertObject *c, CertProperty p) {
        c->dirty |= BIT(p);
}

static CertObject *cert_free(CertObject *c) {
        if (!c)
                return NULL;
        sd_bus_slot_unref(c->bus_slot);
        x509_info_free(c->info);
        free(c->der);
        free(c->path);
        free(c->portal_id);
        free(c->announced_order);
        free(c->renewal_state);
        free(c->renewal_order);
        free(c->portal_url);
        free(c->reject_reason);
        free(c->renewal_cmp);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(CertObject *, cert_free)

/* Takes c off the bus, telling clients (InterfacesRemoved), and frees it. */
static void cert_remove(CertObject *c) {
        if (c->bus_slot) {
                (void) sd_bus_emit_object_removed(c->token->bus, c->path);
                c->bus_slot = sd_bus_slot_unref(c->bus_slot);
        }
        cert_free(c);
}

static int cert_new(TokenObject *t, unsigned slot, const uint8_t *der, size_t der_len, CertObject **ret) {
        _cleanup_(cert_freep) CertObject *c = NULL;
        _cleanup_free_ char *prefix = NULL;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->token = t;
        c->slot = slot;
        (void) snprintf(c->slot_name, sizeof c->slot_name, "%02x", slot);
        c->level = c->announced = EXPIRY_LEVEL_NONE;
        r = x509_info_parse(der, der_len, &c->info);
        if (r < 0)
                return r;
        /* Without a serial or an issuer the portal cannot be asked about it. */
        r = portal_cert_id_from_info(c->info, &c->portal_id);
        if (r == -ENOMEM)
                return r;
        c->der = malloc(der_len);
        c->renewal_state = strdup("none");
        if (asprintf(&prefix, "%s/cert", t->path) < 0)
                prefix = NULL;
        if (!c->der || !c->renewal_state || !prefix)
                return -ENOMEM;
        memcpy(c->der, der, der_len);
        c->der_len = der_len;
        c->days_left = INT64_MIN; /* evaluated before it is shown */
        r = sd_bus_path_encode(prefix, c->slot_name, &c->path);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static bool token_has_cert(const TokenObject *t, const CertObject *c) {
        for (size_t i = 0; i < t->n_certs; i++)
                if (t->certs[i] == c)
                        return true;
        return false;
}

CertObject *token_object_find_cert(TokenObject *t, unsigned slot) {
        for (size_t i = 0; i < t->n_certs; i++)
                if (t->certs[i]->slot == slot)
                        return t->certs[i];
        return NULL;
}

int token_object_new(Manager *m, sd_bus *bus, const char *key, const char *driver, const TokenIdentity *id,
                     TokenObject **ret) {
        _cleanup_(token_object_freep) TokenObject *t = NULL;
        int r;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->manager = m;
        t->bus = sd_bus_ref(bus);
        t->pin_retries = -1;
        t->renewal_step = "";
        t->mgm_key = "";
        (void) snprintf(t->driver, sizeof t->driver, "%s", driver);
        t->identity = *id;
        if (snprintf(t->key, sizeof t->key, "%s", key) >= (int) sizeof t->key)
                return -EINVAL;
        r = sd_bus_path_encode(TOKEN_BUS_PREFIX, key, &t->path);
        if (r < 0)
                return r;
        t->name = strrchr(t->path, '/') + 1;
        *ret = TAKE_PTR(t);
        return 0;
}

TokenObject *token_object_free(TokenObject *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_certs; i++)
                cert_free(t->certs[i]);
        free(t->certs);
        for (size_t i = 0; i < t->n_waiters; i++)
                sd_bus_message_unref(t->waiters[i]);
        free(t->waiters);
        sd_bus_slot_unref(t->bus_slot);
        sd_bus_unref(t->bus);
        free(t->last_error);
        free(t->path);
        free(t);
        return NULL;
}

int token_object_add_certificate(TokenObject *t, unsigned slot, const uint8_t *der, size_t der_len,
                                 int announced) {
        CertObject **certs, *c;
        size_t i;
        int r;

        if (token_object_find_cert(t, slot))
                return -EEXIST;
        certs = reallocarray(t->certs, t->n_certs + 1, sizeof *certs);
        if (!certs)
                return -ENOMEM;
        t->certs = certs;
        r = cert_new(t, slot, der, der_len, &c);
        if (r < 0)
                return r;
        c->announced = announced;
        /* In slot order. */
        for (i = t->n_certs; i > 0 && t->certs[i - 1]->slot > slot; i--)
                t->certs[i] = t->certs[i - 1];
        t->certs[i] = c;
        t->n_certs++;
        token_changed(t, TOKEN_PROP_CERTIFICATES);
        return 0;
}

/* Puts *value (NULL or "": none) in *field unless they are equal, taking
 * it; true when it changed. Allocates nothing. */
static bool take_string(char **field, char **value) {
        char *v = *value && (*value)[0] ? *value : NULL;

        if ((!*field && !v) || (*field && v && strcmp(*field, v) == 0))
                return false;
        if (v)
                *value = NULL;
        free(*field);
        *field = v;
        return true;
}

int cert_object_set_renewal(CertObject *c, const CertRenewal *r, uint64_t checked_usec) {
        _cleanup_free_ char *state = NULL, *order = NULL, *page = NULL, *reason = NULL, *cmp = NULL;
        bool changed = false;

        /* Every copy first, so that -ENOMEM changes nothing. */
        state = strdup(r->state && r->state[0] ? r->state : "none");
        order = r->order ? strdup(r->order) : NULL;
        page = r->page ? strdup(r->page) : NULL;
        reason = r->reject_reason ? strdup(r->reject_reason) : NULL;
        cmp = r->cmp ? strdup(r->cmp) : NULL;
        if (!state || (r->order && !order) || (r->page && !page) || (r->reject_reason && !reason) ||
            (r->cmp && !cmp))
                return -ENOMEM;
        /* Not shown on the bus: it changes nothing a client sees. */
        (void) take_string(&c->renewal_cmp, &cmp);
        if (take_string(&c->renewal_state, &state)) {
                cert_changed(c, CERT_PROP_RENEWAL_STATE);
                changed = true;
        }
        if (take_string(&c->renewal_order, &order)) {
                cert_changed(c, CERT_PROP_RENEWAL_ORDER);
                changed = true;
        }
        if (take_string(&c->portal_url, &page)) {
                cert_changed(c, CERT_PROP_PORTAL_URL);
                changed = true;
        }
        if (take_string(&c->reject_reason, &reason)) {
                cert_changed(c, CERT_PROP_REJECT_REASON);
                changed = true;
        }
        if (c->renewal_rekey != r->rekey) {
                c->renewal_rekey = r->rekey;
                cert_changed(c, CERT_PROP_RENEWAL_REKEY);
                changed = true;
        }
        if (c->renewal_validity_days != r->validity_days) {
                c->renewal_validity_days = r->validity_days;
                cert_changed(c, CERT_PROP_RENEWAL_VALIDITY_DAYS);
                changed = true;
        }
        /* When it was said is no change of the renewal itself. */
        if (c->renewal_checked_usec != checked_usec) {
                c->renewal_checked_usec = checked_usec;
                cert_changed(c, CERT_PROP_RENEWAL_CHECKED);
        }
        return changed;
}

int cert_object_set_announced_order(CertObject *c, const char *order) {
        _cleanup_free_ char *copy = NULL;

        if (order && !(copy = strdup(order)))
                return -ENOMEM;
        (void) take_string(&c->announced_order, &copy);
        return 0;
}

static void token_set_string(TokenObject *t, char *field, size_t size, const char *value, TokenProperty p) {
        if (strcmp(field, value) == 0)
                return;
        (void) snprintf(field, size, "%s", value);
        token_changed(t, p);
}

static void token_set_last_error(TokenObject *t, const char *message) {
        char *copy = NULL;

        if (!t->last_error && !message)
                return;
        if (t->last_error && message && strcmp(t->last_error, message) == 0)
                return;
        /* Without memory for the text, an empty one is still true enough. */
        if (message)
                copy = strdup(message);
        free(t->last_error);
        t->last_error = copy;
        token_changed(t, TOKEN_PROP_LAST_ERROR);
}

static void token_set_present(TokenObject *t, bool present, uint64_t now_usec) {
        if (t->present != present) {
                t->present = present;
                token_changed(t, TOKEN_PROP_PRESENT);
        }
        t->last_seen_usec = now_usec;
        token_changed(t, TOKEN_PROP_LAST_SEEN);
}

static void token_set_progress(TokenObject *t, unsigned progress) {
        if (t->progress != progress) {
                t->progress = progress;
                token_changed(t, TOKEN_PROP_PROGRESS);
        }
}

void token_object_set_renewal(TokenObject *t, TokenState phase, const char *step, unsigned percent,
                              const char *message) {
        t->renewal_phase = phase;
        if (step && !streq(t->renewal_step, step)) {
                t->renewal_step = step;
                token_changed(t, TOKEN_PROP_RENEWAL_STEP);
        }
        token_set_progress(t, percent);
        if (message)
                token_set_last_error(t, message[0] ? message : NULL);
}

void token_object_set_mgm_key(TokenObject *t, const char *kind) {
        if (kind && !streq(t->mgm_key, kind)) {
                t->mgm_key = kind;
                token_changed(t, TOKEN_PROP_MANAGEMENT_KEY);
        }
}

CertObject *token_object_find_cert_by_path(TokenObject *t, const char *path) {
        for (size_t i = 0; i < t->n_certs; i++)
                if (streq(t->certs[i]->path, path))
                        return t->certs[i];
        return NULL;
}

void token_object_begin_check(TokenObject *t, const char *reader, uint64_t now_usec) {
        token_set_string(t, t->reader, sizeof t->reader, reader, TOKEN_PROP_READER);
        token_set_present(t, true, now_usec);
        t->checking = true;
        /* Identified: the first of the read's four steps. */
        token_set_progress(t, 25);
}

static void token_set_identity(TokenObject *t, const TokenIdentity *id) {
        TokenIdentity *old = &t->identity;

        if (strcmp(old->label, id->label) != 0)
                token_changed(t, TOKEN_PROP_LABEL);
        if (strcmp(old->guid, id->guid) != 0)
                token_changed(t, TOKEN_PROP_CHUID);
        if (old->has_version != id->has_version ||
            memcmp(old->version, id->version, sizeof id->version) != 0)
                token_changed(t, TOKEN_PROP_FIRMWARE_VERSION);
        /* The serial is what the token is known by: it stays. */
        memcpy(old->label, id->label, sizeof old->label);
        memcpy(old->guid, id->guid, sizeof old->guid);
        memcpy(old->fascn, id->fascn, sizeof old->fascn);
        old->has_version = id->has_version;
        memcpy(old->version, id->version, sizeof old->version);
}

static bool metadata_equal(const CertObject *c, const TokenSlotRead *s) {
        return c->has_metadata == s->has_metadata &&
               (!s->has_metadata || (c->metadata.origin == s->metadata.origin &&
                                     c->metadata.pin_policy == s->metadata.pin_policy &&
                                     c->metadata.touch_policy == s->metadata.touch_policy));
}

static void cert_set_metadata(CertObject *c, const TokenSlotRead *s) {
        if (metadata_equal(c, s))
                return;
        c->has_metadata = s->has_metadata;
        c->metadata = s->metadata;
        cert_changed(c, CERT_PROP_KEY_ORIGIN);
        cert_changed(c, CERT_PROP_PIN_POLICY);
        cert_changed(c, CERT_PROP_TOUCH_POLICY);
}

static bool cert_is(const CertObject *c, const TokenCertificate *tc) {
        return c->der_len == tc->der_len && memcmp(c->der, tc->der, tc->der_len) == 0;
}

/* Brings the certificates in line with what the card holds: the same ones
 * keep their objects, new and changed ones get new objects, gone ones go.
 * A certificate that does not parse is left out (and logged). -ENOMEM
 * leaves everything as it was. */
static int token_sync_certificates(TokenObject *t, const TokenRead *r) {
        _cleanup_free_ CertObject **next = NULL;
        size_t n = 0;

        next = calloc(r->n_slots > 0 ? r->n_slots : 1, sizeof *next);
        if (!next)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_slots; i++) {
                const TokenSlotRead *s = &r->slots[i];
                CertObject *c = token_object_find_cert(t, s->cert.slot);
                int k;

                if (c && cert_is(c, &s->cert)) {
                        next[n++] = c;
                        cert_set_metadata(c, s);
                        continue;
                }
                k = cert_new(t, s->cert.slot, s->cert.der, s->cert.der_len, &c);
                if (k == -ENOMEM) {
                        for (size_t j = 0; j < n; j++)
                                if (!token_has_cert(t, next[j]))
                                        cert_free(next[j]);
                        return k;
                }
                if (k < 0) {
                        log_warning_errno(k, "Token %s: the certificate in slot %s cannot be read", t->key,
                                          s->cert.slot_name);
                        continue;
                }
                c->has_metadata = s->has_metadata;
                c->metadata = s->metadata;
                next[n++] = c;
        }

        /* Whatever is not kept goes; new ones go on the bus at the flush. */
        for (size_t i = 0; i < t->n_certs; i++) {
                bool kept = false;

                for (size_t j = 0; j < n && !kept; j++)
                        kept = next[j] == t->certs[i];
                if (!kept) {
                        cert_remove(t->certs[i]);
                        token_changed(t, TOKEN_PROP_CERTIFICATES);
                }
        }
        for (size_t j = 0; j < n; j++)
                if (!next[j]->bus_slot)
                        token_changed(t, TOKEN_PROP_CERTIFICATES);
        free(t->certs);
        t->certs = TAKE_PTR(next);
        t->n_certs = n;
        return 0;
}

void token_object_apply_read(TokenObject *t, const TokenRead *r) {
        token_set_identity(t, &r->identity);
        if (t->pin_retries != r->pin.retries) {
                t->pin_retries = r->pin.retries;
                token_changed(t, TOKEN_PROP_PIN_RETRIES_LEFT);
        }
        if (token_sync_certificates(t, r) < 0)
                log_error("Token %s: out of memory for its certificates; keeping the ones known", t->key);
        t->checking = false;
        t->failed = false;
        token_set_last_error(t, NULL);
        token_set_progress(t, 100);
}

void token_object_read_failed(TokenObject *t, const char *message) {
        t->checking = false;
        t->failed = true;
        token_set_last_error(t, message);
}

void token_object_set_absent(TokenObject *t, uint64_t now_usec) {
        token_set_present(t, false, now_usec);
        if (t->checking)
                token_object_read_failed(t, _("The key was removed before it could be read to the end."));
}

static TokenState token_compute_state(const TokenObject *t) {
        TokenState s = TOKEN_STATE_IDLE;

        /* A renewal under way says more than a read of it. */
        if (t->renewal_phase == TOKEN_STATE_AWAITING_PIN || t->renewal_phase == TOKEN_STATE_RENEWING)
                return t->renewal_phase;
        if (t->checking)
                return TOKEN_STATE_CHECKING;
        if (t->failed)
                return TOKEN_STATE_FAILED;
        if (t->pin_retries == 0)
                return TOKEN_STATE_LOCKED;
        /* The renewal is what cures an expiring or expired certificate. */
        for (size_t i = 0; i < t->n_certs; i++)
                if (streq(t->certs[i]->renewal_state, "approved"))
                        return TOKEN_STATE_RENEWAL_AVAILABLE;
        for (size_t i = 0; i < t->n_certs; i++)
                switch (expiry_level_status(t->certs[i]->level)) {
                case EXPIRY_STATUS_EXPIRED:
                        s = TOKEN_STATE_EXPIRED;
                        break;
                case EXPIRY_STATUS_EXPIRING:
                        if (s == TOKEN_STATE_IDLE)
                                s = TOKEN_STATE_EXPIRING;
                        break;
                default:
                        break;
                }
        /* Until there is something else to do. */
        if (s == TOKEN_STATE_IDLE && t->renewal_phase == TOKEN_STATE_RENEWED)
                s = TOKEN_STATE_RENEWED;
        return s;
}

/* Announces c's level if it is news; true when it was. */
static bool cert_announce(CertObject *c) {
        TokenObject *t = c->token;
        char field[sizeof "KEYRENEW_CERT_SERIAL=" + 2 * 20 + 8];
        int r;

        if (!expiry_should_announce(c->level, c->announced))
                return false;
        (void) snprintf(field, sizeof field, "KEYRENEW_CERT_SERIAL=%s", c->info->serial);
        if (c->level == 0)
                (void) log_fields(LOG_WARNING, 0, LOG_FIELDS(field),
                                  "Token %s: the certificate in slot %s (%s) has expired", t->key,
                                  c->slot_name, c->info->subject);
        else
                (void) log_fields(LOG_NOTICE, 0, LOG_FIELDS(field),
                                  "Token %s: the certificate in slot %s (%s) ends in %" PRIi64
                                  " days (warning at %d days)",
                                  t->key, c->slot_name, c->info->subject, c->days_left, c->level);
        r = cert_bus_emit_expiry_warning(c, c->days_left > 0 ? (uint32_t) c->days_left : 0,
                                         (uint32_t) c->level);
        if (r < 0)
                log_debug_errno(r, "Cannot send ExpiryWarning for %s", c->path);
        c->announced = c->level;
        return true;
}

/* Announces c's approved order if it is news; true when it was. */
static bool cert_announce_renewal(CertObject *c) {
        TokenObject *t = c->token;
        char field[sizeof "KEYRENEW_ORDER=" + PORTAL_ORDER_ID_MAX];
        int r;

        if (!streq(c->renewal_state, "approved") || !c->renewal_order ||
            (c->announced_order && streq(c->announced_order, c->renewal_order)))
                return false;
        if (cert_object_set_announced_order(c, c->renewal_order) < 0)
                return false; /* announced at the next flush */
        (void) snprintf(field, sizeof field, "KEYRENEW_ORDER=%s", c->renewal_order);
        (void) log_fields(LOG_NOTICE, 0, LOG_FIELDS(field),
                          "Token %s: renewal order %s for the certificate in slot %s (%s) is approved%s",
                          t->key, c->renewal_order, c->slot_name, c->info->subject,
                          t->present ? "" : "; the key is not plugged in");
        r = cert_bus_emit_renewal_available(c, c->renewal_order, t->present);
        if (r < 0)
                log_debug_errno(r, "Cannot send RenewalAvailable for %s", c->path);
        return true;
}

void token_object_evaluate(TokenObject *t, const unsigned *warn_days, size_t n_warn, time_t now) {
        TokenState s;

        for (size_t i = 0; i < t->n_certs; i++) {
                CertObject *c = t->certs[i];
                int64_t left = x509_info_days_left(c->info, now);
                int level = expiry_level(warn_days, n_warn, c->info->not_after, now);

                if (left != c->days_left)
                        cert_changed(c, CERT_PROP_DAYS_LEFT);
                if (expiry_level_status(level) != expiry_level_status(c->level))
                        cert_changed(c, CERT_PROP_STATUS);
                c->days_left = left;
                c->level = level;
        }
        s = token_compute_state(t);
        if (s != t->state) {
                t->state = s;
                token_changed(t, TOKEN_PROP_STATE);
        }
}

time_t token_object_next_change(const TokenObject *t, time_t now) {
        time_t next = 0;

        for (size_t i = 0; i < t->n_certs; i++) {
                time_t c = expiry_next_change(t->certs[i]->info->not_after, now);

                if (next == 0 || c < next)
                        next = c;
        }
        return next;
}

int token_object_publish(TokenObject *t) {
        int r;

        r = token_bus_add(t);
        for (size_t i = 0; r >= 0 && i < t->n_certs; i++)
                r = cert_bus_add(t->certs[i]);
        if (r < 0)
                return r;
        t->published = true;
        t->dirty = 0;
        for (size_t i = 0; i < t->n_certs; i++)
                t->certs[i]->dirty = 0;
        /* Parents first, so a client sees a certificate's token. */
        (void) sd_bus_emit_object_added(t->bus, t->path);
        for (size_t i = 0; i < t->n_certs; i++)
                (void) sd_bus_emit_object_added(t->bus, t->certs[i]->path);
        return 0;
}

/* Puts a certificate that came with a read on the bus. */
static void cert_publish(CertObject *c) {
        int r = cert_bus_add(c);

        if (r < 0)
                log_warning_errno(r, "Cannot put %s on the bus", c->path);
        else
                (void) sd_bus_emit_object_added(c->token->bus, c->path);
}

bool token_object_flush(TokenObject *t, bool renewal_news) {
        bool announced = false;
        int r;

        if (!t->published)
                return false;
        for (size_t i = 0; i < t->n_certs; i++) {
                CertObject *c = t->certs[i];

                if (!c->bus_slot)
                        cert_publish(c);
                else if (c->dirty) {
                        r = cert_bus_emit_changed(c, c->dirty);
                        if (r < 0)
                                log_debug_errno(r, "Cannot emit PropertiesChanged for %s", c->path);
                }
                c->dirty = 0;
                /* Not while the token is read: its certificates may be
                 * about to change. */
                if (!t->checking && cert_announce(c))
                        announced = true;
                if (renewal_news && cert_announce_renewal(c))
                        announced = true;
        }
        if (t->dirty) {
                r = token_bus_emit_changed(t, t->dirty);
                if (r < 0)
                        log_debug_errno(r, "Cannot emit PropertiesChanged for %s", t->path);
        }
        t->dirty = 0;
        return announced;
}

void token_object_reply_waiters(TokenObject *t, const char *error, const char *message) {
        for (size_t i = 0; i < t->n_waiters; i++) {
                int r = error ? sd_bus_reply_method_errorf(t->waiters[i], error, "%s", message)
                              : sd_bus_reply_method_return(t->waiters[i], NULL);

                if (r < 0)
                        log_debug_errno(r, "Cannot answer Refresh() on %s", t->path);
                sd_bus_message_unref(t->waiters[i]);
        }
        free(t->waiters);
        t->waiters = NULL;
        t->n_waiters = 0;
}
