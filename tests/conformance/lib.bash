# Helpers of t0100-conformance.bats: the same image through bv (native backend), the private
# dockerd of tests/fixtures/dockerd.sh and umoci --rootless, from the loopback registry.
# Sourced after tests/e2e/lib/common.bash.
# shellcheck disable=SC2154 # status and output are set by bats' run

CONF_DIR=$BV_SOURCE_DIR/tests/conformance
# The probe every run executes, as `sh -c PROBE` (after the image's Entrypoint, if any).
# Sections start with "== NAME"; runcmp.py compares them with its rules.
# shellcheck disable=SC2016 # expanded inside the container
CONF_PROBE='echo "== env"; env | sort; echo "== id"; id; echo "== pwd"; pwd
echo "== passwd"; cat /etc/passwd
echo "== mounts"
for p in /proc/self/status /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/shm /sys/kernel /tmp; do
	if [ -e "$p" ]; then echo "$p present"; else echo "$p MISSING"; fi
done
if [ -c /dev/tty ]; then echo "/dev/tty char-device"; else echo "/dev/tty MISSING"; fi
echo "== devio"
head -c 4 /dev/zero | od -An -tx1
echo x >/dev/null && echo "write /dev/null ok"
(echo x >/dev/full) 2>/dev/null || echo "write /dev/full fails"
head -c 16 /dev/urandom | wc -c; head -c 16 /dev/random | wc -c
grep -q "^Name:" /proc/self/status && echo "/proc/self/status readable"
echo tmp-writable >/tmp/.probe && cat /tmp/.probe && rm /tmp/.probe
[ -d /dev/shm ] && echo shm-writable >/dev/shm/.probe && cat /dev/shm/.probe && rm /dev/shm/.probe
echo "== end"'

