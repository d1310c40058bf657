/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The CMP key update client (docs/portal-protocol.md part 2) on OpenSSL 3.0's
 * OSSL_CMP_CTX, over libcurl: kur protected by the old key, the new
 * certificate handed to the caller to install, then certConf.
 *
 * Why one call with an install callback rather than "send kur" and "send
 * certConf" as two calls: OpenSSL 3.0 builds and sends certConf only inside
 * OSSL_CMP_exec_certreq()/OSSL_CMP_try_certreq(), right after its
 * certConf callback returns (the function that makes a certConf,
 * ossl_cmp_exchange_certConf, is internal, and the server takes certConf
 * only within the kur's transaction, with its nonces). So the install (persist
 * the certificate, write it to the card, read it back, test-sign) runs
 * inside that callback, on the calling thread, and its verdict becomes the
 * certConf: accepted, rejection (with the reason), or none at all (DEFER:
 * the transfer refuses to send it, the order stays "issued", and a later
 * cmp_client_renew() with the same new key gets the same certificate back:
 * rule 3). A process that dies during the install leaves the same state as
 * DEFER.
 *
 * Threading: everything is blocking and runs on the calling thread (the
 * token's worker); the callback is called on it too, at most once. No
 * global state besides libcurl's, which the caller initialises once
 * (curl_global_init) before any thread starts. The EVP_PKEYs may be
 * provider-backed (card keys): only EVP signing and public-key export are
 * used. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define CMP_CLIENT_BODY_MAX (1024 * 1024)

typedef enum CmpConfirm {
        CMP_CONFIRM_ACCEPT, /* installed and verified: certConf accepted */
        CMP_CONFIRM_REJECT, /* cannot be installed: certConf rejection, the portal revokes it */
        CMP_CONFIRM_DEFER,  /* no certConf now (key pulled out, shutdown): resume later */
} CmpConfirm;

/* Called with the new certificate (DER and parsed; valid during the call
 * only) once the portal issued it and the answer's protection verified.
 * Return REJECT with *ret_reason (the caller's string, alive until
 * cmp_client_renew() returns) to have the portal revoke it. On a resumed
 * renewal (kur again with the same new key) this is the certificate already
 * in the journal: compare, and skip the install steps already done. */
typedef CmpConfirm (*CmpInstallFn)(const uint8_t *der, size_t len, X509 *cert, void *userdata,
                                   const char **ret_reason);

typedef struct CmpClientOptions {
        const char *url;            /* the order's "cmp" URL: https:// (http://loopback in test builds) */
        const char *ca_bundle;      /* PEM for TLS; NULL: the system's */
        const char *trusted;        /* PEM of the CA(s) that certify the portal's CMP signer; required */
        X509 *old_cert;             /* the certificate renewed: sender, oldCertID, first of extraCerts */
        EVP_PKEY *old_key;          /* its key: protects kur and certConf */
        STACK_OF(X509) * old_chain; /* optional: the rest of extraCerts */
        EVP_PKEY *new_key;          /* the new key (== old_key when the order does not rekey): POPO */
        /* Protect certConf by the new key and certificate rather than the
         * old ones (the protocol allows both): for a card whose old key is
         * gone once the install step is done. OpenSSL 3.0 leaks the chain
         * it built for the kur when it is rebuilt for the new certificate
         * (a few KiB per such renewal). */
        bool confirm_with_new_key;
        unsigned connect_timeout_ms; /* 0: 30 s */
        unsigned timeout_ms;         /* per HTTP exchange; 0: 60 s */
} CmpClientOptions;

typedef enum CmpStage {
        CMP_STAGE_SETUP,   /* nothing was sent */
        CMP_STAGE_REQUEST, /* failed at the kur or its answer: nothing issued to us */
        CMP_STAGE_INSTALL, /* the certificate was issued; the callback was called */
        CMP_STAGE_CONFIRM, /* failed at certConf/pkiConf after the callback's verdict */
} CmpStage;

typedef struct CmpResult {
        CmpStage stage;
        CmpConfirm verdict; /* the callback's, when stage >= INSTALL */
        int pki_status;     /* the portal's PKIStatus (OSSL_CMP_PKISTATUS_*), -1 none */
        int fail_info;      /* OSSL_CMP_CTX_FAILINFO_* bits from the portal, 0 none */
        char text[1024];    /* the portal's statusString (UTF-8), "" none: for the user */
        char detail[512];   /* our own description of a failure, "" none: for the log */
        long http_status;   /* of the last exchange, 0 none */
        unsigned exchanges; /* HTTP requests made */
        uint64_t wait_us;   /* time in HTTP exchanges (connect, send, wait, receive) */
        uint64_t portal_us; /* the sum of the portal's X-Portal-Time-Us, when it sent them */
        bool portal_us_known;
} CmpResult;

/* Runs one key update transaction. Returns 0 once certConf accepted got its
 * pkiConf (*ret_cert: the new certificate). Otherwise:
 *   -EINVAL      bad options (URL not https, keys missing, old_key not old_cert's,
 *                unreadable trust file): nothing was sent
 *   -EIO         the request could not be made: a signature (on the card) failed
 *   -ECANCELED   the callback said REJECT, or OpenSSL refused a certificate that
 *                is not for new_key without calling it (result->detail says so),
 *                and the portal took the rejection
 *   -EINPROGRESS the callback said DEFER: issued, not confirmed
 *   -ENOENT      badRequest: no approved (or issued, for this key) order
 *   -EKEYREJECTED badMessageCheck / badPOP: not signed by the renewed key
 *   -EBADRQC     badCertTemplate: the key does not fit the order (rekey)
 *   -EKEYREVOKED / -EKEYEXPIRED certRevoked / badTime
 *   -EPROTO      any other refusal by the portal (see fail_info, text)
 *   -EBADMSG     an answer that is not a valid PKIMessage, or whose protection
 *                does not verify against opts->trusted
 *   -EREMOTEIO   an HTTP status other than 200
 *   -ECONNREFUSED, -ETIMEDOUT, -EKEYREJECTED (TLS peer not trusted), ... as
 *                curl_loop_errno(); -EFBIG over 1 MiB; -ENOMEM
 * result (always filled when not NULL) says where it stopped and the portal's
 * words; stage CONFIRM with verdict ACCEPT means the certificate is on the
 * card but the portal did not confirm: resume with the same new key. */
int cmp_client_renew(const CmpClientOptions *opts, CmpInstallFn install, void *userdata, X509 **ret_cert,
                     CmpResult *result);

/* "no approved renewal order…" etc: the text to show for a failed result,
 * the portal's words first, else ours, else strerror(-error). */
const char *cmp_result_message(const CmpResult *result, int error);
