/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Certificate objects: 53 { 70 certificate, 71 CertInfo, FE error detection }. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "piv-internal.h"
#include "piv.h"

/* Bigger than any certificate a PIV object can hold, even compressed. */
#define CERT_MAX (64u * 1024u)

/* CertInfo bit 0 (SP 800-73-4 part 1, table 10): 1 = gzip. */
#define CERTINFO_GZIP 0x01u

static const uint8_t cert_slots[] = {
        PIV_SLOT_AUTHENTICATION,
        PIV_SLOT_SIGNATURE,
        PIV_SLOT_KEY_MANAGEMENT,
        PIV_SLOT_CARD_AUTHENTICATION,
        0x82,
        0x83,
        0x84,
        0x85,
        0x86,
        0x87,
        0x88,
        0x89,
        0x8A,
        0x8B,
        0x8C,
        0x8D,
        0x8E,
        0x8F,
        0x90,
        0x91,
        0x92,
        0x93,
        0x94,
        0x95,
};

static int inflate_step(z_stream *z, uint8_t **out, size_t *cap) {
        int zr;

        if (z->avail_out == 0) {
                size_t n = *cap ? *cap * 2 : 4096;
                uint8_t *p;

                if (*cap >= CERT_MAX)
                        return -EBADMSG;
                if (n > CERT_MAX)
                        n = CERT_MAX;
                p = realloc(*out, n);
                if (!p)
                        return -ENOMEM;
                z->next_out = p + z->total_out;
                z->avail_out = (uInt) (n - z->total_out);
                *out = p;
                *cap = n;
        }
        zr = inflate(z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
                return 1;
        if (zr == Z_MEM_ERROR)
                return -ENOMEM;
        /* Z_BUF_ERROR with input left means "more room"; without, the
         * stream was cut short. */
        if (zr == Z_OK || (zr == Z_BUF_ERROR && z->avail_in > 0 && z->avail_out == 0))
                return 0;
        return -EBADMSG;
}

/* One gzip member and nothing after it. */
static int gunzip(const uint8_t *in, size_t n, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *out = NULL;
        z_stream z = {
                .next_in = (Bytef *) in,
                .avail_in = (uInt) n,
        };
        size_t cap = 0;
        int r;

        if (n > CERT_MAX)
                return -EBADMSG;
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        while ((r = inflate_step(&z, &out, &cap)) == 0)
                ;
        if (r > 0 && z.avail_in != 0)
                r = -EBADMSG;
        if (r > 0 && z.total_out == 0)
                r = -EBADMSG;
        (void) inflateEnd(&z);
        if (r < 0)
                return r;

        *ret_len = z.total_out;
        *ret = TAKE_PTR(out);
        return 0;
}

typedef struct CertObject {
        Tlv cert;
        bool have_cert;
        uint8_t certinfo;
} CertObject;

static int parse_cert_object(const Tlv *content, CertObject *ret) {
        CertObject o = {};
        bool have_info = false;
        TlvReader r;
        Tlv f;
        int k;

        tlv_reader_enter(content, &r);
        while ((k = tlv_reader_next(&r, &f)) > 0)
                if (f.tag == 0x70) {
                        if (o.have_cert)
                                return -EBADMSG;
                        o.cert = f;
                        o.have_cert = true;
                } else if (f.tag == 0x71) {
                        if (have_info || f.length > 1)
                                return -EBADMSG;
                        o.certinfo = f.length > 0 ? f.value[0] : 0;
                        have_info = true;
                }
        if (k < 0)
                return k;

        *ret = o;
        return 0;
}

/* An object without a certificate, or with an empty one, is how some cards
 * (and tools that "delete" a certificate) leave an unused slot. */
static int decode_cert(const CertObject *o, uint8_t **ret, size_t *ret_len) {
        uint8_t *der;

        if (!o->have_cert || o->cert.length == 0)
                return -ENOENT;
        if (o->certinfo & CERTINFO_GZIP)
                return gunzip(o->cert.value, o->cert.length, ret, ret_len);

        der = malloc(o->cert.length);
        if (!der)
                return -ENOMEM;
        memcpy(der, o->cert.value, o->cert.length);
        *ret = der;
        *ret_len = o->cert.length;
        return 0;
}

int piv_read_certificate(Token *t, unsigned slot, TokenCertificate *ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint32_t object = piv_slot_object(slot);
        TokenCertificate c = { .slot = slot };
        CertObject o;
        Tlv content;
        int r;

        if (object == 0)
                return -EINVAL;

        r = piv_get_object(t, object, &buf, &content);
        if (r < 0)
                return r;
        r = parse_cert_object(&content, &o);
        if (r < 0)
                return r;
        r = decode_cert(&o, &c.der, &c.der_len);
        if (r < 0)
                return r;

        (void) snprintf(c.slot_name, sizeof c.slot_name, "%02x", slot);
        *ret = c;
        return 0;
}

int piv_list_certificates(Token *t, TokenCertificate **ret, size_t *ret_n) {
        TokenCertificate *list;
        size_t n = 0;
        int r = 0;

        list = calloc(ELEMENTSOF(cert_slots), sizeof *list);
        if (!list)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(cert_slots) && r >= 0; i++) {
                r = piv_read_certificate(t, cert_slots[i], &list[n]);
                if (r >= 0)
                        n++;
                else if (r == -ENOENT)
                        r = 0;
        }
        if (r < 0 || n == 0) {
                token_certificates_free(list, n);
                list = NULL;
        }
        if (r < 0)
                return r;

        *ret = list;
        *ret_n = n;
        return 0;
}
