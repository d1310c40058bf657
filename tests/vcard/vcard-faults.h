/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The faults `keyrenew-vcard run` injects for the reliability tests.
 * APDUs are numbered from 1, counting every command APDU since the
 * connection was made (GET RESPONSE and chained pieces included, control
 * codes not). */

#include <stdbool.h>
#include <stdint.h>

#define VCARD_FAULTS_FAIL_MAX 16

typedef struct VcardFaults {
        unsigned vanish_before; /* 0: never */
        unsigned vanish_after;  /* 0: never */
        unsigned freeze_after;  /* 0: never */
        unsigned delay_ms;
        unsigned n_fail;
        struct {
                unsigned apdu;
                uint16_t sw;
        } fail[VCARD_FAULTS_FAIL_MAX];
} VcardFaults;

typedef enum VcardFault {
        VCARD_FAULT_NONE,
        VCARD_FAULT_VANISH, /* close the connection instead of answering */
        VCARD_FAULT_SW,     /* answer with a chosen status word only */
} VcardFault;

/* A decimal count of at least 1 (an APDU number) or of at least 0 (with
 * allow_zero). -EINVAL otherwise. */
int vcard_parse_number(const char *s, bool allow_zero, unsigned *ret);

/* Adds a --fail-sw N:SW (SW four hex digits, e.g. 6A82). -EINVAL for a
 * malformed argument, -E2BIG when there are too many. */
int vcard_faults_add_fail_sw(VcardFaults *f, const char *arg);

/* What to do with APDU n before processing it; *ret_sw for VCARD_FAULT_SW. */
VcardFault vcard_faults_before(const VcardFaults *f, unsigned n, uint16_t *ret_sw);

/* Whether to vanish once APDU n has been answered. */
bool vcard_faults_vanish_after(const VcardFaults *f, unsigned n);

/* Whether to stop answering anything once APDU n has been answered. */
bool vcard_faults_freeze_after(const VcardFaults *f, unsigned n);
