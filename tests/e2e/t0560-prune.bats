#!/usr/bin/env bats
# bv cache prune on a cache shared by several projects: it keeps what any project bv has
# worked on pins (without BV_KNOWN_PROJECTS), drops a deleted project's images, and never
# removes the root filesystem of a tool that is running.

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
	A="$BATS_TEST_TMPDIR/a"
	B="$BATS_TEST_TMPDIR/b"
	mkdir -p "$A" "$B"
	out=$(cd "$A" && bv init a 2>&1 && bv add samtools 2>&1) || fail "project a: $out"
	out=$(cd "$B" && bv init b 2>&1 && bv add bwa 2>&1) || fail "project b: $out"
	SAMTOOLS_ROOTFS=$(rootfs_of "$A" samtools)
	BWA_ROOTFS=$(rootfs_of "$B" bwa)
	[ -d "$SAMTOOLS_ROOTFS" ] && [ -d "$BWA_ROOTFS" ] || fail "no root filesystems"
}

# The unpacked root filesystem of a locked tool, from its digest in bv.lock.
rootfs_of() {
	digest=$(awk -v t="[tools.$2]" '$0 == t {f = 1} f && /^image_digest/ {print $3; exit}' "$1/bv.lock" | tr -d '"')
	for d in "$BV_CACHE_DIR/rootfs/${digest#sha256:}"*; do
		if [ -d "$d" ]; then echo "$d"; fi
	done
}

@test "prune in one project keeps what another project pins" {
	cd "$B"
	run bv cache prune
	assert_success
	[ -d "$SAMTOOLS_ROOTFS" ] || fail "project a's image was pruned"
	[ -d "$BWA_ROOTFS" ]
	cd "$A"
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
}

@test "a deleted project stops pinning its images" {
	rm -rf "$A"
	cd "$B"
	run bv cache prune --dry-run
	assert_success
	assert_output --partial "would remove $SAMTOOLS_ROOTFS"
	[ -d "$SAMTOOLS_ROOTFS" ] || fail "--dry-run removed something"
	run bv cache prune
	assert_success
	[ ! -e "$SAMTOOLS_ROOTFS" ] || fail "the deleted project's image is still there"
	[ -d "$BWA_ROOTFS" ]
	run bv run bwa 2>&1
	assert_output --partial "Program: bwa"
}

@test "prune never removes the image of a tool that is running" {
	cd "$A"
	# samtools waits on its stdin for four seconds: a run that is in progress
	(sleep 4 | bv run samtools view -c - >"$BATS_TEST_TMPDIR/run.out" 2>&1; echo $? >"$BATS_TEST_TMPDIR/run.status") &
	for _ in $(seq 100); do [ -e "$SAMTOOLS_ROOTFS.lease" ] && break; sleep 0.05; done
	sleep 0.5
	rm bv.toml # now nothing pins samtools but the run itself
	cd "$B"
	run bv cache prune
	assert_success
	assert_output --partial "keeping $SAMTOOLS_ROOTFS (a running tool is using it)"
	[ -d "$SAMTOOLS_ROOTFS" ]
	wait
	# the run was not disturbed (samtools reports the empty input, not a missing binary)
	refute_output --partial "not found"
	run cat "$BATS_TEST_TMPDIR/run.out"
	refute_output --partial "not found"
	run bv cache prune
	assert_success
	[ ! -e "$SAMTOOLS_ROOTFS" ]
}
