#!/usr/bin/env bats
# Data is never code and never terminal control: a project named like a shell injection, in
# bash, POSIX sh (also with SHELL unset, as in CI), zsh and fish; the same name in a conda
# export; terminal escapes in registry text; a project path with ':'; HOME unset.

load lib/common

# shellcheck disable=SC2016 # the name is meant literally
NAME='p$(touch canary1)`touch canary2`q;touch canary3;%d'
EVIL_DESC=$'evil \e[31mred\e[0m bell\a cr\r csi\xc2\x9b end'
SHOWN_DESC='evil \x1b[31mred\x1b[0m bell\x07 cr\x0d csi\xc2\x9b end'

setup_file() {
	fixture_images_up
	RUN_CACHE="$BATS_FILE_TMPDIR/cache"
	RUN_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	export RUN_CACHE RUN_REGISTRY
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$RUN_REGISTRY"
	# the image's /bin/sh as a binary of samtools: "sh" on PATH then runs in the image
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$RUN_REGISTRY"/tools/samtools/*.toml
	# a description with ESC, BEL, CR and a C1 CSI, in the manifest and in the index
	sed -i 's/^description = "Reads, writes.*"$/description = "evil \\u001b[31mred\\u001b[0m bell\\u0007 cr\\r csi\\u009b end"/' \
		"$RUN_REGISTRY"/tools/samtools/1.16.1.toml
	grep -q 'evil' "$RUN_REGISTRY"/tools/samtools/1.16.1.toml
	python3 - "$RUN_REGISTRY/index.json" <<'PY'
import json, sys
path = sys.argv[1]
index = json.load(open(path))
for t in index["tools"]:
    if t["id"] == "samtools":
        t["description"] = "evil \x1b[31mred\x1b[0m bell\x07 cr\r csi\x9b end"
json.dump(index, open(path, "w"), indent=2)
PY
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$RUN_CACHE" BV_REGISTRY="$RUN_REGISTRY" BV_MIRRORS="quay.io=$ADDR" BV
	unset PROMPT_COMMAND PS1 ZDOTDIR
}

# A project in a directory called $NAME, with an empty bv.lock; cd's into it.
hostile_project() {
	HOSTILE="$BATS_TEST_TMPDIR/$NAME"
	mkdir -p "$HOSTILE" && cd "$HOSTILE" || fail "cannot make the project directory"
	out=$(bv init 2>&1 && bv lock 2>&1) || fail "bv init/lock failed: $out"
}

# Runs `env <env-args> bv shell <args>` on a pseudo-terminal 300 columns wide (so no prompt
# is cut), typing stdin into it; prints what the terminal showed, escape sequences removed.
# The command line is fixed text: script(1) hands it to /bin/sh, and bv's path goes in $BV.
shell_in_pty() {
	local envargs=$1
	shift
	SHELL=/bin/sh timeout 60 script -qec \
		"stty cols 300 rows 40; exec env $envargs \"\$BV\" shell $*" /dev/null |
		sed -E 's/\x1b\[[0-9;?]*[ -\/]*[@-~]//g; s/\x1b\][^\x07]*\x07//g;
			s/\x1b[()][0-9A-Za-z]//g; s/\x1b[=>]//g; s/\r//g'
}

# The checks every shell must pass: the prompt shows the name as it is, the shell sees it in
# BV_ACTIVE, and nothing in it ran.
assert_shell_safe() {
	local envargs=$1
	shift
	run shell_in_pty "$envargs" "$@" <<<'echo "active=[$BV_ACTIVE]"
exit'
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/terminal.txt"
	assert_output --partial "(bv:$NAME) "
	assert_output --partial "active=[$NAME]"
	refute_output --partial "Bad substitution"
	[ -z "$(find "$BATS_TEST_TMPDIR" -name 'canary*')" ] || fail "the project name ran as code"
}

need_shell() {
	command -v "$1" >/dev/null ||
		skip "$1 is not installed here (scripts/deps.sh installs it)"
}

@test "bv shell in bash shows a hostile project name literally and runs none of it" {
	hostile_project
	assert_shell_safe "SHELL=/bin/bash"
	# the mark goes on once, however often PROMPT_COMMAND runs; --shell wins over SHELL, also
	# when SHELL is unset (${PS1@P} is bash's: dash would say "Bad substitution")
	run env -u SHELL "$BV" shell --shell /bin/bash <<<'PS1="> "; eval "$PROMPT_COMMAND"
eval "$PROMPT_COMMAND"; printf "%s\n" "${PS1@P}"'
	assert_success
	assert_line "(bv:$NAME) > "
	[ -z "$(find "$BATS_TEST_TMPDIR" -name 'canary*')" ]
}

@test "bv shell with SHELL unset or /bin/sh runs a POSIX sh (dash) safely" {
	hostile_project
	assert_shell_safe "-u SHELL"
	assert_shell_safe "SHELL=/bin/sh"
	assert_shell_safe "SHELL=" --shell /bin/dash
}

