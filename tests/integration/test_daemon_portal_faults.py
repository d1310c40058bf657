# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewd and a misbehaving portal: HTTP 500, a 200 whose body is not
JSON, a 200 twice the client's 1 MiB cap, a portal that answers 3 s late.
The set-up is test_daemon_portal.py's (its Env: private bus and pcscd, the
reference portal over real TLS, virtual keys), on ports of our own; each
look at the portal comes from a daemon (re)start or its first Refresh(),
as that file's docstring explains.

Needs root (the private pcscd's mount namespace)."""

import fcntl
import os
import pathlib
import time

import dbus
import pytest

import test_daemon_portal
from test_daemon_core import KEYRENEWD, MANAGER, PATH, wait_for
from test_daemon_portal import Env, now_us, renewal_signals
from test_daemon_tokens import CERT, TOKEN, VCARD

# Our share of the TCP ports: 52000-52099; vpcd on 52020.
PORT_A = 52020
PORT_LOCK = pathlib.Path("/tmp/keyrenew-test-daemon-portal-faults-52000.lock")


@pytest.fixture
def env(tmp_path, monkeypatch):
    assert os.geteuid() == 0, "the private pcscd needs root (a mount namespace)"
    assert KEYRENEWD.exists(), f"{KEYRENEWD} is not built"
    assert VCARD.exists(), f"{VCARD} is not built"
    # Env starts its pcscd's vpcd reader on test_daemon_portal.PORT_A.
    monkeypatch.setattr(test_daemon_portal, "PORT_A", PORT_A)
    with open(PORT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        e = Env(tmp_path)
        yield e
        e.close()


def known_order(env, name, serial):
    """A daemon that has seen an order awaiting payment for the key's 9a
    certificate, the key out again. Returns (daemon, cert path, order id,
    the certificate's renewal properties)."""
    portal = env.portal.start()
    env.configure(portal.url, portal.bundle)
    card = env.card(name, serial)
    oid = portal.order(env.issue(card, "9a", name.capitalize()))
    d = env.start()
    card.insert(PORT_A)
    path = env.token_path(serial)
    cert = f"{path}/cert/_39a"
    p = env.wait_renewal(cert, "awaiting-payment")
    assert p["RenewalChecked"] > 0
    card.remove()
    wait_for("absent", lambda: not env.props(path, TOKEN)["Present"])
    return d, cert, oid, p


def renewal(props):
    return (props["RenewalState"], props["RenewalOrder"], props["RenewalChecked"])


@pytest.mark.parametrize("fault,error", [
    (("--status", "500"), "HTTP status 500"),
    (("--body", "garbage"), "not valid JSON"),
    (("--body", "oversized"), "larger than 1048576 bytes"),
])
def test_broken_answer_is_survived_and_shown(env, fault, error):
    d, cert, oid, known = known_order(env, "grace", 26457513)
    portal = env.portal

    env.portal.admin("fault", "set", *fault)
    d = env.restart(d)
    wait_for("failing", lambda: env.manager()["PortalState"] == "failing")
    m = env.manager()
    assert not m["PortalReachable"]
    assert error in m["PortalError"], m["PortalError"]
    assert portal.url in m["PortalError"], m["PortalError"]
    # The first retry a minute later, plus up to 10 % jitter.
    wait = (m["NextPortalCheck"] - now_us()) / 1e6
    assert 50 < wait <= 67, wait
    # What was known stays; nothing from the broken answer is taken.
    assert renewal(env.props(cert, CERT)) == renewal(known)
    assert not env.watcher.find("RenewalAvailable")
    assert d.proc.poll() is None

    # Mended: Refresh() asks at once, and the news comes through.
    portal.admin("fault", "clear")
    portal.admin("order", "pay", oid)
    env.obj(PATH).Refresh(dbus_interface=MANAGER)
    wait_for("reachable", lambda: env.manager()["PortalReachable"])
    m = env.manager()
    assert (m["PortalState"], m["PortalError"]) == ("reachable", "")
    p = env.wait_renewal(cert, "approved")
    assert p["RenewalOrder"] == oid and p["RenewalChecked"] > known["RenewalChecked"]
    env.watcher.wait("RenewalAvailable", cert)
    assert renewal_signals(env, cert) == [(oid, False)]
    assert d.stop() == 0, d.output()


def test_slow_portal_keeps_the_bus_responsive(env):
    d, cert, oid, known = known_order(env, "heidi", 28284271)
    env.portal.admin("order", "pay", oid)
    env.portal.admin("fault", "set", "--delay-ms", "3000")

    d = env.restart(d)
    t0 = time.monotonic()
    # While the portal sleeps on the daemon's first poll (a fresh daemon's
    # LastPortalCheck is 0 until a poll ends), the bus answers at once.
    worst, asked = 0.0, 0
    manager = env.obj(PATH)
    while time.monotonic() - t0 < 2.0:
        t = time.monotonic()
        manager.Get(MANAGER, "Version", dbus_interface=dbus.PROPERTIES_IFACE, timeout=5)
        worst = max(worst, time.monotonic() - t)
        asked += 1
        time.sleep(0.05)
    m = env.manager()
    assert (m["LastPortalCheck"], m["PortalState"]) == (0, "unknown"), "the poll did not wait for the portal"
    assert env.props(cert, CERT)["RenewalState"] == "awaiting-payment"
    assert worst < 0.5, worst

    # Late, but a good answer: taken as any other.
    p = env.wait_renewal(cert, "approved", timeout=15)
    took = time.monotonic() - t0
    m = env.manager()
    assert (m["PortalState"], m["PortalReachable"], m["PortalError"]) == ("reachable", True, "")
    assert now_us() - 10_000_000 < m["LastPortalCheck"] <= now_us()
    assert p["RenewalChecked"] > known["RenewalChecked"]
    assert 2.0 < took < 10, took
    print(f"\nslow portal (3 s): {asked} Gets on the Manager during the poll, slowest {worst * 1000:.1f} ms; "
          f"answer on the bus {took:.2f} s after the daemon's name")
    env.portal.admin("fault", "clear")
    assert d.stop() == 0, d.output()


def test_valgrind_clean(env):
    """Each broken answer read and dropped by the daemon under valgrind,
    then SIGTERM: no leak, no error."""
    valgrind = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite,indirect", "--quiet"]
    d, cert, oid, known = known_order(env, "ivan", 31622776)
    assert d.stop() == 0, d.output()
    for fault, error in [(("--status", "500"), "HTTP status 500"), (("--body", "garbage"), "not valid JSON"),
                         (("--body", "oversized"), "larger than")]:
        env.portal.admin("fault", "set", *fault)
        d = env.start(wrapper=valgrind)
        wait_for("failing", lambda: env.manager()["PortalState"] == "failing", timeout=30)
        assert error in env.manager()["PortalError"]
        assert renewal(env.props(cert, CERT)) == renewal(known)
        assert d.stop(timeout=60) == 0, d.output()
