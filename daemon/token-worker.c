/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "token-worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "i18n.h"
#include "macro.h"
#include "pcsc-transport.h"

/* What the thread hands the loop: a read's result or a renewal's event. */
typedef struct ReadNode {
        struct ReadNode *next;
        TokenRead read;
        bool is_renewal;
        TokenRenewalEvent renewal;
        RenewalOutcome outcome;
} ReadNode;

struct TokenWorker {
        uv_async_t async;
        pthread_t thread;
        token_worker_read_cb read_cb;
        void *userdata;
        char reader[MAX_READERNAME];

        /* The loop thread's own. */
        bool closing;
        unsigned outstanding; /* reads asked for whose last result is not delivered */

        /* Shared with the thread, under mutex. */
        pthread_mutex_t mutex;
        pthread_cond_t cond;
        bool stopping;
        bool pending;                 /* a read is asked for and not started */
        const RenewalParams *renewal; /* asked for or running; NULL once its outcome is queued */
        token_worker_renewal_cb renewal_cb;
        void *renewal_userdata;
        bool renewal_started;
        unsigned lost; /* reads whose last result could not be queued (no memory) */
        RenewalOutcome lost_outcome;
        bool have_lost_outcome;
        ReadNode *head, **tail;

        /* The thread's own: PC/SC handles belong to the thread that made them. */
        PcscTransport *transport;
        Token *token;
};

static void read_done(TokenRead *r) {
        for (size_t i = 0; i < r->n_slots; i++)
                token_certificate_done(&r->slots[i].cert);
        free(r->slots);
        *r = (TokenRead){};
}

static bool read_is_last(const TokenRead *r) {
        return r->stage != TOKEN_READ_IDENTIFIED;
}

static bool worker_stopping(TokenWorker *w) {
        bool stopping;

        pthread_mutex_lock(&w->mutex);
        stopping = w->stopping;
        pthread_mutex_unlock(&w->mutex);
        return stopping;
}

/* Queues r for the loop and takes what it owns. */
static void worker_post(TokenWorker *w, TokenRead *r) {
        ReadNode *n = malloc(sizeof *n);

        pthread_mutex_lock(&w->mutex);
        if (n) {
                n->next = NULL;
                n->read = *r;
                n->is_renewal = false;
                *w->tail = n;
                w->tail = &n->next;
        } else if (read_is_last(r)) {
                /* The loop must still learn that the read is over. */
                w->lost++;
        }
        pthread_mutex_unlock(&w->mutex);
        if (!n)
                read_done(r);
        *r = (TokenRead){};
        (void) uv_async_send(&w->async);
}

/* Queues a renewal event; an outcome that cannot be queued is kept in w
 * for the loop (no memory must not lose the end of a renewal). */
static void worker_post_renewal(TokenWorker *w, const char *step, unsigned percent,
                                const RenewalOutcome *outcome) {
        ReadNode *n = calloc(1, sizeof *n);

        if (!n && !outcome)
                return; /* a progress step lost is only a step not shown */
        pthread_mutex_lock(&w->mutex);
        if (n) {
                n->is_renewal = true;
                n->renewal = (TokenRenewalEvent){ .step = step, .percent = percent };
                if (outcome) {
                        n->outcome = *outcome;
                        n->renewal.outcome = &n->outcome;
                }
                *w->tail = n;
                w->tail = &n->next;
        } else {
                w->lost_outcome = *outcome;
                w->have_lost_outcome = true;
        }
        pthread_mutex_unlock(&w->mutex);
        (void) uv_async_send(&w->async);
}

static void worker_renewal_progress(const char *step, unsigned percent, void *userdata) {
        worker_post_renewal(userdata, step, percent, NULL);
}

static void worker_disconnect(TokenWorker *w) {
        w->token = token_free(w->token);
        w->transport = pcsc_transport_free(w->transport);
}

static int worker_connect(TokenWorker *w, const char **step) {
        int r;

        if (w->token)
                return 0;
        *step = "connect";
        r = pcsc_transport_open(w->reader, &w->transport);
        if (r < 0)
                return r;
        *step = "open";
        return token_open(pcsc_transport_get(w->transport), &w->token);
}

