/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing the fault options of keyrenew-vcard run, and which APDU each
 * fault hits. */

#include <errno.h>

#include "assert.h"
#include "vcard-faults.h"

static void test_numbers(void) {
        unsigned n = 99;

        ASSERT_EQ(vcard_parse_number("12", false, &n), 0);
        ASSERT_EQ(n, 12);
        ASSERT_EQ(vcard_parse_number("0", false, &n), -EINVAL);
        ASSERT_EQ(vcard_parse_number("0", true, &n), 0);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(vcard_parse_number("-1", true, &n), -EINVAL);
        ASSERT_EQ(vcard_parse_number("", true, &n), -EINVAL);
        ASSERT_EQ(vcard_parse_number("3x", true, &n), -EINVAL);
        ASSERT_EQ(vcard_parse_number("99999999999", true, &n), -EINVAL);
}

static void test_fail_sw(void) {
        VcardFaults f = {};
        uint16_t sw = 0;

        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "3:6A82"), 0);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "10:6f00"), 0);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "3"), -EINVAL);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, ":6A82"), -EINVAL);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "0:6A82"), -EINVAL);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "1:6A8"), -EINVAL);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "1:6A820"), -EINVAL);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "1:6G82"), -EINVAL);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "12345678901234567890:6A82"), -EINVAL);
        ASSERT_EQ(f.n_fail, 2);

        ASSERT_EQ(vcard_faults_before(&f, 1, &sw), VCARD_FAULT_NONE);
        ASSERT_EQ(vcard_faults_before(&f, 3, &sw), VCARD_FAULT_SW);
        ASSERT_EQ(sw, 0x6A82);
        ASSERT_EQ(vcard_faults_before(&f, 10, &sw), VCARD_FAULT_SW);
        ASSERT_EQ(sw, 0x6F00);
        for (unsigned i = f.n_fail; i < VCARD_FAULTS_FAIL_MAX; i++)
                ASSERT_EQ(vcard_faults_add_fail_sw(&f, "20:9000"), 0);
        ASSERT_EQ(vcard_faults_add_fail_sw(&f, "21:9000"), -E2BIG);
}

static void test_vanish(void) {
        VcardFaults f = { .vanish_before = 5, .vanish_after = 2 };
        uint16_t sw = 0;

        ASSERT_EQ(vcard_faults_before(&f, 2, &sw), VCARD_FAULT_NONE);
        ASSERT_TRUE(vcard_faults_vanish_after(&f, 2));
        ASSERT_TRUE(!vcard_faults_vanish_after(&f, 5));
        ASSERT_EQ(vcard_faults_before(&f, 5, &sw), VCARD_FAULT_VANISH);
        f = (VcardFaults){};
        ASSERT_EQ(vcard_faults_before(&f, 1, &sw), VCARD_FAULT_NONE);
        ASSERT_TRUE(!vcard_faults_vanish_after(&f, 1));
}

static void test_freeze(void) {
        VcardFaults f = { .freeze_after = 4 };
        uint16_t sw = 0;

        /* APDU 4 is answered as usual; the card freezes after it */
        ASSERT_EQ(vcard_faults_before(&f, 4, &sw), VCARD_FAULT_NONE);
        ASSERT_TRUE(!vcard_faults_vanish_after(&f, 4));
        ASSERT_TRUE(vcard_faults_freeze_after(&f, 4));
        ASSERT_TRUE(!vcard_faults_freeze_after(&f, 3));
        ASSERT_TRUE(!vcard_faults_freeze_after(&f, 5));
        f = (VcardFaults){};
        ASSERT_TRUE(!vcard_faults_freeze_after(&f, 0));
        ASSERT_TRUE(!vcard_faults_freeze_after(&f, 1));
}

int main(void) {
        RUN(test_numbers);
        RUN(test_fail_sw);
        RUN(test_vanish);
        RUN(test_freeze);
        return 0;
}
