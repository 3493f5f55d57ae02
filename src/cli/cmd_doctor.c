/*
 * bv doctor: what can run tools here (each backend, usable or why not), the cache, and the
 * state of the project in the working directory.  Exits 1 only when no backend is usable:
 * everything else is information, so scripts can use `bv doctor` as "can bv work here?".
 */
#include <bv/data.h>
#include <bv/error.h>
#include <bv/hardware.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/runtime.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_backend;

static const char *const backends[] = {"native", "docker", "apptainer"};

/* The first line of an error chain, formatted; the caller frees it. */
static char *error_line(struct bv_error *err)
{
	char *text = bv_error_format(err);
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	bv_error_free(err);
	return text;
}

/* One line per backend; returns whether it is usable. */
static bool doctor_backend(const char *name)
{
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	struct bv_runtime_info info = {0};
	bool usable;
	if (bv_runtime_new(&rt, name, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  %-10s  not usable: %s\n", name, bv_cli_text(why));
		return false;
	}
	usable = rt->ops->is_usable(rt);
	/* health() of an unusable backend says why it is not usable. */
	if (rt->ops->health(rt, &info, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  %-10s  %s: %s\n", name, usable ? "usable, but unhealthy" : "not usable",
		       bv_cli_text(why));
	} else {
		printf("  %-10s  %s  %s%s%s%s\n", name, usable ? "usable" : "not usable",
		       info.version ? bv_cli_text(info.version) : "?", info.detail ? " (" : "",
		       info.detail ? bv_cli_text(info.detail) : "", info.detail ? ")" : "");
	}
	bv_runtime_info_release(&info);
	bv_runtime_free(rt);
	return usable;
}

static void doctor_cache(void)
{
	_cleanup_free_ char *dir = NULL;
	struct bv_error *err = NULL;
	struct statvfs vfs;
	printf("\nCache\n");
	if (bv_cache_dir(&dir, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  directory   unknown: %s\n", bv_cli_text(why));
		return;
	}
	printf("  directory   %s%s\n", bv_cli_text(dir),
	       bv_path_exists(dir) ? "" : " (not created yet)");
	/* The nearest existing ancestor holds the file system the cache will live on. */
	for (char *slash; statvfs(dir, &vfs) < 0 && (slash = strrchr(dir, '/')) && slash != dir;)
		*slash = '\0';
	if (statvfs(dir, &vfs) == 0) {
		char human[32];
		bv_cli_format_size(human, sizeof(human),
				   (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize);
		printf("  free        %s\n", human);
	}
}

/* The batch job this runs in (what a tool started here is granted); nothing outside one. */
static void doctor_scheduler(void)
{
	struct bv_scheduler s;
	if (!bv_scheduler_detect(&s, NULL))
		return;
	printf("\nScheduler\n");
	printf("  %-10s  job %s", s.name, bv_cli_text(s.job_id));
	if (s.step_id)
		printf(", step %s", bv_cli_text(s.step_id));
	if (s.node)
		printf(", node %s", bv_cli_text(s.node));
	printf("\n");
	printf("  cpus        %s granted; affinity %s\n", s.cpus ? bv_cli_text(s.cpus) : "?",
	       s.cpu_list ? s.cpu_list : "unknown");
	if (s.gpus || s.cuda)
		printf("  gpus        %s (CUDA_VISIBLE_DEVICES %s)\n",
		       s.gpus ? bv_cli_text(s.gpus) : "?", s.cuda ? bv_cli_text(s.cuda) : "unset");
	else
		printf("  gpus        none granted\n");
	printf("  scratch     %s\n",
	       s.tmpdir ? bv_cli_text(s.tmpdir) : "no TMPDIR (no node-local scratch named)");
	bv_scheduler_release(&s);
}

/* What [tool.hardware] is checked against on bv add and bv update (bv/hardware.h). */
static void doctor_hardware(void)
{
	struct bv_hardware hw = BV_HARDWARE_INIT;
	struct bv_hardware_options o = {0};
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	char human[32], total[32];
	printf("\nHardware\n");
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		err = NULL;
	}
	o.disk_path = cache;
	if (bv_hardware_detect(&hw, &o, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  unknown     %s\n", bv_cli_text(why));
		return;
	}
	if (hw.cpu_cores > 0)
		printf("  cores       %ld\n", hw.cpu_cores);
	else
		printf("  cores       unknown\n");
	if (hw.ram_bytes > 0) {
		bv_cli_format_size(human, sizeof(human), hw.ram_bytes);
		bv_cli_format_size(total, sizeof(total), hw.ram_total_bytes);
		printf("  memory      %s%s%s%s\n", human, hw.ram_limited ? " (cgroup limit; " : "",
		       hw.ram_limited ? total : "", hw.ram_limited ? " installed)" : "");
	} else {
		printf("  memory      unknown\n");
	}
	if (hw.disk_free_bytes >= 0) {
		bv_cli_format_size(human, sizeof(human), hw.disk_free_bytes);
		printf("  disk        %s free in %s\n", human, bv_cli_text(hw.disk_path));
	} else {
		printf("  disk        unknown\n");
	}
	if (!hw.n_gpus)
		printf("  gpu         no NVIDIA GPU\n");
	for (size_t i = 0; i < hw.n_gpus; i++) {
		if (hw.gpus[i].vram_mib >= 0)
			bv_cli_format_size(human, sizeof(human), hw.gpus[i].vram_mib * 1024 * 1024);
		printf("  gpu %-7zu %s (%s)\n", i,
		       hw.gpus[i].name ? bv_cli_text(hw.gpus[i].name) : "NVIDIA GPU",
		       hw.gpus[i].vram_mib >= 0 ? human : "memory unknown");
	}
	if (hw.n_gpus)
		printf("  cuda        %s (driver %s, from %s)\n",
		       hw.cuda_version ? bv_cli_text(hw.cuda_version) : "unknown",
		       hw.driver_version ? bv_cli_text(hw.driver_version) : "unknown",
		       hw.gpu_source);
	bv_hardware_release(&hw);
}

/* "42 s", "3 min", "5 h", "2 days" */
static void format_age(char *out, size_t len, int64_t seconds)
{
	if (seconds < 0)
		seconds = 0;
	if (seconds < 120)
		snprintf(out, len, "%lld s", (long long)seconds);
	else if (seconds < 2 * 3600)
		snprintf(out, len, "%lld min", (long long)(seconds / 60));
	else if (seconds < 2 * 86400)
		snprintf(out, len, "%lld h", (long long)(seconds / 3600));
	else
		snprintf(out, len, "%lld days", (long long)(seconds / 86400));
}

/* The registry this project reads, without touching the network, and every clone bv made. */
static void doctor_index(const struct bv_cli_ctx *ctx, bool loaded)
{
	const char *url = bv_registry_url_choose(
		NULL, loaded && ctx->project ? ctx->project->registry_url : NULL);
	_cleanup_free_ char *shown = bv_index_redact_url(url);
	struct bv_index_clone *clones = NULL;
	struct bv_index *idx = NULL;
	struct bv_error *err = NULL;
	size_t n = 0;
	int64_t ttl = -1;
	char age[32];
	printf("\nIndex\n");
	if (bv_index_open(&idx, url, BV_INDEX_OFFLINE, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  registry    %s (%s)\n", bv_cli_text(shown), bv_cli_text(why));
		err = NULL;
	} else {
		bool cloned;
		const char *dir = bv_index_location(idx, &cloned);
		if (cloned)
			printf("  registry    %s (clone in %s)\n", bv_cli_text(shown),
			       bv_cli_text(dir));
		else
			printf("  registry    %s (a local directory, used in place, never refreshed)\n",
			       bv_cli_text(dir));
		bv_index_free(idx);
	}
	if (bv_index_ttl(&ttl, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  ttl         unknown: %s\n", bv_cli_text(why));
		err = NULL;
	} else {
		printf("  ttl         %lld s (BV_INDEX_TTL; a clone older than this is refreshed)\n",
		       (long long)ttl);
	}
	if (bv_index_list_clones(&clones, &n, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  clones      unknown: %s\n", bv_cli_text(why));
		return;
	}
	printf("  clones      %zu in the cache\n", n);
	for (size_t i = 0; i < n; i++) {
		if (clones[i].refreshed >= 0)
			format_age(age, sizeof(age), bv_time_now() - clones[i].refreshed);
		printf("              %s  refreshed %s%s  %s\n",
		       clones[i].url ? bv_cli_text(clones[i].url) : "(no origin)",
		       clones[i].refreshed >= 0 ? age : "never",
		       clones[i].refreshed >= 0 ? " ago" : "", bv_cli_text(clones[i].dir));
	}
	bv_index_clones_free(clones, n);
}

static void doctor_project(const struct bv_cli_ctx *ctx, bool loaded)
{
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	size_t available = 0;
	printf("\nProject\n");
	if (!loaded) {
		printf("  bv.toml     cannot be loaded (see the error above)\n");
		return;
	}
	if (!ctx->project) {
		printf("  bv.toml     none here or above (not in a project)\n");
		return;
	}
	printf("  bv.toml     %s (%zu tool%s)\n", bv_cli_text(ctx->project->path),
	       ctx->project->n_tools, ctx->project->n_tools == 1 ? "" : "s");
	if (!ctx->lock) {
		printf("  bv.lock     none yet (run 'bv lock' or 'bv add <tool>')\n");
		return;
	}
	printf("  bv.lock     %s (%zu tool%s locked)\n", bv_cli_text(ctx->lock_path),
	       ctx->lock->n_tools, ctx->lock->n_tools == 1 ? "" : "s");
	if (bv_runtime_select(&rt, arg_backend, ctx->project->runtime_backend, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  images      unknown: %s\n", bv_cli_text(why));
		return;
	}
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx->lock->tools[i];
		struct bv_image_spec image = {.tool_id = t->tool_id,
					      .reference = t->image_reference,
					      .digest = t->image_digest};
		bool here = false;
		if (!t->image_digest[0])
			continue;
		if (rt->ops->is_available(rt, &image, &here, &err) < 0) {
			bv_error_free(err);
			err = NULL;
			here = false;
		}
		available += here;
	}
	printf("  images      %zu of %zu on this machine (%s backend)%s\n", available,
	       ctx->lock->n_tools, rt->ops->name,
	       available < ctx->lock->n_tools ? ": run 'bv sync'" : "");
	bv_runtime_free(rt);
}

/* The cached datasets, and the ones this project's bv.lock pins that are missing. */
static void doctor_data(const struct bv_cli_ctx *ctx, bool loaded)
{
	struct bv_data_entry *e = NULL;
	struct bv_error *err = NULL;
	int64_t total = 0;
	size_t n = 0, missing = 0;
	char human[32];
	printf("\nData\n");
	if (bv_data_list(&e, &n, NULL, &err) < 0) {
		_cleanup_free_ char *why = error_line(err);
		printf("  datasets    unknown: %s\n", bv_cli_text(why));
		return;
	}
	for (size_t i = 0; i < n; i++)
		total += e[i].size;
	bv_cli_format_size(human, sizeof(human), total);
	printf("  datasets    %zu in the cache (%s)\n", n, human);
	for (size_t i = 0; i < n; i++) {
		bv_cli_format_size(human, sizeof(human), e[i].size);
		printf("              %s %s  %s\n", bv_cli_text(e[i].id), bv_cli_text(e[i].version),
		       human);
	}
	bv_data_entries_free(e, n);
	if (!loaded || !ctx->lock)
		return;
	for (size_t i = 0; i < ctx->lock->n_tools; i++)
		for (size_t k = 0; k < ctx->lock->tools[i].n_pins; k++) {
			const struct bv_lock_data_pin *p = &ctx->lock->tools[i].pins[k];
			struct bv_data_entry one;
			if (bv_data_lookup(&one, NULL, p->id, p->version, &err) == 0) {
				bv_data_entry_release(&one);
				continue;
			}
			bv_error_free(err);
			err = NULL;
			printf("  missing     %s %s (for %s; 'bv data fetch %s@%s')\n",
			       bv_cli_text(p->id), bv_cli_text(p->version),
			       bv_cli_text(ctx->lock->tools[i].tool_id), bv_cli_text(p->id),
			       bv_cli_text(p->version));
			missing++;
		}
	if (!missing)
		printf("  project     every pinned dataset is in the cache\n");
}

static int run_doctor(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	size_t usable = 0;
	bool loaded;
	int first = 0;
	int status = bv_cli_begin(&bv_cmd_doctor, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	/* First, so that its warnings come before the report rather than inside it. */
	loaded = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT, NULL) == 0;
	printf("Runtime\n");
	for (size_t i = 0; i < BV_ARRAY_SIZE(backends); i++)
		usable += doctor_backend(backends[i]);
	printf("  selected    %s\n",
	       bv_runtime_selected_name(
		       arg_backend, loaded && ctx.project ? ctx.project->runtime_backend : NULL));
	doctor_hardware();
	doctor_scheduler();
	doctor_cache();
	doctor_index(&ctx, loaded);
	doctor_data(&ctx, loaded);
	doctor_project(&ctx, loaded);
	bv_cli_ctx_release(&ctx);
	fflush(stdout);
	if (!usable) {
		bv_cli_error("no backend can run tools here");
		bv_cli_hint("allow unprivileged user namespaces, start a Docker engine, or put "
			    "apptainer on PATH");
		return BV_EXIT_FAILURE;
	}
	return BV_EXIT_OK;
}

static const struct bv_cli_option doctor_options[] = {
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "the backend whose images the project section counts (default: the selected one)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_doctor = {
	.name = "doctor",
	.usage = "[--backend <NAME>]",
	.summary = "check what bv can use on this machine",
	.description =
		"Shows each backend (native, docker, apptainer): whether it is usable here and its\nversion, or why not; the hardware tools are checked against (cores, memory, free\ndisk, NVIDIA GPUs and CUDA); the cache directory and its free space; the registry\nin use, its clones and their age; the cached datasets; and, inside a project,\nbv.toml, bv.lock and how many locked images the selected backend has.\nExits 1 only when no backend is usable.",
	.options = doctor_options,
	.run = run_doctor,
};
