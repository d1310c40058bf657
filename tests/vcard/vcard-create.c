/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyrenew-vcard create: write a new card file. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "card-objects.h"
#include "card-state.h"
#include "hex.h"
#include "macro.h"
#include "vcard-commands.h"
#include "vcard-faults.h"

typedef struct CreateOptions {
        const char *state;
        bool serial_set, force, pin_protected, no_chuid, no_ccc;
        unsigned serial;
        const char *pin, *puk, *mgm_key, *version;
        unsigned pin_retries, puk_retries;
        uint8_t mgm_alg;
} CreateOptions;

static void create_usage(FILE *f) {
        fputs("Usage: keyrenew-vcard create STATE [--serial N] [--pin PIN] [--puk PUK]\n"
              "        [--pin-retries N] [--puk-retries N] [--mgm-key HEX]\n"
              "        [--mgm-alg 3des|aes128|aes192|aes256] [--pin-protected-mgm]\n"
              "        [--yk-version X.Y.Z] [--no-chuid] [--no-ccc] [--force]\n",
              f);
}

static int set_reference(const char *value, uint8_t out[PIV_PIN_SIZE], const char *what) {
        if (piv_pin_pad(value, out) < 0 || !piv_pin_padded_is_valid(out)) {
                fprintf(stderr, "keyrenew-vcard create: the %s must be 6 to 8 characters\n", what);
                return -EINVAL;
        }
        return 0;
}

static int set_mgm_key(PivCard *c, const CreateOptions *o) {
        size_t size = piv_mgm_key_size(o->mgm_alg), len;

        if (!o->mgm_key) {
                if (!o->pin_protected && o->mgm_alg == PIV_ALG_3DES)
                        return 0; /* the default key */
                /* a PIN-protected key is random, as ykman makes one */
                if (RAND_bytes(c->mgm_key, (int) size) != 1)
                        return -EIO;
                c->mgm_key_len = size;
        } else if (hex_decode_into(o->mgm_key, c->mgm_key, sizeof c->mgm_key, &len) < 0 || len != size) {
                fprintf(stderr, "keyrenew-vcard create: a %s management key is %zu bytes of hex\n",
                        piv_alg_to_string(o->mgm_alg), size);
                return -EINVAL;
        } else {
                c->mgm_key_len = len;
        }
        c->mgm_alg = o->mgm_alg;
        return 0;
}

static int build_card(const CreateOptions *o, PivCard *c) {
        unsigned v[3];
        char end;
        int r;

        if (o->serial_set)
                c->serial = o->serial;
        else if (RAND_bytes((unsigned char *) &c->serial, sizeof c->serial) != 1)
                return -EIO;
        else
                c->serial = c->serial % 90000000 + 10000000; /* eight digits, as YubiKeys have */
        if (o->version) {
                if (sscanf(o->version, "%u.%u.%u%c", &v[0], &v[1], &v[2], &end) != 3 || v[0] > 255 ||
                    v[1] > 255 || v[2] > 255) {
                        fprintf(stderr, "keyrenew-vcard create: --yk-version wants X.Y.Z\n");
                        return -EINVAL;
                }
                for (size_t i = 0; i < 3; i++)
                        c->version[i] = (uint8_t) v[i];
        }
        if ((o->pin && (r = set_reference(o->pin, c->pin, "PIN")) < 0) ||
            (o->puk && (r = set_reference(o->puk, c->puk, "PUK")) < 0))
                return r;
        c->pin_retries_max = c->pin_retries_left = (uint8_t) o->pin_retries;
        c->puk_retries_max = c->puk_retries_left = (uint8_t) o->puk_retries;
        r = set_mgm_key(c, o);
        if (r < 0)
                return r;
        if ((!o->no_chuid && (r = card_objects_put_chuid(c)) < 0) ||
            (!o->no_ccc && (r = card_objects_put_ccc(c)) < 0) || (r = card_objects_put_discovery(c)) < 0 ||
            (r = card_objects_put_key_history(c)) < 0 ||
            (o->pin_protected && (r = card_objects_put_protected_mgm(c)) < 0))
                return r;
        return 0;
}

