#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpora of the libFuzzer targets, tests/fuzz/corpus/NAME:

  vcard-apdu      card sessions like the ones yubico-piv-tool and OpenSC hold,
                  framed as the target reads them (flags byte, then 2-byte
                  length + message)
  piv-responses   sessions recorded against the virtual card by
                  record-piv-session (from a build directory)
  tlv             the data of those recorded answers (status word off) and
                  real certificates
  x509-info       the test certificates (tests/data) and certificates of
                  the reference portal: each as DER (mode 0), some through a
                  card's compressed object (modes 1 and 3)
  portal-status   answers of the reference portal (tests/portal): status
                  bodies in every order state, error bodies, its timestamps
                  and Retry-After values, base URLs
  cmp-response    the reference portal's CMP answers (kup, pkiConf, error) as
                  bodies and adopted by the target's server, and answers of
                  every kind from OpenSSL's server (see fuzz-cmp-response.c)
  config          the shipped daemon/keyrenewd.conf and variations of it
  renewal-journal journals of a renewal against the reference portal at
                  every step, as whole files (mode 0) and as JSON (mode 1),
                  and history lines (mode 2)

  make-corpus.py [--build-dir DIR] [TARGET...]

DIR (default build) holds the built helpers; with no TARGET, all. Only the
seeds named here are written: regression inputs (crash-*, found by the
fuzzers and fixed) stay as they are."""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(TOP, "tests", "data")

SELECT = "00A4040005A000000308"
SELECT_FULL = "00A404000BA000000308000010000100"
VERIFY_PIN = "0020008008313233343536FFFF"
SELECTED, MGM, PIN = 1, 2, 4


def frame(*messages):
    out = b""
    for m in messages:
        raw = bytes.fromhex(m) if isinstance(m, str) else m
        out += len(raw).to_bytes(2, "big") + raw
    return out


def chained(header, data):
    """header (CLA INS P1 P2 as hex) with data in 255-byte pieces."""
    h = bytes.fromhex(header)
    pieces = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for i, p in enumerate(pieces):
        cla = 0x10 if i < len(pieces) - 1 else 0x00
        out.append(bytes([cla]) + h[1:] + bytes([len(p)]) + p)
    return out


def sign_request(block):
    inner = b"\x82\x00\x81" + der_len(len(block)) + block
    return b"\x7c" + der_len(len(inner)) + inner


def der_len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


CERT_OBJECT = bytes.fromhex("5C035FC105") + b"\x53\x82\x01\x04\x70\x81\xfc" + bytes(range(252)) + b"\x71\x01\x00\xfe\x00"

SEEDS = {
    "status": (0, [b"\x01", b"\x04", SELECT, "0020008000", "00FD000000", "00F8000000",
                   "00CB3FFF055C035FC102", "00CB3FFF055C035FC107", "00CB3FFF055C035FC105",
                   "00F7008000", "00F7008100", "00F7009B00", "00F7009A00"]),
    "opensc-probe": (0, ["00CB3FFF035C017E00", SELECT_FULL + "00", "00CB3FFF035C017E08",
                         "00CB3FFF035C017E00", "00CB3FFF055C035FC10C08", "00200080",
                         "00CB3FFF055C035FC10908", "00CA7F6800", "00A4040C02" + "3F00"]),
    "sign-ec": (SELECTED, [VERIFY_PIN, "0087119A26" + sign_request(bytes(range(32))).hex(),
                           "0087119C26" + sign_request(bytes(range(32))).hex(),
                           VERIFY_PIN, "0087119C26" + sign_request(bytes(range(32))).hex()]),
    "sign-rsa": (SELECTED, [*chained("0087079E",
                                     sign_request(b"\x00\x01" + b"\xff" * 200 + b"\x00" + bytes(53))),
                            "00C0000000"]),
    "ecdh": (SELECTED | PIN, ["0087149D" + "67" + (b"\x7c\x65\x82\x00\x85\x61\x04" + bytes(96)).hex()]),
    "mgm-auth": (SELECTED, ["0087039B047C028000",
                            "0087039B167C148008010203040506070881080102030405060708",
                            "0087039B047C028100", "0087039B0C7C0A82080102030405060708"]),
    "put-get": (SELECTED | MGM, [*chained("00DB3FFF", CERT_OBJECT), "00CB3FFF055C035FC105",
                                 "00C0000000", "00CB3FFF055C035FC10508", "00C0000010",
                                 "00DB3FFF075C035FC1055300"]),
    "generate-ec": (SELECTED | MGM | PIN, ["0047009A05AC03800111", "0047009D08AC038001148A0103",
                                           "0047009E0BAC03800111AA0101AB0102",
                                           "0087119A26" + sign_request(bytes(32)).hex()]),
    "pin-puk": (SELECTED, ["0020008008393939393939FFFF", "0020008008393939393939FFFF",
                           "0020008008393939393939FFFF", VERIFY_PIN, "00200080",
                           "002C0080103132333435363738373737373737FFFF",
                           "0024008010373737373737FFFF383838383838FFFF",
                           "0024008110313233343536373839393939393939FF", "0020FF80"]),
    "yubico-admin": (SELECTED | MGM | PIN, ["00FFFFFF1B039B18" + "0102030405060708" * 3,
                                            "00FFFFFE23" + "0C9B20" + "11" * 32, "00FA0505",
                                            "00FB0000", "00F9009A00"]),
    "extended": (SELECTED, ["00CB3FFF0000055C035FC1020000", "00CB3FFF000000", "00C00000000100",
                            b"\x00\x01\x02", "10CB3FFF025C01", "00C0"]),
    "control": (SELECTED, [b"\x00", "00FD000000", b"\x01", "00FD000000", b"\x02", SELECT,
                           b"\x04", b"\x07"]),
}


def vcard_apdu(build):
    return {name: bytes([flags]) + frame(*messages) for name, (flags, messages) in SEEDS.items()}


def recorded_sessions(build):
    """The seeds record-piv-session writes, by name."""
    tool = os.path.join(build, "tests", "fuzz", "replay", "record-piv-session")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([tool, DATA, tmp], check=True)
        return {n: open(os.path.join(tmp, n), "rb").read() for n in sorted(os.listdir(tmp))}


def split_answers(session):
    """The answers of a recorded session (after its 4-byte reset mask)."""
    out, p = [], 4
    while p + 2 <= len(session):
        n = int.from_bytes(session[p:p + 2], "big")
        out.append(session[p + 2:p + 2 + n])
        p += 2 + n
    return out


def piv_responses(build):
    return recorded_sessions(build)


def tlv(build):
    seeds = {}
    seen = set()
    for name, session in recorded_sessions(build).items():
        for i, answer in enumerate(split_answers(session)):
            data = answer[:-2]
            # Whole answers only (9000): a 61xx piece is cut mid-TLV.
            if answer[-2:] == b"\x90\x00" and len(data) > 2 and data not in seen:
                seen.add(data)
                seeds["%s-%02d" % (name, i)] = data
    for cert in ("ec-p256.der", "sm2.der"):
        seeds[cert] = open(os.path.join(DATA, cert), "rb").read()
    # Nested as deep as the writer goes, and one deeper.
    deep = b"\x80\x01\x00"
    for _ in range(9):
        deep = b"\xa1" + bytes([len(deep)]) + deep
    seeds["deep"] = deep
    return seeds


_portal = {}


def portal_captures(build):
    """Runs the reference portal from build once and records what it says:
    {"status": {name: (asked, body)}, "error": {...}, "retry-after": [...],
    "cmp": {name: der}, "certs": {name: der}}."""
    if _portal:
        return _portal
    os.environ["KEYRENEW_BUILD_DIR"] = os.path.abspath(build)
    sys.path.insert(0, os.path.join(TOP, "tests", "portal"))
    import portal_testlib

    with tempfile.TemporaryDirectory() as tmp:
        p = portal_testlib.Portal(tmp).start()
        try:
            _portal.update(capture(p, tmp))
        finally:
            p.stop()
    return _portal


def capture(p, tmp):
    from pathlib import Path
    der = lambda path: subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"],
                                      capture_output=True, check=True).stdout
    out = {"status": {}, "error": {}, "retry-after": [], "cmp": {}, "certs": {}}
    ids = {}
    for state in ("awaiting-payment", "under-review", "approved", "rejected", "issued", "installed", "none"):
        key, cert, cert_id = p.customer(name="Customer " + state)
        ids[state] = (key, cert, cert_id)
        if state == "none":
            continue
        oid = p.order(cert, *(["--review"] if state in ("under-review", "rejected") else []))
        if state != "awaiting-payment":
            p.admin("order", "pay", oid)
        if state == "rejected":
            p.admin("order", "reject", oid, "--reason", "营业执照已过期 (business licence expired)")
        if state in ("issued", "installed"):
            new_key = p.new_key()
            rsp = Path(tmp) / ("rsp-" + state)
            extra = []
            if state == "issued":
                p.admin("cmp-fault", "set", "--at", "certconf", "--kind", "drop", "--count", "1")
            else:
                extra = ["-rspout", "%s-kup.der,%s-pkiconf.der" % (rsp, rsp)]
            p.kur(key, cert, new_key, Path(tmp) / ("new-" + state + ".pem"), *extra)
            if state == "installed":
                out["cmp"]["kup"] = open("%s-kup.der" % rsp, "rb").read()
                out["cmp"]["pkiconf"] = open("%s-pkiconf.der" % rsp, "rb").read()
                out["certs"]["portal-issued.der"] = der(Path(tmp) / "new-installed.pem")
    for state, (_, _, cert_id) in ids.items():
        code, _, body = p.status(cert_id)
        assert code == 200, (code, body)
        out["status"][state] = ([cert_id], body)
    every = sorted(c for _, _, c in ids.values())
    out["status"]["batch"] = (every, p.status(*every)[2])
    unknown = "ab" * 32 + ":1f"
    out["status"]["unknown"] = ([unknown], p.status(unknown)[2])
    # A kur for a certificate without an approved order: an error message.
    key, cert, _ = ids["awaiting-payment"]
    rsp = Path(tmp) / "rsp-error.der"
    p.kur(key, cert, p.new_key(), Path(tmp) / "never.pem", "-rspout", str(rsp))
    out["cmp"]["error"] = rsp.read_bytes()
    # Error answers and Retry-After.
    out["error"]["bad-cert"] = p.get("/renewals?cert=nothex")[2]
    out["error"]["no-cert"] = p.get("/renewals")[2]
    p.admin("fault", "set", "--status", "503", "--retry-after", "120", "--count", "1")
    code, hdrs, body = p.status(every[0])
    out["retry-after"].append(hdrs.get("retry-after", "120"))
    out["error"]["503"] = body
    key, cert, cert_id = ids["installed"]
    new_pem = Path(tmp) / "new-installed.pem"
    spki = subprocess.run(["openssl", "x509", "-in", new_pem, "-noout", "-pubkey"], capture_output=True,
                          check=True).stdout
    approved = json.loads(out["status"]["approved"][1])["certificates"][0]["order"]
    out["journal"] = {
        "old_cert": der(cert), "old_cert_id": cert_id, "new_cert": der(new_pem), "cmp": approved["cmp"],
        "new_spki": subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki,
                                   capture_output=True, check=True).stdout,
    }
    for ca in ("ca-ec.pem", "ca-rsa.pem", "cmp-ec.pem"):
        out["certs"]["portal-" + ca.replace(".pem", ".der")] = der(p.dir / ca)
    return out


def portal_status(build):
    cap = portal_captures(build)
    seeds = {}
    for name, (asked, body) in cap["status"].items():
        seeds["status-" + name] = b"\x00" + " ".join(asked).encode() + b"\n" + body
    for name, body in cap["error"].items():
        seeds["error-" + name] = b"\x01" + body
    stamps = set()
    for _, body in cap["status"].values():
        for entry in json.loads(body)["certificates"]:
            for field in ("updated", "not_after"):
                if entry["order"] and field in entry["order"]:
                    stamps.add(entry["order"][field])
    for i, stamp in enumerate(sorted(stamps)[:4] + ["2026-11-27T08:00:00.123+08:00"]):
        seeds["timestamp-%d" % i] = b"\x02" + stamp.encode()
    for i, value in enumerate(cap["retry-after"] + ["Fri, 27 Nov 2026 08:00:00 GMT"]):
        seeds["retry-after-%d" % i] = b"\x03" + value.encode()
    seeds["url"] = b"\x04https://127.0.0.1:8443/keyrenew"
    return seeds


CONFIG_VARIANTS = {
    "all-keys": "[Daemon]\nLogLevel=debug\n[Expiry]\nWarnDays=60, 30,14,7,3,1\n[Portal]\n"
                "Url=https://portal.example.com:8443/keyrenew\nCABundle=/etc/ssl/certs/ca-certificates.crt\n"
                "CmpTrustedCA=/etc/ssl/certs/ca-certificates.crt\nPollIntervalSec=3600\n"
                "[Renewal]\nManagementKeyDirectory=/etc/keyrenew/management-keys\n",
    "crlf-bom": "\ufeff[Portal]\r\nUrl=http://[::1]:8080/p\r\n; comment\r\n[Expiry]\r\nWarnDays=7\r\n",
    "defaults-again": "[Daemon]\nLogLevel=\n[Expiry]\nWarnDays=\n[Portal]\nUrl=\nPollIntervalSec=\n",
    "bad-key": "[Portal]\nUrl=https://a.example\nUrl=https://b.example\n",
    "bad-section": "[Daemon\nLogLevel=7\n",
}


def config(build):
    seeds = {"keyrenewd.conf": open(os.path.join(TOP, "daemon", "keyrenewd.conf"), "rb").read()}
    for name, text in CONFIG_VARIANTS.items():
        seeds[name] = text.encode()
    return seeds


def cmp_answer(control, payload=b""):
    body = bytes([control]) + payload
    return len(body).to_bytes(2, "big") + body


def srv(status=0, fail_info=0, cert=0, conf=0, text=b""):
    """An answer by OpenSSL's server in fuzz-cmp-response: its parameters."""
    return bytes([status, fail_info >> 8, fail_info & 0xFF, cert, conf, len(text)]) + text


