#!/usr/bin/env bats
# bv add, bv sync, bv lock and bv cache against Debian's docker-registry on loopback, fed
# with images of Debian's samtools and bwa built by umoci/skopeo (tests/fixtures/images.sh).
# The fixture bv-registry names them as quay.io/biocontainers/...; the mirror setting sends
# quay.io to the loopback registry.

load lib/common

setup_file() {
	fixture_images_up
}

teardown_file() {
	fixture_images_down
}

setup() {
	fixture_project_setup align
}

registry_digest() {
	skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ADDR/biocontainers/$1"
}

@test "add pulls, unpacks and pins the registry's digests in bv.lock" {
	run bv add samtools bwa
	assert_success
	want=$(registry_digest samtools:1.16.1--debian)
	run python3 -c 'import tomllib; l = tomllib.load(open("bv.lock", "rb")); print(l["tools"]["samtools"]["image_digest"], l["tools"]["samtools"]["version"], l["binary_index"]["bwa"])'
	assert_output "$want 1.16.1 bwa"
	run bv list
	assert_line --regexp '^samtools +1\.16\.1 +core '
	assert_line --regexp '^bwa +0\.7\.17 '
	grep -q '^id = "samtools"$' bv.toml
	rootfs=$(ls -d "$BV_CACHE_DIR"/rootfs/"${want#sha256:}"-*/)
	[ -x "$rootfs/usr/bin/samtools" ]
	# a Docker v2s2 image is also recorded under an OCI manifest, which skopeo reads
	run skopeo inspect "oci:$BV_CACHE_DIR/store:quay.io/biocontainers/samtools:1.16.1--debian"
	assert_success
	run bv cache prune
	assert_success
	run skopeo inspect "oci:$BV_CACHE_DIR/store:quay.io/biocontainers/samtools:1.16.1--debian"
	assert_success
}

@test "OCI gzip and zstd images pull and unpack; skopeo and umoci read the store" {
	sed -i 's/:0.7.17--debian"/:0.7.17--debian-oci"/' "$BV_REGISTRY"/tools/bwa/*.toml
	sed -i 's/:2.24--debian"/:2.24--debian-zstd"/' "$BV_REGISTRY"/tools/minimap2/*.toml
	run bv add bwa minimap2
	assert_success
	want=$(registry_digest minimap2:2.24--debian-zstd)
	rootfs=$(ls -d "$BV_CACHE_DIR"/rootfs/"${want#sha256:}"-*/)
	[ -x "$rootfs/usr/bin/minimap2" ]
	# independent readers of the OCI layout (they read OCI media types, not Docker v2s2)
	run skopeo inspect "oci:$BV_CACHE_DIR/store:quay.io/biocontainers/bwa:0.7.17--debian-oci"
	assert_success
	run umoci unpack --rootless --image "$BV_CACHE_DIR/store:quay.io/biocontainers/bwa:0.7.17--debian-oci" "$BATS_TEST_TMPDIR/bundle"
	assert_success
	[ -x "$BATS_TEST_TMPDIR/bundle/rootfs/usr/bin/bwa" ]
}

@test "sync on a fresh cache pulls exactly the lock; a second sync does nothing" {
	run bv add samtools
	assert_success
	rm -rf "$BV_CACHE_DIR"
	run bv sync
	assert_success
	assert_output --partial "Synced 1 tool (1 pulled, native backend)"
	run bv sync
	assert_success
	assert_output "Everything is up to date (1 tool)"
	run bv cache verify
	assert_success
}

