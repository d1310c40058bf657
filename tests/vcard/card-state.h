/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A card's persistent data in a file (format: tests/vcard/README.md), so
 * that the card survives being unplugged and a second file is a second
 * card. Private keys are in it in the clear: it is a test card. */

#include "piv-card.h"

/* Reads a card. -ENOENT, -EBADMSG for a malformed file (*ret_line, when
 * not NULL, names the line), -ENOMEM, or another -errno from reading. */
int card_state_load(const char *path, PivCard **ret, unsigned *ret_line);

/* Writes the card atomically (temporary file, fsync, rename, fsync of the
 * directory) and clears c->dirty. */
int card_state_save(const char *path, PivCard *c);
