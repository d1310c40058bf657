# SPDX-License-Identifier: GPL-2.0-or-later
"""What a person really sees and does: keyrenew-tray (against the real
keyrenewd, portal and virtual key, as test_tray.py) on an Xvfb screen with
a real notification server, GNOME's notification-daemon. Its "Update now"
prompt is captured (xwd, netpbm) and cropped to the notification; then
clicked with the pointer, and the PIN typed into the dialog that opens, the
real pinentry-gtk-2 (captured too), with xdotool's XTEST events, as from a
mouse and a keyboard, finishes the renewal. In English and in Simplified
Chinese (a CJK font must be installed: setup.sh installs
fonts-wqy-microhei). The PNGs go to $KEYRENEW_SCREENSHOT_DIR when set
(docs/images/ holds the README's), else to the test's folder. Needs root
(the private pcscd)."""

import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from keyrenew_testbed import wait_for
from test_daemon_core import PrivateBus
from test_renewal import order_state
from test_tray import NOTIFY, NOTIFY_PATH, PINENTRY, TEXT, TRAY, approved_key, env  # noqa: F401 (fixture)

NOTIFICATION_DAEMON = "/usr/lib/notification-daemon/notification-daemon"
PINENTRY_GTK = "/usr/bin/pinentry-gtk-2"


