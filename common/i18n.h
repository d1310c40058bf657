/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <libintl.h>

#define _(s) gettext(s)
#define N_(s) (s)

/* Sets the locale from the environment and binds our message catalogue.
 * KEYRENEW_LOCALEDIR overrides the installed catalogue's folder, so that
 * tests and the demo can run from the build tree. */
void i18n_init(void);
