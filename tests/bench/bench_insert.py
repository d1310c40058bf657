# SPDX-License-Identifier: GPL-2.0-or-later
"""Key plugged in -> Token on the bus, against pcsc_scan seeing the same
insertion.

Three observers of each insertion, in the same run:
  - a PC/SC client of our own (pcsc_watch.py) blocked in
    SCardGetStatusChange: the moment pcscd reports the card;
  - pcsc_scan (pcsc-tools), on a pseudo-terminal so that it prints each
    line as it goes: the moment the usual tool shows the insertion;
  - a bus client (bus_watch.py): the moment keyrenewd's Token appears
    (InterfacesAdded for a key never seen, PropertiesChanged Present=true
    for a key it remembers), and keyrenewd's log line when the whole key
    (certificates, PIN tries) has been read.
"Plugged in" is the moment the virtual key is started (it connects to
vpcd at once); pcscd notices it at its next poll of the vpcd reader
(every 400 ms), which is the same wait for every observer."""

import os
import pty
import random
import re
import subprocess
import threading
import time

from benchlib import BenchError, Series
from sandbox import MANAGER_PATH, Sandbox

from keyrenew_testbed.pcsc import REPLUG_PAUSE

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TOKEN_IFACE = "org.keyrenew.KeyRenew1.Token"


def bus_path_escape(s):
    """sd_bus_path_encode() of one label."""
    out = []
    for i, ch in enumerate(s):
        if ch.isascii() and ch.isalnum() and not (i == 0 and ch.isdigit()):
            out.append(ch)
        else:
            out.append(f"_{ord(ch):02x}")
    return "".join(out)


def token_path(serial):
    return f"{MANAGER_PATH}/token/{bus_path_escape(str(serial))}"


class PcscScan:
    """pcsc_scan -n on a pseudo-terminal; items (t, reader, "inserted" or
    "removed") with the moment each line arrived."""

    def __init__(self, box):
        master, slave = pty.openpty()
        self.proc = box.procs.start(["pcsc_scan", "-n"], stdout=slave, stderr=slave, env=box.bed.env)
        os.close(slave)
        self.master = master
        self.events = []
        self.cond = threading.Condition()
        self.reader = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buf = ""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            t = time.monotonic()
            buf += ANSI.sub("", data.decode(errors="replace"))
            *lines, buf = buf.split("\n")
            for line in lines:
                m = re.search(r"Reader \d+: (.+?)\s*$", line)
                if m:
                    self.reader = m.group(1)
                m = re.search(r"Card state: Card (inserted|removed)", line)
                if m and self.reader:
                    with self.cond:
                        self.events.append((t, self.reader, m.group(1)))
                        self.cond.notify_all()

    def wait(self, reader, what, after, timeout=15.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, r, w in self.events:
                    if r == reader and w == what and t >= after:
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"pcsc_scan showed no {what} card in {reader} in {timeout} s")
                self.cond.wait(left)

    def close(self):
        os.close(self.master)


def first_after(lines, pred, after, what, timeout=15.0):
    _, item = lines.wait(lambda s: s.get("t", 0) >= after and pred(s), timeout=timeout, what=what)
    return item["t"]


def wait_present(box, reader, present, after, timeout=15.0):
    return first_after(box.readers, lambda s: s.get("reader") == reader and s.get("present") is present, after,
                       f"pcscd reporting {reader} {'present' if present else 'empty'}", timeout)


def token_shown(box, serial, after, known, timeout=15.0):
    path = token_path(serial)
    if known:
        pred = (lambda s: s.get("member") == "PropertiesChanged" and s["path"] == path
                and s["args"][0] == TOKEN_IFACE and s["args"][1].get("Present") is True)
    else:
        pred = lambda s: s.get("member") == "InterfacesAdded" and s["args"][0] == path  # noqa: E731
    return first_after(box.signals, pred, after, f"token {serial} on the bus", timeout)


def token_gone(box, serial, after, timeout=15.0):
    path = token_path(serial)
    return first_after(box.signals, lambda s: s.get("member") == "PropertiesChanged" and s["path"] == path
                       and s["args"][1].get("Present") is False, after, f"token {serial} absent", timeout)


