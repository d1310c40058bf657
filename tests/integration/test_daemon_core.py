# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewd's core against real peers: a private dbus-daemon, a private
pcscd (in its own mount namespace, see TESTBED.md) with vpcd readers, and a
minimal card that speaks vpcd's protocol just enough to be present.

Needs root (for the mount namespace). The daemon comes from
$KEYRENEW_BUILD_DIR/daemon/keyrenewd (default: build/ at the top)."""

import os
import pathlib
import signal
import socket
import struct
import subprocess
import threading
import time

import dbus
import dbus.mainloop.glib
import pytest
from gi.repository import GLib
from keyrenew_testbed import wait_for  # noqa: F401 (other tests import it from here)

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", TOP / "build"))
KEYRENEWD = BUILD / "daemon" / "keyrenewd"

BUS_NAME = "org.keyrenew.KeyRenew1"
PATH = "/org/keyrenew/KeyRenew1"
MANAGER = "org.keyrenew.KeyRenew1.Manager"

# Our share of the TCP ports (43000-43099). One vpcd reader.conf entry on
# port P gives two readers, "NAME 00 00" on P and "NAME 00 01" on P+1.
PORT_A = 43010
PORT_B = 43012
READERS_A = ["KRD Test A 00 00", "KRD Test A 00 01"]
READERS_B = ["KRD Test B 00 00", "KRD Test B 00 01"]

# T=1 offered, historical bytes all zero, TCK right.
ATR = bytes.fromhex("3B888001000000000000000009")




# Anything goes: the bus is ours and only our tests are on it.
PERMISSIVE_POLICY = """  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
"""


class PrivateBus:
    """A dbus-daemon of our own, configured like a session bus unless told
    another type and policy (XML inside <busconfig>)."""

    def __init__(self, tmp, bus_type="session", policy=PERMISSIVE_POLICY):
        self.dir = tmp / "bus"
        self.dir.mkdir()
        conf = self.dir / "bus.conf"
        conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{bus_type}</type>
  <listen>unix:path={self.dir}/socket</listen>
  <auth>EXTERNAL</auth>
{policy}</busconfig>
""")
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--print-address", "--nofork"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith("unix:"), self.address
        self.conn = dbus.bus.BusConnection(self.address)

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


class PrivatePcscd:
    """pcscd with its own reader.conf and socket: /run/pcscd is bound to a
    folder of ours in a mount namespace of its own."""

    def __init__(self, tmp):
        self.dir = tmp / "pcscd"
        self.run = self.dir / "run"
        self.run.mkdir(parents=True)
        self.socket = self.run / "pcscd.comm"
        self.proc = None

    def start(self, entries):
        """entries: [(friendly name, port)], or [] for no readers."""
        assert self.proc is None
        conf = self.dir / "reader.conf"
        conf.write_text("".join(
            f'FRIENDLYNAME "{name}"\nDEVICENAME /dev/null:0x{port:X}\n'
            f"LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID 0x{port:X}\n\n"
            for name, port in entries))
        if self.socket.exists():
            self.socket.unlink()
        os.makedirs("/run/pcscd", exist_ok=True)
        self.log = open(self.dir / "pcscd.log", "ab")
        # unshare and sh exec: the pid we get is pcscd's own.
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount --bind '{self.run}' /run/pcscd && exec pcscd -f -c '{conf}'"],
            stdout=self.log, stderr=self.log)
        wait_for("pcscd's socket", self.socket.exists)
        for _, port in entries:
            wait_for(f"vpcd listening on {port}", lambda p=port: port_listening(p))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()


def port_listening(port):
    # Not by connecting: to vpcd, a connection is a card being inserted.
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            return True
    return False


class FakeCard:
    """Just enough of vpcd's card side to be present: answers "get ATR" and
    refuses every APDU. Closing the connection pulls the card out."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self):
        try:
            while True:
                (n,) = struct.unpack(">H", self._recv(2))
                payload = self._recv(n)
                if n == 1:
                    if payload[0] == 4:
                        self.sock.sendall(struct.pack(">H", len(ATR)) + ATR)
                else:
                    self.sock.sendall(struct.pack(">H", 2) + b"\x6d\x00")
        except (EOFError, OSError):
            pass

    def remove(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


class Notifications:
    """The socket sd_notify() writes to ($NOTIFY_SOCKET)."""

    def __init__(self, tmp):
        self.path = str(tmp / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        self.messages.append(data)
        return data

    def wait_for(self, line, timeout=10.0):
        """Waits for a message with this line (or a line starting with it
        when it ends in '*'); returns the line."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                for l in m.split("\n"):
                    if l == line or (line.endswith("*") and l.startswith(line[:-1])):
                        return l
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line!r} from sd_notify; got {self.messages}")
            self.receive(left)

    def close(self):
        self.sock.close()


