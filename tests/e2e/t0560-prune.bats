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

@test "prune --keep-recent keeps the newest unpinned images of each tool; --all removes every image" {
	# a second samtools version: the same repository, another digest (the OCI form)
	reg="$BATS_TEST_TMPDIR/registry"
	cp -r "$BV_REGISTRY" "$reg"
	sed -e 's/^version = "1\.16\.1"$/version = "1.16.2"/' -e 's/1\.16\.1--debian"$/1.16.1--debian-oci"/' \
		"$reg/tools/samtools/1.16.1.toml" >"$reg/tools/samtools/1.16.2.toml"
	C="$BATS_TEST_TMPDIR/c"
	mkdir -p "$C" && cd "$C"
	out=$(bv init c 2>&1 && BV_REGISTRY=$reg bv add samtools@1.16.2 2>&1) || fail "project c: $out"
	NEW_ROOTFS=$(rootfs_of "$C" samtools)
	[ -d "$NEW_ROOTFS" ] && [ "$NEW_ROOTFS" != "$SAMTOOLS_ROOTFS" ]
	touch -d '1 hour ago' "$SAMTOOLS_ROOTFS" # a's samtools was used last an hour ago
	rm "$A/bv.toml" "$C/bv.toml"             # nothing pins either samtools now
	cd "$B"
	run bv cache prune --keep-recent 1
	assert_success
	[ ! -e "$SAMTOOLS_ROOTFS" ] || fail "the older samtools stayed"
	[ -d "$NEW_ROOTFS" ] || fail "the most recent samtools was removed"
	[ -d "$BWA_ROOTFS" ]
	run bv cache prune --keep-recent 0
	assert_success
	[ ! -e "$NEW_ROOTFS" ]
	[ -d "$BWA_ROOTFS" ]
	# --all: bwa is pinned, but goes too (no question without a terminal)
	run bv cache prune --all --dry-run
	assert_success
	assert_output --partial "would remove $BWA_ROOTFS"
	[ -d "$BWA_ROOTFS" ]
	run bv cache prune --all
	assert_success
	[ ! -e "$BWA_ROOTFS" ]
	run bv cache list
	assert_output ""
	run bv cache prune --all --keep-recent 1
	assert_failure 2
	run bv cache size --all
	assert_failure 2
}

@test "prune asks on a terminal before removing anything; -y does not ask" {
	rm "$A/bv.toml"
	cd "$B"
	# script(1) gives bv a terminal; the answer comes from its stdin
	run script -qec "$BV cache prune" /dev/null <<<"n"
	assert_success
	assert_output --partial "would remove $SAMTOOLS_ROOTFS"
	assert_output --partial "Remove them? [y/N]"
	assert_output --partial "Nothing removed"
	[ -d "$SAMTOOLS_ROOTFS" ] || fail "removed although the answer was no"
	run script -qec "$BV cache prune" /dev/null <<<"y"
	assert_success
	[ ! -e "$SAMTOOLS_ROOTFS" ]
	# nothing to remove: no question
	run script -qec "$BV cache prune" /dev/null </dev/null
	assert_success
	refute_output --partial "[y/N]"
	# -y on a terminal removes without asking
	rm "$B/bv.toml"
	run script -qec "$BV cache prune -y --all" /dev/null </dev/null
	assert_success
	refute_output --partial "[y/N]"
	[ ! -e "$BWA_ROOTFS" ]
}
