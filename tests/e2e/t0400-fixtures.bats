#!/usr/bin/env bats
# The test fixtures themselves: tests/fixtures/registry.sh starts docker-registry variants
# (plain, htpasswd, bearer token, TLS), tests/fixtures/images.sh builds real tool images from
# Debian packages and pushes them in several wire formats.  Everything is checked with
# independent clients (curl, skopeo, umoci), never with bv, so later tests can trust them.
#
# The first run builds the images (apt downloads, about a minute); later runs reuse the cache
# in $BV_FIXTURE_CACHE (default build/fixtures/cache) and take a few seconds.

# shellcheck disable=SC2154 # <tool>_TAG, BASE_LAYER ... come from images.env, sourced in setup
load lib/common

FIX=$BV_SOURCE_DIR/tests/fixtures
ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
V2S2=application/vnd.docker.distribution.manifest.v2+json
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json

setup_file() {
	export BV_FIXTURE_CACHE=${BV_FIXTURE_CACHE:-$BV_SOURCE_DIR/build/fixtures/cache}
	export BV_FIXTURE_DIR=$BATS_FILE_TMPDIR/fx
	if [[ ! -f $("$FIX/images.sh" path)/complete ]]; then
		echo "# building fixture images into $BV_FIXTURE_CACHE (first run: about a minute)" >&3
	fi
	IMAGES=$("$FIX/images.sh" build 2> >(sed 's/^/# /' >&3))
	export IMAGES
	PLAIN=$("$FIX/registry.sh" start)
	# The auth variants start while the images are pushed to the plain one.
	"$FIX/registry.sh" start --auth basic >"$BATS_FILE_TMPDIR/basic.url" &
	local basic=$!
	"$FIX/registry.sh" start --auth token >"$BATS_FILE_TMPDIR/token.url" &
	local token=$!
	"$FIX/images.sh" push --registry "$PLAIN" 2> >(sed 's/^/# /' >&3)
	wait "$basic"
	wait "$token"
	BASIC=$(<"$BATS_FILE_TMPDIR/basic.url")
	TOKEN=$(<"$BATS_FILE_TMPDIR/token.url")
	export PLAIN BASIC TOKEN
	# Every pushed manifest, fetched once with one curl: M/<repo_tag> and M/meta.
	local m=$BATS_FILE_TMPDIR/m ref form args=()
	mkdir -p "$m"
	while read -r ref form; do
		args+=(-o "$m/${ref//[\/:]/_}" "$PLAIN/v2/${ref%:*}/manifests/${ref##*:}")
	done < <("$FIX/images.sh" refs)
	curl -s -H "Accept: $ACCEPT" \
		-w '%{filename_effective} %{content_type} %header{docker-content-digest}\n' \
		"${args[@]}" >"$m/meta"
}

teardown_file() {
	"$FIX/registry.sh" stop --all
}

setup() {
	common_setup
	# shellcheck disable=SC1091
	. "$IMAGES/images.env"
}