class Screen:
    """Xvfb on a display number it picks itself (-displayfd)."""

    def __init__(self, tmp):
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x600x24", "-nolisten",
                                      "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                                     stderr=open(tmp / "xvfb.log", "wb"))
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        assert number.isdigit(), (tmp / "xvfb.log").read_text()
        self.display = f":{number}"
        self.tmp = tmp

    def grab(self, out, window="-root"):
        """The screen (or one window: "-id WID"), cropped to what is not
        black (the root window), as PNG in out; (width, height), or None
        when it is all black."""
        pnm = self.tmp / "screen.pnm"
        subprocess.run(f"xwd {window} -silent -display {self.display} | xwdtopnm > '{pnm}'", shell=True,
                       check=True, stderr=subprocess.DEVNULL)
        cropped = subprocess.run(["pnmcrop", "-black", pnm], capture_output=True)
        if cropped.returncode != 0 or not cropped.stdout:
            return None
        size = subprocess.run(["pnmfile"], input=cropped.stdout, capture_output=True, check=True).stdout.decode()
        png = subprocess.run(["pnmtopng"], input=cropped.stdout, capture_output=True, check=True).stdout
        out.write_bytes(png)
        # "stdin:\tPPM raw, 400 by 126  maxval 65535"
        width, _, height = size.split(",")[1].split()[:3]
        return int(width), int(height)

    def settled(self, out, window="-root"):
        """Grabs until three grabs in a row have the same size (a popup fades
        in); that size."""
        sizes = []

        def still():
            sizes.append(self.grab(out, window))
            time.sleep(0.5)
            return sizes[-1] if len(sizes) >= 3 and sizes[-1] and sizes[-1] == sizes[-2] == sizes[-3] else None
        return wait_for("the screen to settle", still, 30)

    def text_runs(self, window):
        """The runs of text (dark pixels on the light popup) in the lowest
        line of window: a notification's buttons. Their (x, y) centres in
        the window's coordinates, left to right; runs closer than 12 pixels
        are one (the words of one label)."""
        raw = subprocess.run(f"xwd -id {window} -silent -display {self.display} | xwdtopnm", shell=True,
                             check=True, capture_output=True).stdout
        header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", raw)
        assert header, raw[:20]
        width, height, maxval = (int(v) for v in header.groups())
        pixels, step = raw[header.end():], 6 if maxval > 255 else 3

        def dark(x, y):
            o = (y * width + x) * step
            return sum(pixels[o:o + step:step // 3]) < 3 * 110
        # Inside the border and the rounded corners, where the root shows.
        inner = range(10, width - 10)
        rows = {y for y in range(8, height - 8) if any(dark(x, y) for x in inner)}
        assert rows, "no text in the window"
        line = [max(rows)]
        while line[-1] - 1 in rows:
            line.append(line[-1] - 1)
        runs = []
        for x in (x for x in inner if any(dark(x, y) for y in line)):
            if runs and x - runs[-1][1] <= 12:
                runs[-1][1] = x
            else:
                runs.append([x, x])
        middle = (line[0] + line[-1]) // 2
        return [((a + b) // 2, middle) for a, b in runs]

    def xdotool(self, *args):
        return subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=self.display), capture_output=True,
                              text=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class RealDesktop:
    """A session in one language: the screen, a session bus, the real
    notification server, and keyrenew-tray once start() is called."""

    def __init__(self, env, lang):
        self.tmp = env.tmp / "screen"
        self.tmp.mkdir()
        self.env = env
        self.t = TEXT[lang]
        self.screen = self.session = self.server = self.tray = self.card = None
        try:
            self.screen = Screen(self.tmp)
            self.session = PrivateBus(self.tmp)
            self.desktop_env = dict(os.environ, DISPLAY=self.screen.display,
                                    DBUS_SESSION_BUS_ADDRESS=self.session.address, LANG="C.UTF-8", LC_ALL="",
                                    LANGUAGE="C" if lang == "en" else lang,
                                    KEYRENEW_LOCALEDIR=str(TRAY.parents[1] / "po"), NO_AT_BRIDGE="1",
                                    XDG_STATE_HOME=str(self.tmp / "state"))
            self.server = subprocess.Popen([NOTIFICATION_DAEMON], env=self.desktop_env, stdout=subprocess.DEVNULL,
                                           stderr=open(self.tmp / "notification-daemon.log", "wb"))
            wait_for("notification-daemon", lambda: self.session.conn.name_has_owner(NOTIFY))
            server = self.session.conn.get_object(NOTIFY, NOTIFY_PATH)
            info = server.GetServerInformation(dbus_interface=NOTIFY)
            assert str(info[0]) == "Notification Daemon", info
            assert "actions" in server.GetCapabilities(dbus_interface=NOTIFY), "the test needs the buttons"
        except BaseException:
            self.stop()
            raise

    def start(self, pinentry, state):
        self.env.start()
        self.tray = subprocess.Popen([TRAY, "--bus", self.env.bus.address, "--pinentry", pinentry],
                                     env=self.desktop_env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.tmp / "tray.log", "wb"))
        self.card = self.env.bed.insert(state)

    def keep(self, shot, name):
        """Copies a screenshot where the docs' images are made."""
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        out_dir = pathlib.Path(os.environ.get("KEYRENEW_SCREENSHOT_DIR", self.env.tmp))
        shutil.copy(shot, out_dir / name)

    def tray_log(self):
        return (self.tmp / "tray.log").read_text(errors="replace")

    def stop(self):
        """Stops what was started; the tray's exit status, None without one."""
        if self.card:
            self.env.bed.remove(self.card.index)
        status = None
        if self.tray:
            self.tray.terminate()
            status = self.tray.wait(timeout=10)
        if self.server:
            self.server.terminate()
            self.server.wait(timeout=10)
        if self.session:
            self.session.stop()
        if self.screen:
            self.screen.stop()
        return status


@pytest.fixture(params=list(TEXT))
def desktop(request, env):  # noqa: F811 (the fixture from test_tray)
    d = RealDesktop(env, request.param)
    try:
        yield d
    finally:
        assert d.stop() in (None, 0), d.tray_log()


def image_name(d, what):
    return f"tray-{what}.png" if d.t is TEXT["en"] else f"tray-{what}.zh_CN.png"


def test_screenshot_of_the_update_prompt(desktop):
    d = desktop
    shot = d.tmp / "shot.png"
    assert d.screen.grab(shot) is None, "the screen must be empty before the tray speaks"
    state, _, order = approved_key(d.env, name="Li Lei")
    d.start(PINENTRY, state)
    width, height = d.screen.settled(shot)
    # A popup, not the whole screen, and big enough for two lines of
    # text and the buttons.
    assert 250 <= width <= 700 and 60 <= height <= 400, (width, height)
    d.keep(shot, image_name(d, "update-now"))
    assert d.tray.poll() is None, d.tray_log()


def test_update_now_clicked_and_pin_typed(desktop):
    """What a person does: clicks "Update now" on the notification (the
    pointer moved onto the first button's label and pressed, through
    XTEST), types the PIN into the dialog that opens, pinentry-gtk-2, and
    presses Enter; the portal then has the renewed certificate installed."""
    d = desktop
    state, _, order = approved_key(d.env, name="Li Lei")
    d.start(PINENTRY_GTK, state)

    def window(name):
        found = d.screen.xdotool("search", "--onlyvisible", "--name", name).stdout.split()
        return found[0] if found else None
    popup = wait_for("the notification's window", lambda: window("^Notification$"), 30)
    d.screen.settled(d.tmp / "shot.png")
    buttons = d.screen.text_runs(popup)
    assert len(buttons) == 2, buttons  # Update now, Later
    x, y = buttons[0]
    d.screen.xdotool("mousemove", "--window", popup, str(x), str(y), "click", "1")

    dialog = wait_for("the PIN dialog on the screen", lambda: window(d.t["title"]), 30)
    shot = d.tmp / "pin.png"
    width, height = d.screen.settled(shot, f"-id {dialog}")
    assert 250 <= width <= 900 and 100 <= height <= 500, (width, height)
    d.keep(shot, image_name(d, "pin"))
    d.screen.xdotool("type", "--delay", "30", "123456")
    d.screen.xdotool("key", "Return")
    wait_for("the order installed", lambda: order_state(d.env, order) == "installed", 90)
    wait_for("the dialog gone", lambda: window(d.t["title"]) is None, 30)
    assert d.tray.poll() is None, d.tray_log()
