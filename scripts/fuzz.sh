#!/bin/sh
# Runs each libFuzzer target for a while, seeded from toml-test and the sample registry.
#   scripts/fuzz.sh <fuzz-builddir> [seconds per target]
# Exits non-zero on any finding; crash inputs are left in <builddir>/fuzz-artifacts/.
set -eu
build=${1:?usage: scripts/fuzz.sh <fuzz-builddir> [seconds]}
seconds=${2:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
corpus="$build/fuzz-corpus/toml"
artifacts="$build/fuzz-artifacts"
mkdir -p "$corpus" "$artifacts"

# Seeds: every toml-test case, valid and invalid, and the registry manifests.
find "$shared/toml-test" "$shared/bv-registry-sample" -name '*.toml' -size -64k 2>/dev/null |
	while read -r f; do cp "$f" "$corpus/$(echo "$f" | sha256sum | cut -c1-16)"; done
printf 'a = 1\n[t]\nb = "x"\n' >"$corpus/minimal"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$build/tests/fuzz/fuzz_toml" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
	-artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" >"$build/fuzz-toml.log" 2>&1 || {
	tail -n 40 "$build/fuzz-toml.log"
	echo "fuzz: fuzz_toml found a problem; inputs are in $artifacts" >&2
	exit 1
}
grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$build/fuzz-toml.log" | tail -2
echo "fuzz: fuzz_toml ran ${seconds}s with no finding"
