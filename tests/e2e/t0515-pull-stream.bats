#!/usr/bin/env bats
# Layers unpacked while they download (src/lib/oci/store/stream.h): a child process per layer
# reads the partial blob as it grows and publishes the layer tree only after the blob passed
# its digest.  Served by the misbehaving registry (tests/fixtures/fake_registry.py) as
# quay.io/biocontainers/bwa:0.7.17--debian, to a new project with nothing locked.

load lib/common
load lib/fake_registry

IMAGE_RE='quay\.io/biocontainers/bwa:0\.7\.17--debian'

setup_file() {
	fake_images_build
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/bv-registry"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	mkdir -p "$BATS_TEST_TMPDIR/proj"
	cd "$BATS_TEST_TMPDIR/proj" || return 1
	bv init align >/dev/null
	fake_init "$BATS_TEST_TMPDIR/fake"
}

teardown() {
	if [[ -n ${BV_PID:-} ]]; then
		kill -9 "$BV_PID" 2>/dev/null || true
		wait "$BV_PID" 2>/dev/null || true
	fi
	fake_stop
}

# make_image DIR KIND: a one-layer image in DIR (layer, twin, config.json, manifest.json).
# KIND "tar": an uncompressed tar of 48 files of 2 KiB, and a twin of the same size that is
# a valid tar too but differs in one byte of the last file (so another digest); KIND
# "garbage": a layer of 16 KiB that is no archive at all, sent as tar+gzip.
make_image() {
	python3 - "$1" "$2" <<'EOF'
import hashlib, io, json, os, sys, tarfile

out, kind = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
def tar_of(last):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(48):
            data = (b"%02d" % i) * 1024 if i < 47 else last
            info = tarfile.TarInfo("usr/share/stream/f%02d" % i)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()
if kind == "tar":
    layer, twin = tar_of(b"a" * 2048), tar_of(b"b" * 2048)
    media = "application/vnd.oci.image.layer.v1.tar"
else:
    layer = twin = b"this is not an archive\n" * 712
    media = "application/vnd.oci.image.layer.v1.tar+gzip"
assert len(layer) == len(twin)
for name, data in (("layer", layer), ("twin", twin)):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
}).encode()
with open(os.path.join(out, "config.json"), "wb") as f:
    f.write(config)
def desc(media_type, data):
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": desc("application/vnd.oci.image.config.v1+json", config),
               "layers": [desc(media, layer)]}, f)
EOF
}

# serve_image KIND: makes and serves the image; sets IMG and LAYER (its digest).
serve_image() {
	IMG=$BATS_TEST_TMPDIR/img
	make_image "$IMG" "$1"
	LAYER=$(fake_add_blob "$IMG/layer")
	fake_add_blob "$IMG/config.json" >/dev/null
	fake_add_manifest biocontainers/bwa:0.7.17--debian "$IMG/manifest.json"
}

# No tree, finished or staged, for layer digest $1.
assert_no_tree() {
	run compgen -G "$BV_CACHE_DIR/layers/${1#sha256:}*"
	assert_failure
}

@test "a layer whose digest fails after it was unpacked leaves no tree and no blob" {
	serve_image tar
	# the twin's bytes for the layer, 1 KiB every 5 ms: the child unpacks all of it and waits
	fake_start "[{\"match\": \"${LAYER#sha256:}\", \"times\": 1, \"action\": \"slow\",
		      \"delay\": 0.005, \"replace_with\": \"$IMG/twin\"}]"
	BV_LOG=debug run bv add bwa
	assert_failure 1
	assert_line --regexp "^error: .*$IMAGE_RE.*(digest mismatch|failed verification)"
	# the child had read the whole layer and was waiting for the verdict
	assert_line --regexp "^bv: debug: layer $LAYER: the tree unpacked while it downloaded is discarded: the (blob failed verification|download was abandoned)$"
	[[ ! -e $BV_CACHE_DIR/store/blobs/sha256/${LAYER#sha256:} ]]
	assert_no_tree "$LAYER"
	run bv cache verify
	assert_success
	# the registry heals: the right bytes, unpacked while they arrive, and the right tree
	fake_start
	BV_LOG=debug run bv add bwa
	assert_success
	assert_line "bv: debug: a layer was unpacked while it downloaded"
	run cat "$BV_CACHE_DIR/layers/${LAYER#sha256:}/usr/share/stream/f47"
	assert_output "$(printf 'a%.0s' {1..2048})"
	run bv cache verify
	assert_success
}

@test "kill -9 of bv during a streamed unpack leaves the cache consistent; the next pull works" {
	fake_add_image bwa 0.7.17--debian
	local manifest layer
	manifest=$(fake_layout_digest bwa)
	layer=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["layers"][-1]["digest"])' \
		"$(fake_blob_path "$manifest")")
	# bwa's own layer, 1 KiB every 3 ms: about a second to kill bv in
	fake_start "[{\"match\": \"${layer#sha256:}\", \"times\": 1, \"action\": \"slow\", \"delay\": 0.003}]"
	"$BV" add bwa >"$BATS_TEST_TMPDIR/add.log" 2>&1 &
	BV_PID=$!
	local i staging=""
	for ((i = 0; i < 600; i++)); do
		staging=$(compgen -G "$BV_CACHE_DIR/layers/${layer#sha256:}.tmp-*") && break
		sleep 0.05
	done
	[[ -n $staging ]] || fail "no staging tree appeared: $(cat "$BATS_TEST_TMPDIR/add.log")"
	kill -9 "$BV_PID"
	wait "$BV_PID" || true
	BV_PID=
	# the child sees its parent gone and removes its staging tree
	for ((i = 0; i < 200; i++)); do
		[[ -e $staging ]] || break
		sleep 0.05
	done
	[[ ! -e $staging ]] || fail "$staging is still there"
	[[ ! -e $BV_CACHE_DIR/layers/${layer#sha256:} ]]
	run bv cache verify
	assert_success
	fake_start
	run bv add bwa
	assert_success
	run compgen -G "$BV_CACHE_DIR/rootfs/${manifest#sha256:}-*/usr/bin/bwa"
	assert_success
	run bv cache verify
	assert_success
}

@test "a layer that is not an archive fails the add with one error" {
	serve_image garbage
	fake_start
	run bv add bwa
	assert_failure 1
	assert_equal "$(grep -c '^error: ' <<<"$output")" 1
	assert_line --index 0 --regexp "^Pulled $IMAGE_RE "
	assert_line --index 1 --regexp "^error: .*$IMAGE_RE.*: .*layer sha256:[0-9a-f]+.*$"
	assert_equal "${#lines[@]}" 2
	assert_no_tree "$LAYER"
	run bv cache verify
	assert_success
}
