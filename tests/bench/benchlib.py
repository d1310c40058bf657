# SPDX-License-Identifier: GPL-2.0-or-later
"""What every benchmark needs: the processes it started (and only those)
stopped at the end, lines read from a child with the moment each arrived,
what /proc says about a process, and statistics over repeats.

Times are time.monotonic() (CLOCK_MONOTONIC): the same clock in every
process of the machine, so a helper's timestamps and ours compare."""

import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(TOP / "tests" / "integration"), str(TOP / "tests" / "portal")]
PYTHON = "/usr/bin/python3"
HERE = pathlib.Path(__file__).resolve().parent


class BenchError(RuntimeError):
    """The benchmark could not measure what it set out to: says why."""


# --- processes ------------------------------------------------------------

class Procs:
    """Every process the benchmark starts goes through here, in a session
    of its own; stop_all() ends them (SIGTERM, then SIGKILL to the group)
    in reverse order, and nothing else."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen([str(a) for a in args], start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc, timeout=10.0, sig=signal.SIGTERM):
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def stop_all(self):
        while self.procs:
            self.stop(self.procs.pop())


def on_signals_raise():
    """SIGTERM and SIGHUP end the benchmark like Ctrl-C: through the
    finally blocks that stop what it started."""
    def handler(sig, frame):
        raise KeyboardInterrupt(f"signal {sig}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


class TimedLines:
    """Reads a child's output line by line in a thread; each line is kept
    with the moment it arrived (and copied to a log file)."""

    def __init__(self, stream, log_path=None, parse=None):
        self.lines = []
        self.cond = threading.Condition()
        self.parse = parse
        self.log = open(log_path, "a") if log_path else None
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b"" if "b" in getattr(stream, "mode", "") else ""):
            t = time.monotonic()
            line = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            line = line.rstrip("\n")
            if self.log:
                self.log.write(f"{t:.6f} {line}\n")
                self.log.flush()
            item = self.parse(t, line) if self.parse else (t, line)
            if item is None:
                continue
            with self.cond:
                self.lines.append(item)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return [x for x in self.lines if x is not None]

    def wait(self, pred, since=0, timeout=30.0, what="a line"):
        """The first item from index since on for which pred(item) holds,
        and its index; BenchError after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.lines):
                    item = self.lines[i]
                    if item is None:
                        raise BenchError(f"the stream ended before {what}")
                    if pred(item):
                        return i, item
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out after {timeout} s waiting for {what}")
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.lines)

    def close(self):
        if self.log:
            self.log.close()
            self.log = None


def json_lines(t, line):
    """For TimedLines over a helper that prints one JSON object a line."""
    try:
        return json.loads(line)
    except ValueError:
        return None


# --- /proc ----------------------------------------------------------------

def context_switches(pid):
    """Voluntary and involuntary context switches of every live thread:
    each is the process waking up (or being pre-empted while awake)."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(v) for v in re.findall(r"ctxt_switches:\s+(\d+)", text))
    return total


def threads(pid):
    return len(list(pathlib.Path(f"/proc/{pid}/task").iterdir()))


def rss_kib(pid):
    """Resident memory (VmRSS) in KiB."""
    m = re.search(r"VmRSS:\s+(\d+) kB", pathlib.Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1))


def memory_kib(pid):
    """{"rss", "pss", "private", "anon"} in KiB (smaps_rollup): RSS counts
    every resident page mapped, shared library pages included; PSS divides
    shared pages among the processes that map them; private is the pages
    no other process maps at that moment (a library page becomes private
    when the last other process using it exits); anon is the process's own
    memory: heap, stacks, the libraries' written data."""
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0])
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "private": fields["Private_Clean"] + fields["Private_Dirty"], "anon": fields["Anonymous"]}


def cpu_seconds(pid):
    """User + system CPU time of the whole process, exited threads
    included (/proc/PID/stat, clock ticks)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_ns(pid):
    """{thread id: CPU nanoseconds} of the live threads (schedstat)."""
    out = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            out[task.name] = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def cpu_delta_ms(before, after):
    """CPU time between two thread_cpu_ns() snapshots; a thread that ended
    in between is not counted (keyrenewd's card worker lives as long as
    the key is in)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e6


def load_average():
    return os.getloadavg()


# --- statistics -------------------------------------------------------------

class Series:
    """Repeated measurements of one quantity."""

    def __init__(self, name, unit, values=()):
        self.name = name
        self.unit = unit
        self.values = list(values)

    def add(self, v):
        self.values.append(v)

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    def spread(self):
        """(min, max) over the repeats."""
        return (min(self.values), max(self.values)) if self.values else (None, None)

    def to_json(self):
        return {"name": self.name, "unit": self.unit, "n": len(self.values), "median": self.median,
                "min": self.spread()[0], "max": self.spread()[1], "values": self.values}


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            s = f"{v:.0f}"
        elif abs(v) >= 10:
            s = f"{v:.1f}"
        else:
            s = f"{v:.2f}"
    else:
        s = str(v)
    return f"{s} {unit}".rstrip()


class Table:
    """Rows of (section, what, median, spread, aim/ratio note), printed
    as one aligned table at the end."""

    def __init__(self):
        self.rows = []
        self.series = []

    def add(self, section, what, value, unit="", spread=None, note=""):
        self.rows.append((section, what, fmt(value, unit),
                          "" if spread is None or spread[0] is None else
                          f"{fmt(spread[0])} .. {fmt(spread[1])}", note))

    def add_series(self, section, s, note=""):
        self.series.append((section, s))
        self.add(section, f"{s.name} (n={len(s.values)})", s.median, s.unit, s.spread(), note)

    def text(self):
        head = ("section", "what", "median", "min .. max", "aim / note")
        widths = [max(len(str(r[i])) for r in [head, *self.rows]) for i in range(5)]
        lines = []
        last = None
        for r in [head, *self.rows]:
            if r is not head and r[0] != last and last is not None:
                lines.append("")
            last = r[0] if r is not head else None
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
            if r is head:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self):
        return {"rows": [dict(zip(("section", "what", "median", "spread", "note"), r)) for r in self.rows],
                "series": [dict(section=sec, **s.to_json()) for sec, s in self.series]}
