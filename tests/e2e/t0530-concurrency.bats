#!/usr/bin/env bats
# Concurrent commands on one project: the project lock (.bv/lock, bv/project.h) makes every
# read-modify-write of bv.toml, bv.lock and .bv/bin one transaction, so no change is lost and
# the three always agree.  Tools come from the fixture bv-registry and the loopback registry
# (tests/fixtures/images.sh); one cache for the whole file, so after the first pull each add
# only edits files and the races are as tight as they get.

load lib/common

ROUNDS=20

setup_file() {
	fixture_images_up
	CONC_CACHE="$BATS_FILE_TMPDIR/cache"
	CONC_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	export CONC_CACHE CONC_REGISTRY
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$CONC_REGISTRY"
}

teardown_file() {
	fixture_images_down
}

setup() {
	common_setup
	export BV_CACHE_DIR="$CONC_CACHE" BV_REGISTRY="$CONC_REGISTRY"
	export BV_MIRRORS="quay.io=$ADDR" BV_BACKEND=native BV
	mkdir -p "$BATS_TEST_TMPDIR/proj" && cd "$BATS_TEST_TMPDIR/proj" || return 1
}

# agree TOOL...: bv.toml declares exactly TOOL..., bv.lock locks exactly those, every
# binary of bv.lock's index has its shim in .bv/bin, every locked tool has a shim, and no
# shim exists without a locked binary.  Prints what differs.
agree() {
	python3 - "$@" <<'PY'
import os, sys, tomllib
want = set(sys.argv[1:])
toml = {t["id"] for t in tomllib.load(open("bv.toml", "rb")).get("tools", [])}
lock = tomllib.load(open("bv.lock", "rb"))
locked = set(lock.get("tools", {}))
index = lock.get("binary_index", {})
shims = set(os.listdir(".bv/bin"))
problems = []
if toml != want:
    problems.append(f"bv.toml declares {sorted(toml)}, want {sorted(want)}")
if locked != want:
    problems.append(f"bv.lock locks {sorted(locked)}, want {sorted(want)}")
if set(index) != shims:
    problems.append(f"binary index {sorted(index)} but shims {sorted(shims)}")
if set(index.values()) != locked:
    problems.append(f"binary index covers {sorted(set(index.values()))}, locked {sorted(locked)}")
for s in shims:
    if os.readlink(os.path.join(".bv/bin", s)) != os.path.realpath(os.environ["BV"]):
        problems.append(f"shim {s} does not point at bv")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}

