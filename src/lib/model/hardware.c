/*
 * hardware.c - detecting this machine's cores, RAM, disk and NVIDIA GPUs, and checking a
 * manifest's [tool.hardware] against them (see bv/hardware.h).
 */
#include <bv/error.h>
#include <bv/hardware.h>
#include <bv/manifest.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/model/hardware-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define PROC_FILE_MAX    (64u * 1024)
#define CGROUP_DEPTH_MAX 64
#define GPUS_MAX         64
#define NVIDIA_SMI_MAX   (256u * 1024)
#define NVIDIA_SMI_MS    5000
#define GIB              (1024.0 * 1024.0 * 1024.0)

void bv_hardware_release(struct bv_hardware *hw)
{
	for (size_t i = 0; i < hw->n_gpus; i++)
		free(hw->gpus[i].name);
	free(hw->gpus);
	free(hw->disk_path);
	free(hw->driver_version);
	free(hw->cuda_version);
	*hw = (struct bv_hardware)BV_HARDWARE_INIT;
}

/* "<root><abs>", for files of /proc and /sys. */
static char *under(const char *root, const char *abs)
{
	return bv_xasprintf("%s%s", root, abs);
}

/* A small kernel file as a string; NULL when it cannot be read (absent means unknown). */
static char *read_small(const char *path)
{
	struct bv_buf b = BV_BUF_INIT;
	if (bv_buf_read_file(&b, path, PROC_FILE_MAX, NULL) < 0)
		return NULL;
	return bv_buf_detach(&b, NULL);
}

static long count_cores(void)
{
	/* sched_getaffinity, not sysconf: a cpuset, taskset or a Slurm allocation limits the
	 * cores this process may use, and that is what a tool gets */
	for (int ncpu = 1024; ncpu <= (1 << 16); ncpu *= 2) {
		cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
		size_t size = CPU_ALLOC_SIZE((size_t)ncpu);
		long n;
		if (!set)
			return -1;
		if (sched_getaffinity(0, size, set) < 0) {
			CPU_FREE(set);
			if (errno == EINVAL)
				continue;
			break;
		}
		n = CPU_COUNT_S(size, set);
		CPU_FREE(set);
		return n;
	}
	return -1;
}

