/* SPDX-License-Identifier: GPL-2.0-or-later */

/* keyrenewctl: keyrenewd's keys and certificates on a terminal. The exit
 * statuses are part of the interface (docs/man/keyrenewctl.1.scd). */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctl-bus.h"
#include "ctl-error.h"
#include "ctl-history.h"
#include "ctl-json.h"
#include "ctl-renew.h"
#include "ctl-status.h"
#include "i18n.h"

typedef struct Args {
        CtlBusKind bus_kind;
        const char *bus_address;
        bool json;
        bool legend;
        bool accept_key_loss;
        bool pin_stdin;
        const char *command;
        int n_operands;
        char **operands;
} Args;

static const CliProgram program = {
        .name = "keyrenewctl",
        .summary = N_("Shows keys and certificates and renews them through keyrenewd."),
};

static void print_help(void) {
        printf(_("Usage: %s [OPTION...] [COMMAND]\n"), program.name);
        printf("%s\n\n", _(program.summary));
        printf("%s\n", _("Commands:"));
        printf("%s\n",
               _("  status           readers, keys, certificates, days left, renewal (the default)"));
        printf("%s\n", _("  list             one line per certificate"));
        printf("%s\n", _("  refresh          read every plugged-in key again, then show the status"));
        printf("%s\n", _("  renew [KEY|CERT] renew a certificate the portal approved, asking for the PIN"));
        printf("%s\n", _("                   (KEY: a key's serial; CERT: SERIAL/SLOT as list shows it)"));
        printf("%s\n", _("  history          the renewals that ended"));
        printf("\n%s\n", _("Options:"));
        printf("%s\n", _("  -h, --help       show this help and exit"));
        printf("%s\n", _("  -V, --version    show the version and exit"));
        printf("%s\n", _("      --json       print one JSON document instead of text"));
        printf("%s\n", _("      --bus=BUS    system (the default), session, or a D-Bus address"));
        printf("%s\n", _("      --no-legend  leave out the table's header and summary"));
        printf("%s\n", _("      --no-pager   accepted; keyrenewctl never starts a pager"));
        printf("%s\n%s\n", "      --accept-key-loss",
               _("                   renew: replace a key that decrypts without asking"));
        printf("%s\n", _("      --pin-stdin  renew: the PIN is the first line of standard input (for "
                         "scripts and tests)"));
        printf("\n%s\n",
               _("Exit status: 0 done, 1 failed, 2 bad usage, 3 keyrenewd not reachable, 5 cancelled,\n"
                 "6 wrong or blocked PIN, 7 --accept-key-loss needed, 8 key not plugged in (the renewal\n"
                 "resumes once it is), 9 nothing to renew. See keyrenewctl(1)."));
}

static int usage_error(void) {
        fprintf(stderr, _("Run '%s --help' to see the commands and options.\n"), program.name);
        return CTL_EXIT_USAGE;
}

static int parse_bus(const char *s, Args *args) {
        if (strcmp(s, "system") == 0)
                args->bus_kind = CTL_BUS_SYSTEM;
        else if (strcmp(s, "session") == 0)
                args->bus_kind = CTL_BUS_SESSION;
        else if (strchr(s, ':')) {
                args->bus_kind = CTL_BUS_ADDRESS;
                args->bus_address = s;
        } else {
                fprintf(stderr,
                        _("%s: --bus takes system, session or a D-Bus address such as unix:path=/run/x, "
                          "not '%s'.\n"),
                        program.name, s);
                return -EINVAL;
        }
        return 0;
}

/* Returns 1 to go on, 0 when --help or --version has answered, or an exit
 * status below 0 negated. */
static int parse_args(int argc, char **argv, Args *args) {
        enum {
                ARG_JSON = 0x100,
                ARG_BUS,
                ARG_NO_LEGEND,
                ARG_NO_PAGER,
                ARG_ACCEPT_KEY_LOSS,
                ARG_PIN_STDIN,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "json", no_argument, NULL, ARG_JSON },
                { "bus", required_argument, NULL, ARG_BUS },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "accept-key-loss", no_argument, NULL, ARG_ACCEPT_KEY_LOSS },
                { "pin-stdin", no_argument, NULL, ARG_PIN_STDIN },
                {},
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hV", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        print_help();
                        return 0;
                case 'V':
                        cli_print_version(&program);
                        return 0;
                case ARG_JSON:
                        args->json = true;
                        break;
                case ARG_BUS:
                        if (parse_bus(optarg, args) < 0)
                                return -usage_error();
                        break;
                case ARG_NO_LEGEND:
                        args->legend = false;
                        break;
                case ARG_NO_PAGER:
                        break;
                case ARG_ACCEPT_KEY_LOSS:
                        args->accept_key_loss = true;
                        break;
                case ARG_PIN_STDIN:
                        args->pin_stdin = true;
                        break;
                case ':':
                        fprintf(stderr, _("%s: option '%s' needs a value.\n"), program.name,
                                argv[optind - 1]);
                        return -usage_error();
                default:
                        fprintf(stderr, _("%s: unknown option '%s'.\n"), program.name, argv[optind - 1]);
                        return -usage_error();
                }
        }
        if (optind < argc)
                args->command = argv[optind++];
        args->operands = argv + optind;
        args->n_operands = argc - optind;
        return 1;
}

