# SPDX-License-Identifier: GPL-2.0-or-later
"""The reference portal's CMP server (docs/portal-protocol.md parts 2 and 3)
against OpenSSL's `openssl cmp` client, a peer we did not write: kur with
certConf, its refusals with the failInfo the protocol names, the retry
rules, the CRL, rr. Client keys are PEM files here; the card-backed client
is keyrenewd's."""

import http.client
import http.server
import pathlib
import re
import sys
import threading

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import CMP_PATH, Portal, cert_serial, der_body_tag, pubkey_der, run  # noqa: E402

CERTCONF_TAG = 0xb8
KUR_TAG = 0xa7


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    p = Portal(tmp_path_factory.mktemp("portal-cmp"))
    p.start()
    yield p
    p.stop()


def crl_serials(portal, alg="ec"):
    """{serial: reason} of the portal's CRL for that CA."""
    text = portal.crl_text(alg)
    entries = re.findall(r"Serial Number: ([0-9A-F]+)\s+Revocation Date: [^\n]+\n"
                         r"\s+CRL entry extensions:\s+X509v3 CRL Reason Code: \n\s+(\S[^\n]*)", text)
    return {s.lower().lstrip("0"): reason.strip() for s, reason in entries}


def refused(result, fail_info, text):
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert f"PKIFailureInfo: {fail_info}" in out, out
    assert f'StatusString: "{text}"' in out, out


@pytest.mark.parametrize("alg", ["ec", "rsa"])
def test_kur_renews_and_certconf_revokes_the_old_certificate(portal, alg):
    old_key, old_cert, cert_id = portal.customer(alg=alg, name=f"Renew {alg}")
    oid = portal.approved_order(old_cert, "--validity-days", "400")
    new_key = portal.new_key(alg)
    new_cert = portal.tmp / f"renewed-{alg}.pem"
    old_serial = cert_id.split(":")[1]
    assert old_serial not in crl_serials(portal, alg)

    res = portal.kur(old_key, old_cert, new_key, new_cert)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "received KUP" in out and "received PKICONF" in out

    # A real certificate from the test CA, for the new key, same subject.
    run(["openssl", "verify", "-CAfile", portal.ca[alg], new_cert])
    assert pubkey_der(new_cert) == pubkey_der(new_key, private=True)
    subject = ["openssl", "x509", "-noout", "-subject", "-in"]
    assert run(subject + [new_cert]).stdout == run(subject + [old_cert]).stdout
    days = run(["openssl", "x509", "-noout", "-checkend", str(399 * 86400), "-in", new_cert], check=False)
    assert days.returncode == 0
    ku = ["openssl", "x509", "-noout", "-ext", "keyUsage,extendedKeyUsage", "-in"]
    assert run(ku + [new_cert]).stdout == run(ku + [old_cert]).stdout

    new_serial = cert_serial(new_cert)
    assert portal.certs_for_order(oid) == [(new_serial, 0)]
    order = portal.order_json(cert_id)
    assert order["state"] == "installed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", order["not_after"])
    assert "cmp" not in order
    assert crl_serials(portal, alg)[old_serial] == "Superseded"
    assert new_serial not in crl_serials(portal, alg)

    # The order is done: no second certificate, whatever the client sends.
    res = portal.kur(old_key, old_cert, portal.new_key(alg), portal.tmp / f"again-{alg}.pem")
    refused(res, "badRequest", "no approved renewal order for this certificate")
    assert len(portal.certs_for_order(oid)) == 1
    # A client that lost the pkiConf asks again with its key: the same
    # certificate, and its certConf changes nothing.
    again = portal.tmp / f"again-same-{alg}.pem"
    res = portal.kur(old_key, old_cert, new_key, again)
    assert res.returncode == 0, res.stdout + res.stderr
    assert cert_serial(again) == new_serial
    assert portal.certs_for_order(oid) == [(new_serial, 0)]
    assert portal.order_json(cert_id)["state"] == "installed"
    assert new_serial not in crl_serials(portal, alg)


@pytest.mark.parametrize("step", ["awaiting-payment", "under-review", "rejected", "none"])
def test_kur_without_an_approved_order_is_refused(portal, step):
    old_key, old_cert, cert_id = portal.customer()
    oid = None
    if step != "none":
        oid = portal.order(old_cert, "--review")
    if step in ("under-review", "rejected"):
        portal.admin("order", "pay", oid)
    if step == "rejected":
        portal.admin("order", "reject", oid, "--reason", "证件过期")
    res = portal.kur(old_key, old_cert, portal.new_key(), portal.tmp / "never.pem")
    refused(res, "badRequest", "no approved renewal order for this certificate")
    if oid:
        assert portal.certs_for_order(oid) == []
        assert portal.order_json(cert_id)["state"] == step
    assert cert_id.split(":")[1] not in crl_serials(portal)


