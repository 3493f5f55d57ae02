#include <bv/lockfile.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#include "util/banned.h"

static bool arg_binaries, arg_json;

static const char *short_digest(const char *digest)
{
	const char *colon = strchr(digest, ':');
	return colon ? colon + 1 : digest;
}

static int list_binaries(const struct bv_lockfile *lock)
{
	size_t width = 6;
	if (arg_json) {
		json_t *o = json_object();
		for (size_t i = 0; i < lock->n_binary_index; i++)
			json_object_set_new(o, lock->binary_index[i].binary,
					    json_string(lock->binary_index[i].tool));
		return bv_cli_print_json(o);
	}
	for (size_t i = 0; i < lock->n_binary_index; i++)
		if (strlen(bv_cli_text(lock->binary_index[i].binary)) > width)
			width = strlen(bv_cli_text(lock->binary_index[i].binary));
	printf("%-*s  %s\n", (int)width, "BINARY", "TOOL");
	for (size_t i = 0; i < lock->n_binary_index; i++)
		printf("%-*s  %s\n", (int)width, bv_cli_text(lock->binary_index[i].binary),
		       bv_cli_text(lock->binary_index[i].tool));
	return BV_EXIT_OK;
}

static int list_tools(const struct bv_lockfile *lock)
{
	size_t wid = 4, wver = 7;
	if (arg_json) {
		json_t *a = json_array();
		for (size_t i = 0; i < lock->n_tools; i++) {
			const struct bv_lock_tool *t = &lock->tools[i];
			json_t *o = json_object(), *bins = json_array();
			json_object_set_new(o, "id", json_string(t->tool_id));
			json_object_set_new(o, "version", json_string(t->version));
			json_object_set_new(o, "image_reference", json_string(t->image_reference));
			json_object_set_new(o, "image_digest", json_string(t->image_digest));
			if (t->image_size_bytes >= 0)
				json_object_set_new(o, "image_size_bytes",
						    json_integer(t->image_size_bytes));
			json_object_set_new(o, "resolved_at", json_string(t->resolved_at));
			bv_strv_foreach (b, &t->binaries)
				json_array_append_new(bins, json_string(*b));
			json_object_set_new(o, "binaries", bins);
			json_array_append_new(a, o);
		}
		return bv_cli_print_json(a);
	}
	if (!lock->n_tools) {
		bv_cli_status("No tools in bv.lock; add one with 'bv add <tool>'\n");
		return BV_EXIT_OK;
	}
	for (size_t i = 0; i < lock->n_tools; i++) {
		if (strlen(bv_cli_text(lock->tools[i].tool_id)) > wid)
			wid = strlen(bv_cli_text(lock->tools[i].tool_id));
		if (strlen(bv_cli_text(lock->tools[i].version)) > wver)
			wver = strlen(bv_cli_text(lock->tools[i].version));
	}
	printf("%-*s  %-*s  %-12s  %10s  %s\n", (int)wid, "TOOL", (int)wver, "VERSION", "DIGEST",
	       "SIZE", "RESOLVED");
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		char size[32];
		bv_cli_format_size(size, sizeof(size), t->image_size_bytes);
		printf("%-*s  %-*s  %-12.12s  %10s  %.10s\n", (int)wid, bv_cli_text(t->tool_id),
		       (int)wver, bv_cli_text(t->version),
		       t->image_digest[0] ? bv_cli_text(short_digest(t->image_digest)) : "-", size,
		       t->resolved_at ? bv_cli_text(t->resolved_at) : "-");
	}
	return BV_EXIT_OK;
}

static int run_list(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_list, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (!r)
		r = arg_binaries ? list_binaries(ctx.lock) : list_tools(ctx.lock);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option list_options[] = {
	{"binaries", 'b', BV_OPT_FLAG, &arg_binaries, NULL, "list the binary routing table"},
	{"json", 0, BV_OPT_FLAG, &arg_json, NULL, "print JSON"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_list = {
	.name = "list",
	.usage = "[--binaries] [--json]",
	.summary = "list the locked tools or binaries",
	.description =
		"Lists the tools pinned in bv.lock, or with --binaries which tool each binary runs in.",
	.options = list_options,
	.run = run_list,
};
