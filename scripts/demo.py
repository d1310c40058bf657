#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenew's demo: a real renewal of a key's certificate, end to end, on
stand-ins for the hardware and the CA, in a private sandbox that is gone
afterwards.

The sandbox: the reference CA portal with TLS on 127.0.0.1; a private
pcscd with a virtual reader (needs root: a mount namespace); a private
bus of the system type with keyrenew's own bus policy, and a stand-in
polkitd (python-dbusmock's) that allows org.keyrenew.renew; keyrenewd on
that bus. A virtual PIV key whose certificate, issued by the portal's CA,
ends in a few days is plugged in; its renewal is ordered, paid and
approved on the portal; then keyrenewctl renews it, as the PIN agent that
types the PIN (or lets you type it), or, with --tray, keyrenew-tray on
your desktop does. The result is checked with tools keyrenew did not
write: yubico-piv-tool and the portal's CRL.

Usage: demo.py [--build-dir DIR] [--days N] [--pin PIN | --interactive | --tray [--pinentry PROGRAM]]
               [--keep]

Exit status: 0 only when the key holds the new certificate; 1 when the
renewal or a check failed; 2 for bad usage; 130 when interrupted."""

import argparse
import datetime
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TOP / "tests" / "integration"), str(TOP / "tests" / "portal")]
# Nothing is written outside the build and the demo's own folder: not even
# Python's caches next to the test helpers it imports from there.
sys.dont_write_bytecode = True

BUS_NAME = "org.keyrenew.KeyRenew1"
ROOT = "/org/keyrenew/KeyRenew1"
IFACE = "org.keyrenew.KeyRenew1"
PROPS = "org.freedesktop.DBus.Properties"
POLKIT = "org.freedesktop.PolicyKit1"
POLKIT_POLICY = pathlib.Path("/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf")

SERIAL = 20261127
SLOT = "9a"
# The virtual key's PIN, as keyrenew-vcard makes every new key.
CARD_PIN = "123456"

# A system bus's defaults, as Debian's /usr/share/dbus-1/system.conf has
# them: nobody owns a name or calls a method unless a policy file allows
# it. Then keyrenew's policy and polkit's, as installed. The policy lets
# root own keyrenewd's name, as it lets the keyrenew user a real install
# runs it as (the user does not exist before installing).
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
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
  <include>{keyrenew_policy}</include>
  <include>{polkit_policy}</include>
</busconfig>
"""


class Interrupted(Exception):
    """SIGTERM or SIGHUP: stop as after Ctrl-C."""


# While a process is being started and recorded, a signal waits: raised
# inside Popen, it would leave a child nobody knows to stop.
deferring = 0
deferred = []


def on_signal(signo, _frame):
    if deferring:
        deferred.append(signo)
    elif signo == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        raise Interrupted(signal.Signals(signo).name)


class starting:
    """with starting(): ... starts and records a process; a signal that
    comes meanwhile is raised once it is recorded."""

    def __enter__(self):
        global deferring
        deferring += 1

    def __exit__(self, *exc):
        global deferring
        deferring -= 1
        if not deferring and deferred:
            on_signal(deferred.pop(), None)


def say(text=""):
    print(text, flush=True)


def step(text):
    say(f"==> {text}")


def when(seconds):
    """A time as the user's clock shows it."""
    return datetime.datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def run(args, **kw):
    """A short command whose failure is the demo's failure."""
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(str(a) for a in args)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def x509(pem, *what):
    return run(["openssl", "x509", "-in", pem, "-noout", *what]).stdout


def x509_serial(pem):
    return x509(pem, "-serial").strip().split("=", 1)[1].upper()


def x509_end(pem):
    text = x509(pem, "-enddate").strip().split("=", 1)[1]
    return datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)


