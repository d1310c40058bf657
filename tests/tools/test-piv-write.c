/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PIV driver's writing half against the virtual card's applet,
 * in-process: PIN, management key, key generation, signatures checked with
 * OpenSSL on the public key the card returned, certificates written and
 * read back, keys moved and deleted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "assert.h"
#include "card-objects.h"
#include "macro.h"
#include "piv-applet.h"
#include "piv-card.h"
#include "rsa-pad.h"
#include "secmem.h"
#include "token.h"

typedef struct Link {
        PivCard *card;
        bool reset_next; /* the next transaction finds the card reset */
        /* As a T=0 card: every answer with data comes as 61xx alone, the
         * data with the GET RESPONSE that follows. */
        bool t0;
        uint8_t held[258];
        size_t held_len;
        unsigned apdus;
        /* As a card that answers this instruction with refuse_sw only. */
        uint8_t refuse_ins;
        uint16_t refuse_sw;
} Link;

static int link_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                         size_t *ret_len) {
        Link *l = userdata;
        size_t n = 0;
        int r;

        l->apdus++;
        if (l->refuse_ins != 0 && cmd_len >= 2 && cmd[1] == l->refuse_ins) {
                resp[0] = (uint8_t) (l->refuse_sw >> 8);
                resp[1] = (uint8_t) l->refuse_sw;
                *ret_len = 2;
                return 0;
        }
        if (l->t0 && l->held_len > 0 && cmd_len >= 2 && cmd[1] == 0xC0) {
                memcpy(resp, l->held, l->held_len);
                *ret_len = l->held_len;
                l->held_len = 0;
                return 0;
        }
        r = piv_applet_process(l->card, cmd, cmd_len, resp, resp_cap, &n);
        if (r < 0 || !l->t0 || n <= 2 || n > sizeof l->held) {
                *ret_len = n;
                return r;
        }
        memcpy(l->held, resp, n);
        l->held_len = n;
        resp[0] = 0x61;
        resp[1] = (uint8_t) (n - 2);
        *ret_len = 2;
        return 0;
}

static int link_begin(void *userdata) {
        Link *l = userdata;

        if (!l->reset_next)
                return 0;
        l->reset_next = false;
        piv_card_session_reset(l->card);
        return 1;
}

typedef struct Fixture {
        PivCard *card;
        Link link;
        TokenTransport transport;
        Token *token;
} Fixture;

static void fixture_init(Fixture *f) {
        *f = (Fixture){};
        ASSERT_TRUE(f->card = piv_card_new());
        f->card->serial = 4242;
        memcpy(f->card->version, (const uint8_t[]){ 5, 4, 3 }, 3);
        f->link.card = f->card;
        f->transport =
                (TokenTransport){ .transmit = link_transmit, .begin = link_begin, .userdata = &f->link };
        ASSERT_EQ(token_open(&f->transport, &f->token), 0);
}

static void fixture_done(Fixture *f) {
        token_free(f->token);
        piv_card_free(f->card);
}

static char *pin_secret(const char *pin) {
        char *p = secmem_strndup(pin, strlen(pin));

        ASSERT_TRUE(p);
        return p;
}

static uint8_t *key_secret(const uint8_t *key, size_t n) {
        uint8_t *p = secmem_alloc(n);

        ASSERT_TRUE(p);
        memcpy(p, key, n);
        return p;
}

static void authenticate_default(Fixture *f) {
        _cleanup_secmem_ uint8_t *key = key_secret(piv_default_mgm_key, sizeof piv_default_mgm_key);

        ASSERT_EQ(token_authenticate_mgm(f->token, key, sizeof piv_default_mgm_key, TOKEN_ALG_DEFAULT), 0);
}

static void verify(Fixture *f, const char *pin) {
        _cleanup_secmem_ char *p = pin_secret(pin);

        ASSERT_EQ(token_verify_pin(f->token, p, NULL), 0);
}

