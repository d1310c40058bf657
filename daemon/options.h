/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewd's command line. */

#include "cli.h"
#include "log.h"

typedef struct Options {
        const char *config_path; /* --config, or NULL: the default file, which may be missing */
        int log_level;           /* --log-level, or -1: the configuration's LogLevel */
        LogTarget log_target;    /* --log-target */
        const char *bus;         /* --bus: "system", "session" or a D-Bus address */
        const char *state_dir;   /* --state-dir, or NULL: $STATE_DIRECTORY, if set */
} Options;

void options_print_help(void);

/* Parses argv into *ret. --help and --version print and set CLI_EXIT.
 * Returns -EINVAL after telling the user on stderr what was wrong. The
 * strings in *ret point into argv. */
int options_parse(int argc, char **argv, Options *ret, CliAction *ret_action);
