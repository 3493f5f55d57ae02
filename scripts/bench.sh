#!/bin/sh
# make bench: side-by-side timings, measured in this run, printed as ratios.
#   scripts/bench.sh <builddir>
# TOML: every manifest of the sample registry parsed 1000 times, and a generated 1000-tool
# bv.lock parsed and written 20 times, against python3's tomllib on the same bytes.
set -eu
build=${1:?usage: scripts/bench.sh <builddir>}
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
manifest_iterations=${BENCH_MANIFEST_ITERATIONS:-1000}
lock_iterations=${BENCH_LOCK_ITERATIONS:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

seconds() { sed -n 's/.*seconds=\([0-9.]*\).*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.1f", b / a; else print "inf" }'; }

if ! python3 -c 'import tomllib' 2>/dev/null; then
	echo "bench: python3 with tomllib (3.11+) is needed for the comparison" >&2
	exit 1
fi

manifests=$(find "$shared/bv-registry-sample/tools" -name '*.toml' 2>/dev/null | sort)
if [ -z "$manifests" ]; then
	echo "bench: no manifests under $shared/bv-registry-sample/tools" >&2
	exit 1
fi
count=$(echo "$manifests" | wc -l)

# shellcheck disable=SC2086
bv_m=$("$build/bench/bench_toml" manifests "$manifest_iterations" $manifests | seconds)
# shellcheck disable=SC2086
py_m=$(python3 "$top/bench/tomllib_bench.py" "$manifest_iterations" $manifests | seconds)

"$build/bench/bench_toml" genlock 1000 "$tmp/bv.lock"
lock_kib=$(( $(wc -c <"$tmp/bv.lock") / 1024 ))
bv_l=$("$build/bench/bench_toml" lock "$lock_iterations" "$tmp/bv.lock" | seconds)
py_l=$(python3 "$top/bench/tomllib_bench.py" "$lock_iterations" "$tmp/bv.lock" | seconds)

# The project model: a generated 1000-tool registry (a git repository, cloned into the cache
# the way a real registry is) and a project that locks every tool.
"$build/bench/bench_project" gen "$tmp/p" 1000
git -C "$tmp/p/registry" init -q
git -C "$tmp/p/registry" add -A
git -C "$tmp/p/registry" -c user.name=bench -c user.email=bench@localhost commit -qm registry
export BV_CACHE_DIR="$tmp/cache" BV_REGISTRY="file://$tmp/p/registry"
bv_bin=$(cd "$build" && pwd)/bv
(cd "$tmp/p/project" && "$bv_bin" lock --check) || { echo "bench: the generated project is not up to date" >&2; exit 1; }

# Median wall time in milliseconds, measured by hyperfine without a shell (-N).
median_ms() {
	hyperfine -N -w 3 -r 41 --export-json "$tmp/hf.json" "$*" >/dev/null 2>&1 ||
		{ echo "bench: hyperfine failed on '$*'" >&2; exit 1; }
	python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$tmp/hf.json"
}
list_ms=$(cd "$tmp/p/project" && median_ms "$bv_bin" list)
check_ms=$(cd "$tmp/p/project" && median_ms "$bv_bin" lock --check)
version_ms=$(median_ms "$bv_bin" --version)
registry=$("$build/bench/bench_project" registry "$shared/bv-registry-sample" 200)
registry_ms=$(echo "$registry" | awk -F'[= ]' '{ printf "%.2f", $2 * 1000 / $4 }')
registry_n=$(echo "$registry" | sed -n 's/.*manifests=\([0-9]*\).*/\1/p')

printf '%-58s %10s %10s %8s\n' "benchmark" "bv (s)" "tomllib (s)" "speedup"
printf '%-58s %10s %10s %7sx\n' "toml: parse $count manifests x$manifest_iterations" "$bv_m" "$py_m" "$(ratio "$bv_m" "$py_m")"
printf '%-58s %10s %10s %7sx\n' "toml: parse+write 1000-tool bv.lock (${lock_kib} KiB) x$lock_iterations" "$bv_l" "$py_l" "$(ratio "$bv_l" "$py_l")"
echo "(tomllib only parses: the Python standard library has no TOML writer)"
echo
printf '%-58s %10s %10s\n' "benchmark (median)" "bv (ms)" "target"
printf '%-58s %10s %10s\n' "bv --version (start-up)" "$version_ms" ""
printf '%-58s %10s %10s\n' "bv list, 1000-tool project" "$list_ms" "< 20"
printf '%-58s %10s %10s\n' "bv lock --check, 1000-tool project" "$check_ms" "< 20"
printf '%-58s %10s %10s\n' "load the sample registry ($registry_n manifests + types)" "$registry_ms" "< 5"
echo
"$top/scripts/bench-pull.sh" "$build"
echo
# run latency, project scale and issue 18's summary table (it runs bench-run.sh and
# bench-scale.sh, which the Makefile therefore no longer calls on their own)
"$top/scripts/bench-issue18.sh" "$build"
