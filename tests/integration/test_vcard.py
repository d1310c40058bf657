# SPDX-License-Identifier: GPL-2.0-or-later
"""The virtual key against real clients nobody here wrote, on a private
pcscd: yubico-piv-tool, OpenSC's pkcs15-tool and pkcs11-tool, signatures
checked with openssl. Needs root (see README.md)."""

import os

import pytest

from keyrenew_testbed.clients import (
    DEFAULT_PIN, DEFAULT_PUK, cert_fingerprint, cert_pubkey, cert_serial, must_fail, pkcs11,
    parse_pkcs11_objects, pkcs15, pubkey_der, pubkey_text, run, show, show_slot, status, verify, ykpiv)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(1500))
    return path


def generate(bed, slot, algorithm, out):
    proc = ykpiv(bed, "-a", "generate", "-s", slot, "-A", algorithm, "-o", out)
    assert "Successfully generated a new private key" in proc.stderr + proc.stdout
    return out


def generate_and_certify(bed, ca, tmp_path, slot, algorithm, subject):
    """A key made on the card and a certificate for it imported there."""
    pub = generate(bed, slot, algorithm, tmp_path / f"{slot}.pub")
    cert = ca.certify(pub, subject, tmp_path / f"{slot}.pem")
    ykpiv(bed, "-a", "import-certificate", "-s", slot, "-i", cert)
    return pub, cert


# --- yubico-piv-tool ---------------------------------------------------


def test_status(pcsc_bed, plug, new_card, issue, test_ca):
    card = new_card("--serial", "31415926", "--yk-version", "5.4.3")
    cert = issue(card, "9a", "rsa2048", "/CN=Alice Example/O=Example Org", "rsa")
    plug(card)
    st = status(pcsc_bed)
    assert st["serial"] == 31415926
    assert st["version"] == "5.4.3"
    assert st["pin_tries"] == 3
    assert list(st["slots"]) == ["9a"], st
    slot = st["slots"]["9a"]
    assert slot["algorithm"] == "RSA2048"
    assert "CN=Alice Example" in slot["subject"] and "O=Example Org" in slot["subject"]
    assert "CN=Test RSA CA" in slot["issuer"]
    assert slot["fingerprint"] == cert_fingerprint(cert)


def test_verify_pin(pcsc_bed, plug, new_card):
    card = new_card("--pin", "24681357")
    plug(card)
    out = ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "24681357")
    assert "Successfully verified PIN" in out.stdout + out.stderr
    out = must_fail(ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "11111111", check=False))
    assert "2 tries left" in out
    assert show(card)["pin"]["retries_left"] == 2
    assert status(pcsc_bed)["pin_tries"] == 2
    # The right PIN puts the counter back to its maximum.
    ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "24681357")
    assert status(pcsc_bed)["pin_tries"] == 3
    assert show(card)["pin"]["retries_left"] == 3


@pytest.mark.parametrize("retries", [3, 5])
def test_pin_blocked_after_retries(pcsc_bed, plug, new_card, retries):
    card = new_card("--pin-retries", str(retries))
    plug(card)
    assert status(pcsc_bed)["pin_tries"] == retries
    for left in range(retries - 1, 0, -1):
        out = must_fail(ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "999999", check=False))
        assert f"{left} tries left" in out
        assert status(pcsc_bed)["pin_tries"] == left
    out = must_fail(ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "999999", check=False))
    assert "blocked" in out
    # Blocked: the right PIN does not help any more.
    out = must_fail(ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN, check=False))
    assert "blocked" in out
    assert status(pcsc_bed)["pin_tries"] == 0
    state = show(card)["pin"]
    assert state["blocked"] is True and state["retries_left"] == 0
    # OpenSC sees it too: no login.
    assert pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--list-objects",
                  check=False).returncode != 0


