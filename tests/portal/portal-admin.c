/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-portal-admin: sets up the reference portal's directory and moves
 * orders through their states, as a CA's staff would on the real portal. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portal-ca.h"
#include "portal-db.h"
#include "portal-order.h"

#define PROG "keyrenew-portal-admin"

/* Exit codes, as tests/portal/README.md documents them. */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,     /* files, database or crypto failed */
        EXIT_USAGE = 2,    /* bad command line */
        EXIT_NOTFOUND = 3, /* no such order, or a certificate this portal did not issue */
        EXIT_STATE = 4,    /* the order's state does not allow this step */
};

static const char usage[] =
        "Usage: " PROG " [--dir DIR] COMMAND [ARG...]\n"
        "Sets up and runs the keyrenew reference portal's test CA and orders.\n"
        "DIR defaults to $KEYRENEW_PORTAL_DIR.\n\n"
        "  init DIR [--ca-alg rsa2048|ecp256] [--days N]\n"
        "                              make the RSA and EC test CAs, CMP signers, the TLS\n"
        "                              certificate (by the --ca-alg CA) and the database\n"
        "  issue --pubkey FILE --subject \"CN=..,O=..\" --out FILE [--ca rsa|ec]\n"
        "        [--usage sign|encrypt] [--days N]\n"
        "                              issue a customer certificate; prints ISSUER_HASH:SERIAL\n"
        "  order create --cert FILE [--review] [--rekey yes|no] [--validity-days N]\n"
        "                              a renewal order for that certificate; prints its id\n"
        "  order pay ID                awaiting-payment -> approved (under-review with --review)\n"
        "  order approve ID            under-review -> approved\n"
        "  order reject ID --reason TEXT\n"
        "                              under-review -> rejected (UTF-8, up to 1024 characters)\n"
        "  order show ID [--json]\n"
        "  order list [--json]\n"
        "  fault set [--status 429|500|503 [--retry-after SECONDS]] [--body garbage|oversized]\n"
        "            [--delay-ms N] [--count N]\n"
        "                              answer status requests with this error, a broken\n"
        "                              200 body or N ms late (N times); --status and --body\n"
        "                              exclude each other\n"
        "  fault clear\n"
        "  cmp-fault set --at kur|certconf --kind 500|drop|truncated|garbage [--count N]\n"
        "                              break the answer to that CMP message (N times): a 500\n"
        "                              before processing it, or, after processing it, no answer,\n"
        "                              half of it, or a body that is not a PKIMessage\n"
        "  cmp-fault clear\n"
        "  poll-interval SECONDS       the poll_interval of status answers (60..604800)\n";

static const char *portal_dir;

static int fail(int code, const char *fmt, ...) _printf_(2, 3);
static int fail(int code, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, PROG ": ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

static int fail_openssl(const char *what) {
        fprintf(stderr, PROG ": %s failed:\n", what);
        ERR_print_errors_fp(stderr);
        return EXIT_FAIL;
}

static int parse_int(const char *s, long min, long max, long *ret) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int open_db(sqlite3 **ret) {
        if (!portal_dir)
                return fail(EXIT_USAGE, "no portal directory: give --dir DIR or set KEYRENEW_PORTAL_DIR");
        if (db_open(portal_dir, false, ret) < 0)
                return fail(EXIT_FAIL, "cannot open %s/portal.db; run '" PROG " init %s' first", portal_dir,
                            portal_dir);
        return EXIT_OK;
}

static int db_fail(sqlite3 *db, const char *what) {
        return fail(EXIT_FAIL, "%s: database error: %s", what, sqlite3_errmsg(db));
}

static int cmd_init(int argc, char **argv) {
        static const struct option options[] = {
                { "ca-alg", required_argument, NULL, 'a' },
                { "days", required_argument, NULL, 'd' },
                {},
        };
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        CaKind tls_ca = CA_EC;
        long days = 3650;
        int c, r;

        optind = 0; /* glibc starts afresh: each command parses its own argv */
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        if (strcmp(optarg, "rsa2048") == 0)
                                tls_ca = CA_RSA;
                        else if (strcmp(optarg, "ecp256") == 0)
                                tls_ca = CA_EC;
                        else
                                return fail(EXIT_USAGE, "--ca-alg must be rsa2048 or ecp256, not '%s'",
                                            optarg);
                        break;
                case 'd':
                        if (parse_int(optarg, 1, 36500, &days) < 0)
                                return fail(EXIT_USAGE, "--days must be 1..36500, not '%s'", optarg);
                        break;
                default:
                        return fail(EXIT_USAGE, "init: unknown option; see --help");
                }
        if (optind + 1 != argc)
                return fail(EXIT_USAGE, "init needs exactly one argument: the directory");
        r = cas_create(argv[optind], tls_ca, (int) days);
        if (r == -EEXIST)
                return fail(EXIT_FAIL, "%s already holds a portal; use another directory", argv[optind]);
        if (r == -EIO)
                return fail_openssl("creating the test CAs");
        if (r < 0)
                return fail(EXIT_FAIL, "creating the test CAs in %s: %s", argv[optind], strerror(-r));
        if (db_open(argv[optind], true, &db) < 0)
                return fail(EXIT_FAIL, "creating %s/portal.db: %s", argv[optind],
                            db ? sqlite3_errmsg(db) : "out of memory");
        printf("%s: test CAs ca-rsa.pem and ca-ec.pem (both in ca-bundle.pem), CMP signers cmp-*.pem, "
               "TLS certificate tls.pem (by the %s CA), database portal.db\n",
               argv[optind], tls_ca == CA_RSA ? "RSA" : "EC");
        return EXIT_OK;
}

