#!/usr/bin/env bats
# The Apptainer backend, end to end: bv add, bv sync and bv run with --backend apptainer (or
# BV_BACKEND=apptainer), against tests/fixtures/apptainer, a TEST DOUBLE of Apptainer (which
# Debian 12 does not package).  The double records every call in $BV_APPTAINER_LOG, pulls the
# fixture images from the loopback registry with skopeo + umoci into a tar "SIF", and runs
# commands from it with bwrap, so select, pull, cache, run and exit status are all real.  What
# these tests cannot show is that real Apptainer accepts the same command lines.

load lib/common

setup_file() {
	fixture_images_up
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/bv-registry"
	export BV_APPTAINER_LOG="$BATS_TEST_TMPDIR/apptainer.log"
	unset BV_APPTAINER BV_APPTAINER_SLOW
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	# the image's /bin/sh as a second binary of samtools, to run arbitrary shell in it
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$BV_REGISTRY"/tools/samtools/*.toml
	# the double is the only apptainer on PATH
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	ln -s "$BV_SOURCE_DIR/tests/fixtures/apptainer" "$BATS_TEST_TMPDIR/bin/apptainer"
	export PATH="$BATS_TEST_TMPDIR/bin:$PATH"
	PROJ="$BATS_TEST_TMPDIR/proj"
	mkdir -p "$PROJ" && cd "$PROJ" || return 1
	bv init align >/dev/null 2>&1
	allow_shell_binary
}

registry_digest() {
	skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ADDR/biocontainers/$1"
}

# calls VERB: the number of recorded calls of the double with that first argument
calls() {
	[ -e "$BV_APPTAINER_LOG" ] || {
		echo 0
		return
	}
	jq -s --arg v "$1" '[.[] | select(.argv[0] == $v)] | length' "$BV_APPTAINER_LOG"
}

# last_argv VERB: the arguments of the last call of VERB, one per line
last_argv() {
	jq -s -r --arg v "$1" '[.[] | select(.argv[0] == $v)] | last | .argv[]' "$BV_APPTAINER_LOG"
}

sif_of() {
	echo "$BV_CACHE_DIR/sif/sha256-${1#sha256:}.sif"
}

@test "add, sync and run through the double: pinned pull, SIF cache, run line, exit status" {
	want=$(registry_digest samtools:1.16.1--debian)
	run bv add samtools --backend apptainer
	assert_success
	# one pull, by digest, through the mirror, plain http for the loopback mirror
	[ "$(calls pull)" = 1 ]
	run last_argv pull
	assert_line --index 0 "pull"
	assert_line --index 1 "--disable-cache"
	assert_line --index 2 "--no-https"
	# a staging file of this process's own, never the published name
	assert_line --index 3 --regexp "^$BV_CACHE_DIR/sif/tmp/${want#sha256:}\.[0-9]+\.[0-9a-f]{8}\.sif\$"
	assert_line --index 4 "docker://$ADDR/biocontainers/samtools@$want"
	# published under the locked digest with its record; no staging file left; nothing
	# unpacked for the native backend
	[ -s "$(sif_of "$want")" ] && [ -s "$(sif_of "$want").json" ]
	[ -z "$(ls -A "$BV_CACHE_DIR/sif/tmp")" ]
	[ ! -e "$BV_CACHE_DIR/rootfs" ]
	run jq -r .sha256 "$(sif_of "$want").json"
	assert_output "sha256:$(sha256sum "$(sif_of "$want")" | cut -d' ' -f1)"

	run bv sync --backend apptainer
	assert_success
	assert_output "Everything is up to date (1 tool)"
	[ "$(calls pull)" = 1 ]

	run bv run --backend apptainer samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run last_argv exec
	assert_line --index 0 "exec"
	assert_line --index 1 "--cleanenv"
	refute_line "--no-eval"
	assert_output --partial "--pwd
/workspace"
	assert_line "$PROJ:/workspace"
	assert_line "$(sif_of "$want")"
	# no cache_paths in the manifest: the fallbacks
	assert_line "$BV_CACHE_DIR/tool-cache/samtools/cache:/cache"
	assert_line "$BV_CACHE_DIR/tool-cache/samtools/root-cache:/root/.cache"
	refute_line "--nv"
	[ -d "$BV_CACHE_DIR/tool-cache/samtools/root-cache" ]

	# the tool's exit status, not bv's
	run bv run --backend apptainer samtools view /nonexistent
	assert_failure 1
	assert_output --partial 'failed to open "/nonexistent"'
	run bv run --backend apptainer sh -c 'exit 7'
	assert_failure 7
	# the project is /workspace and writable; the SIF is not
	run bv run --backend apptainer sh -c 'pwd; echo x >made.txt; touch /usr/bin/x 2>&1'
	assert_line --index 0 "/workspace"
	assert_line --partial "Read-only file system"
	[ -s made.txt ]
}

