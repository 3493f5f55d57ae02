#!/usr/bin/env bats
# Upstream bv 0.1.29's own documented command lines and its integration tests
# (bv-cli/tests/integration.rs, README, CI snippets), run against this bv with the fixture
# registry's Debian samtools and bwa in place of upstream's blast.  Each test names the
# upstream test or document it follows; where this bv differs on purpose, the README's
# section on upstream says so.

load lib/common

setup_file() {
	fixture_images_up
}

teardown_file() {
	fixture_images_down
}

setup() {
	fixture_project_setup
}

# integration.rs add_blast_creates_toml_and_lock: `bv add` in an empty directory
@test "upstream: add creates bv.toml and bv.lock in an empty directory" {
	run bv add samtools
	assert_success
	[ -s bv.toml ] && [ -s bv.lock ]
	grep -q '^id = "samtools"$' bv.toml
	grep -q '^\[tools.samtools\]$' bv.lock
}

# integration.rs add_is_idempotent
@test "upstream: add is idempotent" {
	bv add samtools >/dev/null 2>&1
	cp bv.toml toml.before
	run bv add samtools
	assert_success
	cmp bv.toml toml.before
	run grep -c '^id = "samtools"$' bv.toml
	assert_output 1
}

# integration.rs run_blast_version: `bv run blast -- blastn -version`, and README's
# `bv run blastn -version`: a binary after `--`, or by itself, runs the same
@test "upstream: run <tool> -- <binary> args and run <binary> args" {
	bv add samtools bwa >/dev/null 2>&1
	run bv run samtools -- --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv run bwa
	assert_failure 1
	assert_output --partial "Program: bwa"
}

# integration.rs unknown_tool_gives_clear_error and run_without_add_gives_clear_error
@test "upstream: unknown tools and running without add give one clear error" {
	run bv add no-such-tool-xyz
	assert_failure
	assert_output --partial "no-such-tool-xyz"
	[ ! -e bv.lock ]
	bv init demo >/dev/null 2>&1
	run bv run samtools --version
	assert_failure
	assert_output --regexp "(no bv.lock|not a tool or binary)"
}

# integration.rs sync_reproduces_environment: a colleague's machine with only the two files
@test "upstream: sync reproduces the environment from bv.toml and bv.lock" {
	bv add samtools bwa >/dev/null 2>&1
	mkdir ../colleague && cp bv.toml bv.lock ../colleague/ && cd ../colleague
	rm -rf "$BV_CACHE_DIR"
	run bv sync
	assert_success
	run bv run samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	cmp bv.lock ../proj/bv.lock
}

# integration.rs lock_check_detects_out_of_date, and the CI snippet `bv lock --check`
@test "upstream: lock --check passes when current and exits 1 when bv.toml changed" {
	bv add samtools >/dev/null 2>&1
	run bv lock --check
	assert_success
	printf '\n[[tools]]\nid = "bwa"\n' >>bv.toml
	run bv lock --check
	assert_failure 1
	assert_output --partial "bwa"
}

# integration.rs remove_updates_both_files
@test "upstream: remove updates bv.toml and bv.lock" {
	bv add samtools bwa >/dev/null 2>&1
	run bv remove bwa
	assert_success
	run grep -c 'bwa' bv.toml
	assert_output 0
	run grep -c '^\[tools.bwa\]' bv.lock
	assert_output 0
	grep -q '^\[tools.samtools\]$' bv.lock
}

# integration.rs sync_frozen_fails_on_mismatch, and the CI snippet `bv sync --frozen`
@test "upstream: sync --frozen fails when bv.toml and bv.lock disagree" {
	bv add samtools >/dev/null 2>&1
	run bv sync --frozen
	assert_success
	printf '\n[[tools]]\nid = "bwa"\n' >>bv.toml
	run bv sync --frozen
	assert_failure 1
	assert_output --partial "'bwa' is declared in bv.toml but not locked"
}

# README: the everyday commands of a project
@test "upstream: README's list, info, show, exec, export, doctor and cache lines" {
	bv add samtools bwa >/dev/null 2>&1
	run bv list
	assert_success
	assert_line --regexp '^samtools +1\.16\.1'
	run bv list --binaries
	assert_success
	run bv info samtools
	assert_success
	run bv show samtools
	assert_success
	run bv show samtools --format json
	assert_success
	run bv exec -- samtools --version
	assert_success
	assert_line --index 0 "samtools 1.16.1"
	run bv export --format conda
	assert_success
	run bv doctor
	assert_success
	run bv cache size
	assert_success
	run bv cache list
	assert_success
	run bv cache prune --dry-run
	assert_success
	run bv --version
	assert_success
	run bv run --version
	assert_success
}
