#!/usr/bin/env bats
# The docker backend (src/lib/runtime/docker.c on the Engine API client src/lib/engine/engine.c) against a
# private dockerd (tests/fixtures/dockerd.sh) and against Podman's Docker-compatible service
# (tests/fixtures/podman-service.sh), with Debian's samtools and bwa images from the loopback
# registry (tests/fixtures/images.sh), pulled by the engine itself through BV_MIRRORS.
# Checks with curl on the engine's socket never go through bv.  Every scenario runs on both
# engines: "docker: ..." and "podman: ...".

load lib/common

FIX=$BV_SOURCE_DIR/tests/fixtures

setup_file() {
	[ -x "${BV_DOCKERD:-/usr/sbin/dockerd}" ] || skip "dockerd not installed"
	fixture_images_up
	# stop only the daemons this file started
	"$FIX/dockerd.sh" status >/dev/null 2>&1 || touch "$BATS_FILE_TMPDIR/dockerd-started"
	DOCKERD_SOCK=$("$FIX/dockerd.sh" start)
	PODMAN_SOCK=
	if command -v podman >/dev/null; then
		"$FIX/podman-service.sh" status >/dev/null 2>&1 ||
			touch "$BATS_FILE_TMPDIR/podman-started"
		PODMAN_SOCK=$("$FIX/podman-service.sh" start)
	fi
	RUN_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	cp -r "$FIX/bv-registry" "$RUN_REGISTRY"
	# the image's /bin/sh as a second binary of samtools, so tests can run shell in it
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$RUN_REGISTRY"/tools/samtools/*.toml
	cat >>"$RUN_REGISTRY"/tools/samtools/1.16.1.toml <<'TOML'

[tool.entrypoint.env]
BV_TEST_FROM_MANIFEST = "manifest"
TOML
	SAMTOOLS_DIGEST=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' \
		"docker://$ADDR/biocontainers/samtools:1.16.1--debian")
	BWA_DIGEST=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' \
		"docker://$ADDR/biocontainers/bwa:0.7.17--debian")
	export ADDR DOCKERD_SOCK PODMAN_SOCK RUN_REGISTRY SAMTOOLS_DIGEST BWA_DIGEST
}

teardown_file() {
	if [ -e "$BATS_FILE_TMPDIR/dockerd-started" ]; then
		"$FIX/dockerd.sh" stop >/dev/null 2>&1 || true
	fi
	if [ -e "$BATS_FILE_TMPDIR/podman-started" ]; then
		"$FIX/podman-service.sh" stop >/dev/null 2>&1 || true
	fi
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache" BV_REGISTRY="$RUN_REGISTRY"
	export BV_MIRRORS="quay.io=$ADDR" BV
	PROJ="$BATS_TEST_TMPDIR/proj"
	mkdir -p "$PROJ" && cd "$PROJ" || return 1
	bv init align >/dev/null 2>&1
	allow_shell_binary
}

# use_engine docker|podman: points DOCKER_HOST at the engine and makes the project's images
# available on it (bv add on the first use of a test, bv sync after).
use_engine() {
	case $1 in
	docker) SOCK=$DOCKERD_SOCK ;;
	podman)
		[ -n "$PODMAN_SOCK" ] || skip "podman not installed"
		SOCK=$PODMAN_SOCK
		;;
	esac
	export DOCKER_HOST="unix://$SOCK" SOCK ENGINE=$1
	local out
	if [ -e bv.lock ]; then
		out=$(bv sync --backend docker 2>&1) || fail "bv sync failed: $out"
	else
		out=$(bv add samtools bwa --backend docker 2>&1) || fail "bv add failed: $out"
	fi
}

# engine METHOD PATH: curl on the engine's socket; prints the body, then the status code.
engine() {
	curl -s -X "$1" --unix-socket "$SOCK" -w '\n%{http_code}' "http://engine/v1.41$2"
}

image_status() {
	engine GET "/images/$ADDR/biocontainers/$1/json" | tail -n1
}

# the containers bv left behind for this test's project (there must be none)
leftovers() {
	local f
	f=$(jq -rn --arg p "$PROJ" '{"label": ["bv.project=" + $p]} | @uri')
	engine GET "/containers/json?all=1&filters=$f" | head -n1 | jq length
}

