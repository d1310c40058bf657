#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz-vcard-apdu (tests/fuzz/corpus/vcard-apdu):
card sessions like the ones yubico-piv-tool and OpenSC hold, framed as the
target reads them (flags byte, then 2-byte length + message)."""

import os
import sys

SELECT = "00A4040005A000000308"
SELECT_FULL = "00A404000BA000000308000010000100"
VERIFY_PIN = "0020008008313233343536FFFF"
SELECTED, MGM, PIN = 1, 2, 4


def frame(*messages):
    out = b""
    for m in messages:
        raw = bytes.fromhex(m) if isinstance(m, str) else m
        out += len(raw).to_bytes(2, "big") + raw
    return out


def chained(header, data):
    """header (CLA INS P1 P2 as hex) with data in 255-byte pieces."""
    h = bytes.fromhex(header)
    pieces = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for i, p in enumerate(pieces):
        cla = 0x10 if i < len(pieces) - 1 else 0x00
        out.append(bytes([cla]) + h[1:] + bytes([len(p)]) + p)
    return out


def sign_request(block):
    inner = b"\x82\x00\x81" + der_len(len(block)) + block
    return b"\x7c" + der_len(len(inner)) + inner


def der_len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


CERT_OBJECT = bytes.fromhex("5C035FC105") + b"\x53\x82\x01\x04\x70\x81\xfc" + bytes(range(252)) + b"\x71\x01\x00\xfe\x00"

SEEDS = {
    "status": (0, [b"\x01", b"\x04", SELECT, "0020008000", "00FD000000", "00F8000000",
                   "00CB3FFF055C035FC102", "00CB3FFF055C035FC107", "00CB3FFF055C035FC105",
                   "00F7008000", "00F7008100", "00F7009B00", "00F7009A00"]),
    "opensc-probe": (0, ["00CB3FFF035C017E00", SELECT_FULL + "00", "00CB3FFF035C017E08",
                         "00CB3FFF035C017E00", "00CB3FFF055C035FC10C08", "00200080",
                         "00CB3FFF055C035FC10908", "00CA7F6800", "00A4040C02" + "3F00"]),
    "sign-ec": (SELECTED, [VERIFY_PIN, "0087119A26" + sign_request(bytes(range(32))).hex(),
                           "0087119C26" + sign_request(bytes(range(32))).hex(),
                           VERIFY_PIN, "0087119C26" + sign_request(bytes(range(32))).hex()]),
    "sign-rsa": (SELECTED, [*chained("0087079E",
                                     sign_request(b"\x00\x01" + b"\xff" * 200 + b"\x00" + bytes(53))),
                            "00C0000000"]),
    "ecdh": (SELECTED | PIN, ["0087149D" + "67" + (b"\x7c\x65\x82\x00\x85\x61\x04" + bytes(96)).hex()]),
    "mgm-auth": (SELECTED, ["0087039B047C028000",
                            "0087039B167C148008010203040506070881080102030405060708",
                            "0087039B047C028100", "0087039B0C7C0A82080102030405060708"]),
    "put-get": (SELECTED | MGM, [*chained("00DB3FFF", CERT_OBJECT), "00CB3FFF055C035FC105",
                                 "00C0000000", "00CB3FFF055C035FC10508", "00C0000010",
                                 "00DB3FFF075C035FC1055300"]),
    "generate-ec": (SELECTED | MGM | PIN, ["0047009A05AC03800111", "0047009D08AC038001148A0103",
                                           "0047009E0BAC03800111AA0101AB0102",
                                           "0087119A26" + sign_request(bytes(32)).hex()]),
    "pin-puk": (SELECTED, ["0020008008393939393939FFFF", "0020008008393939393939FFFF",
                           "0020008008393939393939FFFF", VERIFY_PIN, "00200080",
                           "002C0080103132333435363738373737373737FFFF",
                           "0024008010373737373737FFFF383838383838FFFF",
                           "0024008110313233343536373839393939393939FF", "0020FF80"]),
    "yubico-admin": (SELECTED | MGM | PIN, ["00FFFFFF1B039B18" + "0102030405060708" * 3,
                                            "00FFFFFE23" + "0C9B20" + "11" * 32, "00FA0505",
                                            "00FB0000", "00F9009A00"]),
    "extended": (SELECTED, ["00CB3FFF0000055C035FC1020000", "00CB3FFF000000", "00C00000000100",
                            b"\x00\x01\x02", "10CB3FFF025C01", "00C0"]),
    "control": (SELECTED, [b"\x00", "00FD000000", b"\x01", "00FD000000", b"\x02", SELECT,
                           b"\x04", b"\x07"]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "vcard-apdu")
    os.makedirs(out, exist_ok=True)
    for name, (flags, messages) in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([flags]) + frame(*messages))


if __name__ == "__main__":
    main()
