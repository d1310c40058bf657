/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "card-objects.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "macro.h"
#include "tlv.h"

#define ADMIN_FLAG_MGM_PROTECTED 0x02

static int put_written(PivCard *c, uint32_t tag, TlvWriter *w) {
        size_t len;
        int r = tlv_writer_finish(w, &len);

        if (r < 0)
                return r;
        return piv_card_set_object(c, tag, w->buf, len);
}

int card_objects_put_chuid(PivCard *c) {
        /* The FASC-N of a card "issued by no agency", as YubiKeys ship it. */
        static const uint8_t fascn[25] = { 0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE,
                                           0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10,
                                           0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB };
        uint8_t guid[16], buf[128];
        TlvWriter w;

        if (RAND_bytes(guid, sizeof guid) != 1)
                return -EIO;
        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, 0x53);
        tlv_put(&w, 0x30, fascn, sizeof fascn);
        tlv_put(&w, 0x34, guid, sizeof guid);
        tlv_put(&w, 0x35, "20300101", 8);
        tlv_put(&w, 0x3E, NULL, 0);
        tlv_put(&w, 0xFE, NULL, 0);
        tlv_close(&w);
        return put_written(c, PIV_OBJ_CHUID, &w);
}

int card_objects_put_ccc(PivCard *c) {
        /* card identifier: GSC-RID A0 00 00 01 16, manufacturer FF, type 02 (Java), then 14 random bytes */
        uint8_t id[21] = { 0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02 };
        static const uint32_t empty[] = { 0xF3, 0xF6, 0xF7, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE };
        uint8_t buf[128];
        TlvWriter w;

        if (RAND_bytes(id + 7, sizeof id - 7) != 1)
                return -EIO;
        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, 0x53);
        tlv_put(&w, 0xF0, id, sizeof id);
        tlv_put_u8(&w, 0xF1, 0x21); /* container version */
        tlv_put_u8(&w, 0xF2, 0x21); /* grammar version */
        tlv_put_u8(&w, 0xF4, 0x00); /* PKCS#15 */
        tlv_put_u8(&w, 0xF5, 0x10); /* data model */
        for (size_t i = 0; i < ELEMENTSOF(empty); i++)
                tlv_put(&w, empty[i], NULL, 0);
        tlv_close(&w);
        return put_written(c, PIV_OBJ_CCC, &w);
}

int card_objects_put_discovery(PivCard *c) {
        static const uint8_t aid[] = { 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00 };
        static const uint8_t pin_policy[] = { 0x40, 0x00 };
        uint8_t buf[64];
        TlvWriter w;

        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, PIV_OBJ_DISCOVERY);
        tlv_put(&w, 0x4F, aid, sizeof aid);
        tlv_put(&w, 0x5F2F, pin_policy, sizeof pin_policy);
        tlv_close(&w);
        return put_written(c, PIV_OBJ_DISCOVERY, &w);
}

int card_objects_put_key_history(PivCard *c) {
        uint8_t buf[32];
        TlvWriter w;

        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, 0x53);
        tlv_put_u8(&w, 0xC1, 0); /* keys with on-card certificates */
        tlv_put_u8(&w, 0xC2, 0); /* keys with off-card certificates */
        tlv_put(&w, 0xFE, NULL, 0);
        tlv_close(&w);
        return put_written(c, PIV_OBJ_KEY_HISTORY, &w);
}

int card_objects_put_protected_mgm(PivCard *c) {
        uint8_t buf[64];
        TlvWriter w;
        int r;

        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, 0x53);
        tlv_open(&w, 0x88);
        tlv_put(&w, 0x89, c->mgm_key, c->mgm_key_len);
        tlv_close(&w);
        tlv_close(&w);
        r = put_written(c, PIV_OBJ_PRINTED, &w);
        OPENSSL_cleanse(buf, sizeof buf);
        if (r < 0)
                return r;

        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, 0x53);
        tlv_open(&w, 0x80);
        tlv_put_u8(&w, 0x81, ADMIN_FLAG_MGM_PROTECTED);
        tlv_close(&w);
        tlv_close(&w);
        return put_written(c, PIV_OBJ_ADMIN_DATA, &w);
}

int card_objects_put_certificate(PivCard *c, uint8_t slot, X509 *cert) {
        uint32_t tag = piv_slot_cert_tag(slot);
        unsigned char *der = NULL;
        uint8_t buf[PIV_OBJECT_MAX];
        int len, r;
        TlvWriter w;

        if (tag == 0)
                return -EINVAL;
        len = i2d_X509(cert, &der);
        if (len <= 0)
                return -EIO;
        tlv_writer_init(&w, buf, sizeof buf);
        tlv_open(&w, 0x53);
        tlv_put(&w, 0x70, der, (size_t) len);
        tlv_put_u8(&w, 0x71, 0x00); /* not compressed */
        tlv_put(&w, 0xFE, NULL, 0);
        tlv_close(&w);
        OPENSSL_free(der);
        r = put_written(c, tag, &w);
        return r == -ENOBUFS ? -E2BIG : r;
}

int card_objects_get_certificate(const PivCard *c, uint8_t slot, X509 **ret) {
        const PivObject *o = piv_card_object(c, piv_slot_cert_tag(slot));
        const unsigned char *p;
        Tlv outer, cert;
        X509 *x;

        if (!o)
                return 0;
        if (tlv_parse_single(o->data, o->len, &outer) < 0 ||
            tlv_find(outer.value, outer.length, 0x70, &cert) < 0)
                return -EBADMSG;
        p = cert.value;
        x = d2i_X509(NULL, &p, (long) cert.length);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 1;
}

bool card_objects_mgm_protected(const PivCard *c) {
        const PivObject *o = piv_card_object(c, PIV_OBJ_ADMIN_DATA);
        Tlv outer, admin, flags;

        return o && tlv_parse_single(o->data, o->len, &outer) == 0 &&
               tlv_find(outer.value, outer.length, 0x80, &admin) == 0 &&
               tlv_find(admin.value, admin.length, 0x81, &flags) == 0 && flags.length == 1 &&
               (flags.value[0] & ADMIN_FLAG_MGM_PROTECTED);
}
