# SPDX-License-Identifier: GPL-2.0-or-later
"""The real clients the virtual key must satisfy (yubico-piv-tool, OpenSC,
openssl), run against a PcscTestbed, with their outputs parsed."""

import hashlib
import json
import pathlib
import re
import subprocess

from .pcsc import vcard_binary

OPENSC_PKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
DEFAULT_PIN = "123456"
DEFAULT_PUK = "12345678"


def _explain(proc):
    return (f"$ {' '.join(proc.args)}\nexit status {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")


def run(args, check=True, **kw):
    """Runs a local tool (openssl, keyrenew-vcard); text output."""
    proc = subprocess.run([str(a) for a in args], capture_output=True,
                          text=kw.pop("text", True), timeout=kw.pop("timeout", 60), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(_explain(proc))
    return proc


def client(bed, args, check=True, **kw):
    """Runs a PC/SC client against bed; with check, a failure is an
    AssertionError that shows what the client said."""
    proc = bed.client(args, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(_explain(proc))
    return proc


def ykpiv(bed, *args, check=True, reader="Virtual", **kw):
    return client(bed, ["yubico-piv-tool", "-r", reader, *args], check=check, **kw)


def must_fail(proc):
    """proc was expected to fail: the output, for assertions on it."""
    if proc.returncode == 0:
        raise AssertionError("expected a failure:\n" + _explain(proc))
    return proc.stdout + proc.stderr


def pkcs11(bed, *args, check=True, **kw):
    return client(bed, ["pkcs11-tool", "--module", OPENSC_PKCS11, *args], check=check, **kw)


def pkcs15(bed, *args, check=True, **kw):
    return client(bed, ["pkcs15-tool", *args], check=check, **kw)


def parse_pkcs11_objects(text):
    """pkcs11-tool --list-objects: [(header, {field: value})], header as
    "Certificate Object; type = X.509 cert", fields from the indented
    lines under it."""
    objects = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            objects.append((line.strip(), {}))
        elif objects and ":" in line:
            key, _, value = line.partition(":")
            objects[-1][1].setdefault(key.strip(), value.strip())
    return objects


def parse_status(text):
    """yubico-piv-tool -a status: {"version", "serial", "pin_tries",
    "slots": {"9a": {"algorithm", "subject", "issuer", "fingerprint",
    "not_before", "not_after"}}}."""
    status = {"slots": {}}
    slot = None
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        value = value.strip()
        m = re.fullmatch(r"Slot ([0-9a-f]{2})", key)
        if m:
            slot = status["slots"].setdefault(m.group(1), {})
        elif line.startswith("\t") and slot is not None:
            slot[key.lower().replace(" dn", "").replace(" ", "_")] = value
        else:
            slot = None
            if key == "Version":
                status["version"] = value
            elif key == "Serial Number":
                status["serial"] = int(value)
            elif key == "PIN tries left":
                status["pin_tries"] = int(value)
    return status


def status(bed, **kw):
    return parse_status(ykpiv(bed, "-a", "status", **kw).stdout)


def show(state):
    """keyrenew-vcard show --json: the card file's own view."""
    return json.loads(run([vcard_binary(), "show", state, "--json"]).stdout)


def show_slot(state, slot):
    found = [s for s in show(state)["slots"] if s["slot"] == slot]
    return found[0] if found else None


def create_card(path, *opts):
    run([vcard_binary(), "create", path, *opts])
    return pathlib.Path(path)


def cert_der(pem_path):
    return run(["openssl", "x509", "-in", pem_path, "-outform", "DER"],
               text=False).stdout


def cert_fingerprint(pem_path):
    return hashlib.sha256(cert_der(pem_path)).hexdigest()


def cert_serial(pem_path):
    out = run(["openssl", "x509", "-in", pem_path, "-noout", "-serial"]).stdout
    return out.strip().split("=", 1)[1].upper()


def cert_pubkey(pem_path, out):
    run(["openssl", "x509", "-in", pem_path, "-noout", "-pubkey", "-out", out])
    return out


def pubkey_text(pub_path):
    return run(["openssl", "pkey", "-pubin", "-in", pub_path, "-noout", "-text"]).stdout


def pubkey_der(pub_path):
    return run(["openssl", "pkey", "-pubin", "-in", pub_path, "-outform", "DER"],
               text=False).stdout


def verify(pub, data, sig, *sigopts):
    """openssl dgst -sha256 -verify: True when the signature is good."""
    args = ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig]
    for opt in sigopts:
        args += ["-sigopt", opt]
    proc = run([*args, data], check=False)
    return proc.returncode == 0 and "Verified OK" in proc.stdout


class TestCA:
    """A CA made with the openssl CLI, RSA-2048 or EC P-256."""

    __test__ = False  # not a pytest class

    def __init__(self, folder, kind):
        self.kind = kind
        self.dir = pathlib.Path(folder)
        self.cert = self.dir / f"ca-{kind}.pem"
        self.key = self.dir / f"ca-{kind}-key.pem"
        newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else [
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run(["openssl", "req", "-x509", *newkey, "-nodes", "-sha256", "-days", "3650",
             "-subj", f"/O=keyrenew tests/CN=Test {kind.upper()} CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", self.key, "-out", self.cert])
        self.subject = f"O=keyrenew tests, CN=Test {kind.upper()} CA"
        self.count = 0

    def issue_args(self):
        return ["--ca-cert", self.cert, "--ca-key", self.key]

    def certify(self, pubkey, subject, out, days=30):
        """A certificate for a public key we only have as PEM (from
        yubico-piv-tool -a generate): a throwaway CSR carries the subject,
        -force_pubkey puts the card's key in."""
        self.count += 1
        csr = self.dir / f"req-{self.count}.csr"
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "/dev/null", "-subj", subject, "-out", csr])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-force_pubkey", pubkey, "-days", str(days), "-sha256",
             "-set_serial", str(0x5000 + self.count), "-out", out])
        return pathlib.Path(out)
