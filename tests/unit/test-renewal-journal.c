/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The renewal journal: every step, refused transitions, crash simulation by
 * truncation at every byte, the resume listing, file modes, no secrets in
 * the files, the history. Keys and certificates are made here with OpenSSL. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assert.h"
#include "renewal-journal.h"

#define OLD_ID "5d41402abc4b2a76b9719d911017c592d10f1e2e4cd0bd04fd01dd8c1b9f4a3c:1a2b3c"
#define PIN "314159"
#define MGM_KEY "0102030405060708a1a2a3a4a5a6a7a8b1b2b3b4b5b6b7b8"

static char dir[] = "/tmp/test-renewal-journal-XXXXXX";
static int dir_fd = -1;

static EVP_PKEY *new_key(void) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        ASSERT_TRUE(k);
        return k;
}

static size_t spki_of(EVP_PKEY *k, uint8_t **ret) {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(k, &der);
        ASSERT_TRUE(n > 0);
        *ret = der;
        return (size_t) n;
}

/* A self-signed certificate for k with a known serial. */
static size_t cert_for(EVP_PKEY *k, long serial, uint8_t **ret) {
        X509 *x = X509_new();
        X509_NAME *n = X509_NAME_new();
        unsigned char *der = NULL;
        int len;

        ASSERT_TRUE(x && n);
        ASSERT_TRUE(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *) "张三", -1,
                                               -1, 0));
        ASSERT_TRUE(X509_set_version(x, 2));
        ASSERT_TRUE(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
        ASSERT_TRUE(X509_set_subject_name(x, n) && X509_set_issuer_name(x, n));
        ASSERT_TRUE(ASN1_TIME_set(X509_getm_notBefore(x), 1700000000));
        ASSERT_TRUE(ASN1_TIME_set(X509_getm_notAfter(x), 1800000000));
        ASSERT_TRUE(X509_set_pubkey(x, k));
        ASSERT_TRUE(X509_sign(x, k, EVP_sha256()) > 0);
        len = i2d_X509(x, &der);
        ASSERT_TRUE(len > 0);
        X509_NAME_free(n);
        X509_free(x);
        *ret = der;
        return (size_t) len;
}

static void read_all(const char *name, char **ret, size_t *ret_len) {
        int fd = openat(dir_fd, name, O_RDONLY);
        struct stat st;
        char *b;

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(fstat(fd, &st), 0);
        b = malloc((size_t) st.st_size + 1);
        ASSERT_TRUE(b);
        ASSERT_EQ(read(fd, b, (size_t) st.st_size), st.st_size);
        b[st.st_size] = '\0';
        close(fd);
        *ret = b;
        *ret_len = (size_t) st.st_size;
}

static void write_all(const char *name, const char *data, size_t len) {
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, data, len), (ssize_t) len);
        close(fd);
}

/* The file name the journal of "R2026-000001" has: hex of the id. */
#define FILE_1 "renewal-52323032362d303030303031.journal"

