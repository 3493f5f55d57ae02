#!/bin/bash
# make bench, run latency: `bv run samtools --version` against other ways of running the same
# image, all measured in this run with hyperfine -N (no shell), medians, printed as ratios to
# bv (time of the peer / time of bv: 0.95x means the peer is 5% faster).
#   scripts/bench-run.sh <builddir>
#
# The peers run the very root filesystem or image bv pulled (Debian's samtools 1.16.1 from the
# loopback fixture registry, tests/fixtures/images.sh):
#   ch-run <rootfs> -- samtools --version            (charliecloud; the rootfs bv unpacked)
#   bwrap --bind <rootfs> / --proc /proc --dev /dev --unshare-all /usr/bin/samtools --version
#   crun run                                         (a bundle umoci unpacked from bv's store)
#   podman run --rm --network none <image> samtools --version   (private storage, pulled here)
#   docker run --rm <image> samtools --version       (tests/fixtures/dockerd.sh's daemon)
#   /usr/bin/samtools --version                      (the host's Debian package)
# A peer that cannot run here prints "n/a (reason)" and the rest goes on.
#
# With a bv whose `bv run` has --backend (and tests/fixtures/dockerd.sh running a daemon),
# also `bv run --backend docker` against `docker run --rm`; with --warm, 20 `bv run --warm`
# against 20 `docker run --rm`.  Both are skipped with a note when bv lacks the option.
#
# Started here, stopped here: the fixture registry and the private dockerd (each only if it
# was not running).  As root, when crun would refuse this machine's hybrid cgroups (machine.md
# §0), the v1 hugetlb hierarchy is mounted and left mounted (unmounting it does not give the
# controller back to cgroup v2 anyway).  BENCH_RUN_RUNS (default 40) sets the timed runs of
# the fast peers; the engines (podman, docker) get a quarter of that, at least 10;
# BENCH_WARM_RUNS (default 5) the timed runs of each 20-run loop.
set -euo pipefail

build=${1:?usage: scripts/bench-run.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
# shellcheck source=scripts/bench-lib.sh
. "$top/scripts/bench-lib.sh"
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}
runs=${BENCH_RUN_RUNS:-40}
engine_runs=$((runs / 4 > 10 ? runs / 4 : 10))
warm_n=20
warm_runs=${BENCH_WARM_RUNS:-5}
image=samtools:1.16.1--debian
want="samtools 1.16.1"
export USER=${USER:-$(id -un)} # ch-run needs it

die() {
	echo "bench-run: $*" >&2
	exit 1
}

for c in hyperfine python3 jq; do
	command -v "$c" >/dev/null || die "'$c' is missing (scripts/deps.sh)"
