/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "secmem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The mapping's first bytes record its size, so free needs no size. */
typedef struct SecmemHeader {
        size_t mapped;
        size_t usable;
} SecmemHeader;

#define HEADER_SIZE ((sizeof(SecmemHeader) + 15) & ~(size_t) 15)

void secmem_wipe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

static int page_round(size_t n, size_t *ret) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        if (n == 0 || n > SIZE_MAX - HEADER_SIZE - page)
                return -EINVAL;
        *ret = (n + HEADER_SIZE + page - 1) / page * page;
        return 0;
}

void *secmem_alloc(size_t size) {
        SecmemHeader *h;
        size_t mapped;

        if (page_round(size, &mapped) < 0) {
                errno = EINVAL;
                return NULL;
        }
        h = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (h == MAP_FAILED)
                return NULL;
        /* The raw system call: ASan's mlock() interceptor does nothing, and
         * a secret must be locked in every build, sanitized ones included. */
        if (syscall(SYS_mlock, h, mapped) < 0) {
                int saved = errno;
                (void) munmap(h, mapped);
                errno = saved;
                return NULL;
        }
        /* Best effort: older kernels lack these, and locking is what matters. */
        (void) madvise(h, mapped, MADV_DONTDUMP);
        (void) madvise(h, mapped, MADV_WIPEONFORK);
        h->mapped = mapped;
        h->usable = size;
        return (uint8_t *) h + HEADER_SIZE;
}

static SecmemHeader *header_of(const void *p) {
        return (SecmemHeader *) ((uint8_t *) p - HEADER_SIZE);
}

size_t secmem_size(const void *p) {
        return p ? header_of(p)->usable : 0;
}

void secmem_free(void *p) {
        SecmemHeader *h;
        size_t mapped;
        int saved = errno;

        if (!p)
                return;
        h = header_of(p);
        mapped = h->mapped;
        secmem_wipe(h, mapped);
        (void) syscall(SYS_munlock, h, mapped);
        (void) munmap(h, mapped);
        errno = saved;
}

char *secmem_strndup(const char *s, size_t n) {
        size_t len = strnlen(s, n);
        char *copy = secmem_alloc(len + 1);

        if (!copy)
                return NULL;
        memcpy(copy, s, len);
        copy[len] = '\0';
        return copy;
}
