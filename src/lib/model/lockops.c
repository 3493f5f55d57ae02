/*
 * Lock operations (bv/lockops.h): every decision about what bv.lock holds, for the commands
 * that change a project.  They used to live in the command line, where the manifest-to-entry
 * mapping was written twice (once for writing, once for --check) and none of it could be
 * tested without a registry; the image digests a registry knows are the only thing still
 * asked of the caller.
 */
#include "config.h"

#include <bv/error.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <bv/shims.h>
#include <bv/version.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/resolve-internal.h"
#include "lib/model/validate.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

static inline void lockfile_freep(struct bv_lockfile **p)
{
	bv_lockfile_free(*p);
}

static inline void bv_error_freep(struct bv_error **e)
{
	bv_error_free(*e);
}

const char *bv_lockops_image_reference(const struct bv_manifest *m)
{
	return m->factored ? m->factored_image_reference : m->image_reference;
}

const char *bv_lockops_image_pin(const struct bv_manifest *m)
{
	return m->factored ? m->factored_image_digest : NULL;
}

static void fill_layers(struct bv_lock_tool *t, const struct bv_manifest *m,
			const struct bv_lockops_image *image)
{
	bv_lock_tool_clear_layers(t);
	for (size_t i = 0; i < image->n_layers; i++) {
		struct bv_lock_layer *l = bv_lock_tool_add_layer(t);
		bv_lock_set_string(&l->digest, image->layers[i].digest);
		l->size = image->layers[i].size;
		bv_lock_set_string(&l->media_type, image->layers[i].media_type);
		/* the manifest names the conda package of each layer of a factored image by the
		 * layer's digest; the registry's layer list is what is recorded */
		for (size_t j = 0; j < m->n_layers; j++) {
			const struct bv_manifest_layer *ml = &m->layers[j];
			if (!ml->has_conda || strcmp(ml->digest, l->digest))
				continue;
			if (!l->conda)
				l->conda = bv_xcalloc(1, sizeof(*l->conda));
			bv_lock_set_string(&l->conda->name, ml->conda_name);
			bv_lock_set_string(&l->conda->version, ml->conda_version);
			bv_lock_set_string(&l->conda->build, ml->conda_build);
			bv_lock_set_string(&l->conda->channel, ml->conda_channel);
			bv_lock_set_string(&l->conda->sha256, ml->conda_sha256);
		}
	}
}

/*
 * reference_data_pins, one per [tool.reference_data.<key>] of the manifest, with upstream's
 * fields.  The sha256 is the dataset's, which only the registry's data manifest knows: it is
 * kept from the old pin when key, id and version are unchanged, and left empty otherwise for
 * the caller to fill (bv_lockops_fill_data_pins), so `bv lock --check` sees no change.
 */
static void fill_pins(struct bv_lock_tool *t, const struct bv_manifest *m)
{
	struct bv_lock_data_pin *old = t->pins;
	size_t n_old = t->n_pins;

	t->pins = NULL;
	t->n_pins = 0;
	for (size_t i = 0; i < m->n_reference_data; i++) {
		const struct bv_manifest_reference *ref = &m->reference_data[i];
		struct bv_lock_data_pin *p = bv_lock_tool_set_pin(t, ref->key);
		bv_lock_set_string(&p->id, ref->id);
		bv_lock_set_string(&p->version, ref->version);
		for (size_t k = 0; k < n_old; k++)
			if (!strcmp(old[k].key, ref->key) && !strcmp(old[k].id, ref->id) &&
			    !strcmp(old[k].version, ref->version))
				bv_lock_set_string(&p->sha256, old[k].sha256);
	}
	for (size_t k = 0; k < n_old; k++) {
		free(old[k].key);
		free(old[k].id);
		free(old[k].version);
		free(old[k].sha256);
	}
	free(old);
}

int bv_lockops_fill_data_pins(struct bv_lockfile *lock, const struct bv_index *idx,
			      struct bv_strv *warnings)
{
	for (size_t i = 0; i < lock->n_tools; i++) {
		struct bv_lock_tool *t = &lock->tools[i];
		for (size_t k = 0; k < t->n_pins; k++) {
			struct bv_lock_data_pin *p = &t->pins[k];
			struct bv_dataset *d = NULL;
			struct bv_error *e = NULL;
			if (p->sha256[0])
				continue;
			if (bv_resolve_dataset(&d, idx, p->id, p->version, &e) < 0) {
				_cleanup_free_ char *msg = bv_error_format(e);
				bv_error_free(e);
				bv_strv_pushf(warnings, "%s: %s; its pin in bv.lock has no sha256",
					      t->tool_id, msg);
				continue;
			}
			bv_lock_set_string(&p->sha256, d->sha256 ? d->sha256 : "");
			bv_dataset_free(d);
		}
	}
	return 0;
}

