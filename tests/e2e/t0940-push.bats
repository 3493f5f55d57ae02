#!/usr/bin/env bats
# bv push against Debian's docker-registry on loopback (plain, htpasswd basic auth, bearer
# tokens; tests/fixtures/registry.sh), with the fixture images' OCI layout
# (tests/fixtures/images.sh) as the source.  What bv pushes is read back by skopeo; which
# requests bv made is read from the registry's access log ("PUT /v2/... HTTP/1.1" 201).

load lib/common
load lib/fake_registry

setup_file() {
	# registries of this file only (their logs are counted); the built images are shared
	export BV_FIXTURE_CACHE="${BV_FIXTURE_CACHE:-${BV_FIXTURE_DIR:-$BV_BUILD_DIR/fixtures}/cache}"
	export BV_FIXTURE_DIR="$BATS_FILE_TMPDIR/fixtures"
	local reg="$BV_SOURCE_DIR/tests/fixtures/registry.sh"
	"$reg" start >/dev/null
	"$reg" start --auth basic >/dev/null
	"$reg" start --auth token >/dev/null
	"$reg" start --auth token --tls >/dev/null
	ADDR=$("$reg" addr) BASIC=$("$reg" addr --auth basic) TOKEN=$("$reg" addr --auth token)
	TLS=$("$reg" addr --auth token --tls) TLS_DIR=$("$reg" dir --auth token --tls)/tls/certs.d
	LOG="$BV_FIXTURE_DIR/registry/plain/registry.log"
	OCI=$("$BV_SOURCE_DIR/tests/fixtures/images.sh" build 2>/dev/null)/oci
	export ADDR BASIC TOKEN TLS TLS_DIR LOG OCI
}

teardown_file() {
	"$BV_SOURCE_DIR/tests/fixtures/registry.sh" stop --all >/dev/null 2>&1 || true
}

teardown() {
	fake_stop
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export DOCKER_CONFIG="$BATS_TEST_TMPDIR/docker"
	mkdir -p "$DOCKER_CONFIG"
}

# layout_digest DIR NAME: the manifest digest index.json of layout DIR gives NAME.
layout_digest() {
	python3 -c 'import json, sys
for m in json.load(open(sys.argv[1] + "/index.json"))["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"])' "$1" "$2"
}

# requests PATTERN: how many requests of the plain registry's access log match PATTERN
# (an extended regexp over '"METHOD URI').
requests() {
	grep -cE "^127\.0\.0\.1 .*\"$1" "$LOG" || true
}

# raw_digest REF [SKOPEO OPTIONS]: sha256 of the manifest bytes the registry serves.
raw_digest() {
	local ref=$1
	shift
	echo "sha256:$(skopeo inspect --raw --tls-verify=false "$@" "docker://$ref" | sha256sum | cut -d' ' -f1)"
}

# login REGISTRY USER:PASSWORD: writes DOCKER_CONFIG's config.json as docker login does.
login() {
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$1" "$(printf %s "$2" | base64)" \
		>"$DOCKER_CONFIG/config.json"
}

@test "an OCI layout pushed by bv reads back with skopeo under the same digests" {
	want=$(layout_digest "$OCI" samtools)
	run --separate-stderr bv push "oci:$OCI:samtools" "$ADDR/t1/samtools:1.16"
	assert_success
	assert_output "Pushed $ADDR/t1/samtools:1.16@$want"
	[[ $stderr == "3 blobs uploaded ("*" bytes), 0 already there, 0 mounted; 1 manifest" ]]
	assert_equal "$(raw_digest "$ADDR/t1/samtools:1.16")" "$want"
	# skopeo copies it back (verifying every blob) into a layout with the same manifest
	run skopeo copy -q --src-tls-verify=false "docker://$ADDR/t1/samtools:1.16" \
		"oci:$BATS_TEST_TMPDIR/back:s"
	assert_success
	assert_equal "$(layout_digest "$BATS_TEST_TMPDIR/back" s)" "$want"
	# monolithic uploads: one POST and one PUT ?digest= per blob, no PATCH
	assert_equal "$(requests 'POST /v2/t1/samtools/blobs/uploads/ ')" 3
	assert_equal "$(requests 'PUT /v2/t1/samtools/blobs/uploads/[^ ]*digest=sha256')" 3
	assert_equal "$(requests 'PATCH /v2/t1/samtools/')" 0

	# a second push finds every blob by HEAD and sends only the manifest
	run --separate-stderr bv push "oci:$OCI:samtools" "$ADDR/t1/samtools:1.16"
	assert_success
	assert_output "Pushed $ADDR/t1/samtools:1.16@$want"
	assert_equal "$stderr" "0 blobs uploaded (0 bytes), 3 already there, 0 mounted; 1 manifest"
	assert_equal "$(requests 'POST /v2/t1/samtools/blobs/uploads/ ')" 3
	assert_equal "$(requests 'PUT /v2/t1/samtools/blobs/')" 3
	assert_equal "$(requests 'HEAD /v2/t1/samtools/blobs/sha256:[0-9a-f]{64} HTTP/1.1" 200')" 3
}

