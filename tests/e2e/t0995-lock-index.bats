#!/usr/bin/env bats
# The parsed-lock cache, .bv/lock.idx: made by readers and by writers of bv.lock, used only
# while bv.lock is the very file it was made from (dev, inode, size, mtime and ctime), ignored
# when damaged, and never seen half written.  Outputs are the same with and without it.

load lib/common
load lib/project

setup() {
	common_setup
	use_sample_registry
	make_locked_project
	cd "$PROJECT"
	mkdir -p .bv
	# an index is made only for a bv.lock whose ctime is a few clock ticks old (an edit in
	# place within the same tick could otherwise keep the ctime); not a timing assertion
	sleep 0.1
}

# outputs <file>: what the read-only commands print, into <file>
outputs() {
	{
		bv list
		bv list --json
		bv list --binaries
		bv list --binaries --json
		bv list --layers
		bv list --layers --json
		bv lock --check 2>&1
		bv show samtools
	} >"$1"
}

# strace_bv <out> <args>: bv under strace, openat(2) calls into <out> (LeakSanitizer cannot
# run under ptrace, so a sanitizer build does without it here)
strace_bv() {
	local out=$1
	shift
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -e trace=openat,open -o "$out" "$BV" "$@"
}

# opens_lock: whether the next bv list opened bv.lock (strace), "yes" or "no"
opens_lock() {
	strace_bv "$BATS_TEST_TMPDIR/trace" list >/dev/null
	if grep -q '/bv.lock"' "$BATS_TEST_TMPDIR/trace"; then echo yes; else echo no; fi
}

@test "a reader makes the index, later readers use it, and print the same bytes" {
	[ ! -e .bv/lock.idx ]
	BV_LOCK_INDEX=0 outputs "$BATS_TEST_TMPDIR/without"
	[ ! -e .bv/lock.idx ]
	run bv list
	assert_success
	[ -s .bv/lock.idx ]
	outputs "$BATS_TEST_TMPDIR/with"
	run cmp "$BATS_TEST_TMPDIR/without" "$BATS_TEST_TMPDIR/with"
	assert_success
	# no temporary file is left behind
	run ls -A .bv
	assert_output "lock.idx"
	command -v strace >/dev/null || skip "strace is missing (scripts/deps.sh): cannot see which files bv opens"
	run opens_lock
	assert_output no
	BV_LOCK_INDEX=0 strace_bv "$BATS_TEST_TMPDIR/t0" list >/dev/null
	run grep -c '/bv.lock"' "$BATS_TEST_TMPDIR/t0"
	assert_output 1
}

@test "no .bv directory: nothing is created, the lock is parsed" {
	rm -rf .bv
	run bv list --binaries
	assert_success
	assert_line --regexp '^samtools +samtools$'
	[ ! -e .bv ]
}

@test "bv.lock edited by hand, same size and mtime restored, is still seen" {
	run bv list
	assert_success
	assert_line --regexp '^bwa +0\.7\.18 '
	[ -s .bv/lock.idx ]
	stamp=$(stat -c %y bv.lock)
	size=$(stat -c %s bv.lock)
	# in place (same inode), same length: 0.7.18 -> 0.7.19
	sed 's/^version = "0\.7\.18"$/version = "0.7.19"/' bv.lock >"$BATS_TEST_TMPDIR/edited"
	cat "$BATS_TEST_TMPDIR/edited" >bv.lock
	touch -d "$stamp" bv.lock
	assert_equal "$(stat -c %s bv.lock)" "$size"
	assert_equal "$(stat -c %y bv.lock)" "$stamp"
	run bv list
	assert_success
	assert_line --regexp '^bwa +0\.7\.19 '
	refute_line --regexp '^bwa +0\.7\.18 '
}

@test "bv.lock replaced by another file of the same size is seen" {
	run bv list
	assert_success
	sed 's/^version = "0\.7\.18"$/version = "0.7.17"/' bv.lock >bv.lock.new
	touch -r bv.lock bv.lock.new
	mv bv.lock.new bv.lock
	run bv list
	assert_success
	assert_line --regexp '^bwa +0\.7\.17 '
}

