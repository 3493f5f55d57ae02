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
static unsigned arg_jobs;
static const char *arg_backend;
static bool arg_ignore_hardware;
static bool arg_allow_experimental;

static int run_update(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_cli_admit admit = {0};
	struct bv_cli_update update = {.admit = &admit};
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_update, argc, argv, 0, -1, &first);
	if (status >= 0)
		return status;
	admit.allow_experimental = arg_allow_experimental;
	admit.ignore_hardware = arg_ignore_hardware;
	update.backend = arg_backend;
	r = bv_cli_ctx_load(&ctx, BV_CTX_WRITE | BV_CTX_INDEX | BV_CTX_TYPES, arg_registry);
	if (!r)
		r = bv_cli_relock(&ctx, BV_RELOCK_UPDATE, argv + first, (size_t)(argc - first),
				  arg_jobs, NULL, &update);
	bv_cli_admit_release(&admit);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option update_options[] = {
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "parallel downloads (default: BV_JOBS, else 8)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to resolve in (default: BV_REGISTRY, bv.toml, the public registry)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer: pull for it (default: BV_BACKEND, bv.toml, then auto)"},
	{"ignore-hardware", 0, BV_OPT_FLAG, &arg_ignore_hardware, NULL,
	 "update tools whose [tool.hardware] this machine does not meet (with a warning)"},
	{"allow-experimental", 0, BV_OPT_FLAG, &arg_allow_experimental, NULL,
	 "also update experimental tools (skipped otherwise)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_update = {
	.name = "update",
	.usage =
		"[--registry <URL>] [--backend <NAME>] [--ignore-hardware] [--allow-experimental]\n       [<tool>...]",
	.summary = "move tools to the newest version bv.toml allows",
	.description =
		"Resolves each <tool> (default: all) to the newest version its bv.toml requirement\nallows, asks the registry again what its image tag points to, pulls and unpacks the\nresult and writes bv.lock.  bv.toml is not changed: its requirements still hold.\n\nLocked experimental tools are left as they are unless --allow-experimental is\ngiven.  A new version whose [tool.hardware] this machine does not meet is refused\nunless --ignore-hardware is given.",
	.options = update_options,
	.run = run_update,
	.operands = BV_OPERANDS_TOOLS,
};
