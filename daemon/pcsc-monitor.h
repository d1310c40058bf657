/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Watches PC/SC for readers and cards without polling: one thread blocks in
 * SCardGetStatusChange(INFINITE) on every reader and on pcsc-lite's
 * "\\?PnP?\Notification" pseudo reader and hands what changed to the libuv
 * loop (uv_async). When pcscd is not there, or goes away, the thread keeps
 * trying to reach it, waiting 0.5 s after the first failure and doubling the
 * wait up to 30 s. Events are delivered on the loop thread, in order. */

#include <PCSC/pcsclite.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PCSC_MONITOR_MAX_READERS PCSCLITE_MAX_READERS_CONTEXTS
#define PCSC_MONITOR_BACKOFF_MIN_MS 500u
#define PCSC_MONITOR_BACKOFF_MAX_MS 30000u

typedef enum PcscState {
        PCSC_STATE_NO_SERVICE, /* pcscd cannot be reached (yet); retrying */
        PCSC_STATE_NO_READERS, /* pcscd is there but has no reader */
        PCSC_STATE_CONNECTED,  /* pcscd is there with at least one reader */
        _PCSC_STATE_MAX,
} PcscState;

/* "no-service", "no-readers", "connected": as the bus shows the state. */
const char *pcsc_state_to_string(PcscState s);

typedef enum PcscEventType {
        PCSC_EVENT_STATE,          /* state, error, retry_ms */
        PCSC_EVENT_READER_ADDED,   /* reader */
        PCSC_EVENT_READER_REMOVED, /* reader; its card was reported removed before */
        PCSC_EVENT_CARD_INSERTED,  /* reader, atr, atr_len */
        PCSC_EVENT_CARD_REMOVED,   /* reader */
} PcscEventType;

typedef struct PcscEvent {
        PcscEventType type;
        PcscState state;
        long error;        /* PCSC_EVENT_STATE: the PC/SC code behind it, SCARD_S_SUCCESS if none */
        unsigned retry_ms; /* PCSC_EVENT_STATE, PCSC_STATE_NO_SERVICE: the next try is in this long */
        char reader[MAX_READERNAME];
        uint8_t atr[MAX_ATR_SIZE];
        size_t atr_len;
} PcscEvent;

typedef struct PcscMonitor PcscMonitor;

typedef void (*pcsc_monitor_event_cb)(PcscMonitor *m, const PcscEvent *e, void *userdata);

/* Starts the thread. The first events follow soon: the state, then each
 * reader and each card already inserted. Returns 0 or a negative errno;
 * event_cb is never called when this fails. */
int pcsc_monitor_new(uv_loop_t *loop, pcsc_monitor_event_cb event_cb, void *userdata, PcscMonitor **ret);

/* Stops the thread (waiting for it, which is quick: it is woken with
 * SCardCancel or from its back-off), drops undelivered events and closes the
 * async handle; m is freed in its close callback. No event_cb after this.
 * NULL is fine. */
void pcsc_monitor_close(PcscMonitor *m);
