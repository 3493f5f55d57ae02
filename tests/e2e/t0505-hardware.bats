#!/usr/bin/env bats
# [tool.hardware] checks and the experimental tier on bv add and bv update, and bv doctor's
# Hardware and Index sections.  The machine is simulated with BV_HARDWARE_ROOT (a fake
# /proc/meminfo, the NVIDIA driver's files and an nvidia-smi script), so the results do not
# depend on the machine running the tests; the cores and the disk are always the real ones.

load lib/common

setup_file() {
	fixture_images_up
}

teardown_file() {
	fixture_images_down
}

setup() {
	fixture_project_setup align
	# a machine with 8 GiB of RAM and no GPU
	export BV_HARDWARE_ROOT="$BATS_TEST_TMPDIR/machine"
	mkdir -p "$BV_HARDWARE_ROOT/proc"
	echo "MemTotal:        8388608 kB" >"$BV_HARDWARE_ROOT/proc/meminfo"
}

# gpu <driver version>: one NVIDIA GPU as the driver describes it, without nvidia-smi
gpu() {
	local d="$BV_HARDWARE_ROOT/proc/driver/nvidia"
	mkdir -p "$d/gpus/0000:3b:00.0"
	printf 'Model: \t\t Tesla T4\nIRQ: \t\t 42\n' >"$d/gpus/0000:3b:00.0/information"
	echo "NVRM version: NVIDIA UNIX x86_64 Kernel Module  $1  Sat Aug 19 01:15:15 UTC 2023" \
		>"$d/version"
}

# nothing pulled, nothing written: the cache holds no blob and no tree
assert_nothing_pulled() {
	[ -z "$(find "$BV_CACHE_DIR" -path '*/blobs/sha256/*' -type f 2>/dev/null)" ]
	[ -z "$(ls -A "$BV_CACHE_DIR/rootfs" 2>/dev/null)" ]
}

@test "add refuses a tool this machine cannot run, before pulling or writing anything" {
	m="$BV_REGISTRY/tools/samtools/1.16.1.toml"
	sed -i 's/^ram_gb = .*/ram_gb = 100000.0/' "$m"
	printf '\n[tool.hardware.gpu]\nrequired = true\ncuda_version = "12.0"\n' >>"$m"
	cp bv.toml bv.toml.before
	run bv add samtools
	assert_failure 1
	assert_line "error: samtools needs 100000 GiB of RAM and an NVIDIA GPU; this machine has 8.0 GiB and none"
	assert_line "hint: use --ignore-hardware to go ahead anyway"
	cmp bv.toml bv.toml.before
	[ ! -e bv.lock ]
	assert_nothing_pulled

	# enough RAM now, and a GPU whose driver (branch 470) supports CUDA 11.4 only
	echo "MemTotal: 209715200000 kB" >"$BV_HARDWARE_ROOT/proc/meminfo"
	gpu 470.82.01
	run bv add samtools
	assert_failure 1
	assert_line "error: samtools needs CUDA 12.0; this machine has CUDA 11.4"
	[ ! -e bv.lock ]
	assert_nothing_pulled

	# a 535 driver supports CUDA 12.2: added without any flag
	gpu 535.104.05
	run bv add samtools
	assert_success
	refute_output --partial "warning:"
	grep -q '^\[tools.samtools\]' bv.lock
}

@test "--ignore-hardware adds it anyway, with a warning; update checks and takes the flag too" {
	sed -i 's/^cpu_cores = .*/cpu_cores = 100000/' "$BV_REGISTRY/tools/bwa/0.7.17.toml"
	run bv add bwa
	assert_failure 1
	assert_line --regexp "^error: bwa needs 100000 CPU cores; this machine has [0-9]+$"
	assert_nothing_pulled
	run bv add --ignore-hardware bwa
	assert_success
	assert_line --regexp "^warning: bwa needs 100000 CPU cores; this machine has [0-9]+ \(going ahead: --ignore-hardware\)$"
	grep -q '^\[tools.bwa\]' bv.lock

	cp bv.lock bv.lock.before
	run bv update
	assert_failure 1
	assert_line --regexp "^error: bwa needs 100000 CPU cores"
	assert_line "hint: use --ignore-hardware to go ahead anyway"
	cmp bv.lock bv.lock.before
	run bv update --ignore-hardware
	assert_success
	assert_line --partial "(going ahead: --ignore-hardware)"
	# --backend chooses what update pulls for, as on add
	run bv update --ignore-hardware --backend nosuch
	assert_failure 1
	assert_output --partial "nosuch"
	cmp bv.lock bv.lock.before

	# a lock made for another platform is for other machines: this one's hardware is not
	# checked
	mkdir ../other && cd ../other && bv init other >/dev/null 2>&1
	run bv add --platform linux/arm64 bwa
	assert_success
	refute_output --partial "CPU cores"
	assert_output --partial "for linux/arm64/v8"
}

