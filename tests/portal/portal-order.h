/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* An order as the portal protocol's status answer writes it. (jansson.h
 * brings json_decrefp() for _cleanup_.) */

#include <jansson.h>

#include "portal-db.h"

/* The order object of the renewal status answer. base_url (https://host:port,
 * no trailing slash) makes the page and cmp URLs; without it they are left
 * out, as the admin command has no URL of its own. */
int order_to_json(sqlite3 *db, const Order *o, const char *base_url, json_t **ret);

/* Counts the characters of a UTF-8 string; -EILSEQ when it is not valid
 * UTF-8 or holds a control character other than a line break. */
int utf8_text_length(const char *s, size_t *ret);
