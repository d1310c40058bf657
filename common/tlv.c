/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tlv.h"

#include <errno.h>
#include <string.h>

void tlv_reader_init(TlvReader *r, const void *buf, size_t len) {
        /* NULL + 0 is undefined behaviour in C, so no arithmetic on NULL. */
        r->pos = buf;
        r->end = buf ? r->pos + len : r->pos;
}

void tlv_reader_enter(const Tlv *t, TlvReader *ret) {
        tlv_reader_init(ret, t->value, t->length);
}

/* A tag is one byte, or 0x1F-style multi-byte (more bytes while bit 8 is
 * set), capped at three bytes: every tag PIV and ISO 7816 use fits. */
static int read_tag(const uint8_t **p, const uint8_t *end, uint32_t *ret_tag) {
        const uint8_t *q = *p;
        uint32_t tag;

        if (q >= end)
                return -EBADMSG;
        tag = *q++;
        if ((tag & 0x1F) == 0x1F) {
                unsigned n = 0;
                uint8_t b;
                do {
                        if (q >= end || ++n > 2)
                                return -EBADMSG;
                        b = *q++;
                        tag = tag << 8 | b;
                } while (b & 0x80);
        }
        *p = q;
        *ret_tag = tag;
        return 0;
}

static int read_length(const uint8_t **p, const uint8_t *end, size_t *ret_len) {
        const uint8_t *q = *p;
        size_t len, n;

        if (q >= end)
                return -EBADMSG;
        len = *q++;
        if (len & 0x80) {
                n = len & 0x7F;
                /* 0x80 is BER's indefinite form: no place in a card protocol. */
                if (n == 0 || n > 3 || (size_t) (end - q) < n)
                        return -EBADMSG;
                len = 0;
                while (n--)
                        len = len << 8 | *q++;
        }
        *p = q;
        *ret_len = len;
        return 0;
}

int tlv_reader_next(TlvReader *r, Tlv *ret) {
        const uint8_t *p = r->pos;
        uint32_t tag;
        size_t len;

        if (p >= r->end)
                return 0;
        if (read_tag(&p, r->end, &tag) < 0 || read_length(&p, r->end, &len) < 0)
                return -EBADMSG;
        if (len > (size_t) (r->end - p))
                return -EBADMSG;

        ret->tag = tag;
        ret->constructed = (r->pos[0] & 0x20) != 0;
        ret->value = p;
        ret->length = len;
        r->pos = p + len;
        return 1;
}

int tlv_find(const void *buf, size_t len, uint32_t tag, Tlv *ret) {
        TlvReader r;
        Tlv t;
        int k;

        tlv_reader_init(&r, buf, len);
        while ((k = tlv_reader_next(&r, &t)) > 0)
                if (t.tag == tag) {
                        *ret = t;
                        return 0;
                }
        return k < 0 ? k : -ENOENT;
}

int tlv_parse_single(const void *buf, size_t len, Tlv *ret) {
        TlvReader r;
        Tlv t;

        tlv_reader_init(&r, buf, len);
        if (tlv_reader_next(&r, &t) <= 0 || r.pos != r.end)
                return -EBADMSG;
        *ret = t;
        return 0;
}

size_t tlv_tag_size(uint32_t tag) {
        return tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1;
}

size_t tlv_length_size(size_t len) {
        return len < 0x80 ? 1 : len <= 0xFF ? 2 : len <= 0xFFFF ? 3 : 4;
}

static void put_bytes(TlvWriter *w, const void *p, size_t n) {
        if (w->error)
                return;
        if (n > w->cap - w->len) {
                w->error = -ENOBUFS;
                return;
        }
        if (n > 0)
                memcpy(w->buf + w->len, p, n);
        w->len += n;
}

static void put_tag(TlvWriter *w, uint32_t tag) {
        uint8_t b[3];
        size_t n = tlv_tag_size(tag);

        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) (tag >> (8 * (n - 1 - i)));
        put_bytes(w, b, n);
}

static void encode_length(size_t len, uint8_t out[4], size_t *ret_n) {
        size_t n = tlv_length_size(len);

        if (n == 1)
                out[0] = (uint8_t) len;
        else {
                out[0] = (uint8_t) (0x80 | (n - 1));
                for (size_t i = 1; i < n; i++)
                        out[i] = (uint8_t) (len >> (8 * (n - 1 - i)));
        }
        *ret_n = n;
}

static int check_tag(TlvWriter *w, uint32_t tag) {
        if (!w->error && tag > 0xFFFFFF)
                w->error = -EINVAL;
        return w->error;
}

void tlv_writer_init(TlvWriter *w, uint8_t *buf, size_t cap) {
        *w = (TlvWriter){ .buf = buf, .cap = buf ? cap : 0 };
}

int tlv_put(TlvWriter *w, uint32_t tag, const void *value, size_t len) {
        uint8_t l[4];
        size_t n;

        if (check_tag(w, tag) < 0)
                return w->error;
        if (len > TLV_MAX_LENGTH)
                return (w->error = -EINVAL);
        encode_length(len, l, &n);
        put_tag(w, tag);
        put_bytes(w, l, n);
        put_bytes(w, value, len);
        return w->error;
}

int tlv_put_u8(TlvWriter *w, uint32_t tag, uint8_t value) {
        return tlv_put(w, tag, &value, 1);
}

int tlv_open(TlvWriter *w, uint32_t tag) {
        uint8_t zero = 0;

        if (check_tag(w, tag) < 0)
                return w->error;
        if (w->depth >= TLV_MAX_DEPTH)
                return (w->error = -E2BIG);
        put_tag(w, tag);
        /* One byte of length for now; tlv_close() widens it if needed. */
        put_bytes(w, &zero, 1);
        if (!w->error)
                w->open[w->depth++] = w->len;
        return w->error;
}

int tlv_close(TlvWriter *w) {
        uint8_t l[4];
        size_t start, len, n;

        if (w->error)
                return w->error;
        if (w->depth == 0)
                return (w->error = -EINVAL);
        start = w->open[--w->depth];
        len = w->len - start;
        if (len > TLV_MAX_LENGTH)
                return (w->error = -EINVAL);
        encode_length(len, l, &n);
        if (n - 1 > w->cap - w->len)
                return (w->error = -ENOBUFS);
        memmove(w->buf + start + n - 1, w->buf + start, len);
        memcpy(w->buf + start - 1, l, n);
        w->len += n - 1;
        return 0;
}

int tlv_writer_finish(TlvWriter *w, size_t *ret_len) {
        if (w->error)
                return w->error;
        if (w->depth > 0)
                return -EBADMSG;
        *ret_len = w->len;
        return 0;
}
