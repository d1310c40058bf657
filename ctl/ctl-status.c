/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl-table.h"
#include "i18n.h"

#define ANSI_RED "\x1b[0;1;31m"
#define ANSI_YELLOW "\x1b[0;1;33m"
#define ANSI_GREEN "\x1b[0;1;32m"
#define ANSI_BOLD "\x1b[0;1;39m"
#define ANSI_NORMAL "\x1b[0m"

/* Labels of status's "Label: value" lines are right-aligned to this many
 * terminal cells, as systemctl status does. */
#define LABEL_WIDTH 16

typedef struct Word {
        const char *bus;
        const char *text;
} Word;

/* The bus's words for states, in the user's language; a word this version
 * does not know (a newer daemon) is shown as the daemon says it. */
static const char *word(const Word *words, const char *bus) {
        if (!bus)
                return _("unknown");
        for (const Word *w = words; w->bus; w++)
                if (strcmp(w->bus, bus) == 0)
                        return _(w->text);
        return bus;
}

static const Word pcsc_states[] = {
        { "connected", N_("connected") },
        { "no-readers", N_("no readers") },
        { "no-service", N_("pcscd cannot be reached (keyrenewd keeps trying)") },
        {},
};

static const Word portal_states[] = {
        { "not-configured", N_("not configured: renewals are not looked for") },
        { "unknown", N_("not asked yet") },
        { "reachable", N_("reachable") },
        { "failing", N_("failing") },
        {},
};

static const Word token_states[] = {
        { "idle", N_("idle: nothing to do") },
        { "checking", N_("being read") },
        { "failed", N_("failed: the last read did not work") },
        { "locked", N_("locked: the PIN is blocked") },
        { "expired", N_("a certificate has expired") },
        { "expiring", N_("a certificate expires soon") },
        { "renewal-available", N_("a renewal is available") },
        { "awaiting-pin", N_("waiting for the PIN") },
        { "renewing", N_("renewing: do not unplug the key") },
        { "renewed", N_("renewed") },
        {},
};

static const Word renewal_steps[] = {
        { "pin", N_("waiting for the PIN") },
        { "started", N_("the renewal started") },
        { "key-generated", N_("the new key was made on the card") },
        { "requesting", N_("asking the portal for the new certificate") },
        { "issued", N_("the portal issued the new certificate") },
        { "written", N_("the new certificate is on the key") },
        { "verified", N_("the new certificate and key passed a test signature") },
        { "confirmed", N_("the portal knows the new certificate is installed") },
        { "done", N_("done") },
        { "failed", N_("failed") },
        { "cancelled", N_("cancelled") },
        { "interrupted", N_("interrupted: it resumes when the key is plugged in again") },
        {},
};

static const Word management_keys[] = {
        { "pin-protected", N_("protected by the PIN") },
        { "default", N_("the well-known default: anyone can change this key; set a key of your own") },
        { "unknown", N_("one keyrenewd does not know: it cannot renew on this key") },
        {},
};

static const Word cert_statuses[] = {
        { "valid", N_("valid") },
        { "expiring", N_("expiring") },
        { "expired", N_("expired") },
        {},
};

static const Word renewal_states[] = {
        { "none", N_("none") },
        { "awaiting-payment", N_("awaiting payment") },
        { "under-review", N_("under review") },
        { "approved", N_("approved") },
        { "rejected", N_("rejected") },
        { "issued", N_("issued") },
        { "installed", N_("installed") },
        {},
};

static const Word usages[] = {
        { "signing", N_("signing") },
        { "encryption", N_("encryption") },
        {},
};

const char *ctl_color_of(const char *bus_word, bool color) {
        static const Word colors[] = {
                { "expired", ANSI_RED },
                { "failed", ANSI_RED },
                { "default", ANSI_RED },
                { "locked", ANSI_RED },
                { "rejected", ANSI_RED },
                { "expiring", ANSI_YELLOW },
                { "awaiting-payment", ANSI_YELLOW },
                { "approved", ANSI_YELLOW },
                { "issued", ANSI_YELLOW },
                { "renewal-available", ANSI_YELLOW },
                { "cancelled", ANSI_YELLOW },
                { "installed", ANSI_GREEN },
                { "done", ANSI_GREEN },
                { "valid", ANSI_GREEN },
                { "idle", ANSI_GREEN },
                { "failing", ANSI_RED },
                { "reachable", ANSI_GREEN },
                {},
        };

        if (!color || !bus_word)
                return NULL;
        for (const Word *w = colors; w->bus; w++)
                if (strcmp(w->bus, bus_word) == 0)
                        return w->text;
        return NULL;
}

