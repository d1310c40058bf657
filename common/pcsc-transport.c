/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pcsc-transport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#define PROTOCOLS (SCARD_PROTOCOL_T1 | SCARD_PROTOCOL_T0)

struct PcscTransport {
        TokenTransport transport;
        SCARDCONTEXT context;
        SCARDHANDLE card;
        DWORD protocol;
        bool have_context, have_card;
        bool was_reset; /* since the last begin() */
        bool reset_on_close;
};

int pcsc_error_to_errno(LONG rv) {
        switch (rv) {
        case SCARD_S_SUCCESS:
                return 0;
        case SCARD_W_REMOVED_CARD:
        case SCARD_E_NO_SMARTCARD:
                return -ENOMEDIUM;
        case SCARD_W_RESET_CARD:
                return -ECONNRESET;
        case SCARD_E_UNKNOWN_READER:
        case SCARD_E_READER_UNAVAILABLE:
        case SCARD_E_NO_READERS_AVAILABLE:
                return -ENODEV;
        case SCARD_E_NO_SERVICE:
        case SCARD_E_SERVICE_STOPPED:
                return -ECONNREFUSED;
        case SCARD_E_SHARING_VIOLATION:
                return -EBUSY;
        case SCARD_E_TIMEOUT:
                return -ETIMEDOUT;
        case SCARD_E_CANCELLED:
                return -ECANCELED;
        case SCARD_E_NO_MEMORY:
                return -ENOMEM;
        case SCARD_E_INSUFFICIENT_BUFFER:
                return -ENOBUFS;
        case SCARD_E_PROTO_MISMATCH:
        case SCARD_W_UNSUPPORTED_CARD:
        case SCARD_E_CARD_UNSUPPORTED:
                return -EPROTONOSUPPORT;
        case SCARD_E_INVALID_HANDLE:
        case SCARD_E_INVALID_PARAMETER:
        case SCARD_E_INVALID_VALUE:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static int reconnect(PcscTransport *p) {
        LONG rv;

        rv = SCardReconnect(p->card, SCARD_SHARE_SHARED, PROTOCOLS, SCARD_LEAVE_CARD, &p->protocol);
        if (rv != SCARD_S_SUCCESS)
                return pcsc_error_to_errno(rv);
        p->was_reset = true;
        return 0;
}

static int pcsc_transmit(void *userdata, const uint8_t *cmd, size_t cmd_len, uint8_t *resp, size_t resp_cap,
                         size_t *ret_len) {
        PcscTransport *p = userdata;
        const SCARD_IO_REQUEST *pci = p->protocol == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
        DWORD len = (DWORD) resp_cap;
        LONG rv;
        int r;

        rv = SCardTransmit(p->card, pci, cmd, (DWORD) cmd_len, NULL, resp, &len);
        if (rv == SCARD_W_RESET_CARD) {
                r = reconnect(p);
                return r < 0 ? r : -ECONNRESET;
        }
        if (rv != SCARD_S_SUCCESS)
                return pcsc_error_to_errno(rv);
        *ret_len = len;
        return 0;
}

static int pcsc_begin(void *userdata) {
        PcscTransport *p = userdata;
        LONG rv;
        int r;

        rv = SCardBeginTransaction(p->card);
        if (rv == SCARD_W_RESET_CARD) {
                r = reconnect(p);
                if (r < 0)
                        return r;
                rv = SCardBeginTransaction(p->card);
        }
        if (rv != SCARD_S_SUCCESS)
                return pcsc_error_to_errno(rv);

        r = p->was_reset;
        p->was_reset = false;
        return r;
}

static void pcsc_end(void *userdata) {
        PcscTransport *p = userdata;

        /* A failure here (card gone, reset) shows at the next begin(). */
        (void) SCardEndTransaction(p->card, SCARD_LEAVE_CARD);
}

int pcsc_transport_open(const char *reader, PcscTransport **ret) {
        _cleanup_(pcsc_transport_freep) PcscTransport *p = NULL;
        LONG rv;

        if (!reader || !ret)
                return -EINVAL;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->transport = (TokenTransport){
                .transmit = pcsc_transmit,
                .begin = pcsc_begin,
                .end = pcsc_end,
                .userdata = p,
        };

        rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->context);
        if (rv != SCARD_S_SUCCESS)
                return pcsc_error_to_errno(rv);
        p->have_context = true;

        rv = SCardConnect(p->context, reader, SCARD_SHARE_SHARED, PROTOCOLS, &p->card, &p->protocol);
        if (rv != SCARD_S_SUCCESS)
                return pcsc_error_to_errno(rv);
        p->have_card = true;

        *ret = TAKE_PTR(p);
        return 0;
}

PcscTransport *pcsc_transport_free(PcscTransport *p) {
        if (p) {
                if (p->have_card)
                        (void) SCardDisconnect(p->card,
                                               p->reset_on_close ? SCARD_RESET_CARD : SCARD_LEAVE_CARD);
                if (p->have_context)
                        (void) SCardReleaseContext(p->context);
                free(p);
        }
        return NULL;
}

void pcsc_transport_reset_on_close(PcscTransport *p) {
        p->reset_on_close = true;
}

TokenTransport *pcsc_transport_get(PcscTransport *p) {
        return &p->transport;
}
