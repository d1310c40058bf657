/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A card file written and read back is the same card; a broken file is
 * refused with the line that broke it. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assert.h"
#include "card-objects.h"
#include "card-state.h"
#include "macro.h"
#include "piv-crypto.h"

static char dir[] = "/tmp/test-card-state-XXXXXX";

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

static void test_round_trip(void) {
        _cleanup_(piv_card_freep) PivCard *c = piv_card_new();
        _cleanup_(piv_card_freep) PivCard *d = NULL;
        _cleanup_free_ char *path = NULL;
        EVP_PKEY *pkey = NULL;

        ASSERT_TRUE(asprintf(&path, "%s/card", dir) > 0);
        c->serial = 12345678;
        c->version[0] = 4;
        c->pin_retries_left = 1;
        c->mgm_alg = PIV_ALG_AES256;
        c->mgm_key_len = 32;
        memset(c->mgm_key, 0xA5, 32);
        ASSERT_EQ(piv_key_generate(PIV_ALG_ECCP384, &pkey), 0);
        ASSERT_EQ(piv_card_set_key(c, 0x9D, PIV_ALG_ECCP384, 0, 0, PIV_ORIGIN_GENERATED, pkey), 0);
        piv_card_key(c, 0x9D)->uses = 7;
        ASSERT_EQ(card_objects_put_chuid(c), 0);
        ASSERT_EQ(card_objects_put_protected_mgm(c), 0);
        ASSERT_TRUE(card_objects_mgm_protected(c));
        ASSERT_EQ(card_state_save(path, c), 0);
        ASSERT_TRUE(!c->dirty);

        ASSERT_EQ(card_state_load(path, &d, NULL), 0);
        ASSERT_EQ(d->serial, 12345678);
        ASSERT_EQ(d->version[0], 4);
        ASSERT_EQ(d->pin_retries_left, 1);
        ASSERT_EQ(d->pin_retries_max, 3);
        ASSERT_MEMEQ(d->pin, piv_default_pin, 8);
        ASSERT_EQ(d->mgm_alg, PIV_ALG_AES256);
        ASSERT_MEMEQ(d->mgm_key, c->mgm_key, 32);
        ASSERT_EQ(piv_card_key(d, 0x9D)->algorithm, PIV_ALG_ECCP384);
        ASSERT_EQ(piv_card_key(d, 0x9D)->pin_policy, PIV_PIN_POLICY_ONCE);
        ASSERT_EQ(piv_card_key(d, 0x9D)->uses, 7);
        ASSERT_EQ(EVP_PKEY_eq(piv_card_key(d, 0x9D)->pkey, pkey), 1);
        ASSERT_TRUE(!piv_card_key(d, 0x9A));
        ASSERT_EQ(d->n_objects, 3);
        ASSERT_EQ(piv_card_object(d, PIV_OBJ_CHUID)->len, piv_card_object(c, PIV_OBJ_CHUID)->len);
        ASSERT_TRUE(card_objects_mgm_protected(d));
        ASSERT_TRUE(!d->dirty);
        ASSERT_EQ(unlink(path), 0);
}

/* A moved key is saved in its new slot, with its counter; the old slot is
 * empty in the file too. */
static void test_moved_key(void) {
        _cleanup_(piv_card_freep) PivCard *c = piv_card_new();
        _cleanup_(piv_card_freep) PivCard *d = NULL;
        _cleanup_free_ char *path = NULL;
        EVP_PKEY *pkey = NULL, *doomed = NULL;

        ASSERT_TRUE(asprintf(&path, "%s/moved", dir) > 0);
        ASSERT_EQ(piv_key_generate(PIV_ALG_ECCP256, &pkey), 0);
        ASSERT_EQ(piv_card_set_key(c, 0x95, PIV_ALG_ECCP256, PIV_PIN_POLICY_NEVER, 2, PIV_ORIGIN_GENERATED,
                                   pkey),
                  0);
        piv_card_key(c, 0x95)->uses = 4;
        ASSERT_EQ(piv_key_generate(PIV_ALG_ECCP256, &doomed), 0);
        ASSERT_EQ(piv_card_set_key(c, 0x9C, PIV_ALG_ECCP256, 0, 0, PIV_ORIGIN_IMPORTED, doomed), 0);
        ASSERT_EQ(piv_card_move_key(c, 0x95, 0x95), -EINVAL);
        ASSERT_EQ(piv_card_move_key(c, 0x95, 0x9B), -EINVAL);
        ASSERT_EQ(piv_card_move_key(c, 0x9A, 0x9C), -ENOENT);
        ASSERT_EQ(piv_card_move_key(c, 0x95, 0x9C), 0);
        ASSERT_EQ(card_state_save(path, c), 0);

        ASSERT_EQ(card_state_load(path, &d, NULL), 0);
        ASSERT_TRUE(!piv_card_key(d, 0x95));
        ASSERT_EQ(EVP_PKEY_eq(piv_card_key(d, 0x9C)->pkey, pkey), 1);
        ASSERT_EQ(piv_card_key(d, 0x9C)->pin_policy, PIV_PIN_POLICY_NEVER);
        ASSERT_EQ(piv_card_key(d, 0x9C)->touch_policy, 2);
        ASSERT_EQ(piv_card_key(d, 0x9C)->origin, PIV_ORIGIN_GENERATED);
        ASSERT_EQ(piv_card_key(d, 0x9C)->uses, 4);

        ASSERT_EQ(piv_card_move_key(d, 0x9C, PIV_SLOT_DELETE), 0);
        ASSERT_EQ(card_state_save(path, d), 0);
        piv_card_free(TAKE_PTR(d));
        ASSERT_EQ(card_state_load(path, &d, NULL), 0);
        ASSERT_TRUE(!piv_card_key(d, 0x9C));
        ASSERT_EQ(unlink(path), 0);
}

static void expect_broken(const char *text, unsigned line) {
        _cleanup_free_ char *path = NULL;
        PivCard *c = NULL;
        unsigned got = 0;

        ASSERT_TRUE(asprintf(&path, "%s/broken", dir) > 0);
        write_file(path, text);
        ASSERT_EQ(card_state_load(path, &c, &got), -EBADMSG);
        ASSERT_EQ(got, line);
        ASSERT_TRUE(!c);
        ASSERT_EQ(unlink(path), 0);
}

static void test_broken_files(void) {
        PivCard *c = NULL;

        expect_broken("", 0);
        expect_broken("not a card\n", 1);
        expect_broken("keyrenew-vcard-state 1\nserial x\n", 2);
        expect_broken("keyrenew-vcard-state 1\n# fine\nversion 1.2\n", 3);
        expect_broken("keyrenew-vcard-state 1\npin 313233343536ffff 3 4\n", 2);
        expect_broken("keyrenew-vcard-state 1\nmgm aes128 1 0102\n", 2);
        expect_broken("keyrenew-vcard-state 1\nkey 9a rsa2048 2 1 1 0 00\n", 2);
        expect_broken("keyrenew-vcard-state 1\nobject 5fc102 0\n", 2);
        expect_broken("keyrenew-vcard-state 1\nfrobnicate 1\n", 2);
        ASSERT_EQ(card_state_load("/nonexistent/card", &c, NULL), -ENOENT);
}

int main(void) {
        ASSERT_TRUE(mkdtemp(dir));
        RUN(test_round_trip);
        RUN(test_broken_files);
        RUN(test_moved_key);
        ASSERT_EQ(rmdir(dir), 0);
        return 0;
}
