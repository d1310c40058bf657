# SPDX-License-Identifier: GPL-2.0-or-later
"""The renewal end to end: keyrenewd on a private bus (with python-dbusmock's
polkitd), the reference portal over TLS, a virtual key in the private
pcscd, and a test client (renew_client.py) that registers the PIN agent
and calls Manager.Renew. The results are checked with tools nobody here
wrote: yubico-piv-tool reads the new certificate and test-signs with the
slot's key, OpenSC's pkcs15-tool lists it, and the portal's CRL holds the
old one. Needs root (the private pcscd)."""

import json
import os
import pathlib
import subprocess
import sys

import dbus
import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import DEFAULT_PIN, pkcs15, run, show, ykpiv
from test_daemon_core import BUS_NAME, MANAGER, PATH, Daemon, PrivateBus
from test_daemon_tokens import CERT, TOKEN

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "portal"))
from portal_testlib import Portal  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
CLIENT = HERE / "renew_client.py"
KEYRENEWCTL = pathlib.Path(os.environ.get("KEYRENEW_BUILD_DIR", HERE.parents[1] / "build")) / "ctl" / "keyrenewctl"
POLKIT = "org.freedesktop.PolicyKit1"
KINDS = {"rsa2048": "RSA", "eccp256": "ECDSA", "eccp384": "ECDSA"}