void bv_lockops_fill_entry(struct bv_lock_tool *t, const struct bv_manifest *m,
			   const char *requirement, const struct bv_lockops_image *image,
			   const char *now)
{
	char stamp[BV_RFC3339_LEN + 1];
	/* before the version is replaced: a digest recorded for this very version stays valid */
	bool same_version = !strcmp(t->version, m->version);

	if (!now) {
		if (bv_time_format_rfc3339(stamp, bv_time_now()) < 0)
			stamp[0] = '\0';
		now = stamp;
	}
	bv_lock_set_string(&t->declared_version_req, requirement);
	bv_lock_set_string(&t->version, m->version);
	t->factored = m->factored;
	bv_lock_set_string(&t->image_reference, bv_lockops_image_reference(m));
	bv_lock_set_string(&t->manifest_sha256, m->digest);
	bv_lock_set_string(&t->resolved_at, now);
	bv_strv_clear(&t->binaries);
	bv_strv_pushv(&t->binaries, (const char *const *)m->binaries.v);
	fill_pins(t, m);
	if (image) {
		/* Always the registry's digest, whatever the backend (upstream records a SIF
		 * hash for apptainer). */
		bv_lock_set_string(&t->image_digest, image->digest);
		t->image_size_bytes = image->size;
		fill_layers(t, m, image);
	} else if (m->factored) {
		bv_lock_set_string(&t->image_digest, m->factored_image_digest);
	} else if (!same_version) {
		/* only a registry could say what the new version's tag points to */
		bv_lock_set_string(&t->image_digest, "");
	}
}

int bv_lockops_resolve(struct bv_manifest **out, struct bv_strv *warnings,
		       const struct bv_index *idx, const char *id, const char *requirement,
		       const struct bv_types *types, struct bv_error **err)
{
	struct bv_manifest *m = NULL;
	int r = bv_resolve_tool(&m, idx, id, requirement, types, err);
	if (r < 0)
		return r;
	if (m->deprecated)
		bv_strv_pushf(warnings, "%s %s is deprecated", id, m->version);
	if (!strcmp(m->tier, "experimental"))
		bv_strv_pushf(warnings, "%s is experimental", id);
	*out = m;
	return 0;
}

int bv_lockops_rebuild_binary_index(struct bv_lockfile *lock, struct bv_strv *warnings,
				    const struct bv_project *p, struct bv_error **err)
{
	_cleanup_free_ const char **bins = bv_xcalloc(p->n_overrides + 1, sizeof(*bins));
	_cleanup_free_ const char **tools = bv_xcalloc(p->n_overrides + 1, sizeof(*tools));
	size_t n = 0;
	for (size_t i = 0; i < p->n_overrides; i++) {
		/* an override for a tool not (yet) locked is bv.toml being ahead of the lock, which
		 * the next relock settles; the lock's own rebuild would call it an error */
		if (!bv_lockfile_find(lock, p->overrides[i].tool)) {
			bv_strv_pushf(
				warnings,
				"[binary_overrides] in bv.toml names '%s', which is not locked",
				p->overrides[i].tool);
			continue;
		}
		bins[n] = p->overrides[i].binary;
		tools[n++] = p->overrides[i].tool;
	}
	return bv_lockfile_rebuild_binary_index(lock, bins, tools, n, err);
}

const struct bv_lock_binary *bv_lockops_unallowed_shadow(const struct bv_lockfile *lock,
							 const struct bv_project *p)
{
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		const struct bv_lock_binary *b = &lock->binary_index[i];
		bool allowed = false;
		if (!bv_shadows_system_command(b->binary))
			continue;
		for (size_t j = 0; j < p->n_overrides && !allowed; j++)
			allowed = !strcmp(p->overrides[j].binary, b->binary) &&
				  !strcmp(p->overrides[j].tool, b->tool);
		if (!allowed)
			return b;
	}
	return NULL;
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The last version requirement parsed, kept while the next tools repeat its text (most do):
 * bv.toml's tools are walked in order and parsing one is most of the walk's cost.
 */
