/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "manager.h"

#include <PCSC/winscard.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <time.h>

#include "hex.h"
#include "i18n.h"
#include "log.h"
#include "macro.h"
#include "manager-bus.h"
#include "manager-renew.h"
#include "token-bus.h"
#include "token-store.h"

static void manager_reply_refresh_waiters(Manager *m) {
        for (size_t i = 0; i < m->n_refresh_waiters; i++) {
                int r = sd_bus_reply_method_return(m->refresh_waiters[i], NULL);

                if (r < 0)
                        log_debug_errno(r, "Cannot answer Manager.Refresh()");
                sd_bus_message_unref(m->refresh_waiters[i]);
        }
        free(m->refresh_waiters);
        m->refresh_waiters = NULL;
        m->n_refresh_waiters = 0;
}

const char *portal_state_to_string(PortalState s) {
        static const char *const names[_PORTAL_STATE_MAX] = {
                [PORTAL_STATE_NOT_CONFIGURED] = "not-configured",
                [PORTAL_STATE_UNKNOWN] = "unknown",
                [PORTAL_STATE_REACHABLE] = "reachable",
                [PORTAL_STATE_FAILING] = "failing",
        };

        return s >= 0 && s < _PORTAL_STATE_MAX ? names[s] : NULL;
}

/* The client's close has completed: nothing uses curl any more. */
static void on_portal_closed(void *userdata) {
        curl_loop_close(userdata, NULL, NULL);
}

static void on_settle_timer_closed(uv_handle_t *h) {
        free(h);
}

void manager_free(Manager *m) {
        if (!m)
                return;
        if (m->settle_timer)
                uv_close((uv_handle_t *) m->settle_timer, on_settle_timer_closed);
        if (m->portal)
                portal_client_close(m->portal, on_portal_closed, m->curl);
        else if (m->curl)
                curl_loop_close(m->curl, NULL, NULL);
        free(m->portal_error);
        sd_bus_slot_unref(m->sleep_slot);
        manager_renew_stop(m);
        for (size_t i = 0; i < m->n_readers; i++)
                token_worker_close(m->readers[i].worker);
        manager_renew_done(m);
        wall_timer_close(m->expiry_timer);
        token_store_writer_close(m->store);
        for (size_t i = 0; i < m->n_tokens; i++)
                token_object_free(m->tokens[i]);
        free(m->tokens);
        for (size_t i = 0; i < m->n_refresh_waiters; i++)
                sd_bus_message_unref(m->refresh_waiters[i]);
        free(m->refresh_waiters);
        manager_bus_unregister(m);
        sd_bus_unref(m->bus);
        free(m->state_dir);
        free(m);
}

static void manager_emit(Manager *m, const char *property);

/* Not time(): it reads the coarse clock, up to a tick behind the one the
 * expiry timer (a timerfd) fires by, and would see the second before the
 * deadline, arm the timer for that past deadline and spin until the tick. */
