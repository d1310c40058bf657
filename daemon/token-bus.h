/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Tokens and certificates as the bus shows them:
 *   /org/keyrenew/KeyRenew1/token/<serial>            org.keyrenew.KeyRenew1.Token
 *   /org/keyrenew/KeyRenew1/token/<serial>/cert/<slot> org.keyrenew.KeyRenew1.Certificate
 * (<serial> and <slot> escaped with sd_bus_path_encode()). The properties
 * and their types are documented in dbus/org.keyrenew.KeyRenew1.xml. */

#include <stdbool.h>
#include <stdint.h>

#include "token-object.h"

#define TOKEN_BUS_PREFIX "/org/keyrenew/KeyRenew1/token"
#define TOKEN_BUS_INTERFACE "org.keyrenew.KeyRenew1.Token"
#define CERT_BUS_INTERFACE "org.keyrenew.KeyRenew1.Certificate"

#define BUS_ERROR_NO_SUCH_TOKEN "org.keyrenew.KeyRenew1.Error.NoSuchToken"
#define BUS_ERROR_TOKEN_ABSENT "org.keyrenew.KeyRenew1.Error.TokenAbsent"
#define BUS_ERROR_CARD_ERROR "org.keyrenew.KeyRenew1.Error.CardError"

/* The Token properties that change (bits of TokenObject.dirty). */
typedef enum TokenProperty {
        TOKEN_PROP_READER,
        TOKEN_PROP_LABEL,
        TOKEN_PROP_CHUID,
        TOKEN_PROP_FIRMWARE_VERSION,
        TOKEN_PROP_PRESENT,
        TOKEN_PROP_PIN_RETRIES_LEFT,
        TOKEN_PROP_STATE,
        TOKEN_PROP_PROGRESS,
        TOKEN_PROP_LAST_ERROR,
        TOKEN_PROP_LAST_SEEN,
        TOKEN_PROP_CERTIFICATES,
        TOKEN_PROP_RENEWAL_STEP,
        TOKEN_PROP_MANAGEMENT_KEY,
        _TOKEN_PROP_MAX,
} TokenProperty;

/* The Certificate properties that change (bits of CertObject.dirty); the
 * others are fixed: a new certificate in a slot is a new object. */
typedef enum CertProperty {
        CERT_PROP_DAYS_LEFT,
        CERT_PROP_STATUS,
        CERT_PROP_KEY_ORIGIN,
        CERT_PROP_PIN_POLICY,
        CERT_PROP_TOUCH_POLICY,
        CERT_PROP_RENEWAL_STATE,
        CERT_PROP_RENEWAL_ORDER,
        CERT_PROP_PORTAL_URL,
        CERT_PROP_REJECT_REASON,
        CERT_PROP_RENEWAL_REKEY,
        CERT_PROP_RENEWAL_VALIDITY_DAYS,
        CERT_PROP_RENEWAL_CHECKED,
        _CERT_PROP_MAX,
} CertProperty;

int token_bus_add(TokenObject *t);
int cert_bus_add(CertObject *c);

/* PropertiesChanged for the properties whose bits are set in dirty. */
int token_bus_emit_changed(TokenObject *t, uint32_t dirty);
int cert_bus_emit_changed(CertObject *c, uint32_t dirty);

int cert_bus_emit_expiry_warning(CertObject *c, uint32_t days_left, uint32_t threshold);
int cert_bus_emit_renewal_available(CertObject *c, const char *order, bool key_present);