/* "CN=Zhang San,O=Example" into a name; values are UTF-8. */
static int parse_subject(const char *s, X509_NAME **ret) {
        _cleanup_(X509_NAME_freep) X509_NAME *n = X509_NAME_new();
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!n || !copy)
                return -ENOMEM;
        for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(part, '=');

                if (!eq || eq == part || eq[1] == '\0')
                        return -EINVAL;
                *eq = '\0';
                if (!X509_NAME_add_entry_by_txt(n, part, MBSTRING_UTF8, (unsigned char *) eq + 1, -1, -1, 0))
                        return -EINVAL;
        }
        if (X509_NAME_entry_count(n) == 0)
                return -EINVAL;
        *ret = TAKE_PTR(n);
        return 0;
}

/* A public key from a PEM public key, private key or certificate file. */
static int read_pubkey(const char *path, EVP_PKEY **ret) {
        _cleanup_(BIO_freep) BIO *b = BIO_new_file(path, "r");
        EVP_PKEY *k;

        if (!b)
                return -ENOENT;
        k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        if (!k && BIO_reset(b) == 0)
                k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        if (!k)
                return -EBADMSG;
        ERR_clear_error();
        *ret = k;
        return 0;
}

static int cmd_issue(int argc, char **argv) {
        static const struct option options[] = {
                { "pubkey", required_argument, NULL, 'k' },
                { "subject", required_argument, NULL, 's' },
                { "out", required_argument, NULL, 'o' },
                { "ca", required_argument, NULL, 'c' },
                { "usage", required_argument, NULL, 'u' },
                { "days", required_argument, NULL, 'd' },
                {},
        };
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        const char *key_path = NULL, *subject_s = NULL, *out = NULL, *ca_s = NULL, *usage_s = "sign";
        char hash[HASH_HEX_SIZE], serial[SERIAL_HEX_SIZE];
        PortalCas cas = {};
        CaKind kind;
        long days = 365;
        int c, r;

        optind = 0; /* glibc starts afresh: each command parses its own argv */
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_path = optarg;
                        break;
                case 's':
                        subject_s = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'c':
                        ca_s = optarg;
                        break;
                case 'u':
                        usage_s = optarg;
                        break;
                case 'd':
                        if (parse_int(optarg, 1, 36500, &days) < 0)
                                return fail(EXIT_USAGE, "--days must be 1..36500, not '%s'", optarg);
                        break;
                default:
                        return fail(EXIT_USAGE, "issue: unknown option; see --help");
                }
        if (!key_path || !subject_s || !out || optind != argc)
                return fail(EXIT_USAGE, "issue needs --pubkey, --subject and --out, and no other argument");
        if (strcmp(usage_s, "sign") != 0 && strcmp(usage_s, "encrypt") != 0)
                return fail(EXIT_USAGE, "--usage must be sign or encrypt, not '%s'", usage_s);
        if (parse_subject(subject_s, &subject) < 0)
                return fail(EXIT_USAGE, "--subject must look like \"CN=Name,O=Org\", not '%s'", subject_s);
        if (read_pubkey(key_path, &key) < 0)
                return fail(EXIT_FAIL, "%s holds no PEM public or private key", key_path);
        kind = EVP_PKEY_is_a(key, "RSA") ? CA_RSA : CA_EC;
        if (ca_s && ca_kind_from_string(ca_s, &kind) < 0)
                return fail(EXIT_USAGE, "--ca must be rsa or ec, not '%s'", ca_s);
        r = open_db(&db);
        if (r != EXIT_OK)
                return r;
        if (cas_load(portal_dir, &cas) < 0)
                return fail(EXIT_FAIL, "cannot load the test CAs from %s", portal_dir);

        bool sign = strcmp(usage_s, "sign") == 0;
        CertSpec spec = {
                .subject = subject,
                .pubkey = key,
                .days = (int) days,
                .key_usage = sign                        ? "critical,digitalSignature,nonRepudiation"
                             : EVP_PKEY_is_a(key, "RSA") ? "critical,keyEncipherment,dataEncipherment"
                                                         : "critical,keyAgreement",
                .ext_key_usage = sign ? "clientAuth,emailProtection" : "emailProtection",
        };
        r = ca_issue(&cas.ca[kind], &spec, &cert);
        cas_done(&cas);
        if (r < 0)
                return fail_openssl("issuing the certificate");
        if (db_cert_put(db, cert, "") < 0)
                return db_fail(db, "recording the certificate");
        r = pem_write_cert(out, cert);
        if (r < 0)
                return fail(EXIT_FAIL, "writing %s: %s", out, strerror(-r));
        if (cert_get_id(cert, hash, serial) < 0)
                return fail_openssl("reading the certificate's serial");
        printf("%s:%s\n", hash, serial);
        return EXIT_OK;
}

