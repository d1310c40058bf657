# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon's CMP key update client (daemon/cmp-client.c) against the
reference portal over verified TLS, driven by tests/tools/cmp-renew-probe
with PEM keys: renewal with certConf only after the install step, an
install interrupted (deferred, or the process killed) and resumed with the
same new key, a rejected install, the portal's refusals with their words,
and transport failures (nothing listening, HTTP 500, an oversize or
malformed answer, an untrusted CMP signer)."""

import http.server
import json
import os
import pathlib
import re
import ssl
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import BUILD, CMP_PATH, Portal, cert_serial, der_body_tag, pubkey_der, run  # noqa: E402

PROBE = BUILD / "tests" / "tools" / "cmp-renew-probe"
# This test's own ports (the reference portal picks a free one itself).
FAKE_PORT = 49010
DEAD_PORT = 49011

# OpenSSL 3.0 leaks a chain with --confirm-with-new-key: see these files.
VALGRIND_SUPP = pathlib.Path(__file__).with_name("cmp-client-openssl30.supp")
LSAN_SUPP = pathlib.Path(__file__).with_name("cmp-client-openssl30.lsan")
# (In sanitizer builds: the slow unwinder sees through libcrypto's frames.)
LSAN_ENV = dict(os.environ, LSAN_OPTIONS=f"suppressions={LSAN_SUPP}",
                ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":fast_unwind_on_malloc=0")
KUR_TAG = 0xa7
CERTCONF_TAG = 0xb8
BAD_REQUEST = 1 << 2
BAD_CERT_TEMPLATE = 1 << 19


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    p = Portal(tmp_path_factory.mktemp("cmp-client"))
    p.start()
    yield p
    p.stop()


def crl_serials(portal, alg="ec"):
    text = portal.crl_text(alg)
    return {s.lower().lstrip("0") for s in re.findall(r"Serial Number: ([0-9A-F]+)", text)}


def probe(portal, old_key, old_cert, new_key, out, **kw):
    """Runs the probe; returns (its JSON result, the completed process)."""
    return probe_extra(portal, old_key, old_cert, new_key, out, [], **kw)


def probe_extra(portal, old_key, old_cert, new_key, out, extra, then="accept", url=None, trusted=None,
                check_rc=None, timeout=60, wrapper=(), env=None, timeout_ms=20000):
    args = [PROBE, *extra, "--url", url or portal.url + CMP_PATH, "--ca-bundle", portal.bundle,
            "--trusted", trusted or portal.bundle, "--old-cert", old_cert, "--old-key", old_key,
            "--new-key", new_key, "--cert-out", out, "--then", then, "--timeout-ms", timeout_ms]
    p = subprocess.run([*wrapper, *[str(a) for a in args]], capture_output=True, text=True, timeout=timeout,
                       env=env)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, p.stdout + p.stderr
    if check_rc is not None:
        assert p.returncode == check_rc, p.stdout + p.stderr
    return lines[0], p


def test_renewal_confirms_only_after_install(portal):
    old_key, old_cert, cert_id = portal.customer(name="张三")
    oid = portal.approved_order(old_cert)
    new_key = portal.new_key()
    out = portal.tmp / "renewed.pem"
    old_serial = cert_id.split(":")[1]

    res, _ = probe(portal, old_key, old_cert, new_key, out, check_rc=0)
    assert res["rc"] == 0 and res["stage"] == "confirm" and res["verdict"] == "accept"
    assert res["exchanges"] == 2 and res["install_calls"] == 1
    run(["openssl", "verify", "-CAfile", portal.ca["ec"], out])
    assert pubkey_der(out) == pubkey_der(new_key, private=True)
    assert res["serial"] == cert_serial(out)
    assert portal.certs_for_order(oid) == [(res["serial"], 0)]
    assert portal.order_json(cert_id)["state"] == "installed"
    assert old_serial in crl_serials(portal)
    # The time spent waiting for the portal covers the portal's own time.
    assert res["portal_us_known"] and 0 < res["portal_us"] <= res["wait_us"]

    # A client that lost the pkiConf asks again with the same key: the same
    # certificate, and the confirmation changes nothing.
    again, _ = probe(portal, old_key, old_cert, new_key, portal.tmp / "again.pem", check_rc=0)
    assert again["serial"] == res["serial"]
    assert portal.certs_for_order(oid) == [(res["serial"], 0)]


@pytest.mark.parametrize("how", ["defer", "die"])
def test_interrupted_install_resumes_with_the_same_certificate(portal, how):
    old_key, old_cert, cert_id = portal.customer(name=f"Interrupted {how}")
    oid = portal.approved_order(old_cert)
    new_key = portal.new_key()
    first = portal.tmp / f"first-{how}.pem"
    old_serial = cert_id.split(":")[1]

    res, p = probe(portal, old_key, old_cert, new_key, first, then=how)
    if how == "die":
        assert p.returncode == 3, p.stdout + p.stderr
        serial = res["died_after_issue"]
    else:
        assert p.returncode == 1
        assert res["errno"] == "EINPROGRESS" and res["stage"] == "install" and res["verdict"] == "defer"
        assert res["exchanges"] == 1  # no certConf went out
        serial = res["serial"] if res["serial"] else cert_serial(first)
    assert serial == cert_serial(first)
    # Issued, not confirmed: the old certificate is still good.
    assert portal.order_json(cert_id)["state"] == "issued"
    assert old_serial not in crl_serials(portal)
    assert portal.certs_for_order(oid) == [(serial, 0)]

    # Resume: the same new key gets the same certificate, then certConf.
    res, _ = probe(portal, old_key, old_cert, new_key, portal.tmp / f"resumed-{how}.pem", check_rc=0)
    assert res["serial"] == serial
    assert portal.certs_for_order(oid) == [(serial, 0)]
    assert portal.order_json(cert_id)["state"] == "installed"
    assert old_serial in crl_serials(portal)


def test_interrupted_install_cannot_switch_keys(portal):
    old_key, old_cert, cert_id = portal.customer(name="Switch")
    oid = portal.approved_order(old_cert)
    probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "sw1.pem", then="defer", check_rc=1)
    res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "sw2.pem", check_rc=1)
    assert res["errno"] == "ENOENT" and res["stage"] == "request"
    assert res["fail_info"] & BAD_REQUEST
    assert res["message"] == "order already issued for another key; contact the CA"
    assert len(portal.certs_for_order(oid)) == 1


def test_rejected_install_withdraws_the_certificate(portal):
    old_key, old_cert, cert_id = portal.customer(name="Rejected")
    oid = portal.approved_order(old_cert)
    out = portal.tmp / "rejected.pem"
    res, _ = probe(portal, old_key, old_cert, portal.new_key(), out, then="reject:card write failed", check_rc=1)
    assert res["errno"] == "ECANCELED" and res["verdict"] == "reject" and res["exchanges"] == 2
    serial = cert_serial(out)
    ((row_serial, revoked_at),) = portal.certs_for_order(oid)
    assert row_serial == serial and revoked_at
    assert portal.order_json(cert_id)["state"] == "approved"
    assert cert_id.split(":")[1] not in crl_serials(portal)
    # The order can be renewed again without paying again.
    res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "second.pem", check_rc=0)
    assert res["serial"] != serial
    assert portal.order_json(cert_id)["state"] == "installed"


@pytest.mark.parametrize("step", ["awaiting-payment", "none"])
def test_no_approved_order_gives_the_portals_words(portal, step):
    old_key, old_cert, cert_id = portal.customer()
    if step != "none":
        portal.order(old_cert)
    res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "never.pem", check_rc=1)
    assert res["errno"] == "ENOENT" and res["stage"] == "request" and res["install_calls"] == 0
    assert res["fail_info"] & BAD_REQUEST
    assert res["message"] == "no approved renewal order for this certificate"


def test_old_key_of_another_certificate_is_refused_before_sending(portal):
    # (The portal's own badMessageCheck needs a sender certificate other
    # than the oldCertID, which this client never makes: test_portal_cmp.py
    # covers it with openssl cmp.)
    old_key, old_cert, cert_id = portal.customer(name="Victim")
    oid = portal.approved_order(old_cert)
    other_key, _, _ = portal.customer(name="Mallory")
    res, _ = probe(portal, other_key, old_cert, portal.new_key(), portal.tmp / "stolen.pem", check_rc=1)
    assert res["errno"] == "EINVAL" and res["exchanges"] == 0, res
    assert res["message"] == "the old key does not belong to the old certificate"
    assert portal.certs_for_order(oid) == []


def test_rekey_false_renews_the_same_key(portal):
    old_key, old_cert, cert_id = portal.customer(name="Same key")
    oid = portal.approved_order(old_cert, "--rekey", "no")
    out = portal.tmp / "samekey.pem"
    res, _ = probe(portal, old_key, old_cert, old_key, out, check_rc=0)
    assert pubkey_der(out) == pubkey_der(old_cert)
    assert portal.certs_for_order(oid) == [(res["serial"], 0)]
    assert portal.order_json(cert_id)["state"] == "installed"

    # And a rekey order refuses the old key, in its words.
    old_key2, old_cert2, _ = portal.customer(name="Needs new key")
    portal.approved_order(old_cert2)
    res, _ = probe(portal, old_key2, old_cert2, old_key2, portal.tmp / "no.pem", check_rc=1)
    assert res["errno"] == "EBADRQC" and res["fail_info"] & BAD_CERT_TEMPLATE
    assert res["message"] == "this order requires a new key"


def test_rsa_customer(portal):
    old_key, old_cert, cert_id = portal.customer(alg="rsa", name="RSA")
    portal.approved_order(old_cert)
    res, _ = probe(portal, old_key, old_cert, portal.new_key("rsa"), portal.tmp / "rsa.pem", check_rc=0)
    assert portal.order_json(cert_id)["state"] == "installed"
    assert cert_id.split(":")[1] in crl_serials(portal, "rsa")


def test_untrusted_cmp_signer(portal, tmp_path):
    old_key, old_cert, cert_id = portal.customer()
    oid = portal.approved_order(old_cert)
    other_ca = tmp_path / "other-ca.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", tmp_path / "other-ca.key", "-out", other_ca, "-subj", "/CN=Other CA", "-days", "2"])
    res, _ = probe(portal, old_key, old_cert, portal.new_key(), tmp_path / "x.pem", trusted=other_ca,
                   check_rc=1)
    assert res["errno"] == "EBADMSG" and res["install_calls"] == 0, res
    # The portal issued it, but nothing was installed or confirmed: a
    # client that trusts the right signer resumes as usual.
    assert portal.order_json(cert_id)["state"] == "issued"
    assert len(portal.certs_for_order(oid)) == 1


def test_bad_urls_are_refused_before_sending(portal):
    old_key, old_cert, _ = portal.customer()
    for url in ["http://example.com/cmp", "ftp://127.0.0.1/cmp", "https://user:pw@127.0.0.1/cmp", "not a url"]:
        res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "u.pem", url=url, check_rc=1)
        assert res["errno"] == "EINVAL" and res["exchanges"] == 0 and res["stage"] == "setup"


def insecure_http_build():
    """The build's portal_insecure_http_for_tests option."""
    out = run(["meson", "introspect", "--buildoptions", BUILD]).stdout
    (opt,) = [o for o in json.loads(out) if o["name"] == "portal_insecure_http_for_tests"]
    return opt["value"]


