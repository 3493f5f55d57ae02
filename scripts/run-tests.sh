#!/bin/sh
# Runs every test against one build directory and ends with "N passed, N failed".
#   scripts/run-tests.sh <builddir>
# Unit and conformance tests run through meson (TAP); end-to-end tests and the differential
# conformance suite (tests/conformance: bv against docker and umoci) and the Slurm tests
# (tests/hpc) through bats (TAP).
set -u
build=${1:?usage: scripts/run-tests.sh <builddir>}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
log=$build/test-logs
rm -rf "$log"
mkdir -p "$log"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
meson test -C "$build" --print-errorlogs >"$log/meson.txt" 2>&1 || status=1
cat "$log/meson.txt" | grep -E '^ *[0-9]+/[0-9]+ |^Ok:|^Fail:|^Skipped:' || true

# Count TAP lines of every meson test (each case, not each executable).
tap_pass=$(grep -hE '^ok [0-9]+' "$build"/meson-logs/testlog.txt 2>/dev/null | grep -vc '# SKIP' || true)
tap_fail=$(grep -hcE '^not ok [0-9]+' "$build"/meson-logs/testlog.txt 2>/dev/null || true)
grep -hE '^1\.\.0 # SKIP' "$build"/meson-logs/testlog.txt 2>/dev/null | sed 's/^/skip: /' || true

BV="$build/bv"
export BV BV_BUILD_DIR="$build" BV_SOURCE_DIR="$top"
bats --tap "$top/tests/e2e" >"$log/bats.txt" 2>&1 || status=1
cat "$log/bats.txt" | grep -E '^not ok|^#' || true
bats_pass=$(grep -cE '^ok [0-9]+' "$log/bats.txt" | tr -d ' ' || true)
bats_fail=$(grep -cE '^not ok [0-9]+' "$log/bats.txt" | tr -d ' ' || true)

bats --tap "$top/tests/conformance" >"$log/conformance.txt" 2>&1 || status=1
cat "$log/conformance.txt" | grep -E '^not ok|^#' || true
conf_pass=$(grep -cE '^ok [0-9]+' "$log/conformance.txt" | tr -d ' ' || true)
conf_fail=$(grep -cE '^not ok [0-9]+' "$log/conformance.txt" | tr -d ' ' || true)
echo "conformance: $conf_pass passed, $conf_fail failed"

# Slurm (tests/hpc): a two-node cluster in namespaces; each file skips, saying why, where
# Slurm cannot start (not root, slurm-wlm missing).
bats --tap "$top/tests/hpc" >"$log/hpc.txt" 2>&1 || status=1
cat "$log/hpc.txt" | grep -E '^not ok|^#|# skip' || true
hpc_pass=$(grep -cE '^ok [0-9]+' "$log/hpc.txt" | tr -d ' ' || true)
hpc_fail=$(grep -cE '^not ok [0-9]+' "$log/hpc.txt" | tr -d ' ' || true)
echo "hpc: $hpc_pass passed, $hpc_fail failed"

pass=$((tap_pass + bats_pass + conf_pass + hpc_pass))
fail=$((tap_fail + bats_fail + conf_fail + hpc_fail))
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
	# A test binary that crashed before printing TAP still fails the run.
	fail=1
	echo "a test executable failed without reporting a case; see $log" >&2
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
