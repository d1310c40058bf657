/* SPDX-License-Identifier: GPL-2.0-or-later */
/* card-write-probe: the writing half of keyrenew's PIV driver and the
 * card-backed OpenSSL key over real PC/SC. Not installed.
 *
 *   card-write-probe READER SLOT ALGORITHM [MOVE-TO] < PIN
 *
 * READER: the exact reader name; SLOT: 9a, 9c, 9d, 9e or 82..95;
 * ALGORITHM: rsa2048, eccp256 or eccp384; the PIN is the first line of
 * standard input. It verifies the PIN (once: a wrong one is reported with
 * the tries left), takes the management key (the default one, or the
 * PIN-protected one), generates a key in SLOT, has the card sign a
 * self-signed certificate for it (CN=card-write-probe) through the
 * card-backed EVP_PKEY, writes it to SLOT, reads it back, and prints it as
 * PEM. With MOVE-TO (a slot as SLOT), a renewal's key swap: once the
 * certificate is signed, the key is moved from SLOT to MOVE-TO (MOVE KEY,
 * replacing the key there) and the certificate written to MOVE-TO instead.
 * On stderr: what it learnt about the management key, and "moved SLOT to
 * MOVE-TO". Exit status 0, or 1 with the failing step and its errno name
 * on stderr.
 *
 * PCSCLITE_CSOCK_NAME picks a private pcscd, as for any pcsc-lite client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "card-provider.h"
#include "macro.h"
#include "pcsc-transport.h"
#include "secmem.h"
#include "token.h"

#define PIN_MAX 64

static const uint8_t default_mgm_key[24] = {
        1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)

static int fail(const char *step, int r) {
        fprintf(stderr, "%s: %s (%s)\n", step, strerrorname_np(-r) ?: "?", strerror(-r));
        return r;
}

/* One line from stdin, read straight into locked memory. */
static int read_pin(char **ret) {
        _cleanup_secmem_ char *pin = secmem_alloc(PIN_MAX);
        size_t n = 0;
        int c;

        if (!pin)
                return negative_errno();
        while ((c = getchar()) != EOF && c != '\n')
                if (n + 1 < PIN_MAX)
                        pin[n++] = (char) c;
        *ret = TAKE_PTR(pin);
        return 0;
}

/* The default key when the card has it, else the PIN-protected one. */
static int authenticate(Token *t) {
        _cleanup_secmem_ uint8_t *key = NULL;
        TokenAlgorithm alg = TOKEN_ALG_3DES;
        TokenMgmInfo info;
        size_t len = sizeof default_mgm_key;
        int r;

        r = token_mgm_info(t, &info);
        if (r < 0)
                return fail("management key info", r);
        fprintf(stderr, "mgm algorithm=%02x default=%d pin-protected=%s\n", (unsigned) info.algorithm,
                info.is_default, info.pin_protected ? "yes" : "no");
        if (info.pin_protected) {
                r = token_get_protected_mgm_key(t, &key, &len, &alg);
                if (r < 0)
                        return fail("PIN-protected management key", r);
        } else {
                key = secmem_alloc(len);
                if (!key)
                        return fail("secmem", negative_errno());
                memcpy(key, default_mgm_key, len);
        }
        r = token_authenticate_mgm(t, key, len, alg);
        return r < 0 ? fail("management key", r) : 0;
}

static int self_signed(EVP_PKEY *key, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        X509_NAME *name;

        if (!x || !(name = X509_get_subject_name(x)) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                        (const unsigned char *) "card-write-probe", -1, -1, 0) ||
            !X509_set_issuer_name(x, name) || !X509_set_version(x, X509_VERSION_3) ||
            !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) || !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, key))
                return -ENOMEM;
        if (X509_sign(x, key, EVP_sha256()) <= 0)
                return -EIO;
        *ret = TAKE_PTR(x);
        return 0;
}

