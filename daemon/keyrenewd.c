/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"
#include "i18n.h"

int main(int argc, char **argv) {
        static const CliProgram program = {
                .name = "keyrenewd",
                .summary = N_("Keeps the certificates on USB smart-card keys renewed (system daemon)."),
                .notice = N_("Not built yet: watching readers, the D-Bus service and renewals come in later "
                             "versions."),
        };

        return cli_main_standard_only(&program, argc, argv);
}