@test "a failed pull writes neither bv.toml nor bv.lock" {
	run bv add samtools
	assert_success
	toml_before=$(cat bv.toml) lock_before=$(cat bv.lock)
	sed -i 's/1.16.1--debian/9.9.9--missing/' "$BV_REGISTRY"/tools/samtools/*.toml
	sed -i 's/^version = "1.16.1"$/version = "1.16.2"/' "$BV_REGISTRY"/tools/samtools/*.toml
	mv "$BV_REGISTRY"/tools/samtools/1.16.1.toml "$BV_REGISTRY"/tools/samtools/1.16.2.toml
	run bv add samtools bwa
	assert_failure 1
	assert_output --partial "quay.io/biocontainers/samtools:9.9.9--missing"
	assert_equal "$(cat bv.toml)" "$toml_before"
	assert_equal "$(cat bv.lock)" "$lock_before"
}

@test "cache verify finds a damaged blob and names it" {
	run bv add bwa
	assert_success
	blob=$(ls "$BV_CACHE_DIR"/store/blobs/sha256/ | head -n 1)
	chmod u+w "$BV_CACHE_DIR/store/blobs/sha256/$blob"
	printf 'x' >>"$BV_CACHE_DIR/store/blobs/sha256/$blob"
	run bv cache verify
	assert_failure 1
	assert_output --partial "sha256:$blob"
}

@test "sync --frozen refuses a lock that no longer satisfies bv.toml" {
	run bv add samtools
	assert_success
	sed -i 's/^id = "samtools"$/id = "samtools"\nversion = ">=2"/' bv.toml
	sed -i '/^version = ""$/d' bv.toml
	run bv sync --frozen
	assert_failure 1
	assert_output --partial "does not satisfy '>=2'"
}

@test "sync locks a tool that bv.toml declares and bv.lock does not pin" {
	run bv add samtools
	assert_success
	printf '\n[[tools]]\nid = "bwa"\n' >>bv.toml
	touch -d '-1 minute' bv.toml
	run bv sync
	assert_success
	assert_output --partial "Updating bv.lock (it does not match bv.toml)"
	refute_output --partial "Everything is up to date"
	run python3 -c 'import tomllib; print(sorted(tomllib.load(open("bv.lock", "rb"))["tools"]))'
	assert_output "['bwa', 'samtools']"
	run bv sync
	assert_success
	assert_output "Everything is up to date (2 tools)"
	# --frozen still refuses instead of locking
	printf '\n[[tools]]\nid = "minimap2"\n' >>bv.toml
	run bv sync --frozen
	assert_failure 1
	assert_output --partial "'minimap2' is declared in bv.toml but not locked"
	run grep -c minimap2 bv.lock
	assert_output 0
	# bv run of a declared but unlocked tool says so instead of suggesting bv add
	run -127 bv run minimap2 --version
	assert_output --partial "'minimap2' is declared in bv.toml but not locked"
	assert_output --partial "run 'bv sync'"
}

@test "cache size agrees with du, cache list shows bv.lock's digests, cache clean empties the cache" {
	run bv add samtools bwa
	assert_success
	run bv cache size
	assert_success
	# the total within 5 % of du's (du also counts the cache directory itself)
	bv_kib=$(python3 -c 'import re, sys
v, unit = re.match(r"([0-9.]+) (B|KiB|MiB|GiB) on disk", sys.argv[1]).groups()
print(int(float(v) * {"B": 1 / 1024, "KiB": 1, "MiB": 1024, "GiB": 1 << 20}[unit]))' "${lines[0]}")
	du_kib=$(du -sk "$BV_CACHE_DIR" | cut -f1)
	python3 -c 'import sys; b, d = map(int, sys.argv[1:]); sys.exit(0 if abs(b - d) <= d * 0.05 + 64 else 1)' \
		"$bv_kib" "$du_kib" || fail "bv cache size says $bv_kib KiB, du $du_kib KiB"
	assert_line --regexp '^  store +[0-9.]+ [KMG]iB  \([0-9]+ blobs, '
	assert_line --regexp '^  layers +[0-9.]+ [KMG]iB'
	run bv cache list
	assert_success
	want=$(python3 -c 'import tomllib; print(tomllib.load(open("bv.lock", "rb"))["tools"]["samtools"]["image_digest"][:19])')
	assert_line --regexp "^quay\.io/biocontainers/samtools:1\.16\.1--debian +${want} +[0-9.]+ MiB$"
	run bv list --json
	assert_success
	[ -f "$BV_CACHE_DIR/manifests.tiers" ]
	run bv cache clean --dry-run
	assert_success
	[ -n "$(ls "$BV_CACHE_DIR/store/blobs/sha256")" ]
	[ -f "$BV_CACHE_DIR/manifests.tiers" ]
	run bv cache clean
	assert_success
	assert_output --regexp "Removed [1-9][0-9]* blobs"
	run find "$BV_CACHE_DIR/store/blobs/sha256" "$BV_CACHE_DIR/layers" "$BV_CACHE_DIR/rootfs" -mindepth 1 -not -name "*.lock"
	assert_output ""
	[ ! -e "$BV_CACHE_DIR/manifests" ] && [ ! -e "$BV_CACHE_DIR/manifests.tiers" ]
	run bv sync
	assert_success
	run bv run samtools --version
	assert_success
}

@test "add outside a project starts one; a failed add leaves nothing behind" {
	mkdir "$BATS_TEST_TMPDIR/fresh" && cd "$BATS_TEST_TMPDIR/fresh"
	run bv add no-such-tool
	assert_failure
	[ ! -e bv.toml ] && [ ! -e bv.lock ]
	run bv add --registry "$BV_REGISTRY" samtools
	assert_success
	assert_output --partial "Created '$BATS_TEST_TMPDIR/fresh/bv.toml'"
	run python3 -c 'import tomllib; t = tomllib.load(open("bv.toml", "rb")); print(t["project"]["name"], t["registry"]["url"], [x["id"] for x in t["tools"]])'
	assert_output "fresh $BV_REGISTRY ['samtools']"
	[ -s bv.lock ]
}

@test "a lock as upstream writes it passes lock --check; a directory with only bv.lock syncs and runs" {
	run bv add samtools
	assert_success
	# upstream: no [metadata] needed, its own manifest_sha256, extra keys in layers
	python3 - <<'PY'
import hashlib, re
text = open("bv.lock").read()
text = re.sub(r"(?m)^\[metadata\]\n(?:[^\[\n].*\n)*", "", text)
text = re.sub(r'manifest_sha256 = "sha256:[0-9a-f]{64}"',
              'manifest_sha256 = "sha256:' + hashlib.sha256(b"upstream").hexdigest() + '"', text)
open("bv.lock", "w").write(text)
PY
	grep -q 'manifest_sha256 = "sha256:' bv.lock || fail "$(cat bv.lock)"
	run grep -c '^\[metadata\]' bv.lock
	assert_output 0
	cp bv.lock "$BATS_TEST_TMPDIR/upstream.lock"
	run bv lock --check
	assert_success
	assert_output --partial "bv.lock is up to date"
	# a paper's bv.lock alone
	mkdir "$BATS_TEST_TMPDIR/paper" && cp bv.lock "$BATS_TEST_TMPDIR/paper/" && cd "$BATS_TEST_TMPDIR/paper"
	rm -rf "$BV_CACHE_DIR"
	run bv sync
	assert_success
	# upstream's digest differs from bv's, but the manifest did not change: no drift warning
	refute_output --partial "changed since bv.lock was written"
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	[ ! -e bv.toml ]
	cmp bv.lock "$BATS_TEST_TMPDIR/upstream.lock"
}

@test "-C, --quiet, --offline and -v/BV_LOG, before and after the command" {
	run bv add samtools
	assert_success
	cd "$BATS_TEST_TMPDIR"
	run bv -C proj list
	assert_success
	assert_line --regexp '^samtools +1\.16\.1'
	run bv list --directory proj
	assert_success
	assert_line --regexp '^samtools +1\.16\.1'
	run -2 bv -C "$BATS_TEST_TMPDIR/nowhere" list
	assert_output --partial "error: cannot change to directory '$BATS_TEST_TMPDIR/nowhere'"
	# offline: a sync that needs a download fails with one clear error and changes nothing
	rm -rf "$BV_CACHE_DIR"
	run bv --offline -C proj sync
	assert_failure 1
	assert_output --partial "bv is offline"
	[ ! -d "$BV_CACHE_DIR/rootfs" ] || [ -z "$(ls "$BV_CACHE_DIR/rootfs")" ]
	# -v: the registry requests, never a credential; --quiet: nothing but errors
	run bv -v -C proj sync
	assert_success
	assert_line --regexp "^bv: debug: registry: request http://127\.0\.0\.1:[0-9]+/v2/"
	run bv -C proj sync --quiet
	assert_success
	assert_output ""
	BV_LOG=debug run bv -C proj run samtools --version
	assert_success
	assert_line --regexp "^bv: debug: run: mount .*/proj at /workspace$"
	run bv -C proj run samtools --version
	refute_output --partial "bv: debug"
}

