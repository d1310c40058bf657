/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tray-pinentry.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <locale.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "secmem.h"

/* Not libassuan: its client calls block until the person has answered,
 * minutes in which the tray must go on answering keyrenewd (Cancel
 * withdraws the dialog), and its line buffers are not ours to wipe. The
 * client side of what pinentry needs is a few line types. */

/* Assuan lines are at most 1000 bytes, the newline included. */
#define LINE_MAX_LEN 1000
/* A PIV PIN has 8 characters at most; room for what a person may type. */
#define PIN_MAX_LEN 256
/* GPG_ERR_CANCELED and GPG_ERR_NOT_CONFIRMED: the person said no. */
#define GPG_ERR_CANCELED 99
#define GPG_ERR_NOT_CONFIRMED 114

struct TrayPinentry {
        GPid pid;
        int in, out; /* its stdin, its stdout */
        guint watch;
        char *line; /* secmem: what came so far of the line being read */
        size_t line_len;
        char *pin; /* secmem: the D lines of GETPIN */
        size_t pin_len;
        char **commands; /* what to send, one at a time: the last is GETPIN */
        size_t next;     /* commands[next] is sent when the answer to the one before is in */
        bool greeted;
        int result;
        guint report;
        tray_pinentry_cb cb;
        void *userdata;
};

static void reap(GPid pid, gint status, gpointer userdata) {
        g_spawn_close_pid(pid);
}

/* Its stdin closed, pinentry ends by itself; SIGTERM for one that is
 * still showing its dialog. */
static void stop(TrayPinentry *p, bool kill_it) {
        if (p->watch)
                g_source_remove(p->watch);
        p->watch = 0;
        closep(&p->in);
        closep(&p->out);
        p->in = p->out = -1;
        if (p->pid > 0) {
                if (kill_it)
                        (void) kill(p->pid, SIGTERM);
                g_child_watch_add(p->pid, reap, NULL);
                p->pid = 0;
        }
}

static gboolean report(gpointer userdata) {
        TrayPinentry *p = userdata;
        char *pin = p->result == 0 ? TAKE_PTR(p->pin) : NULL;

        p->report = 0;
        /* The callback may free p. */
        p->cb(p->result, pin, p->userdata);
        return G_SOURCE_REMOVE;
}

/* The callback runs from the main loop, not from inside the reading of
 * a line: it may free p. */
static void finish(TrayPinentry *p, int r) {
        stop(p, r != 0);
        p->result = r;
        p->report = g_idle_add(report, p);
}

/* Assuan's escaping: '%', CR, LF and other control bytes as %XX. */
static char *escape(const char *s) {
        GString *out = g_string_new(NULL);

        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if (*c == '%' || *c < 0x20)
                        g_string_append_printf(out, "%%%02X", *c);
                else
                        g_string_append_c(out, (char) *c);
        }
        return g_string_free(out, FALSE);
}

