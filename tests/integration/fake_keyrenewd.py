#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A FAKE keyrenewd: a test double of the renewal's bus contract in
dbus/org.keyrenew.KeyRenew1.xml (Manager.Renew, Cancel, RegisterAgent,
UnregisterAgent, GetHistory, RenewalFinished; the Token's State, Progress,
RenewalStep; the Agent interface), for testing keyrenewctl's side before
keyrenewd's renewal exists. It has no card and no portal: a renewal is a
PIN check against the configuration and a few PropertiesChanged. Property
types come from the XML, and a property the XML does not document is
refused, so the double cannot drift from the contract silently.

    fake_keyrenewd.py BUS_ADDRESS CONFIG.json LOG.jsonl

CONFIG (JSON): "pin", "retries", "token" {"serial", "label",
"management_key", and to show one under way: "state", "progress",
"renewal_step"}, "certs" [{"slot", "subject", "renewal_state", "usage",
"order", "rekey"}], "new_serial", "new_not_after" (µs), "resumed", "step_ms" (between steps),
"withdraw" (withdraw the PIN request with Agent.Cancel and end the renewal
Cancelled), "history" [entries as GetHistory documents them]. Each call
it gets, and each answer an agent gives, is a JSON line in LOG."""

import json
import pathlib
import sys
import time
import xml.etree.ElementTree as ET

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

XML = pathlib.Path(__file__).resolve().parents[2] / "dbus" / "org.keyrenew.KeyRenew1.xml"
BUS_NAME = "org.keyrenew.KeyRenew1"
PATH = "/org/keyrenew/KeyRenew1"
MANAGER = "org.keyrenew.KeyRenew1.Manager"
TOKEN = "org.keyrenew.KeyRenew1.Token"
CERT = "org.keyrenew.KeyRenew1.Certificate"
AGENT = "org.keyrenew.KeyRenew1.Agent"
ERROR = "org.keyrenew.KeyRenew1.Error."

# The renewal's steps after the PIN, with the Progress each reports.
STEPS = [("started", 10), ("key-generated", 25), ("requesting", 40), ("issued", 60), ("written", 75),
         ("verified", 85), ("confirmed", 95), ("done", 100)]

SIGNATURES = {(i.get("name"), p.get("name")): p.get("type")
              for i in ET.parse(XML).getroot().iter("interface") for p in i.iter("property")}


def typed(interface, name, value):
    """value as the XML says the property is typed."""
    sig = SIGNATURES[(interface, name)]
    kinds = {"s": dbus.String, "o": dbus.ObjectPath, "b": dbus.Boolean, "i": dbus.Int32, "u": dbus.UInt32,
             "t": dbus.UInt64}
    if sig.startswith("a"):
        return dbus.Array([kinds[sig[1]](v) for v in value], signature=sig[1])
    return kinds[sig](value)


def error(name, message):
    return dbus.exceptions.DBusException(message, name=ERROR + name)


def now_usec():
    return int(time.time() * 1000000)


class Log:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def __call__(self, **entry):
        self.file.write(json.dumps(entry) + "\n")


class PropertyObject(dbus.service.Object):
    """An object with one interface's properties, read-only, as the XML types them."""

    def __init__(self, conn, path, interface, values):
        super().__init__(conn, path)
        self.path = path
        self.interface = interface
        self.props = {k: typed(interface, k, v) for k, v in values.items()}

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        if interface != self.interface or name not in self.props:
            raise dbus.exceptions.DBusException(f"no property {name}",
                                                name="org.freedesktop.DBus.Error.UnknownProperty")
        return self.props[name]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return self.props if interface == self.interface else {}

    @dbus.service.signal(dbus.PROPERTIES_IFACE, signature="sa{sv}as")
    def PropertiesChanged(self, interface, changed, invalidated):
        pass

    def update(self, **values):
        changed = {k: typed(self.interface, k, v) for k, v in values.items()}
        self.props.update(changed)
        self.PropertiesChanged(self.interface, changed, dbus.Array([], signature="s"))


class Renewal:
    """One Renew() call under way."""

    def __init__(self, cert, ok, err):
        self.cert = cert
        self.ok = ok
        self.err = err
        self.over = False
        self.cancel = False
        self.agent = None  # (owner, path) while the PIN is asked