@test "re-adding a tool keeps its requirement unless a new one is given" {
	run bv add 'samtools@>=1.16,<2'
	assert_success
	run bv add samtools
	assert_success
	run python3 -c 'import tomllib; print(tomllib.load(open("bv.toml", "rb"))["tools"][0]["version"])'
	assert_output ">=1.16,<2"
	run bv add 'samtools@^1'
	assert_success
	run python3 -c 'import tomllib; print(tomllib.load(open("bv.toml", "rb"))["tools"][0]["version"])'
	assert_output "^1"
}

@test "cache prune keeps what the project pins and drops what it no longer does" {
	run bv add samtools bwa
	assert_success
	run bv cache prune --dry-run
	assert_success
	assert_output --partial "Would remove 0 blobs"
	run bv remove bwa
	assert_success
	run bv cache prune
	assert_success
	refute_output --partial "Removed 0 blobs"
	run bv cache verify
	assert_success
	run bv sync
	assert_output "Everything is up to date (1 tool)"
}

@test "lock records what a new tool's tag points to; check and sync follow" {
	run bv add samtools
	assert_success
	printf '\n[[tools]]\nid = "bwa"\n' >>bv.toml
	run bv lock --check
	assert_failure 1
	assert_line --partial "+ bwa 0.7.17"
	run bv lock
	assert_success
	run python3 -c 'import tomllib; print(tomllib.load(open("bv.lock", "rb"))["tools"]["bwa"]["image_digest"])'
	assert_output "$(registry_digest bwa:0.7.17--debian)"
	run bv lock --check
	assert_success
	run bv lock
	assert_success
	assert_output --partial "bv.lock is up to date"
	run bv sync
	assert_success
	assert_output --partial "(1 pulled, native backend)"
}

