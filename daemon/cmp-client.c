/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cmp-client.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/cmp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "curl-loop.h"
#include "portal-status.h"

#ifndef PORTAL_INSECURE_HTTP_FOR_TESTS
#define PORTAL_INSECURE_HTTP_FOR_TESTS 0
#endif

/* PKIBody choices (RFC 4210 section 5.1.2), as OSSL_CMP_MSG_get_bodytype()
 * returns them; OpenSSL 3.0 keeps its names for them private. */
#define BODY_PKICONF 19
#define BODY_CERTCONF 24

typedef struct CmpSession {
        const CmpClientOptions *opts;
        CmpResult *res;
        CmpInstallFn install;
        void *userdata;
        CURL *easy;
        struct curl_slist *headers;
        char errbuf[CURL_ERROR_SIZE];
        /* The answer being received. */
        unsigned char *body;
        size_t body_len;
        bool too_big;
        bool content_type_ok;
        /* The first failure of our own (transport, HTTP, parsing): OpenSSL
         * only learns "no answer". */
        int error;
        const char *reason;
        bool pkiconf_received;
} CmpSession;

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_CMP_CTX *, OSSL_CMP_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free)

static uint64_t now_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

_printf_(2, 3) static void set_detail(CmpSession *s, const char *fmt, ...) {
        va_list ap;

        if (s->res->detail[0])
                return; /* the first failure is the cause */
        va_start(ap, fmt);
        (void) vsnprintf(s->res->detail, sizeof(s->res->detail), fmt, ap);
        va_end(ap);
}

static int fail(CmpSession *s, int error) {
        if (s->error == 0)
                s->error = error;
        return error;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        CmpSession *s = userdata;
        size_t len = size * n;
        unsigned char *b;

        if (len > CMP_CLIENT_BODY_MAX - s->body_len) {
                s->too_big = true;
                return 0;
        }
        b = realloc(s->body, s->body_len + len);
        if (!b)
                return 0;
        memcpy(b + s->body_len, data, len);
        s->body = b;
        s->body_len += len;
        return len;
}

/* curl hands header lines without a terminating NUL: copy before parsing. */
static bool header_is(const char *line, const char *name, const char **ret_value) {
        size_t n = strlen(name);

        if (strncasecmp(line, name, n) != 0 || line[n] != ':')
                return false;
        *ret_value = line + n + 1 + strspn(line + n + 1, " \t");
        return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        CmpSession *s = userdata;
        size_t len = size * n;
        char line[256];
        const char *v;

        if (len >= sizeof(line))
                return len; /* no header we read is that long */
        memcpy(line, data, len);
        line[len] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (header_is(line, "X-Portal-Time-Us", &v)) {
                size_t k = strspn(v, "0123456789");
                if (k > 0 && k < 20 && v[k] == '\0') {
                        s->res->portal_us += strtoull(v, NULL, 10);
                        s->res->portal_us_known = true;
                }
        } else if (header_is(line, "Content-Type", &v))
                s->content_type_ok = strncasecmp(v, "application/pkixcmp", 19) == 0 &&
                                     (v[19] == '\0' || v[19] == ';' || v[19] == ' ');
        return len;
}

static int easy_setup(CmpSession *s) {
        const CmpClientOptions *o = s->opts;
        bool http = strncmp(o->url, "http://", 7) == 0;
        CURL *e = s->easy;

        s->headers = curl_slist_append(NULL, "Content-Type: application/pkixcmp");
        if (s->headers)
                s->headers = curl_slist_append(s->headers, "Accept: application/pkixcmp");
        if (s->headers)
                s->headers = curl_slist_append(s->headers, "Expect:"); /* no 100-continue round trip */
        if (!s->headers)
                return -ENOMEM;
        if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, http ? "http" : "https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) (o->connect_timeout_ms ?: 30000)) !=
                    CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) (o->timeout_ms ?: 60000)) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) CMP_CLIENT_BODY_MAX) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, "keyrenew/" PACKAGE_VERSION) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, s) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, s) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK)
                return -EIO;
        if (o->ca_bundle && (curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle) != CURLE_OK ||
                             curl_easy_setopt(e, CURLOPT_CAPATH, NULL) != CURLE_OK))
                return -EIO;
        return 0;
}