@test "a multi-platform index keeps its digest: pushed, copied within a registry by mounts, and to another registry" {
	want=$(layout_digest "$OCI" samtools-multiarch)
	run --separate-stderr bv push "oci:$OCI:samtools-multiarch" "$ADDR/m1/samtools:multi"
	assert_success
	assert_output "Pushed $ADDR/m1/samtools:multi@$want"
	# two platforms: their manifests first, then the index
	[[ $stderr == "4 blobs uploaded ("*"), 0 already there, 0 mounted; 3 manifests" ]]
	assert_equal "$(raw_digest "$ADDR/m1/samtools:multi")" "$want"
	assert_equal "$(requests 'PUT /v2/m1/samtools/manifests/sha256:')" 2

	# within one registry every blob is mounted from the source repository: no upload
	run --separate-stderr bv push "docker://$ADDR/m1/samtools:multi" "$ADDR/m2/samtools:copy"
	assert_success
	assert_output "Pushed $ADDR/m2/samtools:copy@$want"
	assert_equal "$stderr" "0 blobs uploaded (0 bytes), 0 already there, 4 mounted; 3 manifests"
	assert_equal "$(requests 'POST /v2/m2/samtools/blobs/uploads/\?mount=sha256:[0-9a-f]{64}&from=m1/samtools HTTP/1.1" 201')" 4
	assert_equal "$(requests 'PUT /v2/m2/samtools/blobs/')" 0
	assert_equal "$(raw_digest "$ADDR/m2/samtools:copy")" "$want"

	# to another registry (basic auth) the blobs pass through bv's store, by digest
	login "$BASIC" testuser:testpass
	run --separate-stderr bv push "$ADDR/m1/samtools@$want" "$BASIC/m3/samtools:copy"
	assert_success
	assert_output "Pushed $BASIC/m3/samtools:copy@$want"
	assert_equal "$(raw_digest "$BASIC/m3/samtools:copy" --creds testuser:testpass)" "$want"
	run skopeo copy -q --all --preserve-digests --src-tls-verify=false --src-creds testuser:testpass \
		"docker://$BASIC/m3/samtools:copy" "oci:$BATS_TEST_TMPDIR/back:m"
	assert_success
	assert_equal "$(layout_digest "$BATS_TEST_TMPDIR/back" m)" "$want"
}

@test "blobs larger than BV_PUSH_CHUNK_SIZE go up in PATCH chunks" {
	want=$(layout_digest "$OCI" bwa)
	BV_PUSH_CHUNK_SIZE=1048576 run --separate-stderr bv push -j 1 "oci:$OCI:bwa" "$ADDR/ch/bwa:1"
	assert_success
	assert_output "Pushed $ADDR/ch/bwa:1@$want"
	# the layers are several MiB each: more PATCHes than blobs, each with Location followed
	patches=$(requests 'PATCH /v2/ch/bwa/blobs/uploads/[^ ]* HTTP/1.1" 202')
	[ "$patches" -gt 5 ]
	run skopeo copy -q --src-tls-verify=false "docker://$ADDR/ch/bwa:1" "oci:$BATS_TEST_TMPDIR/back:b"
	assert_success
	assert_equal "$(layout_digest "$BATS_TEST_TMPDIR/back" b)" "$want"
	BV_PUSH_CHUNK_SIZE=lots run bv push "oci:$OCI:bwa" "$ADDR/ch/bwa:1"
	assert_failure 1
	assert_output "error: invalid BV_PUSH_CHUNK_SIZE 'lots': expected a number of bytes"
}

