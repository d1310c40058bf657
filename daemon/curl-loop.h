/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* libcurl's multi_socket API driven by a libuv loop: no thread, no blocking.
 * curl tells which sockets to watch (one uv_poll_t each) and when to call
 * it back (one uv_timer_t); finished transfers go to their request's
 * callback.
 *
 * Naming and lifetime follow libuv: a callback is never called when start
 * failed; memory is freed only once every handle has closed, in the close
 * callback's turn. Everything runs on the loop's thread. */

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

typedef struct CurlLoop CurlLoop;
typedef struct CurlLoopRequest CurlLoopRequest;

/* error: 0 when the transfer completed (whatever the HTTP status; see
 * CURLINFO_RESPONSE_CODE), -ECANCELED when the loop was closed under it, or
 * curl_loop_errno() of the failure, with req->result and req->message
 * saying more. The easy handle is the caller's again, out of the multi. */
typedef void (*CurlLoopDoneFn)(CurlLoopRequest *req, int error);
typedef void (*CurlLoopCloseFn)(void *userdata);

/* Owned by the caller (embed it, e.g. with container_of-style access),
 * untouched by it while the request runs. */
struct CurlLoopRequest {
        CURL *easy;
        CurlLoopDoneFn done;
        CURLcode result;
        char message[CURL_ERROR_SIZE]; /* curl's description of a failure, or "" */
        /* Private. */
        CurlLoop *loop;
        CurlLoopRequest *prev, *next;
};

/* Returns 0, -ENOMEM, or -EIO when libcurl or libuv cannot be set up. */
int curl_loop_init(uv_loop_t *loop, CurlLoop **ret);

/* Runs the transfer easy describes (CURLOPT_PRIVATE and CURLOPT_ERRORBUFFER
 * are taken). Returns 0 (done will be called exactly once, unless the
 * request is stopped), -EBUSY when req is already running, -ESHUTDOWN when
 * the loop is closing, -ENOMEM or -EIO. */
int curl_loop_start(CurlLoop *cl, CurlLoopRequest *req, CURL *easy, CurlLoopDoneFn done);

/* Abandons a running request without calling its callback; nothing happens
 * for one that is not running. Safe from any callback. */
void curl_loop_stop(CurlLoopRequest *req);

bool curl_loop_request_is_active(const CurlLoopRequest *req);

/* Finishes every running request with -ECANCELED, closes the connections
 * and handles, and calls close_cb (if any) once all are closed; cl is freed
 * by then. Safe from a request's callback. */
void curl_loop_close(CurlLoop *cl, CurlLoopCloseFn close_cb, void *userdata);

/* A failed transfer's CURLcode as a negative errno: -ETIMEDOUT,
 * -ECONNREFUSED, -EHOSTUNREACH (name not resolved), -EKEYREJECTED (peer's
 * certificate not trusted), -EPROTO (other TLS failures), -ECONNRESET,
 * -EFBIG (size limit), -EPROTONOSUPPORT, -ENOMEM, else -EIO. 0 for
 * CURLE_OK. */
int curl_loop_errno(CURLcode code);