# conf_setup_file: registry, dockerd, the corpus pushed; a bv registry with one tool per
# image.  Exports ADDR, DOCKER_HOST, CONF_REGISTRY, CONF_LIST and the PIDs started here.
conf_setup_file() {
	export BV_FIXTURE_DIR="${BV_FIXTURE_DIR:-$BV_BUILD_DIR/fixtures}"
	local f=$BV_SOURCE_DIR/tests/fixtures
	CONF_STARTED_REGISTRY=0 CONF_STARTED_DOCKERD=0
	"$f/registry.sh" status >/dev/null 2>&1 || CONF_STARTED_REGISTRY=1
	"$f/registry.sh" start >/dev/null
	"$f/dockerd.sh" status >/dev/null 2>&1 || CONF_STARTED_DOCKERD=1
	DOCKER_HOST=unix://$("$f/dockerd.sh" start)
	ADDR=$("$f/registry.sh" addr)
	ADDR=${ADDR#http://}
	export ADDR DOCKER_HOST CONF_STARTED_REGISTRY CONF_STARTED_DOCKERD
	"$CONF_DIR/build-corpus.sh" push --registry "$ADDR" >/dev/null
	CONF_LIST=$BATS_FILE_TMPDIR/corpus.tsv
	"$CONF_DIR/build-corpus.sh" list >"$CONF_LIST"
	CONF_REGISTRY=$BATS_FILE_TMPDIR/bv-registry
	export CONF_LIST CONF_REGISTRY
	conf_bv_registry "$CONF_REGISTRY"
}

# conf_teardown_file: stops what conf_setup_file started (by the PID files of the fixture
# scripts, which check the command line before signalling).
conf_teardown_file() {
	local f=$BV_SOURCE_DIR/tests/fixtures
	if [[ ${CONF_STARTED_DOCKERD:-0} == 1 ]]; then
		"$f/dockerd.sh" stop >/dev/null 2>&1 || true
	else
		# shellcheck disable=SC2046 # one image id per word
		docker_cli rmi -f $(docker_cli images -q "$ADDR/conformance/*" 2>/dev/null | sort -u) \
			>/dev/null 2>&1 || true
	fi
	[[ ${CONF_STARTED_REGISTRY:-0} != 1 ]] || "$f/registry.sh" stop >/dev/null 2>&1 || true
}

docker_cli() {
	/usr/bin/docker "$@"
}

# conf_bv_registry DIR: tools/<image>/1.0.0.toml per image of the corpus, exposing the
# image's sh and echo; the manifest command is sh.
conf_bv_registry() {
	local dir=$1 name
	mkdir -p "$dir/tools"
	cp "$BV_SOURCE_DIR/tests/fixtures/bv-registry/types.toml" "$dir/"
	while IFS=$'\t' read -r name _; do
		mkdir -p "$dir/tools/$name"
		cat >"$dir/tools/$name/1.0.0.toml" <<TOML
[tool]
id = "$name"
version = "1.0.0"
description = "Conformance image $name (tests/conformance/CASES.md)"
homepage = "https://example.invalid/conformance"
license = "MIT"
tier = "core"
maintainers = ["github:bv"]

[tool.image]
backend = "docker"
reference = "quay.io/conformance/$name:1"

[tool.hardware]
cpu_cores = 1
ram_gb = 1.0
disk_gb = 1.0

[tool.entrypoint]
command = "sh"

[tool.binaries]
exposed = ["sh", "echo"]
TOML
	done <"$CONF_LIST"
	python3 - "$dir" "$CONF_LIST" <<'EOF'
import json, sys
d, lst = sys.argv[1:3]
tools = []
for line in open(lst):
    name = line.split("\t")[0]
    tools.append({"id": name, "version": "1.0.0", "versions": ["1.0.0"],
                  "description": f"Conformance image {name} (tests/conformance/CASES.md)",
                  "tier": "core", "maintainers": ["github:bv"],
                  "homepage": "https://example.invalid/conformance", "license": "MIT",
                  "input_types": [], "output_types": [], "deprecated": False})
json.dump({"schema_version": 1, "generated_at": "2026-12-06T00:00:00+00:00",
           "tools": tools}, open(d + "/index.json", "w"), indent=2)
EOF
}

# conf_field NAME N: column N of the image's line in corpus.tsv (2 builder, 3 docker, 4 case)
conf_field() {
	awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$CONF_LIST"
}

# conf_bv_add NAME: a project with the image's tool, its own cache; sets PROJ, BVCACHE,
# DIGEST (bv.lock's image_digest) and ROOTFS (bv's unpacked root file system).
conf_bv_add() {
	local name=$1 out
	PROJ=$BATS_TEST_TMPDIR/proj
	BVCACHE=$BATS_TEST_TMPDIR/bvcache
	export BV_CACHE_DIR=$BVCACHE BV_REGISTRY=$CONF_REGISTRY BV_MIRRORS="quay.io=$ADDR"
	mkdir -p "$PROJ"
	cd "$PROJ" || return 1
	bv init "conf-$name" >/dev/null 2>&1
	# the probe tool exposes the image's sh and echo, which bv refuses without this
	printf '\n[binary_overrides]\nsh = "%s"\necho = "%s"\n' "$name" "$name" >>bv.toml
	out=$(bv add "$name" 2>&1) || {
		echo "bv add $name failed:"
		echo "$out"
		return 1
	}
	DIGEST=$(sed -n 's/^image_digest = "\(sha256:[0-9a-f]*\)"$/\1/p' bv.lock)
	[[ -n $DIGEST ]] || {
		echo "no image_digest in bv.lock"
		return 1
	}
	ROOTFS=$(find "$BVCACHE/rootfs" -mindepth 1 -maxdepth 1 -type d | head -n1)
	[[ -d $ROOTFS ]] || {
		echo "bv left no root file system under $BVCACHE/rootfs"
		return 1
	}
}

# conf_docker_pull NAME: the image by bv.lock's digest into the private dockerd; sets DREF.
conf_docker_pull() {
	DREF=$ADDR/conformance/$1@$DIGEST
	docker_cli pull -q "$DREF" >/dev/null
}

# conf_umoci NAME DIR: umoci unpack --rootless of the digest bv locked (skopeo copies it into
# an OCI layout first; zstd layers are recompressed with gzip there, because umoci 0.4.7
# refuses zstd: the uncompressed layer contents, the diff_ids, are unchanged).
conf_umoci() {
	local name=$1 dir=$2 compress=()
	mkdir -p "$dir"
	skopeo inspect --raw --tls-verify=false "docker://$ADDR/conformance/$name@$DIGEST" |
		grep -q 'tar+zstd' && compress=(--dest-compress --dest-compress-format gzip)
	skopeo copy -q --src-tls-verify=false "${compress[@]}" "docker://$ADDR/conformance/$name@$DIGEST" \
		"oci:$dir/oci:img" >/dev/null
	umoci unpack --rootless --image "$dir/oci:img" "$dir/bundle" >/dev/null
}

# conf_prepare NAME: bv add of the image, once per file (the project and the cache live in
# $BATS_FILE_TMPDIR/img/NAME, so the three tests of an image share one pull); sets PROJ,
# BVCACHE, DIGEST, ROOTFS and exports BV_CACHE_DIR, BV_REGISTRY, BV_MIRRORS.
conf_prepare() {
	local name=$1 d=$BATS_FILE_TMPDIR/img/$1
	if [[ ! -f $d/done ]]; then
		rm -rf "$d"
		mkdir -p "$d"
		(BATS_TEST_TMPDIR=$d conf_bv_add "$name" && printf '%s\n' "$DIGEST" >"$d/digest") ||
			return 1
		touch "$d/done"
	fi
	PROJ=$d/proj BVCACHE=$d/bvcache DIGEST=$(cat "$d/digest")
	export BV_CACHE_DIR=$BVCACHE BV_REGISTRY=$CONF_REGISTRY BV_MIRRORS="quay.io=$ADDR"
	ROOTFS=$(find "$BVCACHE/rootfs" -mindepth 1 -maxdepth 1 -type d | head -n1)
	cd "$PROJ" || return 1
}

conf_docker_can() {
	[[ $(conf_field "$1" 3) == yes ]]
}

# conf_tree_docker NAME: bv's root file system against `docker export` of a created container
conf_tree_docker() {
	local name=$1 cid
	conf_prepare "$name"
	if ! conf_docker_can "$name"; then
		# the premise is checked, not assumed: docker 20.10 really refuses this image
		run docker_cli pull -q "$ADDR/conformance/$name@$DIGEST"
		assert_failure
		echo "# docker cannot pull $name ($output); its tree is compared with umoci (GNU tar for t-sparse-gnu) only" >&3
		return 0
	fi
	conf_docker_pull "$name"
	cid=$(docker_cli create "$DREF" sh)
	docker_cli export "$cid" >"$BATS_TEST_TMPDIR/export.tar"
	docker_cli rm "$cid" >/dev/null
	run python3 "$CONF_DIR/treecmp.py" --bv-a --rootless-a --readonly-a --docker-b \
		"$ROOTFS" "$BATS_TEST_TMPDIR/export.tar"
	assert_success
}

# Where umoci 0.4.7 itself departs from Docker, the exact difference is expected (and checked:
# the comparison must print exactly these lines, so bv following umoci fails too):
#   U4 t-opaque-symlink: umoci resolves the whiteouts' parent data/link through the lower
#      layer's symlink and applies the opaque whiteout to data/real; Docker (and bv) replace
#      the symlink data/link with a new directory.
#   U6 t-hardlink-mode: umoci ignores the mode of a hard-link entry; Docker (and bv) apply it
#      to the shared inode, so hm/file and hm/link are 0644 (0444 read-only in bv), not 0640.
conf_umoci_expected() {
	case $1 in
	t-hardlink-mode)
		printf '%s\n' "/hm/file: mode: 0444 != 0440" "/hm/link: mode: 0444 != 0440"
		;;
	t-opaque-symlink)
		printf '%s\n' "/data/link: type: dir != symlink" "/data/link/new: only in A (file)" \
			"/data/real/keep: only in A (file)" "/data/real/new: only in B (file)" \
			"/data/real/old: only in A (file)"
		;;
	esac
}

