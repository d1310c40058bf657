#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs every test suite keyrenew has, the way CI does:
#   - installs what is missing (scripts/setup.sh),
#   - builds with -Werror and runs the unit tests plain and under valgrind,
#   - builds with ASan+UBSan and runs the unit tests again, and once more
#     with clang, whose build adds short libFuzzer runs,
#   - runs the integration tests (private pcscd, buses, virtual keys),
#   - checks the style,
# then prints one line per suite and "N passed, N failed" (skips count as
# failures). Run it as root from the top of a checkout. Options:
#   --no-setup   do not run scripts/setup.sh (packages already there)
#   --quick      plain build and its tests only (no valgrind, no ASan)
set -u
cd "$(dirname "$0")/.." || exit 2
top=$PWD

setup=1 quick=0
for a in "$@"; do
	case "$a" in
	--no-setup) setup=0 ;;
	--quick) quick=1 ;;
	-h|--help) sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test.sh: unknown option '$a'; see --help" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: the integration tests start a private pcscd in a mount namespace, which needs root; run it as root (sudo)." >&2
	exit 2
fi

results="$top/build-results"
rm -rf "$results" && mkdir -p "$results"
steps="$results/steps.txt"
summary_args=("steps=$steps")
: >"$steps"

# step NAME COMMAND...: runs a build or check step, records PASS/FAIL.
step() {
	local name=$1; shift
	echo "==> $name"
	if "$@"; then echo "$name PASS" >>"$steps"; return 0; fi
	echo "$name FAIL" >>"$steps"
	echo "==> $name FAILED" >&2
	return 1
}

# build DIR MESON-OPTIONS...: configures (or reconfigures) and compiles.
build() {
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" --werror "$@" >/dev/null
	else
		meson setup "$dir" --werror "$@" >/dev/null
	fi && ninja -C "$dir"
}

# meson_suite LABEL DIR [meson test args...]: runs meson test, keeps its log.
meson_suite() {
	local label=$1 dir=$2 log; shift 2
	meson test -C "$dir" --print-errorlogs "$@"
	log=$(ls -t "$dir"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
	[ -n "$log" ] && cp "$log" "$results/$label.json"
	summary_args+=("$label=$results/$label.json")
}

[ $setup -eq 1 ] && { step setup ./scripts/setup.sh || exit 1; }

step style ./scripts/check-style.sh

if step build build build; then
	meson_suite unit build
	summary_args+=("integration=$results/integration.xml")
	KEYRENEW_BUILD_DIR="$top/build" /usr/bin/python3 -m pytest -q -rfEs \
		-p no:cacheprovider --junitxml="$results/integration.xml" tests/integration
	# valgrind checks our C programs; the data and docs checks are scripts.
	[ $quick -eq 0 ] && meson_suite valgrind build --setup valgrind --no-suite data --no-suite docs
fi

asan_select="not valgrind and not test_install and not test_demo and not screenshot"
asan_select="$asan_select and not test_portal_failing_at_each_message"
asan_select="$asan_select and not (test_interrupted_at_every_step_then_resumed and not kill-yes)"
asan_select="$asan_select and not (test_tray and not update_now_pin_progress and not wrong_pin)"

if [ $quick -eq 0 ]; then
	if step build-asan build build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
		meson_suite asan build-asan --setup asan
		# The integration tests again on sanitized binaries, less what
		# adds minutes but no code path: valgrind's (it cannot run those),
		# the install test (it builds a tree of its own), the demo and the
		# screenshot, all but one case each of the renewal's fault matrix
		# and of the tray's stories (the plain run has them all).
		summary_args+=("integration-asan=$results/integration-asan.xml")
		ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		KEYRENEW_BUILD_DIR="$top/build-asan" /usr/bin/python3 -m pytest -q -rfEs \
			-p no:cacheprovider -k "$asan_select" \
			--junitxml="$results/integration-asan.xml" tests/integration
	fi
	# clang for libFuzzer: its tests include a short fuzzing run per target.
	if CC=clang step build-fuzz build build-fuzz -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false; then
		meson_suite fuzz-clang-asan build-fuzz --setup asan
	fi
fi

echo
echo "==> summary"
exec /usr/bin/python3 tests/summarize.py "${summary_args[@]}"
