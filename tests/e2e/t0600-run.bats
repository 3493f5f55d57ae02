#!/usr/bin/env bats
# bv run, bv exec, bv shell and the shims on the native backend, with Debian's samtools and bwa
# images from the loopback registry (tests/fixtures/images.sh).  The registry copy exposes the
# image's /bin/sh as a second binary of samtools, so tests can run arbitrary shell in it.

load lib/common

setup_file() {
	fixture_images_up
	# one pull for the whole file (common_setup unsets BV_*; setup sets them again)
	RUN_CACHE="$BATS_FILE_TMPDIR/cache"
	RUN_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	export RUN_CACHE RUN_REGISTRY
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$RUN_REGISTRY"
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$RUN_REGISTRY"/tools/samtools/*.toml
	cat >>"$RUN_REGISTRY"/tools/samtools/1.16.1.toml <<'TOML'

[tool.entrypoint.env]
BV_TEST_FROM_MANIFEST = "manifest"
PATH = "/usr/bin:/bin"

[tool.subcommands]
count = ["samtools", "view", "-c"]
TOML
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$RUN_CACHE" BV_REGISTRY="$RUN_REGISTRY" BV_MIRRORS="quay.io=$ADDR" BV
	PROJ="$BATS_TEST_TMPDIR/proj"
	mkdir -p "$PROJ" && cd "$PROJ" || return 1
	bv init align >/dev/null 2>&1
	allow_shell_binary
	out=$(bv add samtools bwa 2>&1) || fail "bv add failed: $out"
}

@test "run passes the tool's output and exit status through" {
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv run sh -c 'exit 7'
	assert_failure 7
	run bv run samtools view /no/such/file.bam
	assert_failure 1
	assert_output --partial 'failed to open "/no/such/file.bam"'
}

@test "run passes the terminal, locale and thread counts, --env and BV_PASS_ENV, nothing else" {
	run env TERM=xterm-256color LC_ALL=C.UTF-8 OMP_NUM_THREADS=3 SECRET_TOKEN=x \
		"$BV" run sh -c 'echo "$TERM|$LC_ALL|$OMP_NUM_THREADS|${SECRET_TOKEN-unset}"'
	assert_success
	assert_output "xterm-256color|C.UTF-8|3|unset"
	run env FOO=host OMP_NUM_THREADS=3 "$BV" run --env A=1 -e FOO --env B=x=y \
		--env OMP_NUM_THREADS=5 --env UNSET_HERE sh -c 'echo "$A|$FOO|$B|$OMP_NUM_THREADS|${UNSET_HERE-unset}"'
	assert_success
	assert_output "1|host|x=y|5|unset"
	run env BV_PASS_ENV=SECRET_TOKEN,OTHER SECRET_TOKEN=x "$BV" run sh -c 'echo $SECRET_TOKEN'
	assert_output "x"
	for bad in =x '' 1A=b 'A B=c'; do
		run -125 bv run --env "$bad" sh -c true
		assert_output --partial "invalid --env '$bad'"
	done
	# bv exec: set for the command and passed on by the shims it calls ("sh" is one here)
	run bv exec --env ZZ=9 -- /bin/sh -c 'echo "$ZZ"; sh -c "echo in-image \$ZZ"'
	assert_success
	assert_output "9
in-image 9"
	run -2 bv exec --env 9=x -- true
	assert_output --partial "invalid --env '9=x'"
}

@test "a tool killed by a signal gives 128+N; signals sent to bv reach the tool" {
	run bv run sh -c 'kill -TERM $$'
	assert_failure 143
	"$BV" run sh -c 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done' \
		>"$BATS_TEST_TMPDIR/out" &
	pid=$!
	for _ in $(seq 100); do grep -q ready "$BATS_TEST_TMPDIR/out" && break; sleep 0.05; done
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 3 ]
	grep -q got-term "$BATS_TEST_TMPDIR/out"
}

@test "stdin and pipes flow between bv runs" {
	run /bin/sh -c 'printf "hello\n" | "$BV" run sh -c "cat; echo done"'
	assert_success
	assert_output "hello
done"
	printf '@SQ\tSN:chr1\tLN:100\nr1\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n' >in.sam
	run /bin/sh -c '"$BV" run samtools view -b in.sam | "$BV" run samtools view -c -'
	assert_success
	assert_output "1"
}

@test "the project is /workspace, read-write and owned by the caller; the image root is read-only" {
	run bv run sh -c 'pwd; echo data > made.txt; touch /usr/bin/x 2>&1; echo rc=$?'
	assert_success
	assert_line --index 0 "/workspace"
	assert_line --partial "Read-only file system"
	assert_line "rc=1"
	[ "$(stat -c %u:%g made.txt)" = "$(id -u):$(id -g)" ]
	mkdir -p sub/dir && cd sub/dir
	run bv run sh -c 'pwd; ls ../../made.txt'
	assert_success
	assert_output "/workspace/sub/dir
../../made.txt"
}

