/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* One line read from the terminal (/dev/tty) or from standard input while
 * the sd-event loop goes on answering the bus: keyrenewd may withdraw a
 * PIN request while the user is typing. A secret line lives in locked
 * memory (secmem) and is not echoed when it comes from a terminal. */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef enum PromptSource {
        PROMPT_TTY,   /* the controlling terminal: text and echo there */
        PROMPT_STDIN, /* standard input (a script's pipe): text on stderr */
} PromptSource;

typedef struct Prompt Prompt;

/* r: 0 and line (without its newline; valid until prompt_free()),
 * -ECANCELED at the end of the input before a newline, -E2BIG for a line
 * longer than max_len (read to its end), another -errno when reading
 * failed; line is NULL then. Called at most once; may free p. */
typedef void (*prompt_handler_t)(Prompt *p, int r, const char *line, void *userdata);

/* Whether there is a terminal to prompt on. */
bool prompt_have_tty(void);

/* Writes text where the user reads (the terminal, or stderr for
 * PROMPT_STDIN), then reads one line. handler is never called from here:
 * on failure, nothing was written and -errno is returned. */
int prompt_start(sd_event *event, PromptSource source, bool secret, size_t max_len, const char *text,
                 prompt_handler_t handler, void *userdata, Prompt **ret);

/* Stops reading and, when message is not NULL, ends the prompt's line and
 * writes message (and a newline) where the prompt was. Then frees p. */
Prompt *prompt_abort(Prompt *p, const char *message);

/* Gives the terminal its settings back, wipes the line and frees p. */
Prompt *prompt_free(Prompt *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Prompt *, prompt_free)