static time_t now_seconds(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return ts.tv_sec;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

/* Off the loop: the file's fsyncs take milliseconds that every key
 * plugged in and every bus call would otherwise wait for. */
static void manager_save_token(Manager *m, TokenObject *t) {
        int r;

        if (!m->store)
                return;
        r = token_store_writer_save(m->store, t);
        if (r < 0)
                log_warning_errno(r, "Cannot remember token %s in %s", t->key, m->state_dir);
}

/* Whether every key plugged in is known: RenewalAvailable says whether
 * the key is in, so it waits for PC/SC's first report of the cards and for
 * the reads of cards not identified yet. */
static bool manager_knows_keys(Manager *m) {
        if (!m->pcsc_settled)
                return false;
        for (size_t i = 0; i < m->n_readers; i++) {
                const Reader *r = &m->readers[i];

                if (r->card_present && !r->token && r->worker && token_worker_busy(r->worker))
                        return false;
        }
        return true;
}

/* Evaluates the expiry policy for t now, sends what changed and saves t
 * when an announcement was made. */
void manager_update_token(Manager *m, TokenObject *t) {
        token_object_evaluate(t, m->warn_days, m->n_warn_days, now_seconds());
        if (token_object_flush(t, manager_knows_keys(m)))
                manager_save_token(m, t);
}

/* Cards already in when the monitor first reports are told right after
 * (pcscd answers a first look at a reader at once); this is plenty. */
#define MANAGER_SETTLE_MS 1000

static void manager_flush_held_news(Manager *m);

static void on_settle_timer(uv_timer_t *timer) {
        Manager *m = timer->data;

        m->pcsc_settled = true;
        manager_flush_held_news(m);
}

/* Sends the renewal news held back while keys were being found out. */
static void manager_flush_held_news(Manager *m) {
        if (!manager_knows_keys(m))
                return;
        for (size_t i = 0; i < m->n_tokens; i++)
                manager_update_token(m, m->tokens[i]);
}

/* One timer for every certificate: the next time any days left change. */
static void manager_arm_expiry_timer(Manager *m) {
        time_t now = now_seconds(), next = 0;
        int r;

        for (size_t i = 0; i < m->n_tokens; i++) {
                time_t t = token_object_next_change(m->tokens[i], now);

                if (t != 0 && (next == 0 || t < next))
                        next = t;
        }
        r = wall_timer_set(m->expiry_timer, next);
        if (r < 0)
                log_warning_errno(r, "Cannot set the expiry timer");
        else if (next != 0)
                log_debug("Next expiry check in %lld s", (long long) (next - now));
}

static void on_expiry_timer(WallTimer *timer, void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_tokens; i++)
                manager_update_token(m, m->tokens[i]);
        manager_arm_expiry_timer(m);
}

static TokenObject *manager_find_token(Manager *m, const char *key) {
        for (size_t i = 0; i < m->n_tokens; i++)
                if (strcmp(m->tokens[i]->key, key) == 0)
                        return m->tokens[i];
        return NULL;
}

TokenObject *manager_find_token_by_serial(Manager *m, const char *serial) {
        /* A token with a serial is known by it. */
        return manager_find_token(m, serial);
}

/* Adds t to the list and puts it on the bus; t belongs to m either way. */
static int manager_add_token(Manager *m, TokenObject *t) {
        TokenObject **tokens;
        int r;

        tokens = reallocarray(m->tokens, m->n_tokens + 1, sizeof *tokens);
        if (!tokens) {
                token_object_free(t);
                return -ENOMEM;
        }
        m->tokens = tokens;
        m->tokens[m->n_tokens++] = t;
        token_object_evaluate(t, m->warn_days, m->n_warn_days, now_seconds());
        r = token_object_publish(t);
        if (r < 0)
                return log_error_errno(r, "Cannot put token %s on the bus", t->key);
        manager_emit(m, "Tokens");
        return 0;
}

static void on_remembered_token(TokenObject *t, void *userdata) {
        Manager *m = userdata;

        if (manager_find_token(m, t->key)) {
                log_warning("Token %s is remembered twice; keeping one", t->key);
                token_object_free(t);
                return;
        }
        if (manager_add_token(m, t) >= 0)
                /* Thresholds crossed while the daemon was not running. */
                manager_update_token(m, t);
}

static int manager_load_tokens(Manager *m) {
        int n;

        if (!m->state_dir) {
                log_info("No state directory: tokens are not remembered across restarts");
                return 0;
        }
        n = token_store_load_all(m->state_dir, m, m->bus, on_remembered_token, m);
        if (n < 0)
                return log_error_errno(n, "Cannot read the remembered tokens in %s", m->state_dir);
        log_debug("Remembered %d token(s) from %s", n, m->state_dir);
        return 0;
}

/* The identifiers of the certificates of only (or, when NULL, of every
 * token) that the portal can be asked about, borrowed from them. */
