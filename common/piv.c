/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "piv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "hex.h"
#include "piv-internal.h"
#include "tlv.h"

#define INS_SELECT 0xA4
#define INS_GET_DATA 0xCB
#define INS_VERIFY 0x20
/* YubiKey extensions. */
#define INS_GET_METADATA 0xF7
#define INS_GET_SERIAL 0xF8
#define INS_GET_VERSION 0xFD

#define PIV_PIN_REFERENCE 0x80

/* The PIX without its version: SP 800-73-4 allows selecting by it. */
static const uint8_t piv_aid[] = { 0xA0, 0x00, 0x00, 0x03, 0x08 };

typedef struct PivData {
        char label[65];
} PivData;

uint32_t piv_slot_object(unsigned slot) {
        switch (slot) {
        case PIV_SLOT_AUTHENTICATION:
                return 0x5FC105;
        case PIV_SLOT_SIGNATURE:
                return 0x5FC10A;
        case PIV_SLOT_KEY_MANAGEMENT:
                return 0x5FC10B;
        case PIV_SLOT_CARD_AUTHENTICATION:
                return 0x5FC101;
        default:
                if (slot >= PIV_SLOT_RETIRED_FIRST && slot <= PIV_SLOT_RETIRED_LAST)
                        return 0x5FC10D + (slot - PIV_SLOT_RETIRED_FIRST);
                return 0;
        }
}

/* Text from the card goes on the bus, which takes only UTF-8: keep
 * printable ASCII, mark the rest. */
static void copy_text(char *out, size_t cap, const uint8_t *p, size_t n) {
        size_t i;

        for (i = 0; i < n && i + 1 < cap; i++)
                out[i] = p[i] >= 0x20 && p[i] < 0x7F ? (char) p[i] : '?';
        out[i] = 0;
}

/* The application property template: 61 { 4F AID, 79 {...}, 50 label, ... }. */
static int parse_apt(const uint8_t *buf, size_t len, PivData *d) {
        Tlv apt, t;
        TlvReader r;
        int k;

        if (tlv_parse_single(buf, len, &apt) < 0 || apt.tag != 0x61)
                return -EBADMSG;
        tlv_reader_enter(&apt, &r);
        while ((k = tlv_reader_next(&r, &t)) > 0)
                if (t.tag == 0x50)
                        copy_text(d->label, sizeof d->label, t.value, t.length);
        return k;
}

static int piv_select(Token *t) {
        _cleanup_free_ PivData *d = NULL;
        ApduCommand c = {
                .ins = INS_SELECT,
                .p1 = 0x04,
                .data = piv_aid,
                .data_len = sizeof piv_aid,
                .want_data = true,
        };
        ApduResponse resp;
        int r;

        r = apdu_exchange(t->transport, &c, &resp);
        if (r < 0)
                return r;
        if (resp.sw != APDU_SW_OK)
                r = -ENOENT;
        else {
                d = calloc(1, sizeof *d);
                if (!d)
                        r = -ENOMEM;
                /* Some cards answer the SELECT with no template at all. */
                else if (resp.len > 0)
                        r = parse_apt(resp.data, resp.len, d);
        }
        apdu_response_done(&resp);
        if (r < 0)
                return r;

        free(t->data);
        t->data = TAKE_PTR(d);
        return 0;
}

/* A YubiKey command that other cards refuse: 0 and exactly n bytes in out,
 * 1 when the card does not offer it (any status word but 9000, or a
 * length that is not the YubiKey's), a negative errno from the transport. */
static int vendor_query(Token *t, uint8_t ins, uint8_t *out, size_t n) {
        ApduCommand c = { .ins = ins, .want_data = true };
        ApduResponse resp;
        int r;

        r = apdu_exchange(t->transport, &c, &resp);
        if (r < 0)
                return r;
        if (resp.sw == APDU_SW_OK && resp.len == n) {
                memcpy(out, resp.data, n);
                r = 0;
        } else
                r = 1;
        apdu_response_done(&resp);
        return r;
}