class Daemon:
    def __init__(self, tmp, bus, pcscd, args=(), env=None, wrapper=()):
        self.log_path = tmp / f"keyrenewd-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(pcscd.socket))
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("WATCHDOG_USEC", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [*wrapper, str(KEYRENEWD), "--bus", bus.address, "--log-target", "stderr", "--log-level", "debug",
             *args],
            stdout=self.log, stderr=self.log, env=full_env)
        self.bus = bus

    def output(self):
        return self.log_path.read_text()

    def wait_for_log(self, text, timeout=10.0):
        wait_for(f"{text!r} in the daemon's log", lambda: text in self.output(), timeout)

    def wait_for_name(self, timeout=10.0):
        def owned():
            assert self.proc.poll() is None, f"keyrenewd exited: {self.output()}"
            return self.bus.conn.name_has_owner(BUS_NAME)
        wait_for(f"{BUS_NAME} on the bus", owned, timeout)

    def prop(self, name):
        obj = self.bus.conn.get_object(BUS_NAME, PATH)
        return obj.Get(MANAGER, name, dbus_interface=dbus.PROPERTIES_IFACE)

    def wait_for_prop(self, name, value, timeout=10.0):
        wait_for(f"{name} == {value!r}", lambda: self.prop(name) == value, timeout)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def env(tmp_path):
    assert os.geteuid() == 0, "the private pcscd needs root (a mount namespace)"
    assert KEYRENEWD.exists(), f"{KEYRENEWD} is not built"
    bus = PrivateBus(tmp_path)
    pcscd = PrivatePcscd(tmp_path)
    daemons = []

    def start(args=(), env=None, wrapper=()):
        d = Daemon(tmp_path, bus, pcscd, args, env, wrapper)
        daemons.append(d)
        return d

    yield tmp_path, bus, pcscd, start
    for d in daemons:
        d.kill()
    pcscd.stop()
    bus.stop()


