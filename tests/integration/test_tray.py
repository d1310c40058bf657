# SPDX-License-Identifier: GPL-2.0-or-later
"""keyrenew-tray against the real keyrenewd: the daemon, the reference
portal, a virtual key in the private pcscd and dbusmock's polkitd on a
private "system" bus (as test_renewal.py), and, on a private session bus,
python-dbusmock's notification daemon, whose buttons the tests press by
sending ActionInvoked. The PIN dialog is tray_pinentry.py, a scripted
pinentry that logs what it was asked. Every story runs in English and in
Simplified Chinese. Needs root (the private pcscd)."""

import html
import json
import os
import pathlib
import subprocess
import time

import dbus
import pytest

from keyrenew_testbed import wait_for
from keyrenew_testbed.clients import show
from test_daemon_core import BUILD, PrivateBus
from test_renewal import Env, order_state, serial_of
from test_renewal_faults import reference_steps

HERE = pathlib.Path(__file__).resolve().parent
TRAY = BUILD / "tray" / "keyrenew-tray"
PINENTRY = HERE / "tray_pinentry.py"
NOTIFY = "org.freedesktop.Notifications"
NOTIFY_PATH = "/org/freedesktop/Notifications"
WITH_ACTIONS = "body actions body-markup icon-static persistence"

# What the person reads, in each language: the catalogue must cover
# every step (a missing translation shows English and fails here).
TEXT = {
    "en": {
        "approved": "Your certificate can be renewed",
        "update": "Update now",
        "later": "Later",
        "insert": "Insert your key to finish the renewal",
        "renewing": "Renewing the certificate",
        "keep": "Do not remove the key.",
        "renewed": "Certificate renewed",
        "valid": "valid until",
        "wrong": "Wrong PIN",
        "retry": "Try again",
        "tries3": "3 tries left before the PIN is blocked.",
        "tries2": "2 tries left before the PIN is blocked.",
        "prompt": "PIN:",
        "rejected": "Renewal rejected",
        "review": "Renewal under review",
        "open": "Open the order page",
        "interrupted": "Plug the key in again",
        "dialog": "Renew the certificate of",
        "resume": "This finishes a renewal that was interrupted.",
        "expires": "Certificate expires in {} days",
        "apply": "Apply for its renewal on your CA's portal.",
        "failed": "Renewal failed",
        "later-again": "Try again later.",
        "too-long": "A PIN has 1 to 8 characters: nothing was sent to the key.",
        "menu-approved": "renewal approved: click to update now",
        "menu-days": "days left",
        "no-buttons": "A PIN dialog opens now",
        "title": "Certificate renewal",
    },
    "zh_CN": {
        "approved": "您的证书可以续期了",
        "update": "立即更新",
        "later": "稍后",
        "insert": "请插入 UKey 以完成续期",
        "renewing": "正在续期证书",
        "keep": "请勿拔出 UKey。",
        "renewed": "证书已续期",
        "valid": "有效期至",
        "wrong": "PIN 错误",
        "retry": "重试",
        "tries3": "PIN 锁定前还剩 3 次尝试机会。",
        "tries2": "PIN 锁定前还剩 2 次尝试机会。",
        "prompt": "PIN：",
        "rejected": "续期申请被驳回",
        "review": "续期申请审核中",
        "open": "打开订单页面",
        "interrupted": "请重新插入 UKey",
        "dialog": "续期证书：",
        "resume": "这将完成一次曾被中断的续期。",
        "expires": "证书将在 {} 天后到期",
        "apply": "请在 CA 的网站上申请续期。",
        "failed": "续期失败",
        "later-again": "请稍后重试。",
        "too-long": "PIN 为 1 到 8 个字符：没有向密钥发送任何内容。",
        "menu-approved": "续期已批准：点击立即更新",
        "menu-days": "天",
        "no-buttons": "现在会弹出 PIN 对话框",
        "title": "证书续期",
    },
}
LANGS = list(TEXT)


