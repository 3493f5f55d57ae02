#!/bin/bash
# make bench, project services: `bv up` and `bv ps` against the private dockerd of
# tests/fixtures/dockerd.sh, measured in this run, printed side by side as ratios.
#   scripts/bench-services.sh <builddir>
#
# (a) `bv up` of a three-service project (b depends on a, c on b; each with a healthcheck
#     every 100 ms) from nothing: no network, no containers, the image present.  The floor is
#     the same project brought up by calling the Engine API directly with curl, in the same
#     order: create the network, then for each service create and start its container and
#     poll its health until it is healthy (curl + jq every 20 ms: polling without a pause
#     takes the CPU from the daemon on a two-core machine and slows the floor down).  A second
#     floor makes the same calls from one python3 process on one kept-alive connection
#     (bench/engine_floor.py), polling every 10 ms: no process per call.  Rounds alternate
#     bv, curl, python3, each torn down (untimed, with a second's pause for the daemon to
#     finish cleaning up) before the next; the table has the medians
#     and the best of BENCH_SERVICES_ROUNDS (default 7) rounds and their ratios (target: bv
#     within 10%).
# (b) `bv ps` of a project with 50 running services (a tiny image running sleep, no
#     healthcheck), median of hyperfine -N runs (target: under 50 ms a call).  The 50
#     containers are made with curl as bv up makes them (names, labels), four at a time.
# With BENCH_SERVICES_BASELINE=<builddir>, (b) also times that build's bv ps, for a before and
# after in one run.
#
# Started here, stopped here: the fixture registry and the private dockerd (each only if it
# was not running).  Everything the bench creates on the daemon carries its own project and
# is removed at the end.  It needs root (dockerd) and BV_FIXTURE_DIR (default
# <builddir>/fixtures) like the tests; `make bench` runs it with the build's defaults.
set -euo pipefail

build=${1:?usage: scripts/bench-services.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}
rounds=${BENCH_SERVICES_ROUNDS:-7}
ps_runs=${BENCH_SERVICES_PS_RUNS:-30}
ps_services=50
baseline=${BENCH_SERVICES_BASELINE:-}

die() {
	echo "bench-services: $*" >&2
	exit 1
}

for c in hyperfine python3 jq curl; do
	command -v "$c" >/dev/null || die "'$c' is missing (scripts/deps.sh)"
done
[[ -x $bv_bin ]] || die "$bv_bin is missing (ninja -C $build)"
if [[ $(id -u) -ne 0 ]]; then
	echo "bench-services: skipped: the private dockerd of tests/fixtures/dockerd.sh needs root"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-services.XXXXXX")
