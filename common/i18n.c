/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "i18n.h"

#include <locale.h>
#include <stdlib.h>

#include "config.h"

void i18n_init(void) {
        const char *dir = getenv("KEYRENEW_LOCALEDIR");

        (void) setlocale(LC_ALL, "");
        (void) bindtextdomain(GETTEXT_PACKAGE, dir && *dir ? dir : LOCALEDIR);
        (void) bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        (void) textdomain(GETTEXT_PACKAGE);
}