# pushed REPO TAG: like manifest, from the copies setup_file fetched.
pushed() {
	local file
	BODY=$BATS_FILE_TMPDIR/m/${1//\//_}_$2
	CONTENT_TYPE="" DIGEST=""
	while read -r file CONTENT_TYPE DIGEST; do
		[[ $file != "$BODY" ]] || break
	done <"$BATS_FILE_TMPDIR/m/meta"
	[[ $file == "$BODY" && -s $BODY && -n $DIGEST ]]
}

# manifest URL REPO REF: the body; CONTENT_TYPE and DIGEST are set from the headers.
manifest() {
	local h=$BATS_TEST_TMPDIR/headers
	curl -sf -D "$h" -o "$BATS_TEST_TMPDIR/body" -H "Accept: $ACCEPT" "$1/v2/$2/manifests/$3"
	CONTENT_TYPE=$(awk -F': ' 'tolower($1) == "content-type" { print $2 }' "$h" | tr -d '\r')
	DIGEST=$(awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' "$h" | tr -d '\r')
}

@test "the registry is plain HTTP on loopback and stop/start are idempotent" {
	[[ $PLAIN =~ ^http://127\.0\.0\.1:[0-9]+$ ]]
	run "$FIX/registry.sh" start
	assert_success
	assert_output "$PLAIN"
	run "$FIX/registry.sh" status
	assert_success
	assert_output --regexp "^running $PLAIN pid [0-9]+$"
	run curl -sf "$PLAIN/v2/"
	assert_success
	assert_output '{}'
	grep -qx "  addr: ${PLAIN#http://}" "$BV_FIXTURE_DIR/registry/plain/config.yml"
	# A throw-away TLS variant: started, answered over https with its own CA, stopped by PID.
	run "$FIX/registry.sh" start --tls
	assert_success
	tls=$output
	[[ $tls =~ ^https://127\.0\.0\.1:[0-9]+$ ]]
	dir=$("$FIX/registry.sh" dir --tls)
	run curl -sf --cacert "$dir/tls/certs.d/ca.crt" "$tls/v2/"
	assert_success
	pid=$(<"$dir/registry.pid")
	"$FIX/registry.sh" stop --tls
	"$FIX/registry.sh" stop --tls
	# Gone, or a zombie nobody reaped yet (its parent, registry.sh, has exited).
	[[ ! -e /proc/$pid ]] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
	run "$FIX/registry.sh" status --tls
	assert_failure 1
	assert_output stopped
}

@test "every repository and tag is pushed" {
	run curl -sf "$PLAIN/v2/_catalog"
	assert_success
	assert_output '{"repositories":["biocontainers/bcftools","biocontainers/bwa","biocontainers/minimap2","biocontainers/samtools"]}'
	for t in $TOOL_IDS; do
		tag=${t}_TAG
		tag=${!tag}
		run bash -c "curl -sf '$PLAIN/v2/$NAMESPACE/$t/tags/list' | jq -r '.tags[]' | sort"
		assert_success
		expected=$(printf '%s\n' "$tag" "$tag-oci" "$tag-zstd")
		[[ $t != samtools ]] || expected=$(printf '%s\n' "$tag" "$tag-multiarch" "$tag-oci" "$tag-zstd")
		assert_output "$expected"
	done
	assert_equal "$samtools_TAG $bwa_TAG $minimap2_TAG $bcftools_TAG" \
		"1.16.1--debian 0.7.17--debian 2.24--debian 1.16--debian"
}

@test "each form has its media types: v2s2 gzip, OCI gzip, OCI zstd" {
	gz=application/vnd.docker.image.rootfs.diff.tar.gzip
	ogz=application/vnd.oci.image.layer.v1.tar+gzip
	ozst=application/vnd.oci.image.layer.v1.tar+zstd
	for t in $TOOL_IDS; do
		tag=${t}_TAG
		tag=${!tag}
		pushed "$NAMESPACE/$t" "$tag"
		assert_equal "$CONTENT_TYPE" "$V2S2"
		assert_equal "$(jq -j '.config.mediaType, " ", (.layers[].mediaType + " ")' "$BODY")" \
			"application/vnd.docker.container.image.v1+json $gz $gz "
		pushed "$NAMESPACE/$t" "$tag-oci"
		assert_equal "$CONTENT_TYPE" "$OCI_MANIFEST"
		assert_equal "$(jq -j '.config.mediaType, " ", (.layers[].mediaType + " ")' "$BODY")" \
			"application/vnd.oci.image.config.v1+json $ogz $ogz "
		pushed "$NAMESPACE/$t" "$tag-zstd"
		assert_equal "$CONTENT_TYPE" "$OCI_MANIFEST"
		assert_equal "$(jq -j '.config.mediaType, " ", (.layers[].mediaType + " ")' "$BODY")" \
			"application/vnd.oci.image.config.v1+json $ozst $ozst "
	done
	# A zstd blob really is zstd (magic 28 b5 2f fd), a gzip one gzip (1f 8b).
	pushed "$NAMESPACE/bwa" "$bwa_TAG-zstd"
	d=$(jq -r '.layers[1].digest' "$BODY")
	run bash -c "curl -sf '$PLAIN/v2/$NAMESPACE/bwa/blobs/$d' | head -c4 | od -An -tx1 | tr -d ' '"
	assert_output 28b52ffd
	run bash -c "curl -sf '$PLAIN/v2/$NAMESPACE/bwa/blobs/$bwa_LAYER' | head -c2 | od -An -tx1 | tr -d ' '"
	assert_output 1f8b
	# Without an OCI Accept the registry refuses the OCI manifest (what old clients see).
	run curl -s -o /dev/null -w '%{http_code}' -H "Accept: $V2S2" \
		"$PLAIN/v2/$NAMESPACE/bwa/manifests/$bwa_TAG-oci"
	assert_output 404
}

@test "the multi-platform index lists linux/amd64 and linux/arm64" {
	pushed "$NAMESPACE/samtools" "$samtools_TAG-multiarch"
	assert_equal "$CONTENT_TYPE" "$OCI_INDEX"
	run jq -r '.manifests[] | "\(.mediaType) \(.platform.os)/\(.platform.architecture)"' "$BODY"
	assert_output "$(printf '%s\n' "$OCI_MANIFEST linux/amd64" "$OCI_MANIFEST linux/arm64")"
	index=$BODY
	# amd64 is the very manifest of the -oci tag; arm64 is fetchable and says arm64.
	pushed "$NAMESPACE/samtools" "$samtools_TAG-oci"
	assert_equal "$(jq -r '.manifests[0].digest' "$index")" "$DIGEST"
	arm=$(jq -r '.manifests[1].digest' "$index")
	manifest "$PLAIN" "$NAMESPACE/samtools" "$arm"
	assert_equal "$DIGEST" "$arm"
	cfg=$(jq -r '.config.digest' "$BATS_TEST_TMPDIR/body")
	run bash -c "curl -sf '$PLAIN/v2/$NAMESPACE/samtools/blobs/$cfg' | jq -r '.os + \"/\" + .architecture'"
	assert_output linux/arm64
	run skopeo inspect --tls-verify=false --override-arch arm64 \
		"docker://${PLAIN#http://}/$NAMESPACE/samtools:$samtools_TAG-multiarch"
	assert_success
	assert_equal "$(jq -r .Architecture <<<"$output")" arm64
}

@test "all tool images share one base layer; each adds one layer of its own" {
	[[ $BASE_LAYER =~ ^sha256:[0-9a-f]{64}$ && $BASE_LAYER_ZSTD =~ ^sha256:[0-9a-f]{64}$ ]]
	seen=()
	for t in $TOOL_IDS; do
		tag=${t}_TAG
		tag=${!tag}
		layer=${t}_LAYER
		for form in "" -oci; do
			pushed "$NAMESPACE/$t" "$tag$form"
			assert_equal "$(jq -j '.layers[] | .digest + " "' "$BODY")" "$BASE_LAYER ${!layer} "
		done
		pushed "$NAMESPACE/$t" "$tag-zstd"
		run jq -j '.layers[] | .digest + " "' "$BODY"
		assert_output --regexp "^$BASE_LAYER_ZSTD sha256:[0-9a-f]{64} \$"
		seen+=("${!layer}" "${output#* }")
	done
	# Eight tool layers (gzip and zstd), all different, none of them a base layer.
	run bash -c "printf '%s\n' ${seen[*]} $BASE_LAYER $BASE_LAYER_ZSTD | sort -u | wc -l"
	assert_output 10
	# The stored blob is what its digest says.
	run bash -c "curl -sf '$PLAIN/v2/$NAMESPACE/minimap2/blobs/$BASE_LAYER' | sha256sum"
	assert_output "${BASE_LAYER#sha256:}  -"
}

@test "skopeo sees amd64 images with the tool as Cmd (no Entrypoint) and Debian labels" {
	run skopeo inspect --tls-verify=false "docker://${PLAIN#http://}/$NAMESPACE/bwa:$bwa_TAG"
	assert_success
	assert_equal "$(jq -r '.Os + "/" + .Architecture' <<<"$output")" linux/amd64
	assert_equal "$(jq -r '.Labels["org.opencontainers.image.version"]' <<<"$output")" 0.7.17
	assert_equal "$(jq -r '.Labels["io.bv.fixture.debian-version"]' <<<"$output")" "$bwa_DEBIAN"
	run skopeo inspect --tls-verify=false --config \
		"docker://${PLAIN#http://}/$NAMESPACE/samtools:$samtools_TAG-zstd"
	assert_success
	assert_equal "$(jq -c .config.Entrypoint <<<"$output")" null
	assert_equal "$(jq -c .config.Cmd <<<"$output")" '["/usr/bin/samtools"]'
}

@test "an image pulled back from the registry runs its tool" {
	# Layers straight from the registry into a directory (curl + tar; no umoci, no bv).
	rootfs=$BATS_TEST_TMPDIR/rootfs
	mkdir -p "$rootfs"
	pushed "$NAMESPACE/samtools" "$samtools_TAG"
	for d in $(jq -r '.layers[].digest' "$BODY"); do
		curl -sf "$PLAIN/v2/$NAMESPACE/samtools/blobs/$d" | tar -xzf - -C "$rootfs"
	done
	run unshare -r chroot "$rootfs" /usr/bin/samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	printf '@SQ\tSN:chr1\tLN:100\nr1\t0\tchr1\t5\t60\t4M\t*\t0\t0\tACGT\tIIII\n' >"$rootfs/tmp/in.sam"
	run unshare -r chroot "$rootfs" /bin/sh -c \
		'samtools view -b -o /tmp/out.bam /tmp/in.sam && samtools view /tmp/out.bam'
	assert_success
	assert_output --partial "r1	0	chr1	5	60	4M"
}

@test "the fixture bv-registry names the pushed images under quay.io" {
	refs=$(python3 -c 'import sys, tomllib
for f in sys.argv[1:]:
    t = tomllib.load(open(f, "rb"))["tool"]
    print(t["id"], t["version"], t["image"]["reference"])' "$FIX"/bv-registry/tools/*/*.toml)
	assert_equal "$(wc -l <<<"$refs")" 4
	while read -r id version ref; do
		[[ $ref == quay.io/$NAMESPACE/$id:*--debian ]]
		repo=${ref#quay.io/}
		tag=${repo##*:}
		repo=${repo%:*}
		up=${id}_VERSION
		# Debian's 1.16 is bv's 1.16.0; 1.16.1 stays.
		[[ $version == "${!up}" || $version == "${!up}.0" ]]
		assert_equal "$tag" "${!up}--debian"
		pushed "$repo" "$tag"
	done <<<"$refs"
	run bash -c "ls '$FIX'/bv-registry/tools | tr '\n' ' '"
	assert_output "bcftools bwa minimap2 samtools "
}

@test "basic auth: anonymous and wrong passwords are refused, testuser can push and pull" {
	run curl -s -D - -o /dev/null "$BASIC/v2/"
	assert_line --partial "401 Unauthorized"
	assert_line --regexp '^[Ww]ww-[Aa]uthenticate: Basic realm="bv-fixture"'
	run curl -s -o /dev/null -w '%{http_code}' -u testuser:wrong "$BASIC/v2/"
	assert_output 401
	run curl -s -o /dev/null -w '%{http_code}' -u testuser:testpass "$BASIC/v2/"
	assert_output 200
	run skopeo copy -q --dest-tls-verify=false "oci:$IMAGES/oci:bwa" \
		"docker://${BASIC#http://}/$NAMESPACE/bwa:anon"
	assert_failure
	run skopeo copy -q --dest-tls-verify=false --dest-creds testuser:testpass \
		"oci:$IMAGES/oci:bwa" "docker://${BASIC#http://}/$NAMESPACE/bwa:$bwa_TAG"
	assert_success
	run curl -s -o /dev/null -w '%{http_code}' -u testuser:testpass -H "Accept: $ACCEPT" \
		"$BASIC/v2/$NAMESPACE/bwa/manifests/$bwa_TAG"
	assert_output 200
}

@test "token auth: 401 with a Bearer challenge, anonymous pull token, testuser push token" {
	run curl -s -D - -o /dev/null "$TOKEN/v2/"
	assert_line --partial "401 Unauthorized"
	challenge=$(grep -i '^www-authenticate:' <<<"$output" | tr -d '\r')
	[[ $challenge =~ Bearer\ realm=\"(http://127\.0\.0\.1:[0-9]+/token)\",service=\"([^\"]+)\" ]]
	realm=${BASH_REMATCH[1]} service=${BASH_REMATCH[2]}
	scope="repository:$NAMESPACE/bwa:pull,push"

	# Anonymous: a token that grants pull only.
	run curl -sf "$realm?service=$service&scope=$scope"
	assert_success
	anon=$(jq -r .token <<<"$output")
	run bash -c "cut -d. -f2 <<<'$anon' | tr '_-' '/+' | base64 -d 2>/dev/null | jq -c .access"
	assert_output "[{\"type\":\"repository\",\"name\":\"$NAMESPACE/bwa\",\"actions\":[\"pull\"]}]"
	run curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $anon" "$TOKEN/v2/"
	assert_output 200
	run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $anon" \
		"$TOKEN/v2/$NAMESPACE/bwa/blobs/uploads/"
	assert_output 401

	# Wrong password: no token at all.
	run curl -s -o /dev/null -w '%{http_code}' -u testuser:wrong "$realm?service=$service"
	assert_output 401

	# testuser pushes with skopeo (which runs the whole token dance itself) ...
	run skopeo copy -q --dest-tls-verify=false --dest-creds testuser:testpass \
		"oci:$IMAGES/oci:bwa" "docker://${TOKEN#http://}/$NAMESPACE/bwa:$bwa_TAG"
	assert_success
	run curl -sf -u testuser:testpass "$realm?service=$service&scope=$scope"
	user=$(jq -r .token <<<"$output")
	run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $user" \
		"$TOKEN/v2/$NAMESPACE/bwa/blobs/uploads/"
	assert_output 202
	# ... and anyone can pull what was pushed, with a token but not without.
	run curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" \
		"$TOKEN/v2/$NAMESPACE/bwa/manifests/$bwa_TAG"
	assert_output 401
	run curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" \
		-H "Authorization: Bearer $anon" "$TOKEN/v2/$NAMESPACE/bwa/manifests/$bwa_TAG"
	assert_output 200
	run skopeo inspect --tls-verify=false --raw "docker://${TOKEN#http://}/$NAMESPACE/bwa:$bwa_TAG"
	assert_success
	assert_equal "$(jq -r '.layers[0].digest' <<<"$output")" "$BASE_LAYER"
}