done
[[ -x $bv_bin ]] || die "$bv_bin is missing (ninja -C $build)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-run.XXXXXX")
started_dockerd=false
docker_before=""
docker=()
digest=""
addr=""
warm_started=false
cleanup() {
	local c
	if $warm_started; then
		# the warm session's name is a hash of what it was made with: take it from ls
		(cd "$tmp/proj" && "$bv_bin" session ls 2>/dev/null | awk '$1 ~ /^warm-/ { print $1 }' |
			xargs -r "$bv_bin" session rm >/dev/null 2>&1) || true
	fi
	# Containers that appeared on the fixture daemon during the bench (a --warm container
	# bv keeps for reuse, a run killed half-way) are removed, and only those.
	if ((${#docker[@]})) && [[ -n ${DOCKER_HOST:-} ]]; then
		for c in $("${docker[@]}" ps -aq --no-trunc 2>/dev/null); do
			grep -qxF "$c" <<<"$docker_before" || "${docker[@]}" rm -f "$c" >/dev/null 2>&1 || true
		done
	fi
	if $started_dockerd; then
		# Nobody else used this daemon: drop the tags of this registry port (a new port each
		# time the registry starts), so they do not pile up in the fixture's data root.
		if ((${#docker[@]})); then
			"${docker[@]}" images --format '{{.Repository}}:{{.Tag}} {{.ID}}' 2>/dev/null |
				awk -v a="$addr/" 'index($1, a) == 1 { print ($1 ~ /:<none>$/ ? $2 : $1) }' |
				sort -u | while read -r c; do
				"${docker[@]}" rmi -f "$c" >/dev/null 2>&1 || true
			done
		fi
		"$fixtures/dockerd.sh" stop >/dev/null 2>&1 || true
	fi
	bench_registry_down
	if [[ -d $tmp/crun ]] && command -v crun >/dev/null; then
		for c in $(crun --root "$tmp/crun" list -q 2>/dev/null); do
			crun --root "$tmp/crun" delete -f "$c" >/dev/null 2>&1 || true
		done
	fi
	if [[ -d $tmp/podman ]]; then
		if [[ $(id -u) -eq 0 ]]; then
			# A killed podman may leave its overlay mounts; only those inside tmp are touched.
			awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
				sort -r | while read -r m; do umount "$m" || true; done
		elif command -v podman >/dev/null; then
			podman unshare rm -rf "$tmp/podman" 2>/dev/null || true
		fi
	fi
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The commands below are strings that hyperfine -N splits at blanks.
[[ $tmp != *[[:space:]]* ]] || die "the temporary dir '$tmp' contains blanks"

# first_error FILE: the line of FILE most likely to say what went wrong, shortened in the
# middle (engines put the cause at the end of long lines).
first_error() {
	{ grep -m1 -i -e 'error' -e 'fatal' -e 'denied' -e 'not permitted' -e 'refused' "$1" ||
		head -n1 "$1"; } | awk '{ if (length($0) > 110) $0 = substr($0, 1, 45) " ... " substr($0, length($0) - 59); print }'
}

# measure NAME RUNS COMMAND [WARMUP]: one checked run of COMMAND, whose output must contain $want (the
# samtools version; empty: no check), then hyperfine with WARMUP (default 3) warm-up runs.  Prints the median in ms; on failure prints nothing
# and leaves the reason in $tmp/NAME.why.
measure() {
	local name=$1 n=$2 cmd=$3 warmup=${4:-3}
	# shellcheck disable=SC2086 # split at blanks, as hyperfine -N does
	if ! $cmd >"$tmp/$name.out" 2>"$tmp/$name.err"; then
		echo "failed: $(first_error "$tmp/$name.err")" >"$tmp/$name.why"
		return 0
	fi
	if [[ -n $want ]] && ! grep -qF "$want" "$tmp/$name.out"; then
		echo "printed '$(head -c 60 "$tmp/$name.out" | head -n1)', not '$want'" >"$tmp/$name.why"
		return 0
	fi
	if ! hyperfine -N --style none -w "$warmup" -r "$n" --export-json "$tmp/$name.json" "$cmd" \
		>/dev/null 2>"$tmp/$name.err"; then
		echo "hyperfine failed: $(first_error "$tmp/$name.err")" >"$tmp/$name.why"
		return 0
	fi
	python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' \
		"$tmp/$name.json"
}

# why NAME REASON: records why a peer is not measured.
why() { echo "$2" >"$tmp/$1.why"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "inf" }'; }

rows=()
# row LABEL MS [BASE_MS BASE_NAME]: one line of the table, or "n/a (reason)" when MS is empty.
row() {
	local label=$1 ms=$2 base=${3:-} base_name=${4:-bv} name=${5:-}
	if [[ -z $ms ]]; then
		rows+=("$(printf '%-62s %s' "$label" "n/a ($(cat "$tmp/$name.why" 2>/dev/null || echo "not measured"))")")
	elif [[ -z $base ]]; then
		rows+=("$(printf '%-62s %7s ms' "$label" "$ms")")
	else
		rows+=("$(printf '%-62s %7s ms %7sx %s' "$label" "$ms" "$(ratio "$base" "$ms")" "$base_name")")
	fi
}

# ---- fixtures and the project -----------------------------------------------------------------

bench_registry_up || die "the fixture registry did not start or take the images"
addr=$BENCH_REGISTRY_ADDR
ref=$addr/biocontainers/$image

cp -r "$fixtures/bv-registry" "$tmp/bv-registry"
export BV_REGISTRY=$tmp/bv-registry BV_MIRRORS="quay.io=$addr" BV_CACHE_DIR=$tmp/cache
unset BV_BACKEND
mkdir -p "$tmp/proj"
(
	cd "$tmp/proj"
	"$bv_bin" init bench >/dev/null 2>&1
	"$bv_bin" add samtools >"$tmp/add.out" 2>&1
) || {
	cat "$tmp/add.out" >&2
	die "bv add samtools failed"
}
digest=$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["tools"]["samtools"]["image_digest"])' "$tmp/proj/bv.lock")
rootfs=""
for d in "$BV_CACHE_DIR/rootfs/${digest#sha256:}"-linux-*; do
	[[ ! -d $d ]] || rootfs=$d
done
[[ -x $rootfs/usr/bin/samtools ]] || die "bv add did not unpack samtools into $BV_CACHE_DIR/rootfs"

# ---- bv and the host --------------------------------------------------------------------------

bv_ms=$(cd "$tmp/proj" && measure bv "$runs" "$bv_bin run samtools --version")
[[ -n $bv_ms ]] || die "bv run samtools --version: $(cat "$tmp/bv.why")"

host_ms=""
if [[ -x /usr/bin/samtools ]]; then
	host_ms=$(measure host "$runs" "/usr/bin/samtools --version")
else
	why host "the host has no /usr/bin/samtools (apt-get install samtools)"
fi

# ---- unprivileged runners on bv's root filesystem ---------------------------------------------

ch_ms=""
if command -v ch-run >/dev/null; then
	ch_ms=$(measure ch-run "$runs" "ch-run $rootfs -- samtools --version")
else
	why ch-run "ch-run is not installed (apt-get install charliecloud-runtime)"
fi

bwrap_ms=""
if command -v bwrap >/dev/null; then
	bwrap_ms=$(measure bwrap "$runs" \
		"bwrap --bind $rootfs / --proc /proc --dev /dev --unshare-all /usr/bin/samtools --version")
else
	why bwrap "bwrap is not installed (apt-get install bubblewrap)"
fi

# ---- OCI runtimes and engines -----------------------------------------------------------------

notes=()
# crun 1.8 refuses cgroup v1/v2 hybrids where a controller is still bound to v2 (here hugetlb,
# machine.md §0): "cgroups in hybrid mode not supported".  Binding it to v1 fixes that.
cgroup_hybrid_problem() {
	[[ -r /sys/fs/cgroup/unified/cgroup.controllers ]] &&
		[[ -n $(tr -d ' \n' </sys/fs/cgroup/unified/cgroup.controllers) ]]
}
if cgroup_hybrid_problem && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers &&
	[[ $(id -u) -eq 0 ]]; then
	if mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; then
		notes+=("mounted the v1 hugetlb cgroup at /sys/fs/cgroup/hugetlb for crun and podman (machine.md §0); left mounted")
	fi
fi

crun_ms=""
if ! command -v crun >/dev/null; then
	why crun "crun is not installed (apt-get install crun)"
elif ! command -v umoci >/dev/null; then
	why crun "umoci is not installed (apt-get install umoci)"
elif cgroup_hybrid_problem; then
	why crun "cgroup controllers still on v2 in a hybrid hierarchy: $(cat /sys/fs/cgroup/unified/cgroup.controllers); mount them as v1 as root (machine.md §0)"
elif ! umoci unpack --rootless --image "$BV_CACHE_DIR/store:quay.io/biocontainers/$image" \
	"$tmp/bundle" >/dev/null 2>"$tmp/crun.err"; then
	why crun "umoci unpack of bv's store failed: $(first_error "$tmp/crun.err")"
else
	jq '.process.terminal = false | .process.args = ["/usr/bin/samtools", "--version"]' \
		"$tmp/bundle/config.json" >"$tmp/config.json"
	mv "$tmp/config.json" "$tmp/bundle/config.json"
	crun_ms=$(measure crun "$runs" "crun --root $tmp/crun run -b $tmp/bundle bv-bench-run-$$")
fi

podman_ms=""
if ! command -v podman >/dev/null; then
	why podman "podman is not installed (apt-get install podman)"
else
	printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' '' \
		'[engine]' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' >"$tmp/containers.conf"
	printf '%s\n' '[storage]' 'driver = "overlay"' "graphroot = \"$tmp/podman/root\"" \
		"runroot = \"$tmp/podman/run\"" '' '[storage.options.overlay]' 'skip_mount_home = "true"' \
		>"$tmp/storage.conf"
	pm="podman --root $tmp/podman/root --runroot $tmp/podman/run"
	# shellcheck disable=SC2086 # split at blanks
	if ! CONTAINERS_CONF=$tmp/containers.conf CONTAINERS_STORAGE_CONF=$tmp/storage.conf \
		$pm pull -q --tls-verify=false "$ref" >/dev/null 2>"$tmp/podman.err"; then
		why podman "podman pull failed: $(first_error "$tmp/podman.err")"
	else
		podman_ms=$(CONTAINERS_CONF=$tmp/containers.conf CONTAINERS_STORAGE_CONF=$tmp/storage.conf \
			measure podman "$engine_runs" "$pm run --rm --network none $ref samtools --version")
	fi
fi

docker_ms=""
docker_cli=""
for c in /usr/bin/docker /usr/local/bin/docker; do
	if [[ -x $c ]]; then
		docker_cli=$c
		break
	fi
done
if [[ -z $docker_cli ]]; then
	why docker "no docker CLI (apt-get install docker.io)"
elif [[ ! -x $fixtures/dockerd.sh ]]; then
	why docker "tests/fixtures/dockerd.sh is missing"
elif [[ $(id -u) -ne 0 ]]; then
	why docker "the private dockerd of tests/fixtures/dockerd.sh needs root"
else
	if ! "$fixtures/dockerd.sh" status >/dev/null 2>&1; then
		if "$fixtures/dockerd.sh" start >/dev/null 2>"$tmp/dockerd.err"; then
			started_dockerd=true
		fi
	fi
	if sock=$("$fixtures/dockerd.sh" sock 2>>"$tmp/dockerd.err"); then
		export DOCKER_HOST=unix://$sock
		docker=("$docker_cli")
		docker_before=$("${docker[@]}" ps -aq --no-trunc 2>/dev/null || true)
		if ! "${docker[@]}" pull -q "$ref" >/dev/null 2>"$tmp/docker.err"; then
			why docker "docker pull failed: $(first_error "$tmp/docker.err")"
		else
			docker_ms=$(measure docker "$engine_runs" "$docker_cli run --rm $ref samtools --version")
		fi
	else
		why docker "tests/fixtures/dockerd.sh could not start a daemon: $(first_error "$tmp/dockerd.err")"
	fi
fi

# ---- bv's docker backend and warm runs (when this bv has them) --------------------------------

run_help=$("$bv_bin" run --help 2>&1 || true)
bvd_ms="" warm_ms="" dockern_ms="" dexec_ms=""
if ! grep -q -- --backend <<<"$run_help"; then
	why bv-docker "this bv run has no --backend"
elif [[ -z $docker_ms ]]; then
	why bv-docker "no docker to compare with: $(cat "$tmp/docker.why" 2>/dev/null)"
elif ! (cd "$tmp/proj" && "$bv_bin" sync --backend docker >"$tmp/bv-docker.err" 2>&1); then
	why bv-docker "bv sync --backend docker failed: $(first_error "$tmp/bv-docker.err")"
else
	bvd_ms=$(cd "$tmp/proj" && measure bv-docker "$engine_runs" \
		"$bv_bin run --backend docker samtools --version")
fi

if ! grep -q -- --warm <<<"$run_help"; then
	why bv-warm "this bv run has no --warm"
elif [[ -z $docker_ms ]]; then
	why bv-warm "no docker to compare with: $(cat "$tmp/docker.why" 2>/dev/null)"
else
	# N runs in a row, each a separate process, as a script calls them.  The loop is the
	# same sh for both sides.
	# shellcheck disable=SC2016 # $@ and $(seq) belong to the generated script
	printf 'for i in $(seq %d); do "$@" >/dev/null || exit 1; done\n' "$warm_n" >"$tmp/loop.sh"
	# One warm-up run outside the loop starts the session --warm keeps (bv session rm at the
	# end removes it).
	warm_started=true
	if ! (cd "$tmp/proj" && "$bv_bin" run --warm --backend docker samtools --version \
		>"$tmp/bv-warm.out" 2>"$tmp/bv-warm.err"); then
		why bv-warm "bv run --warm failed: $(first_error "$tmp/bv-warm.err")"
	elif ! grep -qF "$want" "$tmp/bv-warm.out"; then
		why bv-warm "bv run --warm printed '$(head -n1 "$tmp/bv-warm.out")', not '$want'"
	else
		warm_ms=$(cd "$tmp/proj" && want="" measure bv-warm "$warm_runs" \
			"sh $tmp/loop.sh $bv_bin run --warm --backend docker samtools --version" 1)
		dockern_ms=$(want="" measure docker-n "$warm_runs" \
			"sh $tmp/loop.sh $docker_cli run --rm $ref samtools --version" 1)
		# The floor of any exec-based warm run: the docker CLI's own exec into the same
		# container (exec create, start attached, inspect, as bv does).
		warm_c=$("${docker[@]}" ps -q --filter "label=bv.warm=$digest" \
			--filter "label=bv.project=$(cd "$tmp/proj" && pwd -P)" | head -n1)
		if [[ -n $warm_c ]]; then
			dexec_ms=$(want="" measure docker-exec-n "$warm_runs" \
				"sh $tmp/loop.sh $docker_cli exec $warm_c samtools --version" 1)
		else
			why docker-exec-n "no warm container found after bv run --warm"
		fi
	fi
fi

for r in bv:"$bv_ms" ch_run:"$ch_ms" podman:"$podman_ms" docker:"$docker_ms" \
	bv_docker:"$bvd_ms" bv_warm:"$warm_ms" docker_n:"$dockern_ms" docker_exec_n:"$dexec_ms" \
	host:"$host_ms"; do
	bench_result "run_${r%%:*}" "${r#*:}"
done
# CPU time (user + system, mean) of the runs whose work is all in the measured process tree
# (an engine's daemon is not): steadier than wall time on a loaded machine.
for r in bv:bv ch_run:ch-run; do
	[[ -s $tmp/${r#*:}.json ]] || continue
	bench_result "run_${r%%:*}_cpu" "$(python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % ((r["user"] + r["system"]) * 1000))' "$tmp/${r#*:}.json")"
done

# ---- the table --------------------------------------------------------------------------------

row "bv run samtools --version (native)" "$bv_ms" "" "" bv
row "ch-run <rootfs> -- samtools --version" "$ch_ms" "$bv_ms" bv ch-run
row "bwrap --bind <rootfs> / ... --unshare-all samtools --version" "$bwrap_ms" "$bv_ms" bv bwrap
row "crun run (umoci bundle of the same image)" "$crun_ms" "$bv_ms" bv crun
row "podman run --rm --network none" "$podman_ms" "$bv_ms" bv podman
row "docker run --rm" "$docker_ms" "$bv_ms" bv docker
row "/usr/bin/samtools --version (host, no container)" "$host_ms" "$bv_ms" bv host
echo "run latency: samtools --version from the same image (hyperfine -N, 3 warm-up runs, median of $runs; podman and docker $engine_runs)"
printf '%s\n' "${rows[@]}"
if [[ -n $host_ms ]]; then
	echo "(bv run costs $(awk -v a="$bv_ms" -v b="$host_ms" 'BEGIN { printf "%.1f ms over the host binary, %.1fx its time", a - b, a / b }'))"
	# samtools itself takes most of a --version run (its libraries load); what each runtime
	# adds on top of the host binary is the cost of starting a tool through it.
	echo "runtime overhead over the host binary (the same run's medians minus the host's):"
	for peer in ch-run:"$ch_ms" bwrap:"$bwrap_ms" crun:"$crun_ms" podman:"$podman_ms" docker:"$docker_ms"; do
		ms=${peer#*:}
		[[ -n $ms && -n $bv_ms ]] || continue
		awk -v n="${peer%%:*}" -v p="$ms" -v b="$bv_ms" -v h="$host_ms" 'BEGIN {
			bo = b - h; po = p - h
			if (bo > 0) printf "  %-10s %8.1f ms   bv %5.1f ms   %7.1fx bv\n", n, po, bo, po / bo
			else printf "  %-10s %8.1f ms   bv %5.1f ms\n", n, po, bo }'
	done
fi
rows=()
echo
echo "bv's docker backend against docker itself (target: bv adds < 5%)"
row "bv run --backend docker samtools --version" "$bvd_ms" "$docker_ms" "docker run --rm" bv-docker
row "bv run --warm x$warm_n (one process each)" "$warm_ms" "$dockern_ms" "docker run --rm x$warm_n" bv-warm
if [[ -n $warm_ms ]]; then
	row "docker run --rm x$warm_n" "$dockern_ms"
	row "docker exec <bv's warm container> x$warm_n (the exec floor)" "$dexec_ms" "$warm_ms" \
		"bv run --warm x$warm_n" docker-exec-n
fi
printf '%s\n' "${rows[@]}"
for n in "${notes[@]}"; do echo "($n)"; done
