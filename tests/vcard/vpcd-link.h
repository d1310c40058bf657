/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The card's end of vsmartcard's vpcd protocol: a TCP connection to the
 * reader driver, messages of a 2-byte big-endian length and a payload. A
 * 1-byte payload is a control code, anything longer a command APDU. */

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define VPCD_CTRL_OFF 0
#define VPCD_CTRL_ON 1
#define VPCD_CTRL_RESET 2
#define VPCD_CTRL_ATR 4

#define VPCD_MESSAGE_MAX 0xFFFF

/* Connects to host:port, trying again every 50 ms while the reader is not
 * listening yet, for up to timeout_ms. Returns 0 and the socket, or
 * -ETIMEDOUT, or another -errno. */
int vpcd_connect(const char *host, unsigned port, unsigned timeout_ms, int *ret_fd);

/* Waits for a message; signals in wait_mask (e.g. SIGTERM, otherwise kept
 * blocked) may interrupt the wait only. Returns 1 and the message, 0 when
 * vpcd closed the connection, -EINTR when a signal came, -EBADMSG for an
 * empty message, or another -errno. */
int vpcd_receive(int fd, const sigset_t *wait_mask, uint8_t *buf, size_t cap, size_t *ret_len);

/* Sends one message. */
int vpcd_send(int fd, const uint8_t *data, size_t len);
