#!/bin/sh
# Runs every libFuzzer target, one after the other, each from its seed corpus.
#   scripts/fuzz.sh <fuzz-builddir> [seconds]          the seconds are split between the targets
#   scripts/fuzz.sh --each <fuzz-builddir> [seconds]   every target runs that long (make fuzz-long)
# Split: each target gets seconds/N, and what is left over goes to the larger surfaces (the
# TOML reader, unpacking, the model readers), so adding a target does not lengthen CI; 40
# seconds give each of the eight targets 5.  FUZZ_TARGETS="fuzz_unpack fuzz_model" runs a subset.
#
# Seeds: tests/fuzz/corpus/<target>/ (committed; tests/fuzz/make_corpus.py writes them) and,
# for fuzz_toml and fuzz_imageref, toml-test, the sample registry and a few references made
# here; tests/fuzz/<target>.dict is the target's dictionary when there is one.  What a run finds is kept in <builddir>/fuzz-corpus/<target>/, the working corpus that
# the next run starts from.  Each target logs to <builddir>/fuzz-<target>.log.  Exits non-zero
# when any target finds a problem; crash inputs are left in <builddir>/fuzz-artifacts/.
set -eu
each=false
if [ "${1:-}" = --each ]; then
	each=true
	shift
fi
build=${1:?usage: scripts/fuzz.sh [--each] <fuzz-builddir> [seconds]}
seconds=${2:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
seeds="$top/tests/fuzz/corpus"
work="$build/fuzz-corpus"
artifacts="$build/fuzz-artifacts"
targets=${FUZZ_TARGETS:-fuzz_toml fuzz_imageref fuzz_unpack fuzz_model fuzz_dockerignore fuzz_docker_config fuzz_registry fuzz_signature}
mkdir -p "$artifacts"

# Seeds for fuzz_toml: every toml-test case, valid and invalid, and the registry manifests.
mkdir -p "$work/fuzz_toml"
find "$shared/toml-test" "$shared/bv-registry-sample" -name '*.toml' -size -64k 2>/dev/null |
	while read -r f; do cp "$f" "$work/fuzz_toml/$(echo "$f" | sha256sum | cut -c1-16)"; done
printf 'a = 1\n[t]\nb = "x"\n' >"$work/fuzz_toml/minimal"

# Seeds for fuzz_imageref: references of every shape, and registry challenges.
mkdir -p "$work/fuzz_imageref"
i=0
for seed in 'ubuntu' 'docker://quay.io/biocontainers/samtools:1.21--h50ea8bc_0' \
	'127.0.0.1:5000/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' \
	'[::1]:5000/a__b/c-d.e:T_1' 'localhost:5000' 'index.docker.io/library/x@sha512:ab' \
	'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"' \
	'Basic realm="x", Bearer realm="https://a/t?x=1,2",service="s \"q\"",error="e"' \
	'Negotiate YWJj==, Digest realm=a, basic'; do
	printf '%s' "$seed" >"$work/fuzz_imageref/seed$i"
	i=$((i + 1))
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

max_len() {
	case $1 in
	fuzz_toml | fuzz_dockerignore) echo 4096 ;;
	fuzz_imageref) echo 9000 ;; # longer than the 8 KiB limit on challenges
	fuzz_unpack) echo 65536 ;;
	*) echo 16384 ;;
	esac
}

# The larger surfaces, which get the seconds left over by the split.
weighty() {
	case $1 in fuzz_toml | fuzz_unpack | fuzz_model) return 0 ;; *) return 1 ;; esac
}

n=0
for t in $targets; do n=$((n + 1)); done
base=$((seconds / n))
[ "$base" -ge 1 ] || base=1
left=$((seconds - base * n))

failed=""
for t in $targets; do
	s=$base
	if $each; then
		s=$seconds
	elif [ "$left" -gt 0 ] && weighty "$t"; then
		s=$((s + 1))
		left=$((left - 1))
	fi
	mkdir -p "$work/$t"
	log="$build/fuzz-$t.log"
	# The first directory receives what the run finds; the committed seeds are only read.
	set -- "$work/$t"
	[ -d "$seeds/$t" ] && set -- "$@" "$seeds/$t"
	[ -f "$top/tests/fuzz/$t.dict" ] && set -- -dict="$top/tests/fuzz/$t.dict" "$@"
	if "$build/tests/fuzz/$t" -max_total_time="$s" -max_len="$(max_len "$t")" -timeout=25 \
		-rss_limit_mb=2048 -artifact_prefix="$artifacts/$t-" -print_final_stats=1 "$@" \
		>"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
		echo "fuzz: $t ran ${s}s, ${runs:-?} executions, $cov, no finding"
	else
		tail -n 40 "$log"
		echo "fuzz: $t found a problem; see $log and $artifacts" >&2
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: findings in:$failed" >&2
	exit 1
fi
