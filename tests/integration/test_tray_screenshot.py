# SPDX-License-Identifier: GPL-2.0-or-later
"""The notification a person really sees: keyrenew-tray (against the real
keyrenewd, portal and virtual key, as test_tray.py) shows its "Update now"
prompt through a real notification server, GNOME's notification-daemon,
on an Xvfb screen; the screen is captured (xwd, netpbm) and cropped to
the notification. In English and in Simplified Chinese (a CJK font must
be installed: setup.sh installs fonts-wqy-microhei). The PNGs go to
$KEYRENEW_SCREENSHOT_DIR when set (docs/images/ holds the README's), else
to the test's folder. Needs root (the private pcscd)."""

import os
import pathlib
import shutil
import subprocess
import time

import dbus
import pytest

from keyrenew_testbed import wait_for
from test_daemon_core import PrivateBus
from test_tray import NOTIFY, NOTIFY_PATH, PINENTRY, TEXT, TRAY, approved_key, env  # noqa: F401 (fixture)

NOTIFICATION_DAEMON = "/usr/lib/notification-daemon/notification-daemon"


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

    def grab(self, out):
        """The screen, cropped to what is not black (the root window),
        as PNG in out; None when the screen is all black."""
        pnm = self.tmp / "screen.pnm"
        subprocess.run(f"xwd -root -silent -display {self.display} | xwdtopnm > '{pnm}'", shell=True,
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

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.mark.parametrize("lang", list(TEXT))
def test_screenshot_of_the_update_prompt(env, lang):  # noqa: F811 (the fixture from test_tray)
    tmp = env.tmp / "screen"
    tmp.mkdir()
    screen = Screen(tmp)
    session = PrivateBus(tmp)
    desktop_env = dict(os.environ, DISPLAY=screen.display, DBUS_SESSION_BUS_ADDRESS=session.address,
                       LANG="C.UTF-8", LC_ALL="", LANGUAGE="C" if lang == "en" else lang,
                       KEYRENEW_LOCALEDIR=str(TRAY.parents[1] / "po"), NO_AT_BRIDGE="1")
    server = subprocess.Popen([NOTIFICATION_DAEMON], env=desktop_env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "notification-daemon.log", "wb"))
    tray = None
    card = None
    try:
        wait_for("notification-daemon", lambda: session.conn.name_has_owner(NOTIFY))
        info = session.conn.get_object(NOTIFY, NOTIFY_PATH).GetServerInformation(dbus_interface=NOTIFY)
        assert str(info[0]) == "Notification Daemon", info
        caps = session.conn.get_object(NOTIFY, NOTIFY_PATH).GetCapabilities(dbus_interface=NOTIFY)
        assert "actions" in caps, "the screenshot must show the buttons"
        shot = tmp / "shot.png"
        assert screen.grab(shot) is None, "the screen must be empty before the tray speaks"

        state, _, order = approved_key(env, name="Li Lei")
        env.start()
        tray = subprocess.Popen([TRAY, "--bus", env.bus.address, "--pinentry", PINENTRY], env=desktop_env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp / "tray.log", "wb"))
        card = env.bed.insert(state)
        # notification-daemon fades the popup in: wait until it is still.
        sizes = []

        def settled():
            sizes.append(screen.grab(shot))
            time.sleep(0.5)
            return sizes[-1] if len(sizes) >= 3 and sizes[-1] and sizes[-1] == sizes[-2] == sizes[-3] else None
        width, height = wait_for("the notification on screen", settled, 30)
        # A popup, not the whole screen, and big enough for two lines of
        # text and the buttons.
        assert 250 <= width <= 700 and 60 <= height <= 400, (width, height)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        name = "tray-update-now.png" if lang == "en" else f"tray-update-now.{lang}.png"
        out_dir = pathlib.Path(os.environ.get("KEYRENEW_SCREENSHOT_DIR", env.tmp))
        shutil.copy(shot, out_dir / name)
        assert tray.poll() is None, (tmp / "tray.log").read_text()
    finally:
        if card:
            env.bed.remove(card.index)
        if tray:
            tray.terminate()
            assert tray.wait(timeout=10) == 0, (tmp / "tray.log").read_text()
        server.terminate()
        server.wait(timeout=10)
        session.stop()
        screen.stop()
