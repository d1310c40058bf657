#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job in one command: installs what keyrenew needs, builds it and
# runs it. The full demo (a virtual key whose certificate is about to end,
# a local portal that approves its renewal, and the renewal itself) is not
# built yet: for now this shows the programs that exist and says so.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: installing packages needs root; run it as root (sudo)." >&2
	exit 2
fi

./scripts/setup.sh
if [ -f build/build.ninja ]; then
	meson setup --reconfigure build >/dev/null
else
	meson setup build >/dev/null
fi
ninja -C build >/dev/null

echo
build/daemon/keyrenewd --version
build/ctl/keyrenewctl --version
build/tray/keyrenew-tray --version
echo
echo "keyrenew is built. The demo itself (virtual key, local portal, renewal"
echo "end to end) is not built yet: these programs only answer --help and"
echo "--version so far. See README.md for what works today."