/* Connects to the bus --bus names; on failure says why and returns the
 * exit status, else -1. */
static int connect_bus(const Args *args, sd_bus **ret_bus) {
        int r;

        r = ctl_bus_connect(args->bus_kind, args->bus_address, ret_bus);
        if (r >= 0)
                return -1;
        fprintf(stderr, _("Cannot connect to the %s bus: %s. Is D-Bus running?\n"),
                args->bus_kind == CTL_BUS_SESSION  ? _("session")
                : args->bus_kind == CTL_BUS_SYSTEM ? _("system")
                                                   : args->bus_address,
                strerror(-r));
        return CTL_EXIT_NO_DAEMON;
}

/* Fetches everything; on failure says why on stderr and returns the exit
 * status, else -1. */
static int fetch(sd_bus *bus, bool refresh, CtlManager **ret_manager) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = 0;

        if (refresh)
                r = ctl_manager_refresh(bus, &error);
        if (r >= 0)
                r = ctl_manager_fetch(bus, &error, ret_manager);
        if (r >= 0)
                return -1;
        return ctl_error_report(r, &error);
}

static int show(const Args *args, sd_bus *bus, bool refresh, bool as_list) {
        _cleanup_(ctl_manager_freep) CtlManager *m = NULL;
        bool color = ctl_use_color(STDOUT_FILENO);
        int status, r;

        status = fetch(bus, refresh, &m);
        if (status >= 0)
                return status;
        if (args->json)
                r = ctl_json_print(m, stdout);
        else if (as_list)
                r = ctl_list_print(m, stdout, args->legend, color);
        else
                r = ctl_status_print(m, stdout, color);
        if (r >= 0 && fflush(stdout) != 0)
                r = -EIO;
        if (r < 0) {
                fprintf(stderr, _("Cannot write the output: %s\n"), strerror(-r));
                return CTL_EXIT_FAILED;
        }
        return CTL_EXIT_OK;
}

static int renew(const Args *args, sd_bus *bus) {
        _cleanup_(ctl_manager_freep) CtlManager *m = NULL;
        const CtlRenewOptions options = {
                .target = args->n_operands > 0 ? args->operands[0] : NULL,
                .accept_key_loss = args->accept_key_loss,
                .pin_stdin = args->pin_stdin,
                .json = args->json,
        };
        int status;

        status = fetch(bus, false, &m);
        if (status >= 0)
                return status;
        return ctl_renew(bus, m, &options);
}

static int run(const Args *args) {
        static const struct {
                const char *name;
                int max_operands;
        } commands[] = {
                { "status", 0 }, { "list", 0 }, { "refresh", 0 }, { "renew", 1 }, { "history", 0 },
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *command = args->command ? args->command : "status";
        int status;
        size_t i;

        for (i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, command) == 0)
                        break;
        if (i == ELEMENTSOF(commands)) {
                fprintf(stderr, _("%s: unknown command '%s'.\n"), program.name, command);
                return usage_error();
        }
        if (args->n_operands > commands[i].max_operands) {
                fprintf(stderr, _("%s %s: unexpected argument '%s'.\n"), program.name, command,
                        args->operands[commands[i].max_operands]);
                return usage_error();
        }
        status = connect_bus(args, &bus);
        if (status >= 0)
                return status;
        if (strcmp(command, "renew") == 0)
                return renew(args, bus);
        if (strcmp(command, "history") == 0)
                return ctl_history(bus, args->json, args->legend, ctl_use_color(STDOUT_FILENO));
        return show(args, bus, strcmp(command, "refresh") == 0, strcmp(command, "list") == 0);
}

int main(int argc, char **argv) {
        Args args = { .bus_kind = CTL_BUS_SYSTEM, .legend = true };
        int r;

        i18n_init();
        r = parse_args(argc, argv, &args);
        if (r <= 0)
                return -r;
        return run(&args);
}
