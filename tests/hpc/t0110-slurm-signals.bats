#!/usr/bin/env bats
# What a scheduler does to a running bv: kill -9 of a node's tasks in the middle of a pull
# into the shared cache (scancel --signal=KILL --full), and scancel of a long tool run.
# The interrupted pull uses tests/fixtures/fake_registry.py, which can send blobs slowly.

load lib
load ../e2e/lib/fake_registry

setup_file() {
	hpc_up
	fake_images_build
}

teardown_file() {
	hpc_down
}

setup() {
	hpc_setup
}

teardown() {
	fake_stop
}

# job_gone JOBID: waits (up to 30 s) until the controller no longer lists JOBID as pending,
# running or completing.
job_gone() {
	local i
	for ((i = 0; i < 300; i++)); do
		squeue -h -j "$1" -t PD,R,CG,S 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
	return 1
}

# procs_in FILE TEXT: PIDs whose /proc/PID/FILE (cmdline or environ, NUL-separated) holds
# TEXT, with NULs read as blanks; one python3 for all of /proc, which stays fast on a busy
# machine.
procs_in() {
	python3 - "$1" "$2" <<'PY'
import os, sys
what, text = sys.argv[1], sys.argv[2].encode()
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        with open(f"/proc/{pid}/{what}", "rb") as f:
            data = f.read().replace(b"\0", b" ")
    except OSError:
        continue
    if text in data:
        print(pid)
PY
}

# procs_with TEXT: PIDs whose command line contains TEXT.
procs_with() {
	procs_in cmdline "$1"
}

# procs_env NAME=VALUE: PIDs whose environment holds that entry (a job's processes inherit
# what sbatch --export gave it).
procs_env() {
	procs_in environ "$1 "
}

# lease_free ROOTFS: nobody holds the run lease of ROOTFS (a POSIX write lock on the lease
# file conflicts with the OFD read lock a run holds).
lease_free() {
	python3 -c 'import fcntl, sys
f = open(sys.argv[1] + ".lease", "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)' "$1"
}

@test "kill -9 of a node's tasks mid-pull leaves the shared cache valid; the next job completes" {
	fake_init "$BATS_TEST_TMPDIR/fake"
	fake_add_image samtools 1.16.1--debian
	# every blob comes 1 KiB at a time
	fake_start '[{"match": "/blobs/", "times": -1, "action": "slow", "delay": 0.002}]'
	"$HPC_SLURM" forward "${ADDR##*:}" "$FAKE_PORT"
	# a project locked against the fake (manifests only), with an empty cache
	rm -rf "$PROJ" && mkdir "$PROJ" && cd "$PROJ"
	bv init slow >/dev/null 2>&1
	allow_shell_binary
	printf '\n[[tools]]\nid = "samtools"\n' >>bv.toml
	run bv lock
	assert_success
	rm -rf "$BV_CACHE_DIR"
	tag=BV_HPC_TAG=$$-$RANDOM
	run sbatch --parsable --export="ALL,$tag" -N 1 -w node1 -o sync.out --wrap 'exec bv sync'
	assert_success
	job=$output
	for ((i = 0; i < 300; i++)); do
		grep -q '^GET .*/blobs/' "$FAKE_LOG" 2>/dev/null && break
		sleep 0.1
	done
	grep -q '^GET .*/blobs/' "$FAKE_LOG"
	sleep 1
	run scancel --signal=KILL --full "$job"
	assert_success
	job_gone "$job"
	assert_equal "$(procs_env "$tag")" ""
	# the pull had not finished: no root filesystem yet
	[ -z "$(ls "$BV_CACHE_DIR"/rootfs/ 2>/dev/null)" ]
	run bv cache verify
	assert_success
	# the registry heals; another node finishes the pull
	fake_start
	"$HPC_SLURM" forward "${ADDR##*:}" "$FAKE_PORT"
	run srun -N 1 -w node2 sh -c 'bv sync >/dev/null 2>&1 || exit 9; bv run samtools --version | head -n 1'
	assert_success
	assert_output "samtools 1.16.1"
	run bv cache verify
	assert_success
}

@test "scancel reaches the tool: no process, mount or run lease of bv is left" {
	use_warm_cache
	token=$((4000000 + RANDOM))
	run sbatch --parsable -N 1 -w node2 -o run.out --wrap "bv run sh -c 'echo started >started; exec sleep $token'"
	assert_success
	job=$output
	for ((i = 0; i < 300; i++)); do
		[ -e started ] && [ -n "$(procs_with "sleep $token")" ] && break
		sleep 0.1
	done
	[ -n "$(procs_with "sleep $token")" ]
	# the positive control: while the tool runs, its run holds the lease of samtools' tree
	rootfs=""
	for lease in "$BV_CACHE_DIR"/rootfs/*.lease; do
		lease_free "${lease%.lease}" 2>/dev/null || rootfs=${lease%.lease}
	done
	[ -d "$rootfs" ]
	run scancel "$job"
	assert_success
	job_gone "$job"
	for ((i = 0; i < 50; i++)); do
		[ -z "$(procs_with "sleep $token")" ] && break
		sleep 0.1
	done
	assert_equal "$(procs_with "sleep $token")" ""
	lease_free "$rootfs"
	# the native backend's mounts lived in the run's own mount namespace: none is left
	# in the node's (slurmd's) namespace or on the host
	slurmd_pid=$(cat "$BV_HPC_STATE/pid/slurmd-node2.pid")
	run grep -F "$BV_CACHE_DIR" "/proc/$slurmd_pid/mountinfo" /proc/self/mountinfo
	assert_failure
}