class Desktop:
    """The session side: a session bus with the mock notification daemon,
    the scripted pinentry, a fake xdg-open, and keyrenew-tray itself."""

    def __init__(self, env, lang, caps=WITH_ACTIONS):
        self.env = env
        self.lang = lang
        self.t = TEXT[lang]
        self.dir = env.tmp / "desktop"
        self.dir.mkdir()
        self.session = PrivateBus(self.dir)
        self.mock = subprocess.Popen(
            ["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon", "-p",
             json.dumps({"capabilities": caps})],
            env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.session.address), stdout=subprocess.DEVNULL)
        wait_for("the mock notification daemon", lambda: self.session.conn.name_has_owner(NOTIFY))
        self.notifications = dbus.Interface(self.session.conn.get_object(NOTIFY, NOTIFY_PATH),
                                            "org.freedesktop.DBus.Mock")
        self.pin_log = self.dir / "pinentry.log"
        self.pin_log.touch()
        self.pin_script = self.dir / "pinentry.script"
        self.pin_script.write_text("")
        self.opened = self.dir / "xdg-open.log"
        bindir = self.dir / "bin"
        bindir.mkdir()
        (bindir / "xdg-open").write_text(f"#!/bin/sh\necho \"$@\" >> '{self.opened}'\n")
        (bindir / "xdg-open").chmod(0o755)
        self.tray = None
        self.tray_env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.session.address,
                             TRAY_PINENTRY_LOG=str(self.pin_log), TRAY_PINENTRY_SCRIPT=str(self.pin_script),
                             PATH=f"{bindir}:{os.environ['PATH']}", LANG="C.UTF-8", LC_ALL="",
                             LANGUAGE="C" if lang == "en" else lang, KEYRENEW_LOCALEDIR=str(BUILD / "po"))
        self.tray_env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        gnupg = self.dir / "gnupg"
        gnupg.mkdir(mode=0o700)
        (gnupg / "gpg-agent.conf").write_text(f"# the user's choice\npinentry-program {PINENTRY}\n")
        self.tray_env["GNUPGHOME"] = str(gnupg)
        # Where the tray remembers the expiry warnings shown.
        self.tray_env["XDG_STATE_HOME"] = str(self.dir / "state")

    def start(self, *args, pinentry_option=True):
        """pinentry_option False: the tray finds the scripted pinentry in
        $GNUPGHOME/gpg-agent.conf, as the user's choice."""
        self.tray_log = open(self.dir / "tray.log", "ab")
        # e.g. KEYRENEW_TRAY_WRAPPER="valgrind --error-exitcode=1 --leak-check=full"
        wrapper = os.environ.get("KEYRENEW_TRAY_WRAPPER", "").split()
        option = ["--pinentry", PINENTRY] if pinentry_option else []
        self.tray = subprocess.Popen([*wrapper, TRAY, "--bus", self.env.bus.address, *option, *args],
                                     env=self.tray_env, stdout=self.tray_log, stderr=self.tray_log)
        return self

    def answers(self, *lines):
        self.pin_script.write_text("".join(l + "\n" for l in lines))

    def notes(self):
        """Every Notify call: dicts of summary, body (markup unescaped: the
        server has body-markup), actions {key: label},
        hints, replaces, and the id the mock gave."""
        out = []
        next_id = 1
        for _, args in self.notifications.GetMethodCalls("Notify"):
            app, replaces, icon, summary, body, actions, hints, timeout = args
            nid = int(replaces) or next_id
            if not int(replaces):
                next_id += 1
            acts = [str(a) for a in actions]
            out.append({"id": nid, "replaces": int(replaces), "app": str(app), "summary": str(summary),
                        "body": html.unescape(str(body)), "actions": dict(zip(acts[::2], acts[1::2])),
                        "hints": {str(k): v for k, v in hints.items()}, "timeout": int(timeout)})
        return out

    def wait_note(self, summary, after=0, timeout=30):
        """The first notification from number after on whose summary is
        summary; returns (index, note)."""
        def find():
            for i, n in enumerate(self.notes()[after:], after):
                if n["summary"] == summary:
                    return i, n
            return None
        return wait_for(f"a notification {summary!r}; got {[n['summary'] for n in self.notes()]}", find,
                        timeout)

    def click(self, note, action):
        assert action in note["actions"], note
        self.notifications.EmitSignal(NOTIFY, "ActionInvoked", "us", [dbus.UInt32(note["id"]), action])

    def closed(self):
        return [int(args[0]) for _, args in self.notifications.GetMethodCalls("CloseNotification")]

    def dialogs(self):
        return [json.loads(l) for l in self.pin_log.read_text().splitlines()]

    def wait_dialogs(self, n, timeout=30):
        return wait_for(f"{n} PIN dialogs", lambda: self.dialogs() if len(self.dialogs()) >= n else None,
                        timeout)

    def output(self):
        return (self.dir / "tray.log").read_text(errors="replace")

    def stop(self):
        status = None
        if self.tray:
            self.tray.terminate()
            status = self.tray.wait(timeout=10)
            self.tray_log.close()
        self.mock.terminate()
        self.mock.wait(timeout=10)
        self.session.stop()
        return status


