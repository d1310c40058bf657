/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The contents of the PIV data objects a new card gets, and certificate
 * objects (SP 800-73-4 part 1 appendix A). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "piv-card.h"

/* Stores a CHUID (random GUID, expiry 2030-01-01) and a CCC (random card
 * identifier), as yubico-piv-tool's set-chuid and set-ccc do. */
int card_objects_put_chuid(PivCard *c);
int card_objects_put_ccc(PivCard *c);

/* The Discovery object: the PIV AID, PIN usage policy "PIV PIN only". */
int card_objects_put_discovery(PivCard *c);

/* A Key History object for no retired keys. */
int card_objects_put_key_history(PivCard *c);

/* YubiKey's PIN-protected management key: the key in the printed
 * information object (53 { 88 { 89 key } }) and admin data flags saying
 * so (53 { 80 { 81 02 } }). */
int card_objects_put_protected_mgm(PivCard *c);

/* Stores cert in the slot's certificate object (70 cert, 71 00, FE). */
int card_objects_put_certificate(PivCard *c, uint8_t slot, X509 *cert);

/* The certificate stored for a slot: 1 and *ret, 0 when there is none,
 * -EBADMSG when the object holds no parsable certificate. */
int card_objects_get_certificate(const PivCard *c, uint8_t slot, X509 **ret);

/* Whether the admin data object marks the management key as PIN-protected. */
bool card_objects_mgm_protected(const PivCard *c);
