/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One whole renewal as the daemon will run it, with card keys: the virtual
 * card's applet in-process (tests/vcard), its keys as card-backed EVP_PKEYs
 * (common/card-provider.h), the journal (daemon/renewal-journal.h) and the
 * CMP client (daemon/cmp-client.h) against a portal.
 *
 *   cmp-card-probe --url URL --ca-bundle PEM --trusted PEM --state-dir DIR
 *                  [--alg ec|rsa] [--keep-journal]
 *
 * 1. Generates the old key in slot 9A and prints
 *    {"old_public_key": "DIR/old-pub.pem"}.
 * 2. Reads "CERT.pem ORDER_ID" from stdin: the certificate the portal
 *    issued for that key, and the order to renew.
 * 3. Journals the renewal, generates the new key in slot 9D, sends kur
 *    (protected by 9A, POPO by 9D); in the install step journals the
 *    certificate, writes it to 9D, reads it back, test-signs with 9D; then
 *    certConf, and the journal's last steps and history line.
 *    --keep-journal leaves the finished journal in DIR rather than moving
 *    it to the history, for the test to read.
 * 4. Prints the outcome as JSON; exit status 0 on success. Not installed. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card-provider.h"
#include "cmp-client.h"
#include "piv-applet.h"
#include "piv-card.h"
#include "renewal-journal.h"
#include "secmem.h"
#include "token.h"
#include "x509-info.h"

#define OLD_SLOT 0x9A
#define NEW_SLOT 0x9D

typedef struct Renewal {
        Token *token;
        int dir_fd;
        RenewalJournal *journal;
        EVP_PKEY *new_key;
        const char *failure; /* the install step's reason for rejecting */
} Renewal;

static int transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                    size_t *ret_len) {
        return piv_applet_process(userdata, cmd, cmd_len, resp, resp_cap, ret_len);
}

_noreturn_ static void die(const char *what, int r) {
        printf("{\"fatal\":\"%s\",\"errno\":%d}\n", what, r);
        exit(2);
}

/* The daemon's install step: journal, write, read back, test-sign. */
static CmpConfirm install(const uint8_t *der, size_t len, X509 *cert, void *userdata,
                          const char **ret_reason) {
        Renewal *rn = userdata;
        TokenCertificate back = {};
        time_t now = time(NULL);

        if (renewal_journal_issued(rn->dir_fd, rn->journal, der, len, now) < 0)
                return CMP_CONFIRM_DEFER; /* not on disk: do not touch the card */
        if (token_put_certificate(rn->token, NEW_SLOT, der, len) < 0) {
                *ret_reason = rn->failure = "the certificate could not be written to the key";
                return CMP_CONFIRM_REJECT;
        }
        if (renewal_journal_advance(rn->dir_fd, rn->journal, RENEWAL_WRITTEN, now) < 0)
                return CMP_CONFIRM_DEFER;
        if (token_read_certificate(rn->token, NEW_SLOT, &back) < 0 || back.der_len != len ||
            memcmp(back.der, der, len) != 0 || card_key_check(rn->new_key, X509_get0_pubkey(cert)) < 0) {
                token_certificate_done(&back);
                *ret_reason = rn->failure = "the certificate on the key does not verify";
                return CMP_CONFIRM_REJECT;
        }
        token_certificate_done(&back);
        if (renewal_journal_advance(rn->dir_fd, rn->journal, RENEWAL_VERIFIED, now) < 0)
                return CMP_CONFIRM_DEFER;
        return CMP_CONFIRM_ACCEPT;
}

static void write_pem_pubkey(const char *path, EVP_PKEY *k) {
        FILE *f = fopen(path, "we");

        if (!f || !PEM_write_PUBKEY(f, k) || fclose(f) != 0)
                die("writing the public key", -EIO);
}

static X509 *read_cert(const char *path) {
        FILE *f = fopen(path, "re");
        X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

        if (f)
                fclose(f);
        return x;
}

