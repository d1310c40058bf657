/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The portal's CMP server (docs/portal-protocol.md, part 2): kur, certConf
 * and rr on top of OpenSSL's OSSL_CMP_SRV_CTX, one context per open
 * transaction. Not thread-safe: the HTTP server calls it from one thread. */

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "portal-ca.h"

typedef struct CmpServer CmpServer;

/* db and cas must outlive the server. */
int cmp_server_new(sqlite3 *db, const PortalCas *cas, CmpServer **ret);
void cmp_server_free(CmpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(CmpServer *, cmp_server_free)

/* Answers one DER PKIMessage with a malloc()ed DER PKIMessage. A request
 * byte for byte equal to one answered before gets the same answer again.
 * -EBADMSG when request is not a PKIMessage. */
int cmp_server_handle(CmpServer *s, const uint8_t *request, size_t len, uint8_t **ret, size_t *ret_len);
