/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Yubico's MOVE KEY (firmware 5.7): a key into another slot, or deleted. */
#include <errno.h>

#include "apdu.h"
#include "piv-internal.h"
#include "piv.h"

#define INS_MOVE_KEY 0xF6

int piv_move_key(Token *t, unsigned from_slot, unsigned to_slot) {
        /* The attestation key (F9) has no certificate object: the slot
         * check refuses it like any reference that is no key slot. */
        if (piv_slot_object(from_slot) == 0 || from_slot == to_slot ||
            (to_slot != TOKEN_SLOT_DELETE && piv_slot_object(to_slot) == 0))
                return -EINVAL;

        /* P1 where the key goes, P2 where it is, no data; what the card
         * does not know it answers 6D00, which apdu.h calls -EOPNOTSUPP. */
        return apdu_call(
                t->transport,
                &(ApduCommand){ .ins = INS_MOVE_KEY, .p1 = (uint8_t) to_slot, .p2 = (uint8_t) from_slot },
                NULL, NULL);
}
