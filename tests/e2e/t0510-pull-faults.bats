#!/usr/bin/env bats
# bv add against a registry that misbehaves on purpose (tests/fixtures/fake_registry.py),
# serving the fixture bwa image of tests/fixtures/images.sh as
# quay.io/biocontainers/bwa:0.7.17--debian (BV_MIRRORS sends quay.io to it).
#
# Every failure must leave the project as it was (bv.toml and bv.lock byte for byte: the
# project starts with samtools locked), the store consistent (bv cache verify) and the error
# on one line that names the image.  Where a retry makes sense, the same command then
# succeeds and resumes what the failed run left.
#
# Slow on purpose: the 500 and reset cases wait for the client's default backoff (3 retries
# after 0.5, 1 and 2 s, +-25 %), about 3.5 s each; bv has no setting to shorten it.

load lib/common
load lib/fake_registry

IMAGE=quay.io/biocontainers/bwa:0.7.17--debian
IMAGE_RE='quay\.io/biocontainers/bwa:0\.7\.17--debian'

setup_file() {
	fake_images_build
	BASE_LAYER=$(sed -n 's/^BASE_LAYER=//p' "$FAKE_LAYOUT/../images.env")
	[[ $BASE_LAYER == sha256:* ]] || {
		echo "no BASE_LAYER in images.env" >&2
		return 1
	}
	export BASE_LAYER
	# The starting point of every test: a project with samtools added and locked, made once
	# against a fault-free fake (its cache is thrown away: each test starts with none).
	TEMPLATE=$BATS_FILE_TMPDIR/template
	export TEMPLATE
	# what common_setup does for a test (it needs BATS_TEST_TMPDIR, unset here)
	export HOME=$BATS_FILE_TMPDIR/home TERM=dumb
	export XDG_CACHE_HOME=$HOME/.cache XDG_CONFIG_HOME=$HOME/.config
	mkdir -p "$HOME"
	unset BV_BACKEND BV_JOBS NO_COLOR
	export BV_REGISTRY=$BATS_FILE_TMPDIR/bv-registry BV_CACHE_DIR=$BATS_FILE_TMPDIR/cache
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	fake_init "$BATS_FILE_TMPDIR/fake"
	fake_add_image samtools 1.16.1--debian
	fake_start
	mkdir -p "$TEMPLATE"
	local rc=0
	(cd "$TEMPLATE" && bv init align && bv add samtools) >"$BATS_FILE_TMPDIR/template.log" 2>&1 ||
		rc=$?
	fake_stop
	rm -rf "$BV_CACHE_DIR"
	if ((rc)) || [[ ! -s $TEMPLATE/bv.lock ]]; then
		cat "$BATS_FILE_TMPDIR/template.log" >&2
		return 1
	fi
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/bv-registry"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	mkdir -p "$BATS_TEST_TMPDIR/proj"
	cp "$TEMPLATE/bv.toml" "$TEMPLATE/bv.lock" "$BATS_TEST_TMPDIR/proj/"
	cd "$BATS_TEST_TMPDIR/proj" || return 1
	fake_init "$BATS_TEST_TMPDIR/fake"
}

teardown() {
	fake_stop
}

# The fixture bwa image's manifest and blobs, and their digests.
serve_bwa() {
	fake_add_image bwa 0.7.17--debian
	BWA_MANIFEST=$(fake_layout_digest bwa)
	read -r BWA_CONFIG BWA_LAYER < <(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m["config"]["digest"], m["layers"][-1]["digest"])' "$(fake_blob_path "$BWA_MANIFEST")")
}

# assert_pull_error REGEX: bv failed with exactly one line, an error naming the image and
# matching REGEX after it.
assert_pull_error() {
	assert_failure 1
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^error: .*$IMAGE_RE.*$1"
}

# The project files are those of the template, byte for byte.
assert_project_unchanged() {
	cmp "$TEMPLATE/bv.toml" bv.toml
	cmp "$TEMPLATE/bv.lock" bv.lock
}

# bv cache verify passes and the store holds no image named bwa.
assert_store_consistent() {
	run bv cache verify
	assert_success
	assert_output --partial "The store is intact"
	run bv cache list
	assert_success
	refute_output --partial "$IMAGE"
}

