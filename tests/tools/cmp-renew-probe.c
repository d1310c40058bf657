/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Runs the daemon's CMP key update client (daemon/cmp-client.c) with PEM
 * keys, for the integration tests: one transaction against a portal, the
 * install step played by --then, the outcome as one JSON line on stdout.
 *
 *   cmp-renew-probe --url URL --trusted PEM --old-cert PEM --old-key PEM
 *                   --new-key PEM --cert-out PEM [--ca-bundle PEM]
 *                   [--then accept|reject:REASON|defer|die] [--timeout-ms N]
 *                   [--confirm-with-new-key]
 *
 * --then: what the install callback answers. "die" writes the certificate
 * and ends the process inside the callback (exit status 3), as a daemon
 * killed between issue and confirmation would. Exit status 0 when the
 * client returned 0, 1 otherwise, 2 for bad usage. Not installed. */

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmp-client.h"

typedef struct Install {
        const char *then;
        const char *cert_out;
        unsigned calls;
} Install;

static char *serial_hex(X509 *x) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL, *out = NULL;

        BN_free(bn);
        if (hex) {
                const char *p = hex;
                while (*p == '0' && p[1])
                        p++;
                out = strdup(p);
                for (char *q = out; q && *q; q++)
                        *q = (char) (*q >= 'A' && *q <= 'F' ? *q + 32 : *q);
        }
        OPENSSL_free(hex);
        return out;
}

static int write_cert(const char *path, X509 *x) {
        FILE *f = fopen(path, "we");
        int ok;

        if (!f)
                return -errno;
        ok = PEM_write_X509(f, x);
        return fclose(f) == 0 && ok ? 0 : -EIO;
}

static CmpConfirm on_install(const uint8_t *der, size_t len, X509 *cert, void *userdata,
                             const char **ret_reason) {
        Install *in = userdata;

        (void) der, (void) len;
        in->calls++;
        if (write_cert(in->cert_out, cert) < 0)
                return CMP_CONFIRM_DEFER;
        if (strcmp(in->then, "die") == 0) {
                char *s = serial_hex(cert);
                printf("{\"died_after_issue\":\"%s\"}\n", s ? s : "");
                fflush(stdout);
                _exit(3);
        }
        if (strncmp(in->then, "reject:", 7) == 0) {
                *ret_reason = in->then + 7;
                return CMP_CONFIRM_REJECT;
        }
        return strcmp(in->then, "defer") == 0 ? CMP_CONFIRM_DEFER : CMP_CONFIRM_ACCEPT;
}

static X509 *read_cert(const char *path) {
        FILE *f = fopen(path, "re");
        X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

        if (f)
                fclose(f);
        return x;
}

static EVP_PKEY *read_key(const char *path) {
        FILE *f = fopen(path, "re");
        EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

        if (f)
                fclose(f);
        return k;
}

static const char *const stages[] = { "setup", "request", "install", "confirm" };
static const char *const verdicts[] = { "accept", "reject", "defer" };

static void print_result(int r, const CmpResult *res, X509 *cert, const Install *in) {
        char *serial = cert ? serial_hex(cert) : NULL;
        json_t *o = json_pack(
                "{s:i, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:b, s:s?}", "rc", r,
                "errno", r < 0 ? strerrorname_np(-r) : "", "stage", stages[res->stage], "verdict",
                verdicts[res->verdict], "pki_status", res->pki_status, "fail_info", res->fail_info, "text",
                res->text, "detail", res->detail, "message", cmp_result_message(res, r), "http_status",
                (json_int_t) res->http_status, "exchanges", (int) res->exchanges, "install_calls",
                (int) in->calls, "wait_us", (json_int_t) res->wait_us, "portal_us",
                (json_int_t) res->portal_us, "portal_us_known", res->portal_us_known, "serial", serial);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

        printf("%s\n", line ? line : "{}");
        free(line);
        json_decref(o);
        free(serial);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "url", required_argument, NULL, 'u' },
                { "ca-bundle", required_argument, NULL, 'c' },
                { "trusted", required_argument, NULL, 't' },
                { "old-cert", required_argument, NULL, 'o' },
                { "old-key", required_argument, NULL, 'k' },
                { "new-key", required_argument, NULL, 'n' },
                { "cert-out", required_argument, NULL, 'w' },
                { "then", required_argument, NULL, 'x' },
                { "timeout-ms", required_argument, NULL, 'T' },
                { "confirm-with-new-key", no_argument, NULL, 'N' },
                {},
        };
        CmpClientOptions o = {};
        Install in = { .then = "accept" };
        const char *old_cert = NULL, *old_key = NULL, *new_key = NULL;
        CmpResult res;
        X509 *cert = NULL;
        int c, r;

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
                case 'o':
                        old_cert = optarg;
                        break;
                case 'k':
                        old_key = optarg;
                        break;
                case 'n':
                        new_key = optarg;
                        break;
                case 'w':
                        in.cert_out = optarg;
                        break;
                case 'x':
                        in.then = optarg;
                        break;
                case 'T':
                        o.timeout_ms = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'N':
                        o.confirm_with_new_key = true;
                        break;
                default:
                        return 2;
                }
        if (!o.url || !o.trusted || !old_cert || !old_key || !new_key || !in.cert_out || optind != argc) {
                fprintf(stderr, "usage: see the comment at the top of cmp-renew-probe.c\n");
                return 2;
        }
        o.old_cert = read_cert(old_cert);
        o.old_key = read_key(old_key);
        o.new_key = read_key(new_key);
        if (!o.old_cert || !o.old_key || !o.new_key) {
                fprintf(stderr, "cannot read the PEM files\n");
                return 2;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;

        r = cmp_client_renew(&o, on_install, &in, &cert, &res);
        print_result(r, &res, cert, &in);

        X509_free(cert);
        X509_free(o.old_cert);
        EVP_PKEY_free(o.old_key);
        EVP_PKEY_free(o.new_key);
        curl_global_cleanup();
        return r == 0 ? 0 : 1;
}
