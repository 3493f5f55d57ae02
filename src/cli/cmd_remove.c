/*
 * bv remove <tool>...: drop tools from bv.toml and bv.lock (bv_lockops_remove()).
 */
#include <bv/error.h>
#include <bv/lockops.h>
#include <bv/project.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "util/banned.h"

static int run_remove(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_remove, argc, argv, 1, -1, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, BV_CTX_WRITE, NULL);
	if (r) {
		bv_cli_ctx_release(&ctx);
		return r;
	}
	/* Every edit is checked before anything is written. */
	if (bv_lockops_remove(&res, ctx.project, ctx.lock, (const char *const *)argv + first,
			      (size_t)(argc - first), &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	bv_cli_print_warnings(&res.warnings);
	if ((r = bv_cli_commit(&ctx, &res)))
		goto out;
	for (int i = first; i < argc; i++)
		bv_cli_status("Removed %s\n", argv[i]);
	r = res.lock ? bv_cli_register_project(&ctx) : BV_EXIT_OK;
out:
	bv_lockops_result_release(&res);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option remove_options[] = {
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_remove = {
	.name = "remove",
	.usage = "<tool>...",
	.summary = "remove tools from the project",
	.description =
		"Removes each <tool> from bv.toml and bv.lock and rebuilds the binary index.\nImages stay in the cache; nothing is written unless every tool can be removed.",
	.options = remove_options,
	.run = run_remove,
	.operands = BV_OPERANDS_TOOLS,
};
