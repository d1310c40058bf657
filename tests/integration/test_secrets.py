# SPDX-License-Identifier: GPL-2.0-or-later
"""The PIN and the management key never leave keyrenewd's locked memory.

Renewals of keys with a distinctive PIN (73914628) and a distinctive
PIN-protected AES-192 management key, which keyrenewd reads from the card
after VERIFY, are run with keyrenewd logging at --log-level debug. Then
every place a secret could be left is searched for the PIN and the key,
as raw bytes, as hex (lower and upper case) and as base64:

  - keyrenewd's whole log (stderr);
  - every file of its state directory (tokens/, history.jsonl, and the
    renewal's journal while it is stopped half-way);
  - a core dump of the running keyrenewd (gdb's gcore) taken while a
    renewal is stopped half-way (the key frozen before it answers the
    PUT DATA of the new certificate: PIN verified, management key used,
    certificate issued), and one after the renewals.

Zero hits everywhere. The secrets are in memory only while needed, in
pages keyrenewd maps with MADV_DONTDUMP (common/secmem.c), which a core
dump leaves out; any copy elsewhere (a stack, a heap buffer, sd-bus's
message buffers, OpenSSL's key schedules) would show. Needs root (the
private pcscd, ptrace for gcore)."""

import base64
import json
import os
import pathlib
import signal
import subprocess

import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import run, show
from test_daemon_core import BUS_NAME, MANAGER, PATH
from test_renewal import CLIENT, Env, order_state, serial_of
from test_storms import sanitized

PIN = "73914628"
MGM_KEY = bytes.fromhex("5ec7e7a19b3dd24f6a8c0e5b7d9f1a3c2e4b6d8f0a1c3e57")
TOKEN = "org.keyrenew.KeyRenew1.Token"


def patterns():
    """{name: bytes} for every form in which a secret could be written."""
    out = {}
    for name, raw in (("PIN", PIN.encode()), ("management key", MGM_KEY)):
        out[f"{name} raw"] = raw
        out[f"{name} hex"] = raw.hex().encode()
        out[f"{name} HEX"] = raw.hex().upper().encode()
        out[f"{name} base64"] = base64.b64encode(raw).rstrip(b"=")
    return out


def hits(data, where):
    """["pattern at offset in where"] for every pattern found in data."""
    found = []
    for name, pat in patterns().items():
        at = data.find(pat)
        while at >= 0 and len(found) < 50:
            found.append(f"{name} at {at:#x} in {where}")
            at = data.find(pat, at + 1)
    return found


def search_files(root):
    found, n = [], 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found += hits(f.read(), path)
            n += 1
    return found, n


def core_dump(pid, tmp, tag):
    """gdb's gcore of the running process (it stops it for a moment);
    returns the core's bytes."""
    out = tmp / f"core-{tag}"
    proc = subprocess.run(["gcore", "-o", str(out), str(pid)], capture_output=True, text=True, timeout=300)
    path = tmp / f"core-{tag}.{pid}"
    assert proc.returncode == 0 and path.exists(), proc.stdout + proc.stderr
    data = path.read_bytes()
    path.unlink()
    return data


def mappings(pid):
    """(start, end, readable, resident KiB, left out of core dumps) for
    each mapping of the process, from /proc/PID/smaps."""
    out = []
    for line in pathlib.Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5:
            start, end = (int(x, 16) for x in head[0].split("-"))
            out.append([start, end, "r" in head[1], 0, False])
        elif head[0] == "Rss:":
            out[-1][3] = int(head[1])
        elif head[0] == "VmFlags:":
            out[-1][4] = "dd" in head[1:]
    return out


def memory_image(pid):
    """What a core dump of the process would hold, read from /proc/PID/mem
    while it is stopped: every readable mapping with pages in memory that
    is not marked MADV_DONTDUMP. For ASan builds, whose core dumps take
    the sanitizer's terabytes of reserved address space (a gcore of one
    filled 79 GB of disk)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        parts = []
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            for start, end, readable, rss, dontdump in mappings(pid):
                if not readable or rss == 0 or dontdump:
                    continue
                try:
                    mem.seek(start)
                    parts.append(mem.read(end - start))
                except OSError:
                    continue  # [vvar] and the like
        return b"".join(parts)
    finally:
        os.kill(pid, signal.SIGCONT)


def search_core(pid, tmp, tag):
    """A core dump (gcore) of keyrenewd, or its memory image under ASan."""
    data = memory_image(pid) if sanitized() else core_dump(pid, tmp, tag)
    return hits(data, f"the core dump {tag}"), len(data)


def secret_key(env, name):
    """A key with the PIN and a PIN-protected management key, a
    certificate of the portal's CA and an approved re-key order."""
    state, pem = env.key(name=name, create=["--pin", PIN, "--pin-protected-mgm", "--mgm-alg", "aes192",
                                            "--mgm-key", MGM_KEY.hex()])
    mgm = show(state)["mgm"]
    assert mgm["pin_protected"] and mgm["algorithm"] == "aes192", mgm
    order = env.portal.approved_order(pem, "--rekey", "yes")
    return state, order


