#!/usr/bin/env bats
# The demo's pipeline through `bv run` against the same Debian tools run directly on the host:
#
#   bwa index ref.fa
#   bwa mem ref.fa reads.fq | samtools sort -o out.bam -
#   samtools index out.bam
#   samtools flagstat out.bam
#
# The images (tests/fixtures/images.sh) are built from the very Debian packages the host has
# installed (samtools 1.16.1, bwa 0.7.17, htslib 1.16), so the outputs must agree byte for
# byte: bwa mem is deterministic (one thread; the batch size does not depend on anything but
# -t and -K), and both sides are run from the same directory with the same relative paths and
# argv[0], so even bwa's @PG CL field matches.  Reads and reference come from
# tests/fixtures/simreads.py with a fixed seed.  The run must also leave nothing behind: no
# mount, no process, no temporary directory.

load lib/common

fixtures() { echo "$BV_SOURCE_DIR/tests/fixtures"; }

# host_version TOOL: what the host's Debian binary says its version is.
host_version() {
	case $1 in
	samtools) samtools --version | sed -n '1s/^samtools //p' ;;
	bwa) bwa 2>&1 | sed -n 's/^Version: \([0-9.]*\).*/\1/p' ;;
	esac
}

setup_file() {
	local t want got pkg host_v image_v packages
	# bats 1.8 cannot skip from setup_file; setup() skips every test instead.
	for t in samtools bwa; do
		if ! command -v "$t" >/dev/null; then
			export NO_HOST_TOOL="the host's $t is missing (scripts/deps.sh installs Debian's samtools and bwa)"
			return 0
		fi
	done
	fixture_images_up

	# The comparison is only meaningful between identical builds: the host's packages must be
	# the ones the images were made from.  A mismatch is a broken machine, not a skip.
	packages=$("$(fixtures)/images.sh" path)/packages.txt
	for pkg in samtools bwa libhts3; do
		image_v=$(sed -n "s/^$pkg=//p" "$packages")
		host_v=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null || true)
		if [[ $image_v != "$host_v" ]]; then
			echo "# the host has $pkg '${host_v:-not installed}' but the images have '$image_v'" >&2
			echo "# (apt-get install $pkg=$image_v, or rebuild the images)" >&2
			return 1
		fi
	done
	for t in samtools:1.16.1 bwa:0.7.17; do
		want=${t#*:} got=$(host_version "${t%%:*}")
		if [[ $got != "$want" ]]; then
			echo "# host ${t%%:*} is version '$got', the images and this test expect '$want'" >&2
			return 1
		fi
	done

	# One project with both tools locked and pulled; each test works on a copy of it.
	export BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache" BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	cp -r "$(fixtures)/bv-registry" "$BV_REGISTRY"
	mkdir -p "$BATS_FILE_TMPDIR/template"
	(
		cd "$BATS_FILE_TMPDIR/template" &&
			"$BV" init align &&
			"$BV" add samtools bwa &&
			python3 "$(fixtures)/simreads.py" . --reads 400 --length 100
	)

	# The same pipeline on the host, in a directory of the same shape.
	mkdir -p "$BATS_FILE_TMPDIR/host"
	cp "$BATS_FILE_TMPDIR/template/ref.fa" "$BATS_FILE_TMPDIR/template/reads.fq" \
		"$BATS_FILE_TMPDIR/host/"
	(
		set -eo pipefail
		cd "$BATS_FILE_TMPDIR/host"
		bwa index ref.fa 2>/dev/null
		bwa mem ref.fa reads.fq 2>/dev/null >mem.sam
		samtools sort -o out.bam - <mem.sam
		samtools index out.bam
		samtools flagstat out.bam >flagstat.txt
	)
}

teardown_file() {
	[[ -n ${ADDR:-} ]] || return 0
	fixture_images_down
}

