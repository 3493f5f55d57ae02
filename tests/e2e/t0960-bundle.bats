#!/usr/bin/env bats
# Air-gapped bundles: bv bundle -o FILE writes what bv.lock pins into one tar (an OCI image
# layout skopeo reads as oci-archive:, plus bv.toml, bv.lock and the manifest copies), and
# bv sync --from FILE installs it on an empty cache with every digest checked and no network.
# One project (samtools as Docker v2s2, bwa as OCI) is locked and bundled once in setup_file.

load lib/common

setup_file() {
	fixture_images_up
	export BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	export BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache"
	export HOME="$BATS_FILE_TMPDIR/home"
	mkdir -p "$HOME"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	sed -i 's/:0.7.17--debian"/:0.7.17--debian-oci"/' "$BV_REGISTRY"/tools/bwa/*.toml
	# a tiny dataset bwa may use, served on loopback as t0900 does
	local srv=$BATS_FILE_TMPDIR/srv
	mkdir -p "$srv" "$BV_REGISTRY/data/tiny"
	printf '>chr1\nACGTACGTAC\n' >"$srv/tiny.fa"
	python3 "$BV_SOURCE_DIR/tests/e2e/fixtures/data_server.py" --root "$srv" \
		--port-file "$BATS_FILE_TMPDIR/http.port" --log "$BATS_FILE_TMPDIR/http.log" >/dev/null 2>&1 &
	echo $! >"$BATS_FILE_TMPDIR/http.pid"
	for _ in $(seq 100); do [ -s "$BATS_FILE_TMPDIR/http.port" ] && break; sleep 0.05; done
	printf '[data]\nid = "tiny"\nversion = "1"\nsource_urls = ["http://127.0.0.1:%s/tiny.fa"]\nsize_bytes = %s\nsha256 = "sha256:%s"\nformat = "fasta"\npost_download_action = "noop"\n' \
		"$(cat "$BATS_FILE_TMPDIR/http.port")" "$(stat -c %s "$srv/tiny.fa")" "$(sha256sum "$srv/tiny.fa" | cut -d' ' -f1)" \
		>"$BV_REGISTRY/data/tiny/1.toml"
	for f in "$BV_REGISTRY"/tools/bwa/*.toml; do
		printf '\n[tool.reference_data.ref]\nid = "tiny"\nversion = "1"\nrequired = false\nmount_path = "/ref/tiny"\n' >>"$f"
	done
	mkdir -p "$BATS_FILE_TMPDIR/proj" && cd "$BATS_FILE_TMPDIR/proj" || return 1
	"$BV" init align >/dev/null 2>&1
	"$BV" add samtools bwa >/dev/null 2>&1
	"$BV" sync --data >/dev/null 2>&1
	"$BV" bundle -o "$BATS_FILE_TMPDIR/b.tar" 2>"$BATS_FILE_TMPDIR/bundle.err"
	"$BV" bundle --data -o "$BATS_FILE_TMPDIR/data.tar" 2>>"$BATS_FILE_TMPDIR/bundle.err"
	kill "$(cat "$BATS_FILE_TMPDIR/http.pid")"
	# samtools by its multi-platform index (linux/amd64 and linux/arm64; only amd64 is pulled)
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BATS_FILE_TMPDIR/reg-multi"
	sed -i 's/:1.16.1--debian"/:1.16.1--debian-multiarch"/' "$BATS_FILE_TMPDIR"/reg-multi/tools/samtools/*.toml
	mkdir -p "$BATS_FILE_TMPDIR/multi" && cd "$BATS_FILE_TMPDIR/multi" || return 1
	"$BV" init multi >/dev/null 2>&1
	BV_REGISTRY="$BATS_FILE_TMPDIR/reg-multi" "$BV" add samtools >/dev/null 2>&1
	"$BV" bundle -o "$BATS_FILE_TMPDIR/multi.tar" 2>>"$BATS_FILE_TMPDIR/bundle.err"
	# no registry from here on: mirrors point at a closed port
	export BV_MIRRORS="quay.io=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
}

teardown_file() {
	kill "$(cat "$BATS_FILE_TMPDIR/http.pid")" 2>/dev/null
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	PROJ="$BATS_FILE_TMPDIR/proj"
	B="$BATS_FILE_TMPDIR/b.tar"
	mkdir -p "$BATS_TEST_TMPDIR/site" && cd "$BATS_TEST_TMPDIR/site" || return 1
}

lock_field() { # tool field
	python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["tools"][sys.argv[2]][sys.argv[3]])' "$PROJ/bv.lock" "$1" "$2"
}

# The store and the site stay as they were: no blob published, no project made.
assert_untouched() {
	[ ! -e bv.toml ] && [ ! -e bv.lock ]
	[ -z "$(ls "$BV_CACHE_DIR/store/blobs/sha256" 2>/dev/null)" ]
	run bv cache verify
	assert_success
}

# rewrite_bundle OUT PYTHON-EXPR: copies $B member by member; the expression sees `m` (the
# TarInfo) and `data` (its bytes) and returns (m, data) or None to drop the member.
rewrite_bundle() {
	python3 - "$B" "$1" "$2" <<'PY'
import io, sys, tarfile
src, out, expr = sys.argv[1:]
with tarfile.open(src) as t, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as o:
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else b""
        r = eval(expr)
        if r is None:
            continue
        m, data = r
        m.size = len(data)
        o.addfile(m, io.BytesIO(data) if m.isfile() else None)
PY
}

@test "bundle: an OCI layout skopeo reads, named by reference, with bv.lock's digests" {
	[ -s "$B" ] || { cat "$BATS_FILE_TMPDIR/bundle.err"; false; }
	run tar -tf "$B"
	assert_success
	assert_line oci-layout
	assert_line index.json
	assert_line bv/bv.lock
	assert_line bv/bv.toml
	assert_line "blobs/sha256/$(lock_field samtools image_digest | cut -d: -f2)"
	assert_line --regexp '^bv/manifests/[0-9a-f]{64}\.toml$'
	# the OCI image's digest is bv.lock's
	run skopeo inspect --format '{{.Digest}}' "oci-archive:$B:quay.io/biocontainers/bwa:0.7.17--debian-oci"
	assert_success
	assert_output "$(lock_field bwa image_digest)"
	# the Docker v2s2 image is named through its OCI view: same layers, the pin annotated
	run skopeo inspect --raw "oci-archive:$B:quay.io/biocontainers/samtools:1.16.1--debian"
	assert_success
	got=$(jq -r '[.layers[].digest] | join(" ")' <<<"$output")
	want=$(python3 -c 'import tomllib; print(" ".join(l["digest"] for l in tomllib.load(open("'"$PROJ"'/bv.lock", "rb"))["tools"]["samtools"]["layers"]))')
	[ "$got" = "$want" ]
	run sh -c "tar -xOf '$B' index.json | jq -r '.manifests[] | .annotations[\"dev.bv.digest\"]' | sort"
	assert_output "$(printf '%s\n' "$(lock_field bwa image_digest)" "$(lock_field samtools image_digest)" | sort)"
	# and copies out of it as any OCI archive
	run skopeo copy "oci-archive:$B:quay.io/biocontainers/samtools:1.16.1--debian" "dir:$BATS_TEST_TMPDIR/dir"
	assert_success
	[ -s "$BATS_TEST_TMPDIR/dir/manifest.json" ]
}

@test "bundle: the same lock gives the same bytes, with fixed times and owners" {
	cd "$PROJ" || return 1
	run bv bundle
	assert_failure 2
	assert_output --partial "bv bundle needs -o <FILE>"
	# an image missing from the cache is named, and no file is left behind
	run bv bundle -o "$BATS_TEST_TMPDIR/none.tar"
	assert_failure 1
	assert_output --regexp "image 'quay.io/biocontainers/[a-z]+:[^']+' of [a-z]+: sha256:[0-9a-f]{64} is not in the store"
	assert_output --partial "hint: run 'bv sync' first"
	[ -z "$(ls "$BATS_TEST_TMPDIR" | grep none)" ]
	BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache" run bv bundle -o "$BATS_TEST_TMPDIR/again.tar"
	assert_success
	cmp "$B" "$BATS_TEST_TMPDIR/again.tar"
	tar --numeric-owner -tvf "$B" >"$BATS_TEST_TMPDIR/list"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/list")" -gt 10 ]
	run grep -v ' 0/0 .* 1970-01-01 00:00 ' "$BATS_TEST_TMPDIR/list"
	assert_failure
	assert_output ''
}

@test "sync --from: an empty directory and cache, no registry: installs and runs" {
	run bv sync --from "$B"
	assert_success
	cmp bv.lock "$PROJ/bv.lock"
	cmp bv.toml "$PROJ/bv.toml"
	run bv run samtools --version
	assert_success
	assert_output --partial "samtools 1.16"
	run bv cache verify
	assert_success
	# the images are named in the store as a pull names them
	run skopeo inspect --format '{{.Digest}}' "oci:$BV_CACHE_DIR/store:quay.io/biocontainers/bwa:0.7.17--debian-oci"
	assert_success
	assert_output "$(lock_field bwa image_digest)"
	run skopeo inspect "oci:$BV_CACHE_DIR/store:quay.io/biocontainers/samtools:1.16.1--debian"
	assert_success
	# the same bundle again on the same project: nothing to do
	run bv sync --from "$B"
	assert_success
	run .bv/bin/samtools --version
	assert_success
}

@test "sync --from refuses bad bundles with one error, leaving store and directory as they were" {
	layer=$(python3 -c 'import tomllib; print(tomllib.load(open("'"$PROJ"'/bv.lock", "rb"))["tools"]["samtools"]["layers"][-1]["digest"])')
	hex=${layer#sha256:}
	# not a tar
	head -c 3000 /dev/urandom >junk.tar
	run bv sync --from junk.tar
	assert_failure 1
	assert_output --regexp "^error: 'junk.tar' is not a bv bundle: "
	rm junk.tar
	assert_untouched
	# a tampered blob (one byte changed, size kept): named, nothing published
	rewrite_bundle "$BATS_TEST_TMPDIR/tampered.tar" "(m, data[:100] + bytes([data[100] ^ 1]) + data[101:]) if m.name.endswith('$hex') else (m, data)"
	run bv sync --from "$BATS_TEST_TMPDIR/tampered.tar"
	assert_failure 1
	assert_output --partial "blob $layer is corrupt: its bytes hash to sha256:"
	assert_untouched
	[ -z "$(ls "$BV_CACHE_DIR/store/tmp" 2>/dev/null)" ]
	# a missing blob
	rewrite_bundle "$BATS_TEST_TMPDIR/missing.tar" "None if m.name.endswith('$hex') else (m, data)"
	run bv sync --from "$BATS_TEST_TMPDIR/missing.tar"
	assert_failure 1
	assert_output --partial "has no blob $layer"
	assert_untouched
	# a path escaping the archive root
	rewrite_bundle "$BATS_TEST_TMPDIR/escape.tar" "(m, data) if m.name != 'bv/bv.toml' else (setattr(m, 'name', '../bv.toml') or m, data)"
	run bv sync --from "$BATS_TEST_TMPDIR/escape.tar"
	assert_failure 1
	assert_output --partial "entry '../bv.toml' escapes the archive root"
	assert_untouched
	[ ! -e ../bv.toml ]
	rewrite_bundle "$BATS_TEST_TMPDIR/abs.tar" "(m, data) if m.name != 'oci-layout' else (setattr(m, 'name', '/tmp/oci-layout') or m, data)"
	run bv sync --from "$BATS_TEST_TMPDIR/abs.tar"
	assert_failure 1
	assert_output --partial "entry '/tmp/oci-layout' escapes the archive root"
	assert_untouched
	# a bundle for another lock than the project's
	cp "$PROJ/bv.toml" bv.toml
	sed 's/^generated_at = .*/generated_at = "2000-01-01T00:00:00Z"/' "$PROJ/bv.lock" >bv.lock
	cp bv.lock lock.before
	run bv sync --from "$B"
	assert_failure 1
	assert_output --partial "was made for another bv.lock than '$PWD'"
	cmp bv.lock lock.before
	rm bv.toml bv.lock lock.before
	assert_untouched
}