class Env:
    def __init__(self, tmp, bed):
        self.tmp = tmp
        self.bed = bed
        self.daemon = self.portal = self.polkitd = None
        self.cards = []
        self.bus = self.make_bus(tmp)
        try:
            self._start(tmp)
        except BaseException:
            # Whatever started must stop, also when the rest did not start.
            self.close()
            raise

    def make_bus(self, tmp):
        return PrivateBus(tmp)

    def allow(self):
        """What polkit allows: org.keyrenew.renew, to anyone."""
        self.polkit.SetAllowed(["org.keyrenew.renew"])

    def _start(self, tmp):
        self.polkit_log = tmp / "polkitd.log"
        self.polkitd = subprocess.Popen(
            ["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "polkitd", "-l",
             str(self.polkit_log)],
            env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address), stdout=subprocess.DEVNULL)
        wait_for("the mock polkitd", lambda: self.bus.conn.name_has_owner(POLKIT))
        self.polkit = dbus.Interface(self.bus.conn.get_object(POLKIT, "/org/freedesktop/PolicyKit1/Authority"),
                                     "org.freedesktop.DBus.Mock")
        self.allow()
        self.portal = Portal(tmp)
        self.portal.start()
        self.state_dir = tmp / "state"
        self.config = tmp / "keyrenewd.conf"
        self.mgm_keys = tmp / "management-keys"
        self.mgm_keys.mkdir()
        self.config.write_text(f"[Portal]\nUrl={self.portal.url}\nCABundle={self.portal.bundle}\n"
                               f"[Renewal]\nManagementKeyDirectory={self.mgm_keys}\n")

    def start(self, wrapper=()):
        """(Re)starts keyrenewd: a new one asks the portal at once when it
        first sees a key (later insertions only once a minute)."""
        if self.daemon and self.daemon.proc.poll() is None:
            assert self.daemon.stop(timeout=60) == 0, self.daemon.output()
        self.daemon = Daemon(self.tmp, self.bus, self.bed, ["--state-dir", str(self.state_dir), "--config",
                                                            str(self.config)], wrapper=wrapper)
        self.daemon.wait_for_name(timeout=60 if wrapper else 10)
        return self.daemon

    def key(self, algorithm="eccp256", slot="9a", days=10, version="5.7.1", usage=None, name="card",
            pin_policy=None, create=()):
        """A virtual key with a certificate the portal's CA issued."""
        state = self.tmp / f"{name}.state"
        run([self.bed_vcard(), "create", state, "--serial", str(20000000 + len(self.cards)), "--yk-version",
             version, *create])
        ca = "rsa" if algorithm == "rsa2048" else "ec"
        pem = self.tmp / f"{name}-old.pem"
        extra = (["--usage", usage] if usage else []) + (["--pin-policy", pin_policy] if pin_policy else [])
        run([self.bed_vcard(), "issue", state, "--slot", slot, "--algorithm", algorithm, "--subject",
             f"/O=Example/CN={name}", "--ca-cert", self.portal.ca[ca], "--ca-key",
             self.portal.dir / f"ca-{ca}.key", "--days", str(days), "--out", pem, *extra])
        self.cards.append(state)
        return state, pem

    @staticmethod
    def bed_vcard():
        from keyrenew_testbed import vcard_binary
        return vcard_binary()

    def props(self, path, interface):
        return self.bus.conn.get_object(BUS_NAME, path).GetAll(interface, dbus_interface=dbus.PROPERTIES_IFACE)

    def cert_path(self, serial, slot="9a", state="approved", timeout=20):
        """The certificate's object once the portal's answer about it is
        on the bus (state None: whatever it is)."""
        def find():
            try:
                token = self.bus.conn.get_object(BUS_NAME, PATH).GetToken(str(serial), dbus_interface=MANAGER)
            except dbus.DBusException:
                return None
            for c in self.props(token, TOKEN)["Certificates"]:
                p = self.props(c, CERT)
                if p["Slot"] == slot and state in (None, p["RenewalState"]):
                    return str(c)
            return None
        return wait_for(f"{serial}/{slot} {state} on the bus", find, timeout)

    def renew(self, cert, *args, timeout=120):
        proc = subprocess.run(["/usr/bin/python3", str(CLIENT), self.bus.address, cert, *args],
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def close(self):
        if self.daemon:
            self.daemon.kill()
        if self.portal:
            self.portal.stop(check=False)
        if self.polkitd:
            self.polkitd.terminate()
            self.polkitd.wait(timeout=10)
        self.bus.stop()


@pytest.fixture
def env(tmp_path, pcsc_bed):
    e = Env(tmp_path, pcsc_bed)
    yield e
    e.close()


def serial_of(state):
    return show(state)["serial"]


def pubkey(pem):
    return run(["openssl", "x509", "-in", pem, "-noout", "-pubkey"]).stdout


def order_state(env, order):
    ((state,),) = env.portal.db("SELECT state FROM orders WHERE id = ?", order)
    return state


def pin_tries(state):
    return show(state)["pin"]["retries_left"]


def check_with_peers(env, card, slot, new_pem, algorithm):
    """yubico-piv-tool reads the new certificate and signs with the slot's
    key against it; pkcs15-tool sees it."""
    out = env.tmp / "read-back.pem"
    ykpiv(env.bed, "-a", "read-certificate", "-s", slot, "-o", out, reader=card.reader)
    assert run(["openssl", "x509", "-in", out, "-noout", "-serial"]).stdout == \
        run(["openssl", "x509", "-in", new_pem, "-noout", "-serial"]).stdout
    proc = ykpiv(env.bed, "-a", "verify-pin", "-P", DEFAULT_PIN, "-a", "test-signature", "-s", slot, "-i", out,
                 reader=card.reader)
    assert f"Successful {KINDS[algorithm]} verification" in proc.stdout + proc.stderr
    # OpenSC lists the certificate by its DER serial ("02 LEN SERIAL").
    listing = pkcs15(env.bed, "--list-certificates", "--reader", str(card.index)).stdout
    serial = run(["openssl", "x509", "-in", out, "-noout", "-serial"]).stdout.strip().split("=")[1].upper()
    encoded = [line.split(":", 1)[1].split()[-1] for line in listing.splitlines() if "Encoded serial" in line]
    assert serial.lstrip("0") in [e.lstrip("0") for e in encoded], listing
    return out


def run_renewal(env, algorithm, rekey, version="5.7.1"):
    state, old_pem = env.key(algorithm, version=version)
    order = env.portal.approved_order(old_pem, "--rekey", "yes" if rekey else "no")
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        res = env.renew(cert)
        assert res["ok"], res
        assert res["result"]["Order"] == order
        assert res["result"]["Rekeyed"] is rekey
        assert [r["RetriesLeft"] for r in res["requests"]] == [3]
        assert res["finished"][0][0] == "done", res
        steps = [s for s, _ in res["progress"] if s]
        for step in ("started", "key-generated", "requesting", "issued", "written", "verified", "confirmed",
                     "done"):
            assert step in steps, (step, steps)

        new_pem = env.tmp / "new.pem"
        check_with_peers(env, card, "9a", new_pem_from_card(env, card, new_pem), algorithm)
        new_serial = run(["openssl", "x509", "-in", new_pem, "-noout", "-serial"]).stdout.split("=")[1].strip()
        assert new_serial.lower().lstrip("0") == res["result"]["Serial"].lstrip("0")
        assert (pubkey(new_pem) != pubkey(old_pem)) is rekey
        # The portal: installed, exactly one certificate, the old one revoked.
        assert order_state(env, order) == "installed"
        assert len(env.portal.certs_for_order(order)) == 1
        old_serial = run(["openssl", "x509", "-in", old_pem, "-noout", "-serial"]).stdout.split("=")[1].strip()
        assert old_serial.upper() in env.portal.crl_text("rsa" if algorithm == "rsa2048" else "ec").upper()
        # The PIN was used once and is still good; the retired slots are clean.
        assert pin_tries(state) == 3
        assert [s["slot"] for s in show(state)["slots"]] == ["9a"]
        # The history and the bus tell the same story.
        hist = env.bus.conn.get_object(BUS_NAME, PATH).GetHistory(dbus_interface=MANAGER)
        assert [(str(h["Order"]), str(h["Outcome"])) for h in hist] == [(order, "done")]
        # The bus shows the new certificate in the slot, the token at rest.
        cert = env.cert_path(serial_of(state), state="none")
        assert env.props(cert, CERT)["Serial"].lstrip("0") == res["result"]["Serial"].lstrip("0")
        token = env.props(cert, CERT)["Token"]
        assert env.props(token, TOKEN)["RenewalStep"] == "done"
        assert env.props(token, TOKEN)["State"] == "renewed"
        assert not list(env.state_dir.glob("renewal-*.journal"))
    finally:
        env.bed.remove(card.index)


def new_pem_from_card(env, card, out):
    ykpiv(env.bed, "-a", "read-certificate", "-s", "9a", "-o", out, reader=card.reader)
    return out


@pytest.mark.parametrize("algorithm,rekey", [("eccp256", False), ("eccp256", True), ("rsa2048", True),
                                             ("rsa2048", False)])
def test_renewal(env, algorithm, rekey):
    run_renewal(env, algorithm, rekey)


def test_wrong_pin_costs_one_try_and_changes_nothing(env):
    state, old_pem = env.key()
    order = env.portal.approved_order(old_pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    try:
        before = show(state)["slots"]
        cert = env.cert_path(serial_of(state))
        res = env.renew(cert, "--pin", "654321")
        assert not res["ok"]
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.WrongPin"
        assert "2 tries left" in res["message"], res["message"]
        assert len(res["requests"]) == 1, "the PIN must never be asked again by itself"
        assert res["finished"][0][0] == "failed"
        assert pin_tries(state) == 2
        after = show(state)["slots"]
        for b, a in zip(before, after):
            b.pop("uses")
            a.pop("uses")
        assert after == before
        assert order_state(env, order) == "approved"
        assert not env.portal.certs_for_order(order)
        assert not list(env.state_dir.glob("renewal-*.journal"))
    finally:
        env.bed.remove(card.index)


def test_cancel_at_the_pin_prompt(env):
    state, old_pem = env.key()
    order = env.portal.approved_order(old_pem, "--rekey", "no")
    env.start()
    card = env.bed.insert(state)
    try:
        res = env.renew(env.cert_path(serial_of(state)), "--cancel")
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.Cancelled", res
        assert order_state(env, order) == "approved"
        assert not env.portal.certs_for_order(order)
    finally:
        env.bed.remove(card.index)


def test_encryption_key_needs_confirmation(env):
    state, old_pem = env.key(usage="encryption")
    env.portal.approved_order(old_pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        res = env.renew(cert)
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.ConfirmationRequired", res
        assert "can no longer be opened" in res["message"]
        assert res["requests"] == []
        res = env.renew(cert, "--accept-key-loss")
        assert res["ok"], res
    finally:
        env.bed.remove(card.index)


def test_refused_without_polkit_or_agent(env):
    state, old_pem = env.key()
    env.portal.approved_order(old_pem, "--rekey", "no")
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        res = env.renew(cert, "--no-agent")
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.NoAgent", res
        env.polkit.SetAllowed(["org.keyrenew.manage"])
        res = env.renew(cert)
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.NotAuthorized", res
        assert res["requests"] == []
        # Neither left a trace on the token.
        token = env.props(cert, CERT)["Token"]
        assert env.props(token, TOKEN)["RenewalStep"] == ""
    finally:
        env.bed.remove(card.index)


def test_rekey_needs_move_key(env):
    state, old_pem = env.key(version="5.4.3")
    order = env.portal.approved_order(old_pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    try:
        res = env.renew(env.cert_path(serial_of(state)))
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.NotSupported", res
        assert "5.7" in res["message"]
        assert not env.portal.certs_for_order(order)
    finally:
        env.bed.remove(card.index)


def ctl(env, *args, pin=None):
    return subprocess.run([str(KEYRENEWCTL), "--bus", env.bus.address, *args], input=pin, capture_output=True,
                          text=True, timeout=120)


def test_keyrenewctl_renew_and_history(env):
    """keyrenewctl as the PIN agent: a wrong PIN costs one try (exit 6),
    the right one renews (exit 0); the history shows both."""
    state, old_pem = env.key(algorithm="rsa2048")
    order = env.portal.approved_order(old_pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    try:
        serial = serial_of(state)
        env.cert_path(serial)
        proc = ctl(env, "renew", f"{serial}/9a", "--pin-stdin", pin="000000\n")
        assert proc.returncode == 6, proc.stdout + proc.stderr
        assert "2 tries left" in proc.stdout + proc.stderr
        assert pin_tries(state) == 2
        proc = ctl(env, "renew", str(serial), "--pin-stdin", pin=DEFAULT_PIN + "\n")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert order in proc.stdout
        new_pem = new_pem_from_card(env, card, env.tmp / "ctl-new.pem")
        check_with_peers(env, card, "9a", new_pem, "rsa2048")
        assert pubkey(new_pem) != pubkey(old_pem)
        assert order_state(env, order) == "installed"
        # A correct VERIFY resets the counter.
        assert pin_tries(state) == 3
        proc = ctl(env, "history", "--json")
        assert proc.returncode == 0, proc.stderr
        hist = json.loads(proc.stdout)
        assert [h["Outcome"] for h in hist] == ["done"], hist
        assert hist[0]["NotAfter"] > 0
    finally:
        env.bed.remove(card.index)


def test_resumes_by_itself_when_the_key_comes_back(env):
    """A key pulled out in the middle of the renewal: when it is plugged in
    again and its user's agent is there, keyrenewd goes on by itself and
    asks the PIN once, saying it is a resume."""
    state, old_pem = env.key()
    order = env.portal.approved_order(old_pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    env.cert_path(serial_of(state))
    n = len(card.apdus())
    env.bed.remove(card.index)
    # The renewal's 16th APDU is past issuance (the certificate is being written).
    card = env.bed.insert(state, vanish_after=n + 15)
    cert = env.cert_path(serial_of(state))
    res = env.renew(cert)
    assert res["error"] == "org.keyrenew.KeyRenew1.Error.Interrupted", res
    assert card.wait_exit() == 3
    env.bed.remove(card.index)
    assert list(env.state_dir.glob("renewal-*.journal"))
    agent = subprocess.Popen(["/usr/bin/python3", str(CLIENT), env.bus.address, cert, "--agent-only"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert agent.stderr.readline().strip() == "ready"
        card = env.bed.insert(state)
        out, err = agent.communicate(timeout=60)
        res = json.loads(out)
        assert res["ok"], (res, err)
        assert [r["Resume"] for r in res["requests"]] == [True]
        assert order_state(env, order) == "installed"
        assert len(env.portal.certs_for_order(order)) == 1
    finally:
        if agent.poll() is None:
            agent.kill()
        env.bed.remove(card.index)


def test_sleep_and_shutdown_are_held_off_while_renewing(env):
    """logind (python-dbusmock's template) is asked for "block"
    inhibitors of sleep and of shutdown while the card is written."""
    log = env.tmp / "logind.log"
    logind = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "logind", "-l",
                               str(log)], env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.bus.address),
                              stdout=subprocess.DEVNULL)
    try:
        wait_for("the mock logind", lambda: env.bus.conn.name_has_owner("org.freedesktop.login1"))
        state, old_pem = env.key()
        env.portal.approved_order(old_pem, "--rekey", "no")
        env.start()
        card = env.bed.insert(state)
        try:
            res = env.renew(env.cert_path(serial_of(state)))
            assert res["ok"], res
        finally:
            env.bed.remove(card.index)
        calls = [line for line in log.read_text().splitlines() if "Inhibit" in line]
        # One each: logind 252 checks a combined one against the lid switch's action.
        assert len(calls) == 2, calls
        assert any('"sleep" "keyrenew"' in c for c in calls) and any('"shutdown" "keyrenew"' in c for c in calls)
        assert all('"block"' in c for c in calls), calls
        assert "logind gave no inhibitor" not in env.daemon.output()
    finally:
        logind.terminate()
        logind.wait(timeout=10)


def test_valgrind_clean(env):
    """A wrong PIN, a re-key renewal and one interrupted and resumed, in
    keyrenewd under valgrind: no leak, no error (the card provider, the CMP
    client, the journal, the worker's hand-over of a pulled key)."""
    d = env.start(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                           "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                           "--quiet"])
    state, old_pem = env.key()
    env.portal.approved_order(old_pem, "--rekey", "yes")
    card = env.bed.insert(state)
    cert = env.cert_path(serial_of(state), timeout=60)
    n = len(card.apdus())
    assert env.renew(cert, "--pin", "999999")["error"] == "org.keyrenew.KeyRenew1.Error.WrongPin"
    assert env.renew(cert)["ok"]
    env.bed.remove(card.index)

    state, old_pem = env.key(name="second")
    env.portal.approved_order(old_pem, "--rekey", "yes")
    d = env.start(wrapper=d.proc.args[:6])
    card = env.bed.insert(state, vanish_after=n + 15)
    cert = env.cert_path(serial_of(state), timeout=60)
    assert env.renew(cert)["error"] == "org.keyrenew.KeyRenew1.Error.Interrupted"
    assert card.wait_exit() == 3
    env.bed.remove(card.index)
    card = env.bed.insert(state)
    assert env.renew(env.cert_path(serial_of(state), state=None, timeout=60))["ok"]
    env.bed.remove(card.index)
    assert d.stop(timeout=60) == 0, d.output()


@pytest.mark.parametrize("rekey", ["yes", "no"])
def test_signature_slot_with_pin_always(env, rekey):
    """9C, the signature slot, whose key wants the PIN verified right
    before every signature: keyrenewd verifies the PIN the user gave again
    for each of its signatures (no new prompt, no try spent), and a new key
    keeps that policy."""
    state, old_pem = env.key(slot="9c", pin_policy="always")
    order = env.portal.approved_order(old_pem, "--rekey", rekey)
    env.start()
    card = env.bed.insert(state)
    try:
        res = env.renew(env.cert_path(serial_of(state), slot="9c"))
        assert res["ok"], res
        assert len(res["requests"]) == 1
        out = env.tmp / "9c.pem"
        ykpiv(env.bed, "-a", "read-certificate", "-s", "9c", "-o", out, reader=card.reader)
        proc = ykpiv(env.bed, "-a", "verify-pin", "-P", DEFAULT_PIN, "-a", "test-signature", "-s", "9c", "-i", out,
                     reader=card.reader)
        assert "Successful ECDSA verification" in proc.stdout + proc.stderr
        assert (pubkey(out) != pubkey(old_pem)) is (rekey == "yes")
        (slot,) = [s for s in show(state)["slots"] if s["slot"] == "9c"]
        assert slot["pin_policy"] == "always"
        assert order_state(env, order) == "installed"
        assert pin_tries(state) == 3
    finally:
        env.bed.remove(card.index)


MGM_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_management_key_configured_by_an_admin(env):
    """A key with its own AES-256 management key, not kept behind the PIN:
    refused until the admin puts it in ManagementKeyDirectory, refused
    while others can read that file, then renewed and shown "configured"."""
    state, old_pem = env.key(create=("--mgm-alg", "aes256", "--mgm-key", MGM_KEY))
    order = env.portal.approved_order(old_pem, "--rekey", "yes")
    env.start()
    card = env.bed.insert(state)
    try:
        serial = serial_of(state)
        cert = env.cert_path(serial)
        res = env.renew(cert)
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.ManagementKey", res
        assert "configured" in res["message"]
        assert pin_tries(state) == 3
        key_file = env.mgm_keys / str(serial)
        key_file.write_text(MGM_KEY + "\n")
        key_file.chmod(0o644)
        res = env.renew(cert)
        assert res["error"] == "org.keyrenew.KeyRenew1.Error.ManagementKey", res
        assert "only its owner can read" in res["message"], res["message"]
        key_file.chmod(0o600)
        res = env.renew(cert)
        assert res["ok"], res
        token = cert.rsplit("/cert", 1)[0]
        assert env.props(token, TOKEN)["ManagementKey"] == "configured"
        assert order_state(env, order) == "installed"
        assert MGM_KEY not in env.daemon.output() and MGM_KEY.upper() not in env.daemon.output()
    finally:
        env.bed.remove(card.index)


def test_blocked_pin(env):
    """The wrong PIN that spends the last try, then a renewal of a blocked
    key: PinBlocked, with what to do, and nothing else changes."""
    state, old_pem = env.key(create=("--pin-retries", "1"))
    order = env.portal.approved_order(old_pem, "--rekey", "no")
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        for _ in range(2):
            res = env.renew(cert, "--pin", "000000")
            assert res["error"] == "org.keyrenew.KeyRenew1.Error.PinBlocked", res
            assert "PUK" in res["message"]
        assert pin_tries(state) == 0
        assert order_state(env, order) == "approved"
        token = cert.rsplit("/cert", 1)[0]
        wait_for("the token locked", lambda: env.props(token, TOKEN)["State"] == "locked")
    finally:
        env.bed.remove(card.index)
