# SPDX-License-Identifier: GPL-2.0-or-later
"""A renewal interrupted at every step, then resumed as a user would.

A reference renewal tells which APDUs the daemon sends (a re-key has
every step: new key in a retired slot, CMP, write, read back, confirm,
move into 9a; a same-key renewal writes over the old certificate). Then, for the first APDU of each run of the same
instruction (each step of the transaction), a fresh key and order are
renewed with one fault:

  kill  the key freezes before answering that APDU (keyrenew-vcard
        --freeze-after), keyrenewd is killed with SIGKILL, the key is
        pulled out; then the key goes back in and keyrenewd starts again;
  pull  the key vanishes right before that APDU (--vanish-after); then it
        goes back in.

Then `Renew` again, with the PIN once, must finish the renewal: the key
signs against the certificate in 9a (yubico-piv-tool test-signature), the
portal issued exactly one certificate for the order and installed it, the
old certificate is on the CRL, no journal is left, and the PIN's tries are
all there. The counts (cases tried, survived) are printed. KEYRENEW_FAULT_EVERY_APDU=1
makes it every APDU of the renewal rather than every step (a longer run).
Needs root."""

import os
import subprocess

import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import DEFAULT_PIN, run, show, ykpiv
from test_renewal import CLIENT, Env, order_state, serial_of

REKEY_STEPS = None


def renew_ok(env, cert, card):
    res = env.renew(cert)
    assert res["ok"], res
    assert len(res["requests"]) == 1, res
    return res


def any_cert(env, state):
    return env.cert_path(serial_of(state), state=None)


def check_renewed(env, state, card, order, old_pem):
    out = env.tmp / f"{card.index}-read.pem"
    ykpiv(env.bed, "-a", "read-certificate", "-s", "9a", "-o", out, reader=card.reader)
    proc = ykpiv(env.bed, "-a", "verify-pin", "-P", DEFAULT_PIN, "-a", "test-signature", "-s", "9a", "-i", out,
                 reader=card.reader)
    assert "Successful ECDSA verification" in proc.stdout + proc.stderr
    (issued,) = env.portal.certs_for_order(order)
    assert issued[1] == 0, "the new certificate must not be revoked"
    assert run(["openssl", "x509", "-in", out, "-noout", "-serial"]).stdout.split("=")[1].strip().lower() \
        .lstrip("0") == issued[0].lower().lstrip("0")
    assert order_state(env, order) == "installed"
    old_serial = run(["openssl", "x509", "-in", old_pem, "-noout", "-serial"]).stdout.split("=")[1].strip()
    assert old_serial.upper() in env.portal.crl_text("ec").upper()
    assert not list(env.state_dir.glob("renewal-*.journal"))
    assert show(state)["pin"]["retries_left"] == 3


def reference_steps(env, rekey):
    """The renewal's APDUs (number relative to its start, INS), and the
    number the daemon's first read of such a key takes."""
    state, old_pem = env.key(name="reference")
    order = env.portal.approved_order(old_pem, "--rekey", rekey)
    card = env.bed.insert(state)
    cert = env.cert_path(serial_of(state))
    before = len(card.apdus())
    renew_ok(env, cert, card)
    wait_for("the read after the renewal", lambda: env.props(cert_token(env, state), "org.keyrenew.KeyRenew1.Token")
             ["State"] == "renewed")
    apdus = card.apdus()
    env.bed.remove(card.index)
    # The read after the renewal starts with SELECT (the card was reset).
    renewal = apdus[before:]
    renewal = renewal[:[a["ins"] for a in renewal].index("A4")]
    # Every APDU with KEYRENEW_FAULT_EVERY_APDU=1 (the long run); else the
    # first of each run of one instruction: each step of the transaction.
    every = os.environ.get("KEYRENEW_FAULT_EVERY_APDU") == "1"
    steps, last = [], None
    for i, a in enumerate(renewal, start=1):
        if every or a["ins"] != last:
            steps.append((i, a["ins"]))
        last = a["ins"]
    assert order_state(env, order) == "installed"
    return before, steps


def cert_token(env, state):
    return env.props(any_cert(env, state), "org.keyrenew.KeyRenew1.Certificate")["Token"]


@pytest.fixture
def matrix_env(tmp_path, pcsc_bed):
    e = Env(tmp_path, pcsc_bed)
    e.start()
    yield e
    e.close()


