/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Memory for secrets (PINs, management keys): each allocation gets pages of
 * its own, locked in RAM (mlock: never swapped), left out of core dumps
 * (MADV_DONTDUMP) and of forked children (MADV_WIPEONFORK), and zeroed before
 * it is given back. Allocation fails rather than hand out memory that could
 * not be locked. */

#include <stddef.h>

#include "macro.h"

/* Zeroed, locked memory of size bytes; NULL with errno set on failure
 * (ENOMEM, or EPERM/EAGAIN when RLIMIT_MEMLOCK forbids locking). */
void *secmem_alloc(size_t size);

/* Zeroes, unlocks and unmaps p; NULL is fine. */
void secmem_free(void *p);

/* The usable size of a secmem_alloc() block. */
size_t secmem_size(const void *p);

/* A NUL-terminated locked copy of the first n bytes of s (or fewer, up to
 * its NUL); NULL with errno set on failure. */
char *secmem_strndup(const char *s, size_t n);

/* Zeroes memory in a way the compiler may not optimise out. */
void secmem_wipe(void *p, size_t n);

static inline void secmem_freep(void *p) {
        secmem_free(*(void **) p);
}
#define _cleanup_secmem_ _cleanup_(secmem_freep)
