/* SPDX-License-Identifier: GPL-2.0-or-later */
/* piv-probe: a developer's look at a card through keyrenew's own PIV
 * driver over real PC/SC: serial, PIN tries, certificates. Not installed.
 *
 *   piv-probe [READER]    READER: part of a reader's name (default: the
 *                         first reader with a card)
 *
 * PCSCLITE_CSOCK_NAME picks a private pcscd, as for any pcsc-lite client. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <PCSC/winscard.h>

#include "macro.h"
#include "pcsc-transport.h"
#include "token.h"
#include "x509-info.h"

static const char *serial_source(TokenSerialSource s) {
        static const char *const names[] = {
                [TOKEN_SERIAL_NONE] = "none",
                [TOKEN_SERIAL_VENDOR] = "vendor",
                [TOKEN_SERIAL_GUID] = "chuid-guid",
                [TOKEN_SERIAL_FASCN] = "chuid-fascn",
        };
        return names[s];
}

/* The first reader whose name contains want (any, when NULL) and that holds
 * a card. */
static int find_reader(const char *want, char **ret) {
        SCARDCONTEXT ctx;
        char *readers = NULL;
        DWORD len = SCARD_AUTOALLOCATE;
        LONG rv;
        int r = -ENODEV;

        rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
        if (rv != SCARD_S_SUCCESS)
                return pcsc_error_to_errno(rv);
        rv = SCardListReaders(ctx, NULL, (LPSTR) &readers, &len);
        if (rv != SCARD_S_SUCCESS)
                r = pcsc_error_to_errno(rv);
        for (const char *p = rv == SCARD_S_SUCCESS ? readers : ""; *p && r == -ENODEV; p += strlen(p) + 1) {
                SCARD_READERSTATE st = { .szReader = p, .dwCurrentState = SCARD_STATE_UNAWARE };

                if (want && !strstr(p, want))
                        continue;
                if (SCardGetStatusChange(ctx, 0, &st, 1) != SCARD_S_SUCCESS ||
                    !(st.dwEventState & SCARD_STATE_PRESENT))
                        continue;
                *ret = strdup(p);
                r = *ret ? 0 : -ENOMEM;
        }
        if (readers)
                (void) SCardFreeMemory(ctx, readers);
        (void) SCardReleaseContext(ctx);
        return r;
}

static void print_date(const char *what, time_t t) {
        struct tm tm;
        char buf[32] = "?";

        if (gmtime_r(&t, &tm))
                (void) strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("    %-12s %s\n", what, buf);
}

static void print_certificate(Token *t, const TokenCertificate *c) {
        _cleanup_(x509_info_freep) X509Info *i = NULL;
        TokenKeyMetadata m;
        int r;

        printf("  slot %s: %zu bytes\n", c->slot_name, c->der_len);
        r = x509_info_parse(c->der, c->der_len, &i);
        if (r < 0)
                printf("    (not a certificate: %s)\n", strerror(-r));
        else {
                printf("    %-12s %s\n", "subject", i->subject);
                printf("    %-12s %s\n", "issuer", i->issuer);
                printf("    %-12s %s\n", "serial", i->serial);
                print_date("not before", i->not_before);
                print_date("not after", i->not_after);
                printf("    %-12s %" PRId64 "\n", "days left", x509_info_days_left(i, time(NULL)));
                printf("    %-12s %s %u%s%s\n", "key", i->key_type, i->key_bits, i->curve ? " " : "",
                       i->curve ? i->curve : "");
                printf("    %-12s %s\n", "signature", i->signature_algorithm);
                printf("    %-12s %s%s\n", "usage", x509_usage_to_string(i->usage),
                       i->has_key_usage ? "" : " (no keyUsage)");
                printf("    %-12s %s\n", "issuer hash", i->issuer_hash);
                printf("    %-12s %s\n", "sha256", i->fingerprint);
        }
        r = token_key_metadata(t, c->slot, &m);
        if (r < 0)
                printf("    %-12s (%s)\n", "metadata", strerror(-r));
        else
                printf("    %-12s %s, pin policy %d, touch policy %d, origin %s\n", "metadata", m.algorithm,
                       m.pin_policy, m.touch_policy,
                       m.origin == TOKEN_KEY_ORIGIN_GENERATED  ? "generated"
                       : m.origin == TOKEN_KEY_ORIGIN_IMPORTED ? "imported"
                                                               : "unknown");
}

static int fail(const char *what, int r) {
        fprintf(stderr, "%s: %s\n", what, strerror(-r));
        return r;
}

static int probe(const char *reader) {
        _cleanup_(pcsc_transport_freep) PcscTransport *p = NULL;
        _cleanup_(token_freep) Token *t = NULL;
        TokenCertificate *certs = NULL;
        TokenIdentity id;
        TokenPinStatus pin;
        size_t n = 0;
        int r;

        r = pcsc_transport_open(reader, &p);
        if (r < 0)
                return fail("connect", r);
        r = token_open(pcsc_transport_get(p), &t);
        if (r < 0)
                return fail("open token", r);
        r = token_identify(t, &id);
        if (r < 0)
                return fail("identify", r);

        printf("reader       %s\n", reader);
        printf("driver       %s\n", token_driver_name(t));
        printf("serial       %s (%s)\n", id.serial, serial_source(id.serial_source));
        printf("chuid guid   %s\n", id.guid);
        printf("label        %s\n", id.label);
        if (id.has_version)
                printf("version      %u.%u.%u\n", id.version[0], id.version[1], id.version[2]);

        r = token_pin_status(t, &pin);
        if (r < 0)
                printf("pin          (%s)\n", strerror(-r));
        else if (pin.verified)
                printf("pin          verified\n");
        else
                printf("pin          %d tries left\n", pin.retries);

        r = token_list_certificates(t, &certs, &n);
        if (r < 0)
                return fail("certificates", r);
        printf("certificates %zu\n", n);
        for (size_t i = 0; i < n; i++)
                print_certificate(t, &certs[i]);
        token_certificates_free(certs, n);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *reader = NULL;
        int r;

        if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
                fprintf(stderr, "usage: %s [READER]\n", argv[0]);
                return 2;
        }
        r = find_reader(argc == 2 ? argv[1] : NULL, &reader);
        if (r < 0) {
                fprintf(stderr, "no reader with a card%s%s: %s\n", argc == 2 ? " matching " : "",
                        argc == 2 ? argv[1] : "", strerror(-r));
                return 1;
        }
        return probe(reader) < 0 ? 1 : 0;
}
