/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "rsa-pad.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "macro.h"

#define HASH_MAX EVP_MAX_MD_SIZE

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD *, EVP_MD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)

/* DER of DigestInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING }
 * up to the hash itself (RFC 8017 9.2 note 1). */
static const struct {
        const char *name;
        uint8_t prefix[19];
        size_t len;
} digest_info[] = {
        { "SHA1",
          { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 },
          15 },
        { "SHA2-224",
          { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05,
            0x00, 0x04, 0x1c },
          19 },
        { "SHA2-256",
          { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
            0x00, 0x04, 0x20 },
          19 },
        { "SHA2-384",
          { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
            0x00, 0x04, 0x30 },
          19 },
        { "SHA2-512",
          { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
            0x00, 0x04, 0x40 },
          19 },
};

int rsa_pad_pkcs1(const char *md_name, const uint8_t *hash, size_t hash_len, uint8_t *block,
                  size_t block_len) {
        _cleanup_(EVP_MD_freep) EVP_MD *md = EVP_MD_fetch(NULL, md_name, NULL);
        size_t i, t_len, ps;

        if (!md || (size_t) EVP_MD_get_size(md) != hash_len)
                return -EINVAL;
        for (i = 0; i < ELEMENTSOF(digest_info); i++)
                if (EVP_MD_is_a(md, digest_info[i].name))
                        break;
        if (i == ELEMENTSOF(digest_info))
                return -EINVAL;
        t_len = digest_info[i].len + hash_len;
        /* At least eight bytes of FF. */
        if (block_len < t_len + 11)
                return -EINVAL;

        ps = block_len - t_len - 3;
        block[0] = 0x00;
        block[1] = 0x01;
        memset(block + 2, 0xFF, ps);
        block[2 + ps] = 0x00;
        memcpy(block + 3 + ps, digest_info[i].prefix, digest_info[i].len);
        memcpy(block + 3 + ps + digest_info[i].len, hash, hash_len);
        return 0;
}

/* mask ^= MGF1(seed) over n bytes (RFC 8017 B.2.1). */
static int mgf1_xor(const EVP_MD *md, const uint8_t *seed, size_t seed_len, uint8_t *mask, size_t n) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t out[HASH_MAX];
        size_t done = 0;
        unsigned len = 0;

        if (!ctx)
                return -ENOMEM;
        for (uint32_t counter = 0; done < n; counter++) {
                uint8_t c[4] = { counter >> 24, counter >> 16, counter >> 8, counter };

                if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, seed, seed_len) != 1 ||
                    EVP_DigestUpdate(ctx, c, sizeof c) != 1 || EVP_DigestFinal_ex(ctx, out, &len) != 1)
                        return -EIO;
                for (unsigned i = 0; i < len && done < n; i++)
                        mask[done++] ^= out[i];
        }
        return 0;
}

/* H = Hash(00 x 8 || mHash || salt). */
static int pss_hash(const EVP_MD *md, const uint8_t *hash, size_t hash_len, const uint8_t *salt,
                    size_t salt_len, uint8_t *out) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        static const uint8_t zeros[8] = {};

        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, zeros, sizeof zeros) != 1 ||
            EVP_DigestUpdate(ctx, hash, hash_len) != 1 || EVP_DigestUpdate(ctx, salt, salt_len) != 1 ||
            EVP_DigestFinal_ex(ctx, out, NULL) != 1)
                return -EIO;
        return 0;
}

int rsa_pad_pss(const char *md_name, const char *mgf1_md_name, size_t salt_len, const uint8_t *hash,
                size_t hash_len, unsigned mod_bits, uint8_t *block, size_t block_len) {
        _cleanup_(EVP_MD_freep) EVP_MD *md = EVP_MD_fetch(NULL, md_name, NULL);
        _cleanup_(EVP_MD_freep) EVP_MD *mgf1 = EVP_MD_fetch(NULL, mgf1_md_name, NULL);
        size_t em_bits = mod_bits - 1, em_len = (em_bits + 7) / 8, db_len, lead;
        uint8_t *em, *db, *h;
        int r;

        if (!md || !mgf1 || mod_bits < 16 || (size_t) EVP_MD_get_size(md) != hash_len ||
            block_len < em_len || em_len < hash_len + salt_len + 2)
                return -EINVAL;
        lead = block_len - em_len;
        em = block + lead;
        db_len = em_len - hash_len - 1;
        db = em;
        h = em + db_len;

        memset(block, 0, block_len);
        /* DB = PS || 01 || salt, the salt straight in its place. */
        db[db_len - salt_len - 1] = 0x01;
        if (salt_len > 0 && RAND_bytes(db + db_len - salt_len, (int) salt_len) != 1)
                return -EIO;
        r = pss_hash(md, hash, hash_len, db + db_len - salt_len, salt_len, h);
        if (r < 0)
                return r;
        r = mgf1_xor(mgf1, h, hash_len, db, db_len);
        if (r < 0)
                return r;
        db[0] &= (uint8_t) (0xFF >> (8 * em_len - em_bits));
        em[em_len - 1] = 0xBC;
        return 0;
}
