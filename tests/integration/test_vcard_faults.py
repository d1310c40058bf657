# SPDX-License-Identifier: GPL-2.0-or-later
"""The virtual key's fault modes, each seen from a real client's side:
the key vanishing before or after an APDU, slow answers, wrong status
words. APDU numbers are learnt from a clean run of the same command, so
the tests do not depend on how many APDUs a client version sends."""

import select
import signal
import socket
import subprocess
import time

import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import (DEFAULT_PIN, cert_pubkey, must_fail, pkcs11, show, show_slot, status,
                                      verify, ykpiv)


def learn(bed, plug, card, command, ins):
    """Runs command against card once without faults; the numbers of the
    APDUs with instruction ins, and the count of all APDUs."""
    c = plug(card)
    command()
    apdus = c.apdus()
    assert bed.remove(c.index) == 0
    numbers = [a["apdu"] for a in apdus if a["ins"] == ins]
    assert numbers, f"no INS {ins} in {apdus}"
    return numbers, len(apdus)


def verify_pin(bed, pin, check=False):
    return ykpiv(bed, "-a", "verify-pin", "-P", pin, check=check)


def test_vanish_before(pcsc_bed, plug, new_card):
    card = new_card()
    numbers, _ = learn(pcsc_bed, plug, card, lambda: verify_pin(pcsc_bed, DEFAULT_PIN, True), "20")
    c = plug(card, vanish_before=numbers[-1])
    out = must_fail(verify_pin(pcsc_bed, "999999"))
    assert "Successfully" not in out and "tries left" not in out
    assert c.wait_exit() == 3
    pcsc_bed.wait_present(0, False, timeout=5)
    assert c.apdus()[-1]["fault"] == "vanish-before"
    # The wrong PIN never reached the card: no retry lost.
    assert show(card)["pin"]["retries_left"] == 3
    must_fail(ykpiv(pcsc_bed, "-a", "status", check=False))


def test_vanish_after(pcsc_bed, plug, new_card):
    card = new_card()
    numbers, _ = learn(pcsc_bed, plug, card, lambda: verify_pin(pcsc_bed, DEFAULT_PIN, True), "20")
    c = plug(card, vanish_after=numbers[-1])
    out = verify_pin(pcsc_bed, "999999")
    # The answer came back before the key was gone...
    assert "2 tries left" in out.stdout + out.stderr
    assert c.wait_exit() == 3
    # ...then the reader is empty, and the retry is lost for good.
    pcsc_bed.wait_present(0, False, timeout=5)
    assert c.apdus()[-1]["fault"] == "vanish-after"
    assert show(card)["pin"]["retries_left"] == 2
    must_fail(ykpiv(pcsc_bed, "-a", "status", check=False))
    plug(card)
    assert status(pcsc_bed)["pin_tries"] == 2


def test_vanish_during_pkcs11_sign(pcsc_bed, plug, new_card, issue, tmp_path):
    card = new_card()
    issue(card, "9a", "eccp256", "/CN=Vanisher", "ec")
    data = tmp_path / "data"
    data.write_bytes(b"to be signed\n" * 50)

    def sign(out, check=True):
        return pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--sign", "--id", "01",
                      "-m", "ECDSA-SHA256", "-i", data, "-o", out, check=check)
    numbers, _ = learn(pcsc_bed, plug, card, lambda: sign(tmp_path / "sig0"), "87")
    uses = show_slot(card, "9a")["uses"]
    c = plug(card, vanish_before=numbers[-1])
    proc = sign(tmp_path / "sig1", check=False)
    assert proc.returncode != 0
    assert not (tmp_path / "sig1").exists() or (tmp_path / "sig1").stat().st_size == 0
    assert c.wait_exit() == 3
    pcsc_bed.wait_present(0, False, timeout=5)
    assert show_slot(card, "9a")["uses"] == uses


def test_delay(pcsc_bed, plug, new_card):
    card = new_card()
    _, count = learn(pcsc_bed, plug, card, lambda: verify_pin(pcsc_bed, DEFAULT_PIN, True), "20")
    delay = 0.25
    c = plug(card, delay_ms=int(delay * 1000))
    start = time.monotonic()
    out = verify_pin(pcsc_bed, DEFAULT_PIN, check=True)
    took = time.monotonic() - start
    assert "Successfully verified PIN" in out.stdout + out.stderr
    apdus = c.apdus()
    assert len(apdus) == count
    assert took >= count * delay, (took, count)
    assert all(a["us"] >= delay * 1e6 for a in apdus), apdus


def test_fail_sw_blocked(pcsc_bed, plug, new_card):
    card = new_card()
    numbers, _ = learn(pcsc_bed, plug, card, lambda: verify_pin(pcsc_bed, DEFAULT_PIN, True), "20")
    # The right PIN, answered "blocked" (6983) without being checked.
    c = plug(card, fail_sw=[(numbers[-1], "6983")])
    out = must_fail(verify_pin(pcsc_bed, DEFAULT_PIN))
    assert "blocked" in out
    entry = [a for a in c.apdus() if a["apdu"] == numbers[-1]][0]
    assert entry["sw"] == "6983" and entry["fault"] == "fail-sw"
    assert show(card)["pin"] == {"retries_left": 3, "retries_max": 3, "blocked": False,
                                 "default": True}
    # Only that one APDU: the next command works.
    verify_pin(pcsc_bed, DEFAULT_PIN, check=True)


