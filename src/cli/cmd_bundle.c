/*
 * bv bundle: everything bv.lock pins in one tar, for machines without network (bv/bundle.h).
 */
#include <bv/bundle.h>
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_output;
static bool arg_data;

/* The datasets bv.lock pins, as the bundle's bv/data/ entries; each must be in the cache. */
static int data_extras(struct bv_strv *names, struct bv_strv *paths, const struct bv_lockfile *lock)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	if (bv_cache_dir(&cache, &err) < 0)
		return bv_cli_report(err);
	for (size_t i = 0; i < lock->n_tools; i++) {
		for (size_t k = 0; k < lock->tools[i].n_pins; k++) {
			const struct bv_lock_data_pin *p = &lock->tools[i].pins[k];
			_cleanup_free_ char *dir =
				bv_xasprintf("%s/data/%s/%s", cache, p->id, p->version);
			_cleanup_free_ char *rec = bv_xasprintf("%s.json", dir);
			_cleanup_free_ char *name =
				bv_xasprintf("bv/data/%s/%s.json", p->id, p->version);
			if (bv_strv_contains(names, name))
				continue;
			if (!bv_path_exists(dir) || !bv_path_exists(rec)) {
				bv_cli_error("dataset %s %s (pinned by %s) is not in the cache",
					     p->id, p->version, lock->tools[i].tool_id);
				bv_cli_hint("run 'bv sync --data' first");
				return BV_EXIT_FAILURE;
			}
			bv_strv_push(names, name);
			bv_strv_push(paths, rec);
			bv_strv_pushf(names, "bv/data/%s/%s", p->id, p->version);
			bv_strv_push(paths, dir);
		}
	}
	return 0;
}

static int run_bundle(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT, paths = BV_STRV_INIT;
	struct bv_bundle_extra *extras = NULL;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_bundle, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	if (!arg_output) {
		bv_cli_error("bv bundle needs -o <FILE>");
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out;
	if (arg_data && (r = data_extras(&names, &paths, ctx.lock)))
		goto out;
	/* entries in name order, as the bundle's are */
	extras = bv_xcalloc(names.n + 1, sizeof(*extras));
	for (size_t i = 0; i < names.n; i++)
		extras[i] = (struct bv_bundle_extra){names.v[i], paths.v[i]};
	if (bv_bundle_write(arg_output, ctx.lock, ctx.project->root, extras, names.n, &err) < 0) {
		bool missing = bv_error_root_code(err) == BV_ENOTFOUND;
		r = bv_cli_report(err);
		if (missing)
			bv_cli_hint("run 'bv sync' first");
		goto out;
	}
	bv_cli_status("Wrote %s (%zu tool%s%s)\n", arg_output, ctx.lock->n_tools,
		      ctx.lock->n_tools == 1 ? "" : "s", names.n ? ", with reference data" : "");
out:
	free(extras);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option bundle_options[] = {
	{"output", 'o', BV_OPT_STRING, &arg_output, "FILE", "the bundle to write (required)"},
	{"data", 0, BV_OPT_FLAG, &arg_data, NULL, "also the reference data bv.lock pins"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_bundle = {
	.name = "bundle",
	.usage = "-o <FILE> [--data]",
	.summary = "write what bv.lock pins into one file for air-gapped machines",
	.description =
		"Writes the images bv.lock pins (an OCI image layout that 'skopeo copy\noci-archive:FILE:REF' reads), the registry manifests they were locked from,\nbv.toml and bv.lock into one tar, and with --data the reference data bv.lock\npins.  Everything comes from the cache: run 'bv sync' first.  The same bv.lock\nand cache give the same bytes.  Install it with 'bv sync --from FILE'.",
	.options = bundle_options,
	.run = run_bundle,
};
