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
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_no_sync;
static const char *arg_backend;
static struct bv_strv arg_env = BV_STRV_INIT;

/*
 * --env K=V / --env K: set for <cmd>, and named in BV_PASS_ENV so that the shims it calls
 * pass them on to the tools (bv run passes only a fixed set of the host's variables).
 */
static int apply_env(void)
{
	struct bv_buf names = BV_BUF_INIT;
	const char *old = getenv("BV_PASS_ENV");
	int r = 0;
	if (old && old[0])
		bv_buf_puts(&names, old);
	bv_strv_foreach (arg, &arg_env) {
		const char *eq = strchr(*arg, '=');
		size_t len = eq ? (size_t)(eq - *arg) : strlen(*arg);
		_cleanup_free_ char *name = bv_xstrndup(*arg, len);
		if (!bv_env_name_valid(name, len)) {
			bv_cli_error("invalid --env '%s': expected NAME=VALUE or NAME", *arg);
			r = BV_EXIT_USAGE;
			break;
		}
		if (eq && setenv(name, eq + 1, 1) < 0) {
			bv_cli_error("could not set %s: %s", name, strerror(errno));
			r = BV_EXIT_FAILURE;
			break;
		}
		bv_buf_printf(&names, "%s%s", names.len ? "," : "", name);
	}
	if (!r && arg_env.n && setenv("BV_PASS_ENV", names.buf, 1) < 0) {
		bv_cli_error("could not set BV_PASS_ENV: %s", strerror(errno));
		r = BV_EXIT_FAILURE;
	}
	bv_buf_release(&names);
	return r;
}

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

/*
 * bv.toml's content when bv.lock was last made from it, as a SHA-256 in .bv/: a bv.toml that
 * is newer than bv.lock only by its mtime (touched, saved unchanged, a clock ahead on NFS)
 * does not lock again on every exec.
 */
static char *toml_digest_path(const struct bv_cli_ctx *ctx)
{
	return bv_path_join(ctx->project->root, ".bv/bv.toml.sha256");
}

static bool toml_digest(char out[BV_SHA256_HEX_LEN + 1], const char *path)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_error *err = NULL;
	if (bv_buf_read_file(&text, path, 64u << 20, &err) < 0) {
		bv_error_free(err);
		return false;
	}
	bv_sha256_hex(out, text.buf, text.len);
	return true;
}

static bool toml_unchanged(const struct bv_cli_ctx *ctx, const char *digest)
{
	_cleanup_free_ char *path = toml_digest_path(ctx);
	_cleanup_buf_ struct bv_buf recorded = BV_BUF_INIT;
	struct bv_error *err = NULL;
	if (bv_buf_read_file(&recorded, path, 4096, &err) < 0) {
		bv_error_free(err);
		return false;
	}
	return recorded.len >= BV_SHA256_HEX_LEN &&
	       !strncmp(recorded.buf, digest, BV_SHA256_HEX_LEN);
}

/* Best effort: without the record, the next exec only locks once more. */
static void record_toml(const struct bv_cli_ctx *ctx, const char *digest)
{
	_cleanup_free_ char *dir = bv_path_join(ctx->project->root, ".bv");
	_cleanup_free_ char *path = toml_digest_path(ctx);
	_cleanup_free_ char *line = bv_xasprintf("%s\n", digest);
	struct bv_error *err = NULL;
	if (bv_mkdir_p(dir, 0755, &err) < 0 ||
	    bv_write_file_atomic(path, line, strlen(line), 0644, &err) < 0)
		bv_error_free(err);
}

/* bv.toml edited after bv.lock → lock again; then images and shims. */
static int auto_sync(struct bv_cli_ctx *ctx)
{
	int r;
	char digest[BV_SHA256_HEX_LEN + 1];
	if (newer(ctx->project->path, ctx->lock_path) &&
	    !(toml_digest(digest, ctx->project->path) && toml_unchanged(ctx, digest))) {
		bv_cli_status("Updating bv.lock (bv.toml changed)\n");
		if ((r = bv_cli_relock_reload(ctx)))
			return r;
		if (toml_digest(digest, ctx->project->path))
			record_toml(ctx, digest);
	}
	r = bv_cli_sync_images(ctx, arg_backend, 0, true, NULL, NULL);
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
	if ((r = bv_cli_export_project_env(&ctx)) || (r = apply_env()))
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
	{"env", 'e', BV_OPT_LIST, &arg_env, "K=V",
	 "set K for <cmd> and pass it to the tools it runs; '--env K' passes bv's own K"},
	{0},
};

const struct bv_cli_command bv_cmd_exec = {
	.name = "exec",
	.usage = "[--no-sync] [--env K=V]... <cmd> [args...]",
	.summary = "run a command with the project's tools on PATH",
	.description =
		"Locks again when bv.toml changed since bv.lock was made from it (newer, and its\n"
		"content differs), pulls missing images and writes\n"
		"the shims, then replaces itself with <cmd>, with .bv/bin first on PATH and\n"
		"BV_PROJECT_ROOT set.",
	.options = options,
	.stop_at_operand = true,
	.run = run_exec,
	.operands = BV_OPERANDS_RUNNABLE,
};
