/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "assert.h"
#include "secmem.h"

/* mincore() cannot see locking; /proc/self/status's VmLck can. */
static long locked_kib(void) {
        char line[256];
        long kib = -1;
        FILE *f = fopen("/proc/self/status", "re");

        ASSERT_TRUE(f);
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmLck: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

static void test_alloc_is_zeroed_and_locked(void) {
        long before = locked_kib();
        uint8_t *p = secmem_alloc(100);

        ASSERT_TRUE(p);
        ASSERT_EQ(secmem_size(p), 100);
        for (size_t i = 0; i < 100; i++)
                ASSERT_EQ(p[i], 0);
        ASSERT_TRUE(locked_kib() > before);
        memset(p, 0xAA, 100);
        secmem_free(p);
        ASSERT_EQ(locked_kib(), before);
}

static void test_large_and_odd_sizes(void) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        size_t sizes[] = { 1, page - 1, page, 3 * page + 5 };

        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                uint8_t *p = secmem_alloc(sizes[i]);
                ASSERT_TRUE(p);
                p[sizes[i] - 1] = 1; /* the last byte is ours to write */
                secmem_free(p);
        }
}

static void test_bad_sizes(void) {
        errno = 0;
        ASSERT_TRUE(secmem_alloc(0) == NULL);
        ASSERT_EQ(errno, EINVAL);
        ASSERT_TRUE(secmem_alloc((size_t) -1) == NULL);
        ASSERT_EQ(errno, EINVAL);
        secmem_free(NULL);
}

static void test_strndup(void) {
        _cleanup_secmem_ char *a = secmem_strndup("123456", 4);
        _cleanup_secmem_ char *b = secmem_strndup("12", 8);

        ASSERT_STREQ(a, "1234");
        ASSERT_STREQ(b, "12");
        ASSERT_EQ(secmem_size(a), 5);
}

static void test_wipe(void) {
        char buf[8] = "secret!";

        secmem_wipe(buf, sizeof buf);
        for (size_t i = 0; i < sizeof buf; i++)
                ASSERT_EQ(buf[i], 0);
        secmem_wipe(NULL, 10);
}

int main(void) {
        RUN(test_alloc_is_zeroed_and_locked);
        RUN(test_large_and_odd_sizes);
        RUN(test_bad_sizes);
        RUN(test_strndup);
        RUN(test_wipe);
        return 0;
}