/* MemTotal in bytes from a /proc/meminfo text, or -1. */
static int64_t parse_meminfo(const char *text)
{
	const char *p = text;
	while (p && *p) {
		if (bv_str_has_prefix(p, "MemTotal:")) {
			char *end;
			unsigned long long kib;
			p += strlen("MemTotal:");
			p += strspn(p, " \t");
			if (*p < '0' || *p > '9')
				return -1;
			errno = 0;
			kib = strtoull(p, &end, 10);
			if (errno || end == p ||
			    !bv_str_has_prefix(end + strspn(end, " \t"), "kB") ||
			    kib > (unsigned long long)INT64_MAX / 1024)
				return -1;
			return (int64_t)kib * 1024;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* A cgroup memory limit file: bytes, or -1 for "max", unlimited or unreadable. */
static int64_t read_limit(const char *path)
{
	_cleanup_free_ char *text = read_small(path);
	int64_t v;
	if (!text)
		return -1;
	text[strcspn(text, "\n")] = '\0';
	if (!strcmp(text, "max") || bv_parse_i64(&v, text) < 0 || v <= 0)
		return -1;
	return v;
}

/*
 * The smallest memory limit on the cgroup path `path` (from /proc/self/cgroup) and its
 * ancestors under `base`: a parent's limit binds its children too.
 */
static int64_t cgroup_limit(const char *base, const char *path, const char *file)
{
	_cleanup_free_ char *rel = bv_xstrdup(path);
	int64_t best = -1;
	/* the path comes from the kernel, but it is joined to a directory: no way out of it */
	if (rel[0] != '/' || strstr(rel, "/../") || bv_str_has_suffix(rel, "/.."))
		return -1;
	for (int depth = 0; depth < CGROUP_DEPTH_MAX; depth++) {
		_cleanup_free_ char *p = bv_xasprintf("%s%s/%s", base, rel[1] ? rel : "", file);
		int64_t v = read_limit(p);
		char *slash;
		if (v > 0 && (best < 0 || v < best))
			best = v;
		if (!rel[1])
			break;
		slash = strrchr(rel, '/');
		if (slash == rel)
			rel[1] = '\0';
		else
			*slash = '\0';
	}
	return best;
}

/* The memory limit of this process's cgroups, v2 and v1, or -1 when there is none. */
static int64_t memory_limit(const char *root)
{
	_cleanup_free_ char *self = under(root, "/proc/self/cgroup");
	_cleanup_free_ char *text = read_small(self);
	_cleanup_free_ char *v2 = under(root, "/sys/fs/cgroup");
	_cleanup_free_ char *v1 = under(root, "/sys/fs/cgroup/memory");
	int64_t best = -1;
	char *line, *save = NULL;
	if (!text)
		return -1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2;
		int64_t v = -1;
		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c1 = *c2 = '\0';
		if (!strcmp(line, "0") && !c1[1]) {
			v = cgroup_limit(v2, c2 + 1, "memory.max");
		} else {
			bool memory = false;
			char *ctl, *s2 = NULL;
			for (ctl = strtok_r(c1 + 1, ",", &s2); ctl; ctl = strtok_r(NULL, ",", &s2))
				memory |= !strcmp(ctl, "memory");
			if (memory)
				v = cgroup_limit(v1, c2 + 1, "memory.limit_in_bytes");
		}
		if (v > 0 && (best < 0 || v < best))
			best = v;
	}
	return best;
}

static void detect_memory(struct bv_hardware *hw, const char *root)
{
	_cleanup_free_ char *path = under(root, "/proc/meminfo");
	_cleanup_free_ char *text = read_small(path);
	int64_t limit = memory_limit(root);
	hw->ram_total_bytes = text ? parse_meminfo(text) : -1;
	hw->ram_bytes = hw->ram_total_bytes;
	if (limit > 0 && (hw->ram_bytes < 0 || limit < hw->ram_bytes)) {
		hw->ram_bytes = limit;
		hw->ram_limited = hw->ram_total_bytes > 0;
	}
}

static void detect_disk(struct bv_hardware *hw, const char *path)
{
	_cleanup_free_ char *dir = bv_xstrdup(path);
	struct statvfs vfs;
	/* the nearest existing ancestor holds the file system the cache will live on */
	while (statvfs(dir, &vfs) < 0) {
		char *slash = strrchr(dir, '/');
		if (!slash || !strcmp(dir, "/"))
			return;
		if (slash == dir)
			dir[1] = '\0'; /* "/x" -> "/" */
		else
			*slash = '\0';
	}
	hw->disk_free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
	hw->disk_path = TAKE_PTR(dir);
}

/* The first token of `line` made of digits and dots with a dot in it: "535.104.05". */
static char *version_token(const char *line)
{
	for (const char *p = line; *p;) {
		size_t n = strspn(p, "0123456789.");
		if (n && p[0] != '.' && memchr(p, '.', n) &&
		    (p == line || p[-1] == ' ' || p[-1] == '\t'))
			return bv_xstrndup(p, n);
		p += n ? n : 1;
	}
	return NULL;
}

/*
 * The newest CUDA version each driver branch supports, from NVIDIA's CUDA toolkit release
 * notes (table 3): a GPU without nvidia-smi still says what it can run.
 */
static const struct {
	unsigned branch;
	const char *cuda;
} cuda_by_driver[] = {
	{418, "10.1"}, {440, "10.2"}, {450, "11.0"}, {455, "11.1"}, {460, "11.2"}, {465, "11.3"},
	{470, "11.4"}, {495, "11.5"}, {510, "11.6"}, {515, "11.7"}, {520, "11.8"}, {525, "12.0"},
	{530, "12.1"}, {535, "12.2"}, {545, "12.3"}, {550, "12.4"}, {555, "12.5"}, {560, "12.6"},
	{565, "12.7"}, {570, "12.8"}, {575, "12.9"}, {580, "13.0"},
};

static const char *cuda_of_driver(const char *driver)
{
	const char *best = NULL;
	unsigned major = 0;
	size_t n = strspn(driver, "0123456789");
	if (!n || n > 6)
		return NULL;
	for (size_t i = 0; i < n; i++)
		major = major * 10 + (unsigned)(driver[i] - '0');
	for (size_t i = 0; i < BV_ARRAY_SIZE(cuda_by_driver); i++)
		if (major >= cuda_by_driver[i].branch)
			best = cuda_by_driver[i].cuda;
	return best;
}

static int compare_gpu(const void *a, const void *b)
{
	const struct bv_gpu *x = a, *y = b;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/* The GPUs the driver lists in /proc/driver/nvidia/gpus/<bus>/information. */
static void detect_driver_gpus(struct bv_hardware *hw, const char *root)
{
	_cleanup_free_ char *dir = under(root, "/proc/driver/nvidia/gpus");
	_cleanup_free_ char *vpath = under(root, "/proc/driver/nvidia/version");
	_cleanup_free_ char *version = read_small(vpath);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *e;
	if (version) {
		version[strcspn(version, "\n")] = '\0';
		hw->driver_version = version_token(version);
	}
	if (!d)
		return;
	while ((e = readdir(d)) && hw->n_gpus < GPUS_MAX) {
		_cleanup_free_ char *info = NULL, *text = NULL;
		struct bv_gpu *g;
		if (e->d_name[0] == '.')
			continue;
		info = bv_xasprintf("%s/%s/information", dir, e->d_name);
		text = read_small(info);
		if (!text)
			continue; /* not a GPU directory */
		hw->gpus = bv_xrealloc(hw->gpus, (hw->n_gpus + 1) * sizeof(*hw->gpus));
		g = &hw->gpus[hw->n_gpus++];
		*g = (struct bv_gpu){.vram_mib = -1};
		for (char *line = text; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			if (bv_str_has_prefix(line, "Model:")) {
				const char *v = line + strlen("Model:");
				v += strspn(v, " \t");
				if (*v && bv_text_is_printable(v, false))
					g->name = bv_xstrdup(v);
			}
			line = nl ? nl + 1 : NULL;
		}
	}
	if (hw->n_gpus) {
		qsort(hw->gpus, hw->n_gpus, sizeof(*hw->gpus), compare_gpu);
		hw->gpu_source = "driver";
	}
}

/*
 * Runs `p` with its stdout captured into `out`, for at most `ms` milliseconds: nvidia-smi
 * hangs for minutes on a GPU that fell off the bus, and bv add must not.
 */
static int capture_bounded(struct bv_buf *out, struct bv_proc *p, int ms, struct bv_error **err)
{
	_cleanup_close_ int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct timespec start, now;
	bool timed_out = false;
	int status = 0, r;
	if (devnull < 0)
		return bv_error_set_errno(err, "could not open '/dev/null'");
	p->out = -1;
	p->err = devnull;
	p->no_stdin = true;
	r = bv_proc_start(p, err);
	if (r < 0)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = {.fd = p->out, .events = POLLIN};
		long left;
		ssize_t n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - (long)((now.tv_sec - start.tv_sec) * 1000 +
				   (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || out->len > NVIDIA_SMI_MAX) {
			timed_out = true;
			break;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			timed_out = r == 0;
			break;
		}
		bv_buf_grow(out, 4096);
		n = read(p->out, out->buf + out->len, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		bv_buf_setlen(out, out->len + (size_t)n);
	}
	if (timed_out)
		kill(p->pid, SIGKILL); /* still our unreaped child, so the pid cannot be reused */
	r = bv_proc_finish(&status, p, err);
	if (r < 0)
		return r;
	if (timed_out)
		return bv_error_set(err, "'%s' did not answer within %d s", p->args.v[0],
				    ms / 1000);
	if (status)
		return bv_error_set(err, "'%s' exited with status %d", p->args.v[0], status);
	return 0;
}

static int run_nvidia_smi(struct bv_buf *out, const char *prog, const char *const *args, int ms)
{
	struct bv_proc p = BV_PROC_INIT;
	int r;
	bv_strv_push(&p.args, prog);
	bv_strv_pushv(&p.args, args);
	bv_strv_push(&p.env, "LC_ALL=C");
	r = capture_bounded(out, &p, ms > 0 ? ms : NVIDIA_SMI_MS, NULL);
	bv_proc_clear(&p);
	return r;
}

/*
 * Parses "name, memory.total, driver_version" lines of nvidia-smi's CSV query; fields are
 * taken from the right, since a model name may contain a comma.
 */
static size_t parse_smi_query(struct bv_hardware *hw, char *text)
{
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && n < GPUS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c2 = strrchr(line, ','), *c1, *mem, *drv;
		int64_t mib;
		struct bv_gpu *g;
		line[strcspn(line, "\r")] = '\0';
		if (!c2)
			continue;
		*c2 = '\0';
		if (!(c1 = strrchr(line, ',')))
			continue;
		*c1 = '\0';
		mem = c1 + 1 + strspn(c1 + 1, " ");
		drv = c2 + 1 + strspn(c2 + 1, " ");
		mem[strcspn(mem, " ")] = '\0';
		if (bv_parse_i64(&mib, mem) < 0 || mib < 0)
			mib = -1; /* "[N/A]" */
		hw->gpus = bv_xrealloc(hw->gpus, (hw->n_gpus + 1) * sizeof(*hw->gpus));
		g = &hw->gpus[hw->n_gpus++];
		*g = (struct bv_gpu){.vram_mib = mib};
		if (*line && bv_text_is_printable(line, false))
			g->name = bv_xstrdup(line);
		if (!hw->driver_version && *drv && strspn(drv, "0123456789.") == strlen(drv))
			hw->driver_version = bv_xstrdup(drv);
		n++;
	}
	return n;
}

/* "CUDA Version: 12.2" from nvidia-smi's header: the newest CUDA the driver supports. */
static char *parse_smi_cuda(const char *text)
{
	const char *p = strstr(text, "CUDA Version:");
	size_t n;
	if (!p)
		return NULL;
	p += strlen("CUDA Version:");
	p += strspn(p, " ");
	n = strspn(p, "0123456789.");
	if (!n || p[0] == '.' || !memchr(p, '.', n) || n > 16)
		return NULL;
	return bv_xstrndup(p, n);
}

static void detect_nvidia_smi(struct bv_hardware *hw, const char *root, int ms)
{
	static const char *const query[] = {"--query-gpu=name,memory.total,driver_version",
					    "--format=csv,noheader,nounits", NULL};
	static const char *const header[] = {NULL};
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT, head = BV_BUF_INIT;
	_cleanup_free_ char *prog = NULL;
	struct bv_hardware smi = BV_HARDWARE_INIT;
	if (root[0]) {
		prog = under(root, "/usr/bin/nvidia-smi");
		if (access(prog, X_OK) < 0)
			return;
	} else {
		prog = bv_xstrdup("nvidia-smi"); /* looked up in PATH; absent is no GPU */
	}
	if (run_nvidia_smi(&out, prog, query, ms) < 0)
		return;
	if (!parse_smi_query(&smi, out.buf)) {
		bv_hardware_release(&smi);
		return;
	}
	/* nvidia-smi sees what the driver sees, and also each GPU's memory */
	for (size_t i = 0; i < hw->n_gpus; i++)
		free(hw->gpus[i].name);
	free(hw->gpus);
	hw->gpus = TAKE_PTR(smi.gpus);
	hw->n_gpus = smi.n_gpus;
	smi.n_gpus = 0;
	if (smi.driver_version) {
		free(hw->driver_version);
		hw->driver_version = TAKE_PTR(smi.driver_version);
	}
	bv_hardware_release(&smi);
	hw->gpu_source = "nvidia-smi";
	if (run_nvidia_smi(&head, prog, header, ms) == 0) {
		hw->cuda_version = parse_smi_cuda(head.buf);
	}
}

int bv_hardware_detect(struct bv_hardware *out, const struct bv_hardware_options *o,
		       struct bv_error **err)
{
	static const struct bv_hardware_options defaults = {0};
	struct bv_hardware hw = BV_HARDWARE_INIT;
	const char *root;
	if (!o)
		o = &defaults;
	root = o->root ? o->root : getenv("BV_HARDWARE_ROOT");
	if (!root || !strcmp(root, "/"))
		root = "";
	if (root[0]) {
		struct stat st;
		if (root[0] != '/' || stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "BV_HARDWARE_ROOT '%s' is not an absolute directory",
					     root);
	}
	hw.cpu_cores = count_cores();
	detect_memory(&hw, root);
	if (o->disk_path)
		detect_disk(&hw, o->disk_path);
	detect_driver_gpus(&hw, root);
	if (!o->no_nvidia_smi)
		detect_nvidia_smi(&hw, root, o->nvidia_smi_ms);
	if (!hw.cuda_version && hw.n_gpus && hw.driver_version) {
		const char *cuda = cuda_of_driver(hw.driver_version);
		if (cuda)
			hw.cuda_version = bv_xstrdup(cuda);
	}
	*out = hw;
	return 0;
}

/* ---- the check ---- */

static bool parse_major_minor(unsigned long *major, unsigned long *minor, const char *v)
{
	char *end;
	if (!v || *v < '0' || *v > '9')
		return false;
	errno = 0;
	*major = strtoul(v, &end, 10);
	if (errno || *end != '.' || end[1] < '0' || end[1] > '9')
		return false;
	*minor = strtoul(end + 1, &end, 10);
	/* nvidia-smi may one day print "12.2.1"; the patch level never decides */
	return !errno && (*end == '\0' || *end == '.');
}

int bv_hardware_cuda_compare(const char *a, const char *b)
{
	unsigned long amaj = 0, amin = 0, bmaj = 0, bmin = 0;
	bool aok = parse_major_minor(&amaj, &amin, a), bok = parse_major_minor(&bmaj, &bmin, b);
	if (!aok || !bok)
		return (int)aok - (int)bok;
	if (amaj != bmaj)
		return amaj < bmaj ? -1 : 1;
	if (amin != bmin)
		return amin < bmin ? -1 : 1;
	return 0;
}

/* "a", "a and b", "a, b and c" */
static void join_and(struct bv_buf *b, const struct bv_strv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			bv_buf_puts(b, i + 1 == v->n ? " and " : ", ");
		bv_buf_puts(b, v->v[i]);
	}
}

int bv_hardware_check(struct bv_strv *notes, const struct bv_hardware *hw,
		      const struct bv_manifest *m, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv need = BV_STRV_INIT, have = BV_STRV_INIT;
	_cleanup_buf_ struct bv_buf msg = BV_BUF_INIT;
	int64_t gpus = m->gpu_count > 0 ? m->gpu_count : m->gpu_required ? 1 : 0;

	if (m->cpu_cores > 0 && hw->cpu_cores > 0 && hw->cpu_cores < m->cpu_cores) {
		bv_strv_pushf(&need, "%lld CPU cores", (long long)m->cpu_cores);
		bv_strv_pushf(&have, "%ld", hw->cpu_cores);
	}
	if (m->ram_gb > 0 && hw->ram_bytes > 0 && (double)hw->ram_bytes / GIB < m->ram_gb) {
		bv_strv_pushf(&need, "%g GiB of RAM", m->ram_gb);
		bv_strv_pushf(&have, "%.1f GiB%s", (double)hw->ram_bytes / GIB,
			      hw->ram_limited ? " (its cgroup's limit)" : "");
	}
	if (m->disk_gb > 0 && hw->disk_free_bytes >= 0 &&
	    (double)hw->disk_free_bytes / GIB < m->disk_gb) {
		bv_strv_pushf(&need, "%g GiB of free disk", m->disk_gb);
		bv_strv_pushf(&have, "%.1f GiB free in '%s'", (double)hw->disk_free_bytes / GIB,
			      hw->disk_path);
	}
	if (gpus > 0 && !hw->n_gpus) {
		bv_strv_push(&need, gpus == 1 ? "an NVIDIA GPU" : "NVIDIA GPUs");
		bv_strv_push(&have, "none");
	} else if (gpus > 0) {
		int64_t best = -1;
		if ((int64_t)hw->n_gpus < gpus) {
			bv_strv_pushf(&need, "%lld NVIDIA GPUs", (long long)gpus);
			bv_strv_pushf(&have, "%zu", hw->n_gpus);
		}
		for (size_t i = 0; i < hw->n_gpus; i++)
			if (hw->gpus[i].vram_mib > best)
				best = hw->gpus[i].vram_mib;
		/* upstream rounds: a "16 GB" card reports 16160 MiB */
		if (m->min_vram_gb > 0 && best < 0) {
			if (notes)
				bv_strv_pushf(notes,
					      "could not read the GPUs' memory (no nvidia-smi); "
					      "%s needs %lld GiB of it",
					      m->id, (long long)m->min_vram_gb);
		} else if (m->min_vram_gb > 0 && llround((double)best / 1024.0) < m->min_vram_gb) {
			bv_strv_pushf(&need, "%lld GiB of GPU memory", (long long)m->min_vram_gb);
			bv_strv_pushf(&have, "%lld GiB", (long long)llround((double)best / 1024.0));
		}
		if (m->cuda_version && !hw->cuda_version) {
			bv_strv_pushf(&need, "CUDA %s", m->cuda_version);
			bv_strv_push(&have, "no known CUDA version");
		} else if (m->cuda_version &&
			   bv_hardware_cuda_compare(hw->cuda_version, m->cuda_version) < 0) {
			bv_strv_pushf(&need, "CUDA %s", m->cuda_version);
			bv_strv_pushf(&have, "CUDA %s", hw->cuda_version);
		}
	}
	if (!need.n)
		return 0;
	bv_buf_puts(&msg, m->id);
	bv_buf_puts(&msg, " needs ");
	join_and(&msg, &need);
	bv_buf_puts(&msg, "; this machine has ");
	join_and(&msg, &have);
	return bv_error_setc(err, BV_EINVALID, 0, "%s", msg.buf);
}

static const char *env_get(const char *const *env, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], name, len) && env[i][len] == '=')
			return env[i][len + 1] ? env[i] + len + 1 : NULL;
	return NULL;
}

