/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "piv-card.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "macro.h"

const uint8_t piv_default_pin[PIV_PIN_SIZE] = { '1', '2', '3', '4', '5', '6', 0xFF, 0xFF };
const uint8_t piv_default_puk[PIV_PIN_SIZE] = { '1', '2', '3', '4', '5', '6', '7', '8' };
const uint8_t piv_default_mgm_key[24] = {
        1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
};

void piv_card_default_credentials(PivCard *c) {
        memcpy(c->pin, piv_default_pin, PIV_PIN_SIZE);
        memcpy(c->puk, piv_default_puk, PIV_PIN_SIZE);
        c->pin_retries_max = c->pin_retries_left = 3;
        c->puk_retries_max = c->puk_retries_left = 3;
        c->mgm_alg = PIV_ALG_3DES;
        c->mgm_touch = 1;
        memcpy(c->mgm_key, piv_default_mgm_key, sizeof piv_default_mgm_key);
        c->mgm_key_len = sizeof piv_default_mgm_key;
}

PivCard *piv_card_new(void) {
        PivCard *c = calloc(1, sizeof(PivCard));

        if (!c)
                return NULL;
        piv_card_default_credentials(c);
        c->version[0] = 5;
        c->version[1] = 4;
        c->version[2] = 3;
        return c;
}

void piv_card_free(PivCard *c) {
        for (size_t i = 0; i < PIV_KEY_SLOTS; i++)
                EVP_PKEY_free(c->keys[i].pkey);
        for (size_t i = 0; i < c->n_objects; i++)
                free(c->objects[i].data);
        free(c->objects);
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
}

void piv_card_session_reset(PivCard *c) {
        OPENSSL_cleanse(&c->session, sizeof c->session);
}

bool piv_slot_is_key(uint8_t slot) {
        return slot == 0x9A || slot == 0x9C || slot == 0x9D || slot == 0x9E ||
               (slot >= 0x82 && slot <= 0x95);
}

uint32_t piv_slot_cert_tag(uint8_t slot) {
        switch (slot) {
        case 0x9A:
                return 0x5FC105;
        case 0x9C:
                return 0x5FC10A;
        case 0x9D:
                return 0x5FC10B;
        case 0x9E:
                return 0x5FC101;
        default:
                /* retired key management slots 82..95 hold 5FC10D..5FC120 */
                if (slot >= 0x82 && slot <= 0x95)
                        return 0x5FC10D + (slot - 0x82);
                return 0;
        }
}

uint8_t piv_slot_default_pin_policy(uint8_t slot) {
        switch (slot) {
        case 0x9C:
                return PIV_PIN_POLICY_ALWAYS;
        case 0x9E:
                return PIV_PIN_POLICY_NEVER;
        default:
                return PIV_PIN_POLICY_ONCE;
        }
}

PivKey *piv_card_key(PivCard *c, uint8_t slot) {
        for (size_t i = 0; i < PIV_KEY_SLOTS; i++)
                if (c->keys[i].slot == slot && c->keys[i].pkey)
                        return &c->keys[i];
        return NULL;
}

PivKey *piv_card_key_slot(PivCard *c, uint8_t slot) {
        PivKey *free_entry = NULL;

        if (!piv_slot_is_key(slot))
                return NULL;
        for (size_t i = 0; i < PIV_KEY_SLOTS; i++) {
                if (c->keys[i].slot == slot)
                        return &c->keys[i];
                if (c->keys[i].slot == 0 && !free_entry)
                        free_entry = &c->keys[i];
        }
        /* 24 entries for 24 slots: a key slot always finds one */
        free_entry->slot = slot;
        return free_entry;
}

int piv_card_set_key(PivCard *c, uint8_t slot, uint8_t algorithm, uint8_t pin_policy, uint8_t touch_policy,
                     uint8_t origin, EVP_PKEY *pkey) {
        PivKey *k = piv_card_key_slot(c, slot);

        if (!k || pin_policy > PIV_PIN_POLICY_ALWAYS || touch_policy > 3)
                return -EINVAL;
        EVP_PKEY_free(k->pkey);
        k->algorithm = algorithm;
        k->pin_policy =
                pin_policy == PIV_PIN_POLICY_DEFAULT ? piv_slot_default_pin_policy(slot) : pin_policy;
        k->touch_policy = touch_policy == 0 ? 1 : touch_policy;
        k->origin = origin;
        k->uses = 0;
        k->pkey = pkey;
        c->dirty = true;
        return 0;
}