@test "experimental tools need --allow-experimental; update leaves them alone without it" {
	sed -i 's/^tier = .*/tier = "experimental"/' "$BV_REGISTRY/tools/bwa/0.7.17.toml"
	sed -i 's/^tier = .*/tier = "core"\ndeprecated = true/' \
		"$BV_REGISTRY/tools/samtools/1.16.1.toml"
	cp bv.toml bv.toml.before
	run bv add samtools bwa
	assert_failure 1
	assert_line "error: bwa 0.7.17 is experimental: experimental tools need --allow-experimental"
	assert_line "hint: use --allow-experimental to go ahead anyway"
	cmp bv.toml bv.toml.before
	[ ! -e bv.lock ]
	assert_nothing_pulled

	run bv add --allow-experimental samtools bwa
	assert_success
	assert_line "warning: samtools 1.16.1 is deprecated"
	assert_line "warning: bwa is experimental"
	grep -q '^\[tools.bwa\]' bv.lock

	run bv update
	assert_success
	assert_line "warning: not updating bwa: it is experimental (use --allow-experimental)"
	run bv update --allow-experimental bwa
	assert_success
	refute_output --partial "not updating"
}

@test "doctor shows the hardware, with simulated GPUs, and the registries" {
	run bv doctor
	assert_line "Hardware"
	assert_line --regexp "^  cores       [0-9]+$"
	assert_line "  memory      8.0 GiB"
	assert_line --regexp "^  disk        [0-9.]+ [KMGT]iB free in /"
	assert_line "  gpu         no NVIDIA GPU"
	assert_line "Index"
	assert_line "  registry    $BV_REGISTRY (a local directory, used in place, never refreshed)"
	assert_line "  ttl         300 s (BV_INDEX_TTL; a clone older than this is refreshed)"
	assert_line "  clones      0 in the cache"

	# nvidia-smi gives each GPU's memory and the CUDA version; a cgroup limits the RAM
	gpu 550.54.14
	mkdir -p "$BV_HARDWARE_ROOT/usr/bin" "$BV_HARDWARE_ROOT/proc/self" \
		"$BV_HARDWARE_ROOT/sys/fs/cgroup/job"
	cat >"$BV_HARDWARE_ROOT/usr/bin/nvidia-smi" <<'SH'
#!/bin/sh
case "$1" in
--query-gpu=*) printf 'NVIDIA A100-SXM4-40GB, 40960, 550.54.14\nTesla T4, 15360, 550.54.14\n' ;;
*) echo '| NVIDIA-SMI 550.54.14    Driver Version: 550.54.14    CUDA Version: 12.4 |' ;;
esac
SH
	chmod +x "$BV_HARDWARE_ROOT/usr/bin/nvidia-smi"
	echo "0::/job" >"$BV_HARDWARE_ROOT/proc/self/cgroup"
	echo 2147483648 >"$BV_HARDWARE_ROOT/sys/fs/cgroup/job/memory.max"
	# a registry cloned from a git URL shows up with its origin and age
	git -C "$BV_REGISTRY" init -q && git -C "$BV_REGISTRY" add -A &&
		git -C "$BV_REGISTRY" -c user.name=t -c user.email=t@t commit -qm r
	BV_REGISTRY="file://$BV_REGISTRY" run bv search samtools
	assert_success
	BV_REGISTRY="file://$BV_REGISTRY" BV_INDEX_TTL=60 run bv doctor
	assert_line "  memory      2.0 GiB (cgroup limit; 8.0 GiB installed)"
	assert_line "  gpu 0       NVIDIA A100-SXM4-40GB (40.0 GiB)"
	assert_line "  gpu 1       Tesla T4 (15.0 GiB)"
	assert_line "  cuda        12.4 (driver 550.54.14, from nvidia-smi)"
	assert_line --regexp "^  registry    file://$BV_REGISTRY \(clone in $BV_CACHE_DIR/index/bv-registry-[0-9a-f]{16}\)$"
	assert_line "  ttl         60 s (BV_INDEX_TTL; a clone older than this is refreshed)"
	assert_line "  clones      1 in the cache"
	assert_line --regexp "^              file://$BV_REGISTRY  refreshed [0-9]+ s ago  $BV_CACHE_DIR/index/bv-registry-"
}
