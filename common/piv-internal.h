/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared between the files of the PIV driver. */

#include <stddef.h>
#include <stdint.h>

#include "tlv.h"
#include "token-driver.h"

/* Reads a data object with GET DATA. Returns 0, the response in *ret_buf
 * (free() it) and in *ret_content the value of its 53 container, which
 * points into *ret_buf; -ENOENT when the card has no such object;
 * -EBADMSG when the response is not exactly one 53 TLV. */
int piv_get_object(Token *t, uint32_t object, uint8_t **ret_buf, Tlv *ret_content);

int piv_read_certificate(Token *t, unsigned slot, TokenCertificate *ret);
int piv_list_certificates(Token *t, TokenCertificate **ret, size_t *ret_n);
