/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "piv-applet.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "macro.h"
#include "piv-crypto.h"
#include "tlv.h"

#define SW_OK 0x9000
#define SW_WRONG_LENGTH 0x6700
#define SW_SECURITY_STATUS 0x6982
#define SW_AUTH_BLOCKED 0x6983
#define SW_CONDITIONS 0x6985
#define SW_WRONG_DATA 0x6A80
#define SW_NOT_FOUND 0x6A82
#define SW_NO_SPACE 0x6A84
#define SW_WRONG_P1P2 0x6A86
#define SW_REF_NOT_FOUND 0x6A88
#define SW_WRONG_SLOT 0x6B00
#define SW_INS_NOT_SUPPORTED 0x6D00
#define SW_CLA_NOT_SUPPORTED 0x6E00
#define SW_NO_DIAGNOSIS 0x6F00

static const uint8_t piv_aid[] = { 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00 };
#define PIV_RID_LEN 5

/* TS, T0 (TD1, 8 historical bytes), TD1 (TD2, T=0), TD2 (T=1), "keyrenew",
 * TCK. No "Yubikey" in the historical bytes: OpenSC would switch on its
 * YubiKey quirks. */
static const uint8_t atr[] = { 0x3B, 0x88, 0x80, 0x01, 'k', 'e', 'y', 'r', 'e', 'n', 'e', 'w', 0x15 };

typedef struct Apdu {
        uint8_t cla, ins, p1, p2;
        const uint8_t *data;
        size_t lc;
        size_t ne; /* 0 when the command has no Le */
} Apdu;

/* Where a command writes its answer: the session's pending buffer. */
typedef struct Answer {
        uint8_t *buf;
        size_t len;
} Answer;

void piv_applet_atr(const uint8_t **ret_atr, size_t *ret_len) {
        *ret_atr = atr;
        *ret_len = sizeof atr;
}

/* ISO 7816-4 5.1: cases 1 to 4, short and extended. */
static int parse_apdu(const uint8_t *p, size_t n, Apdu *ret) {
        /* data never NULL, even when empty: TLV readers and memcpy() get it as is */
        Apdu a = { .cla = p[0], .ins = p[1], .p1 = p[2], .p2 = p[3], .data = p + n };
        size_t lc;

        if (n == 4)
                goto done;
        if (n == 5) {
                a.ne = p[4] ? p[4] : 256;
                goto done;
        }
        if (p[4] != 0) {
                lc = p[4];
                if (n != 5 + lc && n != 6 + lc)
                        return -EBADMSG;
                a.data = p + 5;
                a.lc = lc;
                if (n == 6 + lc)
                        a.ne = p[5 + lc] ? p[5 + lc] : 256;
                goto done;
        }
        if (n < 7)
                return -EBADMSG;
        lc = (size_t) p[5] << 8 | p[6];
        if (n == 7) {
                a.ne = lc ? lc : 65536;
                goto done;
        }
        if (lc == 0 || (n != 7 + lc && n != 9 + lc))
                return -EBADMSG;
        a.data = p + 7;
        a.lc = lc;
        if (n == 9 + lc) {
                size_t le = (size_t) p[7 + lc] << 8 | p[8 + lc];
                a.ne = le ? le : 65536;
        }
done:
        *ret = a;
        return 0;
}

static uint16_t put_raw(Answer *out, const void *data, size_t len) {
        if (len > PIV_RESPONSE_MAX)
                return SW_NO_DIAGNOSIS;
        memcpy(out->buf, data, len);
        out->len = len;
        return SW_OK;
}

static uint16_t finish_tlv(TlvWriter *w, Answer *out) {
        size_t len;

        if (tlv_writer_finish(w, &len) < 0)
                return SW_NO_DIAGNOSIS;
        out->len = len;
        return SW_OK;
}

/* Reads a 5C tag list of one tag (GET DATA, PUT DATA). */
static int read_object_tag(TlvReader *r, uint32_t *ret_tag) {
        uint32_t tag = 0;
        Tlv t;

        if (tlv_reader_next(r, &t) <= 0 || t.tag != 0x5C || t.length < 1 || t.length > 3)
                return -EBADMSG;
        for (size_t i = 0; i < t.length; i++)
                tag = tag << 8 | t.value[i];
        *ret_tag = tag;
        return 0;
}

