# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's first command runs scripts/demo.py: it must work, tell the
story a person reads, and leave nothing running behind it."""

import os
import pathlib
import re
import subprocess

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", TOP / "build"))


def processes_mentioning(text):
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and proc.name != str(os.getpid()):
            found.append(cmdline)
    return found


def test_demo_tells_the_story_and_cleans_up():
    p = subprocess.run(["/usr/bin/python3", str(TOP / "scripts" / "demo.py"), "--build-dir", str(BUILD),
                        "--days", "6", "--keep"],
                       capture_output=True, text=True, timeout=300)
    out = p.stdout
    assert p.returncode == 0, out + p.stderr
    assert re.search(r'keyrenewd found key 20261127 in "Demo Reader A 00 00" after \d+ ms; '
                     r"PIN tries left: 3; state: (expiring|renewal-available)", out), out
    assert re.search(r"slot 9a: .*CN=Demo User", out), out
    assert re.search(r"ec 256, signing; ends .*: [56] days left \(expiring\)", out), out
    assert re.search(r"order R\d{4}-\d{6}: approved", out), out
    assert re.search(r"keyrenewd asked the portal: renewal approved \(order R\d{4}-\d{6}\); "
                     r"the key.s state is now \"renewal-available\"", out), out
    assert re.search(r"order page: https://127\.0\.0\.1:\d+/orders/R\d{4}-\d{6}", out), out
    assert "Not built yet: the renewal itself" in out, out
    kept = re.search(r"kept in (\S+)", out)
    assert kept, out
    sandbox = kept.group(1)
    assert processes_mentioning(sandbox) == []
    subprocess.run(["rm", "-rf", sandbox], check=True)