struct req_memo {
	const char *text;
	struct bv_version_req *req;
};

/* The requirement `text` parsed, or NULL when it does not parse (bv.toml's reader said why). */
static const struct bv_version_req *req_memo_get(struct req_memo *m, const char *text)
{
	if (!m->text || strcmp(m->text, text)) {
		bv_version_req_free(m->req);
		m->req = NULL;
		m->text = text;
		if (bv_version_req_parse(&m->req, text, NULL) < 0)
			m->req = NULL;
	}
	return m->req;
}

static void req_memo_release(struct req_memo *m)
{
	bv_version_req_free(m->req);
}

size_t bv_lockops_check_frozen(struct bv_strv *problems, const struct bv_project *p,
			       const struct bv_lockfile *lock)
{
	_cleanup_free_ const char **declared = NULL;
	_cleanup_(req_memo_release) struct req_memo reqs = {0};
	size_t n = 0;
	for (size_t i = 0; i < p->n_tools; i++) {
		const struct bv_project_tool *pt = &p->tools[i];
		const struct bv_lock_tool *t = bv_lockfile_find(lock, pt->id);
		if (!t) {
			bv_strv_pushf(problems, "'%s' is declared in bv.toml but not locked",
				      pt->id);
			n++;
			continue;
		}
		const struct bv_version_req *req = req_memo_get(&reqs, pt->version);
		if (req && !bv_version_req_matches(req, t->version)) {
			bv_strv_pushf(problems,
				      "bv.lock pins %s %s, which does not satisfy '%s' in bv.toml",
				      pt->id, t->version, pt->version);
			n++;
		}
	}
	/* bv.toml's ids sorted once: a lookup per locked tool was quadratic, a tenth of `bv sync`
	 * with nothing to do on a 1000-tool project */
	declared = bv_xcalloc(p->n_tools + 1, sizeof(*declared));
	for (size_t i = 0; i < p->n_tools; i++)
		declared[i] = p->tools[i].id;
	for (size_t i = 1; i < p->n_tools; i++) {
		if (compare_ids(&declared[i - 1], &declared[i]) > 0) {
			qsort(declared, p->n_tools, sizeof(*declared), compare_ids);
			break;
		}
	}
	/* bv.lock's tools are sorted by id too (bv/lockfile.h): one walk along both lists */
	for (size_t i = 0, j = 0; i < lock->n_tools; i++) {
		const char *id = lock->tools[i].tool_id;
		while (j < p->n_tools && strcmp(declared[j], id) < 0)
			j++;
		if (j == p->n_tools || strcmp(declared[j], id)) {
			bv_strv_pushf(problems, "'%s' is locked but no longer declared in bv.toml",
				      lock->tools[i].tool_id);
			n++;
		}
	}
	return n;
}

/* ---- diff ---- */

static struct bv_lockops_change *add_change(struct bv_lockops_diff *d, size_t *alloc,
					    enum bv_lockops_change_kind kind, const char *tool_id,
					    const char *old_version, const char *new_version,
					    struct bv_strv *lines)
{
	struct bv_lockops_change *c;
	BV_GROW(d->changes, *alloc, d->n_changes + 1);
	c = &d->changes[d->n_changes++];
	c->kind = kind;
	c->tool_id = tool_id ? bv_xstrdup(tool_id) : NULL;
	c->old_version = old_version ? bv_xstrdup(old_version) : NULL;
	c->new_version = new_version ? bv_xstrdup(new_version) : NULL;
	c->lines = *lines;
	bv_strv_init(lines);
	return c;
}