static int order_create(int argc, char **argv) {
        static const struct option options[] = {
                { "cert", required_argument, NULL, 'c' },
                { "review", no_argument, NULL, 'r' },
                { "rekey", required_argument, NULL, 'k' },
                { "validity-days", required_argument, NULL, 'v' },
                {},
        };
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        Order o = { .state = ORDER_AWAITING_PAYMENT, .rekey = true, .validity_days = 365 }, prev;
        const char *cert_path = NULL;
        PortalCas cas = {};
        CertRow row;
        long days;
        int c, r;

        optind = 0; /* glibc starts afresh: each command parses its own argv */
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        cert_path = optarg;
                        break;
                case 'r':
                        o.review = true;
                        break;
                case 'k':
                        if (strcmp(optarg, "yes") != 0 && strcmp(optarg, "no") != 0)
                                return fail(EXIT_USAGE, "--rekey must be yes or no, not '%s'", optarg);
                        o.rekey = strcmp(optarg, "yes") == 0;
                        break;
                case 'v':
                        if (parse_int(optarg, 1, 3650, &days) < 0)
                                return fail(EXIT_USAGE, "--validity-days must be 1..3650, not '%s'", optarg);
                        o.validity_days = (int) days;
                        break;
                default:
                        return fail(EXIT_USAGE, "order create: unknown option; see --help");
                }
        if (!cert_path || optind != argc)
                return fail(EXIT_USAGE, "order create needs --cert FILE and no other argument");
        if (pem_read_cert(cert_path, &cert) < 0)
                return fail(EXIT_FAIL, "%s holds no PEM certificate", cert_path);
        r = open_db(&db);
        if (r != EXIT_OK)
                return r;
        if (cas_load(portal_dir, &cas) < 0)
                return fail(EXIT_FAIL, "cannot load the test CAs from %s", portal_dir);
        r = cas_find_issuer(&cas, cert) ? 0 : -ENOENT;
        cas_done(&cas);
        if (r < 0)
                return fail(EXIT_NOTFOUND, "%s was not issued by this portal's CAs", cert_path);
        if (cert_get_id(cert, o.issuer_hash, o.serial) < 0)
                return fail_openssl("reading the certificate");

        if (db_begin(db) < 0)
                return db_fail(db, "starting a transaction");
        r = db_cert_put(db, cert, "");
        if (r >= 0)
                r = db_cert_get(db, o.issuer_hash, o.serial, &row);
        if (r >= 0) {
                bool revoked = row.revoked_at != 0;

                cert_row_done(&row);
                if (revoked) {
                        db_rollback(db);
                        return fail(EXIT_STATE, "%s is revoked; it cannot be renewed", cert_path);
                }
                r = db_order_newest(db, o.issuer_hash, o.serial, &prev);
                if (r >= 0) {
                        bool open = prev.state != ORDER_REJECTED && prev.state != ORDER_INSTALLED;

                        if (open) {
                                db_rollback(db);
                                r = fail(EXIT_STATE, "the certificate already has order %s (%s)", prev.id,
                                         order_state_to_string(prev.state));
                                order_done(&prev);
                                return r;
                        }
                        order_done(&prev);
                } else if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0)
                r = db_order_create(db, &o);
        if (r >= 0)
                r = db_commit(db);
        if (r < 0) {
                r = db_fail(db, "creating the order");
                db_rollback(db);
                return r;
        }
        printf("%s\n", o.id);
        return EXIT_OK;
}

