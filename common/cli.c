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

int cli_unknown_option(const CliProgram *p, const char *arg) {
        fprintf(stderr, _("%s: unknown option '%s'. Run '%s --help' to see the options.\n"), p->name, arg,
                p->name);
        return -EINVAL;
}

int cli_no_arguments(const CliProgram *p, int argc, char **argv) {
        if (optind >= argc)
                return 0;
        fprintf(stderr, _("%s: unexpected argument '%s'. Run '%s --help' to see the options.\n"), p->name,
                argv[optind], p->name);
        return -EINVAL;
}
