/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <getopt.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <libnotify/notify.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "i18n.h"
#include "tray.h"

enum {
        ARG_BUS = 0x100,
        ARG_PINENTRY,
        ARG_SNOOZE,
};

/* What gpg-agent would use: Debian's alternatives link to the desktop's
 * pinentry (pinentry-gnome3, -qt, -gtk2) or the terminal's. */
#define DEFAULT_PINENTRY "/usr/bin/pinentry"
#define DEFAULT_SNOOZE_MINUTES 240
#define TRAY_SESSION_NAME "org.keyrenew.Tray"

static const CliProgram program = {
        .name = "keyrenew-tray",
        .summary = N_("Tells you on the desktop when a key's certificate can be renewed."),
};

static void print_help(void) {
        printf(_("Usage: %s [OPTION...]\n"), program.name);
        printf("%s\n\n", _(program.summary));
        printf("%s\n", _("      --bus BUS            where keyrenewd is: system (the default) or a D-Bus\n"
                         "                           address such as unix:path=/run/test/bus"));
        printf(_("      --pinentry PROGRAM   the PIN dialog (default: gpg-agent.conf's\n"
                 "                           pinentry-program, else %s)\n"),
               DEFAULT_PINENTRY);
        printf(_("      --snooze MINUTES     how long \"Later\" puts a renewal off (default: %d)\n"),
               DEFAULT_SNOOZE_MINUTES);
        printf("%s\n", _("  -h, --help               show this help and exit"));
        printf("%s\n", _("  -V, --version            show the version and exit"));
}

static int bad_value(const char *option, const char *value) {
        fprintf(stderr, _("%s: bad value '%s' for %s. Run '%s --help' to see the options.\n"), program.name,
                value, option, program.name);
        return -EINVAL;
}

static int parse(int argc, char **argv, TrayOptions *ret, CliAction *ret_action) {
        static const struct option options[] = {
                { "bus", required_argument, NULL, ARG_BUS },
                { "pinentry", required_argument, NULL, ARG_PINENTRY },
                { "snooze", required_argument, NULL, ARG_SNOOZE },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        TrayOptions o = { .bus = "system",
                          .snooze_usec = (uint64_t) DEFAULT_SNOOZE_MINUTES * 60 * G_USEC_PER_SEC };
        unsigned long minutes;
        bool seconds;
        char *end;
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "hV", options, NULL)) >= 0) {
                switch (c) {
                case ARG_BUS:
                        o.bus = optarg;
                        break;
                case ARG_PINENTRY:
                        if (!*optarg)
                                return bad_value("--pinentry", optarg);
                        o.pinentry = optarg;
                        break;
                case ARG_SNOOZE:
                        /* Minutes; "Ns" for seconds, so that tests need not wait a minute. */
                        errno = 0;
                        minutes = strtoul(optarg, &end, 10);
                        seconds = *end == 's' && end[1] == '\0';
                        if (errno || end == optarg || (*end && !seconds) || minutes == 0 ||
                            minutes > 60UL * 24 * 365)
                                return bad_value("--snooze", optarg);
                        o.snooze_usec = (uint64_t) minutes * (seconds ? 1 : 60) * G_USEC_PER_SEC;
                        break;
                case 'h':
                        print_help();
                        *ret_action = CLI_EXIT;
                        return 0;
                case 'V':
                        cli_print_version(&program);
                        *ret_action = CLI_EXIT;
                        return 0;
                default:
                        return cli_unknown_option(&program, argv[optind - 1]);
                }
        }
        if (cli_no_arguments(&program, argc, argv) < 0)
                return -EINVAL;
        *ret = o;
        *ret_action = CLI_RUN;
        return 0;
}

/* The user's own choice, when gpg-agent.conf makes one: the PIN dialog
 * they know from GnuPG. NULL without one. */
static char *gpg_agent_pinentry(void) {
        const char *home = getenv("GNUPGHOME");
        g_autofree char *path =
                home && *home ? g_build_filename(home, "gpg-agent.conf", NULL)
                              : g_build_filename(g_get_home_dir(), ".gnupg", "gpg-agent.conf", NULL);
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        char *found = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return NULL;
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                char *line = g_strstrip(*l);

                if (g_str_has_prefix(line, "pinentry-program") && g_ascii_isspace(line[16])) {
                        g_free(found);
                        found = g_strdup(g_strstrip(line + 16));
                }
        }
        return found;
}

static gboolean on_signal(gpointer userdata) {
        g_main_loop_quit(userdata);
        return G_SOURCE_CONTINUE;
}

/* Started by the user unit and the autostart file, or by hand: one
 * tray per session, or every notification would show twice. The name is
 * held as long as the process lives. */
static int claim_session(GDBusConnection **ret) {
        g_autoptr(GDBusConnection) session = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, NULL);
        g_autoptr(GVariant) reply = NULL;
        guint32 result = 0;

        if (!session)
                return -ENOTCONN;
        /* 4: DBUS_NAME_FLAG_DO_NOT_QUEUE */
        reply = g_dbus_connection_call_sync(session, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "RequestName",
                                            g_variant_new("(su)", TRAY_SESSION_NAME, 4u),
                                            G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        if (!reply)
                return -ENOTCONN;
        g_variant_get(reply, "(u)", &result);
        /* 1: the primary owner now */
        if (result != 1)
                return -EEXIST;
        *ret = g_steal_pointer(&session);
        return 0;
}

static int run(const TrayOptions *o, GMainLoop *loop) {
        _cleanup_(tray_freep) Tray *tray = NULL;
        g_autoptr(GDBusConnection) session = NULL;
        int r;

        r = claim_session(&session);
        if (r == -EEXIST) {
                fprintf(stderr, _("%s: already running in this session.\n"), program.name);
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, _("%s: cannot reach the desktop's session bus.\n"), program.name);
                return r;
        }
        r = tray_new(o, &tray);
        if (r < 0) {
                fprintf(stderr, _("%s: cannot reach keyrenewd's bus (%s): %s\n"), program.name, o->bus,
                        strerror(-r));
                return r;
        }
        /* The notifications are enough without it. */
        if (tray_show_icon(tray, session) < 0)
                g_message("No status icon");
        g_main_loop_run(loop);
        return 0;
}

int main(int argc, char **argv) {
        g_autofree char *gpg_pinentry = NULL;
        TrayOptions o;
        CliAction action = CLI_RUN;
        GMainLoop *loop;
        int r;

        i18n_init();
        if (parse(argc, argv, &o, &action) < 0)
                return 2;
        if (action == CLI_EXIT)
                return 0;
        /* Before anything else: a SIGTERM while starting up still ends
         * the tray cleanly, once the loop runs. */
        loop = g_main_loop_new(NULL, FALSE);
        g_unix_signal_add(SIGINT, on_signal, loop);
        g_unix_signal_add(SIGTERM, on_signal, loop);
        /* The server's own name for us; the texts are ours. */
        if (!notify_init("keyrenew-tray")) {
                fprintf(stderr, _("%s: cannot reach the desktop's notification service.\n"), program.name);
                g_main_loop_unref(loop);
                return 1;
        }
        if (!o.pinentry)
                o.pinentry = gpg_pinentry = gpg_agent_pinentry();
        if (!o.pinentry)
                o.pinentry = DEFAULT_PINENTRY;
        r = run(&o, loop);
        g_main_loop_unref(loop);
        notify_uninit();
        return r < 0 ? 1 : 0;
}
