/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Runs a libFuzzer target's entry point over corpus files and directories
 * without libFuzzer, so that a gcc build (and valgrind) exercises it too. */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Optional in libFuzzer, so weak here: a target without it leaves it NULL. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "re");
        uint8_t *buf;
        long len;

        if (!f)
                return -1;
        if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -1;
        }
        buf = malloc(len > 0 ? (size_t) len : 1);
        if (!buf || fread(buf, 1, (size_t) len, f) != (size_t) len) {
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t) len);
        free(buf);
        return 0;
}

static int run_path(const char *path, unsigned *count) {
        struct dirent **names;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0)
                return -1;
        if (!S_ISDIR(st.st_mode)) {
                (*count)++;
                return run_file(path);
        }
        /* sorted, so that a run is the same every time */
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0)
                return -1;
        for (int i = 0; i < n; i++) {
                char *child;
                if (names[i]->d_name[0] != '.' && asprintf(&child, "%s/%s", path, names[i]->d_name) >= 0) {
                        if (run_path(child, count) < 0)
                                r = -1;
                        free(child);
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        int r = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i], &count) < 0) {
                        fprintf(stderr, "fuzz-replay: cannot read %s\n", argv[i]);
                        r = 1;
                }
        fprintf(stderr, "fuzz-replay: %u inputs\n", count);
        return r != 0 || count == 0;
}
