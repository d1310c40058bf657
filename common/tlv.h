/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* BER-TLV as ISO/IEC 7816-4 and NIST SP 800-73-4 use it: tags of one to
 * three bytes, definite lengths in one to four bytes (short form, 81 xx,
 * 82 xx xx, 83 xx xx xx). The reader never reads outside the buffer it was
 * given and rejects indefinite lengths (80), lengths of more than three
 * bytes, truncated tags or lengths and values that run past their
 * container. The writer emits the shortest length encoding. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLV_MAX_LENGTH 0xFFFFFFu
#define TLV_MAX_DEPTH 8

typedef struct Tlv {
        uint32_t tag;         /* the tag bytes as a big-endian number: 0x5FC105, 0x7F49, 0x53 */
        bool constructed;     /* bit 6 of the first tag byte */
        const uint8_t *value; /* points into the reader's buffer */
        size_t length;
} Tlv;

typedef struct TlvReader {
        const uint8_t *pos;
        const uint8_t *end;
} TlvReader;

void tlv_reader_init(TlvReader *r, const void *buf, size_t len);

/* Reads the next TLV. Returns 1 and fills *ret, 0 at the end of the buffer,
 * -EBADMSG on malformed input (the reader then stays where it was). */
int tlv_reader_next(TlvReader *r, Tlv *ret);

/* A reader over a TLV's value, for nested (constructed) data. */
void tlv_reader_enter(const Tlv *t, TlvReader *ret);

/* Finds the first TLV with this tag at the top level of buf. Returns 0,
 * -ENOENT when absent, -EBADMSG when buf is malformed before it is found. */
int tlv_find(const void *buf, size_t len, uint32_t tag, Tlv *ret);

/* Parses buf as exactly one TLV with nothing after it; -EBADMSG otherwise. */
int tlv_parse_single(const void *buf, size_t len, Tlv *ret);

/* How many bytes a tag or a length takes when written. */
size_t tlv_tag_size(uint32_t tag);
size_t tlv_length_size(size_t len);

typedef struct TlvWriter {
        uint8_t *buf;
        size_t cap;
        size_t len;
        int error; /* sticky: the first error, so calls can be chained */
        unsigned depth;
        size_t open[TLV_MAX_DEPTH]; /* offsets of the value of each open container */
} TlvWriter;

void tlv_writer_init(TlvWriter *w, uint8_t *buf, size_t cap);

/* Appends tag, length and value. Returns 0, -ENOBUFS when buf is full,
 * -EINVAL for a tag of more than three bytes or a too long value. */
int tlv_put(TlvWriter *w, uint32_t tag, const void *value, size_t len);
int tlv_put_u8(TlvWriter *w, uint32_t tag, uint8_t value);

/* Opens a container whose length is known only when tlv_close() is called;
 * nests up to TLV_MAX_DEPTH. -E2BIG when nested too deep. */
int tlv_open(TlvWriter *w, uint32_t tag);
int tlv_close(TlvWriter *w);

/* Returns the first error met, -EBADMSG when a container is still open,
 * else 0 and the number of bytes written. */
int tlv_writer_finish(TlvWriter *w, size_t *ret_len);