class Sandbox:
    """Everything the demo starts, stopped in reverse order: only what it
    started, by the processes it holds. Each process goes into the
    folder's file "pids" as it starts (pid, start time in clock ticks after
    boot, name), for whoever checks that none is left."""

    def __init__(self, keep):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-demo-"))
        # The stand-in polkitd runs as polkitd and must reach the bus in here.
        self.dir.chmod(0o711)
        self.keep = keep
        self.closers = []
        self.logs = []

    def record(self, proc, name):
        try:
            stat = pathlib.Path(f"/proc/{proc.pid}/stat").read_text()
            start = stat.rsplit(")", 1)[1].split()[19]
        except OSError:  # gone already: nothing to check for
            return
        with open(self.dir / "pids", "a") as f:
            f.write(f"{proc.pid} {start} {name}\n")

    def spawn(self, name, args, must_end_well=False, **kw):
        """A process in a session of its own: Ctrl-C on the terminal reaches
        the demo and keyrenewctl, and the demo stops the rest in order.
        must_end_well: stopped, it must exit 0 (a crash or a sanitizer's
        finding on the way out is the demo's failure)."""
        from keyrenew_testbed.pcsc import stop_process
        log_path = self.dir / f"{name}.log"
        log = open(log_path, "ab")
        self.logs.append(log)

        def close():
            status = stop_process(p)
            if must_end_well and status != 0:
                log.flush()
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                return f"{name} exited with status {status}; its log ends:\n" + "\n".join(tail)
            return None
        with starting():
            p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stderr=log,
                                 stdout=kw.pop("stdout", log), start_new_session=True, **kw)
            self.closers.append(close)
            self.record(p, name)
        return p

    def close(self):
        """Stops everything; returns False when something did not end well
        (each closer returns what went wrong, or None)."""
        # A second Ctrl-C must not leave half of the sandbox running.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        problems = []
        for close in reversed(self.closers):
            try:
                problem = close()
            except Exception as e:  # the rest must still be stopped
                problem = str(e)
            if problem:
                problems.append(problem)
        for log in self.logs:
            log.close()
        for p in problems:
            say(f"    while stopping: {p}")
        if self.keep:
            say(f"The sandbox's files and logs are kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return not problems


def start_portal(box):
    from portal_testlib import Portal
    portal = Portal(box.dir, ca_alg="ecp256")

    def close():
        status = portal.stop(check=False)
        return f"the portal exited with status {status}: {portal.stderr()}" if status else None
    box.closers.append(close)
    # setsid: a session of its own (the pid stays the portal's).
    with starting():
        portal.start(wrapper=["setsid"])
        box.record(portal.proc, "keyrenew-portal")
    return portal


def start_pcscd(box):
    from keyrenew_testbed import PcscTestbed
    bed = PcscTestbed(entries=1, name="Demo Reader", workdir=box.dir / "pcsc")
    box.closers.append(bed.stop)
    with starting():
        bed.start()
        box.record(bed.pcscd, "pcscd")
        box.record(bed.monitor, "pcscstat")
    return bed


def start_bus(box):
    bus_dir = box.dir / "bus"
    bus_dir.mkdir(mode=0o755)
    conf = bus_dir / "bus.conf"
    conf.write_text(BUS_CONFIG.format(socket=bus_dir / "socket", keyrenew_policy=TOP / "dbus" /
                                      "org.keyrenew.KeyRenew1.conf", polkit_policy=POLKIT_POLICY))
    p = box.spawn("dbus-daemon", ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address"],
                  stdout=subprocess.PIPE, text=True)
    address = p.stdout.readline().strip()
    p.stdout.close()
    if not address.startswith("unix:"):
        raise RuntimeError(f"dbus-daemon did not start: {(box.dir / 'dbus-daemon.log').read_text()}")
    return address


def start_polkitd(box, address):
    """python-dbusmock's polkitd, as the polkitd user whom polkit's bus
    policy lets own the name; it allows org.keyrenew.renew only."""
    import dbus
    from keyrenew_testbed import wait_for
    box.spawn("polkitd", ["setpriv", "--reuid=polkitd", "--regid=polkitd", "--clear-groups", "--",
                          "/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "polkitd"],
              cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
                            "DBUS_SYSTEM_BUS_ADDRESS": address, "PYTHONDONTWRITEBYTECODE": "1"})
    bus = dbus.bus.BusConnection(address)
    wait_for("the stand-in polkitd on the bus", lambda: bus.name_has_owner(POLKIT))
    mock = bus.get_object(POLKIT, "/org/freedesktop/PolicyKit1/Authority")
    mock.SetAllowed(["org.keyrenew.renew"], dbus_interface="org.freedesktop.DBus.Mock")
    return bus


def start_keyrenewd(box, build, address, bed, portal):
    conf = box.dir / "keyrenewd.conf"
    conf.write_text(f"[Portal]\nUrl={portal.url}\nCABundle={portal.bundle}\n")
    env = dict(bed.env, KEYRENEW_LOCALEDIR=str(build / "po"))
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    box.spawn("keyrenewd", [build / "daemon" / "keyrenewd", "--bus", address, "--config", conf, "--state-dir",
                            box.dir / "state", "--log-target", "stderr"], must_end_well=True, env=env)


def props(bus, path, iface):
    return bus.get_object(BUS_NAME, path).GetAll(f"{IFACE}.{iface}", dbus_interface=PROPS)


def wait_for_certificate(bus, box):
    """The key's certificate on the bus, once keyrenewd has read the key
    and heard from the portal about it: (token path, certificate path)."""
    import dbus
    from keyrenew_testbed import wait_for

    def lookup():
        try:
            token = str(bus.get_object(BUS_NAME, ROOT).GetToken(str(SERIAL), dbus_interface=f"{IFACE}.Manager"))
        except dbus.DBusException:
            return None
        for path in props(bus, token, "Token")["Certificates"]:
            c = props(bus, path, "Certificate")
            if c["Slot"] == SLOT:
                found[:] = [token, str(path), str(c["RenewalState"])]
                if c["RenewalState"] == "approved":
                    return token, str(path)
        return None
    found = []
    try:
        return wait_for("keyrenewd to find the key and hear from the portal", lookup, timeout=30)
    except AssertionError:
        log = (box.dir / "keyrenewd.log").read_text(errors="replace")
        seen = f"shows the renewal as \"{found[2]}\"" if found else "does not show the key"
        raise RuntimeError(f"after 30 s keyrenewd {seen}; its log ends:\n" +
                           "\n".join(log.splitlines()[-15:])) from None


def make_key(box, build, portal, days):
    vcard = build / "tests" / "vcard" / "keyrenew-vcard"
    card = box.dir / "demo.card"
    old_pem = box.dir / "old-cert.pem"
    run([vcard, "create", card, "--serial", SERIAL, "--yk-version", "5.7.1"])
    # An hour more than the days: keyrenewd counts whole days left.
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days, hours=1)
    run([vcard, "issue", card, "--slot", SLOT, "--algorithm", "eccp256", "--subject",
         "/CN=Demo User/O=Example Ltd", "--ca-cert", portal.ca["ec"], "--ca-key", portal.dir / "ca-ec.key",
         "--not-after", end.strftime("%Y%m%d%H%M%SZ"), "--out", old_pem])
    return card, old_pem