static void test_verify_pin(void) {
        _cleanup_secmem_ char *right = pin_secret("123456"), *wrong = pin_secret("654321"),
                              *empty = pin_secret(""), *long_pin = pin_secret("123456789");
        TokenPinStatus st;
        Fixture f;
        unsigned before;
        int left = -7;

        fixture_init(&f);

        /* Nothing is sent for a PIN the card could only take as a query. */
        before = f.link.apdus;
        ASSERT_EQ(token_verify_pin(f.token, empty, &left), -EINVAL);
        ASSERT_EQ(token_verify_pin(f.token, long_pin, &left), -EINVAL);
        ASSERT_EQ(f.link.apdus, before);
        ASSERT_EQ(left, -7);

        /* A wrong PIN: one VERIFY, one try spent, never tried again. */
        before = f.link.apdus;
        ASSERT_EQ(token_verify_pin(f.token, wrong, &left), -EKEYREJECTED);
        ASSERT_EQ(f.link.apdus, before + 1);
        ASSERT_EQ(left, 2);
        ASSERT_EQ(f.card->pin_retries_left, 2);
        ASSERT_EQ(token_pin_status(f.token, &st), 0);
        ASSERT_EQ(st.retries, 2);

        ASSERT_EQ(token_verify_pin(f.token, right, &left), 0);
        ASSERT_EQ(f.card->pin_retries_left, 3);
        ASSERT_TRUE(f.card->session.pin_verified);

        ASSERT_EQ(token_verify_pin(f.token, wrong, &left), -EKEYREJECTED);
        ASSERT_EQ(left, 2);
        ASSERT_TRUE(!f.card->session.pin_verified);
        ASSERT_EQ(token_verify_pin(f.token, wrong, &left), -EKEYREJECTED);
        ASSERT_EQ(left, 1);
        /* The last try: this card answers "blocked" (6983) at once, a
         * YubiKey 63C0; either way the caller learns it is blocked. */
        left = -7;
        ASSERT_EQ(token_verify_pin(f.token, wrong, &left), -ENOLCK);
        ASSERT_EQ(left, -7);
        ASSERT_EQ(f.card->pin_retries_left, 0);
        /* Blocked: even the right PIN is refused. */
        ASSERT_EQ(token_verify_pin(f.token, right, &left), -ENOLCK);
        ASSERT_EQ(left, -7);
        ASSERT_TRUE(!f.card->session.pin_verified);
        ASSERT_EQ(token_pin_status(f.token, &st), 0);
        ASSERT_EQ(st.retries, 0);

        fixture_done(&f);
}

static void set_mgm(PivCard *c, uint8_t alg, const uint8_t *key, size_t n) {
        c->mgm_alg = alg;
        memcpy(c->mgm_key, key, n);
        c->mgm_key_len = n;
}

static void test_mgm_algorithms(void) {
        static const struct {
                TokenAlgorithm alg;
                size_t size;
        } cases[] = {
                { TOKEN_ALG_3DES, 24 },
                { TOKEN_ALG_AES128, 16 },
                { TOKEN_ALG_AES192, 24 },
                { TOKEN_ALG_AES256, 32 },
        };
        uint8_t raw[32];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_secmem_ uint8_t *key = NULL, *bad = NULL;
                TokenMgmInfo info;
                Fixture f;

                for (size_t j = 0; j < sizeof raw; j++)
                        raw[j] = (uint8_t) (0x40 + 7 * j + i);
                key = key_secret(raw, cases[i].size);
                /* Not bit 0: DES ignores the parity bits. */
                raw[3] ^= 0x10;
                bad = key_secret(raw, cases[i].size);

                fixture_init(&f);
                set_mgm(f.card, cases[i].alg, key, cases[i].size);

                ASSERT_EQ(token_mgm_info(f.token, &info), 0);
                ASSERT_EQ(info.algorithm, cases[i].alg);
                ASSERT_EQ(info.is_default, 0);
                ASSERT_TRUE(!info.pin_protected);

                ASSERT_EQ(token_authenticate_mgm(f.token, bad, cases[i].size, cases[i].alg), -EKEYREJECTED);
                ASSERT_TRUE(!f.card->session.mgm_authenticated);
                ASSERT_EQ(token_authenticate_mgm(f.token, key, cases[i].size, cases[i].alg), 0);
                ASSERT_TRUE(f.card->session.mgm_authenticated);
                /* The algorithm from GET METADATA. */
                piv_card_session_reset(f.card);
                f.card->session.selected = true;
                ASSERT_EQ(token_authenticate_mgm(f.token, key, cases[i].size, TOKEN_ALG_DEFAULT), 0);
                ASSERT_TRUE(f.card->session.mgm_authenticated);
                /* A key of the wrong size is not sent. */
                ASSERT_EQ(token_authenticate_mgm(f.token, key, cases[i].size - 8, cases[i].alg), -EINVAL);
                fixture_done(&f);
        }
}