# ------------------------------------------------------------------------------------------

check_unit_tests() {
	local podman=0
	[ "$ENGINE" = podman ] && podman=1
	run env BV_TEST_DOCKER_SOCK="$DOCKER_HOST" BV_TEST_EXPECT_PODMAN=$podman \
		BV_TEST_IMAGE="$ADDR/biocontainers/samtools" BV_TEST_DIGEST="$SAMTOOLS_DIGEST" \
		"$BV_BUILD_DIR/tests/unit/lib/test_lib_engine"
	assert_success
	assert_output --partial "PASSED  ] 21 test(s)"
	refute_output --partial "SKIPPED"
	run env BV_TEST_DOCKER_SOCK="$DOCKER_HOST" \
		BV_TEST_REFERENCE=quay.io/biocontainers/samtools:1.16.1--debian \
		BV_TEST_DIGEST="$SAMTOOLS_DIGEST" "$BV_BUILD_DIR/tests/unit/lib/test_lib_docker"
	assert_success
	assert_output --partial "PASSED  ] 7 test(s)"
	refute_output --partial "SKIPPED"
}

check_add_sync() {
	# the engine has what bv.lock pins, under the mirror's name and the locked digest
	grep -q "image_digest = \"$SAMTOOLS_DIGEST\"" bv.lock
	[ "$(image_status "samtools@$SAMTOOLS_DIGEST")" = 200 ]
	[ "$(image_status "bwa@$BWA_DIGEST")" = 200 ]
	run bv sync --backend docker
	assert_success
	assert_output --partial "Everything is up to date (2 tools)"
	# gone from the engine: sync pulls both again, by digest
	engine DELETE "/images/$ADDR/biocontainers/samtools@$SAMTOOLS_DIGEST" >/dev/null
	engine DELETE "/images/$ADDR/biocontainers/bwa@$BWA_DIGEST" >/dev/null
	[ "$(image_status "samtools@$SAMTOOLS_DIGEST")" = 404 ]
	run bv sync --backend docker
	assert_success
	assert_output --partial "Synced 2 tools (2 pulled, docker backend)"
	[ "$(image_status "samtools@$SAMTOOLS_DIGEST")" = 200 ]
	[ "$(image_status "bwa@$BWA_DIGEST")" = 200 ]
}

check_run_and_status() {
	run bv run --backend docker samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv run --backend docker samtools view nonexistent
	assert_failure 1
	assert_output --partial 'failed to open "nonexistent"'
	run bv run --backend docker sh -c 'echo to-out; echo to-err >&2; exit 7'
	assert_failure 7
	assert_line "to-out"
	assert_line "to-err"
	[ "$(leftovers)" = 0 ]
}

check_pipes() {
	run /bin/sh -c 'printf "hello\n" | "$BV" run --backend docker sh -c "cat; echo done"'
	assert_success
	assert_output "hello
done"
	printf '@SQ\tSN:chr1\tLN:100\nr1\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n' >in.sam
	run /bin/sh -c 'printf "@SQ\tSN:c\tLN:9\nr\t0\tc\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n" |
		"$BV" run --backend docker samtools view -c -'
	assert_success
	assert_output "1"
	run /bin/sh -c '"$BV" run --backend docker samtools view -b in.sam |
		"$BV" run --backend docker samtools view -c -'
	assert_success
	assert_output "1"
	# stdin closed or /dev/null: the tool sees EOF
	# (inside sh: bats' `run` would hand its own output pipe to a closed stdin)
	run /bin/sh -c 'timeout 60 "$BV" run --backend docker sh -c "cat; echo end" <&-'
	assert_success
	assert_output "end"
	run /bin/sh -c 'timeout 60 "$BV" run --backend docker sh -c "cat; echo end" </dev/null'
	assert_success
	assert_output "end"
	# a large stream both ways (more than any socket or pipe buffer)
	run /bin/sh -c 'head -c 3000000 /dev/zero | tr "\0" x |
		"$BV" run --backend docker sh -c "cat; cat >&2" 2>/dev/null | wc -c'
	assert_success
	assert_output "3000000"
}