@test "bv shell in zsh shows a hostile project name literally, with and without PROMPT_SUBST" {
	need_shell zsh
	hostile_project
	assert_shell_safe "SHELL=$(command -v zsh)"
	# a user's .zshrc still runs, and its PROMPT_SUBST prompt keeps working with the mark
	# shellcheck disable=SC2016
	printf '%s\n' 'setopt promptsubst' 'PROMPT='\''$(echo user-rc)%# '\' >"$HOME/.zshrc"
	assert_shell_safe "SHELL=$(command -v zsh)"
	assert_output --partial "(bv:$NAME) user-rc"
	rm "$HOME/.zshrc"
}

@test "bv shell in fish shows a hostile project name literally and runs none of it" {
	need_shell fish
	hostile_project
	assert_shell_safe "SHELL=$(command -v fish)"
}

@test "conda export of a hostile project name is valid YAML holding the name as it is" {
	hostile_project
	run bv export --format conda -o env.yml
	assert_success
	if python3 -c 'import yaml' 2>/dev/null; then
		run python3 -c 'import sys, yaml; print(yaml.safe_load(open("env.yml"))["name"])'
		assert_success
		assert_output "$NAME"
	else
		# strictly: one double-quoted scalar, nothing after it
		grep -qxF "name: \"$NAME\"" env.yml || fail "$(cat env.yml)"
	fi
	[ -z "$(find "$BATS_TEST_TMPDIR" -name 'canary*')" ]
	# a name from bv.toml that would add YAML of its own if pasted in plainly
	mkdir "$BATS_TEST_TMPDIR/yaml" && cd "$BATS_TEST_TMPDIR/yaml"
	printf '[project]\nname = "x: y # z\\ndependencies: [evil]\\u001b"\n' >bv.toml
	out=$(bv lock 2>&1) || fail "bv lock failed: $out"
	run bv export --format conda -o env.yml
	assert_success
	python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (scripts/deps.sh installs it)"
	run python3 -c 'import json, yaml; print(json.dumps(yaml.safe_load(open("env.yml"))))'
	assert_success
	[ "$(jq -r .name <<<"$output")" = $'x: y # z\ndependencies: [evil]\e' ] || fail "$output"
	[ "$(jq -c .dependencies <<<"$output")" = null ] || fail "$output"
}

@test "terminal escapes from the registry are shown escaped by search, show and info; --json keeps them" {
	mkdir proj && cd proj
	bv init align >/dev/null 2>&1
	allow_shell_binary
	out=$(bv add samtools 2>&1) || fail "bv add failed: $out"
	for cmd in "search samtools" "show samtools" "info samtools"; do
		# shellcheck disable=SC2086
		run bv $cmd
		assert_success
		assert_output --partial "$SHOWN_DESC"
		if printf '%s' "$output" | LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]'; then
			fail "'bv $cmd' printed a raw control character"
		fi
	done
	run bv search --json samtools
	assert_success
	[ "$(jq -r '.[0].description' <<<"$output")" = "$EVIL_DESC" ] ||
		fail "search --json changed the description: $output"
	run bv show samtools --format json
	[ "$(jq -r '.tool.description' <<<"$output")" = "$EVIL_DESC" ]
	run bv info samtools --json
	[ "$(jq -r '.description' <<<"$output")" = "$EVIL_DESC" ]
}

@test "a project under a path with ':' runs its pinned tools in bv exec and bv shell" {
	mkdir -p "$BATS_TEST_TMPDIR/runs:2024/proj" && cd "$BATS_TEST_TMPDIR/runs:2024/proj"
	bv init colon >/dev/null 2>&1
	allow_shell_binary
	out=$(bv add samtools 2>&1) || fail "bv add failed: $out"
	# "sh" is the image's: it starts in /workspace, the host's would stay here
	run bv exec sh -c pwd
	assert_success
	assert_output "/workspace"
	run bv exec /bin/sh -c 'command -v samtools; samtools --version | head -1'
	assert_success
	assert_line --index 1 "samtools 1.16.1"
	[ "$(readlink "$(dirname "${lines[0]}")")" = "$PWD/.bv/bin" ] ||
		fail "samtools came from '${lines[0]}'"
	run bv shell --shell /bin/sh <<<'sh -c pwd'
	assert_success
	assert_output --partial "/workspace"
}

@test "with HOME unset bv finds the home directory in the password database" {
	mkdir proj && cd proj
	run env -u HOME "$BV" init homeless
	assert_success
	run env -u HOME "$BV" lock
	assert_success
	run env -u HOME "$BV" list
	assert_success
	run env -u HOME "$BV" exec /bin/sh -c 'echo "$BV_PROJECT_ROOT"'
	assert_success
	assert_output "$PWD"
	# the cache falls back to <passwd home>/.cache/bv (doctor only looks, it creates nothing)
	pw_home=$(getent passwd "$(id -u)" | cut -d: -f6)
	run env -u HOME -u BV_CACHE_DIR -u XDG_CACHE_HOME "$BV" doctor
	assert_line --regexp "^  directory   $pw_home/\.cache/bv( \(not created yet\))?$"
}