def test_plain_http_to_loopback_only_in_test_builds(portal):
    old_key, old_cert, cert_id = portal.customer(name="Plain HTTP")
    portal.approved_order(old_cert)
    with FakePortal(portal, None, port=FAKE_PORT + 2, tls=False) as relay:
        res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "http.pem",
                       url=f"http://127.0.0.1:{FAKE_PORT + 2}{CMP_PATH}")
    if insecure_http_build():
        assert res["rc"] == 0 and relay.requests == 2, res
        assert portal.order_json(cert_id)["state"] == "installed"
    else:
        assert res["errno"] == "EINVAL" and relay.requests == 0, res


def test_portal_down(portal):
    old_key, old_cert, _ = portal.customer()
    res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "d.pem",
                   url=f"https://127.0.0.1:{DEAD_PORT}{CMP_PATH}", check_rc=1)
    assert res["errno"] == "ECONNREFUSED" and res["stage"] == "request"


class FakePortal:
    """An HTTPS server with the portal's TLS certificate that answers every
    POST as told: (status, content type, body)."""

    def __init__(self, portal, answer, port=FAKE_PORT, tls=True):
        """answer: (status, content type, body), or None to relay to portal."""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                req = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                outer.bodies.append(req)
                if answer == "hang":
                    outer.release.wait(30)
                    return
                if answer is None:
                    status, hdrs, body = portal.request("POST", CMP_PATH, {"Content-Type": "application/pkixcmp"},
                                                        req)
                    ctype = hdrs["content-type"]
                else:
                    status, ctype, body = answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.requests = 0
        self.bodies = []
        self.release = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(portal.dir / "tls.pem", portal.dir / "tls.key")
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("answer,errno_name", [
    ((500, "text/plain", b"internal error"), "EREMOTEIO"),
    ((200, "text/html", b"<html>"), "EBADMSG"),
    ((200, "application/pkixcmp", b"\x30\x03\x02\x01\x00"), "EBADMSG"),
    ((200, "application/pkixcmp", b"\x30" * (1024 * 1024 + 1)), "EFBIG"),
])
def test_bad_answers(portal, answer, errno_name):
    old_key, old_cert, _ = portal.customer()
    with FakePortal(portal, answer) as fake:
        res, _ = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "f.pem",
                       url=f"https://127.0.0.1:{FAKE_PORT}{CMP_PATH}", check_rc=1)
    assert fake.requests == 1
    assert res["errno"] == errno_name and res["stage"] == "request" and res["install_calls"] == 0, res
    if errno_name == "EREMOTEIO":
        assert res["http_status"] == 500 and res["message"] == "the portal answered HTTP 500"