check_bwa_pipeline() {
	# a reference, reads cut from it, bwa index in /workspace, then bwa mem | samtools
	python3 - <<'PY'
import random
random.seed(7)
ref = "".join(random.choice("ACGT") for _ in range(5000))
open("ref.fa", "w").write(">chr1\n" + "\n".join(ref[i:i + 60] for i in range(0, 5000, 60)) + "\n")
with open("reads.fq", "w") as f:
    for i in range(40):
        s = ref[i * 100:i * 100 + 100]
        f.write("@r%d\n%s\n+\n%s\n" % (i, s, "I" * 100))
PY
	run bv run --backend docker bwa index ref.fa
	assert_success
	[ -s ref.fa.bwt ]
	run /bin/sh -c '"$BV" run --backend docker bwa mem ref.fa reads.fq 2>/dev/null |
		"$BV" run --backend docker samtools view -c -F 4 -'
	assert_success
	assert_output "40"
}

check_workspace_owner() {
	run bv run --backend docker sh -c 'pwd; echo data > made.txt; id -u'
	assert_success
	assert_line --index 0 "/workspace"
	assert_line --index 1 "$(id -u)"
	[ "$(stat -c %u:%g made.txt)" = "$(id -u):$(id -g)" ]
	mkdir -p sub/dir && cd sub/dir
	run bv run --backend docker sh -c 'pwd; cat ../../made.txt'
	assert_success
	assert_output "/workspace/sub/dir
data"
	cd "$PROJ"
	[ "$(id -u)" = 0 ] || return 0
	# an unprivileged caller with access to the socket (its group, as a docker user has)
	for d in "$PROJ" "$BV_CACHE_DIR"; do
		while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
	done
	chmod -R a+rwX "$PROJ" "$BV_CACHE_DIR"
	# Podman's service makes its socket root's only; give it a group like dockerd's (not
	# root's group: a member of it would lose the "other" bits of the bats directories)
	if [ "$(stat -c %g "$SOCK")" = 0 ]; then
		chgrp 65534 "$SOCK"
		chmod 0660 "$SOCK"
	fi
	reachable=$(reachable_bv)
	# the socket lives in the build directory, which may be closed to other users: the
	# caller reaches it through a bind mount beside the copy of bv
	: >"$BATS_TEST_TMPDIR/reach/engine.sock"
	mount --bind "$SOCK" "$BATS_TEST_TMPDIR/reach/engine.sock"
	run setpriv --reuid 65534 --regid 65534 --groups "$(stat -c %g "$SOCK")" env HOME=/tmp \
		DOCKER_HOST="unix://$BATS_TEST_TMPDIR/reach/engine.sock" \
		"$reachable" run --backend docker sh -c 'id -u; echo $HOME; touch mine'
	umount "$BATS_TEST_TMPDIR/reach/engine.sock"
	assert_success
	assert_line --index 0 "65534"
	assert_line --index 1 "/tmp"
	[ "$(stat -c %u:%g mine)" = 65534:65534 ]
}

check_env() {
	run bv run --backend docker sh -c 'echo "$BV_TEST_FROM_MANIFEST|$HOME|$PATH"'
	assert_success
	assert_output "manifest|/tmp|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	FOO_FROM_HOST=leak run bv run --backend docker sh -c 'echo "[${FOO_FROM_HOST:-}]"'
	assert_output "[]"
}

# start_bg ARGS...: bv run in the background, output in $BATS_TEST_TMPDIR/out, waits for
# "ready" on it; the pid is in $pid.
start_bg() {
	: >"$BATS_TEST_TMPDIR/out"
	"$BV" run --backend docker "$@" >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		grep -q ready "$BATS_TEST_TMPDIR/out" && return 0
		sleep 0.05
	done
	fail "the tool did not start: $(cat "$BATS_TEST_TMPDIR/out")"
}

check_signals() {
	# a tool that handles the signal
	start_bg sh -c 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 3 ]
	grep -q got-term "$BATS_TEST_TMPDIR/out"
	# a second interrupt kills whatever ignores the first
	start_bg sh -c 'trap "" INT; echo ready; sleep 60'
	kill -INT "$pid"
	sleep 0.5
	kill -INT "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 137 ]
	[ "$(leftovers)" = 0 ]
}

