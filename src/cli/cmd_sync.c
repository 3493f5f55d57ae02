/*
 * bv sync: make this machine hold exactly what bv.lock pins.
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/registry.h>
#include <bv/resolve.h>
#include <bv/runplan.h>
#include <bv/runtime.h>
#include <bv/shims.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_frozen;
static bool arg_data;
static unsigned arg_jobs;
static const char *arg_backend;
static const char *arg_platform;
static const char *arg_registry;

/* --frozen: bv.toml and bv.lock must agree, tool for tool, before anything is pulled. */
static int check_frozen(const struct bv_cli_ctx *ctx)
{
	struct bv_strv problems = BV_STRV_INIT;
	if (!bv_lockops_check_frozen(&problems, ctx->project, ctx->lock))
		return 0;
	bv_strv_foreach (p, &problems)
		bv_cli_error("%s", *p);
	bv_strv_clear(&problems);
	bv_cli_hint("run 'bv lock' to update bv.lock, or drop --frozen");
	return BV_EXIT_FAILURE;
}

/*
 * Without --frozen, a bv.toml that declares tools bv.lock does not pin (or pins at versions
 * its requirements refuse, or pins tools it no longer declares) is locked again first, under
 * the project lock, as bv exec does: "Everything is up to date" must not hide a tool that
 * bv.toml asks for.
 */
static int lock_declared(struct bv_cli_ctx *ctx)
{
	struct bv_strv problems = BV_STRV_INIT;
	size_t n = bv_lockops_check_frozen(&problems, ctx->project, ctx->lock);
	int r;
	bv_strv_clear(&problems);
	if (!n)
		return 0;
	if ((r = bv_cli_ctx_take_lock(ctx)))
		return r;
	/* bv.lock as it is under the lock: another command may have locked it meanwhile */
	n = bv_lockops_check_frozen(&problems, ctx->project, ctx->lock);
	bv_strv_clear(&problems);
	if (!n)
		return 0;
	bv_cli_status("Updating bv.lock (it does not match bv.toml)\n");
	if (arg_registry && !ctx->index && (r = bv_cli_ctx_load_index(ctx, arg_registry, false)))
		return r;
	return bv_cli_relock_reload(ctx);
}

/*
 * Whether the registry's manifest of locked tool `t` says something else than bv.lock
 * records: the entry made again from it (without pulling) differs in anything but the
 * manifest digest.  This is how a lock written by upstream bv, whose manifest_sha256 hashes
 * its own re-serialisation, is compared (see keep_foreign_manifest_digests in lockops.c).
 */
static bool entry_changed(const struct bv_lockfile *lock, const struct bv_lock_tool *t,
			  const struct bv_manifest *m)
{
	struct bv_lockfile *again = bv_lockfile_clone(lock);
	struct bv_lock_tool *u = bv_lockfile_find(again, t->tool_id);
	struct bv_strv lines = BV_STRV_INIT;
	bool changed;
	bv_lockops_fill_entry(u, m, t->declared_version_req, NULL, t->resolved_at);
	bv_lock_set_string(&u->manifest_sha256, t->manifest_sha256);
	bv_lockfile_diff(lock, again, &lines);
	changed = lines.n > 0;
	bv_strv_clear(&lines);
	bv_lockfile_free(again);
	return changed;
}

/*
 * The drift warning: a locked tool whose registry manifest changed since bv.lock was written
 * (the registry republished that version).  A digest bv computed itself (a kept copy carries
 * it as its name, bv/runplan.h) that differs means the file changed; a digest bv cannot
 * reproduce (upstream's) warns only when the content changed.  Best effort: no registry, no
 * network or a version the registry dropped is silence, never a failure.
 */