static bool contains(const char *hay, size_t n, const char *needle) {
        return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* A rekey journal's key is made in retired slot 0x95 and moved in later. */
static int start_journal(int fd, const char *order, const char *token, uint8_t slot, const char *old_cert,
                         bool rekey, time_t now, RenewalJournal **ret) {
        RenewalJournalStart start = { .order_id = order,
                                      .token_serial = token,
                                      .slot = slot,
                                      .new_slot = rekey ? 0x95 : slot,
                                      .old_cert_id = old_cert,
                                      .old_cert = (const uint8_t *) "\x30\x03\x02\x01\x01",
                                      .old_cert_len = 5,
                                      .rekey = rekey,
                                      .cmp_url = "https://portal.example/.well-known/cmp/p/renew",
                                      .uid = 1000 };

        return renewal_journal_start(fd, &start, now, ret);
}

static void assert_mode_0600(const char *name) {
        struct stat st;
        ASSERT_EQ(fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        ASSERT_EQ(st.st_mode & 07777, 0600);
}

static void test_every_step(void) {
        _cleanup_(renewal_journal_freep) RenewalJournal *j = NULL, *l = NULL;
        EVP_PKEY *k = new_key(), *other = new_key();
        uint8_t *spki, *cert, *wrong;
        size_t spki_len = spki_of(k, &spki), cert_len = cert_for(k, 0x777, &cert),
               wrong_len = cert_for(other, 5, &wrong);
        RenewalStep steps[] = { RENEWAL_WRITTEN, RENEWAL_VERIFIED, RENEWAL_CONFIRMED, RENEWAL_DONE };
        char *bytes;
        size_t len;

        ASSERT_EQ(start_journal(dir_fd, "R2026-000001", "12345678", 0x9a, OLD_ID, true, 1000, &j), 0);
        assert_mode_0600(FILE_1);
        ASSERT_EQ(start_journal(dir_fd, "R2026-000001", "12345678", 0x9a, OLD_ID, true, 1000, &l), -EEXIST);
        ASSERT_EQ(renewal_journal_load(dir_fd, "R2026-000001", &l), 0);
        ASSERT_EQ(l->step, RENEWAL_STARTED);
        ASSERT_STREQ(l->old_cert_id, OLD_ID);
        ASSERT_STREQ(l->token_serial, "12345678");
        ASSERT_EQ(l->slot, 0x9a);
        ASSERT_EQ(l->new_slot, 0x95);
        ASSERT_EQ(l->uid, 1000);
        ASSERT_EQ(l->old_cert_len, 5u);
        ASSERT_MEMEQ(l->old_cert, "\x30\x03\x02\x01\x01", 5);
        ASSERT_STREQ(l->cmp_url, "https://portal.example/.well-known/cmp/p/renew");
        ASSERT_TRUE(l->rekey);
        l = renewal_journal_free(l);

        /* Skipping ahead is refused, and leaves j as it was. */
        ASSERT_EQ(renewal_journal_issued(dir_fd, j, cert, cert_len, 1001), -EINVAL);
        ASSERT_EQ(renewal_journal_advance(dir_fd, j, RENEWAL_WRITTEN, 1001), -EINVAL);
        ASSERT_EQ(j->step, RENEWAL_STARTED);
        ASSERT_EQ(renewal_journal_key_generated(dir_fd, j, "junk", 4, 1001), -EINVAL);
        ASSERT_EQ(renewal_journal_key_generated(dir_fd, j, spki, spki_len, 1001), 0);
        ASSERT_EQ(renewal_journal_key_generated(dir_fd, j, spki, spki_len, 1001), -EINVAL);

        ASSERT_EQ(renewal_journal_load(dir_fd, "R2026-000001", &l), 0);
        ASSERT_EQ(l->step, RENEWAL_KEY_GENERATED);
        ASSERT_EQ(l->new_public_key_len, spki_len);
        ASSERT_MEMEQ(l->new_public_key, spki, spki_len);
        l = renewal_journal_free(l);

        /* A certificate for another key is not this renewal's. */
        ASSERT_EQ(renewal_journal_issued(dir_fd, j, wrong, wrong_len, 1002), -EKEYREJECTED);
        ASSERT_EQ(renewal_journal_issued(dir_fd, j, cert, cert_len, 1002), 0);
        ASSERT_EQ(renewal_journal_load(dir_fd, "R2026-000001", &l), 0);
        ASSERT_EQ(l->step, RENEWAL_ISSUED);
        ASSERT_EQ(l->new_cert_len, cert_len);
        ASSERT_MEMEQ(l->new_cert, cert, cert_len);
        l = renewal_journal_free(l);

        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                /* Backwards and sideways are refused. */
                ASSERT_EQ(renewal_journal_advance(dir_fd, j, RENEWAL_ISSUED, 1003), -EINVAL);
                if (i + 1 < ELEMENTSOF(steps))
                        ASSERT_EQ(renewal_journal_advance(dir_fd, j, steps[i + 1], 1003), -EINVAL);
                ASSERT_EQ(renewal_journal_advance(dir_fd, j, steps[i], 1003 + (time_t) i), 0);
                ASSERT_EQ(renewal_journal_load(dir_fd, "R2026-000001", &l), 0);
                ASSERT_EQ(l->step, steps[i]);
                ASSERT_EQ(l->seq, 4 + i);
                l = renewal_journal_free(l);
                assert_mode_0600(FILE_1);
        }
        ASSERT_EQ(renewal_journal_end(dir_fd, j, RENEWAL_FAILED, "too late", 1010), -EINVAL);
        ASSERT_EQ(renewal_journal_advance(dir_fd, j, RENEWAL_DONE, 1010), -EINVAL);

        /* Public data only: the PIN and management key of the flow that
         * wrote these steps are nowhere in the file. */
        read_all(FILE_1, &bytes, &len);
        ASSERT_TRUE(!contains(bytes, len, PIN));
        ASSERT_TRUE(!contains(bytes, len, MGM_KEY));
        ASSERT_TRUE(contains(bytes, len, "\"step\":\"done\""));
        free(bytes);

        ASSERT_EQ(renewal_history_append(dir_fd, j, 1011), 0);
        /* Once per journal, however often a restart repeats it. */
        ASSERT_EQ(renewal_history_append(dir_fd, j, 1012), 0);
        assert_mode_0600("history.jsonl");
        read_all("history.jsonl", &bytes, &len);
        ASSERT_TRUE(!contains(bytes, len, PIN) && !contains(bytes, len, MGM_KEY));
        ASSERT_TRUE(contains(bytes, len, "\"new_serial\":\"777\""));
        ASSERT_TRUE(contains(bytes, len, "\"old_serial\":\"1a2b3c\""));
        ASSERT_TRUE(contains(bytes, len, "\"not_after\":\"2027-01-15T08:00:00Z\""));
        ASSERT_TRUE(contains(bytes, len, "\"outcome\":\"done\""));
        ASSERT_TRUE(!contains(bytes, len, "1012"));
        ASSERT_EQ(memchr(bytes, '\n', len), bytes + len - 1);
        free(bytes);
        ASSERT_EQ(renewal_journal_remove(dir_fd, j), 0);
        ASSERT_EQ(renewal_journal_load(dir_fd, "R2026-000001", &l), -ENOENT);

        OPENSSL_free(spki);
        OPENSSL_free(cert);
        OPENSSL_free(wrong);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
}

static void test_failed_and_cancelled(void) {
        _cleanup_(renewal_journal_freep) RenewalJournal *a = NULL, *b = NULL, *l = NULL;
        EVP_PKEY *k = new_key();
        uint8_t *spki;
        size_t spki_len = spki_of(k, &spki);
        json_t *h = NULL;
        size_t bad = 99;

        ASSERT_EQ(start_journal(dir_fd, "F-1", "serial", 0x9c, OLD_ID, false, 5, &a), 0);
        ASSERT_EQ(renewal_journal_key_generated(dir_fd, a, spki, spki_len, 6), 0);
        ASSERT_EQ(renewal_journal_end(dir_fd, a, RENEWAL_DONE, "x", 7), -EINVAL);
        ASSERT_EQ(renewal_journal_end(dir_fd, a, RENEWAL_FAILED, "", 7), -EINVAL);
        ASSERT_EQ(renewal_journal_remove(dir_fd, a), -EBUSY);
        ASSERT_EQ(renewal_history_append(dir_fd, a, 7), -EBUSY);
        ASSERT_EQ(renewal_journal_end(dir_fd, a, RENEWAL_FAILED,
                                      "no approved renewal order for this certificate", 7),
                  0);
        ASSERT_EQ(renewal_journal_end(dir_fd, a, RENEWAL_CANCELLED, "again", 8), -EINVAL);
        ASSERT_EQ(renewal_journal_load(dir_fd, "F-1", &l), 0);
        ASSERT_EQ(l->step, RENEWAL_FAILED);
        ASSERT_EQ(l->reached, RENEWAL_KEY_GENERATED);
        ASSERT_STREQ(l->reason, "no approved renewal order for this certificate");
        l = renewal_journal_free(l);

        ASSERT_EQ(start_journal(dir_fd, "C-1", "serial", 0x9a, OLD_ID, true, 5, &b), 0);
        ASSERT_EQ(renewal_journal_end(dir_fd, b, RENEWAL_CANCELLED, "the user said no", 9), 0);
        ASSERT_EQ(renewal_history_append(dir_fd, a, 10), 0);
        ASSERT_EQ(renewal_history_append(dir_fd, b, 11), 0);

        ASSERT_EQ(renewal_history_read(dir_fd, &h, &bad), 0);
        ASSERT_EQ(bad, 0);
        ASSERT_EQ(json_array_size(h), 3);                    /* with test_every_step's */
        ASSERT_EQ(renewal_history_append(dir_fd, b, 12), 0); /* already there */
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(h, 1), "outcome")), "failed");
        ASSERT_TRUE(json_is_null(json_object_get(json_array_get(h, 1), "new_serial")));
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(h, 2), "reason")), "the user said no");
        json_decref(h);

        /* A torn last append is left out and counted, never misread. */
        {
                int fd = openat(dir_fd, "history.jsonl", O_WRONLY | O_APPEND);
                ASSERT_TRUE(fd >= 0);
                ASSERT_EQ(write(fd, "{\"order\":\"X", 11), 11);
                close(fd);
        }
        ASSERT_EQ(renewal_history_read(dir_fd, &h, &bad), 0);
        ASSERT_EQ(bad, 1);
        ASSERT_EQ(json_array_size(h), 3);
        json_decref(h);
        /* The next append is not swallowed by the torn line. */
        a->seq++;
        ASSERT_EQ(renewal_history_append(dir_fd, a, 12), 0);
        a->seq--;
        ASSERT_EQ(renewal_history_read(dir_fd, &h, &bad), 0);
        ASSERT_EQ(bad, 1);
        ASSERT_EQ(json_array_size(h), 4);
        ASSERT_EQ(json_integer_value(json_object_get(json_array_get(h, 3), "time")), 12);
        json_decref(h);

        ASSERT_EQ(renewal_journal_remove(dir_fd, a), 0);
        ASSERT_EQ(renewal_journal_remove(dir_fd, b), 0);
        OPENSSL_free(spki);
        EVP_PKEY_free(k);
}