def order_renewal(portal, old_pem):
    order = portal.order(old_pem, "--review", "--rekey", "yes", "--validity-days", "365")
    say(f"    the user orders the renewal: order {order}")
    state = portal.admin("order", "pay", order).stdout.split()[-1]
    say(f"    the user pays: {state.replace('-', ' ')}")
    state = portal.admin("order", "approve", order).stdout.split()[-1]
    say(f"    the CA checks it: {state} (with a new key pair, made on the card; valid 365 days)")
    return order


def show_key(bus, token, cert, t0):
    t = props(bus, token, "Token")
    c = props(bus, cert, "Certificate")
    say(f"    key found: {t['Serial']} in \"{t['Reader']}\" after {(time.monotonic() - t0) * 1000:.0f} ms; "
        f"PIN tries left: {t['PinRetriesLeft']}")
    say(f"    slot {c['Slot']}: {c['Subject']} ({c['KeyType']} {c['KeyBits']}, {', '.join(c['Usage'])})")
    say(f"    certificate ends {when(c['NotAfter'] / 1e6)}: in {c['DaysLeft']} days ({c['Status']})")
    say(f"    renewal approved on the portal: order {c['RenewalOrder']}")
    say(f"      ({c['PortalUrl']})")


def renew(build, address, pin, interactive):
    """keyrenewctl renew, as a person runs it; its exit status."""
    ctl = build / "ctl" / "keyrenewctl"
    args = [ctl, "--bus", address, "renew", f"{SERIAL}/{SLOT}"]
    env = dict(os.environ, KEYRENEW_LOCALEDIR=str(build / "po"))
    if interactive:
        say(f"    $ keyrenewctl renew {SERIAL}/{SLOT}    (on the sandbox's bus; the key's PIN is {CARD_PIN})")
    else:
        args.append("--pin-stdin")
        say(f"    $ keyrenewctl renew {SERIAL}/{SLOT} --pin-stdin    (on the sandbox's bus; the demo types "
            f"{pin})")
    # keyrenewctl writes to the demo's own output; the demo's lines go first.
    sys.stdout.flush()
    with starting():
        p = subprocess.Popen([str(a) for a in args], env=env,
                             stdin=None if interactive else subprocess.PIPE, text=True)
    try:
        if not interactive:
            p.stdin.write(pin + "\n")
            p.stdin.close()
        return p.wait()
    except BaseException:
        # Ctrl-C reached keyrenewctl too: it cancels at the next step. A
        # signal to the demo alone: keyrenewctl's own Ctrl-C handling.
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        raise