@pytest.fixture
def env(tmp_path, pcsc_bed):
    e = Env(tmp_path, pcsc_bed)
    yield e
    e.close()


@pytest.fixture(params=LANGS)
def desktop(request, env):
    d = Desktop(env, request.param)
    yield d
    status = d.stop()
    assert status == 0, d.output()


def one_notification(d):
    """Notifications replace each other instead of piling up: never two
    of ours on screen at once."""
    calls = sorted(d.notifications.GetCalls(), key=lambda c: c[0])
    open_ids, next_id, shown = set(), 1, 0
    for _, method, args in calls:
        if method == "Notify":
            shown += 1
            assert str(args[0]) == "keyrenew-tray"
            nid = int(args[1])
            if not nid:
                nid, next_id = next_id, next_id + 1
            open_ids.add(nid)
            assert len(open_ids) == 1, f"notification {nid} piles up on {open_ids - {nid}}"
        elif method == "CloseNotification":
            open_ids.discard(int(args[0]))
    assert shown, "no notification at all"


def approved_key(env, **kw):
    state, old_pem = env.key(**kw)
    order = env.portal.approved_order(old_pem, "--rekey", "no")
    return state, old_pem, order


def test_update_now_pin_progress_success(env, desktop):
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.answers("pin 123456")
    d.start()
    card = env.bed.insert(state)
    try:
        i, note = d.wait_note(d.t["approved"])
        assert order in note["body"]
        assert note["actions"].get("update") == d.t["update"]
        assert note["actions"].get("later") == d.t["later"]
        assert note["timeout"] == 0, "a question stays until answered"
        d.click(note, "update")
        j, done = d.wait_note(d.t["renewed"], after=i, timeout=90)
        assert d.t["valid"] in done["body"]
        # The PIN dialog: which key, which certificate, the tries left.
        (dialog,) = d.dialogs()
        assert dialog["answer"] == "pin"
        assert d.t["dialog"] in dialog["SETDESC"] and "card" in dialog["SETDESC"]
        assert str(serial_of(state)) in dialog["SETDESC"]
        assert d.t["tries3"] in dialog["SETDESC"]
        assert dialog["SETPROMPT"] == d.t["prompt"]
        assert "SETERROR" not in dialog
        # Progress in between, on the same notification, with the warning.
        progress = [n for n in d.notes()[i + 1:j] if n["summary"] == d.t["renewing"]]
        assert progress and all(d.t["keep"] in n["body"] for n in progress)
        values = [int(n["hints"]["value"]) for n in progress]
        assert values == sorted(values) and values[-1] >= 50, values
        one_notification(d)
        assert order_state(env, order) == "installed"
        assert show(state)["pin"]["retries_left"] == 3
        # Nothing more to say: no prompt comes back for the renewed key.
        time.sleep(2)
        assert d.notes()[-1]["summary"] == d.t["renewed"]
    finally:
        env.bed.remove(card.index)