/* One HTTP exchange (RFC 6712). Returns the answer's DER in s->body. */
static int http_exchange(CmpSession *s, const unsigned char *der, size_t len) {
        uint64_t start;
        CURLcode code;
        long status = 0;

        free(s->body);
        s->body = NULL;
        s->body_len = 0;
        s->too_big = s->content_type_ok = false;
        s->errbuf[0] = '\0';
        if (curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, der) != CURLE_OK ||
            curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len) != CURLE_OK)
                return fail(s, -EIO);

        start = now_us();
        code = curl_easy_perform(s->easy);
        s->res->wait_us += now_us() - start;
        s->res->exchanges++;
        (void) curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        s->res->http_status = status;

        if (s->too_big || code == CURLE_FILESIZE_EXCEEDED) {
                set_detail(s, "the portal's answer is larger than %d bytes", CMP_CLIENT_BODY_MAX);
                return fail(s, -EFBIG);
        }
        if (code != CURLE_OK) {
                set_detail(s, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(code));
                return fail(s, curl_loop_errno(code));
        }
        if (status != 200) {
                set_detail(s, "the portal answered HTTP %ld", status);
                return fail(s, -EREMOTEIO);
        }
        if (!s->content_type_ok) {
                set_detail(s, "the portal's answer is not application/pkixcmp");
                return fail(s, -EBADMSG);
        }
        return 0;
}

static OSSL_CMP_MSG *transfer(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req) {
        CmpSession *s = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
        bool confirm = OSSL_CMP_MSG_get_bodytype(req) == BODY_CERTCONF;
        unsigned char *der = NULL;
        const unsigned char *p;
        OSSL_CMP_MSG *rsp = NULL;
        int len;

        if (confirm && s->res->verdict == CMP_CONFIRM_DEFER) {
                (void) fail(s, -EINPROGRESS);
                return NULL;
        }
        if (confirm)
                s->res->stage = CMP_STAGE_CONFIRM;
        len = i2d_OSSL_CMP_MSG((OSSL_CMP_MSG *) req, &der);
        if (len <= 0) {
                set_detail(s, "cannot encode the CMP request");
                (void) fail(s, -ENOMEM);
                return NULL;
        }
        if (http_exchange(s, der, (size_t) len) >= 0) {
                p = s->body;
                rsp = d2i_OSSL_CMP_MSG(NULL, &p, (long) s->body_len);
                if (!rsp || p != s->body + s->body_len) {
                        OSSL_CMP_MSG_free(rsp);
                        rsp = NULL;
                        set_detail(s, "the portal's answer is not a PKIMessage");
                        (void) fail(s, -EBADMSG);
                } else if (confirm && OSSL_CMP_MSG_get_bodytype(rsp) == BODY_PKICONF)
                        s->pkiconf_received = true;
        }
        OPENSSL_free(der);
        return rsp;
}

/* From here on OpenSSL signs with the new key and puts the new certificate
 * first in extraCerts; the transaction (ID, nonces) stays the same. */
static int use_new_credentials(OSSL_CMP_CTX *ctx, X509 *cert, const CmpClientOptions *o) {
        /* OpenSSL keeps the chain it built for the first message: build it
         * again, or the old certificate would stay first in extraCerts. */
        return OSSL_CMP_CTX_set1_cert(ctx, cert) && OSSL_CMP_CTX_set1_pkey(ctx, o->new_key) &&
                               OSSL_CMP_CTX_build_cert_chain(ctx, NULL, NULL)
                       ? 0
                       : -ENOMEM;
}

static int on_certificate(OSSL_CMP_CTX *ctx, X509 *cert, int fail_info, const char **text) {
        CmpSession *s = OSSL_CMP_CTX_get_certConf_cb_arg(ctx);
        unsigned char *der = NULL;
        int len;

        s->res->stage = CMP_STAGE_INSTALL;
        /* OpenSSL found that the certificate is not for our new key: never
         * install it; the rejection makes the portal revoke it. */
        if (fail_info != 0) {
                s->res->verdict = CMP_CONFIRM_REJECT;
                set_detail(s, "%s", *text ? *text : "the issued certificate is not for the new key");
                return fail_info;
        }
        len = i2d_X509(cert, &der);
        if (len <= 0) {
                s->res->verdict = CMP_CONFIRM_DEFER;
                set_detail(s, "cannot encode the issued certificate");
                (void) fail(s, -ENOMEM);
                return 0;
        }
        s->res->verdict = s->install(der, (size_t) len, cert, s->userdata, &s->reason);
        OPENSSL_free(der);
        if (s->res->verdict == CMP_CONFIRM_ACCEPT && s->opts->confirm_with_new_key &&
            use_new_credentials(ctx, cert, s->opts) < 0) {
                s->res->verdict = CMP_CONFIRM_DEFER;
                set_detail(s, "cannot protect certConf with the new key");
                (void) fail(s, -ENOMEM);
        }
        if (s->res->verdict != CMP_CONFIRM_REJECT)
                return 0;
        *text = s->reason ? s->reason : "the certificate could not be installed";
        return 1 << OSSL_CMP_PKIFAILUREINFO_systemFailure;
}

