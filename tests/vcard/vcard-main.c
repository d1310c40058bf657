/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-vcard: a virtual PIV smart card for keyrenew's tests. */

#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "vcard-commands.h"

static const struct {
        const char *name;
        int (*main)(int argc, char **argv);
} commands[] = {
        { "create", vcard_create_main },
        { "issue", vcard_issue_main },
        { "show", vcard_show_main },
        { "run", vcard_run_main },
};

static void usage(FILE *f) {
        fputs("Usage: keyrenew-vcard COMMAND STATE [OPTIONS]\n"
              "A virtual PIV card (NIST SP 800-73-4, YubiKey extensions) for vsmartcard's vpcd.\n\n"
              "  create STATE   write a new card file\n"
              "  issue STATE    generate a key in a slot and store a certificate for it\n"
              "  show STATE     print the card's state (--json for tests)\n"
              "  run STATE      connect to vpcd and be the card (--port P)\n\n"
              "keyrenew-vcard COMMAND --help shows a command's options; tests/vcard/README.md has them "
              "all.\n",
              f);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return VCARD_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].main(argc - 1, argv + 1);
        fprintf(stderr, "keyrenew-vcard: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return VCARD_EXIT_USAGE;
}
