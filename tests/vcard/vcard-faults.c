/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vcard-faults.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int vcard_parse_number(const char *s, bool allow_zero, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > UINT_MAX || (v == 0 && !allow_zero))
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int vcard_faults_add_fail_sw(VcardFaults *f, const char *arg) {
        const char *colon = strchr(arg, ':');
        char number[16];
        unsigned n, sw = 0;

        if (!colon || (size_t) (colon - arg) >= sizeof number || strlen(colon + 1) != 4)
                return -EINVAL;
        memcpy(number, arg, (size_t) (colon - arg));
        number[colon - arg] = '\0';
        if (vcard_parse_number(number, false, &n) < 0)
                return -EINVAL;
        for (const char *p = colon + 1; *p; p++) {
                if (!isxdigit((unsigned char) *p))
                        return -EINVAL;
                sw = sw << 4 | (unsigned) (isdigit((unsigned char) *p) ? *p - '0' : tolower(*p) - 'a' + 10);
        }
        if (f->n_fail >= VCARD_FAULTS_FAIL_MAX)
                return -E2BIG;
        f->fail[f->n_fail].apdu = n;
        f->fail[f->n_fail].sw = (uint16_t) sw;
        f->n_fail++;
        return 0;
}

VcardFault vcard_faults_before(const VcardFaults *f, unsigned n, uint16_t *ret_sw) {
        if (f->vanish_before != 0 && n == f->vanish_before)
                return VCARD_FAULT_VANISH;
        for (unsigned i = 0; i < f->n_fail; i++)
                if (f->fail[i].apdu == n) {
                        *ret_sw = f->fail[i].sw;
                        return VCARD_FAULT_SW;
                }
        return VCARD_FAULT_NONE;
}

bool vcard_faults_vanish_after(const VcardFaults *f, unsigned n) {
        return f->vanish_after != 0 && n == f->vanish_after;
}

bool vcard_faults_freeze_after(const VcardFaults *f, unsigned n) {
        return f->freeze_after != 0 && n == f->freeze_after;
}