# assert_not_published DIGEST...: no such blob in the store.
assert_not_published() {
	local d
	for d in "$@"; do
		[[ ! -e $BV_CACHE_DIR/store/blobs/sha256/${d#sha256:} ]] ||
			fail "blob $d was published"
	done
}

# The add worked: bwa is declared and locked at the fake's digest, samtools' entry is
# untouched, the store is intact and the unpacked tree has the binary.
assert_bwa_added() {
	grep -q '^id = "bwa"$' bv.toml
	run python3 -c 'import tomllib, sys
new = tomllib.load(open("bv.lock", "rb"))["tools"]
old = tomllib.load(open(sys.argv[1], "rb"))["tools"]
print(new["bwa"]["image_digest"], new["samtools"] == old["samtools"])' "$TEMPLATE/bv.lock"
	assert_output "$BWA_MANIFEST True"
	run bv cache verify
	assert_success
	run bv cache list
	assert_output --partial "$IMAGE"
	run compgen -G "$BV_CACHE_DIR/rootfs/${BWA_MANIFEST#sha256:}-*/usr/bin/bwa"
	assert_success
	[[ -x $output ]]
}

@test "blobs whose bytes do not match their digest are refused" {
	serve_bwa
	fake_start '[{"match": "/blobs/", "times": -1, "action": "corrupt"}]'
	run bv add bwa
	assert_pull_error "digest mismatch|failed verification"
	assert_project_unchanged
	assert_not_published "$BWA_CONFIG" "$BWA_LAYER" "$BASE_LAYER"
	assert_store_consistent
	# the registry heals: the same command works
	fake_start
	run bv add bwa
	assert_success
	assert_bwa_added
}

@test "a truncated layer is resumed with a Range request and the add succeeds" {
	serve_bwa
	fake_start "[{\"match\": \"/blobs/$BASE_LAYER\", \"times\": 1, \"action\": \"truncate\"}]"
	run bv add bwa
	assert_success
	assert_output --partial "Added bwa 0.7.17"
	# first the whole blob, cut in half; then the rest of it only
	run grep -c "^GET /v2/biocontainers/bwa/blobs/$BASE_LAYER range=none " "$FAKE_LOG"
	assert_output 1
	run grep -E "^GET /v2/biocontainers/bwa/blobs/$BASE_LAYER range=bytes=[1-9][0-9]*- " "$FAKE_LOG"
	assert_success
	assert_bwa_added
}

@test "a registry answering 500 to every blob request fails after the retries" {
	serve_bwa
	fake_start '[{"match": "/blobs/", "times": -1, "action": "status", "status": 500}]'
	run bv add bwa
	assert_pull_error "500.* after [0-9]+ attempts"
	local error=$output
	assert_project_unchanged
	assert_not_published "$BWA_CONFIG" "$BWA_LAYER" "$BASE_LAYER"
	assert_store_consistent
	# the blob the error names was asked for as many times as the error says (the other
	# blobs may be an attempt behind: the pull stops at the first blob out of retries)
	[[ $error =~ (config|layer)\ (sha256:[0-9a-f]{12}).*\ after\ ([0-9]+)\ attempts ]] ||
		fail "no blob and attempt count in: $error"
	local blob=${BASH_REMATCH[2]} attempts=${BASH_REMATCH[3]}
	assert_equal "$attempts" 4
	run grep -c "^GET /v2/biocontainers/bwa/blobs/$blob" "$FAKE_LOG"
	assert_output "$attempts"
}

@test "dropped connections fail the add; the next run resumes the partial layer" {
	serve_bwa
	# Every connection is reset before a byte of body, except the base layer's first, which
	# ends cleanly after 3000000 bytes (a FIN, not a reset: a reset makes the kernel drop what
	# the client has not read yet, so how much of it arrives would be a matter of luck).
	fake_start "[{\"match\": \"/blobs/$BASE_LAYER\", \"times\": 1, \"action\": \"truncate\",
		      \"after\": 3000000},
		     {\"match\": \"/blobs/\", \"times\": -1, \"action\": \"reset\", \"after\": 0}]"
	run bv add bwa
	assert_pull_error "connection reset.* after [0-9]+ attempts"
	assert_project_unchanged
	assert_not_published "$BWA_CONFIG" "$BWA_LAYER" "$BASE_LAYER"
	assert_store_consistent
	# the same command against a healthy registry: the base layer resumes where it stopped
	: >"$FAKE_LOG"
	fake_start
	run bv add bwa
	assert_success
	run grep "^GET /v2/biocontainers/bwa/blobs/$BASE_LAYER " "$FAKE_LOG"
	assert_output "GET /v2/biocontainers/bwa/blobs/$BASE_LAYER range=bytes=3000000- auth=none"
	assert_bwa_added
}

@test "a resumed partial whose digest fails is fetched once more from byte 0" {
	serve_bwa
	# The first run keeps 3000000 bytes of the base layer whose first byte is wrong (a bad
	# server or a bad disk); resuming them cannot give the right digest.
	fake_start "[{\"match\": \"/blobs/$BASE_LAYER\", \"times\": 1, \"action\": \"truncate\",
		      \"after\": 3000000, \"corrupt\": true},
		     {\"match\": \"/blobs/\", \"times\": -1, \"action\": \"reset\", \"after\": 0}]"
	run bv add bwa
	assert_failure
	assert_project_unchanged
	assert_store_consistent
	: >"$FAKE_LOG"
	fake_start
	run bv add bwa
	assert_success
	run grep "^GET /v2/biocontainers/bwa/blobs/$BASE_LAYER " "$FAKE_LOG"
	assert_line --index 0 "GET /v2/biocontainers/bwa/blobs/$BASE_LAYER range=bytes=3000000- auth=none"
	assert_line --index 1 "GET /v2/biocontainers/bwa/blobs/$BASE_LAYER range=none auth=none"
	assert_bwa_added
	run bv cache verify
	assert_success
}

@test "a slow pull prints a line every few seconds without a terminal; the last says what was downloaded" {
	serve_bwa
	# bwa's own layer (a few hundred KiB) sent 1 KiB every 3 ms: the pull lasts about a second
	fake_start "[{\"match\": \"${BWA_LAYER#sha256:}\", \"times\": 1, \"action\": \"slow\", \"delay\": 0.003}]"
	BV_PROGRESS_INTERVAL_MS=100 run bv add bwa
	assert_success
	assert_line --regexp "^Pulling $IMAGE_RE: .* / .*, layers [0-9]+/[0-9]+$"
	assert_line --regexp "^Pulled $IMAGE_RE \([0-9.]+ [KM]iB, [0-9]+ layers?\)$"
	refute_output --partial $'\033'
	# the same image for a second project: nothing downloaded, and it says so
	mkdir ../proj2 && cd ../proj2 && bv init other >/dev/null 2>&1
	run bv add bwa
	assert_success
	assert_line --regexp "^$IMAGE_RE: already in the store \([0-9.]+ [KM]iB, [0-9]+ layers?\)$"
	refute_output --partial "Pulled"
}

@test "a manifest over 4 MiB is refused" {
	serve_bwa
	# the real manifest, grown past the limit by an annotation: valid JSON, right digest
	python3 - "$(fake_blob_path "$BWA_MANIFEST")" "$BATS_TEST_TMPDIR/big.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["annotations"] = {"io.bv.test.padding": "x" * (4 << 20)}
json.dump(m, open(sys.argv[2], "w"))
EOF
	: >"$FAKE_DIR/manifests.tsv"
	fake_add_manifest biocontainers/bwa:0.7.17--debian "$BATS_TEST_TMPDIR/big.json"
	fake_start
	run bv add bwa
	assert_pull_error "larger than 4 MiB"
	assert_project_unchanged
	assert_store_consistent
	run grep -c /blobs/ "$FAKE_LOG"
	assert_output 0
}

@test "an image the registry does not have is reported by name" {
	serve_bwa
	# the registry has bwa, under another tag only
	: >"$FAKE_DIR/manifests.tsv"
	fake_add_image bwa 0.7.17--elsewhere
	fake_start
	run bv add bwa
	assert_pull_error "not found"
	assert_project_unchanged
	assert_store_consistent
}

# make_evil_image DIR: a one-layer image whose gzip tar holds "usr/bin/ok" and then
# "../evil", with a config and manifest whose digests, sizes and diff_ids are all right.
# Writes DIR/layer.tar.gz, DIR/config.json and DIR/manifest.json.
make_evil_image() {
	python3 - "$1" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for name, data in (("usr/bin/ok", b"#!/bin/sh\n"), ("../evil", b"escaped\n")):
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
tar_bytes = raw.getvalue()
layer = gzip.compress(tar_bytes, mtime=0)
with open(os.path.join(out, "layer.tar.gz"), "wb") as f:
    f.write(layer)
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin:/bin"], "Entrypoint": ["/usr/bin/ok"]},
    "rootfs": {"type": "layers",
               "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]},
}).encode()
with open(os.path.join(out, "config.json"), "wb") as f:
    f.write(config)
def desc(media_type, data):
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": desc("application/vnd.oci.image.config.v1+json", config),
    "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
}
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f)
EOF
}

@test "a layer entry that escapes the image root is refused" {
	local evil=$BATS_TEST_TMPDIR/evil-image
	make_evil_image "$evil"
	# the layer itself is well-formed: python's tarfile lists both entries
	run python3 -c 'import sys, tarfile; print(*tarfile.open(sys.argv[1]).getnames())' \
		"$evil/layer.tar.gz"
	assert_output "usr/bin/ok ../evil"
	fake_add_blob "$evil/layer.tar.gz" >/dev/null
	fake_add_blob "$evil/config.json" >/dev/null
	fake_add_manifest biocontainers/bwa:0.7.17--debian "$evil/manifest.json"
	fake_start
	run bv add bwa
	# the pull itself succeeded and says so; the unpack fails with one error line, the last
	assert_failure 1
	assert_equal "$(grep -c '^error: ' <<<"$output")" 1
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp "^Pulled $IMAGE_RE "
	assert_line --index 1 --regexp "^error: .*$IMAGE_RE.*: layer sha256:[0-9a-f]+: entry '\.\./evil' escapes the image root$"
	assert_project_unchanged
	run find "$BATS_TEST_TMPDIR" -name evil
	assert_output ""
	run find "$BATS_TEST_TMPDIR" -name evil-image -prune -o -name 'evil*' -print
	assert_output ""
	# and no half-unpacked tree was left behind
	run find "$BV_CACHE_DIR" -path '*/usr/bin/ok'
	assert_output ""
	run bv cache verify
	assert_success
}
