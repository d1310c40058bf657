/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the CMP key update client, daemon/cmp-client.h, taking
 * the portal's answers from the input.
 *
 * cmp_client_renew() runs unchanged, over libcurl, against a small HTTP
 * server on 127.0.0.1 in a thread of this process (cmp-client.c is built
 * with plain http to loopback allowed, as -Dportal_insecure_http_for_tests
 * builds are). The server answers the client's kur and certConf from the
 * input, so that the client's own code is what is fuzzed: the HTTP
 * handling (status, Content-Type, X-Portal-Time-Us), the decoding of the
 * answer, the install callback's use, the mapping of the portal's status
 * to errors and texts. OpenSSL checks each answer's protection, transaction
 * and nonces; to get past those, an answer can also be made by OpenSSL's
 * own CMP server (OSSL_CMP_SRV_CTX) from values in the input, or be a
 * PKIMessage from the input that the server adopts: it takes the
 * transaction's ID and nonce and is signed again by the server's key.
 *
 * Input: one flags byte (bits 0-1: the install callback's verdict, accept,
 * reject, defer, accept; bit 2: confirm with the new key), then one answer
 * per HTTP exchange, kur's then certConf's, each a 2-byte big-endian length
 * and that many bytes; a missing one closes the connection unanswered.
 * An answer is a control byte and a payload:
 *   bits 0-1: 0 the payload is the body, as it is; 1 and 3: OpenSSL's
 *     server answers, with these values from the payload: [0] PKIStatus
 *     (mod 7), [1-2] failInfo bits, [3] the certificate (0 one for the
 *     requested key, 1 one for the old key, 2 none, 3 the DER after the
 *     text), [4] certConf taken (even) or refused (odd), [5] the text's
 *     length, then the text (the statusString); 2: the payload is a
 *     PKIMessage the server adopts (else sent as it is);
 *   bits 2-3: 0 HTTP 200 application/pkixcmp, 1 200 text/html, 2 500,
 *     3 200 application/pkixcmp;
 *   bit 4: the payload starts with a length byte and that many bytes of
 *     header line, sent as they are (X-Portal-Time-Us and the like).
 * The keys and certificates (a CA, the portal's CMP signer, the old
 * certificate and the old and new keys) are made once at start; only the
 * CA is trusted. Seeds are answers of the reference portal (kup, pkiConf,
 * error) and OpenSSL server answers of every kind.
 *
 * Checked: the install callback is called at most once and only with a
 * certificate for the new key; 0 comes back only with that certificate
 * after an accepting verdict, -ECANCELED only after a rejection (the
 * callback's, or OpenSSL's of a certificate for another key); a
 * result that never reached the callback does not say "accepted"; the
 * result's texts are terminated. FUZZ_CMP_VERBOSE=1 in the environment
 * prints each run's outcome. */

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmp-client.h"
#include "macro.h"

/* LeakSanitizer, when built with ASan (clang says so one way, gcc another). */
#ifdef __has_feature
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef __SANITIZE_ADDRESS__
#define HAVE_LSAN 1
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                          \
        do {                                                                                              \
                if (!(x)) {                                                                               \
                        fprintf(stderr, "fuzz-cmp-response: %s:%d: %s failed\n", __FILE__, __LINE__, #x); \
                        abort();                                                                          \
                }                                                                                         \
        } while (0)

#define REQUEST_MAX (64u * 1024u)

/* Made once. */
static EVP_PKEY *ca_key, *signer_key, *old_key, *new_key;
static X509 *ca_cert, *signer_cert, *old_cert;
static char trusted_path[64], url[96];

/* One run's answers, read by the server thread while the client waits. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        const uint8_t *answers;
        size_t left;
        OSSL_CMP_SRV_CTX *srv;
        const uint8_t *params; /* the current answer's payload, for the server's callbacks */
        size_t params_len;
} run;

static void die(const char *what) {
        fprintf(stderr, "fuzz-cmp-response: %s\n", what);
        ERR_print_errors_fp(stderr);
        abort();
}

static void add_ext(X509 *x, X509V3_CTX *v3, const char *name, const char *value) {
        X509_EXTENSION *ext = X509V3_EXT_conf(NULL, v3, name, value);

        if (!ext || !X509_add_ext(x, ext, -1))
                die("cannot add an extension");
        X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
                       long serial) {
        X509_NAME *name = X509_NAME_new();
        X509 *x = X509_new();
        X509V3_CTX v3;

        if (!x || !name || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) ||
            !X509_set_subject_name(x, name) ||
            !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400) || !X509_set_pubkey(x, key))
                die("cannot make a certificate");
        X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
        X509V3_set_ctx_nodb(&v3);
        add_ext(x, &v3, "basicConstraints", ca ? "critical,CA:TRUE" : "CA:FALSE");
        add_ext(x, &v3, "subjectKeyIdentifier", "hash");
        add_ext(x, &v3, "keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
        if (!X509_sign(x, issuer_key, EVP_sha256()))
                die("cannot sign a certificate");
        X509_NAME_free(name);
        return x;
}

