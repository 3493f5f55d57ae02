/*
 * bv lock --check: would re-resolving bv.toml against the registry change bv.lock?
 *
 * It never pulls.  A tool that resolves to the version already locked keeps its locked image
 * digest (only a pull could tell otherwise); a tool that resolves to another version, is new,
 * or is gone shows up in the diff, as do manifest changes and binary index changes.
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_check;
static const char *arg_registry;

/* The lock entry bv would write for `m`, keeping what only a pull could refresh. */
static void expected_entry(struct bv_lock_tool *t, const struct bv_manifest *m,
			   const char *requirement, const struct bv_lock_tool *locked)
{
	bool same = locked && !strcmp(locked->version, m->version);
	char *digest = bv_manifest_digest(m);
	bv_lock_set_string(&t->declared_version_req, requirement);
	bv_lock_set_string(&t->version, m->version);
	t->factored = m->factored;
	bv_lock_set_string(&t->image_reference,
			   m->factored ? m->factored_image_reference : m->image_reference);
	if (m->factored)
		bv_lock_set_string(&t->image_digest, m->factored_image_digest);
	else if (!same)
		bv_lock_set_string(&t->image_digest, "");
	bv_lock_set_string(&t->manifest_sha256, digest);
	free(digest);
	bv_strv_clear(&t->binaries);
	bv_strv_pushv(&t->binaries, (const char *const *)m->binaries.v);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * True when the locked entry can stand as it is: the requirement still selects the locked
 * version and the manifest still has the locked digest.  This skips parsing the manifest,
 * which is most of the work in a large project that is up to date.
 */
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

/* The overrides of bv.toml as the two parallel arrays the lock module takes. */
struct overrides {
	const char **bins, **tools;
	size_t n;
};

static void overrides_init(struct overrides *o, const struct bv_project *p)
{
	o->bins = bv_xcalloc(p->n_overrides + 1, sizeof(*o->bins));
	o->tools = bv_xcalloc(p->n_overrides + 1, sizeof(*o->tools));
	for (size_t i = 0; i < p->n_overrides; i++) {
		o->bins[i] = p->overrides[i].binary;
		o->tools[i] = p->overrides[i].tool;
	}
	o->n = p->n_overrides;
}

static int print_diff(const struct bv_lockfile *old, const struct bv_lockfile *new)
{
	struct bv_strv diff = BV_STRV_INIT;
	bv_lockfile_diff(old, new, &diff);
	if (!diff.n) {
		fprintf(stderr, "bv.lock is up to date\n");
		return BV_EXIT_OK;
	}
	fprintf(stderr, "bv.lock is out of date with bv.toml and the registry:\n");
	bv_strv_foreach (line, &diff)
		printf("%s\n", *line);
	bv_cli_hint("run 'bv lock' to update it");
	bv_strv_clear(&diff);
	return BV_EXIT_FAILURE;
}

/*
 * When every declared tool is locked and unchanged and nothing else is locked, only the
 * binary index can differ (bv.toml's overrides may have changed): rebuild it in place and
 * compare, without copying the lock.  On a large project that is up to date this is the
 * whole check.
 */
static int check_binary_index_only(struct bv_cli_ctx *ctx, const struct overrides *o)
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
	if (bv_lockfile_rebuild_binary_index(ctx->lock, o->bins, o->tools, o->n, &err) < 0) {
		r = bv_cli_report(err);
	} else {
		old.binary_index = saved;
		old.n_binary_index = n;
		r = print_diff(&old, ctx->lock);
	}
	for (size_t i = 0; i < n; i++) {
		free(saved[i].binary);
		free(saved[i].tool);
	}
	free(saved);
	return r;
}

static int check(struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	struct bv_lockfile *expected = NULL;
	const char **declared = bv_xcalloc(ctx->project->n_tools + 1, sizeof(*declared));
	bool *changed = bv_xcalloc(ctx->project->n_tools + 1, sizeof(*changed));
	bool any_change = false;
	struct overrides o;
	int r = BV_EXIT_FAILURE;

	overrides_init(&o, ctx->project);
	for (size_t i = 0; i < ctx->project->n_tools; i++)
		declared[i] = ctx->project->tools[i].id;
	qsort(declared, ctx->project->n_tools, sizeof(*declared), compare_strings);
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		const char *id = ctx->lock->tools[i].tool_id;
		if (!bsearch(&id, declared, ctx->project->n_tools, sizeof(*declared),
			     compare_strings))
			any_change = true; /* locked, no longer declared */
	}
	for (size_t i = 0; i < ctx->project->n_tools; i++) {
		const struct bv_project_tool *pt = &ctx->project->tools[i];
		char *version = NULL, *path = NULL;
		if (bv_resolve_tool_version(&version, &path, ctx->index, pt->id, pt->version,
					    &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
		changed[i] =
			!unchanged(ctx, bv_lockfile_find(ctx->lock, pt->id), version, pt->version);
		any_change = any_change || changed[i];
		free(version);
		free(path);
	}
	if (!any_change) {
		r = check_binary_index_only(ctx, &o);
		goto out;
	}

	expected = bv_lockfile_clone(ctx->lock);
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		const char *id = ctx->lock->tools[i].tool_id;
		if (!bsearch(&id, declared, ctx->project->n_tools, sizeof(*declared),
			     compare_strings))
			bv_lockfile_remove(expected, id);
	}
	for (size_t i = 0; i < ctx->project->n_tools; i++) {
		const struct bv_project_tool *pt = &ctx->project->tools[i];
		struct bv_manifest *m = NULL;
		if (!changed[i])
			continue;
		if (bv_resolve_tool(&m, ctx->index, pt->id, pt->version, ctx->types, &err) < 0) {
			r = bv_cli_report(err);
			goto out;
		}
		expected_entry(bv_lockfile_upsert(expected, pt->id), m, pt->version,
			       bv_lockfile_find(ctx->lock, pt->id));
		bv_manifest_free(m);
	}
	if (bv_lockfile_rebuild_binary_index(expected, o.bins, o.tools, o.n, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	r = print_diff(ctx->lock, expected);
out:
	free(declared);
	free(changed);
	free(o.bins);
	free(o.tools);
	bv_lockfile_free(expected);
	return r;
}

static int run_lock(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	int first = 0;
	int r;
	int status = bv_cli_begin(&bv_cmd_lock, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	if (!arg_check) {
		/* Writing a lock needs image digests from a registry: that arrives with the OCI
		 * client.  Until then only the check exists, and says so rather than pretending. */
		bv_cli_error("only 'bv lock --check' is available in this version of bv");
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK | BV_CTX_INDEX | BV_CTX_TYPES, arg_registry);
	if (!r)
		r = check(&ctx);
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option lock_options[] = {
	{"check", 0, BV_OPT_FLAG, &arg_check, NULL,
	 "exit 1 with a diff when bv.lock is out of date; never pulls"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to resolve against (default: BV_REGISTRY, bv.toml, the public registry)"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_lock = {
	.name = "lock",
	.usage = "--check [--registry <URL>]",
	.summary = "check that bv.lock matches bv.toml and the registry",
	.description =
		"Resolves every tool of bv.toml against the registry and compares the result with\nbv.lock.  With --check it prints the differences and exits 1 when there are any.",
	.options = lock_options,
	.run = run_lock,
};
