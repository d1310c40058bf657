/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-vcard issue: generate a key in a slot of a card file and store a
 * certificate for it, issued by a test CA (or self-signed). */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "card-objects.h"
#include "card-state.h"
#include "macro.h"
#include "piv-crypto.h"
#include "vcard-commands.h"
#include "vcard-faults.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)

typedef struct IssueOptions {
        const char *state, *subject, *ca_cert, *ca_key, *not_before, *not_after, *serial_hex, *out;
        uint8_t slot, algorithm;
        unsigned days;
        int usage; /* -1: from the slot, 0 signing, 1 encryption */
        uint8_t pin_policy;
} IssueOptions;

static void issue_usage(FILE *f) {
        fputs("Usage: keyrenew-vcard issue STATE --slot 9a|9c|9d|9e --algorithm rsa2048|eccp256|eccp384\n"
              "        --subject \"/CN=Alice/O=Example\" [--ca-cert ca.pem --ca-key ca-key.pem]\n"
              "        [--days N | --not-after YYYYMMDDHHMMSSZ] [--not-before YYYYMMDDHHMMSSZ]\n"
              "        [--usage signing|encryption] [--serial-number HEX] [--pin-policy never|once|always]\n"
              "        [--out FILE]\n",
              f);
}

/* "/CN=Alice/O=Example" as openssl's -subj writes it. */
static int parse_subject(const char *s, X509_NAME **ret) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!name || !copy)
                return -ENOMEM;
        if (copy[0] != '/')
                return -EINVAL;
        for (char *rdn = strtok_r(copy, "/", &save); rdn; rdn = strtok_r(NULL, "/", &save)) {
                char *eq = strchr(rdn, '=');
                if (!eq || eq == rdn || eq[1] == '\0')
                        return -EINVAL;
                *eq = '\0';
                if (!X509_NAME_add_entry_by_txt(name, rdn, MBSTRING_UTF8, (unsigned char *) eq + 1, -1, -1,
                                                0))
                        return -EINVAL;
        }
        if (X509_NAME_entry_count(name) == 0)
                return -EINVAL;
        *ret = TAKE_PTR(name);
        return 0;
}

static int set_serial(X509 *x, const char *hex) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        uint8_t rnd[16];

        if (hex) {
                if (!BN_hex2bn(&bn, hex) || (size_t) BN_num_bytes(bn) > 20 || BN_is_zero(bn))
                        return -EINVAL;
        } else {
                if (RAND_bytes(rnd, sizeof rnd) != 1)
                        return -EIO;
                rnd[0] &= 0x7F; /* positive, and of a fixed length */
                rnd[0] |= 0x40;
                bn = BN_bin2bn(rnd, sizeof rnd, NULL);
        }
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
                return -EIO;
        return 0;
}

static int set_validity(X509 *x, const IssueOptions *o) {
        time_t now = time(NULL);

        if (o->not_before ? !ASN1_TIME_set_string_X509(X509_getm_notBefore(x), o->not_before)
                          : !X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now))
                return -EINVAL;
        if (o->not_after ? !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), o->not_after)
                         : !X509_time_adj_ex(X509_getm_notAfter(x), (int) o->days, 0, &now))
                return -EINVAL;
        return 0;
}

static int add_extension(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
        int ok;

        if (!ext)
                return -EIO;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -EIO;
}

