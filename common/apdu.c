/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "apdu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define SHORT_DATA_MAX 255u
#define CLA_CHAINING 0x10u
#define INS_GET_RESPONSE 0xC0u
/* Header, Lc, 255 bytes of data, Le. */
#define COMMAND_MAX (4u + 1u + SHORT_DATA_MAX + 1u)
/* 256 bytes of data and SW1 SW2. */
#define RESPONSE_MAX (256u + 2u)

typedef struct Buffer {
        uint8_t *data;
        size_t len;
} Buffer;

static int buffer_append(Buffer *b, const uint8_t *p, size_t n) {
        uint8_t *q;

        if (n == 0)
                return 0;
        if (n > APDU_RESPONSE_MAX - b->len)
                return -EBADMSG;
        q = realloc(b->data, b->len + n);
        if (!q)
                return -ENOMEM;
        memcpy(q + b->len, p, n);
        b->data = q;
        b->len += n;
        return 0;
}

/* le < 0: no Le field; 0..255 as ISO 7816 encodes it (0 means 256). */
static size_t encode(uint8_t out[static COMMAND_MAX], uint8_t cla, const ApduCommand *c, const uint8_t *data,
                     size_t n, int le) {
        size_t len = 0;

        out[len++] = cla;
        out[len++] = c->ins;
        out[len++] = c->p1;
        out[len++] = c->p2;
        if (n > 0) {
                out[len++] = (uint8_t) n;
                memcpy(out + len, data, n);
                len += n;
        }
        if (le >= 0)
                out[len++] = (uint8_t) le;
        return len;
}

/* One command, one response: the response's data are appended to b. */
static int transmit(TokenTransport *t, const uint8_t *cmd, size_t cmd_len, Buffer *b, uint16_t *ret_sw) {
        uint8_t resp[RESPONSE_MAX];
        size_t n = 0;
        int r;

        r = t->transmit(t->userdata, cmd, cmd_len, resp, sizeof resp, &n);
        if (r < 0)
                return r;
        if (n < 2 || n > sizeof resp)
                return -EBADMSG;
        if (b) {
                r = buffer_append(b, resp, n - 2);
                if (r < 0)
                        return r;
        }
        *ret_sw = (uint16_t) (resp[n - 2] << 8 | resp[n - 1]);
        return 0;
}

/* Sends all but the last SHORT_DATA_MAX bytes with the chaining bit set;
 * each piece must be accepted with 9000. Returns 0 and how many bytes
 * went out, or 1 with the card's refusal in *ret_sw. */
static int send_chained_pieces(TokenTransport *t, const ApduCommand *c, size_t *ret_sent, uint16_t *ret_sw) {
        uint8_t cmd[COMMAND_MAX];
        size_t sent = 0;
        uint16_t sw;
        int r;

        while (c->data_len - sent > SHORT_DATA_MAX) {
                size_t len = encode(cmd, c->cla | CLA_CHAINING, c, c->data + sent, SHORT_DATA_MAX, -1);

                r = transmit(t, cmd, len, NULL, &sw);
                if (r < 0)
                        return r;
                if (sw != APDU_SW_OK) {
                        *ret_sw = sw;
                        return 1;
                }
                sent += SHORT_DATA_MAX;
        }
        *ret_sent = sent;
        return 0;
}

static int get_responses(TokenTransport *t, const ApduCommand *c, Buffer *b, uint16_t *sw) {
        int r;

        while ((*sw >> 8) == 0x61) {
                uint8_t cmd[] = { c->cla & ~CLA_CHAINING, INS_GET_RESPONSE, 0, 0, (uint8_t) *sw };
                size_t before = b->len;

                r = transmit(t, cmd, sizeof cmd, b, sw);
                if (r < 0)
                        return r;
                /* A card that keeps saying "more" without giving any would
                 * keep us here forever. */
                if (b->len == before)
                        return -EBADMSG;
        }
        return 0;
}

/* The last (or only) piece, with Le if wanted; on 6Cxx the card said how
 * many bytes it has: send again with that Le, once. */
static int send_last_piece(TokenTransport *t, const ApduCommand *c, size_t sent, Buffer *b,
                           uint16_t *ret_sw) {
        /* No arithmetic on a NULL data pointer, not even + 0. */
        const uint8_t *rest = c->data_len > 0 ? c->data + sent : NULL;
        uint8_t cmd[COMMAND_MAX];
        size_t len;
        int r;

        len = encode(cmd, c->cla, c, rest, c->data_len - sent, c->want_data ? 0 : -1);
        r = transmit(t, cmd, len, b, ret_sw);
        if (r < 0 || (*ret_sw >> 8) != 0x6C)
                return r;

        b->len = 0;
        len = encode(cmd, c->cla, c, rest, c->data_len - sent, *ret_sw & 0xFF);
        return transmit(t, cmd, len, b, ret_sw);
}

static void buffer_done(Buffer *b) {
        free(b->data);
}

int apdu_exchange(TokenTransport *t, const ApduCommand *c, ApduResponse *ret) {
        _cleanup_(buffer_done) Buffer b = {};
        size_t sent = 0;
        uint16_t sw = 0;
        int r;

        if (!t || !t->transmit || !c || (c->data_len > 0 && !c->data) || !ret)
                return -EINVAL;

        r = send_chained_pieces(t, c, &sent, &sw);
        if (r < 0)
                return r;
        if (r == 0) {
                r = send_last_piece(t, c, sent, &b, &sw);
                if (r < 0)
                        return r;
                r = get_responses(t, c, &b, &sw);
                if (r < 0)
                        return r;
        }

        *ret = (ApduResponse){
                .len = b.len,
                .data = TAKE_PTR(b.data),
                .sw = sw,
        };
        return 0;
}

void apdu_response_done(ApduResponse *r) {
        free(r->data);
        *r = (ApduResponse){};
}

int apdu_call(TokenTransport *t, const ApduCommand *c, uint8_t **ret_data, size_t *ret_len) {
        ApduResponse resp;
        int r;

        r = apdu_exchange(t, c, &resp);
        if (r < 0)
                return r;
        r = apdu_sw_to_errno(resp.sw);
        if (r < 0) {
                apdu_response_done(&resp);
                return r;
        }
        if (ret_len)
                *ret_len = resp.len;
        if (ret_data)
                *ret_data = TAKE_PTR(resp.data);
        apdu_response_done(&resp);
        return 0;
}

int apdu_sw_to_errno(uint16_t sw) {
        static const struct {
                uint16_t sw;
                int error;
        } table[] = {
                { 0x9000, 0 },           { 0x6983, -ENOLCK },     { 0x6982, -EACCES },
                { 0x6985, -EPERM },      { 0x6986, -EPERM },      { 0x6A82, -ENOENT },
                { 0x6A88, -ENOENT },     { 0x6A80, -EINVAL },     { 0x6A86, -EINVAL },
                { 0x6B00, -EINVAL },     { 0x6700, -EINVAL },     { 0x6A81, -EOPNOTSUPP },
                { 0x6D00, -EOPNOTSUPP }, { 0x6E00, -EOPNOTSUPP }, { 0x6A84, -ENOSPC },
                { 0x6581, -EIO },        { 0x6400, -EIO },        { 0x6F00, -EIO },
        };

        if (apdu_sw_retries(sw) >= 0)
                return -EKEYREJECTED;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].sw == sw)
                        return table[i].error;
        return -EPROTO;
}

int apdu_sw_retries(uint16_t sw) {
        return (sw & 0xFFF0) == 0x63C0 ? (int) (sw & 0x0F) : -1;
}
