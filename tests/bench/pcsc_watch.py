# SPDX-License-Identifier: GPL-2.0-or-later
"""Watches what pcscd reports, as any PC/SC client would: blocks in
SCardGetStatusChange on every reader and prints one JSON line per change
with the moment it was woken (CLOCK_MONOTONIC):

    {"t": 1234.5678, "reader": "Virtual PCD A 00 00", "present": true}

Usage: pcsc_watch.py READERS (waits until pcscd lists that many readers,
then prints {"ready": [names]}). PCSCLITE_CSOCK_NAME picks the pcscd.
Runs until killed."""

import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from keyrenew_testbed.pcscstat import SCARD_STATE_MUTE, SCARD_STATE_PRESENT, Pcsc  # noqa: E402

INFINITE = 0xFFFFFFFF


def present(state):
    return bool(state & SCARD_STATE_PRESENT) and not state & SCARD_STATE_MUTE


def main():
    want = int(sys.argv[1])
    pcsc = Pcsc()
    while len(names := pcsc.reader_names()) < want:
        time.sleep(0.02)
    current = [s for s, _ in pcsc.states(names)]
    print(json.dumps({"ready": names, "present": [present(s) for s in current]}), flush=True)
    while True:
        now = [s for s, _ in pcsc.states(names, INFINITE, current)]
        t = time.monotonic()
        for name, old, new in zip(names, current, now):
            if new != old and present(new) != present(old):
                print(json.dumps({"t": t, "reader": name, "present": present(new)}), flush=True)
        current = now


if __name__ == "__main__":
    main()