def test_portal_that_never_answers_times_out(portal):
    old_key, old_cert, _ = portal.customer()
    with FakePortal(portal, "hang") as fake:
        start = time.monotonic()
        res, _ = probe_extra(portal, old_key, old_cert, portal.new_key(), portal.tmp / "h.pem", [],
                             url=f"https://127.0.0.1:{FAKE_PORT}{CMP_PATH}", check_rc=1, timeout_ms=1500)
        took = time.monotonic() - start
    assert fake.requests == 1
    assert res["errno"] == "ETIMEDOUT" and res["stage"] == "request", res
    assert 1.4 <= took < 10 and 1400000 <= res["wait_us"] < 3000000


def cert_der(path):
    return ssl.PEM_cert_to_DER_cert(pathlib.Path(path).read_text())


@pytest.mark.parametrize("new_key_confirms", [False, True])
def test_certconf_protection(portal, new_key_confirms):
    """kur carries the old certificate; certConf the old one, or with
    --confirm-with-new-key the new one only (for a card whose old key is
    gone by then), and the portal takes both."""
    old_key, old_cert, cert_id = portal.customer(name="Protection")
    portal.approved_order(old_cert)
    out = portal.tmp / f"prot-{new_key_confirms}.pem"
    with FakePortal(portal, None, port=FAKE_PORT + 1) as relay:
        probe_extra(portal, old_key, old_cert, portal.new_key(), out,
                    ["--confirm-with-new-key"] if new_key_confirms else [],
                    url=f"https://127.0.0.1:{FAKE_PORT + 1}{CMP_PATH}", check_rc=0,
                    env=LSAN_ENV if new_key_confirms else None)
    kur, conf = relay.bodies
    assert der_body_tag(kur) == KUR_TAG and der_body_tag(conf) == CERTCONF_TAG
    old_der, new_der = cert_der(old_cert), cert_der(out)
    assert old_der in kur and new_der not in kur
    assert (new_der in conf, old_der in conf) == ((True, False) if new_key_confirms else (False, True))
    assert portal.order_json(cert_id)["state"] == "installed"


