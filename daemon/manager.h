/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's model of the world: the readers PC/SC reports, the cards in
 * them and whether pcscd can be reached, shown on the bus by manager-bus.c;
 * the tokens the cards turn out to be (token-object.h), each card read by a
 * worker thread of its own (token-worker.h); the expiry policy's timer.
 * Everything here runs on the loop thread. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <uv.h>

#include "config-file.h"
#include "pcsc-monitor.h"
#include "token-object.h"
#include "token-worker.h"
#include "wall-timer.h"

typedef struct Reader {
        char name[MAX_READERNAME];
        bool card_present;
        uint8_t atr[MAX_ATR_SIZE];
        size_t atr_len;
        TokenWorker *worker;      /* while a card is in */
        TokenObject *token;       /* what the card turned out to be, once identified */
        uint64_t read_started_ns; /* uv_hrtime() when the last read was asked for */
} Reader;

typedef struct ManagerSettings {
        const unsigned *warn_days; /* [Expiry] WarnDays */
        size_t n_warn_days;
        const char *state_dir; /* where tokens are remembered; NULL: nowhere */
} ManagerSettings;

struct Manager {
        uv_loop_t *loop;
        sd_bus *bus;
        sd_bus_slot *object_manager_slot;
        sd_bus_slot *manager_slot;
        bool pcsc_known; /* a first state came from the monitor */
        PcscState pcsc_state;
        Reader readers[PCSC_MONITOR_MAX_READERS]; /* in the order they appeared */
        size_t n_readers;
        size_t n_cards;
        unsigned warn_days[CONFIG_WARN_DAYS_MAX];
        size_t n_warn_days;
        char *state_dir;
        TokenObject **tokens; /* every token known, present or not */
        size_t n_tokens;
        WallTimer *expiry_timer;
        sd_bus_message **refresh_waiters; /* Manager.Refresh() calls waiting for the reads */
        size_t n_refresh_waiters;
};

/* Puts the manager's objects on bus (the name is requested elsewhere),
 * with the tokens remembered in the state directory. */
int manager_new(uv_loop_t *loop, sd_bus *bus, const ManagerSettings *settings, Manager **ret);
/* Takes the objects off the bus and frees m. NULL is fine. */
void manager_free(Manager *m);

/* Applies a change the PC/SC monitor saw, logs it and tells the bus. */
void manager_pcsc_event(Manager *m, const PcscEvent *e);

/* Manager.Refresh(): reads every card again; call is answered when all
 * reads are over. Returns 1 (answer deferred) or a negative errno. */
int manager_refresh(Manager *m, sd_bus_message *call, sd_bus_error *error);
/* Token.Refresh(): reads t's card again; call is answered when it is
 * read, with CardError when that fails and TokenAbsent when t is not (or
 * no longer) plugged in. */
int manager_refresh_token(Manager *m, TokenObject *t, sd_bus_message *call, sd_bus_error *error);
/* The token known by serial, or NULL. */
TokenObject *manager_find_token_by_serial(Manager *m, const char *serial);
