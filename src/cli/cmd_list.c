#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/runplan.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_binaries, arg_json, arg_layers;

static const char *short_digest(const char *digest)
{
	const char *colon = strchr(digest, ':');
	return colon ? colon + 1 : digest;
}

#define LIST_CHUNK 4096u

/* `s`, then spaces to `width` bytes (as printf's "%-*s"), then the two between columns. */
static void add_cell(struct bv_buf *out, const char *s, size_t width)
{
	size_t n = strlen(s);
	bv_buf_add(out, s, n);
	for (; n < width + 2; n++)
		bv_buf_putc(out, ' ');
}

static int list_binaries(const struct bv_lockfile *lock)
{
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT;
	size_t width = 6;
	if (arg_json) {
		json_t *o = json_object();
		for (size_t i = 0; i < lock->n_binary_index; i++)
			json_object_set_new(o, lock->binary_index[i].binary,
					    json_string(lock->binary_index[i].tool));
		return bv_cli_print_json(o);
	}
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		size_t n = strlen(bv_cli_text(lock->binary_index[i].binary));
		if (n > width)
			width = n;
	}
	/* the table through a buffer written every 4 KiB (as stdio would): printf("%-*s") per line
	 * was a third of the command on a 1000-tool project; the same bytes, padded the same way */
	add_cell(&out, "BINARY", width);
	bv_buf_puts(&out, "TOOL\n");
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		add_cell(&out, bv_cli_text(lock->binary_index[i].binary), width);
		bv_buf_puts(&out, bv_cli_text(lock->binary_index[i].tool));
		bv_buf_putc(&out, '\n');
		if (out.len >= LIST_CHUNK) { /* a bounded buffer: fewer fresh pages to touch */
			(void)fwrite(out.buf, 1, out.len, stdout);
			bv_buf_reset(&out);
		}
	}
	(void)fwrite(out.buf, 1, out.len, stdout);
	return BV_EXIT_OK;
}

/*
 * Tier of each locked tool from the manifest copy kept for runs (never the registry, so list
 * stays offline and fast); NULL where there is no copy.  Returns a vector of n_tools strings
 * owned by the caller (free_tiers).
 */
static char **load_tiers(const struct bv_lockfile *lock)
{
	char **tiers = bv_xcalloc(lock->n_tools ? lock->n_tools : 1, sizeof(*tiers));
	_cleanup_free_ char *cache = NULL;
	struct bv_error *err = NULL;
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		return tiers;
	}
	free(tiers);
	return bv_run_plan_saved_tiers(lock, cache);
}

static void free_tiers(char **tiers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(tiers[i]);
	free(tiers);
}

/* How many tools of the project pin layer `digest`. */
static size_t layer_users(const struct bv_lockfile *lock, const char *digest)
{
	size_t n = 0;
	for (size_t i = 0; i < lock->n_tools; i++)
		for (size_t j = 0; j < lock->tools[i].n_layers; j++)
			if (strcmp(lock->tools[i].layers[j].digest, digest) == 0) {
				n++;
				break;
			}
	return n;
}

/* True when layer j of tool i is the first time this digest appears in the lock. */
static bool layer_first_seen(const struct bv_lockfile *lock, size_t i, size_t j)
{
	const char *digest = lock->tools[i].layers[j].digest;
	for (size_t a = 0; a <= i; a++)
		for (size_t b = 0; b < (a == i ? j : lock->tools[a].n_layers); b++)
			if (strcmp(lock->tools[a].layers[b].digest, digest) == 0)
				return false;
	return true;
}

/*
 * bv list --layers: per tool, bytes in layers another tool of the project also pins
 * (shared) and bytes only it pins (unique); a tool whose lock entry has no layers counts its
 * image size as unique.  The footer's dedup ratio is the share of the summed layer bytes that
 * identical digests save: 1 - distinct bytes / total bytes.
 */
static int list_layers(const struct bv_lockfile *lock)
{
	int64_t total = 0, distinct = 0;
	size_t n_layers = 0, n_distinct = 0, wid = 4;
	json_t *a = arg_json ? json_array() : NULL;
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		for (size_t j = 0; j < t->n_layers; j++) {
			total += t->layers[j].size;
			n_layers++;
			if (layer_first_seen(lock, i, j)) {
				distinct += t->layers[j].size;
				n_distinct++;
			}
		}
		if (strlen(bv_cli_text(t->tool_id)) > wid)
			wid = strlen(bv_cli_text(t->tool_id));
	}
	if (!arg_json)
		printf("%-*s  %6s  %10s  %10s\n", (int)wid, "TOOL", "LAYERS", "SHARED", "UNIQUE");
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		int64_t shared = 0, unique = 0;
		json_t *layers = a ? json_array() : NULL;
		char s_shared[32], s_unique[32], n[16];
		for (size_t j = 0; j < t->n_layers; j++) {
			bool is_shared = layer_users(lock, t->layers[j].digest) > 1;
			*(is_shared ? &shared : &unique) += t->layers[j].size;
			if (layers)
				json_array_append_new(layers,
						      json_pack("{s:s, s:I, s:b}", "digest",
								t->layers[j].digest, "size",
								(json_int_t)t->layers[j].size,
								"shared", is_shared));
		}
		if (!t->n_layers && t->image_size_bytes > 0)
			unique = t->image_size_bytes;
		if (a) {
			json_array_append_new(a,
					      json_pack("{s:s, s:s, s:o, s:I, s:I}", "id",
							t->tool_id, "version", t->version, "layers",
							layers, "shared_bytes", (json_int_t)shared,
							"unique_bytes", (json_int_t)unique));
			continue;
		}
		bv_cli_format_size(s_shared, sizeof(s_shared), shared);
		bv_cli_format_size(s_unique, sizeof(s_unique), unique);
		snprintf(n, sizeof(n), "%zu", t->n_layers);
		printf("%-*s  %6s  %10s  %10s\n", (int)wid, bv_cli_text(t->tool_id),
		       t->n_layers ? n : "-", s_shared, s_unique);
	}
	if (a)
		return bv_cli_print_json(
			json_pack("{s:o, s:I, s:I, s:I, s:I, s:f}", "tools", a, "layers",
				  (json_int_t)n_layers, "distinct_layers", (json_int_t)n_distinct,
				  "total_layer_bytes", (json_int_t)total, "distinct_layer_bytes",
				  (json_int_t)distinct, "dedup_ratio",
				  total ? 1.0 - (double)distinct / (double)total : 0.0));
	if (n_layers) {
		char s_total[32], s_distinct[32];
		bv_cli_format_size(s_total, sizeof(s_total), total);
		bv_cli_format_size(s_distinct, sizeof(s_distinct), distinct);
		printf("\n%zu layers (%zu distinct), %s in layers, %s on disk: dedup %.0f%%\n",
		       n_layers, n_distinct, s_total, s_distinct,
		       total ? 100.0 * (1.0 - (double)distinct / (double)total) : 0.0);
	} else {
		printf("\nno layers in bv.lock (no factored tool records them): dedup 0%%\n");
	}
	return BV_EXIT_OK;
}