setup() {
	[[ -z ${NO_HOST_TOOL:-} ]] || skip "$NO_HOST_TOOL"
	common_setup
	export BV_CACHE_DIR="$BATS_FILE_TMPDIR/cache" BV_MIRRORS="quay.io=$ADDR"
	export BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	cp -r "$BATS_FILE_TMPDIR/template" "$BATS_TEST_TMPDIR/proj"
	cd "$BATS_TEST_TMPDIR/proj" || return 1
	HOST="$BATS_FILE_TMPDIR/host"
}

# view_without_pg BAM: the header and every record, decoded, without @PG lines.  The BAM
# bytes are not compared: a BAM header carries each program's command line (@PG CL: any
# difference in a path, argv[0] or an option changes it, and the compressed blocks after it
# shift), and the compressed bytes also depend on the zlib/libdeflate build, which is not what
# this test is about.  With @PG dropped (and `samtools view --no-PG`, which would otherwise add
# its own), what describes the alignments is compared exactly: @HD with the sort order, @SQ,
# and every record.
view_without_pg() {
	samtools view -h --no-PG "$1" | grep -v '^@PG'
}

@test "bwa index and bwa mem through bv run write exactly what the host's bwa writes" {
	run bv run bwa index ref.fa
	assert_success
	for f in ref.fa.amb ref.fa.ann ref.fa.bwt ref.fa.pac ref.fa.sa; do
		cmp "$f" "$HOST/$f"
	done
	bv run bwa mem ref.fa reads.fq 2>/dev/null >mem.sam
	[ -s mem.sam ]
	# Byte-identical, @PG included: same argv, same relative paths.
	cmp mem.sam "$HOST/mem.sam"
	grep -q $'^@PG\tID:bwa\tPN:bwa\tVN:0.7.17-r1188\tCL:bwa mem ref.fa reads.fq$' mem.sam
	# and it aligned: 384 of the 400 reads come from the reference (simreads.py)
	run samtools view -c -F 4 mem.sam
	assert_output 384
}

@test "bwa mem | samtools sort through two bv runs gives the host's records and header" {
	bv run bwa index ref.fa 2>/dev/null
	set -o pipefail
	bv run bwa mem ref.fa reads.fq 2>/dev/null | bv run samtools sort -o out.bam -
	[ -s out.bam ]
	run samtools quickcheck out.bam
	assert_success
	diff <(view_without_pg out.bam) <(view_without_pg "$HOST/out.bam")
	run samtools view -H out.bam
	assert_line --regexp $'^@HD\tVN:1\\.[0-9]+\tSO:coordinate$'
	assert_line --regexp $'^@PG\tID:samtools\tPN:samtools\tPP:bwa\tVN:1\\.16\\.1\tCL:samtools sort -o out.bam -$'
	[ "$(view_without_pg out.bam | grep -vc '^@')" -eq 400 ]
}

@test "samtools index and flagstat through bv run agree with the host's" {
	bv run bwa index ref.fa 2>/dev/null
	set -o pipefail
	bv run bwa mem ref.fa reads.fq 2>/dev/null | bv run samtools sort -o out.bam -
	run bv run samtools index out.bam
	assert_success
	[ -s out.bam.bai ]
	# The index is usable: a region query through the host's samtools returns chrB's reads.
	run samtools view -c out.bam chrB
	assert_success
	[ "$output" -eq "$(samtools view -c "$HOST/out.bam" chrB)" ]
	[ "$output" -gt 0 ]
	run bv run samtools flagstat out.bam
	assert_success
	assert_output "$(cat "$HOST/flagstat.txt")"
	assert_line "400 + 0 in total (QC-passed reads + QC-failed reads)"
	assert_line "384 + 0 mapped (96.00% : N/A)"
}

# mounts_of_ours: this mount namespace's table, without the lines container engines elsewhere
# on the machine add and remove on their own (overlay roots, network namespaces, engine
# state), so that a concurrently running daemon cannot make the count move.  bv's native
# runner mounts only inside its own namespace; a leak would show up as the rootfs, /proc,
# /dev, /sys, /tmp or /workspace mounts, none of which match these.
mounts_of_ours() {
	grep -Ev ' /([^ ]*/)?(overlay2?|containers|containerd|docker|dockerd|podman|netns)(/| )' \
		/proc/self/mountinfo
}

