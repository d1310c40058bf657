# SPDX-License-Identifier: GPL-2.0-or-later
"""What keyrenewd costs the portal: requests per poll, bytes per poll,
304s when nothing changed, for one key and for 16 keys plugged in at
once. The portal is reached through portal_proxy.py, which counts every
HTTP exchange and every byte on the wire (TLS included) as the portal
would see them. For one key the portal asks to be polled every 60 s (the
protocol's minimum) so that a scheduled poll, the same request as every
6 hours, comes within the run; for 16 keys it asks for the default 6 hours,
so that what comes within the next minute is what keyrenewd asks by
itself beyond the first request."""

import time

from benchlib import BenchError
from portal_proxy import PortalProxy
from sandbox import Sandbox

# The protocol's minimum interval plus its 10 % jitter, and some slack.
SCHEDULED_WAIT = 60 * 1.1 + 10


def window(proxy, t0, t1):
    exchanges, connections = proxy.snapshot()
    ex = [e for e in exchanges if t0 <= e.t < t1]
    conns = [c for c in connections if t0 <= c.t < t1]
    return ex, conns


def summary(ex, conns):
    return {
        "requests": len(ex),
        "statuses": [e.status for e in ex],
        "certs": [len(e.certs) for e in ex],
        "http_out": sum(e.req_bytes for e in ex),
        "http_in": sum(e.rsp_bytes for e in ex),
        "connections": len(conns),
        "wire_out": sum(c.wire_in for c in conns),
        "wire_in": sum(c.wire_out for c in conns),
    }


def plug_and_count(box, proxy, cards, settle=3.0):
    """Plugs the cards in at once; returns the exchanges from then until
    settle seconds after the last key was read."""
    mark = box.log.mark()
    t0 = time.monotonic()
    for i, c in enumerate(cards):
        box.bed.insert(c, i, wait=False)
    for i in range(len(cards)):
        box.bed.wait_present(i, True, 15)
    last = mark
    for _ in cards:
        last, _ = box.wait_log(" read in ", last)
        last += 1
    time.sleep(settle)
    ex, conns = window(proxy, t0, time.monotonic())
    return ex, conns


def next_poll(proxy, after):
    """The exchanges of the next poll within SCHEDULED_WAIT, or ([], [])."""
    deadline = time.monotonic() + SCHEDULED_WAIT
    while time.monotonic() < deadline:
        ex, conns = window(proxy, after, time.monotonic())
        if ex:
            time.sleep(1.0)  # the rest of the same poll, if it has more requests
            return window(proxy, after, time.monotonic())
        time.sleep(0.2)
    return [], []


def portal_load(scheduled=True, keep=False):
    """{case: {"plugged": summary, "scheduled": summary or None, "keys": n,
    "covered": certificates asked about / keys}}"""
    results = {}
    with Sandbox("portal", entries=8, keep=keep) as box:
        portal = box.start_portal()
        proxy = PortalProxy(portal)
        try:
            config = box.write_config(proxy.url, portal.bundle)
            for n in (1, 16):
                cards = [box.new_card(algorithm="eccp256")[0] for _ in range(n)]
                portal.admin("poll-interval", "60" if n == 1 else "21600")
                box.start_daemon(config=config, state=box.dir / f"state-{n}")
                time.sleep(1.0)  # keyrenewd's own start (nothing to ask about yet)
                ex, conns = plug_and_count(box, proxy, cards)
                asked = set(c for e in ex for c in e.certs)
                res = {"keys": n, "plugged": summary(ex, conns), "covered": len(asked), "scheduled": None}
                if scheduled:
                    ex2, conns2 = next_poll(proxy, time.monotonic())
                    res["scheduled"] = summary(ex2, conns2)
                    res["covered_after"] = len(asked | set(c for e in ex2 for c in e.certs))
                results[n] = res
                for i in range(n):
                    box.bed.remove(i)
                if box.stop_daemon() != 0:
                    raise BenchError("keyrenewd did not exit cleanly")
        finally:
            proxy.close()
    return results


# The fleet model of docs/performance.md: keyrenewd's schedule as built
# (daemon/portal-schedule.h: 6 h unless the portal says otherwise, plus a
# jitter of 0-10 %, 5 % on average), one key insertion a day per desktop
# (each asks at once), every keyrenewd asking once when it starts.
FLEET = 10_000_000
INTERVAL_S = 6 * 3600
MEAN_JITTER = 0.05
INSERTIONS_PER_DAY = 1
BOOT_WAVE_S = 3600


def fleet_model(res):
    """Rows (what, value, unit) from the measured bytes of one key's
    scheduled poll (a 304) and of its insertion (a 200)."""
    one = res[1]
    sched = one["scheduled"] if one["scheduled"] and one["scheduled"]["requests"] else one["plugged"]
    poll_bytes = sched["wire_out"] + sched["wire_in"]
    insert_bytes = one["plugged"]["wire_out"] + one["plugged"]["wire_in"]
    polls = FLEET * 86400 / (INTERVAL_S * (1 + MEAN_JITTER))
    inserts = FLEET * INSERTIONS_PER_DAY
    per_day = polls * poll_bytes + inserts * insert_bytes
    return [
        ("scheduled polls a day (6 h + 0-10 % jitter)", polls / 1e6, "million"),
        ("key insertions a day (one per desktop, asked at once)", inserts / 1e6, "million"),
        ("requests per second, day average", (polls + inserts) / 86400, "/s"),
        ("requests per second while all boot within an hour", FLEET / BOOT_WAVE_S, "/s"),
        ("TLS handshakes a day (a new connection each time)", (polls + inserts) / 1e6, "million"),
        ("bytes on the wire a day, both ways", per_day / 1e9, "GB"),
        ("bandwidth, day average", per_day * 8 / 86400 / 1e6, "Mbit/s"),
    ]
