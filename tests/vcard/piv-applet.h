/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PIV card application (NIST SP 800-73-4 part 2) with the YubiKey
 * extensions clients probe for: one command APDU in, one response APDU out.
 * No sockets, no files: the caller moves bytes and saves the card when
 * card->dirty says it changed.
 *
 * Commands: SELECT, GET DATA, PUT DATA, VERIFY, CHANGE REFERENCE DATA,
 * RESET RETRY COUNTER, GENERAL AUTHENTICATE, GENERATE ASYMMETRIC KEY PAIR,
 * GET RESPONSE; Yubico's GET VERSION (FD), GET SERIAL (F8), GET METADATA
 * (F7), SET MANAGEMENT KEY (FF), SET PIN RETRIES (FA), RESET (FB), MOVE KEY
 * (F6, 5.7 and later). Command chaining (CLA 10) for any of them; answers
 * longer than Le (256 when absent) are served in pieces through 61xx and
 * GET RESPONSE. */

#include <stddef.h>
#include <stdint.h>

#include "piv-card.h"

/* A response APDU is at most 256 data bytes and SW1 SW2 for a short
 * command; an extended one may ask for all of a PIV_RESPONSE_MAX answer. */
#define PIV_APDU_RESPONSE_MAX (PIV_RESPONSE_MAX + 2)

/* Processes one command APDU. Returns 0 and writes the response (data and
 * status word) to resp; -ENOBUFS when cap cannot hold the status word. A
 * malformed APDU is answered with a status word, never an error. */
int piv_applet_process(PivCard *card, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap,
                       size_t *ret_len);

/* The ATR: offers T=0 and T=1, historical bytes "keyrenew". */
void piv_applet_atr(const uint8_t **ret_atr, size_t *ret_len);