static uint16_t retries_sw(uint8_t left) {
        return left == 0 ? SW_AUTH_BLOCKED : (uint16_t) (0x63C0 | (left > 15 ? 15 : left));
}

/* Checks a PIN or PUK against its counter: 1 when it matched (counter
 * back to its maximum), otherwise the status word to answer. */
static int check_reference(PivCard *c, const uint8_t *given, const uint8_t *stored, uint8_t *left,
                           uint8_t max, uint16_t *ret_sw) {
        if (*left == 0) {
                *ret_sw = SW_AUTH_BLOCKED;
                return 0;
        }
        if (CRYPTO_memcmp(given, stored, PIV_PIN_SIZE) != 0) {
                (*left)--;
                c->dirty = true;
                *ret_sw = retries_sw(*left);
                return 0;
        }
        if (*left != max) {
                *left = max;
                c->dirty = true;
        }
        return 1;
}

/* A YubiKey's management application: selecting it leaves PIV, and PIV's
 * security state with it. yubico-piv-tool does that to learn the PIN
 * retries of a card whose PIN is verified. Nothing else of it is here. */
static const uint8_t yubico_mgmt_aid[] = { 0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17 };

static uint16_t select_other(PivCard *c, const Apdu *a) {
        PivSession *s = &c->session;

        if (a->lc != sizeof yubico_mgmt_aid || memcmp(a->data, yubico_mgmt_aid, a->lc) != 0)
                return SW_NOT_FOUND;
        s->selected = s->pin_verified = s->pin_fresh = s->mgm_authenticated = false;
        return SW_OK;
}

static uint16_t cmd_select(PivCard *c, const Apdu *a, Answer *out) {
        static const uint8_t pix[] = { 0x00, 0x00, 0x10, 0x00, 0x01, 0x00 };
        static const uint8_t algs[] = { PIV_ALG_3DES,    PIV_ALG_AES128,  PIV_ALG_AES192,  PIV_ALG_AES256,
                                        PIV_ALG_RSA1024, PIV_ALG_RSA2048, PIV_ALG_ECCP256, PIV_ALG_ECCP384 };
        TlvWriter w;

        /* Any other application, file or AID is not here, and whatever was
         * selected stays selected (yubico-piv-tool relies on that). */
        if (a->p1 != 0x04)
                return SW_NOT_FOUND;
        if (a->lc < PIV_RID_LEN || a->lc > sizeof piv_aid || memcmp(a->data, piv_aid, a->lc) != 0)
                return select_other(c, a);
        c->session.selected = true;
        if (a->p2 == 0x0C)
                return SW_OK;

        /* The application property template, SP 800-73-4 part 2 table 3. */
        tlv_writer_init(&w, out->buf, PIV_RESPONSE_MAX);
        tlv_open(&w, 0x61);
        tlv_put(&w, 0x4F, pix, sizeof pix);
        tlv_open(&w, 0x79);
        tlv_put(&w, 0x4F, piv_aid, PIV_RID_LEN);
        tlv_close(&w);
        tlv_put(&w, 0x50, "keyrenew virtual PIV", 20);
        tlv_open(&w, 0xAC);
        for (size_t i = 0; i < sizeof algs; i++)
                tlv_put_u8(&w, 0x80, algs[i]);
        tlv_put_u8(&w, 0x06, 0x00);
        tlv_close(&w);
        tlv_close(&w);
        return finish_tlv(&w, out);
}

/* Objects SP 800-73-4 protects with the PIN: printed information (where
 * YubiKeys keep a PIN-protected management key), fingerprints, facial
 * image, iris images. */
static bool object_needs_pin(uint32_t tag) {
        return tag == PIV_OBJ_PRINTED || tag == 0x5FC103 || tag == 0x5FC108 || tag == 0x5FC121;
}

static uint16_t cmd_get_data(PivCard *c, const Apdu *a, Answer *out) {
        const PivObject *o;
        TlvReader r;
        uint32_t tag;

        if (a->p1 != 0x3F || a->p2 != 0xFF)
                return SW_WRONG_P1P2;
        tlv_reader_init(&r, a->data, a->lc);
        if (read_object_tag(&r, &tag) < 0 || r.pos != r.end)
                return SW_WRONG_DATA;
        if (object_needs_pin(tag) && !c->session.pin_verified)
                return SW_SECURITY_STATUS;
        o = piv_card_object(c, tag);
        if (!o)
                return SW_NOT_FOUND;
        return put_raw(out, o->data, o->len);
}

