#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job in one command: installs what keyrenew needs, builds it and
# runs the demo (scripts/demo.py): a virtual key whose certificate is about
# to end is renewed for real, end to end, in a private sandbox (the
# reference CA portal, a private pcscd and bus, keyrenewd, keyrenewctl as
# the PIN agent), then checked with yubico-piv-tool and the portal's CRL.
# Options go to demo.py: --pin PIN, --interactive, --tray (keyrenew-tray on
# your desktop), --days N, --keep, and --build-dir DIR (default build/,
# built here too).
set -eu
cd "$(dirname "$0")/.."

build=build
for arg in "$@"; do
	case "$arg" in
	-h | --help) exec /usr/bin/python3 scripts/demo.py --help ;;
	--build-dir=*) build=${arg#--build-dir=} ;;
	esac
done
prev=
for arg in "$@"; do
	[ "$prev" = --build-dir ] && build=$arg
	prev=$arg
done

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
echo "demo.sh: building keyrenew in $build/"
# Incremental: ninja runs meson again by itself when a meson.build changed;
# packages installed since the build was configured need meson to look.
if [ ! -f "$build/build.ninja" ]; then
	quiet meson setup "$build"
elif [ /var/lib/dpkg/status -nt "$build/build.ninja" ]; then
	quiet meson setup --reconfigure "$build"
fi
quiet ninja -C "$build"

echo
exec /usr/bin/python3 scripts/demo.py --build-dir "$build" "$@"