def renew(env, cert):
    proc = subprocess.run(["/usr/bin/python3", str(CLIENT), env.bus.address, cert, "--pin", PIN],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def env(tmp_path, pcsc_bed):
    e = Env(tmp_path, pcsc_bed)
    yield e
    e.close()


def test_no_secret_in_logs_state_or_core(env, tmp_path):
    figures = {}
    # The patterns are not in a keyrenewd that never saw them (nor by
    # chance in its code): the search is of the secrets, not of the binary.
    d = env.start()
    first, _ = search_core(d.proc.pid, tmp_path, "fresh")
    assert first == [], first

    # A whole renewal, as the reference for where the second one stops.
    state, order = secret_key(env, "reference")
    card = env.bed.insert(state)
    cert = env.cert_path(serial_of(state))
    before = len(card.apdus())
    res = renew(env, cert)
    assert res["ok"], res
    assert res["requests"][0]["TokenSerial"] == str(serial_of(state))
    wait_for("the read after the renewal",
             lambda: env.props(env.props(cert, "org.keyrenew.KeyRenew1.Certificate")["Token"], TOKEN)["State"]
             == "renewed")
    apdus = card.apdus()[before:]
    env.bed.remove(card.index)
    assert env.props(env.props(cert, "org.keyrenew.KeyRenew1.Certificate")["Token"],
                     TOKEN)["ManagementKey"] == "pin-protected"
    # The first PUT DATA (DB) of the renewal writes the new certificate.
    put = [a["ins"] for a in apdus].index("DB") + 1

    # The second key freezes before it answers that PUT DATA: the
    # renewal is half-way, its journal holds the issued certificate.
    state2, order2 = secret_key(env, "frozen")
    d = env.start()
    card = env.bed.insert(state2)
    cert2 = env.cert_path(serial_of(state2))
    n = len(card.apdus())
    env.bed.remove(card.index)
    card = env.bed.insert(state2, freeze_after=n + put - 1)
    cert2 = env.cert_path(serial_of(state2))
    client = subprocess.Popen(["/usr/bin/python3", str(CLIENT), env.bus.address, cert2, "--pin", PIN],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("the key to freeze at the certificate's PUT DATA", lambda: "frozen after" in card.output(), 60)
        token2 = env.props(cert2, "org.keyrenew.KeyRenew1.Certificate")["Token"]
        wait_for("the step issued on the bus", lambda: env.props(token2, TOKEN)["RenewalStep"] == "issued", 20)
        journals = list(env.state_dir.glob("renewal-*.journal"))
        assert journals, "the renewal's journal must be there half-way"
        found, files = search_files(env.state_dir)
        assert found == [], found
        mid, size = search_core(d.proc.pid, tmp_path, "mid-renewal")
        assert mid == [], mid
        # The search finds what is there: the test client holds the PIN
        # (its command line), the card's file both secrets.
        control = hits(core_dump(client.pid, tmp_path, "client"), "the test client's core dump")
        assert any(h.startswith("PIN raw") for h in control), control
        control = hits(state2.read_bytes(), state2.name)
        assert any(h.startswith("PIN") for h in control) and \
            any(h.startswith("management key") for h in control), control
        figures["core mid-renewal (bytes)"] = size
        figures["state files mid-renewal"] = files
    finally:
        env.bed.remove(card.index)
        out, err = client.communicate(timeout=60)
    assert '"org.keyrenew.KeyRenew1.Error.Interrupted"' in out, out + err

    # Back in: Renew resumes it, with the PIN once more.
    card = env.bed.insert(state2)
    res = renew(env, env.cert_path(serial_of(state2), state=None))
    assert res["ok"] and res["result"]["Resumed"], res
    env.bed.remove(card.index)
    assert order_state(env, order) == order_state(env, order2) == "installed"

    after, size = search_core(d.proc.pid, tmp_path, "after")
    assert after == [], after
    figures["core after (bytes)"] = size
    assert d.stop() == 0, d.output()
    found, files = search_files(env.state_dir)
    assert found == [], found
    assert (env.state_dir / "history.jsonl").exists() and len(list((env.state_dir / "tokens").iterdir())) == 2
    figures["state files after"] = files
    logs = list(tmp_path.glob("keyrenewd-*.log"))
    for log in logs:
        found = hits(log.read_bytes(), log.name)
        assert found == [], found
    # Debug messages were on (the agent's registration is one).
    assert "PIN agent" in "".join(p.read_text() for p in logs)
    figures["log bytes"] = sum(p.stat().st_size for p in logs)
    print(f"\nsecrets: {figures}")