[[ $tmp != *[[:space:]]* ]] || die "the temporary dir '$tmp' contains blanks"
started_dockerd=false
sock=""
floor_name="bench-floor-$$"
cleanup() {
	local d
	if [[ -n $sock ]]; then
		for d in "$tmp"/up "$tmp"/ps; do
			[[ ! -f $d/bv.toml ]] || (cd "$d" && "$bv_bin" down >/dev/null 2>&1) || true
		done
		floor_down || true
		py_floor down 2>/dev/null || true
	fi
	if $started_dockerd; then
		"$fixtures/dockerd.sh" stop >/dev/null 2>&1 || true
	fi
	bench_registry_down
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- fixtures ---------------------------------------------------------------------------------

bench_registry_up || die "the fixture registry did not start or take the images"
addr=$BENCH_REGISTRY_ADDR
if ! "$fixtures/dockerd.sh" status >/dev/null 2>&1; then
	"$fixtures/dockerd.sh" start >/dev/null 2>"$tmp/dockerd.err" ||
		die "tests/fixtures/dockerd.sh could not start a daemon: $(tail -n1 "$tmp/dockerd.err")"
	started_dockerd=true
fi
sock=$("$fixtures/dockerd.sh" sock)
export DOCKER_HOST=unix://$sock
image=$addr/biocontainers/bwa:0.7.17--debian

engine() { curl -sS --fail-with-body --unix-socket "$sock" -H 'Content-Type: application/json' "$@"; }
url=http://localhost/v1.41
engine -X POST -o /dev/null "$url/images/create?fromImage=$addr/biocontainers/bwa&tag=0.7.17--debian" ||
	die "the daemon could not pull $image"

# Milliseconds from bash itself: a python3 started to read the clock took 200 ms on a busy
# machine, and that start fell inside the interval it closed.
now_ms() {
	local t=$EPOCHREALTIME
	echo "${t%[.,]*}${t#*[.,]}" | awk '{ printf "%.1f", $1 / 1000 }'
}
median() { python3 -c 'import statistics, sys; print("%.1f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
best() { python3 -c 'import sys; print("%.1f" % min(float(x) for x in sys.argv[1:]))' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "inf" }'; }

# ---- (a) bv up against the Engine API called directly -----------------------------------------

# shellcheck disable=SC2089 # a JSON array for bv.toml and the Engine API, not shell words
sleep_cmd='["/bin/busybox", "sh", "-c", "trap \"exit 0\" TERM; /bin/busybox sleep 3600 & wait"]'
health_test='["CMD", "/bin/busybox", "true"]'
mkdir -p "$tmp/up"
{
	printf '[project]\nname = "bench-up-%s"\n' "$$"
	prev=""
	for svc in a b c; do
		printf '[[services]]\nname = "%s"\nimage = "%s"\ncommand = %s\n' "$svc" "$image" "$sleep_cmd"
		printf 'healthcheck = { test = %s, interval = "100ms", retries = 50 }\n' "$health_test"
		[[ -z $prev ]] || printf 'depends_on = ["%s"]\n' "$prev"
		prev=$svc
	done
} >"$tmp/up/bv.toml"

# The floor: what bv up has to do at least, with nothing but curl (and jq to read answers).
floor_up() {
	local net svc id status
	net=$(engine -d "{\"Name\": \"$floor_name-net\", \"CheckDuplicate\": true}" \
		"$url/networks/create" | jq -r .Id)
	for svc in a b c; do
		id=$(engine -d "{\"Image\": \"$image\", \"Cmd\": $sleep_cmd,
			\"Healthcheck\": {\"Test\": $health_test, \"Interval\": 100000000, \"Retries\": 50},
			\"HostConfig\": {\"NetworkMode\": \"$net\"},
			\"NetworkingConfig\": {\"EndpointsConfig\": {\"$net\": {\"Aliases\": [\"$svc\"]}}}}" \
			"$url/containers/create?name=$floor_name-$svc" | jq -r .Id)
		engine -X POST "$url/containers/$id/start"
		status=$(engine "$url/containers/$id/json" | jq -r .State.Health.Status)
		while [[ $status != healthy ]]; do
			sleep 0.02
			status=$(engine "$url/containers/$id/json" | jq -r .State.Health.Status)
		done
	done
}
floor_down() {
	local svc
	for svc in a b c; do
		curl -s --unix-socket "$sock" -X DELETE -o /dev/null "$url/containers/$floor_name-$svc?force=1"
	done
	curl -s --unix-socket "$sock" -X DELETE -o /dev/null "$url/networks/$floor_name-net"
}

py_floor() {
	python3 "$top/bench/engine_floor.py" "$sock" "$1" "$floor_name-py" "$image" "$sleep_cmd" \
		"$health_test" a b c
}

# After a teardown dockerd goes on cleaning up (network namespaces, mounts) for a while; the
# next round, whoever's it is, must not pay for that.  Without this pause the side timed
# right after a forced removal came out up to 30% slower.
settle() { sleep 1; }

bv_times=() floor_times=() py_times=()
(cd "$tmp/up" && "$bv_bin" up >"$tmp/up.out" 2>&1 && "$bv_bin" down >/dev/null 2>&1) || {
	cat "$tmp/up.out" >&2
	die "bv up of the three-service project failed"
}
floor_up
floor_down
py_floor up >/dev/null
py_floor down
settle
for _ in $(seq "$rounds"); do
	t0=$(now_ms)
	(cd "$tmp/up" && "$bv_bin" up >"$tmp/up.out" 2>&1) || {
		cat "$tmp/up.out" >&2
		die "bv up failed"
	}
	t1=$(now_ms)
	bv_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
	(cd "$tmp/up" && "$bv_bin" down >/dev/null 2>&1)
	settle
	t0=$(now_ms)
	floor_up
	t1=$(now_ms)
	floor_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
	floor_down
	settle
	py_times+=("$(py_floor up)")
	py_floor down
	settle
done
bv_up_ms=$(median "${bv_times[@]}")
floor_up_ms=$(median "${floor_times[@]}")
py_up_ms=$(median "${py_times[@]}")
bv_best=$(best "${bv_times[@]}")
floor_best=$(best "${floor_times[@]}")
py_best=$(best "${py_times[@]}")

# ---- (b) bv ps of 50 running services ---------------------------------------------------------

mkdir -p "$tmp/ps"
ps_project="bench-ps-$$"
{
	printf '[project]\nname = "%s"\n' "$ps_project"
	for i in $(seq -w "$ps_services"); do
		printf '[[services]]\nname = "s%s"\nimage = "%s"\ncommand = %s\n' "$i" "$image" "$sleep_cmd"
	done
} >"$tmp/ps/bv.toml"
# The containers are made as bv up makes them (name, labels), but with curl and four at a
# time: bv up would wait a second for each service without a healthcheck to settle, and 50
# healthchecks every 100 ms would keep the daemon busy while bv ps is timed.
ps_root=$(cd "$tmp/ps" && pwd -P)
make_ps_container() {
	local name="bv-$ps_project-s$1"
	engine -d "{\"Image\": \"$image\", \"Cmd\": $sleep_cmd,
		\"Labels\": {\"bv.project\": \"$ps_root\", \"bv.service\": \"s$1\"},
		\"HostConfig\": {\"NetworkMode\": \"none\"}}" \
		"$url/containers/create?name=$name" >/dev/null &&
		engine -X POST "$url/containers/$name/start"
}
export -f make_ps_container engine
# shellcheck disable=SC2090 # the JSON text is passed on as it is
export image sleep_cmd ps_root ps_project url sock
t0=$(now_ms)
seq -w "$ps_services" | xargs -P 4 -I{} bash -c 'make_ps_container {}' ||
	die "could not start the $ps_services containers of bv ps"
t1=$(now_ms)
ps_up_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
rows=$(cd "$tmp/ps" && "$bv_bin" ps | grep -c ' running ')
[[ $rows -eq $ps_services ]] || die "bv ps shows $rows running services, not $ps_services"
ps_ms() {
	(cd "$tmp/ps" && hyperfine -N --style none -w 3 -r "$ps_runs" --export-json "$tmp/hf.json" \
		"$1 ps" >/dev/null 2>"$tmp/hf.err") || die "hyperfine failed: $(tail -n1 "$tmp/hf.err")"
	python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' \
		"$tmp/hf.json"
}
bv_ps_ms=$(ps_ms "$bv_bin")
base_ps_ms=""
if [[ -n $baseline ]]; then
	[[ -x $baseline/bv ]] || die "BENCH_SERVICES_BASELINE: $baseline/bv is missing"
	base_ps_ms=$(ps_ms "$(cd "$baseline" && pwd)/bv")
fi

# ---- the table --------------------------------------------------------------------------------

echo "project services on dockerd $(engine "$url/version" | jq -r .Version) (tests/fixtures/dockerd.sh)"
printf '%-62s %9s %9s %s\n' "benchmark (median; best of the rounds)" "bv (ms)" "floor" "ratio (target)"
printf '%-62s %9s %9s %sx (< 1.10)\n' "bv up, 3 services with healthchecks, from nothing ($rounds rounds)" \
	"$bv_up_ms" "$floor_up_ms" "$(ratio "$floor_up_ms" "$bv_up_ms")"
printf '%-62s %9s %9s %sx\n' "  best round" "$bv_best" "$floor_best" "$(ratio "$floor_best" "$bv_best")"
printf '%-62s %9s %9s %sx\n' "  against one process on one connection (python3)" \
	"$bv_up_ms" "$py_up_ms" "$(ratio "$py_up_ms" "$bv_up_ms")"
printf '%-62s %9s %9s %sx\n' "  best round" "$bv_best" "$py_best" "$(ratio "$py_best" "$bv_best")"
printf '%-62s %9s %9s %s\n' "bv ps, $ps_services running services (hyperfine -N, $ps_runs runs)" "$bv_ps_ms" "" "(< 50 ms)"
if [[ -n $base_ps_ms ]]; then
	printf '%-62s %9s\n' "bv ps of BENCH_SERVICES_BASELINE" "$base_ps_ms"
fi
echo "(floor: the same calls made with curl and jq, health polled every 20 ms, or from python3"
echo " on one kept-alive connection (bench/engine_floor.py), health polled every 10 ms;"
echo " ratio = bv / floor; rounds alternate bv, curl, python3;"
echo " the $ps_services containers of bv ps were made with curl, four at a time, in $ps_up_s s)"