static int send_line(TrayPinentry *p, const char *line) {
        size_t len = strlen(line), done = 0;

        while (done < len) {
                ssize_t n = write(p->in, line + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                done += (size_t) n;
        }
        return 0;
}

static int hex_value(char c) {
        return g_ascii_xdigit_value(c);
}

/* "D " data, unescaped, appended to the PIN in locked memory. */
static int take_data(TrayPinentry *p, const char *data, size_t len) {
        for (size_t i = 0; i < len; i++) {
                int c = (unsigned char) data[i];

                if (c == '%' && i + 2 < len && hex_value(data[i + 1]) >= 0 && hex_value(data[i + 2]) >= 0) {
                        c = hex_value(data[i + 1]) * 16 + hex_value(data[i + 2]);
                        i += 2;
                }
                if (p->pin_len + 1 >= PIN_MAX_LEN)
                        return -E2BIG;
                p->pin[p->pin_len++] = (char) c;
        }
        return 0;
}

static int error_of(const char *line) {
        unsigned long code = strtoul(line + 3, NULL, 10);

        code &= 0xFFFF;
        return code == GPG_ERR_CANCELED || code == GPG_ERR_NOT_CONFIRMED ? -ECANCELED : -EPROTO;
}

/* One line from pinentry: returns 1 when it is over (finish() was
 * called), 0 to read on, or a negative errno. */
static int handle_line(TrayPinentry *p, const char *line, size_t len) {
        bool last = p->commands[p->next] == NULL;
        bool ok = len >= 2 && strncmp(line, "OK", 2) == 0 && (len == 2 || line[2] == ' ');

        if (len >= 2 && strncmp(line, "D ", 2) == 0)
                return last && p->greeted ? take_data(p, line + 2, len - 2) : -EPROTO;
        if (len >= 1 && (line[0] == '#' || line[0] == 'S'))
                return 0;
        if (len >= 3 && strncmp(line, "ERR", 3) == 0) {
                /* An OPTION this pinentry does not know is no reason to stop. */
                if (p->greeted && !last && g_str_has_prefix(p->commands[p->next - 1], "OPTION"))
                        ok = true;
                else if (p->greeted && last) {
                        finish(p, error_of(line));
                        return 1;
                } else
                        return -EPROTO;
        }
        if (!ok)
                return -EPROTO;
        if (p->greeted && last) {
                finish(p, p->pin_len > 0 ? 0 : -ECANCELED);
                return 1;
        }
        p->greeted = true;
        return send_line(p, p->commands[p->next++]);
}

static int read_some(TrayPinentry *p) {
        ssize_t n;

        n = read(p->out, p->line + p->line_len, LINE_MAX_LEN - p->line_len);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -EPIPE;
        p->line_len += (size_t) n;
        for (;;) {
                char *nl = memchr(p->line, '\n', p->line_len);
                size_t len, rest;
                int r;

                if (!nl)
                        return p->line_len >= LINE_MAX_LEN ? -EPROTO : 0;
                len = (size_t) (nl - p->line);
                r = handle_line(p, p->line, len);
                rest = p->line_len - len - 1;
                memmove(p->line, nl + 1, rest);
                secmem_wipe(p->line + rest, p->line_len - rest);
                p->line_len = rest;
                if (r != 0)
                        return r;
        }
}

static gboolean on_readable(gint fd, GIOCondition condition, gpointer userdata) {
        TrayPinentry *p = userdata;
        int r = read_some(p);

        if (r == 1)
                return G_SOURCE_REMOVE; /* finish() removed the watch */
        if (r < 0) {
                p->watch = 0;
                finish(p, r);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static void add_command(GPtrArray *a, const char *verb, const char *value) {
        g_autofree char *escaped = NULL;

        if (!value)
                return;
        escaped = escape(value);
        g_ptr_array_add(a, g_strdup_printf("%s %s\n", verb, escaped));
}

/* No OPTION allow-external-password-cache and no SETKEYINFO: a PIN
 * must never land in a keyring. */
static char **commands_for(const TrayPinentryText *t) {
        GPtrArray *a = g_ptr_array_new();
        const char *ctype = setlocale(LC_CTYPE, NULL), *messages = setlocale(LC_MESSAGES, NULL);

        if (ctype)
                g_ptr_array_add(a, g_strdup_printf("OPTION lc-ctype=%s\n", ctype));
        if (messages)
                g_ptr_array_add(a, g_strdup_printf("OPTION lc-messages=%s\n", messages));
        add_command(a, "SETTITLE", t->title);
        add_command(a, "SETDESC", t->description);
        add_command(a, "SETPROMPT", t->prompt);
        add_command(a, "SETERROR", t->error);
        add_command(a, "SETOK", t->ok);
        add_command(a, "SETCANCEL", t->cancel);
        g_ptr_array_add(a, g_strdup("GETPIN\n"));
        g_ptr_array_add(a, NULL);
        return (char **) g_ptr_array_free(a, FALSE);
}

TrayPinentry *tray_pinentry_free(TrayPinentry *p) {
        if (!p)
                return NULL;
        stop(p, true);
        if (p->report)
                g_source_remove(p->report);
        secmem_free(p->line);
        secmem_free(p->pin);
        g_strfreev(p->commands);
        free(p);
        return NULL;
}

static int spawn(TrayPinentry *p, const char *program) {
        g_autoptr(GError) error = NULL;
        char *argv[] = { (char *) program, NULL };

        if (!g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &p->pid,
                                      &p->in, &p->out, NULL, &error))
                return error->domain == G_SPAWN_ERROR && error->code == G_SPAWN_ERROR_NOENT ? -ENOENT : -EIO;
        if (!g_unix_set_fd_nonblocking(p->out, TRUE, NULL))
                return -EIO;
        p->watch = g_unix_fd_add(p->out, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, p);
        return 0;
}

int tray_pinentry_start(const char *program, const TrayPinentryText *text, tray_pinentry_cb cb,
                        void *userdata, TrayPinentry **ret) {
        _cleanup_(tray_pinentry_freep) TrayPinentry *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->in = p->out = -1;
        p->line = secmem_alloc(LINE_MAX_LEN);
        p->pin = secmem_alloc(PIN_MAX_LEN);
        if (!p->line || !p->pin)
                return negative_errno();
        p->commands = commands_for(text);
        p->cb = cb;
        p->userdata = userdata;
        r = spawn(p, program);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}
