#!/usr/bin/env bats
# Unpacked trees are sealed when they are built: an edit to a file of an image is found by
# bv cache verify (and by --fast when the size changes), the damaged tree is no longer run,
# and bv sync unpacks it again from the verified blobs.

load lib/common

setup_file() {
	fixture_images_up
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache" BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BV_SOURCE_DIR/tests/fixtures/bv-registry"
	mkdir -p "$BATS_TEST_TMPDIR/p" && cd "$BATS_TEST_TMPDIR/p" || return 1
	out=$(bv init p 2>&1 && bv add samtools 2>&1) || fail "add: $out"
	ROOTFS=$(find "$BV_CACHE_DIR/rootfs" -mindepth 1 -maxdepth 1 -type d ! -name '*.*' | head -n 1)
	[ -f "$ROOTFS/usr/bin/samtools" ] || fail "no samtools in $ROOTFS"
}

# Overwrites a file of the read-only tree the way a user with a shell could.
tamper() {
	chmod u+w "$(dirname "$1")" "$1"
	printf '%s' "$2" | dd of="$1" conv=notrunc status=none
	chmod a-w "$(dirname "$1")" "$1"
}

@test "a fresh cache verifies clean, fast and full" {
	run bv cache verify
	assert_success
	assert_output --partial "The store is intact"
	run bv cache verify --fast
	assert_success
}

@test "an edited binary is found, not run, and repaired by bv sync" {
	before=$(sha256sum "$ROOTFS/usr/bin/samtools" | cut -d' ' -f1)
	tamper "$ROOTFS/usr/bin/samtools" "EVIL"
	# same size: only the full check sees it
	run bv cache verify --fast
	assert_success
	run bv cache verify
	assert_failure
	assert_output --partial "$ROOTFS is damaged: 'usr/bin/samtools' differs from the seal"
	# the layer tree that shares the inode is damaged too
	assert_output --regexp "layers/[0-9a-f]{64} is damaged: 'usr/bin/samtools'"
	run bv run samtools --version
	assert_failure
	run bv sync
	assert_success
	[ "$(sha256sum "$ROOTFS/usr/bin/samtools" | cut -d' ' -f1)" = "$before" ]
	run bv cache verify
	assert_success
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
}

@test "a removed file is found by the fast check" {
	chmod u+w "$ROOTFS/usr/bin"
	rm "$ROOTFS/usr/bin/samtools"
	chmod a-w "$ROOTFS/usr/bin"
	run bv cache verify --fast
	assert_failure
	assert_output --partial "$ROOTFS is damaged"
	run bv sync
	assert_success
	run bv run samtools --version
	assert_success
}
