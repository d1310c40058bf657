/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "manager.h"

#include <PCSC/winscard.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "macro.h"
#include "manager-bus.h"

int manager_new(sd_bus *bus, Manager **ret) {
        Manager *m;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->bus = sd_bus_ref(bus);
        m->pcsc_state = PCSC_STATE_NO_SERVICE;
        r = manager_bus_register(m);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

void manager_free(Manager *m) {
        if (!m)
                return;
        manager_bus_unregister(m);
        sd_bus_unref(m->bus);
        free(m);
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

/* A card is in reader r: this is where it becomes a token. */
static void manager_card_inserted(Manager *m, Reader *r) {
        char atr[MAX_ATR_SIZE * 3], field[sizeof "KEYRENEW_ATR=" + sizeof atr];

        if (hex_format(r->atr, r->atr_len, ' ', atr, sizeof atr) < 0)
                atr[0] = '\0';
        snprintf(field, sizeof field, "KEYRENEW_ATR=%s", atr);
        log_reader(r->name, field, "Card inserted in %s (ATR %s)", r->name, atr);
}

/* The card in reader r is gone: the token made of it goes with it. */
static void manager_card_removed(Manager *m, Reader *r) {
        log_reader(r->name, NULL, "Card removed from %s", r->name);
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
