# SPDX-License-Identifier: GPL-2.0-or-later
"""A private pcscd with vpcd readers, and virtual keys plugged into them.

    with PcscTestbed(entries=1) as bed:          # readers "Virtual PCD A 00 00", "... A 00 01"
        card = bed.insert("alice.card", 0)       # keyrenew-vcard run, waits until present
        bed.client(["yubico-piv-tool", "-r", "Virtual", "-a", "status"])
        bed.remove(0)                            # SIGTERM: the key is pulled out

pcscd 1.9.9 always puts its socket at /run/pcscd/pcscd.comm, so it runs in
a mount namespace of its own where a folder of ours is bound over
/run/pcscd; clients find it through PCSCLITE_CSOCK_NAME (bed.env). That
needs root. The testbed stops exactly the processes it started, by the
pids and process groups it holds."""

import errno
import fcntl
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parents[3]
VPCD_DRIVER = pathlib.Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
# pcsc-lite serves 16 readers at most; each vpcd entry gives two.
MAX_ENTRIES = 8
# This testbed's share of TCP ports unless KEYRENEW_TESTBED_PORTS=LOW-HIGH.
DEFAULT_PORTS = (42000, 42199)
PORT_LOCK_DIR = pathlib.Path(tempfile.gettempdir()) / "keyrenew-testbed-ports"
# pcscd polls a vpcd reader every 400 ms (PCSCLITE_STATUS_POLL_RATE). When a
# card vanishes in the middle of a client's transaction, the client's failed
# SCardDisconnect already marks the reader empty; a card that connects
# again before the next poll is never noticed, and the reader stays empty
# for good. So a reader rests this long between two cards.
REPLUG_PAUSE = 1.0


class TestbedError(RuntimeError):
    """The testbed itself could not do what was asked (not a test failure
    of the code under test)."""

    __test__ = False  # not a pytest test class, whatever its name


def build_dir():
    return pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", TOP / "build"))


def vcard_binary():
    path = build_dir() / "tests" / "vcard" / "keyrenew-vcard"
    if not os.access(path, os.X_OK):
        raise TestbedError(f"{path} is missing: build it (ninja -C {build_dir()}) or set "
                           "KEYRENEW_BUILD_DIR to the build directory that has it")
    return path


def port_range():
    spec = os.environ.get("KEYRENEW_TESTBED_PORTS")
    if not spec:
        return DEFAULT_PORTS
    low, _, high = spec.partition("-")
    return int(low), int(high)


def listening_ports():
    """TCP ports in LISTEN state, read from /proc: connecting to find out
    would, to vpcd, be a card being plugged in."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(name).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class PortBlock:
    """count consecutive free ports in our range, reserved against other
    testbeds (other test runs, a developer's bed) by a lock file held as
    long as this object lives; the kernel drops the lock if we die."""

    def __init__(self, count):
        low, high = port_range()
        self.lock = None
        for base in range(low, high - count + 2, 2):
            fd = self._try_lock(base)
            if fd is None:
                continue
            ports = range(base, base + count)
            if all(port_free(p) for p in ports) and not listening_ports() & set(ports):
                self.lock, self.base, self.ports = fd, base, list(ports)
                return
            os.close(fd)
        raise TestbedError(f"no {count} free consecutive TCP ports in {low}-{high} "
                           "(set KEYRENEW_TESTBED_PORTS=LOW-HIGH)")

    @staticmethod
    def _try_lock(base):
        PORT_LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
        fd = os.open(PORT_LOCK_DIR / f"{base}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return fd

    def release(self):
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Stops a child we started in a session of its own: sig to it, then
    SIGKILL to its whole process group if it does not go. Returns its exit
    status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Not reaped yet, so the group id is still ours to signal.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


class Card:
    """One keyrenew-vcard run process: a virtual key in a reader."""

    def __init__(self, bed, index, state, proc, apdu_log, output):
        self.bed = bed
        self.index = index
        self.reader = bed.readers[index]
        self.port = bed.ports[index]
        self.state = pathlib.Path(state)
        self.proc = proc
        self.apdu_log_path = apdu_log
        self.output_path = output

    @property
    def running(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout=10.0):
        """Waits for the card process to end by itself; its exit status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"card in {self.reader} still running after {timeout} s") from None

    def apdus(self):
        """The --log lines as dicts: {"apdu": 4, "ins": "F8", "sw": "6F00",
        "fault": "fail-sw", "us": 200148} (keys as the card wrote them)."""
        entries = []
        if not self.apdu_log_path.exists():
            return entries
        for line in self.apdu_log_path.read_text().splitlines():
            entry = dict(word.split("=", 1) for word in line.split() if "=" in word)
            for key in ("apdu", "us"):
                if key in entry:
                    entry[key] = int(entry[key])
            entries.append(entry)
        return entries

    def output(self):
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""


