/*
 * bv sync: make this machine hold exactly what bv.lock pins.
 */
#include <bv/error.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/version.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_frozen;
static unsigned arg_jobs;

/* --frozen: bv.toml and bv.lock must agree, tool for tool, before anything is pulled. */
static int check_frozen(const struct bv_cli_ctx *ctx)
{
	int problems = 0;
	for (size_t i = 0; i < ctx->project->n_tools; i++) {
		const struct bv_project_tool *pt = &ctx->project->tools[i];
		const struct bv_lock_tool *t = bv_lockfile_find(ctx->lock, pt->id);
		struct bv_version_req *req = NULL;
		if (!t) {
			bv_cli_error("'%s' is declared in bv.toml but not locked", pt->id);
			problems++;
			continue;
		}
		if (bv_version_req_parse(&req, pt->version, NULL) == 0 &&
		    !bv_version_req_matches(req, t->version)) {
			bv_cli_error("bv.lock pins %s %s, which does not satisfy '%s' in bv.toml",
				     pt->id, t->version, pt->version);
			problems++;
		}
		bv_version_req_free(req);
	}
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		if (!bv_project_find_tool(ctx->project, ctx->lock->tools[i].tool_id)) {
			bv_cli_error("'%s' is locked but no longer declared in bv.toml",
				     ctx->lock->tools[i].tool_id);
			problems++;
		}
	}
	if (problems) {
		bv_cli_hint("run 'bv lock' to update bv.lock, or drop --frozen");
		return BV_EXIT_FAILURE;
	}
	return 0;
}

static int run_sync(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_install_item *items = NULL;
	struct bv_cli_progress progress = {0};
	struct bv_install_options o = {.mode = BV_INSTALL_FULL};
	size_t pulled = 0;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_sync, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	if (arg_frozen && (r = check_frozen(&ctx)))
		goto out;
	items = bv_xcalloc(ctx.lock->n_tools + 1, sizeof(*items));
	for (size_t i = 0; i < ctx.lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx.lock->tools[i];
		if (!t->image_digest[0]) {
			bv_cli_error("bv.lock pins no image digest for '%s'", t->tool_id);
			bv_cli_hint("run 'bv lock' to record one");
			r = BV_EXIT_FAILURE;
			goto out;
		}
		items[i].tool_id = t->tool_id;
		items[i].reference = t->image_reference;
		items[i].pinned = t->image_digest;
	}
	o.jobs = arg_jobs;
	o.progress = bv_cli_pull_progress;
	o.progress_payload = &progress;
	if (bv_install(items, ctx.lock->n_tools, &o, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	for (size_t i = 0; i < ctx.lock->n_tools; i++)
		pulled += !items[i].present;
	if (pulled)
		fprintf(stderr, "Synced %zu tool%s (%zu pulled)\n", ctx.lock->n_tools,
			ctx.lock->n_tools == 1 ? "" : "s", pulled);
	else
		fprintf(stderr, "Everything is up to date (%zu tool%s)\n", ctx.lock->n_tools,
			ctx.lock->n_tools == 1 ? "" : "s");
	r = BV_EXIT_OK;
out:
	for (size_t i = 0; items && i < ctx.lock->n_tools; i++)
		bv_install_item_release(&items[i]);
	free(items);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option sync_options[] = {
	{"frozen", 0, BV_OPT_FLAG, &arg_frozen, NULL,
	 "fail unless bv.lock matches bv.toml exactly"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "parallel downloads (default: BV_JOBS, else 8)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_sync = {
	.name = "sync",
	.usage = "[--frozen] [--jobs <N>]",
	.summary = "pull and unpack exactly what bv.lock pins",
	.description =
		"Pulls every image bv.lock pins, by digest, verifies every blob, and unpacks each\nimage once.  Images already unpacked are not touched.",
	.options = sync_options,
	.run = run_sync,
};
