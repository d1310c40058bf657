# SPDX-License-Identifier: GPL-2.0-or-later
"""Test bed for keyrenew's integration tests: a private pcscd with vpcd
readers and keyrenew-vcard keys (see ../README.md)."""

from .pcsc import Card, PcscTestbed, TestbedError, build_dir, vcard_binary
from .waiting import wait_for

__all__ = ["Card", "PcscTestbed", "TestbedError", "build_dir", "vcard_binary", "wait_for"]
