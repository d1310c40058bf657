/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"
#include "i18n.h"

int main(int argc, char **argv) {
        static const CliProgram program = {
                .name = "keyrenew-tray",
                .summary = N_("Tells you on the desktop when a key's certificate can be renewed."),
                .notice = N_("Not built yet: notifications and the PIN prompt come in a later version."),
        };

        return cli_main_standard_only(&program, argc, argv);
}
