/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A TokenTransport over PC/SC (pcsc-lite): the card in one reader,
 * connected shared with T=1 or T=0; begin/end are SCardBeginTransaction /
 * SCardEndTransaction. A reset by someone else is met with a reconnect:
 * begin() then reports it (token.c selects the application again); a
 * transmit that runs into it fails with -ECONNRESET, as the card's state is
 * gone in the middle of a call.
 *
 * PC/SC results → errno (pcsc_error_to_errno):
 *   SCARD_S_SUCCESS                                      0
 *   SCARD_W_REMOVED_CARD, SCARD_E_NO_SMARTCARD           -ENOMEDIUM      the card is gone
 *   SCARD_W_RESET_CARD                                   -ECONNRESET     reset, state lost
 *   SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE,  -ENODEV         the reader is gone
 *   SCARD_E_NO_READERS_AVAILABLE
 *   SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED          -ECONNREFUSED   no pcscd (any more)
 *   SCARD_E_SHARING_VIOLATION                            -EBUSY          held exclusively by another
 *   SCARD_E_TIMEOUT                                      -ETIMEDOUT
 *   SCARD_E_CANCELLED                                    -ECANCELED
 *   SCARD_E_NO_MEMORY                                    -ENOMEM
 *   SCARD_E_INSUFFICIENT_BUFFER                          -ENOBUFS
 *   SCARD_E_PROTO_MISMATCH, SCARD_W_UNSUPPORTED_CARD,    -EPROTONOSUPPORT
 *   SCARD_E_CARD_UNSUPPORTED
 *   SCARD_E_INVALID_HANDLE, SCARD_E_INVALID_PARAMETER,   -EINVAL
 *   SCARD_E_INVALID_VALUE
 *   SCARD_W_UNRESPONSIVE_CARD, SCARD_W_UNPOWERED_CARD,   -EIO
 *   SCARD_E_NOT_TRANSACTED, anything else */

#include <PCSC/winscard.h>

#include "macro.h"
#include "token-transport.h"

typedef struct PcscTransport PcscTransport;

/* Establishes a PC/SC context of its own (pcsc-lite wants one per thread:
 * open and use the transport in the same thread) and connects to the card
 * in reader. */
int pcsc_transport_open(const char *reader, PcscTransport **ret);
PcscTransport *pcsc_transport_free(PcscTransport *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(PcscTransport *, pcsc_transport_free)

/* Resets the card when p is freed, rather than leaving it as it is: a
 * verified PIN or an authenticated management key must not outlive the
 * work that needed it (for the next program that talks to the card). */
void pcsc_transport_reset_on_close(PcscTransport *p);

/* Valid as long as p is. */
TokenTransport *pcsc_transport_get(PcscTransport *p);

int pcsc_error_to_errno(LONG rv);
