#!/usr/bin/env bats
# .bv/sync.ok, the record of a `bv sync` that found nothing to do: the next plain sync answers
# from it only while everything that sync read is unchanged (bv.toml, bv.lock, the root
# filesystems' directory, the registry copy's stamp and snapshot and its TTL, .bv/bin and its
# stamp, the project's registration in the cache), under the same arguments, environment and
# bv; anything else goes the whole way and finds what changed.  The registry here is a git
# repository named by a file:// URL, cloned into the cache as a remote one is.

load lib/common

setup_file() {
	fixture_images_up
}

teardown_file() {
	fixture_images_down
}

setup() {
	fixture_project_setup align
	git -C "$BV_REGISTRY" init -q
	git -C "$BV_REGISTRY" add -A
	git -C "$BV_REGISTRY" -c user.name=t -c user.email=t@localhost commit -qm registry
	REPO=$BV_REGISTRY
	export BV_REGISTRY="file://$REPO"
	run bv add samtools
	assert_success
	# a record is kept only for files whose ctime is a few clock ticks old (an edit within
	# the same tick could keep it): not a timing assertion
	sleep 0.1
	run bv sync
	assert_success
}

# synced: a plain sync that answers from the record (the debug log says so) with the
# summary a whole sync prints
synced() {
	BV_LOG=debug run bv sync
	assert_success
	assert_line "Everything is up to date (1 tool)"
	assert_output --partial "holds; nothing else read"
}

# whole_sync: a plain sync that does not take the record
whole_sync() {
	BV_LOG=debug run bv sync "$@"
	refute_output --partial "holds; nothing else read"
}

@test "a sync with nothing to do is recorded, and the next one answers from the record" {
	[ -s .bv/sync.ok ]
	synced
	# the same answer, read the whole way
	BV_SYNC_RECORD=0 BV_LOG=debug run bv sync
	assert_success
	assert_output --partial "records are off"
	assert_line "Everything is up to date (1 tool)"
	# from a subdirectory: the same project, the same record
	mkdir -p sub/dir && cd sub/dir
	synced
}

@test "a root filesystem removed from the cache is seen and pulled again" {
	synced
	rootfs=$(ls -d "$BV_CACHE_DIR"/rootfs/*/ | head -n 1)
	chmod -R u+w "$rootfs"
	rm -rf "$rootfs"
	run bv sync
	assert_success
	assert_output --partial "Synced 1 tool (1 pulled"
	run bv run samtools --version
	assert_success
	assert_line --partial "samtools 1.16.1"
}

@test "a tool declared in bv.toml after the record is locked and pulled" {
	synced
	# declared by hand: bv.lock does not pin it yet
	cat >>bv.toml <<'EOF'

[[tools]]
id = "bwa"
EOF
	whole_sync
	assert_success
	assert_line --partial "Updating bv.lock"
	grep -q '^\[tools\.bwa\]' bv.lock
	[ -x .bv/bin/bwa ] || [ -L .bv/bin/bwa ]
}

@test "shims removed or the project's registration lost: written again" {
	synced
	rm -rf .bv/bin
	whole_sync
	assert_success
	[ -L .bv/bin/samtools ]
	sleep 0.1
	run bv sync
	sleep 0.1
	synced
	rm -f "$BV_CACHE_DIR"/projects/*
	whole_sync
	assert_success
	run grep -rlx "$PWD" "$BV_CACHE_DIR/projects"
	assert_success
}

@test "a manifest republished in the registry warns once the copy is refreshed" {
	# a copy refreshed every two seconds
	export BV_INDEX_TTL=2
	run bv sync
	sleep 0.1
	run bv sync
	echo "# republished" >>"$REPO/tools/samtools/1.16.1.toml"
	git -C "$REPO" -c user.name=t -c user.email=t@localhost commit -qam republish
	sleep 2.1
	BV_LOG=debug run bv sync
	assert_success
	refute_output --partial "holds; nothing else read"
	assert_line "warning: the manifest of samtools 1.16.1 changed since bv.lock was written; 'bv lock' to take it"
	# a sync that warned keeps no record: the warning comes every time
	run bv sync
	assert_line --partial "changed since bv.lock was written"
	[ "$(grep -c '^file ' .bv/sync.ok)" -gt 0 ] # the old record, never taken again
}

@test "other arguments, environment or options go the whole way" {
	synced
	BV_BACKEND=native whole_sync
	assert_success
	assert_output --partial "other arguments, environment or machine"
	whole_sync --backend native
	BV_LOG=debug run bv sync --frozen
	assert_success
	refute_output --partial "holds; nothing else read"
	# one record at a time: the plain sync goes the whole way once, and records again
	whole_sync
	assert_success
	synced
}

@test "a registry used in place, or records turned off: nothing is recorded" {
	rm -f .bv/sync.ok
	BV_REGISTRY=$REPO BV_LOG=debug run bv sync
	assert_success
	assert_output --partial "used in place"
	[ ! -e .bv/sync.ok ]
	BV_SYNC_RECORD=0 run bv sync
	[ ! -e .bv/sync.ok ]
}

@test "a damaged or foreign record is ignored and made again" {
	synced
	printf 'garbage\n' >.bv/sync.ok
	whole_sync
	assert_success
	assert_output --partial "damaged"
	assert_line "Everything is up to date (1 tool)"
	synced
	# bv at another path (the shims would point elsewhere) does not trust it
	other=$(reachable_bv)
	BV_LOG=debug run "$other" sync
	assert_success
	assert_output --partial "other arguments, environment or machine"
}
