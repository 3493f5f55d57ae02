#!/usr/bin/env bats
# Multi-platform images and --platform: an OCI index shaped like BuildKit's (an attestation
# manifest first, then linux/arm64/v8, then linux/amd64), written by hand with python3 and
# pushed with skopeo to the loopback registry.  The amd64 entry is the fixture samtools image
# (tests/fixtures/images.sh); the arm64 one is a single small layer that never runs.

load lib/common

TAG=1.16.1--debian-plat

setup_file() {
	fixture_images_up
	local src layout
	src=$("$BV_SOURCE_DIR/tests/fixtures/images.sh" path)/oci
	layout="$BATS_FILE_TMPDIR/plat"
	python3 - "$src" "$layout" <<'EOF'
import gzip, hashlib, io, json, os, shutil, sys, tarfile

src, layout = sys.argv[1:3]
REF = "org.opencontainers.image.ref.name"
os.makedirs(os.path.join(layout, "blobs", "sha256"))
with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')

def blob(root, digest):
    return os.path.join(root, "blobs", *digest.split(":", 1))

def put(data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob(layout, digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}

def dump(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

def tar_gz(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            t.addfile(info, io.BytesIO(data))
    diff = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    return gzip.compress(raw.getvalue(), mtime=0), diff

def copy(desc):
    shutil.copyfile(blob(src, desc["digest"]), blob(layout, desc["digest"]))

# linux/amd64: the fixture samtools image, blob for blob
with open(os.path.join(src, "index.json")) as f:
    amd64 = next(d for d in json.load(f)["manifests"] if d.get("annotations", {}).get(REF) == "samtools")
with open(blob(src, amd64["digest"]), "rb") as f:
    manifest = json.load(f)
for d in [amd64, manifest["config"]] + manifest["layers"]:
    copy(d)
amd64 = {k: amd64[k] for k in ("mediaType", "digest", "size")}
amd64["platform"] = {"architecture": "amd64", "os": "linux"}

# linux/arm64/v8: one small layer and a config that says so
layer, diff = tar_gz({"etc/bv-platform": b"arm64\n"})
config = {"architecture": "arm64", "variant": "v8", "os": "linux",
          "config": {"Entrypoint": ["/bin/true"]},
          "rootfs": {"type": "layers", "diff_ids": [diff]}}
arm64 = put(dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": put(dump(config), "application/vnd.oci.image.config.v1+json"),
                  "layers": [put(layer, "application/vnd.oci.image.layer.v1.tar+gzip")]}),
            "application/vnd.oci.image.manifest.v1+json")
arm64["platform"] = {"architecture": "arm64", "os": "linux", "variant": "v8"}

# BuildKit's provenance attestation of the amd64 image
statement = dump({"_type": "https://in-toto.io/Statement/v0.1",
                  "predicateType": "https://slsa.dev/provenance/v0.2", "predicate": {}})
att_config = {"architecture": "unknown", "os": "unknown", "config": {},
              "rootfs": {"type": "layers",
                         "diff_ids": ["sha256:" + hashlib.sha256(statement).hexdigest()]}}
attestation = put(dump({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": put(dump(att_config), "application/vnd.oci.image.config.v1+json"),
    "layers": [dict(put(statement, "application/vnd.in-toto+json"),
                    annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})]}),
    "application/vnd.oci.image.manifest.v1+json")
attestation["platform"] = {"architecture": "unknown", "os": "unknown"}
attestation["annotations"] = {"vnd.docker.reference.digest": amd64["digest"],
                              "vnd.docker.reference.type": "attestation-manifest"}

index = put(dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": [attestation, arm64, amd64]}),
            "application/vnd.oci.image.index.v1+json")
index["annotations"] = {REF: "plat"}
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [index]}, f)
for name, d in (("index", index), ("amd64", amd64), ("arm64", arm64), ("attestation", attestation)):
    with open(os.path.join(layout, name + ".digest"), "w") as f:
        f.write(d["digest"] + "\n")
EOF
	skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$layout:plat" \
		"docker://$ADDR/biocontainers/samtools:$TAG"
	PLAT="$layout"
	export PLAT
}

teardown_file() {
	fixture_images_down
}

