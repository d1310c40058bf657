/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl --json: the manager, its tokens and their certificates as one
 * JSON document, keys named as the bus names the properties; and any a{sv}
 * keyrenewd answers (a renewal's result, the history) as a JSON object. */

#include <jansson.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "ctl-bus.h"

int ctl_json_print(const CtlManager *m, FILE *f);

/* Reads the a{sv} at m's read position into a JSON object: strings and
 * object paths as strings, booleans, integers as numbers; a value of
 * another type is left out. */
int ctl_json_read_dict(sd_bus_message *m, json_t **ret);

/* Prints v indented, keys in their order, and a newline. */
int ctl_json_dump(json_t *v, FILE *f);
