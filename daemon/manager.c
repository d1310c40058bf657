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

void manager_free(Manager *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_readers; i++)
                token_worker_close(m->readers[i].worker);
        wall_timer_close(m->expiry_timer);
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

static time_t now_seconds(void) {
        return time(NULL);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

static void manager_save_token(Manager *m, TokenObject *t) {
        int r;

        if (!m->state_dir)
                return;
        r = token_store_save(m->state_dir, t);
        if (r < 0)
                log_warning_errno(r, "Cannot remember token %s in %s", t->key, m->state_dir);
}

/* Evaluates the expiry policy for t now, sends what changed and saves t
 * when an announcement was made. */
static void manager_update_token(Manager *m, TokenObject *t) {
        token_object_evaluate(t, m->warn_days, m->n_warn_days, now_seconds());
        if (token_object_flush(t))
                manager_save_token(m, t);
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

int manager_new(uv_loop_t *loop, sd_bus *bus, const ManagerSettings *settings, Manager **ret) {
        Manager *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->loop = loop;
        m->bus = sd_bus_ref(bus);
        m->pcsc_state = PCSC_STATE_NO_SERVICE;
        m->n_warn_days = MIN(settings->n_warn_days, ELEMENTSOF(m->warn_days));
        memcpy(m->warn_days, settings->warn_days, m->n_warn_days * sizeof m->warn_days[0]);
        r = settings->state_dir && !(m->state_dir = strdup(settings->state_dir)) ? -ENOMEM : 0;
        if (r >= 0)
                r = wall_timer_new(loop, on_expiry_timer, m, &m->expiry_timer);
        if (r >= 0)
                r = manager_bus_register(m);
        if (r >= 0)
                r = manager_load_tokens(m);
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

static void manager_read_card(Reader *r) {
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
}

static void manager_read_failed(Manager *m, Reader *r, const TokenRead *read) {
        char message[256];

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
        manager_read_card(r);
}

/* The card in reader r is gone: its token stays, absent. */
static void manager_card_removed(Manager *m, Reader *r) {
        TokenObject *t = r->token;

        log_reader(r->name, NULL, "Card removed from %s", r->name);
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
        return 1;
}

void manager_pcsc_event(Manager *m, const PcscEvent *e) {
        Reader *r;

        switch (e->type) {
        case PCSC_EVENT_STATE:
                manager_set_pcsc_state(m, e);
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
