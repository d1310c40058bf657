/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The subcommands of keyrenew-vcard. Each gets argv from its own name on
 * (argv[0] is "create", "issue", ...) and returns the exit status:
 * 0 done, 1 failed, 2 wrong usage, 3 vanished as a fault asked (run). */

#define VCARD_EXIT_FAILURE 1
#define VCARD_EXIT_USAGE 2
#define VCARD_EXIT_VANISHED 3

int vcard_create_main(int argc, char **argv);
int vcard_issue_main(int argc, char **argv);
int vcard_show_main(int argc, char **argv);
int vcard_run_main(int argc, char **argv);
