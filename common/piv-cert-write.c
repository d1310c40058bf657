/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PUT DATA of a certificate object: 5C tag, 53 { 70 cert, 71 CertInfo, FE }. */
#include <errno.h>
#include <stdlib.h>

#include "apdu.h"
#include "piv-internal.h"
#include "piv.h"
#include "tlv.h"

#define INS_PUT_DATA 0xDB
/* 5C 03 tag, 53 with a 3-byte length, 70 with one, 71 01 00, FE 00. */
#define OVERHEAD 32u

int piv_put_certificate(Token *t, unsigned slot, const uint8_t *der, size_t der_len) {
        uint32_t object = piv_slot_object(slot);
        uint8_t tag[3] = { object >> 16, object >> 8, object };
        _cleanup_free_ uint8_t *buf = NULL;
        size_t cap, n = 0;
        TlvWriter w;
        int r;

        if (object == 0 || (der && (der_len == 0 || der_len > TLV_MAX_LENGTH - OVERHEAD)))
                return -EINVAL;
        cap = (der ? der_len : 0) + OVERHEAD;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;

        tlv_writer_init(&w, buf, cap);
        (void) tlv_put(&w, 0x5C, tag, sizeof tag);
        if (der) {
                (void) tlv_open(&w, 0x53);
                (void) tlv_put(&w, 0x70, der, der_len);
                /* CertInfo 00: not compressed. */
                (void) tlv_put_u8(&w, 0x71, 0x00);
                (void) tlv_put(&w, 0xFE, NULL, 0);
                (void) tlv_close(&w);
        } else
                /* An empty object is how a YubiKey deletes one. */
                (void) tlv_put(&w, 0x53, NULL, 0);
        r = tlv_writer_finish(&w, &n);
        if (r < 0)
                return r;

        return apdu_call(
                t->transport,
                &(ApduCommand){ .ins = INS_PUT_DATA, .p1 = 0x3F, .p2 = 0xFF, .data = buf, .data_len = n },
                NULL, NULL);
}