typedef enum Step {
        STEP_PAY,
        STEP_APPROVE,
        STEP_REJECT,
} Step;

/* Why step cannot be taken in o's state, or NULL when it can. */
static const char *step_refusal(Step step, const Order *o, char *buf, size_t cap) {
        const char *state = order_state_to_string(o->state);

        switch (step) {
        case STEP_PAY:
                if (o->state == ORDER_AWAITING_PAYMENT)
                        return NULL;
                snprintf(buf, cap, "order %s is already paid (it is %s)", o->id, state);
                break;
        case STEP_APPROVE:
        case STEP_REJECT:
                if (o->state == ORDER_UNDER_REVIEW)
                        return NULL;
                if (o->state == ORDER_AWAITING_PAYMENT)
                        snprintf(buf, cap, "order %s is awaiting payment; pay it first", o->id);
                else if (o->state == ORDER_REJECTED)
                        snprintf(buf, cap, "order %s was rejected; create a new order", o->id);
                else
                        snprintf(buf, cap, "order %s is %s; only an order under review can be %s", o->id,
                                 state, step == STEP_APPROVE ? "approved" : "rejected");
                break;
        }
        return buf;
}

static int order_step(Step step, const char *id, const char *reason) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        char why[256];
        Order o;
        int r;

        r = open_db(&db);
        if (r != EXIT_OK)
                return r;
        if (db_begin(db) < 0)
                return db_fail(db, "starting a transaction");
        r = db_order_get(db, id, &o);
        if (r == -ENOENT) {
                db_rollback(db);
                return fail(EXIT_NOTFOUND, "no order %s; '" PROG " order list' shows them", id);
        }
        if (r < 0) {
                r = db_fail(db, "reading the order");
                db_rollback(db);
                return r;
        }
        if (step_refusal(step, &o, why, sizeof(why))) {
                db_rollback(db);
                order_done(&o);
                return fail(EXIT_STATE, "%s", why);
        }
        if (step == STEP_REJECT) {
                free(o.reject_reason);
                o.reject_reason = strdup(reason);
        }
        o.state = step == STEP_REJECT            ? ORDER_REJECTED
                  : step == STEP_PAY && o.review ? ORDER_UNDER_REVIEW
                                                 : ORDER_APPROVED;
        r = step == STEP_REJECT && !o.reject_reason ? -ENOMEM : db_order_update(db, &o);
        if (r >= 0)
                r = db_commit(db);
        if (r < 0) {
                r = db_fail(db, "updating the order");
                db_rollback(db);
        } else {
                printf("%s %s\n", o.id, order_state_to_string(o.state));
                r = EXIT_OK;
        }
        order_done(&o);
        return r;
}

static void print_json(json_t *j) {
        _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

        if (s)
                printf("%s\n", s);
}

/* The protocol's order object plus what only the CA sees. */
static int order_admin_json(sqlite3 *db, const Order *o, json_t **ret) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char cert[CERT_ID_SIZE];
        int r;

        r = order_to_json(db, o, NULL, &j);
        if (r < 0)
                return r;
        snprintf(cert, sizeof(cert), "%s:%s", o->issuer_hash, o->serial);
        if (json_object_set_new(j, "cert", json_string(cert)) < 0 ||
            json_object_set_new(j, "review", json_boolean(o->review)) < 0 ||
            json_object_set_new(j, "new_serial",
                                o->new_serial[0] ? json_string(o->new_serial) : json_null()) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(j);
        return 0;
}