def test_tls_peer_not_trusted(portal, tmp_path):
    old_key, old_cert, _ = portal.customer()
    other = tmp_path / "other.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", tmp_path / "other.key", "-out", other, "-subj", "/CN=Other", "-days", "2"])
    args = [PROBE, "--url", portal.url + CMP_PATH, "--ca-bundle", other, "--trusted", portal.bundle,
            "--old-cert", old_cert, "--old-key", old_key, "--new-key", portal.new_key(), "--cert-out",
            tmp_path / "t.pem"]
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    res = json.loads(p.stdout)
    assert p.returncode == 1 and res["errno"] == "EKEYREJECTED" and res["exchanges"] == 1, res


VALGRIND = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite", "--error-exitcode=99"]


@pytest.mark.parametrize("then,rc", [("accept", 0), ("reject:no room on the card", 1), ("defer", 1)])
def test_under_valgrind(portal, then, rc):
    old_key, old_cert, cert_id = portal.customer(name="Valgrind")
    portal.approved_order(old_cert)
    res, p = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "vg.pem", then=then,
                   wrapper=VALGRIND, timeout=180)
    assert p.returncode == rc, p.stdout + p.stderr
    assert res["install_calls"] == 1


def test_new_key_confirmation_under_valgrind(portal):
    old_key, old_cert, cert_id = portal.customer(name="Valgrind new key")
    portal.approved_order(old_cert)
    res, p = probe_extra(portal, old_key, old_cert, portal.new_key(), portal.tmp / "vg3.pem",
                         ["--confirm-with-new-key"], wrapper=VALGRIND + [f"--suppressions={VALGRIND_SUPP}"],
                         timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert portal.order_json(cert_id)["state"] == "installed"


def test_refusal_under_valgrind(portal):
    old_key, old_cert, _ = portal.customer(name="Valgrind refused")
    res, p = probe(portal, old_key, old_cert, portal.new_key(), portal.tmp / "vg2.pem", wrapper=VALGRIND,
                   timeout=180)
    assert p.returncode == 1 and res["errno"] == "ENOENT", p.stdout + p.stderr


CARD_PROBE = BUILD / "tests" / "tools" / "cmp-card-probe"
DEFAULT_PIN = b"123456"
DEFAULT_MGM_KEY = bytes(range(1, 9)) * 3


@pytest.mark.parametrize("alg,keep", [("ec", False), ("rsa", False), ("ec", True)])
def test_whole_renewal_with_card_keys_and_journal(portal, tmp_path, alg, keep):
    """The daemon's combination: card-backed keys (the virtual card's applet
    in-process), the journal, the CMP client and an install step that
    writes, reads back and test-signs. keep: the finished journal stays,
    to be read here, instead of going to the history."""
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen([str(a) for a in [CARD_PROBE, "--url", portal.url + CMP_PATH, "--ca-bundle",
                                              portal.bundle, "--trusted", portal.bundle, "--state-dir", state,
                                              "--alg", alg, *(["--keep-journal"] if keep else [])]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        old_cert = tmp_path / "old.pem"
        cert_id = portal.admin("issue", "--pubkey", first["old_public_key"], "--subject", "CN=卡,O=Example",
                               "--out", old_cert).stdout.strip()
        oid = portal.approved_order(old_cert)
        out, err = proc.communicate(f"{old_cert} {oid}\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    res = json.loads(out.splitlines()[-1])
    assert res["rc"] == 0 and res["step"] == "done" and res["old_cert"] == cert_id, res
    # The card signed everything: kur and certConf protection with the old
    # key; proof of possession and the install's test signature with the new.
    assert res["old_key_uses"] == 2 and res["new_key_uses"] == 2, res
    ((new_serial, revoked),) = portal.certs_for_order(oid)
    assert not revoked
    assert portal.order_json(cert_id)["state"] == "installed"
    assert cert_id.split(":")[1] in crl_serials(portal, alg)

    if keep:
        journal = state / f"renewal-{oid.encode().hex()}.journal"
        assert sorted(f.name for f in state.iterdir()) == ["old-pub.pem", journal.name]
        assert oct(journal.stat().st_mode & 0o777) == "0o600"
        doc = json.loads(journal.read_text().split("\n", 1)[1])
        assert doc["step"] == "done" and doc["seq"] == 7 and doc["order"] == oid
        recorded = tmp_path / "recorded.pem"
        recorded.write_text(ssl.DER_cert_to_PEM_cert(bytes.fromhex(doc["new_cert"])))
        assert cert_serial(recorded) == new_serial
    else:
        # The journal is gone once the history has the renewal.
        assert sorted(f.name for f in state.iterdir()) == ["history.jsonl", "old-pub.pem"]
        (entry,) = [json.loads(line) for line in (state / "history.jsonl").read_text().splitlines()]
        assert entry["order"] == oid and entry["outcome"] == "done" and entry["new_serial"] == new_serial
        assert entry["old_cert"] == cert_id
    for f in state.iterdir():
        data = f.read_bytes()
        for secret in (DEFAULT_PIN, DEFAULT_MGM_KEY, DEFAULT_MGM_KEY.hex().encode()):
            assert secret not in data, f


def test_refused_renewal_with_card_keys(portal, tmp_path):
    """A renewal the portal refuses (no order) ends as a failed history line
    with the portal's words, without PIN or management key."""
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen([str(a) for a in [CARD_PROBE, "--url", portal.url + CMP_PATH, "--ca-bundle",
                                              portal.bundle, "--trusted", portal.bundle, "--state-dir", state]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        old_cert = tmp_path / "old.pem"
        portal.admin("issue", "--pubkey", first["old_public_key"], "--subject", "CN=No order", "--out", old_cert)
        out, err = proc.communicate(f"{old_cert} R-NONE\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    res = json.loads(out.splitlines()[-1])
    assert res["step"] == "failed" and res["message"] == "no approved renewal order for this certificate"
    (entry,) = [json.loads(line) for line in (state / "history.jsonl").read_text().splitlines()]
    assert entry["outcome"] == "failed" and entry["reason"] == res["message"] and entry["new_serial"] is None
    for f in state.iterdir():
        data = f.read_bytes()
        for secret in (DEFAULT_PIN, DEFAULT_MGM_KEY, DEFAULT_MGM_KEY.hex().encode()):
            assert secret not in data, f
