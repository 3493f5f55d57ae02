#include <bv/error.h>
#include <bv/index.h>
#include <bv/manifest.h>
#include <bv/resolve.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_tier = "default";
static unsigned arg_limit = 20;
static const char *arg_registry;
static bool arg_json;

struct hit {
	json_t *entry; /* borrowed from the summaries */
	int score;
};

static bool icontains(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (; haystack && *haystack; haystack++)
		if (!strncasecmp(haystack, needle, n))
			return true;
	return false;
}

static bool any_type_matches(json_t *types, const char *query)
{
	size_t i;
	json_t *v;
	json_array_foreach(types, i, v) if (json_is_string(v) &&
					    icontains(json_string_value(v), query)) return true;
	return false;
}

/* As upstream: exact id 100, id substring 50, description 20, input type 10, output type 5. */
static int score(json_t *e, const char *query)
{
	const char *id = json_string_value(json_object_get(e, "id"));
	int s = 0;
	if (!id)
		return 0;
	if (!strcasecmp(id, query))
		s += 100;
	else if (icontains(id, query))
		s += 50;
	if (icontains(json_string_value(json_object_get(e, "description")), query))
		s += 20;
	if (any_type_matches(json_object_get(e, "input_types"), query))
		s += 10;
	if (any_type_matches(json_object_get(e, "output_types"), query))
		s += 5;
	return s;
}

static bool tier_shown(json_t *e)
{
	const char *tier = json_string_value(json_object_get(e, "tier"));
	bool deprecated = json_is_true(json_object_get(e, "deprecated"));
	if (!tier)
		tier = "community";
	if (!strcmp(arg_tier, "all"))
		return true;
	if (!strcmp(arg_tier, "default"))
		return strcmp(tier, "experimental") && !deprecated;
	return !strcmp(tier, arg_tier) && !deprecated;
}

static int compare_hits(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->score != y->score)
		return y->score - x->score;
	return strcmp(json_string_value(json_object_get(x->entry, "id")),
		      json_string_value(json_object_get(y->entry, "id")));
}

/* Without index.json: one summary per tool, from its latest manifest. */
static int summaries_from_manifests(struct bv_cli_ctx *ctx, json_t **out)
{
	struct bv_strv ids = BV_STRV_INIT;
	struct bv_error *err = NULL;
	json_t *a = json_array();
	if (bv_cli_ctx_load_types(ctx) || bv_index_list_tools(&ids, ctx->index, &err) < 0) {
		json_decref(a);
		bv_strv_clear(&ids);
		return err ? bv_cli_report(err) : BV_EXIT_FAILURE;
	}
	bv_strv_foreach (id, &ids) {
		struct bv_manifest *m = NULL;
		json_t *o, *in = json_array(), *outs = json_array();
		if (bv_resolve_tool(&m, ctx->index, *id, "", ctx->types, &err) < 0) {
			char *msg = bv_error_format(err);
			bv_cli_warning("skipping '%s': %s", *id, msg);
			free(msg);
			bv_error_free(err);
			err = NULL;
			json_decref(in);
			json_decref(outs);
			continue;
		}
		o = json_pack("{s:s, s:s, s:s, s:b}", "id", m->id, "version", m->version, "tier",
			      m->tier, "deprecated", m->deprecated);
		if (m->description)
			json_object_set_new(o, "description", json_string(m->description));
		for (size_t i = 0; i < m->n_inputs; i++)
			json_array_append_new(in, json_string(m->inputs[i].type));
		for (size_t i = 0; i < m->n_outputs; i++)
			json_array_append_new(outs, json_string(m->outputs[i].type));
		json_object_set_new(o, "input_types", in);
		json_object_set_new(o, "output_types", outs);
		json_array_append_new(a, o);
		bv_manifest_free(m);
	}
	bv_strv_clear(&ids);
	*out = a;
	return 0;
}

static int run_search(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	json_t *summaries = NULL, *e;
	struct hit *hits = NULL;
	size_t n = 0, total = 0, i;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_search, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	if (!argv[first][0]) {
		bv_cli_error("the search query is empty");
		return BV_EXIT_USAGE;
	}
	if (strcmp(arg_tier, "default") && strcmp(arg_tier, "all") && strcmp(arg_tier, "core") &&
	    strcmp(arg_tier, "community") && strcmp(arg_tier, "experimental")) {
		bv_cli_error("unknown tier '%s'; expected all, core, community or experimental",
			     arg_tier);
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT | BV_CTX_INDEX, arg_registry);
	if (r)
		goto out;
	r = bv_index_load_summaries(&summaries, ctx.index, &err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(err);
		r = summaries_from_manifests(&ctx, &summaries);
		if (r)
			goto out;
	} else if (r < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	hits = bv_xcalloc(json_array_size(summaries) + 1, sizeof(*hits));
	json_array_foreach(summaries, i, e)
	{
		int s = json_is_object(e) && tier_shown(e) ? score(e, argv[first]) : 0;
		if (s > 0) {
			hits[n].entry = e;
			hits[n++].score = s;
		}
	}
	qsort(hits, n, sizeof(*hits), compare_hits);
	total = n;
	if (n > arg_limit)
		n = arg_limit;
	if (arg_json) {
		json_t *a = json_array();
		for (i = 0; i < n; i++)
			json_array_append(a, hits[i].entry);
		r = bv_cli_print_json(a);
		goto out;
	}
	/* nothing found is an answer, not a failure (upstream exits 0 too) */
	if (!n) {
		bv_cli_status("No tools found matching '%s'\n", bv_cli_text(argv[first]));
		r = BV_EXIT_OK;
		goto out;
	}
	printf("%-16s %-10s %-12s %s\n", "TOOL", "VERSION", "TIER", "DESCRIPTION");
	for (i = 0; i < n; i++) {
		json_t *h = hits[i].entry;
		const char *desc = json_string_value(json_object_get(h, "description"));
		const char *version = json_string_value(json_object_get(h, "version"));
		const char *tier = json_string_value(json_object_get(h, "tier"));
		printf("%-16s %-10s %-12s %s%s\n",
		       bv_cli_text(json_string_value(json_object_get(h, "id"))),
		       version ? bv_cli_text(version) : "", tier ? bv_cli_text(tier) : "community",
		       json_is_true(json_object_get(h, "deprecated")) ? "[deprecated] " : "",
		       desc ? bv_cli_text(desc) : "");
	}
	fprintf(stderr,
		"\n%zu tool%s shown%s; 'bv show <tool>' for details, 'bv add <tool>' to add one\n",
		n, n == 1 ? "" : "s", total > n ? " (more with --limit)" : "");
	r = BV_EXIT_OK;
out:
	free(hits);
	json_decref(summaries);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option search_options[] = {
	{"tier", 't', BV_OPT_STRING, &arg_tier, "TIER",
	 "all, core, community or experimental (default: all but experimental and deprecated)"},
	{"limit", 'n', BV_OPT_UINT, &arg_limit, "N", "show at most N tools (default 20)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to search (default: BV_REGISTRY, bv.toml, the public registry)"},
	{"json", 0, BV_OPT_FLAG, &arg_json, NULL, "print JSON"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_search = {
	.name = "search",
	.usage = "[--tier <TIER>] [--limit <N>] [--json] <query>",
	.summary = "search the registry for tools",
	.description = "Searches tool ids, descriptions and input/output types in the registry.",
	.options = search_options,
	.run = run_search,
};
