# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewctl against a real keyrenewd on a private bus, with a private
pcscd and a virtual PIV key (tests/vcard/keyrenew-vcard).

Needs root (the private pcscd's mount namespace). Binaries come from
$KEYRENEW_BUILD_DIR (default: build/ at the top); the Chinese catalogue
from $KEYRENEW_BUILD_DIR/po."""

import fcntl
import json
import os
import pathlib
import pty
import re
import subprocess
import xml.etree.ElementTree as ET

import dbus
import pytest

from test_daemon_core import BUILD, BUS_NAME, KEYRENEWD, MANAGER, PATH, Daemon, PrivateBus, PrivatePcscd, wait_for
from test_daemon_tokens import VCARD, XML, VCard, Watcher, days

KEYRENEWCTL = BUILD / "ctl" / "keyrenewctl"
LOCALEDIR = BUILD / "po"
TOKEN = "org.keyrenew.KeyRenew1.Token"
CERT = "org.keyrenew.KeyRenew1.Certificate"

# Our share of the TCP ports (51000-51099): one vpcd entry on P gives
# readers "NAME 00 00" on P and "NAME 00 01" on P+1.
PORT_A = 51010
READER_A0 = "KRC Ctl A 00 00"
PORT_LOCK = pathlib.Path("/tmp/keyrenew-test-keyrenewctl-51000.lock")

NOT_RUNNING = ("keyrenewd is not running (org.keyrenew.KeyRenew1 is not on the system bus). "
               "Start it with: systemctl start keyrenewd")
NOT_RUNNING_ZH = "keyrenewd 没有运行"
CHINESE = {"LANGUAGE": "zh_CN", "LANG": "C.UTF-8", "LC_ALL": "", "KEYRENEW_LOCALEDIR": str(LOCALEDIR)}


def ctl(*args, bus=None, env=None):
    """Runs keyrenewctl (in English unless env says otherwise, colour off
    as it is not on a tty); returns the CompletedProcess."""
    full_env = dict(os.environ, LANGUAGE="C", LANG="C.UTF-8", LC_ALL="")
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    bus_args = [f"--bus={bus}"] if bus else []
    return subprocess.run([str(KEYRENEWCTL), *bus_args, *args], capture_output=True, text=True, env=full_env,
                          timeout=60)


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.bus = PrivateBus(tmp)
        self.pcscd = PrivatePcscd(tmp)
        self.pcscd.start([("KRC Ctl A", PORT_A)])
        self.daemon = None
        self.cards = []
        self.watcher = Watcher(self.bus.address)

    def start(self):
        self.daemon = Daemon(self.tmp, self.bus, self.pcscd, ["--state-dir", str(self.tmp / "state")])
        self.daemon.wait_for_name()
        return self.daemon

    def card(self, name, serial):
        c = VCard(self.tmp, name, serial)
        self.cards.append(c)
        return c

    def ctl(self, *args, env=None):
        return ctl(*args, bus=self.bus.address, env=env)

    def obj(self, path):
        return self.bus.conn.get_object(BUS_NAME, path)

    def props(self, path, interface):
        return self.obj(path).GetAll(interface, dbus_interface=dbus.PROPERTIES_IFACE)

    def read_token(self, serial):
        path = wait_for(f"token {serial}", lambda: self._token(serial), 20)
        wait_for(f"{serial} read", lambda: self.props(path, TOKEN)["State"] != "checking"
                 and self.props(path, TOKEN)["Progress"] == 100, 20)
        return path

    def _token(self, serial):
        try:
            return str(self.obj(PATH).GetToken(str(serial), dbus_interface=MANAGER))
        except dbus.DBusException:
            return None

    def close(self):
        for c in self.cards:
            c.remove()
        if self.daemon:
            self.daemon.kill()
        self.watcher.close()
        self.pcscd.stop()
        self.bus.stop()


@pytest.fixture
def env(tmp_path):
    assert os.geteuid() == 0, "the private pcscd needs root (a mount namespace)"
    for binary in (KEYRENEWD, KEYRENEWCTL, VCARD):
        assert binary.exists(), f"{binary} is not built"
    with open(PORT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        e = Env(tmp_path)
        yield e
        e.close()


@pytest.fixture
def bare_bus(tmp_path):
    """A private bus with no keyrenewd on it."""
    assert KEYRENEWCTL.exists(), f"{KEYRENEWCTL} is not built"
    bus = PrivateBus(tmp_path)
    yield bus
    bus.stop()


def plug_alice(env):
    """A key with two certificates, both ending in 10 days less an hour."""
    card = env.card("alice", 12345678)
    card.issue("9a", "rsa2048", "/O=Example/CN=Alice", *days(10))
    card.issue("9d", "eccp256", "/O=Example/CN=Alice Encryption", *days(10), "--usage", "encryption")
    env.start()
    card.insert(PORT_A)
    return card, env.read_token(12345678)


def to_plain(value):
    """dbus-python's types as JSON's."""
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.Array, list)):
        return [to_plain(v) for v in value]
    if isinstance(value, (dbus.String, dbus.ObjectPath)):
        return str(value)
    if isinstance(value, (int,)):
        return int(value)
    return value


def test_status_shows_key_certificates_and_days_left(env):
    card, path = plug_alice(env)
    r = env.ctl("status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "PC/SC: connected" in out
    # No [Portal] Url: a daemon with PortalState says the portal is not
    # configured; one without it (before the portal status) is unknown.
    if "PortalState" in env.props(PATH, MANAGER):
        assert "Portal: not configured" in out and "Portal checked" not in out
    else:
        assert "Portal: unknown" in out
    assert READER_A0 in out
    assert "Key 12345678" in out
    assert f"Plugged in: yes, in {READER_A0}" in out
    assert "PIN tries left: 3" in out
    assert re.search(r"Certificate: 9a  Alice\n", out), out
    assert re.search(r"Certificate: 9d  Alice Encryption\n", out), out
    assert out.count("(9 days left)") == 2, out
    assert "Usage: signing\n" in out and "Usage: encryption\n" in out
    assert out.count("Renewal: none") == 2
    assert "Status: expiring" in out
    # Not on a tty: no colour codes.
    assert "\x1b[" not in out
    # status is the default command.
    assert env.ctl().stdout == out


def on_tty(env, *args, extra_env=None):
    """keyrenewctl's standard output when it is a terminal."""
    master, slave = pty.openpty()
    full_env = dict(os.environ, LANGUAGE="C", LANG="C.UTF-8", LC_ALL="", TERM="xterm")
    full_env.pop("NO_COLOR", None)
    full_env.update(extra_env or {})
    proc = subprocess.Popen([str(KEYRENEWCTL), f"--bus={env.bus.address}", *args], stdout=slave,
                            stderr=subprocess.PIPE, env=full_env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    return out.decode()


def test_color_only_on_a_tty(env):
    card, path = plug_alice(env)
    out = on_tty(env, "status")
    # Expiring certificates in yellow, the key's heading in bold.
    assert "\x1b[0;1;33m" in out and "\x1b[0;1;39mKey 12345678\x1b[0m" in out, repr(out)
    listed = on_tty(env, "list")
    assert "\x1b[0;4mKEY\x1b[0m" in listed, repr(listed)
    for extra in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        assert "\x1b[" not in on_tty(env, "status", extra_env=extra), extra
        assert "\x1b[" not in on_tty(env, "list", extra_env=extra), extra


def test_valgrind_clean(env):
    card, path = plug_alice(env)
    for args in (["status"], ["list"], ["--json"], ["refresh"], ["renew"], ["--bogus"]):
        r = subprocess.run(["valgrind", "--error-exitcode=99", "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect", "--track-fds=yes", "--quiet",
                            str(KEYRENEWCTL), f"--bus={env.bus.address}", *args],
                           capture_output=True, text=True, timeout=120)
        # renew: nothing approved here (9); test_keyrenewctl_renew.py renews.
        assert r.returncode in (0, 2, 9), (args, r.stderr)
        assert "==" not in r.stderr, (args, r.stderr)


def test_list_table(env):
    card, path = plug_alice(env)
    r = env.ctl("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["KEY", "SLOT", "SUBJECT", "EXPIRES", "LEFT", "USAGE", "PLUGGED", "RENEWAL"]
    assert lines[-1] == "2 certificates listed."
    rows = lines[1:-2]
    assert len(rows) == 2 and lines[-2] == ""
    assert re.match(r"12345678  9a  +Alice  +\d{4}-\d\d-\d\d  9 days  signing  +yes  +none$", rows[0]), rows[0]
    assert re.match(r"12345678  9d  +Alice Encryption  +\d{4}-\d\d-\d\d  9 days  encryption  yes  +none$",
                    rows[1]), rows[1]
    # Columns line up: SUBJECT starts at the same place in every line.
    assert len({l.index("Alice") for l in rows} | {lines[0].index("SUBJECT")}) == 1

    bare = env.ctl("list", "--no-legend")
    assert bare.returncode == 0
    assert bare.stdout.splitlines() == rows


def documented_properties(interface):
    """The property names dbus/org.keyrenew.KeyRenew1.xml documents."""
    root = ET.parse(XML).getroot()
    return {p.get("name") for i in root.iter("interface") if i.get("name") == interface for p in i.iter("property")}


def assert_matches(doc, bus_props, interface, nested):
    """Every property keyrenewctl shows is the bus's value (null: the daemon
    does not export it); every documented one is shown."""
    assert documented_properties(interface) <= set(doc), interface
    for name, value in doc.items():
        if name == "Path" or name == nested:
            continue
        if value is None:
            assert name not in bus_props, name
        else:
            assert value == to_plain(bus_props[name]), name


def test_json_matches_the_bus(env):
    card, path = plug_alice(env)
    r = env.ctl("--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    manager = env.props(PATH, MANAGER)
    assert_matches(doc, manager, MANAGER, "Tokens")
    assert [t["Path"] for t in doc["Tokens"]] == [str(p) for p in manager["Tokens"]] == [path]
    token = doc["Tokens"][0]
    bus_token = env.props(path, TOKEN)
    assert_matches(token, bus_token, TOKEN, "Certificates")
    assert [c["Path"] for c in token["Certificates"]] == [str(p) for p in bus_token["Certificates"]]
    for cert in token["Certificates"]:
        assert_matches(cert, env.props(cert["Path"], CERT), CERT, None)
    assert token["Serial"] == "12345678" and token["Present"] is True
    assert [c["DaysLeft"] for c in token["Certificates"]] == [9, 9]
    assert [c["Usage"] for c in token["Certificates"]] == [["signing"], ["encryption"]]
    assert [c["RenewalState"] for c in token["Certificates"]] == ["none", "none"]
    # list --json is the same document.
    assert json.loads(env.ctl("list", "--json").stdout) == doc


def test_refresh_reads_the_key_again(env):
    card, path = plug_alice(env)
    before = len(env.watcher.find("PropertiesChanged", path))
    r = env.ctl("refresh")
    assert r.returncode == 0, r.stderr
    assert "Key 12345678" in r.stdout and "(9 days left)" in r.stdout
    # The daemon read the card again: the token went through "checking".
    changes = env.watcher.find("PropertiesChanged", path)[before:]
    assert any(c[4][1].get("State") == "checking" for c in changes), changes


def test_removed_key_shows_not_present(env):
    card, path = plug_alice(env)
    card.remove()
    wait_for("Present false", lambda: not env.props(path, TOKEN)["Present"])
    r = env.ctl("status")
    assert r.returncode == 0, r.stderr
    assert re.search(rf"Plugged in: no, last seen \d{{4}}-\d\d-\d\d [0-9:]+ \S+ in {READER_A0}\n", r.stdout), r.stdout
    assert r.stdout.count("(9 days left)") == 2
    rows = env.ctl("list", "--no-legend").stdout.splitlines()
    assert [row.split()[-2] for row in rows] == ["no", "no"]
    assert env.ctl("--json").returncode == 0
    assert json.loads(env.ctl("--json").stdout)["Tokens"][0]["Present"] is False


def test_chinese_status(env):
    card, path = plug_alice(env)
    r = env.ctl("status", env=CHINESE)
    assert r.returncode == 0, r.stderr
    assert "密钥 12345678" in r.stdout, r.stdout
    assert r.stdout.count("剩 9 天") == 2, r.stdout
    assert "续期: 无" in r.stdout
    lines = env.ctl("list", env=CHINESE).stdout.splitlines()
    assert lines[0].split()[:3] == ["密钥", "槽位", "主题"]
    # A Chinese header is two cells a character: the columns still line up.
    assert lines[-1] == "共列出 2 个证书。"


def test_daemon_not_running(bare_bus):
    for command in ([], ["list"], ["refresh"], ["--json"]):
        r = ctl(*command, bus=bare_bus.address)
        assert r.returncode == 3, (command, r)
        assert r.stderr.strip() == NOT_RUNNING
        assert r.stdout == ""
    r = ctl(bus=bare_bus.address, env=CHINESE)
    assert r.returncode == 3
    assert NOT_RUNNING_ZH in r.stderr and "systemctl start keyrenewd" in r.stderr


def test_no_bus_at_all(tmp_path):
    r = ctl(bus=f"unix:path={tmp_path}/nothing")
    assert r.returncode == 3
    assert "Is D-Bus running?" in r.stderr


@pytest.mark.parametrize("args", [["--bogus"], ["frobnicate"], ["status", "extra"], ["renew", "a", "b"],
                                  ["--bus"], ["--bus=nonsense"]])
def test_bad_usage(args):
    r = ctl(*args)
    assert r.returncode == 2, r
    assert "keyrenewctl --help" in r.stderr
    assert r.stdout == ""


def test_help_and_version():
    r = ctl("--help")
    assert r.returncode == 0
    for word in ("status", "list", "refresh", "renew", "history", "--json", "--bus", "--no-legend", "--no-pager",
                 "--accept-key-loss", "--pin-stdin", "3 keyrenewd not reachable", "5 cancelled"):
        assert word in r.stdout, word
    v = ctl("--version")
    assert v.returncode == 0 and re.fullmatch(r"keyrenewctl \d+\.\d+\.\d+\n", v.stdout)
    zh = ctl("--help", env=CHINESE)
    assert "命令" in zh.stdout


@pytest.fixture
def fake_daemon(bare_bus):
    """python-dbusmock in keyrenewd's place on a private bus, for what a real
    daemon does not do on demand: odd properties and named errors."""
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=bare_bus.address)
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--session", "-m", BUS_NAME, PATH, MANAGER],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the mock on the bus", lambda: bare_bus.conn.name_has_owner(BUS_NAME))
        yield bare_bus, dbus.Interface(bare_bus.conn.get_object(BUS_NAME, PATH), "org.freedesktop.DBus.Mock")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_missing_and_unknown_properties(fake_daemon):
    bus, mock = fake_daemon
    token = f"{PATH}/token/_3777"
    cert = f"{token}/cert/_39c"
    # PcscState of the wrong type, a property keyrenewctl does not know, and
    # most of the documented ones missing.
    mock.AddProperties(MANAGER, {"Version": "9.9.9", "PcscState": dbus.Int32(1), "Frobs": dbus.UInt32(3),
                                 "Tokens": dbus.Array([token], signature="o")})
    mock.AddObject(token, TOKEN, {"Serial": "777", "Present": True, "NewThing": "x",
                                  "Certificates": dbus.Array([cert], signature="o")}, [])
    mock.AddObject(cert, CERT, {"Slot": "9c", "Subject": "O=Example,CN=Bob\\, Jr.", "DaysLeft": dbus.Int32(-3)}, [])

    r = ctl("status", bus=bus.address)
    assert r.returncode == 0, r.stderr
    for line in ("keyrenewd: 9.9.9", "PC/SC: unknown", "Readers: unknown", "Portal: unknown",
                 "Key 777", "Plugged in: yes, in unknown", "PIN tries left: unknown", "State: unknown",
                 "Certificate: 9c  Bob, Jr.", "Expires: unknown (expired)", "Usage: unknown", "Renewal: unknown"):
        assert line in r.stdout, (line, r.stdout)
    doc = json.loads(ctl("--json", bus=bus.address).stdout)
    assert doc["Version"] == "9.9.9" and doc["PcscState"] is None and "Frobs" not in doc
    tok = doc["Tokens"][0]
    assert tok["Serial"] == "777" and tok["Present"] is True and tok["Reader"] is None and "NewThing" not in tok
    assert tok["Certificates"][0]["DaysLeft"] == -3 and tok["Certificates"][0]["Usage"] is None
    rows = ctl("list", "--no-legend", bus=bus.address).stdout.splitlines()
    assert [re.split(r"  +", row) for row in rows] == [
        ["777", "9c", "Bob, Jr.", "unknown", "expired", "unknown", "yes", "unknown"]]


@pytest.mark.parametrize("error, text, status", [
    ("org.keyrenew.KeyRenew1.Error.CardError", "The key could not be read. Pull it out, plug it in again", 1),
    ("org.keyrenew.KeyRenew1.Error.TokenAbsent", "The key is not plugged in (or was pulled out).", 8),
    ("org.freedesktop.DBus.Error.AccessDenied", "The bus policy does not let you talk to keyrenewd.", 1),
    ("org.example.Unheard.Of", "the daemon's own words", 1),
])
def test_named_errors_in_words(fake_daemon, error, text, status):
    bus, mock = fake_daemon
    mock.AddMethod(MANAGER, "Refresh", "", "",
                   f"raise dbus.exceptions.DBusException(\"the daemon's own words\", name=\"{error}\")")
    r = ctl("refresh", bus=bus.address)
    assert r.returncode == status
    assert text in r.stderr, r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("kind, variable", [(None, "DBUS_SYSTEM_BUS_ADDRESS"), ("system", "DBUS_SYSTEM_BUS_ADDRESS"),
                                            ("session", "DBUS_SESSION_BUS_ADDRESS")])
def test_system_and_session_bus(fake_daemon, kind, variable):
    """--bus system (the default) and session find the bus as every D-Bus
    client does."""
    bus, mock = fake_daemon
    mock.AddProperties(MANAGER, {"Version": "9.9.9"})
    r = ctl("--json", bus=kind, env={variable: bus.address})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Version"] == "9.9.9"
    other = "DBUS_SESSION_BUS_ADDRESS" if variable == "DBUS_SYSTEM_BUS_ADDRESS" else "DBUS_SYSTEM_BUS_ADDRESS"
    wrong = ctl("--json", bus=kind, env={variable: "unix:path=/nonexistent/bus", other: bus.address})
    assert wrong.returncode == 3, wrong
