/*
 * Filling bv.lock entries from a resolved manifest and its image (bv add, bv lock), and the
 * --platform argument those two and bv sync share.
 */
#include <bv/error.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/registry.h>
#include <bv/runplan.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

int bv_cli_platform_arg(const char *arg, char **out)
{
	struct bv_error *err = NULL;
	*out = NULL;
	if (!arg)
		return BV_EXIT_OK;
	if (bv_platform_normalize(arg, out, &err) < 0) {
		bv_cli_report(err);
		return BV_EXIT_USAGE;
	}
	return BV_EXIT_OK;
}

const char *bv_cli_image_reference(const struct bv_manifest *m)
{
	return m->factored ? m->factored_image_reference : m->image_reference;
}

const char *bv_cli_image_pin(const struct bv_manifest *m)
{
	/* A factored image is pinned by the registry manifest itself, as upstream pulls it. */
	return m->factored ? m->factored_image_digest : NULL;
}

/* A copy for bv run (bv_run_plan_save_manifest); failing to keep one only slows a run. */
void bv_cli_keep_manifest(const struct bv_manifest *m)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL;
	if (bv_cache_dir(&cache, &err) < 0 || bv_run_plan_save_manifest(m, cache, &err) < 0) {
		char *msg = bv_error_format(err);
		bv_cli_warning("%s", msg);
		free(msg);
		bv_error_free(err);
	}
}

void bv_cli_fill_lock_entry(struct bv_lock_tool *t, const struct bv_manifest *m,
			    const char *requirement, const struct bv_install_item *it)
{
	char now[BV_RFC3339_LEN + 1];
	if (bv_time_format_rfc3339(bv_time_now(), now) < 0)
		now[0] = '\0';
	bv_lock_set_string(&t->declared_version_req, requirement);
	bv_lock_set_string(&t->version, m->version);
	t->factored = m->factored;
	bv_lock_set_string(&t->image_reference, bv_cli_image_reference(m));
	bv_lock_set_string(&t->manifest_sha256, m->digest);
	bv_lock_set_string(&t->resolved_at, now);
	bv_strv_clear(&t->binaries);
	bv_strv_pushv(&t->binaries, (const char *const *)m->binaries.v);
	if (!it)
		return;
	/* Always the registry's digest, whatever the backend (upstream records a SIF hash). */
	bv_lock_set_string(&t->image_digest, it->top_digest);
	t->image_size_bytes = it->size;
	bv_lock_tool_clear_layers(t);
	for (size_t i = 0; i < it->n_layers; i++) {
		struct bv_lock_layer *l = bv_lock_tool_add_layer(t);
		bv_lock_set_string(&l->digest, it->layers[i].digest);
		l->size = (int64_t)it->layers[i].size;
		bv_lock_set_string(&l->media_type, it->layers[i].media_type);
		for (size_t j = 0; j < m->n_layers; j++) {
			const struct bv_manifest_layer *ml = &m->layers[j];
			if (!ml->has_conda || strcmp(ml->digest, l->digest))
				continue;
			l->conda = bv_xcalloc(1, sizeof(*l->conda));
			bv_lock_set_string(&l->conda->name, ml->conda_name);
			bv_lock_set_string(&l->conda->version, ml->conda_version);
			bv_lock_set_string(&l->conda->build, ml->conda_build);
			bv_lock_set_string(&l->conda->channel, ml->conda_channel);
			bv_lock_set_string(&l->conda->sha256, ml->conda_sha256);
		}
	}
}

int bv_cli_rebuild_binary_index(struct bv_lockfile *lock, const struct bv_project *p,
				struct bv_error **err)
{
	const char **bins = bv_xcalloc(p->n_overrides + 1, sizeof(*bins));
	const char **tools = bv_xcalloc(p->n_overrides + 1, sizeof(*tools));
	size_t n = 0;
	int r;
	for (size_t i = 0; i < p->n_overrides; i++) {
		if (!bv_lockfile_find(lock, p->overrides[i].tool)) {
			bv_cli_warning(
				"[binary_overrides] in bv.toml names '%s', which is not locked",
				p->overrides[i].tool);
			continue;
		}
		bins[n] = p->overrides[i].binary;
		tools[n++] = p->overrides[i].tool;
	}
	r = bv_lockfile_rebuild_binary_index(lock, bins, tools, n, err);
	free(bins);
	free(tools);
	return r;
}
