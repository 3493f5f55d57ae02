#!/bin/bash
# make bench, pulls: bv against skopeo + umoci and podman on the same images, measured in one
# run against the loopback fixture registry, printed side by side with ratios.
#   scripts/bench-pull.sh <builddir>
#
# 1. cold `bv sync` of a project locking samtools, bwa, minimap2 and bcftools (an empty
#    BV_CACHE_DIR every run), against a shell script doing `skopeo copy` + `umoci unpack
#    --rootless` of the four images into a fresh dir, and against `podman pull` of the four
#    into a fresh private storage root; hyperfine medians, ratio peer/bv (>1: bv is faster)
# 2. warm `bv sync` (everything present)
# 3. peak RSS and wall time of `bv add` of an image with a 220 MiB uncompressed layer, built
#    here without bv (OCI layout written by hand, pushed by skopeo)
#
# The fixture registry (tests/fixtures/registry.sh, state in $BV_FIXTURE_DIR, default
# <builddir>/fixtures) is started if it is not running and stopped at the end only if this
# script started it. BENCH_PULL_RUNS (default 5) sets the timed runs of the cold benchmarks.
set -euo pipefail

build=${1:?usage: scripts/bench-pull.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}
runs=${BENCH_PULL_RUNS:-5}
big_mib=220
images=(samtools:1.16.1--debian bwa:0.7.17--debian minimap2:2.24--debian bcftools:1.16--debian)

die() {
	echo "bench-pull: $*" >&2
	exit 1
}

for c in hyperfine skopeo umoci jq openssl python3 /usr/bin/time; do
	command -v "$c" >/dev/null || die "'$c' is missing (scripts/deps.sh)"