CTL_STATUS = {
    1: "keyrenewd refused or failed (its message is above)",
    3: "keyrenewd could not be reached",
    5: "cancelled: nothing was changed",
    6: "the PIN was wrong or is blocked (the virtual key's PIN is 123456)",
    7: "the renewal needs the user to agree to lose the old key",
    8: "the key was pulled out, or keyrenewd stopped",
    9: "nothing to renew",
}


# keyrenewctl's words for the steps (ctl/ctl-status.c).
STEPS = {
    "pin": "waiting for the PIN",
    "started": "the renewal started",
    "key-generated": "the new key was made on the card",
    "requesting": "asking the portal for the new certificate",
    "issued": "the portal issued the new certificate",
    "written": "the new certificate is on the key",
    "verified": "the new certificate and key passed a test signature",
    "confirmed": "the portal knows the new certificate is installed",
    "done": "done",
}


def desktop_session():
    """Where the person's desktop is, for keyrenew-tray: (uid, gid, the
    environment the tray needs), or None when there is no desktop. Under
    sudo the person is SUDO_UID, whose session bus and display sudo's
    clean environment may have dropped: then their usual places."""
    uid = int(os.environ.get("SUDO_UID", os.getuid()))
    user = pwd.getpwuid(uid)
    gid = int(os.environ.get("SUDO_GID", user.pw_gid))
    runtime = pathlib.Path(f"/run/user/{uid}")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": user.pw_dir, "USER": user.pw_name,
           "LOGNAME": user.pw_name}
    for name in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "GNUPGHOME", "LANG",
                 "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if runtime.is_dir():
        env["XDG_RUNTIME_DIR"] = str(runtime)
        if "DBUS_SESSION_BUS_ADDRESS" not in env and (runtime / "bus").exists():
            env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={runtime / 'bus'}"
        if "WAYLAND_DISPLAY" not in env and (runtime / "wayland-0").exists():
            env["WAYLAND_DISPLAY"] = "wayland-0"
    if "DBUS_SESSION_BUS_ADDRESS" not in env or not ("DISPLAY" in env or "WAYLAND_DISPLAY" in env):
        return None
    return uid, gid, env


