# SPDX-License-Identifier: GPL-2.0-or-later
"""A PC/SC client of its own, run as a child process by PcscTestbed.

libpcsclite reads PCSCLITE_CSOCK_NAME once per process and keeps it, so a
test process that starts several private pcscd one after the other cannot
talk to them itself: each testbed runs this helper with its own socket in
the environment. It reads one command per line on stdin and answers one
JSON line on stdout (words separated by tabs: reader names have spaces):

    list                          -> {"readers": [{"name", "present", "atr"}]}
    wait NAME present|absent MS   -> the same, once NAME is in that state or
                                     MS milliseconds have passed

Only the standard library (ctypes): no pyscard needed."""

import ctypes
import json
import sys
import time

SCARD_SCOPE_SYSTEM = 2
SCARD_S_SUCCESS = 0
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_STATE_PRESENT = 0x0020
SCARD_STATE_MUTE = 0x0200
MAX_ATR_SIZE = 33

# pcsc-lite on Linux: DWORD is unsigned long, LONG and SCARDCONTEXT long.
DWORD = ctypes.c_ulong
LONG = ctypes.c_long


class ReaderState(ctypes.Structure):
    _fields_ = [
        ("szReader", ctypes.c_char_p),
        ("pvUserData", ctypes.c_void_p),
        ("dwCurrentState", DWORD),
        ("dwEventState", DWORD),
        ("cbAtr", DWORD),
        ("rgbAtr", ctypes.c_ubyte * MAX_ATR_SIZE),
    ]


class Pcsc:
    def __init__(self):
        self.lib = ctypes.CDLL("libpcsclite.so.1")
        self.lib.SCardEstablishContext.restype = LONG
        self.lib.SCardListReaders.restype = LONG
        self.lib.SCardGetStatusChange.restype = LONG
        self.ctx = LONG()
        self.check(self.lib.SCardEstablishContext(
            DWORD(SCARD_SCOPE_SYSTEM), None, None, ctypes.byref(self.ctx)),
            "SCardEstablishContext")

    @staticmethod
    def check(rv, what):
        if rv != SCARD_S_SUCCESS:
            raise OSError(f"{what}: 0x{rv & 0xFFFFFFFF:08X}")

    def reader_names(self):
        size = DWORD(0)
        rv = self.lib.SCardListReaders(self.ctx, None, None, ctypes.byref(size))
        if rv & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return []
        self.check(rv, "SCardListReaders")
        buf = ctypes.create_string_buffer(size.value)
        rv = self.lib.SCardListReaders(self.ctx, None, buf, ctypes.byref(size))
        if rv & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return []
        self.check(rv, "SCardListReaders")
        return [n.decode() for n in buf.raw[:size.value].split(b"\0") if n]

    def states(self, names, timeout_ms=0, current=None):
        """Reader states; with current (a list of event states as returned
        before), blocks until one changes or timeout_ms passes."""
        arr = (ReaderState * len(names))()
        for i, name in enumerate(names):
            arr[i].szReader = name.encode()
            arr[i].dwCurrentState = current[i] if current else 0
        rv = self.lib.SCardGetStatusChange(self.ctx, DWORD(timeout_ms), arr, DWORD(len(names)))
        if rv & 0xFFFFFFFF != SCARD_E_TIMEOUT:
            self.check(rv, "SCardGetStatusChange")
        return [(arr[i].dwEventState & ~0x2,
                 bytes(arr[i].rgbAtr[:arr[i].cbAtr]).hex()) for i in range(len(names))]

    def listing(self):
        names = self.reader_names()
        if not names:
            return []
        return [{"name": n, "present": bool(s & SCARD_STATE_PRESENT) and not s & SCARD_STATE_MUTE,
                 "state": s, "atr": atr if s & SCARD_STATE_PRESENT else ""}
                for n, (s, atr) in zip(names, self.states(names))]

    def wait(self, name, want_present, timeout_ms):
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            readers = self.listing()
            mine = [r for r in readers if r["name"] == name]
            if mine and mine[0]["present"] == want_present:
                return readers
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return readers
            if not mine:
                time.sleep(min(left, 50) / 1000)
                continue
            # Block in pcscd until this reader's state moves on.
            self.states([name], min(left, 1000), [mine[0]["state"]])


def main():
    pcsc = Pcsc()
    for line in sys.stdin:
        words = line.split("\t")
        try:
            if words[0].strip() == "list":
                answer = {"readers": pcsc.listing()}
            elif words[0] == "wait" and len(words) == 4:
                answer = {"readers": pcsc.wait(words[1], words[2] == "present", int(words[3]))}
            else:
                answer = {"error": f"unknown command {line.strip()!r}"}
        except OSError as e:
            answer = {"error": str(e)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