static void print_order_text(sqlite3 *db, const Order *o) {
        char created[21] = "", updated[21] = "";

        (void) time_to_rfc3339(o->created, created);
        (void) time_to_rfc3339(o->updated, updated);
        printf("order          %s\n", o->id);
        printf("state          %s\n", order_state_to_string(o->state));
        printf("certificate    %s:%s\n", o->issuer_hash, o->serial);
        printf("rekey          %s\n", o->rekey ? "yes" : "no");
        printf("validity       %d days\n", o->validity_days);
        printf("review         %s\n", o->review ? "yes" : "no");
        if (o->reject_reason)
                printf("reject reason  %s\n", o->reject_reason);
        if (o->new_serial[0])
                printf("new serial     %s\n", o->new_serial);
        printf("created        %s\n", created);
        printf("updated        %s\n", updated);
}

static int order_show(const char *id, bool json) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        Order o;
        int r;

        r = open_db(&db);
        if (r != EXIT_OK)
                return r;
        r = db_order_get(db, id, &o);
        if (r == -ENOENT)
                return fail(EXIT_NOTFOUND, "no order %s; '" PROG " order list' shows them", id);
        if (r < 0)
                return db_fail(db, "reading the order");
        if (json) {
                r = order_admin_json(db, &o, &j);
                if (r >= 0)
                        print_json(j);
        } else
                print_order_text(db, &o);
        order_done(&o);
        return r < 0 ? fail(EXIT_FAIL, "formatting the order: %s", strerror(-r)) : EXIT_OK;
}

typedef struct ListContext {
        sqlite3 *db;
        json_t *array; /* NULL for text */
} ListContext;

static int list_one(const Order *o, void *userdata) {
        ListContext *ctx = userdata;
        json_t *j;
        int r;

        if (!ctx->array) {
                printf("%s  %-16s  %s:%s\n", o->id, order_state_to_string(o->state), o->issuer_hash,
                       o->serial);
                return 0;
        }
        r = order_admin_json(ctx->db, o, &j);
        if (r < 0)
                return r;
        return json_array_append_new(ctx->array, j) == 0 ? 0 : -ENOMEM;
}

static int order_list(bool json) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        _cleanup_(json_decrefp) json_t *array = NULL;
        ListContext ctx;
        int r;

        r = open_db(&db);
        if (r != EXIT_OK)
                return r;
        if (json && !(array = json_array()))
                return fail(EXIT_FAIL, "out of memory");
        ctx = (ListContext){ .db = db, .array = array };
        r = db_order_foreach(db, list_one, &ctx);
        if (r < 0)
                return db_fail(db, "listing the orders");
        if (array)
                print_json(array);
        return EXIT_OK;
}

static int cmd_order(int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "reason", required_argument, NULL, 'r' },
                {},
        };
        const char *verb = argc > 1 ? argv[1] : NULL, *reason = NULL;
        bool json = false;
        size_t len;
        int c;

        if (!verb)
                return fail(EXIT_USAGE, "order needs a verb: create, pay, approve, reject, show or list");
        if (strcmp(verb, "create") == 0)
                return order_create(argc - 1, argv + 1);
        argc--;
        argv++;
        optind = 0; /* glibc starts afresh: each command parses its own argv */
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'r':
                        reason = optarg;
                        break;
                default:
                        return fail(EXIT_USAGE, "order %s: unknown option; see --help", verb);
                }
        if (strcmp(verb, "list") == 0)
                return optind == argc ? order_list(json)
                                      : fail(EXIT_USAGE, "order list takes no argument but --json");
        if (optind + 1 != argc)
                return fail(EXIT_USAGE, "order %s needs exactly one order id", verb);
        if (strcmp(verb, "show") == 0)
                return order_show(argv[optind], json);
        if (json)
                return fail(EXIT_USAGE, "--json goes with show and list only");
        if (strcmp(verb, "reject") == 0) {
                if (!reason || reason[0] == '\0')
                        return fail(EXIT_USAGE, "order reject needs --reason TEXT: the customer reads it");
                if (utf8_text_length(reason, &len) < 0)
                        return fail(EXIT_USAGE, "the reason must be UTF-8 text without control characters");
                if (len > REJECT_REASON_MAX)
                        return fail(EXIT_USAGE, "the reason has %zu characters; at most %d are allowed", len,
                                    REJECT_REASON_MAX);
                return order_step(STEP_REJECT, argv[optind], reason);
        }
        if (reason)
                return fail(EXIT_USAGE, "--reason goes with reject only");
        if (strcmp(verb, "pay") == 0)
                return order_step(STEP_PAY, argv[optind], NULL);
        if (strcmp(verb, "approve") == 0)
                return order_step(STEP_APPROVE, argv[optind], NULL);
        return fail(EXIT_USAGE, "unknown order verb '%s'; see --help", verb);
}