# conf_gnutar NAME DIR: the layers extracted in order by GNU tar into DIR/rootfs, for images
# with no whiteouts that umoci cannot unpack (U5: umoci 0.4.7 refuses the old GNU sparse type
# 'S' with "unknown typeflag '\x53'"; that is checked).
conf_gnutar() {
	local name=$1 dir=$2 blob
	mkdir -p "$dir/rootfs"
	skopeo copy -q --src-tls-verify=false "docker://$ADDR/conformance/$name@$DIGEST" "oci:$dir/oci:img"
	run umoci unpack --rootless --image "$dir/oci:img" "$dir/bundle"
	assert_failure
	assert_output --partial "unknown typeflag '\x53'"
	for blob in $(python3 "$CONF_DIR/layers.py" "$dir/oci"); do
		tar --numeric-owner -xzf "$dir/oci/blobs/sha256/$blob" -C "$dir/rootfs"
	done
}

# conf_tree_umoci NAME: bv's root file system against umoci unpack --rootless
conf_tree_umoci() {
	local name=$1 ref=$BATS_TEST_TMPDIR/umoci/bundle/rootfs
	conf_prepare "$name"
	if [[ $name == t-sparse-gnu ]]; then
		conf_gnutar "$name" "$BATS_TEST_TMPDIR/gnutar"
		ref=$BATS_TEST_TMPDIR/gnutar/rootfs
		echo "# umoci cannot unpack $name (U5): compared with GNU tar's extraction" >&3
	else
		conf_umoci "$name" "$BATS_TEST_TMPDIR/umoci"
	fi
	run python3 "$CONF_DIR/treecmp.py" --quiet --bv-a --rootless-a --readonly-a --umoci-b \
		"$ROOTFS" "$ref"
	if [[ -n $(conf_umoci_expected "$name") ]]; then
		assert_failure 1
		assert_output "$(conf_umoci_expected "$name")"
	else
		assert_success
	fi
}