setup() {
	[[ $(uname -m) == x86_64 ]] || skip "the fixture index assumes a linux/amd64 host"
	fixture_project_setup align
	sed -i "s/:1.16.1--debian\"/:$TAG\"/" "$BV_REGISTRY"/tools/samtools/*.toml
	INDEX=$(cat "$PLAT/index.digest")
	AMD64=$(cat "$PLAT/amd64.digest")
	ARM64=$(cat "$PLAT/arm64.digest")
}

pinned() {
	python3 -c 'import tomllib; print(tomllib.load(open("bv.lock", "rb"))["tools"]["samtools"]["image_digest"])'
}

@test "the registry serves the hand-made index as pushed" {
	run skopeo inspect --raw --tls-verify=false "docker://$ADDR/biocontainers/samtools:$TAG"
	assert_success
	[ "sha256:$(printf '%s' "$output" | sha256sum | cut -d' ' -f1)" = "$INDEX" ]
	assert_output --partial attestation-manifest
}

@test "add without --platform pins the index and unpacks this machine's image" {
	run bv add samtools
	assert_success
	[ "$(pinned)" = "$INDEX" ]
	rootfs=$(ls -d "$BV_CACHE_DIR"/rootfs/"${INDEX#sha256:}"-linux-amd64/)
	[ -x "$rootfs/usr/bin/samtools" ]
	[ ! -e "$rootfs/etc/bv-platform" ]
	# the attestation was never fetched
	[ ! -e "$BV_CACHE_DIR/store/blobs/sha256/$(cut -d: -f2 "$PLAT/attestation.digest")" ]
	run bv run samtools --version
	assert_success
	assert_line --partial "samtools 1.16.1"
}

@test "add --platform linux/arm64 pins the arm64 manifest and unpacks nothing" {
	run bv add --platform linux/arm64 samtools
	assert_success
	assert_output --partial "for linux/arm64/v8"
	[ "$(pinned)" = "$ARM64" ]
	[ -e "$BV_CACHE_DIR/store/blobs/sha256/${ARM64#sha256:}" ]
	run ls "$BV_CACHE_DIR/rootfs"
	refute_output --partial "${ARM64#sha256:}"
	# the host's own platform, spelt out, pins the amd64 manifest
	run bv add --platform linux/amd64 samtools
	assert_success
	[ "$(pinned)" = "$AMD64" ]
	[ -x "$BV_CACHE_DIR/rootfs/${AMD64#sha256:}-linux-amd64/usr/bin/samtools" ]
}

@test "lock --platform re-pins every tool for that platform; variants are normalised" {
	bv add samtools 2>/dev/null
	[ "$(pinned)" = "$INDEX" ]
	run bv lock --platform linux/arm64/v8
	assert_success
	[ "$(pinned)" = "$ARM64" ]
	run bv lock --platform linux/aarch64
	assert_success
	assert_output --partial "up to date"
	[ "$(pinned)" = "$ARM64" ]
	run bv lock --platform linux/amd64
	assert_success
	[ "$(pinned)" = "$AMD64" ]
	run bv lock --platform linux/arm/v7
	assert_failure
	assert_output --partial "has no image for platform 'linux/arm/v7' (it has linux/arm64/v8, linux/amd64)"
	refute_output --partial unknown
	[ "$(pinned)" = "$AMD64" ]
}

@test "sync --platform pulls another platform into the store without unpacking it" {
	bv add samtools 2>/dev/null
	rm -rf "$BV_CACHE_DIR"
	run bv sync --platform linux/arm64
	assert_success
	assert_output --partial "Pulled 1 tool for linux/arm64/v8 into the store"
	[ -e "$BV_CACHE_DIR/store/blobs/sha256/${ARM64#sha256:}" ]
	[ ! -e "$BV_CACHE_DIR/store/blobs/sha256/${AMD64#sha256:}" ]
	[ -z "$(ls -A "$BV_CACHE_DIR/rootfs" 2>/dev/null)" ]
	run bv cache verify
	assert_success
	# without --platform the same lock gives this machine its own image
	run bv sync
	assert_success
	assert_output --partial "Synced 1 tool (1 pulled, native backend)"
	[ -x "$BV_CACHE_DIR/rootfs/${INDEX#sha256:}-linux-amd64/usr/bin/samtools" ]
	run bv sync --platform linux/amd64
	assert_success
	assert_output "Everything is up to date (1 tool)"
	run bv sync --platform linux/arm64 --backend docker
	assert_failure
	assert_output --partial "--platform needs the native backend"
}

@test "a native run of an image for another platform refuses, naming both" {
	bv add --platform linux/arm64 samtools 2>/dev/null
	[ "$(pinned)" = "$ARM64" ]
	# sync for this machine unpacks what the lock pins, whatever its platform
	run bv sync
	assert_success
	run bv run samtools --version
	[ "$status" -eq 125 ]
	assert_output "error: the image of samtools is for linux/arm64/v8, but this machine is linux/amd64"
}

@test "invalid --platform values: one clear error, non-zero, nothing written" {
	bv add samtools 2>/dev/null
	before=$(cat bv.toml bv.lock | sha256sum)
	for cmd in add lock sync; do
		for value in linux linux/ a/b/c/d "" /amd64 linux//v8; do
			args=(--platform "$value")
			[[ $cmd != add ]] || args+=(bwa)
			run bv "$cmd" "${args[@]}"
			[ "$status" -eq 2 ] || fail "bv $cmd --platform '$value' exited $status"
			[ "${#lines[@]}" -eq 1 ] || fail "bv $cmd --platform '$value': $output"
			assert_output "error: invalid platform '$value': expected os/architecture[/variant], such as linux/amd64 or linux/arm64"
		done
	done
	[ "$(cat bv.toml bv.lock | sha256sum)" = "$before" ]
	run bv lock --check --platform linux/arm64
	assert_failure
	assert_output --partial "cannot be used with --check"
}