def version():
    out = subprocess.run([str(KEYRENEWD), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[-1]


def test_owns_name_and_shows_readers(env):
    tmp, bus, pcscd, start = env
    pcscd.start([("KRD Test A", PORT_A), ("KRD Test B", PORT_B)])
    d = start()
    d.wait_for_name()
    d.wait_for_prop("PcscState", "connected")
    d.wait_for_prop("Readers", READERS_A + READERS_B)
    assert d.prop("Version") == version()

    obj = bus.conn.get_object(BUS_NAME, PATH)
    xml = obj.Introspect(dbus_interface="org.freedesktop.DBus.Introspectable")
    assert 'interface name="org.freedesktop.DBus.ObjectManager"' in xml
    assert f'interface name="{MANAGER}"' in xml
    # No tokens yet: the object manager manages nothing.
    assert obj.GetManagedObjects(dbus_interface="org.freedesktop.DBus.ObjectManager") == {}
    assert d.stop() == 0


def test_card_insert_and_remove(env):
    tmp, bus, pcscd, start = env
    notify = Notifications(tmp)
    pcscd.start([("KRD Test A", PORT_A)])
    d = start(env={"NOTIFY_SOCKET": notify.path})
    d.wait_for_name()
    notify.wait_for("READY=1")
    d.wait_for_prop("Readers", READERS_A)

    card = FakeCard(PORT_A + 1)
    d.wait_for_log("Card inserted in KRD Test A 00 01 (ATR 3B 88 80 01 00 00 00 00 00 00 00 00 09)")
    notify.wait_for("STATUS=Readers: 2, cards: 1")
    card.remove()
    d.wait_for_log("Card removed from KRD Test A 00 01")
    notify.wait_for("STATUS=Readers: 2, cards: 0")
    # A card already inserted when the daemon starts is seen too.
    card = FakeCard(PORT_A)
    assert d.stop() == 0
    notify.wait_for("STOPPING=1")
    d2 = start()
    d2.wait_for_log("Card inserted in KRD Test A 00 00 (ATR 3B 88 80 01")
    card.remove()
    assert d2.stop() == 0
    notify.close()


def test_pcscd_stops_and_comes_back(env):
    tmp, bus, pcscd, start = env
    pcscd.start([("KRD Test A", PORT_A)])
    d = start()
    d.wait_for_name()
    d.wait_for_prop("Readers", READERS_A)

    loop_conn = dbus.bus.BusConnection(bus.address, mainloop=dbus.mainloop.glib.DBusGMainLoop())
    changes = []
    loop_conn.add_signal_receiver(
        lambda iface, changed, invalidated: changes.append(
            {str(k): (list(map(str, v)) if isinstance(v, dbus.Array) else str(v)) for k, v in changed.items()}),
        signal_name="PropertiesChanged", dbus_interface=dbus.PROPERTIES_IFACE, path=PATH)

    def seen(change):
        ctx = GLib.MainContext.default()
        while ctx.iteration(False):
            pass
        return change in changes

    pcscd.stop()
    wait_for("PcscState no-service signalled", lambda: seen({"PcscState": "no-service"}))
    wait_for("Readers emptied signalled", lambda: seen({"Readers": []}))
    assert d.prop("PcscState") == "no-service"
    assert d.prop("Readers") == []

    # Back with other readers: the list follows pcscd's.
    pcscd.start([("KRD Test B", PORT_B)])
    wait_for("PcscState connected signalled", lambda: seen({"PcscState": "connected"}), timeout=20)
    wait_for("Readers of B signalled", lambda: seen({"Readers": READERS_B}), timeout=20)
    assert d.prop("Readers") == READERS_B
    loop_conn.close()
    assert d.stop() == 0


def test_pcscd_absent_at_start_then_no_readers(env):
    tmp, bus, pcscd, start = env
    d = start()
    d.wait_for_name()
    d.wait_for_prop("PcscState", "no-service")
    d.wait_for_log("Cannot reach pcscd")
    pcscd.start([])
    d.wait_for_prop("PcscState", "no-readers", timeout=20)
    assert d.prop("Readers") == []
    assert d.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_cleanly(env, sig):
    tmp, bus, pcscd, start = env
    notify = Notifications(tmp)
    pcscd.start([("KRD Test A", PORT_A)])
    d = start(env={"NOTIFY_SOCKET": notify.path})
    d.wait_for_name()
    notify.wait_for("READY=1")
    t0 = time.monotonic()
    assert d.stop(sig) == 0
    # Waking the PC/SC thread is quick, whatever it was doing.
    assert time.monotonic() - t0 < 2
    notify.wait_for("STOPPING=1")
    assert f"Received {signal.Signals(sig).name}" in d.output()
    assert not bus.conn.name_has_owner(BUS_NAME)
    notify.close()


def test_exits_cleanly_while_waiting_for_pcscd(env):
    tmp, bus, pcscd, start = env
    d = start()
    d.wait_for_name()
    d.wait_for_prop("PcscState", "no-service")
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 2


def test_name_already_taken(env):
    tmp, bus, pcscd, start = env
    first = start()
    first.wait_for_name()
    second = start()
    assert second.proc.wait(timeout=10) == 1
    assert f"{BUS_NAME} is already taken on this bus" in second.output()
    assert first.proc.poll() is None
    assert first.stop() == 0


def test_bad_config_refused_with_line(env):
    tmp, bus, pcscd, start = env
    conf = tmp / "keyrenewd.conf"
    conf.write_text("# keyrenewd\n[Expiry]\nWarnDays=7,14,30\n")
    d = start(args=["--config", str(conf)])
    assert d.proc.wait(timeout=10) == 1
    assert f"{conf}:3: WarnDays=7,14,30: the days must be sorted" in d.output()
    assert not bus.conn.name_has_owner(BUS_NAME)

    missing = start(args=["--config", str(tmp / "missing.conf")])
    assert missing.proc.wait(timeout=10) == 1
    assert "missing.conf: No such file or directory" in missing.output()

    conf.write_text("[Daemon]\nLogLevel=warning\n[Portal]\nUrl=http://127.0.0.1:43050/\n")
    good = start(args=["--config", str(conf)])
    good.wait_for_name()
    assert good.stop() == 0


def test_watchdog(env):
    tmp, bus, pcscd, start = env
    notify = Notifications(tmp)
    d = start(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"})
    d.wait_for_name()
    t0 = time.monotonic()
    while sum(m == "WATCHDOG=1" for m in notify.messages) < 4:
        assert time.monotonic() - t0 < 2, notify.messages
        notify.receive(2)
    assert d.stop() == 0
    notify.close()


def total_context_switches(pid):
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def test_idle_daemon_does_not_wake_up(env):
    """No polling: with readers and a card present and nothing happening,
    no thread of keyrenewd runs for 20 s."""
    tmp, bus, pcscd, start = env
    pcscd.start([("KRD Test A", PORT_A)])
    card = FakeCard(PORT_A)
    d = start()
    d.wait_for_name()
    d.wait_for_log("Card inserted in KRD Test A 00 00")
    time.sleep(1)
    before = total_context_switches(d.proc.pid)
    time.sleep(20)
    woke = total_context_switches(d.proc.pid) - before
    # pcsc-lite's client renews an INFINITE wait once a minute: allow that.
    assert woke <= 4, f"{woke} context switches in 20 s of idling"
    card.remove()
    assert d.stop() == 0


def test_valgrind_clean(env):
    """A whole life under valgrind: start, readers, a card in and out,
    pcscd gone and back, SIGTERM. No leak, no error."""
    tmp, bus, pcscd, start = env
    pcscd.start([("KRD Test A", PORT_A)])
    d = start(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                       "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                       "--quiet"])
    d.wait_for_name(timeout=60)
    d.wait_for_prop("Readers", READERS_A, timeout=30)
    card = FakeCard(PORT_A + 1)
    d.wait_for_log("Card inserted in KRD Test A 00 01", timeout=30)
    card.remove()
    d.wait_for_log("Card removed from KRD Test A 00 01", timeout=30)
    pcscd.stop()
    d.wait_for_prop("PcscState", "no-service", timeout=30)
    pcscd.start([("KRD Test A", PORT_A)])
    d.wait_for_prop("PcscState", "connected", timeout=60)
    status = d.stop(timeout=60)
    assert status == 0, d.output()
