#!/bin/bash
# make bench, the cost of the trust work: this bv against a baseline bv built from an earlier
# commit, on the same machine in the same run (hyperfine -N, medians, ratio this/baseline):
#   bv run samtools --version        the project lock must not touch it; the lease costs one
#                                    open and one fcntl; the seal check one stat
#   warm bv sync                     4 tools, everything present
#   cold bv sync                     the 4 bench images into an empty cache: unpacking now
#                                    hashes every file for the seals (budget: +10%)
#   scripts/bench-trust.sh <builddir>
# BENCH_BASELINE_REV (default 88c809b, the main branch before the lock, validation, leases and
# seals) is checked out with `git worktree` into <builddir>/baseline-src and built there once.
# The fixture registry is started if it is not running and stopped at the end only if this
# script started it.  BENCH_TRUST_RUNS (default 40) sets the timed runs of the fast commands.
set -euo pipefail

build=${1:?usage: scripts/bench-trust.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
rev=${BENCH_BASELINE_REV:-88c809b}
runs=${BENCH_TRUST_RUNS:-40}
fixtures=$top/tests/fixtures
# shellcheck source=scripts/bench-lib.sh
. "$top/scripts/bench-lib.sh"
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}

die() {
	echo "bench-trust: $*" >&2
	exit 1
}
command -v hyperfine >/dev/null || die "'hyperfine' is missing (scripts/deps.sh)"
command -v jq >/dev/null || die "'jq' is missing (scripts/deps.sh)"

# The baseline: built once per revision, outside the source tree's own build.
base_src=$build/baseline-src
base_bv=$base_src/build/bv
if [[ ! -x $base_bv || "$(cat "$base_src/.bench-rev" 2>/dev/null)" != "$rev" ]]; then
	git -C "$top" worktree remove --force "$base_src" >/dev/null 2>&1 || rm -rf "$base_src"
	git -C "$top" worktree prune
	git -C "$top" worktree add --detach "$base_src" "$rev" >/dev/null 2>&1 ||
		die "cannot check out $rev (BENCH_BASELINE_REV) into $base_src"
	(cd "$base_src" && meson setup build --buildtype=debugoptimized >/dev/null &&
		ninja -C build bv >/dev/null) || die "cannot build the baseline $rev"
	echo "$rev" >"$base_src/.bench-rev"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-trust.XXXXXX")
cleanup() {
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
	bench_registry_down
}
trap cleanup EXIT
bench_registry_up || die "the fixture registry did not start or take the images"
addr=$BENCH_REGISTRY_ADDR
export BV_REGISTRY=$top/tests/fixtures/bv-registry BV_MIRRORS="quay.io=$addr"
unset BV_BACKEND BV_JOBS

# One project and one cache per build: the shims of .bv/bin point at the bv that wrote them,
# so two builds sharing a project would rewrite each other's on every sync.
mkdir -p "$tmp/new" "$tmp/base"
cd "$tmp/new"
BV_CACHE_DIR=$tmp/cache-new "$build/bv" init bench >/dev/null 2>&1
BV_CACHE_DIR=$tmp/cache-new "$build/bv" add samtools bwa minimap2 bcftools >/dev/null 2>&1 ||
	die "bv add failed"
cp bv.toml bv.lock "$tmp/base/"
cd "$tmp/base"
BV_CACHE_DIR=$tmp/cache-base "$base_bv" sync >/dev/null 2>&1 || die "baseline sync failed"

median() { jq -r ".results[] | select(.command == \"$2\") | .median * 1000" "$1"; }
row() { # label new-ms base-ms
	awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { printf "  %-34s %9.2f ms %9.2f ms %7.3f\n", l, a, b, a / b }'
}

# env -C: each build in its own project
hyperfine -N --style none --warmup 5 --runs "$runs" --export-json "$tmp/fast.json" \
	-n run-new "env -C $tmp/new BV_CACHE_DIR=$tmp/cache-new $build/bv run samtools --version" \
	-n run-base "env -C $tmp/base BV_CACHE_DIR=$tmp/cache-base $base_bv run samtools --version" \
	-n sync-new "env -C $tmp/new BV_CACHE_DIR=$tmp/cache-new $build/bv sync" \
	-n sync-base "env -C $tmp/base BV_CACHE_DIR=$tmp/cache-base $base_bv sync" >/dev/null
cold_runs=$((runs / 8 > 5 ? runs / 8 : 5))
hyperfine -N --style none --runs "$cold_runs" --export-json "$tmp/cold.json" \
	-n cold-new --prepare "rm -rf $tmp/c1" "env -C $tmp/new BV_CACHE_DIR=$tmp/c1 $build/bv sync" \
	-n cold-base --prepare "rm -rf $tmp/c2" "env -C $tmp/base BV_CACHE_DIR=$tmp/c2 $base_bv sync" >/dev/null

echo "trust: this bv against $rev (medians; ratio this/baseline, budget 1.05 hot, 1.10 cold)"
printf '  %-34s %12s %12s %7s\n' "" "this" "baseline" "ratio"
row "bv run samtools --version" "$(median "$tmp/fast.json" run-new)" "$(median "$tmp/fast.json" run-base)"
row "warm bv sync (4 tools)" "$(median "$tmp/fast.json" sync-new)" "$(median "$tmp/fast.json" sync-base)"
row "cold bv sync (4 images, sealed)" "$(median "$tmp/cold.json" cold-new)" "$(median "$tmp/cold.json" cold-base)"
