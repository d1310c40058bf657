# SPDX-License-Identifier: GPL-2.0-or-later
"""A timed renewal: registers a PIN agent on the bus at ADDRESS, prints
{"ready": true}, waits for a line on standard input, then calls
Manager.Renew(CERT) and prints one JSON object when the answer is in, with
CLOCK_MONOTONIC times (as time.monotonic() anywhere on the machine):

    {"ok": true, "t_call": ..., "t_pin": ..., "t_answered": ..., "t_reply": ...,
     "steps": [[t, step], ...], "result": {...}, "error": null}

t_pin is when the agent was asked for the PIN, t_answered when it hands
its answer to dbus-python (which sends it). Usage: renew_timed.py ADDRESS CERT [PIN]. Run with
/usr/bin/python3."""

import json
import sys
import threading
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

BUS_NAME = "org.keyrenew.KeyRenew1"
MANAGER_PATH = "/org/keyrenew/KeyRenew1"
MANAGER = "org.keyrenew.KeyRenew1.Manager"
TOKEN = "org.keyrenew.KeyRenew1.Token"
AGENT = "org.keyrenew.KeyRenew1.Agent"
AGENT_PATH = "/org/keyrenew/BenchAgent"


class Agent(dbus.service.Object):
    def __init__(self, conn, pin, out):
        super().__init__(conn, AGENT_PATH)
        self.pin = pin
        self.out = out

    @dbus.service.method(AGENT, in_signature="oa{sv}", out_signature="s")
    def RequestPin(self, certificate, info):
        self.out["t_pin"] = time.monotonic()
        self.out["t_answered"] = time.monotonic()
        return self.pin

    @dbus.service.method(AGENT, in_signature="o", out_signature="")
    def Cancel(self, certificate):
        pass


def main():
    address, cert = sys.argv[1], sys.argv[2]
    pin = sys.argv[3] if len(sys.argv) > 3 else "123456"
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(address)
    loop = GLib.MainLoop()
    out = {"ok": False, "t_call": None, "t_pin": None, "t_answered": None, "t_reply": None, "steps": [],
           "result": None, "error": None}
    agent = Agent(conn, pin, out)
    manager = dbus.Interface(conn.get_object(BUS_NAME, MANAGER_PATH), MANAGER)
    manager.RegisterAgent(dbus.ObjectPath(AGENT_PATH))

    def on_props(interface, changed, invalidated):
        if interface == TOKEN and "RenewalStep" in changed:
            out["steps"].append([time.monotonic(), str(changed["RenewalStep"])])

    conn.add_signal_receiver(on_props, "PropertiesChanged", dbus.PROPERTIES_IFACE, BUS_NAME, None)

    def reply(result):
        out["t_reply"] = time.monotonic()
        out["ok"] = True
        out["result"] = {str(k): str(v) if not isinstance(v, (dbus.Boolean, bool)) else bool(v)
                         for k, v in result.items()}
        GLib.timeout_add(200, loop.quit)

    def error(e):
        out["t_reply"] = time.monotonic()
        out["error"] = f"{e.get_dbus_name()}: {e.get_dbus_message()}"
        GLib.timeout_add(200, loop.quit)

    def go():
        sys.stdin.readline()
        GLib.idle_add(call)

    def call():
        out["t_call"] = time.monotonic()
        manager.Renew(dbus.ObjectPath(cert), dbus.Dictionary({}, signature="sv"), reply_handler=reply,
                      error_handler=error, timeout=600)
        return False

    print(json.dumps({"ready": True}), flush=True)
    threading.Thread(target=go, daemon=True).start()
    loop.run()
    del agent
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
