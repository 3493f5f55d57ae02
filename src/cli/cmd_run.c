/*
 * bv run: run a binary or tool of the project in its pinned image, as if it were installed.
 * The shims in .bv/bin are symbolic links to bv itself; main.c sends them here by argv[0].
 *
 * Exit status: the tool's own (128 + N when killed by signal N).  When bv cannot start the
 * tool it exits like docker run does: 125 when bv fails, 127 when the command is not in the
 * image, so a script can tell "the tool said no" from "the tool never ran".
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/runplan.h>
#include <bv/runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_backend;
static bool arg_warm;
static struct bv_strv arg_env = BV_STRV_INIT;

static void print_subcommands(const struct bv_manifest *m)
{
	printf("%s has these subcommands:\n", bv_cli_text(m->id));
	for (size_t i = 0; i < m->n_subcommands; i++)
		printf("  %s\n", bv_cli_text(m->subcommands[i].name));
	printf("\nRun one with 'bv run %s <subcommand> [args...]'.\n", bv_cli_text(m->id));
}

/* Runs `name args...` in the project found from `start` (NULL: the working directory). */
static int run_in_project(const char *start, const char *name, char **args, size_t n_args)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_run_plan plan;
	struct bv_runtime *rt = NULL;
	struct bv_run_result res = {0};
	_cleanup_free_ char *cwd = getcwd(NULL, 0);
	bool available = false;
	int r;

	r = bv_cli_ctx_load_from(&ctx, BV_CTX_LOCK, start);
	if (r)
		return r == BV_EXIT_FAILURE ? BV_EXIT_NOT_STARTED : r;
	struct bv_run_plan_input in = {.project = ctx.project,
				       .lock = ctx.lock,
				       .name = name,
				       .args = args,
				       .n_args = n_args,
				       .cwd = cwd,
				       .host_env = (const char *const *)environ,
				       .env_args = (const char *const *)arg_env.v};
	if (bv_run_plan_build(&plan, &in, &err) < 0) {
		if (bv_error_root_code(err) == BV_ENOTFOUND)
			r = BV_EXIT_NOT_FOUND;
		else
			r = BV_EXIT_NOT_STARTED;
		if (r == BV_EXIT_NOT_FOUND && bv_project_find_tool(ctx.project, name)) {
			bv_error_free(err);
			bv_cli_error("'%s' is declared in bv.toml but not locked", name);
			bv_cli_hint("run 'bv sync' to lock and pull it");
		} else {
			bv_cli_report(err);
			if (r == BV_EXIT_NOT_FOUND)
				bv_cli_hint("'bv list' shows the tools; 'bv add %s' adds one",
					    name);
		}
		bv_cli_ctx_release(&ctx);
		return r;
	}
	for (size_t i = 0; i < plan.warnings.n; i++)
		bv_cli_warning("%s", plan.warnings.v[i]);
	if (plan.list_subcommands) {
		print_subcommands(plan.manifest);
		r = BV_EXIT_OK;
		goto out;
	}
	/* --warm is a docker feature: it picks docker unless a backend is named */
	if (bv_runtime_select(&rt,
			      arg_backend ? arg_backend
			      : arg_warm  ? "docker"
					  : NULL,
			      ctx.project->runtime_backend, &err) < 0 ||
	    rt->ops->is_available(rt, &plan.req.image, &available, &err) < 0) {
		bv_cli_report(err);
		r = BV_EXIT_NOT_STARTED;
		goto out;
	}
	if (!available) {
		bv_cli_error("the image of %s is not on this machine (%s backend)",
			     plan.tool->tool_id, rt->ops->name);
		bv_cli_hint("run 'bv sync%s%s' first", arg_backend ? " --backend " : "",
			    arg_backend ? arg_backend : "");
		r = BV_EXIT_NOT_STARTED;
		goto out;
	}
	plan.req.stdio = BV_STDIO_INHERIT;
	plan.req.may_replace_process = true;
	fflush(stdout);
	if (arg_warm && !rt->ops->warm) {
		bv_cli_error("--warm needs the docker backend, not '%s'", rt->ops->name);
		bv_cli_hint("add '--backend docker'");
		r = BV_EXIT_NOT_STARTED;
		goto out;
	}
	if (arg_warm ? rt->ops->warm(rt, &plan.req, &res, &err) < 0
		     : rt->ops->run(rt, &plan.req, &res, &err) < 0) {
		r = bv_error_root_code(err) == BV_ENOTFOUND ? BV_EXIT_NOT_FOUND
							    : BV_EXIT_NOT_STARTED;
		bv_cli_report(err);
		goto out;
	}
	r = res.status;
