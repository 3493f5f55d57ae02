/*
 * bv exec: run any command with the project's shims first on PATH, after making sure the
 * machine matches bv.toml (the auto-sync), then exec(2) it: no bv process stays around, so
 * the command's exit status and signals are its own.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/runtime.h>
#include <bv/shims.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_no_sync;
static const char *arg_backend;

/* BV_EXEC_NO_SYNC is on when set to anything but "", "0" or "false" (upstream's rule). */
static bool no_sync_from_env(void)
{
	const char *v = getenv("BV_EXEC_NO_SYNC");
	return v && v[0] && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

static bool newer(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return false;
	return sa.st_mtim.tv_sec > sb.st_mtim.tv_sec ||
	       (sa.st_mtim.tv_sec == sb.st_mtim.tv_sec && sa.st_mtim.tv_nsec > sb.st_mtim.tv_nsec);
}

/* bv.toml edited after bv.lock → lock again; then images and shims. */
static int auto_sync(struct bv_cli_ctx *ctx)
{
	int r;
	if (newer(ctx->project->path, ctx->lock_path)) {
		fprintf(stderr, "Updating bv.lock (bv.toml changed)\n");
		r = bv_cli_ctx_load_index(ctx, NULL, false);
		if (!r)
			r = bv_cli_ctx_load_types(ctx);
		if (!r)
			r = bv_cli_relock(ctx, BV_RELOCK_WRITE, NULL, 0, 0, NULL);
		if (r)
			return r;
		/* relock wrote bv.lock; read it back so the sync below sees the new pins */
		bv_lockfile_free(ctx->lock);
		ctx->lock = NULL;
		struct bv_error *err = NULL;
		if (bv_lockfile_load(&ctx->lock, ctx->lock_path, &err) < 0)
			return bv_cli_report(err);
	}
	r = bv_cli_sync_images(ctx, arg_backend, 0, true, NULL);
	if (!r && !bv_shims_current(ctx->project->root, ctx->lock))
		r = bv_cli_write_shims(ctx);
	return r;
}

static int run_exec(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	bool sync;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_exec, argc, argv, 1, -1, &first);
	if (status >= 0)
		return status;
	if (!strcmp(argv[first], "--") && ++first == argc) {
		bv_cli_error("no command to run");
		return BV_EXIT_USAGE;
	}
	sync = !arg_no_sync && !no_sync_from_env();
	/* The auto-sync may write bv.lock and .bv/bin: under the project lock, released at the
	 * exec below (O_CLOEXEC), so the command itself never holds it. */
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK | (sync ? BV_CTX_WRITE : 0), NULL);
	if (r)
		return r;
	if (sync && (r = auto_sync(&ctx)))
		goto out;
	if ((r = bv_cli_export_project_env(&ctx)))
		goto out;
	fflush(stdout);
	fflush(stderr);
	execvp(argv[first], argv + first);
	r = errno == ENOENT ? BV_EXIT_NOT_FOUND : BV_EXIT_NOT_EXECUTABLE;
	bv_cli_error("could not run '%s': %s", argv[first], strerror(errno));
out:
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option options[] = {
	{"no-sync", 0, BV_OPT_FLAG, &arg_no_sync, NULL,
	 "do not lock, pull or write shims first (also BV_EXEC_NO_SYNC=1)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME", "the backend to sync images for"},
	{0},
};

const struct bv_cli_command bv_cmd_exec = {
	.name = "exec",
	.usage = "[--no-sync] <cmd> [args...]",
	.summary = "run a command with the project's tools on PATH",
	.description =
		"Locks again when bv.toml is newer than bv.lock, pulls missing images and writes\n"
		"the shims, then replaces itself with <cmd>, with .bv/bin first on PATH and\n"
		"BV_PROJECT_ROOT set.",
	.options = options,
	.stop_at_operand = true,
	.run = run_exec,
};