/* The tag a stored object's outer TLV must carry. */
static uint32_t object_outer_tag(uint32_t tag) {
        if (tag == PIV_OBJ_DISCOVERY || tag == PIV_OBJ_BIT)
                return tag;
        if ((tag >= 0x5FC101 && tag <= 0x5FC123) || (tag >= 0x5FFF00 && tag <= 0x5FFF15))
                return 0x53;
        return 0;
}

static uint16_t cmd_put_data(PivCard *c, const Apdu *a, Answer *out) {
        TlvReader r;
        uint32_t tag, outer;
        Tlv t;

        if (a->p1 != 0x3F || a->p2 != 0xFF)
                return SW_WRONG_P1P2;
        if (!c->session.mgm_authenticated)
                return SW_SECURITY_STATUS;
        tlv_reader_init(&r, a->data, a->lc);
        if (read_object_tag(&r, &tag) < 0)
                return SW_WRONG_DATA;
        outer = object_outer_tag(tag);
        if (outer == 0)
                return SW_WRONG_DATA;
        if (tlv_parse_single(r.pos, (size_t) (r.end - r.pos), &t) < 0 || t.tag != outer)
                return SW_WRONG_DATA;
        if ((size_t) (r.end - r.pos) > PIV_OBJECT_MAX)
                return SW_NO_SPACE;
        /* An empty object deletes it, as on a YubiKey. */
        if (piv_card_set_object(c, tag, r.pos, t.length == 0 ? 0 : (size_t) (r.end - r.pos)) < 0)
                return SW_NO_SPACE;
        return SW_OK;
}

static uint16_t cmd_verify(PivCard *c, const Apdu *a, Answer *out) {
        PivSession *s = &c->session;
        uint16_t sw = SW_OK;

        if (a->p2 != PIV_REF_PIN)
                return SW_REF_NOT_FOUND;
        if (a->p1 == 0xFF) {
                /* 800-73-4 3.2.1: P1 FF, no data, resets the PIN's status */
                if (a->lc != 0)
                        return SW_WRONG_DATA;
                s->pin_verified = s->pin_fresh = false;
                return SW_OK;
        }
        if (a->p1 != 0x00)
                return SW_WRONG_P1P2;
        if (a->lc == 0)
                return s->pin_verified ? SW_OK : retries_sw(c->pin_retries_left);
        if (a->lc != PIV_PIN_SIZE)
                return SW_WRONG_DATA;
        s->pin_verified = s->pin_fresh = false;
        if (check_reference(c, a->data, c->pin, &c->pin_retries_left, c->pin_retries_max, &sw) > 0)
                s->pin_verified = s->pin_fresh = true;
        return sw;
}

static uint16_t cmd_change_reference(PivCard *c, const Apdu *a, Answer *out) {
        bool pin = a->p2 == PIV_REF_PIN;
        uint8_t *stored = pin ? c->pin : c->puk;
        uint8_t *left = pin ? &c->pin_retries_left : &c->puk_retries_left;
        uint8_t max = pin ? c->pin_retries_max : c->puk_retries_max;
        uint16_t sw = SW_OK;

        if (a->p1 != 0x00 || (a->p2 != PIV_REF_PIN && a->p2 != PIV_REF_PUK))
                return SW_REF_NOT_FOUND;
        if (a->lc != 2 * PIV_PIN_SIZE)
                return SW_WRONG_DATA;
        /* A malformed new value costs no retry: check it first. */
        if (!piv_pin_padded_is_valid(a->data + PIV_PIN_SIZE))
                return SW_WRONG_DATA;
        if (check_reference(c, a->data, stored, left, max, &sw) <= 0) {
                if (pin)
                        c->session.pin_verified = c->session.pin_fresh = false;
                return sw;
        }
        memcpy(stored, a->data + PIV_PIN_SIZE, PIV_PIN_SIZE);
        c->dirty = true;
        if (pin)
                c->session.pin_verified = true;
        return SW_OK;
}