/* Truncate the journal of each step at every byte: the loader says
 * -EBADMSG every time, never another step. A truncated temporary file (the
 * crash happened before the rename) leaves the previous step readable. */
static void test_truncation(void) {
        _cleanup_(renewal_journal_freep) RenewalJournal *j = NULL;
        EVP_PKEY *k = new_key();
        uint8_t *spki, *cert;
        size_t spki_len = spki_of(k, &spki), cert_len = cert_for(k, 0x1234, &cert);
        const char *name = "renewal-542d31.journal", *tmp = "renewal-542d31.journal.tmp";
        char *prev = NULL;
        size_t prev_len = 0;

        ASSERT_EQ(start_journal(dir_fd, "T-1", "tok", 0x9d, OLD_ID, true, 50, &j), 0);
        for (int step = RENEWAL_STARTED; step <= RENEWAL_DONE; step++) {
                char *whole;
                size_t len;

                if (step == RENEWAL_KEY_GENERATED)
                        ASSERT_EQ(renewal_journal_key_generated(dir_fd, j, spki, spki_len, 51), 0);
                else if (step == RENEWAL_ISSUED)
                        ASSERT_EQ(renewal_journal_issued(dir_fd, j, cert, cert_len, 52), 0);
                else if (step > RENEWAL_ISSUED)
                        ASSERT_EQ(renewal_journal_advance(dir_fd, j, (RenewalStep) step, 53), 0);
                read_all(name, &whole, &len);

                for (size_t cut = 0; cut < len; cut++) {
                        RenewalJournal *l = NULL;
                        write_all(name, whole, cut);
                        ASSERT_EQ(renewal_journal_load(dir_fd, "T-1", &l), -EBADMSG);
                }
                /* One flipped byte anywhere is caught too (sampled). */
                for (size_t at = 0; at < len; at += 7) {
                        RenewalJournal *l = NULL;
                        whole[at] ^= 0x01;
                        write_all(name, whole, len);
                        ASSERT_EQ(renewal_journal_load(dir_fd, "T-1", &l), -EBADMSG);
                        whole[at] ^= 0x01;
                }
                if (prev) {
                        /* The crash before the rename: old file whole, new one torn. */
                        for (size_t cut = 0; cut < len; cut += 13) {
                                RenewalJournal *l = NULL;
                                RenewalJournal **list = NULL;
                                char **bad = NULL;
                                size_t n = 0;

                                write_all(name, prev, prev_len);
                                write_all(tmp, whole, cut);
                                ASSERT_EQ(renewal_journal_load(dir_fd, "T-1", &l), 0);
                                ASSERT_EQ(l->step, step - 1);
                                renewal_journal_free(l);
                                ASSERT_EQ(renewal_journal_list(dir_fd, false, &list, &n, &bad), 0);
                                ASSERT_EQ(n, step - 1 == RENEWAL_DONE ? 0 : 1);
                                ASSERT_TRUE(bad && !bad[0]);
                                renewal_journal_list_free(list, n);
                                free(bad);
                        }
                        ASSERT_EQ(unlinkat(dir_fd, tmp, 0), 0);
                }
                write_all(name, whole, len);
                free(prev);
                prev = whole;
                prev_len = len;
        }
        free(prev);
        ASSERT_EQ(renewal_journal_remove(dir_fd, j), 0);
        OPENSSL_free(spki);
        OPENSSL_free(cert);
        EVP_PKEY_free(k);
}