def tray_pinentry(env):
    """The PIN dialog keyrenew-tray runs by itself: gpg-agent.conf's
    pinentry-program, else /usr/bin/pinentry (tray/keyrenew-tray.c)."""
    home = env.get("GNUPGHOME") or os.path.join(env["HOME"], ".gnupg")
    dialog = "/usr/bin/pinentry"
    try:
        for line in pathlib.Path(home, "gpg-agent.conf").read_text(errors="replace").splitlines():
            words = line.split(None, 1)
            if len(words) == 2 and words[0] == "pinentry-program":
                dialog = words[1].strip()
    except OSError:
        pass
    return pathlib.Path(dialog)


def start_tray(box, build, address, desktop, pinentry):
    """keyrenew-tray as the person whose desktop it is, on the sandbox's
    bus: it is the PIN agent, and its notification asks to update."""
    uid, gid, env = desktop
    # "Later" (Cancel in the PIN dialog) puts it off for a minute, not hours.
    args = [build / "tray" / "keyrenew-tray", "--bus", address, "--snooze", "1"]
    if pinentry:
        args += ["--pinentry", pinentry]
    if uid != os.getuid():
        args = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--", *args]
    # What the tray remembers (warnings shown, "Later") stays in the sandbox,
    # not in the person's own ~/.local/state.
    state = box.dir / "tray-state"
    state.mkdir()
    os.chown(state, uid, gid)
    return box.spawn("keyrenew-tray", args, cwd="/",
                     env=dict(env, KEYRENEW_LOCALEDIR=str(build / "po"), XDG_STATE_HOME=str(state)))


def follow_tray(address, box, token, tray, timeout=600):
    """The steps of the renewal the person starts from the tray, as the
    key's properties change, until one ends well; a try that does not
    (Cancel, a wrong PIN) is said, with keyrenewd's words."""
    import dbus
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    bus = dbus.bus.BusConnection(address, mainloop=DBusGMainLoop())
    now = {"step": None, "progress": 0, "done": False}

    def changed(iface, values, _invalidated):
        if iface != f"{IFACE}.Token":
            return
        now["progress"] = int(values.get("Progress", now["progress"]))
        step = str(values.get("RenewalStep", ""))
        if step in STEPS and step != now["step"]:
            now["step"] = step
            say(f"[{now['progress']:3d}%] {STEPS[step]}")

    def finished(_cert, outcome, message):
        now["step"] = None
        if outcome == "done":
            now["done"] = True
        elif outcome == "cancelled":
            say("    cancelled (Later): the tray asks again in a minute; Ctrl-C ends the demo")
        else:
            say(f"    that try ended, {outcome}: {message}")

    bus.add_signal_receiver(changed, "PropertiesChanged", PROPS, BUS_NAME, token)
    bus.add_signal_receiver(finished, "RenewalFinished", f"{IFACE}.Manager", BUS_NAME, ROOT)
    # Wakes the loop up, to see the tray and the clock (and signals).
    tick = GLib.timeout_add(100, lambda: True)
    deadline = time.monotonic() + timeout
    try:
        while not now["done"]:
            GLib.MainContext.default().iteration(True)
            if tray.poll() is not None:
                log = (box.dir / "keyrenew-tray.log").read_text(errors="replace").strip()
                raise RuntimeError(f"keyrenew-tray exited with status {tray.returncode}: {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the key was not renewed from the tray within {timeout // 60} minutes")
        # The last steps may come after the end.
        while GLib.MainContext.default().iteration(False):
            pass
    finally:
        GLib.source_remove(tick)
        bus.close()


