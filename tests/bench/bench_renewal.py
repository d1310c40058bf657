# SPDX-License-Identifier: GPL-2.0-or-later
"""A renewal end to end on the virtual key, and what in it is keyrenewd's
own work.

Each renewal: a fresh key whose 9A certificate was issued by the reference
portal's CA, an approved order that re-keys, keyrenewd with the key in
and the approval on the bus; then renew_timed.py calls Manager.Renew and
answers the PIN request at once. Measured around it:

  total      Renew called -> its answer, at the caller (what a user waits)
  card       the card's own processing, summed over the renewal's APDUs
             (keyrenew-vcard --log "us=")
  transport  pcscd + the vpcd driver + TCP to the card, per APDU measured
             apart in the same run (apdu_rtt.py: wall time minus the card's
             time), times the renewal's APDUs
  portal     the portal's processing, summed over its X-Portal-Time-Us
             answers (keyrenewd's debug line "CMP: ...")
  http/tls   curl's time in the HTTP exchanges less the portal's: TLS
             handshakes of both ends, loopback, libmicrohttpd
  polkit     one CheckAuthorization round trip to the (mock) polkitd,
             measured apart
  agent      the PIN agent from RequestPin received to its answer sent
  keyrenewd  total less all of the above: its own work, plus the D-Bus
             hops (a handful of messages), plus its journal's fsyncs
             (write, fsync, rename, fsync of the folder before each step:
             on purpose, it is what makes a pulled key harmless)
and keyrenewd's CPU time over the renewal (/proc), which counts its own
work without any waiting (the client half of TLS included)."""

import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import benchlib
from benchlib import PYTHON, BenchError, Series, cpu_delta_ms, thread_cpu_ns
from bench_insert import bus_path_escape, serial_of, token_path
from sandbox import BUS_NAME, Sandbox

CERT_IFACE = "org.keyrenew.KeyRenew1.Certificate"
MANAGER = "org.keyrenew.KeyRenew1.Manager"


def props(box, path, interface):
    import dbus
    obj = box.bus.conn.get_object(BUS_NAME, path, introspect=False)
    return obj.GetAll(interface, dbus_interface=dbus.PROPERTIES_IFACE)


def wait_approved(box, serial, timeout=30.0):
    path = f"{token_path(serial)}/cert/{bus_path_escape('9a')}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if props(box, path, CERT_IFACE)["RenewalState"] == "approved":
                return path
        except Exception:  # not on the bus yet
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"the approval of {serial}'s certificate never reached the bus")
        time.sleep(0.02)


