# SPDX-License-Identifier: GPL-2.0-or-later
"""Idle cost, side by side in one run: keyrenewd with keys plugged in and
nothing happening, certmonger (Debian's, the peer a Linux admin would
pick to track certificate expiry) tracking the same certificates, and
keyrenew-tray; then keyrenewd's memory over a thousand insert/remove
cycles.

Wake-ups are context switches (voluntary and not) summed over every
thread of a process, from /proc/PID/task/*/status, over a window of
nothing happening: each is a thread of that process having run. Resident
memory is VmRSS. keyrenewd runs twice: as the tests run it, and as its
unit runs it (WatchdogSec=60s: systemd hands it WATCHDOG_USEC and a
NOTIFY_SOCKET, which we own here)."""

import json
import os
import socket
import subprocess
import time

from benchlib import PYTHON, BenchError, context_switches, cpu_seconds, memory_kib, threads
from bench_insert import Rest
from sandbox import Sandbox

from test_daemon_core import PrivateBus  # noqa: E402

NOTIFY = "org.freedesktop.Notifications"
WATCHDOG_USEC = 60_000_000  # systemd/keyrenewd.service.in: WatchdogSec=60s


def build_tray():
    from keyrenew_testbed import build_dir
    path = build_dir() / "tray" / "keyrenew-tray"
    return path if os.access(path, os.X_OK) else None


class Certmonger:
    """certmonger -s -n on our bus, with its state in the sandbox; tracks
    the given PEM files (getcert start-tracking -f)."""

    def __init__(self, box, pems):
        self.dir = box.dir / "certmonger"
        for sub in ("requests", "cas", "tmp"):
            (self.dir / sub).mkdir(parents=True)
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=box.bus.address,
                        CERTMONGER_REQUESTS_DIR=str(self.dir / "requests"),
                        CERTMONGER_CAS_DIR=str(self.dir / "cas"), CERTMONGER_TMPDIR=str(self.dir / "tmp"))
        self.log = open(self.dir / "certmonger.log", "wb")
        self.proc = box.procs.start(["/usr/sbin/certmonger", "-s", "-n"], env=self.env, stdout=self.log,
                                    stderr=self.log)
        deadline = time.monotonic() + 30
        while not box.bus.conn.name_has_owner("org.fedorahosted.certmonger"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"certmonger did not come up: {(self.dir / 'certmonger.log').read_text()}")
            time.sleep(0.05)
        for pem in pems:
            proc = subprocess.run(["getcert", "start-tracking", "-s", "-f", str(pem)], env=self.env,
                                  capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                raise BenchError(f"getcert start-tracking failed: {proc.stdout}{proc.stderr}")
        self.wait_monitoring(len(pems))

    def wait_monitoring(self, n):
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run(["getcert", "list", "-s"], env=self.env, capture_output=True, text=True,
                                 timeout=60).stdout
            if out.count("status: MONITORING") == n:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"certmonger is not monitoring {n} certificates:\n{out}")
            time.sleep(0.2)