bool ctl_use_color(int fd) {
        const char *no_color = getenv("NO_COLOR");
        const char *term = getenv("TERM");

        if (no_color && *no_color)
                return false;
        if (term && strcmp(term, "dumb") == 0)
                return false;
        return isatty(fd);
}

void ctl_format_time(char *buf, size_t size, const CtlNumber *usec, bool date_only) {
        time_t t;
        struct tm tm;

        if (!usec->known) {
                snprintf(buf, size, "%s", _("unknown"));
                return;
        }
        if (usec->value <= 0) {
                snprintf(buf, size, "%s", _("never"));
                return;
        }
        t = (time_t) (usec->value / 1000000);
        if (!localtime_r(&t, &tm) || (date_only ? strftime(buf, size, "%Y-%m-%d", &tm)
                                                : strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm)) == 0)
                snprintf(buf, size, "@%" PRId64, usec->value / 1000000);
}

/* "9 days left" in status; "9 days" in list's LEFT column. */
static void format_days_left(char *buf, size_t size, const CtlNumber *days, bool in_column) {
        if (!days->known)
                snprintf(buf, size, "%s", _("unknown"));
        else if (days->value < 0)
                snprintf(buf, size, "%s", _("expired"));
        else if (days->value == 0)
                snprintf(buf, size, "%s", _("last day"));
        else if (in_column)
                snprintf(buf, size, ngettext("%d day", "%d days", (unsigned long) days->value),
                         (int) days->value);
        else
                snprintf(buf, size, ngettext("%d day left", "%d days left", (unsigned long) days->value),
                         (int) days->value);
}

