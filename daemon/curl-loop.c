/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "curl-loop.h"

#include <errno.h>
#include <stdlib.h>

/* One per socket curl asks us to watch; freed in its close callback. */
typedef struct SocketContext {
        uv_poll_t poll;
        curl_socket_t fd;
        CurlLoop *cl;
        struct SocketContext *prev, *next; /* in cl->sockets while open */
} SocketContext;

struct CurlLoop {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer;
        CurlLoopRequest *requests; /* running */
        SocketContext *sockets;    /* open, not yet closing */
        unsigned open_handles;     /* the timer and socket contexts not yet closed */
        bool closing;
        CurlLoopCloseFn close_cb;
        void *close_userdata;
};

int curl_loop_errno(CURLcode code) {
        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_PEER_FAILED_VERIFICATION:
                return -EKEYREJECTED;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_INVALIDCERTSTATUS:
                return -EPROTO;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return -ECONNRESET;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* Called as each handle finishes closing: the last one frees the loop. */
static void handle_closed(CurlLoop *cl) {
        CurlLoopCloseFn cb = cl->close_cb;
        void *userdata = cl->close_userdata;

        if (--cl->open_handles > 0 || !cl->closing)
                return;
        free(cl);
        curl_global_cleanup();
        if (cb)
                cb(userdata);
}

static void on_socket_closed(uv_handle_t *h) {
        SocketContext *ctx = h->data;
        CurlLoop *cl = ctx->cl;

        free(ctx);
        handle_closed(cl);
}

static void socket_context_close(SocketContext *ctx) {
        CurlLoop *cl = ctx->cl;

        if (ctx->prev)
                ctx->prev->next = ctx->next;
        else
                cl->sockets = ctx->next;
        if (ctx->next)
                ctx->next->prev = ctx->prev;
        ctx->prev = ctx->next = NULL;
        uv_close((uv_handle_t *) &ctx->poll, on_socket_closed);
}

static void request_unlink(CurlLoopRequest *req) {
        CurlLoop *cl = req->loop;

        if (req->prev)
                req->prev->next = req->next;
        else
                cl->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        req->prev = req->next = NULL;
        req->loop = NULL;
}

/* Takes req's transfer out of the multi; its callback is the caller's call. */
static void request_detach(CurlLoopRequest *req) {
        (void) curl_multi_remove_handle(req->loop->multi, req->easy);
        (void) curl_easy_setopt(req->easy, CURLOPT_PRIVATE, NULL);
        (void) curl_easy_setopt(req->easy, CURLOPT_ERRORBUFFER, NULL);
        request_unlink(req);
}

/* Hands every finished transfer to its callback. A callback may close the
 * loop, which drops the multi: stop reading then. */
static void process_done(CurlLoop *cl) {
        CURLMsg *msg;
        int left;

        while (cl->multi && (msg = curl_multi_info_read(cl->multi, &left))) {
                CurlLoopRequest *req = NULL;
                CURLcode result = msg->data.result;

                /* msg does not survive the removal below: read it first. */
                if (msg->msg != CURLMSG_DONE ||
                    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req) != CURLE_OK ||
                    !req)
                        continue;
                request_detach(req);
                req->result = result;
                req->done(req, curl_loop_errno(result));
        }
}

static void on_poll(uv_poll_t *h, int status, int events) {
        SocketContext *ctx = h->data;
        CurlLoop *cl = ctx->cl;
        int flags = 0, running;

        if (status < 0)
                flags = CURL_CSELECT_ERR;
        else {
                if (events & UV_READABLE)
                        flags |= CURL_CSELECT_IN;
                if (events & UV_WRITABLE)
                        flags |= CURL_CSELECT_OUT;
        }
        (void) curl_multi_socket_action(cl->multi, ctx->fd, flags, &running);
        process_done(cl);
}

static void on_timer(uv_timer_t *t) {
        CurlLoop *cl = t->data;
        int running;

        (void) curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        process_done(cl);
}

