# Shared set-up of the Slurm tests: the e2e helpers (lib/common: isolated HOME, bv, the
# fixture registry and images), the two-node cluster of tests/hpc/slurm.sh with the
# registry's port relayed into the nodes, and a project whose bv.lock pins samtools, bwa and bcftools
# while the shared cache starts empty.
#
#   load lib
#   setup_file()    { hpc_up; }      # skips the file, with the reason, if Slurm cannot start
#   teardown_file() { hpc_down; }
#   setup()         { hpc_setup; }   # cd $PROJ, BV_CACHE_DIR=$BATS_TEST_TMPDIR/cache (empty)
#   use_warm_cache                   # BV_CACHE_DIR: the file's cache that holds every image

: "${BV_SOURCE_DIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
# lib/common loads relative to this file's directory
load ../e2e/lib/common

HPC_SLURM="$BV_SOURCE_DIR/tests/hpc/slurm.sh"

# hpc_up (setup_file): registry + images, the cluster, the relay, a locked project template
# in $BATS_FILE_TMPDIR/proj.  A missing Slurm or a non-root user skips, saying why.
hpc_up() {
	local out
	if [[ $(id -u) -ne 0 ]]; then
		skip "the Slurm harness needs root (network namespaces, slurmd)"
	fi
	if [[ ! -x /usr/sbin/slurmd || ! -x /usr/sbin/munged ]]; then
		skip "slurm-wlm and munge are not installed (scripts/deps.sh installs them)"
	fi
	fixture_images_up
	export BV_FIXTURE_DIR
	if ! out=$("$HPC_SLURM" start 2>&1); then
		"$HPC_SLURM" stop >/dev/null 2>&1 || true
		skip "Slurm cannot start on this machine: $out"
	fi
	"$HPC_SLURM" forward "${ADDR##*:}"
	eval "$("$HPC_SLURM" env)"
	export BV_HPC_STATE=$out
	REG_LOG="$("$BV_SOURCE_DIR/tests/fixtures/registry.sh" dir)/registry.log"
	export REG_LOG
	HPC_TEMPLATE="$BATS_FILE_TMPDIR/proj"
	export HPC_TEMPLATE
	mkdir -p "$HPC_TEMPLATE"
	cp -r "$BV_SOURCE_DIR/tests/fixtures/bv-registry" "$BATS_FILE_TMPDIR/bv-registry"
	# samtools also exposes the image's busybox sh, so tests can run shell in an image
	sed -i 's/^exposed = \["samtools"\]$/exposed = ["samtools", "sh"]/' \
		"$BATS_FILE_TMPDIR"/bv-registry/tools/samtools/*.toml
	# locked with a throw-away cache, so each test starts from an empty shared cache
	(
		cd "$HPC_TEMPLATE" &&
			export HOME="$BATS_FILE_TMPDIR/home" BV_CACHE_DIR="$BATS_FILE_TMPDIR/lock-cache" \
				BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry" BV_MIRRORS="quay.io=$ADDR" &&
			mkdir -p "$HOME" &&
			"$BV" init align >/dev/null 2>&1 &&
			allow_shell_binary &&
			"$BV" add samtools bwa bcftools >/dev/null 2>&1 &&
			python3 "$BV_SOURCE_DIR/tests/fixtures/simreads.py" . --reads 400 --length 100
	) || fail "could not make the template project"
	# what the lock pulled stays as a warm cache for the tests that do not start cold
	HPC_WARM_CACHE="$BATS_FILE_TMPDIR/lock-cache"
	export HPC_WARM_CACHE
}

hpc_down() {
	"$HPC_SLURM" stop >/dev/null 2>&1 || true
	fixture_images_down
}

hpc_setup() {
	common_setup
	export BV_CACHE_DIR="$BATS_TEST_TMPDIR/cache" BV_REGISTRY="$BATS_FILE_TMPDIR/bv-registry"
	export BV_MIRRORS="quay.io=$ADDR" BV
	PROJ="$BATS_TEST_TMPDIR/proj"
	cp -r "$HPC_TEMPLATE" "$PROJ"
	cd "$PROJ" || return 1
	PATH="$(dirname "$BV"):$PATH"
	export PATH
}

# use_warm_cache: the file's shared cache, where every image of the template is pulled.
use_warm_cache() {
	export BV_CACHE_DIR="$HPC_WARM_CACHE"
}

# job_wait JOBID: waits (up to 60 s) for a batch job to end, polling the controller every
# 0.1 s (sbatch --wait polls every few seconds), then returns 0 when it COMPLETED.
job_wait() {
	local i state
	for ((i = 0; i < 600; i++)); do
		state=$(scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
		case $state in
		COMPLETED) return 0 ;;
		FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 1 ;;
		esac
		sleep 0.1
	done
	return 1
}

# log_mark: the registry log's current line count, for blob_gets.
log_mark() {
	wc -l <"$REG_LOG" | tr -d ' '
}

# blob_gets MARK: "TOTAL DISTINCT" blob GETs the fixture registry answered with 200 after
# line MARK of its log.
blob_gets() {
	tail -n +"$(($1 + 1))" "$REG_LOG" |
		grep -oE '"GET /v2/[^ ]+/blobs/sha256:[0-9a-f]{64} HTTP/1\.[01]" 200 ' |
		awk '{ n++; d[$2] = 1 } END { print n + 0, length(d) }'
}
