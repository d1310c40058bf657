/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "card-state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "atomic-file.h"
#include "hex.h"
#include "macro.h"
#include "piv-crypto.h"

#define STATE_MAGIC "keyrenew-vcard-state 1"

static void cleanse_freep(char **p) {
        if (*p) {
                OPENSSL_cleanse(*p, strlen(*p));
                free(*p);
        }
}
#define _cleanup_cleanse_free_ _cleanup_(cleanse_freep)

static int parse_version(PivCard *c, const char *arg) {
        unsigned v[3];
        char end;

        if (sscanf(arg, "%u.%u.%u%c", &v[0], &v[1], &v[2], &end) != 3 || v[0] > 255 || v[1] > 255 ||
            v[2] > 255)
                return -EBADMSG;
        for (size_t i = 0; i < 3; i++)
                c->version[i] = (uint8_t) v[i];
        return 0;
}

static int parse_reference(const char *arg, uint8_t value[PIV_PIN_SIZE], uint8_t *max, uint8_t *left) {
        char hex[2 * PIV_PIN_SIZE + 1];
        unsigned m, l;
        size_t len;

        if (sscanf(arg, "%16s %u %u", hex, &m, &l) != 3 || m == 0 || m > 255 || l > m)
                return -EBADMSG;
        if (hex_decode_into(hex, value, PIV_PIN_SIZE, &len) < 0 || len != PIV_PIN_SIZE)
                return -EBADMSG;
        *max = (uint8_t) m;
        *left = (uint8_t) l;
        return 0;
}

static int parse_mgm(PivCard *c, const char *arg) {
        char alg[16], hex[2 * PIV_MGM_KEY_MAX + 1];
        unsigned touch;
        size_t len;

        if (sscanf(arg, "%15s %u %64s", alg, &touch, hex) != 3 || touch < 1 || touch > 3)
                return -EBADMSG;
        c->mgm_alg = piv_alg_from_string(alg);
        if (piv_mgm_key_size(c->mgm_alg) == 0)
                return -EBADMSG;
        if (hex_decode_into(hex, c->mgm_key, sizeof c->mgm_key, &len) < 0 ||
            len != piv_mgm_key_size(c->mgm_alg))
                return -EBADMSG;
        c->mgm_key_len = len;
        c->mgm_touch = (uint8_t) touch;
        return 0;
}

static int parse_key(PivCard *c, const char *arg) {
        _cleanup_free_ uint8_t *der = NULL;
        unsigned slot, pin_policy, touch, origin, uses;
        const unsigned char *p;
        char alg_name[16];
        EVP_PKEY *pkey;
        uint8_t alg;
        size_t len;
        int n = 0;

        if (sscanf(arg, "%x %15s %u %u %u %u %n", &slot, alg_name, &pin_policy, &touch, &origin, &uses,
                   &n) != 6 ||
            n == 0 || slot > 0xFF || pin_policy < 1 || origin < 1 || origin > 2)
                return -EBADMSG;
        if (hex_decode(arg + n, &der, &len) < 0)
                return -EBADMSG;
        p = der;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long) len);
        OPENSSL_cleanse(der, len);
        if (!pkey)
                return -EBADMSG;
        alg = piv_alg_from_string(alg_name);
        if (alg == 0 || alg != piv_key_algorithm(pkey) ||
            piv_card_set_key(c, (uint8_t) slot, alg, (uint8_t) pin_policy, (uint8_t) touch, (uint8_t) origin,
                             pkey) < 0) {
                EVP_PKEY_free(pkey);
                return -EBADMSG;
        }
        piv_card_key(c, (uint8_t) slot)->uses = uses;
        return 0;
}

static int parse_object(PivCard *c, const char *arg) {
        _cleanup_free_ uint8_t *data = NULL;
        unsigned tag;
        size_t len;
        int n = 0;

        if (sscanf(arg, "%x %n", &tag, &n) != 1 || n == 0 || tag > 0xFFFFFF)
                return -EBADMSG;
        if (hex_decode(arg + n, &data, &len) < 0 || len == 0 || len > PIV_OBJECT_MAX)
                return -EBADMSG;
        return piv_card_set_object(c, tag, data, len);
}

