/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "token-store.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "assert.h"
#include "expiry.h"
#include "hex.h"
#include "macro.h"

/* 2027-01-01T00:00:00Z: notAfter of the fixtures but expired.der. */
#define FIXTURE_NOT_AFTER ((time_t) 1798761600)
#define DAY 86400

static const unsigned warn_days[] = { 30, 14, 7, 3, 1 };

static void read_fixture(const char *name, uint8_t **ret, size_t *ret_len) {
        const char *dir = getenv("KEYRENEW_TEST_DATA");
        char path[4096];
        FILE *f;
        long n;

        ASSERT_TRUE(dir);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "rb");
        ASSERT_TRUE(f);
        ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        *ret = malloc((size_t) n);
        ASSERT_TRUE(*ret);
        ASSERT_EQ(fread(*ret, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        *ret_len = (size_t) n;
}

static void add_fixture(TokenObject *t, unsigned slot, const char *name, int announced) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t len;

        read_fixture(name, &der, &len);
        ASSERT_EQ(token_object_add_certificate(t, slot, der, len, announced), 0);
}

static TokenObject *make_token(void) {
        TokenIdentity id = {
                .serial_source = TOKEN_SERIAL_VENDOR,
                .serial = "12345678",
                .guid = "00112233445566778899aabbccddeeff",
                .label = "keyrenew virtual PIV",
                .has_version = true,
                .version = { 5, 4, 3 },
        };
        TokenObject *t;

        ASSERT_EQ(token_object_new(NULL, NULL, "12345678", "piv", &id, &t), 0);
        snprintf(t->reader, sizeof t->reader, "%s", "Virtual PCD 00 00");
        t->pin_retries = 2;
        t->last_seen_usec = UINT64_C(1795749373722704);
        return t;
}

static char *make_dir(void) {
        char *dir = strdup("/tmp/test-token-store-XXXXXX");

        ASSERT_TRUE(dir && mkdtemp(dir));
        return dir;
}

static void remove_dir(const char *dir) {
        char cmd[256];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ASSERT_EQ(system(cmd), 0);
}

typedef struct Found {
        TokenObject *tokens[4];
        size_t n;
} Found;

static void on_found(TokenObject *t, void *userdata) {
        Found *f = userdata;

        ASSERT_TRUE(f->n < ELEMENTSOF(f->tokens));
        f->tokens[f->n++] = t;
}

