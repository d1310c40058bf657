#!/bin/sh
# Installs every Debian 12 package keyrenew's build, tests and demo need.
# Idempotent: apt-get skips what is already there, so it is safe to re-run.
set -eu

PACKAGES="
  meson ninja-build pkg-config gcc clang libclang-rt-14-dev
  clang-format git
  libsystemd-dev libuv1-dev libcurl4-openssl-dev libssl-dev openssl
  libpcsclite-dev libnotify-dev libjansson-dev libsqlite3-dev
  libmicrohttpd-dev libassuan-dev libgpg-error-dev
  libdbus-1-dev libpolkit-gobject-1-dev systemd
  zlib1g-dev
  gettext
  pcscd pcsc-tools vsmartcard-vpcd yubico-piv-tool opensc opensc-pkcs11
  dbus util-linux procps
  python3 python3-pytest python3-dbusmock
  pinentry-tty valgrind gdb libxml2-utils scdoc groff-base
  polkitd
  xvfb notification-daemon x11-apps netpbm fonts-wqy-microhei xdotool pinentry-gtk2
  certmonger
"

if [ "$(id -u)" -ne 0 ]; then
	echo "setup.sh: installing packages needs root; run it with sudo." >&2
	echo "setup.sh: 安装软件包需要 root 权限，请用 sudo 运行。" >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
		|| missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "setup.sh: all packages already installed."
	exit 0
fi

echo "setup.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
