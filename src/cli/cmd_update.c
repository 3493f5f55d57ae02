/*
 * bv update [tool...]: the newest version bv.toml allows, with tags re-resolved, pulled.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/runtime.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

#include "util/banned.h"

static const char *arg_registry;
static const char *arg_backend;
static unsigned arg_jobs;

/*
 * The relock pulls into bv's store, which is what the native backend runs; docker and
 * apptainer keep their own copies, so the updated images are put there too (quietly: only a
 * pull prints), and `bv run` right after an update does not stop at a missing image.
 */
static int ensure_on_backend(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	if (bv_runtime_runs_from_store(
		    bv_runtime_selected_name(arg_backend, ctx->project->runtime_backend)))
		return 0;
	bv_lockfile_free(ctx->lock);
	ctx->lock = NULL;
	if (bv_lockfile_load(&ctx->lock, ctx->lock_path, &err) < 0)
		return bv_cli_report(err);
	return bv_cli_sync_images(ctx, arg_backend, arg_jobs, true, NULL);
}

static int run_update(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_update, argc, argv, 0, -1, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, BV_CTX_WRITE | BV_CTX_INDEX | BV_CTX_TYPES, arg_registry);
	if (!r)
		r = bv_cli_relock(&ctx, BV_RELOCK_UPDATE, argv + first, (size_t)(argc - first),
				  arg_jobs, NULL);
	if (!r)
		r = ensure_on_backend(&ctx);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option update_options[] = {
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "parallel downloads (default: BV_JOBS, else 8)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to resolve in (default: BV_REGISTRY, bv.toml, the public registry)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer: where the new images go (default: BV_BACKEND, bv.toml, "
	 "then auto)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_update = {
	.name = "update",
	.usage = "[--registry <URL>] [--backend <NAME>] [<tool>...]",
	.summary = "move tools to the newest version bv.toml allows",
	.description =
		"Resolves each <tool> (default: all) to the newest version its bv.toml requirement\nallows, asks the registry again what its image tag points to, pulls and unpacks the\nresult (onto the selected backend) and writes bv.lock.  bv.toml is not changed: its requirements still hold.",
	.options = update_options,
	.run = run_update,
	.operands = BV_OPERANDS_TOOLS,
};
