# A misbehaving registry for the end-to-end tests: tests/fixtures/fake_registry.py, fed with
# the fixture images that tests/fixtures/images.sh builds.  Load after lib/common:
#
#   load lib/common
#   load lib/fake_registry
#
#   setup_file() { fake_images_build; }          once per file: build or reuse the images
#   fake_init "$BATS_TEST_TMPDIR/fake"           a fresh plan: no images, no faults
#   fake_add_image bwa 0.7.17--debian            biocontainers/bwa:0.7.17--debian, from the
#                                                OCI layout (manifest and blobs copied)
#   fake_add_manifest REPO:TAG FILE [TYPE]       any manifest file, served for REPO:TAG
#   fake_add_blob FILE                           any blob, served by its sha256
#   fake_start '[{"match": "/blobs/", "times": -1, "action": "corrupt"}]'
#                                                starts it on 127.0.0.1; sets FAKE_PID,
#                                                FAKE_PORT and BV_MIRRORS=quay.io=<it>
#   fake_stop                                    kills FAKE_PID (call it from teardown)
#   grep 'range=bytes=' "$FAKE_LOG"              one line per request
#
# The fake runs until killed: teardown must call fake_stop, which only signals the PID this
# file started, so a failed test cannot leave a server behind or kill someone else's.

: "${BV_SOURCE_DIR:?load lib/common first}"
FAKE_PY=$BV_SOURCE_DIR/tests/fixtures/fake_registry.py
FAKE_IMAGES=$BV_SOURCE_DIR/tests/fixtures/images.sh
MEDIA_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

# fake_images_build: builds the fixture images if needed; sets and exports FAKE_LAYOUT, the OCI
# layout (gzip layers) that holds them.
fake_images_build() {
	local dir
	dir=$("$FAKE_IMAGES" build 2>/dev/null) || {
		echo "fake_images_build: images.sh build failed" >&2
		return 1
	}
	FAKE_LAYOUT=$dir/oci
	[[ -f $FAKE_LAYOUT/index.json ]] || {
		echo "fake_images_build: no OCI layout at '$FAKE_LAYOUT'" >&2
		return 1
	}
	export FAKE_LAYOUT
}

# fake_init DIR: a new, empty plan in DIR (blobs/, manifests.tsv, log).
fake_init() {
	FAKE_DIR=$1
	# shellcheck disable=SC2034 # for the tests that load this file
	FAKE_LOG=$FAKE_DIR/log
	FAKE_PID=
	mkdir -p "$FAKE_DIR/blobs" "$FAKE_DIR/manifests"
	: >"$FAKE_DIR/manifests.tsv"
}

# fake_layout_digest NAME: the manifest digest of NAME ("bwa") in the fixture layout.
fake_layout_digest() {
	python3 - "$FAKE_LAYOUT" "$1" <<'EOF'
import json, os, sys
layout, name = sys.argv[1:3]
with open(os.path.join(layout, "index.json")) as f:
    index = json.load(f)
print(next(d["digest"] for d in index["manifests"]
           if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == name))
EOF
}

# fake_blob_path DIGEST: the file of DIGEST ("sha256:<hex>") in the fixture layout.
fake_blob_path() {
	printf '%s/blobs/sha256/%s\n' "$FAKE_LAYOUT" "${1#sha256:}"
}

# fake_add_blob FILE: serves FILE as the blob of its sha256; prints "sha256:<hex>".
fake_add_blob() {
	local hex
	hex=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$FAKE_DIR/blobs/$hex"
	printf 'sha256:%s\n' "$hex"
}

# fake_add_manifest REPO:TAG FILE [MEDIA_TYPE]: serves FILE for the tag (and for its digest).
fake_add_manifest() {
	local name=$1 file=$2 type=${3:-$MEDIA_OCI_MANIFEST} copy
	copy=$FAKE_DIR/manifests/$(printf '%s' "$name" | tr '/:' '__').json
	cp "$file" "$copy"
	printf '%s\t%s\t%s\n' "$name" "$copy" "$type" >>"$FAKE_DIR/manifests.tsv"
}

# fake_add_image NAME TAG: biocontainers/NAME:TAG is the fixture image NAME: its manifest and
# every blob it references.
fake_add_image() {
	local name=$1 tag=$2 manifest d
	manifest=$(fake_blob_path "$(fake_layout_digest "$name")")
	for d in $(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m["config"]["digest"], *[l["digest"] for l in m["layers"]])' "$manifest"); do
		fake_add_blob "$(fake_blob_path "$d")" >/dev/null
	done
	fake_add_manifest "biocontainers/$name:$tag" "$manifest"
}

# fake_start [FAULTS_JSON] [EXTRA_PLAN_JSON]: writes the plan and starts the server; returns
# once it listens.  EXTRA_PLAN_JSON is merged into the plan (e.g. '{"ignore_range": true}').
fake_start() {
	local faults=${1:-[]} extra=${2:-"{}"} i
	[[ -z ${FAKE_PID:-} ]] || fake_stop
	rm -f "$FAKE_DIR/port"
	python3 - "$FAKE_DIR" "$faults" "$extra" <<'EOF' || return 1
import json, os, sys
d, faults, extra = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
manifests = {}
with open(os.path.join(d, "manifests.tsv")) as f:
    for line in f:
        name, path, media_type = line.rstrip("\n").split("\t")
        manifests[name] = {"file": path, "media_type": media_type}
plan = {"port_file": os.path.join(d, "port"), "log": os.path.join(d, "log"),
        "blob_dir": os.path.join(d, "blobs"), "manifests": manifests, "faults": faults}
plan.update(extra)
with open(os.path.join(d, "plan.json"), "w") as f:
    json.dump(plan, f, indent=1)
EOF
	# fd 3 closed: bats waits for whatever holds it, and this server never exits by itself
	python3 "$FAKE_PY" "$FAKE_DIR/plan.json" >"$FAKE_DIR/stderr" 2>&1 3>&- &
	FAKE_PID=$!
	for ((i = 0; i < 100; i++)); do
		if [[ -s $FAKE_DIR/port ]]; then
			FAKE_PORT=$(<"$FAKE_DIR/port")
			export BV_MIRRORS="quay.io=127.0.0.1:$FAKE_PORT"
			return 0
		fi
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "fake_start: the fake registry did not start:" >&2
	cat "$FAKE_DIR/stderr" >&2
	fake_stop
	return 1
}

# fake_stop: stops the server this file started, if any.
fake_stop() {
	[[ -n ${FAKE_PID:-} ]] || return 0
	kill "$FAKE_PID" 2>/dev/null || true
	wait "$FAKE_PID" 2>/dev/null || true
	FAKE_PID=
}