/* Lower-case hex of exactly n bytes into out, which holds 2n + 1. */
static int field_hex(const Tlv *f, size_t n, char *out) {
        _cleanup_free_ char *hex = NULL;

        if (f->length != n)
                return -EBADMSG;
        hex = hex_encode(f->value, n);
        if (!hex)
                return -ENOMEM;
        memcpy(out, hex, 2 * n + 1);
        return 0;
}

/* CHUID: 53 { 30 FASC-N (25), ..., 34 GUID (16), ..., 3E signature, FE }. */
static int read_chuid(Token *t, TokenIdentity *id) {
        _cleanup_free_ uint8_t *buf = NULL;
        Tlv content, f;
        TlvReader r;
        int k;

        k = piv_get_object(t, PIV_OBJECT_CHUID, &buf, &content);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;

        tlv_reader_enter(&content, &r);
        while ((k = tlv_reader_next(&r, &f)) > 0) {
                int q = f.tag == 0x30   ? field_hex(&f, 25, id->fascn)
                        : f.tag == 0x34 ? field_hex(&f, 16, id->guid)
                                        : 0;

                if (q < 0)
                        return q;
        }
        return k;
}

static bool all_zero_hex(const char *s) {
        return s[strspn(s, "0")] == 0;
}

static int piv_identify(Token *t, TokenIdentity *ret) {
        const PivData *d = t->data;
        TokenIdentity id = {};
        uint8_t serial[4];
        int r, serial_r;

        memcpy(id.label, d->label, sizeof id.label);

        serial_r = vendor_query(t, INS_GET_SERIAL, serial, sizeof serial);
        if (serial_r < 0)
                return serial_r;
        r = vendor_query(t, INS_GET_VERSION, id.version, sizeof id.version);
        if (r < 0)
                return r;
        id.has_version = r == 0;
        r = read_chuid(t, &id);
        if (r < 0)
                return r;

        if (serial_r == 0) {
                id.serial_source = TOKEN_SERIAL_VENDOR;
                (void) snprintf(id.serial, sizeof id.serial, "%" PRIu32,
                                (uint32_t) serial[0] << 24 | (uint32_t) serial[1] << 16 |
                                        (uint32_t) serial[2] << 8 | serial[3]);
        } else if (id.guid[0] && !all_zero_hex(id.guid)) {
                /* A GUID of zeros is the "no GUID" SP 800-73-4 allows. */
                id.serial_source = TOKEN_SERIAL_GUID;
                memcpy(id.serial, id.guid, sizeof id.guid);
        } else if (id.fascn[0]) {
                id.serial_source = TOKEN_SERIAL_FASCN;
                memcpy(id.serial, id.fascn, sizeof id.fascn);
        }

        *ret = id;
        return 0;
}

/* VERIFY without data asks for the PIN's state and costs no try. */
static int piv_pin_status(Token *t, TokenPinStatus *ret) {
        ApduCommand c = { .ins = INS_VERIFY, .p2 = PIV_PIN_REFERENCE };
        ApduResponse resp;
        uint16_t sw;
        int r;

        r = apdu_exchange(t->transport, &c, &resp);
        if (r < 0)
                return r;
        sw = resp.sw;
        apdu_response_done(&resp);

        if (sw == APDU_SW_OK)
                *ret = (TokenPinStatus){ .verified = true, .retries = -1 };
        else if (apdu_sw_retries(sw) >= 0)
                *ret = (TokenPinStatus){ .retries = apdu_sw_retries(sw) };
        else if (sw == 0x6983)
                *ret = (TokenPinStatus){ .retries = 0 };
        else
                return apdu_sw_to_errno(sw);
        return 0;
}

static const char *algorithm_name(uint8_t id) {
        static const struct {
                uint8_t id;
                const char *name;
        } table[] = {
                { 0x06, "rsa1024" }, { 0x07, "rsa2048" }, { 0x05, "rsa3072" }, { 0x16, "rsa4096" },
                { 0x11, "ec-p256" }, { 0x14, "ec-p384" }, { 0xE0, "ed25519" }, { 0xE1, "x25519" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].id == id)
                        return table[i].name;
        return "unknown";
}