done
[[ -x $bv_bin ]] || die "$bv_bin is missing (ninja -C $build)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-pull.XXXXXX")
started_registry=false
cleanup() {
	if $started_registry; then
		"$fixtures/registry.sh" stop >/dev/null 2>&1 || true
	fi
	if [[ -d $tmp/podman ]]; then
		if [[ $(id -u) -eq 0 ]]; then
			# podman may bind-mount its storage dir; a killed podman leaves the mount
			# behind. Only mounts inside our own tmp dir are touched.
			awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
				sort -r | while read -r m; do umount "$m" || true; done
		elif command -v podman >/dev/null; then
			# Rootless podman leaves files owned by sub-uids.
			podman unshare rm -rf "$tmp/podman" 2>/dev/null || true
		fi
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The commands below are strings that hyperfine -N splits at blanks.
[[ $tmp != *[[:space:]]* ]] || die "the temporary dir '$tmp' contains blanks"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.1f", b / a; else print "inf" }'; }

# hf_median_ms NAME HYPERFINE-ARGS...: the median in ms of a hyperfine run without a shell;
# prints nothing (and leaves hyperfine's complaint in $tmp/NAME.err) when it fails.
hf_median_ms() {
	local name=$1
	shift
	hyperfine -N --style none --export-json "$tmp/$name.json" "$@" >/dev/null 2>"$tmp/$name.err" ||
		return 0
	python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' \
		"$tmp/$name.json"
}

# first_error FILE: the line of FILE most likely to say what went wrong, shortened.
first_error() {
	{ grep -m1 -i -e 'error' -e 'fatal' -e 'denied' -e 'not permitted' "$1" || head -n1 "$1"; } |
		cut -c1-110
}

# cold NAME DIR COMMAND: one checked run of COMMAND from an empty DIR (it also warms the page
# cache and the registry), then the timed runs, each after removing DIR and flushing the
# previous run's writes. Prints the median in ms, or nothing when the checked run fails (its
# stderr is then in $tmp/NAME.err).
cold() {
	local name=$1 dir=$2 cmd=$3 rm="rm -rf" prep
	if [[ $name == podman && $(id -u) -ne 0 ]]; then
		rm="podman unshare rm -rf"
	fi
	prep="sh -c '$rm $dir && sync'"
	eval "$prep"
	# shellcheck disable=SC2086 # split at blanks, as hyperfine -N does
	$cmd >/dev/null 2>"$tmp/$name.err" || return 0
	hf_median_ms "$name" --prepare "$prep" -r "$runs" "$cmd"
}

# ---- fixtures --------------------------------------------------------------------------------

if ! "$fixtures/registry.sh" status >/dev/null; then
	"$fixtures/registry.sh" start >/dev/null
	started_registry=true
fi
addr=$("$fixtures/registry.sh" addr)
"$fixtures/images.sh" push >/dev/null 2>"$tmp/push.err" || {
	cat "$tmp/push.err" >&2
	die "tests/fixtures/images.sh push failed"
}

# A writable copy of the fixture bv-registry; part 3 adds bigdata to it.
cp -r "$fixtures/bv-registry" "$tmp/bv-registry"
export BV_REGISTRY=$tmp/bv-registry BV_MIRRORS="quay.io=$addr"
unset BV_CACHE_DIR

tools=()
for i in "${images[@]}"; do tools+=("${i%%:*}"); done
mkdir -p "$tmp/proj"
(
	cd "$tmp/proj"
	"$bv_bin" init bench >/dev/null 2>&1
	BV_CACHE_DIR=$tmp/add-cache "$bv_bin" add "${tools[@]}" >"$tmp/add.out" 2>&1
) || {
	cat "$tmp/add.out" >&2
	die "bv add ${tools[*]} failed"
}
rm -rf "$tmp/add-cache"

# ---- 1. cold pulls ---------------------------------------------------------------------------

bv_cold=$(cd "$tmp/proj" && BV_CACHE_DIR=$tmp/cache cold bv-cold "$tmp/cache" "$bv_bin sync")
[[ -n $bv_cold ]] || die "cold bv sync failed: $(first_error "$tmp/bv-cold.err")"
[[ -x $(echo "$tmp"/cache/rootfs/*/usr/bin/samtools) ]] || die "bv sync did not unpack samtools"

# (a) what a user does without bv: copy each image into one OCI layout, unpack each.
# shellcheck disable=SC2016 # $1 is the generated script's argument
{
	printf '#!/bin/sh\nset -eu\nmkdir -p "$1"\n'
	for i in "${images[@]}"; do
		printf 'skopeo copy -q --src-tls-verify=false docker://%s/biocontainers/%s "oci:$1/oci:%s"\n' \
			"$addr" "$i" "${i%%:*}"
		printf 'umoci unpack --rootless --image "$1/oci:%s" "$1/%s" >/dev/null\n' "${i%%:*}" "${i%%:*}"
	done
} >"$tmp/skopeo-umoci.sh"
su_cell=- su_ratio=- su_reason=""
su_cold=$(cold skopeo-umoci "$tmp/su" "sh $tmp/skopeo-umoci.sh $tmp/su")
if [[ -n $su_cold ]]; then
	[[ -x $tmp/su/samtools/rootfs/usr/bin/samtools ]] || die "skopeo + umoci did not unpack samtools"
	su_cell=$su_cold su_ratio=$(ratio "$bv_cold" "$su_cold")x
else
	su_reason="skopeo + umoci failed: $(first_error "$tmp/skopeo-umoci.err")"
fi

# (b) podman, with a private storage root and the limits this machine needs (machine.md).
# skip_mount_home: no bind mount of the storage dir, which a killed podman would leave behind.
pm_cell=- pm_ratio=- pm_reason="" pm_driver=""
if ! command -v podman >/dev/null; then
	pm_reason="podman is not installed (scripts/deps.sh)"
else
	printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' '' \
		'[engine]' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' >"$tmp/containers.conf"
	printf '%s\n' '[storage]' 'driver = "overlay"' "graphroot = \"$tmp/podman/root\"" \
		"runroot = \"$tmp/podman/run\"" '' '[storage.options.overlay]' 'skip_mount_home = "true"' \
		>"$tmp/storage.conf"
	export CONTAINERS_CONF=$tmp/containers.conf CONTAINERS_STORAGE_CONF=$tmp/storage.conf
	pm="podman --root $tmp/podman/root --runroot $tmp/podman/run"
	refs=()
	for i in "${images[@]}"; do refs+=("$addr/biocontainers/$i"); done
	# shellcheck disable=SC2086 # split at blanks, as hyperfine -N does
	if ! pm_driver=$($pm info --format '{{.Store.GraphDriverName}}' 2>"$tmp/podman-info.err"); then
		pm_reason="podman cannot run here: $(first_error "$tmp/podman-info.err")"
	else
		pm_cold=$(cold podman "$tmp/podman" "$pm pull -q --tls-verify=false ${refs[*]}")
		if [[ -n $pm_cold ]]; then
			pm_cell=$pm_cold pm_ratio=$(ratio "$bv_cold" "$pm_cold")x
		else
			pm_reason="podman pull failed: $(first_error "$tmp/podman.err")"
		fi
	fi
fi

# ---- 2. warm sync ----------------------------------------------------------------------------

out=$(cd "$tmp/proj" && BV_CACHE_DIR=$tmp/cache "$bv_bin" sync 2>&1)
[[ $out == "Everything is up to date"* ]] || die "a second bv sync still did work: $out"
bv_warm=$(cd "$tmp/proj" && BV_CACHE_DIR=$tmp/cache hf_median_ms bv-warm -w 3 -r 41 "$bv_bin sync")
[[ -n $bv_warm ]] || die "warm bv sync failed: $(first_error "$tmp/bv-warm.err")"

# ---- 3. one big layer ------------------------------------------------------------------------

# The image is the fixtures' base (busybox, so "sh" exists) plus one uncompressed layer holding
# a file of pseudo-random bytes. The bytes are an AES-CTR keystream with a fixed key rather
# than /dev/urandom: just as incompressible, but the same every run, so the registry (which
# keeps its data across runs and never garbage-collects) stores the blob once, not per run.
blob() { printf '%s/blobs/sha256/%s' "$1" "${2#sha256:}"; }
src=$("$fixtures/images.sh" path)/oci
oci=$tmp/bigdata-oci
mkdir -p "$oci/blobs/sha256" "$tmp/bigdata-root/data"
base=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "base") | .digest' \
	"$src/index.json")
[[ $base == sha256:* ]] || die "no base image in $src"
base_manifest=$(blob "$src" "$base")
for d in $(jq -r '.config.digest, .layers[].digest' "$base_manifest"); do
	cp "$(blob "$src" "$d")" "$(blob "$oci" "$d")"
done
head -c "$((big_mib * 1024 * 1024))" /dev/zero |
	openssl enc -aes-128-ctr -K 62762d62656e63682d70756c6c2d3031 -iv 00000000000000000000000000000000 \
		>"$tmp/bigdata-root/data/random.bin"
tar --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX \
	-C "$tmp/bigdata-root" -cf "$tmp/layer.tar" data
rm -rf "$tmp/bigdata-root"

# add_blob FILE: moves FILE into the layout and prints "digest size".
add_blob() {
	local d
	d=sha256:$(sha256sum <"$1" | cut -d' ' -f1)
	printf '%s %s\n' "$d" "$(stat -c %s "$1")"
	mv "$1" "$(blob "$oci" "$d")"
}
read -r layer layer_size < <(add_blob "$tmp/layer.tar")
jq -c --arg d "$layer" '.rootfs.diff_ids += [$d]
	| if .history then .history += [{"created_by": "bench-pull.sh: pseudo-random bytes"}] else . end' \
	"$(blob "$src" "$(jq -r .config.digest "$base_manifest")")" >"$tmp/config.json"
read -r cfg cfg_size < <(add_blob "$tmp/config.json")
jq -c --arg cfg "$cfg" --argjson cfg_size "$cfg_size" --arg l "$layer" --argjson l_size "$layer_size" '{
	schemaVersion: 2,
	mediaType: "application/vnd.oci.image.manifest.v1+json",
	config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cfg, size: $cfg_size},
	layers: (.layers + [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $l_size}])
}' "$base_manifest" >"$tmp/manifest.json"
read -r man man_size < <(add_blob "$tmp/manifest.json")
jq -n -c --arg d "$man" --argjson s "$man_size" '{schemaVersion: 2, manifests: [{
	mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
	annotations: {"org.opencontainers.image.ref.name": "bench"}}]}' >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"

# --preserve-digests keeps the layer uncompressed (skopeo would gzip it for a registry).
big_ref=$addr/biocontainers/bigdata:1.0--bench
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$oci:bench" "docker://$big_ref" \
	2>"$tmp/skopeo-big.err" || {
	cat "$tmp/skopeo-big.err" >&2
	die "skopeo could not push the bigdata image"
}
rm -rf "$oci"
pushed=$(skopeo inspect --raw --tls-verify=false "docker://$big_ref" | jq -r '.layers[-1].mediaType')
[[ $pushed == application/vnd.oci.image.layer.v1.tar ]] || die "the big layer was pushed as $pushed"

mkdir -p "$tmp/bv-registry/tools/bigdata" "$tmp/big"
cat >"$tmp/bv-registry/tools/bigdata/1.0.0.toml" <<'TOML'
# Benchmark manifest written by scripts/bench-pull.sh: the fixtures' busybox base plus one
# uncompressed 220 MiB layer of pseudo-random bytes, pushed as biocontainers/bigdata:1.0--bench.
[tool]
id = "bigdata"
version = "1.0.0"
description = "Benchmark image with one large incompressible layer"
homepage = "https://example.org/bv-bench"
license = "MIT"
tier = "experimental"
maintainers = ["github:bv-bench"]

[[tool.inputs]]
name = "script"
type = "file"
cardinality = "optional"
description = "Shell commands to run"

[tool.image]
backend = "docker"
reference = "quay.io/biocontainers/bigdata:1.0--bench"

[tool.hardware]
cpu_cores = 1
ram_gb = 1.0
disk_gb = 1.0

[tool.entrypoint]
command = "sh"

[tool.binaries]
exposed = ["sh"]
TOML
(
	cd "$tmp/big"
	"$bv_bin" init big >/dev/null 2>&1
	sync
	BV_CACHE_DIR=$tmp/big-cache /usr/bin/time -f '%M %e' -o "$tmp/big.time" \
		"$bv_bin" add bigdata >"$tmp/big.out" 2>&1
) || {
	cat "$tmp/big.out" >&2
	die "bv add bigdata failed"
}
read -r big_kib big_s <"$tmp/big.time"
got=$(stat -c %s "$(echo "$tmp"/big-cache/rootfs/*/data/random.bin)" 2>/dev/null || echo 0)
[[ $got -eq $((big_mib * 1024 * 1024)) ]] || die "bv add bigdata did not unpack data/random.bin ($got bytes)"
big_rss=$(awk -v k="$big_kib" 'BEGIN { printf "%.1f", k / 1024 }')

# ---- the table -------------------------------------------------------------------------------

row() { printf '%-58s %10s %10s %8s\n' "$@"; }
row "benchmark (median of $runs, 4 tools, cold)" "bv (ms)" "peer (ms)" "peer/bv"
row "bv sync vs skopeo copy + umoci unpack, sequential" "$bv_cold" "$su_cell" "$su_ratio"
row "bv sync vs podman pull${pm_driver:+ ($pm_driver)}" "$bv_cold" "$pm_cell" "$pm_ratio"
[[ -z $su_reason ]] || echo "(${su_reason})"
[[ -z $pm_reason ]] || echo "(${pm_reason})"
echo "(each run starts from an empty BV_CACHE_DIR, dir or storage root; loopback registry)"
echo
printf '%-58s %10s %10s\n' "benchmark" "bv" "target"
printf '%-58s %10s %10s\n' "bv sync, everything present (median ms)" "$bv_warm" "< 20"
printf '%-58s %10s %10s\n' "bv add, one ${big_mib} MiB uncompressed layer: peak RSS (MiB)" "$big_rss" "< 32"
printf '%-58s %10s %10s\n' "bv add, one ${big_mib} MiB uncompressed layer: wall (s)" "$big_s" ""
