/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The card-backed EVP_PKEY (card-provider.h) against the virtual card's
 * applet, in-process: a CSR signed by the card that X509_REQ_verify()
 * accepts, EVP_DigestSign() with RSA PKCS#1 v1.5, PSS and ECDSA checked in
 * software, and the PIN rules seen through OpenSSL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "assert.h"
#include "card-provider.h"
#include "macro.h"
#include "piv-applet.h"
#include "piv-card.h"
#include "secmem.h"
#include "token.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_CMP_CTX *, OSSL_CMP_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_CMP_MSG *, OSSL_CMP_MSG_free)

static int link_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                         size_t *ret_len) {
        return piv_applet_process(userdata, cmd, cmd_len, resp, resp_cap, ret_len);
}

typedef struct Fixture {
        PivCard *card;
        TokenTransport transport;
        Token *token;
} Fixture;

static void fixture_init(Fixture *f) {
        _cleanup_secmem_ uint8_t *mgm = secmem_alloc(sizeof piv_default_mgm_key);

        *f = (Fixture){};
        ASSERT_TRUE(f->card = piv_card_new());
        memcpy(f->card->version, (const uint8_t[]){ 5, 7, 1 }, 3);
        f->transport = (TokenTransport){ .transmit = link_transmit, .userdata = f->card };
        ASSERT_EQ(token_open(&f->transport, &f->token), 0);
        ASSERT_TRUE(mgm);
        memcpy(mgm, piv_default_mgm_key, sizeof piv_default_mgm_key);
        ASSERT_EQ(token_authenticate_mgm(f->token, mgm, sizeof piv_default_mgm_key, TOKEN_ALG_3DES), 0);
}

static void fixture_done(Fixture *f) {
        token_free(f->token);
        piv_card_free(f->card);
}

static void verify_pin(Fixture *f) {
        _cleanup_secmem_ char *pin = secmem_strndup("123456", 6);

        ASSERT_TRUE(pin);
        ASSERT_EQ(token_verify_pin(f->token, pin, NULL), 0);
}

/* A key generated on the card and its card-backed EVP_PKEY. */
static void card_key(Fixture *f, OSSL_LIB_CTX *libctx, unsigned slot, TokenAlgorithm alg, EVP_PKEY **ret_pub,
                     EVP_PKEY **ret_key) {
        ASSERT_EQ(token_generate_key(f->token, slot, alg, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, ret_pub),
                  0);
        ASSERT_EQ(card_key_new(libctx, f->token, slot, *ret_pub, ret_key), 0);
}

static void check_csr(EVP_PKEY *key, EVP_PKEY *pub) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        X509_NAME *name;

        ASSERT_TRUE(req);
        ASSERT_TRUE(name = X509_REQ_get_subject_name(req));
        ASSERT_EQ(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) "Alice", -1,
                                             -1, 0),
                  1);
        ASSERT_EQ(X509_REQ_set_pubkey(req, key), 1);
        ASSERT_TRUE(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        /* The public key in the request is the card's, and so is the
         * signature. */
        ASSERT_EQ(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), pub), 1);
        ASSERT_EQ(X509_REQ_verify(req, pub), 1);
        /* The request's own public key is the card key: it verifies too,
         * with the public half. */
        ASSERT_EQ(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
}

/* X509_REQ_sign_ctx() with RSA-PSS: OpenSSL writes the PSS parameters
 * from what the card's signature context reports. */
static void check_csr_pss(EVP_PKEY *key, EVP_PKEY *pub) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        const X509_ALGOR *alg = NULL;
        EVP_PKEY_CTX *pctx = NULL;

        ASSERT_TRUE(req && ctx);
        ASSERT_EQ(X509_REQ_set_pubkey(req, key), 1);
        ASSERT_EQ(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
        ASSERT_TRUE(X509_REQ_sign_ctx(req, ctx) > 0);
        X509_REQ_get0_signature(req, NULL, &alg);
        ASSERT_EQ(OBJ_obj2nid(alg->algorithm), NID_rsassaPss);
        ASSERT_EQ(X509_REQ_verify(req, pub), 1);
}

/* padding 0: not RSA. */
static int digest_sign(EVP_PKEY *key, const char *md, int padding, unsigned char *sig, size_t *len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        static const char msg[] = "keyrenew";

        ASSERT_TRUE(ctx);
        ASSERT_EQ(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL), 1);
        if (padding) {
                ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, padding), 1);
                if (padding == RSA_PKCS1_PSS_PADDING)
                        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
        }
        return EVP_DigestSign(ctx, sig, len, (const unsigned char *) msg, sizeof msg - 1);
}

