/*
 * The command-line side of the lock operations (bv/lockops.h): pulling the images a relock
 * asks for, printing its diff and warnings, keeping manifest copies for bv run, and the
 * --platform argument of bv add, bv lock and bv sync.  What goes into bv.lock is decided in
 * the library.
 *
 * bv lock --check never talks to an image registry (no callback); bv lock asks the registry
 * what the tags of changed tools point to now (no blobs are downloaded); bv update also does
 * that for tools whose version did not change, then pulls and unpacks, so the machine
 * matches the new lock.
 */
#include <bv/error.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/registry.h>
#include <bv/runplan.h>
#include <bv/runtime.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

int bv_cli_platform_arg(char **out, const char *arg)
{
	struct bv_error *err = NULL;
	*out = NULL;
	if (!arg)
		return BV_EXIT_OK;
	if (bv_platform_normalize(out, arg, &err) < 0) {
		bv_cli_report(err);
		return BV_EXIT_USAGE;
	}
	return BV_EXIT_OK;
}

/* A copy for bv run (bv_run_plan_save_manifest); failing to keep one only slows a run. */
void bv_cli_keep_manifest(const struct bv_manifest *m)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	if (bv_cache_dir(&cache, &err) < 0 || bv_run_plan_save_manifest(m, cache, &err) < 0) {
		char *msg = bv_error_format(err);
		bv_cli_warning("%s", msg);
		free(msg);
		bv_error_free(err);
	}
}

void bv_cli_image_of(struct bv_lockops_image *out, const struct bv_install_item *it)
{
	out->digest = it->top_digest;
	out->size = it->size;
	out->n_layers = it->n_layers;
	out->layers = bv_xcalloc(it->n_layers + 1, sizeof(*out->layers));
	for (size_t i = 0; i < it->n_layers; i++)
		out->layers[i] = (struct bv_lockops_layer){.digest = it->layers[i].digest,
							   .size = (int64_t)it->layers[i].size,
							   .media_type = it->layers[i].media_type};
}

void bv_cli_print_warnings(const struct bv_strv *warnings)
{
	bv_strv_foreach (w, warnings)
		bv_cli_warning("%s", *w);
}

int bv_cli_admit_check(struct bv_cli_admit *a, const struct bv_manifest *m, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv notes = BV_STRV_INIT;
	struct bv_error *why = NULL;
	bool needs_gpu = m->gpu_required || m->gpu_count > 0;
	int r;
	if (!a->allow_experimental && !strcmp(m->tier, "experimental")) {
		a->hint = "--allow-experimental";
		return bv_error_setc(err, BV_EINVALID, 0,
				     "%s %s is experimental: experimental tools need "
				     "--allow-experimental",
				     m->id, m->version);
	}
	if (a->skip_hardware)
		return 0;
	/* nvidia-smi takes a second or more even when it works: only for a tool needing a GPU */
	if (!a->detected || (needs_gpu && !a->asked_nvidia_smi)) {
		_cleanup_free_ char *cache = NULL;
		struct bv_hardware_options o = {.no_nvidia_smi = !needs_gpu};
		struct bv_error *e = NULL;
		bv_hardware_release(&a->hw);
		/* the tool's disk_gb goes into the cache, so that is the disk measured */
		if (bv_cache_dir(&cache, &e) < 0)
			bv_error_free(TAKE_PTR(e));
		o.disk_path = cache;
		r = bv_hardware_detect(&a->hw, &o, err);
		if (r < 0)
			return r;
		a->detected = true;
		a->asked_nvidia_smi = needs_gpu;
	}
	r = bv_hardware_check(&notes, &a->hw, m, &why);
	bv_cli_print_warnings(&notes);
	if (r < 0 && a->ignore_hardware) {
		char *msg = bv_error_format(why);
		bv_cli_warning("%s (going ahead: --ignore-hardware)", msg);
		free(msg);
		bv_error_free(why);
		return 0;
	}
	if (r < 0) {
		a->hint = "--ignore-hardware";
		if (err)
			*err = why;
		else
			bv_error_free(why);
	}
	return r;
}

