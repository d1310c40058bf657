# SPDX-License-Identifier: GPL-2.0-or-later
"""The reference portal's renewal status endpoint, order pages and admin
command (docs/portal-protocol.md part 1, tests/portal/README.md), over real
TLS verified against the portal's test CA."""

import hashlib
import json
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import Portal, run  # noqa: E402

UNKNOWN_ISSUER = "0" * 63 + "1"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    p = Portal(tmp_path_factory.mktemp("portal-status"))
    p.start()
    yield p
    p.stop()


def test_tls_is_verified_against_the_test_ca(portal):
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", portal.port), timeout=10) as raw:
            with portal.tls_context().wrap_socket(raw, server_hostname=host) as tls:
                subject = dict(x[0] for x in tls.getpeercert()["subject"])
                issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
        assert subject["commonName"] == "keyrenew test portal"
        assert issuer["commonName"] == "keyrenew Test CA (EC)"
    # Without the test CA (the system's bundle only) the portal is not trusted.
    with socket.create_connection(("127.0.0.1", portal.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    # A host name that is not in the certificate is refused too.
    with socket.create_connection(("127.0.0.1", portal.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            portal.tls_context().wrap_socket(raw, server_hostname="portal.example.com")


def test_known_unknown_and_no_order(portal):
    _, _, cert_id = portal.customer()
    issuer = cert_id.split(":")[0]
    stranger = f"{UNKNOWN_ISSUER}:1a2b"
    code, hdrs, body = portal.status(cert_id, stranger)
    assert code == 200
    assert int(hdrs["x-portal-time-us"]) >= 0
    doc = json.loads(body)
    assert doc["version"] == 1
    assert doc["poll_interval"] == 21600
    by_cert = {e["cert"]: e for e in doc["certificates"]}
    assert by_cert == {
        cert_id: {"cert": cert_id, "known": True, "order": None},
        stranger: {"cert": stranger, "known": False, "order": None},
    }
    # Any serial under this portal's issuer is "known": the CA issued it.
    doc = portal.status_json(f"{issuer}:77")
    assert doc["certificates"] == [{"cert": f"{issuer}:77", "known": True, "order": None}]


def test_issuer_hash_is_sha256_of_the_issuer_name(portal):
    _, cert, cert_id = portal.customer()
    cert_der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                              capture_output=True, check=True).stdout
    parsed = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-i"], input=cert_der,
                            capture_output=True, check=True).stdout.decode().splitlines()
    # In tbsCertificate (depth 1) the issuer Name is the fourth element at
    # depth 2: after the [0] version, the serial and the signature algorithm.
    depth2 = [line for line in parsed if "d=2 " in line]
    issuer = depth2[3]
    assert "SEQUENCE" in issuer
    offset = int(issuer.split(":")[0])
    hl = int(re.search(r"hl=\s*(\d+)", issuer).group(1))
    length = int(re.search(r" l=\s*(\d+)", issuer).group(1))
    name_der = cert_der[offset:offset + hl + length]
    assert cert_id.split(":")[0] == hashlib.sha256(name_der).hexdigest()


def test_order_states_and_their_fields(portal):
    _, cert, cert_id = portal.customer()
    oid = portal.order(cert, "--review", "--rekey", "no", "--validity-days", "730")
    assert re.fullmatch(r"R\d{4}-\d{6}", oid)

    order = portal.order_json(cert_id)
    assert order["id"] == oid
    assert order["state"] == "awaiting-payment"
    assert order["rekey"] is False
    assert order["validity_days"] == 730
    assert order["page"] == f"{portal.url}/orders/{oid}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", order["updated"])
    assert not {"cmp", "reject_reason", "not_after"} & order.keys()

    assert portal.admin("order", "pay", oid).stdout.split() == [oid, "under-review"]
    order = portal.order_json(cert_id)
    assert order["state"] == "under-review"
    assert not {"cmp", "reject_reason", "not_after"} & order.keys()

    assert portal.admin("order", "approve", oid).stdout.split() == [oid, "approved"]
    order = portal.order_json(cert_id)
    assert order["state"] == "approved"
    assert order["cmp"] == f"{portal.url}/.well-known/cmp/p/renew"
    assert not {"reject_reason", "not_after"} & order.keys()

    # The page the tray opens.
    code, hdrs, body = portal.get(f"/orders/{oid}")
    assert code == 200
    assert hdrs["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert f"<h1>Renewal order {oid}</h1>" in page
    assert '<dd id="state">approved</dd>' in page
    code, _, _ = portal.get("/orders/R1999-000000")
    assert code == 404


def test_realtime_order_is_approved_on_payment(portal):
    _, cert, cert_id = portal.customer()
    oid = portal.order(cert)
    assert portal.admin("order", "pay", oid).stdout.split() == [oid, "approved"]
    order = portal.order_json(cert_id)
    assert order["state"] == "approved"
    assert order["rekey"] is True
    assert order["validity_days"] == 365


def test_chinese_reject_reason_round_trip(portal):
    _, cert, cert_id = portal.customer(name="张三")
    oid = portal.order(cert, "--review")
    portal.admin("order", "pay", oid)
    reason = "营业执照复印件不清晰，请重新上传。<b>R&D</b> \"quoted\""
    assert portal.admin("order", "reject", oid, "--reason", reason).stdout.split() == [oid, "rejected"]

    order = portal.order_json(cert_id)
    assert order["state"] == "rejected"
    assert order["reject_reason"] == reason
    assert "cmp" not in order

    shown = json.loads(portal.admin("order", "show", oid, "--json").stdout)
    assert shown["reject_reason"] == reason
    assert f"reject reason  {reason}" in portal.admin("order", "show", oid).stdout

    _, _, body = portal.get(f"/orders/{oid}")
    page = body.decode("utf-8")
    assert ('<dd id="reject-reason">营业执照复印件不清晰，请重新上传。&lt;b&gt;R&amp;D&lt;/b&gt; '
            "&quot;quoted&quot;</dd>") in page

    # A rejected order makes room for a new one for the same certificate.
    new_oid = portal.order(cert)
    assert new_oid != oid
    assert portal.order_json(cert_id)["id"] == new_oid


def test_etag_and_not_modified(portal):
    _, cert, cert_id = portal.customer()
    oid = portal.order(cert)
    code, hdrs, body = portal.status(cert_id)
    assert code == 200
    etag = hdrs["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    code, hdrs, body = portal.status(cert_id, headers={"If-None-Match": etag})
    assert code == 304
    assert body == b""
    assert hdrs["etag"] == etag
    assert "x-portal-time-us" in hdrs

    # Another set of certificates, another answer.
    _, h1, _ = portal.status(cert_id, f"{UNKNOWN_ISSUER}:5")
    assert h1["etag"] != etag

    portal.admin("order", "pay", oid)
    code, hdrs, body = portal.status(cert_id, headers={"If-None-Match": etag})
    assert code == 200
    assert hdrs["etag"] != etag
    assert json.loads(body)["certificates"][0]["order"]["state"] == "approved"


@pytest.mark.parametrize("query, fragment", [
    ("", "no cert parameter"),
    ("cert=", "is not ISSUER_HASH:SERIAL"),
    ("cert=abc:1", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'A' * 64}:1", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'a' * 64}:01", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'a' * 64}:-0", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'a' * 64}:", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'a' * 64}:1A", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'a' * 64}1", "is not ISSUER_HASH:SERIAL"),
    (f"cert={'a' * 64}:{'1' * 41}", "is not ISSUER_HASH:SERIAL"),
    ("&".join(f"cert={'a' * 64}:{i + 1:x}" for i in range(65)), "more than 64"),
])
def test_bad_queries_get_400(portal, query, fragment):
    code, hdrs, body = portal.get(f"/renewals?{query}")
    assert code == 400
    assert hdrs["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["error"] == "bad-cert"
    assert fragment in doc["message"]


def test_64_certificates_and_duplicates(portal):
    ids = [f"{UNKNOWN_ISSUER}:{i + 1:x}" for i in range(64)]
    # Duplicates do not count against the 64 and come back once.
    code, _, body = portal.get("/renewals?" + "&".join(f"cert={c}" for c in ids + ids[:5]))
    assert code == 200
    doc = json.loads(body)
    assert sorted(e["cert"] for e in doc["certificates"]) == sorted(ids)
    assert len(doc["certificates"]) == 64
    # Negative and zero serials are written as the protocol says.
    doc = portal.status_json(f"{UNKNOWN_ISSUER}:-1f", f"{UNKNOWN_ISSUER}:0")
    assert len(doc["certificates"]) == 2


def test_fault_injection_with_retry_after(portal):
    _, _, cert_id = portal.customer()
    try:
        portal.admin("fault", "set", "--status", "503", "--retry-after", "120", "--count", "2")
        for _ in range(2):
            code, hdrs, body = portal.status(cert_id)
            assert code == 503
            assert hdrs["retry-after"] == "120"
            assert json.loads(body)["error"] == "unavailable"
        code, _, _ = portal.status(cert_id)
        assert code == 200

        portal.admin("fault", "set", "--status", "429")
        for _ in range(3):
            code, hdrs, _ = portal.status(cert_id)
            assert code == 429
            assert "retry-after" not in hdrs
    finally:
        portal.admin("fault", "clear")
    code, _, _ = portal.status(cert_id)
    assert code == 200


def test_fault_injection_500_broken_bodies_and_delay(portal):
    _, _, cert_id = portal.customer()
    try:
        portal.admin("fault", "set", "--status", "500", "--count", "1")
        code, hdrs, body = portal.status(cert_id)
        assert code == 500
        assert "retry-after" not in hdrs
        assert json.loads(body)["error"] == "internal"
        assert portal.status(cert_id)[0] == 200

        portal.admin("fault", "set", "--body", "garbage", "--count", "1")
        code, _, body = portal.status(cert_id)
        assert code == 200
        with pytest.raises(ValueError):
            json.loads(body)
        assert portal.status_json(cert_id)["certificates"]

        # Twice a client's 1 MiB cap, JSON up to the cap.
        portal.admin("fault", "set", "--body", "oversized")
        code, _, body = portal.status(cert_id)
        assert code == 200
        assert len(body) == 2 * 1024 * 1024
        assert json.loads(body)["certificates"] == []

        # Late but right; the fault's other parts are gone with set.
        portal.admin("fault", "set", "--delay-ms", "700", "--count", "1")
        t0 = time.monotonic()
        doc = portal.status_json(cert_id)
        assert 0.7 <= time.monotonic() - t0 < 5
        assert doc["certificates"][0]["cert"] == cert_id
        t0 = time.monotonic()
        portal.status_json(cert_id)
        assert time.monotonic() - t0 < 0.5
    finally:
        portal.admin("fault", "clear")
    assert portal.status(cert_id)[0] == 200
    for bad in (["--status", "404"], ["--body", "empty"], ["--delay-ms", "0"], ["--delay-ms", "60001"],
                ["--status", "500", "--body", "garbage"], ["--status", "500", "--retry-after", "5"],
                ["--body", "garbage", "--retry-after", "5"], ["--count", "2"], []):
        r = portal.admin("fault", "set", *bad, check=False)
        assert r.returncode == 2, (bad, r.stderr)
        assert r.stderr.strip(), bad


def test_poll_interval_setting(portal):
    _, _, cert_id = portal.customer()
    try:
        portal.admin("poll-interval", "90")
        assert portal.status_json(cert_id)["poll_interval"] == 90
        bad = portal.admin("poll-interval", "59", check=False)
        assert bad.returncode == 2
    finally:
        portal.admin("poll-interval", "21600")


def test_wrong_methods_and_paths(portal):
    code, _, _ = portal.request("POST", "/renewals?cert=x", body=b"")
    assert code == 405
    code, _, _ = portal.get("/.well-known/cmp/p/renew")
    assert code == 405
    code, _, _ = portal.get("/nothing-here")
    assert code == 404
    code, _, _ = portal.get("/crl/dsa")
    assert code == 404


def test_admin_refuses_wrong_steps_with_clear_messages(portal):
    _, cert, _ = portal.customer()
    oid = portal.order(cert, "--review")

    p = portal.admin("order", "approve", oid, check=False)
    assert p.returncode == 4
    assert p.stderr.strip() == f"keyrenew-portal-admin: order {oid} is awaiting payment; pay it first"
    p = portal.admin("order", "reject", oid, "--reason", "x", check=False)
    assert (p.returncode, "pay it first" in p.stderr) == (4, True)

    portal.admin("order", "pay", oid)
    p = portal.admin("order", "pay", oid, check=False)
    assert p.returncode == 4
    assert f"order {oid} is already paid (it is under-review)" in p.stderr

    p = portal.admin("order", "create", "--cert", cert, check=False)
    assert p.returncode == 4
    assert f"the certificate already has order {oid} (under-review)" in p.stderr

    p = portal.admin("order", "reject", oid, check=False)
    assert p.returncode == 2
    p = portal.admin("order", "reject", oid, "--reason", "字" * 1025, check=False)
    assert p.returncode == 2
    assert "1025 characters" in p.stderr
    p = portal.admin("order", "reject", oid, "--reason", "bad\x01control", check=False)
    assert p.returncode == 2
    assert portal.admin("order", "reject", oid, "--reason", "字" * 1024).returncode == 0

    p = portal.admin("order", "approve", oid, check=False)
    assert p.returncode == 4
    assert f"order {oid} was rejected; create a new order" in p.stderr

    p = portal.admin("order", "show", "R2000-999999", check=False)
    assert p.returncode == 3
    assert "no order R2000-999999" in p.stderr
    p = portal.admin("order", "frobnicate", oid, check=False)
    assert p.returncode == 2


def test_admin_refuses_a_certificate_from_another_ca(portal, tmp_path):
    key = tmp_path / "self.key"
    cert = tmp_path / "self.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", cert, "-subj", "/CN=Elsewhere", "-days", "2"])
    p = portal.admin("order", "create", "--cert", cert, check=False)
    assert p.returncode == 3
    assert "was not issued by this portal's CAs" in p.stderr


def test_admin_list(portal):
    _, cert, cert_id = portal.customer()
    oid = portal.order(cert)
    orders = json.loads(portal.admin("order", "list", "--json").stdout)
    mine = [o for o in orders if o["id"] == oid]
    assert len(mine) == 1
    assert mine[0]["cert"] == cert_id
    assert mine[0]["state"] == "awaiting-payment"
    assert any(line.startswith(f"{oid}  awaiting-payment") for line in
               portal.admin("order", "list").stdout.splitlines())


def test_rsa_tls_and_clean_stop(tmp_path):
    p = Portal(tmp_path, ca_alg="rsa2048")
    p.start(extra=["--poll-interval", "300"])
    try:
        with socket.create_connection(("127.0.0.1", p.port), timeout=10) as raw:
            with p.tls_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
        assert issuer["commonName"] == "keyrenew Test CA (RSA)"
        _, _, cert_id = p.customer(alg="rsa")
        assert p.status_json(cert_id)["poll_interval"] == 300
    finally:
        assert p.stop() == 0
    assert "stopping on signal 15" in p.stderr()
