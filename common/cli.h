/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What every keyrenew program's command line shares: --version, and how it
 * tells the user about options and arguments it does not take. */

typedef struct CliProgram {
        const char *name;    /* argv[0] as documented: "keyrenewd" */
        const char *summary; /* one line: what the program is (translatable) */
} CliProgram;

typedef enum CliAction {
        CLI_RUN,  /* no standard option asked to stop: go on */
        CLI_EXIT, /* --help or --version was printed: exit 0 */
} CliAction;

void cli_print_version(const CliProgram *p);

/* Tells the user (on stderr) that arg is an option p does not know, and
 * where to look. Returns -EINVAL. */
int cli_unknown_option(const CliProgram *p, const char *arg);

/* After getopt_long(): -EINVAL, having told the user, when argv holds an
 * argument past the options (p takes none); 0 otherwise. */
int cli_no_arguments(const CliProgram *p, int argc, char **argv);
