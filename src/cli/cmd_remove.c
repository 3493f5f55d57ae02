#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"

#include "util/banned.h"

static int run_remove(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	struct bv_project *current = NULL;
	_cleanup_free_ char *text = NULL;
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
	current = ctx.project;
	for (int i = first; i < argc; i++) {
		char *next_text = NULL;
		struct bv_project *next = NULL;
		if (bv_project_text_without_tool(&next_text, current, argv[i], &err) < 0 ||
		    bv_project_parse(&next, next_text, strlen(next_text), current->path, &err) <
			    0) {
			free(next_text);
			r = bv_cli_report(err);
			goto out;
		}
		if (current != ctx.project)
			bv_project_free(current);
		current = next;
		free(text);
		text = next_text;
		if (ctx.lock)
			bv_lockfile_remove(ctx.lock, argv[i]);
	}
	if (ctx.lock && bv_cli_rebuild_binary_index(ctx.lock, current, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	/* bv.toml first, as upstream: a crash in between leaves a lock with an extra tool, which
	 * 'bv lock --check' reports, never a bv.toml that declares a tool the lock lacks. */
	if (bv_project_save_text(ctx.project, text, &err) < 0 ||
	    (ctx.lock && bv_lockfile_save(ctx.lock, ctx.lock_path, &err) < 0)) {
		r = bv_cli_report(err);
		goto out;
	}
	for (int i = first; i < argc; i++)
		fprintf(stderr, "Removed %s\n", argv[i]);
	r = ctx.lock ? bv_cli_write_shims(&ctx) : BV_EXIT_OK;
out:
	if (current != ctx.project)
		bv_project_free(current);
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
};