/* GET METADATA: 01 algorithm, 02 PIN and touch policy, 03 origin, 04 public key. */
static int parse_metadata(const uint8_t *buf, size_t len, TokenKeyMetadata *ret) {
        TokenKeyMetadata m = {};
        bool have_algorithm = false;
        TlvReader r;
        Tlv f;
        int k;

        tlv_reader_init(&r, buf, len);
        while ((k = tlv_reader_next(&r, &f)) > 0)
                switch (f.tag) {
                case 0x01:
                        if (f.length != 1)
                                return -EBADMSG;
                        m.algorithm_id = f.value[0];
                        have_algorithm = true;
                        break;
                case 0x02:
                        if (f.length != 2 || f.value[0] > TOKEN_PIN_POLICY_MATCH_ALWAYS ||
                            f.value[1] > TOKEN_TOUCH_POLICY_CACHED)
                                return -EBADMSG;
                        m.pin_policy = f.value[0];
                        m.touch_policy = f.value[1];
                        break;
                case 0x03:
                        if (f.length != 1 || f.value[0] > TOKEN_KEY_ORIGIN_IMPORTED)
                                return -EBADMSG;
                        m.origin = f.value[0];
                        break;
                }
        if (k < 0 || !have_algorithm)
                return -EBADMSG;

        m.algorithm = algorithm_name(m.algorithm_id);
        *ret = m;
        return 0;
}

static int piv_key_metadata(Token *t, unsigned slot, TokenKeyMetadata *ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        if (piv_slot_object(slot) == 0)
                return -EINVAL;

        r = apdu_call(t->transport,
                      &(ApduCommand){ .ins = INS_GET_METADATA, .p2 = (uint8_t) slot, .want_data = true },
                      &buf, &len);
        /* Cards without the command say so in several ways. */
        if (r == -EINVAL || r == -EPROTO)
                r = -EOPNOTSUPP;
        if (r < 0)
                return r;
        return parse_metadata(buf, len, ret);
}

int piv_get_object(Token *t, uint32_t object, uint8_t **ret_buf, Tlv *ret_content) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t tag[3] = { object >> 16, object >> 8, object };
        uint8_t query[5];
        TlvWriter w;
        size_t n, len = 0;
        Tlv content;
        int r;

        tlv_writer_init(&w, query, sizeof query);
        (void) tlv_put(&w, 0x5C, tag, sizeof tag);
        r = tlv_writer_finish(&w, &n);
        if (r < 0)
                return r;

        r = apdu_call(t->transport,
                      &(ApduCommand){ .ins = INS_GET_DATA,
                                      .p1 = 0x3F,
                                      .p2 = 0xFF,
                                      .data = query,
                                      .data_len = n,
                                      .want_data = true },
                      &buf, &len);
        if (r < 0)
                return r;
        /* Some cards answer for an object they do not have with nothing. */
        if (len == 0)
                return -ENOENT;
        if (tlv_parse_single(buf, len, &content) < 0 || content.tag != 0x53)
                return -EBADMSG;

        *ret_content = content;
        *ret_buf = TAKE_PTR(buf);
        return 0;
}

const TokenDriver piv_driver = {
        .name = "piv",
        .select = piv_select,
        .free_data = free,
        .identify = piv_identify,
        .list_certificates = piv_list_certificates,
        .read_certificate = piv_read_certificate,
        .pin_status = piv_pin_status,
        .key_metadata = piv_key_metadata,
        .verify_pin = piv_verify_pin,
        .authenticate_mgm = piv_authenticate_mgm,
        .mgm_info = piv_mgm_info,
        .get_protected_mgm_key = piv_get_protected_mgm_key,
        .generate_key = piv_generate_key,
        .sign = piv_sign,
        .put_certificate = piv_put_certificate,
        .move_key = piv_move_key,
};
