#include <bv/error.h>
#include <bv/manifest.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/index-internal.h"
#include "lib/model/resolve-internal.h"
#include "lib/model/version-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* "1.0, 1.1 and 1.2" (the last few) for messages. */
static char *list_versions(const struct bv_strv *versions)
{
	struct bv_buf b = BV_BUF_INIT;
	size_t first = versions->n > 8 ? versions->n - 8 : 0;
	if (first)
		bv_buf_puts(&b, "..., ");
	for (size_t i = first; i < versions->n; i++)
		bv_buf_printf(&b, "%s%s", i == first ? "" : ", ", versions->v[i]);
	return bv_buf_detach(&b, NULL);
}

/* The versions of `id` and the best match of `req` (parsed by `parse` when it is NULL). */
static int resolve_version(char **version_out, char **path_out, const struct bv_index *idx,
			   const char *id, const struct bv_version_req *req, bool parse,
			   const char *requirement, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv versions = BV_STRV_INIT;
	struct bv_version_req *own = NULL;
	int best, r;

	r = bv_index_tool_versions(&versions, idx, id, err);
	if (r < 0)
		return r;
	if (parse) {
		r = bv_version_req_parse(&own, requirement ? requirement : "", err);
		if (r < 0)
			return r;
		req = own;
	}
	best = bv_version_req_best(req, (const char *const *)versions.v, versions.n);
	bv_version_req_free(own);
	if (!versions.n) {
		bv_error_setc(err, BV_ENOTFOUND, 0, "tool '%s' has no versions in the registry",
			      id);
		return BV_ENOTFOUND;
	}
	if (best < 0) {
		_cleanup_free_ char *list = list_versions(&versions);
		bv_error_setc(err, BV_ENOTFOUND, 0,
			      "no version of '%s' matches '%s' (the registry has %s)", id,
			      requirement ? requirement : "", list);
		return BV_ENOTFOUND;
	}
	*path_out = bv_index_tool_path(idx, id, versions.v[best]);
	*version_out = bv_xstrdup(versions.v[best]);
	return 0;
}

int bv_resolve_tool_version(char **version_out, char **path_out, const struct bv_index *idx,
			    const char *id, const char *requirement, struct bv_error **err)
{
	return resolve_version(version_out, path_out, idx, id, NULL, true, requirement, err);
}

int bv_resolve_tool_version_req(char **version_out, char **path_out, const struct bv_index *idx,
				const char *id, const struct bv_version_req *req,
				const char *requirement, struct bv_error **err)
{
	return resolve_version(version_out, path_out, idx, id, req, false, requirement, err);
}

int bv_resolve_tool(struct bv_manifest **out, const struct bv_index *idx, const char *id,
		    const char *requirement, const struct bv_types *types, struct bv_error **err)
{
	_cleanup_free_ char *path = NULL, *version = NULL;
	struct bv_manifest *m = NULL;
	int r = bv_resolve_tool_version(&version, &path, idx, id, requirement, err);
	if (r < 0)
		return r;
	r = bv_manifest_load(&m, path, types, err);
	if (r < 0)
		return r;
	if (strcmp(m->id, id) || strcmp(m->version, version)) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "registry manifest '%s' declares %s %s, not %s %s", path, m->id,
				  m->version, id, version);
		bv_manifest_free(m);
		return r;
	}
	*out = m;
	return 0;
}

int bv_resolve_dataset(struct bv_dataset **out, const struct bv_index *idx, const char *id,
		       const char *version, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv versions = BV_STRV_INIT;
	_cleanup_free_ char *path = NULL;
	struct bv_dataset *d = NULL;
	const char *chosen;
	int r = bv_index_data_versions(&versions, idx, id, err);
	if (r < 0)
		return r;
	if (!versions.n)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "dataset '%s' has no versions", id);
	/* Calendar versions (2024_01) are versions too: upstream dropped them (bug). */
	chosen = versions.v[versions.n - 1];
	if (version && version[0]) {
		if (!bv_strv_contains(&versions, version)) {
			_cleanup_free_ char *list = list_versions(&versions);
			return bv_error_setc(
				err, BV_ENOTFOUND, 0,
				"dataset '%s' has no version '%s' (the registry has %s)", id,
				version, list);
		}
		chosen = version;
	}
	path = bv_index_data_path(idx, id, chosen);
	r = bv_dataset_load(&d, path, err);
	if (r < 0)
		return r;
	if (strcmp(d->id, id) || strcmp(d->version, chosen)) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "registry dataset '%s' declares %s %s, not %s %s", path, d->id,
				  d->version, id, chosen);
		bv_dataset_free(d);
		return r;
	}
	*out = d;
	return 0;
}
