# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for the integration tests that need a private pcscd and
virtual keys (keyrenew_testbed). Needs root; the card comes from
$KEYRENEW_BUILD_DIR/tests/vcard/keyrenew-vcard (default: build/)."""

import pytest

from keyrenew_testbed import PcscTestbed, vcard_binary
from keyrenew_testbed.clients import TestCA, create_card, run


@pytest.fixture(scope="session")
def vcard():
    """The card binary; a missing one is an error, never a skip."""
    return vcard_binary()


@pytest.fixture(scope="session")
def pcsc_bed(tmp_path_factory, vcard):
    """One private pcscd for the session: readers "Virtual PCD A 00 00"
    and "Virtual PCD A 00 01"."""
    with PcscTestbed(entries=1, workdir=tmp_path_factory.mktemp("pcsc")) as bed:
        yield bed


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """{"rsa": TestCA, "ec": TestCA}, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("ca")
    return {"rsa": TestCA(folder, "rsa"), "ec": TestCA(folder, "ec")}


@pytest.fixture
def new_card(tmp_path, vcard):
    """new_card(*create options) -> the path of a fresh card file."""
    count = 0

    def make(*opts):
        nonlocal count
        count += 1
        return create_card(tmp_path / f"card{count}.state", *opts)
    return make


@pytest.fixture
def issue(vcard, test_ca):
    """issue(card, slot, algorithm, subject, ca="rsa"|"ec"|None, *more)
    -> the PEM certificate keyrenew-vcard issue wrote."""
    def do(card, slot, algorithm, subject, ca="rsa", *more):
        out = card.parent / f"{card.stem}-{slot}.pem"
        ca_args = test_ca[ca].issue_args() if ca else []
        run([vcard, "issue", card, "--slot", slot, "--algorithm", algorithm,
             "--subject", subject, *ca_args, "--out", out, *more])
        return out
    return do


@pytest.fixture
def plug(pcsc_bed):
    """plug(card, index=0, **faults) -> Card: the key is in the reader
    and pcscd sees it. Whatever is still plugged in at the end is pulled
    out; a key without faults must then exit 0 (a crash fails the test)."""
    plugged = []

    def do(card, index=0, **faults):
        c = pcsc_bed.insert(card, index, **faults)
        plugged.append((c, bool(faults)))
        return c
    yield do
    problems = []
    for c, faulty in plugged:
        if pcsc_bed.cards.get(c.index) is not c:
            continue
        status = pcsc_bed.remove(c.index)
        if status != 0 and not (faulty and status == 3):
            problems.append(f"card in {c.reader} exited with {status}:\n{c.output()}")
    assert not problems, "\n".join(problems)
