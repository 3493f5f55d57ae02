/*
 * bv/hardware.h - what this machine offers a tool (CPU cores, RAM, free disk, NVIDIA GPUs)
 * and whether that meets a manifest's [tool.hardware].
 *
 * Calling sequence:
 *   struct bv_hardware hw = BV_HARDWARE_INIT;
 *   struct bv_hardware_options o = {.disk_path = cache_dir};   or NULL for the defaults
 *   if (bv_hardware_detect(&hw, &o, &err) < 0) ...
 *   _cleanup_strv_ struct bv_strv notes = BV_STRV_INIT;
 *   if (bv_hardware_check(&notes, &hw, manifest, &err) < 0) ...   "samtools needs 64 GiB of
 *                                                                   RAM; this machine has ..."
 *   bv_hardware_release(&hw);
 *
 * Sources, each bounded, none fatal (what cannot be read stays unknown):
 * - cores: sched_getaffinity(), so cpusets, `taskset` and Slurm allocations count;
 * - RAM: MemTotal of /proc/meminfo, lowered to the memory limit of this process's cgroup
 *   (v2 memory.max, v1 memory.limit_in_bytes, the smallest on the path up to the root), as
 *   a container or a Slurm job sees it;
 * - disk: statvfs() of `disk_path` or its nearest existing ancestor (the cache may not exist
 *   yet);
 * - GPUs: /proc/driver/nvidia/gpus/<bus>/information (count, model) and
 *   /proc/driver/nvidia/version (driver version); `nvidia-smi` when it is installed (its
 *   query gives each GPU's memory, its header the CUDA version), run with a 5 s limit.  With
 *   only the driver's files the CUDA version is the newest one the driver's branch supports
 *   (NVIDIA's table) and the memory is unknown.
 *
 * BV_HARDWARE_ROOT (or options.root) moves /proc, /sys and nvidia-smi (<root>/usr/bin) under
 * another directory, so tests simulate GPUs and cgroups with files; the cores and the disk
 * are always this machine's.
 *
 * The check follows upstream's rules (RAM and disk in GiB as floats, VRAM as the best GPU's
 * MiB/1024 rounded, CUDA "major.minor" compared numerically), and also checks cpu_cores and
 * gpu.count, which upstream reads but never checks.  What is unknown is not refused: it is
 * reported in `notes` instead.
 *
 * Ownership: the hardware struct owns its strings and GPU array until bv_hardware_release();
 * the manifest and options are borrowed.  Notes are appended to the caller's vector.
 *
 * Errors: detection fails only on an invalid BV_HARDWARE_ROOT (BV_EINVALID).  The check
 * returns BV_EINVALID with one message naming everything missing.
 */
#ifndef BV_HARDWARE_H
#define BV_HARDWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_error;
struct bv_manifest;
struct bv_strv;

struct bv_gpu {
	char *name;       /* "NVIDIA A100-SXM4-40GB", or NULL when unknown */
	int64_t vram_mib; /* -1 when unknown */
};

struct bv_hardware {
	long cpu_cores;          /* usable by this process; -1 when unknown */
	int64_t ram_bytes;       /* usable: MemTotal or a lower cgroup limit; -1 when unknown */
	int64_t ram_total_bytes; /* MemTotal; -1 when unknown */
	bool ram_limited;        /* a cgroup limit is below MemTotal */
	char *disk_path;         /* the directory whose file system was measured, or NULL */
	int64_t disk_free_bytes; /* available to unprivileged users; -1 when unknown */
	struct bv_gpu *gpus;     /* NVIDIA GPUs */
	size_t n_gpus;
	char *driver_version;   /* "535.104.05", or NULL */
	char *cuda_version;     /* "12.2", or NULL */
	const char *gpu_source; /* "nvidia-smi", "driver" or NULL (static string) */
};

#define BV_HARDWARE_INIT                                                                       \
	{                                                                                      \
		.cpu_cores = -1, .ram_bytes = -1, .ram_total_bytes = -1, .disk_free_bytes = -1 \
	}

struct bv_hardware_options {
	const char *root;      /* NULL: BV_HARDWARE_ROOT, else "/" */
	const char *disk_path; /* NULL: free disk stays unknown */
	bool no_nvidia_smi;    /* read only the driver's files */
	int nvidia_smi_ms;     /* 0: 5000, the limit of each nvidia-smi run */
};

int bv_hardware_detect(struct bv_hardware *out, const struct bv_hardware_options *o,
		       struct bv_error **err);

/* Frees what `hw` owns and leaves it as BV_HARDWARE_INIT. */
void bv_hardware_release(struct bv_hardware *hw);

/*
 * Whether `hw` meets manifest `m`'s [tool.hardware].  0 when it does (notes may name what
 * could not be checked); BV_EINVALID "<id> needs 64 GiB of RAM and an NVIDIA GPU; this
 * machine has 23.4 GiB and none" when it does not.
 */
int bv_hardware_check(struct bv_strv *notes, const struct bv_hardware *hw,
		      const struct bv_manifest *m, struct bv_error **err);

/*
 * The batch scheduler context this process runs in, for `bv doctor`: today Slurm, read from
 * the job's environment (SLURM_JOB_ID, SLURM_STEP_ID, SLURMD_NODENAME, SLURM_CPUS_PER_TASK or
 * SLURM_JOB_CPUS_PER_NODE, SLURM_STEP_GPUS or SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES, TMPDIR)
 * plus this process's CPU affinity, which is what Slurm actually grants and what a tool
 * inherits.  `env` is an environ-style array (NULL: environ), so tests pass their own.
 * Returns false, with `out` left empty, outside a scheduler's job.  Fields are borrowed from
 * `env` except cpu_list, which bv_scheduler_release() frees.
 */
struct bv_scheduler {
	const char *name;    /* "slurm" (static), NULL outside a job */
	const char *job_id;  /* SLURM_JOB_ID */
	const char *step_id; /* SLURM_STEP_ID, NULL in the batch script itself */
	const char *node;    /* SLURMD_NODENAME */
	const char *cpus;    /* SLURM_CPUS_PER_TASK, else SLURM_JOB_CPUS_PER_NODE */
	const char *gpus;    /* SLURM_STEP_GPUS, else SLURM_JOB_GPUS */
	const char *cuda;    /* CUDA_VISIBLE_DEVICES */
	const char *tmpdir;  /* TMPDIR: a job's node-local scratch, by site convention */
	char *cpu_list;      /* this process's affinity as "0-3,8", NULL when unknown */
};

bool bv_scheduler_detect(struct bv_scheduler *out, const char *const *env);
void bv_scheduler_release(struct bv_scheduler *s);

/* Compares "major.minor" versions numerically: <0, 0 or >0; a malformed one sorts first. */
int bv_hardware_cuda_compare(const char *a, const char *b);

#endif