static uint16_t cmd_reset_retry_counter(PivCard *c, const Apdu *a, Answer *out) {
        uint16_t sw = SW_OK;

        if (a->p1 != 0x00 || a->p2 != PIV_REF_PIN)
                return SW_REF_NOT_FOUND;
        if (a->lc != 2 * PIV_PIN_SIZE)
                return SW_WRONG_DATA;
        if (!piv_pin_padded_is_valid(a->data + PIV_PIN_SIZE))
                return SW_WRONG_DATA;
        if (check_reference(c, a->data, c->puk, &c->puk_retries_left, c->puk_retries_max, &sw) <= 0)
                return sw;
        memcpy(c->pin, a->data + PIV_PIN_SIZE, PIV_PIN_SIZE);
        c->pin_retries_left = c->pin_retries_max;
        c->dirty = true;
        return SW_OK;
}

/* The data objects of a dynamic authentication template (tag 7C): 80
 * witness, 81 challenge, 82 response, 85 exponentiation, by tag - 0x80. */
typedef struct AuthTemplate {
        Tlv item[6];
        bool has[6];
} AuthTemplate;

static int parse_auth_template(const Apdu *a, AuthTemplate *ret) {
        AuthTemplate at = {};
        TlvReader r;
        Tlv outer, t;
        int k;

        if (tlv_parse_single(a->data, a->lc, &outer) < 0 || outer.tag != 0x7C)
                return -EBADMSG;
        tlv_reader_enter(&outer, &r);
        while ((k = tlv_reader_next(&r, &t)) > 0) {
                if (t.tag < 0x80 || t.tag > 0x85 || at.has[t.tag - 0x80])
                        return -EBADMSG;
                at.item[t.tag - 0x80] = t;
                at.has[t.tag - 0x80] = true;
        }
        if (k < 0)
                return -EBADMSG;
        *ret = at;
        return 0;
}

static bool item_empty(const AuthTemplate *at, unsigned i) {
        return at->has[i] && at->item[i].length == 0;
}

static bool item_block(const AuthTemplate *at, unsigned i, size_t bs) {
        return at->has[i] && at->item[i].length == bs;
}

static uint16_t answer_auth(unsigned tag, const uint8_t *data, size_t len, Answer *out) {
        TlvWriter w;

        tlv_writer_init(&w, out->buf, PIV_RESPONSE_MAX);
        tlv_open(&w, 0x7C);
        tlv_put(&w, 0x80 + tag, data, len);
        tlv_close(&w);
        return finish_tlv(&w, out);
}

/* SP 800-73-4 appendix A.1-A.3: mutual authentication (the card sends an
 * encrypted witness, the client answers with it and its own challenge)
 * and external authentication (the card sends a challenge, the client
 * encrypts it). */
static uint16_t mgm_authenticate(PivCard *c, const Apdu *a, const AuthTemplate *at, Answer *out) {
        PivSession *s = &c->session;
        size_t bs = piv_mgm_block_size(c->mgm_alg);
        uint8_t block[16];
        PivAuthStep step = s->auth_step;
        bool only80 = at->has[0] && !at->has[1] && !at->has[2];
        bool only81 = at->has[1] && !at->has[0] && !at->has[2];

        s->auth_step = PIV_AUTH_NONE;
        if (a->p1 != c->mgm_alg)
                return SW_WRONG_P1P2;
        if (at->has[5])
                return SW_WRONG_DATA;

        if (only80 && item_empty(at, 0)) {
                if (RAND_bytes(s->auth_secret, (int) bs) != 1 ||
                    piv_mgm_crypt(c->mgm_alg, c->mgm_key, c->mgm_key_len, 1, s->auth_secret, block) < 0)
                        return SW_NO_DIAGNOSIS;
                s->auth_step = PIV_AUTH_WITNESS_SENT;
                return answer_auth(0, block, bs, out);
        }
        if (only81 && item_empty(at, 1)) {
                if (RAND_bytes(s->auth_secret, (int) bs) != 1)
                        return SW_NO_DIAGNOSIS;
                s->auth_step = PIV_AUTH_CHALLENGE_SENT;
                return answer_auth(1, s->auth_secret, bs, out);
        }
        if (item_block(at, 0, bs) && (!at->has[1] || item_block(at, 1, bs)) &&
            (!at->has[2] || item_empty(at, 2))) {
                s->mgm_authenticated = step == PIV_AUTH_WITNESS_SENT &&
                                       CRYPTO_memcmp(at->item[0].value, s->auth_secret, bs) == 0;
                if (!s->mgm_authenticated)
                        return SW_SECURITY_STATUS;
                if (!at->has[1])
                        return SW_OK;
                if (piv_mgm_crypt(c->mgm_alg, c->mgm_key, c->mgm_key_len, 1, at->item[1].value, block) < 0)
                        return SW_NO_DIAGNOSIS;
                return answer_auth(2, block, bs, out);
        }
        if (item_block(at, 2, bs) && !at->has[0] && !at->has[1]) {
                if (piv_mgm_crypt(c->mgm_alg, c->mgm_key, c->mgm_key_len, 1, s->auth_secret, block) < 0)
                        return SW_NO_DIAGNOSIS;
                s->mgm_authenticated =
                        step == PIV_AUTH_CHALLENGE_SENT && CRYPTO_memcmp(at->item[2].value, block, bs) == 0;
                return s->mgm_authenticated ? SW_OK : SW_SECURITY_STATUS;
        }
        s->mgm_authenticated = false;
        return SW_WRONG_DATA;
}