@test "BV_BACKEND=apptainer selects the backend for add, sync and run" {
	export BV_BACKEND=apptainer
	run bv add samtools bwa
	assert_success
	[ "$(calls pull)" = 2 ]
	rm -rf "$BV_CACHE_DIR/sif"
	run bv sync
	assert_success
	assert_output --partial "Synced 2 tools (2 pulled, apptainer backend)"
	[ "$(calls pull)" = 4 ]
	run bv run bwa
	assert_failure 1
	assert_output --partial "Version: 0.7.17"
	[ "$(calls exec)" = 1 ]
}

@test "update --backend apptainer pulls for apptainer, as add does" {
	want=$(registry_digest samtools:1.16.1--debian)
	run bv add samtools --backend apptainer
	assert_success
	rm -rf "$BV_CACHE_DIR/sif"
	run bv update --backend apptainer
	assert_success
	[ "$(calls pull)" = 2 ]
	[ -s "$(sif_of "$want")" ]
	[ ! -e "$BV_CACHE_DIR/rootfs" ]
}

@test "bv replaces itself with apptainer: the tool runs in bv's own process" {
	run bv add samtools --backend apptainer
	assert_success
	"$BV" run --backend apptainer sh -c 'exit 0' &
	pid=$!
	wait "$pid"
	run jq -s '[.[] | select(.argv[0] == "exec")] | last | .pid' "$BV_APPTAINER_LOG"
	assert_output "$pid"
}

@test "one bv.lock serves native and apptainer unchanged" {
	run bv add samtools bwa --backend apptainer
	assert_success
	cp bv.lock "$BATS_TEST_TMPDIR/apptainer.lock"
	# the lock apptainer wrote, synced and run natively, is not rewritten
	run bv sync --backend native
	assert_success
	cmp bv.lock "$BATS_TEST_TMPDIR/apptainer.lock"
	run bv run --backend native samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"

	# a native project's lock is the same lock but for its timestamps, and apptainer uses it
	mkdir "$BATS_TEST_TMPDIR/native" && cd "$BATS_TEST_TMPDIR/native"
	bv init align >/dev/null 2>&1
	allow_shell_binary
	run bv add samtools bwa --backend native
	assert_success
	diff <(grep -v '_at = ' bv.lock) <(grep -v '_at = ' "$BATS_TEST_TMPDIR/apptainer.lock")
	cp bv.lock "$BATS_TEST_TMPDIR/native.lock"
	rm -rf "$BV_CACHE_DIR/sif"
	run bv sync --backend apptainer
	assert_success
	assert_output --partial "2 pulled"
	cmp bv.lock "$BATS_TEST_TMPDIR/native.lock"
	run bv run --backend apptainer samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
}

@test "concurrent syncs on an empty SIF cache pull each image once; nobody sees a partial SIF" {
	want=$(registry_digest samtools:1.16.1--debian)
	run bv add samtools bwa --backend apptainer
	assert_success
	rm -rf "$BV_CACHE_DIR/sif" "$BV_APPTAINER_LOG"
	export BV_APPTAINER_SLOW=0.5
	bv sync --backend apptainer >"$BATS_TEST_TMPDIR/a.out" 2>&1 &
	a=$!
	bv sync --backend apptainer >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
	b=$!
	# while the double writes samtools' staging file chunk by chunk, samtools is not there
	staging="$BV_CACHE_DIR/sif/tmp/${want#sha256:}"
	for _ in $(seq 300); do
		compgen -G "$staging.*" >/dev/null && break
		sleep 0.05
	done
	compgen -G "$staging.*" >/dev/null || fail "no staging file for samtools appeared"
	[ ! -e "$(sif_of "$want")" ]
	run bv run --backend apptainer samtools --version
	assert_failure
	assert_output --partial "bv sync"
	[ "$(calls exec)" = 0 ]
	wait "$a" || fail "first sync failed: $(cat "$BATS_TEST_TMPDIR/a.out")"
	wait "$b" || fail "second sync failed: $(cat "$BATS_TEST_TMPDIR/b.out")"
	# two images, one pull each
	[ "$(calls pull)" = 2 ]
	run jq -rs '[.[] | select(.argv[0] == "pull") | .argv[-1]] | unique | length' \
		"$BV_APPTAINER_LOG"
	assert_output 2
	[ -z "$(ls -A "$BV_CACHE_DIR/sif/tmp")" ]
	for sif in "$BV_CACHE_DIR"/sif/sha256-*.sif; do
		[ "$(jq -r .sha256 "$sif.json")" = "sha256:$(sha256sum "$sif" | cut -d' ' -f1)" ]
	done
	unset BV_APPTAINER_SLOW
	run bv run --backend apptainer samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
}

