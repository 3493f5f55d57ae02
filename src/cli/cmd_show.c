#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_format = "human";
static const char *arg_registry;

static void print_io(const char *title, const struct bv_manifest_io *io, size_t n)
{
	if (!n)
		return;
	printf("%s:\n", title);
	for (size_t i = 0; i < n; i++)
		printf("  %-16s %-18s %-8s %s\n", bv_cli_text(io[i].name), bv_cli_text(io[i].type),
		       bv_cli_text(io[i].cardinality),
		       io[i].description ? bv_cli_text(io[i].description) : "");
}

static void print_human(const struct bv_manifest *m)
{
	printf("%s %s", bv_cli_text(m->id), bv_cli_text(m->version));
	if (m->deprecated)
		printf(" (deprecated)");
	printf("\n");
	if (m->description)
		printf("%s\n", bv_cli_text(m->description));
	printf("\n");
	if (m->homepage)
		printf("homepage:   %s\n", bv_cli_text(m->homepage));
	if (m->license)
		printf("license:    %s\n", bv_cli_text(m->license));
	printf("tier:       %s\n", bv_cli_text(m->tier));
	printf("image:      %s\n",
	       bv_cli_text(m->factored ? m->factored_image_reference : m->image_reference));
	if (m->entrypoint)
		printf("entrypoint: %s%s%s\n", bv_cli_text(m->entrypoint),
		       m->args_template ? " " : "",
		       m->args_template ? bv_cli_text(m->args_template) : "");
	if (m->binaries.n) {
		printf("binaries:  ");
		bv_strv_foreach (b, &m->binaries)
			printf(" %s", bv_cli_text(*b));
		printf("\n");
	}
	if (m->gpu_required)
		printf("gpu:        required\n");
	for (size_t i = 0; i < m->n_subcommands; i++) {
		printf("%s %-14s",
		       i ? "           " : "subcommands:", bv_cli_text(m->subcommands[i].name));
		bv_strv_foreach (a, &m->subcommands[i].argv)
			printf(" %s", bv_cli_text(*a));
		printf("\n");
	}
	printf("\n");
	print_io("inputs", m->inputs, m->n_inputs);
	print_io("outputs", m->outputs, m->n_outputs);
	if (!m->n_inputs && !m->n_outputs)
		bv_cli_warning("'%s' declares no typed inputs or outputs", m->id);
}

static int run_show(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_manifest *m = NULL;
	struct bv_error *err = NULL;
	const char *requirement = "";
	_cleanup_free_ char *pinned = NULL;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_show, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	if (strcmp(arg_format, "human") && strcmp(arg_format, "json") &&
	    strcmp(arg_format, "mcp") && strcmp(arg_format, "json-schema")) {
		bv_cli_error("unknown format '%s'; expected human, json, mcp or json-schema",
			     arg_format);
		return BV_EXIT_USAGE;
	}
	/* No network: the registry as last fetched, at the locked version when there is one. */
	r = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT | BV_CTX_INDEX_OFFLINE | BV_CTX_TYPES,
			    arg_registry);
	if (r)
		goto out;
	if (ctx.lock) {
		const struct bv_lock_tool *t = bv_lockfile_find(ctx.lock, argv[first]);
		if (t) {
			pinned = bv_xasprintf("=%s", t->version);
			requirement = pinned;
		}
	}
	if (bv_resolve_tool(&m, ctx.index, argv[first], requirement, ctx.types, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	if (!strcmp(arg_format, "json"))
		r = bv_cli_print_json(bv_manifest_to_json(m));
	else if (!strcmp(arg_format, "mcp"))
		r = bv_cli_print_json(bv_manifest_to_mcp(m));
	else if (!strcmp(arg_format, "json-schema"))
		r = bv_cli_print_json(bv_manifest_to_json_schema(m));
	else
		print_human(m);
out:
	bv_manifest_free(m);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option show_options[] = {
	{"format", 'f', BV_OPT_STRING, &arg_format, "FORMAT",
	 "human (default), json, mcp or json-schema"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to read (default: BV_REGISTRY, bv.toml, the public registry)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_show = {
	.name = "show",
	.usage = "[--format <FORMAT>] <tool>",
	.summary = "show a tool's manifest",
	.description =
		"Shows the registry manifest of <tool>: the locked version inside a project, else the\nlatest.  Reads the registry as last fetched; it never touches the network.",
	.options = show_options,
	.run = run_show,
	.operands = BV_OPERANDS_TOOLS,
};