static bool pin_policy_met(PivSession *s, const PivKey *k) {
        switch (k->pin_policy) {
        case PIV_PIN_POLICY_NEVER:
                return true;
        case PIV_PIN_POLICY_ALWAYS:
                return s->pin_verified && s->pin_fresh;
        default:
                return s->pin_verified;
        }
}

/* Signature, decryption (both the raw private key operation) or ECDH. */
static uint16_t key_operation(PivCard *c, const Apdu *a, const AuthTemplate *at, Answer *out) {
        PivKey *k = piv_card_key(c, a->p2);
        uint8_t result[512];
        size_t len;
        bool ecdh;
        int r;

        if (!k)
                return SW_REF_NOT_FOUND;
        if (a->p1 != k->algorithm)
                return SW_WRONG_P1P2;
        if (!item_empty(at, 2) || at->has[0] || at->has[1] == at->has[5])
                return SW_WRONG_DATA;
        ecdh = at->has[5];
        if (!pin_policy_met(&c->session, k))
                return SW_SECURITY_STATUS;
        if (ecdh)
                r = piv_key_ecdh(k->pkey, at->item[5].value, at->item[5].length, result, sizeof result,
                                 &len);
        else
                r = piv_key_sign(k->pkey, at->item[1].value, at->item[1].length, result, sizeof result,
                                 &len);
        if (r < 0)
                return r == -EINVAL ? SW_WRONG_DATA : SW_NO_DIAGNOSIS;
        if (k->pin_policy == PIV_PIN_POLICY_ALWAYS)
                c->session.pin_fresh = false;
        k->uses++;
        c->dirty = true;
        return answer_auth(2, result, len, out);
}

static uint16_t cmd_general_authenticate(PivCard *c, const Apdu *a, Answer *out) {
        AuthTemplate at;

        if (parse_auth_template(a, &at) < 0)
                return SW_WRONG_DATA;
        if (a->p2 == PIV_SLOT_MGM)
                return mgm_authenticate(c, a, &at, out);
        if (!piv_slot_is_key(a->p2))
                return SW_REF_NOT_FOUND;
        return key_operation(c, a, &at, out);
}

static uint16_t cmd_generate(PivCard *c, const Apdu *a, Answer *out) {
        uint8_t alg = 0, pin_policy = 0, touch_policy = 0;
        EVP_PKEY *pkey = NULL;
        TlvReader r;
        TlvWriter w;
        Tlv ac, t;
        int k;

        if (a->p1 != 0x00)
                return SW_WRONG_P1P2;
        if (!piv_slot_is_key(a->p2))
                return SW_WRONG_SLOT;
        if (!c->session.mgm_authenticated)
                return SW_SECURITY_STATUS;
        if (tlv_parse_single(a->data, a->lc, &ac) < 0 || ac.tag != 0xAC)
                return SW_WRONG_DATA;
        tlv_reader_enter(&ac, &r);
        while ((k = tlv_reader_next(&r, &t)) > 0) {
                if (t.length != 1)
                        return SW_WRONG_DATA;
                if (t.tag == 0x80)
                        alg = t.value[0];
                else if (t.tag == 0xAA)
                        pin_policy = t.value[0];
                else if (t.tag == 0xAB)
                        touch_policy = t.value[0];
                else
                        return SW_WRONG_DATA;
        }
        if (k < 0 || pin_policy > PIV_PIN_POLICY_ALWAYS || touch_policy > 3)
                return SW_WRONG_DATA;
        if (alg != PIV_ALG_RSA1024 && alg != PIV_ALG_RSA2048 && alg != PIV_ALG_ECCP256 &&
            alg != PIV_ALG_ECCP384)
                return SW_WRONG_DATA;
        if (piv_key_generate(alg, &pkey) < 0)
                return SW_NO_DIAGNOSIS;
        if (piv_card_set_key(c, a->p2, alg, pin_policy, touch_policy, PIV_ORIGIN_GENERATED, pkey) < 0) {
                EVP_PKEY_free(pkey);
                return SW_NO_DIAGNOSIS;
        }

        tlv_writer_init(&w, out->buf, PIV_RESPONSE_MAX);
        tlv_open(&w, 0x7F49);
        if (piv_key_put_public(pkey, &w) < 0)
                return SW_NO_DIAGNOSIS;
        tlv_close(&w);
        return finish_tlv(&w, out);
}

