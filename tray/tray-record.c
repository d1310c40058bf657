/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tray-record.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "atomic-file.h"

struct TrayRecord {
        char *path;
        GHashTable *values; /* id -> uint64_t */
};

static void parse(TrayRecord *r, const char *text) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        for (char **l = lines; *l; l++) {
                char *space = strrchr(*l, ' '), *end;
                uint64_t *value;

                /* A line someone broke by hand is dropped, not the file. */
                if (!space || space == *l || !g_ascii_isdigit(space[1]))
                        continue;
                errno = 0;
                value = g_new(uint64_t, 1);
                *value = g_ascii_strtoull(space + 1, &end, 10);
                if (*end || errno != 0) {
                        g_free(value);
                        continue;
                }
                g_hash_table_insert(r->values, g_strndup(*l, (gsize) (space - *l)), value);
        }
}

int tray_record_load(const char *name, TrayRecord **ret) {
        TrayRecord *r = calloc(1, sizeof(*r));
        g_autofree char *text = NULL;

        if (!r)
                return -ENOMEM;
        r->path = g_build_filename(g_get_user_state_dir(), "keyrenew-tray", name, NULL);
        r->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (g_file_get_contents(r->path, &text, NULL, NULL))
                parse(r, text);
        *ret = r;
        return 0;
}

bool tray_record_get(const TrayRecord *r, const char *id, uint64_t *ret_value) {
        const uint64_t *value = g_hash_table_lookup(r->values, id);

        if (value)
                *ret_value = *value;
        return value != NULL;
}

static int save(const TrayRecord *r) {
        g_autofree char *dir = g_path_get_dirname(r->path);
        GString *text = g_string_new(NULL);
        GHashTableIter it;
        gpointer id, value;
        int k;

        g_hash_table_iter_init(&it, r->values);
        while (g_hash_table_iter_next(&it, &id, &value))
                g_string_append_printf(text, "%s %" PRIu64 "\n", (const char *) id,
                                       *(const uint64_t *) value);
        k = g_mkdir_with_parents(dir, 0700) < 0 ? negative_errno() : 0;
        if (k >= 0)
                k = atomic_file_write(r->path, text->str, text->len, 0600);
        g_string_free(text, TRUE);
        return k;
}

int tray_record_set(TrayRecord *r, const char *id, uint64_t value) {
        uint64_t *copy = g_new(uint64_t, 1);

        *copy = value;
        g_hash_table_insert(r->values, g_strdup(id), copy);
        return save(r);
}

int tray_record_unset(TrayRecord *r, const char *id) {
        return g_hash_table_remove(r->values, id) ? save(r) : 0;
}

TrayRecord *tray_record_free(TrayRecord *r) {
        if (!r)
                return NULL;
        g_hash_table_destroy(r->values);
        g_free(r->path);
        free(r);
        return NULL;
}
