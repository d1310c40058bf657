/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* keyrenewctl's views for people: status (everything, key by key) and
 * list (one table row per certificate), and the pieces renew and history
 * show the same way. */

#include <stdbool.h>
#include <stdio.h>

#include "ctl-bus.h"

int ctl_status_print(const CtlManager *m, FILE *f, bool color);
int ctl_list_print(const CtlManager *m, FILE *f, bool legend, bool color);

/* Colour for fd: a terminal, NO_COLOR unset or empty, TERM not "dumb". */
bool ctl_use_color(int fd);

/* The ANSI colour of a bus word ("expired", "done", ...), NULL for none or
 * without colour. */
const char *ctl_color_of(const char *bus_word, bool color);

/* µs since the epoch as local time; unknown and 0 (never) in words. */
void ctl_format_time(char *buf, size_t size, const CtlNumber *usec, bool date_only);

/* The CN of an RFC 2253 name ("CN=Alice,O=Example" gives "Alice"), with
 * the backslash escapes undone; the whole name when it has no CN. */
void ctl_subject_name(char *buf, size_t size, const char *dn);

/* "[ 40%] the portal issued the new certificate": a Token's Progress and
 * RenewalStep in the user's words. */
void ctl_format_step(char *buf, size_t size, const CtlNumber *progress, const char *step);

/* "       Label: value", the label right-aligned as systemctl status does;
 * an empty label continues the field above. */
void ctl_print_field(FILE *f, const char *label, const char *value, const char *color);
