#!/usr/bin/env bats
# Every command that talks to an engine, against one that misbehaves on purpose
# (tests/fixtures/bad_engine.py): for each command, one Engine API call it makes is made to
# stall, to close the connection halfway, to answer malformed JSON or to fail with a 500.
# Each run must end within its deadline (BV_ENGINE_TIMEOUT=1, BV_ENGINE_LONG_TIMEOUT=1) plus
# a margin, exit 1 with one error line that names the call, and leave no container that was
# created but never ran (the fake engine's request log shows bv removing it).

load lib/common

LIMIT_MS=5000 # a 1 s deadline, the idle check's 1 s granularity, and a slow sanitizer build

setup_file() {
	local i
	export FAKE="$BATS_FILE_TMPDIR/engine"
	mkdir -p "$FAKE"
	export SOCK="$FAKE/e.sock" LOG="$FAKE/log" RULES="$FAKE/rules"
	: >"$RULES"
	python3 "$BV_SOURCE_DIR/tests/fixtures/bad_engine.py" "$SOCK" --pid-file "$FAKE/pid" \
		--log "$LOG" --rules "$RULES" 2>"$FAKE/stderr" &
	for ((i = 0; i < 100; i++)); do
		[[ -s $FAKE/pid && -S $SOCK ]] && break
		sleep 0.05
	done
	[[ -S $SOCK ]] || return 1
	export DOCKER_HOST="unix://$SOCK" BV_ENGINE_TIMEOUT=1 BV_ENGINE_LONG_TIMEOUT=1
	export PROJ="$BATS_FILE_TMPDIR/proj"
	mkdir -p "$PROJ/ctx"
	echo data >"$PROJ/ctx/file"
	printf '[project]\nname = "faults"\n\n[[services]]\nname = "web"\nimage = "%s"\n' \
		example.invalid/web:1 >"$PROJ/bv.toml"
	# what the commands act on: a service and a session, made while the engine behaves
	cd "$PROJ" && "$BV" up >/dev/null 2>&1 && "$BV" session start example.invalid/tool:1 \
		--name s1 >/dev/null 2>&1
}

teardown_file() {
	# shellcheck source=tests/fixtures/daemon.bash
	source "$BV_SOURCE_DIR/tests/fixtures/daemon.bash"
	kill_pidfile "$FAKE/pid" bad_engine.py
}

setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache"
	cd "$PROJ" || return 1
}

# under RULE COMMAND...: runs bv COMMAND with the fake engine's rules set to RULE (lines of
# "METHOD PATH-GLOB MODE"), under `timeout` as a guard; sets status, output and ELAPSED_MS.
under() {
	local t0
	printf '%s\n' "$1" >"$RULES"
	shift
	: >"$LOG"
	t0=$(date +%s%N)
	run timeout 30 "$BV" "$@"
	ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
	: >"$RULES"
}

# ended MODE CALL CONTEXT: the run of `under` ended by itself within LIMIT_MS, with status 1
# and exactly one error line, which starts with CONTEXT and says what MODE did to CALL (a
# glob: ids are the fake's).
ended() {
	local mode=$1 call=$2 context=$3 line
	((status != 124)) || fail "bv did not end within 30 s: $output"
	((ELAPSED_MS < LIMIT_MS)) || fail "bv took $ELAPSED_MS ms: $output"
	assert_equal "$status" 1
	[[ $(grep -c '^error: ' <<<"$output") == 1 ]] || fail "not one error line: $output"
	line=$(grep '^error: ' <<<"$output")
	# shellcheck disable=SC2053 # CONTEXT and CALL are globs
	[[ $line == "error: "$context* ]] || fail "no context '$context': $line"
	# shellcheck disable=SC2027 # CALL is a glob: unquoted on purpose
	case $mode in
	stall)
		[[ $line == *" did not answer "$call" within 1 s; raise BV_ENGINE_TIMEOUT or check the daemon" ]] ;;
	stall-long)
		[[ $line == *" sent nothing for 1 s during "$call"; raise BV_ENGINE_LONG_TIMEOUT or check the daemon" ]] ;;
	close)
		[[ $line == *"lost the connection to the engine at '$SOCK' during "$call": "* ]] ;;
	malformed)
		[[ $line == *"the engine's response to "$call" is not JSON: "* ]] ;;
	cut)
		[[ $line == *"lost the connection to the engine at '$SOCK' during "$call": the stream ended in the middle of a frame" ]] ;;
	500)
		[[ $line == *": bad_engine: injected failure" ]] ;;
	esac || fail "not a $mode error of $call: $line"
}

# nothing_half_created: every container bv created in the last run was removed again, and
# the fake engine holds no container that never started.
nothing_half_created() {
	local id
	while read -r _ id _; do
		grep -q "^DELETE /containers/$id?" "$LOG" || fail "container $id was left behind"
	done < <(grep '^CREATED ' "$LOG")
	[[ $(curl -sf --unix-socket "$SOCK" "http://localhost/v1.41/containers/json?all=1" |
		jq '[.[] | select(.State == "created")] | length') == 0 ]]
}