# OSSL_CMP_PKIFAILUREINFO_* bits
BAD_REQUEST, BAD_CERT_TEMPLATE, SYSTEM_FAILURE = 1 << 2, 1 << 9, 1 << 25


def cmp_response(build):
    cap = portal_captures(build)["cmp"]
    ok = srv()
    seeds = {
        "accept": b"\x00" + cmp_answer(1, ok) + cmp_answer(1, ok),
        "accept-chain-text": b"\x00" + cmp_answer(1, srv(1, cert=0, conf=2, text=b"renewed")) + cmp_answer(1, ok),
        "rejection-bad-request": b"\x00" + cmp_answer(1, srv(2, BAD_REQUEST, cert=2,
                                                            text="没有已批准的续期订单".encode())),
        "rejection-template": b"\x00" + cmp_answer(1, srv(2, BAD_CERT_TEMPLATE >> 8 << 8, cert=2)),
        "waiting": b"\x00" + cmp_answer(1, srv(3, cert=2)),
        "wrong-key": b"\x00" + cmp_answer(1, srv(cert=1)) + cmp_answer(1, ok),
        "certconf-refused": b"\x00" + cmp_answer(1, ok) + cmp_answer(1, srv(conf=1)),
        "verdict-reject": b"\x01" + cmp_answer(1, ok) + cmp_answer(1, ok),
        "verdict-defer": b"\x02" + cmp_answer(1, ok),
        "http-500": b"\x00" + cmp_answer(1 | 2 << 2, ok),
        "text-html": b"\x00" + cmp_answer(1 | 1 << 2, ok),
        "charset-and-time": b"\x00" + cmp_answer(3 | 3 << 2 | 0x10, b"\x16X-Portal-Time-Us: 1234" + ok)
                            + cmp_answer(1 | 0x10, b"\x17X-Portal-Time-Us:\t56789" + ok),
        "no-answer": b"\x00",
        "garbage": b"\x00" + cmp_answer(0, b"not a PKIMessage"),
        "portal-kup-raw": b"\x00" + cmp_answer(0, cap["kup"]),
        "portal-error-raw": b"\x00" + cmp_answer(0, cap["error"]),
        "portal-kup-adopted": b"\x00" + cmp_answer(2, cap["kup"]) + cmp_answer(2, cap["pkiconf"]),
        "portal-error-adopted": b"\x00" + cmp_answer(2, cap["error"]),
        "accept-then-portal-pkiconf": b"\x00" + cmp_answer(1, ok) + cmp_answer(2, cap["pkiconf"]),
    }
    return seeds


