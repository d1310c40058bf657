# SPDX-License-Identifier: GPL-2.0-or-later
"""Storms: keyrenewd with 16 readers whose keys are plugged in and pulled
out over and over (some pulled while the daemon reads them, some once it
has), a portal that goes away and comes back or answers 503 and 500,
clients that call Refresh, RegisterAgent or Renew and leave before the
answer, and a PIN agent killed while its prompt is open.

Afterwards: no token is stuck (every present one is read and at rest),
Refresh() answers, a renewal interrupted by the portal's absence resumes
and a fresh one works end to end, keyrenewd's memory (VmRSS after warm-up
against the end, plain build only: ASan's allocator and valgrind keep
freed memory on purpose) and open file descriptors did not grow, and it
exits 0 on SIGTERM, which under ASan/LSan (KEYRENEW_BUILD_DIR=build-asan)
and valgrind means no leak and no memory error.

KEYRENEW_STORM_CYCLES (default 320: 20 rounds of the 16 readers) sets
the plug-and-pull cycles of test_storm; KEYRENEW_STORM_VALGRIND_CYCLES
(default 64) those of test_storm_valgrind. A long run:

    sudo KEYRENEW_STORM_CYCLES=5000 KEYRENEW_BUILD_DIR=$PWD/build-asan \\
        /usr/bin/python3 -m pytest -q -s tests/integration/test_storms.py -k "not valgrind"

The figures (cycles, VmRSS and descriptors before and after, time) are
printed (-s shows them). Needs root."""

import json
import os
import pathlib
import signal
import subprocess
import time

import dbus
import dbus.lowlevel
import pytest

from keyrenew_testbed import PcscTestbed, wait_for
from keyrenew_testbed.clients import run, show
from test_daemon_core import BUS_NAME, KEYRENEWD, MANAGER, PATH
from test_daemon_tokens import CERT, TOKEN
from test_renewal import CLIENT, Env, order_state, serial_of

READERS = 16
STORM_CYCLES = int(os.environ.get("KEYRENEW_STORM_CYCLES", "320"))
VALGRIND_CYCLES = int(os.environ.get("KEYRENEW_STORM_VALGRIND_CYCLES", "64"))
# Our share of the TCP ports is 54000-54999; the portal must come back on
# the same port after it was stopped, since keyrenewd's configuration names
# it. An odd one: the range is inside the kernel's ephemeral ports, and
# connect() takes even ones first (Linux 4.6 and later), so any client on
# the machine may hold an even port for a while.
PORTAL_PORT = 54031
# Growth of VmRSS allowed between the sample after warm-up and the end:
# glibc's allocator keeps freed chunks and per-thread arenas, so a few
# hundred KiB come and go with the order of frees; a leak of one object
# per cycle (a token, a reader, a worker: each a few KiB) would pass it
# within 100 cycles.
RSS_SLACK_KIB = 1024
# A token at rest after a read: what the bus may show once the storm is over.
AT_REST = {"idle", "expiring", "expired", "renewal-available", "renewed"}
VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--quiet"]


# The CMP fault of each of the first storm rounds (round 0: the portal is down).
CMP_FLAPS = [None, ("--at", "kur", "--kind", "garbage"), ("--at", "certconf", "--kind", "truncated")]


def sanitized():
    """Whether keyrenewd is an ASan build (its RSS says nothing then)."""
    out = subprocess.run(["ldd", str(KEYRENEWD)], capture_output=True, text=True).stdout
    return "libasan" in out


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fds(pid):
    """The process's open descriptors: {number: what it points to}."""
    out = {}
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            out[int(fd.name)] = os.readlink(fd)
        except FileNotFoundError:
            pass
    return out


def steady_fds(pid, samples=5):
    """The descriptors open in each of a few samples a tenth of a second
    apart: one that only comes and goes (a token file being saved) is
    work in progress, one that leaks stays."""
    tables = []
    for _ in range(samples):
        tables.append(fds(pid))
        time.sleep(0.1)
    return {fd: target for fd, target in tables[0].items() if all(t.get(fd) == target for t in tables)}


def fd_kinds(table):
    """Counts by kind: sockets, pipes, anon inodes (eventfd, epoll...), files."""
    kinds = {}
    for target in table.values():
        kind = target.split(":")[0] if ":" in target else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def start_portal(portal, port, tries=20):
    """The portal on port: a port this high may be a client's for a moment
    (bind(0) takes odd ephemeral ports), so a taken one is tried again."""
    for _ in range(tries - 1):
        try:
            return portal.start(extra=("--port", str(port)))
        except AssertionError as e:
            if "Address already in use" not in str(e):
                raise
            time.sleep(0.5)
    return portal.start(extra=("--port", str(port)))