void bv_lockops_diff(struct bv_lockops_diff *out, const struct bv_lockfile *old,
		     const struct bv_lockfile *new)
{
	struct bv_lockops_diff d = {0};
	size_t alloc = 0, i = 0, j = 0;
	struct bv_strv lines = BV_STRV_INIT;

	/* bv_lockfile_diff() is the one wording of a difference: it is run on one-tool views of
	 * the two locks, so each change carries exactly the lines the whole diff would print,
	 * in the same order.  Indices, not pointers: a lock may have no tool array at all. */
	while (i < old->n_tools || j < new->n_tools) {
		const struct bv_lock_tool *x = i < old->n_tools ? &old->tools[i] : NULL;
		const struct bv_lock_tool *y = j < new->n_tools ? &new->tools[j] : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(x->tool_id, y->tool_id);
		/* the tool of each side this step covers: both when the ids match */
		const struct bv_lock_tool *from = c <= 0 ? x : NULL, *to = c >= 0 ? y : NULL;
		struct bv_lockfile a = {0}, b = {0};
		if (from) {
			a.tools = &old->tools[i++];
			a.n_tools = 1;
		}
		if (to) {
			b.tools = &new->tools[j++];
			b.n_tools = 1;
		}
		bv_lockfile_diff(&a, &b, &lines);
		if (!lines.n)
			continue;
		if (from && to)
			add_change(&d, &alloc, BV_LOCKOPS_CHANGED, from->tool_id, from->version,
				   to->version, &lines);
		else if (from)
			add_change(&d, &alloc, BV_LOCKOPS_REMOVED, from->tool_id, from->version,
				   NULL, &lines);
		else if (to)
			add_change(&d, &alloc, BV_LOCKOPS_ADDED, to->tool_id, NULL, to->version,
				   &lines);
	}
	{
		struct bv_lockfile a = {.binary_index = old->binary_index,
					.n_binary_index = old->n_binary_index};
		struct bv_lockfile b = {.binary_index = new->binary_index,
					.n_binary_index = new->n_binary_index};
		bv_lockfile_diff(&a, &b, &lines);
		if (lines.n)
			add_change(&d, &alloc, BV_LOCKOPS_BINARY_INDEX, NULL, NULL, NULL, &lines);
	}
	bv_strv_clear(&lines);
	*out = d;
}

void bv_lockops_diff_release(struct bv_lockops_diff *d)
{
	for (size_t i = 0; i < d->n_changes; i++) {
		free(d->changes[i].tool_id);
		free(d->changes[i].old_version);
		free(d->changes[i].new_version);
		bv_strv_clear(&d->changes[i].lines);
	}
	free(d->changes);
	d->changes = NULL;
	d->n_changes = 0;
}

void bv_lockops_result_release(struct bv_lockops_result *res)
{
	free(res->toml_text);
	bv_project_free(res->project);
	bv_lockfile_free(res->lock);
	bv_lockops_diff_release(&res->diff);
	for (size_t i = 0; i < res->n_manifests; i++)
		bv_manifest_free(res->manifests[i]);
	free(res->manifests);
	bv_strv_clear(&res->warnings);
	memset(res, 0, sizeof(*res));
	bv_strv_init(&res->warnings); /* an empty vector, not a NULL one */
}

/* ---- add, remove ---- */

/* Replaces *text and *edited with the next edit, checked by parsing it again. */
static int next_edit(char **text, struct bv_project **edited, char *next_text, const char *path,
		     struct bv_error **err)
{
	_cleanup_free_ char *owned = next_text;
	struct bv_project *next = NULL;
	int r = bv_project_parse(&next, owned, strlen(owned), path, err);
	if (r < 0)
		return r;
	bv_project_free(*edited);
	*edited = next;
	free(*text);
	*text = TAKE_PTR(owned);
	return 0;
}

int bv_lockops_add(struct bv_lockops_result *out, const struct bv_project *p,
		   const struct bv_lockfile *old, const struct bv_lockops_addition *tools, size_t n,
		   struct bv_error **err)
{
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	int r = 0;

	res.lock = old ? bv_lockfile_clone(old) : bv_lockfile_new(BV_VERSION, bv_time_now());
	res.toml_text = bv_xstrndup(p->text, p->text_len);
	for (size_t i = 0; i < n; i++) {
		const struct bv_lockops_addition *a = &tools[i];
		const struct bv_project *cur = res.project ? res.project : p;
		char *next_text = NULL;
		bv_lockops_fill_entry(bv_lockfile_upsert(res.lock, a->id), a->manifest,
				      a->requirement, &a->image, NULL);
		r = bv_project_text_with_tool(&next_text, cur, a->id, a->requirement, err);
		if (r < 0)
			goto fail;
		r = next_edit(&res.toml_text, &res.project, next_text, cur->path, err);
		if (r < 0)
			goto fail;
	}
	/* the overrides of the bv.toml about to be written decide the index, not the old one */
	r = bv_lockops_rebuild_binary_index(res.lock, &res.warnings, res.project ? res.project : p,
					    err);
	if (r < 0)
		goto fail;
	*out = res;
	return 0;
fail:
	bv_lockops_result_release(&res);
	return r;
}