static void test_listing(void) {
        RenewalJournal *a = NULL, *b = NULL, *c = NULL, **list = NULL;
        char **bad = NULL;
        size_t n = 0;

        ASSERT_EQ(start_journal(dir_fd, "B-2", "tok", 0x9a, OLD_ID, true, 1, &b), 0);
        ASSERT_EQ(start_journal(dir_fd, "A-1", "tok", 0x9c, OLD_ID, true, 1, &a), 0);
        ASSERT_EQ(start_journal(dir_fd, "C-3", "tok", 0x9e, OLD_ID, true, 1, &c), 0);
        ASSERT_EQ(renewal_journal_end(dir_fd, c, RENEWAL_CANCELLED, "gone", 2), 0);
        /* A corrupt journal, a renamed one and unrelated files. */
        write_all("renewal-5a2d39.journal", "keyrenew-renewal-journal 1 00\n{}\n", 33);
        {
                char *whole;
                size_t len;
                read_all("renewal-412d31.journal", &whole, &len);
                write_all("renewal-412d32.journal", whole, len);
                free(whole);
        }
        write_all("history.jsonl.bak", "x", 1);

        ASSERT_EQ(renewal_journal_list(dir_fd, false, &list, &n, &bad), 0);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(list[0]->order_id, "A-1");
        ASSERT_STREQ(list[1]->order_id, "B-2");
        ASSERT_TRUE(bad[0] && bad[1] && !bad[2]);
        ASSERT_TRUE((strcmp(bad[0], "renewal-5a2d39.journal") == 0 &&
                     strcmp(bad[1], "renewal-412d32.journal") == 0) ||
                    (strcmp(bad[1], "renewal-5a2d39.journal") == 0 &&
                     strcmp(bad[0], "renewal-412d32.journal") == 0));
        renewal_journal_list_free(list, n);
        for (size_t i = 0; bad[i]; i++)
                free(bad[i]);
        free(bad);

        /* With the finished ones, for the clean-up at start. */
        ASSERT_EQ(renewal_journal_list(dir_fd, true, &list, &n, &bad), 0);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(list[2]->order_id, "C-3");
        ASSERT_EQ(list[2]->step, RENEWAL_CANCELLED);
        renewal_journal_list_free(list, n);
        for (size_t i = 0; bad[i]; i++)
                free(bad[i]);
        free(bad);

        ASSERT_EQ(start_journal(dir_fd, "bad\nid", "tok", 0x9a, OLD_ID, true, 1, &c), -EINVAL);
        ASSERT_EQ(start_journal(dir_fd, "D-1", "tok", 0x9a, "nothex:1", true, 1, &c), -EINVAL);
        renewal_journal_free(a);
        renewal_journal_free(b);
        renewal_journal_free(c);
}

int main(void) {
        umask(022);
        ASSERT_TRUE(mkdtemp(dir));
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(dir_fd >= 0);

        test_every_step();
        test_failed_and_cancelled();
        test_truncation();
        test_listing();

        {
                DIR *d = fdopendir(dup(dir_fd));
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.' || (de->d_name[1] && strcmp(de->d_name, "..") != 0))
                                ASSERT_EQ(unlinkat(dir_fd, de->d_name, 0), 0);
                closedir(d);
        }
        close(dir_fd);
        ASSERT_EQ(rmdir(dir), 0);
        return 0;
}
