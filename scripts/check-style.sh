#!/bin/sh
# Checks the C sources against .clang-format and the rules clang-format
# cannot express. Prints each offence as FILE[:LINE]: what; exits 1 if any.
set -u
cd "$(dirname "$0")/.." || exit 2

status=0
files=$(git ls-files -- '*.c' '*.h')
[ -n "$files" ] || { echo "check-style: no C files tracked"; exit 1; }

# offence FILE REGEX WHY: every line of FILE matching REGEX is an offence.
offence() {
	hits=$(grep -nE "$2" "$1") || return 0
	echo "$hits" | sed "s|^|$1:|;s|\$|  <- $3|"
	status=1
}

for f in $files; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "$f: not formatted as .clang-format says; run: clang-format -i $f"
		status=1
	fi
	head -n 1 "$f" | grep -q 'SPDX-License-Identifier' \
		|| { echo "$f:1: first line must be an SPDX-License-Identifier comment"; status=1; }
	# Unbounded string functions have no place next to card and portal data.
	offence "$f" '(^|[^_a-z])(strcpy|strcat|sprintf|vsprintf|gets)\(' "unbounded; use snprintf/memcpy with a size"
done

[ $status -eq 0 ] && echo "check-style: $(echo "$files" | wc -l) files OK"
exit $status