static bool version_at_least(const PivCard *c, uint8_t major, uint8_t minor) {
        return c->version[0] > major || (c->version[0] == major && c->version[1] >= minor);
}

static uint16_t cmd_get_version(PivCard *c, const Apdu *a, Answer *out) {
        return put_raw(out, c->version, sizeof c->version);
}

static uint16_t cmd_get_serial(PivCard *c, const Apdu *a, Answer *out) {
        uint8_t be[4] = { c->serial >> 24, c->serial >> 16, c->serial >> 8, c->serial };

        /* before YubiKey 5 the serial came from the OTP application */
        if (!version_at_least(c, 5, 0))
                return SW_INS_NOT_SUPPORTED;
        return put_raw(out, be, sizeof be);
}

static void metadata_reference(const PivCard *c, uint8_t ref, TlvWriter *w) {
        bool pin = ref == PIV_REF_PIN;
        const uint8_t *value = pin ? c->pin : c->puk;
        const uint8_t *def = pin ? piv_default_pin : piv_default_puk;
        uint8_t retries[2] = { pin ? c->pin_retries_max : c->puk_retries_max,
                               pin ? c->pin_retries_left : c->puk_retries_left };

        tlv_put_u8(w, 0x01, 0xFF);
        tlv_put_u8(w, 0x05, memcmp(value, def, PIV_PIN_SIZE) == 0);
        tlv_put(w, 0x06, retries, sizeof retries);
}

static uint16_t cmd_get_metadata(PivCard *c, const Apdu *a, Answer *out) {
        TlvWriter w;
        PivKey *k;

        if (!version_at_least(c, 5, 3))
                return SW_INS_NOT_SUPPORTED;
        if (a->p1 != 0x00)
                return SW_WRONG_P1P2;
        tlv_writer_init(&w, out->buf, PIV_RESPONSE_MAX);
        if (a->p2 == PIV_REF_PIN || a->p2 == PIV_REF_PUK) {
                metadata_reference(c, a->p2, &w);
        } else if (a->p2 == PIV_SLOT_MGM) {
                uint8_t policy[2] = { 0x00, c->mgm_touch };
                bool def = c->mgm_alg == PIV_ALG_3DES && c->mgm_key_len == sizeof piv_default_mgm_key &&
                           memcmp(c->mgm_key, piv_default_mgm_key, c->mgm_key_len) == 0;

                tlv_put_u8(&w, 0x01, c->mgm_alg);
                tlv_put(&w, 0x02, policy, sizeof policy);
                tlv_put_u8(&w, 0x05, def);
        } else {
                k = piv_card_key(c, a->p2);
                if (!k)
                        return SW_REF_NOT_FOUND;
                uint8_t policy[2] = { k->pin_policy, k->touch_policy };
                tlv_put_u8(&w, 0x01, k->algorithm);
                tlv_put(&w, 0x02, policy, sizeof policy);
                tlv_put_u8(&w, 0x03, k->origin);
                tlv_open(&w, 0x04);
                if (piv_key_put_public(k->pkey, &w) < 0)
                        return SW_NO_DIAGNOSIS;
                tlv_close(&w);
        }
        return finish_tlv(&w, out);
}

