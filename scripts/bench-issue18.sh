#!/bin/bash
# make bench, issue 18's table in one run (called by scripts/bench.sh): runs bench-run.sh,
# bench-pull.sh --cold-only and bench-scale.sh with fewer repetitions, printing their own
# tables as they come, gathers their figures through BENCH_RESULTS (scripts/bench-lib.sh) and
# ends with every row of the issue side by side, as ratios, with the goal, and two floor rows
# (/bin/true and bv --version: what any process costs on this machine).  A report, not a
# test: a part that fails leaves its rows "n/a" (its output above says why) and the script
# still exits 0.  The parts' BENCH_* knobs pass through (defaults here: BENCH_RUN_RUNS=20,
# BENCH_WARM_RUNS=2, BENCH_PULL_RUNS=3, BENCH_SCALE_RUNS=15).
#   scripts/bench-issue18.sh <builddir>
set -uo pipefail

build=${1:?usage: scripts/bench-issue18.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-issue18.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export BENCH_RESULTS=$tmp/results
: >"$BENCH_RESULTS"

part() { # <name> <command...>: one script with a deadline, its failure noted
	local name=$1
	shift
	timeout 900 "$@" || echo "bench-issue18: $name failed or timed out; its rows are n/a" >&2
	echo
}
part run env BENCH_RUN_RUNS="${BENCH_RUN_RUNS:-20}" BENCH_WARM_RUNS="${BENCH_WARM_RUNS:-2}" \
	"$top/scripts/bench-run.sh" "$build"
part pull env BENCH_PULL_RUNS="${BENCH_PULL_RUNS:-3}" "$top/scripts/bench-pull.sh" "$build" --cold-only
part scale env BENCH_SCALE_RUNS="${BENCH_SCALE_RUNS:-15}" "$top/scripts/bench-scale.sh" "$build"

# The floor of any process on this machine: a program that does nothing, and bv printing its
# version, so the millisecond goals below can be read against what an exec alone costs here.
floor_ms() {
	hyperfine -N -w 5 -r "${BENCH_FLOOR_RUNS:-30}" --export-json "$tmp/floor.json" "$1" >/dev/null 2>&1 &&
		python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$tmp/floor.json"
}
if command -v hyperfine >/dev/null; then
	bench_floor_true=$(floor_ms /bin/true)
	bench_floor_bv=$(floor_ms "$build/bv --version")
fi

get() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$BENCH_RESULTS"; }

# row LABEL BV PEER_LABEL PEER HOW GOAL: HOW is "peer/bv" (peer's time over bv's: above 1 bv
# is faster), "bv/peer" (bv's over the peer's: the overhead factor) or "ms" (bv against a
# time in the goal, no peer).
row() {
	awk -v l="$1" -v b="$2" -v pl="$3" -v p="$4" -v how="$5" -v g="$6" 'BEGIN {
		bc = (b == "") ? "n/a" : b " ms"
		pc = (p == "") ? "n/a" : pl " " p " ms"
		if (how == "ms") pc = "-"
		r = "n/a"
		if (b + 0 > 0 && p + 0 > 0) {
			if (how == "peer/bv") r = sprintf("%.2fx", p / b)
			else if (how == "bv/peer") r = sprintf("%.2fx", b / p)
			else if (how == "+%") r = sprintf("%+.1f%%", (b / p - 1) * 100)
		}
		printf "%-44s %11s  %-28s %9s  %s\n", l, bc, pc, r, g }'
}

printf '%-44s %11s  %-28s %9s  %s\n' "issue 18 (medians, this run)" "bv" "peer" "ratio" "goal"
row "bv run samtools --version (native)" "$(get run_bv)" ch-run "$(get run_ch_run)" bv/peer "bv/ch-run <= 1.0x"
row "  same, CPU time (user+sys, mean)" "$(get run_bv_cpu)" ch-run "$(get run_ch_run_cpu)" bv/peer "bv/ch-run <= 1.0x"
row "bv run vs docker run --rm" "$(get run_bv)" docker "$(get run_docker)" peer/bv ">= 50x"
row "bv run vs podman run --rm" "$(get run_bv)" podman "$(get run_podman)" peer/bv ">= 50x"
# The runs' own time: samtools --version alone, on the host, bounds every ratio against the
# engines (docker's time over the host binary's is the most any runtime could reach), so the
# overheads (each median minus the host's) are shown too.
over() { awk -v a="$1" -v h="$2" 'BEGIN { if (a + 0 > 0 && h + 0 > 0) printf "%.1f", a - h }'; }
host=$(get run_host)
row "  the host's samtools --version, no container" "$host" - "" ms "(bounds the ratios above)"
row "  overhead over the host: bv vs docker" "$(over "$(get run_bv)" "$host")" docker "$(over "$(get run_docker)" "$host")" peer/bv ">= 50x"
row "  overhead over the host: bv vs podman" "$(over "$(get run_bv)" "$host")" podman "$(over "$(get run_podman)" "$host")" peer/bv ">= 50x"
row "cold pull of 4 images vs skopeo+umoci" "$(get pull_bv)" skopeo+umoci "$(get pull_skopeo_umoci)" peer/bv ">= 3x"
row "cold pull of 4 images vs podman pull" "$(get pull_bv)" podman "$(get pull_podman)" peer/bv ">= 3x"
row "bv list --json, 1000 tools" "$(get scale_list_bv)" python3+tomllib "$(get scale_list_py)" peer/bv "<= 10 ms"
row "bv list --binaries, 1000 tools" "$(get scale_binaries_bv)" python3+tomllib "$(get scale_binaries_py)" peer/bv "<= 10 ms"
row "bv lock --check, 1000 tools" "$(get scale_check_bv)" python3+tomllib "$(get scale_check_py)" peer/bv "<= 10 ms"
row "bv sync, nothing to do, 1000 tools" "$(get scale_sync_bv)" python3+tomllib "$(get scale_sync_py)" peer/bv "<= 5 ms"
row "shim until the exec, 1000 tools" "$(get scale_shim_bv)" python3+tomllib "$(get scale_shim_py)" peer/bv "<= 10 ms"
row "bv run --backend docker vs docker run --rm" "$(get run_bv_docker)" docker "$(get run_docker)" +% "< +2%"
row "20 x bv run --warm vs 20 x docker run --rm" "$(get run_bv_warm)" docker "$(get run_docker_n)" peer/bv ">= 8x"
row "  20 x docker exec into the same container" "$(get run_docker_exec_n)" docker "$(get run_docker_n)" peer/bv "(the floor of exec)"
row "floor: /bin/true (an exec, nothing else)" "${bench_floor_true:-}" - "" ms "-"
row "floor: bv --version" "${bench_floor_bv:-}" - "" ms "-"
echo "(load: $(cut -d' ' -f1-3 /proc/loadavg); wall-clock medians are only comparable within this run)"
