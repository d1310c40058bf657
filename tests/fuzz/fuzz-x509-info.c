/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: certificate ingestion, common/x509-info.h, as the
 * daemon takes certificates in from a card and from the portal.
 *
 * Input: one mode byte, then DER.
 *   mode bit 0 clear: the DER straight to x509_info_parse(), as the
 *     portal's certificates (CMP) and the journal's reach it;
 *   mode bit 0 set: the DER gzip-compressed here and stored in a PIV
 *     certificate object with CertInfo 01, which token_read_certificate()
 *     reads from a scripted card (GET RESPONSE chaining and all) and
 *     decompresses: it must hand back exactly the DER that went in. Bit 1
 *     adds 5000 zero bytes after the DER first, so that the decompressed
 *     object outgrows the driver's first buffer and the certificate has
 *     trailing bytes, which x509_info_parse() must refuse.
 * Whatever parses is checked against x509-info.h's promises (UTF-8 names,
 * hex digests, a serial, a portal identifier the portal accepts) and
 * turned into the portal's identifier as token-object.c does. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "piv.h"
#include "portal-status.h"
#include "tlv.h"
#include "token.h"
#include "x509-info.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                       \
        do {                                                                                           \
                if (!(x)) {                                                                            \
                        fprintf(stderr, "fuzz-x509-info: %s:%d: %s failed\n", __FILE__, __LINE__, #x); \
                        abort();                                                                       \
                }                                                                                      \
        } while (0)

#define TRAILING_ZEROS 5000u

static bool is_utf8(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                size_t n = *p < 0x80             ? 0
                           : (*p & 0xE0) == 0xC0 ? 1
                           : (*p & 0xF0) == 0xE0 ? 2
                           : (*p & 0xF8) == 0xF0 ? 3
                                                 : 4;

                if (n == 4 || (n == 1 && *p < 0xC2))
                        return false;
                p++;
                for (size_t i = 0; i < n; i++, p++)
                        if ((*p & 0xC0) != 0x80)
                                return false;
        }
        return true;
}

static bool is_lower_hex(const char *s, size_t n) {
        return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static void check_info(const X509Info *i) {
        _cleanup_free_ char *id = NULL;
        const char *serial;
        int r;

        CHECK(i->subject && is_utf8(i->subject));
        CHECK(i->issuer && is_utf8(i->issuer));
        CHECK(i->serial);
        serial = i->serial + (i->serial[0] == '-');
        CHECK(strlen(serial) > 0 && strlen(serial) % 2 == 0 && is_lower_hex(serial, strlen(serial)));
        CHECK(is_lower_hex(i->issuer_hash, 64) && is_lower_hex(i->fingerprint, 64));
        CHECK(i->key_type && i->signature_algorithm);
        CHECK(!i->curve || is_utf8(i->curve));
        CHECK(i->usage != 0 || i->has_key_usage);
        (void) x509_info_days_left(i, 0);
        (void) x509_info_days_left(i, i->not_after);
        (void) x509_usage_to_string(i->usage);

        r = portal_cert_id_from_info(i, &id);
        CHECK(r == 0);
        /* RFC 5280 serials (20 octets) make identifiers the portal takes. */
        CHECK(portal_cert_id_is_valid(id) == (strlen(strchr(id, ':') + 1 + (id[65] == '-')) <= 40));
}

static void ingest(const uint8_t *der, size_t len, bool trailing) {
        _cleanup_(x509_info_freep) X509Info *info = NULL;
        int r;

        r = x509_info_parse(der, len, &info);
        CHECK(r == 0 || r == -EBADMSG || r == -EINVAL);
        CHECK(!(trailing && r == 0));
        if (r == 0)
                check_info(info);
}

/* A card that answers SELECT and GET DATA of one object, 256 bytes at a
 * time. */
typedef struct Card {
        const uint8_t *object;
        size_t len, off;
} Card;

static int card_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                         size_t *ret_len) {
        Card *c = userdata;
        size_t n;

        if (cmd_len < 4 || resp_cap < 258)
                abort();
        if (cmd[1] == 0xA4) {
                resp[0] = 0x90;
                resp[1] = 0x00;
                *ret_len = 2;
                return 0;
        }
        if (cmd[1] == 0xCB)
                c->off = 0;
        else if (cmd[1] != 0xC0)
                abort();
        n = c->len - c->off > 256 ? 256 : c->len - c->off;
        memcpy(resp, c->object + c->off, n);
        c->off += n;
        resp[n] = c->off < c->len ? 0x61 : 0x90;
        resp[n + 1] = c->off < c->len ? (uint8_t) (c->len - c->off > 255 ? 0 : c->len - c->off) : 0x00;
        *ret_len = n + 2;
        return 0;
}

static size_t gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
        z_stream z = {};
        size_t n;

        if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                abort();
        z.next_in = (Bytef *) in;
        z.avail_in = (uInt) len;
        z.next_out = out;
        z.avail_out = (uInt) cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
                abort();
        n = z.total_out;
        (void) deflateEnd(&z);
        return n;
}

static void from_card(const uint8_t *der, size_t len, bool trailing) {
        size_t plain_len = len + (trailing ? TRAILING_ZEROS : 0), cap = compressBound(plain_len) + 64, n = 0;
        _cleanup_free_ uint8_t *plain = calloc(1, plain_len ? plain_len : 1), *gz = malloc(cap),
                               *object = malloc(cap + 16);
        _cleanup_(token_freep) Token *t = NULL;
        TokenCertificate cert = {};
        TlvWriter w;
        Card card;
        TokenTransport transport = { .transmit = card_transmit, .userdata = &card };
        int r;

        if (!plain || !gz || !object)
                abort();
        if (len > 0)
                memcpy(plain, der, len);
        tlv_writer_init(&w, object, cap + 16);
        (void) tlv_open(&w, 0x53);
        (void) tlv_put(&w, 0x70, gz, gzip(plain, plain_len, gz, cap));
        (void) tlv_put_u8(&w, 0x71, 0x01);
        (void) tlv_put(&w, 0xFE, NULL, 0);
        (void) tlv_close(&w);
        CHECK(tlv_writer_finish(&w, &n) == 0);
        card = (Card){ .object = object, .len = n };

        CHECK(token_open(&transport, &t) == 0);
        r = token_read_certificate(t, PIV_SLOT_AUTHENTICATION, &cert);
        /* Nothing compressed is no certificate. */
        if (plain_len == 0) {
                CHECK(r == -EBADMSG);
                return;
        }
        CHECK(r == 0 && cert.der_len == plain_len && memcmp(cert.der, plain, plain_len) == 0);
        ingest(cert.der, cert.der_len, trailing);
        token_certificate_done(&cert);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        if (data[0] & 1)
                from_card(data + 1, size - 1, data[0] & 2);
        else
                ingest(data + 1, size - 1, false);
        return 0;
}