/* Every certificate, each with its key's metadata when the card says. */
static int worker_read_slots(TokenWorker *w, TokenRead *read, const char **step) {
        TokenCertificate *certs = NULL;
        size_t n = 0;
        int r;

        *step = "certificates";
        r = token_list_certificates(w->token, &certs, &n);
        if (r < 0)
                return r;
        read->slots = calloc(n > 0 ? n : 1, sizeof *read->slots);
        if (!read->slots) {
                token_certificates_free(certs, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                read->slots[i].cert = certs[i];
        read->n_slots = n;
        free(certs);

        *step = "metadata";
        for (size_t i = 0; i < n && r >= 0; i++) {
                TokenSlotRead *s = &read->slots[i];

                r = token_key_metadata(w->token, s->cert.slot, &s->metadata);
                s->has_metadata = r >= 0;
                /* Cards without GET METADATA, or a certificate without its key. */
                if (r == -EOPNOTSUPP || r == -ENOENT)
                        r = 0;
        }
        return r;
}

/* One read. Returns without a last result only when the worker stops. */
static void worker_read_card(TokenWorker *w) {
        TokenRead read = {};
        const char *step = NULL;
        int r;

        r = worker_connect(w, &step);
        if (r >= 0) {
                step = "identify";
                r = token_identify(w->token, &read.identity);
        }
        if (r >= 0) {
                read.driver = token_driver_name(w->token);
                worker_post(w, &(TokenRead){ .stage = TOKEN_READ_IDENTIFIED,
                                             .driver = read.driver,
                                             .identity = read.identity });
                if (worker_stopping(w))
                        return;
                r = worker_read_slots(w, &read, &step);
        }
        if (r >= 0 && !worker_stopping(w)) {
                step = "pin";
                r = token_pin_status(w->token, &read.pin);
        }
        if (worker_stopping(w)) {
                read_done(&read);
                return;
        }
        if (r < 0) {
                read_done(&read);
                /* Whatever went wrong, the next read starts afresh. */
                worker_disconnect(w);
                read = (TokenRead){ .stage = TOKEN_READ_FAILED, .error = r, .step = step };
        } else {
                read.stage = TOKEN_READ_DONE;
        }
        worker_post(w, &read);
}

static void worker_renew(TokenWorker *w, const RenewalParams *asked) {
        RenewalParams params = *asked;
        RenewalOutcome out = {};
        const char *step = NULL;
        int r;

        params.progress = worker_renewal_progress;
        params.userdata = w;
        r = worker_connect(w, &step);
        if (r >= 0)
                r = renewal_run(w->token, &params, &out);
        if (r < 0) {
                out = (RenewalOutcome){ .error = RENEWAL_ERROR_INTERRUPTED,
                                        .errno_value = r,
                                        .step = _RENEWAL_STEP_MAX,
                                        .tries_left = -1,
                                        .mgm_key = "" };
                (void) snprintf(out.message, sizeof out.message, "%s",
                                _("The key could not be reached. Plug it in again and renew again."));
        }
        if (w->transport)
                pcsc_transport_reset_on_close(w->transport);
        worker_disconnect(w);
        worker_post_renewal(w, NULL, 0, &out);
}

typedef enum WorkerJob {
        WORKER_JOB_STOP,
        WORKER_JOB_READ,
        WORKER_JOB_RENEW,
} WorkerJob;

/* Waits for something to do: a renewal comes before a read. */
static WorkerJob worker_wait(TokenWorker *w, const RenewalParams **ret_renewal) {
        WorkerJob job = WORKER_JOB_STOP;

        pthread_mutex_lock(&w->mutex);
        while (!w->stopping && !w->pending && !(w->renewal && !w->renewal_started))
                pthread_cond_wait(&w->cond, &w->mutex);
        if (w->stopping) {
                job = WORKER_JOB_STOP;
        } else if (w->renewal && !w->renewal_started) {
                w->renewal_started = true;
                *ret_renewal = w->renewal;
                job = WORKER_JOB_RENEW;
        } else {
                w->pending = false;
                job = WORKER_JOB_READ;
        }
        pthread_mutex_unlock(&w->mutex);
        return job;
}

static void *worker_thread(void *userdata) {
        TokenWorker *w = userdata;
        const RenewalParams *renewal = NULL;
        WorkerJob job;

        while ((job = worker_wait(w, &renewal)) != WORKER_JOB_STOP) {
                if (job == WORKER_JOB_RENEW)
                        worker_renew(w, renewal);
                else
                        worker_read_card(w);
        }
        worker_disconnect(w);
        return NULL;
}

static void worker_deliver_renewal(TokenWorker *w, const TokenRenewalEvent *e) {
        if (e->outcome) {
                pthread_mutex_lock(&w->mutex);
                w->renewal = NULL;
                w->renewal_started = false;
                pthread_mutex_unlock(&w->mutex);
        }
        if (!w->closing)
                w->renewal_cb(w, e, w->renewal_userdata);
}

static void worker_deliver(TokenWorker *w, const TokenRead *r) {
        if (read_is_last(r))
                w->outstanding--;
        /* read_cb may close the worker: then deliver no more. */
        if (!w->closing)
                w->read_cb(w, r, w->userdata);
}

static void worker_async_cb(uv_async_t *handle) {
        TokenWorker *w = handle->data;
        ReadNode *n;
        unsigned lost;
        RenewalOutcome lost_outcome;
        bool have_lost_outcome;

        pthread_mutex_lock(&w->mutex);
        n = w->head;
        w->head = NULL;
        w->tail = &w->head;
        lost = w->lost;
        w->lost = 0;
        have_lost_outcome = w->have_lost_outcome;
        lost_outcome = w->lost_outcome;
        w->have_lost_outcome = false;
        pthread_mutex_unlock(&w->mutex);

        while (n) {
                ReadNode *next = n->next;

                if (n->is_renewal)
                        worker_deliver_renewal(w, &n->renewal);
                else
                        worker_deliver(w, &n->read);
                read_done(&n->read);
                free(n);
                n = next;
        }
        for (; lost > 0; lost--)
                worker_deliver(
                        w, &(TokenRead){ .stage = TOKEN_READ_FAILED, .error = -ENOMEM, .step = "queue" });
        if (have_lost_outcome)
                worker_deliver_renewal(w, &(TokenRenewalEvent){ .outcome = &lost_outcome });
}

static void worker_close_cb(uv_handle_t *handle) {
        TokenWorker *w = handle->data;

        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mutex);
        free(w);
}

static int worker_start_thread(TokenWorker *w) {
        sigset_t all, saved;
        int r;

        /* Signals are the loop's business (uv_signal): the thread takes none. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = pthread_create(&w->thread, NULL, worker_thread, w);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return -r;
}

int token_worker_new(uv_loop_t *loop, const char *reader, token_worker_read_cb read_cb, void *userdata,
                     TokenWorker **ret) {
        TokenWorker *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->read_cb = read_cb;
        w->userdata = userdata;
        w->tail = &w->head;
        snprintf(w->reader, sizeof w->reader, "%s", reader);
        pthread_mutex_init(&w->mutex, NULL);
        pthread_cond_init(&w->cond, NULL);

        r = uv_async_init(loop, &w->async, worker_async_cb);
        if (r < 0) {
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->mutex);
                free(w);
                return r;
        }
        w->async.data = w;
        r = worker_start_thread(w);
        if (r < 0) {
                w->closing = true;
                uv_close((uv_handle_t *) &w->async, worker_close_cb);
                return r;
        }
        *ret = w;
        return 0;
}

void token_worker_read(TokenWorker *w) {
        pthread_mutex_lock(&w->mutex);
        if (!w->pending) {
                w->pending = true;
                w->outstanding++;
                pthread_cond_signal(&w->cond);
        }
        pthread_mutex_unlock(&w->mutex);
}

int token_worker_renew(TokenWorker *w, const RenewalParams *params, token_worker_renewal_cb cb,
                       void *userdata) {
        int r = 0;

        pthread_mutex_lock(&w->mutex);
        if (w->renewal) {
                r = -EBUSY;
        } else {
                w->renewal = params;
                w->renewal_cb = cb;
                w->renewal_userdata = userdata;
                pthread_cond_signal(&w->cond);
        }
        pthread_mutex_unlock(&w->mutex);
        return r;
}

bool token_worker_busy(const TokenWorker *w) {
        return w->outstanding > 0;
}

const char *token_worker_reader(const TokenWorker *w) {
        return w->reader;
}

void token_worker_close(TokenWorker *w) {
        ReadNode *n;

        if (!w)
                return;
        w->closing = true;
        pthread_mutex_lock(&w->mutex);
        w->stopping = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mutex);
        (void) pthread_join(w->thread, NULL);

        while ((n = w->head)) {
                w->head = n->next;
                read_done(&n->read);
                free(n);
        }
        w->tail = &w->head;
        uv_close((uv_handle_t *) &w->async, worker_close_cb);
}