int piv_card_move_key(PivCard *c, uint8_t from, uint8_t to) {
        PivKey *k = piv_card_key(c, from), *dest;

        if (!k)
                return -ENOENT;
        if (to != PIV_SLOT_DELETE && (to == from || !piv_slot_is_key(to)))
                return -EINVAL;
        if (to == PIV_SLOT_DELETE)
                EVP_PKEY_free(k->pkey);
        else {
                /* k's entry is from's, so the destination is another one */
                dest = piv_card_key_slot(c, to);
                EVP_PKEY_free(dest->pkey);
                *dest = *k;
                dest->slot = to;
        }
        *k = (PivKey){};
        c->dirty = true;
        return 0;
}

const PivObject *piv_card_object(const PivCard *c, uint32_t tag) {
        for (size_t i = 0; i < c->n_objects; i++)
                if (c->objects[i].tag == tag)
                        return &c->objects[i];
        return NULL;
}

static void delete_object(PivCard *c, uint32_t tag) {
        for (size_t i = 0; i < c->n_objects; i++) {
                if (c->objects[i].tag != tag)
                        continue;
                free(c->objects[i].data);
                c->objects[i] = c->objects[--c->n_objects];
                return;
        }
}

int piv_card_set_object(PivCard *c, uint32_t tag, const void *data, size_t len) {
        PivObject *grown;
        uint8_t *copy;

        c->dirty = true;
        delete_object(c, tag);
        if (len == 0)
                return 0;
        copy = malloc(len);
        if (!copy)
                return -ENOMEM;
        grown = realloc(c->objects, (c->n_objects + 1) * sizeof(PivObject));
        if (!grown) {
                free(copy);
                return -ENOMEM;
        }
        memcpy(copy, data, len);
        c->objects = grown;
        c->objects[c->n_objects++] = (PivObject){ .tag = tag, .data = copy, .len = len };
        return 0;
}

int piv_pin_pad(const char *pin, uint8_t ret[PIV_PIN_SIZE]) {
        size_t n = strlen(pin);

        if (n > PIV_PIN_SIZE)
                return -EINVAL;
        memset(ret, 0xFF, PIV_PIN_SIZE);
        memcpy(ret, pin, n);
        return 0;
}

bool piv_pin_padded_is_valid(const uint8_t pin[PIV_PIN_SIZE]) {
        size_t n = 0;

        while (n < PIV_PIN_SIZE && pin[n] != 0xFF)
                n++;
        for (size_t i = n; i < PIV_PIN_SIZE; i++)
                if (pin[i] != 0xFF)
                        return false;
        return n >= 6;
}

size_t piv_mgm_key_size(uint8_t alg) {
        switch (alg) {
        case PIV_ALG_3DES:
        case PIV_ALG_AES192:
                return 24;
        case PIV_ALG_AES128:
                return 16;
        case PIV_ALG_AES256:
                return 32;
        default:
                return 0;
        }
}

size_t piv_mgm_block_size(uint8_t alg) {
        switch (alg) {
        case PIV_ALG_3DES:
                return 8;
        case PIV_ALG_AES128:
        case PIV_ALG_AES192:
        case PIV_ALG_AES256:
                return 16;
        default:
                return 0;
        }
}

static const struct {
        uint8_t alg;
        const char *name;
} alg_names[] = {
        { PIV_ALG_3DES, "3des" },       { PIV_ALG_AES128, "aes128" },   { PIV_ALG_AES192, "aes192" },
        { PIV_ALG_AES256, "aes256" },   { PIV_ALG_RSA1024, "rsa1024" }, { PIV_ALG_RSA2048, "rsa2048" },
        { PIV_ALG_ECCP256, "eccp256" }, { PIV_ALG_ECCP384, "eccp384" },
};

const char *piv_alg_to_string(uint8_t alg) {
        for (size_t i = 0; i < ELEMENTSOF(alg_names); i++)
                if (alg_names[i].alg == alg)
                        return alg_names[i].name;
        return "unknown";
}

uint8_t piv_alg_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(alg_names); i++)
                if (strcmp(alg_names[i].name, s) == 0)
                        return alg_names[i].alg;
        return 0;
}
