/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Runs the daemon's portal status client for a few polls on its own uv
 * loop and prints each poll's outcome as one JSON line, for the
 * integration tests and for trying a portal by hand:
 *
 *   portal-status-probe --url https://127.0.0.1:46000 --ca bundle.pem \
 *       --cert ISSUER_HASH:SERIAL --cert-file cert.pem [--polls N] ...
 *
 * Between polls the client is stopped and started again (a start polls at
 * once), so the ETag of one poll is sent by the next; with --insert-key it
 * is told instead that a key holding all the certificates was inserted,
 * and after the last poll once more, printing when the next poll is due.  Exit status: 0 when
 * the polls ran (whatever they found), 1 when the client could not be set
 * up, 2 for a bad command line. */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "portal-client.h"
#include "x509-info.h"

#define CERTS_MAX 1024

typedef struct Probe {
        uv_loop_t loop;
        CurlLoop *curl;
        PortalClient *client;
        unsigned polls_left;
        unsigned polls_done;
        /* --insert-key: between polls, a key with these was inserted (no restart). */
        char **inserted;
        size_t n_inserted;
} Probe;

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)

static void openssl_freep(void *p) {
        OPENSSL_free(*(void **) p);
}

/* The identifier of the certificate in a PEM or DER file. */
static int cert_id_from_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(x509_info_freep) X509Info *info = NULL;
        _cleanup_(openssl_freep) unsigned char *der = NULL;
        int len, r;

        if (!f)
                return -errno;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        if (!x) {
                rewind(f);
                x = d2i_X509_fp(f, NULL);
        }
        if (!x)
                return -EBADMSG;
        len = i2d_X509(x, &der);
        if (len <= 0)
                return -EBADMSG;
        r = x509_info_parse(der, (size_t) len, &info);
        if (r < 0)
                return r;
        return portal_cert_id_from_info(info, ret);
}