def one_case(env, mode, rekey, read_apdus, k, n):
    state, old_pem = env.key(name=f"{mode}{k}-{n}")
    order = env.portal.approved_order(old_pem, "--rekey", rekey)
    at = read_apdus + k - 1  # the last APDU answered
    env.start()
    if mode == "kill":
        card = env.bed.insert(state, freeze_after=at)
    else:
        card = env.bed.insert(state, vanish_after=at)
    cert = env.cert_path(serial_of(state))
    if mode == "kill":
        client = subprocess.Popen(["/usr/bin/python3", str(CLIENT), env.bus.address, cert],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(f"the key to freeze after APDU {at}", lambda: f"frozen after {at}" in card.output(), 30)
        env.daemon.kill()
        client.communicate(timeout=30)
        env.bed.remove(card.index)
        card = env.bed.insert(state)
        env.start()
    else:
        res = env.renew(cert)
        assert not res["ok"], res
        assert card.wait_exit() == 3
        env.bed.remove(card.index)
        card = env.bed.insert(state)
    last = card.apdus()
    # Renew the 9a certificate, whichever it is now: the journal resumes.
    renew_ok(env, any_cert(env, state), card)
    check_renewed(env, state, card, order, old_pem)
    env.bed.remove(card.index)
    return last


@pytest.mark.parametrize("mode,rekey", [("kill", "yes"), ("pull", "yes"), ("kill", "no")])
def test_interrupted_at_every_step_then_resumed(matrix_env, mode, rekey):
    read_apdus, steps = reference_steps(matrix_env, rekey)
    assert [ins for _, ins in steps][:2] == ["20", "F7"], steps
    # A re-key moves the new key into 9a; a same-key renewal makes none.
    assert ("F6" in [ins for _, ins in steps]) == (rekey == "yes"), steps
    assert ("47" in [ins for _, ins in steps]) == (rekey == "yes"), steps
    tried, survived, failures = 0, 0, []
    for n, (k, ins) in enumerate(steps):
        if mode == "pull" and k == 1:
            continue  # nothing of the renewal happened yet: plain TokenAbsent
        tried += 1
        try:
            one_case(matrix_env, mode, rekey, read_apdus, k, n)
            survived += 1
        except AssertionError as e:
            failures.append(f"{mode} before renewal APDU {k} (INS {ins}): {e}")
            for index in list(matrix_env.bed.cards):
                matrix_env.bed.remove(index)
    print(f"\n{mode}, rekey {rekey}: {tried} cases tried, {survived} survived")
    assert not failures, "\n".join(failures)


PORTAL_FAULTS = [(at, kind) for at in ("kur", "certconf") for kind in ("500", "drop", "truncated", "garbage")]


def test_portal_failing_at_each_message_then_resumed(matrix_env):
    """The portal fails the key update request or the confirmation: a 500
    before it does anything, or it does the work and the answer is lost
    (no answer, half of it, not a PKIMessage). The renewal stops without
    harm; the next Renew (the portal healthy again) finishes it with the
    same certificate. The old certificate is revoked only once the new one
    is on the key and confirmed."""
    env = matrix_env
    tried, survived, failures = 0, 0, []
    for n, (at, kind) in enumerate(PORTAL_FAULTS):
        tried += 1
        try:
            state, old_pem = env.key(name=f"portal{n}")
            order = env.portal.approved_order(old_pem, "--rekey", "yes")
            env.start()
            card = env.bed.insert(state)
            cert = env.cert_path(serial_of(state))
            env.portal.admin("cmp-fault", "set", "--at", at, "--kind", kind, "--count", "1")
            res = env.renew(cert)
            if res["ok"]:
                # libcurl sends a request again on a fresh connection when a
                # reused one closes without an answer; the portal answers a
                # repeated message with the answer it stored for it.
                assert kind == "drop" and at == "certconf", res
                check_renewed(env, state, card, order, old_pem)
                env.bed.remove(card.index)
                survived += 1
                continue
            assert res["error"] == "org.keyrenew.KeyRenew1.Error.PortalError", res
            assert "renew again later" in res["message"], res["message"]
            old_serial = run(["openssl", "x509", "-in", old_pem, "-noout", "-serial"]).stdout.split("=")[1].strip()
            revoked = old_serial.upper() in env.portal.crl_text("ec").upper()
            # Revoked only after the confirmation reached the portal.
            assert revoked == (at == "certconf" and kind != "500"), (at, kind, revoked)
            assert list(env.state_dir.glob("renewal-*.journal")), "the renewal must stay resumable"
            renew_ok(env, any_cert(env, state), card)
            check_renewed(env, state, card, order, old_pem)
            env.bed.remove(card.index)
            survived += 1
        except AssertionError as e:
            failures.append(f"portal {kind} at {at}: {e}")
            env.portal.admin("cmp-fault", "clear")
            for index in list(env.bed.cards):
                env.bed.remove(index)
    print(f"\nportal faults: {tried} cases tried, {survived} survived")
    assert not failures, "\n".join(failures)
