/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "assert.h"
#include "curl-loop.h"
#include "macro.h"

/* A request with what its callback saw. */
typedef struct Probe {
        CurlLoopRequest req; /* first: the callback casts back */
        CURL *easy;
        int calls;
        int error;
        long status;
        char body[256];
        size_t body_len;
} Probe;

static int closed;

static void on_closed(void *userdata) {
        closed++;
}

static void on_done(CurlLoopRequest *req, int error) {
        Probe *p = (Probe *) req;

        p->calls++;
        p->error = error;
        (void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &p->status);
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        Probe *p = userdata;
        size_t len = size * n;

        if (len > sizeof p->body - 1 - p->body_len)
                return 0;
        memcpy(p->body + p->body_len, data, len);
        p->body_len += len;
        return len;
}

static void probe_init(Probe *p, const char *url, long timeout_ms) {
        *p = (Probe){};
        p->easy = curl_easy_init();
        ASSERT_TRUE(p->easy);
        ASSERT_EQ(curl_easy_setopt(p->easy, CURLOPT_URL, url), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, timeout_ms), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_body), CURLE_OK);
        ASSERT_EQ(curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p), CURLE_OK);
}

/* A TCP socket on 127.0.0.1, listening or not; returns its fd and port. */
static int local_socket(bool listening, int *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        ASSERT_EQ(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        if (listening)
                ASSERT_EQ(listen(fd, 4), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

static void test_close_idle(void) {
        uv_loop_t loop;
        CurlLoop *cl = NULL;

        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(curl_loop_init(&loop, &cl), 0);
        closed = 0;
        curl_loop_close(cl, on_closed, NULL);
        /* Freed in the loop's turn, not at once. */
        ASSERT_EQ(closed, 0);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(closed, 1);
        ASSERT_EQ(uv_loop_close(&loop), 0);
}

static void test_refused(void) {
        _cleanup_free_ char *url = NULL;
        uv_loop_t loop;
        CurlLoop *cl = NULL;
        Probe p;
        int port, fd = local_socket(false, &port);

        /* Bound, not listening: a connection is refused. */
        ASSERT_TRUE(asprintf(&url, "http://127.0.0.1:%d/", port) > 0);
        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(curl_loop_init(&loop, &cl), 0);
        probe_init(&p, url, 5000);
        ASSERT_EQ(curl_loop_start(cl, &p.req, p.easy, on_done), 0);
        ASSERT_TRUE(curl_loop_request_is_active(&p.req));
        ASSERT_EQ(curl_loop_start(cl, &p.req, p.easy, on_done), -EBUSY);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(p.calls, 1);
        ASSERT_EQ(p.error, -ECONNREFUSED);
        ASSERT_EQ(p.req.result, CURLE_COULDNT_CONNECT);
        ASSERT_TRUE(p.req.message[0] != '\0');
        ASSERT_TRUE(!curl_loop_request_is_active(&p.req));
        curl_easy_cleanup(p.easy);
        curl_loop_close(cl, NULL, NULL);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(uv_loop_close(&loop), 0);
        close(fd);
}

static void test_timeout(void) {
        _cleanup_free_ char *url = NULL;
        uv_loop_t loop;
        CurlLoop *cl = NULL;
        Probe p;
        int port, fd = local_socket(true, &port);
        uint64_t start;

        /* Listening, never answering: the kernel accepts, nobody speaks. */
        ASSERT_TRUE(asprintf(&url, "http://127.0.0.1:%d/", port) > 0);
        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(curl_loop_init(&loop, &cl), 0);
        probe_init(&p, url, 300);
        ASSERT_EQ(curl_loop_start(cl, &p.req, p.easy, on_done), 0);
        start = uv_hrtime();
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(p.calls, 1);
        ASSERT_EQ(p.error, -ETIMEDOUT);
        ASSERT_TRUE(uv_hrtime() - start >= 290 * 1000000ULL);
        ASSERT_TRUE(uv_hrtime() - start < 5000 * 1000000ULL);
        curl_easy_cleanup(p.easy);
        curl_loop_close(cl, NULL, NULL);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(uv_loop_close(&loop), 0);
        close(fd);
}

/* Closes the loop a little after both requests started. */
typedef struct Closer {
        uv_timer_t timer;
        CurlLoop *cl;
        Probe *stopped;
} Closer;

static void on_closer_timer(uv_timer_t *t) {
        Closer *c = t->data;

        curl_loop_stop(&c->stopped->req);
        curl_loop_close(c->cl, on_closed, NULL);
        uv_close((uv_handle_t *) t, NULL);
}

static void test_stop_and_close_cancel(void) {
        _cleanup_free_ char *url = NULL;
        uv_loop_t loop;
        CurlLoop *cl = NULL;
        Probe a, b, late;
        Closer closer;
        int port, fd = local_socket(true, &port);

        ASSERT_TRUE(asprintf(&url, "http://127.0.0.1:%d/", port) > 0);
        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(curl_loop_init(&loop, &cl), 0);
        probe_init(&a, url, 10000);
        probe_init(&b, url, 10000);
        ASSERT_EQ(curl_loop_start(cl, &a.req, a.easy, on_done), 0);
        ASSERT_EQ(curl_loop_start(cl, &b.req, b.easy, on_done), 0);
        closer = (Closer){ .cl = cl, .stopped = &b };
        ASSERT_EQ(uv_timer_init(&loop, &closer.timer), 0);
        closer.timer.data = &closer;
        ASSERT_EQ(uv_timer_start(&closer.timer, on_closer_timer, 100, 0), 0);
        closed = 0;
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        /* a: cancelled by the close; b: stopped first, never called back. */
        ASSERT_EQ(a.calls, 1);
        ASSERT_EQ(a.error, -ECANCELED);
        ASSERT_EQ(b.calls, 0);
        ASSERT_EQ(closed, 1);
        ASSERT_EQ(uv_loop_close(&loop), 0);
        curl_easy_cleanup(a.easy);
        curl_easy_cleanup(b.easy);
        close(fd);

        /* Starting on a closing loop fails, and never calls back. */
        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(curl_loop_init(&loop, &cl), 0);
        curl_loop_close(cl, NULL, NULL);
        probe_init(&late, url, 1000);
        ASSERT_EQ(curl_loop_start(cl, &late.req, late.easy, on_done), -ESHUTDOWN);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(late.calls, 0);
        ASSERT_EQ(uv_loop_close(&loop), 0);
        curl_easy_cleanup(late.easy);
}

/* A one-shot HTTP server on the same loop: reads a request, answers it. */
typedef struct Server {
        uv_tcp_t listener;
        uv_tcp_t conn;
        uv_write_t write;
        char request[4096];
        size_t request_len;
        int answered;
} Server;

static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

static void on_server_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        Server *s = h->data;

        *buf = uv_buf_init(s->request + s->request_len, (unsigned) (sizeof s->request - 1 - s->request_len));
}

static void on_server_written(uv_write_t *w, int status) {
        Server *s = w->data;

        uv_close((uv_handle_t *) &s->conn, NULL);
        uv_close((uv_handle_t *) &s->listener, NULL);
}

static void on_server_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
        Server *s = stream->data;
        uv_buf_t out = uv_buf_init((char *) answer, sizeof answer - 1);

        if (n <= 0)
                return;
        s->request_len += (size_t) n;
        s->request[s->request_len] = '\0';
        if (!strstr(s->request, "\r\n\r\n") || s->answered++)
                return;
        uv_read_stop(stream);
        s->write.data = s;
        ASSERT_EQ(uv_write(&s->write, stream, &out, 1, on_server_written), 0);
}

static void on_server_connection(uv_stream_t *listener, int status) {
        Server *s = listener->data;

        ASSERT_EQ(status, 0);
        ASSERT_EQ(uv_tcp_init(listener->loop, &s->conn), 0);
        s->conn.data = s;
        ASSERT_EQ(uv_accept(listener, (uv_stream_t *) &s->conn), 0);
        ASSERT_EQ(uv_read_start((uv_stream_t *) &s->conn, on_server_alloc, on_server_read), 0);
}

static void test_transfer(void) {
        struct sockaddr_in addr;
        _cleanup_free_ char *url = NULL;
        int len = sizeof addr;
        uv_loop_t loop;
        CurlLoop *cl = NULL;
        Server server = {};
        Probe p;

        ASSERT_EQ(uv_loop_init(&loop), 0);
        ASSERT_EQ(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
        ASSERT_EQ(uv_tcp_init(&loop, &server.listener), 0);
        server.listener.data = &server;
        ASSERT_EQ(uv_tcp_bind(&server.listener, (struct sockaddr *) &addr, 0), 0);
        ASSERT_EQ(uv_tcp_getsockname(&server.listener, (struct sockaddr *) &addr, &len), 0);
        ASSERT_EQ(uv_listen((uv_stream_t *) &server.listener, 4, on_server_connection), 0);
        ASSERT_TRUE(asprintf(&url, "http://127.0.0.1:%d/x", ntohs(addr.sin_port)) > 0);

        ASSERT_EQ(curl_loop_init(&loop, &cl), 0);
        probe_init(&p, url, 5000);
        ASSERT_EQ(curl_loop_start(cl, &p.req, p.easy, on_done), 0);
        /* The server closes itself once it answered; the client's callback
         * closes nothing, so close the curl loop once the transfer is done. */
        while (p.calls == 0)
                ASSERT_TRUE(uv_run(&loop, UV_RUN_ONCE) != 0 || p.calls > 0);
        ASSERT_EQ(p.error, 0);
        ASSERT_EQ(p.status, 200);
        ASSERT_EQ(p.body_len, 5);
        ASSERT_MEMEQ(p.body, "hello", 5);
        ASSERT_TRUE(strncmp(server.request, "GET /x HTTP/1.1\r\n", 17) == 0);
        curl_easy_cleanup(p.easy);
        closed = 0;
        curl_loop_close(cl, on_closed, NULL);
        ASSERT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
        ASSERT_EQ(closed, 1);
        ASSERT_EQ(uv_loop_close(&loop), 0);
}

static void test_errno(void) {
        ASSERT_EQ(curl_loop_errno(CURLE_OK), 0);
        ASSERT_EQ(curl_loop_errno(CURLE_PEER_FAILED_VERIFICATION), -EKEYREJECTED);
        ASSERT_EQ(curl_loop_errno(CURLE_SSL_CONNECT_ERROR), -EPROTO);
        ASSERT_EQ(curl_loop_errno(CURLE_FILESIZE_EXCEEDED), -EFBIG);
        ASSERT_EQ(curl_loop_errno(CURLE_UNSUPPORTED_PROTOCOL), -EPROTONOSUPPORT);
        ASSERT_EQ(curl_loop_errno(CURLE_COULDNT_RESOLVE_HOST), -EHOSTUNREACH);
        ASSERT_EQ(curl_loop_errno(CURLE_TOO_MANY_REDIRECTS), -EIO);
}

int main(void) {
        RUN(test_errno);
        RUN(test_close_idle);
        RUN(test_refused);
        RUN(test_timeout);
        RUN(test_stop_and_close_cancel);
        RUN(test_transfer);
        return 0;
}
