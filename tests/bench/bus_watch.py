# SPDX-License-Identifier: GPL-2.0-or-later
"""Prints every signal keyrenewd sends on the bus at ADDRESS as one JSON
line, with the moment it arrived here (CLOCK_MONOTONIC, as
time.monotonic() in any process of the machine):

    {"t": 1234.5678, "member": "InterfacesAdded", "path": "/org/...", "args": [...]}

Prints {"ready": true} once subscribed. Run with /usr/bin/python3; ends
when its standard input closes or on SIGTERM."""

import json
import sys
import threading
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

BUS_NAME = "org.keyrenew.KeyRenew1"


def plain(v):
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath, dbus.Signature)):
        return str(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return str(v)


def main():
    loop = GLib.MainLoop()
    conn = dbus.bus.BusConnection(sys.argv[1], mainloop=dbus.mainloop.glib.DBusGMainLoop())

    def record(*args, member=None, path=None, interface=None):
        t = time.monotonic()
        print(json.dumps({"t": t, "member": str(member), "interface": str(interface), "path": str(path),
                          "args": plain(list(args))}), flush=True)

    conn.add_signal_receiver(record, sender_keyword=None, bus_name=BUS_NAME, member_keyword="member",
                             path_keyword="path", interface_keyword="interface")
    # A round trip to the bus: the match rule is in place once it returns.
    conn.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus").GetId(
        dbus_interface="org.freedesktop.DBus")
    print(json.dumps({"ready": True}), flush=True)

    def stdin_closed():
        sys.stdin.read()
        GLib.idle_add(loop.quit)
    threading.Thread(target=stdin_closed, daemon=True).start()
    loop.run()


if __name__ == "__main__":
    main()
