/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tray-warned.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic-file.h"

struct TrayWarned {
        char *path;
        GHashTable *shown; /* id -> threshold + 1 */
};

static void parse(TrayWarned *w, const char *text) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        for (char **l = lines; *l; l++) {
                char *space = strrchr(*l, ' '), *end;
                unsigned long threshold;

                if (!space || space == *l)
                        continue;
                threshold = strtoul(space + 1, &end, 10);
                if (*end || end == space + 1 || threshold > 3650)
                        continue;
                g_hash_table_insert(w->shown, g_strndup(*l, (gsize) (space - *l)),
                                    GUINT_TO_POINTER((unsigned) threshold + 1));
        }
}

int tray_warned_load(TrayWarned **ret) {
        TrayWarned *w = calloc(1, sizeof(*w));
        g_autofree char *text = NULL;

        if (!w)
                return -ENOMEM;
        w->path = g_build_filename(g_get_user_state_dir(), "keyrenew-tray", "warned", NULL);
        w->shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (g_file_get_contents(w->path, &text, NULL, NULL))
                parse(w, text);
        *ret = w;
        return 0;
}

bool tray_warned_is_new(const TrayWarned *w, const char *id, unsigned threshold) {
        unsigned last = GPOINTER_TO_UINT(g_hash_table_lookup(w->shown, id));

        return last == 0 || threshold + 1 < last;
}

static int save(const TrayWarned *w) {
        g_autofree char *dir = g_path_get_dirname(w->path);
        GString *text = g_string_new(NULL);
        GHashTableIter it;
        gpointer id, value;
        int r;

        g_hash_table_iter_init(&it, w->shown);
        while (g_hash_table_iter_next(&it, &id, &value))
                g_string_append_printf(text, "%s %u\n", (const char *) id, GPOINTER_TO_UINT(value) - 1);
        r = g_mkdir_with_parents(dir, 0700) < 0 ? negative_errno() : 0;
        if (r >= 0)
                r = atomic_file_write(w->path, text->str, text->len, 0600);
        g_string_free(text, TRUE);
        return r;
}

int tray_warned_record(TrayWarned *w, const char *id, unsigned threshold) {
        g_hash_table_insert(w->shown, g_strdup(id), GUINT_TO_POINTER(threshold + 1));
        return save(w);
}

TrayWarned *tray_warned_free(TrayWarned *w) {
        if (!w)
                return NULL;
        g_hash_table_destroy(w->shown);
        g_free(w->path);
        free(w);
        return NULL;
}