int bv_lockops_remove(struct bv_lockops_result *out, const struct bv_project *p,
		      const struct bv_lockfile *old, const char *const *ids, size_t n,
		      struct bv_error **err)
{
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	int r = 0;

	res.lock = old ? bv_lockfile_clone(old) : NULL;
	for (size_t i = 0; i < n; i++) {
		const struct bv_project *cur = res.project ? res.project : p;
		char *next_text = NULL;
		r = bv_project_text_without_tool(&next_text, cur, ids[i], err);
		if (r < 0)
			goto fail;
		r = next_edit(&res.toml_text, &res.project, next_text, cur->path, err);
		if (r < 0)
			goto fail;
		if (res.lock)
			(void)bv_lockfile_remove(res.lock,
						 ids[i]); /* a tool never locked is fine */
	}
	if (res.lock && res.project &&
	    (r = bv_lockops_rebuild_binary_index(res.lock, &res.warnings, res.project, err)) < 0)
		goto fail;
	*out = res;
	return 0;
fail:
	bv_lockops_result_release(&res);
	return r;
}

/* ---- relock ---- */

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether `locked` still stands for `version` at `requirement`: same version, same recorded
 * requirement and the index's manifest digest unchanged (read without parsing). */
static bool unchanged(const struct bv_index *idx, const struct bv_lock_tool *locked,
		      const char *version, const char *requirement)
{
	char digest[72];
	if (!locked || strcmp(locked->version, version) || !locked->manifest_sha256[0] ||
	    strcmp(locked->declared_version_req, requirement) ||
	    bv_index_manifest_digest(idx, locked->tool_id, version, digest, NULL) < 0)
		return false;
	bv_logf(BV_LOG_DEBUG, "lock: %s %s %s", locked->tool_id, version,
		strcmp(digest, locked->manifest_sha256) ? "resolved again: its manifest differs"
							: "kept: its manifest is unchanged");
	return !strcmp(digest, locked->manifest_sha256);
}

/*
 * bv's manifest_sha256 hashes the manifest file's bytes; upstream hashes its own
 * re-serialisation, which nothing else reproduces.  So a lock written by upstream differs in
 * that field alone for a manifest that has not changed.  When an entry made again equals the
 * locked one in everything else it records (version, image, layers, binaries, pins), the
 * manifest is taken as unchanged and the locked digest kept: --check passes and bv lock does
 * not rewrite the field.  A manifest that changed what is locked still shows as a change.
 */
static void keep_foreign_manifest_digests(struct bv_lockfile *fresh, const struct bv_lockfile *base)
{
	struct bv_strv lines = BV_STRV_INIT;
	for (size_t i = 0; i < fresh->n_tools; i++) {
		struct bv_lock_tool *t = &fresh->tools[i];
		const struct bv_lock_tool *locked = bv_lockfile_find(base, t->tool_id);
		_cleanup_free_ char *ours = NULL;
		struct bv_lockfile a = {0}, b = {0};
		if (!locked || !locked->manifest_sha256[0] ||
		    !strcmp(locked->manifest_sha256, t->manifest_sha256))
			continue;
		ours = bv_xstrdup(t->manifest_sha256);
		bv_lock_set_string(&t->manifest_sha256, locked->manifest_sha256);
		a.tools = &base->tools[locked - base->tools];
		a.n_tools = 1;
		b.tools = t;
		b.n_tools = 1;
		bv_lockfile_diff(&a, &b, &lines);
		if (lines.n)
			bv_lock_set_string(&t->manifest_sha256, ours);
		bv_strv_clear(&lines);
	}
}

/*
 * --check on a lock where every tool is unchanged: only the binary index can differ (the
 * overrides may have changed), so it is rebuilt on a shallow view of the lock and compared,
 * without copying the tools.
 */
static int diff_binary_index_only(struct bv_lockops_result *res, const struct bv_lockfile *old,
				  const struct bv_project *p, struct bv_error **err)
{
	struct bv_lockfile view = *old;
	int r;
	view.binary_index = NULL;
	view.n_binary_index = 0;
	r = bv_lockops_rebuild_binary_index(&view, &res->warnings, p, err);
	if (r == 0)
		bv_lockops_diff(&res->diff, old, &view);
	for (size_t i = 0; i < view.n_binary_index; i++) {
		free(view.binary_index[i].binary);
		free(view.binary_index[i].tool);
	}
	free(view.binary_index);
	return r;
}

