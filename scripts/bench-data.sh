#!/bin/bash
# make bench, reference data: `bv data fetch` of a 1 GiB dataset from a loopback HTTP server
# against `curl -o` of the same file, in the same run, alternating, BENCH_DATA_RUNS times each
# (default 3), medians.  bv's time includes what curl does not do: SHA-256 of every byte (in
# the write callback), the size check, one fsync and the atomic publish.  Goal: bv within 10%
# of curl, peak RSS under 32 MB (/usr/bin/time -v).
#   scripts/bench-data.sh <builddir>
# The server is tests/e2e/fixtures/data_server.py on 127.0.0.1, started and stopped (by PID)
# here.  BENCH_DATA_MIB (default 1024) sets the size.
set -euo pipefail

build=${1:?usage: scripts/bench-data.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
runs=${BENCH_DATA_RUNS:-3}
mib=${BENCH_DATA_MIB:-1024}
bv=$build/bv

die() {
	echo "bench-data: $*" >&2
	exit 1
}
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (the 'time' package, scripts/deps.sh)"
command -v curl >/dev/null || die "'curl' is missing (scripts/deps.sh)"

work=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-data.XXXXXX")
pid=
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/srv" "$work/reg/data/bench"
head -c $((mib << 20)) /dev/urandom >"$work/srv/bench.bin"
sha=$(sha256sum "$work/srv/bench.bin" | cut -d' ' -f1)
python3 "$top/tests/e2e/fixtures/data_server.py" --root "$work/srv" --port-file "$work/port" \
	--chunk $((8 << 20)) >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.05; done
[[ -s $work/port ]] || die "the data server did not start"
url=http://127.0.0.1:$(cat "$work/port")/bench.bin
cat >"$work/reg/data/bench/1.toml" <<EOF
[data]
id = "bench"
version = "1"
source_urls = ["$url"]
size_bytes = $((mib << 20))
sha256 = "sha256:$sha"
format = "bin"
post_download_action = "noop"
EOF

# seconds and peak RSS (KiB) of one command, from /usr/bin/time -v
measure() {
	local out=$work/time.txt
	/usr/bin/time -v -o "$out" "$@" >/dev/null 2>&1 || die "failed: $*"
	local wall rss
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
		for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$out")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
	echo "$wall $rss"
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

bv_times=() curl_times=() both_times=() bv_rss=()
for ((i = 0; i < runs; i++)); do
	# each starts with no dirty pages of the other's 1 GiB to write back (bv fsyncs)
	rm -rf "$work/curl.out"
	sync
	read -r t _ < <(measure curl -s -f -o "$work/curl.out" "$url")
	curl_times+=("$t")
	# for reference only: what a script would do to get the same guarantee
	rm -rf "$work/curl.out"
	sync
	read -r t _ < <(measure sh -c 'curl -s -f -o "$1" "$2" && sha256sum "$1"' sh "$work/curl.out" "$url")
	both_times+=("$t")
	chmod -R u+w "$work/cache" 2>/dev/null || true
	rm -rf "$work/cache"
	sync
	read -r t rss < <(measure env BV_CACHE_DIR="$work/cache" BV_REGISTRY="$work/reg" HOME="$work" \
		"$bv" data fetch bench --yes)
	bv_times+=("$t")
	bv_rss+=("$rss")
	cmp -s "$work/cache/data/bench/1/bench.bin" "$work/srv/bench.bin" || die "bv's copy differs"
done
bv_s=$(printf '%s\n' "${bv_times[@]}" | median)
curl_s=$(printf '%s\n' "${curl_times[@]}" | median)
both_s=$(printf '%s\n' "${both_times[@]}" | median)
rss=$(printf '%s\n' "${bv_rss[@]}" | sort -g | tail -1)
ratio=$(awk -v a="$bv_s" -v b="$curl_s" 'BEGIN {printf "%.3f", a / b}')
printf 'bench-data: %d MiB from loopback, median of %d: bv %.2f s, curl -o %.2f s, ratio %s; bv peak RSS %.1f MB\n' \
	"$mib" "$runs" "$bv_s" "$curl_s" "$ratio" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')"
printf 'bench-data: for reference, curl -o then sha256sum %.2f s\n' "$both_s"
awk -v r="$ratio" -v k="$rss" 'BEGIN {
	if (r > 1.10) print "bench-data: over the goal: bv more than 10% slower than curl"
	if (k > 32 * 1024) print "bench-data: over the goal: peak RSS above 32 MB" }'
