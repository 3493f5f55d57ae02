#!/bin/bash
# make bench, Slurm: 64 tasks of `bv run samtools --version` in one srun step over the
# two-node cluster of tests/hpc/slurm.sh, against the same 64 tasks running the host's
# samtools (Debian's package), and a cold start of those 64 tasks on an empty shared cache.
#   scripts/bench-hpc.sh <builddir>
#
# Warm: median wall time of BENCH_HPC_RUNS (default 5) `srun -N 2 -n 64 --overcommit ...`
# each, printed with the ratio bv / host (the target is within 2x).  Both include srun's own
# launch cost, which is most of the host's time: that is what a job pays either way.
# Cold: `srun -N 2 -n 64 --overcommit sh -c 'bv sync && bv run samtools --version'` on an
# empty BV_CACHE_DIR shared by both nodes; the fixture registry's access log gives the blob
# GETs, which must equal the image's distinct blobs (one pull, however many tasks ask).
#
# Needs root and slurm-wlm (else it prints why and exits 0, so `make bench` goes on).
# Started here, stopped here: the fixture registry and the cluster (each only if it was not
# running).
set -euo pipefail

build=${1:?usage: scripts/bench-hpc.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
# shellcheck source=scripts/bench-lib.sh
. "$top/scripts/bench-lib.sh"
slurm=$top/tests/hpc/slurm.sh
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}
runs=${BENCH_HPC_RUNS:-5}
tasks=${BENCH_HPC_TASKS:-64}

echo "Slurm: $tasks tasks in one srun step over 2 nodes (tests/hpc/slurm.sh)"
if [[ $(id -u) -ne 0 ]]; then
	echo "  n/a (the Slurm harness needs root)"
	exit 0
fi
if [[ ! -x /usr/sbin/slurmd || ! -x /usr/bin/samtools ]]; then
	echo "  n/a (slurm-wlm or samtools missing; scripts/deps.sh installs them)"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-hpc.XXXXXX")
started_slurm=false
cleanup() {
	if $started_slurm; then "$slurm" stop >/dev/null 2>&1 || true; fi
	bench_registry_down
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_registry_up || { echo "  n/a (the fixture registry did not start or take the images)"; exit 0; }
addr=$BENCH_REGISTRY_ADDR
log=$("$fixtures/registry.sh" dir)/registry.log
"$slurm" status >/dev/null 2>&1 || started_slurm=true
if ! out=$("$slurm" start 2>&1); then
	echo "  n/a (Slurm cannot start: $out)"
	exit 0
fi
"$slurm" forward "${addr##*:}"
eval "$("$slurm" env)"

export HOME=$tmp/home BV_REGISTRY=$tmp/bv-registry BV_MIRRORS="quay.io=$addr"
export BV_CACHE_DIR=$tmp/warm PATH="$build:$PATH"
mkdir -p "$HOME" "$tmp/proj"
cp -r "$fixtures/bv-registry" "$BV_REGISTRY"
cd "$tmp/proj"
"$bv_bin" init bench >/dev/null 2>&1
"$bv_bin" add samtools >/dev/null 2>&1 || {
	echo "bench-hpc: bv add samtools failed" >&2
	exit 1
}

# median_s CMD...: the median wall time in seconds of `runs` runs of CMD (output dropped;
# a failed run aborts the bench).
median_s() {
	local i t0 t1
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>"$tmp/err" || {
			echo "bench-hpc: '$*' failed: $(tail -n 3 "$tmp/err")" >&2
			exit 1
		}
		t1=$(date +%s.%N)
		echo "$t0 $t1"
	done | awk '{ print $2 - $1 }' | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] }'
}

step=(srun -N 2 -n "$tasks" --overcommit)
# one warm-up of each, so the nodes' page caches hold both
"${step[@]}" bv run samtools --version >/dev/null
"${step[@]}" /usr/bin/samtools --version >/dev/null
bv_s=$(median_s "${step[@]}" bv run samtools --version)
host_s=$(median_s "${step[@]}" /usr/bin/samtools --version)
printf '  %-56s %8s s\n' "warm: $tasks x bv run samtools --version" "$bv_s"
printf '  %-56s %8s s\n' "warm: $tasks x host samtools --version" "$host_s"
printf '  %-56s %8s   (target < 2.0)\n' "ratio bv / host" "$(awk -v a="$bv_s" -v b="$host_s" 'BEGIN { printf "%.2fx", a / b }')"

export BV_CACHE_DIR=$tmp/cold
mark=$(wc -l <"$log")
t0=$(date +%s.%N)
"${step[@]}" sh -c 'bv sync >/dev/null 2>&1 && bv run samtools --version' >"$tmp/cold.out" 2>&1 || {
	echo "bench-hpc: the cold step failed: $(tail -n 3 "$tmp/cold.out")" >&2
	exit 1
}
t1=$(date +%s.%N)
ok=$(grep -c '^samtools 1\.16\.1$' "$tmp/cold.out" || true)
read -r total distinct < <(tail -n +"$((mark + 1))" "$log" |
	grep -oE '"GET /v2/[^ ]+/blobs/sha256:[0-9a-f]{64} HTTP/1\.[01]" 200 ' |
	awk '{ n++; d[$2] = 1 } END { print n + 0, length(d) }')
printf '  %-56s %8s s\n' "cold: $tasks x (bv sync && bv run), empty shared cache" \
	"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
printf '  %-56s %8s\n' "  tasks that printed the version" "$ok/$tasks"
printf '  %-56s %8s\n' "  blob GETs (distinct blobs of the image)" "$total ($distinct)"
echo "  (wall times on this machine, load average $(cut -d' ' -f1 /proc/loadavg) now)"