@test "--data: the pinned dataset travels in the bundle, checked against its record and bv.lock" {
	[ -s "$BATS_FILE_TMPDIR/data.tar" ] || { cat "$BATS_FILE_TMPDIR/bundle.err"; false; }
	run tar -tf "$B"
	refute_line --partial bv/data/
	run tar -tf "$BATS_FILE_TMPDIR/data.tar"
	assert_line bv/data/tiny/1/tiny.fa
	assert_line bv/data/tiny/1.json
	# a changed byte in the dataset: refused, nothing of it published
	B="$BATS_FILE_TMPDIR/data.tar"
	rewrite_bundle "$BATS_TEST_TMPDIR/bad.tar" "(m, data.replace(b'ACGT', b'TTTT', 1)) if m.name == 'bv/data/tiny/1/tiny.fa' else (m, data)"
	run bv sync --from "$BATS_TEST_TMPDIR/bad.tar"
	assert_failure 1
	assert_output --partial "dataset tiny 1 in the bundle: 'tiny.fa' has changed"
	[ ! -e "$BV_CACHE_DIR/data/tiny/1" ] && [ ! -e bv.toml ]
	[ -z "$(ls "$BV_CACHE_DIR/data/.tmp")" ]
	run bv sync --from "$B"
	assert_success
	cmp "$BV_CACHE_DIR/data/tiny/1/tiny.fa" "$BATS_FILE_TMPDIR/srv/tiny.fa"
	run bv data list
	assert_success
	assert_output --regexp 'tiny +1 .* verified'
	run bv sync --frozen
	assert_success
}

