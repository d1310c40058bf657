/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ctl-prompt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "secmem.h"

struct Prompt {
        sd_event_source *source;
        PromptSource kind;
        int fd;     /* the line comes from here */
        int out_fd; /* the text goes there */
        bool restore_termios;
        struct termios saved;
        /* Standard input is not ours to make non-blocking: read one byte
         * per wake-up, so that the rest of a script's input stays there. */
        bool one_byte;
        char *line; /* secmem, max_len + 2 bytes: a '\r' and the NUL */
        size_t len, max_len;
        bool too_long;
        prompt_handler_t handler;
        void *userdata;
};

static int open_tty(void) {
        return open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
}

bool prompt_have_tty(void) {
        _cleanup_close_ int fd = open_tty();

        return fd >= 0;
}

static int write_all(int fd, const char *s) {
        size_t left = strlen(s);

        while (left > 0) {
                ssize_t n = write(fd, s, left);

                if (n < 0 && errno == EAGAIN) {
                        struct pollfd pfd = { .fd = fd, .events = POLLOUT };

                        (void) poll(&pfd, 1, -1);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                s += n;
                left -= (size_t) n;
        }
        return 0;
}

Prompt *prompt_free(Prompt *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->source);
        if (p->restore_termios)
                (void) tcsetattr(p->fd, TCSAFLUSH, &p->saved);
        if (p->kind == PROMPT_TTY && p->fd >= 0)
                (void) close(p->fd);
        secmem_free(p->line);
        free(p);
        return NULL;
}

Prompt *prompt_abort(Prompt *p, const char *message) {
        if (!p)
                return NULL;
        if (message) {
                /* The cursor is after the question on the terminal. */
                if (p->kind == PROMPT_TTY)
                        (void) write_all(p->out_fd, "\n");
                (void) write_all(p->out_fd, message);
                (void) write_all(p->out_fd, "\n");
        }
        return prompt_free(p);
}

static void finish(Prompt *p, int r) {
        (void) sd_event_source_set_enabled(p->source, SD_EVENT_OFF);
        if (r == 0 && p->len > 0 && p->line[p->len - 1] == '\r')
                p->line[--p->len] = '\0';
        if (r == 0 && p->too_long)
                r = -E2BIG;
        if (r == 0 && p->len > p->max_len)
                r = -E2BIG;
        p->handler(p, r, r == 0 ? p->line : NULL, p->userdata);
}

/* Reads what there is; returns 1 with *ret_r set once the line is over,
 * 0 to wait for more. */
static int read_some(Prompt *p, int *ret_r) {
        for (;;) {
                char c;
                ssize_t n = read(p->fd, &c, 1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        *ret_r = n < 0 ? -errno : -ECANCELED;
                        return 1;
                }
                if (c == '\n') {
                        *ret_r = 0;
                        return 1;
                }
                if (p->len <= p->max_len)
                        p->line[p->len++] = c;
                else
                        p->too_long = true;
                secmem_wipe(&c, sizeof(c));
                if (p->one_byte)
                        return 0;
        }
}

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Prompt *p = userdata;
        int r;

        if (read_some(p, &r) > 0)
                finish(p, r);
        return 0;
}

/* A file or /dev/null on standard input cannot be polled, and never
 * blocks: the whole line at once. */
static int on_defer(sd_event_source *s, void *userdata) {
        Prompt *p = userdata;
        int r;

        p->one_byte = false;
        if (read_some(p, &r) == 0)
                r = -EAGAIN;
        finish(p, r);
        return 0;
}

static int echo_off(Prompt *p) {
        struct termios t;

        if (!isatty(p->fd))
                return 0;
        if (tcgetattr(p->fd, &p->saved) < 0)
                return -errno;
        t = p->saved;
        t.c_lflag &= ~(tcflag_t) ECHO;
        t.c_lflag |= ECHONL;
        /* TCSAFLUSH: nothing typed before the question counts as the PIN. */
        if (tcsetattr(p->fd, TCSAFLUSH, &t) < 0)
                return -errno;
        p->restore_termios = true;
        return 0;
}

int prompt_start(sd_event *event, PromptSource source, bool secret, size_t max_len, const char *text,
                 prompt_handler_t handler, void *userdata, Prompt **ret) {
        _cleanup_(prompt_freep) Prompt *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->kind = source;
        p->fd = source == PROMPT_TTY ? open_tty() : STDIN_FILENO;
        if (p->fd < 0)
                return -errno;
        p->out_fd = source == PROMPT_TTY ? p->fd : STDERR_FILENO;
        p->one_byte = source == PROMPT_STDIN;
        p->max_len = max_len;
        p->handler = handler;
        p->userdata = userdata;
        p->line = secmem_alloc(max_len + 2);
        if (!p->line)
                return -errno;

        r = sd_event_add_io(event, &p->source, p->fd, EPOLLIN, on_input, p);
        if (r == -EPERM)
                r = sd_event_add_defer(event, &p->source, on_defer, p);
        if (r < 0)
                return r;
        if (secret) {
                r = echo_off(p);
                if (r < 0)
                        return r;
        }
        r = write_all(p->out_fd, text);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}
