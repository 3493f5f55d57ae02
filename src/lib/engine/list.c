/*
 * list.c - listing a project's sessions and the engine's snapshots (see bv/session.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/session.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/engine/session-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* ---- Listing ---- */

void bv_session_infos_free(struct bv_session_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].container);
		free(v[i].id);
		free(v[i].image);
		free(v[i].tool);
		free(v[i].state);
	}
	free(v);
}

static int info_cmp(const void *a, const void *b)
{
	const struct bv_session_info *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static char *dup_or_null(const char *s)
{
	return s ? bv_xstrdup(s) : NULL;
}

int bv_session_list(struct bv_session_info **out, size_t *n_out, struct bv_session_ctx *s,
		    struct bv_error **err)
{
	_cleanup_free_ char *project_label = bv_xasprintf(BV_LABEL_PROJECT "=%s", s->root);
	const char *labels_filter[] = {BV_LABEL_SESSION, project_label, NULL};
	struct bv_session_info *v = NULL;
	size_t n = 0, alloc = 0, i;
	json_t *resp = NULL;
	int r = bv_engine_container_list(&resp, s->e, labels_filter, "the sessions", err);
	if (r < 0)
		return r;
	for (i = 0; i < json_array_size(resp); i++) {
		json_t *c = json_array_get(resp, i), *labels = json_object_get(c, "Labels");
		const char *name = bv_session_label(labels, BV_LABEL_SESSION);
		const char *project = bv_session_label(labels, BV_LABEL_PROJECT);
		json_t *names = json_object_get(c, "Names");
		const char *cname = json_string_value(json_array_get(names, 0));
		if (!name || !project || strcmp(project, s->root))
			continue;
		BV_GROW(v, alloc, n + 1);
		memset(&v[n], 0, sizeof(v[n]));
		v[n].name = bv_xstrdup(name);
		v[n].container = bv_xstrdup(cname ? cname + (cname[0] == '/') : "");
		v[n].id = bv_xstrdup(bv_session_jstr(c, "Id") ? bv_session_jstr(c, "Id") : "");
		v[n].image = bv_xstrdup(bv_session_label(labels, BV_LABEL_IMAGE)
						? bv_session_label(labels, BV_LABEL_IMAGE)
					: bv_session_jstr(c, "Image") ? bv_session_jstr(c, "Image")
								      : "");
		v[n].tool = dup_or_null(bv_session_label(labels, BV_LABEL_TOOL));
		v[n].state = bv_xstrdup(bv_session_jstr(c, "State") ? bv_session_jstr(c, "State")
								    : "unknown");
		v[n].created = json_integer_value(json_object_get(c, "Created"));
		n++;
	}
	json_decref(resp);
	if (n > 1)
		qsort(v, n, sizeof(*v), info_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

void bv_snapshot_infos_free(struct bv_snapshot_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].image);
		free(v[i].id);
		free(v[i].session);
		free(v[i].project);
		free(v[i].key);
	}
	free(v);
}

static int snap_cmp(const void *a, const void *b)
{
	const struct bv_snapshot_info *x = a, *y = b;
	return strcmp(x->image, y->image);
}

/* "docker.io/library/bv-snapshot:x" and Podman's "localhost/bv-snapshot:x" as one writes them. */
static const char *short_name(const char *tag)
{
	if (bv_str_has_prefix(tag, "docker.io/library/"))
		return tag + strlen("docker.io/library/");
	if (bv_str_has_prefix(tag, "localhost/"))
		return tag + strlen("localhost/");
	return tag;
}

int bv_session_snapshots(struct bv_snapshot_info **out, size_t *n_out, struct bv_session_ctx *s,
			 struct bv_error **err)
{
	static const char *const labels_filter[] = {BV_LABEL_SNAPSHOT "=1", NULL};
	struct bv_snapshot_info *v = NULL;
	size_t n = 0, alloc = 0;
	json_t *resp = NULL;
	int r = bv_engine_image_list(&resp, s->e, labels_filter, "the snapshots", err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < json_array_size(resp); i++) {
		json_t *img = json_array_get(resp, i), *labels = json_object_get(img, "Labels");
		json_t *tags = json_object_get(img, "RepoTags");
		const char *key = bv_session_label(labels, BV_LABEL_KEY);
		const char *cached = bv_session_label(labels, BV_LABEL_CACHE);
		size_t n_tags = json_array_size(tags);
		if (!bv_session_label(labels, BV_LABEL_SNAPSHOT))
			continue;
		/* One row per tag: a snapshot re-tagged by hand shows under each name. */
		for (size_t t = 0; t < (n_tags ? n_tags : 1); t++) {
			const char *tag = json_string_value(json_array_get(tags, t));
			if (tag && !strcmp(tag, "<none>:<none>"))
				tag = NULL;
			BV_GROW(v, alloc, n + 1);
			memset(&v[n], 0, sizeof(v[n]));
			v[n].id = bv_xstrdup(bv_session_jstr(img, "Id") ? bv_session_jstr(img, "Id")
									: "");
			v[n].image = bv_xstrdup(tag ? short_name(tag) : v[n].id);
			v[n].session = dup_or_null(bv_session_label(labels, BV_LABEL_SESSION));
			v[n].project = dup_or_null(bv_session_label(labels, BV_LABEL_PROJECT));
			v[n].key = key && *key ? bv_xstrdup(key) : NULL;
			v[n].cached = cached && !strcmp(cached, "1");
			v[n].created = json_integer_value(json_object_get(img, "Created"));
			v[n].size = json_integer_value(json_object_get(img, "Size"));
			n++;
		}
	}
	json_decref(resp);
	if (n > 1)
		qsort(v, n, sizeof(*v), snap_cmp);
	*out = v;
	*n_out = n;
	return 0;
}
