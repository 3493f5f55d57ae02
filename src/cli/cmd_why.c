#include <bv/lockfile.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

#include "util/banned.h"

static bool arg_json;

/* Case-insensitive substring test. */
static bool contains(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (; *haystack; haystack++)
		if (!strncasecmp(haystack, needle, n))
			return true;
	return n == 0;
}

static int run_why(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	json_t *matches = json_array();
	size_t without_layers = 0, found = 0;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_why, argc, argv, 1, 1, &first);
	if (status < 0 && !argv[first][0]) {
		bv_cli_error("the package name is empty");
		status = BV_EXIT_USAGE;
	}
	if (status >= 0) {
		json_decref(matches);
		return status;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	for (size_t i = 0; i < ctx.lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx.lock->tools[i];
		if (!t->n_layers)
			without_layers++;
		for (size_t j = 0; j < t->n_layers; j++) {
			const struct bv_lock_conda *c = t->layers[j].conda;
			json_t *o;
			if (!c || !contains(c->name, argv[first]))
				continue;
			found++;
			o = json_object();
			json_object_set_new(o, "tool", json_string(t->tool_id));
			json_object_set_new(o, "package", json_string(c->name));
			json_object_set_new(o, "version", json_string(c->version));
			json_object_set_new(o, "build", json_string(c->build ? c->build : ""));
			json_object_set_new(o, "layer", json_string(t->layers[j].digest));
			json_array_append_new(matches, o);
			if (!arg_json)
				printf("%s %s: %s %s %s (layer %.19s)\n", bv_cli_text(t->tool_id),
				       bv_cli_text(t->version), bv_cli_text(c->name),
				       bv_cli_text(c->version),
				       c->build ? bv_cli_text(c->build) : "",
				       bv_cli_text(t->layers[j].digest));
		}
	}
	if (arg_json) {
		r = bv_cli_print_json(matches);
		matches = NULL;
	}
	if (without_layers && !arg_json)
		fprintf(stderr,
			"note: %zu locked tool%s no per-package layers, so %s not searched\n",
			without_layers, without_layers == 1 ? " has" : "s have",
			without_layers == 1 ? "it was" : "they were");
	/* nothing found is an answer, not a failure (upstream exits 0 too) */
	if (!found && !arg_json)
		bv_cli_status("No locked tool contains a package matching '%s'\n",
			      bv_cli_text(argv[first]));
out:
	json_decref(matches);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option why_options[] = {
	{"json", 0, BV_OPT_FLAG, &arg_json, NULL, "print JSON"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_why = {
	.name = "why",
	.usage = "[--json] <package>",
	.summary = "show which tools contain a conda package",
	.description =
		"Lists the locked tools whose factored image layers pin a conda package whose name\ncontains <package> (case-insensitive).  Exits 1 when none does.",
	.options = why_options,
	.run = run_why,
};