/* The server's part: OSSL_CMP_SRV_CTX callbacks answering from run.params. */
static uint8_t param(size_t i) {
        return i < run.params_len ? run.params[i] : 0;
}

static OSSL_CMP_PKISI *on_cert_request(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int certReqId,
                                       const OSSL_CRMF_MSG *crm, const X509_REQ *p10cr, X509 **certOut,
                                       STACK_OF(X509) * *chainOut, STACK_OF(X509) * *caPubs) {
        int status = param(0) % 7, fail_info = (param(1) << 8 | param(2)) & ((1 << 27) - 1);
        size_t text_len = param(5), text_at = 6;
        char text[256];

        if (text_at + text_len > run.params_len)
                text_len = run.params_len > text_at ? run.params_len - text_at : 0;
        memcpy(text, run.params + text_at, text_len);
        text[text_len] = '\0';
        /* The client asks for new_key (a real server reads it from the template). */
        switch (param(3) % 4) {
        case 0:
        case 1:
                *certOut = make_cert(param(3) % 4 ? old_key : new_key, "Fuzz Customer", ca_cert, ca_key,
                                     false, 0x1f);
                break;
        case 3: {
                const unsigned char *p = run.params + text_at + text_len;

                *certOut = d2i_X509(NULL, &p, (long) (run.params_len - text_at - text_len));
                break;
        }
        }
        if (*certOut && param(4) & 2) {
                *chainOut = sk_X509_new_null();
                if (!*chainOut || !X509_add_cert(*chainOut, ca_cert, X509_ADD_FLAG_UP_REF))
                        die("cannot make a chain");
        }
        return OSSL_CMP_STATUSINFO_new(status, fail_info, text_len ? text : NULL);
}

static int on_cert_conf(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int certReqId,
                        const ASN1_OCTET_STRING *certHash, const OSSL_CMP_PKISI *si) {
        return !(param(4) & 1);
}

static int quiet(const char *func, const char *file, int line, OSSL_CMP_severity level, const char *msg) {
        return 1;
}

static OSSL_CMP_SRV_CTX *new_server(void) {
        OSSL_CMP_SRV_CTX *srv = OSSL_CMP_SRV_CTX_new(NULL, NULL);
        X509_STORE *store = X509_STORE_new();
        OSSL_CMP_CTX *ctx;

        if (!srv || !store || !X509_STORE_add_cert(store, ca_cert) ||
            !OSSL_CMP_SRV_CTX_init(srv, NULL, on_cert_request, NULL, NULL, NULL, on_cert_conf, NULL))
                die("cannot make the CMP server");
        ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(srv);
        if (!OSSL_CMP_CTX_set1_cert(ctx, signer_cert) || !OSSL_CMP_CTX_set1_pkey(ctx, signer_key) ||
            !OSSL_CMP_CTX_set0_trustedStore(ctx, store) || !OSSL_CMP_CTX_set_log_cb(ctx, quiet))
                die("cannot set up the CMP server");
        return srv;
}

/* The HTTP side: one request per connection, answered from the input. */
static bool read_request(int fd, uint8_t *buf, size_t *ret_len, const uint8_t **ret_body,
                         size_t *ret_body_len) {
        size_t len = 0, body_len = 0;
        const char *cl;
        char *end;
        ssize_t k;

        buf[0] = '\0';
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
                if (len >= REQUEST_MAX - 1 || (k = read(fd, buf + len, REQUEST_MAX - 1 - len)) <= 0)
                        return false;
                len += (size_t) k;
        }
        buf[len] = '\0';
        cl = strcasestr((char *) buf, "\r\nContent-Length:");
        if (cl && cl < end)
                body_len = strtoul(cl + 17, NULL, 10);
        if (body_len > REQUEST_MAX - 1 - (size_t) (end + 4 - (char *) buf))
                return false;
        while (len < (size_t) (end + 4 - (char *) buf) + body_len) {
                if ((k = read(fd, buf + len, REQUEST_MAX - 1 - len)) <= 0)
                        return false;
                len += (size_t) k;
        }
        *ret_len = len;
        *ret_body = (const uint8_t *) end + 4;
        *ret_body_len = body_len;
        return true;
}

static void write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                /* The client may have hung up: no SIGPIPE for that. */
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

                if (k <= 0)
                        return;
                p = (const uint8_t *) p + k;
                n -= (size_t) k;
        }
}