void bv_cli_admit_hint(const struct bv_cli_admit *a)
{
	if (a->hint)
		bv_cli_hint("use %s to go ahead anyway", a->hint);
}

void bv_cli_admit_release(struct bv_cli_admit *a)
{
	bv_hardware_release(&a->hw);
	a->detected = false;
}

int bv_cli_ensure_on_backend(const struct bv_cli_ctx *ctx, const char *backend,
			     const struct bv_install_item *items, size_t n, unsigned jobs)
{
	struct bv_error *err = NULL;
	struct bv_runtime *rt = NULL;
	struct bv_image_spec *images = bv_xcalloc(n + 1, sizeof(*images));
	struct bv_cli_progress progress = {0};
	struct bv_ensure_options o = {
		.jobs = jobs, .progress = bv_cli_pull_progress, .progress_payload = &progress};
	int r = 0;
	for (size_t i = 0; i < n; i++)
		images[i] = (struct bv_image_spec){.tool_id = items[i].tool_id,
						   .reference = items[i].reference,
						   .digest = items[i].top_digest};
	if (bv_runtime_select(&rt, backend, ctx->project->runtime_backend, &err) < 0 ||
	    rt->ops->ensure(rt, images, n, &o, &err) < 0)
		r = bv_cli_report(err);
	bv_runtime_free(rt);
	free(images);
	return r;
}

/* What the relock's callback pulled: kept until the relock has copied it into the lock. */
struct relock_pull {
	struct bv_install_options options;
	struct bv_install_item *items;
	struct bv_lockops_image *images;
	size_t n;
	/* bv update for a backend other than native: the images go to it after the resolve */
	const struct bv_cli_ctx *ctx;
	const char *backend;
	bool to_backend;
	int status; /* the exit status of a failed hand-over, already reported */
};

static int pull_images(struct bv_lockops_image *out,
		       const struct bv_lockops_image_request *requests, size_t n, void *payload,
		       struct bv_error **err)
{
	struct relock_pull *pull = payload;
	int r;
	pull->items = bv_xcalloc(n + 1, sizeof(*pull->items));
	pull->images = bv_xcalloc(n + 1, sizeof(*pull->images));
	pull->n = n;
	for (size_t i = 0; i < n; i++) {
		pull->items[i].tool_id = requests[i].tool_id;
		pull->items[i].reference = requests[i].reference;
		pull->items[i].pinned = requests[i].pinned;
	}
	r = bv_install(pull->items, n, &pull->options, err);
	if (r < 0)
		return r;
	if (pull->to_backend &&
	    (pull->status = bv_cli_ensure_on_backend(pull->ctx, pull->backend, pull->items, n,
						     pull->options.jobs)))
		return bv_error_setc(err, BV_EINVALID, 0, "could not pull the images");
	for (size_t i = 0; i < n; i++) {
		bv_cli_image_of(&pull->images[i], &pull->items[i]);
		out[i] = pull->images[i];
	}
	return 0;
}

static void relock_pull_release(struct relock_pull *pull)
{
	for (size_t i = 0; i < pull->n; i++) {
		free(pull->images[i].layers);
		bv_install_item_release(&pull->items[i]);
	}
	free(pull->images);
	free(pull->items);
}

static int print_diff(const struct bv_lockops_diff *diff, enum bv_relock_mode mode)
{
	if (!diff->n_changes) {
		bv_cli_status("bv.lock is up to date\n");
		return BV_EXIT_OK;
	}
	if (mode == BV_RELOCK_CHECK)
		bv_cli_status("bv.lock is out of date with bv.toml and the registry:\n");
	for (size_t i = 0; i < diff->n_changes; i++)
		bv_strv_foreach (line, &diff->changes[i].lines)
			printf("%s\n", bv_cli_text(*line));
	if (mode == BV_RELOCK_CHECK)
		bv_cli_hint("run 'bv lock' to update it");
	return mode == BV_RELOCK_CHECK ? BV_EXIT_FAILURE : BV_EXIT_OK;
}

