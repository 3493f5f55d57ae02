/*
 * Re-resolving bv.toml against the registry: bv lock --check (compare), bv lock (write) and
 * bv update (re-resolve tags too, pull, write).
 *
 * A tool whose requirement still selects the locked version and whose manifest still has the
 * locked digest keeps its entry untouched, without its manifest being parsed; this is what
 * keeps --check on a large, up-to-date project fast.  --check never talks to an image
 * registry: a changed tool shows its new version and manifest, and the digest only a
 * registry could tell is left as it was.  bv lock asks the registry what the tags of changed
 * tools point to now (no blobs are downloaded); bv update also does that for tools whose
 * version did not change, then pulls and unpacks, so the machine matches the new lock.
 */
#include "config.h"

#include <bv/error.h>
#include <bv/index.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <bv/shims.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* The entry --check expects for `m`, keeping what only a registry could refresh. */
static void expected_entry(struct bv_lock_tool *t, const struct bv_manifest *m,
			   const char *requirement, const struct bv_lock_tool *locked)
{
	bool same = locked && !strcmp(locked->version, m->version);
	bv_lock_set_string(&t->declared_version_req, requirement);
	bv_lock_set_string(&t->version, m->version);
	t->factored = m->factored;
	bv_lock_set_string(&t->image_reference, bv_cli_image_reference(m));
	if (m->factored)
		bv_lock_set_string(&t->image_digest, m->factored_image_digest);
	else if (!same)
		bv_lock_set_string(&t->image_digest, "");
	bv_lock_set_string(&t->manifest_sha256, m->digest);
	bv_strv_clear(&t->binaries);
	bv_strv_pushv(&t->binaries, (const char *const *)m->binaries.v);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool unchanged(const struct bv_cli_ctx *ctx, const struct bv_lock_tool *locked,
		      const char *version, const char *requirement)
{
	char digest[72];
	if (!locked || strcmp(locked->version, version) || !locked->manifest_sha256[0] ||
	    strcmp(locked->declared_version_req, requirement) ||
	    bv_index_manifest_digest(ctx->index, locked->tool_id, version, digest, NULL) < 0)
		return false;
	return !strcmp(digest, locked->manifest_sha256);
}

static int print_diff(const struct bv_lockfile *old, const struct bv_lockfile *new,
		      enum bv_relock_mode mode)
{
	struct bv_strv diff = BV_STRV_INIT;
	bv_lockfile_diff(old, new, &diff);
	if (!diff.n) {
		fprintf(stderr, "bv.lock is up to date\n");
		return BV_EXIT_OK;
	}
	if (mode == BV_RELOCK_CHECK)
		fprintf(stderr, "bv.lock is out of date with bv.toml and the registry:\n");
	bv_strv_foreach (line, &diff)
		printf("%s\n", bv_cli_text(*line));
	if (mode == BV_RELOCK_CHECK)
		bv_cli_hint("run 'bv lock' to update it");
	bv_strv_clear(&diff);
	return mode == BV_RELOCK_CHECK ? BV_EXIT_FAILURE : BV_EXIT_OK;
}

/*
 * --check on a lock where every tool is unchanged: only the binary index can differ (the
 * overrides may have changed), so rebuild it in place and compare, without copying the lock.
 */
static int check_binary_index_only(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	struct bv_lockfile old = *ctx->lock; /* shallow: only its binary index is replaced */
	size_t n = ctx->lock->n_binary_index;
	struct bv_lock_binary *saved = bv_xcalloc(n + 1, sizeof(*saved));
	int r;
	for (size_t i = 0; i < n; i++) {
		saved[i].binary = bv_xstrdup(ctx->lock->binary_index[i].binary);
		saved[i].tool = bv_xstrdup(ctx->lock->binary_index[i].tool);
	}
	if (bv_cli_rebuild_binary_index(ctx->lock, ctx->project, &err) < 0) {
		r = bv_cli_report(err);
	} else {
		old.binary_index = saved;
		old.n_binary_index = n;
		r = print_diff(&old, ctx->lock, BV_RELOCK_CHECK);
	}
	for (size_t i = 0; i < n; i++) {
		free(saved[i].binary);
		free(saved[i].tool);
	}
	free(saved);
	return r;
}

struct relock_tool {
	const struct bv_project_tool *declared;
	const struct bv_lock_tool *locked;
	struct bv_manifest *manifest; /* NULL when the entry stays as it is */
};

int bv_cli_relock(struct bv_cli_ctx *ctx, enum bv_relock_mode mode, char **only, size_t n_only,
		  unsigned jobs, const char *platform)
{
	struct bv_error *err = NULL;
	struct bv_lockfile *empty = NULL, *expected = NULL;
	const struct bv_lockfile *old = ctx->lock;
	size_t n = ctx->project->n_tools, n_items = 0;
	struct relock_tool *tools = bv_xcalloc(n + 1, sizeof(*tools));
	struct bv_install_item *items = bv_xcalloc(n + 1, sizeof(*items));
	const char **declared = bv_xcalloc(n + 1, sizeof(*declared));
	struct bv_cli_progress progress = {0};
	bool any_change = false;
	int r = BV_EXIT_FAILURE;

	if (!old)
		old = empty = bv_lockfile_new(BV_VERSION, bv_time_now());
	for (size_t i = 0; i < n_only; i++) {
		if (!bv_project_find_tool(ctx->project, only[i])) {
			bv_cli_error("tool '%s' is not declared in bv.toml", only[i]);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++)
		declared[i] = ctx->project->tools[i].id;
	qsort(declared, n, sizeof(*declared), compare_strings);
	for (size_t i = 0; i < old->n_tools; i++) {
		const char *id = old->tools[i].tool_id;
		if (!bsearch(&id, declared, n, sizeof(*declared), compare_strings))
			any_change = true;
	}

	/* Which tools need their manifest (and, unless checking, the registry)? */
	for (size_t i = 0; i < n; i++) {
		struct relock_tool *t = &tools[i];
		char *version = NULL, *path = NULL;
		/* a lock for another platform shares no pin with the one it replaces */
		bool forced = (mode == BV_RELOCK_UPDATE && !n_only) || platform;
		for (size_t j = 0; j < n_only; j++)
			forced = forced || !strcmp(only[j], ctx->project->tools[i].id);
		t->declared = &ctx->project->tools[i];
		t->locked = bv_lockfile_find(old, t->declared->id);
		if (bv_resolve_tool_version(&version, &path, ctx->index, t->declared->id,
					    t->declared->version, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
		if (!forced && unchanged(ctx, t->locked, version, t->declared->version)) {
			free(version);
			free(path);
			continue;
		}
		free(version);
		free(path);
		any_change = true;
		if (bv_resolve_tool(&t->manifest, ctx->index, t->declared->id, t->declared->version,
				    ctx->types, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
	}
	if (mode == BV_RELOCK_CHECK && !any_change) {
		r = check_binary_index_only(ctx);
		goto out;
	}

	if (mode != BV_RELOCK_CHECK) {
		struct bv_install_options o = {
			.mode = mode == BV_RELOCK_UPDATE ? BV_INSTALL_FULL
							 : BV_INSTALL_RESOLVE_ONLY,
			.jobs = jobs,
			.platform = platform,
			.progress = bv_cli_pull_progress,
			.progress_payload = &progress,
		};
		for (size_t i = 0; i < n; i++) {
			if (!tools[i].manifest)
				continue;
			items[n_items].tool_id = tools[i].declared->id;
			items[n_items].reference = bv_cli_image_reference(tools[i].manifest);
			items[n_items++].pinned = bv_cli_image_pin(tools[i].manifest);
		}
		if (n_items && bv_install(items, n_items, &o, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
	}

	expected = bv_lockfile_clone(old);
	for (size_t i = 0; i < old->n_tools; i++) {
		const char *id = old->tools[i].tool_id;
		if (!bsearch(&id, declared, n, sizeof(*declared), compare_strings))
			bv_lockfile_remove(expected, id);
	}
	for (size_t i = 0, k = 0; i < n; i++) {
		struct relock_tool *t = &tools[i];
		struct bv_lock_tool *entry;
		if (!t->manifest)
			continue;
		entry = bv_lockfile_upsert(expected, t->declared->id);
		if (mode == BV_RELOCK_CHECK)
			expected_entry(entry, t->manifest, t->declared->version, t->locked);
		else
			bv_cli_fill_lock_entry(entry, t->manifest, t->declared->version,
					       &items[k++]);
	}
	if (bv_cli_rebuild_binary_index(expected, ctx->project, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	if (mode == BV_RELOCK_CHECK || (ctx->lock && bv_lockfile_equivalent(old, expected))) {
		r = print_diff(old, expected, mode);
		goto out;
	}
	{
		char now[BV_RFC3339_LEN + 1];
		if (bv_time_format_rfc3339(bv_time_now(), now) == 0)
			bv_lock_set_string(&expected->generated_at, now);
	}
	if (bv_lockfile_save(expected, ctx->lock_path, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	r = print_diff(old, expected, mode);
	fprintf(stderr, "Wrote bv.lock (%zu tool%s)\n", expected->n_tools,
		expected->n_tools == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++)
		if (tools[i].manifest)
			bv_cli_keep_manifest(tools[i].manifest);
	if (bv_shims_write(ctx->project->root, expected, &err) < 0)
		r = bv_cli_report(err);
out:
	for (size_t i = 0; i < n; i++)
		bv_manifest_free(tools[i].manifest);
	for (size_t i = 0; i < n_items; i++)
		bv_install_item_release(&items[i]);
	free(tools);
	free(items);
	free(declared);
	bv_lockfile_free(expected);
	bv_lockfile_free(empty);
	return r;
}
