# SPDX-License-Identifier: GPL-2.0-or-later
"""Starts the test bed by hand: a private pcscd with vpcd readers and
virtual keys in them, until Ctrl-C. See ../README.md.

    cd tests/integration && sudo /usr/bin/python3 -m keyrenew_testbed --card /tmp/alice.card --create
"""

import argparse
import os
import shlex
import signal
import subprocess
import sys

from .pcsc import PcscTestbed, TestbedError, vcard_binary

COMMANDS = """commands (one per line):
  list                                  readers and whether a key is in them
  insert INDEX FILE [--delay-ms MS] [--vanish-before N] [--vanish-after N] [--fail-sw N:SW]...
  remove INDEX                          pull the key out (SIGTERM to the card)
  quit                                  stop everything (as Ctrl-C)"""


def create_card(path):
    vcard = str(vcard_binary())
    subprocess.run([vcard, "create", path], check=True)
    subprocess.run([vcard, "issue", path, "--slot", "9a", "--algorithm", "rsa2048",
                    "--subject", "/CN=Test Key", "--out", "/dev/null"], check=True)
    print(f"created {path}: PIN 123456, PUK 12345678, default 3DES management key, "
          "self-signed RSA-2048 certificate in 9a", flush=True)


def insert(bed, words):
    parser = argparse.ArgumentParser(prog="insert", exit_on_error=False)
    parser.add_argument("index", type=int)
    parser.add_argument("file")
    parser.add_argument("--delay-ms", type=int)
    parser.add_argument("--vanish-before", type=int)
    parser.add_argument("--vanish-after", type=int)
    parser.add_argument("--fail-sw", action="append", default=[])
    a = parser.parse_args(words)
    card = bed.insert(a.file, a.index, delay_ms=a.delay_ms, vanish_before=a.vanish_before,
                      vanish_after=a.vanish_after,
                      fail_sw=[tuple(f.split(":", 1)) for f in a.fail_sw])
    print(f"{a.file} is in {card.reader} (pid {card.proc.pid}, APDU log {card.apdu_log_path})")


def show(bed):
    for i, r in enumerate(bed.reader_states()):
        card = bed.cards.get(i)
        what = f"key {card.state} (pid {card.proc.pid})" if r["present"] and card else (
            "key present" if r["present"] else "empty")
        print(f"  [{i}] {r['name']} (port {bed.ports[i]}): {what}")


def command(bed, line):
    words = shlex.split(line)
    if not words:
        return True
    if words[0] == "quit":
        return False
    try:
        if words[0] == "list":
            show(bed)
        elif words[0] == "insert":
            insert(bed, words[1:])
        elif words[0] == "remove" and len(words) == 2:
            print(f"removed; the card exited with status {bed.remove(int(words[1]))}")
        else:
            print(COMMANDS)
    except (TestbedError, ValueError, KeyError, argparse.ArgumentError) as e:
        print(f"error: {e}")
    return True


def main():
    parser = argparse.ArgumentParser(
        prog="python3 -m keyrenew_testbed",
        description="A private pcscd with vpcd readers and keyrenew-vcard keys, until Ctrl-C.")
    parser.add_argument("--entries", type=int, default=1,
                        help="vpcd reader.conf entries, two readers each (1-8, default 1)")
    parser.add_argument("--name", default="Virtual PCD", help="reader name prefix")
    parser.add_argument("--card", action="append", default=[], metavar="FILE",
                        help="a card state file to insert, in readers 0, 1, ... (repeatable)")
    parser.add_argument("--create", action="store_true",
                        help="create card files that do not exist yet")
    args = parser.parse_args()
    # Whoever reads our output through a pipe sees each line as it comes.
    sys.stdout.reconfigure(line_buffering=True)

    # SIGTERM (or closing the terminal) cleans up like Ctrl-C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    try:
        for path in args.card:
            if args.create and not os.path.exists(path):
                create_card(path)
        with PcscTestbed(entries=args.entries, name=args.name) as bed:
            for index, path in enumerate(args.card):
                bed.insert(path, index)
            print(f"pcscd pid {bed.pcscd.pid}, folder {bed.dir}")
            show(bed)
            print("\nFor clients, in another shell:\n"
                  f"  export PCSCLITE_CSOCK_NAME={shlex.quote(str(bed.socket))}\n"
                  "  yubico-piv-tool -r Virtual -a status\n")
            print(COMMANDS + "\nCtrl-C stops pcscd and the keys.", flush=True)
            for line in sys.stdin:
                if not command(bed, line):
                    break
            else:
                signal.pause()
    except KeyboardInterrupt:
        pass
    except (TestbedError, subprocess.CalledProcessError) as e:
        print(f"keyrenew_testbed: {e}", file=sys.stderr)
        return 1
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