def test_wrong_pin_then_retry(env, desktop):
    """A PIN too long is refused before it reaches the key (no try spent);
    a wrong one costs a try and is never retried by itself; Try again asks
    again, showing why. The dialog is the one gpg-agent.conf names."""
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.answers("pin 123456789", "pin 654321", "pin 123456")
    d.start(pinentry_option=False)
    card = env.bed.insert(state)
    try:
        i, note = d.wait_note(d.t["approved"])
        d.click(note, "update")
        i, wrong = d.wait_note(d.t["wrong"], after=i, timeout=60)
        assert "2" in wrong["body"], wrong
        assert wrong["actions"].get("retry") == d.t["retry"]
        assert show(state)["pin"]["retries_left"] == 2
        assert order_state(env, order) == "approved"
        # Never asked again by itself: the person chooses to try again.
        time.sleep(1)
        assert len(d.dialogs()) == 2
        d.click(wrong, "retry")
        d.wait_note(d.t["renewed"], after=i, timeout=90)
        too_long, first, second = d.wait_dialogs(3)
        assert d.t["tries3"] in too_long["SETDESC"] and "SETERROR" not in too_long
        assert first["SETERROR"] == d.t["too-long"]
        assert d.t["tries3"] in first["SETDESC"]
        assert d.t["tries2"] in second["SETDESC"]
        assert second.get("SETERROR"), "the dialog must say why the last PIN failed"
        assert order_state(env, order) == "installed"
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_cancel_at_the_pin_dialog(env, desktop):
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.answers("cancel")
    d.start("--snooze", "10s")
    card = env.bed.insert(state)
    try:
        i, note = d.wait_note(d.t["approved"])
        d.click(note, "update")
        d.wait_dialogs(1)
        wait_for("the notification withdrawn", lambda: note["id"] in d.closed())
        time.sleep(2)
        # Cancelled cleanly: nothing on the card, the portal or the screen.
        assert order_state(env, order) == "approved"
        assert not env.portal.certs_for_order(order)
        assert show(state)["pin"]["retries_left"] == 3
        assert all(n["summary"] != d.t["wrong"] for n in d.notes())
        summaries = [n["summary"] for n in d.notes()[i + 1:]]
        assert set(summaries) <= {d.t["renewing"]}, summaries
        # "Later" is over after the snooze (ten seconds): the prompt again.
        d.wait_note(d.t["approved"], after=i + 1, timeout=75)
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_later_snoozes(env, desktop):
    """"Later" keeps the prompt away for the snooze (20 s here): through the
    key pulled out and plugged in again, and through a new tray (the next
    login), which reads until when from $XDG_STATE_HOME."""
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.start("--snooze", "20s")
    card = env.bed.insert(state)
    try:
        i, note = d.wait_note(d.t["approved"])
        d.click(note, "later")
        later = time.monotonic()
        wait_for("the notification withdrawn", lambda: note["id"] in d.closed())
        # Pulled out and in again while snoozed: no nagging.
        env.bed.remove(card.index)
        card = env.bed.insert(state)
        time.sleep(3)
        assert len(d.notes()) == i + 1, d.notes()
        d.tray.terminate()
        assert d.tray.wait(timeout=10) == 0, d.output()
        d.start("--snooze", "20s")
        d.wait_note(d.t["approved"], after=i + 1, timeout=75)
        assert time.monotonic() - later >= 19, "the tray started again forgot the snooze"
        assert not d.dialogs()
    finally:
        env.bed.remove(card.index)


def test_snooze_in_the_file_no_longer_than_the_trays(env, desktop):
    """A snooze in the file longer than the tray's own --snooze (written
    by hand, or by a tray started with a longer one) holds for the tray's
    at most."""
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state))
        record = pathlib.Path(d.tray_env["XDG_STATE_HOME"]) / "keyrenew-tray" / "snoozed"
        record.parent.mkdir(parents=True)
        record.write_text(f"{cert} {int(time.time()) + 3600}\n")
        d.start("--snooze", "5s")
        started = time.monotonic()
        d.wait_note(d.t["approved"], timeout=60)
        assert time.monotonic() - started >= 4, "the snooze in the file was not kept"
    finally:
        env.bed.remove(card.index)


