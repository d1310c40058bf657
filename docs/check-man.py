#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fails when a man page misses an option a program's --help lists, or a
key of the installed configuration file: the pages must not fall behind.

check-man.py PAGE.scd --help PROGRAM     every --long option of PROGRAM --help
check-man.py PAGE.scd --conf FILE        every [Section] and Key= of FILE"""

import re
import subprocess
import sys


def main():
    page, mode, source = sys.argv[1:4]
    text = open(page, encoding="utf-8").read()
    if mode == "--help":
        out = subprocess.run([source, "--help"], capture_output=True, text=True, check=True,
                             env={"LANGUAGE": "C", "LC_ALL": "C.UTF-8"}).stdout
        wanted = [f"*{o}*" for o in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out)))]
    else:
        conf = open(source, encoding="utf-8").read()
        wanted = [f"*[{s}]*" for s in re.findall(r"^\[(\w+)\]$", conf, re.M)]
        wanted += [f"*{k}=*" for k in re.findall(r"^#(\w+)=", conf, re.M)]
    missing = [w for w in wanted if w not in text]
    if not wanted or missing:
        print(f"{page}: missing {missing or 'everything: nothing found to check'}")
        return 1
    print(f"{page}: all of {len(wanted)} found")
    return 0


sys.exit(main())
