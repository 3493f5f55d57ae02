#!/usr/bin/env bats
# Signed images: bv add/lock/sync --require-signed and bv.toml's [registry] require_signed
# against cosign-format signatures in the loopback fixture registry.  No cosign binary is
# involved (Debian has none): tests/fixtures/cosign_sign.py makes keys, writes signatures
# with python3-cryptography and verifies what bv push --sign-key writes, independently of bv.
# Each test copies the fixture image into repositories of its own (a per-run prefix), so
# signatures never leak between tests or runs.

load lib/common

setup_file() {
	fixture_images_up
	PFX="sig$$x$RANDOM"
	KEYS="$BATS_FILE_TMPDIR/keys"
	mkdir -p "$KEYS/trusted" "$KEYS/other"
	python3 "$BV_SOURCE_DIR/tests/fixtures/cosign_sign.py" keygen "$KEYS/trusted"
	python3 "$BV_SOURCE_DIR/tests/fixtures/cosign_sign.py" keygen "$KEYS/other"
	export PFX KEYS
}

teardown_file() {
	fixture_images_down
}

setup() {
	fixture_project_setup
	# one cache for the file: every test pulls the same layers (signatures are not cached)
	export BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache"
	MANIFEST="$BV_REGISTRY/tools/samtools/1.16.1.toml"
	bv init sig >/dev/null 2>&1
}

cosign() {
	python3 "$BV_SOURCE_DIR/tests/fixtures/cosign_sign.py" "$@"
}

# use_image TAG [KEYS]: the fixture samtools:TAG copied (blobs mounted) to a repository of
# this test, named by the manifest as quay.io/...; its [tool.signatures] trusts KEYS's key
# ("none": image = "sigstore" without keys; "": no table).  Sets REPO and DIGEST (the digest
# bv.lock pins: what the tag points to).
use_image() {
	local tag=$1 keys=${2-trusted}
	REPO="$PFX-$BATS_TEST_NUMBER/samtools"
	bv push "docker://$ADDR/biocontainers/samtools:$tag" "$ADDR/$REPO:$tag" >/dev/null 2>&1
	DIGEST="sha256:$(skopeo inspect --raw --tls-verify=false "docker://$ADDR/$REPO:$tag" |
		sha256sum | cut -d' ' -f1)"
	sed -i "s|\"quay.io/biocontainers/samtools:1.16.1--debian\"|\"quay.io/$REPO:$tag\"|" \
		"$MANIFEST"
	if [[ $keys == none ]]; then
		printf '\n[tool.signatures]\nimage = "sigstore"\n' >>"$MANIFEST"
	elif [[ -n $keys ]]; then
		cosign toml "$KEYS/$keys/cosign.pub" >>"$MANIFEST"
	fi
}

# sign KEYS [OPTIONS]: a signature of the test's image by KEYS's key (replacing any).
sign() {
	local keys=$1
	shift
	cosign sign --key "$KEYS/$keys/cosign.key" "$ADDR/$REPO@$DIGEST" "$@"
}

checksums() {
	sha256sum bv.toml bv.lock 2>/dev/null || true
}

@test "a signed index is accepted by add, sync and lock --require-signed" {
	use_image 1.16.1--debian-multiarch
	sign trusted
	run bv add --require-signed samtools
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	grep -q "^image_digest = \"$DIGEST\"" bv.lock
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/fresh"
	run bv sync --require-signed
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	assert_output --partial "Synced 1 tool (1 pulled, native backend)"
	run bv lock --require-signed
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	assert_output --partial "bv.lock is up to date"
}

@test "[registry] require_signed refuses an unsigned image, then takes it signed" {
	use_image 1.16.1--debian
	printf '\n[registry]\nurl = "%s"\nrequire_signed = true\n' "$BV_REGISTRY" >>bv.toml
	before=$(checksums)
	run bv add samtools
	assert_failure
	assert_output --partial "error: samtools is not signed as required: no signature for quay.io/$REPO@$DIGEST"
	assert_output --partial "bv.toml and bv.lock are unchanged"
	assert_equal "$(checksums)" "$before"
	[ ! -e bv.lock ]
	sign trusted
	run bv add samtools
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	# sync checks again, without a flag: bv.toml asks for it
	run bv sync
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	rm bv.lock
	run bv lock
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	grep -q "^image_digest = \"$DIGEST\"" bv.lock
}

