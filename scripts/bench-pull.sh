#!/bin/bash
# make bench, pulls: bv against skopeo + umoci and podman on the same images, measured in one
# run against the loopback fixture registry, printed side by side with ratios.
#   scripts/bench-pull.sh <builddir>
#
# 1. cold `bv sync` of a project locking samtools, bwa, minimap2 and bcftools (an empty
#    BV_CACHE_DIR every run), against a shell script doing `skopeo copy` + `umoci unpack
#    --rootless` of the four images into a fresh dir, and against `podman pull` of the four
#    into a fresh private storage root; hyperfine medians, ratio peer/bv (>1: bv is faster)
#    The same three on one image of 20,000 small files in 8 directories (one gzip layer,
#    written here by python3 without bv, pushed by skopeo), where the cost is per file;
#    BENCH_MANY_RUNS (default 3) timed runs each.
# 2. warm `bv sync` (everything present)
# 3. peak RSS and wall time of `bv add` of an image with a 220 MiB uncompressed layer, built
#    here without bv (OCI layout written by hand, pushed by skopeo)
# 4. unpack only: <builddir>/bench/bench_unpack times bv_unpack_layer + bv_unpack_image on
#    the layer blobs of the four images (gzip; samtools also zstd) and of the 20,000-file
#    image, read from their OCI layouts (no registry, no network code), median of
#    BENCH_UNPACK_RUNS (default 5; BENCH_MANY_RUNS for the 20,000 files); against `umoci
#    unpack --rootless` of the same layout and tag (hyperfine, same runs).
#    BENCH_UNPACK_BASELINE=<other builddir> also runs that build's bench_unpack on the same
#    blobs, interleaved (baseline, this, this, baseline), prints this/baseline per image and
#    exits 1 when one is over BENCH_UNPACK_LIMIT (default 1.10: at most 10% slower).
#
#   scripts/bench-pull.sh <builddir> --unpack-only    part 4 alone: no registry, no pulls
#   scripts/bench-pull.sh <builddir> --cold-only      part 1 alone (scripts/bench-issue18.sh)
#
# The fixture registry (tests/fixtures/registry.sh, state in $BV_FIXTURE_DIR, default
# <builddir>/fixtures) is started if it is not running and stopped at the end only if this
# script started it. BENCH_PULL_RUNS (default 5) sets the timed runs of the cold benchmarks.
set -euo pipefail

build=${1:?usage: scripts/bench-pull.sh <builddir> [--unpack-only|--cold-only]}
unpack_only=false cold_only=false
case ${2:-} in
"") ;;
--unpack-only) unpack_only=true ;;
--cold-only) cold_only=true ;;
*) echo "usage: scripts/bench-pull.sh <builddir> [--unpack-only|--cold-only]" >&2 && exit 2 ;;
esac
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$top/scripts/bench-lib.sh"
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}
runs=${BENCH_PULL_RUNS:-5}
many_runs=${BENCH_MANY_RUNS:-3}
unpack_runs=${BENCH_UNPACK_RUNS:-5}
unpack_limit=${BENCH_UNPACK_LIMIT:-1.10}
baseline=${BENCH_UNPACK_BASELINE:-}
many_dirs=8 many_per_dir=2500
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
[[ -x $build/bench/bench_unpack ]] || die "$build/bench/bench_unpack is missing (ninja -C $build)"
if [[ -n $baseline ]]; then
	baseline=$(cd "$baseline" && pwd) || die "BENCH_UNPACK_BASELINE: no such dir"
	[[ -x $baseline/bench/bench_unpack ]] ||
		die "$baseline/bench/bench_unpack is missing (ninja -C $baseline bench/bench_unpack)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-pull.XXXXXX")
cleanup() {
	bench_registry_down
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
	if [[ $name == *podman && $(id -u) -ne 0 ]]; then
		rm="podman unshare rm -rf"
	fi
	prep="sh -c '$rm $dir && sync'"
	eval "$prep"
	# shellcheck disable=SC2086 # split at blanks, as hyperfine -N does
	$cmd >/dev/null 2>"$tmp/$name.err" || return 0
	hf_median_ms "$name" --prepare "$prep" -r "${cold_runs:-$runs}" "$cmd"
}

