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
