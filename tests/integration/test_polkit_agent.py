# SPDX-License-Identifier: GPL-2.0-or-later
"""daemon/polkit-check and daemon/agent-registry on a private system bus,
through tests/tools/polkit-agent-probe, with python-dbusmock's polkitd
template as polkit. A second user (nobody, 65534, through setpriv) checks
that an agent is never found for another user. The probe comes from
$KEYRENEW_BUILD_DIR/tests/tools/ (default: build/); build with
-Db_sanitize=address,undefined so that a leak or a use after free fails
the test (the probe must exit 0 after SIGTERM). Needs root for setpriv."""

import os
import pathlib
import subprocess
import time

import dbus
import dbus.lowlevel
import pytest
from keyrenew_testbed import wait_for

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", TOP / "build"))
PROBE = BUILD / "tests" / "tools" / "polkit-agent-probe"

NAME = "org.keyrenew.Probe"
PATH = "/org/keyrenew/Probe"
IFACE = "org.keyrenew.Probe"
POLKIT = "org.freedesktop.PolicyKit1"
NOT_AUTHORIZED = "org.keyrenew.KeyRenew1.Error.NotAuthorized"
RENEW_DENIED = ("You are not allowed to renew certificates on this computer: "
                "org.keyrenew.renew was refused. Ask an administrator.")
NOBODY = 65534


class Bus:
    """A private bus that any user may connect to (an abstract socket, no
    file permissions in the way)."""

    def __init__(self, tmp):
        conf = tmp / "bus.conf"
        conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:abstract=keyrenew-polkit-test-{os.getpid()}-{time.monotonic_ns()}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--print-address", "--nofork"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith("unix:"), self.address
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)

    def connect(self):
        return dbus.bus.BusConnection(self.address)

    def has_owner(self, name):
        conn = self.connect()
        try:
            return bool(conn.name_has_owner(name))
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def bus(tmp_path):
    b = Bus(tmp_path)
    yield b
    b.stop()


@pytest.fixture
def polkitd(bus, tmp_path):
    log = tmp_path / "polkitd.log"
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "polkitd",
                             "-l", str(log)], env=bus.env, stdout=subprocess.DEVNULL)
    wait_for("the mock polkitd", lambda: bus.has_owner(POLKIT))
    conn = bus.connect()
    mock = dbus.Interface(conn.get_object(POLKIT, "/org/freedesktop/PolicyKit1/Authority"),
                          "org.freedesktop.DBus.Mock")
    mock.log = log
    yield mock
    conn.close()
    proc.terminate()
    proc.wait(timeout=10)