# dockerd has an init as PID 1, so a tool without handlers dies of the signal like a native
# one, and a shell's `kill $$` works
check_signals_reach_plain_tools() {
	mkfifo fifo
	exec 7<>fifo
	: >"$BATS_TEST_TMPDIR/out"
	"$BV" run --backend docker samtools view - <fifo >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	sleep 1.5
	kill -INT "$pid"
	status=0
	wait "$pid" || status=$?
	exec 7>&-
	[ "$status" -eq 130 ]
	run bv run --backend docker sh -c 'kill -TERM $$'
	assert_failure 143
}

check_closed_stdout() {
	# `bv run ... | head` must end (the tool gets SIGPIPE's effect) and leave nothing behind
	run timeout 60 /bin/sh -c '"$BV" run --backend docker sh -c "yes" | head -n 2'
	assert_success
	assert_output "y
y"
	[ "$(leftovers)" = 0 ]
}

check_errors() {
	run bv run --backend docker samtools --version
	assert_success
	engine DELETE "/images/$ADDR/biocontainers/samtools@$SAMTOOLS_DIGEST" >/dev/null
	run bv run --backend docker samtools --version
	assert_failure 125
	assert_output --partial "is not on this machine (docker backend)"
	assert_output --partial "bv sync --backend docker"
	DOCKER_HOST="unix://$BATS_TEST_TMPDIR/no.sock" run bv run --backend docker samtools --version
	assert_failure 125
	assert_output --partial "the Docker daemon is not running at '$BATS_TEST_TMPDIR/no.sock'"
	DOCKER_HOST="tcp://127.0.0.1:2375" run bv sync --backend docker
	assert_failure
	assert_output --partial "bv talks to engines on unix:// sockets only"
	run bv sync --backend docker
	assert_success
	assert_output --partial "Synced 2 tools (1 pulled, docker backend)"
}

# ------------------------------------------------------------------------------------------

@test "docker: engine and backend unit tests against the real engine" {
	use_engine docker
	check_unit_tests
}

@test "podman: engine and backend unit tests against the real engine" {
	use_engine podman
	check_unit_tests
}

@test "docker: add and sync pull by digest through the mirror; sync only pulls what is missing" {
	use_engine docker
	check_add_sync
}

@test "podman: add and sync pull by digest through the mirror; sync only pulls what is missing" {
	use_engine podman
	check_add_sync
}

@test "docker: run passes output and exit status through and removes the container" {
	use_engine docker
	check_run_and_status
}

@test "podman: run passes output and exit status through and removes the container" {
	use_engine podman
	check_run_and_status
}

@test "docker: stdin and pipes flow through bv run" {
	use_engine docker
	check_pipes
}

@test "podman: stdin and pipes flow through bv run" {
	use_engine podman
	check_pipes
}

@test "docker: bwa index, then bwa mem | samtools view" {
	use_engine docker
	check_bwa_pipeline
}

@test "podman: bwa index, then bwa mem | samtools view" {
	use_engine podman
	check_bwa_pipeline
}

@test "docker: /workspace follows the caller's directory; files belong to the caller" {
	use_engine docker
	check_workspace_owner
}

@test "podman: /workspace follows the caller's directory; files belong to the caller" {
	use_engine podman
	check_workspace_owner
}

@test "docker: environment: manifest env, HOME=/tmp, nothing from the host" {
	use_engine docker
	check_env
}

@test "podman: environment: manifest env, HOME=/tmp, nothing from the host" {
	use_engine podman
	check_env
}

@test "docker: signals sent to bv reach the tool; a second interrupt kills" {
	use_engine docker
	check_signals
}

@test "podman: signals sent to bv reach the tool; a second interrupt kills" {
	use_engine podman
	check_signals
}

@test "docker: an init as PID 1: tools without signal handlers die of forwarded signals" {
	use_engine docker
	check_signals_reach_plain_tools
}

@test "docker: a closed stdout ends the run without leftovers" {
	use_engine docker
	check_closed_stdout
}

@test "podman: a closed stdout ends the run without leftovers" {
	use_engine podman
	check_closed_stdout
}