static int manager_cert_ids(Manager *m, const TokenObject *only, char ***ret, size_t *ret_n) {
        size_t n = 0, total = 0;
        char **ids;

        for (size_t i = 0; i < m->n_tokens; i++)
                total += m->tokens[i]->n_certs;
        ids = calloc(total > 0 ? total : 1, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_tokens; i++) {
                const TokenObject *t = m->tokens[i];

                if (only && t != only)
                        continue;
                for (size_t j = 0; j < t->n_certs; j++)
                        if (t->certs[j]->portal_id)
                                ids[n++] = t->certs[j]->portal_id;
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}

/* The portal is asked about the certificates of every token remembered,
 * present or not, so that an approval is seen while the key is out. */
static void manager_portal_sync_certs(Manager *m) {
        _cleanup_free_ char **ids = NULL;
        size_t n;
        int r;

        if (!m->portal)
                return;
        r = manager_cert_ids(m, NULL, &ids, &n);
        if (r >= 0)
                r = portal_client_set_certs(m->portal, ids, n);
        if (r < 0)
                log_error_errno(r, "Cannot tell the portal client which certificates to ask about");
}

/* NextPortalCheck follows the client's schedule. */
static void manager_portal_update_next(Manager *m) {
        uint64_t next = 0, due, now_ms;

        if (m->portal && (due = portal_client_next_poll_ms(m->portal)) > 0) {
                now_ms = uv_now(m->loop);
                next = now_usec() + (due > now_ms ? (due - now_ms) * UINT64_C(1000) : 0);
        }
        /* Another look at the clock a few microseconds later is no news. */
        if ((next == 0) != (m->next_portal_check_usec == 0) || next > m->next_portal_check_usec + 1000000 ||
            next + 1000000 < m->next_portal_check_usec) {
                m->next_portal_check_usec = next;
                manager_emit(m, "NextPortalCheck");
        }
}

/* Card inserted, or the user asked: look at the portal now (as far as its
 * pacing allows). */
void manager_portal_ask(Manager *m, const TokenObject *inserted) {
        _cleanup_free_ char **ids = NULL;
        size_t n;
        int r;

        if (!m->portal)
                return;
        if (!inserted) {
                portal_client_refresh(m->portal);
        } else {
                r = manager_cert_ids(m, inserted, &ids, &n);
                if (r >= 0)
                        r = portal_client_key_inserted(m->portal, ids, n);
                if (r < 0)
                        log_error_errno(r, "Cannot ask the portal about the certificates of %s",
                                        inserted->key);
        }
        manager_portal_update_next(m);
}

static int compare_status(const void *key, const void *element) {
        const PortalCertStatus *const *s = element;

        return strcmp(key, (*s)->cert);
}

static const PortalCertStatus *find_status(const PortalPollResult *res, const char *id) {
        const PortalCertStatus *const *s;

        s = bsearch(id, res->certs, res->n_certs, sizeof *res->certs, compare_status);
        return s ? *s : NULL;
}

/* Takes what the poll said about t's certificates; true when anything
 * worth remembering changed. */
static bool manager_apply_statuses(Manager *m, TokenObject *t, const PortalPollResult *res, uint64_t now) {
        bool changed = false;

        for (size_t i = 0; i < t->n_certs; i++) {
                CertObject *c = t->certs[i];
                const PortalCertStatus *s = c->portal_id ? find_status(res, c->portal_id) : NULL;
                const PortalOrder *o;
                int r;

                if (!s)
                        continue;
                o = s->order;
                r = cert_object_set_renewal(
                        c,
                        &(CertRenewal){
                                .state = o ? portal_order_state_to_string(o->state) : "none",
                                .order = o ? o->id : NULL,
                                .page = o ? o->page : NULL,
                                .reject_reason =
                                        o && o->state == PORTAL_ORDER_REJECTED ? o->reject_reason : NULL,
                                .cmp = o ? o->cmp : NULL,
                                .rekey = o && o->rekey,
                                .validity_days = o ? o->validity_days : 0,
                        },
                        now);
                if (r < 0)
                        log_error_errno(r, "Token %s: cannot keep the renewal state of slot %s", t->key,
                                        c->slot_name);
                else if (r > 0) {
                        char field[sizeof "KEYRENEW_CERT_SERIAL=" + 2 * 20 + 8];

                        (void) snprintf(field, sizeof field, "KEYRENEW_CERT_SERIAL=%s", c->info->serial);
                        (void) log_fields(LOG_INFO, 0, LOG_FIELDS(field),
                                          "Token %s: the renewal of the certificate in slot %s is %s%s%s",
                                          t->key, c->slot_name, c->renewal_state,
                                          c->renewal_order ? ", order " : "",
                                          c->renewal_order ? c->renewal_order : "");
                }
                /* The time of the answer is remembered too. */
                changed = changed || r >= 0;
        }
        return changed;
}

static void manager_set_portal_state(Manager *m, PortalState state, const char *error) {
        bool was_reachable = m->portal_state == PORTAL_STATE_REACHABLE;

        if (m->portal_state != state) {
                m->portal_state = state;
                manager_emit(m, "PortalState");
        }
        if (was_reachable != (state == PORTAL_STATE_REACHABLE))
                manager_emit(m, "PortalReachable");
        if (!m->portal_error != !error || (error && strcmp(m->portal_error, error) != 0)) {
                free(m->portal_error);
                /* Without memory for the text, the state still says it failed. */
                m->portal_error = error ? strdup(error) : NULL;
                manager_emit(m, "PortalError");
        }
}

static void on_portal_result(PortalClient *c, const PortalPollResult *res, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_usec();

        m->last_portal_check_usec = now;
        manager_emit(m, "LastPortalCheck");
        manager_set_portal_state(m, res->error < 0 ? PORTAL_STATE_FAILING : PORTAL_STATE_REACHABLE,
                                 res->error < 0 ? res->error_message : NULL);
        for (size_t i = 0; i < m->n_tokens; i++) {
                TokenObject *t = m->tokens[i];
                bool changed = manager_apply_statuses(m, t, res, now);

                token_object_evaluate(t, m->warn_days, m->n_warn_days, now_seconds());
                if (token_object_flush(t, manager_knows_keys(m)) || changed)
                        manager_save_token(m, t);
        }
        manager_portal_update_next(m);
}

/* libuv's timers run on the monotonic clock, which stops during suspend:
 * after a resume the next poll would come late by as long as the computer
 * slept, so look at once (as far as the pacing allows). */
static int on_prepare_for_sleep(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int sleeping, r;

        r = sd_bus_message_read(message, "b", &sleeping);
        if (r < 0) {
                log_debug_errno(r, "Ignoring a malformed PrepareForSleep signal");
                return 0;
        }
        if (!sleeping) {
                log_debug("Resumed from suspend: asking the portal");
                manager_portal_ask(m, NULL);
        }
        return 0;
}

static int manager_portal_start(Manager *m, const ManagerSettings *settings) {
        int r;

        if (!settings->portal_url) {
                m->portal_state = PORTAL_STATE_NOT_CONFIGURED;
                log_info("No portal configured ([Portal] Url): renewals are not looked for");
                return 0;
        }
        m->portal_state = PORTAL_STATE_UNKNOWN;
        r = curl_loop_init(m->loop, &m->curl);
        if (r < 0)
                return log_error_errno(r, "Cannot set up libcurl for the portal");
        r = portal_client_init(m->loop, m->curl,
                               &(PortalClientOptions){
                                       .base_url = settings->portal_url,
                                       .ca_bundle = settings->portal_ca_bundle,
                                       .poll_interval_sec = settings->portal_poll_interval_sec,
                                       .on_result = on_portal_result,
                                       .userdata = m,
                               },
                               &m->portal);
        if (r == -EINVAL) {
                _cleanup_free_ char *why = NULL;

                /* The configuration allows http to this computer, for test
                 * builds; any other build runs on without a portal and says why. */
                if (asprintf(&why, _("The portal URL %s cannot be used: this build only speaks https://"),
                             settings->portal_url) < 0)
                        return -ENOMEM;
                log_error("%s", why);
                manager_set_portal_state(m, PORTAL_STATE_FAILING, why);
                curl_loop_close(TAKE_PTR(m->curl), NULL, NULL);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot set up the portal client");
        manager_portal_sync_certs(m);
        r = portal_client_start(m->portal);
        if (r < 0)
                return log_error_errno(r, "Cannot start the portal client");
        log_info("Asking %s about renewals", settings->portal_url);
        manager_portal_update_next(m);
        r = sd_bus_match_signal_async(m->bus, &m->sleep_slot, "org.freedesktop.login1",
                                      "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                      "PrepareForSleep", on_prepare_for_sleep, NULL, m);
        if (r < 0)
                log_warning_errno(
                        r, "Cannot watch for resumes from suspend; the portal is asked late after one");
        return 0;
}

int manager_new(uv_loop_t *loop, sd_bus *bus, const ManagerSettings *settings, Manager **ret) {
        Manager *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->loop = loop;
        m->state_dir_fd = -1;
        m->bus = sd_bus_ref(bus);
        m->pcsc_state = PCSC_STATE_NO_SERVICE;
        m->n_warn_days = MIN(settings->n_warn_days, ELEMENTSOF(m->warn_days));
        memcpy(m->warn_days, settings->warn_days, m->n_warn_days * sizeof m->warn_days[0]);
        r = settings->state_dir && !(m->state_dir = strdup(settings->state_dir)) ? -ENOMEM : 0;
        if (r >= 0 && m->state_dir)
                r = token_store_writer_new(loop, m->state_dir, &m->store);
        if (r >= 0)
                r = wall_timer_new(loop, on_expiry_timer, m, &m->expiry_timer);
        if (r >= 0 && !(m->settle_timer = malloc(sizeof *m->settle_timer)))
                r = -ENOMEM;
        if (r >= 0) {
                (void) uv_timer_init(loop, m->settle_timer);
                m->settle_timer->data = m;
        }
        if (r >= 0)
                r = manager_renew_init(m, settings);
        if (r >= 0)
                r = manager_bus_register(m);
        if (r >= 0)
                r = manager_load_tokens(m);
        if (r >= 0)
                r = manager_portal_start(m, settings);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        manager_arm_expiry_timer(m);
        *ret = m;
        return 0;
}

static void manager_emit(Manager *m, const char *property) {
        int r = manager_bus_emit_changed(m, (char *) property);

        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged for %s", property);
}

static Reader *manager_find_reader(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_readers; i++)
                if (strcmp(m->readers[i].name, name) == 0)
                        return &m->readers[i];
        return NULL;
}

/* Logs at info level with the reader, and extra_field unless NULL, as
 * journal fields. */
_printf_(3, 4) static void log_reader(const char *reader, const char *extra_field, const char *format, ...) {
        char field[sizeof "KEYRENEW_READER=" + MAX_READERNAME];
        va_list ap;

        snprintf(field, sizeof field, "KEYRENEW_READER=%s", reader);
        va_start(ap, format);
        (void) log_fieldsv(LOG_INFO, 0, LOG_FIELDS(field, extra_field), format, ap);
        va_end(ap);
}

static void manager_set_pcsc_state(Manager *m, const PcscEvent *e) {
        bool changed = !m->pcsc_known || e->state != m->pcsc_state;

        if (!m->pcsc_known && uv_timer_start(m->settle_timer, on_settle_timer, MANAGER_SETTLE_MS, 0) < 0)
                m->pcsc_settled = true;
        m->pcsc_known = true;
        m->pcsc_state = e->state;
        if (e->state == PCSC_STATE_NO_SERVICE)
                /* The first failure is news, the retries that follow are not. */
                log_full_errno(changed ? LOG_WARNING : LOG_DEBUG, 0,
                               "Cannot reach pcscd (%s); trying again in %u.%01u s",
                               pcsc_stringify_error(e->error), e->retry_ms / 1000, e->retry_ms % 1000 / 100);
        else if (changed)
                log_info("%s", e->state == PCSC_STATE_CONNECTED
                                       ? "Connected to pcscd"
                                       : "Connected to pcscd, which has no readers");
        if (changed)
                manager_emit(m, "PcscState");
}

static void manager_add_reader(Manager *m, const char *name) {
        Reader *r;

        /* The monitor watches no more readers than fit. */
        if (manager_find_reader(m, name) || m->n_readers == ELEMENTSOF(m->readers))
                return;
        r = &m->readers[m->n_readers++];
        *r = (Reader){};
        snprintf(r->name, sizeof r->name, "%s", name);
        log_reader(name, NULL, "Reader %s added", name);
        manager_emit(m, "Readers");
}

static void manager_remove_reader(Manager *m, const char *name) {
        Reader *r = manager_find_reader(m, name);
        size_t i;

        if (!r)
                return;
        log_reader(name, NULL, "Reader %s removed", name);
        i = (size_t) (r - m->readers);
        m->n_readers--;
        memmove(r, r + 1, (m->n_readers - i) * sizeof *r);
        manager_emit(m, "Readers");
}

static Reader *manager_find_reader_by_worker(Manager *m, TokenWorker *w) {
        for (size_t i = 0; i < m->n_readers; i++)
                if (m->readers[i].worker == w)
                        return &m->readers[i];
        return NULL;
}

void manager_read_card(Reader *r) {
        r->read_started_ns = uv_hrtime();
        token_worker_read(r->worker);
}

static bool manager_reading(Manager *m) {
        for (size_t i = 0; i < m->n_readers; i++)
                if (m->readers[i].worker && token_worker_busy(m->readers[i].worker))
                        return true;
        return false;
}

/* Manager.Refresh() calls are answered once every read is over. */
static void manager_check_refresh(Manager *m) {
        if (m->n_refresh_waiters > 0 && !manager_reading(m))
                manager_reply_refresh_waiters(m);
}

/* What LastError and CardError say about a failed read. */
static void read_error_message(int error, char *buf, size_t size) {
        switch (error) {
        case -ENOMEDIUM:
                snprintf(buf, size, "%s", _("The key was removed before it could be read to the end."));
                break;
        case -EMEDIUMTYPE:
                snprintf(buf, size, "%s", _("This card has no application keyrenew can read (PIV)."));
                break;
        case -EBUSY:
                snprintf(buf, size, "%s", _("Another program is using the key exclusively."));
                break;
        case -ECONNRESET:
                snprintf(buf, size, "%s", _("Another program reset the key while it was being read."));
                break;
        case -ENODEV:
        case -ECONNREFUSED:
                snprintf(buf, size, "%s", _("The reader or the smart card service (pcscd) went away."));
                break;
        case -EBADMSG:
                snprintf(buf, size, "%s", _("The key answered with data that make no sense."));
                break;
        default:
                snprintf(buf, size, _("The key could not be read: %s."), strerror(-error));
                break;
        }
}

/* The key a read's token is known by: its serial, or for a card without
 * one its first certificate; "" when it has neither. */
static void read_token_key(const TokenRead *read, char *buf, size_t size) {
        _cleanup_(x509_info_freep) X509Info *info = NULL;

        buf[0] = '\0';
        if (read->identity.serial[0])
                snprintf(buf, size, "%s", read->identity.serial);
        else if (read->n_slots > 0 &&
                 x509_info_parse(read->slots[0].cert.der, read->slots[0].cert.der_len, &info) >= 0)
                snprintf(buf, size, "cert-%.16s", info->fingerprint);
}

static bool manager_token_in_other_reader(Manager *m, TokenObject *t, const Reader *r) {
        for (size_t i = 0; i < m->n_readers; i++)
                if (&m->readers[i] != r && m->readers[i].token == t)
                        return true;
        return false;
}

/* Finds or makes the token the card in r is, and marks it present and
 * being checked. */
static void manager_attach_token(Manager *m, Reader *r, const TokenRead *read) {
        char key[sizeof r->token->key];
        TokenObject *t;
        int k;

        read_token_key(read, key, sizeof key);
        if (!key[0]) {
                if (read->stage == TOKEN_READ_DONE)
                        log_reader(r->name, NULL,
                                   "The card in %s has no serial and no certificate: nothing to show",
                                   r->name);
                return;
        }
        t = manager_find_token(m, key);
        if (t && manager_token_in_other_reader(m, t, r)) {
                log_warning("The card in %s claims serial %s, as the one in %s does: ignoring it", r->name,
                            key, t->reader);
                return;
        }
        if (!t) {
                k = token_object_new(m, m->bus, key, read->driver, &read->identity, &t);
                if (k < 0) {
                        log_error_errno(k, "Cannot make token %s", key);
                        return;
                }
                token_object_begin_check(t, r->name, now_usec());
                if (manager_add_token(m, t) < 0)
                        return;
        } else {
                token_object_begin_check(t, r->name, now_usec());
                manager_update_token(m, t);
        }
        r->token = t;
        log_debug("Token %s on the bus %.1f ms after its read started", key,
                  (double) (uv_hrtime() - r->read_started_ns) / 1e6);
}

static void manager_read_done(Manager *m, Reader *r, const TokenRead *read) {
        TokenObject *t;

        if (!r->token)
                manager_attach_token(m, r, read);
        t = r->token;
        if (!t)
                return;
        token_object_apply_read(t, read);
        manager_update_token(m, t);
        manager_save_token(m, t);
        manager_arm_expiry_timer(m);
        token_object_reply_waiters(t, NULL, NULL);
        log_reader(r->name, NULL, "Token %s read in %.1f ms: %zu certificate(s), PIN tries left %d", t->key,
                   (double) (uv_hrtime() - r->read_started_ns) / 1e6, t->n_certs, t->pin_retries);
        manager_portal_sync_certs(m);
        if (r->inserted) {
                r->ask_portal = true;
                manager_renew_token_read(m, r, t);
        }
        r->inserted = false;
}

static void manager_read_failed(Manager *m, Reader *r, const TokenRead *read) {
        char message[256];

        /* A key plugged in and known, even if not read to the end: ask
         * about the certificates it is known to hold. */
        if (r->inserted && r->token)
                r->ask_portal = true;
        r->inserted = false;
        read_error_message(read->error, message, sizeof message);
        if (read->error == -EMEDIUMTYPE)
                log_reader(r->name, NULL, "The card in %s is not one keyrenew reads (no PIV application)",
                           r->name);
        else
                log_warning_errno(read->error, "Cannot read the card in %s (%s)", r->name, read->step);
        if (!r->token)
                return;
        token_object_read_failed(r->token, message);
        manager_update_token(m, r->token);
        token_object_reply_waiters(r->token, BUS_ERROR_CARD_ERROR, message);
}

/* Keys plugged in together are asked about in one request: the portal
 * hears of them once the last of the reads under way is over. */
static void manager_portal_ask_inserted(Manager *m) {
        if (manager_reading(m))
                return;
        for (size_t i = 0; i < m->n_readers; i++) {
                Reader *r = &m->readers[i];

                if (r->ask_portal && r->token)
                        manager_portal_ask(m, r->token);
                r->ask_portal = false;
        }
}

static void on_token_read(TokenWorker *w, const TokenRead *read, void *userdata) {
        Manager *m = userdata;
        Reader *r = manager_find_reader_by_worker(m, w);

        if (!r)
                return;
        switch (read->stage) {
        case TOKEN_READ_IDENTIFIED:
                /* A card without a serial is known once its certificates are. */
                if (!r->token)
                        manager_attach_token(m, r, read);
                else {
                        token_object_begin_check(r->token, r->name, now_usec());
                        manager_update_token(m, r->token);
                }
                break;
        case TOKEN_READ_DONE:
                manager_read_done(m, r, read);
                break;
        case TOKEN_READ_FAILED:
                manager_read_failed(m, r, read);
                break;
        }
        if (read->stage != TOKEN_READ_IDENTIFIED) {
                manager_flush_held_news(m);
                manager_portal_ask_inserted(m);
        }
        manager_check_refresh(m);
}

/* A card is in reader r: a worker of its own reads it. */
static void manager_card_inserted(Manager *m, Reader *r) {
        char atr[MAX_ATR_SIZE * 3], field[sizeof "KEYRENEW_ATR=" + sizeof atr];
        int k;

        if (hex_format(r->atr, r->atr_len, ' ', atr, sizeof atr) < 0)
                atr[0] = '\0';
        snprintf(field, sizeof field, "KEYRENEW_ATR=%s", atr);
        log_reader(r->name, field, "Card inserted in %s (ATR %s)", r->name, atr);

        k = token_worker_new(m->loop, r->name, on_token_read, m, &r->worker);
        if (k < 0) {
                log_error_errno(k, "Cannot start reading the card in %s", r->name);
                return;
        }
        r->inserted = true;
        manager_read_card(r);
}

/* The card in reader r is gone: its token stays, absent. */
static void manager_card_removed(Manager *m, Reader *r) {
        TokenObject *t = r->token;

        log_reader(r->name, NULL, "Card removed from %s", r->name);
        if (r->ask_portal && t)
                manager_portal_ask(m, t);
        r->ask_portal = false;
        if (!manager_renew_card_removed(m, r))
                token_worker_close(r->worker);
        r->worker = NULL;
        r->token = NULL;
        if (t) {
                token_object_set_absent(t, now_usec());
                manager_update_token(m, t);
                manager_save_token(m, t);
                token_object_reply_waiters(t, BUS_ERROR_TOKEN_ABSENT, _("The key was removed."));
        }
        manager_check_refresh(m);
}

int manager_refresh(Manager *m, sd_bus_message *call, sd_bus_error *error) {
        sd_bus_message **waiters;

        for (size_t i = 0; i < m->n_readers; i++)
                if (m->readers[i].worker)
                        manager_read_card(&m->readers[i]);
        manager_portal_ask(m, NULL);
        if (!manager_reading(m))
                return sd_bus_reply_method_return(call, NULL);
        waiters = reallocarray(m->refresh_waiters, m->n_refresh_waiters + 1, sizeof *waiters);
        if (!waiters)
                return -ENOMEM;
        m->refresh_waiters = waiters;
        m->refresh_waiters[m->n_refresh_waiters++] = sd_bus_message_ref(call);
        return 1;
}

int manager_refresh_token(Manager *m, TokenObject *t, sd_bus_message *call, sd_bus_error *error) {
        sd_bus_message **waiters;
        Reader *r = NULL;

        for (size_t i = 0; i < m->n_readers && !r; i++)
                if (m->readers[i].token == t && m->readers[i].worker)
                        r = &m->readers[i];
        if (!r)
                return sd_bus_error_setf(error, BUS_ERROR_TOKEN_ABSENT, _("The key %s is not plugged in."),
                                         t->identity.serial[0] ? t->identity.serial : t->key);
        waiters = reallocarray(t->waiters, t->n_waiters + 1, sizeof *waiters);
        if (!waiters)
                return -ENOMEM;
        t->waiters = waiters;
        t->waiters[t->n_waiters++] = sd_bus_message_ref(call);
        manager_read_card(r);
        manager_portal_ask(m, NULL);
        return 1;
}

void manager_pcsc_event(Manager *m, const PcscEvent *e) {
        Reader *r;

        switch (e->type) {
        case PCSC_EVENT_STATE:
                manager_set_pcsc_state(m, e);
                manager_flush_held_news(m);
                break;
        case PCSC_EVENT_READER_ADDED:
                manager_add_reader(m, e->reader);
                break;
        case PCSC_EVENT_READER_REMOVED:
                manager_remove_reader(m, e->reader);
                break;
        case PCSC_EVENT_CARD_INSERTED:
                r = manager_find_reader(m, e->reader);
                if (!r || r->card_present)
                        break;
                r->card_present = true;
                memcpy(r->atr, e->atr, e->atr_len);
                r->atr_len = e->atr_len;
                m->n_cards++;
                manager_card_inserted(m, r);
                break;
        case PCSC_EVENT_CARD_REMOVED:
                r = manager_find_reader(m, e->reader);
                if (!r || !r->card_present)
                        break;
                r->card_present = false;
                m->n_cards--;
                manager_card_removed(m, r);
                break;
        }
}