class Tray:
    """keyrenew-tray on a session bus of its own with python-dbusmock's
    notification daemon, talking to keyrenewd on the sandbox's bus."""

    def __init__(self, box, binary):
        self.dir = box.dir / "desktop"
        self.dir.mkdir()
        self.session = PrivateBus(self.dir)
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.session.address)
        box.procs.start([PYTHON, "-m", "dbusmock", "--template", "notification_daemon"], env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.session.conn.name_has_owner(NOTIFY):
            if time.monotonic() > deadline:
                raise BenchError("the mock notification daemon did not come up")
            time.sleep(0.05)
        env = dict(env, XDG_STATE_HOME=str(self.dir / "state"), LANG="C.UTF-8", GNUPGHOME=str(self.dir))
        env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        self.log = open(self.dir / "tray.log", "wb")
        self.proc = box.procs.start([binary, "--bus", box.bus.address, "--pinentry", "/bin/false"], env=env,
                                    stdout=self.log, stderr=self.log)

    def close(self):
        self.session.stop()


class NotifySocket:
    """The socket systemd would give keyrenewd ($NOTIFY_SOCKET); counts
    the WATCHDOG=1 pings."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)

    def drain(self):
        pings = 0
        while True:
            try:
                pings += self.sock.recv(4096).count(b"WATCHDOG=1")
            except BlockingIOError:
                return pings

    def close(self):
        self.sock.close()


def wakeups(pids, seconds):
    """{name: context switches per minute} over the same window."""
    before = {n: context_switches(p) for n, p in pids.items()}
    time.sleep(seconds)
    after = {n: context_switches(p) for n, p in pids.items()}
    return {n: (after[n] - before[n]) * 60.0 / seconds for n in pids}


def plug_keys(box, cards):
    mark = box.log.mark()
    for i, c in enumerate(cards):
        box.bed.insert(c, i, wait=False)
    for i in range(len(cards)):
        box.bed.wait_present(i, True, 15)
    last = mark
    for _ in cards:
        last, _ = box.wait_log(" read in ", last)
        last += 1


def next_portal_check(box):
    """Seconds until keyrenewd's next portal poll (NextPortalCheck)."""
    import dbus
    obj = box.bus.conn.get_object("org.keyrenew.KeyRenew1", "/org/keyrenew/KeyRenew1", introspect=False)
    usec = obj.Get("org.keyrenew.KeyRenew1.Manager", "NextPortalCheck", dbus_interface=dbus.PROPERTIES_IFACE)
    return int(usec) / 1e6 - time.time() if usec else float("inf")


def quiet_window(box, window):
    """Waits until no portal poll is due within the window to come (a key
    plugged in shortly after another is asked about a minute later): the
    window then measures what happens outside the portal's schedule.
    Returns the seconds to the next poll."""
    while True:
        left = next_portal_check(box)
        if left > window + 5:
            return left
        time.sleep(max(left, 0) + 3)


def cycles(box, cards, count, samples):
    """count insert/remove cycles spread over the readers; RSS (KiB) after
    each sample point, and keyrenewd's CPU seconds per cycle."""
    rest = Rest()
    done, rss, cpu0 = 0, [], cpu_seconds(box.daemon.pid)
    points = sorted(set(samples))
    t0 = time.monotonic()
    while done < count:
        n = min(len(cards), count - done)
        for i in range(n):
            rest.wait(i)
        mark = box.log.mark()
        for i in range(n):
            box.bed.insert(cards[i], i, wait=False)
        last = mark
        for _ in range(n):
            last, _ = box.wait_log(" read in ", last, timeout=60)
            last += 1
        mark = box.log.mark()
        for i in range(n):
            box.bed.remove(i)
            rest.removed(i)
        last = mark
        for _ in range(n):
            last, _ = box.wait_log("Card removed from", last, timeout=60)
            last += 1
        done += n
        while points and done >= points[0]:
            rss.append((points.pop(0), memory_kib(box.daemon.pid)))
    return rss, (cpu_seconds(box.daemon.pid) - cpu0) / count, time.monotonic() - t0


def idle(window=60.0, count=1000, keep=False):
    out = {"window_s": window}
    tray_binary = build_tray()
    with Sandbox("idle", entries=8, keep=keep) as box:
        portal = box.start_portal()
        config = box.write_config(portal.url)
        keys = [box.new_card(algorithm=a) for a in ("rsa2048", "eccp256")]
        cm = Certmonger(box, [pem for _, pem in keys])
        tray = Tray(box, tray_binary) if tray_binary else None
        notify = NotifySocket(box.dir / "notify")
        try:
            for mode, env in (("tests", {}),
                              ("unit", {"WATCHDOG_USEC": str(WATCHDOG_USEC), "NOTIFY_SOCKET": notify.path})):
                box.start_daemon(config=config, env=env, log_level="info")
                plug_keys(box, [state for state, _ in keys])
                time.sleep(5)  # the first portal answer, the certificates' timers armed
                next_poll = quiet_window(box, window)
                time.sleep(1)  # keyrenewd back to sleep after answering quiet_window()
                notify.drain()
                pids = {"keyrenewd": box.daemon.pid, "certmonger": cm.proc.pid}
                if tray:
                    pids["keyrenew-tray"] = tray.proc.pid
                res = {"wakeups_per_min": wakeups(pids, window),
                       "memory_kib": {n: memory_kib(p) for n, p in pids.items()},
                       "threads": {n: threads(p) for n, p in pids.items()},
                       "watchdog_pings": notify.drain(), "next_poll_s": next_poll}
                out[mode] = res
                for i in range(len(keys)):
                    box.bed.remove(i)
                if mode == "tests":
                    cards = [box.new_card(algorithm="eccp256")[0] for _ in box.bed.readers]
                    time.sleep(1)
                    rest_rss = memory_kib(box.daemon.pid)
                    samples = [len(cards), count // 10, count // 2, count]
                    rss, cpu_per_cycle, seconds = cycles(box, cards, count, samples)
                    time.sleep(2)
                    out["cycles"] = {"count": count, "rest": rest_rss, "samples": rss,
                                     "after": memory_kib(box.daemon.pid), "cpu_ms_per_cycle": cpu_per_cycle * 1000,
                                     "seconds": seconds}
                if box.stop_daemon() != 0:
                    raise BenchError("keyrenewd did not exit cleanly")
        finally:
            notify.close()
            if tray:
                tray.close()
    out["tray"] = bool(tray_binary)
    return out


if __name__ == "__main__":
    print(json.dumps(idle(window=float(os.environ.get("WINDOW", 10)), count=int(os.environ.get("COUNT", 32))),
                     indent=1))
