/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl --json: the manager, its tokens and their certificates as one
 * JSON document, keys named as the bus names the properties. */

#include <stdio.h>

#include "ctl-bus.h"

int ctl_json_print(const CtlManager *m, FILE *f);