static int parse_line(PivCard *c, char *line) {
        char *arg = strchr(line, ' ');
        unsigned long v;
        char *end;

        if (!arg)
                return -EBADMSG;
        *arg++ = '\0';
        if (strcmp(line, "serial") == 0) {
                errno = 0;
                v = strtoul(arg, &end, 10);
                if (errno || *end || v > UINT32_MAX)
                        return -EBADMSG;
                c->serial = (uint32_t) v;
                return 0;
        }
        if (strcmp(line, "version") == 0)
                return parse_version(c, arg);
        if (strcmp(line, "pin") == 0)
                return parse_reference(arg, c->pin, &c->pin_retries_max, &c->pin_retries_left);
        if (strcmp(line, "puk") == 0)
                return parse_reference(arg, c->puk, &c->puk_retries_max, &c->puk_retries_left);
        if (strcmp(line, "mgm") == 0)
                return parse_mgm(c, arg);
        if (strcmp(line, "key") == 0)
                return parse_key(c, arg);
        if (strcmp(line, "object") == 0)
                return parse_object(c, arg);
        return -EBADMSG;
}

/* Parses the lines of f into c; *ret_line is the last line read. */
static int parse_lines(FILE *f, PivCard *c, unsigned *ret_line) {
        char *line = NULL;
        size_t cap = 0;
        unsigned n = 0;
        ssize_t len;
        int r = 0;

        while ((len = getline(&line, &cap, f)) >= 0) {
                n++;
                if (len > 0 && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (n == 1)
                        r = strcmp(line, STATE_MAGIC) == 0 ? 0 : -EBADMSG;
                else if (len > 0 && line[0] != '#')
                        r = parse_line(c, line);
                if (r < 0)
                        break;
        }
        if (r == 0 && ferror(f))
                r = -EIO;
        if (r == 0 && n == 0)
                r = -EBADMSG;
        /* the lines held PINs and keys */
        if (line)
                OPENSSL_cleanse(line, cap);
        free(line);
        *ret_line = n;
        return r;
}

int card_state_load(const char *path, PivCard **ret, unsigned *ret_line) {
        _cleanup_(piv_card_freep) PivCard *c = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        unsigned n = 0;
        int r;

        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        c = piv_card_new();
        if (!c)
                return -ENOMEM;
        r = parse_lines(f, c, &n);
        if (r < 0) {
                if (ret_line)
                        *ret_line = n;
                return r;
        }
        c->dirty = false;
        *ret = TAKE_PTR(c);
        return 0;
}

static int write_hex(FILE *f, const void *data, size_t len) {
        _cleanup_cleanse_free_ char *hex = hex_encode(data, len);

        if (!hex)
                return -ENOMEM;
        fputs(hex, f);
        return 0;
}

static int write_key(FILE *f, const PivKey *k) {
        unsigned char *der = NULL;
        int len = i2d_PrivateKey(k->pkey, &der);
        int r;

        if (len <= 0)
                return -EIO;
        fprintf(f, "key %02x %s %u %u %u %u ", k->slot, piv_alg_to_string(k->algorithm), k->pin_policy,
                k->touch_policy, k->origin, k->uses);
        r = write_hex(f, der, (size_t) len);
        fputc('\n', f);
        OPENSSL_clear_free(der, (size_t) len);
        return r;
}

static int write_card(FILE *f, const PivCard *c) {
        int r;

        fprintf(f, STATE_MAGIC "\n# a virtual PIV card of keyrenew's tests; see tests/vcard/README.md\n");
        fprintf(f, "serial %u\nversion %u.%u.%u\npin ", c->serial, c->version[0], c->version[1],
                c->version[2]);
        if ((r = write_hex(f, c->pin, PIV_PIN_SIZE)) < 0)
                return r;
        fprintf(f, " %u %u\npuk ", c->pin_retries_max, c->pin_retries_left);
        if ((r = write_hex(f, c->puk, PIV_PIN_SIZE)) < 0)
                return r;
        fprintf(f, " %u %u\nmgm %s %u ", c->puk_retries_max, c->puk_retries_left,
                piv_alg_to_string(c->mgm_alg), c->mgm_touch);
        if ((r = write_hex(f, c->mgm_key, c->mgm_key_len)) < 0)
                return r;
        fputc('\n', f);
        for (size_t i = 0; i < PIV_KEY_SLOTS; i++)
                if (c->keys[i].pkey && (r = write_key(f, &c->keys[i])) < 0)
                        return r;
        for (size_t i = 0; i < c->n_objects; i++) {
                fprintf(f, "object %06x ", c->objects[i].tag);
                if ((r = write_hex(f, c->objects[i].data, c->objects[i].len)) < 0)
                        return r;
                fputc('\n', f);
        }
        return 0;
}

int card_state_save(const char *path, PivCard *c) {
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t len = 0;
        int r;

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        r = write_card(f, c);
        if (r < 0)
                return r;
        /* Closing the stream is what makes text and len final. */
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        r = atomic_file_write(path, text, len, 0600);
        if (r < 0)
                return r;
        c->dirty = false;
        return 0;
}
