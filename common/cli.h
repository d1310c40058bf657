/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The options every keyrenew program shares: --help and --version. */

typedef struct CliProgram {
        const char *name;    /* argv[0] as documented: "keyrenewd" */
        const char *summary; /* one line: what the program is (translatable) */
        const char *notice;  /* a paragraph after the options, or NULL */
} CliProgram;

typedef enum CliAction {
        CLI_RUN,  /* no standard option asked to stop: go on */
        CLI_EXIT, /* --help or --version was printed: exit 0 */
} CliAction;

void cli_print_version(const CliProgram *p);
void cli_print_help(const CliProgram *p);

/* Parses argv for --help/-h and --version/-V. Returns CLI_RUN or CLI_EXIT,
 * or -EINVAL after telling the user (on stderr) what was wrong with argv. */
int cli_parse_standard(const CliProgram *p, int argc, char **argv, CliAction *ret_action);