class PcscTestbed:
    """A private pcscd with 2 * entries vpcd readers named
    "{name} A 00 00", "{name} A 00 01", "{name} B 00 00", ...; reader i
    listens on ports[i]."""

    def __init__(self, entries=1, name="Virtual PCD", workdir=None):
        if not 1 <= entries <= MAX_ENTRIES:
            raise ValueError(f"entries must be 1..{MAX_ENTRIES} (pcsc-lite's 16 readers)")
        self.entries = entries
        self.name = name
        self.own_dir = workdir is None
        self.dir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="keyrenew-testbed-"))
        self.readers = [f"{name} {chr(ord('A') + i // 2)} 00 {i % 2:02d}" for i in range(2 * entries)]
        self.ports = []
        self.cards = {}
        self.emptied = {}
        self.pcscd = None
        self.monitor = None
        self.block = None
        self.socket = self.dir / "run" / "pcscd.comm"
        self.env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(self.socket))

    # --- lifetime ---------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=15.0):
        if os.geteuid() != 0:
            raise TestbedError("the private pcscd needs root: it runs in a mount namespace of "
                               "its own with a folder bound over /run/pcscd (see "
                               "tests/integration/README.md); run the tests as root")
        if not VPCD_DRIVER.exists():
            raise TestbedError(f"{VPCD_DRIVER} is missing: install vsmartcard-vpcd (scripts/setup.sh)")
        try:
            self.block = PortBlock(2 * self.entries)
            self.ports = self.block.ports
            self._write_config()
            self._start_pcscd()
            self._wait_readers(timeout)
        except BaseException:
            self.stop()
            raise

    def _write_config(self):
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        (self.dir / "lib").mkdir(exist_ok=True)
        conf = []
        for e in range(self.entries):
            # The vpcd driver keeps its connections in globals indexed by
            # slot, and pcscd loads one copy of a library for all entries
            # that name the same file: a second entry would take over the
            # first one's readers. A copy per entry is a library of its own.
            lib = self.dir / "lib" / f"libifdvpcd-{e}.so"
            shutil.copyfile(VPCD_DRIVER, lib)
            port = self.ports[2 * e]
            conf.append(f'FRIENDLYNAME "{self.name} {chr(ord("A") + e)}"\n'
                        f"DEVICENAME /dev/null:{port}\n"
                        f"LIBPATH {lib}\n"
                        f"CHANNELID {port}\n")
        (self.dir / "reader.conf").write_text("\n".join(conf))

    def _start_pcscd(self):
        if self.socket.exists():
            self.socket.unlink()
        run, conf = self.dir / "run", self.dir / "reader.conf"
        # /run/pcscd must exist to be a mount point; the system's pcscd
        # creates the same folder, so leaving it is harmless.
        script = (f"mkdir -p /run/pcscd && mount --bind '{run}' /run/pcscd && "
                  f"exec pcscd --foreground --config '{conf}'")
        with open(self.dir / "pcscd.log", "ab") as log:
            # unshare and sh exec: the pid is pcscd's own, and its session
            # (process group) is ours alone.
            self.pcscd = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def _wait_readers(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            self._check_pcscd()
            if time.monotonic() > deadline:
                raise TestbedError(f"pcscd made no socket in {timeout} s\n{self.pcscd_log()}")
            time.sleep(0.02)
        self.monitor = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).with_name("pcscstat.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, text=True,
            start_new_session=True)
        while True:
            self._check_pcscd()
            names = [r["name"] for r in self.reader_states()]
            if names == self.readers and set(self.ports) <= listening_ports():
                return
            if time.monotonic() > deadline:
                raise TestbedError(f"pcscd shows readers {names}, expected {self.readers} "
                                   f"on ports {self.ports}\n{self.pcscd_log()}")
            time.sleep(0.05)

    def _check_pcscd(self):
        if self.pcscd.poll() is not None:
            raise TestbedError(f"pcscd exited with status {self.pcscd.returncode}\n{self.pcscd_log()}")

    def stop(self):
        """Stops what this testbed started, and nothing else."""
        for index in list(self.cards):
            stop_process(self.cards.pop(index).proc, timeout=5.0)
        if self.monitor:
            self.monitor.stdin.close()
            stop_process(self.monitor, timeout=5.0)
            self.monitor.stdout.close()
            self.monitor = None
        if self.pcscd:
            stop_process(self.pcscd)
            self.pcscd = None
        if self.block:
            self.block.release()
            self.block = None
        if self.own_dir and self.dir.exists():
            shutil.rmtree(self.dir)

    def pcscd_log(self):
        path = self.dir / "pcscd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- what pcscd says --------------------------------------------------

    def _ask(self, *words):
        self.monitor.stdin.write("\t".join(str(w) for w in words) + "\n")
        self.monitor.stdin.flush()
        line = self.monitor.stdout.readline()
        if not line:
            raise TestbedError(f"the PC/SC helper died (status {self.monitor.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise TestbedError(f"PC/SC: {answer['error']}")
        return answer["readers"]

    def reader_states(self):
        """[{"name", "present", "atr"}] for every reader pcscd has."""
        return self._ask("list")

    def present(self, index):
        return any(r["name"] == self.readers[index] and r["present"] for r in self.reader_states())

    def wait_present(self, index, present=True, timeout=10.0, card=None):
        """Waits until pcscd reports reader index with (or without) a card.
        With card, fails early when that card process ends first."""
        name = self.readers[index]
        deadline = time.monotonic() + timeout
        while True:
            readers = self._ask("wait", name, "present" if present else "absent", 200)
            if any(r["name"] == name and r["present"] == present for r in readers):
                return
            if card is not None and present and not card.running:
                raise TestbedError(f"the card for {name} exited with status "
                                   f"{card.proc.returncode} before pcscd saw it:\n{card.output()}")
            if time.monotonic() > deadline:
                raise TestbedError(f"{name} still {'empty' if present else 'holds a card'} "
                                   f"after {timeout} s; pcscd says {readers}\n{self.pcscd_log()}")

    # --- keys in and out --------------------------------------------------

    def insert(self, state, index=0, *, vanish_before=None, vanish_after=None, delay_ms=None,
               fail_sw=(), freeze_after=None, wait=True, timeout=10.0):
        """Plugs the card whose state file is state into reader index:
        starts keyrenew-vcard run on that reader's port and waits until
        pcscd reports the card present. fail_sw: [(apdu number, "6A82")]."""
        if index in self.cards and self.cards[index].running:
            raise TestbedError(f"{self.readers[index]} already holds a card")
        if self.cards.pop(index, None):
            self.emptied[index] = time.monotonic()
        rest = self.emptied.get(index, 0) + REPLUG_PAUSE - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        tag = f"reader{index}-{time.monotonic_ns()}"
        apdu_log = self.dir / f"{tag}.apdu.log"
        output = self.dir / f"{tag}.out"
        args = [str(vcard_binary()), "run", str(state), "--port", str(self.ports[index]),
                "--host", "127.0.0.1", "--connect-timeout", str(int(timeout)),
                "--log", str(apdu_log)]
        if vanish_before is not None:
            args += ["--vanish-before", str(vanish_before)]
        if vanish_after is not None:
            args += ["--vanish-after", str(vanish_after)]
        if freeze_after is not None:
            args += ["--freeze-after", str(freeze_after)]
        if delay_ms is not None:
            args += ["--delay-ms", str(delay_ms)]
        for number, sw in fail_sw:
            args += ["--fail-sw", f"{number}:{sw}"]
        with open(output, "wb") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        card = Card(self, index, state, proc, apdu_log, output)
        self.cards[index] = card
        if wait:
            self.wait_present(index, True, timeout, card=card)
        return card

    def remove(self, index, timeout=10.0):
        """Pulls the card out of reader index (SIGTERM to its process, or
        nothing if it already vanished), waits until pcscd reports the
        reader empty; returns the card process's exit status."""
        card = self.cards.pop(index)
        status = stop_process(card.proc, timeout=timeout)
        self.emptied[index] = time.monotonic()
        self.wait_present(index, False, timeout)
        return status

    # --- clients ----------------------------------------------------------

    def client(self, args, check=False, timeout=60, **kw):
        """Runs a PC/SC client against this pcscd; a CompletedProcess with
        text stdout and stderr."""
        return subprocess.run([str(a) for a in args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=timeout,
                              stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