def transport_per_apdu(box, card, rounds=30):
    """Median microseconds the transport adds to one APDU (see apdu_rtt.py)."""
    before = len(card.apdus())
    proc = subprocess.run([PYTHON, benchlib.HERE / "apdu_rtt.py", card.reader, str(rounds)], env=box.bed.env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise BenchError(f"apdu_rtt.py failed: {proc.stderr}")
    walls = json.loads(proc.stdout)
    logged = card.apdus()[before:]
    if len(logged) != len(walls):
        raise BenchError(f"apdu_rtt.py sent {len(walls)} APDUs, the card logged {len(logged)}")
    return Series("transport per APDU (pcscd + vpcd + TCP)", "us",
                  [w - c["us"] for (_, w), c in zip(walls, logged)])


def polkit_round_trip(box, n=30):
    import dbus
    authority = dbus.Interface(box.bus.conn.get_object("org.freedesktop.PolicyKit1",
                                                       "/org/freedesktop/PolicyKit1/Authority"),
                               "org.freedesktop.PolicyKit1.Authority")
    subject = dbus.Struct(("system-bus-name", dbus.Dictionary(
        {"name": dbus.String(box.bus.conn.get_unique_name(), variant_level=1)}, signature="sv")),
        signature="sa{sv}")
    s = Series("polkit CheckAuthorization round trip (mock polkitd)", "ms")
    for _ in range(n):
        t0 = time.monotonic()
        authority.CheckAuthorization(subject, "org.keyrenew.renew", dbus.Dictionary({}, signature="ss"),
                                     dbus.UInt32(0), "")
        s.add((time.monotonic() - t0) * 1000)
    return s


def one_renewal(box, algorithm):
    state, pem = box.new_card(algorithm=algorithm)
    box.portal.approved_order(pem, "--rekey", "yes")
    serial = serial_of(state)
    # keyrenewd asks the portal when a key is plugged in, at most once a
    # minute: a new keyrenewd for each renewal, as after a reboot.
    if box.stop_daemon() != 0:
        raise BenchError("keyrenewd did not exit cleanly")
    box.start_daemon(config=box.config, state=box.state_dir)
    mark = box.log.mark()
    card = box.bed.insert(state, 0)
    try:
        cert = wait_approved(box, serial)
        box.wait_log(f"Token {serial} read in", mark)
        client = box.procs.start([PYTHON, benchlib.HERE / "renew_timed.py", box.bus.address, cert],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if json.loads(client.stdout.readline()).get("ready") is not True:
            raise BenchError("renew_timed.py did not get ready")
        n0 = len(card.apdus())
        mark = box.log.mark()
        cpu0 = thread_cpu_ns(box.daemon.pid)
        client.stdin.write("go\n")
        client.stdin.flush()
        out = json.loads(client.stdout.readline())
        client.wait(timeout=30)
        box.procs.procs.remove(client)
        if not out["ok"]:
            raise BenchError(f"the renewal failed: {out['error']}")
        _, (_, line) = box.wait_log("CMP: ", mark)
        cpu = cpu_delta_ms(cpu0, thread_cpu_ns(box.daemon.pid))
        m = re.search(r"CMP: (\d+) HTTP exchange\(s\) in ([0-9.]+) ms, ([0-9.]+) ms of it the portal's own "
                      r"\(X-Portal-Time-Us\)", line)
        if not m:
            raise BenchError(f"keyrenewd's CMP line has no portal time: {line}")
        apdus = card.apdus()[n0:]
        return {
            "total": (out["t_reply"] - out["t_call"]) * 1000,
            "to_pin": (out["t_pin"] - out["t_call"]) * 1000,
            "agent": (out["t_answered"] - out["t_pin"]) * 1000,
            "apdus": len(apdus),
            "card": sum(a["us"] for a in apdus) / 1000,
            "exchanges": int(m.group(1)),
            "http": float(m.group(2)),
            "portal": float(m.group(3)),
            "cpu": cpu,
        }
    finally:
        box.bed.remove(card.index)


def storage_places(box):
    """Where keyrenewd keeps its journal: on the disk, as deployed
    (/var/lib/keyrenew), and on tmpfs, where fsync costs nothing: the
    difference is what the journal's durability costs on this disk."""
    shm = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-bench-state-", dir="/dev/shm"))
    return {"disk": box.dir / "state", "tmpfs": shm}


def renewals(repeats, keep=False):
    """({(storage, algorithm): {quantity: Series}}, transport series,
    polkit series)."""
    results = {}
    with Sandbox("renewal", entries=1, keep=keep) as box:
        places = storage_places(box)
        try:
            box.start_polkit()
            box.start_portal()
            box.config = box.write_config(box.portal.url)
            box.state_dir = places["disk"]
            box.start_daemon(config=box.config, state=box.state_dir)
            # The transport and polkit's own cost, measured apart in the same run.
            state, _ = box.new_card(algorithm="rsa2048")
            mark = box.log.mark()
            card = box.bed.insert(state, 0)
            try:
                box.wait_log(f"Token {serial_of(state)} read in", mark)
                transport = transport_per_apdu(box, card)
            finally:
                box.bed.remove(0)
            polkit = polkit_round_trip(box)
            for _ in range(repeats):
                for place in places:
                    box.state_dir = places[place]
                    for algorithm in ("eccp256", "rsa2048"):
                        s = results.setdefault((place, algorithm), series())
                        add(s, one_renewal(box, algorithm), transport, polkit)
            status = box.stop_daemon()
            if status != 0:
                raise BenchError(f"keyrenewd exited with status {status}")
        finally:
            shutil.rmtree(places["tmpfs"], ignore_errors=True)
    return results, transport, polkit


def series():
    return {k: Series(*v) for k, v in {
        "total": ("total: Renew called -> answered", "ms"),
        "card": ("  card's own processing", "ms"),
        "transport": ("  PC/SC transport (APDUs x median)", "ms"),
        "portal": ("  portal's own processing (X-Portal-Time-Us)", "ms"),
        "tls": ("  HTTP/TLS and loopback (curl's wait less the portal's)", "ms"),
        "polkit": ("  polkit check (median round trip)", "ms"),
        "agent": ("  PIN agent's turnaround", "ms"),
        "daemon": ("  keyrenewd: the rest", "ms"),
        "share": ("  keyrenewd's share of the total", "%"),
        "cpu": ("keyrenewd CPU time during the renewal", "ms"),
        "apdus": ("APDUs in the renewal", ""),
        "exchanges": ("HTTP exchanges (kur, certConf)", ""),
    }.items()}


def add(s, r, transport, polkit):
    transport_ms = r["apdus"] * transport.median / 1000
    tls = r["http"] - r["portal"]
    own = r["total"] - r["card"] - transport_ms - r["portal"] - tls - polkit.median - r["agent"]
    for k, v in (("total", r["total"]), ("card", r["card"]), ("transport", transport_ms),
                 ("portal", r["portal"]), ("tls", tls), ("polkit", polkit.median), ("agent", r["agent"]),
                 ("daemon", own), ("share", 100 * own / r["total"]), ("cpu", r["cpu"]),
                 ("apdus", r["apdus"]), ("exchanges", r["exchanges"])):
        s[k].add(v)
