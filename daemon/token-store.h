/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Tokens remembered across restarts: one small text file per token,
 * DIR/tokens/<name>.token, with what identifies it, where and when it was
 * last seen, its PIN tries left, its certificates (public data) and the
 * expiry level last announced for each. Never a PIN. Written atomically:
 * a temporary file, fsync, rename, fsync of the folder. */

#include <systemd/sd-bus.h>
#include <uv.h>

#include "token-object.h"

/* Writes t's file, creating DIR/tokens when needed. */
int token_store_save(const char *dir, const TokenObject *t);

/* The same without making the loop wait for the disk: t's file is written
 * (fsync and all) on libuv's thread pool, one write per file at a time; a
 * save asked for while one is under way is written after it, the newest
 * text only. A write that fails is logged. */
typedef struct TokenStoreWriter TokenStoreWriter;

int token_store_writer_new(uv_loop_t *loop, const char *dir, TokenStoreWriter **ret);
int token_store_writer_save(TokenStoreWriter *w, const TokenObject *t);
/* Writes are not abandoned: w goes once the last is done, and the loop
 * runs until then. */
void token_store_writer_close(TokenStoreWriter *w);

/* Reads one file into a new token (not on the bus, not present). -EBADMSG
 * for a file that is not one of ours, or that we cannot understand. */
int token_store_load(const char *path, Manager *m, sd_bus *bus, TokenObject **ret);

typedef void (*token_store_found_cb)(TokenObject *t, void *userdata);

/* Loads every remembered token and hands each to found_cb, which owns it
 * from then on. A file that cannot be read is logged and left out.
 * Returns the number found, 0 when DIR/tokens does not exist, or a
 * negative errno when it cannot be listed. */
int token_store_load_all(const char *dir, Manager *m, sd_bus *bus, token_store_found_cb found_cb,
                         void *userdata);