@test "a SIF changed after the pull is not run; sync checks it and pulls it again" {
	want=$(registry_digest samtools:1.16.1--debian)
	run bv add samtools --backend apptainer
	assert_success
	printf 'junk' >>"$(sif_of "$want")"
	run bv cache verify
	assert_failure
	assert_output --partial "sha256-${want#sha256:}.sif"
	run bv run --backend apptainer samtools --version
	assert_failure
	assert_output --partial "bv sync"
	refute_output --partial "samtools 1.16.1"
	[ "$(calls exec)" = 0 ]
	run bv sync --backend apptainer
	assert_success
	assert_output --partial "1 pulled"
	[ "$(calls pull)" = 2 ]
	run bv run --backend apptainer samtools --version
	assert_success
	# a copy with the same bytes (new mtime) is re-hashed and kept, not pulled again
	cp "$(sif_of "$want")" "$BATS_TEST_TMPDIR/copy" && cat "$BATS_TEST_TMPDIR/copy" >"$(sif_of "$want")"
	touch -d '+1 minute' "$(sif_of "$want")"
	run bv sync --backend apptainer
	assert_success
	[ "$(calls pull)" = 2 ]
	run bv run --backend apptainer samtools --version
	assert_success
}

@test "a failed pull is one error with the end of apptainer's output; nothing is published" {
	run bv add samtools --backend apptainer
	assert_success
	bogus="sha256:$(printf '0%.0s' $(seq 64))"
	sed -i "s/^image_digest = \".*\"$/image_digest = \"$bogus\"/" bv.lock
	run bv sync --backend apptainer
	assert_failure 1
	assert_line --index 0 --partial "error: "
	assert_line --index 0 --partial "quay.io/biocontainers/samtools:1.16.1--debian of samtools"
	assert_line --index 0 --partial "exit status 255"
	assert_line --regexp '^    FATAL: .*manifest unknown'
	[ "$(grep -c '^error' <<<"$output")" = 1 ]
	[ ! -e "$(sif_of "$bogus")" ]
	[ -z "$(ls -A "$BV_CACHE_DIR/sif/tmp")" ]
}

@test "without apptainer: one clear error; doctor still works" {
	export PATH=/usr/sbin:/usr/bin:/sbin:/bin
	run bv add samtools --backend apptainer
	assert_failure 1
	assert_output --partial "apptainer not found: neither 'apptainer' nor 'singularity' is on PATH"
	[ "$(grep -c '^error' <<<"$output")" = 1 ]
	[ ! -e bv.lock ]
	BV_APPTAINER=/nonexistent/apptainer run bv sync --backend apptainer
	assert_failure 1
	run bv doctor
	assert_line --regexp '^  apptainer +not usable: apptainer not found'
	# BV_APPTAINER names the binary when it is not on PATH
	BV_APPTAINER="$BV_SOURCE_DIR/tests/fixtures/apptainer" run bv doctor
	assert_line --regexp "^  apptainer +usable +1\.3\.4-double "
	# a project synced for apptainer, on a machine without it: run says what is missing
	BV_APPTAINER="$BV_SOURCE_DIR/tests/fixtures/apptainer" run bv add samtools --backend apptainer
	assert_success
	run -125 bv run --backend apptainer samtools --version
	assert_output --partial "apptainer not found"
	refute_output --partial "not on this machine"
}

@test "doctor shows the double's version and the project's images on the selected backend" {
	run bv doctor --backend apptainer
	assert_success
	assert_line --regexp "^  apptainer +usable +1\.3\.4-double \($BATS_TEST_TMPDIR/bin/apptainer\)$"
	assert_line --regexp '^  native +'
	assert_line --regexp '^  docker +'
	assert_line --partial "bv.toml     $PROJ/bv.toml"
	run bv add samtools --backend apptainer
	assert_success
	run bv doctor --backend apptainer
	assert_success
	assert_line "  images      1 of 1 on this machine (apptainer backend)"
	[ "$(calls --version)" -ge 1 ]
}

@test "GPU tools get --nv; manifest env goes through --env or APPTAINERENV_; cache_paths replace the fallbacks" {
	cat >>"$BV_REGISTRY"/tools/samtools/1.16.1.toml <<'TOML'

[tool.hardware.gpu]
required = true

[tool.entrypoint.env]
BV_PLAIN = "plain value"
BV_LIST = "a,b"
TOML
	sed -i 's|^\[tool.entrypoint\]$|[tool.entrypoint]\ncache_paths = ["/cache/models"]|' \
		"$BV_REGISTRY"/tools/samtools/1.16.1.toml
	# no GPU here: the hardware check would refuse the tool
	run bv add samtools --backend apptainer --ignore-hardware
	assert_success
	run bv run --backend apptainer sh -c 'echo "$BV_PLAIN|$BV_LIST"; echo w >/cache/models/f'
	assert_success
	assert_line "plain value|a,b"
	run last_argv exec
	assert_line "--nv"
	assert_line "BV_PLAIN=plain value"
	refute_line --partial "BV_LIST="
	assert_line "$BV_CACHE_DIR/tool-cache/samtools/cache-models:/cache/models"
	refute_line --partial ":/root/.cache"
	[ -s "$BV_CACHE_DIR/tool-cache/samtools/cache-models/f" ]
}