@test "unsigned, another key's, another digest's and tampered signatures are refused" {
	use_image 1.16.1--debian
	run bv add samtools
	assert_success
	before=$(checksums)
	other="sha256:$(skopeo inspect --raw --tls-verify=false \
		"docker://$ADDR/biocontainers/bwa:0.7.17--debian" | sha256sum | cut -d' ' -f1)"

	run bv add --require-signed samtools
	assert_failure
	assert_output --partial "no signature for quay.io/$REPO@$DIGEST"
	assert_equal "$(checksums)" "$before"
	# a relock that would write a new bv.lock checks it before writing
	mv bv.lock bv.lock.kept
	run bv lock --require-signed
	assert_failure
	assert_output --partial "no signature for quay.io/$REPO@$DIGEST"
	[ ! -e bv.lock ]
	mv bv.lock.kept bv.lock

	sign other
	run bv add --require-signed samtools
	assert_failure
	assert_output --partial "no signature of quay.io/$REPO@$DIGEST verifies with a trusted key (1 signature, 1 key)"
	assert_equal "$(checksums)" "$before"

	sign trusted --payload-digest "$other"
	run bv add --require-signed samtools
	assert_failure
	assert_output --partial "the signature of quay.io/$REPO@$DIGEST by a trusted key is for $other, another image"
	assert_equal "$(checksums)" "$before"

	sign trusted --tamper
	run bv add --require-signed samtools
	assert_failure
	assert_output --partial "verifies with a trusted key"
	assert_equal "$(checksums)" "$before"
	# sync and lock refuse the pinned image the same way, and write nothing
	run bv sync --require-signed
	assert_failure
	assert_output --partial "verifies with a trusted key"
	refute_output --partial "Synced"
	run bv lock --require-signed
	assert_failure
	assert_output --partial "verifies with a trusted key"
	assert_equal "$(checksums)" "$before"
}

@test "bv push --sign-key: accepted by bv and by an independent verifier" {
	use_image 1.16.1--debian
	run --separate-stderr bv push --sign-key "$KEYS/trusted/cosign.key" \
		"docker://$ADDR/biocontainers/samtools:1.16.1--debian" "$ADDR/$REPO:1.16.1--debian"
	assert_success
	assert_line "Pushed $ADDR/$REPO:1.16.1--debian@$DIGEST"
	assert_line "Signed $ADDR/$REPO:sha256-${DIGEST#sha256:}.sig"
	run cosign verify --pub "$KEYS/trusted/cosign.pub" "$ADDR/$REPO@$DIGEST"
	assert_success
	run cosign verify --pub "$KEYS/other/cosign.pub" "$ADDR/$REPO@$DIGEST"
	assert_failure
	run bv add --require-signed samtools
	assert_success
	assert_output --partial "Verified the signatures of 1 image"
	# a second signature (another key) is added beside the first, which still counts
	run bv push --sign-key "$KEYS/other/cosign.key" "$ADDR/$REPO@$DIGEST" "$ADDR/$REPO@$DIGEST"
	assert_success
	run skopeo inspect --raw --tls-verify=false "docker://$ADDR/$REPO:sha256-${DIGEST#sha256:}.sig"
	assert_success
	assert_equal "$(jq '.layers | length' <<<"$output")" 2
	run cosign verify --pub "$KEYS/other/cosign.pub" "$ADDR/$REPO@$DIGEST"
	assert_success
	run bv lock --require-signed
	assert_success
	# a key that is not a private key signs nothing, and nothing is pushed
	run bv push --sign-key "$KEYS/trusted/cosign.pub" \
		"docker://$ADDR/biocontainers/samtools:1.16.1--debian" "$ADDR/$REPO-2:x"
	assert_failure
	assert_output --partial "is not an unencrypted PEM ECDSA P-256 private key"
	run skopeo inspect --raw --tls-verify=false "docker://$ADDR/$REPO-2:x"
	assert_failure
}

@test "keys in ~/.config/bv/keys are trusted; a tool must declare signed images" {
	use_image 1.16.1--debian none
	sign trusted
	run bv add --require-signed samtools
	assert_failure
	assert_output --partial "no trusted key for samtools"
	[ ! -e bv.lock ]
	mkdir -p "$XDG_CONFIG_HOME/bv/keys"
	cp "$KEYS/trusted/cosign.pub" "$XDG_CONFIG_HOME/bv/keys/team.pub"
	run bv add --require-signed samtools
	assert_success
	# as upstream: without [tool.signatures] image = "sigstore" the tool is refused
	sed -i '/^\[tool.signatures\]/,$d' "$MANIFEST"
	run bv add --require-signed samtools
	assert_failure
	assert_output --partial 'samtools declares no signed image ([tool.signatures] image = "sigstore" in its manifest)'
	# a key file that is no key is an error, not a key less
	echo nonsense >"$XDG_CONFIG_HOME/bv/keys/bad.pub"
	run bv sync --require-signed
	assert_failure
	assert_output --partial "bad.pub' is not a PEM ECDSA P-256 public key"
}

@test "--require-signed needs a registry: not with lock --check or sync --from" {
	run bv lock --check --require-signed
	assert_failure 2
	assert_output --partial "--require-signed cannot be used with --check"
	run bv sync --from x.tar --require-signed
	assert_failure 2
	assert_output --partial "--require-signed"
}
