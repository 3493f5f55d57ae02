#!/usr/bin/env bats
# bv under Slurm: the two-node cluster of tests/hpc/slurm.sh (slurmctld, slurmd node1 and
# node2, each node in its own network and mount namespace) sharing one project directory and
# one BV_CACHE_DIR, as nodes share a parallel file system.  Tools come from the fixture
# registry (tests/fixtures/images.sh), relayed into the nodes' namespaces.

load lib

setup_file() {
	hpc_up
}

teardown_file() {
	hpc_down
}

setup() {
	hpc_setup
}

teardown() {
	if [ -e "$BATS_TEST_TMPDIR/dockerd-started" ]; then
		"$BV_SOURCE_DIR/tests/fixtures/dockerd.sh" stop >/dev/null 2>&1 || true
	fi
}

@test "the harness: two nodes, each with its own node-local scratch and TMPDIR" {
	run srun -N 2 -n 2 --label sh -c 'echo "$SLURMD_NODENAME $TMPDIR" >"$BV_HPC_LOCAL/who"; cat "$BV_HPC_LOCAL/who"'
	assert_success
	assert_line "0: node1 $BV_HPC_LOCAL/tmp"
	assert_line "1: node2 $BV_HPC_LOCAL/tmp"
	# one path, a different directory on every node, and none of it on the host's path
	[ "$(cat "$BV_HPC_STATE/nodes/node1/local/who")" = "node1 $BV_HPC_LOCAL/tmp" ]
	[ "$(cat "$BV_HPC_STATE/nodes/node2/local/who")" = "node2 $BV_HPC_LOCAL/tmp" ]
	[ ! -e "$BV_HPC_LOCAL/who" ]
}

@test "srun on two nodes: a cold shared cache is pulled once and both tasks run samtools" {
	mark=$(log_mark)
	run srun -N 2 -n 2 --label sh -c 'bv sync >/dev/null 2>&1 || exit 9; bv run samtools --version | head -n 1; echo "$SLURMD_NODENAME"'
	assert_success
	assert_line "0: samtools 1.16.1"
	assert_line "1: samtools 1.16.1"
	assert_line "0: node1"
	assert_line "1: node2"
	# every blob of samtools and bwa fetched exactly once, however the two syncs interleaved
	read -r total distinct < <(blob_gets "$mark")
	[ "$distinct" -ge 4 ]
	assert_equal "$total" "$distinct"
	run bv cache verify
	assert_success
}

@test "an sbatch pipeline bwa mem | samtools sort writes what the same pipeline writes locally" {
	use_warm_cache
	bv run bwa index ref.fa 2>/dev/null
	# the same command lines in both runs (samtools and bwa record them in @PG), each run in
	# its own directory
	cat >job.sh <<'SH'
#!/bin/sh
set -e
cd "$1"
bv run bwa mem ../ref.fa ../reads.fq 2>/dev/null | bv run samtools sort -o aln.bam - 2>/dev/null
echo "ran on $SLURMD_NODENAME"
SH
	mkdir slurm local
	run sbatch --parsable -N 1 -w node2 -o job.out job.sh slurm
	assert_success
	job_wait "$output"
	assert_equal "$(cat job.out)" "ran on node2"
	(cd local && sh ../job.sh .)
	cmp slurm/aln.bam local/aln.bam
	run bv run samtools view -c -F 4 slurm/aln.bam
	assert_output 384
}

@test "a task's CPU binding, SLURM_* and TMPDIR context reach bv run and bv doctor" {
	use_warm_cache
	# task/affinity binds each task to its own CPU; the tool (native backend) keeps it
	run srun -N 1 -w node1 -n 2 -c 1 --cpu-bind=cores --label sh -c 'grep Cpus_allowed_list /proc/self/status | cut -f2; bv run sh -c "echo \$(grep Cpus_allowed_list /proc/self/status | cut -f2) \$SLURM_CPUS_PER_TASK \$SLURM_PROCID \${TMPDIR-none}"'
	assert_success
	assert_line "0: 0"
	assert_line "0: 0 1 0 none"
	assert_line "1: 1"
	assert_line "1: 1 1 1 none"
	run srun -N 1 -w node2 -n 1 -c 1 --cpu-bind=cores bv doctor
	assert_success
	assert_line --regexp '^  slurm       job [0-9]+, step 0, node node2$'
	assert_line '  cpus        1 granted; affinity 0'
	assert_line '  gpus        none granted'
	assert_line "  scratch     $BV_HPC_LOCAL/tmp"
	run env -u SLURM_JOB_ID "$BV" doctor
	refute_line --partial 'Scheduler'
}

@test "the docker backend under srun: each container gets its task's CPUs (CpusetCpus)" {
	[ -x "${BV_DOCKERD:-/usr/sbin/dockerd}" ] || skip "dockerd is not installed"
	fix=$BV_SOURCE_DIR/tests/fixtures
	"$fix/dockerd.sh" status >/dev/null 2>&1 || touch "$BATS_TEST_TMPDIR/dockerd-started"
	sock=$("$fix/dockerd.sh" start)
	# the daemon's socket is a file, so the nodes reach it through the shared file system
	export DOCKER_HOST="unix://$sock"
	run bv sync --backend docker
	assert_success
	run srun -N 1 -w node2 -n 2 -c 1 --cpu-bind=cores --label bv run --backend docker sh -c 'grep Cpus_allowed_list /proc/self/status | cut -f2'
	assert_success
	assert_line "0: 0"
	assert_line "1: 1"
}

@test "a job of an unprivileged user syncs its own cache and runs tools as that user" {
	command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
	# the bats directories are private; let the other user through to the project, the
	# cache and the tool registry
	mkdir -p "$BV_CACHE_DIR"
	for d in "$PROJ" "$BV_CACHE_DIR" "$BV_REGISTRY"; do
		while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
	done
	chmod -R a+rwX "$PROJ"
	chmod -R a+rX "$BV_REGISTRY"
	chown 65534:65534 "$BV_CACHE_DIR"
	reachable=$(reachable_bv)
	# the client enters the controller's namespace as root, then becomes nobody
	run nsenter --net="$BV_HPC_NETNS" setpriv --reuid 65534 --regid 65534 --clear-groups \
		env HOME=/tmp /usr/bin/srun -N 1 -w node1 sh -c "id -u; '$reachable' sync >/dev/null 2>&1 || exit 9; '$reachable' run samtools --version | head -n 1; '$reachable' run sh -c 'touch mine'"
	assert_success
	assert_line --index 0 "65534"
	assert_line --index 1 "samtools 1.16.1"
	[ "$(stat -c %u mine)" = 65534 ]
	[ "$(stat -c %u "$BV_CACHE_DIR/store")" = 65534 ]
}