@test "multi-platform: the index is named by bv.lock's pin, with the platforms the store holds" {
	M="$BATS_FILE_TMPDIR/multi.tar"
	[ -s "$M" ] || { cat "$BATS_FILE_TMPDIR/bundle.err"; false; }
	pin=$(python3 -c 'import tomllib; print(tomllib.load(open("'"$BATS_FILE_TMPDIR"'/multi/bv.lock", "rb"))["tools"]["samtools"]["image_digest"])')
	run sh -c "tar -xOf '$M' index.json | jq -r '.manifests[] | .mediaType + \" \" + .digest'"
	assert_output "application/vnd.oci.image.index.v1+json $pin"
	tar -xOf "$M" "blobs/sha256/${pin#sha256:}" >"$BATS_TEST_TMPDIR/index"
	amd=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$BATS_TEST_TMPDIR/index")
	arm=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$BATS_TEST_TMPDIR/index")
	run tar -tf "$M"
	assert_line "blobs/sha256/${amd#sha256:}"
	refute_line "blobs/sha256/${arm#sha256:}"
	run skopeo copy "oci-archive:$M:quay.io/biocontainers/samtools:1.16.1--debian-multiarch" "dir:$BATS_TEST_TMPDIR/dir"
	assert_success
	[ "$(sha256sum "$BATS_TEST_TMPDIR/dir/manifest.json" | cut -d' ' -f1)" = "${amd#sha256:}" ]
	run bv sync --from "$M"
	assert_success
	run bv run samtools --version
	assert_success
	assert_output --partial "samtools 1.16"
}