def test_key_not_inserted_then_inserted(env, desktop):
    d = desktop
    state, _, order = approved_key(env)
    # Seen once, then pulled out: keyrenewd remembers it.
    env.start()
    card = env.bed.insert(state)
    env.cert_path(serial_of(state))
    env.bed.remove(card.index)
    d.answers("pin 123456")
    d.start()
    i, note = d.wait_note(d.t["insert"])
    assert str(serial_of(state)) in note["body"]
    assert "update" not in note["actions"]
    card = env.bed.insert(state)
    try:
        j, prompt = d.wait_note(d.t["approved"], after=i)
        assert prompt["id"] == note["id"], "the prompt replaces the one before"
        d.click(prompt, "update")
        d.wait_note(d.t["renewed"], after=j, timeout=90)
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_key_pulled_at_the_pin_dialog(env, desktop):
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.answers("hang")
    d.start()
    card = env.bed.insert(state)
    i, note = d.wait_note(d.t["approved"])
    d.click(note, "update")
    (dialog,) = d.wait_dialogs(1)
    env.bed.remove(card.index)
    # keyrenewd withdraws the request: the dialog goes, the user is told.
    wait_for("the PIN dialog closed", lambda: not pathlib.Path(f"/proc/{dialog['pid']}").exists() or
             pathlib.Path(f"/proc/{dialog['pid']}/stat").read_text().split()[2] == "Z")
    wait_for("a notification about the pulled key",
             lambda: any(d.t["interrupted"] in n["body"] or n["summary"] == d.t["insert"]
                         for n in d.notes()[i + 1:]), 30)
    assert order_state(env, order) == "approved"
    one_notification(d)


@pytest.mark.parametrize("review", ["under-review", "rejected"])
def test_under_review_and_rejected(env, desktop, review):
    d = desktop
    state, old_pem = env.key()
    order = env.portal.order(old_pem, "--review")
    env.portal.admin("order", "pay", order)
    reason = "营业执照已过期 / business licence expired"
    if review == "rejected":
        env.portal.admin("order", "reject", order, "--reason", reason)
    env.start()
    card = env.bed.insert(state)
    try:
        env.cert_path(serial_of(state), state=review)
        d.start()
        _, note = d.wait_note(d.t["review" if review == "under-review" else "rejected"])
        assert order in note["body"]
        if review == "rejected":
            assert reason in note["body"]
        assert note["actions"].get("open") == d.t["open"]
        assert "update" not in note["actions"]
        d.click(note, "open")
        wait_for("xdg-open", lambda: d.opened.exists() and d.opened.read_text().strip())
        url = d.opened.read_text().strip()
        assert url.startswith("http") and order in url, url
        time.sleep(1)
        assert not d.dialogs()
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_without_buttons_the_pin_dialog_asks(env, tmp_path):
    """A notification server without actions (dbusmock's default): the
    text says what happens, the PIN dialog is the question, and its Cancel
    means Later."""
    d = Desktop(env, "en", caps="body body-markup")
    try:
        state, _, order = approved_key(env)
        env.start()
        d.answers("cancel", "pin 123456")
        d.start("--snooze", "10s")
        card = env.bed.insert(state)
        try:
            i, note = d.wait_note(d.t["approved"])
            assert d.t["no-buttons"] in note["body"] and not note["actions"]
            (dialog,) = d.wait_dialogs(1)
            assert dialog["SETCANCEL"] == d.t["later"]
            assert order_state(env, order) == "approved"
            d.wait_note(d.t["approved"], after=i + 1, timeout=75)
            d.wait_note(d.t["renewed"], after=i + 1, timeout=90)
            assert order_state(env, order) == "installed"
        finally:
            env.bed.remove(card.index)
    finally:
        assert d.stop() == 0, d.output()


def test_one_tray_per_session(env):
    """The unit and the autostart file may both start it: the second one
    leaves at once, so nothing shows twice."""
    d = Desktop(env, "en")
    try:
        env.start()
        d.start()
        wait_for("the first tray on the session bus", lambda: d.session.conn.name_has_owner("org.keyrenew.Tray"))
        second = subprocess.run([TRAY, "--bus", env.bus.address, "--pinentry", PINENTRY], env=d.tray_env,
                                capture_output=True, text=True, timeout=10)
        assert second.returncode == 0 and "already running" in second.stderr, second
        assert d.tray.poll() is None
    finally:
        assert d.stop() == 0, d.output()


