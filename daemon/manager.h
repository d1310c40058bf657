/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's model of the world: the readers PC/SC reports, the cards in
 * them and whether pcscd can be reached, shown on the bus by manager-bus.c.
 * Everything here runs on the loop thread. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "pcsc-monitor.h"

typedef struct Reader {
        char name[MAX_READERNAME];
        bool card_present;
        uint8_t atr[MAX_ATR_SIZE];
        size_t atr_len;
} Reader;

typedef struct Manager {
        sd_bus *bus;
        sd_bus_slot *object_manager_slot;
        sd_bus_slot *manager_slot;
        bool pcsc_known; /* a first state came from the monitor */
        PcscState pcsc_state;
        Reader readers[PCSC_MONITOR_MAX_READERS]; /* in the order they appeared */
        size_t n_readers;
        size_t n_cards;
} Manager;

/* Puts the manager's objects on bus (the name is requested elsewhere). */
int manager_new(sd_bus *bus, Manager **ret);
/* Takes the objects off the bus and frees m. NULL is fine. */
void manager_free(Manager *m);

/* Applies a change the PC/SC monitor saw, logs it and tells the bus. */
void manager_pcsc_event(Manager *m, const PcscEvent *e);
