# Shared set-up for the end-to-end tests (git's test-lib in miniature).
# Every test gets its own HOME and XDG directories under $BATS_TEST_TMPDIR, so nothing a
# test does touches the user's files or leaks into the next test.
bats_require_minimum_version 1.5.0
load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash

: "${BV_SOURCE_DIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${BV_BUILD_DIR:=$BV_SOURCE_DIR/build}"
: "${BV:=$BV_BUILD_DIR/bv}"
SHARED_DIR=${SHARED_DIR:-$BV_SOURCE_DIR/../shared}

common_setup() {
	export HOME="$BATS_TEST_TMPDIR/home"
	export XDG_CACHE_HOME="$HOME/.cache" XDG_CONFIG_HOME="$HOME/.config"
	mkdir -p "$HOME"
	unset BV_REGISTRY BV_BACKEND BV_JOBS BV_CACHE_DIR NO_COLOR
	export TERM=dumb
	cd "$BATS_TEST_TMPDIR" || return 1
}

bv() {
	"$BV" "$@"
}

# fixture_images_up (in setup_file): the loopback fixture registry running, with Debian's
# samtools, bwa, minimap2 and bcftools images pushed (tests/fixtures/images.sh), and ADDR
# (127.0.0.1:PORT) exported.  Both scripts are idempotent, so files may share the registry.
fixture_images_up() {
	export BV_FIXTURE_DIR="${BV_FIXTURE_DIR:-$BV_BUILD_DIR/fixtures}"
	"$BV_SOURCE_DIR/tests/fixtures/registry.sh" start >/dev/null
	"$BV_SOURCE_DIR/tests/fixtures/images.sh" push >/dev/null
	ADDR=$("$BV_SOURCE_DIR/tests/fixtures/registry.sh" addr)
	export ADDR
}

# fixture_project_setup [NAME] (in setup, after fixture_images_up in setup_file): a test of
# its own on the fixture registry: common_setup, an empty cache, quay.io mirrored to $ADDR,
# a writable copy of tests/fixtures/bv-registry as BV_REGISTRY, and the current directory
# $BATS_TEST_TMPDIR/proj, where `bv init NAME` ran when NAME is given.
fixture_project_setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	export BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BATS_TEST_TMPDIR/bv-registry"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BV_REGISTRY"
	mkdir -p "$BATS_TEST_TMPDIR/proj" && cd "$BATS_TEST_TMPDIR/proj" || return 1
	if [[ $# -gt 0 ]]; then
		bv init "$1" >/dev/null 2>&1
	fi
}

# fixture_engine_up (in setup_file): fixture_images_up, then the tests' own dockerd
# (tests/fixtures/dockerd.sh), with SOCK and DOCKER_HOST exported.  Skips the file, saying
# why, where dockerd is not installed.
fixture_engine_up() {
	BV_DOCKERD=${BV_DOCKERD:-/usr/sbin/dockerd}
	[[ -x $BV_DOCKERD ]] || skip "dockerd ($BV_DOCKERD) is not installed"
	fixture_images_up
	SOCK=$("$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" start)
	export SOCK DOCKER_HOST="unix://$SOCK"
}

# fixture_images_down (in teardown_file): stops that registry by PID; never fails.
fixture_images_down() {
	"$BV_SOURCE_DIR/tests/fixtures/registry.sh" stop >/dev/null 2>&1 || true
}

# allow_shell_binary (in a project directory): lets samtools expose the image's /bin/sh, as
# the test registries do, by naming it in bv.toml; bv refuses a tool that shadows a system
# command otherwise.
allow_shell_binary() {
	printf '\n[binary_overrides]\nsh = "samtools"\n' >>bv.toml
}

# reachable_bv: prints the path of a copy of $BV (with the type vocabulary it reads) that
# another user can run, for tests that switch to an unprivileged user: the checkout and the
# build directory may be somewhere only their owner can enter.
reachable_bv() {
	local d="$BATS_TEST_TMPDIR/reach" p
	mkdir -p "$d/bin" "$d/share/bv"
	cp "$BV" "$d/bin/bv"
	cp "$BV_SOURCE_DIR/data/types.toml" "$d/share/bv/types.toml"
	chmod -R a+rX "$d"
	p=$d
	while [ "$p" != / ] && [ "$p" != /tmp ]; do
		chmod o+x "$p"
		p=$(dirname "$p")
	done
	echo "$d/bin/bv"
}