static char *cert_id(X509 *x) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        X509Info *info = NULL;
        char *id = NULL;

        if (len > 0 && x509_info_parse(der, (size_t) len, &info) == 0) {
                const char *s = info->serial + strspn(info->serial, "0");
                if (asprintf(&id, "%s:%s", info->issuer_hash, *s ? s : "0") < 0)
                        id = NULL;
        }
        x509_info_free(info);
        OPENSSL_free(der);
        return id;
}

static size_t spki(EVP_PKEY *k, unsigned char **ret) {
        int n = i2d_PUBKEY(k, ret);
        if (n <= 0)
                die("encoding the new public key", -EIO);
        return (size_t) n;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "url", required_argument, NULL, 'u' },
                { "ca-bundle", required_argument, NULL, 'c' },
                { "trusted", required_argument, NULL, 't' },
                { "state-dir", required_argument, NULL, 'd' },
                { "alg", required_argument, NULL, 'a' },
                { "keep-journal", no_argument, NULL, 'k' },
                {},
        };
        CmpClientOptions o = {};
        const char *state_dir = NULL;
        bool keep_journal = false;
        TokenAlgorithm alg = TOKEN_ALG_ECCP256;
        char path[4096], line[4096], order[128], cert_path[4000];
        PivCard *card = piv_card_new();
        TokenTransport transport = { .transmit = transmit, .userdata = card };
        EVP_PKEY *old_pub = NULL, *new_pub = NULL;
        X509 *new_cert = NULL;
        Renewal rn = {};
        OSSL_PROVIDER *provider = NULL;
        unsigned char *new_spki = NULL;
        size_t spki_len;
        char *old_id;
        unsigned char *old_der = NULL;
        int old_der_len;
        CmpResult res;
        json_t *out;
        int c, r;
        uint8_t *mgm = secmem_alloc(sizeof piv_default_mgm_key);
        char *pin = secmem_strndup("123456", 6);

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        o.url = optarg;
                        break;
                case 'c':
                        o.ca_bundle = optarg;
                        break;
                case 't':
                        o.trusted = optarg;
                        break;
                case 'd':
                        state_dir = optarg;
                        break;
                case 'a':
                        alg = strcmp(optarg, "rsa") == 0 ? TOKEN_ALG_RSA2048 : TOKEN_ALG_ECCP256;
                        break;
                case 'k':
                        keep_journal = true;
                        break;
                default:
                        return 2;
                }
        if (!o.url || !o.trusted || !state_dir || optind != argc || !card || !mgm || !pin)
                return 2;
        rn.dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rn.dir_fd < 0)
                die("opening the state directory", -errno);
        if (card_provider_load(NULL, &provider) < 0 || token_open(&transport, &rn.token) < 0)
                die("opening the card", -EIO);
        memcpy(mgm, piv_default_mgm_key, sizeof piv_default_mgm_key);
        if (token_authenticate_mgm(rn.token, mgm, sizeof piv_default_mgm_key, TOKEN_ALG_3DES) < 0 ||
            token_verify_pin(rn.token, pin, NULL) < 0)
                die("authenticating to the card", -EACCES);

        /* 1: the old key, for the portal to certify. */
        if (token_generate_key(rn.token, OLD_SLOT, alg, TOKEN_PIN_POLICY_DEFAULT, TOKEN_TOUCH_POLICY_DEFAULT,
                               &old_pub) < 0 ||
            card_key_new(NULL, rn.token, OLD_SLOT, old_pub, &o.old_key) < 0)
                die("generating the old key", -EIO);
        (void) snprintf(path, sizeof(path), "%s/old-pub.pem", state_dir);
        write_pem_pubkey(path, old_pub);
        printf("{\"old_public_key\":\"%s\"}\n", path);
        fflush(stdout);

        /* 2: its certificate and the order. */
        if (!fgets(line, sizeof(line), stdin) || sscanf(line, "%3999s %127s", cert_path, order) != 2 ||
            !(o.old_cert = read_cert(cert_path)) || !(old_id = cert_id(o.old_cert)))
                die("reading the certificate and order", -EINVAL);

        old_der_len = i2d_X509(o.old_cert, &old_der);
        if (old_der_len <= 0)
                die("encoding the old certificate", -EINVAL);

        /* 3: the renewal, journalled before each step is acted on. */
        if (renewal_journal_start(rn.dir_fd,
                                  &(RenewalJournalStart){ .order_id = order,
                                                          .token_serial = "virtual-card",
                                                          .slot = OLD_SLOT,
                                                          .new_slot = NEW_SLOT,
                                                          .old_cert_id = old_id,
                                                          .old_cert = old_der,
                                                          .old_cert_len = (size_t) old_der_len,
                                                          .rekey = true,
                                                          .cmp_url = o.url,
                                                          .uid = -1 },
                                  time(NULL), &rn.journal) < 0)
                die("starting the journal", -EIO);
        if (token_generate_key(rn.token, NEW_SLOT, alg, TOKEN_PIN_POLICY_DEFAULT, TOKEN_TOUCH_POLICY_DEFAULT,
                               &new_pub) < 0 ||
            card_key_new(NULL, rn.token, NEW_SLOT, new_pub, &rn.new_key) < 0)
                die("generating the new key", -EIO);
        spki_len = spki(new_pub, &new_spki);
        if (renewal_journal_key_generated(rn.dir_fd, rn.journal, new_spki, spki_len, time(NULL)) < 0)
                die("journalling the new key", -EIO);
        o.new_key = rn.new_key;

        r = cmp_client_renew(&o, install, &rn, &new_cert, &res);
        if (r == 0 && (renewal_journal_advance(rn.dir_fd, rn.journal, RENEWAL_CONFIRMED, time(NULL)) < 0 ||
                       renewal_journal_advance(rn.dir_fd, rn.journal, RENEWAL_DONE, time(NULL)) < 0))
                die("journalling the confirmation", -EIO);
        if (r < 0 && r != -EINPROGRESS &&
            renewal_journal_end(rn.dir_fd, rn.journal, RENEWAL_FAILED,
                                rn.failure ?: cmp_result_message(&res, r), time(NULL)) < 0)
                die("journalling the failure", -EIO);
        if (!keep_journal && renewal_step_is_final(rn.journal->step) &&
            (renewal_history_append(rn.dir_fd, rn.journal, time(NULL)) < 0 ||
             renewal_journal_remove(rn.dir_fd, rn.journal) < 0))
                die("writing the history", -EIO);

        /* 4. */
        out = json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:I, s:I}", "rc", r, "message",
                        cmp_result_message(&res, r), "step", renewal_step_to_string(rn.journal->step),
                        "old_cert", old_id, "old_key_uses", (int) piv_card_key(card, OLD_SLOT)->uses,
                        "new_key_uses", (int) piv_card_key(card, NEW_SLOT)->uses, "wait_us",
                        (json_int_t) res.wait_us, "portal_us", (json_int_t) res.portal_us);
        if (out) {
                char *s = json_dumps(out, JSON_COMPACT);
                printf("%s\n", s ? s : "{}");
                free(s);
                json_decref(out);
        }

        X509_free(new_cert);
        X509_free(o.old_cert);
        EVP_PKEY_free(o.old_key);
        EVP_PKEY_free(rn.new_key);
        EVP_PKEY_free(old_pub);
        EVP_PKEY_free(new_pub);
        OPENSSL_free(new_spki);
        free(old_id);
        OPENSSL_free(old_der);
        renewal_journal_free(rn.journal);
        token_free(rn.token);
        piv_card_free(card);
        OSSL_PROVIDER_unload(provider);
        secmem_free(mgm);
        secmem_free(pin);
        close(rn.dir_fd);
        return r == 0 ? 0 : 1;
}