static int on_log(const char *func, const char *file, int line, OSSL_CMP_severity level, const char *msg) {
        (void) func, (void) file, (void) line, (void) level, (void) msg;
        /* Errors reach the caller through CmpResult; nothing goes to stderr. */
        return 1;
}

static int make_ctx(CmpSession *s, OSSL_CMP_CTX **ret) {
        const CmpClientOptions *o = s->opts;
        _cleanup_(OSSL_CMP_CTX_freep) OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
        _cleanup_(X509_STORE_freep) X509_STORE *trusted = X509_STORE_new();

        if (!ctx || !trusted)
                return -ENOMEM;
        if (X509_STORE_load_file(trusted, o->trusted) != 1) {
                set_detail(s, "cannot read the trusted CMP signers from %s", o->trusted);
                return -EINVAL;
        }
        if (!OSSL_CMP_CTX_set_log_cb(ctx, on_log) || !OSSL_CMP_CTX_set_transfer_cb(ctx, transfer) ||
            !OSSL_CMP_CTX_set_transfer_cb_arg(ctx, s) ||
            !OSSL_CMP_CTX_set_certConf_cb(ctx, on_certificate) ||
            !OSSL_CMP_CTX_set_certConf_cb_arg(ctx, s) || !OSSL_CMP_CTX_set0_trustedStore(ctx, trusted))
                return -ENOMEM;
        trusted = NULL;
        if (!OSSL_CMP_CTX_set1_cert(ctx, o->old_cert) || !OSSL_CMP_CTX_set1_pkey(ctx, o->old_key) ||
            (o->old_chain && !OSSL_CMP_CTX_set1_untrusted(ctx, o->old_chain)) ||
            !OSSL_CMP_CTX_set1_oldCert(ctx, o->old_cert) ||
            !OSSL_CMP_CTX_set1_subjectName(ctx, X509_get_subject_name(o->old_cert)) ||
            !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 0) ||
            !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_DISABLE_CONFIRM, 0))
                return -ENOMEM;
        if (!EVP_PKEY_up_ref(o->new_key))
                return -ENOMEM;
        if (!OSSL_CMP_CTX_set0_newPkey(ctx, 1, o->new_key)) {
                EVP_PKEY_free(o->new_key);
                return -ENOMEM;
        }
        *ret = TAKE_PTR(ctx);
        return 0;
}

static void copy_status_text(OSSL_CMP_CTX *ctx, CmpResult *res) {
        OSSL_CMP_PKIFREETEXT *texts = OSSL_CMP_CTX_get0_statusString(ctx);
        size_t used = 0;

        for (int i = 0; i < sk_ASN1_UTF8STRING_num(texts); i++) {
                ASN1_UTF8STRING *t = sk_ASN1_UTF8STRING_value(texts, i);
                int k = snprintf(res->text + used, sizeof(res->text) - used, "%s%.*s", used ? "; " : "",
                                 ASN1_STRING_length(t), (const char *) ASN1_STRING_get0_data(t));
                if (k < 0 || (size_t) k >= sizeof(res->text) - used)
                        break;
                used += (size_t) k;
        }
}

/* The portal's refusal (an error message, or kup with status rejection). */
static int portal_errno(int fail_info) {
        if (fail_info & OSSL_CMP_CTX_FAILINFO_badRequest)
                return -ENOENT;
        if (fail_info & (OSSL_CMP_CTX_FAILINFO_badMessageCheck | OSSL_CMP_CTX_FAILINFO_badPOP))
                return -EKEYREJECTED;
        if (fail_info & OSSL_CMP_CTX_FAILINFO_badCertTemplate)
                return -EBADRQC;
        if (fail_info & OSSL_CMP_CTX_FAILINFO_certRevoked)
                return -EKEYREVOKED;
        if (fail_info & OSSL_CMP_CTX_FAILINFO_badTime)
                return -EKEYEXPIRED;
        return -EPROTO;
}

