#!/usr/bin/env bats
# A hostile registry, bv.lock and bv.toml: every name that would become a path, a mount, an
# argument or an environment entry is refused when the file is read, with one error naming the
# file and the key, and nothing outside the cache and the project is read or written.

load lib/common

setup_file() {
	fixture_images_up # only the system-command test resolves an image
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	REG="$BATS_TEST_TMPDIR/bv-registry"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$REG"
	export BV_REGISTRY="$REG" BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	# the canary: keys the hostile files aim at
	mkdir -p "$HOME/.ssh"
	echo secret >"$HOME/.ssh/id_ed25519"
	CANARY_BEFORE=$(ls -la --time-style=full-iso "$HOME/.ssh")
	mkdir -p "$BATS_TEST_TMPDIR/proj" && cd "$BATS_TEST_TMPDIR/proj" || return 1
	bv init proj >/dev/null 2>&1
	cp bv.toml "$BATS_TEST_TMPDIR/bv.toml.before"
}

# Nothing written in the project but what init wrote, nothing touched in ~/.ssh.
assert_nothing_changed() {
	cmp bv.toml "$BATS_TEST_TMPDIR/bv.toml.before" || fail "bv.toml changed"
	[ ! -e bv.lock ] || fail "bv.lock was written"
	[ "$(ls -la --time-style=full-iso "$HOME/.ssh")" = "$CANARY_BEFORE" ] || fail "~/.ssh changed"
	[ "$(cat "$HOME/.ssh/id_ed25519")" = secret ]
	! find "$BATS_TEST_TMPDIR" -name loot -o -name 'evil*' | grep -q . || fail "a hostile path appeared"
}

samtools_manifest() {
	echo "$REG/tools/samtools/1.16.1.toml"
}

@test "reference data that climbs out of the cache is refused at add" {
	cat >>"$(samtools_manifest)" <<'TOML'

[tool.reference_data.x]
id = "../../home"
version = ".ssh"
mount_path = "/loot"
TOML
	run bv add samtools
	assert_failure
	assert_output --partial "invalid id '../../home' in [tool.reference_data.x]"
	assert_output --partial "samtools/1.16.1.toml:"
	assert_equal "$(echo "$output" | grep -c .)" 1
	assert_nothing_changed
}

@test "hostile ids, versions, mount paths, binaries, subcommands and env names are refused" {
	manifest=$(samtools_manifest)
	cp "$manifest" "$BATS_TEST_TMPDIR/orig.toml"
	check() { # <sed expression or append text> <expected message>
		cp "$BATS_TEST_TMPDIR/orig.toml" "$manifest"
		printf '%s\n' "$1" >>"$manifest"
		run bv add samtools
		assert_failure
		assert_output --partial "$2"
		assert_nothing_changed
	}
	check $'[tool.reference_data.db]\nid = "db"\nversion = "../../../.ssh"' "invalid version '../../../.ssh'"
	check $'[tool.reference_data.db]\nid = "db"\nversion = "1"\nmount_path = "/data/../etc"' "invalid mount_path '/data/../etc'"
	check $'[tool.reference_data.db]\nid = "db"\nversion = "1"\nmount_path = "/proc/1"' "bv mounts /proc, /sys and /dev itself"
	check $'[tool.reference_data.db]\nid = "db"\nversion = "1"\nmount_path = "/x,rw"' "it contains ','"
	check $'[tool.subcommands]\n"../../evil" = ["samtools"]' "invalid subcommand name '../../evil'"
	check $'[tool.entrypoint.env]\n"LD_PRELOAD=/x;A" = "1"' "invalid environment variable name"
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "..\/evil"]/' "$BATS_TEST_TMPDIR/orig.toml"
	check "" "invalid binary name '../evil' in [tool.binaries]"
	cp "$REG/tools/samtools/1.16.1.toml" "$BATS_TEST_TMPDIR/orig.toml"
	sed -i 's/^exposed = .*$/exposed = ["samtools"]/; s/^cache_paths = .*//' "$BATS_TEST_TMPDIR/orig.toml"
	sed -i 's/^command = "samtools"$/command = "samtools"\ncache_paths = ["\/c\/..\/..\/root"]/' "$BATS_TEST_TMPDIR/orig.toml"
	check "" "invalid cache path '/c/../../root'"
}

@test "a tool exposing a system command is refused unless bv.toml names it" {
	export BV_MIRRORS="quay.io=$ADDR"
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sudo"]/' "$(samtools_manifest)"
	run bv add samtools
	assert_failure
	assert_output --partial "tool 'samtools' exposes 'sudo', which would replace the system command"
	assert_output --partial 'sudo = "samtools"'
	assert_nothing_changed
}

@test "a hostile bv.lock is refused by sync, run and exec, naming the file and the key" {
	cat >bv.lock <<'TOML'
version = 1

[metadata]
bv_version = "0.1.29"
generated_at = "2026-05-06T10:00:00Z"

[tools."../../evil"]
tool_id = "../../evil"
version = "1.0"
image_reference = "quay.io/x/evil:1"
image_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
resolved_at = "2026-05-06T10:00:00Z"
TOML
	cp bv.lock "$BATS_TEST_TMPDIR/lock.before"
	for cmd in sync "run evil" "exec true"; do
		# shellcheck disable=SC2086
		run bv $cmd
		assert_failure
		assert_output --partial "bv.lock:"
		assert_output --partial "invalid tool id '../../evil'"
		cmp bv.lock "$BATS_TEST_TMPDIR/lock.before"
	done
	[ ! -e .bv/bin ] || [ -z "$(ls .bv/bin)" ]
}

@test "a bv.lock whose binary index adds a system command gets no shim without bv.toml's consent" {
	export BV_MIRRORS="quay.io=$ADDR"
	run bv add samtools
	assert_success
	cp bv.lock "$BATS_TEST_TMPDIR/good.lock"
	# an index entry for a binary the tool does not list is refused when the lock is read
	sed -i 's/^\[binary_index\]$/[binary_index]\nls = "samtools"/' bv.lock
	run bv sync
	assert_failure
	assert_output --partial "binary 'ls' in [binary_index] names tool 'samtools', which does not provide it"
	# a tool that lists ls in bv.lock: still no shim unless bv.toml names it
	cp "$BATS_TEST_TMPDIR/good.lock" bv.lock
	sed -i 's/^binaries = \["samtools"\]$/binaries = ["ls", "samtools"]/' bv.lock
	sed -i 's/^\[binary_index\]$/[binary_index]\nls = "samtools"/' bv.lock
	rm -rf .bv/bin
	run bv sync
	assert_failure
	assert_output --partial "bv.lock makes 'ls' of tool 'samtools' replace the system command"
	[ ! -e .bv/bin/ls ]
}

@test "a bv.toml cache or volume that mounts the user's keys is refused" {
	cat >>bv.toml <<'TOML'

[[cache]]
container_path = "/cache"
host_path = "~/.ssh"
TOML
	run bv list
	assert_failure
	assert_output --partial "invalid host_path '~/.ssh' in [[cache]]: it is in a hidden directory of your home"
	sed -i 's|^host_path = .*|host_path = "~"|' bv.toml
	run bv list
	assert_failure
	assert_output --partial "it is your home directory or above it"
	sed -i 's|^host_path = .*|host_path = "~/.cache/models"|' bv.toml
	run bv list
	refute_output --partial "host_path"
}