static void test_round_trip(void) {
        _cleanup_free_ char *dir = make_dir(), *file = NULL;
        TokenObject *t = make_token(), *u;
        Found found = {};
        struct stat st;

        add_fixture(t, 0x9d, "sm2.der", EXPIRY_LEVEL_NONE);
        add_fixture(t, 0x9a, "rsa2048.der", 14);
        ASSERT_EQ(t->n_certs, 2u);
        ASSERT_EQ(t->certs[0]->slot, 0x9au); /* kept in slot order */
        ASSERT_STREQ(t->path, "/org/keyrenew/KeyRenew1/token/_312345678");
        ASSERT_STREQ(t->certs[1]->path, "/org/keyrenew/KeyRenew1/token/_312345678/cert/_39d");
        ASSERT_EQ(token_object_add_certificate(t, 0x9a, t->certs[0]->der, t->certs[0]->der_len, -1),
                  -EEXIST);

        ASSERT_EQ(token_store_save(dir, t), 0);
        /* Saving again replaces the file. */
        ASSERT_EQ(token_store_save(dir, t), 0);
        ASSERT_TRUE(asprintf(&file, "%s/tokens/_312345678.token", dir) > 0);
        ASSERT_EQ(stat(file, &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0600);

        ASSERT_EQ(token_store_load_all(dir, NULL, NULL, on_found, &found), 1);
        ASSERT_EQ(found.n, 1u);
        u = found.tokens[0];
        ASSERT_STREQ(u->key, "12345678");
        ASSERT_STREQ(u->path, t->path);
        ASSERT_STREQ(u->driver, "piv");
        ASSERT_EQ(u->identity.serial_source, TOKEN_SERIAL_VENDOR);
        ASSERT_STREQ(u->identity.serial, "12345678");
        ASSERT_STREQ(u->identity.guid, t->identity.guid);
        ASSERT_STREQ(u->identity.label, "keyrenew virtual PIV");
        ASSERT_TRUE(u->identity.has_version);
        ASSERT_MEMEQ(u->identity.version, t->identity.version, 3);
        ASSERT_STREQ(u->reader, "Virtual PCD 00 00");
        ASSERT_EQ(u->pin_retries, 2);
        ASSERT_TRUE(u->last_seen_usec == t->last_seen_usec);
        ASSERT_TRUE(!u->present);
        ASSERT_EQ(u->n_certs, 2u);
        for (size_t i = 0; i < 2; i++) {
                ASSERT_EQ(u->certs[i]->slot, t->certs[i]->slot);
                ASSERT_EQ(u->certs[i]->announced, t->certs[i]->announced);
                ASSERT_EQ(u->certs[i]->der_len, t->certs[i]->der_len);
                ASSERT_MEMEQ(u->certs[i]->der, t->certs[i]->der, t->certs[i]->der_len);
        }
        ASSERT_STREQ(u->certs[1]->info->key_type, "sm2");
        token_object_free(u);
        token_object_free(t);
        remove_dir(dir);
}

/* An SM2 certificate (which the virtual card cannot hold) through the
 * expiry policy, with a fake now. */
static void test_sm2_expiry(void) {
        TokenObject *t = make_token();
        CertObject *c;

        add_fixture(t, 0x9c, "sm2.der", EXPIRY_LEVEL_NONE);
        c = t->certs[0];
        token_object_evaluate(t, warn_days, ELEMENTSOF(warn_days), FIXTURE_NOT_AFTER - 100 * DAY);
        ASSERT_EQ(c->days_left, 100);
        ASSERT_EQ(c->level, EXPIRY_LEVEL_NONE);
        ASSERT_EQ(t->state, TOKEN_STATE_IDLE);
        ASSERT_TRUE(token_object_next_change(t, FIXTURE_NOT_AFTER - 100 * DAY) ==
                    FIXTURE_NOT_AFTER - 100 * DAY + 1);

        token_object_evaluate(t, warn_days, ELEMENTSOF(warn_days), FIXTURE_NOT_AFTER - 10 * DAY + 1);
        ASSERT_EQ(c->days_left, 9);
        ASSERT_EQ(c->level, 14);
        ASSERT_EQ(t->state, TOKEN_STATE_EXPIRING);

        token_object_evaluate(t, warn_days, ELEMENTSOF(warn_days), FIXTURE_NOT_AFTER + 1);
        ASSERT_EQ(c->days_left, -1);
        ASSERT_EQ(c->level, 0);
        ASSERT_EQ(t->state, TOKEN_STATE_EXPIRED);

        /* A blocked PIN is more urgent than an expired certificate. */
        t->pin_retries = 0;
        token_object_evaluate(t, warn_days, ELEMENTSOF(warn_days), FIXTURE_NOT_AFTER + 1);
        ASSERT_EQ(t->state, TOKEN_STATE_LOCKED);
        token_object_free(t);
}

static void slot_read(TokenSlotRead *s, unsigned slot, const char *fixture) {
        *s = (TokenSlotRead){ .cert.slot = slot };
        snprintf(s->cert.slot_name, sizeof s->cert.slot_name, "%02x", slot);
        read_fixture(fixture, &s->cert.der, &s->cert.der_len);
}

/* What a read finds replaces what was known, keeping the objects of
 * certificates that did not change. */
static void test_apply_read(void) {
        TokenObject *t = make_token();
        TokenSlotRead slots[2];
        TokenRead read = {
                .stage = TOKEN_READ_DONE,
                .driver = "piv",
                .slots = slots,
                .n_slots = 2,
                .pin = { .retries = 3 },
        };
        CertObject *kept;

        read.identity = t->identity;
        snprintf(read.identity.label, sizeof read.identity.label, "%s", "relabelled");
        slot_read(&slots[0], 0x9a, "rsa2048.der");
        slot_read(&slots[1], 0x9d, "ec-p256.der");
        slots[1].has_metadata = true;
        slots[1].metadata.origin = TOKEN_KEY_ORIGIN_GENERATED;

        add_fixture(t, 0x9a, "rsa2048.der", 14);
        add_fixture(t, 0x9c, "sm2.der", 30);
        kept = t->certs[0];
        token_object_begin_check(t, "Virtual PCD 00 01", 1);
        ASSERT_TRUE(t->checking && t->present);
        ASSERT_EQ(t->progress, 25u);
        token_object_apply_read(t, &read);
        ASSERT_TRUE(!t->checking && !t->failed);
        ASSERT_EQ(t->progress, 100u);
        ASSERT_EQ(t->pin_retries, 3);
        ASSERT_STREQ(t->identity.label, "relabelled");
        ASSERT_STREQ(t->reader, "Virtual PCD 00 01");
        ASSERT_EQ(t->n_certs, 2u);
        ASSERT_TRUE(t->certs[0] == kept);
        ASSERT_EQ(kept->announced, 14);
        ASSERT_EQ(t->certs[1]->slot, 0x9du);
        ASSERT_EQ(t->certs[1]->announced, EXPIRY_LEVEL_NONE);
        ASSERT_TRUE(t->certs[1]->has_metadata);

        /* A new certificate in 9a is a new object that announces afresh. */
        free(slots[0].cert.der);
        slot_read(&slots[0], 0x9a, "ec-p384.der");
        token_object_apply_read(t, &read);
        ASSERT_EQ(t->certs[0]->announced, EXPIRY_LEVEL_NONE);
        ASSERT_STREQ(t->certs[0]->info->curve, "P-384");

        /* A certificate that does not parse is left out. */
        free(slots[1].cert.der);
        slot_read(&slots[1], 0x9d, "garbage.bin");
        token_object_apply_read(t, &read);
        ASSERT_EQ(t->n_certs, 1u);

        token_object_read_failed(t, "it broke");
        ASSERT_TRUE(t->failed);
        ASSERT_STREQ(t->last_error, "it broke");
        token_object_evaluate(t, warn_days, ELEMENTSOF(warn_days), FIXTURE_NOT_AFTER - 100 * DAY);
        ASSERT_EQ(t->state, TOKEN_STATE_FAILED);
        token_object_set_absent(t, 2);
        ASSERT_TRUE(!t->present);
        ASSERT_TRUE(t->last_seen_usec == 2);

        free(slots[0].cert.der);
        free(slots[1].cert.der);
        token_object_free(t);
}

static void write_file(const char *dir, const char *name, const char *text) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof path, "%s/tokens/%s", dir, name);
        f = fopen(path, "w");
        ASSERT_TRUE(f);
        fputs(text, f);
        fclose(f);
}