# ---- fixtures --------------------------------------------------------------------------------

# make_manyfiles LAYOUT: an OCI layout whose image "manyfiles" is one gzip layer of
# $many_dirs directories of $many_per_dir small files each (65 B to 2 KiB), the same bytes
# every run (so the registry stores it once), written without bv.
make_manyfiles() {
	python3 - "$1" "$many_dirs" "$many_per_dir" <<'EOF'
import gzip, hashlib, io, json, os, platform, sys, tarfile

layout, n_dirs, per_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)

def put(data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest[7:]), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}

def dump(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
    def entry(name, kind, mode, data=b""):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.size = kind, mode, 0, len(data)
        t.addfile(info, io.BytesIO(data) if data else None)
    entry("data", tarfile.DIRTYPE, 0o755)
    for d in range(n_dirs):
        entry("data/d%d" % d, tarfile.DIRTYPE, 0o755)
        for i in range(per_dir):
            n = d * per_dir + i
            line = hashlib.sha256(b"%d" % n).hexdigest().encode() + b"\n"
            entry("data/d%d/f%05d.txt" % (d, i), tarfile.REGTYPE, 0o644, line * (1 + n % 32))
diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
config = {"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
          "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": put(dump(config), "application/vnd.oci.image.config.v1+json"),
            "layers": [put(gzip.compress(raw.getvalue(), 6, mtime=0),
                           "application/vnd.oci.image.layer.v1.tar+gzip")]}
desc = put(dump(manifest), manifest["mediaType"])
desc["annotations"] = {"org.opencontainers.image.ref.name": "manyfiles"}
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [desc]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
EOF
}
many_oci=$tmp/manyfiles-oci
$cold_only || make_manyfiles "$many_oci" || die "could not write the 20,000-file image"
many_files=$((many_dirs * many_per_dir))

if $unpack_only; then
	"$fixtures/images.sh" build >/dev/null 2>"$tmp/build.err" || {
		cat "$tmp/build.err" >&2
		die "tests/fixtures/images.sh build failed"
	}
fi

if ! $unpack_only; then

bench_registry_up || die "the fixture registry did not start or take the images"
addr=$BENCH_REGISTRY_ADDR

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

bench_result pull_bv "$bv_cold"
bench_result pull_skopeo_umoci "$su_cold"
bench_result pull_podman "${pm_cold:-}"
if $cold_only; then
	printf '%-58s %10s %10s %8s\n' "benchmark (median of $runs, 4 tools, cold)" "bv (ms)" "peer (ms)" "peer/bv" \
		"bv sync vs skopeo copy + umoci unpack, sequential" "$bv_cold" "$su_cell" "$su_ratio" \
		"bv sync vs podman pull${pm_driver:+ ($pm_driver)}" "$bv_cold" "$pm_cell" "$pm_ratio"
	[[ -z $su_reason ]] || echo "(${su_reason})"
	[[ -z $pm_reason ]] || echo "(${pm_reason})"
	exit 0
fi

# ---- 1'. cold pulls of the 20,000-file image -------------------------------------------------

many_ref=$addr/biocontainers/manyfiles:1.0--bench
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$many_oci:manyfiles" \
	"docker://$many_ref" 2>"$tmp/skopeo-many.err" || {
	cat "$tmp/skopeo-many.err" >&2
	die "skopeo could not push the 20,000-file image"
}
mkdir -p "$tmp/bv-registry/tools/manyfiles" "$tmp/many"
cat >"$tmp/bv-registry/tools/manyfiles/1.0.0.toml" <<'TOML'
# Benchmark manifest written by scripts/bench-pull.sh: one gzip layer of 20,000 small files,
# pushed as biocontainers/manyfiles:1.0--bench.
[tool]
id = "manyfiles"
version = "1.0.0"
description = "Benchmark image with 20,000 small files"
homepage = "https://example.org/bv-bench"
license = "MIT"
tier = "community"
maintainers = ["github:bv-bench"]

[[tool.inputs]]
name = "script"
type = "file"
cardinality = "optional"
description = "Unused"

