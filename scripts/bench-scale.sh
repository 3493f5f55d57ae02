#!/bin/bash
# make bench, project scale: bv's project-wide commands on a generated 1000-tool project
# (bench_project gen: bv.toml, bv.lock with its binary index, the kept manifest copies and a
# sealed root filesystem per image, so `bv sync` has nothing to do), against python3 + tomllib
# doing the same reading work (bench/scale_peer.py), both measured in this run with
# hyperfine -N (no shell), medians, as ratios (time of python / time of bv) and against the
# goals of issue 18.  A report, not a test: it fails nothing.
#   scripts/bench-scale.sh <builddir>
# BENCH_SCALE_TOOLS (default 1000) sets the project's size, BENCH_SCALE_RUNS (default 30)
# the timed runs of each command.  BENCH_BASELINE=<builddir> adds a column for another build's
# bv on the same project (say main's, for a before/after in one run; it keeps its own
# .bv/lock.idx, which a different build ignores and rewrites, so both alternate fairly).
set -euo pipefail

build=${1:?usage: scripts/bench-scale.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
tools=${BENCH_SCALE_TOOLS:-1000}
# shellcheck source=scripts/bench-lib.sh
. "$top/scripts/bench-lib.sh"
runs=${BENCH_SCALE_RUNS:-30}

note() { echo "bench-scale: $*" >&2; }
for c in hyperfine python3 git; do
	command -v "$c" >/dev/null || { note "'$c' is missing (scripts/deps.sh)"; exit 0; }
done
python3 -c 'import tomllib' 2>/dev/null || { note "python3 with tomllib (3.11+) is needed"; exit 0; }
[[ -x $bv_bin && -x $build/bench/bench_project ]] || { note "build $build first"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-scale.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$build/bench/bench_project" gen "$tmp" "$tools"
# the registry is a git repository, as a real one is (sync's drift check reads it)
git -C "$tmp/registry" init -q
git -C "$tmp/registry" add -A
git -C "$tmp/registry" -c user.name=bench -c user.email=bench@localhost commit -qm registry
export BV_CACHE_DIR="$tmp/cache" BV_REGISTRY="file://$tmp/registry"
cd "$tmp/project"
# the first sync writes the shims; after it, sync has nothing to do
"$bv_bin" sync >/dev/null 2>&1 || { note "the first 'bv sync' failed"; exit 0; }
"$bv_bin" lock --check >/dev/null 2>&1 || { note "the generated project is not up to date"; exit 0; }
last=$(printf 'tool%04u' $((tools - 1)))

# Median wall time in milliseconds; a command that fails (the shim does: the root filesystems
# are empty) is timed all the same (-i).
median_ms() {
	hyperfine -N -i -w 5 -r "$runs" --export-json "$tmp/hf.json" "$1" >/dev/null 2>&1 ||
		{ echo "n/a"; return; }
	python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$tmp/hf.json"
	# the CPU time (user + system, mean) of the same runs, kept for the note below the table
	python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % ((r["user"] + r["system"]) * 1000))' "$tmp/hf.json" >"$tmp/cpu"
}

peer="python3 $top/bench/scale_peer.py"
base_bin=
if [[ -n ${BENCH_BASELINE:-} ]]; then
	base_bin=$(cd "$BENCH_BASELINE" && pwd)/bv
	[[ -x $base_bin ]] || { note "no bv in BENCH_BASELINE=$BENCH_BASELINE"; base_bin=; }
fi
# the baseline's own copy of the project: each build keeps the .bv/lock.idx it made
if [[ -n $base_bin ]]; then
	cp -a "$tmp/project" "$tmp/project-base"
	(cd "$tmp/project-base" && "$base_bin" sync >/dev/null 2>&1) || true
fi
printf '%-44s %8s %9s %8s %6s  %s' "project of $tools tools (median)" "bv (ms)" "py (ms)" "ratio" "goal" "bv vs goal"
[[ -z $base_bin ]] || printf '  %9s %s' "base (ms)" "base/bv"
printf '\n'
cpu=()
row() { # <label> <goal ms> <bv command> <python command> <key for bench_result>
	local b p o=""
	b=$(median_ms "$3")
	cpu+=("$1: bv $(cat "$tmp/cpu") ms")
	bench_result "scale_${5}_bv_cpu" "$(cat "$tmp/cpu")"
	p=$(median_ms "$4")
	bench_result "scale_${5}_bv" "${b/n\/a/}"
	bench_result "scale_${5}_py" "${p/n\/a/}"
	if [[ -n $base_bin ]]; then
		o=${3//$bv_bin/$base_bin}
		o=$(cd "$tmp/project-base" && median_ms "${o//$tmp\/project\//$tmp/project-base/}")
		cpu[-1]+=", base $(cat "$tmp/cpu") ms"
	fi
	awk -v l="$1" -v g="$2" -v b="$b" -v p="$p" -v o="$o" -v base="${base_bin:+1}" 'BEGIN {
		r = (b + 0 > 0 && p + 0 > 0) ? sprintf("%.1fx", p / b) : "n/a"
		m = (b + 0 > 0) ? (b <= g ? "met" : sprintf("over by %.1f ms", b - g)) : "n/a"
		printf "%-44s %8s %9s %8s %6s  %-16s", l, b, p, r, "<= " g, m
		if (base) printf "  %9s %s", o, (b + 0 > 0 && o + 0 > 0) ? sprintf("%.2fx", o / b) : "n/a"
		printf "\n" }'
}
row "bv list --json" 10 "$bv_bin list --json" "$peer list" list
row "bv list --binaries" 10 "$bv_bin list --binaries" "$peer binaries" binaries
row "bv lock --check" 10 "$bv_bin lock --check" "$peer check" check
row "bv sync (nothing to do, shims current)" 5 "$bv_bin sync" "$peer sync" sync
row "shim .bv/bin/$last (until the exec)" 10 "$tmp/project/.bv/bin/$last --version" "$peer shim $last" shim
echo "(load: $(cut -d' ' -f1-3 /proc/loadavg); medians of $runs runs)"
echo "CPU time (user + system, mean of the same runs; steadier than wall time on a loaded machine):"
printf '  %s\n' "${cpu[@]}"
echo "(python reads the same files and checks less; bv's goal column is issue 18's)"
