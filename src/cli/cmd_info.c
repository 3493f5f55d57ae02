#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/resolve.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_json;

static int run_info(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_manifest *m = NULL;
	struct bv_error *err = NULL;
	const struct bv_lock_tool *t;
	_cleanup_free_ char *pinned = NULL;
	char size[32];
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_info, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	t = bv_lockfile_find(ctx.lock, argv[first]);
	if (!t) {
		bv_cli_error("tool '%s' is not in bv.lock", argv[first]);
		bv_cli_hint("add it with 'bv add %s'", argv[first]);
		r = BV_EXIT_FAILURE;
		goto out;
	}
	/* The manifest adds the description and the entrypoint; without a registry copy the
	 * lock alone is still worth showing. */
	pinned = bv_xasprintf("=%s", t->version);
	if (bv_cli_ctx_load_index(&ctx, NULL, true) == 0 && bv_cli_ctx_load_types(&ctx) == 0 &&
	    bv_resolve_tool(&m, ctx.index, t->tool_id, pinned, ctx.types, &err) < 0) {
		char *msg = bv_error_format(err);
		bv_cli_warning("%s", msg);
		free(msg);
		bv_error_free(err);
	}
	if (arg_json) {
		json_t *o = m ? bv_manifest_tool_to_json(m) : json_object(), *bins = json_array();
		json_object_set_new(o, "id", json_string(t->tool_id));
		json_object_set_new(o, "version", json_string(t->version));
		json_object_set_new(o, "image_reference", json_string(t->image_reference));
		json_object_set_new(o, "image_digest", json_string(t->image_digest));
		json_object_set_new(o, "manifest_sha256", json_string(t->manifest_sha256));
		bv_strv_foreach (b, &t->binaries)
			json_array_append_new(bins, json_string(*b));
		json_object_set_new(o, "binaries", bins);
		r = bv_cli_print_json(o);
		goto out;
	}
	bv_cli_format_size(size, sizeof(size), t->image_size_bytes);
	printf("%s %s\n", bv_cli_text(t->tool_id), bv_cli_text(t->version));
	if (m && m->description)
		printf("%s\n", bv_cli_text(m->description));
	printf("\nrequirement: %s\n",
	       t->declared_version_req[0] ? bv_cli_text(t->declared_version_req) : "*");
	printf("image:       %s\n", bv_cli_text(t->image_reference));
	printf("digest:      %s\n", t->image_digest[0] ? bv_cli_text(t->image_digest) : "-");
	printf("size:        %s\n", size);
	printf("kind:        %s\n", t->factored ? "factored OCI" : "image");
	printf("resolved:    %s\n", t->resolved_at ? bv_cli_text(t->resolved_at) : "-");
	printf("binaries:   ");
	bv_strv_foreach (b, &t->binaries)
		printf(" %s", bv_cli_text(*b));
	printf("\n");
	if (m && m->entrypoint)
		printf("entrypoint:  %s%s%s\n", bv_cli_text(m->entrypoint),
		       m->args_template ? " " : "",
		       m->args_template ? bv_cli_text(m->args_template) : "");
	for (size_t i = 0; m && i < m->n_subcommands; i++) {
		printf("%s %s ->",
		       i ? "            " : "subcommand:", bv_cli_text(m->subcommands[i].name));
		bv_strv_foreach (a, &m->subcommands[i].argv)
			printf(" %s", bv_cli_text(*a));
		printf("\n");
	}
	for (size_t i = 0; i < t->n_layers; i++)
		printf("layer %-5zu  %.19s %s%s%s\n", i, bv_cli_text(t->layers[i].digest),
		       t->layers[i].conda ? bv_cli_text(t->layers[i].conda->name) : "",
		       t->layers[i].conda ? "@" : "",
		       t->layers[i].conda ? bv_cli_text(t->layers[i].conda->version) : "");
out:
	bv_manifest_free(m);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option info_options[] = {
	{"json", 0, BV_OPT_FLAG, &arg_json, NULL, "print JSON"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_info = {
	.name = "info",
	.usage = "[--json] <tool>",
	.summary = "show what bv.lock pins for a tool",
	.description =
		"Shows the lock entry of <tool> (image, digest, binaries, layers) with the description,\nentrypoint and subcommands of its manifest.",
	.options = info_options,
	.run = run_info,
	.operands = BV_OPERANDS_TOOLS,
};
