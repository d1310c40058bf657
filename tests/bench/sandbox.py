# SPDX-License-Identifier: GPL-2.0-or-later
"""One benchmark's world: a private bus, a private pcscd with vpcd readers
(keyrenew_testbed), optionally the reference portal and python-dbusmock's
polkitd, and keyrenewd with its log read line by line as it is written;
watchers for the bus's signals and for pcscd's reader states. Everything
on 127.0.0.1 and in a folder of its own; close() stops exactly what was
started."""

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

import benchlib
from benchlib import PYTHON, BenchError, Procs, TimedLines, json_lines

from keyrenew_testbed import PcscTestbed, build_dir, vcard_binary  # noqa: E402
from keyrenew_testbed.clients import run  # noqa: E402
from test_daemon_core import PrivateBus  # noqa: E402

BUS_NAME = "org.keyrenew.KeyRenew1"
MANAGER_PATH = "/org/keyrenew/KeyRenew1"
POLKIT = "org.freedesktop.PolicyKit1"


def keyrenewd():
    path = build_dir() / "daemon" / "keyrenewd"
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} is missing: build it (ninja -C {build_dir()})")
    return path


class Sandbox:
    def __init__(self, name, entries=1, keep=False):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"keyrenew-bench-{name}-"))
        self.keep = keep
        self.procs = Procs()
        self.bus = None
        self.bed = None
        self.portal = None
        self.daemon = None
        self.log = None
        self.signals = None
        self.readers = None
        self.entries = entries
        self.cards = 0

    def __enter__(self):
        try:
            self.bus = PrivateBus(self.dir)
            self.bed = PcscTestbed(entries=self.entries, workdir=self.dir / "pcsc")
            self.bed.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    # --- peers -------------------------------------------------------------

    def start_polkit(self):
        """python-dbusmock's polkitd on our bus, allowing renewals."""
        import dbus
        proc = self.procs.start([PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"],
                                env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        benchlib_wait(lambda: self.bus.conn.name_has_owner(POLKIT), "the mock polkitd", proc)
        mock = dbus.Interface(self.bus.conn.get_object(POLKIT, "/org/freedesktop/PolicyKit1/Authority"),
                              "org.freedesktop.DBus.Mock")
        mock.SetAllowed(["org.keyrenew.renew"])

    def start_portal(self, *extra):
        from portal_testlib import Portal
        self.portal = Portal(self.dir).start(extra=extra)
        return self.portal

    def write_config(self, portal_url=None, bundle=None, extra=""):
        conf = self.dir / "keyrenewd.conf"
        text = ""
        if portal_url:
            text += f"[Portal]\nUrl={portal_url}\nCABundle={bundle or self.portal.bundle}\n"
        mgm = self.dir / "management-keys"
        mgm.mkdir(exist_ok=True)
        text += f"[Renewal]\nManagementKeyDirectory={mgm}\n{extra}"
        conf.write_text(text)
        return conf

    # --- keyrenewd ---------------------------------------------------------

    def start_daemon(self, config=None, state=True, env=None, log_level="debug"):
        """state: True for a state folder in the sandbox, False for none,
        or the folder's path."""
        args = [keyrenewd(), "--bus", self.bus.address, "--log-target", "stderr", "--log-level", log_level]
        if state:
            args += ["--state-dir", self.dir / "state" if state is True else state]
        if config:
            args += ["--config", config]
        full_env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(self.bed.socket))
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("WATCHDOG_USEC", None)
        full_env.update(env or {})
        self.daemon = self.procs.start(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env)
        self.log = TimedLines(self.daemon.stderr, self.dir / "keyrenewd.log")
        benchlib_wait(lambda: self.bus.conn.name_has_owner(BUS_NAME), "keyrenewd on the bus", self.daemon)
        return self.daemon

    def stop_daemon(self):
        if self.daemon:
            status = Procs.stop(self.daemon)
            self.procs.procs.remove(self.daemon)
            self.daemon = None
            self.log.thread.join(timeout=5)
            self.log.close()
            return status
        return None

    def wait_log(self, text, since=0, timeout=30.0):
        """(index, (time, line)) of the first daemon log line from since on
        that contains text."""
        return self.log.wait(lambda item: text in item[1], since, timeout, f"{text!r} in keyrenewd's log")

    # --- watchers ----------------------------------------------------------

    def watch_bus(self):
        proc = self.procs.start([PYTHON, benchlib.HERE / "bus_watch.py", self.bus.address],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.signals = TimedLines(proc.stdout, parse=json_lines)
        self.signals.wait(lambda s: s.get("ready"), what="the bus watcher")
        return self.signals

    def watch_readers(self, count=None):
        proc = self.procs.start([PYTHON, benchlib.HERE / "pcsc_watch.py", str(count or len(self.bed.readers))],
                                stdout=subprocess.PIPE, text=True, env=self.bed.env)
        self.readers = TimedLines(proc.stdout, parse=json_lines)
        self.readers.wait(lambda s: "ready" in s, what="the PC/SC watcher")
        return self.readers

    # --- keys --------------------------------------------------------------

    def new_card(self, name=None, algorithm="rsa2048", days=10, ca=None, version="5.7.1"):
        """A card file with a certificate in 9a: by the portal's CA when
        there is a portal, else self-signed. Returns (state, pem)."""
        self.cards += 1
        name = name or f"key{self.cards}"
        state, pem = self.dir / f"{name}.state", self.dir / f"{name}.pem"
        run([vcard_binary(), "create", state, "--serial", str(30000000 + self.cards), "--yk-version", version])
        ca_args = []
        if self.portal:
            kind = "rsa" if algorithm == "rsa2048" else "ec"
            ca_args = ["--ca-cert", self.portal.ca[kind], "--ca-key", self.portal.dir / f"ca-{kind}.key"]
        run([vcard_binary(), "issue", state, "--slot", "9a", "--algorithm", algorithm, "--subject",
             f"/O=Example/CN={name}", "--days", str(days), *ca_args, "--out", pem])
        return state, pem

    # --- the end -----------------------------------------------------------

    def close(self):
        try:
            self.stop_daemon()
        finally:
            self.procs.stop_all()
            if self.portal:
                self.portal.stop(check=False)
            if self.bed:
                self.bed.stop()
            if self.bus:
                self.bus.stop()
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)


def benchlib_wait(cond, what, proc=None, timeout=30.0):
    import time
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: the process exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
