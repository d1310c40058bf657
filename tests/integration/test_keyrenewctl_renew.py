# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewctl renew (keyrenewctl as the PIN agent) and history, against
fake_keyrenewd.py: a FAKE keyrenewd, a test double of the documented bus
contract (dbus/org.keyrenew.KeyRenew1.xml), on a private bus. These tests
prove keyrenewctl's side of the contract; they say nothing about the real
daemon's renewal.

keyrenewctl runs in a session of its own (no controlling terminal) unless
a test gives it a pseudo-terminal. Binaries come from $KEYRENEW_BUILD_DIR
(default: build/ at the top); the Chinese catalogue from
$KEYRENEW_BUILD_DIR/po."""

import fcntl
import json
import os
import pathlib
import pty
import re
import select
import signal
import subprocess
import termios
import time

import dbus
import pytest

from test_daemon_core import BUILD, BUS_NAME, PATH, PrivateBus, wait_for

KEYRENEWCTL = BUILD / "ctl" / "keyrenewctl"
FAKE = pathlib.Path(__file__).resolve().parent / "fake_keyrenewd.py"
LOCALEDIR = BUILD / "po"
TOKEN = "org.keyrenew.KeyRenew1.Token"
AGENT = "org.keyrenew.KeyRenew1.Agent"
TOKEN_PATH = f"{PATH}/token/_12345678"
CERT_9A = f"{TOKEN_PATH}/cert/_9a"
CERT_9C = f"{TOKEN_PATH}/cert/_9c"
CERT_9D = f"{TOKEN_PATH}/cert/_9d"
ENGLISH = {"LANGUAGE": "C", "LANG": "C.UTF-8", "LC_ALL": ""}
# As test_keyrenewctl.py: the machine has no zh_CN.UTF-8 locale, and
# LANGUAGE picks the catalogue under C.UTF-8.
CHINESE = {"LANGUAGE": "zh_CN", "LANG": "C.UTF-8", "LC_ALL": "", "KEYRENEW_LOCALEDIR": str(LOCALEDIR)}
NEW_NOT_AFTER = 1830297599000000  # 2027-12-31 23:59:59 UTC

ALICE_9A = {"slot": "9a", "subject": "O=Example,CN=Alice", "renewal_state": "approved", "order": "R-2026-0042",
            "usage": ["signing"], "rekey": False}
ALICE_9C = {"slot": "9c", "subject": "O=Example,CN=Alice Signature", "renewal_state": "approved",
            "order": "R-2026-0043", "usage": ["signing"], "rekey": False}
ALICE_9D = {"slot": "9d", "subject": "O=Example,CN=Alice Encryption", "renewal_state": "approved",
            "order": "R-2026-0044", "usage": ["encryption"], "rekey": True}
HISTORY = [
    {"Order": "R-2025-0007", "Token": "12345678", "Slot": "9a", "OldCertificate": "ab" * 20 + ":01",
     "NewSerial": "1A2B3C", "NotAfter": 1798761599000000, "Time": 1767258000000000, "Outcome": "done",
     "Reason": ""},
    {"Order": "R-2025-0009", "Token": "87654321", "Slot": "9d", "OldCertificate": "cd" * 20 + ":02",
     "NewSerial": "", "NotAfter": 0, "Time": 1767261600000000, "Outcome": "failed",
     "Reason": "the portal refused the request"},
]
STEPS_SAME_KEY = ["[  5%] waiting for the PIN", "[ 10%] the renewal started",
                  "[ 40%] asking the portal for the new certificate", "[ 60%] the portal issued the new certificate",
                  "[ 75%] the new certificate is on the key",
                  "[ 85%] the new certificate and key passed a test signature",
                  "[ 95%] the portal knows the new certificate is installed", "[100%] done"]


class Fake:
    """fake_keyrenewd.py on the bus, with its log of calls."""

    def __init__(self, tmp, bus, config):
        self.bus = bus
        self.address = bus.address
        config_file = tmp / "fake.json"
        config_file.write_text(json.dumps(config))
        self.log_file = tmp / "fake.log"
        self.err = open(tmp / "fake.err", "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", str(FAKE), bus.address, str(config_file),
                                      str(self.log_file)], stderr=self.err)
        wait_for("the fake keyrenewd on the bus", lambda: bus.conn.name_has_owner(BUS_NAME))

    def log(self):
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def calls(self, name):
        return [e for e in self.log() if e.get("call") == name]

    def agent_answers(self):
        return [e for e in self.log() if "agent" in e]

    def token(self, name):
        obj = self.bus.conn.get_object(BUS_NAME, TOKEN_PATH)
        return obj.Get(TOKEN, name, dbus_interface=dbus.PROPERTIES_IFACE)

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=10) == 0 or self.proc.returncode == -15
        self.err.close()
        errors = (self.log_file.parent / "fake.err").read_text()
        assert "Traceback" not in errors, errors


@pytest.fixture
def fake(tmp_path):
    """fake(**config) -> Fake: a fake keyrenewd with one key, 12345678, and
    the certificates of config["certs"] (default: 9a, approved)."""
    assert KEYRENEWCTL.exists(), f"{KEYRENEWCTL} is not built"
    bus = PrivateBus(tmp_path)
    fakes = []

    def start(**config):
        full = {"pin": "271828", "retries": 3, "token": {"serial": "12345678", "label": "Alice's key"},
                "certs": [ALICE_9A], "new_serial": "4E4557", "new_not_after": NEW_NOT_AFTER}
        full.update(config)
        fakes.append(Fake(tmp_path, bus, full))
        return fakes[-1]

    yield start
    for f in fakes:
        f.stop()
    bus.stop()


def ctl(fake, *args, stdin_text=None, env=None, valgrind=False):
    """keyrenewctl without a terminal; stdin is stdin_text (or /dev/null)."""
    full_env = dict(os.environ, **ENGLISH, TZ="UTC")
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    prefix = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
              "--track-fds=yes", "--quiet"] if valgrind else []
    return subprocess.run([*prefix, str(KEYRENEWCTL), f"--bus={fake.address}", *args], input=stdin_text,
                          stdin=None if stdin_text is not None else subprocess.DEVNULL, capture_output=True,
                          text=True, env=full_env, timeout=120, start_new_session=True)


def progress_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("[")]


def test_right_pin_renews(fake):
    f = fake()
    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Renewed 12345678/9a (Alice).",
        "      New serial: 4E4557",
        "     Valid until: 2027-12-31 23:59:59 UTC",
        "           Order: R-2026-0042",
        "         New key: no, the same key"]
    # What the user needs before typing the PIN, from RequestPin's info.
    assert "keyrenewd asks for the PIN of key 12345678 \"Alice's key\"\n" in r.stderr
    assert "to renew the certificate of Alice (valid until " in r.stderr
    assert "3 tries left before the PIN is blocked." in r.stderr
    assert "The last try failed" not in r.stderr
    # One line per step, in order, plain (not a terminal).
    assert progress_lines(r.stderr) == STEPS_SAME_KEY
    assert "\x1b[" not in r.stderr
    # The contract's sequence: register, Renew without options, the PIN
    # through the agent, unregister, all from one connection.
    log = f.log()
    assert [e.get("call") or "agent:" + e["agent"] for e in log] == [
        "RegisterAgent", "Renew", "agent:RequestPin", "UnregisterAgent"]
    assert log[0]["path"] == log[3]["path"] == "/org/keyrenew/ctl/agent"
    assert log[0]["sender"] == log[1]["sender"] == log[3]["sender"]
    assert log[1]["path"] == CERT_9A and log[1]["options"] == {}
    assert log[2]["pin"] == "271828"
    # The PIN never reaches keyrenewctl's output.
    assert "271828" not in r.stdout + r.stderr


def test_result_as_json(fake):
    f = fake()
    r = ctl(f, "renew", "12345678/9A", "--json", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"Serial": "4E4557", "NotAfter": NEW_NOT_AFTER, "Order": "R-2026-0042",
                                    "Rekeyed": False, "Resumed": False, "Certificate": CERT_9A}
    assert progress_lines(r.stderr) == STEPS_SAME_KEY


def test_resumed_renewal(fake):
    f = fake(resumed=True)
    r = ctl(f, "renew", "12345678", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 0, r.stderr
    assert "This finishes a renewal that was interrupted." in r.stderr
    assert "         Resumed: yes: an interrupted renewal of this order was finished\n" in r.stdout


def test_wrong_pin_then_blocked(fake):
    f = fake(retries=2)
    r = ctl(f, "renew", "--pin-stdin", stdin_text="654321\n")
    assert r.returncode == 6, r
    # The tries left, in keyrenewd's words, then what to do.
    assert "keyrenewd: Wrong PIN: 1 try left.\nThe PIN was wrong. keyrenewd tries a PIN only once" in r.stderr
    assert r.stdout == ""
    assert f.token("PinRetriesLeft") == 1

    r = ctl(f, "renew", "--pin-stdin", stdin_text="111111\n")
    assert r.returncode == 6, r
    # RequestPin said why the last try failed and how many are left.
    assert "The last try failed: Wrong PIN\n1 try left before the PIN is blocked." in r.stderr
    assert "keyrenewd: The PIN is blocked: no tries left.\nThe key's PIN is blocked" in r.stderr
    assert "Unblock it with the PUK" in r.stderr
    # Each Renew asked once: keyrenewctl never sends a PIN twice.
    assert [e["pin"] for e in f.agent_answers()] == ["654321", "111111"]


@pytest.mark.parametrize("stdin_text", ["\n", "", "\r\n"], ids=["empty-line", "end-of-input", "cr-lf"])
def test_cancel_at_the_prompt(fake, stdin_text):
    f = fake()
    r = ctl(f, "renew", "--pin-stdin", stdin_text=stdin_text)
    assert r.returncode == 5, r
    assert "The renewal was cancelled." in r.stderr
    assert [e.get("error") for e in f.agent_answers()] == ["org.keyrenew.KeyRenew1.Error.Cancelled"]
    assert f.calls("UnregisterAgent")


def test_too_long_pin_is_not_sent(fake):
    f = fake()
    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828182\n")
    assert r.returncode == 5, r
    assert "A PIN has 1 to 8 characters: nothing was sent to the key." in r.stderr
    assert [e.get("error") for e in f.agent_answers()] == ["org.keyrenew.KeyRenew1.Error.Cancelled"]


def test_only_the_first_line_is_the_pin(fake):
    f = fake()
    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\nmore input\n")
    assert r.returncode == 0, r.stderr
    assert [e["pin"] for e in f.agent_answers()] == ["271828"]


def test_pin_from_a_file(fake, tmp_path):
    """A regular file cannot be polled: read at once."""
    f = fake()
    pin_file = tmp_path / "pin"
    pin_file.write_text("271828\n")
    with open(pin_file) as stdin:
        r = subprocess.run([str(KEYRENEWCTL), f"--bus={f.address}", "renew", "--pin-stdin"], stdin=stdin,
                           capture_output=True, text=True, env=dict(os.environ, **ENGLISH), timeout=60,
                           start_new_session=True)
    assert r.returncode == 0, r.stderr
    assert [e["pin"] for e in f.agent_answers()] == ["271828"]


@pytest.mark.parametrize("presses, stopped", [(1, "The renewal was cancelled."),
                                             (2, "keyrenewctl stopped waiting.")])
def test_ctrl_c_while_renewing(fake, presses, stopped):
    """The first Ctrl-C asks keyrenewd to cancel and waits for its answer;
    a second one stops waiting."""
    f = fake(step_ms=400)
    proc = subprocess.Popen([str(KEYRENEWCTL), f"--bus={f.address}", "renew", "--pin-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **ENGLISH), start_new_session=True)
    try:
        proc.stdin.write("271828\n")
        proc.stdin.flush()
        wait_for("the renewal under way", lambda: f.token("State") == "renewing")
        for _ in range(presses):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.1)
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    assert proc.returncode == 5, err
    assert "Cancelling the renewal at its next step (Ctrl-C again: stop waiting)." in err
    assert stopped in err, err
    assert len(f.calls("Cancel")) == 1 and f.calls("UnregisterAgent")


def test_confirmation_required_without_a_terminal(fake):
    f = fake(certs=[ALICE_9D])
    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 7, r
    assert "keyrenewd: The key in slot 9d decrypts" in r.stderr
    assert "can no longer be decrypted once the old key is gone" in r.stderr
    assert "Nothing was changed. To replace the key anyway, run again with --accept-key-loss." in r.stderr
    # Asked nothing, no PIN spent, one Renew.
    assert f.agent_answers() == [] and len(f.calls("Renew")) == 1


def test_accept_key_loss(fake):
    f = fake(certs=[ALICE_9D])
    r = ctl(f, "renew", "--accept-key-loss", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 0, r.stderr
    assert [c["options"] for c in f.calls("Renew")] == [{"AcceptKeyLoss": True}]
    assert "[ 25%] the new key was made on the card" in progress_lines(r.stderr)
    assert "         New key: yes, made on the card\n" in r.stdout


def test_agent_calls_from_others_are_refused(fake, tmp_path):
    f = fake()
    env = dict(os.environ, **ENGLISH)
    proc = subprocess.Popen([str(KEYRENEWCTL), f"--bus={f.address}", "renew", "--pin-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        wait_for("the PIN request", lambda: f.token("State") == "awaiting-pin" and f.log()[-1]["call"] == "Renew")
        registered = f.calls("RegisterAgent")[0]
        # Another connection (not the owner of org.keyrenew.KeyRenew1)
        # asking for the PIN, or withdrawing the request, is refused at
        # once, while the real request waits for its line.
        impostor = dbus.bus.BusConnection(f.address)
        info = dbus.Dictionary({"TokenSerial": "12345678", "RetriesLeft": dbus.Int32(3)}, signature="sv")
        for method, signature, args in (("RequestPin", "oa{sv}", [CERT_9A, info]), ("Cancel", "o", [CERT_9A])):
            with pytest.raises(dbus.DBusException) as refused:
                impostor.call_blocking(registered["sender"], registered["path"], AGENT, method, signature, args,
                                       timeout=5)
            assert refused.value.get_dbus_name() == "org.freedesktop.DBus.Error.AccessDenied"
            assert "Only keyrenewd" in refused.value.get_dbus_message()
        impostor.close()
        out, err = proc.communicate("271828\n", timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "Renewed 12345678/9a (Alice)." in out
    assert [e["pin"] for e in f.agent_answers()] == ["271828"]


def test_request_withdrawn(fake):
    f = fake(withdraw=True)
    env = dict(os.environ, **ENGLISH)
    # Standard input stays open and empty: the prompt waits until keyrenewd
    # withdraws it.
    proc = subprocess.Popen([str(KEYRENEWCTL), f"--bus={f.address}", "renew", "--pin-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        proc.wait(timeout=60)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    assert proc.returncode == 5, err
    assert "The PIN request was withdrawn.\n" in err
    assert "The renewal was cancelled." in err
    assert {"agent": "Cancel", "answer": "ok"} in f.log()


def test_which_certificate(fake):
    f = fake(certs=[ALICE_9A, ALICE_9C, dict(ALICE_9D, renewal_state="under-review")])
    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 2, r
    assert r.stderr == ("Several certificates have an approved renewal; say which one:\n"
                        "  keyrenewctl renew 12345678/9a    (Alice)\n"
                        "  keyrenewctl renew 12345678/9c    (Alice Signature)\n")
    assert f.calls("RegisterAgent") == []

    r = ctl(f, "renew", "87654321", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 1 and "keyrenewd knows no key with the serial 87654321." in r.stderr
    r = ctl(f, "renew", "12345678/82", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 1 and "keyrenewd knows no certificate 12345678/82." in r.stderr

    r = ctl(f, "renew", CERT_9C, "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 0, r.stderr
    assert "Renewed 12345678/9c (Alice Signature)." in r.stdout
    # 9a is the one left with an approved renewal.
    r = ctl(f, "renew", "12345678", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 0, r.stderr
    assert [c["path"] for c in f.calls("Renew")] == [CERT_9C, CERT_9A]

    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 9, r
    assert "No certificate has an approved renewal." in r.stderr
    # Named explicitly, a certificate under review goes to keyrenewd, which
    # says there is no approved order.
    r = ctl(f, "renew", "12345678/9d", "--pin-stdin", stdin_text="271828\n")
    assert r.returncode == 9, r
    assert "keyrenewd: No approved renewal order for this certificate.\nThe portal has no approved renewal" \
        in r.stderr


def test_no_terminal_and_no_pin_stdin(fake):
    f = fake()
    r = ctl(f, "renew")
    assert r.returncode == 2, r
    assert "No terminal to ask for the PIN on" in r.stderr and "--pin-stdin" in r.stderr
    assert f.calls("Renew") == [] and len(f.calls("UnregisterAgent")) == 1


def test_another_agent_of_the_session(fake):
    f = fake()
    other = dbus.bus.BusConnection(f.address)
    try:
        other.call_blocking(BUS_NAME, PATH, "org.keyrenew.KeyRenew1.Manager", "RegisterAgent", "o", ["/x/agent"])
        r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\n")
        assert r.returncode == 1, r
        assert "is the PIN agent already" in r.stderr
        assert "--pin-stdin needs keyrenewctl to be the PIN agent" in r.stderr
        assert f.calls("Renew") == []
    finally:
        other.close()


def test_daemon_errors_in_words(fake):
    """Busy, from a renewal of the token under way; exit 1."""
    f = fake(certs=[ALICE_9A, ALICE_9C])
    env = dict(os.environ, **ENGLISH)
    first = subprocess.Popen([str(KEYRENEWCTL), f"--bus={f.address}", "renew", "12345678/9a", "--pin-stdin"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, start_new_session=True)
    try:
        wait_for("the PIN request", lambda: f.token("State") == "awaiting-pin")
        # The fake has one agent per bus, as one per session: register
        # nothing new, just Renew from another client.
        other = dbus.bus.BusConnection(f.address)
        with pytest.raises(dbus.DBusException) as busy:
            other.call_blocking(BUS_NAME, PATH, "org.keyrenew.KeyRenew1.Manager", "Renew", "oa{sv}",
                                [CERT_9C, {}])
        assert busy.value.get_dbus_name() == "org.keyrenew.KeyRenew1.Error.Busy"
        other.close()
        out, err = first.communicate("271828\n", timeout=60)
        assert first.returncode == 0, err
    finally:
        first.kill()
        first.wait()


class Terminal:
    """keyrenewctl with a pseudo-terminal as its controlling terminal (and
    standard input and error); standard output a pipe."""

    def __init__(self, fake, *args, env=None):
        self.master, self.slave = pty.openpty()
        full_env = dict(os.environ, **ENGLISH, TERM="dumb", TZ="UTC")
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [str(KEYRENEWCTL), f"--bus={fake.address}", *args], stdin=self.slave, stdout=subprocess.PIPE,
            stderr=self.slave, env=full_env, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.seen = b""

    def expect(self, text, timeout=30):
        """Reads the terminal until text shows up; returns all read so far."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen in {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                self.seen += os.read(self.master, 4096)
        return self.seen.decode()

    def echo_on(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def type(self, text):
        os.write(self.master, text.encode())

    def finish(self):
        out = self.proc.stdout.read().decode()
        status = self.proc.wait(timeout=60)
        # The rest of the terminal's output.
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk
        return status, out, self.seen.decode()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminal():
    terminals = []

    def start(fake, *args, **kw):
        terminals.append(Terminal(fake, *args, **kw))
        return terminals[-1]
    yield start
    for t in terminals:
        t.close()


def test_pin_on_the_terminal(fake, terminal):
    f = fake()
    t = terminal(f, "renew")
    assert t.echo_on()
    screen = t.expect("PIN (an empty line cancels): ")
    assert "keyrenewd asks for the PIN of key 12345678 \"Alice's key\"" in screen
    assert "3 tries left before the PIN is blocked." in screen
    # Echo is off while the PIN is typed.
    assert not t.echo_on()
    t.type("271828\n")
    status, out, screen = t.finish()
    assert status == 0, screen
    assert "Renewed 12345678/9a (Alice)." in out
    assert "271828" not in screen
    assert t.echo_on()
    assert [e["pin"] for e in f.agent_answers()] == ["271828"]


def test_too_long_pin_on_the_terminal_asks_again(fake, terminal):
    f = fake()
    t = terminal(f, "renew")
    t.expect("PIN (an empty line cancels): ")
    t.type("271828182\n")
    t.expect("A PIN has 1 to 8 characters. PIN (an empty line cancels): ")
    t.type("271828\n")
    status, out, screen = t.finish()
    assert status == 0, screen
    assert [e["pin"] for e in f.agent_answers()] == ["271828"]


def test_ctrl_c_at_the_prompt(fake, terminal):
    f = fake()
    t = terminal(f, "renew")
    t.expect("PIN (an empty line cancels): ")
    t.type("12\x03")
    status, out, screen = t.finish()
    assert status == 5, screen
    assert "Cancelled.\r\n" in screen and "The renewal was cancelled." in screen
    assert [e.get("error") for e in f.agent_answers()] == ["org.keyrenew.KeyRenew1.Error.Cancelled"]
    assert t.echo_on()
    assert f.calls("UnregisterAgent")


@pytest.mark.parametrize("answer, status", [("y", 0), ("n", 5), ("", 5)])
def test_confirmation_on_the_terminal(fake, terminal, answer, status):
    f = fake(certs=[ALICE_9D])
    t = terminal(f, "renew")
    t.expect("Replace the key and lose what only the old one decrypts? [y/N] ")
    assert t.echo_on()
    t.type(answer + "\n")
    if answer == "y":
        t.expect("PIN (an empty line cancels): ")
        t.type("271828\n")
    got, out, screen = t.finish()
    assert got == status, screen
    assert "can no longer be decrypted once the old key is gone" in screen
    if answer == "y":
        assert [c["options"] for c in f.calls("Renew")] == [{}, {"AcceptKeyLoss": True}]
        assert "New key: yes, made on the card" in out
    else:
        assert "Nothing was changed." in screen
        assert len(f.calls("Renew")) == 1 and f.agent_answers() == []


def test_history_table(fake):
    f = fake(history=HISTORY)
    r = ctl(f, "history")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.split(r"  +", lines[0]) == ["TIME", "KEY", "SLOT", "ORDER", "OUTCOME", "NEW SERIAL", "VALID UNTIL",
                                          "REASON"]
    assert re.split(r"  +", lines[1]) == ["2026-01-01 09:00:00 UTC", "12345678", "9a", "R-2025-0007", "renewed",
                                          "1A2B3C", "2026-12-31"]
    assert re.split(r"  +", lines[2]) == ["2026-01-01 10:00:00 UTC", "87654321", "9d", "R-2025-0009", "failed",
                                          "-", "-", "the portal refused the request"]
    assert lines[3:] == ["", "2 renewals listed."]
    # Columns line up.
    assert len({line.index("R-2025") for line in lines[1:3]} | {lines[0].index("ORDER")}) == 1
    bare = ctl(f, "history", "--no-legend")
    assert bare.returncode == 0 and bare.stdout.splitlines() == lines[1:3]


def test_history_json_and_new_renewals(fake):
    f = fake(history=HISTORY)
    r = ctl(f, "history", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == HISTORY
    assert ctl(f, "renew", "--pin-stdin", stdin_text="271828\n").returncode == 0
    doc = json.loads(ctl(f, "history", "--json").stdout)
    assert len(doc) == 3 and doc[2]["Outcome"] == "done" and doc[2]["NewSerial"] == "4E4557"
    assert doc[2]["NotAfter"] == NEW_NOT_AFTER


def test_empty_history(fake):
    f = fake()
    r = ctl(f, "history")
    assert r.returncode == 0 and r.stdout == "No renewal has ended yet.\n"
    assert ctl(f, "history", "--json").stdout == "[]\n"


def test_chinese(fake):
    f = fake(history=HISTORY, retries=3)
    r = ctl(f, "renew", "--pin-stdin", stdin_text="000000\n", env=CHINESE)
    assert r.returncode == 6
    assert "keyrenewd 请求密钥 12345678" in r.stderr, r.stderr
    assert "PIN 错误" in r.stderr
    # keyrenewd's own message stays in its words.
    assert "keyrenewd: Wrong PIN: 2 tries left." in r.stderr
    r = ctl(f, "renew", "--pin-stdin", stdin_text="271828\n", env=CHINESE)
    assert r.returncode == 0, r.stderr
    assert "[ 60%] 门户已签发新证书" in r.stderr, r.stderr
    assert "已续期 12345678/9a" in r.stdout, r.stdout
    r = ctl(f, "history", env=CHINESE)
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].split()[:4] == ["时间", "密钥", "槽位", "订单"]
    assert r.stdout.splitlines()[-1] == "共列出 4 次续期。"


def test_status_shows_a_renewal_under_way(fake):
    f = fake(token={"serial": "12345678", "label": "", "management_key": "default", "state": "renewing",
                    "progress": 60, "renewal_step": "issued"})
    r = ctl(f, "status")
    assert r.returncode == 0, r.stderr
    assert "    Renewal step: [ 60%] the portal issued the new certificate\n" in r.stdout
    assert "  Management key: the well-known default: anyone can change this key" in r.stdout
    listed = ctl(f, "list").stdout
    assert "Key 12345678 is being renewed: [ 60%] the portal issued the new certificate\n" in listed
    assert "Key 12345678 has the well-known default management key" in listed
    assert json.loads(ctl(f, "--json").stdout)["Tokens"][0]["RenewalStep"] == "issued"


def test_status_after_a_renewal(fake):
    f = fake()
    assert ctl(f, "renew", "--pin-stdin", stdin_text="271828\n").returncode == 0
    r = ctl(f, "status")
    # The last renewal's step is not news; its outcome shows in State.
    assert "Renewal step" not in r.stdout and "State: renewed" in r.stdout
    assert "Management key: protected by the PIN" in r.stdout


def test_daemon_not_running(tmp_path):
    bus = PrivateBus(tmp_path)
    try:
        for args in (["renew", "--pin-stdin"], ["history"]):
            r = subprocess.run([str(KEYRENEWCTL), f"--bus={bus.address}", *args], capture_output=True, text=True,
                               env=dict(os.environ, **ENGLISH), stdin=subprocess.DEVNULL, timeout=60)
            assert r.returncode == 3, (args, r)
            assert "keyrenewd is not running" in r.stderr
    finally:
        bus.stop()


def test_valgrind_clean(fake):
    f = fake(certs=[ALICE_9A, ALICE_9C], history=HISTORY)
    for args, stdin_text, status in ((["renew", "12345678/9a", "--pin-stdin"], "000000\n", 6),
                                     (["renew", "12345678/9a", "--pin-stdin", "--json"], "271828\n", 0),
                                     (["renew", "12345678/9c", "--pin-stdin"], "\n", 5),
                                     (["renew", "--pin-stdin"], "271828\n", 0),
                                     (["renew", "--pin-stdin"], "", 9),
                                     (["history"], None, 0), (["history", "--json"], None, 0),
                                     (["status"], None, 0), (["list"], None, 0)):
        r = ctl(f, *args, stdin_text=stdin_text, valgrind=True)
        assert r.returncode == status, (args, r.stderr)
        assert "==" not in r.stderr, (args, r.stderr)
