/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-history.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl-error.h"
#include "ctl-json.h"
#include "ctl-status.h"
#include "ctl-table.h"
#include "i18n.h"

#define ROOT_PATH "/org/keyrenew/KeyRenew1"
#define MANAGER_IFACE "org.keyrenew.KeyRenew1.Manager"

static int read_history(sd_bus_message *reply, json_t **ret) {
        _cleanup_(json_decrefp) json_t *list = json_array();
        int r;

        if (!list)
                return -ENOMEM;
        r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_at_end(reply, false)) == 0) {
                json_t *entry;

                r = ctl_json_read_dict(reply, &entry);
                if (r < 0)
                        return r;
                if (json_array_append_new(list, entry) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        return 0;
}

static const char *text_of(json_t *entry, const char *key) {
        const char *s = json_string_value(json_object_get(entry, key));

        return s && *s ? s : "-";
}

static const char *outcome_text(const char *outcome) {
        static const struct {
                const char *bus;
                const char *text;
        } words[] = {
                { "done", N_("renewed") },
                { "failed", N_("failed") },
                { "cancelled", N_("cancelled") },
        };

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcmp(words[i].bus, outcome) == 0)
                        return _(words[i].text);
        return outcome;
}

/* A time of the history; 0 (no new certificate) as "-". */
static void format_entry_time(char *buf, size_t size, json_t *entry, const char *key, bool date_only) {
        json_t *v = json_object_get(entry, key);

        if (json_is_integer(v) && json_integer_value(v) > 0)
                ctl_format_time(buf, size, &(CtlNumber){ true, json_integer_value(v) }, date_only);
        else
                snprintf(buf, size, "-");
}

static int add_row(Table *t, json_t *entry, bool color) {
        const char *outcome = text_of(entry, "Outcome");
        char when[64], until[32];
        int r;

        format_entry_time(when, sizeof(when), entry, "Time", false);
        format_entry_time(until, sizeof(until), entry, "NotAfter", true);
        r = table_add_cell(t, when, NULL);
        if (r >= 0)
                r = table_add_cell(t, text_of(entry, "Token"), NULL);
        if (r >= 0)
                r = table_add_cell(t, text_of(entry, "Slot"), NULL);
        if (r >= 0)
                r = table_add_cell(t, text_of(entry, "Order"), NULL);
        if (r >= 0)
                r = table_add_cell(t, outcome_text(outcome), ctl_color_of(outcome, color));
        if (r >= 0)
                r = table_add_cell(t, text_of(entry, "NewSerial"), NULL);
        if (r >= 0)
                r = table_add_cell(t, until, NULL);
        if (r >= 0)
                r = table_add_cell(
                        t, strcmp(text_of(entry, "Reason"), "-") == 0 ? "" : text_of(entry, "Reason"), NULL);
        return r;
}

static int print_table(json_t *history, bool legend, bool color) {
        const char *headers[] = {
                _("TIME"),    _("KEY"),        _("SLOT"),        _("ORDER"),
                _("OUTCOME"), _("NEW SERIAL"), _("VALID UNTIL"), _("REASON"),
        };
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        json_t *entry;
        int r = 0;

        if (!t)
                return -ENOMEM;
        if (json_array_size(history) == 0) {
                if (legend)
                        printf("%s\n", _("No renewal has ended yet."));
                return ferror(stdout) ? -EIO : 0;
        }
        json_array_foreach(history, i, entry) {
                r = add_row(t, entry, color);
                if (r < 0)
                        return r;
        }
        r = table_print(t, stdout, legend, color);
        if (r >= 0 && legend)
                printf(ngettext("\n%zu renewal listed.\n", "\n%zu renewals listed.\n", table_rows(t)),
                       table_rows(t));
        return r < 0 ? r : ferror(stdout) ? -EIO : 0;
}

int ctl_history(sd_bus *bus, bool json, bool legend, bool color) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_decrefp) json_t *history = NULL;
        int r;

        r = sd_bus_call_method(bus, KEYRENEW_BUS_NAME, ROOT_PATH, MANAGER_IFACE, "GetHistory", &error,
                               &reply, NULL);
        if (r < 0)
                return ctl_error_report(r, &error);
        r = read_history(reply, &history);
        if (r < 0) {
                fprintf(stderr, _("Cannot read keyrenewd's answer: %s\n"), strerror(-r));
                return CTL_EXIT_FAILED;
        }
        r = json ? ctl_json_dump(history, stdout) : print_table(history, legend, color);
        if (r >= 0 && fflush(stdout) != 0)
                r = -EIO;
        if (r < 0) {
                fprintf(stderr, _("Cannot write the output: %s\n"), strerror(-r));
                return CTL_EXIT_FAILED;
        }
        return CTL_EXIT_OK;
}