class Manager(PropertyObject):
    def __init__(self, conn, config, log):
        super().__init__(conn, PATH, MANAGER, {"Version": "0.0.0-fake", "Readers": ["Fake Reader 00 00"],
                                               "PcscState": "connected", "Tokens": [], "PortalState": "reachable",
                                               "PortalReachable": True, "PortalError": "",
                                               "LastPortalCheck": now_usec(), "NextPortalCheck": 0})
        self.conn = conn
        self.config = config
        self.log = log
        self.agents = {}  # sender -> agent path
        self.renewals = {}  # certificate path -> Renewal
        self.history = [self.history_entry(h) for h in config.get("history", [])]
        self.retries = config.get("retries", 3)
        self.last_error = ""
        token = config["token"]
        tpath = f"{PATH}/token/_{token['serial']}"
        certs = []
        for c in config["certs"]:
            certs.append(PropertyObject(conn, f"{tpath}/cert/_{c['slot']}", CERT, {
                "Token": tpath, "Slot": c["slot"], "Subject": c["subject"], "Issuer": "O=Fake CA,CN=Fake CA",
                "Serial": "01", "IssuerHash": "0" * 40, "Fingerprint": "0" * 64,
                "NotBefore": now_usec() - 355 * 86400 * 10**6, "NotAfter": now_usec() + 10 * 86400 * 10**6,
                "DaysLeft": 10, "Status": "expiring", "KeyType": "rsa", "KeyBits": 2048, "Curve": "",
                "Usage": c.get("usage", ["signing"]), "KeyOrigin": "generated", "PinPolicy": "default",
                "TouchPolicy": "default", "RenewalState": c["renewal_state"], "RenewalOrder": c.get("order", ""),
                "PortalUrl": "https://portal.invalid/orders/" + c.get("order", ""), "RejectReason": "",
                "RenewalRekey": c.get("rekey", False), "RenewalValidityDays": 365, "RenewalChecked": now_usec()}))
            certs[-1].config = c
        self.certs = {c.path: c for c in certs}
        self.token = PropertyObject(conn, tpath, TOKEN, {
            "Reader": "Fake Reader 00 00", "Driver": "piv", "Serial": token["serial"], "Chuid": "",
            "Label": token.get("label", ""), "FirmwareVersion": "5.4.3", "Present": True,
            "PinRetriesLeft": self.retries, "State": token.get("state", "renewal-available"),
            "Progress": token.get("progress", 100), "RenewalStep": token.get("renewal_step", ""),
            "ManagementKey": token.get("management_key", "pin-protected"), "LastError": "",
            "LastSeen": now_usec(), "Certificates": [c.path for c in certs]})
        self.props["Tokens"] = typed(MANAGER, "Tokens", [tpath])

    @staticmethod
    def history_entry(h):
        kinds = {"NotAfter": dbus.UInt64, "Time": dbus.UInt64}
        return dbus.Dictionary({k: kinds.get(k, dbus.String)(v) for k, v in h.items()}, signature="sv")

    @dbus.service.method("org.freedesktop.DBus.ObjectManager", out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        objects = [self.token, *self.certs.values()]
        return {o.path: {o.interface: o.props} for o in objects}

    @dbus.service.method(MANAGER, in_signature="o", sender_keyword="sender")
    def RegisterAgent(self, path, sender):
        self.log(call="RegisterAgent", sender=sender, path=path)
        if self.agents:
            raise error("AgentExists", "The session has a PIN agent already.")
        self.agents[sender] = path
        self.conn.watch_name_owner(sender, lambda owner: owner or self.agents.pop(sender, None))

    @dbus.service.method(MANAGER, in_signature="o", sender_keyword="sender")
    def UnregisterAgent(self, path, sender):
        self.log(call="UnregisterAgent", sender=sender, path=path)
        if self.agents.get(sender) != path:
            raise error("NoSuchAgent", "No agent of yours at that path.")
        del self.agents[sender]

    @dbus.service.method(MANAGER, out_signature="aa{sv}")
    def GetHistory(self):
        return dbus.Array(self.history, signature="a{sv}")

    @dbus.service.signal(MANAGER, signature="oss")
    def RenewalFinished(self, certificate, outcome, message):
        pass

    @dbus.service.method(MANAGER, in_signature="o", sender_keyword="sender")
    def Cancel(self, path, sender):
        self.log(call="Cancel", sender=sender, path=path)
        renewal = self.renewals.get(path)
        if not renewal:
            raise error("NoRenewal", "No renewal of this certificate is under way.")
        if renewal.agent:
            self.withdraw(renewal)
        renewal.cancel = True

    @dbus.service.method(MANAGER, in_signature="oa{sv}", out_signature="a{sv}", sender_keyword="sender",
                         async_callbacks=("ok", "err"))
    def Renew(self, path, options, sender, ok, err):
        self.log(call="Renew", sender=sender, path=path, options={k: bool(v) for k, v in options.items()})
        cert = self.certs.get(path)
        unknown = set(options) - {"AcceptKeyLoss"}
        if unknown:
            return err(dbus.exceptions.DBusException(f"Unknown options {sorted(unknown)}",
                                                     name="org.freedesktop.DBus.Error.InvalidArgs"))
        if not cert:
            return err(error("NoSuchCertificate", f"No certificate at {path}."))
        if cert.props["RenewalState"] not in ("approved", "issued"):
            return err(error("NoRenewal", "No approved renewal order for this certificate."))
        if self.renewals:
            return err(error("Busy", "A renewal of this token is under way."))
        if "encryption" in cert.config.get("usage", []) and cert.config.get("rekey") \
                and not options.get("AcceptKeyLoss", False):
            return err(error("ConfirmationRequired",
                             "The key in slot 9d decrypts; replacing it needs AcceptKeyLoss."))
        # The caller's session's agent: here, the only one there is.
        if not self.agents:
            return err(error("NoAgent", "Your session has no PIN agent."))
        agent_owner, agent_path = next(iter(self.agents.items()))
        renewal = Renewal(cert, ok, err)
        self.renewals[path] = renewal
        self.token.update(State="awaiting-pin", RenewalStep="pin", Progress=5)
        info = dbus.Dictionary({
            "TokenSerial": dbus.String(self.token.props["Serial"]), "TokenLabel": self.token.props["Label"],
            "Subject": cert.props["Subject"], "NotAfter": cert.props["NotAfter"],
            "RetriesLeft": dbus.Int32(self.retries), "Resume": dbus.Boolean(self.config.get("resumed", False)),
            "Error": dbus.String(self.last_error)}, signature="sv")
        renewal.agent = (agent_owner, agent_path)
        self.conn.call_async(agent_owner, agent_path, AGENT, "RequestPin", "oa{sv}", (path, info),
                             lambda pin: self.got_pin(renewal, str(pin)),
                             lambda e: self.pin_refused(renewal, e), timeout=300)
        if self.config.get("withdraw"):
            GLib.timeout_add(300, self.withdraw, renewal)

    def withdraw(self, renewal):
        """Agent.Cancel(), and the renewal ends Cancelled."""
        if not renewal.agent:
            return False
        owner, path = renewal.agent
        renewal.agent = None
        self.conn.call_async(owner, path, AGENT, "Cancel", "o", (renewal.cert.path,),
                             lambda: self.log(agent="Cancel", answer="ok"),
                             lambda e: self.log(agent="Cancel", error=e.get_dbus_name()))
        self.end(renewal, "cancelled", error("Cancelled", "The renewal was cancelled."))
        return False

    def end(self, renewal, outcome, failure=None, result=None):
        if renewal.over:
            return
        renewal.over = True
        del self.renewals[renewal.cert.path]
        self.token.update(State="renewed" if result else "renewal-available", RenewalStep=outcome)
        self.history.append(self.history_entry({
            "Order": renewal.cert.config.get("order", ""), "Token": self.token.props["Serial"],
            "Slot": renewal.cert.props["Slot"], "OldCertificate": "0" * 40 + ":01",
            "NewSerial": result["Serial"] if result else "", "NotAfter": result["NotAfter"] if result else 0,
            "Time": now_usec(), "Outcome": outcome, "Reason": failure.get_dbus_message() if failure else ""}))
        self.RenewalFinished(renewal.cert.path, outcome, failure.get_dbus_message() if failure else "renewed")
        if failure:
            renewal.err(failure)
        else:
            renewal.ok(result)

    def pin_refused(self, renewal, e):
        self.log(agent="RequestPin", error=e.get_dbus_name(), message=e.get_dbus_message())
        renewal.agent = None
        self.end(renewal, "cancelled", error("Cancelled", "The PIN request was cancelled."))

    def got_pin(self, renewal, pin):
        self.log(agent="RequestPin", pin=pin)
        if renewal.over:
            return
        renewal.agent = None
        if pin != self.config["pin"]:
            self.retries -= 1
            self.last_error = "Wrong PIN"
            self.token.update(PinRetriesLeft=self.retries)
            if self.retries == 0:
                self.token.update(State="locked")
                return self.end(renewal, "failed", error("PinBlocked", "The PIN is blocked: no tries left."))
            return self.end(renewal, "failed", error(
                "WrongPin", f"Wrong PIN: {self.retries} {'try' if self.retries == 1 else 'tries'} left."))
        self.retries = self.config.get("retries", 3)
        self.last_error = ""
        self.token.update(PinRetriesLeft=self.retries, State="renewing")
        steps = [s for s in STEPS if s[0] != "key-generated" or renewal.cert.config.get("rekey")]
        GLib.timeout_add(self.config.get("step_ms", 10), self.step, renewal, steps)

    def step(self, renewal, steps):
        if renewal.cancel:
            self.end(renewal, "cancelled", error("Cancelled", "The renewal was cancelled."))
            return False
        name, progress = steps.pop(0)
        self.token.update(RenewalStep=name, Progress=progress)
        if steps:
            return True
        result = {"Serial": dbus.String(self.config.get("new_serial", "4E4557")),
                  "NotAfter": dbus.UInt64(self.config.get("new_not_after", now_usec() + 365 * 86400 * 10**6)),
                  "Order": dbus.String(renewal.cert.config.get("order", "")),
                  "Rekeyed": dbus.Boolean(renewal.cert.config.get("rekey", False)),
                  "Resumed": dbus.Boolean(self.config.get("resumed", False))}
        renewal.cert.update(RenewalState="installed", Serial=result["Serial"], NotAfter=result["NotAfter"])
        self.end(renewal, "done", result=result)
        return False


def main():
    address, config_path, log_path = sys.argv[1:4]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(address)
    config = json.loads(pathlib.Path(config_path).read_text())
    manager = Manager(conn, config, Log(log_path))
    # The name last: a client that sees it finds everything in place.
    name = dbus.service.BusName(BUS_NAME, conn, do_not_queue=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    loop.run()
    del name, manager


if __name__ == "__main__":
    main()
