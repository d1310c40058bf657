/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-vcard show: print a card file's state, for people or (--json)
 * for tests. Never prints PIN, PUK or key values. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>

#include "card-objects.h"
#include "card-state.h"
#include "macro.h"
#include "vcard-commands.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

static const char *const pin_policy_names[] = { "default", "never", "once", "always" };

static char *name_to_string(const X509_NAME *name) {
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        char *s = NULL;
        char *data;
        long len;

        if (!bio || X509_NAME_print_ex(bio, name, 0,
                                       (XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ & ~ASN1_STRFLGS_ESC_MSB) |
                                               ASN1_STRFLGS_UTF8_CONVERT) < 0)
                return NULL;
        len = BIO_get_mem_data(bio, &data);
        if (len >= 0)
                s = strndup(data, (size_t) len);
        return s;
}

static int time_to_string(const ASN1_TIME *t, char *buf, size_t cap) {
        struct tm tm;

        if (!ASN1_TIME_to_tm(t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        return 0;
}

static json_t *certificate_json(X509 *x) {
        _cleanup_free_ char *subject = name_to_string(X509_get_subject_name(x));
        _cleanup_free_ char *issuer = name_to_string(X509_get_issuer_name(x));
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *serial = bn ? BN_bn2hex(bn) : NULL;
        char not_before[32] = "", not_after[32] = "";
        json_t *j = NULL;

        BN_free(bn);
        if (subject && issuer && serial &&
            time_to_string(X509_get0_notBefore(x), not_before, sizeof not_before) == 0 &&
            time_to_string(X509_get0_notAfter(x), not_after, sizeof not_after) == 0)
                j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject", subject, "issuer", issuer, "serial",
                              serial, "not_before", not_before, "not_after", not_after);
        OPENSSL_free(serial);
        return j;
}

static int slot_json(const PivCard *c, uint8_t slot, json_t **ret) {
        PivKey *k = piv_card_key((PivCard *) c, slot);
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char name[3];
        int r;

        r = card_objects_get_certificate(c, slot, &cert);
        if (!k && r == 0)
                return 0;
        snprintf(name, sizeof name, "%02x", slot);
        j = json_pack("{s:s}", "slot", name);
        if (!j)
                return -ENOMEM;
        if (k)
                json_object_update_new(
                        j, json_pack("{s:s, s:s, s:s, s:i}", "algorithm", piv_alg_to_string(k->algorithm),
                                     "pin_policy", pin_policy_names[k->pin_policy & 3], "origin",
                                     k->origin == PIV_ORIGIN_GENERATED ? "generated" : "imported", "uses",
                                     (json_int_t) k->uses));
        if (r > 0)
                json_object_set_new(j, "certificate", certificate_json(cert));
        else if (r < 0)
                json_object_set_new(j, "certificate", json_string("unparsable"));
        *ret = TAKE_PTR(j);
        return 1;
}

static json_t *reference_json(const uint8_t *value, const uint8_t *def, uint8_t left, uint8_t max) {
        return json_pack("{s:i, s:i, s:b, s:b}", "retries_left", left, "retries_max", max, "blocked",
                         left == 0, "default", memcmp(value, def, PIV_PIN_SIZE) == 0);
}

static json_t *card_json(const PivCard *c) {
        json_t *slots = json_array(), *objects = json_array(), *j;
        char version[16], tag[8];
        bool mgm_default = c->mgm_alg == PIV_ALG_3DES && c->mgm_key_len == sizeof piv_default_mgm_key &&
                           memcmp(c->mgm_key, piv_default_mgm_key, c->mgm_key_len) == 0;

        for (unsigned s = 0x80; s <= 0xFF; s++) {
                json_t *slot = NULL;
                if (piv_slot_is_key((uint8_t) s) && slot_json(c, (uint8_t) s, &slot) > 0)
                        json_array_append_new(slots, slot);
        }
        for (size_t i = 0; i < c->n_objects; i++) {
                snprintf(tag, sizeof tag, "%x", c->objects[i].tag);
                json_array_append_new(objects, json_string(tag));
        }
        snprintf(version, sizeof version, "%u.%u.%u", c->version[0], c->version[1], c->version[2]);
        j = json_pack("{s:I, s:s, s:o, s:o, s:{s:s, s:b, s:b}, s:o, s:o}", "serial", (json_int_t) c->serial,
                      "version", version, "pin",
                      reference_json(c->pin, piv_default_pin, c->pin_retries_left, c->pin_retries_max),
                      "puk",
                      reference_json(c->puk, piv_default_puk, c->puk_retries_left, c->puk_retries_max),
                      "mgm", "algorithm", piv_alg_to_string(c->mgm_alg), "default", mgm_default,
                      "pin_protected", card_objects_mgm_protected(c), "slots", slots, "objects", objects);
        return j;
}

static void print_text(json_t *j) {
        json_t *slot, *cert;
        size_t i;

        printf("serial:         %lld\nversion:        %s\n",
               (long long) json_integer_value(json_object_get(j, "serial")),
               json_string_value(json_object_get(j, "version")));
        for (const char *const *ref = (const char *const[]){ "pin", "puk", NULL }; *ref; ref++) {
                json_t *r = json_object_get(j, *ref);
                printf("%s:            %lld of %lld tries left%s%s\n", *ref,
                       (long long) json_integer_value(json_object_get(r, "retries_left")),
                       (long long) json_integer_value(json_object_get(r, "retries_max")),
                       json_is_true(json_object_get(r, "blocked")) ? ", BLOCKED" : "",
                       json_is_true(json_object_get(r, "default")) ? ", default value" : "");
        }
        printf("management key: %s%s%s\n",
               json_string_value(json_object_get(json_object_get(j, "mgm"), "algorithm")),
               json_is_true(json_object_get(json_object_get(j, "mgm"), "default")) ? ", default value" : "",
               json_is_true(json_object_get(json_object_get(j, "mgm"), "pin_protected")) ? ", PIN-protected"
                                                                                         : "");
        json_array_foreach(json_object_get(j, "slots"), i, slot) {
                printf("slot %s:        ", json_string_value(json_object_get(slot, "slot")));
                if (json_object_get(slot, "algorithm"))
                        printf("%s key, PIN %s, %s, used %lld times\n",
                               json_string_value(json_object_get(slot, "algorithm")),
                               json_string_value(json_object_get(slot, "pin_policy")),
                               json_string_value(json_object_get(slot, "origin")),
                               (long long) json_integer_value(json_object_get(slot, "uses")));
                else
                        printf("no key\n");
                cert = json_object_get(slot, "certificate");
                if (json_is_object(cert))
                        printf("  certificate:  %s, issuer %s, not after %s\n",
                               json_string_value(json_object_get(cert, "subject")),
                               json_string_value(json_object_get(cert, "issuer")),
                               json_string_value(json_object_get(cert, "not_after")));
                else if (cert)
                        printf("  certificate:  unparsable\n");
        }
}

int vcard_show_main(int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(piv_card_freep) PivCard *card = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        bool as_json = false;
        unsigned line = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == 'h') {
                        printf("Usage: keyrenew-vcard show STATE [--json]\n");
                        return 0;
                }
                if (c != 'j')
                        return VCARD_EXIT_USAGE;
                as_json = true;
        }
        if (optind != argc - 1) {
                fprintf(stderr, "Usage: keyrenew-vcard show STATE [--json]\n");
                return VCARD_EXIT_USAGE;
        }
        r = card_state_load(argv[optind], &card, &line);
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard show: cannot load %s (line %u): %s\n", argv[optind], line,
                        strerror(-r));
                return VCARD_EXIT_FAILURE;
        }
        j = card_json(card);
        if (!j)
                return VCARD_EXIT_FAILURE;
        if (as_json) {
                json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                putchar('\n');
        } else {
                print_text(j);
        }
        return 0;
}
