# SPDX-License-Identifier: GPL-2.0-or-later
"""Tokens and certificates on the bus, with virtual PIV keys
(tests/vcard/keyrenew-vcard) in a private pcscd's vpcd readers, and the
documented interface (dbus/org.keyrenew.KeyRenew1.xml) against what the
daemon exports.

Needs root (the private pcscd's mount namespace). Binaries come from
$KEYRENEW_BUILD_DIR (default: build/ at the top)."""

import datetime
import fcntl
import json
import os
import pathlib
import subprocess
import time
import xml.etree.ElementTree as ET

import dbus
import dbus.mainloop.glib
import pytest
from gi.repository import GLib

from test_daemon_core import (BUILD, BUS_NAME, KEYRENEWD, MANAGER, PATH, Daemon, FakeCard, PrivateBus,
                              PrivatePcscd, total_context_switches, wait_for)

TOP = pathlib.Path(__file__).resolve().parents[2]
VCARD = BUILD / "tests" / "vcard" / "keyrenew-vcard"
XML = TOP / "dbus" / "org.keyrenew.KeyRenew1.xml"

TOKEN = "org.keyrenew.KeyRenew1.Token"
CERT = "org.keyrenew.KeyRenew1.Certificate"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
ERROR = "org.keyrenew.KeyRenew1.Error."

# Our share of the TCP ports (47000-47099). One vpcd entry on port P gives
# readers "NAME 00 00" on P and "NAME 00 01" on P+1.
PORT_A = 47020
READER_A0 = "KRT Tokens A 00 00"
READER_A1 = "KRT Tokens A 00 01"
# pcscd polls vpcd readers every 400 ms and misses a card that is replaced
# faster than that (see TESTBED.md): a reader rests between two cards.
REPLUG_PAUSE = 1.0
# Two runs of this file at once (two checkouts, two build folders) would
# share those ports: each test holds this lock.
PORT_LOCK = pathlib.Path("/tmp/keyrenew-test-daemon-tokens-47000.lock")
DAY_US = 86400 * 1_000_000