def test_fail_sw_retry_count(pcsc_bed, plug, new_card):
    card = new_card()
    numbers, _ = learn(pcsc_bed, plug, card, lambda: verify_pin(pcsc_bed, DEFAULT_PIN, True), "20")
    plug(card, fail_sw=[(numbers[-1], "63C1")])
    out = must_fail(verify_pin(pcsc_bed, DEFAULT_PIN))
    assert "1 tries left" in out
    assert show(card)["pin"]["retries_left"] == 3


def test_fail_sw_certificate_missing(pcsc_bed, plug, new_card, issue, tmp_path):
    card = new_card()
    cert = issue(card, "9a", "rsa2048", "/CN=Hidden", "rsa")

    def read(check=True):
        return ykpiv(pcsc_bed, "-a", "read-certificate", "-s", "9a", check=check)
    numbers, _ = learn(pcsc_bed, plug, card, read, "CB")
    c = plug(card, fail_sw=[(numbers[0], "6A82")])
    out = must_fail(read(check=False))
    assert "-----BEGIN CERTIFICATE-----" not in out
    assert [a["sw"] for a in c.apdus() if a["ins"] == "CB"][0] == "6A82"
    assert read().stdout.strip() == cert.read_text().strip()
    # A signature made after the faults is still good: nothing was damaged.
    pub = cert_pubkey(cert, tmp_path / "pub.pem")
    data, sig = tmp_path / "d", tmp_path / "s"
    data.write_bytes(b"after the fault\n")
    pkcs11(pcsc_bed, "--login", "--pin", DEFAULT_PIN, "--sign", "--id", "01",
           "-m", "SHA256-RSA-PKCS", "-i", data, "-o", sig)
    assert verify(pub, data, sig)


def test_freeze_after(pcsc_bed, plug, new_card):
    """A key that hangs in the middle of a transaction: the client's
    VERIFY never gets an answer until the client is killed and the key
    pulled out; the key is unharmed and works when plugged in again."""
    card = new_card()
    numbers, _ = learn(pcsc_bed, plug, card, lambda: verify_pin(pcsc_bed, DEFAULT_PIN, True), "20")
    frozen = numbers[-1] - 1
    c = plug(card, freeze_after=frozen)
    client = subprocess.Popen(["yubico-piv-tool", "-r", "Virtual", "-a", "verify-pin", "-P", "999999"],
                              env=pcsc_bed.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for("the frozen line", lambda: f"frozen after {frozen}\n" in c.output())
        # The VERIFY (APDU frozen + 1) went out and hangs: no answer, no log line.
        time.sleep(1.0)
        assert client.poll() is None
        assert c.running
        apdus = c.apdus()
        assert apdus[-1]["apdu"] == frozen and apdus[-1]["fault"] == "freeze-after", apdus
    finally:
        # As a test kills keyrenewd at that point of its transaction.
        client.send_signal(signal.SIGKILL)
        client.wait()
    assert pcsc_bed.remove(c.index) == 3
    # The wrong PIN never reached the card: no retry lost.
    assert show(card)["pin"]["retries_left"] == 3
    plug(card)
    assert status(pcsc_bed)["pin_tries"] == 3
    verify_pin(pcsc_bed, DEFAULT_PIN, check=True)


class VpcdPeer:
    """vpcd's side of one connection, for the frozen key seen up close:
    length-prefixed messages, 1-byte ones are control codes."""

    def __init__(self, conn):
        self.conn = conn

    def send(self, payload):
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def receive(self, timeout):
        self.conn.settimeout(timeout)
        head = self._exactly(2)
        return self._exactly(int.from_bytes(head, "big"))

    def _exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the key closed the connection")
            data += chunk
        return data


def read_line(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"nothing on the key's stderr within {timeout} s"
    return stream.readline()


def test_freeze_after_answers_nothing(vcard, new_card):
    """Up close, without pcscd: APDU 2 is answered, then the line comes,
    then neither APDU 3 nor an ATR request gets an answer, the connection
    stays open; SIGTERM ends it with status 3."""
    card = new_card("--yk-version", "5.7.1")
    with socket.create_server(("127.0.0.1", 0)) as server:
        proc = subprocess.Popen([vcard, "run", card, "--port", str(server.getsockname()[1]),
                                 "--freeze-after", "2"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            server.settimeout(10)
            conn, _ = server.accept()
            with conn:
                vpcd = VpcdPeer(conn)
                vpcd.send(b"\x01")
                vpcd.send(b"\x04")
                assert vpcd.receive(5).startswith(b"\x3b")
                vpcd.send(bytes.fromhex("00A4040005A000000308"))
                assert vpcd.receive(5)[-2:] == b"\x90\x00"
                vpcd.send(bytes.fromhex("00FD000000"))
                assert vpcd.receive(5) == bytes([5, 7, 1, 0x90, 0x00])
                assert read_line(proc.stderr, 5) == b"frozen after 2\n"

                vpcd.send(bytes.fromhex("00FD000000"))
                with pytest.raises(TimeoutError):
                    vpcd.receive(1.0)
                vpcd.send(b"\x04")
                with pytest.raises(TimeoutError):
                    vpcd.receive(0.5)
                assert proc.poll() is None

                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=5) == 3
                with pytest.raises(ConnectionError):
                    vpcd.receive(5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