/* The answer's body, made as its kind says. */
static unsigned char *make_body(uint8_t kind, const uint8_t *payload, size_t len, const OSSL_CMP_MSG *req,
                                int *ret_len) {
        OSSL_CMP_MSG *rsp = NULL, *adopted;
        unsigned char *der = NULL;
        const unsigned char *p = payload;

        if (kind == 0 || !req) {
                der = OPENSSL_memdup(len ? payload : (const uint8_t *) "", len ? len : 1);
                *ret_len = (int) len;
                return der;
        }
        run.params = payload;
        run.params_len = len;
        rsp = OSSL_CMP_SRV_process_request(run.srv, req);
        if (kind == 2 && (adopted = d2i_OSSL_CMP_MSG(NULL, &p, (long) len))) {
                OSSL_CMP_CTX *ctx = OSSL_CMP_SRV_CTX_get0_cmp_ctx(run.srv);

                /* Takes this transaction's ID and nonce, and is signed again
                 * by our signer when it was protected. */
                if (OSSL_CMP_MSG_update_transactionID(ctx, adopted) &&
                    OSSL_CMP_MSG_update_recipNonce(ctx, adopted)) {
                        OSSL_CMP_MSG_free(rsp);
                        rsp = adopted;
                } else
                        OSSL_CMP_MSG_free(adopted);
        }
        *ret_len = rsp ? i2d_OSSL_CMP_MSG(rsp, &der) : 0;
        OSSL_CMP_MSG_free(rsp);
        ERR_clear_error();
        return *ret_len > 0 ? der : NULL;
}

static void answer(int fd, const uint8_t *body, size_t body_len) {
        static const char *const statuses[] = { "200 OK", "200 OK", "500 Internal Server Error", "200 OK" };
        static const char *const types[] = { "application/pkixcmp", "text/html", "text/plain",
                                             "application/pkixcmp; charset=binary" };
        const unsigned char *p = body;
        OSSL_CMP_MSG *req = d2i_OSSL_CMP_MSG(NULL, &p, (long) body_len);
        const uint8_t *a, *payload;
        size_t len, extra_len = 0;
        unsigned char *der = NULL;
        char head[256];
        int der_len = 0, n;
        uint8_t control;

        pthread_mutex_lock(&lock);
        if (run.left < 2 || (len = (size_t) run.answers[0] << 8 | run.answers[1]) > run.left - 2 ||
            len == 0) {
                run.left = 0;
                goto out; /* no answer: the connection closes */
        }
        a = run.answers + 2;
        run.answers += 2 + len;
        run.left -= 2 + len;
        control = a[0];
        payload = a + 1;
        len--;
        if (control & 0x10 && len > 0) {
                extra_len = payload[0] < len - 1 ? payload[0] : len - 1;
                payload++;
                len--;
        }
        der = make_body(control & 3, payload + extra_len, len - extra_len, req, &der_len);
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n",
                     statuses[control >> 2 & 3], types[control >> 2 & 3], der ? der_len : 0);
        write_all(fd, head, (size_t) n);
        if (extra_len > 0) {
                write_all(fd, payload, extra_len);
                write_all(fd, "\r\n", 2);
        }
        write_all(fd, "\r\n", 2);
        if (der)
                write_all(fd, der, (size_t) der_len);
out:
        pthread_mutex_unlock(&lock);
        OPENSSL_free(der);
        OSSL_CMP_MSG_free(req);
}

static void *serve(void *arg) {
        int listen_fd = (int) (intptr_t) arg;
        uint8_t *buf = malloc(REQUEST_MAX);

        if (!buf)
                die("out of memory");
        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                const uint8_t *body;
                size_t len, body_len;

                if (fd < 0)
                        continue;
                if (read_request(fd, buf, &len, &body, &body_len))
                        answer(fd, body, body_len);
                (void) shutdown(fd, SHUT_WR);
                (void) close(fd);
        }
        return NULL;
}

static void start_server(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof a;
        pthread_t thread;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        /* Port 0: the kernel picks a free one, so runs side by side never collide. */
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 16) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &alen) < 0)
                die("cannot listen on 127.0.0.1");
        (void) snprintf(url, sizeof url, "http://127.0.0.1:%u/.well-known/cmp/p/renew", ntohs(a.sin_port));
        if (pthread_create(&thread, NULL, serve, (void *) (intptr_t) fd) != 0 || pthread_detach(thread) != 0)
                die("cannot start the server thread");
}

static void write_trusted(void) {
        FILE *f;
        int fd;

        (void) snprintf(trusted_path, sizeof trusted_path, "/tmp/fuzz-cmp-response-ca.XXXXXX");
        fd = mkstemp(trusted_path);
        if (fd < 0 || !(f = fdopen(fd, "w")) || !PEM_write_X509(f, ca_cert) || fclose(f) != 0)
                die("cannot write the trusted CA");
}