/* bv update's checks of each tool resolved again (see struct bv_cli_update). */
static int relock_admit(const struct bv_manifest *m, bool locked, void *payload,
			struct bv_error **err)
{
	struct bv_cli_admit *a = payload;
	/* as upstream: bv update leaves experimental tools alone unless told otherwise */
	if (locked && !a->allow_experimental && !strcmp(m->tier, "experimental")) {
		bv_cli_warning("not updating %s: it is experimental (use --allow-experimental)",
			       m->id);
		return 1;
	}
	return bv_cli_admit_check(a, m, err);
}

int bv_cli_relock(struct bv_cli_ctx *ctx, enum bv_relock_mode mode, char **only, size_t n_only,
		  unsigned jobs, const char *platform, const struct bv_cli_update *update)
{
	struct bv_error *err = NULL;
	struct bv_cli_progress progress = {0};
	struct relock_pull pull = {
		.options = {.mode = mode == BV_RELOCK_UPDATE ? BV_INSTALL_FULL
							     : BV_INSTALL_RESOLVE_ONLY,
			    .jobs = jobs,
			    .platform = platform,
			    .progress = bv_cli_pull_progress,
			    .progress_payload = &progress},
	};
	struct bv_lockops_relock_options o = {
		.images = mode == BV_RELOCK_CHECK ? NULL : pull_images,
		.payload = &pull,
		/* a lock for another platform shares no pin with the one it replaces */
		.force_all = (mode == BV_RELOCK_UPDATE && !n_only) || platform,
		.only = (const char *const *)only,
		.n_only = n_only,
	};
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	int r;

	if (update) {
		o.admit = update->admit ? relock_admit : NULL;
		o.admit_payload = update->admit;
		pull.ctx = ctx;
		pull.backend = update->backend;
		/* as bv add: the native backend runs from bv's store, any other gets its copy
		 * from the registry once the tags are resolved */
		pull.to_backend = strcmp(bv_runtime_selected_name(update->backend,
								  ctx->project->runtime_backend),
					 "native") != 0;
		if (pull.to_backend)
			pull.options.mode = BV_INSTALL_RESOLVE_ONLY;
	}
	r = bv_lockops_relock(&res, ctx->project, ctx->lock, ctx->index, ctx->types, &o, &err);
	relock_pull_release(&pull);
	if (r < 0 && pull.status) {
		bv_error_free(err);
		return pull.status;
	}
	if (r < 0) {
		r = bv_cli_report(err);
		if (update && update->admit)
			bv_cli_admit_hint(update->admit);
		return r;
	}
	if (res.lock)
		(void)bv_lockops_fill_data_pins(res.lock, ctx->index, &res.warnings);
	bv_cli_print_warnings(&res.warnings);
	/* signed images: the lock to be written, or the one kept, before anything is said */
	if (mode != BV_RELOCK_CHECK && bv_cli_require_signed(ctx) &&
	    (r = bv_cli_verify_signed(ctx, res.lock ? res.lock : ctx->lock,
				      (const struct bv_manifest *const *)res.manifests,
				      res.n_manifests)))
		goto out;
	if (!res.lock) {
		r = print_diff(&res.diff, mode);
		goto out;
	}
	if ((r = bv_cli_commit(ctx, &res)))
		goto out;
	r = print_diff(&res.diff, mode);
	bv_cli_status("Wrote bv.lock (%zu tool%s)\n", res.lock->n_tools,
		      res.lock->n_tools == 1 ? "" : "s");
	for (size_t i = 0; i < res.n_manifests; i++)
		bv_cli_keep_manifest(res.manifests[i]);
out:
	bv_lockops_result_release(&res);
	return r;
}

int bv_cli_relock_reload(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	/* an index the caller opened already (sync --registry) is the one to lock from */
	int r = ctx->index ? 0 : bv_cli_ctx_load_index(ctx, NULL, false);
	if (!r && !ctx->types)
		r = bv_cli_ctx_load_types(ctx);
	if (!r)
		r = bv_cli_relock(ctx, BV_RELOCK_WRITE, NULL, 0, 0, NULL, NULL);
	if (r)
		return r;
	bv_lockfile_free(ctx->lock);
	ctx->lock = NULL;
	if (bv_lockfile_load(&ctx->lock, ctx->lock_path, &err) < 0)
		return bv_cli_report(err);
	return 0;
}
