/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "scripted-card.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assert.h"
#include "hex.h"
#include "macro.h"

static void dump(const char *what, const uint8_t *p, size_t n) {
        fprintf(stderr, "%s:", what);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %02X", p[i]);
        fprintf(stderr, "\n");
}

static int card_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                         size_t *ret_len) {
        ScriptedCard *c = userdata;
        const ScriptStep *s;

        ASSERT_TRUE(c->begins > c->ends); /* every APDU inside a transaction */
        if (c->pos >= c->n_steps) {
                dump("unexpected command after the script's end", cmd, cmd_len);
                abort();
        }
        s = &c->steps[c->pos++];
        if (cmd_len != s->cmd_len || memcmp(cmd, s->cmd, cmd_len) != 0) {
                fprintf(stderr, "step %zu:\n", c->pos - 1);
                dump("  expected", s->cmd, s->cmd_len);
                dump("  got     ", cmd, cmd_len);
                abort();
        }
        if (s->error)
                return s->error;
        ASSERT_TRUE(s->resp_len <= resp_cap);
        memcpy(resp, s->resp, s->resp_len);
        *ret_len = s->resp_len;
        return 0;
}

static int card_begin(void *userdata) {
        ScriptedCard *c = userdata;
        int r = c->next_begin;

        ASSERT_EQ(c->begins, c->ends); /* no nesting */
        c->next_begin = 0;
        if (r >= 0)
                c->begins++;
        return r;
}

static void card_end(void *userdata) {
        ScriptedCard *c = userdata;

        c->ends++;
        ASSERT_EQ(c->begins, c->ends);
}

void scripted_card_init(ScriptedCard *c) {
        *c = (ScriptedCard) {
                .transport = {
                        .transmit = card_transmit,
                        .begin = card_begin,
                        .end = card_end,
                        .userdata = c,
                },
        };
}

void scripted_card_finish(ScriptedCard *c) {
        if (c->pos != c->n_steps) {
                fprintf(stderr, "script stopped at step %zu of %zu\n", c->pos, c->n_steps);
                dump("  next expected", c->steps[c->pos].cmd, c->steps[c->pos].cmd_len);
                abort();
        }
        ASSERT_EQ(c->begins, c->ends);
        for (size_t i = 0; i < c->n_steps; i++) {
                free(c->steps[i].cmd);
                free(c->steps[i].resp);
        }
        free(c->steps);
        scripted_card_init(c);
}

static ScriptStep *add_step(ScriptedCard *c, const uint8_t *cmd, size_t cmd_len) {
        ScriptStep *s;

        c->steps = realloc(c->steps, (c->n_steps + 1) * sizeof *c->steps);
        ASSERT_TRUE(c->steps);
        s = &c->steps[c->n_steps++];
        *s = (ScriptStep){ .cmd = malloc(cmd_len), .cmd_len = cmd_len };
        ASSERT_TRUE(s->cmd);
        memcpy(s->cmd, cmd, cmd_len);
        return s;
}

void script_bytes(ScriptedCard *c, const uint8_t *cmd, size_t cmd_len, const uint8_t *resp,
                  size_t resp_len) {
        ScriptStep *s = add_step(c, cmd, cmd_len);

        s->resp = malloc(resp_len ? resp_len : 1);
        ASSERT_TRUE(s->resp);
        if (resp_len)
                memcpy(s->resp, resp, resp_len);
        s->resp_len = resp_len;
}

void script(ScriptedCard *c, const char *cmd_hex, const char *resp_hex) {
        _cleanup_free_ uint8_t *cmd = NULL, *resp = NULL;
        size_t cmd_len, resp_len;

        ASSERT_EQ(hex_decode(cmd_hex, &cmd, &cmd_len), 0);
        ASSERT_EQ(hex_decode(resp_hex, &resp, &resp_len), 0);
        script_bytes(c, cmd, cmd_len, resp, resp_len);
}

void script_error(ScriptedCard *c, const char *cmd_hex, int error) {
        _cleanup_free_ uint8_t *cmd = NULL;
        size_t cmd_len;

        ASSERT_EQ(hex_decode(cmd_hex, &cmd, &cmd_len), 0);
        add_step(c, cmd, cmd_len)->error = error;
}

void script_long(ScriptedCard *c, const char *cmd_hex, const uint8_t *data, size_t len, uint16_t sw) {
        _cleanup_free_ uint8_t *cmd = NULL;
        uint8_t resp[258], get_response[] = { 0x00, 0xC0, 0x00, 0x00, 0x00 };
        size_t cmd_len, off = 0;

        ASSERT_EQ(hex_decode(cmd_hex, &cmd, &cmd_len), 0);
        for (;;) {
                size_t n = len - off > 256 ? 256 : len - off, rest = len - off - n;

                memcpy(resp, data + off, n);
                if (rest > 0) {
                        resp[n] = 0x61;
                        resp[n + 1] = rest >= 256 ? 0x00 : (uint8_t) rest;
                } else {
                        resp[n] = (uint8_t) (sw >> 8);
                        resp[n + 1] = (uint8_t) sw;
                }
                if (off == 0)
                        script_bytes(c, cmd, cmd_len, resp, n + 2);
                else
                        script_bytes(c, get_response, sizeof get_response, resp, n + 2);
                off += n;
                if (rest == 0)
                        break;
                get_response[4] = resp[n + 1];
        }
}

uint8_t *read_test_file(const char *name, size_t *ret_len) {
        const char *dir = getenv("KEYRENEW_TEST_DATA");
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *path = NULL;
        uint8_t *buf;
        long len;

        ASSERT_TRUE(dir);
        ASSERT_TRUE(asprintf(&path, "%s/%s", dir, name) > 0);
        f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "%s: %m\n", path);
                abort();
        }
        ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
        len = ftell(f);
        ASSERT_TRUE(len > 0);
        rewind(f);
        buf = malloc((size_t) len);
        ASSERT_TRUE(buf);
        ASSERT_EQ(fread(buf, 1, (size_t) len, f), (size_t) len);
        *ret_len = (size_t) len;
        return buf;
}
