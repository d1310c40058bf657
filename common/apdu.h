/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* ISO/IEC 7816-4 short APDUs over a TokenTransport: command chaining for
 * data of more than 255 bytes, GET RESPONSE for 61xx, a re-send with the
 * card's Le for 6Cxx, and status words folded into negative errno.
 *
 * Status word → errno (apdu_sw_to_errno):
 *   9000         0
 *   63Cx         -EKEYREJECTED  wrong PIN / key; x tries left (apdu_sw_retries)
 *   6983         -ENOLCK        authentication method blocked (no tries left)
 *   6982         -EACCES        security status not satisfied (PIN or key needed)
 *   6985, 6986   -EPERM         conditions of use not satisfied / command not allowed
 *   6A82, 6A88   -ENOENT        file, application or referenced data not found
 *   6A80, 6A86,  -EINVAL        wrong data, P1-P2 or length
 *   6B00, 6700
 *   6A81, 6D00,  -EOPNOTSUPP    function, instruction or class not supported
 *   6E00
 *   6A84         -ENOSPC        not enough memory in the card
 *   6581, 6400,  -EIO           memory failure, execution error, no diagnosis
 *   6F00
 *   anything else -EPROTO
 *
 * Transport errors pass through unchanged. A response that is shorter than
 * two bytes, or a GET RESPONSE chain that grows past APDU_RESPONSE_MAX,
 * gives -EBADMSG. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "token-transport.h"

/* A certificate object of a PIV card is at most a few KiB; this leaves room
 * for cards with big objects and keeps a hostile card from eating memory. */
#define APDU_RESPONSE_MAX (64u * 1024u)

#define APDU_SW_OK 0x9000u

typedef struct ApduCommand {
        uint8_t cla, ins, p1, p2;
        const uint8_t *data; /* NULL when data_len is 0 */
        size_t data_len;     /* more than 255: sent in chained pieces */
        bool want_data;      /* send Le = 00 (up to 256 bytes) */
} ApduCommand;

typedef struct ApduResponse {
        uint8_t *data; /* malloc()ed, NULL when len is 0 */
        size_t len;
        uint16_t sw; /* of the last response of a chain */
} ApduResponse;

/* Sends c and collects the whole answer. Returns 0 when the exchange worked,
 * whatever the status word (look at ret->sw); a negative errno when the
 * transport failed or the card answered nonsense. *ret is written only on
 * success; free it with apdu_response_done(). An intermediate piece of a
 * chained command answered with anything but 9000 ends the exchange with
 * that status word. */
int apdu_exchange(TokenTransport *t, const ApduCommand *c, ApduResponse *ret);

/* As apdu_exchange(), but a status word other than 9000 is returned as its
 * errno and the data are dropped. ret_data and ret_len may be NULL when the
 * caller does not want the data. */
int apdu_call(TokenTransport *t, const ApduCommand *c, uint8_t **ret_data, size_t *ret_len);

void apdu_response_done(ApduResponse *r);

int apdu_sw_to_errno(uint16_t sw);

/* The tries left that 63Cx reports, or -1 for any other status word. */
int apdu_sw_retries(uint16_t sw);