@test "update re-resolves a moved tag and pulls it; bv.toml stays" {
	run bv add samtools
	assert_success
	toml_before=$(cat bv.toml)
	sed -i 's/:1.16.1--debian"/:1.16.1--debian-oci"/' "$BV_REGISTRY"/tools/samtools/*.toml
	run bv update samtools
	assert_success
	assert_line --partial "~ samtools"
	run python3 -c 'import tomllib; print(tomllib.load(open("bv.lock", "rb"))["tools"]["samtools"]["image_digest"])'
	assert_output "$(registry_digest samtools:1.16.1--debian-oci)"
	assert_equal "$(cat bv.toml)" "$toml_before"
	run bv sync
	assert_output "Everything is up to date (1 tool)"
	run bv update nosuchtool
	assert_failure 1
	assert_output --partial "tool 'nosuchtool' is not declared"
}

@test "sync warns when a locked manifest changed in the registry; --registry picks the registry" {
	run bv add samtools
	assert_success
	warning="warning: the manifest of samtools 1.16.1 changed since bv.lock was written; 'bv lock' to take it"
	run bv sync
	assert_success
	refute_output --partial "changed since"
	# the registry republishes 1.16.1 (a comment is enough: bv.lock holds bv's hash of the file)
	other="$BATS_TEST_TMPDIR/other-registry"
	cp -r "$BV_REGISTRY" "$other"
	echo "# republished" >>"$other/tools/samtools/1.16.1.toml"
	run bv sync --registry "$other"
	assert_success
	assert_line "$warning"
	assert_output --partial "Everything is up to date (1 tool)"
	run bv sync
	refute_output --partial "changed since"
	BV_REGISTRY=$other run bv sync
	assert_line "$warning"
	# no registry to compare with: no warning, no failure
	run bv sync --registry "$BATS_TEST_TMPDIR/nowhere"
	assert_success
	refute_output --partial "changed since"
	# a digest bv cannot reproduce (upstream's) warns only when the content changed
	sed -i 's/^manifest_sha256 = .*/manifest_sha256 = "sha256:'"$(printf upstream | sha256sum | cut -d' ' -f1)"'"/' bv.lock
	run bv sync --registry "$other"
	assert_success
	refute_output --partial "changed since"
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' "$other/tools/samtools/1.16.1.toml"
	run bv sync --registry "$other"
	assert_success
	assert_line "$warning"
}
