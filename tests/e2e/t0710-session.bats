#!/usr/bin/env bats
# bv session against a private dockerd (tests/fixtures/dockerd.sh) and, for start, exec and
# snapshot, Podman's Docker-compatible service (tests/fixtures/podman-service.sh).  Images come
# from the loopback registry (tests/fixtures/images.sh) through BV_MIRRORS, pulled by the
# engine itself.  Files outside /workspace prove what is in a container's own file system
# (and so in its snapshots); files under /workspace land in the project on the host.

load lib/common

setup_file() {
	[ -x "${BV_DOCKERD:-/usr/sbin/dockerd}" ] || skip "dockerd is not installed"
	fixture_images_up
	# stop only the daemons this file started
	"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" status >/dev/null 2>&1 ||
		touch "$BATS_FILE_TMPDIR/dockerd-started"
	"$BV_SOURCE_DIR/tests/fixtures/podman-service.sh" status >/dev/null 2>&1 ||
		touch "$BATS_FILE_TMPDIR/podman-not-running"
	SOCK=$("$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" start)
	PROJ="$BATS_FILE_TMPDIR/proj"
	# cache keys name images in the daemon, which outlives this file: make them this run's
	RUN="r$(date +%s%N)"
	export ADDR SOCK PROJ RUN
	# one project (and one bv.lock) for the whole file; each test uses its own sessions
	mkdir -p "$PROJ"
	(
		cd "$PROJ" || exit 1
		export HOME="$BATS_FILE_TMPDIR/home" BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache"
		export BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry" BV_MIRRORS="quay.io=$ADDR"
		cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
		# the image's /bin/sh as a second binary, so warm runs can run shell
		sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
			"$BV_REGISTRY"/tools/samtools/*.toml
		"$BV" init align >/dev/null 2>&1 && allow_shell_binary &&
			"$BV" add samtools >/dev/null 2>&1
	) || return 1
}

teardown_file() {
	if [ -n "${SOCK:-}" ]; then
		# sessions have restart=unless-stopped: remove them, or the next start revives them
		(cd "$PROJ" && DOCKER_HOST="unix://$SOCK" "$BV" session ls 2>/dev/null |
			awk 'NR > 1 { print $1 }' | xargs -r env DOCKER_HOST="unix://$SOCK" "$BV" session rm) || true
		remove_images "$SOCK" || true
		[ ! -e "$BATS_FILE_TMPDIR/dockerd-started" ] ||
			"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null || true
	fi
	if [ -e "$BATS_FILE_TMPDIR/podman-not-running" ]; then
		"$BV_SOURCE_DIR/tests/fixtures/podman-service.sh" stop >/dev/null 2>&1 || true
	fi
	fixture_images_down
}

# remove_images SOCKET: the snapshot images of this file's project.
remove_images() {
	local filter
	filter=$(python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.dumps({"label": ["bv.project=" + sys.argv[1]]})))' "$PROJ")
	curl -s --unix-socket "$1" "http://engine/images/json?filters=$filter" |
		python3 -c 'import json, sys; [print(i["Id"]) for i in json.load(sys.stdin)]' |
		while read -r id; do
			curl -s -o /dev/null -X DELETE --unix-socket "$1" "http://engine/images/$id?force=1"
		done
}

setup() {
	common_setup
	export DOCKER_HOST="unix://$SOCK" BV_MIRRORS="quay.io=$ADDR"
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	cd "$PROJ" || return 1
}

@test "start, exec: output, exit status, user, /workspace; ls lists the project's sessions" {
	run --separate-stderr bv session start samtools --name t1
	assert_success
	assert_output "t1"
	[ "$stderr" = "Started session 't1' from samtools" ]
	run bv session exec t1 -- samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run --separate-stderr bv session exec t1 -- sh -c 'echo to-out; echo to-err >&2; exit 3'
	[ "$status" -eq 3 ]
	[ "$output" = "to-out" ]
	[ "$stderr" = "to-err" ]
	run bv session exec t1 -- sh -c 'pwd; id -u; id -g; printf "no newline"'
	assert_success
	assert_output "/workspace
$(id -u)
$(id -g)
no newline"
	# the project is mounted read-write
	run bv session exec t1 -- sh -c 'echo from-session > /workspace/t1.txt'
	assert_success
	[ "$(cat "$PROJ/t1.txt")" = from-session ]
	# standard input reaches the command when it is a pipe
	run bash -c 'printf "a\nb\n" | "$0" session exec t1 -- wc -l' "$BV"
	assert_success
	assert_output "2"
	run bv session start samtools --name t1
	assert_failure 1
	assert_output --partial "session 't1' exists already"
	run bv session ls
	assert_success
	assert_line --index 0 --regexp '^NAME +STATE +IMAGE$'
	assert_line --regexp '^t1 +running +quay.io/biocontainers/samtools:1.16.1--debian@sha256:'
	run bv session exec nosuch -- true
	assert_failure 1
	assert_output --partial "no session 'nosuch'"
	run bv session exec t1
	assert_failure 2
}

@test "cp copies a directory's contents into a new directory of the session" {
	run bv session start samtools --name t2
	assert_success
	mkdir -p "$BATS_TEST_TMPDIR/in/sub"
	echo alpha >"$BATS_TEST_TMPDIR/in/a.txt"
	echo beta >"$BATS_TEST_TMPDIR/in/sub/b.txt"
	ln -s a.txt "$BATS_TEST_TMPDIR/in/link"
	chmod 0750 "$BATS_TEST_TMPDIR/in/sub"
	run bv session cp "$BATS_TEST_TMPDIR/in" t2:/opt/input/deep
	assert_success
	run bv session exec t2 -- sh -c 'cat /opt/input/deep/a.txt /opt/input/deep/sub/b.txt; readlink /opt/input/deep/link; stat -c %a /opt/input/deep/sub'
	assert_success
	assert_output "alpha
beta
a.txt
750"
	# into an existing directory, whose owner and mode stay as they were
	run bv session exec t2 -- stat -c '%u %a' /tmp
	tmp_before=$output
	run bv session cp "$BATS_TEST_TMPDIR/in" t2:/tmp
	assert_success
	run bv session exec t2 -- sh -c 'cat /tmp/a.txt; stat -c "%u %a" /tmp'
	assert_output "alpha
$tmp_before"
	run bv session cp "$BATS_TEST_TMPDIR/in" t2:relative
	assert_failure 1
	run bv session cp "$BATS_TEST_TMPDIR/in" t2
	assert_failure 2
}

@test "snapshot and restore keep the container's files; snapshots lists, snapshot-rm removes" {
	run bv session start samtools --name t3
	assert_success
	run bv session exec t3 -- sh -c 'echo before-snapshot > /tmp/marker'
	assert_success
	run bv session snapshot t3
	assert_success
	image=$output
	[[ $image == bv-snapshot:* ]]
	run bv session exec t3 -- sh -c 'echo after-snapshot > /tmp/marker'
	run --separate-stderr bv session restore "$image" --name t3r
	assert_success
	assert_output "t3r"
	run bv session exec t3r -- cat /tmp/marker
	assert_success
	assert_output "before-snapshot"
	# without --name the snapshot's session name is used
	run bv session restore "$image"
	assert_failure 1
	assert_output --partial "session 't3' exists already"
	run bv session rm t3
	assert_success
	run --separate-stderr bv session restore "$image"
	assert_success
	assert_output "t3"
	run bv session exec t3 -- cat /tmp/marker
	assert_output "before-snapshot"
	# a keyed snapshot gets the key as its name
	run bv session snapshot t3 --key mysnap:v1
	assert_success
	assert_output "mysnap:v1"
	run bv session snapshots
	assert_success
	assert_line --regexp "^$image +t3 +.* -$"
	assert_line --regexp "^mysnap:v1 +t3 +.* mysnap:v1$"
	run bv session restore mysnap:v1 --name t3k
	assert_success
	run bv session exec t3k -- cat /tmp/marker
	assert_output "before-snapshot"
	# snapshot-rm --name removes only that session's snapshots
	run bv session snapshot-rm --name other "$image"
	assert_failure 1
	assert_output "error: no snapshot '$image' in session 'other'"
	run bv session snapshot-rm --name t3 "$image"
	assert_success
	# a snapshot that is not there is an error, as the engine's 404 says, unless --force
	run --separate-stderr bv session snapshot-rm "$image"
	assert_failure 1
	[ "$stderr" = "error: no snapshot '$image'" ] || fail "stderr: $stderr"
	run bv session snapshot-rm --name t3 "$image"
	assert_failure 1
	assert_output "error: no snapshot '$image' in session 't3'"
	run bv session snapshot-rm --force "$image"
	assert_success
	assert_output ""
	run bv session snapshots
	refute_output --partial "$image"
	run bv session restore "$image" --name t3x
	assert_failure 1
	assert_output --partial "no snapshot '$image'"
	run bv session snapshot t3 --key 'Bad Key'
	assert_failure 1
}

@test "a cached step runs once; the second time the session is restored without running" {
	run bv session start samtools --name t4
	assert_success
	step='echo ran >> /tmp/count; echo ran >> /workspace/t4-ran.log; echo built > /tmp/built'
	run bv session exec --cache t4-build-$RUN t4 -- sh -c "$step"
	assert_success
	refute_output --partial "cached:"
	run bv session exec t4 -- sh -c 'echo extra > /tmp/extra'
	run bv session exec --cache t4-build-$RUN t4 -- sh -c "$step"
	assert_success
	assert_output "cached: t4-build-$RUN"
	# not run again: the host file has one line, and the container is the snapshot's
	[ "$(wc -l <"$PROJ/t4-ran.log")" -eq 1 ]
	run --separate-stderr bv session exec t4 -- sh -c 'wc -l < /tmp/count; cat /tmp/built; ls /tmp/extra'
	assert_failure 1
	assert_line --index 0 "1"
	assert_line --index 1 "built"
	# a failing step is neither cached nor skipped the next time
	run bv session exec --cache t4-fail-$RUN t4 -- sh -c 'echo x >> /workspace/t4-fail.log; exit 4'
	assert_failure 4
	run bv session exec --cache t4-fail-$RUN t4 -- sh -c 'echo x >> /workspace/t4-fail.log; exit 4'
	assert_failure 4
	[ "$(wc -l <"$PROJ/t4-fail.log")" -eq 2 ]
	run bv session snapshots
	assert_line --regexp "^bv-cache:t4-build-$RUN-[0-9a-f]{16} +t4 +.* t4-build-$RUN \\(cached step\\)\$"
	refute_output --partial "t4-fail-$RUN"
}

@test "cached snapshots beyond the capacity are evicted, least recently used first" {
	export BV_SESSION_CACHE_CAPACITY=2
	run bv session start samtools --name t5
	assert_success
	for k in t5-a-$RUN t5-b-$RUN t5-c-$RUN; do
		run bv session exec --cache "$k" t5 -- true
		assert_success
	done
	run bv session snapshots
	refute_output --partial " t5-a-$RUN (cached step)"
	assert_output --partial " t5-b-$RUN (cached step)"
	assert_output --partial " t5-c-$RUN (cached step)"
	# a hit counts as a use: b becomes the most recent, so d pushes out c
	run bv session exec --cache t5-b-$RUN t5 -- true
	assert_output "cached: t5-b-$RUN"
	run bv session exec --cache t5-d-$RUN t5 -- true
	run bv session snapshots
	assert_output --partial " t5-b-$RUN (cached step)"
	refute_output --partial " t5-c-$RUN (cached step)"
	assert_output --partial " t5-d-$RUN (cached step)"
	run python3 -c 'import json,sys; print(sorted(e["key"] for e in json.load(open(sys.argv[1]))["entries"]))' \
		"$BV_CACHE_DIR/sessions/cache-lru.json"
	assert_output "['t5-b-$RUN', 't5-d-$RUN']"
}

@test "two snapshots of one session at once give two distinct images" {
	run bv session start samtools --name t6
	assert_success
	bv session snapshot t6 >"$BATS_TEST_TMPDIR/a" 2>&1 &
	pa=$!
	bv session snapshot t6 >"$BATS_TEST_TMPDIR/b" 2>&1 &
	pb=$!
	wait "$pa"
	wait "$pb"
	a=$(cat "$BATS_TEST_TMPDIR/a") b=$(cat "$BATS_TEST_TMPDIR/b")
	[[ $a == bv-snapshot:* && $b == bv-snapshot:* ]]
	[ "$a" != "$b" ]
	run bv session snapshots
	assert_line --regexp "^$a +t6 "
	assert_line --regexp "^$b +t6 "
}

@test "rm is idempotent and ls follows" {
	run bv session start samtools --name t7
	assert_success
	run bv session rm t7
	assert_success
	run bv session rm t7
	assert_success
	run bv session ls
	refute_output --partial "t7 "
	run bv session rm 'bad name'
	assert_failure 1
	run bv session frobnicate
	assert_failure 2
	run bv session ls --cache x
	assert_failure 2
}

@test "start, exec and snapshot on Podman's Docker-compatible service" {
	command -v "${BV_PODMAN:-podman}" >/dev/null || skip "podman is not installed"
	psock=$("$BV_SOURCE_DIR/tests/fixtures/podman-service.sh" start)
	export DOCKER_HOST="unix://$psock"
	run bv session start samtools --name p1
	assert_success
	run --separate-stderr bv session exec p1 -- sh -c 'echo out; echo err >&2; echo podman-state > /tmp/m; exit 5'
	[ "$status" -eq 5 ]
	[ "$output" = out ]
	[ "$stderr" = err ] || fail "stderr: $stderr"
	run bv session snapshot p1
	assert_success
	image=$output
	run bv session restore "$image" --name p1r
	assert_success
	run bv session exec p1r -- cat /tmp/m
	assert_success
	assert_output "podman-state"
	run bv session snapshots
	assert_line --regexp "^$image +p1 "
	run bv session rm p1 p1r
	assert_success
	run bv session rm p1
	assert_success
	run bv session snapshot-rm "$image"
	assert_success
}

@test "bv run --warm: one long-lived container per tool image, only exec'd into" {
	run bv run --warm samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	# the same container serves every run: state outside /workspace accumulates
	run bv run --warm sh -c 'echo x >> /tmp/warm-count; wc -l < /tmp/warm-count'
	assert_success
	first=$output
	run bv run --warm sh -c 'echo x >> /tmp/warm-count; wc -l < /tmp/warm-count'
	assert_output "$((first + 1))"
	run bv session ls
	assert_line --regexp '^warm-[0-9a-f]{12} +running +quay.io/biocontainers/samtools:1.16.1--debian$'
	# exit status, stdin, working directory following the caller into the project
	run bv run --warm sh -c 'exit 6'
	assert_failure 6
	run bv run --warm samtools view /no/such/file.bam
	assert_failure 1
	assert_output --partial 'failed to open "/no/such/file.bam"'
	run bash -c 'printf "a\nb\nc\n" | "$0" run --warm sh -c "wc -l"' "$BV"
	assert_output "3"
	mkdir -p "$PROJ/sub"
	run bash -c 'cd "$1/sub" && "$0" run --warm sh -c pwd' "$BV" "$PROJ"
	assert_output "/workspace/sub"
}

@test "a signal sent to bv session exec reaches the command" {
	run bv session start samtools --name t8
	assert_success
	# "$BV", not the bv function: $! must be bv itself, not a subshell running it
	"$BV" session exec t8 -- sh -c 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done' \
		>"$BATS_TEST_TMPDIR/out" &
	pid=$!
	for _ in $(seq 100); do
		grep -q ready "$BATS_TEST_TMPDIR/out" && break
		sleep 0.1
	done
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 3 ] || fail "bv exited with $status"
	[ "$(cat "$BATS_TEST_TMPDIR/out")" = "ready
got-term" ]
}

@test "rm removes the warm session of a project whose bv.toml name is not its directory's" {
	# bv.toml says "w", the directory is "wdir": ls, rm and the warm run must agree on the name
	mkdir -p "$BATS_TEST_TMPDIR/wdir"
	cd "$BATS_TEST_TMPDIR/wdir"
	root=$(pwd -P)
	BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry" run bv init w
	assert_success
	allow_shell_binary
	BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry" run bv add --backend docker samtools
	assert_success
	run bv run --warm samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv session ls
	assert_success
	assert_line --index 1 --regexp '^warm-[0-9a-f]{12} +running '
	name=$(printf '%s\n' "$output" | awk 'NR == 2 { print $1 }')
	# the project's containers per the engine, whatever their names
	containers() {
		curl -s --unix-socket "$SOCK" 'http://engine/containers/json?all=1' |
			python3 -c 'import json, sys; [print(c["Names"][0]) for c in json.load(sys.stdin) if (c.get("Labels") or {}).get("bv.project") == sys.argv[1]]' "$root"
	}
	run containers
	assert_success
	assert_output --regexp "^/bv-[a-z0-9_.-]+-[0-9a-f]{8}-$name\$"
	run bv session rm "$name"
	assert_success
	run --separate-stderr bv session ls
	assert_success
	assert_output ""
	run containers
	assert_success
	assert_output ""
}

# images SOCKET LABEL...: "Id RepoTags" of each image carrying every label (k=v)
images_with() {
	local sock=$1 filter
	shift
	filter=$(python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.dumps({"label": sys.argv[1:]})))' "$@")
	curl -s --unix-socket "$sock" "http://engine/images/json?filters=$filter" |
		python3 -c 'import json, sys; [print(i["Id"], ",".join(t for t in (i.get("RepoTags") or []) if t != "<none>:<none>")) for i in json.load(sys.stdin)]'
}

# session_id NAME: the engine's id of this project's session NAME, found by its labels
session_id() {
	local filter
	filter=$(python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.dumps({"label": ["bv.session=" + sys.argv[1], "bv.project=" + sys.argv[2]]})))' "$1" "$(cd "$PROJ" && pwd -P)")
	curl -s --unix-socket "$SOCK" "http://engine/containers/json?filters=$filter" |
		python3 -c 'import json, sys; [print(c["Id"]) for c in json.load(sys.stdin)]'
}

# wait_for COMMAND...: until it succeeds, 20 s at most
wait_for() {
	local _
	for _ in $(seq 400); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting for: $*"
}

# lru_keys: the keys of the cached-step store, sorted
lru_keys() {
	python3 -c 'import json,sys; print(" ".join(sorted(e["key"] for e in json.load(open(sys.argv[1]))["entries"])))' \
		"$BV_CACHE_DIR/sessions/cache-lru.json"
}

@test "bv run --warm: another mount means another container; first runs at once share one" {
	# a project of its own, whose bv.toml this test edits
	mkdir -p "$BATS_TEST_TMPDIR/wm"
	cd "$BATS_TEST_TMPDIR/wm"
	BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry" run bv init wm
	assert_success
	allow_shell_binary
	BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry" run bv add --backend docker samtools
	assert_success
	warm_names() { bv session ls | awk '$1 ~ /^warm-/ { print $1 }'; }
	run bv run --warm sh -c 'touch /tmp/made-before'
	assert_success
	run warm_names
	assert_success
	assert_output --regexp '^warm-[0-9a-f]{12}$'
	first=$output
	# a container made without the cache mount must not serve a run that has it
	mkdir -p "$BATS_TEST_TMPDIR/hostcache"
	printf '\n[[cache]]\ncontainer_path = "/cache"\nhost_path = "%s"\n' \
		"$BATS_TEST_TMPDIR/hostcache" >>bv.toml
	run bv run --warm sh -c 'echo mounted > /cache/f; test ! -e /tmp/made-before && echo new'
	assert_success
	assert_output "new"
	[ "$(cat "$BATS_TEST_TMPDIR/hostcache/f")" = mounted ]
	# and it replaced the other one: one warm container per image per project
	run warm_names
	assert_success
	assert_output --regexp '^warm-[0-9a-f]{12}$'
	[ "$output" != "$first" ] || fail "the warm session kept its name: $output"
	second=$output
	run bv run --warm sh -c 'test -e /cache/f && echo same'
	assert_output "same"
	# four first runs at once: each runs once, and one container is left
	run bv session rm "$second"
	assert_success
	for i in 1 2 3 4; do
		"$BV" run --warm sh -c "echo run-$i" >"$BATS_TEST_TMPDIR/par.$i" 2>&1 &
	done
	fails=0
	for i in 1 2 3 4; do
		wait -n || fails=$((fails + 1))
	done
	for i in 1 2 3 4; do
		[ "$(cat "$BATS_TEST_TMPDIR/par.$i")" = "run-$i" ] ||
			fail "run $i: $(cat "$BATS_TEST_TMPDIR/par.$i")"
	done
	[ "$fails" -eq 0 ] || fail "$fails runs failed"
	run warm_names
	assert_success
	assert_output "$second"
	run bv session rm "$second"
	assert_success
}

@test "exec --env K=V and K, --workdir absolute and relative, and the caller's subdirectory" {
	run bv session start samtools --name t9
	assert_success
	export FROM_BV=from-bv
	unset NOT_IN_BV
	run bv session exec --env A=1 -e B=two=2 --env FROM_BV --env NOT_IN_BV t9 -- \
		sh -c 'echo "$A|$B|$FROM_BV|${NOT_IN_BV-unset}"'
	assert_success
	assert_output "1|two=2|from-bv|unset"
	# the engine's own view: the exec's process (its host PID from GET /exec/ID/json) has it
	"$BV" session exec --env SEEN_BY=engine t9 -- sh -c 'echo ready; exec sleep 60' >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	wait_for grep -q ready "$BATS_TEST_TMPDIR/out"
	cid=$(session_id t9)
	epid=$(curl -s --unix-socket "$SOCK" "http://engine/containers/$cid/json" |
		python3 -c 'import json, sys; [print(e) for e in json.load(sys.stdin)["ExecIDs"] or []]' |
		while read -r e; do
			curl -s --unix-socket "$SOCK" "http://engine/exec/$e/json" |
				python3 -c 'import json, sys; x = json.load(sys.stdin); x["Running"] and print(x["Pid"])'
		done)
	[ -n "$epid" ] || fail "no running exec found"
	tr '\0' '\n' <"/proc/$epid/environ" | grep -qx 'SEEN_BY=engine'
	kill -TERM "$pid"
	wait "$pid" || true
	# the working directory
	mkdir -p "$PROJ/sub/deeper"
	run bv session exec --workdir /tmp t9 -- pwd
	assert_output "/tmp"
	run bv session exec -w sub t9 -- pwd
	assert_output "/workspace/sub"
	# from a subdirectory of the project: there, and relative to there
	run bash -c 'cd "$1/sub" && "$0" session exec t9 -- pwd && "$0" session exec -w deeper t9 -- pwd && "$0" session exec -w .. t9 -- pwd -P' "$BV" "$PROJ"
	assert_success
	assert_output "/workspace/sub
/workspace/sub/deeper
/workspace"
	# bad input: one clear error each
	run bv session exec --env =x t9 -- true
	assert_failure 2
	assert_output "error: invalid --env '=x': expected NAME=VALUE or NAME"
	run bv session exec --env '' t9 -- true
	assert_failure 2
	assert_output "error: invalid --env '': expected NAME=VALUE or NAME"
	run bv session exec t9 --env
	assert_failure 2
	assert_output "error: option '--env' needs an argument"
	run bv session exec -w '' t9 -- true
	assert_failure 2
	assert_output "error: --workdir cannot be empty"
	run bv session ls --env A=1
	assert_failure 2
	assert_output --partial "'bv session ls' has no option --env"
}

@test "two cached steps of one key at once: one runs, the other waits and reuses its snapshot" {
	run bv session start samtools --name t10
	assert_success
	key=t10-step-$RUN
	root=$(cd "$PROJ" && pwd -P)
	# the step blocks until the test lets it go, so the second bv surely comes while it runs
	step='echo ran >> /workspace/t10-ran.log; while [ ! -e /workspace/t10-go ]; do sleep 0.05; done; echo built > /tmp/built'
	"$BV" session exec --cache "$key" t10 -- sh -c "$step" >"$BATS_TEST_TMPDIR/a.out" 2>"$BATS_TEST_TMPDIR/a.err" &
	pa=$!
	wait_for test -s "$PROJ/t10-ran.log"
	"$BV" session exec --cache "$key" t10 -- sh -c "$step" >"$BATS_TEST_TMPDIR/b.out" 2>"$BATS_TEST_TMPDIR/b.err" &
	pb=$!
	wait_for grep -q "^Waiting for another bv process running cached step '$key'$" "$BATS_TEST_TMPDIR/b.err"
	touch "$PROJ/t10-go"
	sa=0 sb=0
	wait "$pa" || sa=$?
	wait "$pb" || sb=$?
	[ "$sa" -eq 0 ] || fail "first: $sa $(cat "$BATS_TEST_TMPDIR/a.err")"
	[ "$sb" -eq 0 ] || fail "second: $sb $(cat "$BATS_TEST_TMPDIR/b.err")"
	# the side effect happened once; the second found the first's snapshot
	[ "$(wc -l <"$PROJ/t10-ran.log")" -eq 1 ]
	grep -qx "cached: $key" "$BATS_TEST_TMPDIR/b.err"
	run bv session exec t10 -- cat /tmp/built
	assert_output "built"
	# exactly one image with the step's labels, in the engine, in snapshots and in the store
	run images_with "$SOCK" bv.cache=1 "bv.key=$key" bv.session=t10 "bv.project=$root"
	assert_success
	assert_output --regexp "^sha256:[0-9a-f]{64} bv-cache:$key-[0-9a-f]{16}\$"
	run bv session snapshots
	assert_line --regexp "^bv-cache:$key-[0-9a-f]{16} +t10 +.* $key \\(cached step\\)\$"
	run lru_keys
	assert_output --partial "$key"
}

@test "a cached step killed with SIGKILL blocks nobody; a snapshot outside the store is adopted, untagged ones removed" {
	run bv session start samtools --name t11
	assert_success
	key=t11-step-$RUN
	root=$(cd "$PROJ" && pwd -P)
	"$BV" session exec --cache "$key" t11 -- sh -c 'echo first >> /workspace/t11.log; exec sleep 600' &
	pid=$!
	wait_for test -s "$PROJ/t11.log"
	kill -KILL "$pid"
	wait "$pid" || true
	# the lock died with its holder: the next step of the key runs at once
	run --separate-stderr timeout 60 "$BV" session exec --cache "$key" t11 -- sh -c 'echo second >> /workspace/t11.log'
	assert_success
	[ -z "$stderr" ] || fail "stderr: $stderr"
	[ "$(cat "$PROJ/t11.log")" = "first
second" ]
	run images_with "$SOCK" bv.cache=1 "bv.key=$key" "bv.project=$root"
	assert_output --regexp "^sha256:[0-9a-f]{64} bv-cache:$key-[0-9a-f]{16}\$"
	run --separate-stderr bv session exec --cache "$key" t11 -- sh -c 'echo third >> /workspace/t11.log'
	assert_success
	[ "$stderr" = "cached: $key" ]
	# what a step that died after its commit, before the store was written, leaves behind
	# (committed here through the Engine API): the key's image, not in the store, and an
	# untagged image with the key's labels (the tag moved on, as two racing commits did)
	key2=t11-adopt-$RUN
	ref="bv-cache:$key2-$(printf %s "$key2" | sha256sum | cut -c1-16)"
	cid=$(session_id t11)
	for _ in 1 2; do
		body=$(python3 -c 'import json, sys; print(json.dumps({"Labels": {"bv.snapshot": "1", "bv.session": "t11", "bv.project": sys.argv[1], "bv.key": sys.argv[2], "bv.cache": "1"}}))' "$root" "$key2")
		curl -sf -o /dev/null --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' -d "$body" \
			"http://engine/commit?container=$cid&repo=${ref%%:*}&tag=${ref#*:}"
	done
	run images_with "$SOCK" bv.cache=1 "bv.key=$key2"
	[ "${#lines[@]}" -eq 2 ] || fail "expected a tagged and an untagged image: $output"
	run lru_keys
	refute_output --partial "$key2"
	run --separate-stderr bv session exec --cache "$key2" t11 -- sh -c 'echo ran >> /workspace/t11-adopt.log'
	assert_success
	[ "$stderr" = "cached: $key2" ]
	[ ! -e "$PROJ/t11-adopt.log" ]
	run images_with "$SOCK" bv.cache=1 "bv.key=$key2"
	assert_output --regexp "^sha256:[0-9a-f]{64} $ref\$"
	run lru_keys
	assert_output --partial "$key2"
}
