#!/bin/bash
# make bench, node-local images (issue 17): how many file-system metadata operations one task
# makes on the shared cache in each image mode, for a generated image of 20,000 files.
#   scripts/bench-nodelocal.sh <builddir>
#
# The image is the fixture samtools image (tests/fixtures/images.sh, loopback registry) plus
# one layer of BENCH_NODELOCAL_FILES (default 20000) small files under /opt/many and a script
# /usr/local/bin/walk, `find /opt/many -type f -size +0 | wc -l`, which stats every file, as a
# tool that imports a conda environment does.  It is built with skopeo and umoci and pushed to
# the registry as biocontainers/many:1, which a copy of the fixture bv registry names as
# samtools' image.  Each mode gets its own cache: tree (sync, then the run), local_dir (sync,
# one run to warm the node, then the run) and squashfs (sync builds the image, then the run).
#
# The run is traced with strace -f (file calls, getdents64, and process creation to follow
# the tool into its image); bench/nodelocal_count.py counts the calls on the shared cache:
# paths under it, and in tree mode also every lookup the tool makes in its image, which is the
# shared tree.  Root runs the squashfs image with the kernel's squashfs (a loop device) when
# it can, else with squashfuse.  Wall times are medians of BENCH_NODELOCAL_RUNS (default 5)
# untraced runs, on whatever else this machine is doing: read them as ratios, not as numbers.
# A report, not a test: it fails nothing, and prints "n/a (reason)" for what cannot run here.
set -euo pipefail

build=${1:?usage: scripts/bench-nodelocal.sh <builddir>}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$build" && pwd)
bv_bin=$build/bv
fixtures=$top/tests/fixtures
# shellcheck source=scripts/bench-lib.sh
. "$top/scripts/bench-lib.sh"
export BV_FIXTURE_DIR=${BV_FIXTURE_DIR:-$build/fixtures}
files=${BENCH_NODELOCAL_FILES:-20000}
runs=${BENCH_NODELOCAL_RUNS:-5}

note() { echo "bench-nodelocal: $*" >&2; }
for c in strace umoci skopeo python3 mksquashfs; do
	command -v "$c" >/dev/null || { note "'$c' is missing (scripts/deps.sh)"; exit 0; }
done
[[ -x $bv_bin ]] || { note "build $build first"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-bench-nodelocal.XXXXXX")
cleanup() {
	bench_registry_down
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
bench_registry_up || { echo "  n/a (the fixture registry did not start or take the images)"; exit 0; }
addr=$BENCH_REGISTRY_ADDR

# the image: the fixture samtools plus the many-files layer and the walk script
note "building a $files-file image"
skopeo copy -q --src-tls-verify=false "docker://$addr/biocontainers/samtools:1.16.1--debian" \
	"oci:$tmp/oci:base"
python3 - "$tmp/many" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.py" % i), "w") as f:
        f.write("x = %d\n" % i)
PY
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nfind /opt/many -type f -size +0 | wc -l\n' >"$tmp/bin/walk"
chmod 0755 "$tmp/bin/walk"
umoci insert --rootless --image "$tmp/oci:base" --tag many "$tmp/many" /opt/many >/dev/null
umoci insert --rootless --image "$tmp/oci:many" "$tmp/bin/walk" /usr/local/bin/walk >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$tmp/oci:many" "docker://$addr/biocontainers/many:1"

cp -r "$fixtures/bv-registry" "$tmp/registry"
sed -i -e 's|^reference = .*|reference = "quay.io/biocontainers/many:1"|' \
	-e 's/^exposed = \["samtools"\]$/exposed = ["samtools", "walk"]/' \
	"$tmp/registry/tools/samtools/1.16.1.toml"
export BV_REGISTRY="$tmp/registry" BV_MIRRORS="quay.io=$addr" HOME="$tmp/home"
mkdir -p "$HOME"

median_ms() { # <command...>: the median wall time of $runs runs, in ms
	local i t
	for ((i = 0; i < runs; i++)); do
		t=$(date +%s%N)
		"$@" >/dev/null 2>&1 || { echo "n/a"; return; }
		echo $((($(date +%s%N) - t) / 1000000))
	done | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}

declare -A shared total wall
for mode in tree local_dir squashfs; do
	proj=$tmp/p-$mode
	export BV_CACHE_DIR=$tmp/cache-$mode BV_LOCAL_DIR=$tmp/node-$mode BV_IMAGE_MODE=$mode
	mkdir -p "$proj"
	cd "$proj"
	if ! { "$bv_bin" init bench && "$bv_bin" add samtools && "$bv_bin" sync; } >"$tmp/$mode.log" 2>&1; then
		note "$mode: setting up failed: $(tail -n 2 "$tmp/$mode.log")"
		shared[$mode]="n/a"
		continue
	fi
	out=$("$bv_bin" run walk 2>&1) || true # warms the node in local_dir mode
	if [[ $out != "$files" ]]; then
		note "$mode: 'walk' printed '$out', not $files"
		shared[$mode]="n/a"
		continue
	fi
	strace -f -qq -y -e trace=%file,getdents64,clone,clone3,fork,vfork -o "$tmp/$mode.trace" \
		"$bv_bin" run walk >/dev/null 2>&1 || true
	read -r s t < <(python3 "$top/bench/nodelocal_count.py" "$tmp/$mode.trace" "$BV_CACHE_DIR" "$mode")
	shared[$mode]=$s
	total[$mode]=$t
	wall[$mode]=$(median_ms "$bv_bin" run walk)
done

printf '%-10s %14s %14s %10s\n' "mode" "shared-cache ops" "all file ops" "wall (ms)"
for mode in tree local_dir squashfs; do
	printf '%-10s %14s %14s %10s\n' "$mode" "${shared[$mode]}" "${total[$mode]:-n/a}" "${wall[$mode]:-n/a}"
done
ratio() { # <mode>: how many times fewer shared operations than tree mode
	awk -v t="${shared[tree]}" -v m="${shared[$1]}" 'BEGIN {
		if (t + 0 > 0 && m != "n/a") printf "%.0fx", t / (m > 0 ? m : 1); else printf "n/a" }'
}
echo "tree / local_dir: $(ratio local_dir) fewer shared-cache operations per task (warm node)"
echo "tree / squashfs:  $(ratio squashfs) fewer shared-cache operations per task (goal: >= 100x)"