@test "files written by an unprivileged caller belong to that caller" {
	[ "$(id -u)" = 0 ] || skip "needs root to switch to an unprivileged user"
	command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
	# the bats directories are private; let the other user through to the project and cache
	for d in "$PROJ" "$BV_CACHE_DIR"; do
		while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
	done
	chmod -R a+rwX "$PROJ" "$BV_CACHE_DIR"
	reachable=$(reachable_bv)
	run setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=/tmp \
		"$reachable" run sh -c 'id -u; echo $HOME; touch mine; whoami'
	assert_success
	assert_line --index 0 "65534"
	assert_line --index 1 "/tmp"
	[ "$(stat -c %u mine)" = 65534 ]
}

@test "environment: image Env, then HOME, then the manifest's env" {
	run bv run sh -c 'echo "$BV_TEST_FROM_MANIFEST|$PATH|$HOME"'
	assert_success
	assert_output "manifest|/usr/bin:/bin|/tmp"
	# nothing of the caller's environment leaks in
	FOO_FROM_HOST=leak run bv run sh -c 'echo "[${FOO_FROM_HOST:-}]"'
	assert_output "[]"
}

@test "subcommands route, a leading -- is dropped, unknown names fail with 127" {
	printf '@SQ\tSN:c\tLN:9\nr\t0\tc\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n' >in.sam
	run bv run samtools count in.sam
	assert_success
	assert_output "1"
	run bv run sh -- -c 'echo dashed'
	assert_output "dashed"
	run bv run -- samtools --version
	assert_success
	run -127 bv run no-such-tool
	assert_output --partial "'no-such-tool' is not a tool or binary of this project"
}

@test "shims work from a subdirectory, by path and on PATH" {
	[ -L .bv/bin/samtools ] && [ -L .bv/bin/bwa ]
	grep -qx '.bv/' .gitignore
	mkdir -p deep/er && cd deep/er
	run ../../.bv/bin/samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	# from the project root, by a relative path with no directory before .bv
	cd "$PROJ"
	run .bv/bin/samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run "$PROJ/.bv/../.bv/bin/sh" -c pwd
	assert_output "/workspace"
	mkdir -p deep/er && cd deep/er
	run env PATH="$PROJ/.bv/bin:$PATH" /bin/sh -c 'bwa 2>&1 | grep Version'
	assert_output --partial "0.7.17"
	# outside the project, a shim called by path still finds its project
	cd "$BATS_TEST_TMPDIR"
	run "$PROJ/.bv/bin/sh" -c pwd
	assert_output "/workspace"
}

@test "bv exec puts the shims on PATH and re-syncs a machine that lost its images" {
	# /bin/sh by path: "sh" itself is a shim in this project
	run bv exec /bin/sh -c 'command -v samtools; echo $BV_PROJECT_ROOT'
	assert_success
	assert_output "$PROJ/.bv/bin/samtools
$PROJ"
	rm -rf .bv "$BV_CACHE_DIR"/rootfs
	run bv exec samtools --version
	assert_success
	assert_output --partial "samtools 1.16.1"
	assert_output --partial "Synced 2 tools"
	run bv exec --no-sync -- bwa
	assert_failure 1
	assert_output --partial "Program: bwa"
	run -127 bv exec no-such-command
}

@test "bv exec locks again when bv.toml is newer than bv.lock" {
	touch -d '+2 seconds' bv.toml
	run bv exec true
	assert_success
	assert_output --partial "Updating bv.lock"
	# nothing changed: the next exec does not lock again
	run bv exec true
	assert_success
	refute_output --partial "Updating bv.lock"
	# touched or saved unchanged: nothing to lock; an edit locks once
	touch bv.toml
	run bv exec true
	refute_output --partial "Updating bv.lock"
	echo '# a comment' >>bv.toml
	run bv exec true
	assert_output --partial "Updating bv.lock"
	run bv exec true
	assert_success
	refute_output --partial "Updating bv.lock"
}

@test "bv shell marks the prompt and exports BV_ACTIVE" {
	# a shell reading a script drops PS1, so apply PROMPT_COMMAND by hand, twice: the mark
	# must appear once; the prompt expands ${BV_ACTIVE} when drawn, so check what it shows
	run bv shell --shell /bin/bash <<<'PS1="> "; eval "$PROMPT_COMMAND"; eval "$PROMPT_COMMAND"
echo "$BV_ACTIVE|${PS1@P}"; samtools --version | head -1; exit 4'
	assert_failure 4
	assert_line "align|(bv:align) > "
	assert_line "samtools 1.16.1"
}

@test "run without the image on this machine asks for bv sync; nothing is left behind" {
	# bv's mounts live in a private namespace: none may show up here (other daemons on the
	# machine mount and unmount their own things meanwhile, so only ours are counted)
	run bv run samtools --version
	assert_success
	[ -z "$(grep -F -e "$BV_CACHE_DIR" -e "$PROJ" /proc/self/mountinfo || true)" ]
	[ -z "$(pgrep -f 'samtools --version' || true)" ]
	rm -rf "$BV_CACHE_DIR"/rootfs
	run bv run samtools --version
	assert_failure 125
	assert_output --partial "is not on this machine"
	assert_output --partial "bv sync"
}