static void digest_verify(EVP_PKEY *pub, const char *md, int padding, const unsigned char *sig, size_t len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        static const char msg[] = "keyrenew";

        ASSERT_TRUE(ctx);
        ASSERT_EQ(EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, pub, NULL), 1);
        if (padding) {
                ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, padding), 1);
                if (padding == RSA_PKCS1_PSS_PADDING)
                        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
        }
        ASSERT_EQ(EVP_DigestVerify(ctx, sig, len, (const unsigned char *) msg, sizeof msg - 1), 1);
}

static void sign_and_verify(EVP_PKEY *key, EVP_PKEY *pub, const char *md, int padding) {
        unsigned char sig[512];
        size_t len = sizeof sig;

        ASSERT_EQ(digest_sign(key, md, padding, sig, &len), 1);
        digest_verify(pub, md, padding, sig, len);
}

/* A self-signed certificate by the card. */
static X509 *self_signed(EVP_PKEY *key, EVP_PKEY *pub) {
        X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();

        ASSERT_TRUE(x && name);
        ASSERT_EQ(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) "Bob", -1,
                                             -1, 0),
                  1);
        ASSERT_EQ(X509_set_version(x, X509_VERSION_3), 1);
        ASSERT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
        ASSERT_EQ(X509_set_subject_name(x, name), 1);
        ASSERT_EQ(X509_set_issuer_name(x, name), 1);
        ASSERT_TRUE(X509_gmtime_adj(X509_getm_notBefore(x), 0));
        ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
        ASSERT_EQ(X509_set_pubkey(x, key), 1);
        ASSERT_TRUE(X509_sign(x, key, EVP_sha256()) > 0);
        ASSERT_EQ(X509_verify(x, pub), 1);
        ASSERT_EQ(X509_verify(x, X509_get0_pubkey(x)), 1);
        X509_NAME_free(name);
        return x;
}

static OSSL_CMP_MSG *captured;

/* Keeps the request and gives no answer: the protection is what we want. */
static OSSL_CMP_MSG *capture_request(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req) {
        ASSERT_TRUE(!captured);
        ASSERT_TRUE(captured = OSSL_CMP_MSG_dup(req));
        return NULL;
}

/* An ir protected with the card's key (signature protection; its POPO is
 * the card's signature too), which a CMP server holding the certificate
 * accepts. */
static void check_cmp_protection(EVP_PKEY *key, EVP_PKEY *pub) {
        _cleanup_(X509_freep) X509 *cert = self_signed(key, pub);
        _cleanup_(OSSL_CMP_CTX_freep) OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
        _cleanup_(OSSL_CMP_CTX_freep) OSSL_CMP_CTX *server = OSSL_CMP_CTX_new(NULL, NULL);
        _cleanup_(OSSL_CMP_MSG_freep) OSSL_CMP_MSG *req = NULL;

        ASSERT_TRUE(ctx && server);
        ASSERT_EQ(OSSL_CMP_CTX_set1_cert(ctx, cert), 1);
        ASSERT_EQ(OSSL_CMP_CTX_set1_pkey(ctx, key), 1);
        ASSERT_EQ(OSSL_CMP_CTX_set1_subjectName(ctx, X509_get_subject_name(cert)), 1);
        ASSERT_EQ(OSSL_CMP_CTX_set_transfer_cb(ctx, capture_request), 1);
        ASSERT_TRUE(!OSSL_CMP_exec_IR_ses(ctx));
        ASSERT_TRUE(req = TAKE_PTR(captured));
        ERR_clear_error();

        ASSERT_EQ(OSSL_CMP_CTX_set1_srvCert(server, cert), 1);
        ASSERT_EQ(OSSL_CMP_validate_msg(server, req), 1);
}

static void test_keys(OSSL_LIB_CTX *libctx) {
        static const TokenAlgorithm algs[] = { TOKEN_ALG_RSA2048, TOKEN_ALG_ECCP256, TOKEN_ALG_ECCP384 };

        for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *key = NULL;
                bool rsa = algs[i] == TOKEN_ALG_RSA2048;
                Fixture f;

                fixture_init(&f);
                card_key(&f, libctx, 0x9A, algs[i], &pub, &key);
                ASSERT_TRUE(EVP_PKEY_is_a(key, rsa ? "RSA" : "EC"));
                ASSERT_EQ(EVP_PKEY_get_bits(key), EVP_PKEY_get_bits(pub));
                ASSERT_EQ(EVP_PKEY_get_size(key), EVP_PKEY_get_size(pub));
                ASSERT_STREQ(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)), CARD_PROVIDER_NAME);
                ASSERT_EQ(EVP_PKEY_eq(key, pub), 1);

                verify_pin(&f);
                check_csr(key, pub);
                check_cmp_protection(key, pub);
                sign_and_verify(key, pub, "SHA256", rsa ? RSA_PKCS1_PADDING : 0);
                sign_and_verify(key, pub, "SHA384", rsa ? RSA_PKCS1_PADDING : 0);
                sign_and_verify(key, pub, "SHA512", rsa ? RSA_PKCS1_PADDING : 0);
                if (rsa) {
                        check_csr_pss(key, pub);
                        sign_and_verify(key, pub, "SHA256", RSA_PKCS1_PSS_PADDING);
                        sign_and_verify(key, pub, "SHA384", RSA_PKCS1_PSS_PADDING);
                }
                /* Every signature was the card's: CSR, certificate, CMP
                 * protection and POPO, and the EVP_DigestSign() ones. */
                ASSERT_EQ(piv_card_key(f.card, 0x9A)->uses, rsa ? 10 : 7);
                fixture_done(&f);
        }
}

