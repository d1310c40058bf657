#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenew's demo: everything keyrenew does today, on stand-ins for the
hardware and the CA, in a private sandbox that is gone afterwards.

  - a private pcscd with a virtual reader (needs root: a mount namespace),
  - the reference CA portal with TLS on 127.0.0.1,
  - a private D-Bus bus and keyrenewd on it,
  - a virtual PIV key whose certificate, issued by the portal's CA, ends in
    a few days,
then shows what keyrenewd sees and what the portal says. The renewal
itself (PIN, new key on the card, CMP, install) is not built yet: the demo
says so and changes nothing on the key.

Usage: demo.py [--build-dir DIR] [--days N] [--keep]
"""

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TOP / "tests" / "integration"), str(TOP / "tests" / "portal")]

from keyrenew_testbed import PcscTestbed, wait_for  # noqa: E402 (needs the path above)

BUS_NAME = "org.keyrenew.KeyRenew1"
ROOT = "/org/keyrenew/KeyRenew1"
IFACE = "org.keyrenew.KeyRenew1"
PROPS = "org.freedesktop.DBus.Properties"


def say(text=""):
    print(text, flush=True)


def step(text):
    say(f"==> {text}")


class Sandbox:
    """Everything the demo starts, stopped in reverse order (only ours)."""

    def __init__(self, build, keep):
        self.build = build
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-demo-"))
        self.keep = keep
        self.procs = []
        self.closers = []

    def spawn(self, args, **kw):
        log = open(self.dir / f"{pathlib.Path(str(args[0])).name}.log", "ab")
        p = subprocess.Popen([str(a) for a in args], stderr=log, **kw)
        self.procs.append((p, log))
        return p

    def close(self):
        for close in reversed(self.closers):
            close()
        for p, log in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            log.close()
        if self.keep:
            say(f"The sandbox's files and logs are kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def start_bus(box):
    """A private bus: dbus-daemon's session configuration on our socket."""
    sock = box.dir / "bus"
    p = box.spawn(["dbus-daemon", "--session", "--nofork", "--print-address",
                   f"--address=unix:path={sock}"], stdout=subprocess.PIPE, text=True)
    address = p.stdout.readline().strip()
    if not address.startswith("unix:"):
        raise RuntimeError("dbus-daemon did not start")
    return address


def start_daemon(box, address, bed, portal):
    conf = box.dir / "keyrenewd.conf"
    conf.write_text("[Portal]\n"
                    f"Url={portal.url}\n"
                    f"CABundle={portal.bundle}\n"
                    "PollIntervalSec=60\n")
    box.spawn([box.build / "daemon" / "keyrenewd", "--bus", address, "--config", conf,
               "--state-dir", box.dir / "state", "--log-target", "stderr"], env=bed.env)


def connect(address):
    import dbus
    bus = dbus.bus.BusConnection(address)
    wait_for("keyrenewd on the bus", lambda: bus.name_has_owner(BUS_NAME))
    return bus


def props(bus, path, iface):
    return bus.get_object(BUS_NAME, path).GetAll(f"{IFACE}.{iface}", dbus_interface=PROPS)


def find_token(bus, serial):
    import dbus
    manager = bus.get_object(BUS_NAME, ROOT)

    def lookup():
        try:
            path = str(manager.GetToken(str(serial), dbus_interface=f"{IFACE}.Manager"))
        except dbus.DBusException:
            return None
        token = props(bus, path, "Token")
        return path if token["Present"] and token["State"] not in ("checking",) else None
    return wait_for("the key on the bus", lookup)


