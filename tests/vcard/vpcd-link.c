/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vpcd-link.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int connect_once(const struct addrinfo *ai, int *ret_fd) {
        _cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        int one = 1;

        if (fd < 0)
                return negative_errno();
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                return negative_errno();
        /* One small message each way per APDU: do not let Nagle sit on it. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int vpcd_connect(const char *host, unsigned port, unsigned timeout_ms, int *ret_fd) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        struct addrinfo *ai = NULL;
        uint64_t deadline = now_ms() + timeout_ms;
        char service[16];
        int r;

        snprintf(service, sizeof service, "%u", port);
        if (getaddrinfo(host, service, &hints, &ai) != 0)
                return -EHOSTUNREACH;
        for (;;) {
                r = connect_once(ai, ret_fd);
                if (r == 0 || (r != -ECONNREFUSED && r != -ENETUNREACH))
                        break;
                if (now_ms() >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                (void) nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
        }
        freeaddrinfo(ai);
        return r;
}

/* 0 on success, 1 on end of file before the first byte, -errno. */
static int read_full(int fd, uint8_t *buf, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = read(fd, buf + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return done == 0 ? 1 : -ECONNRESET;
                done += (size_t) n;
        }
        return 0;
}

/* vpcd sends a message as two writes (length, then payload) without
 * TCP_NODELAY, so Nagle holds the payload until our ACK of the length
 * arrives; a delayed ACK makes that ~40 ms per APDU. Quick ACKs are not
 * sticky in Linux, so this is asked again after every read. */
static void ack_now(int fd) {
        int one = 1;

        (void) setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

int vpcd_receive(int fd, const sigset_t *wait_mask, uint8_t *buf, size_t cap, size_t *ret_len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        uint8_t head[2];
        size_t len;
        int r;

        if (ppoll(&pfd, 1, NULL, wait_mask) < 0)
                return negative_errno();
        r = read_full(fd, head, sizeof head);
        if (r != 0)
                return r > 0 ? 0 : r;
        ack_now(fd);
        len = (size_t) head[0] << 8 | head[1];
        if (len == 0)
                return -EBADMSG;
        if (len > cap)
                return -EMSGSIZE;
        r = read_full(fd, buf, len);
        if (r != 0)
                return r > 0 ? -ECONNRESET : r;
        ack_now(fd);
        *ret_len = len;
        return 1;
}

int vpcd_send(int fd, const uint8_t *data, size_t len) {
        uint8_t msg[2 + VPCD_MESSAGE_MAX];
        size_t done = 0;

        if (len > VPCD_MESSAGE_MAX)
                return -EMSGSIZE;
        msg[0] = (uint8_t) (len >> 8);
        msg[1] = (uint8_t) len;
        memcpy(msg + 2, data, len);
        while (done < len + 2) {
                ssize_t n = send(fd, msg + done, len + 2 - done, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                done += (size_t) n;
        }
        return 0;
}
