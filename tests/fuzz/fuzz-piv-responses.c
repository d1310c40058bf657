/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the PIV driver (common/piv*.c through common/token.h)
 * over a card whose every answer comes from the input.
 *
 * Input: 4 bytes, a little-endian mask: bit i set makes the transport's
 * begin() of the i-th transaction report a card reset (the driver then
 * selects PIV again); then the card's answers in order, each a 2-byte
 * big-endian length and that many bytes, the status word last, as a
 * transport returns them. An answer longer than the driver's buffer is a
 * transport error (-EIO); once the answers run out the card is gone
 * (-ENOMEDIUM). piv-session.c says which calls are made: all of them, in
 * a fixed order, with the certificates read parsed by x509-info as the
 * daemon does. Seeds are sessions recorded against the virtual card
 * (record-piv-session). */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "piv-session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Script {
        const uint8_t *p;
        size_t left;
        uint32_t resets;
        unsigned transaction;
} Script;

static int script_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp,
                           size_t resp_cap, size_t *ret_len) {
        Script *s = userdata;
        size_t len;

        if (s->left < 2)
                return -ENOMEDIUM;
        len = (size_t) s->p[0] << 8 | s->p[1];
        if (len > s->left - 2)
                return -ENOMEDIUM;
        s->p += 2;
        s->left -= 2;
        if (len > resp_cap) {
                s->p += len;
                s->left -= len;
                return -EIO;
        }
        if (len > 0)
                memcpy(resp, s->p, len);
        s->p += len;
        s->left -= len;
        *ret_len = len;
        return 0;
}

static int script_begin(void *userdata) {
        Script *s = userdata;
        unsigned i = s->transaction++;

        return i < 32 && (s->resets >> i & 1u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Script s;
        TokenTransport transport = {
                .transmit = script_transmit,
                .begin = script_begin,
                .userdata = &s,
        };

        if (size < 4)
                return 0;
        s = (Script){
                .p = data + 4,
                .left = size - 4,
                .resets = (uint32_t) data[0] | (uint32_t) data[1] << 8 | (uint32_t) data[2] << 16 |
                          (uint32_t) data[3] << 24,
        };
        piv_session_run(&transport);
        return 0;
}