def test_kur_must_be_signed_by_the_old_key(portal):
    old_key, old_cert, cert_id = portal.customer(name="Victim")
    oid = portal.approved_order(old_cert)
    # Another customer of the same CA signs a request for the victim's order.
    other_key, other_cert, _ = portal.customer(name="Mallory")
    res = portal.cmp("-cmd", "kur", "-cert", other_cert, "-key", other_key, "-oldcert", old_cert,
                     "-newkey", portal.new_key(), "-certout", portal.tmp / "stolen.pem")
    refused(res, "badMessageCheck", "request not signed by the certificate being renewed")
    assert portal.certs_for_order(oid) == []
    assert portal.order_json(cert_id)["state"] == "approved"


def test_rekey_is_enforced(portal):
    old_key, old_cert, cert_id = portal.customer()
    oid = portal.approved_order(old_cert)  # rekey: yes by default
    res = portal.kur(old_key, old_cert, old_key, portal.tmp / "samekey.pem")
    refused(res, "badCertTemplate", "this order requires a new key")
    assert portal.certs_for_order(oid) == []

    old_key2, old_cert2, cert_id2 = portal.customer()
    oid2 = portal.approved_order(old_cert2, "--rekey", "no")
    res = portal.kur(old_key2, old_cert2, portal.new_key(), portal.tmp / "newkey.pem")
    refused(res, "badCertTemplate", "this order renews the certificate for its current key")
    out = portal.tmp / "samekey-ok.pem"
    res = portal.kur(old_key2, old_cert2, old_key2, out)
    assert res.returncode == 0, res.stderr
    assert pubkey_der(out) == pubkey_der(old_cert2)
    assert portal.order_json(cert_id2)["state"] == "installed"


def test_bad_proof_of_possession(portal):
    old_key, old_cert, cert_id = portal.customer()
    oid = portal.approved_order(old_cert)
    # -popo 0 is RAVerified, which only an RA may claim.
    res = portal.kur(old_key, old_cert, portal.new_key(), portal.tmp / "pop.pem", "-popo", "0")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "PKIFailureInfo: badPOP" in out, out
    assert portal.certs_for_order(oid) == []


class DroppingProxy:
    """Plain HTTP to the portal's HTTPS, dropping the first certConf as a
    lost connection would: the client never learns whether it arrived."""

    def __init__(self, portal):
        self.portal = portal
        self.dropped = 0
        self.seen = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                tag = der_body_tag(body)
                proxy.seen.append(tag)
                if tag == CERTCONF_TAG and proxy.dropped == 0:
                    proxy.dropped += 1
                    self.close_connection = True
                    return
                status, hdrs, answer = proxy.portal.request(
                    "POST", CMP_PATH, headers={"Content-Type": "application/pkixcmp"}, body=body)
                self.send_response(status)
                self.send_header("Content-Type", hdrs["content-type"])
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_interrupted_renewal_is_resumed_with_the_same_certificate(portal):
    old_key, old_cert, cert_id = portal.customer(name="Interrupted")
    oid = portal.approved_order(old_cert)
    new_key = portal.new_key()
    first = portal.tmp / "first.pem"
    old_serial = cert_id.split(":")[1]

    proxy = DroppingProxy(portal)
    try:
        res = portal.kur(old_key, old_cert, new_key, first, server=proxy.address)
    finally:
        proxy.close()
    assert res.returncode != 0
    assert proxy.seen == [KUR_TAG, CERTCONF_TAG]

    # Issued, not confirmed: the old certificate must stay valid.
    rows = portal.certs_for_order(oid)
    assert len(rows) == 1
    issued_serial = rows[0][0]
    order = portal.order_json(cert_id)
    assert order["state"] == "issued"
    assert order["cmp"].endswith("/.well-known/cmp/p/renew")
    assert "not_after" in order
    assert old_serial not in crl_serials(portal)

    # Another key for an issued order: refused, nothing new issued.
    res = portal.kur(old_key, old_cert, portal.new_key(), portal.tmp / "other.pem")
    refused(res, "badRequest", "order already issued for another key; contact the CA")
    assert len(portal.certs_for_order(oid)) == 1

    # The client resumes with the key it journaled: the same certificate.
    again = portal.tmp / "again.pem"
    res = portal.kur(old_key, old_cert, new_key, again)
    assert res.returncode == 0, res.stderr
    assert cert_serial(again) == issued_serial
    assert portal.certs_for_order(oid) == [(issued_serial, 0)]
    assert portal.order_json(cert_id)["state"] == "installed"
    assert crl_serials(portal)[old_serial] == "Superseded"


def test_client_rejecting_the_certificate_withdraws_it(portal):
    old_key, old_cert, cert_id = portal.customer(name="Picky")
    oid = portal.approved_order(old_cert)
    new_key = portal.new_key()
    # The EC certificate does not verify against the RSA CA: the client
    # answers certConf with status rejection.
    res = portal.kur(old_key, old_cert, new_key, portal.tmp / "unwanted.pem",
                     "-out_trusted", portal.ca["rsa"])
    assert res.returncode != 0
    rows = portal.certs_for_order(oid)
    assert len(rows) == 1 and rows[0][1] != 0
    withdrawn = rows[0][0]
    order = portal.order_json(cert_id)
    assert order["state"] == "approved"
    crl = crl_serials(portal)
    assert crl[withdrawn] == "Cessation Of Operation"
    assert cert_id.split(":")[1] not in crl

    # Paid once, renewed now.
    good = portal.tmp / "wanted.pem"
    res = portal.kur(old_key, old_cert, new_key, good, "-out_trusted", portal.ca["ec"])
    assert res.returncode == 0, res.stderr
    assert cert_serial(good) != withdrawn
    assert portal.order_json(cert_id)["state"] == "installed"