static int load_text(const char *dir, const char *text) {
        char path[512];
        TokenObject *t = NULL;
        int r;

        write_file(dir, "probe.token", text);
        snprintf(path, sizeof path, "%s/tokens/probe.token", dir);
        r = token_store_load(path, NULL, NULL, &t);
        token_object_free(t);
        return r;
}

/* A file with one good certificate and then extra. */
static int load_with_cert(const char *dir, const char *extra) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *hex = NULL, *text = NULL;
        size_t len;

        read_fixture("ec-p256.der", &der, &len);
        hex = hex_encode(der, len);
        ASSERT_TRUE(hex);
        ASSERT_TRUE(asprintf(&text, "keyrenew-token 1\nkey 1\ndriver piv\ncert 9a -1 %s\n%s", hex, extra) >
                    0);
        return load_text(dir, text);
}

static void test_bad_files(void) {
        _cleanup_free_ char *dir = make_dir();
        TokenObject *t = make_token();
        Found found = {};

        add_fixture(t, 0x9a, "rsa2048.der", EXPIRY_LEVEL_NONE);
        ASSERT_EQ(token_store_save(dir, t), 0);
        token_object_free(t);

        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\n"), 0);
        ASSERT_EQ(load_text(dir, ""), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 2\nkey 1\ndriver piv\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\ndriver piv\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\npin 123456\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\npin-retries 3x\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\nversion 5.4\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\ncert 9a -1 3082zz\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\ncert 9a -1 300a\n"), -EBADMSG);
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\ncert 9a -1 \nlabel x\n"), -EBADMSG);
        /* What the portal said follows its certificate, in its own words. */
        ASSERT_EQ(load_text(dir, "keyrenew-token 1\nkey 1\ndriver piv\nrenewal approved 1 365 1\n"),
                  -EBADMSG);
        ASSERT_EQ(load_with_cert(dir, "renewal approved 1 365 1\nrenewal-reason a\\\\b\\n\n"), 0);
        ASSERT_EQ(load_with_cert(dir, "renewal approved 2 365 1\n"), -EBADMSG);
        ASSERT_EQ(load_with_cert(dir, "renewal approved 1 365\n"), -EBADMSG);
        ASSERT_EQ(load_with_cert(dir, "renewal-reason a\\x\n"), -EBADMSG);
        ASSERT_EQ(load_with_cert(dir, "renewal-note x\n"), -EBADMSG);

        /* Only the good file counts; temporary files are not looked at. */
        write_file(dir, "probe.token", "garbage\n");
        write_file(dir, "._312345678.aBcDeF", "keyrenew-token 1\nkey 2\ndriver piv\n");
        ASSERT_EQ(token_store_load_all(dir, NULL, NULL, on_found, &found), 1);
        ASSERT_STREQ(found.tokens[0]->key, "12345678");
        ASSERT_EQ(found.tokens[0]->n_certs, 1u);
        token_object_free(found.tokens[0]);
        remove_dir(dir);

        /* No tokens folder yet: nothing remembered. */
        ASSERT_EQ(token_store_load_all("/nonexistent-keyrenew", NULL, NULL, on_found, &found), 0);
}

/* What the portal said is remembered exactly, a reason with line breaks
 * and backslashes included, and so is the order last announced. */
static void test_renewal_round_trip(void) {
        _cleanup_free_ char *dir = make_dir();
        static const char reason[] = "营业执照副本不清晰，请重新上传。\n审核人：李四 \\ C:\\scan\r";
        TokenObject *t = make_token(), *u;
        Found found = {};
        CertObject *c;

        add_fixture(t, 0x9a, "rsa2048.der", EXPIRY_LEVEL_NONE);
        add_fixture(t, 0x9c, "ec-p256.der", EXPIRY_LEVEL_NONE);
        add_fixture(t, 0x9d, "sm2.der", EXPIRY_LEVEL_NONE);
        ASSERT_EQ(
                cert_object_set_renewal(t->certs[0],
                                        &(CertRenewal){ .state = "rejected",
                                                        .order = "R2026-000007",
                                                        .page = "https://portal.example/orders/R2026-000007",
                                                        .reject_reason = reason,
                                                        .validity_days = 365 },
                                        UINT64_C(1795749373000001)),
                1);
        /* The same again changes nothing shown. */
        t->certs[0]->dirty = 0;
        ASSERT_EQ(
                cert_object_set_renewal(t->certs[0],
                                        &(CertRenewal){ .state = "rejected",
                                                        .order = "R2026-000007",
                                                        .page = "https://portal.example/orders/R2026-000007",
                                                        .reject_reason = reason,
                                                        .validity_days = 365 },
                                        UINT64_C(1795749373000001)),
                0);
        ASSERT_EQ(t->certs[0]->dirty, 0u);
        ASSERT_EQ(
                cert_object_set_renewal(t->certs[1],
                                        &(CertRenewal){ .state = "approved",
                                                        .order = "R2026-000008",
                                                        .page = "https://portal.example/orders/R2026-000008",
                                                        .rekey = true,
                                                        .validity_days = 730 },
                                        UINT64_C(1795749373000002)),
                1);
        ASSERT_EQ(cert_object_set_announced_order(t->certs[1], "R2026-000008"), 0);

        ASSERT_EQ(token_store_save(dir, t), 0);
        ASSERT_EQ(token_store_load_all(dir, NULL, NULL, on_found, &found), 1);
        u = found.tokens[0];
        ASSERT_EQ(u->n_certs, 3u);
        c = u->certs[0];
        ASSERT_STREQ(c->renewal_state, "rejected");
        ASSERT_STREQ(c->renewal_order, "R2026-000007");
        ASSERT_STREQ(c->portal_url, "https://portal.example/orders/R2026-000007");
        ASSERT_STREQ(c->reject_reason, reason);
        ASSERT_TRUE(!c->renewal_rekey);
        ASSERT_EQ(c->renewal_validity_days, 365u);
        ASSERT_TRUE(c->renewal_checked_usec == UINT64_C(1795749373000001));
        ASSERT_TRUE(!c->announced_order);
        c = u->certs[1];
        ASSERT_STREQ(c->renewal_state, "approved");
        ASSERT_TRUE(c->renewal_rekey);
        ASSERT_EQ(c->renewal_validity_days, 730u);
        ASSERT_TRUE(!c->reject_reason);
        ASSERT_STREQ(c->announced_order, "R2026-000008");
        /* Never asked: "none", nothing written. */
        c = u->certs[2];
        ASSERT_STREQ(c->renewal_state, "none");
        ASSERT_TRUE(!c->renewal_order && !c->portal_url && c->renewal_checked_usec == 0);
        token_object_free(u);
        token_object_free(t);
        remove_dir(dir);
}

/* Saves off the loop: the newest of saves asked for while one is being
 * written is what the file ends with; closing waits for the writes, and a
 * state folder that does not exist yet is made. */
static void test_writer(void) {
        _cleanup_free_ char *dir = make_dir(), *state = NULL;
        TokenIdentity other = { .serial_source = TOKEN_SERIAL_VENDOR, .serial = "87654321" };
        TokenObject *t = make_token(), *u;
        TokenStoreWriter *w;
        Found found = {};
        uv_loop_t loop;

        ASSERT_TRUE(asprintf(&state, "%s/state", dir) > 0);
        add_fixture(t, 0x9a, "rsa2048.der", EXPIRY_LEVEL_NONE);
        ASSERT_EQ(token_object_new(NULL, NULL, "87654321", "piv", &other, &u), 0);
        u->pin_retries = 2;
        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(token_store_writer_new(&loop, state, &w), 0);
        for (int tries = 3; tries >= 0; tries--) {
                t->pin_retries = tries;
                ASSERT_EQ(token_store_writer_save(w, t), 0);
        }
        ASSERT_EQ(token_store_writer_save(w, u), 0);
        token_store_writer_close(w);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(uv_loop_close(&loop), 0);

        ASSERT_EQ(token_store_load_all(state, NULL, NULL, on_found, &found), 2);
        for (size_t i = 0; i < found.n; i++) {
                TokenObject *f = found.tokens[i];

                ASSERT_EQ(f->pin_retries, strcmp(f->key, "12345678") == 0 ? 0 : 2);
                ASSERT_EQ(f->n_certs, strcmp(f->key, "12345678") == 0 ? 1u : 0u);
                token_object_free(f);
        }
        token_object_free(t);
        token_object_free(u);
        remove_dir(dir);
}

int main(void) {
        RUN(test_round_trip);
        RUN(test_renewal_round_trip);
        RUN(test_sm2_expiry);
        RUN(test_apply_read);
        RUN(test_bad_files);
        RUN(test_writer);
        return 0;
}