static void test_mgm_default(void) {
        _cleanup_secmem_ uint8_t *aes = key_secret((const uint8_t[16]){ 9 }, 16);
        TokenMgmInfo info;
        Fixture f;

        fixture_init(&f);
        ASSERT_EQ(token_mgm_info(f.token, &info), 0);
        ASSERT_EQ(info.algorithm, TOKEN_ALG_3DES);
        ASSERT_EQ(info.is_default, 1);
        authenticate_default(&f);

        /* A YubiKey 4 has no GET METADATA: the default key is tried. */
        memcpy(f.card->version, (const uint8_t[]){ 4, 3, 7 }, 3);
        piv_card_session_reset(f.card);
        f.card->session.selected = true;
        ASSERT_EQ(token_mgm_info(f.token, &info), 0);
        ASSERT_EQ(info.is_default, 1);
        set_mgm(f.card, PIV_ALG_3DES, (const uint8_t[24]){ 1 }, 24);
        ASSERT_EQ(token_mgm_info(f.token, &info), 0);
        ASSERT_EQ(info.is_default, 0);
        /* An AES key there: nobody can tell; the default 3DES guess is refused. */
        set_mgm(f.card, PIV_ALG_AES128, aes, 16);
        ASSERT_EQ(token_mgm_info(f.token, &info), 0);
        ASSERT_EQ(info.is_default, -1);
        ASSERT_EQ(token_authenticate_mgm(f.token, aes, 16, TOKEN_ALG_DEFAULT), -EINVAL);
        ASSERT_EQ(token_authenticate_mgm(f.token, aes, 16, TOKEN_ALG_AES128), 0);
        fixture_done(&f);
}

static void test_protected_mgm(void) {
        _cleanup_secmem_ uint8_t *key = NULL;
        TokenAlgorithm alg = 0;
        TokenMgmInfo info;
        size_t n = 0;
        Fixture f;

        fixture_init(&f);
        ASSERT_EQ(token_get_protected_mgm_key(f.token, &key, &n, &alg), -EACCES);
        verify(&f, "123456");
        ASSERT_EQ(token_get_protected_mgm_key(f.token, &key, &n, &alg), -ENOENT);

        set_mgm(f.card, PIV_ALG_AES256, (const uint8_t[32]){ 0xA5, 0x5A, 3, 4, 5 }, 32);
        ASSERT_EQ(card_objects_put_protected_mgm(f.card), 0);
        piv_card_session_reset(f.card);
        f.card->session.selected = true;

        ASSERT_EQ(token_mgm_info(f.token, &info), 0);
        ASSERT_TRUE(info.pin_protected);
        ASSERT_EQ(info.algorithm, TOKEN_ALG_AES256);
        ASSERT_EQ(info.is_default, 0);

        ASSERT_EQ(token_get_protected_mgm_key(f.token, &key, &n, &alg), -EACCES);
        verify(&f, "123456");
        ASSERT_EQ(token_get_protected_mgm_key(f.token, &key, &n, &alg), 0);
        ASSERT_EQ(n, 32);
        ASSERT_EQ(alg, TOKEN_ALG_AES256);
        ASSERT_MEMEQ(key, f.card->mgm_key, 32);
        ASSERT_EQ(secmem_size(key) >= n, 1);
        ASSERT_EQ(token_authenticate_mgm(f.token, key, n, alg), 0);
        ASSERT_TRUE(f.card->session.mgm_authenticated);

        /* A T=0 card sends the object only after GET RESPONSE. */
        f.link.t0 = true;
        secmem_free(TAKE_PTR(key));
        ASSERT_EQ(token_get_protected_mgm_key(f.token, &key, &n, &alg), 0);
        ASSERT_MEMEQ(key, f.card->mgm_key, 32);
        f.link.t0 = false;

        /* Without GET METADATA the algorithm comes from the length. */
        memcpy(f.card->version, (const uint8_t[]){ 4, 3, 7 }, 3);
        secmem_free(TAKE_PTR(key));
        ASSERT_EQ(token_get_protected_mgm_key(f.token, &key, &n, &alg), 0);
        ASSERT_EQ(alg, TOKEN_ALG_AES256);
        fixture_done(&f);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)