@test "a 300 MiB layer goes up in 64 MiB PATCH chunks and reads back with the same digest" {
	# an image of one uncompressed 300 MiB layer of random bytes (it cannot shrink)
	local d=$BATS_TEST_TMPDIR/big l=$BATS_TEST_TMPDIR/big-oci
	mkdir -p "$d" "$l/blobs/sha256"
	head -c 300M /dev/urandom >"$d/data"
	tar -C "$d" -cf "$l/layer.tar" data
	rm "$d/data"
	python3 - "$l" <<-'EOF'
		import hashlib, json, os, sys
		l = sys.argv[1]
		def blob(data=None, path=None):
		    h = hashlib.sha256()
		    if path:
		        with open(path, "rb") as f:
		            for chunk in iter(lambda: f.read(1 << 20), b""):
		                h.update(chunk)
		        size = os.path.getsize(path)
		        os.rename(path, "%s/blobs/sha256/%s" % (l, h.hexdigest()))
		    else:
		        h.update(data)
		        size = len(data)
		        open("%s/blobs/sha256/%s" % (l, h.hexdigest()), "wb").write(data)
		    return {"digest": "sha256:" + h.hexdigest(), "size": size}
		layer = blob(path=l + "/layer.tar")
		layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
		config = blob(json.dumps({"architecture": "amd64", "os": "linux",
		    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
		config["mediaType"] = "application/vnd.oci.image.config.v1+json"
		manifest = blob(json.dumps({"schemaVersion": 2,
		    "mediaType": "application/vnd.oci.image.manifest.v1+json",
		    "config": config, "layers": [layer]}).encode())
		manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
		manifest["annotations"] = {"org.opencontainers.image.ref.name": "big"}
		json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(l + "/index.json", "w"))
		open(l + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
	EOF
	want=$(layout_digest "$l" big)
	run --separate-stderr bv push "oci:$l:big" "$ADDR/big/blob:1"
	assert_success
	assert_output "Pushed $ADDR/big/blob:1@$want"
	# 300 MiB in 64 MiB chunks: four full PATCHes and a fifth with the rest, then the PUT
	assert_equal "$(requests 'PATCH /v2/big/blob/blobs/uploads/[^ ]* HTTP/1.1" 202')" 5
	assert_equal "$(raw_digest "$ADDR/big/blob:1")" "$want"
	# the registry has the layer whole (it checked the digest of the PUT itself)
	layer=$(skopeo inspect --raw --tls-verify=false "docker://$ADDR/big/blob:1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
	size=$(curl -sfI "http://$ADDR/v2/big/blob/blobs/$layer" | tr -d '\r' |
		sed -n 's/^[Cc]ontent-[Ll]ength: //p')
	assert_equal "$size" "$(stat -c %s "$l/blobs/sha256/${layer#sha256:}")"
	[ "$size" -gt 314572800 ]
}

# auth_cases REGISTRY VARIANT: no credentials and a wrong password fail with one error line
# that names the registry and shows no secret; the right password pushes.
auth_cases() {
	local reg=$1 want
	want=$(layout_digest "$OCI" bwa)
	run bv push "oci:$OCI:bwa" "$reg/auth/bwa:1"
	assert_failure 1
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^error: .*'$reg'.*(docker login $reg|log in)"

	login "$reg" testuser:wrongsecret
	run bv push "oci:$OCI:bwa" "$reg/auth/bwa:1"
	assert_failure 1
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^error: .*(rejected the credentials|credentials were rejected)"
	refute_output --partial wrongsecret
	refute_output --partial "$(printf testuser:wrongsecret | base64)"

	login "$reg" testuser:testpass
	run --separate-stderr bv push "oci:$OCI:bwa" "$reg/auth/bwa:1"
	assert_success
	assert_output "Pushed $reg/auth/bwa:1@$want"
	refute [ "$(grep -c testpass <<<"$output$stderr")" -gt 0 ]
	assert_equal "$(raw_digest "$reg/auth/bwa:1" --creds testuser:testpass)" "$want"
}

@test "basic auth: DOCKER_CONFIG's credentials push; none or a wrong password is one clear error" {
	auth_cases "$BASIC"
}

@test "bearer tokens: a push,pull token for testuser; anonymous (pull only) and a wrong password fail" {
	auth_cases "$TOKEN"
}

@test "TLS (HTTP/2) and bearer tokens: bv's certs.d holds the CA; chunks work there too" {
	want=$(layout_digest "$OCI" bwa)
	login "$TLS" testuser:testpass
	run bv push "oci:$OCI:bwa" "$TLS/tls/bwa:1"
	# without a CA bv speaks plain HTTP to loopback, which a TLS port refuses
	assert_failure 1
	assert_output --regexp "^error: could not push blob sha256:[0-9a-f]{64} to '$TLS/tls/bwa:1': registry returned 400$"
	mkdir -p "$XDG_CONFIG_HOME/bv/certs.d/$TLS"
	cp "$TLS_DIR/ca.crt" "$XDG_CONFIG_HOME/bv/certs.d/$TLS/"
	BV_PUSH_CHUNK_SIZE=2097152 run --separate-stderr bv push "oci:$OCI:bwa" "$TLS/tls/bwa:1"
	assert_success
	assert_output "Pushed $TLS/tls/bwa:1@$want"
	assert_equal "$(raw_digest "$TLS/tls/bwa:1" --creds testuser:testpass)" "$want"
	# (the blobs too: skopeo verifies each against its digest, over TLS with the same CA)
	run skopeo copy -q --src-cert-dir "$TLS_DIR" --src-creds testuser:testpass \
		"docker://$TLS/tls/bwa:1" "oci:$BATS_TEST_TMPDIR/back:t"
	assert_success
	assert_equal "$(layout_digest "$BATS_TEST_TMPDIR/back" t)" "$want"
}

@test "a blob that does not match its digest is refused before any request" {
	cp -r "$OCI" "$BATS_TEST_TMPDIR/bad"
	chmod -R u+w "$BATS_TEST_TMPDIR/bad"
	layer=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1] + "/index.json"))
m = [x for x in d["manifests"] if x["annotations"]["org.opencontainers.image.ref.name"] == "bwa"][0]
man = json.load(open(sys.argv[1] + "/blobs/sha256/" + m["digest"][7:]))
print(man["layers"][-1]["digest"][7:])' "$BATS_TEST_TMPDIR/bad")
	# same size, one byte changed
	python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[100] ^= 1
open(p, "wb").write(b)' "$BATS_TEST_TMPDIR/bad/blobs/sha256/$layer"
	run bv push "oci:$BATS_TEST_TMPDIR/bad:bwa" "$ADDR/bad/bwa:1"
	assert_failure 1
	assert_output "error: blob sha256:$layer in 'oci:$BATS_TEST_TMPDIR/bad:bwa' does not match its digest ($(stat -c %s "$BATS_TEST_TMPDIR/bad/blobs/sha256/$layer") bytes, sha256:$(sha256sum "$BATS_TEST_TMPDIR/bad/blobs/sha256/$layer" | cut -d' ' -f1)); nothing was pushed"
	assert_equal "$(requests '[A-Z]+ /v2/bad/')" 0
}

@test "bad sources; a destination without a tag is pushed by digest only; store: images" {
	run bv push "oci:$BATS_TEST_TMPDIR/none" "$ADDR/x/y:1"
	assert_failure 1
	assert_output "error: '$BATS_TEST_TMPDIR/none' is not an OCI image layout (it has no index.json)"
	run bv push "oci:$OCI:nope" "$ADDR/x/y:1"
	assert_failure 1
	assert_output "error: no image named 'nope' in '$OCI'"
	run bv push "oci:$OCI" "$ADDR/x/y:1"
	assert_failure 1
	assert_output --regexp "^error: '$OCI' holds [0-9]+ images; name one as oci:$OCI:NAME$"
	run bv push "oci:$OCI:bwa" "$ADDR/Bad/y:1"
	assert_failure 1
	assert_output --partial "invalid image reference"
	run bv push "oci:$OCI:bwa"
	assert_failure 2

	want=$(layout_digest "$OCI" bwa)
	run --separate-stderr bv push "oci:$OCI:bwa" "$ADDR/dig/bwa"
	assert_success
	assert_output "Pushed $ADDR/dig/bwa@$want"
	assert_equal "$(requests "PUT /v2/dig/bwa/manifests/$want HTTP/1.1\" 201")" 1
	assert_equal "$(requests 'PUT /v2/dig/bwa/manifests/[^s]')" 0
	assert_equal "$(raw_digest "$ADDR/dig/bwa@$want")" "$want"

	# a mirror serves the source's reads; the destination's mirror (nothing listens on port
	# 9) is never used for a push
	BV_MIRRORS="quay.io=$ADDR,$ADDR=127.0.0.1:9" run --separate-stderr \
		bv push "quay.io/dig/bwa@$want" "$ADDR/mir/bwa:1"
	assert_success
	assert_output "Pushed $ADDR/mir/bwa:1@$want"
	assert_equal "$stderr" "3 blobs uploaded ($(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))' "$OCI/blobs/sha256/${want#sha256:}") bytes), 0 already there, 0 mounted; 1 manifest"
	assert_equal "$(requests 'GET /v2/dig/bwa/blobs/sha256:[0-9a-f]{64} HTTP/1.1" 200')" 3

	# bv's store is an OCI layout; an image in it (put there by skopeo here) pushes by name
	mkdir -p "$BV_CACHE_DIR"
	run skopeo copy -q "oci:$OCI:minimap2" "oci:$BV_CACHE_DIR/store:quay.io/biocontainers/minimap2:2.24"
	assert_success
	want=$(layout_digest "$OCI" minimap2)
	run --separate-stderr bv push store:quay.io/biocontainers/minimap2:2.24 "$ADDR/st/minimap2:2.24"
	assert_success
	assert_output "Pushed $ADDR/st/minimap2:2.24@$want"
	assert_equal "$(raw_digest "$ADDR/st/minimap2:2.24")" "$want"
	run bv push store:quay.io/biocontainers/minimap2:0 "$ADDR/st/minimap2:2.24"
	assert_failure 1
	assert_output "error: no image named 'quay.io/biocontainers/minimap2:0' in '$BV_CACHE_DIR/store'"
}

@test "store: an image bv pulled as Docker schema 2 is pushed as the registry served it" {
	run skopeo copy -q --format v2s2 --dest-tls-verify=false "oci:$OCI:bwa" \
		"docker://$ADDR/biocontainers/bwa:0.7.17--debian"
	assert_success
	want=$(raw_digest "$ADDR/biocontainers/bwa:0.7.17--debian")
	export BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BV_SOURCE_DIR/tests/fixtures/bv-registry"
	mkdir -p "$BATS_TEST_TMPDIR/proj" && cd "$BATS_TEST_TMPDIR/proj"
	bv init p >/dev/null 2>&1
	run bv add bwa
	assert_success
	# the store keeps an OCI view beside the registry's manifest; the push sends the latter
	run --separate-stderr bv push store:quay.io/biocontainers/bwa:0.7.17--debian "$ADDR/sv2/bwa:1"
	assert_success
	assert_output "Pushed $ADDR/sv2/bwa:1@$want"
	assert_equal "$(raw_digest "$ADDR/sv2/bwa:1")" "$want"
	run skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ADDR/sv2/bwa:1"
	assert_output "$want"
}

# fake_blobs_match NAME: every blob of layout image NAME is in the fake registry, byte for byte.
fake_blobs_match() {
	local d
	for d in $(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m["config"]["digest"], *[l["digest"] for l in m["layers"]])' "$OCI/blobs/sha256/$(layout_digest "$OCI" "$1" | cut -c8-)"); do
		cmp "$OCI/blobs/sha256/${d#sha256:}" "$FAKE_DIR/blobs/${d#sha256:}" || return 1
	done
}

@test "a 5xx during an upload starts the blob again with a new session; relative Locations are followed" {
	fake_init "$BATS_TEST_TMPDIR/fake"
	fake_start '[{"match": "/blobs/uploads/", "method": "PUT", "times": 1, "action": "status", "status": 503},
		{"match": "/blobs/uploads/", "method": "PATCH", "times": 1, "action": "status", "status": 500}]'
	want=$(layout_digest "$OCI" bwa)
	BV_PUSH_CHUNK_SIZE=1048576 run --separate-stderr bv push "oci:$OCI:bwa" "127.0.0.1:$FAKE_PORT/r/bwa:1"
	assert_success
	assert_output "Pushed 127.0.0.1:$FAKE_PORT/r/bwa:1@$want"
	# three blobs, two of them opened a second session after their failure
	assert_equal "$(grep -c '^POST /v2/r/bwa/blobs/uploads/ ' "$FAKE_LOG")" 5
	# every session's requests went to the relative Location the fake gave
	refute grep -qE '^(PATCH|PUT) /v2/r/bwa/blobs/uploads/ ' "$FAKE_LOG"
	grep -qE '^PATCH /v2/r/bwa/blobs/uploads/[0-9]+ range=0-1048575 ' "$FAKE_LOG"
	fake_blobs_match bwa
	assert_equal "$(sha256sum "$FAKE_DIR/blobs/${want#sha256:}" | cut -d' ' -f1)" "${want#sha256:}"
}

@test "an answer naming another digest than bv computed is an error" {
	fake_init "$BATS_TEST_TMPDIR/fake"
	fake_start '[]' '{"wrong_digest": true}'
	run bv push "oci:$OCI:bwa" "127.0.0.1:$FAKE_PORT/r/bwa:1"
	assert_failure 1
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^error: could not push 127\.0\.0\.1:$FAKE_PORT/r/bwa:1: blob sha256:[0-9a-f]{12}: the registry stored it as sha256:[0-9a-f]{64}, not as what bv computed$"
	refute grep -q '/manifests/' "$FAKE_LOG"
}