@test "a truncated, garbage or altered index is ignored and made again" {
	BV_LOCK_INDEX=0 outputs "$BATS_TEST_TMPDIR/without"
	run bv list
	assert_success
	size=$(stat -c %s .bv/lock.idx)
	cp .bv/lock.idx "$BATS_TEST_TMPDIR/good"
	truncate -s $((size / 2)) .bv/lock.idx
	outputs "$BATS_TEST_TMPDIR/truncated"
	run cmp "$BATS_TEST_TMPDIR/without" "$BATS_TEST_TMPDIR/truncated"
	assert_success
	# the first reader wrote a whole index again
	assert_equal "$(stat -c %s .bv/lock.idx)" "$size"
	run cmp .bv/lock.idx "$BATS_TEST_TMPDIR/good"
	assert_success

	head -c "$size" /dev/urandom >.bv/lock.idx
	outputs "$BATS_TEST_TMPDIR/garbage"
	run cmp "$BATS_TEST_TMPDIR/without" "$BATS_TEST_TMPDIR/garbage"
	assert_success

	# one byte of the payload changed: "samtools" becomes "samtoolz" (same length)
	cp "$BATS_TEST_TMPDIR/good" .bv/lock.idx
	sed -i 's/samtools/samtoolz/' .bv/lock.idx
	outputs "$BATS_TEST_TMPDIR/altered"
	run cmp "$BATS_TEST_TMPDIR/without" "$BATS_TEST_TMPDIR/altered"
	assert_success

	: >.bv/lock.idx
	run bv list --binaries
	assert_success
	assert_line --regexp '^samtools +samtools$'
}

@test "BV_LOCK_INDEX=0 neither reads nor writes the index" {
	run env BV_LOCK_INDEX=0 "$BV" list
	assert_success
	[ ! -e .bv/lock.idx ]
	run bv list
	assert_success
	[ -s .bv/lock.idx ]
	sed -i 's/samtools/samtoolz/' .bv/lock.idx
	before=$(sha256sum <.bv/lock.idx)
	run env BV_LOCK_INDEX=0 "$BV" list
	assert_success
	assert_line --regexp '^samtools +1\.21\.0 '
	assert_equal "$(sha256sum <.bv/lock.idx)" "$before"
}

@test "bv remove writes bv.lock and an index of the new lock" {
	run bv list
	assert_success
	cp .bv/lock.idx "$BATS_TEST_TMPDIR/old"
	run bv remove bwa
	assert_success
	run cmp -s .bv/lock.idx "$BATS_TEST_TMPDIR/old"
	assert_failure
	run bv list
	assert_success
	refute_line --regexp '^bwa '
	assert_line --regexp '^samtools +1\.21\.0 '
	if command -v strace >/dev/null; then
		run opens_lock
		assert_output no
	fi
}

@test "readers while bv.lock is replaced again and again see one lock or the other, whole" {
	cp bv.lock "$BATS_TEST_TMPDIR/a.lock"
	sed 's/^version = "0\.7\.18"$/version = "0.7.17"/' bv.lock >"$BATS_TEST_TMPDIR/b.lock"
	bv list --json >"$BATS_TEST_TMPDIR/a.out"
	cp "$BATS_TEST_TMPDIR/b.lock" bv.lock
	sleep 0.1
	bv list --json >"$BATS_TEST_TMPDIR/b.out"
	run cmp -s "$BATS_TEST_TMPDIR/a.out" "$BATS_TEST_TMPDIR/b.out"
	assert_failure
	# a writer replacing bv.lock by rename, as bv does, 200 times, while readers both use
	# and rewrite the index
	(
		for i in $(seq 100); do
			cp "$BATS_TEST_TMPDIR/a.lock" bv.lock.tmp && mv bv.lock.tmp bv.lock
			cp "$BATS_TEST_TMPDIR/b.lock" bv.lock.tmp && mv bv.lock.tmp bv.lock
		done
	) &
	writer=$!
	bad=0 n=0
	while kill -0 "$writer" 2>/dev/null || [ "$n" -lt 20 ]; do
		"$BV" list --json >"$BATS_TEST_TMPDIR/r.out" 2>"$BATS_TEST_TMPDIR/r.err" || bad=$((bad + 1))
		cmp -s "$BATS_TEST_TMPDIR/r.out" "$BATS_TEST_TMPDIR/a.out" ||
			cmp -s "$BATS_TEST_TMPDIR/r.out" "$BATS_TEST_TMPDIR/b.out" || bad=$((bad + 1))
		n=$((n + 1))
	done
	wait "$writer"
	echo "readers: $n, bad: $bad" >&3
	assert_equal "$bad" 0
	# and once it is quiet, the index follows the last lock
	sleep 0.1
	bv list --json >/dev/null
	run bv list --json
	assert_output "$(cat "$BATS_TEST_TMPDIR/b.out")"
}

