#!/bin/sh
# Installs the Debian 12 packages that building, testing and the demo need.
# As root it runs apt-get for whatever is missing; otherwise it prints the exact command.
#   scripts/deps.sh            install (or print) everything that is missing
#   scripts/deps.sh --quiet    the same, silent when nothing is missing
#   scripts/deps.sh --build    only what compiling bv and its unit tests needs (plain `make`),
#                              so a user without root, docker or samtools can build
#   scripts/deps.sh --lint     that plus the clang tools of `make lint` (format-check, tidy)
#   scripts/deps.sh --list     print the package list
set -eu

BUILD_PACKAGES="
build-essential pkg-config meson ninja-build git python3
libcurl4-openssl-dev libjansson-dev libarchive-dev libssl-dev zlib1g-dev libzstd-dev
libcmocka-dev
"
LINT_PACKAGES="clang-format clang-tidy"
PACKAGES="$BUILD_PACKAGES
$LINT_PACKAGES
bats bats-assert bats-support
clang libclang-rt-14-dev
python3 ca-certificates hyperfine git zstd strace
docker-registry skopeo umoci apache2-utils python3-cryptography curl jq openssl
podman buildah catatonit time busybox-static
charliecloud-runtime bubblewrap crun uidmap docker.io
samtools bwa vsftpd
squashfs-tools squashfuse strace
slurm-wlm munge snakemake
zsh fish dash python3-yaml groff-base man-db
"

quiet=false
case "${1:-}" in
--quiet) quiet=true ;;
--build)
	PACKAGES=$BUILD_PACKAGES
	quiet=true
	;;
--lint)
	PACKAGES="$BUILD_PACKAGES $LINT_PACKAGES"
	quiet=true
	;;
--list)
	# shellcheck disable=SC2086 # one package per word, on one line
	echo $PACKAGES
	exit 0
	;;
"") ;;
*)
	echo "usage: scripts/deps.sh [--quiet|--build|--lint|--list]" >&2
	exit 2
	;;
esac

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	$quiet || echo "deps: all packages are installed"
	exit 0
fi

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