ORDER = "R2026-000001"


def journal_json(m, step, reached, seq, reason=None):
    """A journal's JSON as renewal-journal.c writes it (jansson, compact,
    sorted keys)."""
    steps = ["started", "key-generated", "issued", "written", "verified", "confirmed", "done"]
    o = {"format": "keyrenew-renewal-journal", "version": 1, "step": step, "reached": reached, "seq": seq,
         "order": ORDER, "token": "19088743", "slot": 0x9a, "new_slot": 0x82, "old_cert": m["old_cert_id"],
         "rekey": True, "cmp": m["cmp"], "uid": 1000, "created": 1795000000, "updated": 1795000000 + seq,
         "old_cert_der": m["old_cert"].hex()}
    if steps.index(reached) >= 1:
        o["new_public_key"] = m["new_spki"].hex()
    if steps.index(reached) >= 2:
        o["new_cert"] = m["new_cert"].hex()
    if reason:
        o["reason"] = reason
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def renewal_journal(build):
    import hashlib
    m = portal_captures(build)["journal"]
    seeds = {}
    steps = ["started", "key-generated", "issued", "written", "verified", "confirmed", "done"]
    bodies = {step: journal_json(m, step, step, i + 1) for i, step in enumerate(steps)}
    bodies["failed"] = journal_json(m, "failed", "key-generated", 3, "the key was pulled out")
    bodies["cancelled"] = journal_json(m, "cancelled", "started", 2, "取消")
    for name, body in bodies.items():
        seeds["json-" + name] = b"\x01" + body
    for name in ("started", "issued", "done"):
        body = bodies[name]
        # The checksum in upper case, as hex_format() writes it.
        header = b"keyrenew-renewal-journal 1 " + hashlib.sha256(body).hexdigest().upper().encode() + b"\n"
        seeds["file-" + name] = b"\x00" + header + body + b"\n"
    line = {"order": ORDER, "token": "19088743", "slot": 0x9a, "old_cert": m["old_cert_id"],
            "old_serial": m["old_cert_id"].split(":")[1], "new_serial": "1f", "not_after": "2027-11-27T00:00:00Z",
            "time": 1795000100, "outcome": "done", "reason": None, "journal_seq": 7}
    done = json.dumps(line, sort_keys=True, separators=(",", ":")).encode()
    line.update(outcome="failed", reason="portal unreachable", new_serial=None, not_after=None, journal_seq=3)
    failed = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    seeds["history"] = b"\x02" + done + b"\n" + failed + b"\n"
    seeds["history-torn"] = b"\x02" + done + b"\n" + failed[:40]
    return seeds


def x509_info(build):
    seeds = {}
    for name in sorted(os.listdir(DATA)):
        if name.endswith(".der") or name.endswith(".bin"):
            der = open(os.path.join(DATA, name), "rb").read()
            seeds[name] = b"\x00" + der
            if name in ("ec-p256.der", "sm2.der"):
                seeds["card-" + name] = b"\x01" + der
                seeds["card-trailing-" + name] = b"\x03" + der
    for name, der in portal_captures(build)["certs"].items():
        seeds[name] = b"\x00" + der
    return seeds


TARGETS = {
    "vcard-apdu": vcard_apdu,
    "piv-responses": piv_responses,
    "tlv": tlv,
    "x509-info": x509_info,
    "portal-status": portal_status,
    "config": config,
    "cmp-response": cmp_response,
    "renewal-journal": renewal_journal,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    ap.add_argument("targets", nargs="*", choices=[[]] + sorted(TARGETS), default=[])
    args = ap.parse_args()
    for target in args.targets or sorted(TARGETS):
        out = os.path.join(HERE, "corpus", target)
        os.makedirs(out, exist_ok=True)
        for name, data in TARGETS[target](args.build_dir).items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    sys.exit(main())