def check_key(bus, bed, box, portal, old_pem):
    """What is on the key now, by yubico-piv-tool, and on the portal's CRL:
    raises RuntimeError unless the key holds the new certificate."""
    reader = bed.readers[0]
    new_pem = box.dir / "new-cert.pem"
    p = bed.client(["yubico-piv-tool", "-r", reader, "-a", "read-certificate", "-s", SLOT, "-o", new_pem])
    if p.returncode != 0:
        raise RuntimeError(f"yubico-piv-tool cannot read the certificate in {SLOT}:\n{p.stdout}{p.stderr}")
    old_serial, new_serial = x509_serial(old_pem), x509_serial(new_pem)
    history = bus.get_object(BUS_NAME, ROOT).GetHistory(dbus_interface=f"{IFACE}.Manager")
    done = [h for h in history if str(h["Outcome"]) == "done"]
    if new_serial == old_serial or not done or str(done[-1]["NewSerial"]).upper().lstrip("0") != \
            new_serial.lstrip("0"):
        raise RuntimeError(f"slot {SLOT} holds certificate {new_serial}, not the renewed one "
                           f"(keyrenewd's history: {[dict(h) for h in history]})")
    end = x509_end(new_pem)
    new_key = x509(new_pem, "-pubkey") != x509(old_pem, "-pubkey")
    step(f"Done: the key's certificate is valid until {when(end.timestamp())}")
    days = round((end - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400)
    say(f"    new certificate {new_serial}, valid {days} days from now")
    say(f"    {'with a new key pair, made on the card' if new_key else 'with the same key pair as before'}")

    crl = portal.crl_text("ec").upper()
    if old_serial not in crl.replace(":", ""):
        raise RuntimeError(f"the portal's CRL does not list the old certificate {old_serial}")
    say(f"    old certificate {old_serial}: revoked, on the portal's CRL")
    say(f"      ({portal.url}/crl/ec, its signature checked against the portal's CA)")

    p = bed.client(["yubico-piv-tool", "-r", reader, "-a", "verify-pin", "-P", CARD_PIN, "-a",
                    "test-signature", "-s", SLOT, "-i", new_pem])
    verdict = [line for line in (p.stdout + p.stderr).splitlines() if "verification" in line]
    if p.returncode != 0 or not verdict or not verdict[-1].startswith("Successful"):
        raise RuntimeError(f"yubico-piv-tool's test signature failed:\n{p.stdout}{p.stderr}")
    say(f"    yubico-piv-tool: slot {SLOT} holds the new certificate, and a test signature")
    say(f"      by the card's key verifies against it ({verdict[-1].strip().rstrip('.')})")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=pathlib.Path, default=TOP / "build",
                    help="the build to run (default: build/ at the top)")
    ap.add_argument("--days", type=int, default=5, help="days the key's certificate has left (default 5)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--pin", default=CARD_PIN,
                     help=f"the PIN the demo gives keyrenewctl on its standard input (default {CARD_PIN}, "
                          "the virtual key's; another one costs a PIN try and stops the demo)")
    how.add_argument("--interactive", action="store_true",
                     help="type the PIN yourself at keyrenewctl's prompt")
    how.add_argument("--tray", action="store_true",
                     help="renew from keyrenew-tray on your desktop: its notification's \"Update now\", "
                          "the PIN in its dialog")
    ap.add_argument("--pinentry", metavar="PROGRAM",
                    help="with --tray: the PIN dialog the tray runs (default: the tray's, /usr/bin/pinentry)")
    ap.add_argument("--keep", action="store_true", help="keep the sandbox's files and logs")
    args = ap.parse_args()
    if not 1 <= args.days <= 365:
        ap.error("--days must be 1 to 365")
    if args.interactive:
        try:
            os.close(os.open("/dev/tty", os.O_RDWR))
        except OSError:
            ap.error("--interactive needs a terminal to type the PIN on")
    if args.pinentry and not args.tray:
        ap.error("--pinentry goes with --tray")
    args.desktop = desktop_session() if args.tray else None
    if args.tray and not args.desktop:
        ap.error("--tray needs a desktop: a session bus and a display (DISPLAY or WAYLAND_DISPLAY). Run it "
                 "from a terminal on your desktop; sudo may drop them: sudo --preserve-env=DISPLAY,XAUTHORITY,"
                 "WAYLAND_DISPLAY,DBUS_SESSION_BUS_ADDRESS ./scripts/demo.sh --tray")
    if args.tray and not args.pinentry:
        dialog = tray_pinentry(args.desktop[2])
        if dialog.resolve().name in ("pinentry-curses", "pinentry-tty"):
            ap.error(f"--tray needs a PIN dialog for the desktop, and the tray's is {dialog}, a terminal's: "
                     "choose pinentry-gtk-2, pinentry-gnome3 or pinentry-qt (update-alternatives --config pinentry, or "
                     "pinentry-program in gpg-agent.conf) or name one with --pinentry")
    return args


