/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pcsc-monitor.h"

#include <PCSC/winscard.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <time.h>

#include "macro.h"

/* pcsc-lite's client ends an INFINITE wait every 60 s to start it again
 * (three round trips to pcscd, the thread woken each time), but waits out
 * a finite timeout in one go: a day is as good as forever, and the loop
 * below simply waits again. */
#define WAIT_MS (24u * 3600u * 1000u)

typedef struct PcscEventNode {
        struct PcscEventNode *next;
        PcscEvent event;
} PcscEventNode;

struct PcscMonitor {
        uv_async_t async;
        pthread_t thread;
        pcsc_monitor_event_cb event_cb;
        void *userdata;
        bool closing; /* loop thread only */

        /* Shared with the thread, under mutex. */
        pthread_mutex_t mutex;
        pthread_cond_t cond;
        bool stopping;
        bool have_context;
        SCARDCONTEXT context;
        PcscEventNode *head, **tail;

        /* The thread's own: states[0] is the PnP pseudo reader, states[1 + i]
         * watches names[i]. */
        SCARD_READERSTATE states[1 + PCSC_MONITOR_MAX_READERS];
        char names[PCSC_MONITOR_MAX_READERS][MAX_READERNAME];
        size_t n_readers;
        PcscState state;
};

const char *pcsc_state_to_string(PcscState s) {
        static const char *const names[_PCSC_STATE_MAX] = {
                [PCSC_STATE_NO_SERVICE] = "no-service",
                [PCSC_STATE_NO_READERS] = "no-readers",
                [PCSC_STATE_CONNECTED] = "connected",
        };

        return s >= 0 && s < _PCSC_STATE_MAX ? names[s] : NULL;
}

static bool monitor_stopping(PcscMonitor *m) {
        bool stopping;

        pthread_mutex_lock(&m->mutex);
        stopping = m->stopping;
        pthread_mutex_unlock(&m->mutex);
        return stopping;
}

static void monitor_post(PcscMonitor *m, const PcscEvent *e) {
        PcscEventNode *n = malloc(sizeof *n);

        /* Without memory the event is lost; the daemon will not get far
         * either, and the next change reports the state again. */
        if (!n)
                return;
        n->next = NULL;
        n->event = *e;
        pthread_mutex_lock(&m->mutex);
        *m->tail = n;
        m->tail = &n->next;
        pthread_mutex_unlock(&m->mutex);
        (void) uv_async_send(&m->async);
}

static void monitor_post_reader(PcscMonitor *m, PcscEventType type, size_t i) {
        PcscEvent e = { .type = type };

        snprintf(e.reader, sizeof e.reader, "%s", m->names[i]);
        if (type == PCSC_EVENT_CARD_INSERTED) {
                e.atr_len = MIN(m->states[1 + i].cbAtr, sizeof e.atr);
                memcpy(e.atr, m->states[1 + i].rgbAtr, e.atr_len);
        }
        monitor_post(m, &e);
}

static void monitor_post_state(PcscMonitor *m, PcscState state, LONG error, unsigned retry_ms) {
        /* Every failed try is reported, so the loop can log it; a working
         * connection only when it changes. */
        if (state == m->state && state != PCSC_STATE_NO_SERVICE)
                return;
        m->state = state;
        monitor_post(
                m, &(PcscEvent){
                           .type = PCSC_EVENT_STATE, .state = state, .error = error, .retry_ms = retry_ms });
}

/* Sleeps ms milliseconds, or less when the monitor is stopped. */
static void monitor_sleep(PcscMonitor *m, unsigned ms) {
        struct timespec deadline;

        (void) clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += ms / 1000;
        deadline.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&m->mutex);
        while (!m->stopping)
                if (pthread_cond_timedwait(&m->cond, &m->mutex, &deadline) == ETIMEDOUT)
                        break;
        pthread_mutex_unlock(&m->mutex);
}

/* The states point at names: after names moved, point them again. */
static void monitor_relink(PcscMonitor *m) {
        for (size_t i = 0; i < m->n_readers; i++)
                m->states[1 + i].szReader = m->names[i];
}

static void monitor_forget_reader(PcscMonitor *m, size_t i) {
        if (m->states[1 + i].dwCurrentState & SCARD_STATE_PRESENT)
                monitor_post_reader(m, PCSC_EVENT_CARD_REMOVED, i);
        monitor_post_reader(m, PCSC_EVENT_READER_REMOVED, i);
        m->n_readers--;
        memmove(m->names[i], m->names[i + 1], (m->n_readers - i) * sizeof m->names[0]);
        memmove(&m->states[1 + i], &m->states[2 + i], (m->n_readers - i) * sizeof m->states[0]);
        monitor_relink(m);
}

static bool multistring_contains(const char *list, const char *name) {
        for (const char *p = list; *p; p += strlen(p) + 1)
                if (strcmp(p, name) == 0)
                        return true;
        return false;
}