static void test_default_context(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *plain = NULL;
        OSSL_PROVIDER *second = NULL;

        test_keys(NULL);
        /* Loaded twice: each load its own reference. */
        ASSERT_EQ(card_provider_load(NULL, &second), 0);
        ASSERT_EQ(OSSL_PROVIDER_unload(second), 1);
        ASSERT_EQ(OSSL_PROVIDER_available(NULL, CARD_PROVIDER_NAME), 1);
        /* Ordinary keys still come from the default provider. */
        ASSERT_TRUE(plain = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
        ASSERT_STREQ(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(plain)), "default");
}

static void test_own_context(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *key = NULL;
        OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
        OSSL_PROVIDER *prov = NULL;
        Fixture f;

        ASSERT_TRUE(libctx);
        fixture_init(&f);
        ASSERT_EQ(token_generate_key(f.token, 0x9A, TOKEN_ALG_ECCP256, TOKEN_PIN_POLICY_DEFAULT,
                                     TOKEN_TOUCH_POLICY_DEFAULT, &pub),
                  0);
        ASSERT_EQ(card_key_new(libctx, f.token, 0x9A, pub, &key), -ENXIO);
        fixture_done(&f);

        ASSERT_EQ(card_provider_load(libctx, &prov), 0);
        /* The process's default context knows nothing of it. */
        ASSERT_EQ(OSSL_PROVIDER_available(NULL, CARD_PROVIDER_NAME), 0);
        test_keys(libctx);
        ASSERT_EQ(OSSL_PROVIDER_unload(prov), 1);
        OSSL_LIB_CTX_free(libctx);
}

static void test_pin_rules(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *key = NULL, *pub9c = NULL, *key9c = NULL;
        unsigned char sig[512];
        size_t len = sizeof sig;
        Fixture f;

        fixture_init(&f);
        card_key(&f, NULL, 0x9A, TOKEN_ALG_ECCP256, &pub, &key);
        card_key(&f, NULL, 0x9C, TOKEN_ALG_ECCP256, &pub9c, &key9c);

        /* No PIN, no signature; the reason is the token's errno. */
        ERR_clear_error();
        ASSERT_TRUE(digest_sign(key, "SHA256", 0, sig, &len) <= 0);
        ASSERT_EQ(ERR_GET_REASON(ERR_peek_last_error()), EACCES);
        ERR_clear_error();

        verify_pin(&f);
        sign_and_verify(key, pub, "SHA256", 0);
        sign_and_verify(key9c, pub9c, "SHA256", 0);
        /* 9C: the PIN again before each signature. */
        len = sizeof sig;
        ASSERT_TRUE(digest_sign(key9c, "SHA256", 0, sig, &len) <= 0);
        ASSERT_EQ(ERR_GET_REASON(ERR_peek_last_error()), EACCES);
        ERR_clear_error();
        verify_pin(&f);
        sign_and_verify(key9c, pub9c, "SHA256", 0);
        /* 9A stays verified. */
        sign_and_verify(key, pub, "SHA256", 0);
        fixture_done(&f);
}

static void test_refused(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = NULL, *rsa1k = NULL, *key = NULL;
        Fixture f;

        fixture_init(&f);
        ASSERT_TRUE(ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
        ASSERT_TRUE(rsa1k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024));
        ASSERT_EQ(card_key_new(NULL, f.token, 0x9A, ed, &key), -EINVAL);
        ASSERT_EQ(card_key_new(NULL, f.token, 0x9A, rsa1k, &key), -EINVAL);
        ASSERT_TRUE(!key);
        fixture_done(&f);
}

int main(void) {
        OSSL_PROVIDER *prov = NULL;

        RUN(test_own_context);
        ASSERT_EQ(card_provider_load(NULL, &prov), 0);
        RUN(test_default_context);
        RUN(test_pin_rules);
        RUN(test_refused);
        ASSERT_EQ(OSSL_PROVIDER_unload(prov), 1);
        return 0;
}
