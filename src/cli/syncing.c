/*
 * Getting bv.lock's images onto the selected backend, and the shims that go with them:
 * shared by bv sync, bv add and bv exec's auto-sync.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/registry.h>
#include <bv/retain.h>
#include <bv/runtime.h>
#include <bv/shims.h>
#include <bv/syncrecord.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

int bv_cli_setenv(const char *name, const char *value)
{
	if (setenv(name, value, 1) == 0)
		return BV_EXIT_OK;
	bv_cli_error("could not set %s: %s", name, strerror(errno));
	return BV_EXIT_FAILURE;
}

int bv_cli_export_project_env(const struct bv_cli_ctx *ctx)
{
	const char *old_path = getenv("PATH");
	_cleanup_free_ char *bin = NULL, *path = NULL;
	struct bv_error *err = NULL;
	int r;
	if (bv_shims_path_dir(&bin, ctx->project->root, &err) < 0)
		return bv_cli_report(err);
	path = old_path && old_path[0] ? bv_xasprintf("%s:%s", bin, old_path) : bv_xstrdup(bin);
	r = bv_cli_setenv("PATH", path);
	return r ? r : bv_cli_setenv("BV_PROJECT_ROOT", ctx->project->root);
}

int bv_cli_register_project(const struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	/* a cache we cannot write (shared, read-only) still runs; prune there is not ours */
	if (bv_cache_dir(&cache, &err) < 0 ||
	    bv_retain_register_project(cache, ctx->project->root, &err) < 0) {
		_cleanup_free_ char *msg = bv_error_format(err);
		bv_error_free(err);
		bv_cli_warning("%s; 'bv cache prune' will not know this project", msg);
	}
	return BV_EXIT_OK;
}

int bv_cli_write_shims(const struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	/* bv.lock may come from someone else: a shim that shadows a system command needs
	 * bv.toml's consent, whatever the lock's binary index says (bv/shims.h) */
	const struct bv_lock_binary *b = bv_lockops_unallowed_shadow(ctx->lock, ctx->project);
	if (b) {
		bv_cli_error("bv.lock makes '%s' of tool '%s' replace the system command in "
			     "bv exec and bv shell, and bv.toml does not allow it",
			     b->binary, b->tool);
		bv_cli_hint("if that is what you want, add to bv.toml: [binary_overrides] "
			    "%s = \"%s\"",
			    b->binary, b->tool);
		return BV_EXIT_FAILURE;
	}
	if (bv_shims_write(ctx->project->root, ctx->lock, &err) < 0)
		return bv_cli_report(err);
	return bv_cli_register_project(ctx);
}

/* What the backend's answers about images come from, taken before it is asked. */
static void record_image_sources(struct bv_sync_record *record, struct bv_runtime *rt)
{
	_cleanup_strv_ struct bv_strv sources = BV_STRV_INIT;
	if (!rt->ops->image_sources || rt->ops->image_sources(rt, &sources) < 0) {
		bv_sync_record_spoil(record, "the backend cannot name what its images depend on");
		return;
	}
	bv_strv_foreach (path, &sources)
		bv_sync_record_add(record, *path);
}

int bv_cli_sync_images(const struct bv_cli_ctx *ctx, const char *backend, unsigned jobs, bool quiet,
		       const char *platform, struct bv_sync_record *record)
{
	struct bv_error *err = NULL;
	struct bv_runtime *rt = NULL;
	struct bv_image_spec *missing = bv_xcalloc(ctx->lock->n_tools + 1, sizeof(*missing));
	struct bv_cli_progress progress = {0};
	struct bv_ensure_options o = {.jobs = jobs,
				      .platform = platform,
				      .progress = bv_cli_pull_progress,
				      .progress_payload = &progress};
	/* images for another platform are never unpacked here: ask the store, through ensure */
	bool foreign = platform && !bv_platform_matches(bv_registry_default_platform(), platform);
	size_t n_missing = 0;
	int r = BV_EXIT_OK;

	if (bv_runtime_select(&rt, backend, ctx->project->runtime_backend, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	if (record)
		record_image_sources(record, rt);
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx->lock->tools[i];
		struct bv_image_spec image = {.tool_id = t->tool_id,
					      .reference = t->image_reference,
					      .digest = t->image_digest};
		bool available = false;
		if (!t->image_digest[0]) {
			bv_cli_error("bv.lock pins no image digest for '%s'", t->tool_id);
			bv_cli_hint("run 'bv lock' to record one");
			r = BV_EXIT_FAILURE;
			goto out;
		}
		if (!foreign && rt->ops->is_available(rt, &image, &available, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
		if (!available)
			missing[n_missing++] = image;
	}
	/* every pin, present or not: a lock is only as good as its least checked image */
	if (bv_cli_require_signed(ctx) && (r = bv_cli_verify_signed(ctx, ctx->lock, NULL, 0)))
		goto out;
	if (n_missing && record)
		bv_sync_record_spoil(record, "images are pulled");
	if (n_missing && rt->ops->ensure(rt, missing, n_missing, &o, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	if (n_missing && foreign)
		fprintf(stderr,
			"Pulled %zu tool%s for %s into the store (not unpacked: this machine is %s)\n",
			n_missing, n_missing == 1 ? "" : "s", platform,
			bv_registry_default_platform());
	else if (n_missing)
		bv_cli_status("Synced %zu tool%s (%zu pulled, %s backend)\n", ctx->lock->n_tools,
			      ctx->lock->n_tools == 1 ? "" : "s", n_missing, rt->ops->name);
	else if (!quiet)
		bv_cli_status("Everything is up to date (%zu tool%s)\n", ctx->lock->n_tools,
			      ctx->lock->n_tools == 1 ? "" : "s");
out:
	bv_runtime_free(rt);
	free(missing);
	return r;
}