out:
	bv_run_result_release(&res);
	bv_runtime_free(rt);
	bv_run_plan_release(&plan);
	bv_cli_ctx_release(&ctx);
	return r;
}

static int run_run(int argc, char **argv)
{
	int first = 0;
	int status = bv_cli_begin(&bv_cmd_run, argc, argv, 1, -1, &first);
	if (status >= 0)
		return status;
	return run_in_project(NULL, argv[first], argv + first + 1, (size_t)(argc - first - 1));
}

/*
 * A shim: argv[0] is the binary's name.  The project is the one holding the shim when it was
 * called by path (".../proj/.bv/bin/samtools"), else the one around the working directory,
 * else BV_PROJECT_ROOT, which bv exec and bv shell set, so a shim works from anywhere inside
 * a project and from outside it in those subshells.
 */
int bv_cli_run_shim(int argc, char **argv)
{
	_cleanup_free_ char *start = NULL, *found = NULL;
	const char *slash = strrchr(argv[0], '/');
	const char *name = slash ? slash + 1 : argv[0];
	struct bv_error *err = NULL;
	if (slash) {
		/* "<root>/.bv/bin/NAME", where <root> may be empty (".bv/bin/samtools") or "/" */
		size_t len = (size_t)(slash - argv[0]);
		static const char shim_dir[] = ".bv/bin";
		size_t dlen = sizeof(shim_dir) - 1;
		if (len >= dlen && !strncmp(slash - dlen, shim_dir, dlen)) {
			size_t root_len = len - dlen;
			if (root_len == 0)
				start = bv_xstrdup(".");
			else if (argv[0][root_len - 1] == '/')
				start = bv_xstrndup(argv[0], root_len > 1 ? root_len - 1 : 1);
		}
	}
	if (!start && bv_project_find(&found, NULL, &err) < 0) {
		const char *env = getenv("BV_PROJECT_ROOT");
		bv_error_free(err);
		if (env && env[0])
			start = bv_xstrdup(env);
	}
	return run_in_project(start, name, argv + 1, (size_t)(argc - 1));
}

static const struct bv_cli_option options[] = {
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer (default: BV_BACKEND, bv.toml, then auto)"},
	{"warm", 0, BV_OPT_FLAG, &arg_warm, NULL,
	 "reuse a long-lived container of the tool (docker backend)"},
	{"env", 'e', BV_OPT_LIST, &arg_env, "K=V",
	 "set K in the tool's environment; '--env K' passes bv's own K (repeatable)"},
	{0},
};

const struct bv_cli_command bv_cmd_run = {
	.name = "run",
	.usage = "[--backend NAME] [--warm] [--env K=V]... <binary|tool> [args...]",
	.summary = "run a tool of the project in its pinned image",
	.description =
		"Runs <binary> (or the entrypoint of <tool>) with [args...] in the image bv.lock\n"
		"pins, with the project at /workspace.  Options of bv come before the name;\n"
		"everything after it goes to the tool unchanged.  Of bv's environment only\n"
		"TERM, COLORTERM, NO_COLOR, LANG, LANGUAGE, LC_*, TZ, the thread counts\n"
		"(OMP_NUM_THREADS, ...), Slurm's SLURM_*, the granted GPUs\n"
		"(CUDA_VISIBLE_DEVICES, ...) and the names listed in BV_PASS_ENV reach the tool;\n"
		"--env adds more.  The exit status is the tool's; 125 means bv could not run\n"
		"it and 127 that the command was not found.",
	.options = options,
	.stop_at_operand = true,
	.run = run_run,
	.operands = BV_OPERANDS_RUNNABLE,
};

bool bv_cli_is_own_name(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	const char *name = slash ? slash + 1 : argv0;
	return !strcmp(name, "bv") || !strcmp(name, "biov") || !strncmp(name, "bv-", 3) ||
	       !strncmp(name, "bv.", 3) || !strncmp(name, "lt-bv", 5);
}
