#!/usr/bin/env bats
# The Snakemake example (examples/snakemake) on the two-node cluster: Debian's snakemake 7
# submits each rule with sbatch and asks scontrol for its state (no slurmdbd here, so no
# sacct, which the --slurm executor needs); every rule runs its tool through `bv run`.

load lib

setup_file() {
	hpc_up
	if ! command -v snakemake >/dev/null; then
		skip "snakemake is not installed (scripts/deps.sh installs Debian's)"
	fi
}

teardown_file() {
	hpc_down
}

setup() {
	hpc_setup
	cp "$BV_SOURCE_DIR/examples/snakemake/Snakefile" .
}

# records BAM: the alignments of BAM, a path in the working directory's project (without
# the header, whose @PG lines hold command lines).
records() {
	bv run samtools view "$1" | md5sum
}

# ran_on NODE: how many of the jobs in logs/ slurmd NODE launched.
ran_on() {
	local f n=0
	for f in logs/slurm-*.out; do
		f=${f#logs/slurm-}
		grep -q "Launching batch job ${f%.out} " "$BV_HPC_STATE/log/slurmd-$1.log" && n=$((n + 1))
	done
	echo "$n"
}

@test "the Snakemake workflow on Slurm pulls each image once and writes what a local run writes" {
	cp -r "$PROJ" "$BATS_TEST_TMPDIR/local"
	mark=$(log_mark)
	mkdir logs
	# CI=true: snakemake 7 polls job states every second instead of every 10 s.  -c 2: each
	# job fills a node, so the two jobs that can run at once (index, flagstat) take both.
	CI=true run timeout 300 snakemake -j 4 --latency-wait 10 \
		--cluster "sbatch --parsable -N 1 -n 1 -c 2 -o logs/slurm-%j.out" \
		--cluster-status "$BV_SOURCE_DIR/examples/snakemake/slurm-status.sh" \
		--max-status-checks-per-second 5
	if [ "$status" -ne 0 ]; then
		cat logs/* >&2 || true
	fi
	assert_success
	# every rule ran as a job (sync, bwa_index, bwa_mem, sort, index, flagstat, call)
	assert_equal "$(ls logs | wc -l)" 7
	# both nodes took part
	[ "$(ran_on node1)" -ge 1 ]
	[ "$(ran_on node2)" -ge 1 ]
	assert_equal "$(($(ran_on node1) + $(ran_on node2)))" 7
	# the cold shared cache: each blob fetched exactly once
	read -r total distinct < <(blob_gets "$mark")
	[ "$distinct" -ge 5 ]
	assert_equal "$total" "$distinct"
	run bv cache verify
	assert_success

	cd "$BATS_TEST_TMPDIR/local"
	CI=true run timeout 300 snakemake -j 2
	assert_success
	want=$(records results/sample.bam)
	cd "$PROJ"
	assert_equal "$(records results/sample.bam)" "$want"
	cmp results/sample.flagstat "$BATS_TEST_TMPDIR/local/results/sample.flagstat"
	grep -q '^384 + 0 primary mapped' results/sample.flagstat
	diff <(grep -v '^##' results/sample.vcf) <(grep -v '^##' "$BATS_TEST_TMPDIR/local/results/sample.vcf")
	grep -q '^#CHROM' results/sample.vcf
}