/* Yubico SET MANAGEMENT KEY: P2 FE asks for touch, data alg 9B len key. */
static uint16_t cmd_set_mgm_key(PivCard *c, const Apdu *a, Answer *out) {
        size_t size;

        if (a->p1 != 0xFF || (a->p2 != 0xFF && a->p2 != 0xFE))
                return SW_WRONG_P1P2;
        if (!c->session.mgm_authenticated)
                return SW_SECURITY_STATUS;
        if (a->lc < 3 || a->data[1] != PIV_SLOT_MGM)
                return SW_WRONG_DATA;
        size = piv_mgm_key_size(a->data[0]);
        if (size == 0 || a->data[2] != size || a->lc != 3 + size)
                return SW_WRONG_DATA;
        c->mgm_alg = a->data[0];
        c->mgm_touch = a->p2 == 0xFE ? 2 : 1;
        memcpy(c->mgm_key, a->data + 3, size);
        c->mgm_key_len = size;
        c->dirty = true;
        return SW_OK;
}

/* Yubico SET PIN RETRIES: P1 PIN tries, P2 PUK tries; like a YubiKey it
 * puts PIN and PUK back to their defaults. */
static uint16_t cmd_set_pin_retries(PivCard *c, const Apdu *a, Answer *out) {
        if (!c->session.mgm_authenticated || !c->session.pin_verified)
                return SW_SECURITY_STATUS;
        if (a->p1 == 0 || a->p2 == 0)
                return SW_WRONG_P1P2;
        memcpy(c->pin, piv_default_pin, PIV_PIN_SIZE);
        memcpy(c->puk, piv_default_puk, PIV_PIN_SIZE);
        c->pin_retries_max = c->pin_retries_left = a->p1;
        c->puk_retries_max = c->puk_retries_left = a->p2;
        c->dirty = true;
        return SW_OK;
}

/* Yubico RESET: only once PIN and PUK are both blocked. Keys and objects
 * go (the Discovery object stays: it is built into a YubiKey), PIN, PUK
 * and management key are the defaults again. */
static uint16_t cmd_reset(PivCard *c, const Apdu *a, Answer *out) {
        if (c->pin_retries_left != 0 || c->puk_retries_left != 0)
                return SW_CONDITIONS;
        for (size_t i = 0; i < PIV_KEY_SLOTS; i++) {
                EVP_PKEY_free(c->keys[i].pkey);
                c->keys[i] = (PivKey){};
        }
        for (size_t i = c->n_objects; i > 0; i--)
                if (c->objects[i - 1].tag != PIV_OBJ_DISCOVERY)
                        piv_card_set_object(c, c->objects[i - 1].tag, NULL, 0);
        piv_card_default_credentials(c);
        c->session.pin_verified = c->session.pin_fresh = c->session.mgm_authenticated = false;
        c->dirty = true;
        return SW_OK;
}

/* Yubico MOVE KEY (5.7): P1 the destination (FF: delete), P2 the key's
 * slot, no data. The key takes its policies, origin and use counter
 * along; certificates stay where they are (the client moves them). */
static uint16_t cmd_move_key(PivCard *c, const Apdu *a, Answer *out) {
        if (!version_at_least(c, 5, 7))
                return SW_INS_NOT_SUPPORTED;
        if (a->lc != 0)
                return SW_WRONG_LENGTH;
        if (!piv_slot_is_key(a->p2) || a->p1 == a->p2 ||
            (a->p1 != PIV_SLOT_DELETE && !piv_slot_is_key(a->p1)))
                return SW_WRONG_P1P2;
        if (!c->session.mgm_authenticated)
                return SW_SECURITY_STATUS;
        return piv_card_move_key(c, a->p2, a->p1) < 0 ? SW_REF_NOT_FOUND : SW_OK;
}

typedef uint16_t (*Command)(PivCard *c, const Apdu *a, Answer *out);

static Command command_for(uint8_t ins) {
        switch (ins) {
        case 0xA4:
                return cmd_select;
        case 0xCB:
                return cmd_get_data;
        case 0xDB:
                return cmd_put_data;
        case 0x20:
                return cmd_verify;
        case 0x24:
                return cmd_change_reference;
        case 0x2C:
                return cmd_reset_retry_counter;
        case 0x87:
                return cmd_general_authenticate;
        case 0x47:
                return cmd_generate;
        case 0xFD:
                return cmd_get_version;
        case 0xF8:
                return cmd_get_serial;
        case 0xF7:
                return cmd_get_metadata;
        case 0xFF:
                return cmd_set_mgm_key;
        case 0xFA:
                return cmd_set_pin_retries;
        case 0xFB:
                return cmd_reset;
        case 0xF6:
                return cmd_move_key;
        default:
                return NULL;
        }
}

