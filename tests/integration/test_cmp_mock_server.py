# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon's CMP client (daemon/cmp-client.c, driven by
tests/tools/cmp-renew-probe with PEM keys) against an independent peer:
OpenSSL 3.0's mock CMP server (`openssl cmp -port`), over plain HTTP
through a relay that records each message's body type.

What OpenSSL 3.0's mock server can do: it answers every request with the
one certificate given as -rsp_cert, and a kur must name that very
certificate as the old one ("wrong certid" otherwise). So a key update
round trip (kur, kup, certConf, pkiConf) works for a renewal of the same
key (an order with rekey false); for a new key it answers with the old
key's certificate, which the client must refuse (certConf with status
rejection, nothing installed).

The mock server speaks no TLS, so the probe must come from a build with
-Dportal_insecure_http_for_tests=true: $KEYRENEW_BUILD_DIR if it is one,
else one configured and built here, in its insecure-http/ folder."""

import http.client
import http.server
import json
import pathlib
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import BUILD, Portal, cert_serial, der_body_tag, run  # noqa: E402

TOP = pathlib.Path(__file__).resolve().parents[2]
# Our share of the TCP ports: 50000-50099.
MOCK_PORT = 50040
RELAY_PORT = 50041
MOCK_PATH = "pkix/"
# PKIBody tags (RFC 4210 5.1.2), explicitly tagged.
KUR, KUP, CERTCONF, PKICONF, ERROR = 0xa7, 0xa8, 0xb8, 0xb3, 0xb7
BAD_REQUEST = 1 << 2


def insecure_http_build(build):
    out = run(["meson", "introspect", "--buildoptions", build]).stdout
    (opt,) = [o for o in json.loads(out) if o["name"] == "portal_insecure_http_for_tests"]
    return opt["value"]


@pytest.fixture(scope="module")
def probe_path():
    build = BUILD
    if not insecure_http_build(BUILD):
        build = BUILD / "insecure-http"
        if not (build / "build.ninja").exists():
            run(["meson", "setup", build, TOP, "--werror", "-Dportal_insecure_http_for_tests=true"])
        assert insecure_http_build(build)
    subprocess.run(["ninja", "-C", str(build), "tests/tools/cmp-renew-probe"], check=True, capture_output=True,
                   timeout=600)
    return build / "tests" / "tools" / "cmp-renew-probe"


class Relay:
    """Plain HTTP in front of the mock server, keeping each request's and
    answer's body type."""

    def __init__(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                req = self.rfile.read(int(self.headers["Content-Length"]))
                # The 3.0 mock server keeps a transaction (kur, then its
                # certConf) only on a connection kept alive.
                outer.upstream.request("POST", "/" + MOCK_PATH, body=req,
                                       headers={"Content-Type": "application/pkixcmp", "Connection": "keep-alive"})
                rsp = outer.upstream.getresponse()
                body = rsp.read()
                status, ctype = rsp.status, rsp.getheader("Content-Type")
                outer.exchanges.append((der_body_tag(req), der_body_tag(body) if status == 200 else status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.exchanges = []
        self.upstream = http.client.HTTPConnection("127.0.0.1", MOCK_PORT, timeout=20)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", RELAY_PORT), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.upstream.close()


class Mock:
    """`openssl cmp -port`: signs with the portal's EC CMP signer, trusts
    its CAs for the requests' protection, answers with rsp_cert."""

    def __init__(self, portal, rsp_cert):
        self.log = open(portal.tmp / "mock.log", "wb")
        self.proc = subprocess.Popen(
            ["openssl", "cmp", "-port", str(MOCK_PORT), "-max_msgs", "0",
             "-srv_cert", str(portal.dir / "cmp-ec.pem"), "-srv_key", str(portal.dir / "cmp-ec.key"),
             "-srv_trusted", str(portal.bundle), "-rsp_cert", str(rsp_cert)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while b"ACCEPT" not in (portal.tmp / "mock.log").read_bytes():
            assert self.proc.poll() is None and time.monotonic() < deadline, (portal.tmp / "mock.log").read_text()
            time.sleep(0.02)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def bed(tmp_path):
    portal = Portal(tmp_path)
    key, cert, _ = portal.customer(name="Mock Customer")
    mock = Mock(portal, cert)
    relay = Relay()
    yield portal, key, cert, relay
    relay.close()
    mock.close()


def probe(probe_path, portal, old_key, old_cert, new_key, out):
    p = subprocess.run([str(probe_path), "--url", f"http://127.0.0.1:{RELAY_PORT}/{MOCK_PATH}",
                        "--trusted", str(portal.bundle), "--old-cert", str(old_cert), "--old-key", str(old_key),
                        "--new-key", str(new_key), "--cert-out", str(out), "--timeout-ms", "10000"],
                       capture_output=True, text=True, timeout=60)
    (res,) = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return res, p


def test_kur_round_trip_same_key(probe_path, bed):
    portal, key, cert, relay = bed
    out = portal.tmp / "renewed.pem"
    res, p = probe(probe_path, portal, key, cert, key, out)
    assert p.returncode == 0 and res["rc"] == 0, res
    assert (res["stage"], res["verdict"], res["install_calls"], res["exchanges"]) == ("confirm", "accept", 1, 2)
    # kur answered with kup, then certConf (after the install) with pkiConf.
    assert relay.exchanges == [(KUR, KUP), (CERTCONF, PKICONF)]
    # The certificate the mock hands out, written out before certConf.
    assert res["serial"] == cert_serial(cert)
    assert run(["openssl", "x509", "-in", out, "-noout", "-fingerprint", "-sha256"]).stdout == \
        run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]).stdout


def test_kur_with_new_key_is_refused_by_the_client(probe_path, bed):
    """The 3.0 mock answers a re-key with the old key's certificate: the
    client says no in its certConf and installs nothing."""
    portal, key, cert, relay = bed
    out = portal.tmp / "never.pem"
    res, p = probe(probe_path, portal, key, cert, portal.new_key(), out)
    assert p.returncode != 0 and res["errno"] == "ECANCELED", res
    assert "public key in new certificate does not match" in res["message"], res
    assert (res["install_calls"], res["serial"]) == (0, None)
    assert relay.exchanges[0] == (KUR, KUP)
    assert relay.exchanges[1][0] == CERTCONF
    assert not out.exists()


def test_kur_naming_another_certificate_is_refused(probe_path, bed):
    portal, _, _, relay = bed
    key, cert, _ = portal.customer(name="Someone Else")
    res, p = probe(probe_path, portal, key, cert, key, portal.tmp / "other.pem")
    assert p.returncode != 0 and res["stage"] == "request", res
    assert (res["pki_status"], res["fail_info"], res["text"]) == (2, BAD_REQUEST, "wrong certid"), res
    assert res["install_calls"] == 0 and res["exchanges"] == 1
    assert relay.exchanges == [(KUR, ERROR)]