static int outcome(CmpSession *s, OSSL_CMP_CTX *ctx, X509 *cert) {
        CmpResult *res = s->res;
        unsigned long e = ERR_peek_last_error();

        res->pki_status = OSSL_CMP_CTX_get_status(ctx);
        res->fail_info = OSSL_CMP_CTX_get_failInfoCode(ctx);
        if (res->fail_info < 0)
                res->fail_info = 0;
        copy_status_text(ctx, res);
        /* The install step deferred: whether OpenSSL then failed to sign
         * the certConf (with the card gone) or our transfer refused to send
         * it, nothing was confirmed. */
        if (s->error == -EINPROGRESS ||
            (res->stage >= CMP_STAGE_INSTALL && res->verdict == CMP_CONFIRM_DEFER))
                return -EINPROGRESS;
        if (res->stage >= CMP_STAGE_INSTALL && res->verdict == CMP_CONFIRM_REJECT && s->pkiconf_received)
                return -ECANCELED;
        if (cert && res->verdict == CMP_CONFIRM_ACCEPT)
                return 0;
        if (s->error < 0)
                return s->error;
        if (res->pki_status == OSSL_CMP_PKISTATUS_rejection && res->fail_info != 0 &&
            res->stage == CMP_STAGE_REQUEST)
                return portal_errno(res->fail_info);
        set_detail(s, "%s", e ? ERR_reason_error_string(e) ?: "CMP failure" : "CMP failure");
        /* Nothing was sent: making the request failed, which with the keys
         * checked beforehand means a signature (on the card) failed. */
        if (res->exchanges == 0)
                return -EIO;
        /* An answer arrived but OpenSSL would not take it: its protection
         * does not verify against the trusted signers, wrong nonces, ... */
        return res->fail_info ? portal_errno(res->fail_info) : -EBADMSG;
}

static bool options_are_valid(const CmpClientOptions *o) {
        return o && o->url && portal_base_url_is_valid(o->url, PORTAL_INSECURE_HTTP_FOR_TESTS) &&
               o->trusted && o->old_cert && o->old_key && o->new_key;
}

/* The old key must be the old certificate's, or the portal could only
 * answer badMessageCheck; OpenSSL would refuse to make the request. */
static bool old_key_matches(const CmpClientOptions *o) {
        return EVP_PKEY_eq(X509_get0_pubkey(o->old_cert), o->old_key) == 1;
}

int cmp_client_renew(const CmpClientOptions *opts, CmpInstallFn install, void *userdata, X509 **ret_cert,
                     CmpResult *result) {
        CmpResult scratch;
        CmpSession s = {
                .opts = opts,
                .res = result ?: &scratch,
                .install = install,
                .userdata = userdata,
        };
        _cleanup_(OSSL_CMP_CTX_freep) OSSL_CMP_CTX *ctx = NULL;
        X509 *cert = NULL;
        int r;

        *s.res = (CmpResult){ .stage = CMP_STAGE_SETUP, .verdict = CMP_CONFIRM_DEFER, .pki_status = -1 };
        if (!options_are_valid(opts) || !install || !ret_cert) {
                set_detail(&s, "invalid CMP client options (the URL must be https)");
                return -EINVAL;
        }
        if (!old_key_matches(opts)) {
                set_detail(&s, "the old key does not belong to the old certificate");
                return -EINVAL;
        }
        ERR_clear_error();
        s.easy = curl_easy_init();
        if (!s.easy)
                return -ENOMEM;
        r = easy_setup(&s);
        if (r >= 0)
                r = make_ctx(&s, &ctx);
        if (r >= 0) {
                s.res->stage = CMP_STAGE_REQUEST;
                cert = OSSL_CMP_exec_KUR_ses(ctx);
                r = outcome(&s, ctx, cert);
        }
        if (r >= 0) {
                if (X509_up_ref(cert))
                        *ret_cert = cert;
                else
                        r = -ENOMEM;
        }
        ERR_clear_error();
        curl_easy_cleanup(s.easy);
        curl_slist_free_all(s.headers);
        free(s.body);
        return r;
}

const char *cmp_result_message(const CmpResult *result, int error) {
        if (result && result->text[0])
                return result->text;
        if (result && result->detail[0])
                return result->detail;
        return strerror(error < 0 ? -error : error);
}