static int write_and_check(Token *t, unsigned slot, X509 *x) {
        unsigned char *der = NULL;
        TokenCertificate c;
        int len, r;

        len = i2d_X509(x, &der);
        if (len <= 0)
                return fail("DER", -ENOMEM);
        r = token_put_certificate(t, slot, der, (size_t) len);
        if (r < 0)
                fail("put certificate", r);
        if (r >= 0) {
                r = token_read_certificate(t, slot, &c);
                if (r < 0)
                        fail("read certificate", r);
        }
        if (r >= 0) {
                if (c.der_len != (size_t) len || memcmp(c.der, der, c.der_len) != 0)
                        r = fail("read back", -EBADMSG);
                token_certificate_done(&c);
        }
        OPENSSL_free(der);
        return r;
}

/* move_to 0: the key stays in slot. */
static int run(const char *reader, unsigned slot, TokenAlgorithm alg, unsigned move_to, const char *pin) {
        _cleanup_(pcsc_transport_freep) PcscTransport *p = NULL;
        _cleanup_(token_freep) Token *t = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *key = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        int r, left = -1;

        r = pcsc_transport_open(reader, &p);
        if (r < 0)
                return fail("connect", r);
        r = token_open(pcsc_transport_get(p), &t);
        if (r < 0)
                return fail("open", r);

        r = token_verify_pin(t, pin, &left);
        if (r == -EKEYREJECTED)
                fprintf(stderr, "wrong PIN, %d tries left\n", left);
        if (r < 0)
                return fail("verify PIN", r);
        r = authenticate(t);
        if (r < 0)
                return r;
        r = token_generate_key(t, slot, alg, TOKEN_PIN_POLICY_DEFAULT, TOKEN_TOUCH_POLICY_DEFAULT, &pub);
        if (r < 0)
                return fail("generate", r);
        r = card_key_new(NULL, t, slot, pub, &key);
        if (r < 0)
                return fail("card key", r);
        r = self_signed(key, &x);
        if (r < 0)
                return fail("sign certificate", r);
        if (move_to != 0) {
                r = token_move_key(t, slot, move_to);
                if (r < 0)
                        return fail("move key", r);
                fprintf(stderr, "moved %02x to %02x\n", slot, move_to);
                slot = move_to;
        }
        r = write_and_check(t, slot, x);
        if (r < 0)
                return r;
        return PEM_write_X509(stdout, x) ? 0 : fail("PEM", -EIO);
}

static int parse_alg(const char *s, TokenAlgorithm *ret) {
        *ret = strcmp(s, "rsa2048") == 0   ? TOKEN_ALG_RSA2048
               : strcmp(s, "eccp256") == 0 ? TOKEN_ALG_ECCP256
               : strcmp(s, "eccp384") == 0 ? TOKEN_ALG_ECCP384
                                           : TOKEN_ALG_DEFAULT;
        return *ret == TOKEN_ALG_DEFAULT ? -EINVAL : 0;
}

static int parse_slot(const char *s, unsigned *ret) {
        unsigned long slot;
        char *end = NULL;

        slot = strtoul(s, &end, 16);
        if (!end || *end || slot == 0 || slot > 0xFF) {
                fprintf(stderr, "bad slot %s\n", s);
                return -EINVAL;
        }
        *ret = (unsigned) slot;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_secmem_ char *pin = NULL;
        OSSL_PROVIDER *prov = NULL;
        TokenAlgorithm alg;
        unsigned slot, move_to = 0;
        int r;

        if ((argc != 4 && argc != 5) || parse_alg(argv[3], &alg) < 0) {
                fprintf(stderr,
                        "usage: card-write-probe READER SLOT rsa2048|eccp256|eccp384 [MOVE-TO] < PIN\n");
                return 2;
        }
        if (parse_slot(argv[2], &slot) < 0 || (argc == 5 && parse_slot(argv[4], &move_to) < 0))
                return 2;
        r = read_pin(&pin);
        if (r < 0)
                return fail("read PIN", r) < 0;
        r = card_provider_load(NULL, &prov);
        if (r < 0)
                return fail("provider", r) < 0;
        r = run(argv[1], slot, alg, move_to, pin);
        (void) OSSL_PROVIDER_unload(prov);
        return r < 0 ? 1 : 0;
}
