# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs the reference portal for tests: a portal directory made with
keyrenew-portal-admin, the server on a free port of 127.0.0.1, HTTPS
requests verified against the portal's own test CAs, customer keys and
certificates, and the `openssl cmp` client (OpenSSL's, a peer we did not
write) pointed at it.

The programs come from $KEYRENEW_BUILD_DIR/tests/portal (default: build/
at the top of the checkout)."""

import http.client
import json
import os
import pathlib
import select
import signal
import sqlite3
import ssl
import subprocess
import time

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", TOP / "build"))
SERVER = BUILD / "tests" / "portal" / "keyrenew-portal"
ADMIN = BUILD / "tests" / "portal" / "keyrenew-portal-admin"
CMP_PATH = "/.well-known/cmp/p/renew"


def run(args, check=True, **kw):
    """Runs a program, returns its CompletedProcess with text output."""
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


class Portal:
    """A portal directory and, once started, its server."""

    def __init__(self, tmp, ca_alg="ecp256"):
        self.tmp = pathlib.Path(tmp)
        self.dir = self.tmp / "portal"
        self.proc = None
        self.port = None
        self.url = None
        self.stderr_path = self.tmp / "portal.stderr"
        run([ADMIN, "init", self.dir, "--ca-alg", ca_alg, "--days", "30"])
        self.bundle = self.dir / "ca-bundle.pem"
        self.ca = {"ec": self.dir / "ca-ec.pem", "rsa": self.dir / "ca-rsa.pem"}
        self.serial_counter = 0

    # --- the server -----------------------------------------------------

    def start(self, wrapper=(), extra=(), timeout=10.0):
        """Starts the server on a free port; returns once it is listening."""
        self.stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [*wrapper, str(SERVER), "--dir", str(self.dir), "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=self.stderr_file)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop(check=False)
                raise AssertionError(f"the portal did not start: {self.stderr()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    continue
                line += chunk
        text = line.decode().strip()
        assert text.startswith("listening on https://127.0.0.1:"), text
        self.url = text.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, check=True, timeout=60):
        """SIGTERM to our server only; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stdout.close()
        self.stderr_file.close()
        self.proc = None
        if check:
            assert code == 0, f"the portal exited {code}: {self.stderr()}"
        return code

    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    # --- HTTPS ----------------------------------------------------------

    def tls_context(self):
        return ssl.create_default_context(cafile=str(self.bundle))

    def request(self, method, path, headers=None, body=None, host="127.0.0.1"):
        """Returns (status, headers as a dict with lower-case names, body)."""
        conn = http.client.HTTPSConnection(host, self.port, context=self.tls_context(), timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            rsp = conn.getresponse()
            data = rsp.read()
            return rsp.status, {k.lower(): v for k, v in rsp.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def status(self, *cert_ids, headers=None):
        query = "&".join(f"cert={c}" for c in cert_ids)
        return self.get(f"/renewals?{query}", headers)

    def status_json(self, *cert_ids):
        code, hdrs, body = self.status(*cert_ids)
        assert code == 200, (code, body)
        assert hdrs["content-type"] == "application/json"
        return json.loads(body)

    def order_json(self, cert_id):
        doc = self.status_json(cert_id)
        (entry,) = doc["certificates"]
        assert entry["cert"] == cert_id
        return entry["order"]

    def crl_text(self, alg="ec"):
        code, hdrs, body = self.get(f"/crl/{alg}")
        assert code == 200, (code, body)
        assert hdrs["content-type"] == "application/pkix-crl"
        crl = self.tmp / f"crl-{alg}.der"
        crl.write_bytes(body)
        # The CRL must be signed by the CA it names.
        run(["openssl", "crl", "-inform", "DER", "-in", crl, "-CAfile", self.ca[alg], "-noout"])
        return run(["openssl", "crl", "-inform", "DER", "-in", crl, "-text", "-noout"]).stdout

    # --- administration -------------------------------------------------

    def admin(self, *args, check=True):
        env = dict(os.environ, KEYRENEW_PORTAL_DIR=str(self.dir))
        return run([ADMIN, *args], check=check, env=env)

    def new_key(self, alg="ec"):
        self.serial_counter += 1
        key = self.tmp / f"key{self.serial_counter}.pem"
        if alg == "ec":
            run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        else:
            run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key])
        return key

    def customer(self, alg="ec", name="Test Customer"):
        """A key and a certificate by this portal's CA: (key, cert, cert_id)."""
        key = self.new_key(alg)
        cert = key.with_suffix(".crt")
        cert_id = self.admin("issue", "--pubkey", key, "--subject", f"CN={name},O=Example",
                             "--out", cert).stdout.strip()
        return key, cert, cert_id

    def order(self, cert, *opts):
        return self.admin("order", "create", "--cert", cert, *opts).stdout.strip()

    def approved_order(self, cert, *opts):
        oid = self.order(cert, *opts)
        assert self.admin("order", "pay", oid).stdout.split() == [oid, "approved"]
        return oid

    def db(self, sql, *params):
        with sqlite3.connect(self.dir / "portal.db", timeout=10) as conn:
            return conn.execute(sql, params).fetchall()

    def certs_for_order(self, oid):
        return self.db("SELECT serial, revoked_at FROM certs WHERE order_id = ?", oid)

    # --- CMP with the openssl client -------------------------------------

    def cmp(self, *args, server=None, tls=True, check=False):
        """openssl cmp against the portal (or server=HOST:PORT over plain HTTP)."""
        base = ["openssl", "cmp", "-server", server or f"127.0.0.1:{self.port}", "-path", CMP_PATH.lstrip("/"),
                "-trusted", self.bundle, "-msg_timeout", "20", "-total_timeout", "40"]
        if tls and server is None:
            base += ["-tls_used", "-tls_trusted", self.bundle]
        return run(base + list(args), check=check)

    def kur(self, old_key, old_cert, new_key, certout, *extra, **kw):
        return self.cmp("-cmd", "kur", "-cert", old_cert, "-key", old_key, "-oldcert", old_cert,
                        "-newkey", new_key, "-certout", certout, *extra, **kw)


def cert_serial(path):
    """A certificate's serial as the protocol writes it."""
    out = run(["openssl", "x509", "-in", path, "-noout", "-serial"]).stdout.strip()
    return out.split("=", 1)[1].lower().lstrip("0") or "0"


def pubkey_der(path, private=False):
    if private:
        return run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "PEM"]).stdout
    return run(["openssl", "x509", "-in", path, "-noout", "-pubkey"]).stdout


def der_body_tag(msg):
    """The PKIBody tag byte of a DER PKIMessage (0xa7 kur, 0xb8 certConf)."""
    def skip_header(buf, pos):
        length = buf[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7f
            length = int.from_bytes(buf[pos:pos + n], "big")
            pos += n
        return pos, length

    pos, _ = skip_header(msg, 0)            # PKIMessage SEQUENCE
    hpos, hlen = skip_header(msg, pos)      # header SEQUENCE
    return msg[hpos + hlen]