static void sha256(const char *msg, uint8_t out[32]) {
        ASSERT_EQ(EVP_Digest(msg, strlen(msg), out, NULL, EVP_sha256(), NULL), 1);
}

/* Verifies a raw signature the card made over a hash with OpenSSL. */
static void check_signature(EVP_PKEY *pub, int padding, const uint8_t *hash, size_t hash_len,
                            const uint8_t *sig, size_t sig_len) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);

        ASSERT_TRUE(ctx);
        ASSERT_EQ(EVP_PKEY_verify_init(ctx), 1);
        if (padding) {
                ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx, padding), 1);
                ASSERT_EQ(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
                if (padding == RSA_PKCS1_PSS_PADDING)
                        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32), 1);
        }
        ASSERT_EQ(EVP_PKEY_verify(ctx, sig, sig_len, hash, hash_len), 1);
}

static void sign_and_check(Fixture *f, unsigned slot, TokenAlgorithm alg, EVP_PKEY *pub) {
        _cleanup_free_ uint8_t *sig = NULL, *sig2 = NULL;
        uint8_t hash[32], block[256];
        size_t n = 0, n2 = 0;

        sha256("renew me", hash);
        if (alg != TOKEN_ALG_RSA2048) {
                ASSERT_EQ(token_sign(f->token, slot, alg, hash, sizeof hash, &sig, &n), 0);
                check_signature(pub, 0, hash, sizeof hash, sig, n);
                return;
        }
        ASSERT_EQ(rsa_pad_pkcs1("SHA256", hash, sizeof hash, block, sizeof block), 0);
        ASSERT_EQ(token_sign(f->token, slot, alg, block, sizeof block, &sig, &n), 0);
        ASSERT_EQ(n, 256);
        check_signature(pub, RSA_PKCS1_PADDING, hash, sizeof hash, sig, n);

        ASSERT_EQ(rsa_pad_pss("SHA256", "SHA256", 32, hash, sizeof hash, 2048, block, sizeof block), 0);
        ASSERT_EQ(token_sign(f->token, slot, alg, block, sizeof block, &sig2, &n2), 0);
        check_signature(pub, RSA_PKCS1_PSS_PADDING, hash, sizeof hash, sig2, n2);
        /* A block that is not the modulus size is not sent. */
        ASSERT_EQ(token_sign(f->token, slot, alg, block, 255, &sig2, &n2), -EINVAL);
}

