# SPDX-License-Identifier: GPL-2.0-or-later
"""A test client of keyrenewd's renewal API, independent of keyrenewctl:
registers a PIN agent (org.keyrenew.KeyRenew1.Agent) on its connection,
calls Manager.Renew, answers RequestPin as told, and prints one JSON object
when Renew returns:

  {"ok": bool, "result": {...} | null, "error": NAME | null,
   "message": str | null, "requests": [info of each RequestPin],
   "progress": [[step, percent], ...], "finished": [[outcome, message]]}

Usage: renew_client.py ADDRESS CERT_PATH [--pin PIN | --cancel | --hang]
                       [--accept-key-loss] [--no-agent] [--agent-only]
--hang never answers RequestPin (for Cancel() and pulled-key tests); the
client then waits for Renew's answer like the others. --agent-only calls
no Renew: it prints "ready" on stderr once registered and waits for the
certificate's RenewalFinished (a renewal keyrenewd resumes by itself).
Run with /usr/bin/python3."""

import argparse
import json
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

BUS_NAME = "org.keyrenew.KeyRenew1"
MANAGER_PATH = "/org/keyrenew/KeyRenew1"
MANAGER = "org.keyrenew.KeyRenew1.Manager"
TOKEN = "org.keyrenew.KeyRenew1.Token"
AGENT = "org.keyrenew.KeyRenew1.Agent"
AGENT_PATH = "/org/keyrenew/TestAgent"


def plain(v):
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    if isinstance(v, (dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, dbus.Byte)):
        return int(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


class Agent(dbus.service.Object):
    def __init__(self, conn, args, out):
        super().__init__(conn, AGENT_PATH)
        self.args = args
        self.out = out

    @dbus.service.method(AGENT, in_signature="oa{sv}", out_signature="s", sender_keyword="sender",
                         async_callbacks=("reply", "error"))
    def RequestPin(self, certificate, info, sender=None, reply=None, error=None):
        self.out["requests"].append(dict(plain(info), certificate=str(certificate), sender=str(sender)))
        if self.args.cancel:
            error(dbus.DBusException("cancelled by the test", name="org.keyrenew.KeyRenew1.Error.Cancelled"))
        elif not self.args.hang:
            reply(self.args.pin)

    @dbus.service.method(AGENT, in_signature="o", out_signature="")
    def Cancel(self, certificate):
        self.out["withdrawn"].append(str(certificate))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("address")
    p.add_argument("cert")
    p.add_argument("--pin", default="123456")
    p.add_argument("--cancel", action="store_true")
    p.add_argument("--hang", action="store_true")
    p.add_argument("--accept-key-loss", action="store_true")
    p.add_argument("--no-agent", action="store_true")
    p.add_argument("--agent-only", action="store_true")
    args = p.parse_args()

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(args.address)
    loop = GLib.MainLoop()
    out = {"ok": False, "result": None, "error": None, "message": None, "requests": [], "withdrawn": [],
           "progress": [], "finished": []}
    agent = Agent(conn, args, out)
    manager = dbus.Interface(conn.get_object(BUS_NAME, MANAGER_PATH), MANAGER)
    if not args.no_agent:
        manager.RegisterAgent(dbus.ObjectPath(AGENT_PATH))

    def on_props(interface, changed, invalidated, path=None):
        if interface == TOKEN and ("RenewalStep" in changed or "Progress" in changed):
            out["progress"].append([str(changed.get("RenewalStep", "")), int(changed.get("Progress", -1))])

    def on_finished(cert, outcome, message):
        if str(cert) == args.cert:
            out["finished"].append([str(outcome), str(message)])
            if args.agent_only:
                out["ok"] = str(outcome) == "done"
                loop.quit()

    conn.add_signal_receiver(on_props, "PropertiesChanged", dbus.PROPERTIES_IFACE, BUS_NAME, None,
                             path_keyword="path")
    conn.add_signal_receiver(on_finished, "RenewalFinished", MANAGER, BUS_NAME, MANAGER_PATH)

    def done(result=None, err=None):
        if err is None:
            out["ok"] = True
            out["result"] = plain(result)
        else:
            out["error"] = err.get_dbus_name()
            out["message"] = err.get_dbus_message()
        # Let RenewalFinished (sent after the answer) arrive.
        GLib.timeout_add(300, loop.quit)

    options = {"AcceptKeyLoss": dbus.Boolean(True)} if args.accept_key_loss else {}
    if args.agent_only:
        print("ready", file=sys.stderr, flush=True)
    else:
        manager.Renew(dbus.ObjectPath(args.cert), dbus.Dictionary(options, signature="sv"),
                      reply_handler=lambda r: done(r), error_handler=lambda e: done(err=e), timeout=600)
        print("renewing", file=sys.stderr, flush=True)
    loop.run()
    del agent
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