[tool.image]
backend = "docker"
reference = "quay.io/biocontainers/manyfiles:1.0--bench"

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
	cd "$tmp/many"
	"$bv_bin" init many >/dev/null 2>&1
	# The image exposes sh, a system command, which bv takes only when bv.toml says so.
	printf '\n[binary_overrides]\nsh = "manyfiles"\n' >>bv.toml
	BV_CACHE_DIR=$tmp/add-cache "$bv_bin" add manyfiles >"$tmp/many-add.out" 2>&1
) || {
	cat "$tmp/many-add.out" >&2
	die "bv add manyfiles failed"
}
rm -rf "$tmp/add-cache"
cold_runs=$many_runs
many_bv=$(cd "$tmp/many" && BV_CACHE_DIR=$tmp/many-cache cold many-bv "$tmp/many-cache" "$bv_bin sync")
[[ -n $many_bv ]] || die "cold bv sync of manyfiles failed: $(first_error "$tmp/many-bv.err")"
got=$(find "$tmp"/many-cache/rootfs/*/data -type f | wc -l)
[[ $got -eq $many_files ]] || die "bv sync unpacked $got files of manyfiles, not $many_files"
rm -rf "$tmp/many-cache"

# shellcheck disable=SC2016 # $1 is the generated script's argument
printf '#!/bin/sh\nset -eu\nmkdir -p "$1"\nskopeo copy -q --src-tls-verify=false docker://%s "oci:$1/oci:manyfiles"\numoci unpack --rootless --image "$1/oci:manyfiles" "$1/manyfiles" >/dev/null\n' \
	"$many_ref" >"$tmp/many-skopeo-umoci.sh"
many_su_cell=- many_su_ratio=-
many_su=$(cold many-skopeo-umoci "$tmp/su" "sh $tmp/many-skopeo-umoci.sh $tmp/su")
if [[ -n $many_su ]]; then
	got=$(find "$tmp/su/manyfiles/rootfs/data" -type f | wc -l)
	[[ $got -eq $many_files ]] || die "umoci unpacked $got files of manyfiles, not $many_files"
	many_su_cell=$many_su many_su_ratio=$(ratio "$many_bv" "$many_su")x
fi
rm -rf "$tmp/su"
many_pm_cell=- many_pm_ratio=-
if [[ -z $pm_reason ]]; then
	many_pm=$(cold many-podman "$tmp/podman" "$pm pull -q --tls-verify=false $many_ref")
	if [[ -n $many_pm ]]; then
		many_pm_cell=$many_pm many_pm_ratio=$(ratio "$many_bv" "$many_pm")x
	fi
fi
unset cold_runs

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
tier = "community"
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
	# The image exposes sh, a system command, which bv takes only when bv.toml says so.
	printf '\n[binary_overrides]\nsh = "bigdata"\n' >>bv.toml
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

fi # ! $unpack_only

# ---- 4. unpack only --------------------------------------------------------------------------

src=$("$fixtures/images.sh" path)
unpack_args=()
for i in "${images[@]}"; do unpack_args+=("${i%%:*}=$src/oci:${i%%:*}"); done
unpack_args+=("samtools-zstd=$src/oci-zstd:samtools" "manyfiles=$many_oci:manyfiles")

# unpack_ms BUILD RUNS ARG: bench_unpack's median for one NAME=LAYOUT:TAG, nothing on failure.
unpack_ms() {
	"$1/bench/bench_unpack" -n "$2" -w "$tmp" "$3" 2>>"$tmp/unpack.err" |
		awk '$1 == "unpack" { print $3 }'
}
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a + b) / 2 }'; }
unpack_rows=() worst=0 worst_name="" um_reason=""
for arg in "${unpack_args[@]}"; do
	name=${arg%%=*}
	layout=${arg#*=}
	n=$unpack_runs
	[[ $name != manyfiles ]] || n=$many_runs
	if [[ -n $baseline ]]; then
		b1=$(unpack_ms "$baseline" "$n" "$arg")
		c1=$(unpack_ms "$build" "$n" "$arg")
		c2=$(unpack_ms "$build" "$n" "$arg")
		b2=$(unpack_ms "$baseline" "$n" "$arg")
		[[ -n $b1 && -n $b2 ]] || die "baseline bench_unpack failed on $name: $(first_error "$tmp/unpack.err")"
		[[ -n $c1 && -n $c2 ]] || die "bench_unpack failed on $name: $(first_error "$tmp/unpack.err")"
		cur=$(mean "$c1" "$c2") base=$(mean "$b1" "$b2")
		rel=$(awk -v c="$cur" -v b="$base" 'BEGIN { printf("%.2f", (b > 0) ? c / b : 0) }')
		if awk -v r="$rel" -v w="$worst" 'BEGIN { exit !(r > w) }'; then
			worst=$rel worst_name=$name
		fi
		rel=${rel}x
	else
		cur=$(unpack_ms "$build" "$n" "$arg")
		[[ -n $cur ]] || die "bench_unpack failed on $name: $(first_error "$tmp/unpack.err")"
		base=- rel=-
	fi
	# umoci reads gzip layers only (machine.md); its bundle also gets a config.json and an
	# mtree manifest, which are part of what `umoci unpack` costs.
	um=- um_ratio=-
	if [[ $name != *zstd ]]; then
		um=$(hf_median_ms "umoci-$name" -r "$n" --prepare "sh -c 'rm -rf $tmp/bundle && sync'" \
			"umoci unpack --rootless --image $layout $tmp/bundle")
		rm -rf "$tmp/bundle"
		if [[ -n $um ]]; then
			um_ratio=$(ratio "$cur" "$um")x
		else
			um=- um_reason="umoci unpack failed: $(first_error "$tmp/umoci-$name.err")"
		fi
	fi
	unpack_rows+=("$(printf '%-44s %10s %10s %8s %12s %8s' "unpack $name" "$cur" "$um" "$um_ratio" "$base" "$rel")")
done

# ---- the table -------------------------------------------------------------------------------

row() { printf '%-58s %10s %10s %8s\n' "$@"; }
if ! $unpack_only; then
	row "benchmark (median of $runs, 4 tools, cold)" "bv (ms)" "peer (ms)" "peer/bv"
	row "bv sync vs skopeo copy + umoci unpack, sequential" "$bv_cold" "$su_cell" "$su_ratio"
	row "bv sync vs podman pull${pm_driver:+ ($pm_driver)}" "$bv_cold" "$pm_cell" "$pm_ratio"
	row "20,000 files (median of $many_runs): vs skopeo + umoci" "$many_bv" "$many_su_cell" "$many_su_ratio"
	row "20,000 files (median of $many_runs): vs podman pull" "$many_bv" "$many_pm_cell" "$many_pm_ratio"
	[[ -z $su_reason ]] || echo "(${su_reason})"
	[[ -z $pm_reason ]] || echo "(${pm_reason})"
	echo "(each run starts from an empty BV_CACHE_DIR, dir or storage root; loopback registry)"
	echo
	printf '%-58s %10s %10s\n' "benchmark" "bv" "target"
	printf '%-58s %10s %10s\n' "bv sync, everything present (median ms)" "$bv_warm" "< 20"
	printf '%-58s %10s %10s\n' "bv add, one ${big_mib} MiB uncompressed layer: peak RSS (MiB)" "$big_rss" "< 32"
	printf '%-58s %10s %10s\n' "bv add, one ${big_mib} MiB uncompressed layer: wall (s)" "$big_s" ""
	echo
fi
printf '%-44s %10s %10s %8s %12s %8s\n' "unpack only (median of $unpack_runs; 20k: $many_runs)" \
	"bv (ms)" "umoci (ms)" "umoci/bv" "baseline(ms)" "bv/base"
printf '%s\n' "${unpack_rows[@]}"
echo "(bench_unpack: bv_unpack_layer + bv_unpack_image of the layout's blobs; umoci unpack --rootless of the same tag)"
[[ -z $um_reason ]] || echo "(${um_reason})"
if [[ -n $baseline ]]; then
	if awk -v w="$worst" -v l="$unpack_limit" 'BEGIN { exit !(w > l) }'; then
		echo "unpack: SLOWER than the baseline $baseline: $worst_name at ${worst}x, over the ${unpack_limit}x limit"
		exit 1
	fi
	echo "unpack: within ${unpack_limit}x of the baseline $baseline (worst: $worst_name at ${worst}x)"
fi
