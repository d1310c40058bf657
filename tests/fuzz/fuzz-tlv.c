/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: common/tlv.h over arbitrary bytes.
 *
 * The input is read as BER-TLV the way the PIV driver reads card answers:
 * walked, constructed values entered down to TLV_MAX_DEPTH, searched with
 * tlv_find() for tags taken from the input and checked with
 * tlv_parse_single(). Whatever parsed is written again with the writer
 * (containers with tlv_open()/tlv_close(), the rest with tlv_put()) and
 * read back: the same tags, the same primitive values, never longer than
 * the input (the writer's lengths are the shortest), and writing the copy
 * once more gives the same bytes. The writer is also run into a buffer too
 * small by one byte, which must fail with -ENOBUFS without writing past
 * it. Any broken promise aborts. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                 \
        do {                                                                                     \
                if (!(x)) {                                                                      \
                        fprintf(stderr, "fuzz-tlv: %s:%d: %s failed\n", __FILE__, __LINE__, #x); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

/* One TLV as the walk met it, in document order. */
typedef struct Node {
        uint32_t tag;
        bool constructed;
        bool entered; /* its value parsed wholly as TLVs, which follow it */
        unsigned depth;
        const uint8_t *value;
        size_t length;
        size_t n_children;
} Node;

typedef struct Walk {
        Node *nodes;
        size_t n, cap;
} Walk;

static Node *walk_push(Walk *w) {
        if (w->n == w->cap) {
                size_t cap = w->cap ? 2 * w->cap : 64;
                Node *p = realloc(w->nodes, cap * sizeof *p);

                if (!p)
                        abort();
                w->nodes = p;
                w->cap = cap;
        }
        w->nodes[w->n] = (Node){};
        return &w->nodes[w->n++];
}

/* Whether buf is wholly a sequence of TLVs (nothing malformed after them). */
static bool parses_wholly(const uint8_t *buf, size_t len) {
        TlvReader r;
        Tlv t;
        int k;

        tlv_reader_init(&r, buf, len);
        while ((k = tlv_reader_next(&r, &t)) > 0)
                ;
        return k == 0;
}

/* Walks buf; returns the number of TLVs read at this level. Stops at the
 * first malformed one, as the driver does. */
static size_t walk(Walk *w, const uint8_t *buf, size_t len, unsigned depth) {
        const uint8_t *end = buf ? buf + len : buf;
        TlvReader r;
        size_t n = 0;
        Tlv t;
        int k;

        tlv_reader_init(&r, buf, len);
        while ((k = tlv_reader_next(&r, &t)) > 0) {
                size_t index = w->n;
                Node *node = walk_push(w);

                /* The value lies inside the buffer, after at least the
                 * tag and the shortest length. */
                CHECK(t.length <= len);
                CHECK(t.value >= buf && t.value <= end && t.length <= (size_t) (end - t.value));
                CHECK(t.tag <= 0xFFFFFF);
                CHECK(r.pos == t.value + t.length);
                *node = (Node){ .tag = t.tag,
                                .constructed = t.constructed,
                                .depth = depth,
                                .value = t.value,
                                .length = t.length };
                n++;
                /* The writer nests TLV_MAX_DEPTH containers at most. */
                if (t.constructed && depth < TLV_MAX_DEPTH && parses_wholly(t.value, t.length)) {
                        TlvReader inner;

                        tlv_reader_enter(&t, &inner);
                        CHECK(inner.pos == t.value && inner.end == t.value + t.length);
                        w->nodes[index].entered = true;
                        w->nodes[index].n_children = walk(w, t.value, t.length, depth + 1);
                }
        }
        /* A failed read leaves the reader where it was. */
        if (k < 0) {
                const uint8_t *before = r.pos;

                CHECK(tlv_reader_next(&r, &t) < 0 && r.pos == before);
        }
        return n;
}

/* Writes nodes[*i] and what it contains; advances *i past them. */
static void write_node(TlvWriter *tw, const Walk *w, size_t *i) {
        const Node *node = &w->nodes[(*i)++];

        if (!node->entered) {
                (void) tlv_put(tw, node->tag, node->value, node->length);
                return;
        }
        (void) tlv_open(tw, node->tag);
        for (size_t c = 0; c < node->n_children; c++)
                write_node(tw, w, i);
        (void) tlv_close(tw);
}

static int write_walk(const Walk *w, size_t n_top, uint8_t *buf, size_t cap, size_t *ret_len) {
        TlvWriter tw;
        size_t i = 0;

        tlv_writer_init(&tw, buf, cap);
        for (size_t c = 0; c < n_top; c++)
                write_node(&tw, w, &i);
        CHECK(i == w->n);
        CHECK(tw.len <= cap);
        return tlv_writer_finish(&tw, ret_len);
}

/* The copy must have the same shape and the same primitive values. */
static void compare_walks(const Walk *a, const Walk *b) {
        CHECK(a->n == b->n);
        for (size_t i = 0; i < a->n; i++) {
                const Node *x = &a->nodes[i], *y = &b->nodes[i];

                CHECK(x->tag == y->tag && x->constructed == y->constructed && x->depth == y->depth);
                CHECK(x->entered == y->entered && x->n_children == y->n_children);
                if (!x->entered)
                        CHECK(x->length == y->length &&
                              (x->length == 0 || memcmp(x->value, y->value, x->length) == 0));
        }
}

static void check_find(const uint8_t *data, size_t size, const Walk *w, size_t n_top) {
        Tlv t;
        int k;

        /* The first top-level TLV with each tag the walk met. */
        for (size_t i = 0; i < w->n && i < 16; i++) {
                k = tlv_find(data, size, w->nodes[i].tag, &t);
                CHECK(k == 0 || k == -ENOENT || k == -EBADMSG);
                if (k == 0) {
                        CHECK(t.tag == w->nodes[i].tag);
                        CHECK(t.value >= data && t.value + t.length <= data + size);
                }
        }
        k = tlv_parse_single(data, size, &t);
        CHECK(k == 0 || k == -EBADMSG);
        if (k == 0)
                CHECK(n_top == 1 && t.value + t.length == data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Walk first = {}, again = {};
        uint8_t *out, *copy;
        size_t n_top, out_len = 0, copy_len = 0, small_len = 0;

        n_top = walk(&first, data, size, 0);
        check_find(data, size, &first, n_top);

        /* Shortest lengths and no more content: the copy fits in the
         * input's size, even while a container's length is still open. */
        out = malloc(size ? size : 1);
        if (!out)
                abort();
        CHECK(write_walk(&first, n_top, out, size, &out_len) == 0);
        CHECK(out_len <= size);
        walk(&again, out, out_len, 0);
        compare_walks(&first, &again);

        /* Idempotent: the copy of the copy is the same bytes. */
        copy = malloc(out_len ? out_len : 1);
        if (!copy)
                abort();
        CHECK(write_walk(&again, n_top, copy, out_len, &copy_len) == 0);
        CHECK(copy_len == out_len && (out_len == 0 || memcmp(copy, out, out_len) == 0));
        if (out_len > 0) {
                /* A heap buffer of exactly out_len - 1 bytes: ASan sees any overrun. */
                uint8_t *small = malloc(out_len - 1 ? out_len - 1 : 1);

                if (!small)
                        abort();
                CHECK(write_walk(&again, n_top, small, out_len - 1, &small_len) == -ENOBUFS);
                free(small);
        }

        free(copy);
        free(out);
        free(again.nodes);
        free(first.nodes);
        return 0;
}