# hold_lock SECONDS: holds .bv/lock from another process (a POSIX record lock, which
# conflicts with bv's OFD lock) and returns once the lock is held, with its PID in HOLDER.
hold_lock() {
	python3 - "$1" >/dev/null 2>&1 <<'PY' &
import fcntl, os, sys, time
fd = os.open(".bv/lock", os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(".held", "w").close()
# Held for the given seconds, or until the test creates .release.
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and not os.path.exists(".release"):
    time.sleep(0.02)
PY
	HOLDER=$!
	for _ in $(seq 100); do [ -e .held ] && break; sleep 0.05; done
	[ -e .held ]
}

@test "three concurrent adds of different tools: all three land, $ROUNDS rounds" {
	for round in $(seq $ROUNDS); do
		rm -rf bv.toml bv.lock .bv .gitignore
		bv init conc >/dev/null 2>&1
		bv add samtools >"out.1" 2>&1 &
		p1=$!
		bv add bwa >"out.2" 2>&1 &
		p2=$!
		bv add minimap2 >"out.3" 2>&1 &
		p3=$!
		for p in $p1 $p2 $p3; do
			wait "$p" || { echo "round $round: an add failed"; cat out.*; return 1; }
		done
		run agree samtools bwa minimap2
		[ "$status" -eq 0 ] || { echo "round $round: $output"; cat out.*; return 1; }
	done
}

@test "a remove and an add at once: neither is lost, $ROUNDS rounds" {
	bv init conc >/dev/null 2>&1
	run bv add samtools bwa
	assert_success
	mkdir base && cp -a bv.toml bv.lock .bv base/
	for round in $(seq $ROUNDS); do
		rm -rf bv.toml bv.lock .bv && cp -a base/bv.toml base/bv.lock base/.bv .
		bv remove bwa >out.1 2>&1 &
		p1=$!
		bv add minimap2 >out.2 2>&1 &
		p2=$!
		for p in $p1 $p2; do
			wait "$p" || { echo "round $round: a command failed"; cat out.*; return 1; }
		done
		run agree samtools minimap2
		[ "$status" -eq 0 ] || { echo "round $round: $output"; cat out.*; return 1; }
	done
}

@test "two concurrent inits: exactly one creates bv.toml, the other says it exists" {
	for round in $(seq $ROUNDS); do
		rm -f bv.toml
		bv init one >out.1 2>&1 &
		p1=$!
		bv init two >out.2 2>&1 &
		p2=$!
		s1=0 s2=0
		wait $p1 || s1=$?
		wait $p2 || s2=$?
		[ $((s1 == 0)) -ne $((s2 == 0)) ] || { echo "round $round: $s1 $s2"; cat out.*; return 1; }
		grep -q "bv.toml' already exists" out.1 out.2
		run python3 -c 'import tomllib; print(tomllib.load(open("bv.toml", "rb"))["project"]["name"])'
		[ "$output" = one ] || [ "$output" = two ]
	done
}

@test "a writer waits for the lock with a note; readers do not wait" {
	bv init conc >/dev/null 2>&1
	run bv add samtools bwa
	assert_success
	# Held until this test releases it, so a slow machine cannot let the writer through early.
	hold_lock 60
	# a reader goes ahead while the lock is held
	run timeout 5 "$BV" list
	assert_success
	assert_output --partial samtools
	# so does a warm sync: it writes nothing, so it takes no lock
	run timeout 5 "$BV" sync
	assert_success
	assert_output "Everything is up to date (2 tools)"
	"$BV" remove bwa >remove.out 2>&1 &
	remover=$!
	for _ in $(seq 400); do grep -q "Waiting for another bv" remove.out && break; sleep 0.05; done
	# still waiting: the writer has not gone ahead
	kill -0 "$remover"
	run cat bv.toml
	assert_output --partial bwa
	touch .release
	wait "$remover"
	run cat remove.out
	assert_line "Waiting for another bv process on this project"
	assert_line "Removed bwa"
	wait "$HOLDER" || true
	run agree samtools
	assert_success
}

@test "sync rewrites stale shims under the lock, from bv.lock as it is then" {
	bv init conc >/dev/null 2>&1
	run bv add samtools
	assert_success
	rm -rf .bv/bin
	hold_lock 1.5
	# while sync waits, the holder's change to bv.lock lands; sync's shims must follow it
	bv add bwa >/dev/null 2>&1 &
	adder=$!
	run bv sync
	assert_success
	wait "$adder"
	wait "$HOLDER" || true
	run agree samtools bwa
	assert_success
}

@test "a writer killed with SIGKILL leaves no stale lock" {
	bv init conc >/dev/null 2>&1
	run bv add samtools bwa
	assert_success
	hold_lock 60
	run timeout 0.5 "$BV" remove bwa
	assert_failure 124 # waiting
	kill -9 "$HOLDER"
	wait "$HOLDER" 2>/dev/null || true
	run timeout 5 "$BV" remove bwa
	assert_success
	refute_output --partial "Waiting"
}

@test "the lock file is not world-writable, whatever the umask" {
	bv init conc >/dev/null 2>&1
	run bv add samtools
	assert_success
	rm .bv/lock
	(umask 000 && bv add bwa >/dev/null 2>&1)
	run stat -c %a .bv/lock
	assert_output 644
	chmod 666 .bv/lock
	run bv remove bwa
	assert_success
	run stat -c %a .bv/lock
	assert_output 644
}

@test "a project whose .bv cannot be created: a clear error, nothing written" {
	bv init conc >/dev/null 2>&1
	printf '\n[[tools]]\nid = "samtools"\n' >>bv.toml
	cp bv.toml before.toml
	unshare -rm true 2>/dev/null || skip "no user and mount namespaces here"
	run unshare -rm sh -c 'mount --bind . . && mount -o remount,bind,ro . && exec "$0" remove samtools' "$BV"
	assert_failure
	assert_output --partial "could not create '$(pwd -P)/.bv' for the project lock"
	assert_output --partial "Read-only file system"
	cmp bv.toml before.toml
}
