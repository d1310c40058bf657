# SPDX-License-Identifier: GPL-2.0-or-later
"""The PC/SC transport's own time per APDU: sends APDUs to the card in
READER through pcscd (PCSCLITE_CSOCK_NAME) and prints, as one JSON list,
each exchange's wall time in microseconds, in order:

    [["A4", 812], ["CB", 1034], ["C0", 1011], ...]

The card logs its own processing time for each (keyrenew-vcard --log);
the difference is pcscd, the vpcd driver and the TCP hop to the card.
Usage: apdu_rtt.py READER ROUNDS. Each round: SELECT the PIV application,
GET DATA of the CHUID, GET DATA of the 9A certificate and GET RESPONSE
until its end, as a reading client (or keyrenewd) does."""

import ctypes
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from keyrenew_testbed.pcscstat import DWORD, LONG, Pcsc  # noqa: E402

SCARD_SHARE_SHARED = 2
SCARD_PROTOCOL_T1 = 2
SCARD_LEAVE_CARD = 0
SELECT_PIV = bytes.fromhex("00A4040005A000000308")
GET_CHUID = bytes.fromhex("00CB3FFF055C035FC10200")
GET_CERT_9A = bytes.fromhex("00CB3FFF055C035FC10500")


class IoRequest(ctypes.Structure):
    _fields_ = [("dwProtocol", DWORD), ("cbPciLength", DWORD)]


def main():
    reader, rounds = sys.argv[1].encode(), int(sys.argv[2])
    pcsc = Pcsc()
    lib = pcsc.lib
    lib.SCardConnect.restype = LONG
    lib.SCardTransmit.restype = LONG
    lib.SCardDisconnect.restype = LONG
    card, proto = LONG(), DWORD()
    pcsc.check(lib.SCardConnect(pcsc.ctx, reader, DWORD(SCARD_SHARE_SHARED), DWORD(SCARD_PROTOCOL_T1),
                                ctypes.byref(card), ctypes.byref(proto)), "SCardConnect")
    pci = IoRequest.in_dll(lib, "g_rgSCardT1Pci")
    buf = ctypes.create_string_buffer(4096)
    out = []

    def transmit(apdu):
        n = DWORD(len(buf))
        t0 = time.monotonic_ns()
        pcsc.check(lib.SCardTransmit(card, ctypes.byref(pci), apdu, DWORD(len(apdu)), None, buf,
                                     ctypes.byref(n)), "SCardTransmit")
        out.append([f"{apdu[1]:02X}", (time.monotonic_ns() - t0) // 1000])
        return buf.raw[:n.value]

    for _ in range(rounds):
        transmit(SELECT_PIV)
        transmit(GET_CHUID)
        rsp = transmit(GET_CERT_9A)
        while len(rsp) >= 2 and rsp[-2] == 0x61:
            rsp = transmit(bytes([0x00, 0xC0, 0x00, 0x00, rsp[-1]]))
    lib.SCardDisconnect(card, DWORD(SCARD_LEAVE_CARD))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
