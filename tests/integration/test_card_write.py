# SPDX-License-Identifier: GPL-2.0-or-later
"""The PIV driver's writing half and the card-backed OpenSSL key over a real
PC/SC stack (tests/tools/card-write-probe), checked with clients nobody
here wrote: what keyrenew generated and wrote (or generated in a retired
slot and moved, on a YubiKey 5.7), yubico-piv-tool reads back and
test-signs with. Needs root (see README.md)."""

import os

import pytest

from keyrenew_testbed import build_dir
from keyrenew_testbed.clients import (DEFAULT_PIN, cert_pubkey, pkcs11, pubkey_der, run, show, show_slot,
                                      verify, ykpiv)


def probe_binary():
    path = build_dir() / "tests" / "tools" / "card-write-probe"
    assert os.access(path, os.X_OK), f"{path} is missing: build it (ninja -C {build_dir()})"
    return path


def probe(bed, reader, slot, algorithm, *move_to, pin=DEFAULT_PIN, check=True):
    proc = bed.client([probe_binary(), reader, slot, algorithm, *move_to], input=pin + "\n", stdin=None)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


KINDS = {"rsa2048": "RSA", "eccp256": "ECDSA", "eccp384": "ECDSA"}


@pytest.mark.parametrize("slot,algorithm", [("9a", "rsa2048"), ("9c", "eccp256"), ("9e", "eccp384")])
def test_generate_write_and_sign(pcsc_bed, plug, new_card, tmp_path, slot, algorithm):
    card = new_card()
    c = plug(card)
    proc = probe(pcsc_bed, c.reader, slot, algorithm)
    assert "mgm algorithm=03 default=1 pin-protected=no" in proc.stderr
    pem = tmp_path / "probe.pem"
    pem.write_text(proc.stdout)

    state = show_slot(card, slot)
    assert state["origin"] == "generated"
    assert state["algorithm"] == algorithm
    assert state["certificate"]["subject"] == "CN=card-write-probe"
    # The card signed its own certificate (once) through the EVP_PKEY.
    assert state["uses"] == 1

    # yubico-piv-tool reads the certificate keyrenew wrote ...
    out = tmp_path / "read.pem"
    ykpiv(pcsc_bed, "-a", "read-certificate", "-s", slot, "-o", out, reader=c.reader)
    der = run(["openssl", "x509", "-in", pem, "-outform", "DER"], text=False).stdout
    assert run(["openssl", "x509", "-in", out, "-outform", "DER"], text=False).stdout == der
    # ... and the key in the slot matches it; the certificate verifies.
    proc = ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN, "-a", "test-signature", "-s", slot,
                 "-i", pem, reader=c.reader)
    assert f"Successful {KINDS[algorithm]} verification" in proc.stdout + proc.stderr
    run(["openssl", "verify", "-CAfile", pem, pem])


def test_pin_protected_aes_management_key(pcsc_bed, plug, new_card, tmp_path):
    card = new_card("--pin-protected-mgm", "--mgm-alg", "aes256")
    c = plug(card)
    proc = probe(pcsc_bed, c.reader, "9a", "eccp256")
    assert "mgm algorithm=0c default=0 pin-protected=yes" in proc.stderr
    assert show_slot(card, "9a")["origin"] == "generated"


def test_wrong_pin_costs_one_try(pcsc_bed, plug, new_card):
    card = new_card()
    c = plug(card)
    proc = probe(pcsc_bed, c.reader, "9a", "eccp256", pin="654321", check=False)
    assert proc.returncode == 1
    assert "wrong PIN, 2 tries left" in proc.stderr
    assert "EKEYREJECTED" in proc.stderr
    # Never tried again, nothing written.
    assert show(card)["pin"]["retries_left"] == 2
    assert show_slot(card, "9a") is None


def test_blocked_pin(pcsc_bed, plug, new_card):
    card = new_card("--pin-retries", "1")
    c = plug(card)
    probe(pcsc_bed, c.reader, "9a", "eccp256", pin="654321", check=False)
    proc = probe(pcsc_bed, c.reader, "9a", "eccp256", check=False)
    assert proc.returncode == 1
    assert "ENOLCK" in proc.stderr
    assert show(card)["pin"]["blocked"] is True


@pytest.mark.parametrize("algorithm", ["eccp256", "rsa2048"])
def test_generate_in_retired_slot_and_move(pcsc_bed, plug, new_card, issue, tmp_path, algorithm):
    """A renewal's key swap on a YubiKey 5.7: the new key is made in 95
    while the old one is still in 9A, then moved over it through
    keyrenew's driver (MOVE KEY). Real peers find the new key in 9A."""
    card = new_card("--yk-version", "5.7.1")
    old_cert = issue(card, "9a", "eccp256", "/CN=Old Key", "ec")
    old_pub = cert_pubkey(old_cert, tmp_path / "old-pub.pem")
    c = plug(card)
    proc = probe(pcsc_bed, c.reader, "95", algorithm, "9a")
    assert "moved 95 to 9a" in proc.stderr
    pem = tmp_path / "probe.pem"
    pem.write_text(proc.stdout)
    pub = cert_pubkey(pem, tmp_path / "pub.pem")
    assert pubkey_der(pub) != pubkey_der(old_pub)

    # The source slot is empty, the key in 9A is the one generated in 95:
    # still "generated", and its one use (the certificate's signature, made
    # while it was in 95) moved with it.
    assert show_slot(card, "95") is None
    state = show_slot(card, "9a")
    assert state["origin"] == "generated"
    assert state["algorithm"] == algorithm
    assert state["certificate"]["subject"] == "CN=card-write-probe"
    assert state["uses"] == 1
    # What it signed while in 95 verifies with the public key it has in 9A.
    run(["openssl", "verify", "-CAfile", pem, pem])

    # yubico-piv-tool signs with 9A and checks against the certificate.
    proc = ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN, "-a", "test-signature", "-s", "9a",
                 "-i", pem, reader=c.reader)
    assert f"Successful {KINDS[algorithm]} verification" in proc.stdout + proc.stderr
    # OpenSC signs with 9A (its id 01); OpenSSL verifies with the moved
    # public key, and not with the replaced one.
    data, sig = tmp_path / "data", tmp_path / "sig"
    data.write_bytes(b"signed after the move\n")
    mechanism = ["-m", "ECDSA-SHA256", "--signature-format", "openssl"] if algorithm == "eccp256" else [
        "-m", "SHA256-RSA-PKCS"]
    pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--sign", "--id", "01", *mechanism,
           "-i", data, "-o", sig)
    assert verify(pub, data, sig)
    assert not verify(old_pub, data, sig)
    assert show_slot(card, "9a")["uses"] == 3


def test_move_refused_before_5_7(pcsc_bed, plug, new_card, issue):
    """A YubiKey before 5.7 has no MOVE KEY: the driver says so, and both
    keys stay where they were."""
    card = new_card()
    issue(card, "9a", "eccp256", "/CN=Old Key", "ec")
    c = plug(card)
    proc = probe(pcsc_bed, c.reader, "95", "eccp256", "9a", check=False)
    assert proc.returncode == 1
    assert "move key: EOPNOTSUPP" in proc.stderr
    assert show_slot(card, "95")["origin"] == "generated"
    assert show_slot(card, "9a")["certificate"]["subject"] == "CN=Old Key"
