# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon's portal status client (daemon/portal-client.c) over real TLS,
driven by tests/tools/portal-status-probe: against the reference portal
(answers, ETag and 304, 429 with Retry-After) and against a small Python
HTTPS server that misbehaves on purpose (5xx, oversize and malformed bodies,
untrusted or wrong-host certificates, a server too slow to answer).

The probe runs with --fixed-jitter: every jitter is 5 % of its base, so the
next poll times below are exact (to the millisecond the loop took)."""

import http.server
import json
import os
import pathlib
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import BUILD, Portal, run  # noqa: E402

PROBE = BUILD / "tests" / "tools" / "portal-status-probe"
UNKNOWN_ISSUER = "0" * 63 + "1"
# This test's own ports (the reference portal picks a free one itself).
FAKE_PORT = 46020


def probe(*args, timeout=90, wrapper=()):
    """Runs the probe; returns (the polls as dicts, the completed process)."""
    p = subprocess.run([*wrapper, str(PROBE), *[str(a) for a in args]], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"probe exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    polls = [json.loads(line) for line in p.stdout.splitlines() if line.startswith('{"poll"')]
    return polls, p


def asked(proc):
    return [json.loads(line)["asking"] for line in proc.stdout.splitlines() if line.startswith('{"asking"')]


def near(ms, seconds, slack_ms=2000):
    """A next-poll delay measured after the poll: at most a little below seconds."""
    return seconds * 1000 - slack_ms <= ms <= seconds * 1000


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    p = Portal(tmp_path_factory.mktemp("portal-client"))
    p.start()
    yield p
    p.stop()


def by_cert(poll):
    return {c["cert"]: c for c in poll["certificates"]}


def test_answers_from_the_reference_portal(portal):
    _, approved_cert, approved_id = portal.customer(name="张三")
    oid = portal.approved_order(approved_cert, "--rekey", "no", "--validity-days", "730")
    _, plain_cert, plain_id = portal.customer()
    _, review_cert, review_id = portal.customer(alg="rsa")
    rid = portal.order(review_cert, "--review")
    portal.admin("order", "pay", rid)
    reason = "营业执照已过期，请上传新的营业执照。\nLine two."
    portal.admin("order", "reject", rid, "--reason", reason)
    stranger = f"{UNKNOWN_ISSUER}:1a2b"

    polls, proc = probe("--url", portal.url, "--ca", portal.bundle, "--fixed-jitter",
                        "--cert-file", approved_cert, "--cert-file", plain_cert, "--cert-file", review_cert,
                        "--cert", stranger, "--cert", plain_id)
    # The client names certificates exactly as the portal does.
    assert asked(proc)[:3] == [approved_id, plain_id, review_id]
    (poll,) = polls
    assert poll["error"] == 0 and poll["http_status"] == 200 and not poll["not_modified"]
    certs = by_cert(poll)
    assert sorted(certs) == sorted([approved_id, plain_id, review_id, stranger])
    assert [c["cert"] for c in poll["certificates"]] == sorted(certs)
    order = certs[approved_id]["order"]
    assert certs[approved_id]["known"]
    assert order["id"] == oid and order["state"] == "approved"
    assert order["rekey"] is False and order["validity_days"] == 730
    assert order["page"] == f"{portal.url}/orders/{oid}"
    assert order["cmp"] == f"{portal.url}/.well-known/cmp/p/renew"
    assert order["updated"].endswith("Z")
    assert certs[plain_id] == {"cert": plain_id, "known": True, "order": None}
    assert certs[stranger] == {"cert": stranger, "known": False, "order": None}
    rejected = certs[review_id]["order"]
    assert rejected["state"] == "rejected" and rejected["reject_reason"] == reason
    # The portal's default interval, 6 h, plus 5 % jitter.
    assert near(poll["next_poll_in_ms"], 21600 * 1.05)


def test_etag_gives_304_and_the_answer_is_kept(portal):
    _, cert, cert_id = portal.customer()
    oid = portal.approved_order(cert)
    polls, _ = probe("--url", portal.url, "--ca", portal.bundle, "--fixed-jitter", "--cert", cert_id,
                     "--polls", "3")
    assert [p["http_status"] for p in polls] == [200, 304, 304]
    assert [p["not_modified"] for p in polls] == [False, True, True]
    # The kept answer is the one the 200 gave.
    assert polls[1]["certificates"] == polls[0]["certificates"] == polls[2]["certificates"]
    assert polls[2]["certificates"][0]["order"]["id"] == oid
    assert all(p["error"] == 0 for p in polls)


def test_unknown_certificates_are_not_asked_again(portal):
    _, _, cert_id = portal.customer()
    stranger = f"{UNKNOWN_ISSUER}:77"
    polls, _ = probe("--url", portal.url, "--ca", portal.bundle, "--cert", cert_id, "--cert", stranger,
                     "--polls", "2")
    assert sorted(by_cert(polls[0])) == sorted([cert_id, stranger])
    # known: false: the next poll leaves it out (until a key insertion).
    assert list(by_cert(polls[1])) == [cert_id]


def test_key_insertion_asks_at_once_at_most_once_a_minute(portal):
    _, _, cert_id = portal.customer()
    stranger = f"{UNKNOWN_ISSUER}:78"
    start = time.monotonic()
    polls, proc = probe("--url", portal.url, "--ca", portal.bundle, "--fixed-jitter", "--cert", cert_id,
                        "--cert", stranger, "--polls", "2", "--insert-key")
    # The insertion after the first poll asked at once, about the
    # certificate the portal disowned too (the key may be its own now).
    assert time.monotonic() - start < 30
    assert sorted(by_cert(polls[1])) == sorted([cert_id, stranger])
    assert polls[1]["http_status"] == 304
    # A second insertion within the minute is asked about at the end of
    # that minute (not at the next regular poll, hours later).
    (line,) = [json.loads(x) for x in proc.stdout.splitlines() if "after_insert" in x]
    assert near(line["after_insert_next_poll_in_ms"], 60)


def test_poll_interval_hint_is_obeyed(portal):
    _, _, cert_id = portal.customer()
    portal.admin("poll-interval", "3600")
    try:
        polls, _ = probe("--url", portal.url, "--ca", portal.bundle, "--fixed-jitter", "--cert", cert_id)
    finally:
        portal.admin("poll-interval", "21600")
    assert near(polls[0]["next_poll_in_ms"], 3600 * 1.05)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_obeyed(portal, status):
    _, _, cert_id = portal.customer()
    portal.admin("fault", "set", "--status", str(status), "--retry-after", "900", "--count", "1")
    try:
        polls, proc = probe("--url", portal.url, "--ca", portal.bundle, "--fixed-jitter", "--cert", cert_id,
                            "--polls", "2")
    finally:
        portal.admin("fault", "clear")
    first, second = polls
    assert first["error"] < 0 and first["errno"] == "EAGAIN" and first["http_status"] == status
    assert "Retry-After: 900" in first["message"]
    assert first["certificates"] == []
    # At least the 900 s asked for, plus the jitter.
    assert near(first["next_poll_in_ms"], 900 * 1.05)
    assert "Portal status check failed" in proc.stderr
    assert second["error"] == 0 and second["http_status"] == 200


def test_busy_without_retry_after_backs_off(portal):
    _, _, cert_id = portal.customer()
    portal.admin("fault", "set", "--status", "503", "--count", "1")
    try:
        polls, _ = probe("--url", portal.url, "--ca", portal.bundle, "--fixed-jitter", "--cert", cert_id)
    finally:
        portal.admin("fault", "clear")
    assert polls[0]["errno"] == "EAGAIN"
    assert "without Retry-After" in polls[0]["message"]
    assert near(polls[0]["next_poll_in_ms"], 60 * 1.05)


def test_portal_not_trusted_without_its_ca(portal):
    _, _, cert_id = portal.customer()
    # The system's bundle does not hold the test CA: no answer, a backoff.
    polls, _ = probe("--url", portal.url, "--fixed-jitter", "--cert", cert_id)
    assert polls[0]["errno"] == "EKEYREJECTED"
    assert polls[0]["certificates"] == []
    assert near(polls[0]["next_poll_in_ms"], 60 * 1.05)


def test_plain_http_is_refused(portal):
    p = subprocess.run([str(PROBE), "--url", f"http://127.0.0.1:{portal.port}", "--cert", f"{UNKNOWN_ISSUER}:1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "Cannot set up the portal client" in p.stderr


def test_probe_under_valgrind(portal):
    _, cert, cert_id = portal.customer()
    portal.approved_order(cert)
    polls, _ = probe("--url", portal.url, "--ca", portal.bundle, "--cert", cert_id, "--polls", "2",
                     timeout=300,
                     wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                              "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                              "--track-fds=yes", "--quiet"])
    assert [p["http_status"] for p in polls] == [200, 304]


# --- a server that misbehaves on purpose ---------------------------------

class FakeHandler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: a body without a length ends when the connection closes.
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode = self.server.mode
        certs = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("cert", [])
        self.server.requests.append((self.path, dict(self.headers)))
        if mode == "slow":
            time.sleep(3)
        if mode == "500":
            return self.answer(500, b"oops")
        if mode == "400":
            return self.answer(400, b'{"error":"bad-cert","message":"cert 1 is not hex"}')
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1/elsewhere")
            self.end_headers()
            return None
        if mode == "big-length":
            return self.answer(200, b" " * (2 * 1024 * 1024))
        if mode == "big-stream":
            self.send_response(200)
            self.end_headers()
            for _ in range(32):
                self.wfile.write(b" " * 65536)
            return None
        entries = [{"cert": c, "known": True, "order": None} for c in certs]
        doc = {"version": 1, "poll_interval": 600, "certificates": entries}
        body = json.dumps(doc).encode()
        if mode == "duplicate-key":
            body = body.replace(b'"version": 1', b'"version": 1, "version": 1')
        elif mode == "extra-cert":
            entries.append({"cert": f"{UNKNOWN_ISSUER}:9", "known": True, "order": None})
            body = json.dumps(doc).encode()
        elif mode == "version-2":
            body = json.dumps(dict(doc, version=2)).encode()
        elif mode == "http-page":
            entries[0]["order"] = {"id": "R1", "state": "awaiting-payment", "rekey": True, "validity_days": 365,
                                   "page": "http://127.0.0.1/orders/R1", "updated": "2026-11-27T08:00:00Z"}
            body = json.dumps(doc).encode()
        return self.answer(200, body)

    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hung up (time-out, refused certificate) is expected.
        pass


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 with a certificate for IP 127.0.0.1 only,
    by a CA of its own (ca.pem)."""
    d = tmp_path_factory.mktemp("fake-portal")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "2",
         "-subj", "/CN=probe test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"])
    run(["openssl", "req", *ec, "-keyout", d / "srv.key", "-out", d / "srv.csr", "-subj", "/CN=127.0.0.1"])
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run(["openssl", "x509", "-req", "-in", d / "srv.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
         "-CAcreateserial", "-out", d / "srv.pem", "-days", "2", "-extfile", d / "ext"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "srv.pem", d / "srv.key")
    server = FakeServer(("127.0.0.1", FAKE_PORT), FakeHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.mode = "ok"
    server.requests = []
    server.ca = d / "ca.pem"
    server.url = f"https://127.0.0.1:{FAKE_PORT}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def fake_probe(fake, mode, *extra, url=None):
    fake.mode = mode
    fake.requests.clear()
    polls, proc = probe("--url", url or fake.url, "--ca", fake.ca, "--fixed-jitter", "--poll-interval", "3600",
                        "--cert", f"{UNKNOWN_ISSUER}:2", "--cert", f"{UNKNOWN_ISSUER}:1", *extra)
    return polls[0], proc


def test_fake_server_request(fake):
    poll, _ = fake_probe(fake, "ok", "--cert", f"{UNKNOWN_ISSUER}:1")
    assert poll["error"] == 0 and len(poll["certificates"]) == 2
    # The portal's interval (600 s) replaces the configured one.
    assert near(poll["next_poll_in_ms"], 600 * 1.05)
    ((path, headers),) = fake.requests
    # Sorted, without the duplicate, below the base URL's path.
    assert path == f"/v1/renewals?cert={UNKNOWN_ISSUER}:1&cert={UNKNOWN_ISSUER}:2"
    assert headers["User-Agent"].startswith("keyrenew/")
    assert headers["Accept"] == "application/json"
    assert "If-None-Match" not in headers


def test_server_error_backs_off(fake):
    poll, _ = fake_probe(fake, "500")
    assert poll["errno"] == "EIO" and poll["http_status"] == 500
    assert "HTTP status 500" in poll["message"]
    assert near(poll["next_poll_in_ms"], 60 * 1.05)


def test_bad_request_waits_for_the_next_regular_poll(fake):
    poll, _ = fake_probe(fake, "400")
    assert poll["errno"] == "EBADMSG" and poll["http_status"] == 400
    assert "bad-cert: cert 1 is not hex" in poll["message"]
    # Not retried: the configured interval, no backoff.
    assert near(poll["next_poll_in_ms"], 3600 * 1.05)


def test_redirects_are_not_followed(fake):
    poll, _ = fake_probe(fake, "redirect")
    assert poll["errno"] == "EIO" and poll["http_status"] == 302
    assert len(fake.requests) == 1


@pytest.mark.parametrize("mode", ["big-length", "big-stream"])
def test_oversize_body_is_rejected(fake, mode):
    poll, _ = fake_probe(fake, mode)
    assert poll["errno"] == "EFBIG", poll
    assert "the answer is larger than 1048576 bytes" in poll["message"], poll
    assert poll["certificates"] == []
    assert near(poll["next_poll_in_ms"], 60 * 1.05)


@pytest.mark.parametrize("mode,errno,words", [
    ("duplicate-key", "EBADMSG", "duplicate"),
    ("extra-cert", "EBADMSG", "3 certificates answered, 2 asked"),
    ("version-2", "EPROTONOSUPPORT", "version 2"),
    ("http-page", "EBADMSG", '"page" is not an https URL'),
])
def test_malformed_answers_are_rejected(fake, mode, errno, words):
    poll, _ = fake_probe(fake, mode)
    assert poll["errno"] == errno
    assert words in poll["message"]
    assert poll["certificates"] == []
    assert near(poll["next_poll_in_ms"], 60 * 1.05)


def test_host_name_is_verified(fake):
    # The certificate names IP 127.0.0.1, not "localhost".
    poll, _ = fake_probe(fake, "ok", url=f"https://localhost:{FAKE_PORT}/v1")
    assert poll["errno"] == "EKEYREJECTED"
    assert fake.requests == []


def test_untrusted_server_fails(fake, portal):
    fake.mode = "ok"
    polls, _ = probe("--url", fake.url, "--ca", portal.bundle, "--cert", f"{UNKNOWN_ISSUER}:1")
    assert polls[0]["errno"] == "EKEYREJECTED"


def test_slow_server_times_out(fake):
    start = time.monotonic()
    poll, _ = fake_probe(fake, "slow", "--timeout-ms", "1000")
    took = time.monotonic() - start
    assert poll["errno"] == "ETIMEDOUT"
    assert took < 2.9, took
    assert near(poll["next_poll_in_ms"], 60 * 1.05)
