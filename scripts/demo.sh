#!/bin/bash
# make demo: the main job.  A new project gets samtools and bwa with `bv add`, then a small
# seeded read set is aligned, sorted, indexed and counted entirely through `bv run`:
#
#   bv run bwa index ref.fa
#   bv run bwa mem ref.fa reads.fq | bv run samtools sort -o out.bam -
#   bv run samtools index out.bam
#   bv run samtools flagstat out.bam
#
#   scripts/demo.sh <builddir>
#
# Images come from the loopback fixture registry (tests/fixtures/registry.sh, images.sh:
# Debian's samtools 1.16.1 and bwa 0.7.17), which bv reaches through BV_MIRRORS, so the demo
# needs no network beyond the Debian archive the first time the images are built.  The
# registry is started if it is not running and stopped at the end only if this script started
# it.  Everything else (project, cache, images' root filesystems) lives in one temporary
# directory that is removed on exit.  One line per step; a failing step prints its log.
# BV_BACKEND, if set, picks the backend as it does for bv itself.
set -euo pipefail

build=${1:?usage: scripts/demo.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}

die() {
	echo "demo: $*" >&2
	exit 1
}

[[ -x $bv_bin ]] || die "$bv_bin is missing (ninja -C $build)"
command -v python3 >/dev/null || die "python3 is missing (scripts/deps.sh)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-demo.XXXXXX")
started_registry=false
cleanup() {
	if $started_registry; then
		"$fixtures/registry.sh" stop >/dev/null 2>&1 || true
	fi
	# Unpacked root filesystems are read-only, which stops rm -rf for a non-root user.
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bv() { "$bv_bin" "$@"; }

# now_ms: wall clock in milliseconds, from bash's own clock (no fork).
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# elapsed START_MS: "12 ms" or "1.3 s".
elapsed() {
	local ms=$(($(now_ms) - $1))
	if ((ms < 1000)); then
		printf '%d ms' "$ms"
	else
		printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
	fi
}

steps=8
step_no=0
# step TEXT FUNCTION: runs FUNCTION with stdout and stderr in its own log, then prints one
# line "[n/8] TEXT (time)".  On failure the log is shown and the demo stops.  FUNCTION runs
# in this shell, so its cd and variables persist; bash ignores set -e inside a function
# called from a condition, so each function chains its commands with && itself.
step() {
	local text=$1 fn=$2 start log
	step_no=$((step_no + 1))
	log=$tmp/logs/step$step_no.log
	start=$(now_ms)
	if ! "$fn" >"$log" 2>&1; then
		printf '[%d/%d] %s: FAILED after %s\n' "$step_no" "$steps" "$text" "$(elapsed "$start")" >&2
		sed 's/^/    | /' "$log" | tail -n 40 >&2
		exit 1
	fi
	printf '[%d/%d] %-68s %7s\n' "$step_no" "$steps" "$text" "$(elapsed "$start")"
}

registry() {
	if ! "$fixtures/registry.sh" status; then
		"$fixtures/registry.sh" start || return
		started_registry=true
	fi
	"$fixtures/images.sh" push && addr=$("$fixtures/registry.sh" addr)
}

project() {
	cp -r "$fixtures/bv-registry" "$tmp/bv-registry" &&
		mkdir -p "$tmp/demo" &&
		cd "$tmp/demo" &&
		bv init demo
}

add() {
	bv add samtools bwa
}

data() {
	python3 "$fixtures/simreads.py" . --reads 400 --length 100 &&
		reads=$(($(wc -l <reads.fq) / 4)) &&
		ref_bp=$(grep -v '^>' ref.fa | tr -d '\n' | wc -c)
}

index_ref() {
	bv run bwa index ref.fa
}

# bwa mem's progress on stderr goes to the step's log with the rest; pipefail makes a
# failing bwa fail the step even though samtools sort succeeds on what it got.
align() {
	bv run bwa mem ref.fa reads.fq | bv run samtools sort -o out.bam -
}

index_bam() {
	bv run samtools index out.bam
}

flagstat() {
	bv run samtools flagstat out.bam >"$tmp/flagstat.txt"
}

mkdir -p "$tmp/logs"
start_all=$(now_ms)
echo "bv demo: align seeded reads to a small reference with samtools and bwa, all through bv run"
addr=""
step "fixture registry up, Debian samtools and bwa images pushed" registry
export BV_REGISTRY=$tmp/bv-registry BV_MIRRORS="quay.io=$addr" BV_CACHE_DIR=$tmp/cache
# The functions below run in this shell (not a subshell), so cd and variables persist.
step "bv init demo (in $tmp)" project
step "bv add samtools bwa (quay.io, mirrored to $addr)" add
step "wrote ref.fa and reads.fq (tests/fixtures/simreads.py, seeded)" data
step "bv run bwa index ref.fa" index_ref
step "bv run bwa mem ref.fa reads.fq | bv run samtools sort -o out.bam -" align
step "bv run samtools index out.bam" index_bam
step "bv run samtools flagstat out.bam" flagstat
echo
echo "$reads reads of 100 bp, a $ref_bp bp reference; samtools flagstat out.bam:"
sed 's/^/    /' "$tmp/flagstat.txt"
locked=$(bv list | awk 'NR > 1 { printf "%s%s %s", sep, $1, $2; sep = ", " }')
total=$(elapsed "$start_all")
had_registry=$started_registry
cd "$top"
cleanup
trap - EXIT
stopped=""
if $had_registry; then stopped=", fixture registry stopped"; fi
echo
echo "done in $total: $locked pinned in bv.lock; temporary dir removed$stopped"
