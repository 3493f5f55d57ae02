#!/bin/bash
# Builds the conformance corpus: images made by tools other than bv (docker build, buildah,
# podman build, umoci, skopeo conversions, Python tarfile and GNU tar), and pushes them to the
# loopback fixture registry as <registry>/conformance/<name>:1.  CASES.md says which case
# each image exercises.
#
#   build-corpus.sh build            build, or reuse the cached build; prints its dir
#   build-corpus.sh push [--registry HOST:PORT]
#                                    build if needed, then push every image (default registry:
#                                    `tests/fixtures/registry.sh addr`)
#   build-corpus.sh list             "name<TAB>builder<TAB>docker<TAB>case" per image;
#                                    docker=no marks zstd images docker 20.10 cannot pull
#
# Base content is Debian's busybox-static (the installed /bin/busybox, whose package version
# and sha256 are part of the cache key); nothing comes from the internet.  docker build runs
# on the private dockerd of tests/fixtures/dockerd.sh (started and stopped here by PID when
# it was not already running); buildah and podman build use a private storage under the
# work directory with chroot isolation; no daemon of theirs is needed.
#
# Cache: ${BV_FIXTURE_CACHE:-${BV_FIXTURE_DIR:-<repo>/build/fixtures}/cache}/conformance-<key>/
#   images/<name>.src    the skopeo source of each image (oci:..., docker-archive:..., dir:...)
#   corpus.tsv           what `list` prints
# <key> hashes this script, mklayers.py, make_tars.py and the busybox binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
repo=$(cd "$here/../.." && pwd)
fixtures=$repo/tests/fixtures
state=${BV_FIXTURE_DIR:-$repo/build/fixtures}
cache=${BV_FIXTURE_CACHE:-$state/cache}
BUSYBOX=${BV_BUSYBOX:-/bin/busybox}
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKER=${BV_DOCKER_CLI:-/usr/bin/docker}

log() { printf 'corpus: %s\n' "$*" >&2; }
die() {
	printf 'build-corpus.sh: %s\n' "$*" >&2
	exit 1
}
usage() {
	sed -n '2,/^set -euo/p' "$self" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}
need() {
	local c
	for c in "$@"; do command -v "$c" >/dev/null || die "'$c' is missing (see scripts/deps.sh)"; done
}

key=$({
	cat "$self" "$here/mklayers.py" "$here/decompress.py" "$repo/tests/data/unpack/make_tars.py"
	sha256sum <"$BUSYBOX"
	dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true
} | sha256sum | cut -c1-16)
out=$cache/conformance-$key

# record NAME BUILDER DOCKER CASE SRC: one image of the corpus.
record() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$work/corpus.tsv"
	printf '%s\n' "$5" >"$work/images/$1.src"
}