static void test_generate_and_sign(void) {
        static const TokenAlgorithm algs[] = { TOKEN_ALG_RSA2048, TOKEN_ALG_ECCP256, TOKEN_ALG_ECCP384 };
        static const char *const names[] = { "RSA", "EC", "EC" };
        static const int bits[] = { 2048, 256, 384 };

        for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
                _cleanup_free_ uint8_t *sig = NULL;
                uint8_t hash[256] = {}; /* as long as an RSA-2048 block */
                size_t n = 0;
                Fixture f;

                fixture_init(&f);
                ASSERT_EQ(token_generate_key(f.token, 0x9A, algs[i], TOKEN_PIN_POLICY_DEFAULT,
                                             TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                          -EACCES);
                authenticate_default(&f);
                ASSERT_EQ(token_generate_key(f.token, 0x9A, algs[i], TOKEN_PIN_POLICY_DEFAULT,
                                             TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                          0);
                ASSERT_TRUE(EVP_PKEY_is_a(pub, names[i]));
                ASSERT_EQ(EVP_PKEY_get_bits(pub), bits[i]);
                ASSERT_EQ(f.card->keys[0].pkey != NULL, 1);
                ASSERT_EQ(EVP_PKEY_eq(pub, piv_card_key(f.card, 0x9A)->pkey), 1);

                /* 9A's policy is "once": no signature before VERIFY. */
                ASSERT_EQ(token_sign(f.token, 0x9A, algs[i], hash, algs[i] == TOKEN_ALG_RSA2048 ? 256 : 32,
                                     &sig, &n),
                          -EACCES);
                verify(&f, "123456");
                sign_and_check(&f, 0x9A, algs[i], pub);
                /* ... and then as often as wanted. */
                sign_and_check(&f, 0x9A, algs[i], pub);
                /* The wrong algorithm for the key. */
                ASSERT_EQ(token_sign(f.token, 0x9A,
                                     algs[i] == TOKEN_ALG_ECCP256 ? TOKEN_ALG_ECCP384 : TOKEN_ALG_ECCP256,
                                     hash, 32, &sig, &n),
                          -EINVAL);
                /* Nothing in 9E. */
                ASSERT_EQ(token_sign(f.token, 0x9E, algs[i], hash, algs[i] == TOKEN_ALG_RSA2048 ? 256 : 32,
                                     &sig, &n),
                          -ENOENT);
                fixture_done(&f);
        }
}

static void test_signature_slot(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t hash[48];
        size_t n = 0;
        Fixture f;

        fixture_init(&f);
        authenticate_default(&f);
        /* The slot's own default: "always". */
        ASSERT_EQ(token_generate_key(f.token, 0x9C, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                  0);
        verify(&f, "123456");
        /* A SHA-384 hash on P-256: ECDSA signs its leftmost 32 bytes. */
        ASSERT_EQ(EVP_Digest("x", 1, hash, NULL, EVP_sha384(), NULL), 1);
        ASSERT_EQ(token_sign(f.token, 0x9C, TOKEN_ALG_ECCP256, hash, sizeof hash, &sig, &n), 0);
        check_signature(pub, 0, hash, 32, sig, n);
        free(TAKE_PTR(sig));
        /* Each signature with 9C needs its own VERIFY. */
        ASSERT_EQ(token_sign(f.token, 0x9C, TOKEN_ALG_ECCP256, hash, 32, &sig, &n), -EACCES);
        verify(&f, "123456");
        ASSERT_EQ(token_sign(f.token, 0x9C, TOKEN_ALG_ECCP256, hash, 32, &sig, &n), 0);
        fixture_done(&f);
}

static uint8_t *load_der(const char *name, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        uint8_t *buf;
        long n;

        ASSERT_TRUE(asprintf(&path, "%s/%s", getenv("KEYRENEW_TEST_DATA"), name) > 0);
        ASSERT_TRUE(f = fopen(path, "rb"));
        ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
        ASSERT_TRUE((n = ftell(f)) > 0);
        rewind(f);
        ASSERT_TRUE(buf = malloc((size_t) n));
        ASSERT_EQ(fread(buf, 1, (size_t) n, f), (size_t) n);
        *ret_len = (size_t) n;
        return buf;
}

static void test_put_certificate(void) {
        _cleanup_free_ uint8_t *der = NULL, *big = NULL;
        TokenCertificate c;
        size_t n = 0, big_n = 0;
        Fixture f;

        der = load_der("rsa2048.der", &n);
        big = load_der("big.der", &big_n);
        fixture_init(&f);
        ASSERT_EQ(token_put_certificate(f.token, 0x9A, der, n), -EACCES);
        authenticate_default(&f);
        ASSERT_EQ(token_read_certificate(f.token, 0x9A, &c), -ENOENT);
        ASSERT_EQ(token_put_certificate(f.token, 0x9A, der, n), 0);
        ASSERT_EQ(token_read_certificate(f.token, 0x9A, &c), 0);
        ASSERT_EQ(c.der_len, n);
        ASSERT_MEMEQ(c.der, der, n);
        token_certificate_done(&c);

        /* Several chained pieces. */
        ASSERT_TRUE(big_n > 1000);
        ASSERT_EQ(token_put_certificate(f.token, 0x95, big, big_n), 0);
        ASSERT_EQ(token_read_certificate(f.token, 0x95, &c), 0);
        ASSERT_EQ(c.der_len, big_n);
        ASSERT_MEMEQ(c.der, big, big_n);
        token_certificate_done(&c);

        ASSERT_EQ(token_put_certificate(f.token, 0x9A, NULL, 0), 0);
        ASSERT_EQ(token_read_certificate(f.token, 0x9A, &c), -ENOENT);
        ASSERT_EQ(token_put_certificate(f.token, 0x9B, der, n), -EINVAL);
        fixture_done(&f);
}

/* A reset (another program, a power glitch) forgets the PIN and the
 * management key: the calls after it say so instead of going on. */
static void test_reset_forgets(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *pub2 = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        uint8_t hash[32] = { 1 };
        size_t n = 0;
        Fixture f;

        fixture_init(&f);
        authenticate_default(&f);
        ASSERT_EQ(token_generate_key(f.token, 0x9A, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                  0);
        verify(&f, "123456");
        f.link.reset_next = true;
        ASSERT_EQ(token_sign(f.token, 0x9A, TOKEN_ALG_ECCP256, hash, sizeof hash, &sig, &n), -EACCES);
        ASSERT_EQ(token_generate_key(f.token, 0x9A, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &pub2),
                  -EACCES);
        /* The key made before the reset is still there. */
        ASSERT_EQ(EVP_PKEY_eq(pub, piv_card_key(f.card, 0x9A)->pkey), 1);
        verify(&f, "123456");
        ASSERT_EQ(token_sign(f.token, 0x9A, TOKEN_ALG_ECCP256, hash, sizeof hash, &sig, &n), 0);
        fixture_done(&f);
}

/* A renewal's key swap on a YubiKey 5.7: the new key, made in a retired
 * slot beside the old one, replaces it; the certificates stay put. */
static void test_move_key(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *old = NULL, *pub = NULL;
        _cleanup_free_ uint8_t *der = NULL, *sig = NULL;
        uint8_t block[256] = { 7 }; /* as long as an RSA-2048 block */
        TokenKeyMetadata m;
        TokenCertificate c;
        size_t n = 0, sig_len = 0;
        Fixture f;

        der = load_der("rsa2048.der", &n);
        fixture_init(&f);
        memcpy(f.card->version, (const uint8_t[]){ 5, 7, 1 }, 3);
        ASSERT_EQ(token_move_key(f.token, 0x95, 0x9A), -EACCES);
        authenticate_default(&f);
        ASSERT_EQ(token_move_key(f.token, 0x95, 0x9A), -ENOENT);
        ASSERT_EQ(token_move_key(f.token, 0x95, TOKEN_SLOT_DELETE), -ENOENT);
        ASSERT_EQ(token_generate_key(f.token, 0x9A, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &old),
                  0);
        ASSERT_EQ(token_generate_key(f.token, 0x95, TOKEN_ALG_RSA2048, TOKEN_PIN_POLICY_ONCE,
                                     TOKEN_TOUCH_POLICY_NEVER, &pub),
                  0);
        ASSERT_EQ(token_put_certificate(f.token, 0x95, der, n), 0);
        verify(&f, "123456");
        sign_and_check(&f, 0x95, TOKEN_ALG_RSA2048, pub);

        ASSERT_EQ(token_move_key(f.token, 0x95, 0x9A), 0);
        ASSERT_EQ(token_key_metadata(f.token, 0x95, &m), -ENOENT);
        ASSERT_EQ(token_sign(f.token, 0x95, TOKEN_ALG_RSA2048, block, sizeof block, &sig, &sig_len),
                  -ENOENT);
        ASSERT_EQ(token_key_metadata(f.token, 0x9A, &m), 0);
        ASSERT_STREQ(m.algorithm, "rsa2048");
        ASSERT_EQ(m.origin, TOKEN_KEY_ORIGIN_GENERATED);
        ASSERT_EQ(m.pin_policy, TOKEN_PIN_POLICY_ONCE);
        /* 9A signs with the new key now, the old one is gone. */
        sign_and_check(&f, 0x9A, TOKEN_ALG_RSA2048, pub);
        ASSERT_EQ(EVP_PKEY_eq(piv_card_key(f.card, 0x9A)->pkey, pub), 1);
        ASSERT_EQ(token_sign(f.token, 0x9A, TOKEN_ALG_ECCP256, block, 32, &sig, &sig_len), -EINVAL);
        /* The certificate is where it was written: the caller moves it. */
        ASSERT_EQ(token_read_certificate(f.token, 0x95, &c), 0);
        token_certificate_done(&c);
        ASSERT_EQ(token_read_certificate(f.token, 0x9A, &c), -ENOENT);

        ASSERT_EQ(token_move_key(f.token, 0x9A, TOKEN_SLOT_DELETE), 0);
        ASSERT_EQ(token_key_metadata(f.token, 0x9A, &m), -ENOENT);
        ASSERT_EQ(token_move_key(f.token, 0x9A, TOKEN_SLOT_DELETE), -ENOENT);
        ASSERT_TRUE(!piv_card_key(f.card, 0x9A) && !piv_card_key(f.card, 0x95));
        fixture_done(&f);
}

/* Slots the command cannot take are refused before anything is sent; a
 * reset in between forgets the management key. */
static void test_move_key_refused(void) {
        static const unsigned bad[][2] = {
                { 0x9A, 0x9A },  { 0x95, 0xF9 },
                { 0xF9, 0x9A },  { 0x9B, 0x9A },
                { 0x95, 0x9B },  { 0x80, 0x9A },
                { 0x9A, 0x00 },  { 0x96, 0x9A },
                { 0x9A, 0x81 },  { TOKEN_SLOT_DELETE, 0x9A },
                { 0x19A, 0x9C }, { 0x9A, 0x19C },
        };
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        unsigned before;
        Fixture f;

        fixture_init(&f);
        memcpy(f.card->version, (const uint8_t[]){ 5, 7, 0 }, 3);
        authenticate_default(&f);
        ASSERT_EQ(token_generate_key(f.token, 0x9A, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                  0);
        before = f.link.apdus;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ASSERT_EQ(token_move_key(f.token, bad[i][0], bad[i][1]), -EINVAL);
        ASSERT_EQ(f.link.apdus, before);

        f.link.reset_next = true;
        ASSERT_EQ(token_move_key(f.token, 0x9A, 0x9C), -EACCES);
        ASSERT_EQ(EVP_PKEY_eq(piv_card_key(f.card, 0x9A)->pkey, pub), 1);
        authenticate_default(&f);
        ASSERT_EQ(token_move_key(f.token, 0x9A, 0x9C), 0);
        ASSERT_EQ(EVP_PKEY_eq(piv_card_key(f.card, 0x9C)->pkey, pub), 1);
        fixture_done(&f);
}

/* Cards without the command: YubiKeys before 5.7 (6D00), and others that
 * say so another way. The key stays where it is. */
static void test_move_key_unsupported(void) {
        static const uint16_t refusals[] = { 0x6D00, 0x6E00, 0x6A81 };
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        Fixture f;

        fixture_init(&f);
        authenticate_default(&f);
        ASSERT_EQ(token_generate_key(f.token, 0x95, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                  0);
        ASSERT_EQ(token_move_key(f.token, 0x95, 0x9A), -EOPNOTSUPP);
        ASSERT_EQ(token_move_key(f.token, 0x95, TOKEN_SLOT_DELETE), -EOPNOTSUPP);
        memcpy(f.card->version, (const uint8_t[]){ 5, 7, 0 }, 3);
        for (size_t i = 0; i < ELEMENTSOF(refusals); i++) {
                f.link.refuse_ins = 0xF6;
                f.link.refuse_sw = refusals[i];
                ASSERT_EQ(token_move_key(f.token, 0x95, 0x9A), -EOPNOTSUPP);
        }
        ASSERT_EQ(EVP_PKEY_eq(piv_card_key(f.card, 0x95)->pkey, pub), 1);
        ASSERT_TRUE(!piv_card_key(f.card, 0x9A));
        fixture_done(&f);
}

int main(void) {
        RUN(test_verify_pin);
        RUN(test_mgm_algorithms);
        RUN(test_mgm_default);
        RUN(test_protected_mgm);
        RUN(test_generate_and_sign);
        RUN(test_signature_slot);
        RUN(test_put_certificate);
        RUN(test_reset_forgets);
        RUN(test_move_key);
        RUN(test_move_key_refused);
        RUN(test_move_key_unsupported);
        return 0;
}