def read_done(box, serial, since, timeout=15.0):
    _, (t, line) = box.wait_log(f"Token {serial} read in", since, timeout)
    m = re.search(r"read in ([0-9.]+) ms", line)
    return t, float(m.group(1))


def serial_of(state):
    from keyrenew_testbed.clients import show
    return show(state)["serial"]


class Rest:
    """pcscd misses a key put back within one of its polls: each reader
    rests REPLUG_PAUSE between two keys (as the test bed does), plus a
    random part of pcscd's 400 ms poll so that keys arrive at every phase
    of it, as a hand would (a fixed pause would always land at the same
    distance from the next poll)."""

    def __init__(self):
        self.emptied = {}

    def wait(self, index):
        left = self.emptied.get(index, 0) + REPLUG_PAUSE + random.uniform(0, 0.4) - time.monotonic()
        if left > 0:
            time.sleep(left)

    def removed(self, index):
        self.emptied[index] = time.monotonic()


def card_read_cost(card, since):
    """The card's own microseconds over the APDUs it logged from since on."""
    apdus = card.apdus()[since:]
    return len(apdus), sum(a["us"] for a in apdus)


def one_reader(repeats, keep=False):
    """A key plugged in again and again into one reader (keyrenewd
    remembers it, as every day after the first), and fresh keys (never
    seen)."""
    s = {k: Series(*v) for k, v in {
        "plug_pcscd": ("plugged in -> pcscd reports it", "ms"),
        "plug_scan": ("plugged in -> pcsc_scan shows it", "ms"),
        "plug_bus": ("plugged in -> Token on the bus", "ms"),
        "ratio": ("ratio (plugged in -> Token) / (plugged in -> pcsc_scan)", ""),
        "pcscd_scan": ("pcscd reports -> pcsc_scan shows it", "ms"),
        "pcscd_bus": ("pcscd reports -> Token on the bus", "ms"),
        "pcscd_read": ("pcscd reports -> key read (certificates, PIN tries)", "ms"),
        "read_card": ("  of which the card's own processing", "ms"),
        "read_apdus": ("  APDUs in a read", ""),
        "new_pcscd_bus": ("new key: pcscd reports -> Token on the bus", "ms"),
    }.items()}
    with Sandbox("insert1", entries=1, keep=keep) as box:
        box.watch_bus()
        box.watch_readers()
        scan = PcscScan(box)
        box.start_daemon()
        reader = box.bed.readers[0]
        rest = Rest()
        try:
            state, _ = box.new_card()
            serial = serial_of(state)
            for i in range(repeats + 1):
                rest.wait(0)
                mark = box.log.mark()
                t_plug = time.monotonic()
                card = box.bed.insert(state, 0, wait=False)
                t_pcscd = wait_present(box, reader, True, t_plug)
                t_scan = scan.wait(reader, "inserted", t_plug)
                t_bus = token_shown(box, serial, t_plug, known=i > 0)
                t_read, _ = read_done(box, serial, mark)
                apdus, card_us = card_read_cost(card, 0)
                if i > 0:  # the first is the key's first sight: apart, below
                    s["plug_pcscd"].add((t_pcscd - t_plug) * 1000)
                    s["plug_scan"].add((t_scan - t_plug) * 1000)
                    s["plug_bus"].add((t_bus - t_plug) * 1000)
                    s["ratio"].add((t_bus - t_plug) / (t_scan - t_plug))
                    s["pcscd_scan"].add((t_scan - t_pcscd) * 1000)
                    s["pcscd_bus"].add((t_bus - t_pcscd) * 1000)
                    s["pcscd_read"].add((t_read - t_pcscd) * 1000)
                    s["read_card"].add(card_us / 1000)
                    s["read_apdus"].add(apdus)
                t_out = time.monotonic()
                box.bed.remove(0)
                rest.removed(0)
                token_gone(box, serial, t_out)
            # Keys never seen before.
            for i in range(max(3, repeats // 3)):
                state, _ = box.new_card()
                serial = serial_of(state)
                rest.wait(0)
                t_plug = time.monotonic()
                box.bed.insert(state, 0, wait=False)
                t_pcscd = wait_present(box, reader, True, t_plug)
                t_bus = token_shown(box, serial, t_plug, known=False)
                s["new_pcscd_bus"].add((t_bus - t_pcscd) * 1000)
                mark = box.log.mark()
                t_out = time.monotonic()
                box.bed.remove(0)
                rest.removed(0)
                token_gone(box, serial, t_out)
        finally:
            scan.close()
        status = box.stop_daemon()
        if status != 0:
            raise BenchError(f"keyrenewd exited with status {status}")
    return s


def pcsc_scan_verdict(box):
    """What pcsc_scan says when started on this many readers: "" when it
    watches them, else its complaint."""
    proc = subprocess.run(["timeout", "3", "pcsc_scan", "-n"], env=box.bed.env, capture_output=True, text=True)
    text = ANSI.sub("", proc.stdout + proc.stderr)
    m = re.search(r"(SCardGetStatusChange: .*)", text)
    return m.group(1).strip() if m else ""


def sixteen_readers(repeats, keep=False, state=True):
    """16 keys plugged in at the same moment, one per reader (pcsc-lite's
    limit): each key's latency and the time until all 16 are shown.
    pcsc_scan 1.6.2 cannot watch 16 readers (it adds the PnP pseudo reader
    and pcsc-lite refuses 17 states), so our own PC/SC watcher, which
    matched pcsc_scan to a fraction of a millisecond with one reader,
    stands in for it."""
    s = {k: Series(*v) for k, v in {
        "all_pcscd": ("16 plugged in -> pcscd reports the last", "ms"),
        "all_bus": ("16 plugged in -> the last Token on the bus", "ms"),
        "ratio": ("ratio (-> last Token) / (-> pcscd's last)", ""),
        "pcscd_bus": ("each key: pcscd reports -> Token on the bus", "ms"),
        "pcscd_bus_max": ("slowest key of a round: pcscd reports -> Token", "ms"),
        "pcscd_read_max": ("slowest key of a round: pcscd reports -> key read", "ms"),
        "new_pcscd_bus_max": ("16 new keys: slowest pcscd reports -> Token", "ms"),
    }.items()}
    with Sandbox("insert16", entries=8, keep=keep) as box:
        verdict = pcsc_scan_verdict(box)
        box.watch_bus()
        box.watch_readers()
        box.start_daemon(state=state)
        readers = box.bed.readers
        rest = Rest()
        cards = [box.new_card(algorithm="eccp256")[0] for _ in readers]
        serials = [serial_of(c) for c in cards]
        for round_ in range(repeats + 1):
            for i in range(len(readers)):
                rest.wait(i)
            mark = box.log.mark()
            plugged = []
            for i, c in enumerate(cards):
                plugged.append(time.monotonic())
                box.bed.insert(c, i, wait=False)
            known = round_ > 0
            t_pcscd = [wait_present(box, r, True, plugged[i]) for i, r in enumerate(readers)]
            t_bus = [token_shown(box, serials[i], plugged[i], known) for i in range(len(readers))]
            t_read = [read_done(box, serials[i], mark)[0] for i in range(len(readers))]
            lat = [(b - p) * 1000 for b, p in zip(t_bus, t_pcscd)]
            if not known:
                s["new_pcscd_bus_max"].add(max(lat))
            else:
                s["all_pcscd"].add((max(t_pcscd) - plugged[0]) * 1000)
                s["all_bus"].add((max(t_bus) - plugged[0]) * 1000)
                s["ratio"].add((max(t_bus) - plugged[0]) / (max(t_pcscd) - plugged[0]))
                for v in lat:
                    s["pcscd_bus"].add(v)
                s["pcscd_bus_max"].add(max(lat))
                s["pcscd_read_max"].add(max((r - p) * 1000 for r, p in zip(t_read, t_pcscd)))
            t_out = time.monotonic()
            for i in range(len(readers)):
                box.bed.remove(i)
                rest.removed(i)
            for serial in serials:
                token_gone(box, serial, t_out)
        status = box.stop_daemon()
        if status != 0:
            raise BenchError(f"keyrenewd exited with status {status}")
    return s, verdict