class VCard:
    """A virtual PIV key: a state file, and a keyrenew-vcard process while
    it is plugged in."""

    def __init__(self, tmp, name, serial, *create_args):
        self.state = tmp / f"{name}.card"
        self.serial = serial
        self.proc = None
        self.run(["create", str(self.state), "--serial", str(serial), *create_args])

    @staticmethod
    def run(args):
        return subprocess.run([str(VCARD), *args], check=True, capture_output=True, text=True).stdout

    def issue(self, slot, algorithm, subject, *args):
        self.run(["issue", str(self.state), "--slot", slot, "--algorithm", algorithm, "--subject", subject,
                  *args])

    def show(self):
        return json.loads(self.run(["show", str(self.state), "--json"]))

    def insert(self, port, *faults):
        assert self.proc is None
        self.proc = subprocess.Popen([str(VCARD), "run", str(self.state), "--port", str(port), *faults],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_gone(self, timeout=20):
        status = self.proc.wait(timeout=timeout)
        self.proc = None
        return status

    def remove(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Watcher:
    """Every signal keyrenewd sends, collected through a GLib main loop."""

    def __init__(self, address):
        self.conn = dbus.bus.BusConnection(address, mainloop=dbus.mainloop.glib.DBusGMainLoop())
        self.signals = []
        self.conn.add_signal_receiver(self._record, sender_keyword="sender", member_keyword="member",
                                      path_keyword="path", interface_keyword="interface")

    def _record(self, *args, sender=None, member=None, path=None, interface=None):
        self.signals.append((time.monotonic(), str(interface), str(member), str(path), args))

    def pump(self):
        ctx = GLib.MainContext.default()
        while ctx.iteration(False):
            pass

    def find(self, member, path=None, interface=None):
        self.pump()
        return [s for s in self.signals
                if s[2] == member and (path is None or s[3] == path) and (interface is None or s[1] == interface)]

    def wait(self, member, path=None, count=1, timeout=15):
        return wait_for(f"{count} x {member} on {path}",
                        lambda: len(self.find(member, path)) >= count and self.find(member, path), timeout)

    def wait_added(self, path, timeout=15):
        """The time InterfacesAdded for path arrived, to a millisecond:
        pumps the main loop without the 50 ms steps of wait_for()."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            for s in self.signals:
                if s[2] == "InterfacesAdded" and s[4][0] == path:
                    return s[0]
            time.sleep(0.001)
        raise AssertionError(f"no InterfacesAdded for {path}")

    def close(self):
        self.conn.close()


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.bus = PrivateBus(tmp)
        self.pcscd = PrivatePcscd(tmp)
        self.pcscd.start([("KRT Tokens A", PORT_A)])
        self.daemons = []
        self.cards = []
        self.state_dir = tmp / "state"
        self.watcher = Watcher(self.bus.address)

    def start(self, args=(), wrapper=(), state=True):
        extra = ["--state-dir", str(self.state_dir)] if state else []
        d = Daemon(self.tmp, self.bus, self.pcscd, [*extra, *args], wrapper=wrapper)
        self.daemons.append(d)
        return d

    def card(self, name, serial, *create_args):
        c = VCard(self.tmp, name, serial, *create_args)
        self.cards.append(c)
        return c

    def obj(self, path):
        return self.bus.conn.get_object(BUS_NAME, path)

    def manager(self, method, *args, **kw):
        return getattr(self.obj(PATH), method)(*args, dbus_interface=MANAGER, **kw)

    def tokens(self):
        return [str(p) for p in self.obj(PATH).Get(MANAGER, "Tokens", dbus_interface=dbus.PROPERTIES_IFACE)]

    def props(self, path, interface):
        return self.obj(path).GetAll(interface, dbus_interface=dbus.PROPERTIES_IFACE)

    def managed(self):
        return self.obj(PATH).GetManagedObjects(dbus_interface=OBJECT_MANAGER)

    def token_path(self, serial, timeout=15):
        def find():
            try:
                return str(self.manager("GetToken", str(serial)))
            except dbus.DBusException as e:
                assert e.get_dbus_name() == ERROR + "NoSuchToken", e
                return None
        return wait_for(f"token {serial}", find, timeout)

    def wait_state(self, path, state, timeout=15):
        wait_for(f"{path} State == {state}", lambda: self.props(path, TOKEN)["State"] == state, timeout)

    def close(self):
        for c in self.cards:
            c.remove()
        for d in self.daemons:
            d.kill()
        self.watcher.close()
        self.pcscd.stop()
        self.bus.stop()


@pytest.fixture
def env(tmp_path):
    assert os.geteuid() == 0, "the private pcscd needs root (a mount namespace)"
    assert KEYRENEWD.exists(), f"{KEYRENEWD} is not built"
    assert VCARD.exists(), f"{VCARD} is not built"
    with open(PORT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        e = Env(tmp_path)
        yield e
        e.close()


def days(n):
    """A validity ending n days less an hour from now: DaysLeft is n - 1
    however long the test takes (to within the hour)."""
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=n, hours=-1)
    return ["--not-after", end.strftime("%Y%m%d%H%M%SZ")]


def usec(iso):
    return int(datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp()) * 1_000_000


def read_token(env, serial):
    """Waits until the token is read (not checking) and returns its path and
    properties."""
    path = env.token_path(serial)
    wait_for(f"{serial} read", lambda: env.props(path, TOKEN)["State"] not in ("checking",)
             and env.props(path, TOKEN)["Progress"] == 100)
    return path, env.props(path, TOKEN)


def test_token_and_certificate_appear(env):
    card = env.card("alice", 12345678)
    card.issue("9a", "rsa2048", "/O=Example/CN=Alice", *days(10))
    shown = card.show()
    d = env.start()
    d.wait_for_name()
    d.wait_for_prop("Readers", [READER_A0, READER_A1])

    t0 = time.monotonic()
    card.insert(PORT_A)
    path = f"{PATH}/token/_312345678"
    token_latency = (env.watcher.wait_added(path) - t0) * 1000
    cert_latency = (env.watcher.wait_added(f"{path}/cert/_39a") - t0) * 1000
    assert env.token_path(12345678) == path
    path, tok = read_token(env, 12345678)
    assert env.tokens() == [path]
    assert tok["Serial"] == "12345678"
    assert tok["Driver"] == "piv"
    assert tok["Reader"] == READER_A0
    assert tok["Present"] is True or tok["Present"] == 1
    assert tok["PinRetriesLeft"] == 3
    assert tok["FirmwareVersion"] == "5.4.3"
    assert len(tok["Chuid"]) == 32
    assert tok["State"] == "expiring"
    assert tok["LastError"] == ""

    cert_path = f"{path}/cert/_39a"
    assert list(tok["Certificates"]) == [cert_path]
    cert = env.props(cert_path, CERT)
    slot = shown["slots"][0]
    assert cert["Token"] == path
    assert cert["Slot"] == "9a"
    assert cert["Subject"] == "CN=Alice,O=Example"
    assert cert["Issuer"] == "CN=Alice,O=Example"
    assert cert["Serial"] == slot["certificate"]["serial"].lower()
    assert cert["NotAfter"] == usec(slot["certificate"]["not_after"])
    assert cert["NotBefore"] == usec(slot["certificate"]["not_before"])
    assert cert["DaysLeft"] == 9
    assert cert["Status"] == "expiring"
    assert cert["KeyType"] == "rsa"
    assert cert["KeyBits"] == 2048
    assert cert["Curve"] == ""
    assert list(cert["Usage"]) == ["signing"]
    assert cert["KeyOrigin"] == "generated"
    assert cert["PinPolicy"] == "once"
    assert cert["RenewalState"] == "none"
    assert len(cert["IssuerHash"]) == 64 and len(cert["Fingerprint"]) == 64

    warnings = env.watcher.wait("ExpiryWarning", cert_path)
    assert [tuple(int(a) for a in w[4]) for w in warnings] == [(9, 14)]
    print(f"\nlatency: insertion -> Token on the bus {token_latency:.0f} ms, "
          f"-> Certificate {cert_latency:.0f} ms")

    # Reading it spent no PIN try.
    after = card.show()
    assert after["pin"]["retries_left"] == 3
    assert after["slots"][0]["uses"] == slot["uses"]
    assert d.stop() == 0


def test_remove_and_reinsert(env):
    card = env.card("bob", 23456789)
    card.issue("9c", "eccp256", "/O=Example/CN=Bob", *days(10))
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A + 1)
    path, tok = read_token(env, 23456789)
    assert tok["Reader"] == READER_A1
    cert_path = f"{path}/cert/_39c"
    env.watcher.wait("ExpiryWarning", cert_path)

    card.remove()
    wait_for("Present false", lambda: not env.props(path, TOKEN)["Present"])
    tok = env.props(path, TOKEN)
    assert tok["State"] == "expiring"
    assert tok["Reader"] == READER_A1
    managed = env.managed()
    assert TOKEN in managed[path] and CERT in managed[cert_path]
    assert not env.watcher.find("InterfacesRemoved")
    # Refresh on a token that is not there says so.
    with pytest.raises(dbus.DBusException) as e:
        env.obj(path).Refresh(dbus_interface=TOKEN)
    assert e.value.get_dbus_name() == ERROR + "TokenAbsent"
    assert "23456789" in e.value.get_dbus_message()

    # Back, in the other reader: the same object, no second warning.
    time.sleep(REPLUG_PAUSE)
    card.insert(PORT_A)
    wait_for("Present true", lambda: env.props(path, TOKEN)["Present"])
    path2, tok = read_token(env, 23456789)
    assert path2 == path
    assert tok["Reader"] == READER_A0
    assert env.tokens() == [path]
    time.sleep(0.5)
    assert len(env.watcher.find("ExpiryWarning", cert_path)) == 1
    # Every change came with PropertiesChanged: Present went false and back.
    presents = [s[4][1]["Present"] for s in env.watcher.find("PropertiesChanged", path) if "Present" in s[4][1]]
    assert presents == [False, True]
    assert d.stop() == 0


def test_two_cards_in_two_readers(env):
    a = env.card("a", 11111111)
    a.issue("9a", "eccp256", "/CN=A", *days(100))
    b = env.card("b", 22222222)
    b.issue("9a", "eccp384", "/CN=B", *days(5))
    d = env.start()
    d.wait_for_name()
    a.insert(PORT_A)
    b.insert(PORT_A + 1)
    pa, ta = read_token(env, 11111111)
    pb, tb = read_token(env, 22222222)
    assert sorted(env.tokens()) == sorted([pa, pb])
    assert (ta["Reader"], tb["Reader"]) == (READER_A0, READER_A1)
    assert ta["State"] == "idle" and tb["State"] == "expiring"
    ca = env.props(f"{pa}/cert/_39a", CERT)
    cb = env.props(f"{pb}/cert/_39a", CERT)
    assert (ca["Status"], ca["DaysLeft"], ca["Curve"], ca["KeyBits"]) == ("valid", 99, "P-256", 256)
    assert (cb["Status"], cb["DaysLeft"], cb["Curve"], cb["KeyBits"]) == ("expiring", 4, "P-384", 384)
    assert not env.watcher.find("ExpiryWarning", f"{pa}/cert/_39a")
    w = env.watcher.wait("ExpiryWarning", f"{pb}/cert/_39a")
    assert tuple(int(x) for x in w[0][4]) == (4, 7)
    b.remove()
    wait_for("B absent", lambda: not env.props(pb, TOKEN)["Present"])
    assert env.props(pa, TOKEN)["Present"]
    assert d.stop() == 0


def test_signing_and_encryption_certificates(env):
    card = env.card("carol", 34567890)
    card.issue("9a", "rsa2048", "/O=Example/CN=Carol Signing", *days(200), "--usage", "signing")
    card.issue("9d", "eccp256", "/O=Example/CN=Carol Encryption", *days(200), "--usage", "encryption")
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A)
    path, tok = read_token(env, 34567890)
    assert list(tok["Certificates"]) == [f"{path}/cert/_39a", f"{path}/cert/_39d"]
    sig = env.props(f"{path}/cert/_39a", CERT)
    enc = env.props(f"{path}/cert/_39d", CERT)
    assert (sig["Subject"], list(sig["Usage"]), sig["KeyType"]) == ("CN=Carol Signing,O=Example", ["signing"], "rsa")
    assert (enc["Subject"], list(enc["Usage"]), enc["KeyType"]) == ("CN=Carol Encryption,O=Example",
                                                                    ["encryption"], "ec")
    assert tok["State"] == "idle"
    assert d.stop() == 0


def test_cards_without_vendor_serial(env):
    """An older key (no GET SERIAL, no GET METADATA) is known by its CHUID;
    one without a CHUID either, by its first certificate."""
    old = env.card("old", 1, "--yk-version", "4.3.0")
    old.issue("9c", "eccp256", "/CN=Old", *days(100))
    bare = env.card("bare", 2, "--yk-version", "4.3.0", "--no-chuid")
    bare.issue("9a", "eccp256", "/CN=Bare", *days(100))
    d = env.start()
    d.wait_for_name()
    old.insert(PORT_A)
    bare.insert(PORT_A + 1)
    wait_for("two tokens read", lambda: len(env.tokens()) == 2 and all(
        env.props(p, TOKEN)["Progress"] == 100 for p in env.tokens()), timeout=20)
    by_reader = {env.props(p, TOKEN)["Reader"]: (p, env.props(p, TOKEN)) for p in env.tokens()}
    path, tok = by_reader[READER_A0]
    assert tok["Serial"] == tok["Chuid"] and len(tok["Serial"]) == 32
    assert tok["FirmwareVersion"] == "4.3.0"
    cert = env.props(f"{path}/cert/_39c", CERT)
    assert (cert["KeyOrigin"], cert["PinPolicy"], cert["TouchPolicy"]) == ("", "", "")
    path, tok = by_reader[READER_A1]
    assert tok["Serial"] == "" and tok["Chuid"] == ""
    fingerprint = env.props(f"{path}/cert/_39a", CERT)["Fingerprint"]
    assert path == f"{PATH}/token/cert_2d{fingerprint[:16]}"
    assert str(env.manager("GetToken", f"cert-{fingerprint[:16]}")) == path
    assert d.stop() == 0


def test_expired_certificate(env):
    card = env.card("dave", 45678901)
    card.issue("9a", "eccp256", "/CN=Dave", "--not-before", "20200101000000Z", "--not-after", "20210101000000Z")
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A)
    path, tok = read_token(env, 45678901)
    cert = env.props(f"{path}/cert/_39a", CERT)
    assert cert["Status"] == "expired"
    assert cert["DaysLeft"] < -300
    assert tok["State"] == "expired"
    w = env.watcher.wait("ExpiryWarning", f"{path}/cert/_39a")
    assert tuple(int(x) for x in w[0][4]) == (0, 0)
    assert d.stop() == 0


def test_card_without_piv_is_not_a_token(env):
    d = env.start()
    d.wait_for_name()
    card = FakeCard(PORT_A)
    d.wait_for_log("The card in KRT Tokens A 00 00 is not one keyrenew reads")
    assert env.tokens() == []
    card.remove()
    assert d.stop() == 0


@pytest.mark.parametrize("vanish_after", [1, 3, 6, 9, 14, 20])
def test_card_pulled_during_read(env, vanish_after):
    card = env.card("erin", 56789012)
    card.issue("9a", "rsa2048", "/CN=Erin", *days(10))
    card.issue("9d", "eccp256", "/CN=Erin", *days(10))
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A, "--vanish-after", str(vanish_after))
    assert card.wait_gone() == 3
    d.wait_for_log("Card removed from KRT Tokens A 00 00")
    assert d.proc.poll() is None
    tokens = env.tokens()
    if tokens:
        # Identified before it went: remembered, absent, and why it failed.
        tok = env.props(tokens[0], TOKEN)
        assert not tok["Present"]
        if tok["State"] == "failed":
            assert tok["LastError"]
    # The same card, left in this time, reads fine.
    time.sleep(REPLUG_PAUSE)
    card.insert(PORT_A)
    path, tok = read_token(env, 56789012)
    assert tok["Present"] and tok["State"] == "expiring" and tok["LastError"] == ""
    assert len(tok["Certificates"]) == 2
    assert d.stop() == 0


def test_refresh(env):
    card = env.card("fay", 67890123)
    card.issue("9a", "eccp256", "/CN=Fay", *days(300))
    d = env.start()
    d.wait_for_name()
    # Nothing plugged in: returns at once.
    env.manager("Refresh")
    card.insert(PORT_A)
    path, tok = read_token(env, 67890123)
    seen = tok["LastSeen"]
    n_states = len(env.watcher.find("PropertiesChanged", path))
    env.manager("Refresh", timeout=30)
    # Returned after the read: the token went through checking and back.
    states = [s[4][1]["State"] for s in env.watcher.find("PropertiesChanged", path)[n_states:]
              if "State" in s[4][1]]
    assert states == ["checking", "idle"]
    assert env.props(path, TOKEN)["LastSeen"] > seen
    env.obj(path).Refresh(dbus_interface=TOKEN, timeout=30)
    with pytest.raises(dbus.DBusException) as e:
        env.manager("GetToken", "99999999")
    assert e.value.get_dbus_name() == ERROR + "NoSuchToken"
    assert "99999999" in e.value.get_dbus_message()
    assert card.show()["pin"]["retries_left"] == 3
    assert d.stop() == 0


def test_refresh_sees_pin_tries_spent_elsewhere(env):
    """Another program (yubico-piv-tool) spends PIN tries; Refresh shows
    them, and a blocked PIN makes the token "locked"."""
    card = env.card("lee", 13579246)
    card.issue("9a", "eccp256", "/CN=Lee", *days(300))
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A)
    path, tok = read_token(env, 13579246)
    assert tok["PinRetriesLeft"] == 3

    def wrong_pin():
        subprocess.run(["yubico-piv-tool", "-r", READER_A0, "-a", "verify-pin", "-P", "999999"],
                       env=dict(os.environ, PCSCLITE_CSOCK_NAME=str(env.pcscd.socket)), capture_output=True,
                       timeout=30)

    wrong_pin()
    env.obj(path).Refresh(dbus_interface=TOKEN, timeout=30)
    tok = env.props(path, TOKEN)
    assert (tok["PinRetriesLeft"], tok["State"]) == (2, "idle")
    wrong_pin()
    wrong_pin()
    env.manager("Refresh", timeout=30)
    tok = env.props(path, TOKEN)
    assert (tok["PinRetriesLeft"], tok["State"]) == (0, "locked")
    assert card.show()["pin"]["blocked"]
    assert d.stop() == 0


def test_refresh_of_pulled_card_fails_cleanly(env):
    card = env.card("gus", 78901234)
    card.issue("9a", "eccp256", "/CN=Gus", *days(300))
    d = env.start()
    d.wait_for_name()
    # Enough APDUs for the first read, then gone in the middle of the next.
    card.insert(PORT_A, "--vanish-after", "40")
    path, tok = read_token(env, 78901234)
    with pytest.raises(dbus.DBusException) as e:
        env.obj(path).Refresh(dbus_interface=TOKEN, timeout=30)
    assert e.value.get_dbus_name() in (ERROR + "CardError", ERROR + "TokenAbsent")
    wait_for("absent", lambda: not env.props(path, TOKEN)["Present"])
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_restart_remembers_tokens(env):
    card = env.card("hal", 89012345, "--pin", "87654321")
    card.issue("9a", "rsa2048", "/CN=Hal", *days(10))
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A)
    path, _ = read_token(env, 89012345)
    env.watcher.wait("ExpiryWarning", f"{path}/cert/_39a")
    assert d.stop() == 0
    card.remove()

    files = list((env.state_dir / "tokens").iterdir())
    assert [f.name for f in files] == ["_389012345.token"]
    text = files[0].read_text()
    assert "87654321" not in text and b"87654321".hex() not in text  # no PIN, ever
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"

    d2 = env.start()
    d2.wait_for_name()
    assert env.token_path(89012345) == path
    tok = env.props(path, TOKEN)
    assert not tok["Present"]
    assert tok["State"] == "expiring"
    assert tok["PinRetriesLeft"] == 3
    assert env.props(f"{path}/cert/_39a", CERT)["DaysLeft"] == 9
    # Announced before the restart: not again.
    time.sleep(0.5)
    assert len(env.watcher.find("ExpiryWarning")) == 1
    time.sleep(REPLUG_PAUSE)
    card.insert(PORT_A)
    wait_for("present", lambda: env.props(path, TOKEN)["Present"])
    read_token(env, 89012345)
    time.sleep(0.5)
    assert len(env.watcher.find("ExpiryWarning")) == 1
    assert d2.stop() == 0

    # Without a state directory nothing is remembered.
    d3 = env.start(state=False)
    d3.wait_for_name()
    d3.wait_for_log("tokens are not remembered")
    assert d3.stop() == 0


def introspect(env, path):
    xml = env.obj(path).Introspect(dbus_interface="org.freedesktop.DBus.Introspectable")
    return {i.get("name"): i for i in ET.fromstring(xml).findall("interface")}


def members(iface):
    """Every member with its signature and access, and annotations on
    properties: what the documentation promises."""
    out = set()
    for m in iface.findall("method"):
        out.add(("method", m.get("name"),
                 tuple((a.get("name"), a.get("type"), a.get("direction", "in")) for a in m.findall("arg"))))
    for s in iface.findall("signal"):
        out.add(("signal", s.get("name"), tuple((a.get("name"), a.get("type")) for a in s.findall("arg"))))
    for p in iface.findall("property"):
        notes = tuple(sorted((a.get("name"), a.get("value")) for a in p.findall("annotation")))
        out.add(("property", p.get("name"), p.get("type"), p.get("access"), notes))
    return out


def test_interface_xml_matches_daemon(env):
    """Both ways: nothing exported that is not documented, nothing
    documented that is not exported."""
    card = env.card("ivy", 90123456)
    card.issue("9a", "eccp256", "/CN=Ivy", *days(10))
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A)
    path, tok = read_token(env, 90123456)
    doc = {i.get("name"): i for i in ET.parse(XML).getroot().findall("interface")}
    ours = {
        PATH: [MANAGER],
        path: [TOKEN],
        list(tok["Certificates"])[0]: [CERT],
    }
    for obj_path, names in ours.items():
        live = introspect(env, obj_path)
        live_ours = {n for n in live if n.startswith("org.keyrenew.")}
        assert live_ours == set(names), obj_path
        for n in names:
            assert members(live[n]) == members(doc[n]), f"{n}: daemon - doc {members(live[n]) - members(doc[n])}, " \
                f"doc - daemon {members(doc[n]) - members(live[n])}"
    # The Agent interface is documented for the clients that implement it.
    assert set(doc) == {MANAGER, TOKEN, CERT, "org.keyrenew.KeyRenew1.Agent"}
    assert OBJECT_MANAGER in introspect(env, PATH)
    # Every member is documented in a comment right before it.
    text = XML.read_text()
    for iface in doc.values():
        for m in list(iface):
            if m.tag in ("method", "signal", "property"):
                name = m.get("name")
                assert f"      {name}:" in text or f"    {name}:" in text, f"{name} has no documentation"
    assert d.stop() == 0


def test_idle_wakeups_with_card_present(env):
    """No polling: with a token read and a certificate timer armed, no
    thread of keyrenewd runs while nothing happens."""
    card = env.card("jo", 10293847)
    card.issue("9a", "eccp256", "/CN=Jo", *days(10))
    d = env.start()
    d.wait_for_name()
    card.insert(PORT_A)
    read_token(env, 10293847)
    time.sleep(1)
    before = total_context_switches(d.proc.pid)
    time.sleep(20)
    woke = total_context_switches(d.proc.pid) - before
    print(f"\nidle: {woke} context switches in 20 s with a card present")
    # pcsc-lite's client renews an INFINITE wait once a minute: allow that.
    assert woke <= 4, f"{woke} context switches in 20 s of idling"
    assert d.stop() == 0


def test_valgrind_clean(env):
    """Tokens under valgrind: a card read, pulled, plugged in again, a
    card pulled mid-read, Refresh, SIGTERM with a card in. No leak, no
    error, threads joined."""
    card = env.card("kim", 11223344)
    card.issue("9a", "rsa2048", "/CN=Kim", *days(10))
    card.issue("9d", "eccp256", "/CN=Kim", *days(10))
    d = env.start(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                           "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                           "--quiet"])
    d.wait_for_name(timeout=60)
    card.insert(PORT_A)
    path, _ = read_token(env, 11223344)
    env.manager("Refresh", timeout=60)
    card.remove()
    wait_for("absent", lambda: not env.props(path, TOKEN)["Present"], timeout=30)
    time.sleep(REPLUG_PAUSE)
    card.insert(PORT_A, "--vanish-after", "12")
    card.wait_gone(timeout=60)
    d.wait_for_log("Card removed from KRT Tokens A 00 00", timeout=30)
    time.sleep(REPLUG_PAUSE)
    card.insert(PORT_A)
    wait_for("present", lambda: env.props(path, TOKEN)["Present"], timeout=30)
    read_token(env, 11223344)
    status = d.stop(timeout=60)
    assert status == 0, d.output()