static void remove_trusted(void) {
        (void) unlink(trusted_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                die("curl_global_init failed");
        ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        signer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        old_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        new_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!ca_key || !signer_key || !old_key || !new_key)
                die("cannot make keys");
        ca_cert = make_cert(ca_key, "Fuzz CA", NULL, ca_key, true, 1);
        signer_cert = make_cert(signer_key, "Fuzz CMP signer", ca_cert, ca_key, false, 2);
        old_cert = make_cert(old_key, "Fuzz Customer", ca_cert, ca_key, false, 3);
        write_trusted();
        if (atexit(remove_trusted) != 0)
                die("atexit failed");
        start_server();
        return 0;
}

typedef struct Install {
        CmpConfirm verdict;
        unsigned calls;
        unsigned char *der;
        int der_len;
} Install;

static CmpConfirm on_install(const uint8_t *der, size_t len, X509 *cert, void *userdata,
                             const char **ret_reason) {
        Install *in = userdata;

        /* Never a certificate for another key than the one asked for. */
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(cert), new_key) == 1);
        CHECK(++in->calls == 1);
        in->der_len = i2d_X509(cert, &in->der);
        CHECK(in->der_len > 0 && (size_t) in->der_len == len && memcmp(in->der, der, len) == 0);
        if (in->verdict == CMP_CONFIRM_REJECT)
                *ret_reason = "the fuzzer says no";
        return in->verdict;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const CmpConfirm verdicts[] = { CMP_CONFIRM_ACCEPT, CMP_CONFIRM_REJECT, CMP_CONFIRM_DEFER,
                                               CMP_CONFIRM_ACCEPT };
        Install in = {};
        CmpClientOptions opts = {
                .url = url,
                .trusted = trusted_path,
                .old_cert = old_cert,
                .old_key = old_key,
                .new_key = new_key,
                .connect_timeout_ms = 2000,
                .timeout_ms = 5000,
        };
        CmpResult res;
        X509 *cert = NULL;
        int r;

        if (size < 1)
                return 0;
        in.verdict = verdicts[data[0] & 3];
        opts.confirm_with_new_key = data[0] & 4;
        pthread_mutex_lock(&lock);
        run.answers = data + 1;
        run.left = size - 1;
        run.srv = new_server();
        pthread_mutex_unlock(&lock);

#ifdef HAVE_LSAN
        /* OpenSSL 3.0 leaks the chain it built for the kur when certConf is
         * protected by the new key (tests/integration/cmp-client-openssl30.supp):
         * not ours to fix, and only those runs leave their leaks unchecked. */
        if (opts.confirm_with_new_key)
                __lsan_disable();
#endif
        r = cmp_client_renew(&opts, on_install, &in, &cert, &res);
#ifdef HAVE_LSAN
        if (opts.confirm_with_new_key)
                __lsan_enable();
#endif

        pthread_mutex_lock(&lock);
        OSSL_CMP_SRV_CTX_free(run.srv);
        run.srv = NULL;
        pthread_mutex_unlock(&lock);

        /* For writing seeds: what a run came to. */
        if (getenv("FUZZ_CMP_VERBOSE"))
                fprintf(stderr,
                        "r=%d stage=%d verdict=%d status=%d fail_info=%#x http=%ld calls=%u text=\"%s\" "
                        "detail=\"%s\"\n",
                        r, res.stage, res.verdict, res.pki_status, (unsigned) res.fail_info, res.http_status,
                        in.calls, res.text, res.detail);
        CHECK(r <= 0 && r != -EINVAL);
        CHECK(memchr(res.text, '\0', sizeof res.text) && memchr(res.detail, '\0', sizeof res.detail));
        CHECK(cmp_result_message(&res, r));
        if (r == 0) {
                unsigned char *der = NULL;
                int len = i2d_X509(cert, &der);

                CHECK(in.calls == 1 && in.verdict == CMP_CONFIRM_ACCEPT &&
                      res.verdict == CMP_CONFIRM_ACCEPT);
                CHECK(len == in.der_len && memcmp(der, in.der, (size_t) len) == 0);
                OPENSSL_free(der);
                X509_free(cert);
        }
        /* Refused by the callback, or by OpenSSL for not being for new_key. */
        if (r == -ECANCELED)
                CHECK(res.verdict == CMP_CONFIRM_REJECT &&
                      (in.calls == 0 || in.verdict == CMP_CONFIRM_REJECT));
        /* OpenSSL refuses a certificate for another key before the callback. */
        if (in.calls == 0)
                CHECK(res.stage <= CMP_STAGE_REQUEST || res.verdict == CMP_CONFIRM_REJECT);
        OPENSSL_free(in.der);
        ERR_clear_error();
        return 0;
}
