/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define ANSI_UNDERLINE "\x1b[0;4m"
#define ANSI_NORMAL "\x1b[0m"

typedef struct Cell {
        char *text;
        const char *color;
} Cell;

struct Table {
        size_t n_columns;
        const char *const *headers;
        Cell *cells;
        size_t n_cells;
};

Table *table_new(size_t n_columns, const char *const *headers) {
        Table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->headers = headers;
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add_cell(Table *t, const char *text, const char *color) {
        Cell *grown;
        char *copy;

        copy = strdup(text ? text : "");
        if (!copy)
                return -ENOMEM;
        grown = realloc(t->cells, (t->n_cells + 1) * sizeof(Cell));
        if (!grown) {
                free(copy);
                return -ENOMEM;
        }
        grown[t->n_cells++] = (Cell){ copy, color };
        t->cells = grown;
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns;
}

/* Terminal cells of a UTF-8 string in the current locale; bytes that do
 * not decode count one each, so a bad string still lines up roughly. */
size_t text_width(const char *s) {
        mbstate_t state = {};
        size_t width = 0;

        while (*s) {
                wchar_t wc;
                size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &state);
                int w;

                if (n == (size_t) -1 || n == (size_t) -2 || n == 0) {
                        memset(&state, 0, sizeof(state));
                        width++;
                        s++;
                        continue;
                }
                w = wcwidth(wc);
                width += w > 0 ? (size_t) w : 0;
                s += n;
        }
        return width;
}

static void print_cell(FILE *f, const char *text, const char *color, size_t pad, bool last) {
        if (color)
                fputs(color, f);
        fputs(text, f);
        if (color)
                fputs(ANSI_NORMAL, f);
        if (!last)
                fprintf(f, "%*s", (int) (pad + 2), "");
}

int table_print(const Table *t, FILE *f, bool header, bool color) {
        _cleanup_free_ size_t *widths = calloc(t->n_columns, sizeof(size_t));
        size_t rows = table_rows(t);

        if (!widths)
                return -ENOMEM;
        for (size_t c = 0; c < t->n_columns; c++) {
                widths[c] = text_width(t->headers[c]);
                for (size_t r = 0; r < rows; r++) {
                        size_t w = text_width(t->cells[r * t->n_columns + c].text);

                        if (w > widths[c])
                                widths[c] = w;
                }
        }
        if (header) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        bool last = c + 1 == t->n_columns;

                        print_cell(f, t->headers[c], color ? ANSI_UNDERLINE : NULL,
                                   widths[c] - text_width(t->headers[c]), last);
                }
                fputc('\n', f);
        }
        for (size_t r = 0; r < rows; r++) {
                const Cell *row = &t->cells[r * t->n_columns];
                size_t end = t->n_columns;

                /* Empty cells at the end of a row would only print blanks. */
                while (end > 1 && !*row[end - 1].text)
                        end--;
                for (size_t c = 0; c < end; c++)
                        print_cell(f, row[c].text, color ? row[c].color : NULL,
                                   widths[c] - text_width(row[c].text), c + 1 == end);
                fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}