def journal(env, order):
    """The journal file of order's renewal (the order id in hex)."""
    return env.state_dir / f"renewal-{order.encode().hex()}.journal"


class Storm:
    """16 keys in 16 readers, keyrenewd, the portal on a fixed port."""

    def __init__(self, tmp, bed, wrapper=()):
        self.env = env = Env(tmp, bed)
        self.wrapper = wrapper
        self.slow = 6 if wrapper else 1
        url = env.portal.url
        env.portal.stop()
        self.portal_up()
        env.config.write_text(env.config.read_text().replace(f"Url={url}\n", f"Url={env.portal.url}\n"))
        self.states = [env.key(name=f"storm{i}")[0] for i in range(READERS)]
        self.serials = [str(serial_of(s)) for s in self.states]
        self.pulled = 0
        self.plugged = 0

    def portal_up(self):
        start_portal(self.env.portal, PORTAL_PORT)

    @property
    def pid(self):
        return self.env.daemon.proc.pid

    def start(self):
        return self.env.start(wrapper=self.wrapper)

    # --- keys ---------------------------------------------------------

    def plug_all(self):
        bed = self.env.bed
        for i, state in enumerate(self.states):
            bed.insert(state, i, wait=False)
        for i in range(READERS):
            bed.wait_present(i, True, timeout=15, card=bed.cards[i])
        self.plugged += READERS

    def pull_all(self):
        bed = self.env.bed
        for card in bed.cards.values():
            if card.running:
                card.proc.send_signal(signal.SIGTERM)
        for i in list(bed.cards):
            status = bed.remove(i, timeout=15)
            assert status == 0, f"the key in {bed.readers[i]} exited with {status}"
        self.pulled += READERS

    def objects(self):
        obj = self.env.bus.conn.get_object(BUS_NAME, PATH)
        return obj.GetManagedObjects(dbus_interface="org.freedesktop.DBus.ObjectManager", timeout=60)

    def tokens(self):
        """{serial: Token properties} of the tokens on the bus."""
        return {str(ifaces[TOKEN]["Serial"]): ifaces[TOKEN] for ifaces in self.objects().values()
                if TOKEN in ifaces}

    def all_read(self):
        toks = self.tokens()
        return all(s in toks and toks[s]["Present"] and toks[s]["Progress"] == 100
                   and toks[s]["State"] in AT_REST for s in self.serials) and toks

    def wait_all_read(self, timeout=30):
        try:
            return wait_for("all 16 tokens read and at rest", self.all_read, timeout * self.slow, step=0.2)
        except AssertionError as e:
            seen = {s: (str(t["State"]), bool(t["Present"]), int(t["Progress"]), str(t["LastError"]))
                    for s, t in self.tokens().items()}
            raise AssertionError(f"{e}: {seen}\n{self.env.daemon.output()[-3000:]}") from None

    def token_path(self, i):
        return str(self.env.bus.conn.get_object(BUS_NAME, PATH).GetToken(self.serials[i],
                                                                         dbus_interface=MANAGER))

    # --- clients that leave before the answer ---------------------------

    def send_and_leave(self, path, interface, method, signature=None, *args, register=False):
        conn = dbus.bus.BusConnection(self.env.bus.address)
        try:
            if register:
                try:
                    conn.get_object(BUS_NAME, PATH).RegisterAgent(dbus.ObjectPath("/storm/agent"),
                                                                   dbus_interface=MANAGER, timeout=30)
                except dbus.DBusException as e:
                    # The previous client's agent may not be dropped yet.
                    assert e.get_dbus_name() == "org.keyrenew.KeyRenew1.Error.AgentExists", e
            msg = dbus.lowlevel.MethodCallMessage(BUS_NAME, path, interface, method)
            if signature:
                msg.append(*args, signature=signature)
            conn.send_message(msg)
            conn.flush()
        finally:
            conn.close()

    def vanishing_clients(self, cert):
        self.send_and_leave(PATH, MANAGER, "Refresh")
        self.send_and_leave(self.token_path(3), TOKEN, "Refresh")
        self.send_and_leave(PATH, MANAGER, "RegisterAgent", "o", dbus.ObjectPath("/storm/agent"))
        self.send_and_leave(PATH, MANAGER, "Renew", "oa{sv}", dbus.ObjectPath(cert),
                            dbus.Dictionary({}, signature="sv"), register=True)
        self.send_and_leave(PATH, MANAGER, "GetHistory")

    def agent_dies_at_the_prompt(self, cert, order):
        """A PIN agent (and Renew's caller) killed while keyrenewd waits for
        its PIN: the renewal ends as cancelled, nothing is left behind."""
        env = self.env
        client = subprocess.Popen(["/usr/bin/python3", str(CLIENT), env.bus.address, cert, "--hang"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        token = env.props(cert, CERT)["Token"]
        try:
            wait_for("awaiting-pin", lambda: env.props(token, TOKEN)["State"] == "awaiting-pin",
                     20 * self.slow)
        finally:
            client.kill()
            client.communicate(timeout=30)
        wait_for("the renewal cancelled", lambda: env.props(token, TOKEN)["RenewalStep"] == "cancelled",
                 20 * self.slow)
        assert not journal(env, order).exists(), "a renewal cancelled before it began leaves no journal"

    def wait_no_agent(self):
        """Until keyrenewd has dropped the agents of the clients that left
        (one agent per user without logind)."""
        def free():
            conn = dbus.bus.BusConnection(self.env.bus.address)
            try:
                m = conn.get_object(BUS_NAME, PATH)
                m.RegisterAgent(dbus.ObjectPath("/storm/probe"), dbus_interface=MANAGER)
                m.UnregisterAgent(dbus.ObjectPath("/storm/probe"), dbus_interface=MANAGER)
                return True
            except dbus.DBusException as e:
                assert e.get_dbus_name() == "org.keyrenew.KeyRenew1.Error.AgentExists", e
                return False
            finally:
                conn.close()
        wait_for("no agent left", free, 20 * self.slow, step=0.2)

    # --- the portal -----------------------------------------------------

    def flap_portal(self, round_no):
        """Round by round: down, back with 503, 500, healthy."""
        portal = self.env.portal
        step = round_no % 4
        if step == 0:
            portal.stop()
        elif step == 1:
            self.portal_up()
            portal.admin("fault", "set", "--status", "503", "--retry-after", "1")
        elif step == 2:
            portal.admin("fault", "set", "--status", "500")
        else:
            portal.admin("fault", "clear")

    def renew(self, cert):
        proc = subprocess.run(["/usr/bin/python3", str(CLIENT), self.env.bus.address, cert],
                              capture_output=True, text=True, timeout=180 * self.slow)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def close(self):
        self.env.close()


def run_storm(tmp_path, cycles, wrapper=()):
    rounds = max(4, -(-cycles // READERS))
    with PcscTestbed(entries=READERS // 2, name="Storm PCD", workdir=tmp_path / "pcsc") as bed:
        storm = Storm(tmp_path, bed, wrapper)
        try:
            return storm_rounds(storm, rounds, measure_rss=not wrapper and not sanitized())
        finally:
            storm.close()


def storm_rounds(storm, rounds, measure_rss):
    env = storm.env
    # Key 0's order is for the agent that dies at the prompt (it stays
    # approved), key 1's is renewed while the portal is away (it stays
    # resumable), key 2's is renewed at the end.
    orders = [env.portal.approved_order(env.tmp / f"storm{i}-old.pem", "--rekey", "yes") for i in range(3)]
    t0 = time.monotonic()
    # A keyrenewd that remembers the 16 tokens asks the portal about all
    # of them when it starts (a key plugged in asks at most once a minute).
    env.start()
    storm.plug_all()
    storm.wait_all_read()
    d = storm.start()
    storm.wait_all_read()
    certs = [env.cert_path(s, timeout=30 * storm.slow) for s in storm.serials[:3]]

    # Warm-up: the first rounds fill the allocator's arenas and caches,
    # and a first renewal OpenSSL's and curl's (the portal answers the
    # key update request with a 500: the renewal stops, resumable).
    for _ in range(2):
        storm.pull_all()
        storm.plug_all()
        storm.wait_all_read()
        storm.vanishing_clients(certs[0])
    storm.wait_no_agent()
    storm.wait_all_read()
    env.portal.admin("cmp-fault", "set", "--at", "kur", "--kind", "500", "--count", "1")
    res = storm.renew(certs[1])
    assert res["error"] == "org.keyrenew.KeyRenew1.Error.PortalError", res
    storm.wait_all_read()
    rss0, fd0 = rss_kib(storm.pid), steady_fds(storm.pid)

    for n in range(rounds):
        storm.flap_portal(n)
        storm.pull_all()
        storm.plug_all()
        # Every other round the keys go again while keyrenewd reads them.
        if n % 2:
            storm.wait_all_read()
        storm.vanishing_clients(certs[0])
        if n == 4:
            storm.wait_all_read()
            storm.wait_no_agent()
            storm.agent_dies_at_the_prompt(certs[0], orders[0])
        if n < len(CMP_FLAPS):
            # The status poll is paced (at most once a minute), so in a
            # short storm the portal's moods reach keyrenewd through the
            # renewal: down, then CMP answers broken; it stops each time
            # where it needs the portal, and stays resumable.
            if CMP_FLAPS[n]:
                env.portal.admin("cmp-fault", "set", *CMP_FLAPS[n], "--count", "1")
            storm.wait_all_read()
            storm.wait_no_agent()
            res = storm.renew(certs[1])
            assert res["error"] == "org.keyrenew.KeyRenew1.Error.PortalError", res
            assert journal(env, orders[1]).exists(), "the renewal must stay resumable"
        assert d.proc.poll() is None, d.output()[-4000:]
    storm_time = time.monotonic() - t0

    # The storm is over: the portal healthy, the keys in, every token read.
    if env.portal.proc is None:
        storm.portal_up()
    env.portal.admin("fault", "clear")
    storm.wait_no_agent()
    toks = storm.wait_all_read(timeout=60)
    for serial, t in toks.items():
        assert t["State"] in AT_REST and t["LastError"] == "", (serial, dict(t))
    t = time.monotonic()
    env.bus.conn.get_object(BUS_NAME, PATH).Refresh(dbus_interface=MANAGER, timeout=60 * storm.slow)
    refresh_s = time.monotonic() - t
    storm.wait_all_read()
    rss1, fd1 = rss_kib(storm.pid), steady_fds(storm.pid)

    # The renewal the portal's absence interrupted resumes; a fresh one works.
    res = storm.renew(certs[1])
    assert res["ok"] and res["result"]["Resumed"], res
    assert order_state(env, orders[1]) == "installed"
    res = storm.renew(certs[2])
    assert res["ok"] and not res["result"]["Resumed"], res
    assert order_state(env, orders[2]) == "installed"
    assert order_state(env, orders[0]) == "approved"
    assert not env.portal.certs_for_order(orders[0])
    assert show(storm.states[1])["pin"]["retries_left"] == 3
    assert not list(env.state_dir.glob("renewal-*.journal"))
    hist = env.bus.conn.get_object(BUS_NAME, PATH).GetHistory(dbus_interface=MANAGER)
    assert sorted((str(h["Order"]), str(h["Outcome"])) for h in hist) == sorted(
        [(orders[1], "done"), (orders[2], "done")]), hist

    figures = {
        "cycles": storm.pulled, "rounds": rounds, "seconds": round(storm_time, 1),
        "rss_kib": (rss0, rss1), "fds": (len(fd0), len(fd1)), "fd_kinds": (fd_kinds(fd0), fd_kinds(fd1)),
        "refresh_s": round(refresh_s, 2),
    }
    print(f"\nstorm: {json.dumps(figures)}")
    assert len(fd1) <= len(fd0), f"descriptors grew: {sorted(fd0.items())} -> {sorted(fd1.items())}"
    if measure_rss:
        assert rss1 - rss0 <= RSS_SLACK_KIB, f"VmRSS grew from {rss0} to {rss1} KiB"
    storm.pull_all()
    assert d.stop(timeout=60 * storm.slow) == 0, d.output()[-6000:]
    return figures


def test_storm(tmp_path):
    """KEYRENEW_STORM_CYCLES plug-and-pull cycles over 16 readers, with
    the portal flapping and clients leaving mid-call (see the top)."""
    assert os.geteuid() == 0, "needs root: a private pcscd"
    run_storm(tmp_path, STORM_CYCLES)


def test_storm_valgrind(tmp_path):
    """The same, fewer cycles, keyrenewd under valgrind (plain build)."""
    assert os.geteuid() == 0, "needs root: a private pcscd"
    assert not sanitized(), "valgrind needs the plain build (KEYRENEW_BUILD_DIR=build)"
    run_storm(tmp_path, VALGRIND_CYCLES, wrapper=VALGRIND)


def test_day_boundary_wakes_once(tmp_path, pcsc_bed):
    """When a certificate's days left drop (here 8 s after the test
    starts: its expiry timer, a timerfd on the real-time clock, fires),
    keyrenewd looks once and sets the timer a day later: it must not read
    the clock as the second before and spin, setting the timer again and
    again for a time already past."""
    env = Env(tmp_path, pcsc_bed)
    try:
        boundary = time.time() + 8
        not_after = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(boundary + 10 * 86400))
        state = tmp_path / "boundary.state"
        run([env.bed_vcard(), "create", state, "--serial", "31415926"])
        run([env.bed_vcard(), "issue", state, "--slot", "9a", "--algorithm", "eccp256", "--subject",
             "/CN=boundary", "--not-after", not_after])
        d = env.start()
        card = env.bed.insert(state)
        d.wait_for_log("Token 31415926 read in")
        assert time.time() < boundary - 1, "the token must be read before its boundary"
        time.sleep(max(0.0, boundary + 2 - time.time()))
        checks = [line for line in d.output().splitlines() if "Next expiry check in" in line]
        env.bed.remove(card.index)
        # One when the token was read (the boundary seconds away), one when it passed.
        assert len(checks) == 2 and checks[-1].endswith("in 86400 s"), checks
        assert d.stop() == 0, d.output()
    finally:
        env.close()
