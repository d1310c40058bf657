/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A TokenTransport for unit tests: a script of the exact APDUs the code
 * under test must send, in order, each with the card's canned answer. A
 * command that differs from the script aborts the test, printing both. */

#include <stddef.h>
#include <stdint.h>

#include "token-transport.h"

typedef struct ScriptStep {
        uint8_t *cmd;
        size_t cmd_len;
        uint8_t *resp;
        size_t resp_len;
        int error; /* returned by transmit instead of resp */
} ScriptStep;

typedef struct ScriptedCard {
        TokenTransport transport;
        ScriptStep *steps;
        size_t n_steps, pos;
        int next_begin; /* what the next begin() returns (1: "the card was reset") */
        unsigned begins, ends;
} ScriptedCard;

void scripted_card_init(ScriptedCard *c);
/* Checks that the whole script was played and every transaction ended. */
void scripted_card_finish(ScriptedCard *c);

/* Hex with optional spaces; resp holds data and SW1 SW2. */
void script(ScriptedCard *c, const char *cmd_hex, const char *resp_hex);
void script_bytes(ScriptedCard *c, const uint8_t *cmd, size_t cmd_len, const uint8_t *resp, size_t resp_len);
void script_error(ScriptedCard *c, const char *cmd_hex, int error);

/* cmd answered with data of any length as a card does: 256 bytes at a time,
 * 61xx while more is waiting, fetched with GET RESPONSE; then sw. */
void script_long(ScriptedCard *c, const char *cmd_hex, const uint8_t *data, size_t len, uint16_t sw);

/* Reads a file of tests/data (the directory in $KEYRENEW_TEST_DATA). */
uint8_t *read_test_file(const char *name, size_t *ret_len);
