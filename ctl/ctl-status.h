/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl's views for people: status (everything, key by key) and
 * list (one table row per certificate). */

#include <stdbool.h>
#include <stdio.h>

#include "ctl-bus.h"

int ctl_status_print(const CtlManager *m, FILE *f, bool color);
int ctl_list_print(const CtlManager *m, FILE *f, bool legend, bool color);