static bool monitor_watches(PcscMonitor *m, const char *name) {
        for (size_t i = 0; i < m->n_readers; i++)
                if (strcmp(m->names[i], name) == 0)
                        return true;
        return false;
}

/* Brings the watched readers in line with pcscd's list; readers that stay
 * keep their state, new ones start unaware so the next wait reports them. */
static LONG monitor_list_readers(PcscMonitor *m) {
        char list[PCSC_MONITOR_MAX_READERS * MAX_READERNAME + 2];
        DWORD len = sizeof list - 1;
        LONG rv;

        rv = SCardListReaders(m->context, NULL, list, &len);
        if (rv == SCARD_E_NO_READERS_AVAILABLE) {
                len = 0;
                rv = SCARD_S_SUCCESS;
        }
        if (rv != SCARD_S_SUCCESS)
                return rv;
        /* A multi-string ends with two NULs; make sure of it. */
        list[MIN(len, sizeof list - 2)] = '\0';
        list[MIN(len, sizeof list - 2) + 1] = '\0';

        for (size_t i = m->n_readers; i > 0; i--)
                if (!multistring_contains(list, m->names[i - 1]))
                        monitor_forget_reader(m, i - 1);
        for (const char *p = list; *p && m->n_readers < PCSC_MONITOR_MAX_READERS; p += strlen(p) + 1) {
                size_t i = m->n_readers, n = strlen(p);

                /* pcsc-lite's names fit; a longer one could not be told apart. */
                if (n >= sizeof m->names[i] || monitor_watches(m, p))
                        continue;
                memcpy(m->names[i], p, n + 1);
                m->states[1 + i] = (SCARD_READERSTATE){ .dwCurrentState = SCARD_STATE_UNAWARE };
                m->n_readers++;
                monitor_relink(m);
                monitor_post_reader(m, PCSC_EVENT_READER_ADDED, i);
        }
        monitor_post_state(m, m->n_readers > 0 ? PCSC_STATE_CONNECTED : PCSC_STATE_NO_READERS,
                           SCARD_S_SUCCESS, 0);
        return SCARD_S_SUCCESS;
}

static void monitor_reader_changed(PcscMonitor *m, size_t i) {
        SCARD_READERSTATE *s = &m->states[1 + i];
        DWORD old = s->dwCurrentState, now = s->dwEventState;
        bool was = old & SCARD_STATE_PRESENT, is = now & SCARD_STATE_PRESENT;
        /* The high word counts insertions and removals: a card swapped
         * between two waits shows as present both times. */
        bool swapped = was && is && (old >> 16) != (now >> 16);

        s->dwCurrentState = now & ~(DWORD) SCARD_STATE_CHANGED;
        if (was && (!is || swapped))
                monitor_post_reader(m, PCSC_EVENT_CARD_REMOVED, i);
        if (is && (!was || swapped))
                monitor_post_reader(m, PCSC_EVENT_CARD_INSERTED, i);
}

/* Waits for changes until pcscd fails us (returns its error) or the monitor
 * stops (returns SCARD_S_SUCCESS). */
static LONG monitor_watch(PcscMonitor *m) {
        LONG rv;

        m->states[0] = (SCARD_READERSTATE){ .szReader = "\\\\?PnP?\\Notification" };
        rv = monitor_list_readers(m);
        while (rv == SCARD_S_SUCCESS && !monitor_stopping(m)) {
                /* pcsc-lite takes at most PCSC_MONITOR_MAX_READERS states
                 * (more is SCARD_E_INVALID_PARAMETER) and serves as many
                 * readers: with all of them there, none can be added and one
                 * that goes away shows in its own state, so the PnP pseudo
                 * reader is left out. */
                bool pnp = m->n_readers < PCSC_MONITOR_MAX_READERS, relist = false;

                rv = SCardGetStatusChange(m->context, WAIT_MS, m->states + !pnp,
                                          (DWORD) (pnp + m->n_readers));
                if (rv == SCARD_E_CANCELLED || rv == SCARD_E_TIMEOUT) {
                        rv = SCARD_S_SUCCESS;
                        continue;
                }
                /* A reader went away between listing and waiting. */
                if (rv == SCARD_E_UNKNOWN_READER) {
                        rv = monitor_list_readers(m);
                        continue;
                }
                if (rv != SCARD_S_SUCCESS)
                        break;
                for (size_t i = 0; i < m->n_readers; i++) {
                        DWORD now = m->states[1 + i].dwEventState;

                        if (!(now & SCARD_STATE_CHANGED))
                                continue;
                        if (now & (SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE))
                                relist = true;
                        else
                                monitor_reader_changed(m, i);
                }
                if (pnp && (m->states[0].dwEventState & SCARD_STATE_CHANGED)) {
                        m->states[0].dwCurrentState =
                                m->states[0].dwEventState & ~(DWORD) SCARD_STATE_CHANGED;
                        relist = true;
                }
                if (relist)
                        rv = monitor_list_readers(m);
        }
        return rv;
}

