/*
 * Signed images on the command line (bv/signature.h): whether a command must check them
 * (--require-signed, or [registry] require_signed in bv.toml) and the check of every image a
 * lock pins, with the manifest of each tool found for its [tool.signatures].
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <bv/runplan.h>
#include <bv/signature.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

bool bv_cli_require_signed(const struct bv_cli_ctx *ctx)
{
	return ctx->require_signed || (ctx->project && ctx->project->require_signed);
}

/* The manifest of locked tool `t`: one of `known`, bv's kept copy, else the index's. */
static int manifest_of(struct bv_manifest **out, bool *owned, const struct bv_cli_ctx *ctx,
		       const struct bv_lock_tool *t, const struct bv_manifest *const *known,
		       size_t n_known, const char *cache)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *pinned = NULL;

	for (size_t i = 0; i < n_known; i++)
		if (!strcmp(known[i]->id, t->tool_id) && !strcmp(known[i]->version, t->version)) {
			*out = (struct bv_manifest *)(uintptr_t)known[i];
			*owned = false;
			return 0;
		}
	*owned = true;
	*out = cache ? bv_run_plan_saved_manifest(t, cache) : NULL;
	if (*out)
		return 0;
	pinned = bv_xasprintf("=%s", t->version);
	if (ctx->index &&
	    bv_resolve_tool(out, ctx->index, t->tool_id, pinned, ctx->types, &err) == 0)
		return 0;
	bv_error_free(err);
	bv_cli_error("no manifest of %s %s here to find who may sign its image", t->tool_id,
		     t->version);
	bv_cli_hint("run 'bv lock' (or 'bv sync --registry <URL>') with its registry");
	return BV_EXIT_FAILURE;
}

int bv_cli_verify_signed(const struct bv_cli_ctx *ctx, const struct bv_lockfile *lock,
			 const struct bv_manifest *const *known, size_t n_known)
{
	struct bv_error *err = NULL;
	struct bv_signature_image *images;
	struct bv_manifest **ms;
	bool *owned;
	char *cache = NULL;
	int r = 0;

	if (!lock || !lock->n_tools)
		return 0;
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		err = NULL;
		cache = NULL;
	}
	images = bv_xcalloc(lock->n_tools, sizeof(*images));
	ms = bv_xcalloc(lock->n_tools, sizeof(*ms));
	owned = bv_xcalloc(lock->n_tools, sizeof(*owned));
	for (size_t i = 0; i < lock->n_tools && !r; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		r = manifest_of(&ms[i], &owned[i], ctx, t, known, n_known, cache);
		images[i] = (struct bv_signature_image){.tool_id = t->tool_id,
							.manifest = ms[i],
							.reference = t->image_reference,
							.digest = t->image_digest};
	}
	if (!r && bv_signature_verify(images, lock->n_tools, &err) < 0) {
		_cleanup_free_ char *dir = bv_signature_keys_dir();
		r = bv_cli_report(err);
		bv_cli_hint("sign the image (bv push --sign-key, cosign) or trust its key in '%s'; "
			    "bv.toml and bv.lock are unchanged",
			    dir ? dir : "~/.config/bv/keys");
	}
	if (!r)
		bv_cli_status("Verified the signatures of %zu image%s\n", lock->n_tools,
			      lock->n_tools == 1 ? "" : "s");
	for (size_t i = 0; i < lock->n_tools; i++)
		if (owned[i])
			bv_manifest_free(ms[i]);
	free(owned);
	free(ms);
	free(images);
	free(cache);
	return r;
}