VALGRIND = ["valgrind", "-q", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99"]


def start_probe(bus, tmp_path, wrapper=()):
    """The probe, on the bus; stop it with stop_probe()."""
    assert PROBE.exists(), f"{PROBE} missing: build it (ninja -C {BUILD})"
    err = open(tmp_path / "probe.err", "w+")
    proc = subprocess.Popen([*wrapper, PROBE], env=bus.env, stderr=err)
    proc.err = err
    wait_for("the probe on the bus", lambda: bus.has_owner(NAME) or proc.poll() is not None, timeout=60)
    assert proc.poll() is None, (tmp_path / "probe.err").read_text()
    return proc


def stop_probe(proc):
    # A clean exit after SIGTERM, with checks perhaps still pending: under
    # ASan or valgrind a leak or a use after free makes it non-zero.
    proc.terminate()
    status = proc.wait(timeout=60)
    proc.err.seek(0)
    assert status == 0, proc.err.read()


@pytest.fixture
def probe(bus, tmp_path):
    proc = start_probe(bus, tmp_path)
    yield proc
    stop_probe(proc)


def probe_iface(conn):
    return dbus.Interface(conn.get_object(NAME, PATH), IFACE)


def check(bus, action):
    conn = bus.connect()
    try:
        probe_iface(conn).Check(action, timeout=30)
    finally:
        conn.close()


def test_allowed(bus, polkitd, probe):
    polkitd.SetAllowed(["org.keyrenew.renew"])
    check(bus, "org.keyrenew.renew")
    # The subject is the caller's unique name; no interaction asked for.
    calls = [line for line in polkitd.log.read_text().splitlines() if "CheckAuthorization" in line]
    assert len(calls) == 1
    assert "system-bus-name" in calls[0] and "':1." in calls[0] and "org.keyrenew.renew" in calls[0]


def test_denied(bus, polkitd, probe):
    polkitd.SetAllowed(["org.keyrenew.manage"])
    with pytest.raises(dbus.exceptions.DBusException) as e:
        check(bus, "org.keyrenew.renew")
    assert e.value.get_dbus_name() == NOT_AUTHORIZED
    assert e.value.get_dbus_message() == RENEW_DENIED
    check(bus, "org.keyrenew.manage")


def test_no_polkit_is_never_allowed(bus, probe):
    with pytest.raises(dbus.exceptions.DBusException) as e:
        check(bus, "org.keyrenew.renew")
    assert e.value.get_dbus_name() == NOT_AUTHORIZED
    assert "Could not ask polkit whether org.keyrenew.renew is allowed" in e.value.get_dbus_message()


def test_interactive_flag_passed_on(bus, polkitd, probe):
    polkitd.SetAllowed(["org.keyrenew.renew"])
    for interactive in ("yes", "no"):
        subprocess.run(["busctl", f"--address={bus.address}", f"--allow-interactive-authorization={interactive}",
                        "call", NAME, PATH, IFACE, "Check", "s", "org.keyrenew.renew"],
                       check=True, stdout=subprocess.DEVNULL, timeout=30)
    calls = [line for line in polkitd.log.read_text().splitlines() if "CheckAuthorization" in line]
    assert len(calls) == 2
    # dbusmock logs the arguments: ... "action" {details} flags "cancellation id"
    assert calls[0].endswith('"org.keyrenew.renew" {} 1 ""'), calls[0]
    assert calls[1].endswith('"org.keyrenew.renew" {} 0 ""'), calls[1]


def pending(bus):
    conn = bus.connect()
    try:
        return int(probe_iface(conn).Pending())
    finally:
        conn.close()


def send_check(bus, action):
    """Sends Check without waiting for the answer; returns the connection."""
    conn = bus.connect()
    msg = dbus.lowlevel.MethodCallMessage(NAME, PATH, IFACE, "Check")
    msg.append(action, signature="s")
    conn.send_message(msg)
    conn.flush()
    return conn


def test_caller_gone_mid_check(bus, polkitd, probe):
    polkitd.SetAllowed(["org.keyrenew.renew"])
    polkitd.SimulateHang(True)
    conn = send_check(bus, "org.keyrenew.renew")
    wait_for("the check to reach polkit", lambda: polkitd.HaveHangingCalls())
    conn.close()
    polkitd.ReleaseHangingCalls()
    wait_for("the answer to reach the probe", lambda: pending(bus) == 0)
    polkitd.SimulateHang(False)
    check(bus, "org.keyrenew.renew")
    assert probe.poll() is None


def test_shutdown_mid_check(bus, polkitd, probe):
    # The fixture's SIGTERM finds the check pending: cancelled, no leak.
    polkitd.SimulateHang(True)
    conn = send_check(bus, "org.keyrenew.renew")
    wait_for("the check to wait for polkit", lambda: pending(bus) == 1)
    conn.close()


# The agent registry. On this bus there is no logind, so no caller has a
# session: the registry falls back to one agent per uid, and the uid rule
# is what is checked here (sessions are covered by tests/unit/
# test-agent-registry.c).

AGENT_EXISTS = "org.keyrenew.KeyRenew1.Error.AgentExists"
NO_AGENT = "org.keyrenew.KeyRenew1.Error.NoAgent"

# Run as another user: registers an agent, says "ready", waits for a line,
# asks FindAgent and prints what it got, waits for stdin to close.
OTHER_USER_CLIENT = """
import sys, dbus
conn = dbus.bus.BusConnection(sys.argv[1])
probe = dbus.Interface(conn.get_object("org.keyrenew.Probe", "/org/keyrenew/Probe"), "org.keyrenew.Probe")
if sys.argv[2] == "register":
    probe.RegisterAgent(dbus.ObjectPath("/nobody/agent"))
print("ready " + conn.get_unique_name(), flush=True)
sys.stdin.readline()
try:
    owner, path = probe.FindAgent()
    print("found %s %s" % (owner, path), flush=True)
except dbus.exceptions.DBusException as e:
    print("error " + e.get_dbus_name(), flush=True)
sys.stdin.read()
"""


class OtherUser:
    def __init__(self, bus, register):
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "/usr/bin/python3", "-c", OTHER_USER_CLIENT, bus.address, "register" if register else "find"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/")
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["ready"], line
        self.unique_name = line[1]

    def find(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0


def agent_count(bus):
    conn = bus.connect()
    try:
        return int(probe_iface(conn).AgentCount())
    finally:
        conn.close()


def test_agent_found_for_its_user_only(bus, probe):
    tray = bus.connect()
    probe_iface(tray).RegisterAgent(dbus.ObjectPath("/tray/agent"))
    # Another program of the same user finds it.
    ctl = bus.connect()
    assert [str(x) for x in probe_iface(ctl).FindAgent()] == [tray.get_unique_name(), "/tray/agent"]
    # A second agent for the same user (and, here, no session) is refused.
    with pytest.raises(dbus.exceptions.DBusException) as e:
        probe_iface(ctl).RegisterAgent(dbus.ObjectPath("/ctl/agent"))
    assert e.value.get_dbus_name() == AGENT_EXISTS

    # Another user never gets root's agent...
    nobody = OtherUser(bus, register=False)
    assert nobody.find() == ["error", NO_AGENT]
    nobody.close()
    # ...and gets their own, while root keeps theirs.
    nobody = OtherUser(bus, register=True)
    assert nobody.find() == ["found", nobody.unique_name, "/nobody/agent"]
    assert [str(x) for x in probe_iface(ctl).FindAgent()] == [tray.get_unique_name(), "/tray/agent"]
    assert agent_count(bus) == 2
    # Leaving the bus unregisters.
    nobody.close()
    wait_for("nobody's agent to go", lambda: agent_count(bus) == 1)
    ctl.close()
    tray.close()


def test_agent_gone_with_its_client(bus, probe):
    tray = bus.connect()
    probe_iface(tray).RegisterAgent(dbus.ObjectPath("/tray/agent"))
    assert agent_count(bus) == 1
    tray.close()
    wait_for("the agent to go with its client", lambda: agent_count(bus) == 0)
    # The user's next client may register.
    tray = bus.connect()
    probe_iface(tray).RegisterAgent(dbus.ObjectPath("/tray/agent"))
    probe_iface(tray).UnregisterAgent(dbus.ObjectPath("/tray/agent"))
    assert agent_count(bus) == 0
    with pytest.raises(dbus.exceptions.DBusException):
        probe_iface(tray).UnregisterAgent(dbus.ObjectPath("/tray/agent"))
    tray.close()


def test_agent_gone_before_watched(bus, probe):
    # The client sends RegisterAgent and leaves at once: whichever of the
    # watch or the owner check sees it, the agent does not stay.
    for _ in range(20):
        conn = bus.connect()
        msg = dbus.lowlevel.MethodCallMessage(NAME, PATH, IFACE, "RegisterAgent")
        msg.append(dbus.ObjectPath("/tray/agent"), signature="o")
        conn.send_message(msg)
        conn.flush()
        conn.close()
    wait_for("no agent left", lambda: agent_count(bus) == 0)


def test_valgrind_clean(bus, polkitd, tmp_path):
    """A life under valgrind (in a build without sanitizers): allowed,
    denied, a caller gone mid-check, agents registered, found and gone,
    and SIGTERM while a check waits for polkit."""
    proc = start_probe(bus, tmp_path, wrapper=VALGRIND)
    polkitd.SetAllowed(["org.keyrenew.renew"])
    check(bus, "org.keyrenew.renew")
    with pytest.raises(dbus.exceptions.DBusException):
        check(bus, "org.keyrenew.manage")
    polkitd.SimulateHang(True)
    send_check(bus, "org.keyrenew.renew").close()
    wait_for("the check to reach polkit", lambda: polkitd.HaveHangingCalls())
    polkitd.ReleaseHangingCalls()
    wait_for("the answer to reach the probe", lambda: pending(bus) == 0, timeout=30)
    tray = bus.connect()
    probe_iface(tray).RegisterAgent(dbus.ObjectPath("/tray/agent"))
    ctl = bus.connect()
    assert str(probe_iface(ctl).FindAgent()[1]) == "/tray/agent"
    tray.close()
    wait_for("the agent to go with its client", lambda: agent_count(bus) == 0, timeout=30)
    probe_iface(ctl).RegisterAgent(dbus.ObjectPath("/ctl/agent"))
    send_check(bus, "org.keyrenew.renew").close()
    wait_for("a check waiting for polkit", lambda: pending(bus) == 1, timeout=30)
    stop_probe(proc)
    ctl.close()
