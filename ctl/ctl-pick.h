/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Which certificate "keyrenewctl renew [KEY|CERT]" means. A certificate
 * is named as list shows it: its key's serial and its slot, SERIAL/SLOT
 * ("12345678/9a"), or by its object path. */

#include <stddef.h>

#include "ctl-bus.h"

/* target: NULL (any key), a key's serial, SERIAL/SLOT (the slot in any
 * case), or a certificate's object path. NULL and a serial give the
 * certificates ready to be renewed (RenewalState "approved" or "issued");
 * SERIAL/SLOT and a path give that certificate whatever its state, for
 * keyrenewd to judge. On success returns how many there are and the list
 * (NULL-terminated, the certificates borrowed from m) in *ret. -ENODEV:
 * no key has that serial; -ENOENT: the key has no certificate in that slot,
 * or no certificate has that path. */
int ctl_pick(const CtlManager *m, const char *target, CtlCert ***ret);

/* The key a certificate is on, NULL when the manager does not list it. */
const CtlToken *ctl_token_of(const CtlManager *m, const CtlCert *c);

/* "12345678/9a": how keyrenewctl names a certificate. */
void ctl_cert_name(const CtlManager *m, const CtlCert *c, char *buf, size_t size);