static bool named(const char *id, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], id))
			return true;
	return false;
}

int bv_lockops_relock(struct bv_lockops_result *out, const struct bv_project *p,
		      const struct bv_lockfile *old, const struct bv_index *idx,
		      const struct bv_types *types, const struct bv_lockops_relock_options *o,
		      struct bv_error **err)
{
	_cleanup_(lockfile_freep) struct bv_lockfile *empty = NULL;
	const struct bv_lockfile *base = old;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	size_t n = p->n_tools, n_requests = 0;
	/* by bv.toml's tool: the manifest of a tool resolved again, NULL when kept */
	_cleanup_free_ struct bv_manifest **manifests = bv_xcalloc(n + 1, sizeof(*manifests));
	_cleanup_free_ const char **declared = bv_xcalloc(n + 1, sizeof(*declared));
	_cleanup_free_ struct bv_lockops_image_request *requests = NULL;
	_cleanup_free_ struct bv_lockops_image *images = NULL;
	bool check = !o->images, any_change = false;
	/* the last requirement parsed, kept while the next tools repeat its text (most do) */
	_cleanup_(req_memo_release) struct req_memo reqs = {0};
	int r = 0;

	if (!base)
		base = empty = bv_lockfile_new(BV_VERSION, bv_time_now());
	for (size_t i = 0; i < o->n_only; i++)
		if (!bv_project_find_tool(p, o->only[i]))
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "tool '%s' is not declared in bv.toml", o->only[i]);
	for (size_t i = 0; i < n; i++)
		declared[i] = p->tools[i].id;
	if (n)
		qsort(declared, n, sizeof(*declared), compare_strings);
	for (size_t i = 0; i < base->n_tools; i++) {
		const char *id = base->tools[i].tool_id;
		if (!n || !bsearch(&id, declared, n, sizeof(*declared), compare_strings))
			any_change = true;
	}

	/* Which tools need their manifest (and, unless comparing, their image)? */
	for (size_t i = 0; i < n; i++) {
		const struct bv_project_tool *pt = &p->tools[i];
		const struct bv_lock_tool *locked = bv_lockfile_find(base, pt->id);
		bool forced = o->force_all || named(pt->id, o->only, o->n_only);
		_cleanup_free_ char *version = NULL, *path = NULL;
		const struct bv_version_req *req = req_memo_get(&reqs, pt->version);
		/* a requirement that does not parse takes the path that says why */
		r = req ? bv_resolve_tool_version_req(&version, &path, idx, pt->id, req,
						      pt->version, err)
			: bv_resolve_tool_version(&version, &path, idx, pt->id, pt->version, err);
		if (r < 0)
			goto fail;
		if (!forced && unchanged(idx, locked, version, pt->version))
			continue;
		any_change = true;
		r = bv_resolve_tool(&manifests[i], idx, pt->id, pt->version, types, err);
		if (r < 0)
			goto fail;
		if (o->admit) {
			r = o->admit(manifests[i], locked != NULL, o->admit_payload, err);
			if (r < 0)
				goto fail;
			if (r > 0 && locked) {
				bv_manifest_free(TAKE_PTR(manifests[i]));
				r = 0;
			}
		}
	}
	if (check && !any_change) {
		r = diff_binary_index_only(&res, base, p, err);
		if (r < 0)
			goto fail;
		*out = res;
		return 0;
	}

	if (!check) {
		requests = bv_xcalloc(n + 1, sizeof(*requests));
		images = bv_xcalloc(n + 1, sizeof(*images));
		for (size_t i = 0; i < n; i++) {
			if (!manifests[i])
				continue;
			requests[n_requests].tool_id = p->tools[i].id;
			requests[n_requests].reference = bv_lockops_image_reference(manifests[i]);
			requests[n_requests++].pinned = bv_lockops_image_pin(manifests[i]);
		}
		if (n_requests &&
		    (r = o->images(images, requests, n_requests, o->payload, err)) < 0)
			goto fail;
	}

	res.lock = bv_lockfile_clone(base);
	for (size_t i = 0; i < base->n_tools; i++) {
		const char *id = base->tools[i].tool_id;
		if (!n || !bsearch(&id, declared, n, sizeof(*declared), compare_strings))
			(void)bv_lockfile_remove(res.lock, id);
	}
	for (size_t i = 0, k = 0; i < n; i++) {
		if (!manifests[i])
			continue;
		bv_lockops_fill_entry(bv_lockfile_upsert(res.lock, p->tools[i].id), manifests[i],
				      p->tools[i].version, check ? NULL : &images[k++], NULL);
	}
	keep_foreign_manifest_digests(res.lock, base);
	r = bv_lockops_rebuild_binary_index(res.lock, &res.warnings, p, err);
	if (r < 0)
		goto fail;
	bv_lockops_diff(&res.diff, base, res.lock);
	/* a project without bv.lock gets one even when it would be empty */
	if (check || (old && !res.diff.n_changes)) {
		bv_lockfile_free(TAKE_PTR(res.lock));
	} else {
		char now[BV_RFC3339_LEN + 1];
		if (bv_time_format_rfc3339(now, bv_time_now()) == 0)
			bv_lock_set_string(&res.lock->generated_at, now);
		res.manifests = bv_xcalloc(n + 1, sizeof(*res.manifests));
		for (size_t i = 0; i < n; i++)
			if (manifests[i])
				res.manifests[res.n_manifests++] = TAKE_PTR(manifests[i]);
	}
	for (size_t i = 0; i < n; i++)
		bv_manifest_free(manifests[i]);
	*out = res;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		bv_manifest_free(manifests[i]);
	bv_lockops_result_release(&res);
	return r;
}