# each MODES RULE-PATTERN CALL CONTEXT COMMAND...: `under` and `ended` for every mode in
# MODES, each "EXPECTED[:FAKE]": the error `ended` expects and the fake engine's mode (by
# default the same; stall-long is a stall); RULE-PATTERN is "METHOD PATH-GLOB".
each() {
	local modes=$1 pattern=$2 call=$3 context=$4 mode expected fake
	shift 4
	for mode in $modes; do
		expected=${mode%%:*}
		fake=${mode#*:}
		fake=${fake%-long}
		under "$pattern $fake" "$@"
		ended "$expected" "$call" "$context"
		nothing_half_created
	done
}

FAULTS="stall close malformed 500"

@test "a bad deadline is refused with one clear error" {
	BV_ENGINE_TIMEOUT=soon run bv ps
	assert_failure 1
	assert_output "error: invalid BV_ENGINE_TIMEOUT 'soon': give seconds above 0 and up to a week, such as 30 or 0.5"
	BV_ENGINE_LONG_TIMEOUT=0 run bv ps
	assert_failure 1
	assert_output --partial "error: invalid BV_ENGINE_LONG_TIMEOUT '0'"
}

@test "the fake engine serves the commands when it behaves" {
	under "" ps
	assert_success
	assert_line --regexp '^web +running'
	under "" session ls
	assert_success
	assert_line --regexp '^s1 +running'
}

@test "ps" {
	each "$FAULTS" "GET /containers/json" "GET /containers/json" \
		"could not list the containers of '$PROJ': " ps
}

@test "up: a start that fails removes the container it created" {
	# a project of its own, so every up has to create
	mkdir -p "$BATS_TEST_TMPDIR/p2" && cd "$BATS_TEST_TMPDIR/p2"
	printf '[project]\nname = "fresh"\n\n[[services]]\nname = "db"\nimage = "x.invalid/db:1"\n' >bv.toml
	each "$FAULTS" "POST /containers/*/start" "POST /containers/*/start" \
		"could not start container 'bv-fresh-db': " up
	grep -q '^CREATED ' "$LOG"
}

@test "up: a pull that stalls or breaks" {
	mkdir -p "$BATS_TEST_TMPDIR/p3" && cd "$BATS_TEST_TMPDIR/p3"
	printf '[project]\nname = "pull"\n\n[[services]]\nname = "db"\nimage = "x.invalid/db:1"\n' >bv.toml
	for mode in stall-long close 500; do
		under "GET /images/*/json 404
POST /images/create ${mode%-long}" up
		ended "$mode" "POST /images/create" "could not pull *: "
		run grep -c '^POST /containers/create' "$LOG"
		assert_output 0
	done
}

@test "down" {
	each "$FAULTS" "DELETE /containers/*" "DELETE /containers/*" \
		"could not remove container 'bv-faults-web': " down
}

@test "logs" {
	each "stall-long close" "GET /containers/*/logs" "GET /containers/*/logs" "" logs web
	each "$FAULTS" "GET /containers/*/json" "GET /containers/*/json" \
		"could not inspect container 'bv-faults-web': " logs -f web
}

@test "restart" {
	each "$FAULTS" "GET /containers/*/json" "GET /containers/*/json" \
		"could not inspect container 'bv-faults-web': " restart web
}

@test "session start: a start that fails removes the container it created" {
	each "$FAULTS" "POST /containers/*/start" "POST /containers/*/start" \
		"could not start session 's2': could not start container '*': " \
		session start example.invalid/tool:1 --name s2
}

@test "session exec" {
	# a hijacked stream is not JSON: a broken one ends in the middle of a frame
	each "stall cut:close cut:malformed 500" "POST /exec/*/start" "POST /exec/*/start" \
		"could not run a command in session 's1': " session exec s1 -- true
	each "$FAULTS" "POST /containers/*/exec" "POST /containers/*/exec" \
		"could not run a command in session 's1': " session exec s1 -- true
}

@test "session ls, snapshots" {
	each "$FAULTS" "GET /containers/json" "GET /containers/json" \
		"could not list the sessions: " session ls
	each "$FAULTS" "GET /images/json" "GET /images/json" \
		"could not list the snapshots: " session snapshots
}

@test "session rm" {
	each "$FAULTS" "DELETE /containers/*" "DELETE /containers/*" \
		"could not remove container '*': " session rm s1
}

@test "session snapshot: a commit whose answer is lost is removed" {
	each "stall-long close malformed 500" "POST /commit" "POST /commit" \
		"could not snapshot session 's1': could not commit 'bv-snapshot:*': " \
		session snapshot s1
	grep -q '^DELETE /images/bv-snapshot:' "$LOG"
}

@test "session snapshot-rm, restore" {
	each "$FAULTS" "DELETE /images/*" "DELETE /images/*" \
		"could not remove image 'bv-snapshot:x': " session snapshot-rm bv-snapshot:x
	each "$FAULTS" "POST /containers/*/start" "POST /containers/*/start" \
		"could not start session 'r1': could not start container '*': " \
		session restore bv-snapshot:x --name r1
}

@test "session cp" {
	each "stall-long close 500" "PUT /containers/*/archive" "PUT /containers/*/archive" \
		"could not copy *: " session cp ctx s1:/tmp
}
