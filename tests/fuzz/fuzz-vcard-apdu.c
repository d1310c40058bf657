/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: a card session fed to piv_applet_process().
 *
 * Input: one flags byte, then messages framed as vpcd frames them (2-byte
 * big-endian length, payload): a 1-byte payload is a control code (power
 * off/on/reset, ATR), anything longer a command APDU. Flags: bit 0 selects
 * PIV first, bit 1 starts with the management key authenticated, bit 2
 * with the PIN verified, so that the fuzzer reaches the commands that need
 * them without breaking 3DES.
 *
 * The card starts with an EC P-256 key in 9A and 9C, a P-384 key in 9D and
 * an RSA-2048 key in 9E, made once. GENERATE for RSA is skipped: one RSA
 * key generation costs more than thousands of other inputs. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "piv-applet.h"
#include "piv-crypto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
        uint8_t slot, alg;
} base_keys[] = {
        { 0x9A, PIV_ALG_ECCP256 },
        { 0x9C, PIV_ALG_ECCP256 },
        { 0x9D, PIV_ALG_ECCP384 },
        { 0x9E, PIV_ALG_RSA2048 },
};
static EVP_PKEY *base_pkeys[4];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        for (size_t i = 0; i < sizeof base_keys / sizeof base_keys[0]; i++)
                if (piv_key_generate(base_keys[i].alg, &base_pkeys[i]) < 0)
                        abort();
        return 0;
}

static PivCard *new_card(void) {
        PivCard *c = piv_card_new();

        if (!c)
                abort();
        for (size_t i = 0; i < sizeof base_keys / sizeof base_keys[0]; i++) {
                if (!EVP_PKEY_up_ref(base_pkeys[i]) ||
                    piv_card_set_key(c, base_keys[i].slot, base_keys[i].alg, 0, 0, PIV_ORIGIN_GENERATED,
                                     base_pkeys[i]) < 0)
                        abort();
        }
        return c;
}

static void set_flags(PivCard *c, uint8_t flags) {
        c->session.selected = flags & 1;
        c->session.mgm_authenticated = flags & 2;
        c->session.pin_verified = c->session.pin_fresh = flags & 4;
}

static int is_rsa_generate(const uint8_t *apdu, size_t len) {
        if (len < 5 || apdu[1] != 0x47)
                return 0;
        for (size_t i = 5; i < len; i++)
                if (apdu[i] == PIV_ALG_RSA1024 || apdu[i] == PIV_ALG_RSA2048)
                        return 1;
        return 0;
}

static void message(PivCard *c, uint8_t flags, const uint8_t *msg, size_t len) {
        uint8_t resp[PIV_APDU_RESPONSE_MAX];
        const uint8_t *atr;
        size_t resp_len = 0;

        if (len == 1) {
                if (msg[0] == 4)
                        piv_applet_atr(&atr, &resp_len);
                else {
                        piv_card_session_reset(c);
                        set_flags(c, flags);
                }
                return;
        }
        if (is_rsa_generate(msg, len))
                return;
        if (piv_applet_process(c, msg, len, resp, sizeof resp, &resp_len) < 0 || resp_len < 2 ||
            resp_len > sizeof resp)
                abort();
        /* a short command never gets more than 256 bytes back */
        if (len >= 5 && !(msg[4] == 0 && len >= 7) && resp_len > 258)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        PivCard *c;
        uint8_t flags;

        if (size < 1)
                return 0;
        c = new_card();
        flags = data[0];
        set_flags(c, flags);
        data++;
        size--;
        while (size >= 2) {
                size_t len = (size_t) data[0] << 8 | data[1];
                if (len == 0 || len > size - 2)
                        break;
                message(c, flags, data + 2, len);
                data += 2 + len;
                size -= 2 + len;
        }
        piv_card_free(c);
        return 0;
}
