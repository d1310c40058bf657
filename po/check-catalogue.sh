#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The Chinese catalogue must be complete: every file that marks text with
# _() is listed in POTFILES.in, every marked message has a translation
# (msgcmp counts an empty one as missing), no translation is stale, and msgfmt accepts the catalogue's formats.
#   check-catalogue.sh SOURCE_ROOT
set -eu
cd "$1"
status=0

for f in $(grep -rlE '(^|[^A-Za-z0-9_])N?_\("' --include='*.c' common daemon ctl tray | sort); do
	grep -qx "$f" po/POTFILES.in || { echo "$f marks text with _() but is not in po/POTFILES.in"; status=1; }
done

pot=$(mktemp)
trap 'rm -f "$pot"' EXIT
xgettext --keyword=_ --keyword=N_ --from-code=UTF-8 -o "$pot" -f po/POTFILES.in
sed -i 's/charset=CHARSET/charset=UTF-8/' "$pot"
msgcmp po/zh_CN.po "$pot" || status=1
if msgcmp --use-untranslated po/zh_CN.po "$pot" 2>&1 | grep -q 'not used'; then
	msgcmp po/zh_CN.po "$pot" 2>&1 | grep 'not used'
	echo "po/zh_CN.po has translations nothing uses: remove them"
	status=1
fi
msgfmt -c --check-format -o /dev/null po/zh_CN.po || status=1
exit $status