static json_t *time_json(bool has, time_t t) {
        char buf[32];
        struct tm tm;

        if (!has || !gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return json_null();
        return json_string(buf);
}

static json_t *order_json(const PortalOrder *o) {
        if (!o)
                return json_null();
        return json_pack("{s:s, s:s, s:s, s:b, s:i, s:s, s:s?, s:s?, s:o, s:o}", "id", o->id, "state",
                         portal_order_state_to_string(o->state), "state_name", o->state_name, "rekey",
                         o->rekey, "validity_days", (json_int_t) o->validity_days, "page", o->page, "cmp",
                         o->cmp, "reject_reason", o->reject_reason, "not_after",
                         time_json(o->has_not_after, o->not_after), "updated", time_json(true, o->updated));
}

static void print_result(Probe *p, const PortalPollResult *res) {
        uint64_t next = portal_client_next_poll_ms(p->client), now = uv_now(&p->loop);
        _cleanup_(json_decrefp) json_t *certs = json_array(), *out = NULL;
        _cleanup_free_ char *text = NULL;

        for (size_t i = 0; certs && i < res->n_certs; i++)
                json_array_append_new(certs, json_pack("{s:s, s:b, s:o}", "cert", res->certs[i]->cert,
                                                       "known", res->certs[i]->known, "order",
                                                       order_json(res->certs[i]->order)));
        out = json_pack("{s:i, s:i, s:s?, s:s?, s:i, s:b, s:I, s:O}", "poll", (json_int_t) p->polls_done,
                        "error", (json_int_t) res->error, "errno",
                        res->error < 0 ? strerrorname_np(-res->error) : NULL, "message", res->error_message,
                        "http_status", (json_int_t) res->http_status, "not_modified", res->not_modified,
                        "next_poll_in_ms", (json_int_t) (next > now ? next - now : 0), "certificates",
                        certs);
        text = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (!text) {
                log_error("Out of memory");
                exit(EXIT_FAILURE);
        }
        printf("%s\n", text);
        fflush(stdout);
}

static void on_client_closed(void *userdata) {
        Probe *p = userdata;

        curl_loop_close(p->curl, NULL, NULL);
}

/* After the last poll with --insert-key: one more insertion, which must
 * not move the next poll if the last ask-now was less than a minute ago. */
static void print_last_insertion(Probe *p) {
        uint64_t next, now = uv_now(&p->loop);

        (void) portal_client_key_inserted(p->client, p->inserted, p->n_inserted);
        next = portal_client_next_poll_ms(p->client);
        printf("{\"after_insert_next_poll_in_ms\":%llu}\n",
               (unsigned long long) (next > now ? next - now : 0));
        fflush(stdout);
}

static void on_result(PortalClient *c, const PortalPollResult *res, void *userdata) {
        Probe *p = userdata;

        p->polls_done++;
        print_result(p, res);
        if (--p->polls_left == 0) {
                if (p->n_inserted > 0)
                        print_last_insertion(p);
                portal_client_close(c, on_client_closed, p);
                return;
        }
        if (p->n_inserted > 0)
                (void) portal_client_key_inserted(c, p->inserted, p->n_inserted);
        else {
                portal_client_stop(c);
                (void) portal_client_start(c);
        }
}

static uint32_t half_jitter(void *userdata) {
        return 0x80000000u;
}

static void help(void) {
        printf("portal-status-probe --url BASE [--ca FILE] [--cert ID]... [--cert-file FILE]...\n"
               "                    [--polls N] [--poll-interval SEC] [--connect-timeout-ms MS]\n"
               "                    [--timeout-ms MS] [--fixed-jitter] [--insert-key] [--verbose]\n");
}

typedef struct Args {
        PortalClientOptions options;
        char *certs[CERTS_MAX];
        size_t n_certs;
        unsigned polls;
        bool insert_key;
} Args;

static int parse_unsigned(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || end == s || v > UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int add_cert(Args *a, const char *id, const char *file) {
        int r = 0;

        if (a->n_certs >= CERTS_MAX)
                return -E2BIG;
        if (file)
                r = cert_id_from_file(file, &a->certs[a->n_certs]);
        else if (!(a->certs[a->n_certs] = strdup(id)))
                r = -ENOMEM;
        if (r < 0)
                return log_error_errno(r, "Cannot read the certificate %s", file);
        a->n_certs++;
        return 0;
}

static int parse_args(int argc, char **argv, Args *a) {
        static const struct option opts[] = {
                { "url", required_argument, NULL, 'u' },
                { "ca", required_argument, NULL, 'a' },
                { "cert", required_argument, NULL, 'c' },
                { "cert-file", required_argument, NULL, 'f' },
                { "polls", required_argument, NULL, 'n' },
                { "poll-interval", required_argument, NULL, 'i' },
                { "connect-timeout-ms", required_argument, NULL, 'C' },
                { "timeout-ms", required_argument, NULL, 'T' },
                { "fixed-jitter", no_argument, NULL, 'j' },
                { "insert-key", no_argument, NULL, 'k' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r = 0;

        while (r >= 0 && (c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'u':
                        a->options.base_url = optarg;
                        break;
                case 'a':
                        a->options.ca_bundle = optarg;
                        break;
                case 'c':
                        r = add_cert(a, optarg, NULL);
                        break;
                case 'f':
                        r = add_cert(a, NULL, optarg);
                        break;
                case 'n':
                        r = parse_unsigned(optarg, &a->polls);
                        break;
                case 'i':
                        r = parse_unsigned(optarg, &a->options.poll_interval_sec);
                        break;
                case 'C':
                        r = parse_unsigned(optarg, &a->options.connect_timeout_ms);
                        break;
                case 'T':
                        r = parse_unsigned(optarg, &a->options.timeout_ms);
                        break;
                case 'j':
                        a->options.random_u32 = half_jitter;
                        break;
                case 'k':
                        a->insert_key = true;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                default:
                        r = -EINVAL;
                }
        if (r >= 0 && (!a->options.base_url || optind < argc || a->polls == 0))
                r = -EINVAL;
        return r;
}

int main(int argc, char **argv) {
        Args a = { .polls = 1 };
        Probe p = {};
        int r, status = EXIT_FAILURE;

        log_setup("portal-status-probe", LOG_TARGET_STDERR);
        if (parse_args(argc, argv, &a) < 0) {
                help();
                status = 2;
                goto out;
        }
        a.options.on_result = on_result;
        a.options.userdata = &p;
        for (size_t i = 0; i < a.n_certs; i++)
                printf("{\"asking\":\"%s\"}\n", a.certs[i]);
        p.polls_left = a.polls;
        if (a.insert_key) {
                p.inserted = a.certs;
                p.n_inserted = a.n_certs;
        }
        if (uv_loop_init(&p.loop) < 0)
                goto out;
        r = curl_loop_init(&p.loop, &p.curl);
        if (r >= 0)
                r = portal_client_init(&p.loop, p.curl, &a.options, &p.client);
        if (r >= 0)
                r = portal_client_set_certs(p.client, a.certs, a.n_certs);
        if (r >= 0)
                r = portal_client_start(p.client);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the portal client for %s", a.options.base_url);
                /* Close what was made, so the loop can end cleanly. */
                if (p.client)
                        portal_client_close(p.client, on_client_closed, &p);
                else if (p.curl)
                        curl_loop_close(p.curl, NULL, NULL);
        }
        (void) uv_run(&p.loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&p.loop) == 0 && r >= 0)
                status = EXIT_SUCCESS;
out:
        for (size_t i = 0; i < a.n_certs; i++)
                free(a.certs[i]);
        return status;
}