def test_key_pulled_while_writing_then_resumed(env, desktop):
    """The key vanishes right before the new certificate is written; the
    tray says to plug it in again; once it is back, keyrenewd resumes the
    renewal by itself, the tray asks for the PIN (saying it finishes the
    interrupted renewal) and shows the result."""
    d = desktop
    env.start()
    read_apdus, steps = reference_steps(env, "no")
    put = next(i for i, ins in steps if ins == "DB")
    state, old_pem, order = approved_key(env, name="pulled")
    # A new keyrenewd asks the portal at once about a key it first sees.
    env.start()
    d.answers("pin 123456", "pin 123456")
    d.start()
    card = env.bed.insert(state, vanish_after=read_apdus + put - 1)
    i, note = d.wait_note(d.t["approved"])
    d.click(note, "update")
    _, told = wait_for("the tray saying to plug the key in again",
                       lambda: next(((k, n) for k, n in enumerate(d.notes()) if k > i and
                                     d.t["interrupted"] in n["body"]), None), 60)
    assert "retry" not in told["actions"]
    assert card.wait_exit() == 3
    env.bed.remove(card.index)
    card = env.bed.insert(state)
    try:
        d.wait_note(d.t["renewed"], after=i + 1, timeout=90)
        first, second = d.wait_dialogs(2)
        assert d.t["resume"] not in first["SETDESC"]
        assert d.t["resume"] in second["SETDESC"]
        assert order_state(env, order) == "installed"
        assert len(env.portal.certs_for_order(order)) == 1
        assert show(state)["pin"]["retries_left"] == 3
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_expiring_once_per_threshold(env, desktop):
    """No renewal ordered yet: the warning keyrenewd sends once per
    threshold, shown once; pulling the key and restarting the tray bring
    no second one."""
    d = desktop
    state, _ = env.key(days=10)
    env.start()
    d.start()
    card = env.bed.insert(state)
    try:
        days = env.props(env.cert_path(serial_of(state), state=None), "org.keyrenew.KeyRenew1.Certificate")["DaysLeft"]
        _, note = d.wait_note(d.t["expires"].format(int(days)))
        assert d.t["apply"] in note["body"] and str(serial_of(state)) in note["body"]
        env.bed.remove(card.index)
        card = env.bed.insert(state)
        d.tray.terminate()
        assert d.tray.wait(timeout=10) == 0
        d.start()
        time.sleep(3)
        assert len(d.notes()) == 1, d.notes()
    finally:
        env.bed.remove(card.index)


def test_portal_down_says_what_next(env, desktop):
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.answers("pin 123456")
    d.start()
    card = env.bed.insert(state)
    try:
        i, note = d.wait_note(d.t["approved"])
        env.portal.stop()
        d.click(note, "update")
        _, failed = d.wait_note(d.t["failed"], after=i, timeout=90)
        assert d.t["later-again"] in failed["body"]
        assert failed["actions"].get("retry") == d.t["retry"]
        assert order_state(env, order) == "approved"
        assert show(state)["pin"]["retries_left"] == 3
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_expiry_warned_while_nobody_was_logged_in(env, desktop):
    """keyrenewd warned before the tray ran (the user logs in later): the
    tray shows the warning when it starts, once; not again when it starts
    again."""
    d = desktop
    state, _ = env.key(days=5)
    env.start()
    card = env.bed.insert(state)
    try:
        cert = env.cert_path(serial_of(state), state=None)
        assert env.props(cert, "org.keyrenew.KeyRenew1.Certificate")["Status"] == "expiring"
        d.start()
        days = int(env.props(cert, "org.keyrenew.KeyRenew1.Certificate")["DaysLeft"])
        d.wait_note(d.t["expires"].format(days))
        assert (d.dir / "state" / "keyrenew-tray" / "warned").read_text().strip().endswith(" 7")
        d.tray.terminate()
        assert d.tray.wait(timeout=10) == 0
        d.start()
        time.sleep(3)
        assert len(d.notes()) == 1, d.notes()
    finally:
        env.bed.remove(card.index)


