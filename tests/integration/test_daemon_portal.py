# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewd and the renewal portal: the reference portal (tests/portal)
over real TLS, the daemon on a private bus, virtual PIV keys whose
certificates the portal's CA issued, in a private pcscd's vpcd readers.

The protocol's pacing is kept as it is (polls at least 60 s apart, a key
insertion or Refresh() at most once a minute), so each new look at the
portal comes from a daemon (re)start, which polls at once, or from the
first insertion or Refresh() of a daemon.

Needs root (the private pcscd's mount namespace). Binaries come from
$KEYRENEW_BUILD_DIR (default: build/ at the top)."""

import fcntl
import os
import pathlib
import sys
import time

import dbus
import pytest

from test_daemon_core import BUS_NAME, KEYRENEWD, MANAGER, PATH, Daemon, PrivateBus, PrivatePcscd, wait_for
from test_daemon_tokens import CERT, TOKEN, VCARD, REPLUG_PAUSE, VCard, Watcher

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import Portal  # noqa: E402

# Our share of the TCP ports: 50000-50099. vpcd on 50020 (and 50021); the
# portal on 50030 when it must come back on the same port.
PORT_A = 50020
PORTAL_PORT = 50030
PORT_LOCK = pathlib.Path("/tmp/keyrenew-test-daemon-portal-50000.lock")
REASON = "营业执照副本不清晰，请重新上传。\n审核人：李四"


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.bus = PrivateBus(tmp)
        self.pcscd = PrivatePcscd(tmp)
        self.pcscd.start([("KRP Portal A", PORT_A)])
        self.portal = Portal(tmp)
        self.daemons = []
        self.cards = []
        self.state_dir = tmp / "state"
        self.config = tmp / "keyrenewd.conf"
        self.watcher = Watcher(self.bus.address)

    def configure(self, url, bundle=None, interval=60):
        lines = ["[Portal]", f"Url={url}", f"PollIntervalSec={interval}"]
        if bundle:
            lines.append(f"CABundle={bundle}")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, portal=True, wrapper=()):
        args = ["--state-dir", str(self.state_dir)]
        if portal:
            args += ["--config", str(self.config)]
        else:
            args += ["--config", os.devnull]
        d = Daemon(self.tmp, self.bus, self.pcscd, args, wrapper=wrapper)
        self.daemons.append(d)
        d.wait_for_name(timeout=60 if wrapper else 10)
        return d

    def restart(self, d):
        assert d.stop() == 0, d.output()
        return self.start()

    def card(self, name, serial):
        c = VCard(self.tmp, name, serial)
        self.cards.append(c)
        return c

    def issue(self, card, slot, name):
        """A key in slot and a certificate for it by the portal's EC CA;
        returns the certificate's PEM file."""
        pem = self.tmp / f"{name}-{slot}.pem"
        pem.write_text(card.run(["issue", str(card.state), "--slot", slot, "--algorithm", "eccp256",
                                 "--subject", f"/O=Example/CN={name}", "--ca-cert", str(self.portal.dir / "ca-ec.pem"),
                                 "--ca-key", str(self.portal.dir / "ca-ec.key")]))
        return pem

    def obj(self, path):
        return self.bus.conn.get_object(BUS_NAME, path)

    def props(self, path, interface=MANAGER):
        return self.obj(path).GetAll(interface, dbus_interface=dbus.PROPERTIES_IFACE)

    def manager(self):
        return self.props(PATH)

    def token_path(self, serial, timeout=10):
        """The token's path, once its card is read (its certificates on
        the bus)."""
        path = wait_for(f"token {serial}", lambda: self._get_token(serial), timeout)
        wait_for(f"{serial} read", lambda: self.props(path, TOKEN)["Progress"] == 100
                 and self.props(path, TOKEN)["Certificates"], timeout)
        return path

    def _get_token(self, serial):
        try:
            return str(self.obj(PATH).GetToken(str(serial), dbus_interface=MANAGER))
        except dbus.DBusException:
            return None

    def wait_renewal(self, cert_path, state, timeout=15):
        wait_for(f"{cert_path} RenewalState == {state}",
                 lambda: self.props(cert_path, CERT)["RenewalState"] == state, timeout)
        return self.props(cert_path, CERT)

    def close(self):
        for c in self.cards:
            c.remove()
        for d in self.daemons:
            d.kill()
        self.watcher.close()
        self.portal.stop(check=False)
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


def now_us():
    return int(time.time() * 1_000_000)


def renewal_signals(env, path=None):
    return [(str(s[4][0]), bool(s[4][1])) for s in env.watcher.find("RenewalAvailable", path)]


def test_order_through_every_state(env):
    """9a: paid, reviewed, approved with the key in; 9c: paid, rejected
    (a Chinese reason); 9d: paid in real time while the key is out."""
    portal = env.portal.start()
    env.configure(portal.url, portal.bundle)
    card = env.card("alice", 31415926)
    pems = {slot: env.issue(card, slot, "Alice") for slot in ("9a", "9c", "9d")}
    orders = {"9a": portal.order(pems["9a"], "--review"),
              "9c": portal.order(pems["9c"], "--review"),
              "9d": portal.order(pems["9d"], "--validity-days", "730", "--rekey", "no")}

    d = env.start()
    m = env.manager()
    assert (m["PortalState"], m["PortalReachable"], m["LastPortalCheck"]) == ("unknown", False, 0)
    t0 = time.monotonic()
    card.insert(PORT_A)
    path = f"{PATH}/token/_331415926"
    certs = {slot: f"{path}/cert/_3{slot}" for slot in orders}
    # Pumped every millisecond: the signals' times are their arrival's.
    deadline = t0 + 15
    while not [s for s in env.watcher.find("PropertiesChanged", certs["9a"]) if "RenewalState" in s[4][1]]:
        assert time.monotonic() < deadline, "no RenewalState after the insertion"
        time.sleep(0.001)
    shown = min(s[0] for s in env.watcher.find("PropertiesChanged", certs["9a"]) if "RenewalState" in s[4][1])
    added = env.watcher.wait_added(path)
    assert env.token_path(31415926) == path
    wait_for("every order seen", lambda: all(
        env.props(c, CERT)["RenewalState"] == "awaiting-payment" for c in certs.values()))
    m = env.manager()
    assert (m["PortalState"], m["PortalReachable"], m["PortalError"]) == ("reachable", True, "")
    assert now_us() - 10_000_000 < m["LastPortalCheck"] <= now_us()
    for slot, c in certs.items():
        p = env.props(c, CERT)
        assert p["RenewalOrder"] == orders[slot]
        assert p["PortalUrl"] == f"https://127.0.0.1:{portal.port}/orders/{orders[slot]}"
        assert p["RejectReason"] == ""
        assert p["RenewalChecked"] > 0
    assert (env.props(certs["9a"], CERT)["RenewalRekey"], env.props(certs["9a"], CERT)["RenewalValidityDays"]) \
        == (True, 365)
    assert (env.props(certs["9d"], CERT)["RenewalRekey"], env.props(certs["9d"], CERT)["RenewalValidityDays"]) \
        == (False, 730)
    assert env.props(path, TOKEN)["State"] == "idle"
    # The daemon's share: from the token on the bus (card identified) to
    # the answer on the bus (the rest of the read, then one HTTPS poll).
    print(f"\nlatency: insertion -> RenewalState on the bus {(shown - t0) * 1000:.0f} ms "
          f"(token on the bus -> RenewalState {(shown - added) * 1000:.0f} ms)")

    # Paid: under review (a daemon start looks at once).
    portal.admin("order", "pay", orders["9a"])
    portal.admin("order", "pay", orders["9c"])
    d = env.restart(d)
    env.wait_renewal(certs["9a"], "under-review")
    env.wait_renewal(certs["9c"], "under-review")
    assert env.props(certs["9d"], CERT)["RenewalState"] == "awaiting-payment"

    # Approved with the key in: RenewalAvailable(order, true).
    portal.admin("order", "approve", orders["9a"])
    portal.admin("order", "reject", orders["9c"], "--reason", REASON)
    d = env.restart(d)
    env.wait_renewal(certs["9a"], "approved")
    rejected = env.wait_renewal(certs["9c"], "rejected")
    assert rejected["RejectReason"] == REASON
    assert rejected["RenewalOrder"] == orders["9c"]
    env.watcher.wait("RenewalAvailable", certs["9a"])
    assert renewal_signals(env, certs["9a"]) == [(orders["9a"], True)]
    wait_for("renewal-available", lambda: env.props(path, TOKEN)["State"] == "renewal-available")
    changes = [s[4][1] for s in env.watcher.find("PropertiesChanged", certs["9c"])]
    assert sum(1 for c in changes if "RejectReason" in c) == 1

    # Approved while the key is out: RenewalAvailable(order, false), once.
    card.remove()
    wait_for("absent", lambda: not env.props(path, TOKEN)["Present"])
    portal.admin("order", "pay", orders["9d"])
    d = env.restart(d)
    env.wait_renewal(certs["9d"], "approved")
    env.watcher.wait("RenewalAvailable", certs["9d"])
    assert renewal_signals(env, certs["9d"]) == [(orders["9d"], False)]
    assert env.props(path, TOKEN)["State"] == "renewal-available"

    # Inserting the key asks the portal at once; nothing is announced twice,
    # not after restarts either.
    time.sleep(REPLUG_PAUSE)
    before = env.manager()["LastPortalCheck"]
    t0 = time.monotonic()
    card.insert(PORT_A)
    wait_for("a check after the insertion", lambda: env.manager()["LastPortalCheck"] > before)
    check_latency = (time.monotonic() - t0) * 1000
    d = env.restart(d)
    wait_for("checked again", lambda: env.manager()["PortalReachable"])
    time.sleep(0.3)
    assert sorted(renewal_signals(env)) == sorted([(orders["9a"], True), (orders["9d"], False)])
    # PropertiesChanged only on a change: 9c went none -> awaiting-payment
    # -> under-review -> rejected, however often the portal was asked.
    states = [str(c["RenewalState"]) for c in (s[4][1] for s in env.watcher.find("PropertiesChanged", certs["9c"]))
              if "RenewalState" in c]
    assert states == ["awaiting-payment", "under-review", "rejected"]
    print(f"latency: insertion -> LastPortalCheck moved {check_latency:.0f} ms")
    assert d.stop() == 0, d.output()


def test_portal_down_then_back_and_restart_keeps_state(env):
    portal = env.portal.start(extra=("--port", str(PORTAL_PORT)))
    assert portal.port == PORTAL_PORT
    env.configure(portal.url, portal.bundle)
    card = env.card("bob", 27182818)
    oid = portal.order(env.issue(card, "9c", "Bob"))
    d = env.start()
    card.insert(PORT_A)
    path = env.token_path(27182818)
    cert = f"{path}/cert/_39c"
    checked = env.wait_renewal(cert, "awaiting-payment")["RenewalChecked"]
    card.remove()
    wait_for("absent", lambda: not env.props(path, TOKEN)["Present"])

    # Down: the restarted daemon shows what it knew, and why it cannot ask.
    portal.stop()
    d = env.restart(d)
    wait_for("failing", lambda: env.manager()["PortalState"] == "failing")
    m = env.manager()
    assert m["PortalReachable"] is False or m["PortalReachable"] == 0
    assert m["PortalError"]
    assert m["LastPortalCheck"] > 0
    # The first retry a minute later, plus up to 10 % jitter.
    wait = (m["NextPortalCheck"] - now_us()) / 1e6
    assert 50 < wait <= 67, wait
    p = env.props(cert, CERT)
    assert (p["RenewalState"], p["RenewalOrder"], p["RenewalChecked"]) == ("awaiting-payment", oid, checked)
    assert d.proc.poll() is None

    # Back on the same port: Refresh() asks at once.
    env.portal.start(extra=("--port", str(PORTAL_PORT)))
    portal.admin("order", "pay", oid)
    env.obj(PATH).Refresh(dbus_interface=MANAGER)
    wait_for("reachable", lambda: env.manager()["PortalReachable"])
    assert env.manager()["PortalError"] == ""
    env.wait_renewal(cert, "approved")
    env.watcher.wait("RenewalAvailable", cert)
    assert renewal_signals(env, cert) == [(oid, False)]
    assert d.stop() == 0, d.output()


@pytest.mark.parametrize("status,retry_after", [(503, 300), (429, 120)])
def test_retry_after_is_honoured(env, status, retry_after):
    portal = env.portal.start()
    env.configure(portal.url, portal.bundle)
    card = env.card("carol", 16180339)
    env.issue(card, "9a", "Carol")
    d = env.start()
    card.insert(PORT_A)
    path = env.token_path(16180339)
    cert = f"{path}/cert/_39a"
    wait_for("answered", lambda: env.props(cert, CERT)["RenewalChecked"] > 0)
    card.remove()
    wait_for("absent", lambda: not env.props(path, TOKEN)["Present"])

    portal.admin("fault", "set", "--status", str(status), "--retry-after", str(retry_after))
    d = env.restart(d)
    wait_for("failing", lambda: env.manager()["PortalState"] == "failing")
    m = env.manager()
    assert str(status) in m["PortalError"], m["PortalError"]
    wait = (m["NextPortalCheck"] - now_us()) / 1e6
    assert retry_after - 5 < wait <= retry_after * 1.1 + 1, wait
    # Refresh() may not ask before the portal's time (it may drop the
    # jitter: the check then comes as soon as the portal allows).
    env.obj(PATH).Refresh(dbus_interface=MANAGER)
    time.sleep(0.5)
    m2 = env.manager()
    assert m2["LastPortalCheck"] == m["LastPortalCheck"]
    assert m2["NextPortalCheck"] >= m["LastPortalCheck"] + (retry_after - 1) * 1_000_000
    assert d.stop() == 0, d.output()


def test_untrusted_portal_and_no_portal(env):
    portal = env.portal.start()
    card = env.card("dave", 14142135)
    oid = portal.order(env.issue(card, "9a", "Dave"))
    portal.admin("order", "pay", oid)

    # No portal configured: nothing asked, said so.
    d = env.start(portal=False)
    card.insert(PORT_A)
    path = env.token_path(14142135)
    cert = f"{path}/cert/_39a"
    wait_for("read", lambda: env.props(path, TOKEN)["Progress"] == 100)
    m = env.manager()
    assert (m["PortalState"], m["PortalReachable"], m["PortalError"], m["LastPortalCheck"],
            m["NextPortalCheck"]) == ("not-configured", False, "", 0, 0)
    assert env.props(cert, CERT)["RenewalState"] == "none"
    assert d.stop() == 0, d.output()

    # A bundle without the portal's CA (the system's): TLS fails, never a
    # success.
    other = env.tmp / "other-ca.pem"
    other.write_text((env.portal.dir / "ca-rsa.pem").read_text())
    env.configure(portal.url, other)
    d = env.start()
    wait_for("failing", lambda: env.manager()["PortalState"] == "failing")
    m = env.manager()
    assert not m["PortalReachable"]
    assert "certificate" in m["PortalError"].lower() or "ssl" in m["PortalError"].lower(), m["PortalError"]
    p = env.props(cert, CERT)
    assert (p["RenewalState"], p["RenewalChecked"]) == ("none", 0)
    assert not env.watcher.find("RenewalAvailable")
    assert d.stop() == 0, d.output()


def test_valgrind_clean(env):
    """The portal client in the daemon under valgrind: a poll at the
    insertion, an approval announced, a Refresh() too soon to poll, SIGTERM
    with the client and libcurl to close; then a start with the portal
    gone (a failed poll). No leak, no error."""
    portal = env.portal.start()
    env.configure(portal.url, portal.bundle)
    card = env.card("erin", 17320508)
    oid = portal.approved_order(env.issue(card, "9a", "Erin"))
    d = env.start(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                           "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                           "--quiet"])
    card.insert(PORT_A)
    path = env.token_path(17320508, timeout=30)
    env.wait_renewal(f"{path}/cert/_39a", "approved", timeout=30)
    env.watcher.wait("RenewalAvailable", f"{path}/cert/_39a", timeout=30)
    assert renewal_signals(env) == [(oid, True)]
    env.obj(PATH).Refresh(dbus_interface=MANAGER, timeout=60)
    assert d.stop(timeout=60) == 0, d.output()

    # Started again with the portal gone: a failed poll, then SIGTERM.
    portal.stop()
    card.remove()
    d = env.start(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                           "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                           "--quiet"])
    wait_for("failing", lambda: env.manager()["PortalState"] == "failing", timeout=30)
    assert env.props(f"{path}/cert/_39a", CERT)["RenewalState"] == "approved"
    assert d.stop(timeout=60) == 0, d.output()


def test_resume_from_suspend_asks_at_once(env):
    """logind's PrepareForSleep(false) (sent here by a stand-in owning its
    name) makes the daemon ask the portal again: its timers stood still
    while the computer slept."""
    portal = env.portal.start()
    env.configure(portal.url, portal.bundle)
    card = env.card("fred", 22360679)
    oid = portal.order(env.issue(card, "9a", "Fred"), "--review")
    d = env.start()
    card.insert(PORT_A)
    path = env.token_path(22360679)
    cert = f"{path}/cert/_39a"
    env.wait_renewal(cert, "awaiting-payment")
    card.remove()
    # A fresh daemon: its start polls; no ask-now has been spent yet.
    d = env.restart(d)
    wait_for("checked", lambda: env.manager()["LastPortalCheck"] > 0)
    portal.admin("order", "pay", oid)
    logind = dbus.bus.BusConnection(env.bus.address)
    try:
        logind.request_name("org.freedesktop.login1")

        def prepare_for_sleep(sleeping):
            msg = dbus.lowlevel.SignalMessage("/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                              "PrepareForSleep")
            msg.append(sleeping, signature="b")
            logind.send_message(msg)
            logind.flush()

        before = env.manager()["LastPortalCheck"]
        prepare_for_sleep(True)
        time.sleep(0.5)
        assert env.manager()["LastPortalCheck"] == before
        prepare_for_sleep(False)
        env.wait_renewal(cert, "under-review")
        assert env.manager()["LastPortalCheck"] > before
    finally:
        logind.close()
    assert d.stop() == 0, d.output()
