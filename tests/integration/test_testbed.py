# SPDX-License-Identifier: GPL-2.0-or-later
"""The test bed itself: readers where their ports say, several beds side
by side, nothing left behind, the by-hand CLI."""

import os
import pathlib
import queue
import subprocess
import sys
import threading
import time

import pytest

from keyrenew_testbed import PcscTestbed, TestbedError
from keyrenew_testbed.clients import status, ykpiv
from keyrenew_testbed.pcsc import listening_ports

HERE = pathlib.Path(__file__).resolve().parent
CARD_ATR = "3b8880016b657972656e657715"


def running(pid, needle):
    """Whether process pid runs and its command line has needle in it (a
    pid alone may have been reused by someone else's process)."""
    try:
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return needle.encode() in cmdline


def processes(bed):
    """(pid, needle) of everything bed runs."""
    return ([(bed.pcscd.pid, str(bed.dir)), (bed.monitor.pid, "pcscstat.py")]
            + [(c.proc.pid, str(c.state)) for c in bed.cards.values()])


def test_readers_follow_ports(new_card, tmp_path):
    cards = [new_card("--serial", str(10000001 + i)) for i in range(4)]
    with PcscTestbed(entries=2, name="Bed Check", workdir=tmp_path / "bed") as bed:
        assert bed.readers == ["Bed Check A 00 00", "Bed Check A 00 01",
                               "Bed Check B 00 00", "Bed Check B 00 01"]
        assert bed.ports == list(range(bed.ports[0], bed.ports[0] + 4))
        # One key at a time: only its own reader shows it.
        for i, card in enumerate(cards):
            bed.insert(card, i)
            present = [r["name"] for r in bed.reader_states() if r["present"]]
            assert present == [bed.readers[i]]
            assert bed.remove(i) == 0
        # All at once: each reader talks to its own key.
        for i, card in enumerate(cards):
            bed.insert(card, i)
        states = bed.reader_states()
        assert all(r["present"] and r["atr"] == CARD_ATR for r in states), states
        for i, name in enumerate(bed.readers):
            assert status(bed, reader=name)["serial"] == 10000001 + i


def test_stop_leaves_nothing(new_card):
    card = new_card()
    with PcscTestbed() as bed:
        bed.insert(card, 0)
        procs = processes(bed)
        ports, folder, lock = bed.ports, bed.dir, bed.block.lock
        assert len(procs) == 3 and all(running(*p) for p in procs)
    assert not any(running(*p) for p in procs)
    assert not set(ports) & listening_ports()
    assert not folder.exists()
    # The port lock went with it (not by taking it again: another test
    # run may have taken it since).
    with pytest.raises(OSError):
        os.fstat(lock)


def test_stop_after_a_failure(new_card):
    card = new_card()
    with pytest.raises(ZeroDivisionError):
        with PcscTestbed() as bed:
            bed.insert(card, 0)
            procs = processes(bed)
            1 / 0
    assert len(procs) == 3 and not any(running(*p) for p in procs)


def test_beds_side_by_side(new_card):
    card = new_card("--serial", "55555555")
    with PcscTestbed() as one, PcscTestbed() as two:
        assert not set(one.ports) & set(two.ports)
        assert one.socket != two.socket
        two.insert(card, 1)
        assert not any(r["present"] for r in one.reader_states())
        assert must_fail_status(one)
        assert status(two)["serial"] == 55555555


def must_fail_status(bed):
    return ykpiv(bed, "-a", "status", check=False).returncode != 0


def test_not_root_is_an_error_not_a_skip():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import keyrenew_testbed as t\n"
            "try:\n    t.PcscTestbed().start()\nexcept t.TestbedError as e:\n"
            "    print(e); sys.exit(7)\n")
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-B", "-c", code, str(HERE)],
                          capture_output=True, text=True, timeout=30, cwd="/")
    assert proc.returncode == 7, proc
    assert "needs root" in proc.stdout


def test_build_dir_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("KEYRENEW_BUILD_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(TestbedError, match="keyrenew-vcard is missing"):
        with PcscTestbed() as bed:
            bed.insert(tmp_path / "x.card", 0)


class Lines:
    """proc's stdout, line by line, read by a thread (select() on a
    buffered pipe misses lines already in the buffer)."""

    def __init__(self, proc):
        self.queue = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def until(self, marker, timeout=30):
        """The lines up to the first one that contains marker."""
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no {marker!r} from the testbed CLI:\n{''.join(self.seen)}")
            self.seen.append(line)
            if marker in line:
                return self.seen[start:]


def test_cli(tmp_path):
    card = tmp_path / "by-hand.card"
    proc = subprocess.Popen([sys.executable, "-m", "keyrenew_testbed", "--card", str(card),
                             "--create"], cwd=HERE, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    try:
        output = Lines(proc)
        lines = output.until("export PCSCLITE_CSOCK_NAME=")
        pcscd_line = [ln for ln in lines if ln.startswith("pcscd pid")][0].split()
        pcscd_pid, folder = int(pcscd_line[2].rstrip(",")), pcscd_line[4]
        assert running(pcscd_pid, folder)
        sock = lines[-1].split("=", 1)[1].strip()
        env = dict(os.environ, PCSCLITE_CSOCK_NAME=sock)
        out = subprocess.run(["yubico-piv-tool", "-r", "Virtual", "-a", "status"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "Subject DN:\tCN=Test Key" in out.stdout, out
        proc.stdin.write("remove 0\n")
        proc.stdin.flush()
        output.until("removed; the card exited with status 0")
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
        assert not running(pcscd_pid, folder)
        assert not pathlib.Path(sock).exists()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