def test_status_icon_menu(env, desktop):
    """Where the desktop shows status icons (a StatusNotifierWatcher is on
    the session bus, here dbusmock's): the tray registers one whose menu
    lists the keys' certificates and their renewal state; clicking an
    approved renewal starts it."""
    d = desktop
    watcher = subprocess.Popen(
        ["/usr/bin/python3", "-m", "dbusmock", "org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher",
         "org.kde.StatusNotifierWatcher"],
        env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=d.session.address), stdout=subprocess.DEVNULL)
    try:
        wait_for("the mock watcher", lambda: d.session.conn.name_has_owner("org.kde.StatusNotifierWatcher"))
        mock = dbus.Interface(d.session.conn.get_object("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher"),
                              "org.freedesktop.DBus.Mock")
        mock.AddMethod("", "RegisterStatusNotifierItem", "s", "", "")
        state, _, order = approved_key(env)
        env.start()
        d.answers("pin 123456")
        d.start()
        card = env.bed.insert(state)
        try:
            calls = wait_for("the item registered", lambda: mock.GetMethodCalls("RegisterStatusNotifierItem"))
            service = str(calls[0][1][0])
            item = d.session.conn.get_object(service, "/StatusNotifierItem")
            menu = dbus.Interface(d.session.conn.get_object(service, "/MenuBar"), "com.canonical.dbusmenu")

            def approved_entry():
                _, (_, _, children) = menu.GetLayout(0, -1, dbus.Array([], signature="s"))
                for child in children:
                    cid, props, _ = child
                    if d.t["menu-approved"] in str(props["label"]):
                        return int(cid), str(props["label"]), bool(props["enabled"])
                return None
            cid, label, enabled = wait_for("the approved renewal in the menu", approved_entry, 30)
            assert f"{serial_of(state)}/9a" in label and "card" in label and enabled, label
            assert item.Get("org.kde.StatusNotifierItem", "Status", dbus_interface=dbus.PROPERTIES_IFACE) \
                == "NeedsAttention"
            i = len(d.notes())
            menu.Event(cid, "clicked", dbus.String("", variant_level=1), dbus.UInt32(0))
            d.wait_note(d.t["renewed"], after=i, timeout=90)
            assert order_state(env, order) == "installed"

            def renewed_entry():
                _, (_, _, children) = menu.GetLayout(0, -1, dbus.Array([], signature="s"))
                labels = [str(c[1]["label"]) for c in children]
                return labels if any(d.t["menu-days"] in l for l in labels) else None
            labels = wait_for("the renewed certificate in the menu", renewed_entry, 30)
            assert not any(d.t["menu-approved"] in l for l in labels), labels
        finally:
            env.bed.remove(card.index)
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_keyrenewd_restarts(env, desktop):
    """keyrenewd stops and starts again (an upgrade): the tray follows it,
    registers its agent again, does not prompt a second time for the same
    approval, and the prompt on screen still works."""
    d = desktop
    state, _, order = approved_key(env)
    env.start()
    d.answers("pin 123456")
    d.start()
    card = env.bed.insert(state)
    try:
        i, note = d.wait_note(d.t["approved"])
        env.start()
        env.cert_path(serial_of(state))
        time.sleep(2)
        assert [n["summary"] for n in d.notes()[i + 1:]] == [], d.notes()
        d.click(note, "update")
        d.wait_note(d.t["renewed"], after=i, timeout=90)
        assert order_state(env, order) == "installed"
        one_notification(d)
    finally:
        env.bed.remove(card.index)


def test_only_keyrenewd_gets_the_pin(env, desktop):
    """Another program on the system bus calling the tray's agent gets
    AccessDenied, and no PIN dialog opens."""
    d = desktop
    env.start()
    d.start()
    bus = env.bus.conn.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")

    def tray_name():
        for name in bus.ListNames(dbus_interface="org.freedesktop.DBus"):
            if name.startswith(":") and bus.GetConnectionUnixProcessID(
                    name, dbus_interface="org.freedesktop.DBus") == d.tray.pid:
                return str(name)
        return None
    name = wait_for("the tray on the system bus", tray_name)
    agent = dbus.Interface(env.bus.conn.get_object(name, "/org/keyrenew/tray/agent"),
                           "org.keyrenew.KeyRenew1.Agent")
    for call in (lambda: agent.RequestPin(dbus.ObjectPath("/org/keyrenew/KeyRenew1/token/x/cert/_39a"),
                                          dbus.Dictionary({}, signature="sv")),
                 lambda: agent.Cancel(dbus.ObjectPath("/org/keyrenew/KeyRenew1/token/x/cert/_39a"))):
        with pytest.raises(dbus.DBusException) as e:
            call()
        assert e.value.get_dbus_name() == "org.freedesktop.DBus.Error.AccessDenied"
    time.sleep(1)
    assert not d.dialogs()
