#!/usr/bin/env bats
# Node-local images (issue 17): with image_mode local_dir the blobs stay in the shared cache
# and each "node" (here: a scratch directory, or a private mount namespace) unpacks an image
# once into its own directory; with image_mode squashfs bv sync writes one SquashFS file per
# image and a run mounts it.  No Slurm: two nodes are two local directories over one cache.

load lib/common

setup_file() {
	fixture_images_up
	# one pull for the whole file, in local_dir mode: the cache never gets a tree of its own
	NL_CACHE="$BATS_FILE_TMPDIR/cache"
	NL_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	export NL_CACHE NL_REGISTRY
	# samtools exposes the image's /bin/sh too, so tests can run shell in it (as t0600)
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$NL_REGISTRY"
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$NL_REGISTRY"/tools/samtools/*.toml
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$NL_CACHE" BV_MIRRORS="quay.io=$ADDR" BV
	export BV_REGISTRY="$NL_REGISTRY"
	export BV_IMAGE_MODE=local_dir BV_LOCAL_DIR="$BATS_TEST_TMPDIR/node1"
	PROJ="$BATS_TEST_TMPDIR/proj"
	mkdir -p "$PROJ" && cd "$PROJ" || return 1
	bv init nl >/dev/null 2>&1
	allow_shell_binary
	out=$(bv add samtools 2>&1) || fail "bv add failed: $out"
	DIGEST=$(awk '/^image_digest/ {print $3; exit}' bv.lock | tr -d '"')
	DIGEST=${DIGEST#sha256:}
}

# The root filesystem of samtools below the node-local directory $1.
node_rootfs() {
	for d in "$1"/bv-"$(id -u)"/*/rootfs/"$DIGEST"-*; do
		case $d in *.*) ;; *) [ -d "$d" ] && echo "$d" ;; esac
	done
}

# The unpacked trees in the shared cache (there must be none in local_dir mode).
shared_trees() {
	find "$NL_CACHE" -maxdepth 2 \( -path "$NL_CACHE/rootfs/*" -o -path "$NL_CACHE/layers/*" \) -type d
}

@test "local_dir: the image is unpacked on the node, never in the shared cache, and reused" {
	tree=$(node_rootfs "$BV_LOCAL_DIR")
	[ -n "$tree" ] || fail "no node-local tree under $BV_LOCAL_DIR"
	[ -f "$tree.seal" ] || fail "the node-local tree is not sealed"
	[ -z "$(shared_trees)" ] || fail "the shared cache has unpacked trees: $(shared_trees)"
	inode=$(stat -c %i "$tree")
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv run sh -c 'echo hi'
	assert_output "hi"
	[ "$(stat -c %i "$(node_rootfs "$BV_LOCAL_DIR")")" = "$inode" ] || fail "the tree was rebuilt"
	[ -z "$(shared_trees)" ] || fail "a run unpacked into the shared cache"
}

@test "local_dir: bv.toml's [runtime] sets the mode and the directory" {
	unset BV_IMAGE_MODE BV_LOCAL_DIR
	printf '\n[runtime]\nimage_mode = "local_dir"\nlocal_dir = "%s"\n' "$BATS_TEST_TMPDIR/node9" >>bv.toml
	run bv run samtools --version
	assert_success
	[ -n "$(node_rootfs "$BATS_TEST_TMPDIR/node9")" ] || fail "[runtime] local_dir not used"
	sed -i 's/image_mode = "local_dir"/image_mode = "fast"/' bv.toml
	run bv run samtools --version
	assert_failure
	assert_output --partial "unknown image_mode 'fast' in [runtime]"
}

@test "local_dir: two nodes running at once each unpack their own tree" {
	a="$BATS_TEST_TMPDIR/nodeA" b="$BATS_TEST_TMPDIR/nodeB"
	BV_LOCAL_DIR=$a "$BV" run sh -c 'echo a' >"$BATS_TEST_TMPDIR/a.out" 2>&1 &
	pa=$!
	BV_LOCAL_DIR=$b "$BV" run sh -c 'echo b' >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
	pb=$!
	wait $pa || fail "node A: $(cat "$BATS_TEST_TMPDIR/a.out")"
	wait $pb || fail "node B: $(cat "$BATS_TEST_TMPDIR/b.out")"
	[ "$(cat "$BATS_TEST_TMPDIR/a.out")" = a ] && [ "$(cat "$BATS_TEST_TMPDIR/b.out")" = b ]
	ta=$(node_rootfs "$a") tb=$(node_rootfs "$b")
	[ -n "$ta" ] && [ -n "$tb" ] || fail "a node has no tree: '$ta' '$tb'"
	[ "$(stat -c %i "$ta/usr/bin/samtools")" != "$(stat -c %i "$tb/usr/bin/samtools")" ] ||
		fail "the nodes share inodes"
	[ -z "$(shared_trees)" ] || fail "the shared cache has unpacked trees"
}

@test "local_dir: kill -9 during the unpack, then the next run completes and verify is clean" {
	n="$BATS_TEST_TMPDIR/nodeK"
	seen=""
	# the kill lands at a different moment each try; one must hit a staging directory
	for _ in 1 2 3 4 5 6 7 8; do
		rm -rf "$n"
		BV_LOCAL_DIR=$n "$BV" run samtools --version >/dev/null 2>&1 &
		pid=$!
		for _ in $(seq 400); do
			if compgen -G "$n/bv-*/*/*/*.tmp-*" >/dev/null; then
				kill -9 $pid
				seen=1
				break
			fi
			kill -0 $pid 2>/dev/null || break
			sleep 0.005
		done
		wait $pid 2>/dev/null || true
		[ -n "$seen" ] && break
	done
	[ -n "$seen" ] || fail "never caught an unpack in progress"
	[ -z "$(node_rootfs "$n")" ] || [ -f "$(node_rootfs "$n").seal" ] ||
		fail "an unsealed tree was published"
	BV_LOCAL_DIR=$n run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	BV_LOCAL_DIR=$n run bv cache verify
	assert_success
	assert_output --partial "The store is intact"
	! compgen -G "$n/bv-*/*/*/*.tmp-*" >/dev/null || fail "a staging directory was left behind"
}

@test "local_dir: a damaged node-local tree is found by the run and unpacked again" {
	tree=$(node_rootfs "$BV_LOCAL_DIR")
	chmod u+w "$tree/usr/bin"
	rm "$tree/usr/bin/samtools"
	run bv run samtools --version
	assert_success
	assert_output --partial "is damaged"
	assert_output --partial "unpacking it again"
	assert_output --partial "samtools 1.16.1"
	[ -f "$(node_rootfs "$BV_LOCAL_DIR")/usr/bin/samtools" ]
	run bv cache verify --fast
	assert_success
}

@test "local_dir: a full node-local disk falls back to the shared tree with one warning" {
	[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs in a private namespace"
	command -v unshare >/dev/null || fail "unshare (util-linux) is missing"
	n="$BATS_TEST_TMPDIR/small"
	mkdir -p "$n"
	run unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs "$1" && BV_LOCAL_DIR=$1 "$BV" run samtools --version' sh "$n"
	assert_success
	assert_output --partial "samtools 1.16.1"
	[ "$(grep -c "is full; samtools runs from the shared tree in the cache" <<<"$output")" = 1 ] ||
		fail "not one warning: $output"
	[ -n "$(shared_trees)" ] || fail "no shared tree was built"
}

@test "local_dir: prune removes this node's trees of images nothing pins" {
	out=$(bv add bwa 2>&1) || fail "add bwa: $out"
	run bv run bwa
	bwa=$(awk '/^\[tools.bwa\]/ {f = 1} f && /^image_digest/ {print $3; exit}' bv.lock | tr -d '"')
	bwa=${bwa#sha256:}
	compgen -G "$BV_LOCAL_DIR/bv-*/*/rootfs/$bwa-*" >/dev/null || fail "no node-local bwa tree"
	run bv cache size
	assert_success
	assert_output --partial "on this node at $BV_LOCAL_DIR"
	out=$(bv remove bwa 2>&1) || fail "remove bwa: $out"
	run bv cache prune
	assert_success
	! compgen -G "$BV_LOCAL_DIR/bv-*/*/rootfs/$bwa-*" >/dev/null || fail "bwa's tree is still there"
	[ -n "$(node_rootfs "$BV_LOCAL_DIR")" ] || fail "samtools' tree (still pinned) was pruned"
	run bv run samtools --version
	assert_success
}

# squashfs mode: the same project, with the images as one SquashFS file each.
squashfs_of() {
	echo "$1"/squashfs/"$DIGEST"-*.sqfs
}

@test "squashfs: sync writes one image with its record, byte-identical in two caches" {
	export BV_IMAGE_MODE=squashfs
	command -v mksquashfs >/dev/null || fail "mksquashfs (squashfs-tools) is missing"
	run bv sync
	assert_success
	img=$(squashfs_of "$NL_CACHE")
	[ -f "$img" ] || fail "no squashfs image in the cache: $(ls "$NL_CACHE")"
	sum=$(sha256sum "$img" | cut -d' ' -f1)
	grep -q "\"sha256\": \"$sum\"" "$img.record" || fail "the record does not hold the image's sha256"
	BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache2" run bv sync
	assert_success
	img2=$(squashfs_of "$BATS_TEST_TMPDIR/cache2")
	[ "$(sha256sum "$img2" | cut -d' ' -f1)" = "$sum" ] || fail "two builds differ"
}

@test "squashfs: root (kernel mount) and an unprivileged user (squashfuse) see what tree mode sees" {
	[ "$(id -u)" = 0 ] || skip "needs root to compare the kernel mount and to switch users"
	command -v squashfuse >/dev/null || fail "squashfuse is missing"
	probe='cat /etc/debian_version; ls /usr/bin | wc -l; samtools --version | head -n 1; echo "$PWD"'
	BV_IMAGE_MODE=squashfs run bv sync
	assert_success
	BV_IMAGE_MODE=tree run bv sync
	assert_success
	BV_IMAGE_MODE=tree run bv run sh -c "$probe"
	assert_success
	tree_out=$output
	# the shared tree goes: a squashfs run needs only the image file
	for d in "$NL_CACHE"/rootfs/"$DIGEST"-*; do
		[ -d "$d" ] && chmod -R u+w "$d" && rm -rf "$d"
	done
	BV_IMAGE_MODE=squashfs run bv -v run sh -c "$probe"
	assert_success
	if [ -e /dev/loop-control ]; then
		assert_output --partial "with the kernel's squashfs"
	fi
	[ "$(grep -v '^bv: debug' <<<"$output")" = "$tree_out" ] || fail "root: '$output' vs '$tree_out'"
	# an unprivileged user needs /dev/fuse (Debian's default mode 0666; 0600 on this machine)
	mode=$(stat -c %a /dev/fuse)
	for d in "$PROJ" "$NL_CACHE"; do
		while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
	done
	chmod -R a+rwX "$PROJ" "$NL_CACHE"
	mkdir -m 1777 "$BATS_TEST_TMPDIR/node-user"
	reachable=$(reachable_bv)
	chmod 0666 /dev/fuse
	run setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=/tmp BV_IMAGE_MODE=squashfs \
		BV_LOCAL_DIR="$BATS_TEST_TMPDIR/node-user" "$reachable" -v run sh -c "$probe"
	chmod "$mode" /dev/fuse
	assert_success
	assert_output --partial "with squashfuse"
	[ "$(grep -v '^bv: debug' <<<"$output")" = "$tree_out" ] || fail "user: '$output' vs '$tree_out'"
}

@test "squashfs: a changed image is refused, verify finds a corrupt one, sync (after a kill -9) builds it again" {
	export BV_IMAGE_MODE=squashfs
	run bv sync
	assert_success
	img=$(squashfs_of "$NL_CACHE")
	when=$(stat -c %y "$img")
	printf 'XXXX' | dd of="$img" bs=1 seek=4096 conv=notrunc status=none
	run bv run samtools --version
	assert_failure
	assert_output --partial "does not match its record"
	assert_output --partial "run 'bv sync' first"
	# the same bytes with the old mtime pass the cheap stamp; the full hash finds them
	touch -d "$when" "$img"
	run bv cache verify
	assert_failure
	assert_output --partial "squashfs image $img is damaged"
	# verify dropped the record: the next sync builds again; kill it in the middle first
	bv sync >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 2000); do
		compgen -G "$img.tmp-*" >/dev/null && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.01
	done
	compgen -G "$img.tmp-*" >/dev/null || fail "never caught a build in progress"
	kill -9 $pid
	wait $pid 2>/dev/null || true
	# the orphaned mksquashfs finishes its staging file, which is never renamed
	for _ in $(seq 1000); do
		pgrep -f "mksquashfs .*\.tmp-$pid" >/dev/null || break
		sleep 0.02
	done
	[ ! -e "$img.record" ] || fail "a record was written for a half-built image"
	run bv run samtools --version
	assert_failure
	run bv sync
	assert_success
	[ -f "$img" ] && [ -f "$img.record" ] || fail "sync did not build the image"
	! compgen -G "$img.tmp-*" >/dev/null || fail "a staging file was left behind"
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv cache verify
	assert_success
}

@test "squashfs: prune removes images nothing pins, with their records" {
	export BV_IMAGE_MODE=squashfs
	run bv sync
	assert_success
	img=$(squashfs_of "$NL_CACHE")
	[ -f "$img" ]
	run bv cache prune
	assert_success
	[ -f "$img" ] || fail "prune removed a pinned image"
	run bv cache prune --all
	assert_success
	[ ! -e "$img" ] && [ ! -e "$img.record" ] || fail "the squashfs image is still there"
}