def test_generate_rsa2048(pcsc_bed, plug, new_card, tmp_path):
    card = new_card()
    plug(card)
    pub = generate(pcsc_bed, "9a", "RSA2048", tmp_path / "a.pub")
    text = pubkey_text(pub)
    assert "Public-Key: (2048 bit)" in text and "Exponent: 65537" in text
    slot = show_slot(card, "9a")
    assert slot["algorithm"] == "rsa2048" and slot["origin"] == "generated"
    # A second generate makes a new key.
    again = generate(pcsc_bed, "9a", "RSA2048", tmp_path / "b.pub")
    assert pubkey_der(again) != pubkey_der(pub)


def test_generate_eccp256(pcsc_bed, plug, new_card, tmp_path):
    card = new_card()
    plug(card)
    pub = generate(pcsc_bed, "9c", "ECCP256", tmp_path / "c.pub")
    text = pubkey_text(pub)
    assert "Public-Key: (256 bit)" in text and "prime256v1" in text
    slot = show_slot(card, "9c")
    assert slot["algorithm"] == "eccp256" and slot["origin"] == "generated"
    assert slot["pin_policy"] == "always"


def test_generate_needs_management_key(pcsc_bed, plug, new_card, tmp_path):
    card = new_card("--mgm-key", "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080")
    plug(card)
    out = must_fail(ykpiv(pcsc_bed, "-a", "generate", "-s", "9a", "-A", "RSA2048",
                          "-o", tmp_path / "x.pub", check=False))
    assert "authenticat" in out.lower()
    assert show_slot(card, "9a") is None
    ykpiv(pcsc_bed, "-k0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080", "-a", "generate", "-s", "9a", "-A", "ECCP256",
          "-o", tmp_path / "y.pub")
    assert show_slot(card, "9a")["algorithm"] == "eccp256"


def test_import_certificate(pcsc_bed, plug, new_card, test_ca, tmp_path):
    card = new_card()
    plug(card)
    pub, cert = generate_and_certify(pcsc_bed, test_ca["ec"], tmp_path, "9c", "ECCP256",
                                     "/CN=Imported Bob")
    slot = show_slot(card, "9c")
    assert slot["certificate"]["subject"] == "CN=Imported Bob"
    assert slot["certificate"]["issuer"] == test_ca["ec"].subject
    assert slot["certificate"]["serial"].lstrip("0") == cert_serial(cert).lstrip("0")
    st = status(pcsc_bed)["slots"]["9c"]
    assert st["algorithm"] == "ECCP256"
    assert st["fingerprint"] == cert_fingerprint(cert)


def test_read_certificate(pcsc_bed, plug, new_card, issue, tmp_path):
    card = new_card()
    rsa = issue(card, "9a", "rsa2048", "/CN=Reader RSA", "rsa")
    ec = issue(card, "9d", "eccp384", "/CN=Reader EC", "ec")
    plug(card)
    for slot, cert in (("9a", rsa), ("9d", ec)):
        pem = ykpiv(pcsc_bed, "-a", "read-certificate", "-s", slot).stdout
        assert pem.strip() == cert.read_text().strip(), slot
        der = tmp_path / f"{slot}.der"
        ykpiv(pcsc_bed, "-a", "read-certificate", "-s", slot, "-K", "DER", "-o", der)
        assert der.read_bytes() == run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                                       text=False).stdout
    out = must_fail(ykpiv(pcsc_bed, "-a", "read-certificate", "-s", "9e", check=False))
    assert "fail" in out.lower()


def test_change_pin(pcsc_bed, plug, new_card):
    card = new_card()
    plug(card)
    # A wrong old PIN changes nothing and costs a retry.
    out = must_fail(ykpiv(pcsc_bed, "-a", "change-pin", "-P", "654321", "-N", "11223344",
                          check=False))
    assert "2 tries left" in out
    ykpiv(pcsc_bed, "-a", "change-pin", "-P", DEFAULT_PIN, "-N", "87654321")
    assert show(card)["pin"]["default"] is False
    assert "2 tries left" in must_fail(
        ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN, check=False))
    ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "87654321")
    assert status(pcsc_bed)["pin_tries"] == 3


