/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tray-bus.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "macro.h"

typedef struct BusSource {
        GSource source;
        sd_bus *bus;
        GPollFD pollfd;
} BusSource;

static GSource *attached; /* one connection per process is all the tray has */

static gboolean bus_prepare(GSource *s, gint *timeout) {
        BusSource *b = (BusSource *) s;
        uint64_t until;
        int events = sd_bus_get_events(b->bus);

        b->pollfd.events = (gushort) (events > 0 ? events : 0);
        *timeout = -1;
        if (sd_bus_get_timeout(b->bus, &until) >= 0 && until != UINT64_MAX) {
                int64_t now = g_source_get_time(s); /* CLOCK_MONOTONIC, as sd-bus's */

                if ((int64_t) until <= now)
                        return TRUE;
                *timeout = (gint) MIN(((int64_t) until - now + 999) / 1000, G_MAXINT);
        }
        return FALSE;
}

static gboolean bus_check(GSource *s) {
        BusSource *b = (BusSource *) s;
        uint64_t until;

        if (b->pollfd.revents)
                return TRUE;
        return sd_bus_get_timeout(b->bus, &until) >= 0 && until != UINT64_MAX &&
               (int64_t) until <= g_source_get_time(s);
}

static gboolean bus_dispatch(GSource *s, GSourceFunc callback, gpointer userdata) {
        BusSource *b = (BusSource *) s;
        int r;

        /* Everything that is ready, so that no message waits for the
         * next poll of a fd that has nothing more to say. */
        do
                r = sd_bus_process(b->bus, NULL);
        while (r > 0);
        if (r < 0 && r != -ECONNRESET && r != -ENOTCONN)
                g_warning("sd-bus: %s", strerror(-r));
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs bus_funcs = {
        .prepare = bus_prepare,
        .check = bus_check,
        .dispatch = bus_dispatch,
};

int tray_bus_open(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        BusSource *b;
        int r;

        if (strcmp(address, "system") == 0)
                r = sd_bus_open_system(&bus);
        else {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
        }
        if (r < 0)
                return r;
        b = (BusSource *) g_source_new(&bus_funcs, sizeof(BusSource));
        b->bus = sd_bus_ref(bus);
        b->pollfd.fd = sd_bus_get_fd(bus);
        g_source_add_poll(&b->source, &b->pollfd);
        g_source_attach(&b->source, NULL);
        attached = &b->source;
        *ret = TAKE_PTR(bus);
        return 0;
}

sd_bus *tray_bus_close(sd_bus *bus) {
        if (attached) {
                sd_bus_unref(((BusSource *) attached)->bus);
                g_source_destroy(attached);
                g_source_unref(attached);
                attached = NULL;
        }
        return sd_bus_flush_close_unref(bus);
}