/* Sends as much of the pending answer as Ne allows; what is left waits for
 * GET RESPONSE, announced by 61xx (xx 00: 256 or more). */
static int emit(PivSession *s, size_t ne, uint16_t sw, uint8_t *resp, size_t cap, size_t *ret_len) {
        size_t left = s->pending_len - s->pending_off;
        size_t n = left;
        if (n > (ne ? ne : 256))
                n = ne ? ne : 256;
        if (n > cap - 2)
                n = cap - 2;

        memcpy(resp, s->pending + s->pending_off, n);
        s->pending_off += n;
        left -= n;
        if (left > 0)
                sw = (uint16_t) (0x6100 | (left > 255 ? 0 : left));
        else
                s->pending_off = s->pending_len = 0;
        resp[n] = sw >> 8;
        resp[n + 1] = sw & 0xFF;
        *ret_len = n + 2;
        return 0;
}

static uint16_t get_response(PivSession *s, const Apdu *a) {
        if (a->p1 != 0 || a->p2 != 0)
                return SW_WRONG_P1P2;
        return s->pending_len > 0 ? SW_OK : SW_CONDITIONS;
}

/* Collects CLA 10 pieces. Returns 1 when the command is complete (then *a
 * carries all its data), 0 when more pieces are expected, or a status
 * word's negative when the chain broke. */
static int chain(PivSession *s, Apdu *a) {
        bool more = a->cla & 0x10;

        if (s->chaining && (a->ins != s->chain_ins || a->p1 != s->chain_p1 || a->p2 != s->chain_p2))
                s->chaining = false; /* another command: the old chain is abandoned */
        if (!s->chaining) {
                s->chain_len = 0;
                if (!more)
                        return 1;
        }
        if (a->lc > PIV_COMMAND_MAX - s->chain_len) {
                s->chaining = false;
                return -SW_WRONG_LENGTH;
        }
        memcpy(s->chain + s->chain_len, a->data, a->lc);
        s->chain_len += a->lc;
        if (more) {
                s->chaining = true;
                s->chain_ins = a->ins;
                s->chain_p1 = a->p1;
                s->chain_p2 = a->p2;
                return 0;
        }
        s->chaining = false;
        a->data = s->chain;
        a->lc = s->chain_len;
        return 1;
}

static uint16_t dispatch(PivCard *c, Apdu *a) {
        PivSession *s = &c->session;
        Answer out = { .buf = s->pending };
        Command cmd;
        uint16_t sw;
        int r;

        if ((a->cla & ~0x10) != 0)
                return SW_CLA_NOT_SUPPORTED;
        /* a witness or challenge is good for the next command only */
        if (a->ins != 0x87 || a->p2 != PIV_SLOT_MGM)
                s->auth_step = PIV_AUTH_NONE;
        r = chain(s, a);
        if (r <= 0)
                return r == 0 ? SW_OK : (uint16_t) -r;
        cmd = command_for(a->ins);
        if (!cmd)
                return SW_INS_NOT_SUPPORTED;
        if (!s->selected && a->ins != 0xA4)
                return SW_INS_NOT_SUPPORTED;
        sw = cmd(c, a, &out);
        s->pending_len = sw == SW_OK ? out.len : 0;
        return sw;
}

int piv_applet_process(PivCard *card, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap,
                       size_t *ret_len) {
        PivSession *s = &card->session;
        uint16_t sw;
        Apdu a;

        if (cap < 2)
                return -ENOBUFS;
        if (len < 4 || parse_apdu(apdu, len, &a) < 0) {
                s->pending_len = s->pending_off = 0;
                return emit(s, 0, SW_WRONG_LENGTH, resp, cap, ret_len);
        }
        if (a.ins == 0xC0 && a.cla == 0x00) {
                sw = get_response(s, &a);
                if (sw != SW_OK)
                        s->pending_len = s->pending_off = 0;
                return emit(s, a.ne, sw, resp, cap, ret_len);
        }
        /* A new command: whatever was not fetched of the last answer is gone. */
        s->pending_len = s->pending_off = 0;
        sw = dispatch(card, &a);
        return emit(s, a.ne, sw, resp, cap, ret_len);
}
