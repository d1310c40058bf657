# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewd on a private bus that runs the project's own bus policy
(dbus/org.keyrenew.KeyRenew1.conf) on top of a system bus's defaults, seen
the way an admin sees it: busctl tree, introspect and get-property, as root
and as an unprivileged user."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest
from keyrenew_testbed import PcscTestbed, wait_for
from test_daemon_core import BUS_NAME, KEYRENEWD, TOP, Daemon, PrivateBus
from test_daemon_tokens import VCARD, VCard

POLICY = TOP / "dbus" / "org.keyrenew.KeyRenew1.conf"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


# A system bus's defaults (as Debian's system.conf): nobody may own a name
# or call a method unless a policy file allows it; then ours.
SYSTEM_POLICY = f"""  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>{POLICY}</include>
"""


def policy_bus():
    """A PrivateBus of system type with our policy, in a folder others can
    reach (the unprivileged client is "others"; pytest's folders are
    root's alone)."""
    top = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-sysbus-"))
    top.chmod(0o755)
    bus = PrivateBus(top, bus_type="system", policy=SYSTEM_POLICY)
    bus.dir.chmod(0o755)
    return bus, top


@pytest.fixture
def sysbus(tmp_path):
    assert os.geteuid() == 0, "needs root: a private pcscd and a second uid"
    assert KEYRENEWD.exists() and VCARD.exists()
    bus, top = policy_bus()
    with PcscTestbed(entries=1, name="Policy Reader", workdir=tmp_path / "pcsc") as bed:
        daemon = Daemon(tmp_path, bus, bed, ["--state-dir", str(tmp_path / "state")])
        try:
            daemon.wait_for_name()
            yield bus, bed, daemon
        finally:
            daemon.kill()
            bus.stop()
            shutil.rmtree(top, ignore_errors=True)


def busctl(bus, *args, user=()):
    return subprocess.run([*user, "busctl", f"--address={bus.address}", *args],
                          capture_output=True, text=True, timeout=30)


def test_admin_sees_key_and_certificate_with_busctl(sysbus, tmp_path):
    bus, bed, daemon = sysbus
    card = VCard(tmp_path, "policy", 4242)
    card.issue("9a", "eccp256", "/CN=Policy Tester", "--days", "5")
    t0 = time.monotonic()
    bed.insert(card.state, 0)
    # sd_bus_path_encode() escapes a leading digit: 4242 is _34242.
    token = "/org/keyrenew/KeyRenew1/token/_34242"
    cert = token + "/cert/_39a"

    def in_tree():
        out = busctl(bus, "tree", "--list", BUS_NAME).stdout
        return cert in out.split() and out
    tree = wait_for("the certificate in busctl tree", in_tree, timeout=15)
    elapsed = time.monotonic() - t0
    assert token in tree.split()
    assert elapsed < 10, f"{elapsed:.1f} s from insertion to busctl tree"

    p = busctl(bus, "get-property", BUS_NAME, cert, "org.keyrenew.KeyRenew1.Certificate", "DaysLeft")
    assert re.fullmatch(r"i [45]\n", p.stdout), p.stdout + p.stderr
    wait_for("State expiring", lambda: busctl(bus, "get-property", BUS_NAME, token,
                                               "org.keyrenew.KeyRenew1.Token", "State").stdout == 's "expiring"\n')
    p = busctl(bus, "introspect", BUS_NAME, cert)
    assert p.returncode == 0 and ".NotAfter" in p.stdout and "org.keyrenew.KeyRenew1.Certificate" in p.stdout


def test_unprivileged_user_can_read_everything(sysbus):
    bus, bed, daemon = sysbus
    p = busctl(bus, "get-property", BUS_NAME, "/org/keyrenew/KeyRenew1", "org.keyrenew.KeyRenew1.Manager",
               "Readers", user=NOBODY)
    assert p.returncode == 0, p.stderr
    assert '"Policy Reader A 00 00"' in p.stdout
    p = busctl(bus, "call", BUS_NAME, "/org/keyrenew/KeyRenew1", "org.freedesktop.DBus.ObjectManager",
               "GetManagedObjects", user=NOBODY)
    assert p.returncode == 0, p.stderr


def test_unprivileged_user_cannot_take_the_name(sysbus):
    bus, bed, daemon = sysbus
    script = ("import dbus, sys\n"
              f"b = dbus.bus.BusConnection({bus.address!r})\n"
              "try:\n"
              f"    b.request_name({BUS_NAME!r}, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)\n"
              "except dbus.DBusException as e:\n"
              "    print(e.get_dbus_name()); sys.exit(0)\n"
              "sys.exit(1)\n")
    p = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"], "HOME": "/"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "org.freedesktop.DBus.Error.AccessDenied"
    # And the daemon's own ownership is untouched.
    assert bus.conn.get_name_owner(BUS_NAME) == bus.conn.get_name_owner(BUS_NAME)
    assert daemon.proc.poll() is None
