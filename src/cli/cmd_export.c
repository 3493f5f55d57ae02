#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "util/fs.h"

#include "util/banned.h"

static const char *arg_format;
static const char *arg_output;

/*
 * "quay.io/biocontainers/<name>:<version>--<build>" names a bioconda package exactly; other
 * references have no conda equivalent unless the lock pins the layers' conda packages.
 */
static bool biocontainer_package(const char *ref, struct bv_buf *out)
{
	static const char prefix[] = "quay.io/biocontainers/";
	const char *name = ref + sizeof(prefix) - 1, *colon, *dashes;
	if (strncmp(ref, prefix, sizeof(prefix) - 1))
		return false;
	colon = strchr(name, ':');
	if (!colon || colon == name)
		return false;
	dashes = strstr(colon, "--");
	if (!dashes || dashes == colon + 1)
		return false;
	bv_buf_printf(out, "  - bioconda::%.*s=%.*s\n", (int)(colon - name), name,
		      (int)(dashes - colon - 1), colon + 1);
	return true;
}

static int run_export(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_buf yaml = BV_BUF_INIT, skipped = BV_BUF_INIT;
	struct bv_error *err = NULL;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_export, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	if (!arg_format || strcmp(arg_format, "conda")) {
		bv_cli_error("unsupported export format '%s'; the only format is 'conda'",
			     arg_format ? arg_format : "");
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	bv_buf_printf(&yaml, "# conda environment exported by bv from bv.lock\nname: %s\n",
		      bv_project_display_name(ctx.project));
	bv_buf_puts(&yaml, "channels:\n  - conda-forge\n  - bioconda\ndependencies:\n");
	for (size_t i = 0; i < ctx.lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx.lock->tools[i];
		size_t pinned = 0;
		for (size_t j = 0; j < t->n_layers; j++) {
			const struct bv_lock_conda *c = t->layers[j].conda;
			if (!c)
				continue;
			bv_buf_printf(&yaml, "  - %s=%s%s%s\n", c->name, c->version,
				      c->build && c->build[0] ? "=" : "", c->build ? c->build : "");
			pinned++;
		}
		if (!pinned && !biocontainer_package(t->image_reference, &yaml))
			bv_buf_printf(&skipped, "#   %s %s (%s)\n", t->tool_id, t->version,
				      t->image_reference);
	}
	if (skipped.len) {
		bv_buf_puts(&yaml, "# not exported, no conda package is known for:\n");
		bv_buf_add(&yaml, skipped.buf, skipped.len);
	}
	if (arg_output && strcmp(arg_output, "-")) {
		if (bv_write_file_atomic(arg_output, yaml.buf, yaml.len, 0644, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
		fprintf(stderr, "Wrote '%s'\n", arg_output);
	} else {
		fwrite(yaml.buf, 1, yaml.len, stdout);
	}
out:
	bv_buf_release(&yaml);
	bv_buf_release(&skipped);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option export_options[] = {
	{"format", 'f', BV_OPT_STRING, &arg_format, "FORMAT", "output format (only 'conda')"},
	{"output", 'o', BV_OPT_STRING, &arg_output, "FILE", "write to FILE instead of stdout"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_export = {
	.name = "export",
	.usage = "--format conda [-o <FILE>]",
	.summary = "export the locked tools as a conda environment",
	.description =
		"Writes a conda environment file for the locked tools: bioconda packages for\nbiocontainers images and the pinned conda packages of factored images.",
	.options = export_options,
	.run = run_export,
};