static LONG monitor_connect(PcscMonitor *m) {
        SCARDCONTEXT context;
        LONG rv;

        rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &context);
        if (rv != SCARD_S_SUCCESS)
                return rv;
        pthread_mutex_lock(&m->mutex);
        m->context = context;
        m->have_context = true;
        pthread_mutex_unlock(&m->mutex);
        return SCARD_S_SUCCESS;
}

static void monitor_disconnect(PcscMonitor *m) {
        while (m->n_readers > 0)
                monitor_forget_reader(m, m->n_readers - 1);
        /* Under the mutex: pcsc_monitor_close() may be cancelling it. */
        pthread_mutex_lock(&m->mutex);
        (void) SCardReleaseContext(m->context);
        m->have_context = false;
        pthread_mutex_unlock(&m->mutex);
}

static void *monitor_thread(void *userdata) {
        PcscMonitor *m = userdata;
        unsigned backoff = PCSC_MONITOR_BACKOFF_MIN_MS;

        while (!monitor_stopping(m)) {
                LONG rv = monitor_connect(m);

                if (rv == SCARD_S_SUCCESS) {
                        rv = monitor_watch(m);
                        monitor_disconnect(m);
                        if (rv == SCARD_S_SUCCESS)
                                break;
                        /* It worked for a while: pcscd restarting is worth
                         * a quick retry. */
                        backoff = PCSC_MONITOR_BACKOFF_MIN_MS;
                }
                monitor_post_state(m, PCSC_STATE_NO_SERVICE, rv, backoff);
                monitor_sleep(m, backoff);
                backoff = MIN(backoff * 2, PCSC_MONITOR_BACKOFF_MAX_MS);
        }
        return NULL;
}

static void monitor_async_cb(uv_async_t *handle) {
        PcscMonitor *m = handle->data;
        PcscEventNode *n;

        pthread_mutex_lock(&m->mutex);
        n = m->head;
        m->head = NULL;
        m->tail = &m->head;
        pthread_mutex_unlock(&m->mutex);

        while (n) {
                PcscEventNode *next = n->next;

                /* event_cb may close the monitor: then deliver no more. */
                if (!m->closing)
                        m->event_cb(m, &n->event, m->userdata);
                free(n);
                n = next;
        }
}

static void monitor_close_cb(uv_handle_t *handle) {
        PcscMonitor *m = handle->data;

        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->mutex);
        free(m);
}

static int monitor_start_thread(PcscMonitor *m) {
        sigset_t all, saved;
        int r;

        /* Signals are the loop's business (uv_signal): the thread takes none. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = pthread_create(&m->thread, NULL, monitor_thread, m);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return -r;
}

int pcsc_monitor_new(uv_loop_t *loop, pcsc_monitor_event_cb event_cb, void *userdata, PcscMonitor **ret) {
        pthread_condattr_t attr;
        PcscMonitor *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->event_cb = event_cb;
        m->userdata = userdata;
        m->tail = &m->head;
        m->state = _PCSC_STATE_MAX; /* nothing reported yet */
        pthread_mutex_init(&m->mutex, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&m->cond, &attr);
        pthread_condattr_destroy(&attr);

        r = uv_async_init(loop, &m->async, monitor_async_cb);
        if (r < 0) {
                pthread_cond_destroy(&m->cond);
                pthread_mutex_destroy(&m->mutex);
                free(m);
                return r;
        }
        m->async.data = m;
        r = monitor_start_thread(m);
        if (r < 0) {
                m->closing = true;
                uv_close((uv_handle_t *) &m->async, monitor_close_cb);
                return r;
        }
        *ret = m;
        return 0;
}

void pcsc_monitor_close(PcscMonitor *m) {
        PcscEventNode *n;

        if (!m)
                return;
        m->closing = true;
        pthread_mutex_lock(&m->mutex);
        m->stopping = true;
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->mutex);

        /* SCardCancel only reaches a thread already inside
         * SCardGetStatusChange; one that is about to enter it would wait on,
         * so cancel again until the thread is gone. */
        for (;;) {
                struct timespec deadline;

                pthread_mutex_lock(&m->mutex);
                if (m->have_context)
                        (void) SCardCancel(m->context);
                pthread_mutex_unlock(&m->mutex);
                (void) clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_nsec += 100 * 1000000L;
                if (deadline.tv_nsec >= 1000000000L) {
                        deadline.tv_sec++;
                        deadline.tv_nsec -= 1000000000L;
                }
                if (pthread_timedjoin_np(m->thread, NULL, &deadline) != ETIMEDOUT)
                        break;
        }

        while ((n = m->head)) {
                m->head = n->next;
                free(n);
        }
        m->tail = &m->head;
        uv_close((uv_handle_t *) &m->async, monitor_close_cb);
}