def when(usec):
    return datetime.datetime.fromtimestamp(int(usec) / 1e6, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def show_certificates(bus, token_path):
    certs = []
    for cert_path in props(bus, token_path, "Token")["Certificates"]:
        c = props(bus, str(cert_path), "Certificate")
        certs.append((str(cert_path), c))
        say(f"    slot {c['Slot']}: {c['Subject']}")
        say(f"        {c['KeyType']} {c['KeyBits']}, {' and '.join(c['Usage'])}; ends {when(c['NotAfter'])}: "
            f"{c['DaysLeft']} days left ({c['Status']})")
    return certs


def show_portal_state(bus, certs):
    """Waits for the check keyrenewd makes when a key is plugged in."""
    path, _ = certs[0]

    def approved():
        c = props(bus, path, "Certificate")
        return c if c.get("RenewalState") == "approved" else None
    try:
        c = wait_for("the approval on the bus", approved, timeout=30)
    except AssertionError:
        c = props(bus, path, "Certificate")
        say(f"    keyrenewd shows renewal state \"{c.get('RenewalState', 'unknown')}\" and portal state "
            f"\"{props(bus, ROOT, 'Manager').get('PortalState')}\": the approval did not arrive.")
        raise
    say(f"    keyrenewd asked the portal: renewal {c['RenewalState']} (order {c['RenewalOrder']}); "
        f"the key's state is now \"{props(bus, c['Token'], 'Token')['State']}\"")
    say(f"    order page: {c['PortalUrl']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=pathlib.Path, default=TOP / "build")
    ap.add_argument("--days", type=int, default=5, help="days the key's certificate has left")
    ap.add_argument("--keep", action="store_true", help="keep the sandbox's files and logs")
    args = ap.parse_args()
    build = args.build_dir.resolve()
    os.environ["KEYRENEW_BUILD_DIR"] = str(build)
    if os.geteuid() != 0:
        sys.exit("demo.py: the private pcscd needs root (a mount namespace); run it as root.")

    from portal_testlib import Portal, run

    box = Sandbox(build, args.keep)
    try:
        step("Starting the reference CA portal (TLS on 127.0.0.1, its own test CA)")
        portal = Portal(box.dir, ca_alg="ecp256").start()
        box.closers.append(lambda: portal.stop(check=False))
        say(f"    {portal.url}")

        step("Starting a private pcscd with a virtual reader and a private D-Bus bus")
        bed = PcscTestbed(entries=1, name="Demo Reader", workdir=box.dir / "pcsc")
        bed.start()
        box.closers.append(bed.stop)
        address = start_bus(box)
        say(f"    readers: {', '.join(bed.readers)}")

        step("Starting keyrenewd, pointed at the portal")
        start_daemon(box, address, bed, portal)
        bus = connect(address)

        step(f"Making a virtual key whose certificate ends in {args.days} days")
        vcard = build / "tests" / "vcard" / "keyrenew-vcard"
        card = box.dir / "demo.card"
        serial = 20261127
        run([vcard, "create", card, "--serial", serial])
        cert_pem = box.dir / "old-cert.pem"
        run([vcard, "issue", card, "--slot", "9a", "--algorithm", "eccp256",
             "--subject", "/CN=Demo User/O=Example Ltd", "--ca-cert", portal.ca["ec"],
             "--ca-key", portal.dir / "ca-ec.key", "--days", args.days, "--out", cert_pem])

        step("On the portal: the user orders a renewal and pays; the CA approves it")
        order = portal.order(cert_pem)
        say(f"    order {order}: {portal.admin('order', 'pay', order).stdout.split()[-1]}")
        step("Plugging the key in")
        t0 = time.monotonic()
        bed.insert(card, 0)
        token_path = find_token(bus, serial)
        token = props(bus, token_path, "Token")
        say(f"    keyrenewd found key {token['Serial']} in \"{token['Reader']}\" after "
            f"{(time.monotonic() - t0) * 1000:.0f} ms; PIN tries left: {token['PinRetriesLeft']}; "
            f"state: {token['State']}")
        certs = show_certificates(bus, token_path)

        show_portal_state(bus, certs)

        step("Updating the key")
        say("    Not built yet: the renewal itself (PIN through an agent, a new key made")
        say("    on the card, CMP to the portal, the certificate written and checked)")
        say("    comes next. Nothing was changed on the key.")
        say()
        say("Run it again with ./scripts/demo.sh; --keep keeps the sandbox's logs")
        say("(python3 scripts/demo.py --keep). Everything it started is stopped now.")
        return 0
    finally:
        box.close()


if __name__ == "__main__":
    sys.exit(main())