def test_unblock_pin(pcsc_bed, plug, new_card):
    card = new_card("--puk", "76543210")
    plug(card)
    for _ in range(3):
        ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "000000", check=False)
    assert show(card)["pin"]["blocked"] is True
    out = must_fail(ykpiv(pcsc_bed, "-a", "unblock-pin", "-P", DEFAULT_PUK, "-N", "13572468",
                          check=False))
    assert "2 tries left" in out
    assert show(card)["puk"]["retries_left"] == 2
    assert show(card)["pin"]["blocked"] is True
    ykpiv(pcsc_bed, "-a", "unblock-pin", "-P", "76543210", "-N", "13572468")
    state = show(card)
    assert state["pin"]["blocked"] is False and state["pin"]["retries_left"] == 3
    ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "13572468")
    assert status(pcsc_bed)["pin_tries"] == 3


@pytest.mark.parametrize("slot,algorithm,kind", [("9a", "RSA2048", "RSA"), ("9c", "ECCP256", "ECDSA")])
def test_test_signature(pcsc_bed, plug, new_card, test_ca, tmp_path, slot, algorithm, kind):
    card = new_card()
    plug(card)
    ca = test_ca["rsa" if kind == "RSA" else "ec"]
    _, cert = generate_and_certify(pcsc_bed, ca, tmp_path, slot, algorithm, "/CN=Signer")
    uses = show_slot(card, slot)["uses"]
    out = ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN, "-a", "test-signature",
                "-s", slot, "-i", cert)
    assert f"Successful {kind} verification" in out.stdout + out.stderr
    assert show_slot(card, slot)["uses"] == uses + 1
    # The same check with a certificate for another key must fail.
    other = ca.certify(generate(pcsc_bed, "9e", algorithm, tmp_path / "9e.pub"), "/CN=Other",
                       tmp_path / "other.pem")
    out = must_fail(ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN,
                          "-a", "test-signature", "-s", slot, "-i", other, check=False))
    assert f"Failed {kind} verification" in out


# --- OpenSC --------------------------------------------------------------


@pytest.fixture
def two_key_card(new_card, issue):
    """An RSA key with certificate in 9a, an EC key with certificate in 9c."""
    card = new_card()
    rsa = issue(card, "9a", "rsa2048", "/CN=Alice RSA", "rsa")
    ec = issue(card, "9c", "eccp256", "/CN=Alice EC", "ec")
    return card, rsa, ec


def test_pkcs15_list_certificates(pcsc_bed, plug, two_key_card):
    card, rsa, ec = two_key_card
    plug(card)
    out = pkcs15(pcsc_bed, "--list-certificates").stdout
    found = {}
    for b in out.split("X.509 Certificate [")[1:]:
        label = b.split("]", 1)[0]
        fields = {k.strip(): v.strip() for k, _, v in
                  (line.partition(":") for line in b.splitlines()[1:] if ":" in line)}
        found[fields["ID"]] = (label, fields["Encoded serial"].replace(" ", ""))
    assert set(found) == {"01", "02"}, out
    assert found["01"][0] == "Certificate for PIV Authentication"
    assert found["02"][0] == "Certificate for Digital Signature"
    assert found["01"][1].endswith(cert_serial(rsa)), (found, cert_serial(rsa))
    assert found["02"][1].endswith(cert_serial(ec)), (found, cert_serial(ec))


def test_pkcs11_list_objects(pcsc_bed, plug, two_key_card):
    card, _, _ = two_key_card
    plug(card)
    out = pkcs11(pcsc_bed, "--list-objects").stdout
    objects = parse_pkcs11_objects(out)
    certs = {f["ID"]: f["subject"] for h, f in objects if h.startswith("Certificate Object")}
    assert certs == {"01": "DN: CN=Alice RSA", "02": "DN: CN=Alice EC"}, out
    pubs = {f["ID"]: h for h, f in objects if h.startswith("Public Key Object")}
    assert pubs["01"] == "Public Key Object; RSA 2048 bits", out
    assert pubs["02"].startswith("Public Key Object; EC"), out
    # After login the private keys are listed as well.
    out = pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--list-objects").stdout
    private = {f["ID"]: h for h, f in parse_pkcs11_objects(out) if h.startswith("Private Key")}
    assert set(private) == {"01", "02"}, out
    assert "RSA" in private["01"] and "EC" in private["02"], private


