# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenewd against callers who should not get what they ask for, on a
private bus that runs a system bus's default policy with the project's
(dbus/org.keyrenew.KeyRenew1.conf), as test_bus_policy.py does:

  - a user who is not in the active session (nobody, uid 65534, through
    setpriv): polkit (python-dbusmock's polkitd, told here to allow
    org.keyrenew.renew to root's active session only) refuses their
    Renew with NotAuthorized, and their Cancel;
  - with polkit allowing everyone, an agent registered by one user never
    sees another user's PIN request: nobody without an agent gets NoAgent,
    nobody with one is asked by keyrenewd through their own agent only;
  - malformed arguments: wrong types, unknown options or an option of the
    wrong type in Renew's a{sv}, paths that are not certificates, huge
    strings and paths;
  - a client that dies while its PIN prompt is open.

Every refusal is checked by its error name, and keyrenewd's own messages
must be sentences (a capital first, a full stop last). Needs root (the
private pcscd, setpriv)."""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import dbus
import dbus.lowlevel
import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import show
from test_bus_policy import NOBODY, SYSTEM_POLICY
from test_daemon_core import BUS_NAME, MANAGER, PATH, PrivateBus
from test_daemon_tokens import CERT, TOKEN
from test_renewal import CLIENT, POLKIT, Env, order_state, serial_of

ERR = "org.keyrenew.KeyRenew1.Error."
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
INCONSISTENT = "org.freedesktop.DBus.Error.InconsistentMessage"

# The mock polkitd may own its name and everyone may ask it, as
# polkitd's own policy file says (for its user polkitd; ours runs as root).
POLKIT_POLICY = f"""  <policy user="root">
    <allow own="{POLKIT}"/>
  </policy>
  <policy context="default">
    <allow send_destination="{POLKIT}"/>
  </policy>
"""

# polkit's answer for org.keyrenew.renew ("active local session, no
# password"): here uid 0 is the user of the active session; USERS is
# replaced by the uids allowed.
CHECK_CODE = """
uid = self.connection.get_unix_user(args[0][1]['name'])
ret = (dbus.Boolean(args[1] in self.allowed and uid in USERS), dbus.Boolean(False),
       dbus.Dictionary({}, signature='ss'))
"""


class SystemEnv(Env):
    """test_renewal's Env on a bus with the system policy, in folders that
    nobody can reach."""

    def make_bus(self, tmp):
        self.top = pathlib.Path(tempfile.mkdtemp(prefix="keyrenew-abuse-"))
        self.top.chmod(0o755)
        bus = PrivateBus(self.top, bus_type="system", policy=SYSTEM_POLICY + POLKIT_POLICY)
        bus.dir.chmod(0o755)
        return bus

    def allow(self):
        super().allow()
        self.allow_users({0})

    def allow_users(self, uids):
        self.polkit.AddMethod("org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
                              "(sa{sv})sa{ss}us", "(bba{ss})",
                              f"USERS = {set(uids)!r}\n" + CHECK_CODE)

    def close(self):
        super().close()
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture
def env(tmp_path, pcsc_bed):
    e = SystemEnv(tmp_path, pcsc_bed)
    yield e
    e.close()


def client(env, cert, *args, user=(), timeout=120):
    """renew_client.py (as another user with user=NOBODY); its JSON."""
    proc = subprocess.run([*user, "/usr/bin/python3", str(CLIENT), env.bus.address, cert, *args],
                          capture_output=True, text=True, timeout=timeout, cwd="/",
                          env={"PATH": os.environ["PATH"], "HOME": "/"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def agent_only(env, cert, user=()):
    """A PIN agent that answers nothing and reports, once cert's renewal
    finished, the requests it was sent."""
    proc = subprocess.Popen([*user, "/usr/bin/python3", str(CLIENT), env.bus.address, cert, "--agent-only",
                             "--hang"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            env={"PATH": os.environ["PATH"], "HOME": "/"})
    assert proc.stderr.readline().strip() == "ready"
    return proc


def sentence(message):
    """A capital (or a path the sentence is about) first, a full stop last."""
    return (message[:1].isupper() or message[:1] == "/") and message.rstrip().endswith(".")


# Run as nobody: one method call, prints the error's name and message.
NOBODY_CALL = """
import sys, dbus
conn = dbus.bus.BusConnection(sys.argv[1])
try:
    getattr(conn.get_object(sys.argv[2], sys.argv[3]), sys.argv[5])(*sys.argv[6:], dbus_interface=sys.argv[4])
    print("ok")
except dbus.DBusException as e:
    print(e.get_dbus_name()); print(e.get_dbus_message())
"""


def call_as_nobody(env, method, *args):
    p = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", NOBODY_CALL, env.bus.address, BUS_NAME, PATH, MANAGER,
                        method, *args], capture_output=True, text=True, timeout=60, cwd="/",
                       env={"PATH": os.environ["PATH"], "HOME": "/"})
    assert p.returncode == 0, p.stderr
    return p.stdout.rstrip("\n").split("\n", 1)


def refused(res, name):
    assert not res["ok"] and res["error"] == ERR + name, res
    assert sentence(res["message"]), res["message"]


def approved_key(env, name="card"):
    state, pem = env.key(name=name)
    order = env.portal.approved_order(pem, "--rekey", "no")
    return state, order


def token_at_rest(env, cert):
    token = env.props(cert, CERT)["Token"]
    props = wait_for("the token at rest", lambda: (p := env.props(token, TOKEN))["State"] not in
                     ("checking", "awaiting-pin", "renewing") and p, 20)
    assert props["State"] in ("idle", "expiring", "expired", "renewal-available", "renewed"), dict(props)
    return props


def test_user_outside_the_active_session_is_refused(env):
    state, order = approved_key(env)
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        # Root (the active session) passes polkit: its agent is asked.
        res = client(env, cert, "--cancel")
        refused(res, "Cancelled")
        assert len(res["requests"]) == 1
        # nobody, with an agent of their own, is refused before any PIN.
        res = client(env, cert, user=NOBODY)
        refused(res, "NotAuthorized")
        assert res["requests"] == [] and res["finished"] == [], res
        assert "org.keyrenew.renew" in res["message"]
        # Nor may nobody cancel a renewal they did not start.
        root = subprocess.Popen(["/usr/bin/python3", str(CLIENT), env.bus.address, cert, "--hang"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        token = env.props(cert, CERT)["Token"]
        wait_for("awaiting-pin", lambda: env.props(token, TOKEN)["State"] == "awaiting-pin", 20)
        name, message = call_as_nobody(env, "Cancel", cert)
        assert name == ERR + "NotAuthorized" and sentence(message), (name, message)
        assert env.props(token, TOKEN)["State"] == "awaiting-pin"
        env.bus.conn.get_object(BUS_NAME, PATH).Cancel(dbus.ObjectPath(cert), dbus_interface=MANAGER)
        out, err = root.communicate(timeout=30)
        refused(json.loads(out), "Cancelled")
        # Only reads are open to all: nobody's Refresh works.
        assert call_as_nobody(env, "Refresh") == ["ok"]
        assert order_state(env, order) == "approved" and not env.portal.certs_for_order(order)
        assert show(state)["pin"]["retries_left"] == 3
        assert not list(env.state_dir.glob("renewal-*.journal"))
        assert token_at_rest(env, cert)["State"] == "renewal-available"
    finally:
        env.bed.remove(card.index)


def test_an_agent_never_sees_another_users_pin_request(env):
    env.allow_users({0, 65534})
    state, order = approved_key(env)
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        roots_agent = agent_only(env, cert)
        # nobody has no agent: root's is not theirs.
        res = client(env, cert, "--no-agent", user=NOBODY)
        refused(res, "NoAgent")
        # nobody with their own agent: asked there, and cancels.
        res = client(env, cert, "--cancel", user=NOBODY)
        refused(res, "Cancelled")
        assert len(res["requests"]) == 1 and res["requests"][0]["TokenSerial"] == str(serial_of(state)), res
        out, err = roots_agent.communicate(timeout=30)
        seen = json.loads(out)
        assert seen["requests"] == [] and seen["finished"][0][0] == "cancelled", seen
        assert order_state(env, order) == "approved"
        token_at_rest(env, cert)
    finally:
        env.bed.remove(card.index)


def call(env, path, interface, method, signature=None, *args, timeout=60):
    """A raw method call; returns (error name, message) or (None, reply)."""
    msg = dbus.lowlevel.MethodCallMessage(BUS_NAME, path, interface, method)
    if signature:
        msg.append(*args, signature=signature)
    try:
        reply = env.bus.conn.send_message_with_reply_and_block(msg, timeout)
        return None, reply.get_args_list()
    except dbus.DBusException as e:
        return e.get_dbus_name(), e.get_dbus_message()


def test_malformed_arguments(env):
    state, order = approved_key(env)
    d = env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        token = str(env.props(cert, CERT)["Token"])
        # 4 MiB; object paths up to sd-bus's limit of 64 KiB.
        huge = "x" * (4 << 20)
        long_path = "/" + "/".join(["abcdefghijklmnopqrstuvwxyz012345678"] * 1800)
        huge_path = "/" + huge
        cases = [
            # Wrong types: sd-bus checks the signature.
            ((PATH, MANAGER, "Renew", "sa{sv}", cert, {}), INVALID_ARGS),
            ((PATH, MANAGER, "Renew", "o", cert), INVALID_ARGS),
            ((PATH, MANAGER, "Renew", "oa{ss}", cert, {"AcceptKeyLoss": "yes"}), INVALID_ARGS),
            ((PATH, MANAGER, "GetToken", "u", 42), INVALID_ARGS),
            ((PATH, MANAGER, "RegisterAgent", "s", "/agent"), INVALID_ARGS),
            # Options: unknown, or of the wrong type.
            ((PATH, MANAGER, "Renew", "oa{sv}", cert, {"Force": dbus.Boolean(True)}), INVALID_ARGS),
            ((PATH, MANAGER, "Renew", "oa{sv}", cert, {"AcceptKeyLoss": "yes"}), INVALID_ARGS),
            ((PATH, MANAGER, "Renew", "oa{sv}", cert, {"AcceptKeyLoss": dbus.UInt32(1)}), INVALID_ARGS),
            # Paths that are not certificates.
            ((PATH, MANAGER, "Renew", "oa{sv}", PATH, {}), ERR + "NoSuchCertificate"),
            ((PATH, MANAGER, "Renew", "oa{sv}", token, {}), ERR + "NoSuchCertificate"),
            ((PATH, MANAGER, "Renew", "oa{sv}", cert + "/x", {}), ERR + "NoSuchCertificate"),
            ((PATH, MANAGER, "Renew", "oa{sv}", "/", {}), ERR + "NoSuchCertificate"),
            ((PATH, MANAGER, "Cancel", "o", token), ERR + "NoRenewal"),
            ((PATH, MANAGER, "Cancel", "o", cert), ERR + "NoRenewal"),
            ((PATH, MANAGER, "UnregisterAgent", "o", "/never/registered"), ERR + "NoSuchAgent"),
            # Huge strings, long paths: refused, and not quoted whole.
            ((PATH, MANAGER, "GetToken", "s", huge), ERR + "NoSuchToken"),
            ((PATH, MANAGER, "GetToken", "s", "密钥" * 100000), ERR + "NoSuchToken"),
            ((PATH, MANAGER, "Renew", "oa{sv}", cert, {huge: dbus.Boolean(True)}), INVALID_ARGS),
            ((PATH, MANAGER, "Renew", "oa{sv}", long_path, {}), ERR + "NoSuchCertificate"),
            ((PATH, MANAGER, "Cancel", "o", long_path), ERR + "NoRenewal"),
            ((PATH, MANAGER, "UnregisterAgent", "o", long_path), ERR + "NoSuchAgent"),
            # Longer paths: sd-bus refuses the message itself.
            ((PATH, MANAGER, "Renew", "oa{sv}", huge_path, {}), INCONSISTENT),
            ((PATH, MANAGER, "RegisterAgent", "o", huge_path), INCONSISTENT),
        ]
        failures = []
        for (path, iface, method, sig, *args), want in cases:
            name, message = call(env, path, iface, method, sig, *args)
            shown = f"{method}({sig}: {str(args)[:80]})"
            if name != want:
                failures.append(f"{shown}: {name} {str(message)[:200]!r}, expected {want}")
            elif name.startswith(ERR) and not sentence(message):
                failures.append(f"{shown}: {name} {message[:200]!r} is not a sentence")
            elif len(message) > 200:
                failures.append(f"{shown}: a message of {len(message)} characters")
        assert not failures, "\n".join(failures)
        # A long agent path is a path like any other: registered, then gone.
        assert call(env, PATH, MANAGER, "RegisterAgent", "o", long_path)[0] is None
        assert call(env, PATH, MANAGER, "UnregisterAgent", "o", long_path)[0] is None
        # None of it touched the token, and keyrenewd is as it was.
        assert d.proc.poll() is None
        props = token_at_rest(env, cert)
        assert (props["State"], props["RenewalStep"]) == ("renewal-available", "")
        res = client(env, cert)
        assert res["ok"], res
        assert order_state(env, order) == "installed"
        print(f"\nmalformed arguments: {len(cases) + 2} calls, each refused with the expected error")
    finally:
        env.bed.remove(card.index)


def test_client_dies_while_the_pin_prompt_is_open(env):
    state, order = approved_key(env)
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        token = env.props(cert, CERT)["Token"]
        watcher = agent_only(env, cert, user=NOBODY)
        proc = subprocess.Popen(["/usr/bin/python3", str(CLIENT), env.bus.address, cert, "--hang"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for("awaiting-pin", lambda: env.props(token, TOKEN)["State"] == "awaiting-pin", 20)
        proc.kill()
        proc.communicate(timeout=30)
        # nobody's agent sees the renewal end, without a request of its own.
        out, err = watcher.communicate(timeout=30)
        seen = json.loads(out)
        assert seen["requests"] == [], seen
        (outcome, message), = seen["finished"]
        assert outcome == "cancelled" and sentence(message), seen
        props = token_at_rest(env, cert)
        assert (props["State"], props["RenewalStep"]) == ("renewal-available", "cancelled"), dict(props)
        assert not list(env.state_dir.glob("renewal-*.journal")), "nothing began: no journal"
        assert order_state(env, order) == "approved" and not env.portal.certs_for_order(order)
        assert show(state)["pin"]["retries_left"] == 3
        hist = env.bus.conn.get_object(BUS_NAME, PATH).GetHistory(dbus_interface=MANAGER)
        assert list(hist) == [], hist
        # The user tries again: it works.
        res = client(env, cert)
        assert res["ok"], res
    finally:
        env.bed.remove(card.index)
