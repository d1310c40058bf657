#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A scripted pinentry for the keyrenew-tray tests: speaks the Assuan
pinentry protocol on stdin/stdout like /usr/bin/pinentry, appends what it
was asked to $TRAY_PINENTRY_LOG (one JSON object per dialog: the SET*
texts and OPTIONs, unescaped) and answers GETPIN as the first line of
$TRAY_PINENTRY_SCRIPT says, removing that line:
  pin PIN   types PIN and presses OK
  cancel    presses Cancel (ERR 83886179, as pinentry does)
  hang      never answers (the tray must withdraw the dialog)
No line left: cancel. The PIN itself is not logged."""

import fcntl
import json
import os
import sys
import time


def unescape(s):
    out = bytearray()
    b = s.encode()
    i = 0
    while i < len(b):
        if b[i] == 0x25 and i + 2 < len(b):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


def next_answer():
    path = os.environ["TRAY_PINENTRY_SCRIPT"]
    with open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = f.read().splitlines()
        f.seek(0)
        f.truncate()
        f.write("".join(l + "\n" for l in lines[1:]))
    return lines[0] if lines else "cancel"


def log(entry):
    with open(os.environ["TRAY_PINENTRY_LOG"], "a") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    asked = {"options": [], "pid": os.getpid()}
    say("OK Pleased to meet you")
    for line in sys.stdin:
        line = line.rstrip("\n")
        verb, _, arg = line.partition(" ")
        if verb == "OPTION":
            asked["options"].append(arg)
            say("OK")
        elif verb.startswith("SET"):
            asked[verb] = unescape(arg)
            say("OK")
        elif verb == "GETPIN":
            answer = next_answer()
            asked["answer"] = answer.split()[0]
            log(asked)
            if answer.startswith("pin "):
                pin = answer[4:]
                say("D " + pin.replace("%", "%25"))
                say("OK")
            elif answer == "hang":
                while True:
                    time.sleep(60)
            else:
                say("ERR 83886179 Operation cancelled <Pinentry>")
        elif verb == "BYE":
            say("OK closing connection")
            return
        else:
            say("ERR 536871187 Unknown IPC command <User defined source 1>")


if __name__ == "__main__":
    main()