/* "signing, encryption", translated. */
static void format_usage(char *buf, size_t size, char **usage) {
        size_t n = 0;

        buf[0] = '\0';
        if (!usage) {
                snprintf(buf, size, "%s", _("unknown"));
                return;
        }
        for (char **u = usage; *u && n < size; u++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", u == usage ? "" : ", ", word(usages, *u));
}

void ctl_subject_name(char *buf, size_t size, const char *dn) {
        const char *p;
        size_t n = 0;

        if (!dn) {
                snprintf(buf, size, "%s", _("unknown"));
                return;
        }
        for (p = dn; *p; p++) {
                if (strncmp(p, "CN=", 3) == 0 &&
                    (p == dn || (p[-1] == ',' && (p < dn + 2 || p[-2] != '\\'))))
                        break;
                if (*p == '\\' && p[1])
                        p++;
        }
        if (!*p) {
                snprintf(buf, size, "%s", dn);
                return;
        }
        for (p += 3; *p && *p != ',' && n + 1 < size; p++) {
                if (*p == '\\' && p[1])
                        p++;
                buf[n++] = *p;
        }
        buf[n] = '\0';
}

void ctl_print_field(FILE *f, const char *label, const char *value, const char *color) {
        size_t w = text_width(label);

        if (!*label) {
                /* A further line of the field above: no label, no colon. */
                fprintf(f, "%*s%s\n", LABEL_WIDTH + 2, "", value);
                return;
        }
        fprintf(f, "%*s%s: %s%s%s\n", (int) (w < LABEL_WIDTH ? LABEL_WIDTH - w : 0), "", label,
                color ? color : "", value, color ? ANSI_NORMAL : "");
}

static bool is_set(const char *s) {
        return s && *s;
}

void ctl_format_step(char *buf, size_t size, const CtlNumber *progress, const char *step) {
        if (progress->known)
                snprintf(buf, size, "[%3u%%] %s", (unsigned) progress->value, word(renewal_steps, step));
        else
                snprintf(buf, size, "[    ] %s", word(renewal_steps, step));
}

/* keyrenewd shows the step of the last renewal too; only one under way
 * is news. */
static bool renewal_under_way(const CtlToken *t) {
        return is_set(t->renewal_step) && t->state &&
               (strcmp(t->state, "awaiting-pin") == 0 || strcmp(t->state, "renewing") == 0);
}

static void print_cert(FILE *f, const CtlCert *c, bool color) {
        char name[256], when[64], left[64], usage[128], line[512];

        ctl_subject_name(name, sizeof(name), c->subject);
        snprintf(line, sizeof(line), "%s  %s", c->slot ? c->slot : "?", name);
        ctl_print_field(f, _("Certificate"), line, color ? ANSI_BOLD : NULL);
        ctl_format_time(when, sizeof(when), &c->not_after, false);
        format_days_left(left, sizeof(left), &c->days_left, false);
        snprintf(line, sizeof(line), "%s (%s)", when, left);
        ctl_print_field(f, _("Expires"), line, ctl_color_of(c->status, color));
        ctl_print_field(f, _("Status"), word(cert_statuses, c->status), ctl_color_of(c->status, color));
        format_usage(usage, sizeof(usage), c->usage);
        ctl_print_field(f, _("Usage"), usage, NULL);
        ctl_print_field(f, _("Renewal"), word(renewal_states, c->renewal_state),
                        ctl_color_of(c->renewal_state, color));
        if (is_set(c->renewal_order)) {
                if (c->renewal_rekey.known && c->renewal_validity_days.known)
                        snprintf(line, sizeof(line),
                                 c->renewal_rekey.value ? _("%s (a new key, valid %d days)")
                                                        : _("%s (the same key, valid %d days)"),
                                 c->renewal_order, (int) c->renewal_validity_days.value);
                else
                        snprintf(line, sizeof(line), "%s", c->renewal_order);
                ctl_print_field(f, _("Order"), line, NULL);
        }
        if (is_set(c->portal_url))
                ctl_print_field(f, _("Portal page"), c->portal_url, NULL);
        if (is_set(c->reject_reason))
                ctl_print_field(f, _("Reject reason"), c->reject_reason, ctl_color_of("rejected", color));
}

static void print_token(FILE *f, const CtlToken *t, bool color) {
        char line[512], when[64];

        fprintf(f, "\n%s%s %s%s", color ? ANSI_BOLD : "", _("Key"),
                is_set(t->serial) ? t->serial : _("(no serial)"), color ? ANSI_NORMAL : "");
        if (is_set(t->label))
                fprintf(f, " \"%s\"", t->label);
        fputc('\n', f);

        ctl_format_time(when, sizeof(when), &t->last_seen, false);
        if (!t->present.known)
                snprintf(line, sizeof(line), "%s", _("unknown"));
        else if (t->present.value)
                snprintf(line, sizeof(line), _("yes, in %s"), t->reader ? t->reader : _("unknown"));
        else
                snprintf(line, sizeof(line), _("no, last seen %s in %s"), when,
                         t->reader ? t->reader : _("unknown"));
        ctl_print_field(f, _("Plugged in"), line, NULL);
        ctl_print_field(f, _("State"), word(token_states, t->state), ctl_color_of(t->state, color));
        if (renewal_under_way(t)) {
                ctl_format_step(line, sizeof(line), &t->progress, t->renewal_step);
                ctl_print_field(f, _("Renewal step"), line, NULL);
        }
        if (is_set(t->management_key))
                ctl_print_field(f, _("Management key"), word(management_keys, t->management_key),
                                ctl_color_of(t->management_key, color));
        if (!t->pin_retries_left.known || t->pin_retries_left.value < 0)
                snprintf(line, sizeof(line), "%s", _("unknown"));
        else
                snprintf(line, sizeof(line), "%d", (int) t->pin_retries_left.value);
        ctl_print_field(f, _("PIN tries left"), line,
                        t->pin_retries_left.known && t->pin_retries_left.value == 0
                                ? ctl_color_of("locked", color)
                                : NULL);
        if (is_set(t->last_error))
                ctl_print_field(f, _("Last error"), t->last_error, ctl_color_of("failed", color));
        if (t->n_certs == 0)
                ctl_print_field(f, _("Certificate"), _("none"), NULL);
        for (size_t i = 0; i < t->n_certs; i++)
                print_cert(f, t->certs[i], color);
}

int ctl_status_print(const CtlManager *m, FILE *f, bool color) {
        char when[64];

        ctl_print_field(f, "keyrenewd", m->version ? m->version : _("unknown"), NULL);
        ctl_print_field(f, _("PC/SC"), word(pcsc_states, m->pcsc_state), NULL);
        if (!m->readers)
                ctl_print_field(f, _("Readers"), _("unknown"), NULL);
        else if (!m->readers[0])
                ctl_print_field(f, _("Readers"), _("none"), NULL);
        for (char **r = m->readers; r && *r; r++)
                ctl_print_field(f, r == m->readers ? _("Readers") : "", *r, NULL);
        /* PortalState says most; an older daemon has only PortalReachable. */
        if (m->portal_state || !m->portal_reachable.known)
                ctl_print_field(f, _("Portal"), word(portal_states, m->portal_state),
                                ctl_color_of(m->portal_state, color));
        else
                ctl_print_field(f, _("Portal"),
                                m->portal_reachable.value ? _("reachable") : _("not reachable"), NULL);
        if (is_set(m->portal_error))
                ctl_print_field(f, _("Portal error"), m->portal_error, ctl_color_of("failed", color));
        /* Without a portal there is nothing to have checked. */
        if (!m->portal_state || strcmp(m->portal_state, "not-configured") != 0) {
                ctl_format_time(when, sizeof(when), &m->last_portal_check, false);
                ctl_print_field(f, _("Portal checked"), when, NULL);
        }
        if (m->next_portal_check.known && m->next_portal_check.value > 0) {
                ctl_format_time(when, sizeof(when), &m->next_portal_check, false);
                ctl_print_field(f, _("Next check"), when, NULL);
        }

        if (m->n_tokens == 0)
                fprintf(f, "\n%s\n", _("No keys known yet: plug one in."));
        for (size_t i = 0; i < m->n_tokens; i++)
                print_token(f, m->tokens[i], color);
        return ferror(f) ? -EIO : 0;
}

static int add_cert_row(Table *t, const CtlToken *tok, const CtlCert *c, bool color) {
        char name[256], when[32], left[64], usage[128];
        int r;

        ctl_subject_name(name, sizeof(name), c->subject);
        ctl_format_time(when, sizeof(when), &c->not_after, true);
        format_days_left(left, sizeof(left), &c->days_left, true);
        format_usage(usage, sizeof(usage), c->usage);

        r = table_add_cell(t, is_set(tok->serial) ? tok->serial : "-", NULL);
        if (r >= 0)
                r = table_add_cell(t, c->slot ? c->slot : "?", NULL);
        if (r >= 0)
                r = table_add_cell(t, name, NULL);
        if (r >= 0)
                r = table_add_cell(t, when, NULL);
        if (r >= 0)
                r = table_add_cell(t, left, ctl_color_of(c->status, color));
        if (r >= 0)
                r = table_add_cell(t, usage, NULL);
        if (r >= 0)
                r = table_add_cell(t, tok->present.known && tok->present.value ? _("yes") : _("no"), NULL);
        if (r >= 0)
                r = table_add_cell(t, word(renewal_states, c->renewal_state),
                                   ctl_color_of(c->renewal_state, color));
        return r;
}

/* What list's rows cannot show: a renewal under way, a card anyone can
 * change. */
static void print_token_notes(FILE *f, const CtlToken *t) {
        const char *serial = is_set(t->serial) ? t->serial : "-";
        char step[256];

        if (renewal_under_way(t)) {
                ctl_format_step(step, sizeof(step), &t->progress, t->renewal_step);
                fprintf(f, _("Key %s is being renewed: %s\n"), serial, step);
        }
        if (t->management_key && strcmp(t->management_key, "default") == 0)
                fprintf(f,
                        _("Key %s has the well-known default management key: anyone can change it; set a "
                          "key of your own.\n"),
                        serial);
}

int ctl_list_print(const CtlManager *m, FILE *f, bool legend, bool color) {
        const char *headers[] = {
                _("KEY"),  _("SLOT"),  _("SUBJECT"), _("EXPIRES"),
                _("LEFT"), _("USAGE"), _("PLUGGED"), _("RENEWAL"),
        };
        _cleanup_(table_freep) Table *t = table_new(ELEMENTSOF(headers), headers);
        int r = 0;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_tokens && r >= 0; i++)
                for (size_t j = 0; j < m->tokens[i]->n_certs && r >= 0; j++)
                        r = add_cert_row(t, m->tokens[i], m->tokens[i]->certs[j], color);
        if (r < 0)
                return r;
        r = table_print(t, f, legend, color);
        if (r < 0)
                return r;
        if (legend) {
                fprintf(f,
                        ngettext("\n%zu certificate listed.\n", "\n%zu certificates listed.\n",
                                 table_rows(t)),
                        table_rows(t));
                for (size_t i = 0; i < m->n_tokens; i++)
                        print_token_notes(f, m->tokens[i]);
        }
        return ferror(f) ? -EIO : 0;
}
