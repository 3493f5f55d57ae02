#!/bin/sh
# Runs each libFuzzer target for a while, seeded from toml-test and the sample registry
# (fuzz_toml) and from a few image references and WWW-Authenticate headers (fuzz_imageref).
#   scripts/fuzz.sh <fuzz-builddir> [seconds]
# The seconds are split between the targets, so adding a target does not lengthen CI.
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

# Seeds for fuzz_imageref: references of every shape, and registry challenges.
refs="$build/fuzz-corpus/imageref"
mkdir -p "$refs"
i=0
for seed in 'ubuntu' 'docker://quay.io/biocontainers/samtools:1.21--h50ea8bc_0' \
	'127.0.0.1:5000/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' \
	'[::1]:5000/a__b/c-d.e:T_1' 'localhost:5000' 'index.docker.io/library/x@sha512:ab' \
	'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"' \
	'Basic realm="x", Bearer realm="https://a/t?x=1,2",service="s \"q\"",error="e"' \
	'Negotiate YWJj==, Digest realm=a, basic'; do
	printf '%s' "$seed" >"$refs/seed$i"
	i=$((i + 1))
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# run <target> <seconds> <max_len> <corpus>
run() {
	log="$build/fuzz-${1#fuzz_}.log" # fuzz-toml.log, fuzz-imageref.log
	"$build/tests/fuzz/$1" -max_total_time="$2" -max_len="$3" -timeout=10 \
		-artifact_prefix="$artifacts/" -print_final_stats=1 "$4" >"$log" 2>&1 || {
		tail -n 40 "$log"
		echo "fuzz: $1 found a problem; inputs are in $artifacts" >&2
		exit 1
	}
	grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$log" | tail -2
	echo "fuzz: $1 ran ${2}s with no finding"
}

# The TOML reader is the larger surface; it gets the odd second.
ref_seconds=$((seconds / 2))
[ "$ref_seconds" -ge 1 ] || ref_seconds=1
toml_seconds=$((seconds - ref_seconds))
[ "$toml_seconds" -ge 1 ] || toml_seconds=1
run fuzz_toml "$toml_seconds" 4096 "$corpus"
run fuzz_imageref "$ref_seconds" 9000 "$refs"
