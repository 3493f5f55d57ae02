/*
 * Loading what commands share: project, lock, registry index, type vocabulary.
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/types.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include "util/banned.h"

void bv_cli_ctx_release(struct bv_cli_ctx *ctx)
{
	bv_project_free(ctx->project);
	bv_lockfile_free(ctx->lock);
	free(ctx->lock_path);
	bv_index_free(ctx->index);
	bv_types_free(ctx->types);
	bv_project_unlock(ctx->project_lock);
	memset(ctx, 0, sizeof(*ctx));
}

int bv_cli_ctx_load_index(struct bv_cli_ctx *ctx, const char *registry_flag, bool offline)
{
	struct bv_error *err = NULL;
	const char *from_toml = ctx->project ? ctx->project->registry_url : NULL;
	const char *url = bv_registry_url_choose(registry_flag, from_toml);
	const char *warning;
	if (bv_index_open(&ctx->index, url, offline ? BV_INDEX_OFFLINE : BV_INDEX_REFRESH_STALE,
			  &err) < 0)
		return bv_cli_report(err);
	warning = bv_index_warning(ctx->index);
	if (warning)
		bv_cli_warning("%s", warning);
	return 0;
}

int bv_cli_ctx_load_types(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	if (bv_types_load_default(&ctx->types, &err) < 0)
		return bv_cli_report(err);
	return 0;
}

static void say_waiting(const char *lock_path, void *payload)
{
	(void)lock_path;
	(void)payload;
	fprintf(stderr, "Waiting for another bv process on this project\n");
}

static int load(struct bv_cli_ctx *ctx, unsigned what, const char *registry_flag, const char *start)
{
	struct bv_error *err = NULL;
	char *root = NULL;
	int r;

	memset(ctx, 0, sizeof(*ctx));
	r = bv_project_find(&root, start, &err);
	if (r == BV_ENOTFOUND && (what & BV_CTX_NO_PROJECT)) {
		bv_error_free(err);
		goto shared;
	}
	if (r < 0)
		return bv_cli_report(err);
	if (what & BV_CTX_WRITE) {
		struct bv_project_lock_options o = {.on_wait = say_waiting};
		r = bv_project_lock(&ctx->project_lock, root, &o, &err);
		if (r < 0) {
			free(root);
			return bv_cli_report(err);
		}
	}
	r = bv_project_load(&ctx->project, root, &err);
	free(root);
	if (r < 0)
		return bv_cli_report(err);
	bv_strv_foreach (w, &ctx->project->warnings)
		bv_cli_warning("%s", *w);

	ctx->lock_path = bv_path_join(ctx->project->root, "bv.lock");
	r = bv_lockfile_load(&ctx->lock, ctx->lock_path, &err);
	if (r == BV_ENOTFOUND && !(what & BV_CTX_LOCK)) {
		bv_error_free(err);
	} else if (r == BV_ENOTFOUND) {
		bv_error_free(err);
		bv_cli_error("no bv.lock in '%s'", ctx->project->root);
		bv_cli_hint("run 'bv lock' or 'bv add <tool>' first");
		return BV_EXIT_FAILURE;
	} else if (r < 0) {
		return bv_cli_report(err);
	}
shared:
	if (what & (BV_CTX_INDEX | BV_CTX_INDEX_OFFLINE)) {
		r = bv_cli_ctx_load_index(ctx, registry_flag, !(what & BV_CTX_INDEX));
		if (r)
			return r;
	}
	if (what & BV_CTX_TYPES)
		return bv_cli_ctx_load_types(ctx);
	return 0;
}

int bv_cli_ctx_take_lock(struct bv_cli_ctx *ctx)
{
	struct bv_project_lock_options o = {.on_wait = say_waiting};
	struct bv_lockfile *fresh = NULL;
	struct bv_error *err = NULL;
	if (!ctx->project_lock &&
	    bv_project_lock(&ctx->project_lock, ctx->project->root, &o, &err) < 0)
		return bv_cli_report(err);
	if (bv_lockfile_load(&fresh, ctx->lock_path, &err) < 0)
		return bv_cli_report(err);
	bv_lockfile_free(ctx->lock);
	ctx->lock = fresh;
	return 0;
}

int bv_cli_ctx_load(struct bv_cli_ctx *ctx, unsigned what, const char *registry_flag)
{
	return load(ctx, what, registry_flag, NULL);
}

int bv_cli_ctx_load_from(struct bv_cli_ctx *ctx, unsigned what, const char *start_dir)
{
	return load(ctx, what, NULL, start_dir);
}

int bv_cli_print_json(json_t *j)
{
	int r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (r < 0 || fputc('\n', stdout) == EOF) {
		bv_cli_error("could not write to standard output");
		return BV_EXIT_FAILURE;
	}
	return 0;
}

void bv_cli_format_size(char *out, size_t len, int64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;
	if (bytes < 0) {
		(void)snprintf(out, len, "-");
		return;
	}
	while (v >= 1024 && u + 1 < BV_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		(void)snprintf(out, len, "%lld B", (long long)bytes);
	else
		(void)snprintf(out, len, "%.1f %s", v, units[u]);
}