@test "docker: missing image, daemon down and a tcp DOCKER_HOST are clear errors" {
	use_engine docker
	check_errors
}

@test "podman: missing image is a clear error" {
	use_engine podman
	check_errors
}

@test "docker: cache prune removes the images bv pulled that no project pins, never others" {
	export DOCKER_HOST="unix://$DOCKERD_SOCK" SOCK=$DOCKERD_SOCK
	# bv pulls both itself (earlier tests may have left them on the engine)
	engine DELETE "/images/$ADDR/biocontainers/samtools@$SAMTOOLS_DIGEST" >/dev/null
	engine DELETE "/images/$ADDR/biocontainers/bwa@$BWA_DIGEST" >/dev/null
	# an image bv did not pull: minimap2, pulled with curl
	engine POST "/images/create?fromImage=$ADDR/biocontainers/minimap2&tag=2.24--debian" >/dev/null
	[ "$(image_status minimap2:2.24--debian)" = 200 ]
	run bv add samtools bwa --backend docker
	assert_success
	owned="$BV_CACHE_DIR/owned-images.txt"
	run cat "$owned"
	assert_line "$ADDR/biocontainers/samtools@$SAMTOOLS_DIGEST	$SAMTOOLS_DIGEST"
	assert_line "$ADDR/biocontainers/bwa@$BWA_DIGEST	$BWA_DIGEST"
	[ "${#lines[@]}" = 2 ]
	# pulled again: recorded once
	engine DELETE "/images/$ADDR/biocontainers/bwa@$BWA_DIGEST" >/dev/null
	run bv sync --backend docker
	assert_success
	[ "$(wc -l <"$owned")" = 2 ]

	run bv remove samtools
	assert_success
	# no engine: a note, and the images stay recorded for a later prune
	run env DOCKER_HOST="unix://$BATS_TEST_TMPDIR/none.sock" "$BV" cache prune
	assert_success
	assert_output --partial "note: no Docker engine answers"
	[ "$(image_status "samtools@$SAMTOOLS_DIGEST")" = 200 ]
	run bv cache prune
	assert_success
	assert_output --partial "removed Docker image $ADDR/biocontainers/samtools@$SAMTOOLS_DIGEST"
	[ "$(image_status "samtools@$SAMTOOLS_DIGEST")" = 404 ]
	[ "$(image_status "bwa@$BWA_DIGEST")" = 200 ]
	[ "$(image_status minimap2:2.24--debian)" = 200 ]
	run cat "$owned"
	assert_output "$ADDR/biocontainers/bwa@$BWA_DIGEST	$BWA_DIGEST"
	# --all: bwa is pinned but bv pulled it, so it goes; minimap2 stays
	run bv cache prune --all -y
	assert_success
	[ "$(image_status "bwa@$BWA_DIGEST")" = 404 ]
	[ "$(image_status minimap2:2.24--debian)" = 200 ]
	[ ! -s "$owned" ]
	engine DELETE "/images/$ADDR/biocontainers/minimap2:2.24--debian" >/dev/null
}

@test "docker: update --backend docker puts the updated image on the engine" {
	export DOCKER_HOST="unix://$DOCKERD_SOCK" SOCK=$DOCKERD_SOCK
	export BV_REGISTRY="$BATS_TEST_TMPDIR/registry"
	cp -r "$RUN_REGISTRY" "$BV_REGISTRY"
	run bv add samtools --backend docker
	assert_success
	# the registry moves samtools' tag to another image (the OCI form)
	sed -i 's/:1.16.1--debian"/:1.16.1--debian-oci"/' "$BV_REGISTRY"/tools/samtools/*.toml
	new=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' \
		"docker://$ADDR/biocontainers/samtools:1.16.1--debian-oci")
	engine DELETE "/images/$ADDR/biocontainers/samtools@$new" >/dev/null
	run bv update --backend docker samtools
	assert_success
	grep -q "image_digest = \"$new\"" bv.lock
	[ "$(image_status "samtools@$new")" = 200 ]
	run bv run --backend docker samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	engine DELETE "/images/$ADDR/biocontainers/samtools@$new" >/dev/null
}
