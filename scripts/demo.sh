#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job in one command: installs what keyrenew needs, builds it and
# runs the demo (scripts/demo.py): a virtual key whose certificate is about
# to end, the local reference portal approving its renewal, keyrenewd
# seeing both, all in a private sandbox. The renewal itself is not built
# yet; the demo says so. Options are passed to demo.py (--days N, --keep).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: installing packages needs root; run it as root (sudo)." >&2
	exit 2
fi

# quiet COMMAND...: runs it, showing its output only when it fails.
quiet() {
	local out
	out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; echo "demo.sh: '$*' failed" >&2; exit 1; }
}

./scripts/setup.sh
echo "demo.sh: building keyrenew in build/"
if [ -f build/build.ninja ]; then
	quiet meson setup --reconfigure build
else
	quiet meson setup build
fi
quiet ninja -C build

echo
exec /usr/bin/python3 scripts/demo.py --build-dir build "$@"
