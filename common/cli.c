/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "config.h"
#include "i18n.h"

void cli_print_version(const CliProgram *p) {
        printf("%s %s\n", p->name, PACKAGE_VERSION);
}

void cli_print_help(const CliProgram *p) {
        printf(_("Usage: %s [OPTION...]\n"), p->name);
        printf("%s\n\n", _(p->summary));
        printf("%s\n", _("  -h, --help       show this help and exit"));
        printf("%s\n", _("  -V, --version    show the version and exit"));
        if (p->notice)
                printf("\n%s\n", _(p->notice));
}

int cli_parse_standard(const CliProgram *p, int argc, char **argv, CliAction *ret_action) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        CliAction action = CLI_RUN;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "hV", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        cli_print_help(p);
                        action = CLI_EXIT;
                        break;
                case 'V':
                        cli_print_version(p);
                        action = CLI_EXIT;
                        break;
                default:
                        fprintf(stderr, _("%s: unknown option '%s'. Run '%s --help' to see the options.\n"),
                                p->name, argv[optind - 1], p->name);
                        return -EINVAL;
                }
                if (action == CLI_EXIT)
                        break;
        }
        if (action == CLI_RUN && optind < argc) {
                fprintf(stderr, _("%s: unexpected argument '%s'. Run '%s --help' to see the options.\n"),
                        p->name, argv[optind], p->name);
                return -EINVAL;
        }
        *ret_action = action;
        return 0;
}