def demo(box, args, build):
    step("Starting the sandbox")
    portal = start_portal(box)
    say(f"    the reference CA portal: {portal.url} (TLS, its own test CA)")
    bed = start_pcscd(box)
    say(f"    a private pcscd with a virtual reader: {bed.readers[0]}")
    address = start_bus(box)
    bus = start_polkitd(box, address)
    say("    a private system bus with keyrenew's bus policy")
    say("    a stand-in polkitd (python-dbusmock) that allows org.keyrenew.renew")
    start_keyrenewd(box, build, address, bed, portal)
    from keyrenew_testbed import wait_for
    wait_for("keyrenewd on the bus", lambda: bus.name_has_owner(BUS_NAME))
    say("    keyrenewd, pointed at the portal")

    step(f"Making a virtual key ({SERIAL}) whose certificate ends in {args.days} days")
    card, old_pem = make_key(box, build, portal, args.days)

    step("On the portal")
    order_renewal(portal, old_pem)

    step("Plugging the key in")
    t0 = time.monotonic()
    with starting():
        plugged = bed.insert(card, 0)
        box.record(plugged.proc, "keyrenew-vcard")
    token, cert = wait_for_certificate(bus, box)
    show_key(bus, token, cert, t0)

    if args.tray:
        step("Updating the key from the tray: do not remove it until it says done")
        say(f"    keyrenew-tray shows a notification: click \"Update now\", then type the key's PIN, {CARD_PIN},")
        say("    in its dialog")
        tray = start_tray(box, build, address, args.desktop, args.pinentry)
        follow_tray(address, box, token, tray)
    else:
        step("Updating the key: do not remove it until it says done")
        status = renew(build, address, args.pin, args.interactive)
        if status != 0:
            raise RuntimeError(f"keyrenewctl exited {status}: {CTL_STATUS.get(status, 'it failed')}")
    check_key(bus, bed, box, portal, old_pem)
    bus.close()


def main():
    args = parse_args()
    build = args.build_dir.resolve()
    os.environ["KEYRENEW_BUILD_DIR"] = str(build)
    if os.geteuid() != 0:
        sys.exit("demo.py: the private pcscd needs root (a mount namespace); run it as root.")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    t0 = time.monotonic()
    box = Sandbox(args.keep)
    say("keyrenew demo: a real renewal of a virtual key, in a private sandbox")
    say(f"(its folder: {box.dir})")
    say()
    status = 1
    try:
        demo(box, args, build)
        status = 0
    except (KeyboardInterrupt, Interrupted):
        say()
        say("Interrupted: stopping everything the demo started.")
        status = 130
    except (RuntimeError, AssertionError) as e:
        say(f"The demo failed: {e}")
    except Exception:  # not foreseen: the whole story, for a bug report
        say("The demo failed:")
        traceback.print_exc(file=sys.stdout)
    finally:
        if not box.close() and status == 0:
            status = 1
    say(f"Everything the demo started is stopped (it took {time.monotonic() - t0:.0f} s).")
    if status == 0:
        say()
        say("Run it again:")
        if args.interactive or args.tray:
            say("  ./scripts/demo.sh                the demo types the PIN")
        if not args.interactive:
            say("  ./scripts/demo.sh --interactive  you type the PIN at keyrenewctl's prompt")
        if not args.tray:
            say("  ./scripts/demo.sh --tray         with the tray, when a desktop is there: click")
            say("                                   \"Update now\" and type the PIN in its dialog")
    return status


if __name__ == "__main__":
    sys.exit(main())
