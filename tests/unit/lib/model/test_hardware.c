#include <bv/error.h>
#include <bv/hardware.h>
#include <bv/manifest.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/model/hardware-internal.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#include "util/banned.h"

static int setup(void **state)
{
	*state = test_mkdtemp("hardware");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	char *dir = *state;
	int r = bv_rm_rf(dir, NULL);
	free(dir);
	return r;
}

/* Writes `text` to <root>/<rel>, creating the directories. */
static void put(const char *root, const char *rel, const char *text, mode_t mode)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *path = bv_path_join(root, rel);
	_cleanup_free_ char *dir = bv_xstrdup(path);
	*strrchr(dir, '/') = '\0';
	assert_ok(bv_mkdir_p(dir, 0755, &err), &err);
	assert_ok(bv_write_file_atomic(path, text, strlen(text), mode, &err), &err);
}

static struct bv_hardware detect(const char *root, bool smi)
{
	struct bv_error *err = NULL;
	struct bv_hardware hw = BV_HARDWARE_INIT;
	struct bv_hardware_options o = {.root = root, .disk_path = root, .no_nvidia_smi = !smi};
	assert_ok(bv_hardware_detect(&hw, &o, &err), &err);
	return hw;
}

static const char meminfo[] = "MemTotal:       16318376 kB\nMemFree:         1000 kB\n";

static void test_hardware__memory_and_cgroup_v2(void **state)
{
	_cleanup_free_ char *root = bv_path_join(*state, "v2");
	struct bv_hardware hw;
	put(root, "proc/meminfo", meminfo, 0644);
	hw = detect(root, false);
	assert_int_equal(hw.ram_total_bytes, 16318376LL * 1024);
	assert_int_equal(hw.ram_bytes, hw.ram_total_bytes);
	assert_false(hw.ram_limited);
	assert_true(hw.cpu_cores >= 1);
	assert_true(hw.disk_free_bytes >= 0);
	assert_int_equal(hw.n_gpus, 0);
	assert_null(hw.cuda_version);
	bv_hardware_release(&hw);

	/* the job's cgroup has no limit, its parent has 4 GiB: the parent binds */
	put(root, "proc/self/cgroup", "0::/slurm/job_7/step_0\n", 0644);
	put(root, "sys/fs/cgroup/slurm/memory.max", "max\n", 0644);
	put(root, "sys/fs/cgroup/slurm/job_7/memory.max", "4294967296\n", 0644);
	put(root, "sys/fs/cgroup/slurm/job_7/step_0/memory.max", "max\n", 0644);
	hw = detect(root, false);
	assert_int_equal(hw.ram_bytes, 4294967296LL);
	assert_true(hw.ram_limited);
	bv_hardware_release(&hw);

	/* a cache that does not exist yet: its nearest existing ancestor is measured */
	{
		struct bv_error *err = NULL;
		_cleanup_free_ char *missing = bv_path_join(root, "no/such/cache");
		struct bv_hardware_options o = {
			.root = root, .disk_path = missing, .no_nvidia_smi = true};
		hw = (struct bv_hardware)BV_HARDWARE_INIT;
		assert_ok(bv_hardware_detect(&hw, &o, &err), &err);
		assert_string_equal(hw.disk_path, root);
		assert_true(hw.disk_free_bytes >= 0);
		bv_hardware_release(&hw);
	}

	/* a limit above MemTotal changes nothing */
	put(root, "sys/fs/cgroup/slurm/job_7/memory.max", "99999999999999\n", 0644);
	hw = detect(root, false);
	assert_int_equal(hw.ram_bytes, hw.ram_total_bytes);
	assert_false(hw.ram_limited);
	bv_hardware_release(&hw);
}

