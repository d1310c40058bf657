/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "daemon.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include "bus-loop.h"
#include "config.h"
#include "i18n.h"
#include "log.h"
#include "manager.h"
#include "pcsc-monitor.h"

typedef struct Daemon {
        uv_loop_t loop;
        uv_signal_t sigterm, sigint;
        uv_timer_t watchdog;
        bool watchdog_started; /* the watchdog timer was initialised */
        sd_bus *bus;
        BusLoop *bus_loop;
        Manager *manager;
        PcscMonitor *monitor;
        bool ready;
        bool stopping;
        int exit_status;
        char status[128]; /* the last STATUS= sent */
} Daemon;

/* Closes everything; uv_run() returns once the close callbacks have run. */
static void daemon_stop(Daemon *d, int exit_status) {
        if (d->stopping)
                return;
        d->stopping = true;
        d->exit_status = exit_status;
        if (d->ready)
                (void) sd_notify(0, "STOPPING=1");
        pcsc_monitor_close(d->monitor);
        d->monitor = NULL;
        manager_free(d->manager);
        d->manager = NULL;
        /* The bus loop closes the connection once its handles are closed;
         * without one, nothing polls the fd and it can go now. */
        if (d->bus_loop) {
                bus_loop_close(d->bus_loop);
                d->bus = sd_bus_unref(d->bus);
        } else {
                d->bus = sd_bus_flush_close_unref(d->bus);
        }
        d->bus_loop = NULL;
        /* What is left lives in d itself. Not a walk over every handle:
         * the portal client and libcurl close theirs one after the other,
         * in their own close callbacks. */
        uv_close((uv_handle_t *) &d->sigterm, NULL);
        uv_close((uv_handle_t *) &d->sigint, NULL);
        if (d->watchdog_started)
                uv_close((uv_handle_t *) &d->watchdog, NULL);
}

static void daemon_update_status(Daemon *d) {
        const Manager *m = d->manager;
        char status[sizeof d->status];

        if (!m->pcsc_known)
                return;
        if (m->pcsc_state == PCSC_STATE_NO_SERVICE)
                snprintf(status, sizeof status, "%s", _("Waiting for pcscd"));
        else
                snprintf(status, sizeof status, _("Readers: %zu, cards: %zu"), m->n_readers, m->n_cards);
        if (!d->ready) {
                /* Ready once the bus can show a real PC/SC state. */
                (void) sd_notifyf(0, "READY=1\nSTATUS=%s", status);
                d->ready = true;
        } else if (strcmp(status, d->status) != 0) {
                (void) sd_notifyf(0, "STATUS=%s", status);
        }
        snprintf(d->status, sizeof d->status, "%s", status);
}

static void on_pcsc_event(PcscMonitor *monitor, const PcscEvent *e, void *userdata) {
        Daemon *d = userdata;

        manager_pcsc_event(d->manager, e);
        daemon_update_status(d);
}

static void on_bus_fail(BusLoop *b, int error, void *userdata) {
        Daemon *d = userdata;

        log_error_errno(error, "%s", _("Lost the connection to the bus"));
        daemon_stop(d, EXIT_FAILURE);
}

static void on_signal(uv_signal_t *handle, int signum) {
        Daemon *d = handle->data;

        log_info("Received SIG%s, exiting", sigabbrev_np(signum));
        daemon_stop(d, EXIT_SUCCESS);
}

static void on_watchdog(uv_timer_t *handle) {
        (void) sd_notify(0, "WATCHDOG=1");
}

static int bus_open(const char *spec, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (strcmp(spec, "system") == 0)
                r = sd_bus_open_system_with_description(&bus, "keyrenewd");
        else if (strcmp(spec, "session") == 0)
                r = sd_bus_open_user_with_description(&bus, "keyrenewd");
        else {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, spec);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_set_description(bus, "keyrenewd");
                if (r >= 0)
                        r = sd_bus_start(bus);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static int daemon_own_name(Daemon *d) {
        int r = sd_bus_request_name(d->bus, KEYRENEW_BUS_NAME, 0);

        if (r == -EEXIST)
                log_error(_("%s is already taken on this bus: is another keyrenewd running?"),
                          KEYRENEW_BUS_NAME);
        else if (r == -EACCES || r == -EPERM)
                log_error(_("The bus does not let this user own %s: is the D-Bus policy installed, and does "
                            "keyrenewd run as the user it names?"),
                          KEYRENEW_BUS_NAME);
        if (r == -EEXIST || r == -EACCES || r == -EPERM)
                return r;
        if (r < 0)
                return log_error_errno(r, _("Cannot own %s on the bus"), KEYRENEW_BUS_NAME);
        return 0;
}

static int daemon_start_watchdog(Daemon *d) {
        uint64_t usec, ms;

        if (sd_watchdog_enabled(false, &usec) <= 0)
                return 0;
        ms = MAX(usec / 2000, 1u);
        log_debug("Pinging the systemd watchdog every %" PRIu64 " ms", ms);
        (void) uv_timer_init(&d->loop, &d->watchdog);
        d->watchdog_started = true;
        return uv_timer_start(&d->watchdog, on_watchdog, ms, ms);
}

static int daemon_start(Daemon *d, const char *bus, const ManagerSettings *settings) {
        int r;

        (void) uv_signal_init(&d->loop, &d->sigterm);
        (void) uv_signal_init(&d->loop, &d->sigint);
        d->sigterm.data = d->sigint.data = d;
        r = uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        if (r >= 0)
                r = uv_signal_start(&d->sigint, on_signal, SIGINT);
        if (r < 0)
                return log_error_errno(r, "Cannot watch SIGTERM and SIGINT");

        r = bus_open(bus, &d->bus);
        if (r < 0)
                return log_error_errno(r, _("Cannot connect to the bus (%s)"), bus);
        /* The objects exist before the name, so a client that sees the name
         * finds them. */
        r = manager_new(&d->loop, d->bus, settings, &d->manager);
        if (r < 0)
                return log_error_errno(r, "Cannot put the manager on the bus");
        r = daemon_own_name(d);
        if (r < 0)
                return r;
        r = bus_loop_new(&d->loop, d->bus, on_bus_fail, d, &d->bus_loop);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the bus connection");
        r = pcsc_monitor_new(&d->loop, on_pcsc_event, d, &d->monitor);
        if (r < 0)
                return log_error_errno(r, "Cannot start watching PC/SC");
        r = daemon_start_watchdog(d);
        if (r < 0)
                return log_error_errno(r, "Cannot start the watchdog timer");
        log_info("Serving %s (bus: %s)", KEYRENEW_BUS_NAME, bus);
        return 0;
}

int daemon_run(const char *bus, const ManagerSettings *settings) {
        Daemon d = { .exit_status = EXIT_SUCCESS };
        int r;

        r = uv_loop_init(&d.loop);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the event loop");
                return EXIT_FAILURE;
        }
        if (daemon_start(&d, bus, settings) < 0)
                daemon_stop(&d, EXIT_FAILURE);
        (void) uv_run(&d.loop, UV_RUN_DEFAULT);
        r = uv_loop_close(&d.loop);
        if (r < 0) {
                log_error_errno(r, "Handles left open at exit");
                return EXIT_FAILURE;
        }
        return d.exit_status;
}