/* This process's CPU affinity as a list of ranges ("0-3,8"), NULL when unknown. */
static char *affinity_list(long *count)
{
	for (int ncpu = 1024; ncpu <= (1 << 16); ncpu *= 2) {
		cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
		size_t size = CPU_ALLOC_SIZE((size_t)ncpu);
		struct bv_buf b = BV_BUF_INIT;
		if (!set)
			return NULL;
		if (sched_getaffinity(0, size, set) < 0) {
			CPU_FREE(set);
			if (errno == EINVAL)
				continue;
			return NULL;
		}
		for (int c = 0; c < ncpu; c++) {
			int end = c;
			if (!CPU_ISSET_S((size_t)c, size, set))
				continue;
			while (end + 1 < ncpu && CPU_ISSET_S((size_t)end + 1, size, set))
				end++;
			if (b.len)
				bv_buf_putc(&b, ',');
			if (end > c)
				bv_buf_printf(&b, "%d-%d", c, end);
			else
				bv_buf_printf(&b, "%d", c);
			c = end;
		}
		*count = CPU_COUNT_S(size, set);
		CPU_FREE(set);
		bv_buf_putc(&b, 0);
		return bv_buf_detach(&b, NULL);
	}
	return NULL;
}

char *bv_cpu_affinity_list(bool *restricted)
{
	long count = 0, online = sysconf(_SC_NPROCESSORS_ONLN);
	char *list = affinity_list(&count);
	if (restricted)
		*restricted = list && online > 0 && count < online;
	return list;
}

bool bv_scheduler_detect(struct bv_scheduler *out, const char *const *env)
{
	memset(out, 0, sizeof(*out));
	if (!env)
		env = (const char *const *)environ;
	out->job_id = env_get(env, "SLURM_JOB_ID");
	if (!out->job_id)
		return false;
	out->name = "slurm";
	out->step_id = env_get(env, "SLURM_STEP_ID");
	out->node = env_get(env, "SLURMD_NODENAME");
	out->cpus = env_get(env, "SLURM_CPUS_PER_TASK");
	if (!out->cpus)
		out->cpus = env_get(env, "SLURM_JOB_CPUS_PER_NODE");
	out->gpus = env_get(env, "SLURM_STEP_GPUS");
	if (!out->gpus)
		out->gpus = env_get(env, "SLURM_JOB_GPUS");
	out->cuda = env_get(env, "CUDA_VISIBLE_DEVICES");
	out->tmpdir = env_get(env, "TMPDIR");
	out->cpu_list = bv_cpu_affinity_list(NULL);
	return true;
}

void bv_scheduler_release(struct bv_scheduler *s)
{
	free(s->cpu_list);
	memset(s, 0, sizeof(*s));
}