# conf_runs NAME: the probe through docker run and bv run (native), compared by runcmp.py
conf_runs() {
	local name=$1 ds=- bs dout=-
	conf_prepare "$name"
	skopeo inspect --config --tls-verify=false "docker://$ADDR/conformance/$name@$DIGEST" \
		>"$BATS_TEST_TMPDIR/config.json"
	if conf_docker_can "$name"; then
		conf_docker_pull "$name"
		dout=$BATS_TEST_TMPDIR/docker.out
		ds=0
		docker_cli run --rm --network none "$DREF" sh -c "$CONF_PROBE" \
			>"$dout" 2>"$BATS_TEST_TMPDIR/docker.err" </dev/null || ds=$?
	else
		echo "# docker cannot pull $name: bv's run is checked against the rules only" >&3
	fi
	bs=0
	# docker run passes none of the caller's variables; bv run passes the terminal, locale
	# and thread counts on purpose (README, "Running tools"): compare without them
	local -a unset_passthrough=()
	local v
	for v in $(compgen -e); do
		[[ $v =~ ^(TERM|COLORTERM|NO_COLOR|LANG|LANGUAGE|TZ|LC_.*|.*_NUM_THREADS|VECLIB_MAXIMUM_THREADS|BV_PASS_ENV)$ ]] &&
			unset_passthrough+=(-u "$v")
	done
	env "${unset_passthrough[@]}" "$BV" run --backend native sh -c "$CONF_PROBE" \
		>"$BATS_TEST_TMPDIR/bv.out" 2>"$BATS_TEST_TMPDIR/bv.err" </dev/null || bs=$?
	run python3 "$CONF_DIR/runcmp.py" "$BATS_TEST_TMPDIR/config.json" "$dout" "$ds" \
		"$BATS_TEST_TMPDIR/bv.out" "$bs"
	if [[ $status != 0 ]]; then
		echo "bv stderr: $(head -c 2000 "$BATS_TEST_TMPDIR/bv.err")"
		[[ $dout == - ]] || echo "docker stderr: $(head -c 2000 "$BATS_TEST_TMPDIR/docker.err")"
	fi
	assert_success
}

# conf_tty NAME: under a pseudo-terminal (util-linux script), bv run can open /dev/tty, and it
# is the terminal the run was given (M1's /dev/tty, checked where a terminal exists).
conf_tty() {
	local name=$1
	conf_prepare "$name"
	# shellcheck disable=SC2016 # expanded in the container
	run script -qec "$BV run --backend native sh -c 'test -t 0 && echo via-tty >/dev/tty && echo tty-ok'" /dev/null </dev/null
	assert_success
	assert_output --partial via-tty
	assert_output --partial tty-ok
}

# conf_cmd NAME: the resolved Entrypoint/Cmd combination.  Docker's rule is Entrypoint +
# arguments, or Entrypoint + Cmd without arguments.  By design (rule C1) `bv run` always
# gives a command: the binary's name and its arguments, or for `bv run TOOL` the manifest's
# entrypoint command (here "sh"), so the image's Cmd is never run by bv.  Checked:
#   bv run echo c1 "a  b"   ==  docker run IMAGE echo c1 "a  b"   (output and status)
#   bv run TOOL             ==  docker run IMAGE sh                (stdin empty)
# and Docker's own no-argument run is recorded in the test output for the reader.
conf_cmd() {
	local name=$1 ds bs dout bout
	conf_prepare "$name"
	conf_docker_pull "$name"
	ds=0 bs=0
	dout=$(docker_cli run --rm --network none "$DREF" echo c1 "a  b" 2>&1 </dev/null) || ds=$?
	bout=$(bv run --backend native echo c1 "a  b" 2>&1 </dev/null) || bs=$?
	[[ $ds == "$bs" ]] || fail "echo: docker status $ds != bv status $bs"
	[[ $dout == "$bout" ]] || fail "echo: docker printed '$dout', bv printed '$bout'"
	ds=0 bs=0
	dout=$(docker_cli run --rm --network none "$DREF" sh 2>&1 </dev/null) || ds=$?
	bout=$(bv run --backend native "$name" 2>&1 </dev/null) || bs=$?
	[[ $ds == "$bs" ]] || fail "C1: docker run IMAGE sh: status $ds != bv run $name: $bs"
	[[ $dout == "$bout" ]] || fail "C1: docker run IMAGE sh printed '$dout', bv run $name '$bout'"
	ds=0
	dout=$(docker_cli run --rm --network none "$DREF" 2>&1 </dev/null) || ds=$?
	printf 'docker run IMAGE without arguments: status %s, output:\n%s\n' "$ds" "$dout" |
		sed 's/^/# /' >&3
}
