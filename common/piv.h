/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The PIV driver (NIST SP 800-73-4, with the YubiKey extensions GET SERIAL,
 * GET VERSION and GET METADATA where the card offers them). Slots are key
 * references. */

#include <stdint.h>

#include "token-driver.h"

extern const TokenDriver piv_driver;

#define PIV_SLOT_AUTHENTICATION 0x9Au
#define PIV_SLOT_SIGNATURE 0x9Cu
#define PIV_SLOT_KEY_MANAGEMENT 0x9Du
#define PIV_SLOT_CARD_AUTHENTICATION 0x9Eu
#define PIV_SLOT_RETIRED_FIRST 0x82u /* retired key management 1 .. 20 */
#define PIV_SLOT_RETIRED_LAST 0x95u

#define PIV_OBJECT_CHUID 0x5FC102u

/* The management key every PIV card leaves the factory with (public
 * knowledge: a card still on it lets anyone change it). */
extern const uint8_t piv_default_mgm_key_3des[24];

/* The data object with a slot's certificate (0x5FC105 for 9A), or 0 when
 * the key reference is not a slot with a certificate. */
uint32_t piv_slot_object(unsigned slot);