static void test_hardware__cgroup_v1_and_bad_files(void **state)
{
	_cleanup_free_ char *root = bv_path_join(*state, "v1");
	struct bv_hardware hw;
	put(root, "proc/meminfo", meminfo, 0644);
	put(root, "proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n", 0644);
	put(root, "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "2147483648\n", 0644);
	put(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n", 0644);
	hw = detect(root, false);
	assert_int_equal(hw.ram_bytes, 2147483648LL);
	bv_hardware_release(&hw);

	/* garbage is unknown, never an error or a wrong number */
	put(root, "proc/meminfo", "MemTotal: lots\n", 0644);
	put(root, "proc/self/cgroup", "garbage\n4:memory:../../etc\n", 0644);
	hw = detect(root, false);
	assert_int_equal(hw.ram_total_bytes, -1);
	assert_int_equal(hw.ram_bytes, -1);
	bv_hardware_release(&hw);
	put(root, "proc/meminfo", "MemFree: 1 kB\n", 0644);
	put(root, "proc/self/cgroup", "0::/\n", 0644);
	put(root, "sys/fs/cgroup/memory.max", "-5\n", 0644);
	hw = detect(root, false);
	assert_int_equal(hw.ram_bytes, -1);
	bv_hardware_release(&hw);
}

static const char info[] = "Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:   \t\t 42\n";
static const char version[] = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  "
			      "Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc 12.2.0\n";

static void test_hardware__driver_files(void **state)
{
	_cleanup_free_ char *root = bv_path_join(*state, "driver");
	struct bv_hardware hw;
	put(root, "proc/driver/nvidia/gpus/0000:3b:00.0/information", info, 0644);
	put(root, "proc/driver/nvidia/gpus/0000:86:00.0/information", info, 0644);
	put(root, "proc/driver/nvidia/gpus/not-a-gpu", "", 0644);
	put(root, "proc/driver/nvidia/version", version, 0644);
	hw = detect(root, true); /* no <root>/usr/bin/nvidia-smi: the driver's files only */
	assert_int_equal(hw.n_gpus, 2);
	assert_string_equal(hw.gpus[0].name, "NVIDIA A100-SXM4-40GB");
	assert_int_equal(hw.gpus[1].vram_mib, -1);
	assert_string_equal(hw.driver_version, "535.104.05");
	assert_string_equal(hw.cuda_version, "12.2"); /* from the driver's branch */
	assert_string_equal(hw.gpu_source, "driver");
	bv_hardware_release(&hw);

	/* an open-kernel-module line, and a driver older than any CUDA in the table */
	put(root, "proc/driver/nvidia/version",
	    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  390.1  Release Build\n",
	    0644);
	hw = detect(root, false);
	assert_string_equal(hw.driver_version, "390.1");
	assert_null(hw.cuda_version);
	bv_hardware_release(&hw);
}

static void test_hardware__nvidia_smi(void **state)
{
	_cleanup_free_ char *root = bv_path_join(*state, "smi");
	struct bv_hardware hw;
	put(root, "proc/driver/nvidia/gpus/0000:3b:00.0/information", info, 0644);
	put(root, "proc/driver/nvidia/version", version, 0644);
	put(root, "usr/bin/nvidia-smi",
	    "#!/bin/sh\n"
	    "if [ \"$1\" = --query-gpu=name,memory.total,driver_version ]; then\n"
	    "  printf 'NVIDIA A100, PCIe, 40960, 550.54.14\\nTesla T4, 15360, 550.54.14\\n'\n"
	    "  exit 0\n"
	    "fi\n"
	    "echo '| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4     |'\n",
	    0755);
	hw = detect(root, true);
	assert_string_equal(hw.gpu_source, "nvidia-smi");
	assert_int_equal(hw.n_gpus, 2);
	assert_string_equal(hw.gpus[0].name, "NVIDIA A100, PCIe");
	assert_int_equal(hw.gpus[0].vram_mib, 40960);
	assert_int_equal(hw.gpus[1].vram_mib, 15360);
	assert_string_equal(hw.driver_version, "550.54.14");
	assert_string_equal(hw.cuda_version, "12.4");
	bv_hardware_release(&hw);

	/* an nvidia-smi that fails: the driver's files still count */
	put(root, "usr/bin/nvidia-smi", "#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n", 0755);
	hw = detect(root, true);
	assert_string_equal(hw.gpu_source, "driver");
	assert_int_equal(hw.n_gpus, 1);
	assert_string_equal(hw.cuda_version, "12.2");
	bv_hardware_release(&hw);

	/* one that hangs is killed at the limit; the driver's files still count */
	put(root, "usr/bin/nvidia-smi", "#!/bin/sh\nexec sleep 30\n", 0755);
	{
		struct bv_error *err = NULL;
		struct bv_hardware_options o = {.root = root, .nvidia_smi_ms = 200};
		time_t start = time(NULL);
		hw = (struct bv_hardware)BV_HARDWARE_INIT;
		assert_ok(bv_hardware_detect(&hw, &o, &err), &err);
		assert_true(time(NULL) - start < 10);
		assert_string_equal(hw.gpu_source, "driver");
		assert_int_equal(hw.n_gpus, 1);
		bv_hardware_release(&hw);
	}
}

static void test_hardware__cuda_compare(void **state)
{
	(void)state;
	assert_true(bv_hardware_cuda_compare("12.10", "12.9") > 0);
	assert_true(bv_hardware_cuda_compare("11.8", "12.0") < 0);
	assert_int_equal(bv_hardware_cuda_compare("12.2", "12.2"), 0);
	assert_int_equal(bv_hardware_cuda_compare("12.2.1", "12.2"), 0);
	assert_true(bv_hardware_cuda_compare("x", "1.0") < 0);
	assert_true(bv_hardware_cuda_compare(NULL, "1.0") < 0);
}

static char *check_message(const struct bv_hardware *hw, const struct bv_manifest *m)
{
	struct bv_error *err = NULL;
	char *text;
	if (bv_hardware_check(NULL, hw, m, &err) == 0)
		return NULL;
	text = bv_error_format(err);
	bv_error_free(err);
	return text;
}

/* The Slurm context comes from the job's variables; nothing outside a job. */
static void test_hardware__scheduler(void **state)
{
	const char *const none[] = {"HOME=/root", "SLURM_JOB_ID=", NULL};
	const char *const batch[] = {"SLURM_JOB_ID=7", "SLURM_JOB_CPUS_PER_NODE=4",
				     "SLURMD_NODENAME=node2", NULL};
	const char *const step[] = {"SLURM_JOB_ID=7",
				    "SLURM_STEP_ID=3",
				    "SLURMD_NODENAME=node2",
				    "SLURM_CPUS_PER_TASK=2",
				    "SLURM_JOB_CPUS_PER_NODE=4",
				    "SLURM_JOB_GPUS=0,1",
				    "SLURM_STEP_GPUS=1",
				    "CUDA_VISIBLE_DEVICES=0",
				    "TMPDIR=/local/job7",
				    NULL};
	struct bv_scheduler s;
	bool restricted;
	_cleanup_free_ char *cpus = bv_cpu_affinity_list(&restricted);
	(void)state;
	assert_false(bv_scheduler_detect(&s, none));
	assert_null(s.name);
	assert_true(bv_scheduler_detect(&s, batch));
	assert_string_equal(s.name, "slurm");
	assert_string_equal(s.job_id, "7");
	assert_null(s.step_id);
	assert_string_equal(s.cpus, "4");
	assert_null(s.gpus);
	assert_null(s.tmpdir);
	bv_scheduler_release(&s);
	assert_true(bv_scheduler_detect(&s, step));
	assert_string_equal(s.step_id, "3");
	assert_string_equal(s.node, "node2");
	assert_string_equal(s.cpus, "2");
	assert_string_equal(s.gpus, "1");
	assert_string_equal(s.cuda, "0");
	assert_string_equal(s.tmpdir, "/local/job7");
	/* the affinity is this process's, in the kernel's list syntax */
	assert_non_null(s.cpu_list);
	assert_string_equal(s.cpu_list, cpus);
	bv_scheduler_release(&s);
}

static void test_hardware__check(void **state)
{
	struct bv_gpu gpu = {.name = NULL, .vram_mib = 16160};
	struct bv_hardware hw = BV_HARDWARE_INIT;
	struct bv_manifest m = {0};
	struct bv_strv notes = BV_STRV_INIT;
	struct bv_error *err = NULL;
	char disk[] = "/cache", cuda[] = "12.9";
	char *msg;
	(void)state;
	hw.cpu_cores = 2;
	hw.ram_bytes = (int64_t)(23.4 * 1024 * 1024 * 1024);
	hw.disk_free_bytes = 10LL << 30;
	hw.disk_path = disk;
	m.id = "samtools";
	m.cpu_cores = m.min_vram_gb = m.gpu_count = -1;
	m.ram_gb = m.disk_gb = -1;
	assert_null(check_message(&hw, &m));

	m.ram_gb = 64;
	msg = check_message(&hw, &m);
	assert_string_equal(msg, "samtools needs 64 GiB of RAM; this machine has 23.4 GiB");
	free(msg);

	m.ram_gb = 8;
	m.cpu_cores = 4;
	m.disk_gb = 20;
	m.gpu_required = true;
	msg = check_message(&hw, &m);
	assert_string_equal(msg, "samtools needs 4 CPU cores, 20 GiB of free disk and an NVIDIA "
				 "GPU; this machine has 2, 10.0 GiB free in '/cache' and none");
	free(msg);

	/* a 16 GB card (16160 MiB) meets min_vram_gb = 16; CUDA compares as numbers */
	m.cpu_cores = 2;
	m.disk_gb = 1;
	m.min_vram_gb = 16;
	m.cuda_version = "12.10";
	hw.gpus = &gpu;
	hw.n_gpus = 1;
	hw.cuda_version = cuda;
	msg = check_message(&hw, &m);
	assert_string_equal(msg, "samtools needs CUDA 12.10; this machine has CUDA 12.9");
	free(msg);
	m.cuda_version = "12.2";
	assert_null(check_message(&hw, &m));
	m.min_vram_gb = 24;
	m.gpu_count = 2;
	msg = check_message(&hw, &m);
	assert_string_equal(msg, "samtools needs 2 NVIDIA GPUs and 24 GiB of GPU memory; this "
				 "machine has 1 and 16 GiB");
	free(msg);

	/* unknown memory is a note, not a refusal; an optional GPU is never required */
	m.gpu_count = -1;
	gpu.vram_mib = -1;
	assert_ok(bv_hardware_check(&notes, &hw, &m, &err), &err);
	assert_int_equal(notes.n, 1);
	assert_non_null(strstr(notes.v[0], "could not read the GPUs' memory"));
	bv_strv_clear(&notes);
	hw.n_gpus = 0;
	m.gpu_required = false;
	assert_null(check_message(&hw, &m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hardware__memory_and_cgroup_v2),
		cmocka_unit_test(test_hardware__cgroup_v1_and_bad_files),
		cmocka_unit_test(test_hardware__driver_files),
		cmocka_unit_test(test_hardware__nvidia_smi),
		cmocka_unit_test(test_hardware__cuda_compare),
		cmocka_unit_test(test_hardware__check),
		cmocka_unit_test(test_hardware__scheduler),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
