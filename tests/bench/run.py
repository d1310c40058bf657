# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenew's benchmarks, one command (as root, Debian's Python):

    /usr/bin/python3 tests/bench/run.py [--build-dir DIR] [--quick]
                                        [--only insert|renewal|idle|portal]...
                                        [--repeats N] [--json FILE] [--keep]

Prints one table of medians, spreads and ratios (see docs/performance.md
for the method). Exits 0 whenever everything could be measured, however
slow it was: the aims are printed next to the numbers, never enforced;
it exits 1 only when a measurement could not be made (a process failed,
a peer missing), and 2 on bad arguments."""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

# No byte code next to the sources (the checkout may be another user's).
sys.dont_write_bytecode = True
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib  # noqa: E402
from benchlib import BenchError, Table  # noqa: E402

SECTIONS = ("insert", "renewal", "idle", "portal")


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))

    def version(args):
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mib": mem // 1024, "kernel": platform.release(),
            "debian": pathlib.Path("/etc/debian_version").read_text().strip(),
            "pcscd": version(["dpkg-query", "-W", "-f=${Version}", "pcscd"]),
            "certmonger": version(["dpkg-query", "-W", "-f=${Version}", "certmonger"]),
            "buildtype": buildtype(), "load_start": os.getloadavg()}


def buildtype():
    from keyrenew_testbed import build_dir
    try:
        info = json.loads((build_dir() / "meson-info" / "intro-buildoptions.json").read_text())
        return next(o["value"] for o in info if o["name"] == "buildtype")
    except (OSError, StopIteration, ValueError):
        return "?"


def run_insert(table, args, raw):
    import bench_insert
    s = bench_insert.one_reader(args.repeats, keep=args.keep)
    raw["insert1"] = {k: v.to_json() for k, v in s.items()}
    sec = "plug-in, 1 reader"
    for key, note in (("plug_pcscd", "pcscd polls vpcd every 400 ms"), ("plug_scan", ""), ("plug_bus", ""),
                      ("ratio", "aim <= 1.1"), ("pcscd_scan", ""), ("pcscd_bus", "keyrenewd's latency"),
                      ("pcscd_read", ""), ("read_card", ""), ("read_apdus", ""),
                      ("new_pcscd_bus", "a key never seen")):
        table.add_series(sec, s[key], note)
    s, verdict = bench_insert.sixteen_readers(max(3, args.repeats // 4), keep=args.keep)
    raw["insert16"] = {k: v.to_json() for k, v in s.items()}
    raw["insert16_pcsc_scan"] = verdict
    sec = "plug-in, 16 readers"
    table.add(sec, "pcsc_scan 1.6.2 on 16 readers", verdict or "watches them", note="stand-in: our PC/SC watcher")
    for key, note in (("all_pcscd", ""), ("all_bus", ""), ("ratio", "aim <= 1.1"), ("pcscd_bus", ""),
                      ("pcscd_bus_max", ""), ("pcscd_read_max", ""), ("new_pcscd_bus_max", "16 keys never seen")):
        table.add_series(sec, s[key], note)


def run_renewal(table, args, raw):
    import bench_renewal
    res, transport, polkit = bench_renewal.renewals(max(3, args.repeats // 3), keep=args.keep)
    raw["renewal"] = {f"{p}/{a}": {k: v.to_json() for k, v in s.items()} for (p, a), s in res.items()}
    raw["transport"] = transport.to_json()
    raw["polkit"] = polkit.to_json()
    table.add_series("renewal", transport, "measured apart")
    table.add_series("renewal", polkit, "measured apart")
    for (place, algorithm), s in sorted(res.items()):
        sec = f"renewal {algorithm}, state on {place}"
        for key in ("total", "card", "transport", "portal", "tls", "polkit", "agent", "daemon", "share", "cpu",
                    "apdus", "exchanges"):
            note = {"daemon": "aim < 50 ms", "share": "aim < 5 %"}.get(key, "")
            table.add_series(sec, s[key], note)


def run_idle(table, args, raw):
    import bench_idle
    window = 10.0 if args.quick else 60.0
    count = 64 if args.quick else 1000
    out = bench_idle.idle(window=window, count=count, keep=args.keep)
    raw["idle"] = out
    for mode, label in (("tests", "idle, no watchdog"), ("unit", "idle, as its unit (WatchdogSec=60s)")):
        res = out[mode]
        sec = f"{label}, {window:.0f} s, 2 keys in"
        for name, per_min in res["wakeups_per_min"].items():
            note = {"keyrenewd": "aim 0 outside the portal schedule"}.get(name, "")
            table.add(sec, f"{name}: wake-ups per minute", per_min, note=note)
        for name, m in res["memory_kib"].items():
            note = "aim < 8 MiB" if name == "keyrenewd" else ""
            table.add(sec, f"{name}: memory at rest (RSS / PSS / anon)",
                      f"{m['rss'] / 1024:.1f} / {m['pss'] / 1024:.1f} / {m['anon'] / 1024:.1f}", "MiB", note=note)
        table.add(sec, "keyrenewd's next portal poll after the window", res["next_poll_s"] / 3600, "h",
                  note="the window is outside the schedule")
        if mode == "unit":
            table.add(sec, "WATCHDOG=1 pings received", res["watchdog_pings"])
    if not out["tray"]:
        table.add("idle", "keyrenew-tray", "not built: not measured")
    c = out["cycles"]
    sec = f"keyrenewd over {c['count']} insert/remove cycles"
    table.add(sec, "memory at rest before (RSS / PSS / anon)",
              f"{c['rest']['rss'] / 1024:.1f} / {c['rest']['pss'] / 1024:.1f} / {c['rest']['anon'] / 1024:.1f}",
              "MiB")
    for n, m in c["samples"]:
        table.add(sec, f"after {n} cycles (RSS / PSS / anon)",
                  f"{m['rss'] / 1024:.1f} / {m['pss'] / 1024:.1f} / {m['anon'] / 1024:.1f}", "MiB",
                  note="aim: flat" if n == c["count"] else "")
    table.add(sec, "CPU per insert/remove cycle", c["cpu_ms_per_cycle"], "ms")


def run_portal(table, args, raw):
    import bench_portal
    res = bench_portal.portal_load(scheduled=not args.quick, keep=args.keep)
    raw["portal"] = res
    for n, r in res.items():
        sec = f"portal, {n} key{'s' if n > 1 else ''} plugged in at once"
        p = r["plugged"]
        table.add(sec, "requests after plugging in", p["requests"], note="aim: one")
        table.add(sec, "certificates asked about / keys", f"{r['covered']} / {n}")
        table.add(sec, "HTTP bytes out / in", f"{p['http_out']} / {p['http_in']}", "B")
        table.add(sec, "wire bytes out / in (TLS included)", f"{p['wire_out']} / {p['wire_in']}", "B")
        sch = r["scheduled"]
        if sch:
            table.add(sec, f"the next poll within {bench_portal.SCHEDULED_WAIT:.0f} s: requests, statuses",
                      f"{sch['requests']}, {sch['statuses']}",
                      note="poll_interval 60 s: 304 when nothing changed" if n == 1 else "poll_interval 6 h")
            table.add(sec, "  HTTP bytes out / in", f"{sch['http_out']} / {sch['http_in']}", "B")
            table.add(sec, "  wire bytes out / in (TLS included)", f"{sch['wire_out']} / {sch['wire_in']}", "B")
            table.add(sec, "  certificates asked about by then / keys", f"{r['covered_after']} / {n}")
    sec = f"model: {bench_portal.FLEET // 1_000_000} million desktops, from the bytes above"
    for what, value, unit in bench_portal.fleet_model(res):
        table.add(sec, what, value, unit)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", help="the meson build folder (default: $KEYRENEW_BUILD_DIR or build/)")
    p.add_argument("--quick", action="store_true", help="few repeats, short windows: checks that it runs")
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    p.add_argument("--repeats", type=int, help="repeats per latency measurement (default 20, quick 3)")
    p.add_argument("--json", help="also write every measurement to this file")
    p.add_argument("--keep", action="store_true", help="keep the sandboxes' folders and logs")
    args = p.parse_args()
    if args.build_dir:
        os.environ["KEYRENEW_BUILD_DIR"] = str(pathlib.Path(args.build_dir).resolve())
    if args.repeats is None:
        args.repeats = 3 if args.quick else 20
    if os.geteuid() != 0:
        print("run.py: the private pcscd needs root (a mount namespace): run it as root", file=sys.stderr)
        return 1
    benchlib.on_signals_raise()
    table = Table()
    raw = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "args": vars(args)}
    t0 = time.monotonic()
    status = 0
    for name in args.only or SECTIONS:
        print(f"run.py: {name} ...", file=sys.stderr, flush=True)
        try:
            globals()[f"run_{name}"](table, args, raw)
        except BenchError as e:
            print(f"run.py: {name}: could not measure: {e}", file=sys.stderr)
            table.add(name, "could not measure", str(e)[:60])
            status = 1
    raw["machine"]["load_end"] = os.getloadavg()
    raw["seconds"] = time.monotonic() - t0
    raw["table"] = table.to_json()
    m = raw["machine"]
    print(f"\nkeyrenew benchmarks, {raw['started']}: {m['cpu']}, {m['cores']} cores, {m['memory_mib']} MiB, "
          f"Linux {m['kernel']}, Debian {m['debian']}, pcscd {m['pcscd']}, build {m['buildtype']}; "
          f"load {m['load_start'][0]:.1f} -> {m['load_end'][0]:.1f}; {raw['seconds']:.0f} s\n")
    print(table.text())
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(raw, indent=1, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
