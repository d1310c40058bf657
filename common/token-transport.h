/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* How a token driver reaches its card: raw command APDUs in, raw response
 * APDUs (data plus SW1 SW2) out. The daemon plugs in PC/SC
 * (pcsc-transport.h); unit tests plug in a scripted card; the virtual card
 * can plug in its applet directly. */

#include <stddef.h>
#include <stdint.h>

typedef struct TokenTransport {
        /* Sends cmd and writes the response, status word included, to resp
         * (resp_cap bytes; 258 always suffices for a short APDU). Returns 0
         * and *ret_len, or a negative errno: -ENOMEDIUM card gone,
         * -ECONNRESET card reset by someone else, -EIO and others as the
         * transport documents. */
        int (*transmit)(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                        size_t *ret_len);

        /* Optional (NULL: nothing to do). begin() gives this caller the card
         * exclusively until end(); it returns 0, 1 when the card was reset
         * since the last transaction (every selected application and
         * verified PIN is gone: the driver selects again), or a negative
         * errno. end() is called only after a successful begin(). */
        int (*begin)(void *userdata);
        void (*end)(void *userdata);

        void *userdata;
} TokenTransport;