def test_pkcs11_sign_rsa(pcsc_bed, plug, two_key_card, tmp_path, data):
    card, rsa, _ = two_key_card
    plug(card)
    pub = cert_pubkey(rsa, tmp_path / "rsa.pub")
    sig = tmp_path / "sig.rsa"
    pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--sign", "--id", "01",
           "-m", "SHA256-RSA-PKCS", "-i", data, "-o", sig)
    assert len(sig.read_bytes()) == 256
    assert verify(pub, data, sig)
    pss = tmp_path / "sig.pss"
    pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--sign", "--id", "01",
           "-m", "SHA256-RSA-PKCS-PSS", "-i", data, "-o", pss)
    assert verify(pub, data, pss, "rsa_padding_mode:pss", "rsa_pss_saltlen:-1")
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(data.read_bytes() + b"!")
    assert not verify(pub, tampered, sig)
    assert show_slot(card, "9a")["uses"] == 2


def test_pkcs11_sign_ecdsa(pcsc_bed, plug, two_key_card, tmp_path, data):
    card, _, ec = two_key_card
    plug(card)
    pub = cert_pubkey(ec, tmp_path / "ec.pub")
    sig = tmp_path / "sig.ec"
    pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--sign", "--id", "02",
           "-m", "ECDSA-SHA256", "--signature-format", "openssl", "-i", data, "-o", sig)
    assert verify(pub, data, sig)
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(data.read_bytes()[:-1])
    assert not verify(pub, tampered, sig)
    assert show_slot(card, "9c")["uses"] == 1
    # A wrong PIN: no signature, a retry gone.
    proc = pkcs11(pcsc_bed, "--login", "--pin", "000000", "--sign", "--id", "02",
                  "-m", "ECDSA-SHA256", "-i", data, "-o", tmp_path / "none", check=False)
    assert proc.returncode != 0 and "CKR_PIN_INCORRECT" in proc.stdout + proc.stderr
    assert show(card)["pin"]["retries_left"] == 2


# --- unplug and plug in again -------------------------------------------


def test_state_kept_across_replug(pcsc_bed, plug, new_card, test_ca, tmp_path):
    card = new_card()
    plug(card)
    _, cert = generate_and_certify(pcsc_bed, test_ca["rsa"], tmp_path, "9a", "RSA2048",
                                   "/CN=Survivor")
    ykpiv(pcsc_bed, "-a", "change-pin", "-P", DEFAULT_PIN, "-N", "55667788")
    ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "00000000", check=False)
    assert pcsc_bed.remove(0) == 0
    assert not pcsc_bed.present(0)
    assert must_fail(ykpiv(pcsc_bed, "-a", "status", check=False))

    plug(card)
    assert status(pcsc_bed)["pin_tries"] == 2
    assert must_fail(ykpiv(pcsc_bed, "-a", "verify-pin", "-P", DEFAULT_PIN, check=False))
    out = ykpiv(pcsc_bed, "-a", "verify-pin", "-P", "55667788", "-a", "test-signature",
                "-s", "9a", "-i", cert)
    assert "Successful RSA verification" in out.stdout + out.stderr
    assert ykpiv(pcsc_bed, "-a", "read-certificate", "-s", "9a").stdout.strip() == \
        cert.read_text().strip()


def test_replug_into_other_reader(pcsc_bed, plug, new_card, issue):
    card = new_card("--serial", "27182818")
    issue(card, "9a", "eccp256", "/CN=Wanderer", "ec")
    plug(card, 0)
    assert pcsc_bed.remove(0) == 0
    plug(card, 1)
    assert not pcsc_bed.present(0)
    st = status(pcsc_bed, reader=pcsc_bed.readers[1])
    assert st["serial"] == 27182818 and st["slots"]["9a"]["subject"] == "CN=Wanderer"