# leftover_processes ROOT_PID: processes descending from ROOT_PID, and processes anywhere
# whose working directory is in this test's directory, or whose command line mentions it or
# runs bv, bwa or samtools on this test's files (orphans are re-parented away from us, so
# descent alone would miss them).  The scanner excludes itself and the shell that runs it.
leftover_processes() {
	python3 - "$1" "$BATS_TEST_TMPDIR" <<'EOF'
import os, sys
root, tmpdir = int(sys.argv[1]), sys.argv[2]
me = {os.getpid(), os.getppid()}
parent, cmdline, cwd = {}, {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open("/proc/%s/stat" % p) as f:
            stat = f.read()
        with open("/proc/%s/cmdline" % p, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        continue
    try:
        cwd[int(p)] = os.readlink("/proc/%s/cwd" % p)
    except OSError:
        cwd[int(p)] = ""
    parent[int(p)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    cmdline[int(p)] = cmd
a = os.getpid()
while a in parent:  # the scanner, the test shell and bats above it
    me.add(a)
    a = parent[a]
for pid in sorted(parent):
    if pid in me:
        continue
    a, descends = pid, False
    while a > 1 and a in parent:
        a = parent[a]
        if a == root:
            descends = True
            break
    words = cmdline[pid].split()
    tool = bool(words) and os.path.basename(words[0]) in ("bv", "bwa", "samtools") and any(
        w in ("ref.fa", "reads.fq", "out.bam", "-") for w in words)
    inside = (cwd[pid] + "/").startswith(tmpdir + "/")
    if descends or inside or tmpdir in cmdline[pid] or tool:
        print(pid, cmdline[pid])
EOF
}

# bv_tmp_entries: what in /tmp looks like bv's own.  /tmp is shared with everything else on
# the machine, so only names containing "bv" count, minus the temporary dirs of the unit
# tests (test_mkdtemp: bv-test-*) and of the scripts (demo, benchmarks) that another run may
# create meanwhile; and only additions count, since those others also delete theirs.
bv_tmp_entries() {
	find /tmp -mindepth 1 -maxdepth 1 -iname '*bv*' ! -name 'bv-test-*' ! -name 'bv-demo.*' \
		! -name 'bv-bench*' -printf '%f\n' | LC_ALL=C sort
}

@test "the pipeline leaves no mount, no process and no temporary directory behind" {
	local me=$BASHPID
	files_before=$(ls -A)
	mounts_before=$(mounts_of_ours | wc -l)
	bv_tmp_entries >"$BATS_TEST_TMPDIR/tmp-before"
	# A bv that honours TMPDIR puts its temporary files here; one that does not, in /tmp.
	export TMPDIR="$BATS_TEST_TMPDIR/tmpdir"
	mkdir "$TMPDIR"
	run leftover_processes "$me"
	assert_output ""

	bv run bwa index ref.fa 2>/dev/null
	set -o pipefail
	bv run bwa mem ref.fa reads.fq 2>/dev/null | bv run samtools sort -o out.bam -
	bv run samtools index out.bam
	bv run samtools flagstat out.bam >/dev/null
	[ -s out.bam.bai ]

	mounts_after=$(mounts_of_ours | wc -l)
	if [[ $mounts_after != "$mounts_before" ]]; then
		echo "mounts: $mounts_before before, $mounts_after after; now:" >&2
		mounts_of_ours | tail -n 10 >&2
		false
	fi
	run leftover_processes "$me"
	assert_output ""
	run comm -13 "$BATS_TEST_TMPDIR/tmp-before" <(bv_tmp_entries)
	assert_output ""
	run ls -A "$TMPDIR"
	assert_output ""
	# and nothing of the run is left in the project beyond its outputs (no samtools sort
	# temporary files, nothing of bv's)
	run ls -A
	assert_output "$(printf '%s\n' $files_before out.bam out.bam.bai ref.fa.amb ref.fa.ann \
		ref.fa.bwt ref.fa.pac ref.fa.sa | LC_ALL=C sort)"
}