static int add_extensions(X509 *x, X509 *issuer, const IssueOptions *o) {
        bool rsa = o->algorithm == PIV_ALG_RSA2048 || o->algorithm == PIV_ALG_RSA1024;
        const char *usage;
        X509V3_CTX ctx;
        int r;

        if (o->usage == 1)
                usage = rsa ? "critical,keyEncipherment" : "critical,keyAgreement";
        else
                usage = "critical,digitalSignature,nonRepudiation";
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        if ((r = add_extension(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = add_extension(x, &ctx, NID_key_usage, usage)) < 0 ||
            (r = add_extension(x, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
            (r = add_extension(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
                return r;
        return 0;
}

static int load_ca(const IssueOptions *o, X509 **ret_cert, EVP_PKEY **ret_key) {
        _cleanup_fclose_ FILE *fc = fopen(o->ca_cert, "re");
        _cleanup_fclose_ FILE *fk = fopen(o->ca_key, "re");
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        if (!fc || !fk)
                return negative_errno();
        cert = PEM_read_X509(fc, NULL, NULL, NULL);
        key = PEM_read_PrivateKey(fk, NULL, NULL, NULL);
        if (!cert || !key || !X509_check_private_key(cert, key))
                return -EBADMSG;
        *ret_cert = TAKE_PTR(cert);
        *ret_key = TAKE_PTR(key);
        return 0;
}

static int make_certificate(const IssueOptions *o, EVP_PKEY *pkey, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_(X509_freep) X509 *ca = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
        int r;

        if (!x)
                return -ENOMEM;
        if (o->ca_cert && (r = load_ca(o, &ca, &ca_key)) < 0) {
                fprintf(stderr, "keyrenew-vcard issue: cannot use the CA %s / %s: %s\n", o->ca_cert,
                        o->ca_key, strerror(-r));
                return r;
        }
        r = parse_subject(o->subject, &subject);
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard issue: bad subject '%s'\n", o->subject);
                return r;
        }
        if (!X509_set_version(x, 2) || !X509_set_subject_name(x, subject) ||
            !X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : subject) || !X509_set_pubkey(x, pkey))
                return -EIO;
        if ((r = set_serial(x, o->serial_hex)) < 0 || (r = set_validity(x, o)) < 0 ||
            (r = add_extensions(x, ca ? ca : x, o)) < 0) {
                fprintf(stderr, "keyrenew-vcard issue: bad serial number, validity or extension\n");
                return r;
        }
        if (!X509_sign(x, ca_key ? ca_key : pkey, EVP_sha256()))
                return -EIO;
        *ret = TAKE_PTR(x);
        return 0;
}

static int write_pem(const char *path, X509 *cert) {
        _cleanup_fclose_ FILE *f = path ? fopen(path, "we") : NULL;

        if (path && !f)
                return negative_errno();
        if (!PEM_write_X509(f ? f : stdout, cert))
                return -EIO;
        return 0;
}

static int issue(const IssueOptions *o) {
        _cleanup_(piv_card_freep) PivCard *card = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        EVP_PKEY *pkey = NULL;
        unsigned line = 0;
        int r;

        r = card_state_load(o->state, &card, &line);
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard issue: cannot load %s (line %u): %s\n", o->state, line,
                        strerror(-r));
                return r;
        }
        r = piv_key_generate(o->algorithm, &pkey);
        if (r < 0)
                return r;
        r = make_certificate(o, pkey, &cert);
        if (r < 0) {
                EVP_PKEY_free(pkey);
                return r;
        }
        r = piv_card_set_key(card, o->slot, o->algorithm, o->pin_policy, 0, PIV_ORIGIN_GENERATED, pkey);
        if (r < 0) {
                EVP_PKEY_free(pkey);
                return r;
        }
        if ((r = card_objects_put_certificate(card, o->slot, cert)) < 0 ||
            (r = card_state_save(o->state, card)) < 0) {
                fprintf(stderr, "keyrenew-vcard issue: cannot store the certificate: %s\n", strerror(-r));
                return r;
        }
        return write_pem(o->out, cert);
}

static int parse_pin_policy(const char *s, uint8_t *ret) {
        static const char *const names[] = { "default", "never", "once", "always" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = (uint8_t) i;
                        return 0;
                }
        return -EINVAL;
}

static int parse_issue_options(int argc, char **argv, IssueOptions *o) {
        enum {
                OPT_SLOT = 256,
                OPT_ALG,
                OPT_SUBJECT,
                OPT_CA_CERT,
                OPT_CA_KEY,
                OPT_DAYS,
                OPT_NOT_AFTER,
                OPT_NOT_BEFORE,
                OPT_USAGE,
                OPT_SERIAL,
                OPT_OUT,
                OPT_PIN_POLICY
        };
        static const struct option options[] = {
                { "slot", required_argument, NULL, OPT_SLOT },
                { "algorithm", required_argument, NULL, OPT_ALG },
                { "subject", required_argument, NULL, OPT_SUBJECT },
                { "ca-cert", required_argument, NULL, OPT_CA_CERT },
                { "ca-key", required_argument, NULL, OPT_CA_KEY },
                { "days", required_argument, NULL, OPT_DAYS },
                { "not-after", required_argument, NULL, OPT_NOT_AFTER },
                { "not-before", required_argument, NULL, OPT_NOT_BEFORE },
                { "usage", required_argument, NULL, OPT_USAGE },
                { "serial-number", required_argument, NULL, OPT_SERIAL },
                { "out", required_argument, NULL, OPT_OUT },
                { "pin-policy", required_argument, NULL, OPT_PIN_POLICY },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        unsigned slot;
        int c, r = 0;

        while (r == 0 && (c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        issue_usage(stdout);
                        return 1;
                case OPT_SLOT:
                        r = sscanf(optarg, "%2x", &slot) == 1 && strlen(optarg) == 2 &&
                                            piv_slot_is_key((uint8_t) slot)
                                    ? 0
                                    : -EINVAL;
                        o->slot = (uint8_t) slot;
                        break;
                case OPT_ALG:
                        o->algorithm = piv_alg_from_string(optarg);
                        r = o->algorithm == PIV_ALG_RSA2048 || o->algorithm == PIV_ALG_RSA1024 ||
                                            o->algorithm == PIV_ALG_ECCP256 ||
                                            o->algorithm == PIV_ALG_ECCP384
                                    ? 0
                                    : -EINVAL;
                        break;
                case OPT_SUBJECT:
                        o->subject = optarg;
                        break;
                case OPT_CA_CERT:
                        o->ca_cert = optarg;
                        break;
                case OPT_CA_KEY:
                        o->ca_key = optarg;
                        break;
                case OPT_DAYS:
                        r = vcard_parse_number(optarg, true, &o->days);
                        if (r == 0 && o->days > 36500)
                                r = -EINVAL;
                        break;
                case OPT_NOT_AFTER:
                        o->not_after = optarg;
                        break;
                case OPT_NOT_BEFORE:
                        o->not_before = optarg;
                        break;
                case OPT_USAGE:
                        o->usage = strcmp(optarg, "signing") == 0      ? 0
                                   : strcmp(optarg, "encryption") == 0 ? 1
                                                                       : -2;
                        r = o->usage < 0 ? -EINVAL : 0;
                        break;
                case OPT_SERIAL:
                        o->serial_hex = optarg;
                        break;
                case OPT_OUT:
                        o->out = optarg;
                        break;
                case OPT_PIN_POLICY:
                        r = parse_pin_policy(optarg, &o->pin_policy);
                        break;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        fprintf(stderr, "keyrenew-vcard issue: bad value '%s'\n", optarg);
        }
        if (r == 0 && (optind != argc - 1 || o->slot == 0 || o->algorithm == 0 || !o->subject ||
                       !o->ca_cert != !o->ca_key)) {
                issue_usage(stderr);
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        if (o->usage == -1)
                o->usage = o->slot == 0x9D;
        o->state = argv[optind];
        return 0;
}

int vcard_issue_main(int argc, char **argv) {
        IssueOptions o = { .days = 365, .usage = -1 };
        int r;

        r = parse_issue_options(argc, argv, &o);
        if (r != 0)
                return r > 0 ? 0 : VCARD_EXIT_USAGE;
        return issue(&o) < 0 ? VCARD_EXIT_FAILURE : 0;
}