static int set_settings(const char *const *names, const long long *values, size_t n) {
        _cleanup_(sqlite3_closep) sqlite3 *db = NULL;
        int r;

        r = open_db(&db);
        if (r != EXIT_OK)
                return r;
        r = db_begin(db);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = db_setting_set(db, names[i], values[i]);
        if (r >= 0)
                r = db_commit(db);
        if (r < 0) {
                r = db_fail(db, "writing the settings");
                db_rollback(db);
                return r;
        }
        return EXIT_OK;
}

static int cmd_fault(int argc, char **argv) {
        static const struct option options[] = {
                { "status", required_argument, NULL, 's' },
                { "retry-after", required_argument, NULL, 'r' },
                { "count", required_argument, NULL, 'c' },
                { "body", required_argument, NULL, 'b' },
                { "delay-ms", required_argument, NULL, 'd' },
                {},
        };
        static const char *const names[] = { "fault_status", "fault_retry_after", "fault_count",
                                             "fault_body", "fault_delay_ms" };
        long status = 0, retry_after = -1, count = -1, body = FAULT_BODY_NONE, delay_ms = 0;
        const char *verb = argc > 1 ? argv[1] : "";
        int c;

        if (strcmp(verb, "clear") == 0)
                return argc == 2 ? set_settings(names, (const long long[]){ 0, -1, -1, 0, 0 }, 5)
                                 : fail(EXIT_USAGE, "fault clear takes no argument");
        if (strcmp(verb, "set") != 0)
                return fail(EXIT_USAGE, "fault needs set or clear");
        argc--;
        argv++;
        optind = 0; /* glibc starts afresh: each command parses its own argv */
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        if (parse_int(optarg, 429, 503, &status) < 0 ||
                            (status != 429 && status != 500 && status != 503))
                                return fail(EXIT_USAGE, "--status must be 429, 500 or 503, not '%s'",
                                            optarg);
                        break;
                case 'r':
                        if (parse_int(optarg, 0, INT_MAX, &retry_after) < 0)
                                return fail(EXIT_USAGE, "--retry-after must be seconds, not '%s'", optarg);
                        break;
                case 'c':
                        if (parse_int(optarg, 1, INT_MAX, &count) < 0)
                                return fail(EXIT_USAGE, "--count must be a positive number, not '%s'",
                                            optarg);
                        break;
                case 'b':
                        if (strcmp(optarg, "garbage") == 0)
                                body = FAULT_BODY_GARBAGE;
                        else if (strcmp(optarg, "oversized") == 0)
                                body = FAULT_BODY_OVERSIZED;
                        else
                                return fail(EXIT_USAGE, "--body must be garbage or oversized, not '%s'",
                                            optarg);
                        break;
                case 'd':
                        if (parse_int(optarg, 1, 60000, &delay_ms) < 0)
                                return fail(EXIT_USAGE, "--delay-ms must be 1..60000 milliseconds, not '%s'",
                                            optarg);
                        break;
                default:
                        return fail(EXIT_USAGE, "fault set: unknown option; see --help");
                }
        if (optind != argc || (status == 0 && body == FAULT_BODY_NONE && delay_ms == 0))
                return fail(
                        EXIT_USAGE,
                        "fault set needs --status 429|500|503, --body garbage|oversized or --delay-ms N, "
                        "and no other argument");
        if (status != 0 && body != FAULT_BODY_NONE)
                return fail(EXIT_USAGE, "--status and --body exclude each other: --body is a 200 answer");
        if (retry_after >= 0 && status != 429 && status != 503)
                return fail(EXIT_USAGE, "--retry-after goes with --status 429 or 503 only");
        return set_settings(names, (const long long[]){ status, retry_after, count, body, delay_ms }, 5);
}