static int list_tools(const struct bv_lockfile *lock)
{
	size_t wid = 4, wver = 7;
	char **tiers = load_tiers(lock);
	int r = BV_EXIT_OK;
	if (arg_json) {
		struct bv_cli_json_array a;
		bv_cli_json_array_begin(&a);
		/* each tool written member by member (the same text as the object's dump, without
		 * building it): on a 1000-tool project the objects' building and dumping were more
		 * than half of the command */
		for (size_t i = 0; i < lock->n_tools; i++) {
			const struct bv_lock_tool *t = &lock->tools[i];
			/* the lock's strings were checked to be UTF-8 when bv.lock was parsed; the
			 * tier, from a cache file, is checked (json_string) */
			bv_cli_json_array_object_begin(&a);
			bv_cli_json_array_member_string(&a, "id", t->tool_id);
			bv_cli_json_array_member_string(&a, "version", t->version);
			bv_cli_json_array_member_string(&a, "image_reference", t->image_reference);
			bv_cli_json_array_member_string(&a, "image_digest", t->image_digest);
			if (t->image_size_bytes >= 0)
				bv_cli_json_array_member(&a, "image_size_bytes",
							 json_integer(t->image_size_bytes));
			bv_cli_json_array_member_string(&a, "resolved_at", t->resolved_at);
			bv_cli_json_array_member(&a, "tier",
						 tiers[i] ? json_string(tiers[i]) : json_null());
			bv_cli_json_array_member_strings(&a, "binaries", &t->binaries);
			bv_cli_json_array_object_end(&a);
		}
		r = bv_cli_json_array_end(&a);
		goto out;
	}
	if (!lock->n_tools) {
		bv_cli_status("No tools in bv.lock; add one with 'bv add <tool>'\n");
		goto out;
	}
	for (size_t i = 0; i < lock->n_tools; i++) {
		if (strlen(bv_cli_text(lock->tools[i].tool_id)) > wid)
			wid = strlen(bv_cli_text(lock->tools[i].tool_id));
		if (strlen(bv_cli_text(lock->tools[i].version)) > wver)
			wver = strlen(bv_cli_text(lock->tools[i].version));
	}
	printf("%-*s  %-*s  %-12s  %-12s  %10s  %s\n", (int)wid, "TOOL", (int)wver, "VERSION",
	       "TIER", "DIGEST", "SIZE", "RESOLVED");
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		char size[32];
		bv_cli_format_size(size, sizeof(size), t->image_size_bytes);
		printf("%-*s  %-*s  %-12s  %-12.12s  %10s  %.10s\n", (int)wid,
		       bv_cli_text(t->tool_id), (int)wver, bv_cli_text(t->version),
		       tiers[i] ? bv_cli_text(tiers[i]) : "-",
		       t->image_digest[0] ? bv_cli_text(short_digest(t->image_digest)) : "-", size,
		       t->resolved_at ? bv_cli_text(t->resolved_at) : "-");
	}
out:
	free_tiers(tiers, lock->n_tools);
	return r;
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
		r = arg_binaries ? list_binaries(ctx.lock)
		    : arg_layers ? list_layers(ctx.lock)
				 : list_tools(ctx.lock);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option list_options[] = {
	{"binaries", 'b', BV_OPT_FLAG, &arg_binaries, NULL, "list the binary routing table"},
	{"layers", 0, BV_OPT_FLAG, &arg_layers, NULL,
	 "per tool: layers, shared and unique bytes, and the dedup ratio"},
	{"json", 0, BV_OPT_FLAG, &arg_json, NULL, "print JSON"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_list = {
	.name = "list",
	.usage = "[--binaries | --layers] [--json]",
	.summary = "list the locked tools or binaries",
	.description =
		"Lists the tools pinned in bv.lock with their tier (from the kept manifest copy, - when\nunknown), with --binaries which tool each binary runs in, or with --layers each tool's\nlayers, the bytes it shares with other tools of the project and the bytes only it needs.",
	.options = list_options,
	.run = run_list,
};
