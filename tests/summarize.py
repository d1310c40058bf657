#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Adds up what every test run of scripts/test.sh reported.

Reads meson's JSON test logs, pytest's JUnit XML files and the steps file
that scripts/test.sh writes (one "name PASS|FAIL" line per build or check
step), prints one line per suite and a last line "N passed, N failed".
A skipped test counts as failed: CI must never go green on tests that did
not run. Exits 1 when anything failed or nothing ran at all.
"""

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

MESON_OK = {"OK", "EXPECTEDFAIL"}


def meson_results(path):
    for line in path.read_text().splitlines():
        if line.strip():
            t = json.loads(line)
            yield t["name"], t["result"] in MESON_OK, t["result"]


def junit_results(path):
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("classname", "") + "::" + case.get("name", "")
        bad = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        yield name, not bad, bad[0].upper() if bad else "OK"


def step_results(path):
    for line in path.read_text().splitlines():
        name, _, result = line.rpartition(" ")
        if name:
            yield name, result == "PASS", result


def main(argv):
    passed = failed = 0
    for arg in argv:
        label, _, file = arg.partition("=")
        path = Path(file)
        if not path.exists():
            print(f"{label}: no results ({path} missing): counted as 1 failure")
            failed += 1
            continue
        if path.suffix == ".json":
            results = list(meson_results(path))
        elif path.suffix == ".xml":
            results = list(junit_results(path))
        else:
            results = list(step_results(path))
        bad = [(n, r) for n, ok, r in results if not ok]
        good = len(results) - len(bad)
        print(f"{label}: {good} passed, {len(bad)} failed")
        for name, result in bad:
            print(f"    {result}: {name}")
        passed += good
        failed += len(bad)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