# rootfs DIR [usrmerge]: busybox base with /proc /sys /dev /tmp, passwd (root, app 1000),
# group.  With usrmerge: /bin -> usr/bin and /sbin -> usr/sbin.
rootfs() {
	local r=$1 a t
	mkdir -p "$r/usr/bin" "$r/usr/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" \
		"$r/root" "$r/home/app"
	chmod 1777 "$r/tmp"
	if [[ ${2:-} == usrmerge ]]; then
		ln -s usr/bin "$r/bin"
		ln -s usr/sbin "$r/sbin"
		cp "$BUSYBOX" "$r/usr/bin/busybox"
		t=/usr/bin/busybox
	else
		mkdir -p "$r/bin" "$r/sbin"
		cp "$BUSYBOX" "$r/bin/busybox"
		t=/bin/busybox
	fi
	for a in $("$BUSYBOX" --list-full); do
		[[ ${2:-} != usrmerge ]] || case $a in bin/* | sbin/*) a=usr/$a ;; esac
		[[ -e $r/$a || -L $r/$a ]] || ln -s "$t" "$r/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\napp:x:1000:\nstaff:x:2345:\nnogroup:x:65534:\n' >"$r/etc/group"
	chown 1000:1000 "$r/home/app"
}

tarof() {
	tar --sort=name --numeric-owner --mtime=@1700000000 -C "$1" -cf "$2" .
}

# dbuild NAME CASE: docker build of the Dockerfile on stdin (context $work/ctx), saved.
dbuild() {
	local name=$1 case=$2
	cat >"$work/ctx/Dockerfile"
	DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "conformance/$name:1" "$work/ctx" >/dev/null ||
		die "docker build of $name failed"
	"$DOCKER" save -o "$work/images/$name.tar" "conformance/$name:1"
	record "$name" "docker build" yes "$case" "docker-archive:$work/images/$name.tar"
}

build_docker() {
	local sock started=0
	if ! sock=$("$fixtures/dockerd.sh" sock 2>/dev/null) || ! "$fixtures/dockerd.sh" status >/dev/null 2>&1; then
		sock=$("$fixtures/dockerd.sh" start)
		started=1
	fi
	export DOCKER_HOST=unix://$sock
	((started == 0)) || trap '"$fixtures/dockerd.sh" stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
	"$DOCKER" import -c "ENV PATH=$PATH_ENV" -c 'CMD ["/bin/sh"]' "$work/base.tar" conformance/base:1 >/dev/null
	"$DOCKER" import -c "ENV PATH=$PATH_ENV" -c 'CMD ["/bin/sh"]' "$work/base-usrmerge.tar" conformance/base-usrmerge:1 >/dev/null
	mkdir -p "$work/ctx/tree/sub"
	printf 'one\n' >"$work/ctx/tree/one"
	printf 'two\n' >"$work/ctx/tree/sub/two"
	printf '#!/bin/sh\necho "entry: $*"\nexec "$@"\n' >"$work/ctx/entry.sh"
	chmod 755 "$work/ctx/entry.sh"

	dbuild d-multistage "multi-stage: COPY --from a build stage (file made by RUN, mode 0750)" <<'EOF'
FROM conformance/base:1 AS build
RUN mkdir -p /out/bin && printf '#!/bin/sh\necho built\n' > /out/bin/hello && chmod 0750 /out/bin/hello
FROM conformance/base:1
COPY --from=build /out/ /opt/
EOF
	dbuild d-chown "COPY --chown by uid:gid and by name (app:staff)" <<'EOF'
FROM conformance/base:1
COPY --chown=1000:2345 tree /srv/numeric/
COPY --chown=app:staff tree/one /srv/named/one
EOF
	dbuild d-whiteout "RUN rm of files from a lower layer (file whiteouts)" <<'EOF'
FROM conformance/base:1
RUN mkdir -p /data && echo a > /data/a && echo b > /data/b && echo c > /data/c
RUN rm /data/a /etc/group && rm /bin/vi
EOF
	dbuild d-opaque "RUN rm -rf dir && mkdir dir: an opaque directory" <<'EOF'
FROM conformance/base:1
RUN mkdir -p /data/sub && echo old > /data/old && echo s > /data/sub/s
RUN rm -rf /data && mkdir /data && echo new > /data/new
EOF
	dbuild d-usrmerge "usrmerge base (bin -> usr/bin); RUN writes through /bin" <<'EOF'
FROM conformance/base-usrmerge:1
RUN echo through-symlink > /bin/added && ln -s busybox /bin/added-link
EOF
	dbuild d-user-name "USER by name (app) with WORKDIR /home/app" <<'EOF'
FROM conformance/base:1
USER app
WORKDIR /home/app
EOF
	dbuild d-user-uid "USER by uid (1234, not in /etc/passwd)" <<'EOF'
FROM conformance/base:1
USER 1234
EOF
	dbuild d-user-uidgid "USER uid:gid (1000:2345)" <<'EOF'
FROM conformance/base:1
USER 1000:2345
EOF
	dbuild d-workdir "WORKDIR created by the builder (/srv/a/b)" <<'EOF'
FROM conformance/base:1
WORKDIR /srv/a/b
RUN echo here > marker
EOF
	dbuild d-envpath "ENV PATH override (/opt/tool/bin first) and more ENV" <<'EOF'
FROM conformance/base:1
RUN mkdir -p /opt/tool/bin && printf '#!/bin/sh\necho tool-on-path\n' > /opt/tool/bin/mytool && chmod 755 /opt/tool/bin/mytool
ENV PATH=/opt/tool/bin:$PATH TOOL_HOME=/opt/tool EMPTY=
ENV SPACED="a b  c"
EOF
	dbuild d-entrypoint "ENTRYPOINT only (exec form, a script that echoes and execs its arguments)" <<'EOF'
FROM conformance/base:1
COPY entry.sh /entry.sh
ENTRYPOINT ["/entry.sh"]
EOF
	dbuild d-cmd "CMD only (exec form)" <<'EOF'
FROM conformance/base:1
CMD ["/bin/echo", "cmd-only"]
EOF
	dbuild d-both "ENTRYPOINT and CMD" <<'EOF'
FROM conformance/base:1
COPY entry.sh /entry.sh
ENTRYPOINT ["/entry.sh"]
CMD ["/bin/echo", "default-cmd"]
EOF
	dbuild d-shell "shell-form ENTRYPOINT (/bin/sh -c; arguments become \$0...)" <<'EOF'
FROM conformance/base:1
ENTRYPOINT echo "shell-form" "$0" "$@"
EOF
	dbuild d-empty "ENTRYPOINT [] and CMD []: no command at all" <<'EOF'
FROM conformance/base:1
ENTRYPOINT []
CMD []
EOF
	"$DOCKER" save -o "$work/images/base.tar" conformance/base:1
	# shellcheck disable=SC2046 # one image id per word
	"$DOCKER" rmi -f $("$DOCKER" images -q 'conformance/*' | sort -u) >/dev/null 2>&1 || true
	if ((started)); then
		"$fixtures/dockerd.sh" stop >/dev/null 2>&1 || true
		trap 'rm -rf "$work"' EXIT
	fi
	unset DOCKER_HOST
}

build_buildah() {
	local s=$work/cstore c run
	# podman refuses a run root longer than 50 characters
	run=$(mktemp -d /tmp/bvconf.XXXXXX)
	cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	export CONTAINERS_CONF=$work/containers.conf
	local -a B=(buildah --root "$s/root" --runroot "$run" --storage-driver vfs)
	local -a P=(podman --root "$s/root" --runroot "$run" --storage-driver vfs)
	c=$("${B[@]}" from -q "docker-archive:$work/images/base.tar")
	"${B[@]}" run --isolation chroot "$c" -- sh -c 'mkdir -p /b/dir && echo made > /b/dir/file && rm /usr/bin/less /bin/ed'
	"${B[@]}" copy --chown 1000:1000 "$c" "$work/ctx/tree" /b/copied >/dev/null
	"${B[@]}" config --entrypoint '["/bin/sh","-c","echo buildah-entry; exec \"$@\"","ep"]' \
		--workingdir /b --env FROM_BUILDAH=1 "$c" 2>/dev/null
	"${B[@]}" commit -q --format docker "$c" "oci:$work/oci-buildah:b-commit" >/dev/null
	record b-commit buildah yes "buildah from/run/copy --chown/config/commit (docker format config); sh -c entrypoint with \$0" \
		"oci:$work/oci-buildah:b-commit"
	"${B[@]}" rm "$c" >/dev/null

	mkdir -p "$work/addsrc/pkg/bin"
	printf '#!/bin/sh\necho added\n' >"$work/addsrc/pkg/bin/added"
	chmod 755 "$work/addsrc/pkg/bin/added"
	ln -s added "$work/addsrc/pkg/bin/alias"
	tar --owner=0 --group=0 --numeric-owner -C "$work/addsrc" -czf "$work/add.tar.gz" pkg
	c=$("${B[@]}" from -q "docker-archive:$work/images/base.tar")
	"${B[@]}" add "$c" "$work/add.tar.gz" /opt/ >/dev/null
	"${B[@]}" add --chmod 0600 "$c" "$work/ctx/tree/one" /opt/one-0600 >/dev/null
	"${B[@]}" commit -q "$c" "oci:$work/oci-buildah:b-add" >/dev/null
	record b-add buildah yes "buildah add: a .tar.gz auto-extracted into /opt, a file with --chmod 0600 (OCI format)" \
		"oci:$work/oci-buildah:b-add"
	"${B[@]}" rm "$c" >/dev/null

	"${P[@]}" load -q -i "$work/images/base.tar" >/dev/null
	mkdir -p "$work/pctx"
	cat >"$work/pctx/Containerfile" <<'EOF'
FROM conformance/base:1
RUN mkdir -p /p/keep /p/drop && echo x > /p/keep/x && echo y > /p/drop/y && ln /p/keep/x /p/keep/x-hard
RUN rm -rf /p/drop && rm /p/keep/x && mkdir /p/drop && echo z > /p/drop/z
USER 1000:1000
ENV PODMAN_BUILT=yes
EOF
	"${P[@]}" build -q --isolation chroot -t conformance/p-build:1 "$work/pctx" >/dev/null
	"${P[@]}" push -q "conformance/p-build:1" "oci:$work/oci-podman:p-build" 2>/dev/null ||
		"${P[@]}" push "conformance/p-build:1" "oci:$work/oci-podman:p-build" >/dev/null
	record p-build "podman build" yes "podman build: whiteouts, opaque dir, a hard link whose other name is removed, USER 1000:1000" \
		"oci:$work/oci-podman:p-build"
	"${P[@]}" rmi -a -f >/dev/null 2>&1 || true
	unset CONTAINERS_CONF
	rm -rf "$run"
}

build_umoci() {
	local o=$work/oci-umoci
	skopeo copy -q "docker-archive:$work/images/base.tar" "oci:$o:base"
	mkdir -p "$work/ins/etc/inserted" "$work/ins2"
	printf 'inserted\n' >"$work/ins/etc/inserted/file"
	printf 'single\n' >"$work/ins2/single"
	umoci insert --rootless --image "$o:base" --tag u-insert "$work/ins/etc/inserted" /etc/inserted >/dev/null
	umoci insert --rootless --image "$o:u-insert" "$work/ins2/single" /opt/single >/dev/null
	# a directory inserted at / : the layer's first member is named "/"
	mkdir -p "$work/ins3/rootadd"
	printf 'at the root\n' >"$work/ins3/rootadd/file"
	umoci insert --rootless --image "$o:u-insert" "$work/ins3" / >/dev/null
	record u-insert umoci yes "umoci insert, three layers: a directory, a file, a directory at / (Debian 12's umoci omits the tar trailer, and the last layer's first member is named /)" \
		"oci:$o:u-insert"
	umoci unpack --rootless --image "$o:base" "$work/ub" >/dev/null
	rm -f "$work/ub/rootfs/bin/vi" "$work/ub/rootfs/etc/group"
	rm -rf "$work/ub/rootfs/home"
	mkdir -p "$work/ub/rootfs/home/new" "$work/ub/rootfs/usr/share/u"
	printf 'repacked\n' >"$work/ub/rootfs/usr/share/u/file"
	ln -s ../share/u/file "$work/ub/rootfs/usr/bin/ulink"
	umoci repack --image "$o:u-repack" "$work/ub" >/dev/null
	umoci config --image "$o:u-repack" --config.user 1000 --config.workingdir /usr/share/u \
		--config.env UMOCI=1 >/dev/null
	record u-repack umoci yes "umoci unpack --rootless / rm / repack: whiteouts written by umoci, USER 1000, WORKDIR" \
		"oci:$o:u-repack"
	rm -rf "$work/ub"
}

build_skopeo() {
	local o=$work/oci-skopeo
	skopeo copy -q --format oci "docker-archive:$work/images/d-whiteout.tar" "oci:$o:s-v2s2-to-oci"
	record s-v2s2-to-oci "skopeo copy" yes "docker save (v2s2, uncompressed) -> OCI gzip (skopeo --format oci) of d-whiteout" \
		"oci:$o:s-v2s2-to-oci"
	skopeo copy -q --format v2s2 "oci:$work/oci-umoci:u-repack" "dir:$work/s-oci-to-v2s2"
	record s-oci-to-v2s2 "skopeo copy" yes "OCI (umoci) -> Docker v2s2 (skopeo --format v2s2) of u-repack" \
		"dir:$work/s-oci-to-v2s2"
	skopeo copy -q --dest-compress --dest-compress-format zstd "oci:$work/oci-umoci:u-repack" "oci:$o:s-zstd"
	record s-zstd "skopeo copy" yes "gzip -> zstd (--dest-compress-format zstd) of u-repack: skopeo 1.9 keeps the base layer gzip and writes the top layer zstd; docker 20.10 pulls this one" \
		"oci:$o:s-zstd"
	# skopeo 1.9's --dest-decompress leaves zstd layers as they are: decompressed here
	python3 "$here/decompress.py" "$o" s-zstd s-plain
	record s-plain "skopeo copy + zstd -d" yes "zstd -> uncompressed tar layers (media type ...tar) of s-zstd; skopeo 1.9 --dest-decompress does not decompress zstd, so zstd -dc does" \
		"oci:$o:s-plain"
	skopeo copy -q --dest-compress --dest-compress-format zstd --format oci \
		"docker-archive:$work/images/d-opaque.tar" "oci:$o:s-zstd-opaque"
	record s-zstd-opaque "skopeo copy" no "docker build (opaque dir) -> OCI zstd; docker 20.10 cannot pull zstd" \
		"oci:$o:s-zstd-opaque"
}

build_tars() {
	local s=$work/sparse
	mkdir -p "$s/sparse"
	truncate -s 1M "$s/sparse/gnu.bin"
	printf 'head' | dd of="$s/sparse/gnu.bin" conv=notrunc status=none
	printf 'tail' | dd of="$s/sparse/gnu.bin" bs=1 seek=700000 conv=notrunc status=none
	cp --sparse=always "$s/sparse/gnu.bin" "$s/sparse/pax.bin"
	local -a T=(tar --sparse --no-recursion --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C "$s")
	"${T[@]}" --format=gnu -cf "$s/sparse-gnu.tar" sparse sparse/gnu.bin
	"${T[@]}" --format=posix --pax-option=delete=atime,delete=ctime -cf "$s/sparse-pax.tar" sparse/pax.bin
	python3 "$here/mklayers.py" "$work/oci-tars" "$BUSYBOX" "$s"
	local name docker case
	while IFS=$'\t' read -r name docker case; do
		b="python tarfile"
		[[ $name != t-sparse-* ]] || b="GNU tar --sparse + python tarfile"
		record "$name" "$b" "$docker" "$case" "oci:$work/oci-tars:$name"
	done < <(python3 "$here/mklayers.py" --cases)
}

do_build() {
	local start=$SECONDS
	mkdir -p "$work/images" "$work/ctx"
	: >"$work/corpus.tsv"
	rootfs "$work/r-base"
	rootfs "$work/r-usrmerge" usrmerge
	tarof "$work/r-base" "$work/base.tar"
	tarof "$work/r-usrmerge" "$work/base-usrmerge.tar"
	rm -rf "$work/r-base" "$work/r-usrmerge"
	log "docker build (dockerd)"
	build_docker
	log "buildah, podman build"
	build_buildah
	log "umoci"
	build_umoci
	log "skopeo"
	build_skopeo
	log "tarfile and GNU tar"
	build_tars
	rm -rf "$work/cstore" "$work/ctx" "$work/pctx" "$work/ins" "$work/ins2" "$work/ins3" "$work/addsrc" "$work/sparse"
	log "built $(wc -l <"$work/corpus.tsv") images in $((SECONDS - start)) s"
}

cmd_build() {
	need docker dockerd buildah podman umoci skopeo python3 tar flock zstd
	mkdir -p "$cache"
	exec 9>"$cache/.conformance.lock"
	flock 9
	if [[ ! -f $out/complete ]]; then
		work=$(mktemp -d "$cache/conformance-tmp.XXXXXX")
		trap 'rm -rf "$work"' EXIT
		do_build
		# the sources name $work: move them to their final place
		sed -i "s|$work|$out|g" "$work"/images/*.src
		touch "$work/complete"
		rm -rf "$out"
		mv "$work" "$out"
		trap - EXIT
		find "$cache" -mindepth 1 -maxdepth 1 -name 'conformance-*' ! -name "conformance-$key" \
			-exec rm -rf {} +
	fi
	exec 9>&-
	printf '%s\n' "$out"
}

push_one() {
	local dir=$1 registry=$2 name=$3 src
	src=$(cat "$dir/images/$name.src")
	skopeo copy -q --retry-times 2 --dest-tls-verify=false --preserve-digests "$src" \
		"docker://$registry/conformance/$name:1" 2>/dev/null ||
		skopeo copy -q --retry-times 2 --dest-tls-verify=false "$src" "docker://$registry/conformance/$name:1" ||
		die "push of $name failed"
}

cmd_push() {
	local registry="" dir name pids=() failed=0 pid i=0
	while (($#)); do
		case $1 in
		--registry)
			registry=${2:?}
			shift 2
			;;
		*) usage ;;
		esac
	done
	[[ -n $registry ]] || registry=$("$fixtures/registry.sh" addr)
	registry=${registry#http://}
	dir=$(cmd_build)
	# the same registry already has this corpus: nothing to do
	if [[ -f $dir/pushed-$registry && -n $(curl -fsS "http://$registry/v2/conformance/t-xattr/tags/list" 2>/dev/null) ]]; then
		return 0
	fi
	while IFS=$'\t' read -r name _; do
		push_one "$dir" "$registry" "$name" &
		pids+=($!)
		if ((++i % 4 == 0)); then
			for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
			pids=()
		fi
	done <"$dir/corpus.tsv"
	for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
	((failed == 0)) || die "push to $registry failed"
	rm -f "$dir"/pushed-*
	touch "$dir/pushed-$registry"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
build) cmd_build ;;
push) cmd_push "$@" ;;
list) cat "$(cmd_build)/corpus.tsv" ;;
*) usage ;;
esac