static void warn_drift(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	const char *from_toml = ctx->project ? ctx->project->registry_url : NULL;
	if (!ctx->index &&
	    bv_index_open(&ctx->index, bv_registry_url_choose(arg_registry, from_toml),
			  bv_offline() ? BV_INDEX_OFFLINE : BV_INDEX_REFRESH_STALE, &err) < 0) {
		bv_error_free(err);
		ctx->index = NULL;
		return;
	}
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		err = NULL;
	}
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx->lock->tools[i];
		struct bv_manifest *m = NULL, *own = NULL;
		_cleanup_free_ char *pinned = NULL;
		char digest[72];
		bool changed;
		if (!t->manifest_sha256[0] ||
		    bv_index_manifest_digest(ctx->index, t->tool_id, t->version, digest, &err) <
			    0 ||
		    !strcmp(digest, t->manifest_sha256)) {
			bv_error_free(err);
			err = NULL;
			continue;
		}
		own = cache ? bv_run_plan_saved_manifest(t, cache) : NULL;
		changed = own != NULL;
		bv_manifest_free(own);
		pinned = bv_xasprintf("=%s", t->version);
		if (!changed &&
		    bv_resolve_tool(&m, ctx->index, t->tool_id, pinned, NULL, &err) == 0)
			changed = entry_changed(ctx->lock, t, m);
		bv_error_free(err);
		err = NULL;
		bv_manifest_free(m);
		if (changed)
			bv_cli_warning("the manifest of %s %s changed since bv.lock was written; "
				       "'bv lock' to take it",
				       t->tool_id, t->version);
	}
}

static int run_sync(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	_cleanup_free_ char *platform = NULL;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_sync, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	/* sync writes neither bv.toml nor bv.lock, only .bv/bin when it is stale: the project
	 * lock is taken for that write alone, with bv.lock read again under it.  So a warm sync
	 * costs no lock, works in a read-only checkout, and a long pull never holds up bv add. */
	if ((r = bv_cli_platform_arg(&platform, arg_platform)))
		return r;
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	if (platform && !bv_runtime_runs_from_store(bv_runtime_selected_name(
				arg_backend, ctx.project->runtime_backend))) {
		bv_cli_error("--platform needs the native backend, whose store bv fills itself");
		r = BV_EXIT_USAGE;
		goto out;
	}
	if (arg_frozen && ((r = check_frozen(&ctx)) || (r = bv_cli_check_data_pins(ctx.lock))))
		goto out;
	if (!arg_frozen && (r = lock_declared(&ctx)))
		goto out;
	warn_drift(&ctx);
	r = bv_cli_sync_images(&ctx, arg_backend, arg_jobs, false, platform);
	/* the datasets last, from the registry the drift check opened when it could */
	if (!r && arg_data &&
	    (ctx.index || !(r = bv_cli_ctx_load_index(&ctx, arg_registry, false))))
		r = bv_cli_sync_data(ctx.lock, ctx.index, arg_jobs);
	if (!r && !bv_shims_current(ctx.project->root, ctx.lock) &&
	    !(r = bv_cli_ctx_take_lock(&ctx)) && !bv_shims_current(ctx.project->root, ctx.lock))
		r = bv_cli_write_shims(&ctx);
	else if (!r)
		r = bv_cli_register_project(&ctx);
out:
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option sync_options[] = {
	{"frozen", 0, BV_OPT_FLAG, &arg_frozen, NULL,
	 "fail unless bv.lock matches bv.toml exactly (and cached datasets their pins)"},
	{"data", 0, BV_OPT_FLAG, &arg_data, NULL,
	 "also fetch the reference data bv.lock pins (without asking)"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "parallel downloads (default: BV_JOBS, else 8)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer (default: BV_BACKEND, bv.toml, then auto)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry for the drift check, the data and a relock (default: BV_REGISTRY, bv.toml, "
	 "the public registry)"},
	{"platform", 0, BV_OPT_STRING, &arg_platform, "OS/ARCH",
	 "pull the images for os/arch[/variant] into the store (native backend; unpacked only "
	 "when this machine can run them)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_sync = {
	.name = "sync",
	.usage = "[--frozen] [--data] [--jobs <N>] [--backend <NAME>] [--registry <URL>] "
		 "[--platform <OS/ARCH[/VARIANT]>]",
	.summary = "pull exactly what bv.lock pins onto the backend",
	.description =
		"Pulls every image bv.lock pins, by digest, onto the selected backend and verifies\nit; the native backend unpacks each image once.  Images already there are not\ntouched.  Rewrites the shims in .bv/bin.  Warns when the registry's manifest of a locked\ntool changed since bv.lock was written (best effort: silent without the registry).\n\nWith --platform the images for that platform are pulled into the store, from an\nindex bv.lock pins or by a platform's manifest it pins, so that machines of that\nplatform sharing the cache find them there.",
	.options = sync_options,
	.run = run_sync,
};
