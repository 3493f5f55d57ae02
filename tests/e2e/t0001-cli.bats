#!/usr/bin/env bats
# The command-line skeleton: version, help, and how usage errors are reported.

load lib/common

setup() {
	common_setup
}

@test "--version prints the version from meson.build" {
	want=$(sed -n "s/^  version : '\(.*\)',$/\1/p" "$BV_SOURCE_DIR/meson.build")
	run bv --version
	assert_success
	assert_output "bv $want"
	run bv version
	assert_success
	assert_output "bv $want"
	# after any command too, as upstream; a tool's own --version still goes to the tool
	for cmd in add sync "cache size" "session ls" up lock search; do
		run bv $cmd --version
		assert_success
		assert_output "bv $want"
	done
}

@test "version --verbose names the libraries" {
	run bv version --verbose
	assert_success
	assert_line --regexp '^jansson [0-9]+\.[0-9]+'
	assert_line --regexp '^OpenSSL [0-9]+\.[0-9]+'
}

@test "--help lists every command of the table" {
	run bv --help
	assert_success
	assert_line --index 0 "usage: bv [--version] [--help] [-C <DIR>] [-q] [-v] [--offline] <command> [<args>]"
	assert_line --regexp '^  help +show help for bv or for one command$'
	assert_line --regexp '^  version +print the version of bv$'
}

@test "help <command> and <command> --help print the same generated text" {
	run bv help version
	assert_success
	help_out=$output
	run bv version --help
	assert_success
	assert_equal "$output" "$help_out"
	assert_line --index 0 "usage: bv version [--verbose]"
	assert_line --regexp '^  -v, --verbose +also print the versions of the libraries$'
	assert_line --regexp '^  -h, --help +show this help$'
}

@test "no command prints the help on stderr and exits 2" {
	run bv
	assert_failure 2
	assert_line --index 0 "usage: bv [--version] [--help] [-C <DIR>] [-q] [-v] [--offline] <command> [<args>]"
}

@test "an unknown command is one error line, a hint, and exit 2" {
	run --separate-stderr bv frobnicate
	assert_failure 2
	assert_equal "$output" ""
	assert_equal "${stderr_lines[0]}" "error: unknown command 'frobnicate'"
	assert_equal "${#stderr_lines[@]}" 2
}

@test "a typo gets a suggestion" {
	run bv verison
	assert_failure 2
	assert_line --index 0 "error: unknown command 'verison'"
	assert_line --index 1 "hint: did you mean 'version'?"
}

@test "unknown options are rejected with exit 2, globally and per command" {
	run bv --frobnicate
	assert_failure 2
	assert_line --index 0 "error: unknown option '--frobnicate'"
	run bv version --frobnicate
	assert_failure 2
	assert_line --index 0 "error: unknown option '--frobnicate' for 'bv version'"
	run bv version -x
	assert_failure 2
	assert_line --index 0 "error: unknown option '-x' for 'bv version'"
	run bv help version extra
	assert_failure 2
	run bv help nosuchcommand
	assert_failure 2
	assert_line --index 0 "error: unknown command 'nosuchcommand'"
}

@test "no colour when NO_COLOR is set, even on a terminal" {
	command -v script >/dev/null || fail "util-linux 'script' is needed for a terminal"
	run script -qec "NO_COLOR=1 TERM=xterm $BV frobnicate" /dev/null
	assert_failure
	refute_output --partial $'\033['
	run script -qec "TERM=xterm $BV frobnicate" /dev/null
	assert_output --partial $'\033[1;31merror:'
}

@test "no colour when stderr is not a terminal" {
	TERM=xterm run bv frobnicate
	refute_output --partial $'\033['
}
