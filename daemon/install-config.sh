#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# meson install step for /etc/keyrenew/keyrenewd.conf: installs the defaults
# only where there is no configuration yet, so that reinstalling or upgrading
# never replaces what an admin wrote. Like a package manager's conffile, the
# file is then the admin's, and `ninja uninstall` leaves it.
# Usage: install-config.sh DEFAULTS DIR  (DIR absolute; $DESTDIR honoured)
set -eu
target="${DESTDIR:-}$2/keyrenewd.conf"
[ -e "$target" ] || install -D -m 0644 "$1" "$target"