/* ---- the transaction ---- */

void bv_lockops_txn_release(struct bv_lockops_txn *txn)
{
	bv_project_free(txn->project);
	bv_lockfile_free(txn->lock);
	free(txn->lock_path);
	bv_project_unlock(txn->project_lock);
	memset(txn, 0, sizeof(*txn));
}

int bv_lockops_open(struct bv_lockops_txn *txn, const char *root, bool lock,
		    const struct bv_project_lock_options *o, struct bv_error **err)
{
	struct bv_lockops_txn t = {0};
	_cleanup_(bv_error_freep) struct bv_error *local = NULL;
	int r;
	/* the lock comes first: what is read after it cannot change until it is released */
	if (lock && (r = bv_project_lock(&t.project_lock, root, o, err)) < 0)
		return r;
	r = bv_project_load(&t.project, root, err);
	if (r < 0)
		goto fail;
	t.lock_path = bv_path_join(t.project->root, "bv.lock");
	r = bv_lockfile_load(&t.lock, t.lock_path, &local);
	if (r == BV_ENOTFOUND) {
		/* a project without bv.lock yet: the caller decides whether that is an error */
		bv_error_free(TAKE_PTR(local));
	} else if (r < 0) {
		if (err && !*err)
			*err = TAKE_PTR(local);
		goto fail;
	}
	*txn = t;
	return 0;
fail:
	bv_lockops_txn_release(&t);
	return r;
}

int bv_lockops_txn_lock(struct bv_lockops_txn *txn, const struct bv_project_lock_options *o,
			struct bv_error **err)
{
	struct bv_lockfile *fresh = NULL;
	int r;
	if (!txn->project_lock &&
	    (r = bv_project_lock(&txn->project_lock, txn->project->root, o, err)) < 0)
		return r;
	/* another bv may have written bv.lock before the lock was granted */
	r = bv_lockfile_load(&fresh, txn->lock_path, err);
	if (r < 0)
		return r;
	bv_lockfile_free(txn->lock);
	txn->lock = fresh;
	return 0;
}

int bv_lockops_commit(const struct bv_lockops_txn *txn, const struct bv_lockops_result *res,
		      struct bv_error **err)
{
	const struct bv_project *p = res->project ? res->project : txn->project;
	int r;
	if (!txn->project_lock)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "cannot write the project in '%s' without its lock",
				     txn->project->root);
	if (res->lock) {
		const struct bv_lock_binary *b = bv_lockops_unallowed_shadow(res->lock, p);
		if (b)
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"bv.lock makes '%s' of tool '%s' replace the system command in bv "
				"exec and bv shell, and bv.toml does not allow it",
				b->binary, b->tool);
	}
	if (res->toml_text && (r = bv_project_save_text(txn->project, res->toml_text, err)) < 0)
		return r;
	if (res->lock && ((r = bv_lockfile_save(res->lock, txn->lock_path, err)) < 0 ||
			  (r = bv_shims_write(txn->project->root, res->lock, err)) < 0))
		return r;
	return 0;
}
