# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's first command runs scripts/demo.py: it must renew the
virtual key for real, tell the story a person reads, exit 0 only when the
key holds the new certificate, and leave nothing running behind it, also
when it fails or is interrupted. Run as CI does: non-interactively, from
the build directory the test is given; the terminal runs go through a
pseudo-terminal. Needs root (the demo's private pcscd)."""

import json
import os
import pathlib
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

import dbus
import pytest
from keyrenew_testbed import wait_for

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", TOP / "build")).resolve()
DEMO = TOP / "scripts" / "demo.py"
VCARD = BUILD / "tests" / "vcard" / "keyrenew-vcard"
ORDER = r"R\d{4}-\d{6}"
# What the demo starts, as it names them in its folder's "pids" file.
STARTED = {"keyrenew-portal", "pcscd", "pcscstat", "dbus-daemon", "polkitd", "keyrenewd", "keyrenew-vcard"}
NOTIFY = "org.freedesktop.Notifications"
NOBODY = 65534


def english():
    env = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env["LANG"] = "C.UTF-8"
    return env


class Run:
    """One run of the demo with --keep: its status, its output (stdout and
    stderr as they came, one stream), and its kept folder."""

    def __init__(self, status, out):
        self.status = status
        self.out = out
        found = re.search(r"\(its folder: (/\S+)\)", out)
        assert found, out
        self.dir = pathlib.Path(found.group(1))

    def lines_in_order(self, *patterns):
        """Each pattern matches a line, each after the one before."""
        lines = self.out.splitlines()
        at = 0
        for pattern in patterns:
            while at < len(lines) and not re.search(pattern, lines[at]):
                at += 1
            assert at < len(lines), f"no line {pattern!r} (in this order) in:\n{self.out}"
            at += 1

    def card(self):
        p = subprocess.run([str(VCARD), "show", str(self.dir / "demo.card"), "--json"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def started(self):
        """[(pid, start time, name)] the demo recorded."""
        return [(int(pid), start, name) for pid, start, name in
                (line.split(" ", 2) for line in (self.dir / "pids").read_text().splitlines())]

    def assert_nothing_left(self, expected=STARTED):
        started = self.started()
        assert {name for _, _, name in started} == expected, started
        for pid, start, name in started:
            # The same pid with the same start time is the same process.
            try:
                stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                continue
            assert stat.rsplit(")", 1)[1].split()[19] != start, f"{name} (pid {pid}) is still running"
        assert mentioning(str(self.dir)) == [], "processes still use the demo's folder"

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def mentioning(text):
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def demo(*args):
    p = subprocess.run(["/usr/bin/python3", str(DEMO), "--build-dir", str(BUILD), "--keep", *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120, env=english())
    return Run(p.returncode, p.stdout)


def demo_on_terminal(*args, at_prompt):
    """The demo on a pseudo-terminal of its own (the session's controlling
    terminal, as a person's); at keyrenewctl's PIN prompt, at_prompt
    (bytes) is typed: a PIN and Enter, or Ctrl-C."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/usr/bin/python3", ["/usr/bin/python3", str(DEMO), "--build-dir", str(BUILD), "--keep",
                                       *args], english())
    out, typed, status = b"", False, None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            try:
                data = os.read(fd, 4096) if ready else b""
            except OSError:  # EIO: the demo closed the terminal
                data = b""
            if not data:
                break
            out += data
            if not typed and out.rstrip().endswith(b"PIN (an empty line cancels):"):
                typed = True
                os.write(fd, at_prompt)
        while status is None and time.monotonic() < deadline:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(code)
            else:
                time.sleep(0.05)
    finally:
        os.close(fd)
        if status is None:
            # SIGTERM: the demo still stops what it started.
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    text = out.decode(errors="replace").replace("\r\n", "\n")
    run = Run(status, text)
    if status is None or not typed:
        run.remove()
        raise AssertionError(f"the demo did not end or never asked for the PIN:\n{text}")
    return run


@pytest.fixture(autouse=True)
def root():
    assert os.geteuid() == 0, "the demo's private pcscd needs root (a mount namespace)"
    assert VCARD.exists(), f"{VCARD} is not built"


def new_certificate(run):
    """The new certificate as the demo said it: serial (upper case)."""
    found = re.search(r"new certificate ([0-9A-F]+), valid 36[45] days from now", run.out)
    assert found, run.out
    return found.group(1)


def serial_of(pem):
    out = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-serial"], capture_output=True,
                         text=True, check=True).stdout
    return out.strip().split("=", 1)[1].upper()


def test_demo_renews_the_key_and_cleans_up():
    run = demo("--days", "6")
    try:
        assert run.status == 0, run.out
        run.lines_in_order(
            r"^==> Starting the sandbox$",
            r"the reference CA portal: https://127\.0\.0\.1:\d+ \(TLS",
            r"a private system bus with keyrenew's bus policy",
            r"^==> Making a virtual key \(20261127\) whose certificate ends in 6 days$",
            rf"the user orders the renewal: order {ORDER}$",
            r"the user pays: under review$",
            r"the CA checks it: approved",
            r'^    key found: 20261127 in "Demo Reader A 00 00" after \d+ ms; PIN tries left: 3$',
            r"slot 9a: .*CN=Demo User \(ec 256, signing\)",
            r"certificate ends .*: in 6 days \(expiring\)$",
            rf"renewal approved on the portal: order {ORDER}$",
            r"^==> Updating the key: do not remove it until it says done$",
            r"keyrenewctl renew 20261127/9a --pin-stdin",
            r"Reading the PIN from standard input\.",
            r"^\[ *\d+%\] the renewal started$",
            r"^\[ *\d+%\] the new key was made on the card$",
            r"^\[ *\d+%\] the portal issued the new certificate$",
            r"^\[100%\] done$",
            r"^Renewed 20261127/9a \(Demo User\)\.$",
            r"^==> Done: the key's certificate is valid until \d{4}-\d\d-\d\d \d\d:\d\d",
            r"new certificate [0-9A-F]+, valid 36[45] days from now$",
            r"with a new key pair, made on the card$",
            r"old certificate [0-9A-F]+: revoked, on the portal's CRL$",
            r"yubico-piv-tool: slot 9a holds the new certificate",
            r"verifies against it \(Successful ECDSA verification\)$",
            r"^Everything the demo started is stopped",
            r"^Run it again:$",
            r"^  \./scripts/demo\.sh --interactive  you type the PIN at keyrenewctl's prompt$",
            r"^  \./scripts/demo\.sh --tray         with the tray, when a desktop is there")

        # The key file itself holds the new certificate, by the portal's CA.
        new = new_certificate(run)
        old = serial_of(run.dir / "old-cert.pem")
        assert new != old
        assert re.search(rf"old certificate {old}: revoked", run.out), run.out
        said = re.search(r"New serial: ([0-9a-fA-F]+)$", run.out, re.M)
        assert said and said.group(1).upper().lstrip("0") == new.lstrip("0"), run.out
        card = run.card()
        (slot,) = card["slots"]
        assert slot["slot"] == "9a"
        assert slot["certificate"]["serial"].upper().lstrip("0") == new.lstrip("0")
        assert slot["certificate"]["issuer"] != slot["certificate"]["subject"]
        assert card["pin"]["retries_left"] == 3
        run.assert_nothing_left()
    finally:
        run.remove()


def test_wrong_pin_fails_and_changes_nothing():
    """Exit 0 only when the key has the new certificate: a wrong PIN costs
    one try, the key keeps its old certificate, the demo exits 1."""
    run = demo("--pin", "654321")
    try:
        assert run.status == 1, run.out
        run.lines_in_order(r"the demo types 654321",
                           r"Wrong PIN: 2 tries left",
                           r"^The demo failed: keyrenewctl exited 6: the PIN was wrong",
                           r"^Everything the demo started is stopped")
        assert "==> Done" not in run.out and "Run it again" not in run.out
        card = run.card()
        assert card["pin"]["retries_left"] == 2
        assert card["slots"][0]["certificate"]["serial"].upper().lstrip("0") == \
            serial_of(run.dir / "old-cert.pem").lstrip("0")
        run.assert_nothing_left()
    finally:
        run.remove()


def test_interactive_pin_at_keyrenewctls_prompt():
    run = demo_on_terminal("--interactive", at_prompt=b"123456\n")
    try:
        assert run.status == 0, run.out
        run.lines_in_order(r"\$ keyrenewctl renew 20261127/9a  .*the key's PIN is 123456",
                           r"3 tries left before the PIN is blocked\.",
                           r"PIN \(an empty line cancels\):",
                           r"\[100%\] done",
                           r"^==> Done: the key's certificate is valid until",
                           r"Successful ECDSA verification",
                           r"^Run it again:$",
                           r"^  \./scripts/demo\.sh                the demo types the PIN$",
                           r"^  \./scripts/demo\.sh --tray ")
        # Typed with echo off.
        assert "123456\n" not in run.out.split("PIN (an empty line cancels):", 1)[1]
        assert run.card()["slots"][0]["certificate"]["serial"].upper().lstrip("0") == \
            new_certificate(run).lstrip("0")
        run.assert_nothing_left()
    finally:
        run.remove()


def test_ctrl_c_at_the_prompt_stops_everything():
    """Ctrl-C on the terminal reaches keyrenewctl (which cancels, no PIN
    try spent) and the demo (which stops the sandbox), nothing else."""
    run = demo_on_terminal("--interactive", at_prompt=b"\x03")
    try:
        assert run.status == 130, run.out
        run.lines_in_order(r"PIN \(an empty line cancels\):",
                           r"renewal was cancelled",
                           r"^Interrupted: stopping everything the demo started\.$",
                           r"^Everything the demo started is stopped")
        card = run.card()
        assert card["pin"]["retries_left"] == 3
        assert card["slots"][0]["certificate"]["serial"].upper().lstrip("0") == \
            serial_of(run.dir / "old-cert.pem").lstrip("0")
        run.assert_nothing_left()
    finally:
        run.remove()


def test_sigterm_while_starting_stops_what_was_started():
    p = subprocess.Popen(["/usr/bin/python3", str(DEMO), "--build-dir", str(BUILD), "--keep"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=english())
    out = ""
    # Once pcscd is up: the portal and pcscd are running, the bus is next.
    for line in p.stdout:
        out += line
        if "a private pcscd with a virtual reader" in line:
            break
    p.send_signal(signal.SIGTERM)
    rest, _ = p.communicate(timeout=60)
    run = Run(p.returncode, out + rest)
    try:
        assert run.status == 130, run.out
        assert "Interrupted: stopping everything the demo started." in run.out
        started = {name for _, _, name in run.started()}
        assert {"keyrenew-portal", "pcscd"} <= started, started
        run.assert_nothing_left(expected=started)
    finally:
        run.remove()


class Desktop:
    """A desktop for --tray, as `sudo ./scripts/demo.sh --tray` finds it
    from a user's terminal: the user (nobody, through SUDO_UID), a session
    bus they can reach with python-dbusmock's notification daemon on it,
    a display, and a PIN dialog: tests/integration/tray_pinentry.py,
    scripted, behind a wrapper that tells it where its script is."""

    def __init__(self, answers):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-demo-desktop-"))
        self.dir.chmod(0o755)
        self.bus = self.conn = self.mock = None
        try:
            self._start(answers)
        except BaseException:
            self.close()
            raise

    def _start(self, answers):
        conf = self.dir / "bus.conf"
        conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={self.dir}/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
        self.bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--print-address", "--nofork"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.bus.stdout.readline().strip()
        self.conn = dbus.bus.BusConnection(self.address)
        self.mock = subprocess.Popen(
            ["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon", "-p",
             json.dumps({"capabilities": "body actions body-markup icon-static persistence"})],
            env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address), stdout=subprocess.DEVNULL)
        wait_for("the mock notification daemon", lambda: self.conn.name_has_owner(NOTIFY))
        self.notifications = dbus.Interface(self.conn.get_object(NOTIFY, "/org/freedesktop/Notifications"),
                                            "org.freedesktop.DBus.Mock")
        self.pin_log = self.dir / "pinentry.log"
        script = self.dir / "pinentry.script"
        script.write_text("".join(a + "\n" for a in answers))
        for f in (self.pin_log, script):
            f.touch()
            f.chmod(0o666)
        self.pinentry = self.dir / "pinentry"
        self.pinentry.write_text(f"#!/bin/sh\nexport TRAY_PINENTRY_LOG='{self.pin_log}' "
                                 f"TRAY_PINENTRY_SCRIPT='{script}'\n"
                                 f"exec /usr/bin/python3 '{TOP / 'tests' / 'integration' / 'tray_pinentry.py'}'\n")
        self.pinentry.chmod(0o755)

    def press_buttons(self, pressed):
        """Clicks "Update now" or "Try again" on each notification that
        shows one and was not clicked yet; returns the summaries seen."""
        summaries, next_id = [], 1
        for n, (_, args) in enumerate(self.notifications.GetMethodCalls("Notify")):
            nid = int(args[1])
            if not nid:
                nid, next_id = next_id, next_id + 1
            summaries.append(str(args[3]))
            actions = [str(a) for a in args[5]][::2]
            button = next((b for b in ("update", "retry") if b in actions), None)
            if button and n not in pressed:
                pressed.add(n)
                self.notifications.EmitSignal(NOTIFY, "ActionInvoked", "us", [dbus.UInt32(nid), button])
        return summaries

    def dialogs(self):
        return [json.loads(line) for line in self.pin_log.read_text().splitlines()]

    def close(self):
        for proc in (self.mock, self.bus):
            if proc:
                proc.terminate()
                proc.wait(timeout=10)
        if self.conn:
            self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def demo_with_tray(desktop):
    """The demo with --tray on that desktop, its buttons clicked as they
    come."""
    env = dict(english(), DBUS_SESSION_BUS_ADDRESS=desktop.address, DISPLAY=":99", SUDO_UID=str(NOBODY),
               SUDO_GID=str(NOBODY))
    out_path = desktop.dir / "demo.out"
    with open(out_path, "w") as out:
        p = subprocess.Popen(["/usr/bin/python3", str(DEMO), "--build-dir", str(BUILD), "--keep", "--tray",
                              "--pinentry", str(desktop.pinentry)], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=env)
    pressed = set()
    deadline = time.monotonic() + 90
    while p.poll() is None and time.monotonic() < deadline:
        desktop.press_buttons(pressed)
        time.sleep(0.1)
    if p.poll() is None:
        p.terminate()
        p.wait(timeout=60)
    run = Run(p.returncode, out_path.read_text())
    run.summaries = desktop.press_buttons(pressed)
    return run


def test_tray_on_a_desktop():
    """--tray: keyrenew-tray runs as the desktop's user on the sandbox's
    bus; its "Update now", then its PIN dialog (a wrong PIN first: "Try
    again"), renew the key; the demo shows the steps as keyrenewd reports
    them and stops the tray with the rest."""
    desktop = Desktop(["pin 000000", "pin 123456"])
    try:
        run = demo_with_tray(desktop)
    finally:
        desktop.close()
    try:
        assert run.status == 0, run.out
        run.lines_in_order(r"^==> Updating the key from the tray: do not remove it until it says done$",
                           r'click "Update now", then type the key\'s PIN, 123456,',
                           r"that try ended, failed: Wrong PIN: 2 tries left",
                           r"^\[ *\d+%\] the renewal started$",
                           r"^\[ *\d+%\] the new key was made on the card$",
                           r"^\[ *\d+%\] the portal issued the new certificate$",
                           r"^\[100%\] done$",
                           r"^==> Done: the key's certificate is valid until",
                           r"revoked, on the portal's CRL$",
                           r"Successful ECDSA verification",
                           r"^  \./scripts/demo\.sh                the demo types the PIN$",
                           r"^  \./scripts/demo\.sh --interactive ")
        assert run.summaries[0] == "Your certificate can be renewed", run.summaries
        assert "Wrong PIN" in run.summaries and run.summaries[-1] == "Certificate renewed", run.summaries
        assert run.card()["slots"][0]["certificate"]["serial"].upper().lstrip("0") == \
            new_certificate(run).lstrip("0")
        run.assert_nothing_left(expected=STARTED | {"keyrenew-tray"})
    finally:
        run.remove()


def test_tray_needs_a_desktop():
    env = {k: v for k, v in english().items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "SUDO_UID")}
    p = subprocess.run(["/usr/bin/python3", str(DEMO), "--build-dir", str(BUILD), "--tray"], capture_output=True,
                       text=True, timeout=30, env=env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "--tray needs a desktop" in p.stderr
    assert "its folder" not in p.stdout, "nothing may start without a desktop"
