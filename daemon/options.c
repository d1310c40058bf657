/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config-file.h"
#include "i18n.h"

enum {
        ARG_LOG_LEVEL = 0x100,
        ARG_LOG_TARGET,
        ARG_BUS,
        ARG_STATE_DIR,
};

static const CliProgram program = {
        .name = "keyrenewd",
        .summary = N_("Keeps the certificates on USB smart-card keys renewed (system daemon)."),
};

void options_print_help(void) {
        printf(_("Usage: %s [OPTION...]\n"), program.name);
        printf("%s\n\n", _(program.summary));
        printf(_("  -c, --config FILE        read FILE instead of %s\n"), config_default_path());
        printf("%s\n", _("      --log-level LEVEL    log down to LEVEL: emerg, alert, crit, err, warning,\n"
                         "                           notice, info or debug (overrides LogLevel=)"));
        printf("%s\n", _("      --log-target TARGET  auto (the journal when started by systemd, else\n"
                         "                           stderr), stderr or journal"));
        printf("%s\n", _("      --bus BUS            where to offer org.keyrenew.KeyRenew1: system (the\n"
                         "                           default), session, or a D-Bus address such as\n"
                         "                           unix:path=/run/test/bus"));
        printf("%s\n", _("      --state-dir DIR      remember the keys seen in DIR (default: systemd's\n"
                         "                           $STATE_DIRECTORY; without either, nowhere)"));
        printf("%s\n", _("  -h, --help               show this help and exit"));
        printf("%s\n", _("  -V, --version            show the version and exit"));
}

/* "system", "session" or something that looks like a D-Bus address
 * ("transport:key=value"); sd-bus checks the rest when connecting. */
static bool bus_is_valid(const char *bus) {
        const char *colon = strchr(bus, ':');

        return strcmp(bus, "system") == 0 || strcmp(bus, "session") == 0 ||
               (colon && colon > bus && strchr(colon, '='));
}

static int bad_value(const char *option, const char *value, const char *allowed) {
        fprintf(stderr, _("%s: bad value '%s' for %s: %s\n"), program.name, value, option, allowed);
        return -EINVAL;
}

int options_parse(int argc, char **argv, Options *ret, CliAction *ret_action) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "bus", required_argument, NULL, ARG_BUS },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        Options o = { .log_level = -1, .log_target = LOG_TARGET_AUTO, .bus = "system" };
        int c;

        optind = 0; /* a full reset, so tests may parse more than once */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":c:hV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        o.config_path = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        if (log_level_from_string(optarg, &o.log_level) < 0)
                                return bad_value(
                                        "--log-level", optarg,
                                        _("use emerg, alert, crit, err, warning, notice, info or debug"));
                        break;
                case ARG_LOG_TARGET:
                        if (log_target_from_string(optarg, &o.log_target) < 0)
                                return bad_value("--log-target", optarg, _("use auto, stderr or journal"));
                        break;
                case ARG_BUS:
                        if (!bus_is_valid(optarg))
                                return bad_value("--bus", optarg,
                                                 _("use system, session or a D-Bus address such as "
                                                   "unix:path=/run/test/bus"));
                        o.bus = optarg;
                        break;
                case ARG_STATE_DIR:
                        if (!optarg[0])
                                return bad_value("--state-dir", optarg, _("give a folder"));
                        o.state_dir = optarg;
                        break;
                case 'h':
                        options_print_help();
                        *ret_action = CLI_EXIT;
                        return 0;
                case 'V':
                        cli_print_version(&program);
                        *ret_action = CLI_EXIT;
                        return 0;
                case ':':
                        fprintf(stderr,
                                _("%s: option '%s' needs a value. Run '%s --help' to see the options.\n"),
                                program.name, argv[optind - 1], program.name);
                        return -EINVAL;
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
