/*
 * bv lock [--check]: re-resolve bv.toml against the registry (see relock.c).
 */
#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "util/cleanup.h"

#include "util/banned.h"

static bool arg_check;
static const char *arg_registry;
static unsigned arg_jobs;
static const char *arg_platform;
static bool arg_require_signed;

static int run_lock(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	_cleanup_free_ char *platform = NULL;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_lock, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	if ((r = bv_cli_platform_arg(&platform, arg_platform)))
		return r;
	if (platform && arg_check) {
		bv_cli_error("--platform cannot be used with --check, which contacts no registry");
		return BV_EXIT_USAGE;
	}
	if (arg_require_signed && arg_check) {
		bv_cli_error("--require-signed cannot be used with --check, which contacts no "
			     "registry");
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx,
			    (arg_check ? BV_CTX_LOCK : BV_CTX_WRITE) | BV_CTX_INDEX | BV_CTX_TYPES,
			    arg_registry);
	ctx.require_signed = arg_require_signed;
	if (!r)
		r = bv_cli_relock(&ctx, arg_check ? BV_RELOCK_CHECK : BV_RELOCK_WRITE, NULL, 0,
				  arg_jobs, platform, NULL);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option lock_options[] = {
	{"check", 0, BV_OPT_FLAG, &arg_check, NULL,
	 "exit 1 with a diff when bv.lock is out of date; never pulls"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N",
	 "parallel registry requests (default: BV_JOBS, else 8)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to resolve against (default: BV_REGISTRY, bv.toml, the public registry)"},
	{"platform", 0, BV_OPT_STRING, &arg_platform, "OS/ARCH", BV_CLI_PLATFORM_HELP},
	{"require-signed", 0, BV_OPT_FLAG, &arg_require_signed, NULL,
	 "write bv.lock only when every image it pins has a trusted signature"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_lock = {
	.name = "lock",
	.usage = "[--check] [--registry <URL>] [--platform <OS/ARCH[/VARIANT]>] "
		 "[--require-signed]",
	.summary = "resolve bv.toml against the registry and write bv.lock",
	.description =
		"Resolves every tool of bv.toml in the registry and records what its image tag points\nto now in bv.lock (no image is downloaded).  Tools whose version and manifest did not\nchange keep their entries.  With --check nothing is written and no image registry is\ncontacted: the differences are printed and the exit status is 1 when there are any.\n\nWith --platform every tool is resolved again for that platform and bv.lock pins\nthe digest of that platform's manifest (a lock for other machines); without it,\nwhat the tag points to, so a multi-platform image stays one pin for every platform.\n\nWith --require-signed (or [registry] require_signed in bv.toml) every image of the\nnew bv.lock must carry a signature by a trusted key (see bv add).",
	.options = lock_options,
	.run = run_lock,
};
