/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"
#include "i18n.h"

int main(int argc, char **argv) {
        static const CliProgram program = {
                .name = "keyrenewctl",
                .summary = N_("Shows keys and certificates and renews them through keyrenewd."),
                .notice = N_("Not built yet: the commands come with the daemon's D-Bus service."),
        };

        return cli_main_standard_only(&program, argc, argv);
}