static int socket_context_new(CurlLoop *cl, curl_socket_t fd, SocketContext **ret) {
        SocketContext *ctx = calloc(1, sizeof(SocketContext));

        if (!ctx)
                return -ENOMEM;
        if (uv_poll_init_socket(cl->loop, &ctx->poll, fd) < 0) {
                free(ctx);
                return -EIO;
        }
        ctx->poll.data = ctx;
        ctx->fd = fd;
        ctx->cl = cl;
        ctx->next = cl->sockets;
        if (cl->sockets)
                cl->sockets->prev = ctx;
        cl->sockets = ctx;
        cl->open_handles++;
        *ret = ctx;
        return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl waits for, or stop. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlLoop *cl = userp;
        SocketContext *ctx = socketp;
        int events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (ctx) {
                        socket_context_close(ctx);
                        if (!cl->closing)
                                (void) curl_multi_assign(cl->multi, fd, NULL);
                }
                return 0;
        }
        if (!ctx) {
                if (cl->closing || socket_context_new(cl, fd, &ctx) < 0)
                        return -1;
                (void) curl_multi_assign(cl->multi, fd, ctx);
        }
        if (what & CURL_POLL_IN)
                events |= UV_READABLE;
        if (what & CURL_POLL_OUT)
                events |= UV_WRITABLE;
        if (uv_poll_start(&ctx->poll, events, on_poll) < 0) {
                socket_context_close(ctx);
                (void) curl_multi_assign(cl->multi, fd, NULL);
                return -1;
        }
        return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called after timeout_ms (-1:
 * never). Even 0 goes through the loop: curl must not be re-entered from
 * its own callback. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        CurlLoop *cl = userp;

        if (cl->closing)
                return 0;
        if (timeout_ms < 0)
                return uv_timer_stop(&cl->timer) < 0 ? -1 : 0;
        return uv_timer_start(&cl->timer, on_timer, (uint64_t) timeout_ms, 0) < 0 ? -1 : 0;
}

int curl_loop_init(uv_loop_t *loop, CurlLoop **ret) {
        CurlLoop *cl;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        cl = calloc(1, sizeof(CurlLoop));
        if (!cl) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        cl->loop = loop;
        cl->multi = curl_multi_init();
        if (!cl->multi ||
            curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl) != CURLM_OK ||
            curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl) != CURLM_OK ||
            uv_timer_init(loop, &cl->timer) < 0) {
                if (cl->multi)
                        curl_multi_cleanup(cl->multi);
                free(cl);
                curl_global_cleanup();
                return -EIO;
        }
        cl->timer.data = cl;
        cl->open_handles = 1;
        *ret = cl;
        return 0;
}

bool curl_loop_request_is_active(const CurlLoopRequest *req) {
        return req->loop != NULL;
}

int curl_loop_start(CurlLoop *cl, CurlLoopRequest *req, CURL *easy, CurlLoopDoneFn done) {
        CURLMcode mc;

        if (curl_loop_request_is_active(req))
                return -EBUSY;
        if (cl->closing)
                return -ESHUTDOWN;
        *req = (CurlLoopRequest){
                .easy = easy,
                .done = done,
        };
        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *) req) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->message) != CURLE_OK)
                return -EIO;
        mc = curl_multi_add_handle(cl->multi, easy);
        if (mc != CURLM_OK) {
                (void) curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                (void) curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
                return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        }
        req->loop = cl;
        req->next = cl->requests;
        if (cl->requests)
                cl->requests->prev = req;
        cl->requests = req;
        return 0;
}

void curl_loop_stop(CurlLoopRequest *req) {
        if (curl_loop_request_is_active(req))
                request_detach(req);
}

static void on_timer_closed(uv_handle_t *h) {
        handle_closed(h->data);
}

void curl_loop_close(CurlLoop *cl, CurlLoopCloseFn close_cb, void *userdata) {
        if (cl->closing)
                return;
        cl->closing = true;
        cl->close_cb = close_cb;
        cl->close_userdata = userdata;
        while (cl->requests) {
                CurlLoopRequest *req = cl->requests;

                request_detach(req);
                req->result = CURLE_ABORTED_BY_CALLBACK;
                req->message[0] = '\0';
                req->done(req, -ECANCELED);
        }
        curl_multi_cleanup(cl->multi);
        cl->multi = NULL;
        /* Sockets curl still had (idle connections) are closed by now. */
        while (cl->sockets)
                socket_context_close(cl->sockets);
        uv_close((uv_handle_t *) &cl->timer, on_timer_closed);
}