def test_repeated_certconf_gets_pkiconf_again(portal):
    old_key, old_cert, cert_id = portal.customer(name="Repeat")
    portal.approved_order(old_cert)
    reqs = [portal.tmp / "req-kur.der", portal.tmp / "req-certconf.der"]
    rsps = [portal.tmp / "rsp-kup.der", portal.tmp / "rsp-pkiconf.der"]
    res = portal.kur(old_key, old_cert, portal.new_key(), portal.tmp / "rep.pem",
                     "-reqout", ",".join(map(str, reqs)), "-rspout", ",".join(map(str, rsps)))
    assert res.returncode == 0, res.stderr
    assert portal.order_json(cert_id)["state"] == "installed"
    for req, rsp in zip(reqs, rsps):
        status, hdrs, answer = portal.request(
            "POST", CMP_PATH, headers={"Content-Type": "application/pkixcmp"}, body=req.read_bytes())
        assert status == 200
        assert hdrs["content-type"] == "application/pkixcmp"
        assert answer == rsp.read_bytes()
    assert portal.order_json(cert_id)["state"] == "installed"


def test_rr_revokes_only_for_the_holder(portal):
    key, cert, cert_id = portal.customer(name="Leaver")
    serial = cert_id.split(":")[1]
    other_key, other_cert, _ = portal.customer(name="Someone else")
    res = portal.cmp("-cmd", "rr", "-cert", other_cert, "-key", other_key, "-oldcert", cert)
    refused(res, "badMessageCheck", "request not signed by the certificate to revoke")
    assert serial not in crl_serials(portal)

    res = portal.cmp("-cmd", "rr", "-cert", cert, "-key", key, "-oldcert", cert)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "revocation accepted" in res.stdout + res.stderr
    assert crl_serials(portal)[serial] == "Unspecified"

    res = portal.cmp("-cmd", "rr", "-cert", cert, "-key", key, "-oldcert", cert)
    refused(res, "certRevoked", "the certificate is already revoked")
    # A revoked certificate cannot be renewed.
    p = portal.admin("order", "create", "--cert", cert, check=False)
    assert p.returncode == 4 and "is revoked" in p.stderr


def test_renewing_a_revoked_certificate_is_refused(portal):
    key, cert, cert_id = portal.customer(name="Revoked first")
    oid = portal.approved_order(cert)
    res = portal.cmp("-cmd", "rr", "-cert", cert, "-key", key, "-oldcert", cert)
    assert res.returncode == 0, res.stderr
    res = portal.kur(key, cert, portal.new_key(), portal.tmp / "late.pem")
    refused(res, "certRevoked", "the certificate to renew is no longer valid")
    assert portal.certs_for_order(oid) == []


def test_cmp_http_errors(portal):
    status, _, _ = portal.request("POST", CMP_PATH, headers={"Content-Type": "text/plain"}, body=b"x")
    assert status == 415
    status, _, body = portal.request("POST", CMP_PATH, headers={"Content-Type": "application/pkixcmp"},
                                     body=b"\x30\x03\x02\x01\x00")
    assert status == 400
    assert b"not a DER PKIMessage" in body
    status, _, _ = portal.request("POST", CMP_PATH, headers={"Content-Type": "application/pkixcmp"},
                                  body=b"\x00" * (1024 * 1024 + 1))
    assert status == 413


def test_ir_is_not_offered(portal):
    key, cert, _ = portal.customer(name="Newcomer")
    res = portal.cmp("-cmd", "ir", "-cert", cert, "-key", key, "-newkey", portal.new_key(),
                     "-subject", "/CN=Newcomer", "-certout", portal.tmp / "ir.pem")
    refused(res, "badRequest", "this portal only renews certificates: send kur")


def test_short_session_under_valgrind(tmp_path):
    p = Portal(tmp_path)
    p.start(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                     "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                     "--quiet"], timeout=120)
    try:
        old_key, old_cert, cert_id = p.customer()
        p.approved_order(old_cert)
        assert p.status_json(cert_id)["certificates"][0]["order"]["state"] == "approved"
        res = p.kur(old_key, old_cert, p.new_key(), tmp_path / "vg.pem")
        assert res.returncode == 0, res.stderr
        assert "Superseded" in p.crl_text()
        code, _, _ = p.get("/renewals?cert=bad")
        assert code == 400
    finally:
        code = p.stop(check=False, timeout=120)
    assert code == 0, p.stderr()