static int parse_retries(const char *arg, unsigned *ret) {
        int r = vcard_parse_number(arg, false, ret);

        return r < 0 || *ret > 255 ? -EINVAL : 0;
}

static int parse_create_options(int argc, char **argv, CreateOptions *o) {
        enum {
                OPT_SERIAL = 256,
                OPT_PIN,
                OPT_PUK,
                OPT_PIN_RETRIES,
                OPT_PUK_RETRIES,
                OPT_MGM_KEY,
                OPT_MGM_ALG,
                OPT_PROTECTED,
                OPT_VERSION,
                OPT_FORCE,
                OPT_NO_CHUID,
                OPT_NO_CCC
        };
        static const struct option options[] = {
                { "serial", required_argument, NULL, OPT_SERIAL },
                { "pin", required_argument, NULL, OPT_PIN },
                { "puk", required_argument, NULL, OPT_PUK },
                { "pin-retries", required_argument, NULL, OPT_PIN_RETRIES },
                { "puk-retries", required_argument, NULL, OPT_PUK_RETRIES },
                { "mgm-key", required_argument, NULL, OPT_MGM_KEY },
                { "mgm-alg", required_argument, NULL, OPT_MGM_ALG },
                { "pin-protected-mgm", no_argument, NULL, OPT_PROTECTED },
                { "yk-version", required_argument, NULL, OPT_VERSION },
                { "force", no_argument, NULL, OPT_FORCE },
                { "no-chuid", no_argument, NULL, OPT_NO_CHUID },
                { "no-ccc", no_argument, NULL, OPT_NO_CCC },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r = 0;

        while (r == 0 && (c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        create_usage(stdout);
                        return 1;
                case OPT_SERIAL:
                        r = vcard_parse_number(optarg, true, &o->serial);
                        o->serial_set = true;
                        break;
                case OPT_PIN:
                        o->pin = optarg;
                        break;
                case OPT_PUK:
                        o->puk = optarg;
                        break;
                case OPT_PIN_RETRIES:
                        r = parse_retries(optarg, &o->pin_retries);
                        break;
                case OPT_PUK_RETRIES:
                        r = parse_retries(optarg, &o->puk_retries);
                        break;
                case OPT_MGM_KEY:
                        o->mgm_key = optarg;
                        break;
                case OPT_MGM_ALG:
                        o->mgm_alg = piv_alg_from_string(optarg);
                        r = piv_mgm_key_size(o->mgm_alg) > 0 ? 0 : -EINVAL;
                        break;
                case OPT_PROTECTED:
                        o->pin_protected = true;
                        break;
                case OPT_VERSION:
                        o->version = optarg;
                        break;
                case OPT_FORCE:
                        o->force = true;
                        break;
                case OPT_NO_CHUID:
                        o->no_chuid = true;
                        break;
                case OPT_NO_CCC:
                        o->no_ccc = true;
                        break;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        fprintf(stderr, "keyrenew-vcard create: bad value '%s'\n", optarg);
        }
        if (r == 0 && optind != argc - 1) {
                create_usage(stderr);
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        o->state = argv[optind];
        return 0;
}

int vcard_create_main(int argc, char **argv) {
        CreateOptions o = { .pin_retries = 3, .puk_retries = 3, .mgm_alg = PIV_ALG_3DES };
        _cleanup_(piv_card_freep) PivCard *card = NULL;
        int r;

        r = parse_create_options(argc, argv, &o);
        if (r != 0)
                return r > 0 ? 0 : VCARD_EXIT_USAGE;
        if (!o.force && access(o.state, F_OK) == 0) {
                fprintf(stderr, "keyrenew-vcard create: %s exists; --force replaces it\n", o.state);
                return VCARD_EXIT_FAILURE;
        }
        card = piv_card_new();
        if (!card)
                return VCARD_EXIT_FAILURE;
        r = build_card(&o, card);
        if (r == -EINVAL)
                return VCARD_EXIT_USAGE;
        if (r == 0)
                r = card_state_save(o.state, card);
        if (r < 0) {
                fprintf(stderr, "keyrenew-vcard create: %s: %s\n", o.state, strerror(-r));
                return VCARD_EXIT_FAILURE;
        }
        return 0;
}