static int cmd_cmp_fault(int argc, char **argv) {
        static const struct option options[] = {
                { "at", required_argument, NULL, 'a' },
                { "kind", required_argument, NULL, 'k' },
                { "count", required_argument, NULL, 'c' },
                {},
        };
        static const char *const names[] = { "cmp_fault_kind", "cmp_fault_at", "cmp_fault_count" };
        static const char *const kinds[] = { [CMP_FAULT_STATUS_500] = "500",
                                             [CMP_FAULT_DROP] = "drop",
                                             [CMP_FAULT_TRUNCATED] = "truncated",
                                             [CMP_FAULT_GARBAGE] = "garbage" };
        long kind = CMP_FAULT_NONE, at = -1, count = -1;
        const char *verb = argc > 1 ? argv[1] : "";
        int c;

        if (strcmp(verb, "clear") == 0)
                return argc == 2 ? set_settings(names, (const long long[]){ CMP_FAULT_NONE, -1, -1 }, 3)
                                 : fail(EXIT_USAGE, "cmp-fault clear takes no argument");
        if (strcmp(verb, "set") != 0)
                return fail(EXIT_USAGE, "cmp-fault needs set or clear");
        argc--;
        argv++;
        optind = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        if (strcmp(optarg, "kur") == 0)
                                at = CMP_BODY_KUR;
                        else if (strcmp(optarg, "certconf") == 0)
                                at = CMP_BODY_CERTCONF;
                        else
                                return fail(EXIT_USAGE, "--at must be kur or certconf, not '%s'", optarg);
                        break;
                case 'k':
                        for (size_t i = 1; i < ELEMENTSOF(kinds); i++)
                                if (strcmp(optarg, kinds[i]) == 0)
                                        kind = (long) i;
                        if (kind == CMP_FAULT_NONE)
                                return fail(EXIT_USAGE,
                                            "--kind must be 500, drop, truncated or garbage, not '%s'",
                                            optarg);
                        break;
                case 'c':
                        if (parse_int(optarg, 1, INT_MAX, &count) < 0)
                                return fail(EXIT_USAGE, "--count must be a positive number, not '%s'",
                                            optarg);
                        break;
                default:
                        return fail(EXIT_USAGE, "cmp-fault set: unknown option; see --help");
                }
        if (optind != argc || kind == CMP_FAULT_NONE || at < 0)
                return fail(EXIT_USAGE, "cmp-fault set needs --at and --kind, and no other argument");
        return set_settings(names, (const long long[]){ kind, at, count }, 3);
}

static int cmd_poll_interval(int argc, char **argv) {
        static const char *const names[] = { "poll_interval" };
        long seconds;

        if (argc != 2 || parse_int(argv[1], 60, 604800, &seconds) < 0)
                return fail(EXIT_USAGE, "poll-interval needs one number of seconds, 60..604800");
        return set_settings(names, (const long long[]){ seconds }, 1);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "dir", required_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *cmd;
        int c;

        portal_dir = getenv("KEYRENEW_PORTAL_DIR");
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        portal_dir = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return fail(EXIT_USAGE, "unknown option '%s'; see --help", argv[optind - 1]);
                }
        if (optind >= argc)
                return fail(EXIT_USAGE, "no command; see --help");
        cmd = argv[optind];
        argc -= optind;
        argv += optind;
        if (strcmp(cmd, "init") == 0)
                return cmd_init(argc, argv);
        if (strcmp(cmd, "issue") == 0)
                return cmd_issue(argc, argv);
        if (strcmp(cmd, "order") == 0)
                return cmd_order(argc, argv);
        if (strcmp(cmd, "fault") == 0)
                return cmd_fault(argc, argv);
        if (strcmp(cmd, "cmp-fault") == 0)
                return cmd_cmp_fault(argc, argv);
        if (strcmp(cmd, "poll-interval") == 0)
                return cmd_poll_interval(argc, argv);
        return fail(EXIT_USAGE, "unknown command '%s'; see --help", cmd);
}
