# SPDX-License-Identifier: GPL-2.0-or-later
"""The PIV driver's writing half and the card-backed OpenSSL key over a real
PC/SC stack (tests/tools/card-write-probe), checked with clients nobody
here wrote: what keyrenew generated and wrote, yubico-piv-tool reads back
and test-signs with. Needs root (see README.md)."""

import os

import pytest

from keyrenew_testbed import build_dir
from keyrenew_testbed.clients import DEFAULT_PIN, run, show, show_slot, ykpiv


def probe_binary():
    path = build_dir() / "tests" / "tools" / "card-write-probe"
    assert os.access(path, os.X_OK), f"{path} is missing: build it (ninja -C {build_dir()})"
    return path


def probe(bed, reader, slot, algorithm, pin=DEFAULT_PIN, check=True):
    proc = bed.client([probe_binary(), reader, slot, algorithm], input=pin + "\n", stdin=None)
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
