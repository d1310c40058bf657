#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs a libFuzzer target for a fixed number of inputs with a fixed seed,
# starting from a seed corpus that it never writes to.
#   run-fuzz.sh TARGET CORPUS [RUNS]
set -eu

target=$1
corpus=$2
runs=${3:-20000}

# Any sanitizer report ends the run with a failure.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# New inputs go to $work (the first directory) and are thrown away; a
# crashing input is kept in the current directory (the build directory
# under meson test), named in the log.
"$target" -seed=1 -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix="$PWD/fuzz-" -print_final_stats=1 "$work" "$corpus"