@test "list's tiers: <cache>/manifests.tiers follows the kept copies: added, replaced, damaged, removed" {
	# a kept copy of samtools' manifest, named by its digest, pinned by bv.lock (as in t0200)
	manifest="$REGISTRY/tools/samtools/1.21.0.toml"
	dir="$XDG_CACHE_HOME/bv/manifests"
	tiers="$XDG_CACHE_HOME/bv/manifests.tiers"
	mkdir -p "$dir"
	sed 's/^tier = .*/tier = "community"/' "$manifest" >"$dir/copy"
	hex=$(sha256sum "$dir/copy" | cut -d' ' -f1)
	mv "$dir/copy" "$dir/$hex.toml"
	python3 - "$hex" <<'PY'
import sys
text = open("bv.lock").read()
text = text.replace('manifest_sha256 = ""\nimage_size_bytes = 61234567', f'manifest_sha256 = "sha256:{sys.argv[1]}"\nimage_size_bytes = 61234567')
open("bv.lock", "w").write(text)
PY
	sleep 0.1
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +community '
	[ -s "$tiers" ]
	grep -q "^$hex .* =community$" "$tiers"
	# made once the directory had settled: its numbers head the file
	run head -n 1 "$tiers"
	assert_output --regexp '^tiers2( [0-9]+){7}$'
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +community '
	# while they hold, no copy is looked at: one stat of the directory, none per copy
	if command -v strace >/dev/null; then
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			strace -f -e trace=%stat,%fstat,%lstat -o "$BATS_TEST_TMPDIR/stats" "$BV" list >/dev/null
		run grep -c "$hex" "$BATS_TEST_TMPDIR/stats"
		assert_output 0
	fi
	# the copy replaced by rename (the directory changes): the new tier shows
	sed 's/^tier = "community"$/tier = "core"/' "$dir/$hex.toml" >"$dir/new"
	mv -f "$dir/new" "$dir/$hex.toml"
	run bv list
	assert_success
	assert_line --regexp '^samtools +1\.21\.0 +core '
	sleep 0.1
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +core '
	grep -q "^$hex .* =core$" "$tiers"
	# a damaged cache file is ignored whole
	sed -i 's/=core$/=community/' "$tiers"
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +core '
	# a new copy of another locked tool (the directory changes) is read and recorded
	bwa_manifest="$REGISTRY/tools/bwa/0.7.18.toml"
	sed 's/^tier = .*/tier = "experimental"/' "$bwa_manifest" >"$dir/copy"
	bwa_hex=$(sha256sum "$dir/copy" | cut -d' ' -f1)
	mv "$dir/copy" "$dir/$bwa_hex.toml"
	python3 - "$bwa_hex" <<'PY'
import re, sys
text = open("bv.lock").read()
text = re.sub(r'(tool_id = "bwa"\n(?:(?!\[\[).*\n)*?)manifest_sha256 = ""', lambda m: m.group(1) + f'manifest_sha256 = "sha256:{sys.argv[1]}"', text)
open("bv.lock", "w").write(text)
PY
	run bv list
	assert_line --regexp '^bwa +[^ ]+ +experimental '
	assert_line --regexp '^samtools +1\.21\.0 +core '
	# the copy written in place no longer matches its name: a damaged copy, which the
	# directory's numbers do not show; bv cache verify removes it, and its tier goes
	sleep 0.1
	bv list >/dev/null
	stamp=$(stat -c %y "$dir/$hex.toml")
	sed 's/^tier = "core"$/tier = "rare"/' "$dir/$hex.toml" >"$BATS_TEST_TMPDIR/edited"
	cat "$BATS_TEST_TMPDIR/edited" >"$dir/$hex.toml"
	touch -d "$stamp" "$dir/$hex.toml"
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +core '
	run bv cache verify
	[ ! -e "$dir/$hex.toml" ]
	run bv list
	assert_line --regexp '^samtools +1\.21\.0 +- '
	run bv list --json
	run python3 -c 'import json,sys; print({t["id"]: t["tier"] for t in json.load(sys.stdin)})' <<<"$output"
	assert_output "{'bwa': 'experimental', 'samtools': None}"
}

@test "shims: .bv/bin.ok spares the link checks only while .bv/bin is the directory it saw" {
	exe=$(readlink -f "$BV")
	# bv shell writes stale shims before it starts the shell (here one that exits at once)
	run bv shell --shell /bin/true
	assert_success
	assert_equal "$(readlink .bv/bin/samtools)" "$exe"
	sleep 0.1
	run bv shell --shell /bin/true
	assert_success
	[ -s .bv/bin.ok ]
	if command -v strace >/dev/null; then
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			strace -f -e trace=readlinkat -o "$BATS_TEST_TMPDIR/links" "$BV" shell --shell /bin/true
		run grep -c '^[0-9]* *readlinkat(' "$BATS_TEST_TMPDIR/links"
		assert_output 0
	fi
	# a shim pointed elsewhere: seen, and written again
	ln -sfn /bin/false .bv/bin/samtools
	run bv shell --shell /bin/true
	assert_success
	assert_equal "$(readlink .bv/bin/samtools)" "$exe"
	sleep 0.1
	run bv shell --shell /bin/true
	# a stray file: seen, and the directory written again without it
	sleep 0.1
	touch .bv/bin/stray
	run bv shell --shell /bin/true
	assert_success
	[ ! -e .bv/bin/stray ]
	# a damaged stamp only costs the full check
	echo garbage >.bv/bin.ok
	run bv shell --shell /bin/true
	assert_success
	assert_equal "$(readlink .bv/bin/samtools)" "$exe"
}
