/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A small systemd-style table: a header line (underlined on a terminal),
 * columns as wide as their widest cell in terminal cells (Chinese takes
 * two), two spaces between columns, no trailing blanks. */

#include <stdbool.h>
#include <stdio.h>

#include "macro.h"

typedef struct Table Table;

/* n_columns headers, already translated. */
Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free)

/* Adds the next cell, row after row; color is an ANSI sequence or NULL,
 * and takes no width. */
int table_add_cell(Table *t, const char *text, const char *color);

size_t table_rows(const Table *t);

/* Terminal cells a UTF-8 string takes in the current locale. */
size_t text_width(const char *s);

/* Prints the header (unless header is false) and the rows; with color,
 * the header is underlined and cells get their colours. Columns are as
 * wide with or without the header, so that scripts see the same layout. */
int table_print(const Table *t, FILE *f, bool header, bool color);
