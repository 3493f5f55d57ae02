/*
 * snapshot.c - session snapshots: commit, snapshot, restore and removal (see bv/session.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/session.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/engine/session-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/cleanup.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* ---- Snapshots ---- */

int bv_session_commit(struct bv_engine *e, const char *id, const char *repo, const char *tag,
		      json_t *labels, struct bv_error **err)
{
	return bv_engine_image_commit(e, id, repo, tag, labels, err);
}

json_t *bv_session_snapshot_labels(struct bv_session_ctx *s, const char *session, const char *key,
				   bool cached)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", BV_LABEL_SNAPSHOT, "1", BV_LABEL_SESSION,
			 session, BV_LABEL_PROJECT, s->root, BV_LABEL_KEY, key ? key : "",
			 BV_LABEL_CACHE, cached ? "1" : "");
}

/* Splits "repo[:tag]" (a tag only after the last '/'), checking it is an image name. */
static int split_key(const char *key, char **repo_out, char **tag_out, struct bv_error **err)
{
	struct bv_imageref ref = {0};
	const char *slash = strrchr(key, '/');
	const char *colon = strrchr(slash ? slash : key, ':');
	int r = bv_imageref_parse(&ref, key, err);
	if (r < 0)
		return bv_error_wrap(err, r, "invalid snapshot key '%s'", key);
	bv_imageref_release(&ref);
	if (strchr(key, '@'))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid snapshot key '%s': a key cannot name a digest", key);
	if (colon) {
		*repo_out = bv_xstrndup(key, (size_t)(colon - key));
		*tag_out = bv_xstrdup(colon + 1);
	} else {
		*repo_out = bv_xstrdup(key);
		*tag_out = bv_xstrdup("latest");
	}
	return 0;
}

int bv_session_snapshot(char **image_out, struct bv_session_ctx *s, const char *name,
			const char *key, struct bv_error **err)
{
	_cleanup_free_ char *repo = NULL, *tag = NULL;
	json_t *c = NULL, *labels;
	const char *id;
	int r;
	if (key) {
		r = split_key(key, &repo, &tag, err);
		if (r < 0)
			return r;
	}
	r = bv_session_find(&c, s, name, err);
	if (r < 0)
		return r;
	id = bv_session_jstr(c, "Id");
	if (!key) {
		struct timespec ts;
		char *ref;
		clock_gettime(CLOCK_REALTIME, &ts);
		ref = bv_session_snapshot_ref(
			id, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
			(long)getpid());
		repo = bv_xstrdup(BV_SESSION_SNAPSHOT_REPO);
		tag = bv_xstrdup(strchr(ref, ':') + 1);
		free(ref);
	}
	labels = bv_session_snapshot_labels(s, name, key, false);
	r = bv_session_commit(s->e, id, repo, tag, labels, err);
	json_decref(labels);
	json_decref(c);
	if (r < 0 && !key) {
		/* The engine may finish a commit whose answer bv gave up on; the tag is this
		 * call's own, so nobody else's image goes with it.  A --key tag may be the
		 * previous snapshot of that name, which stays. */
		_cleanup_free_ char *ref = bv_xasprintf("%s:%s", repo, tag);
		struct bv_error *ignored = NULL;
		if (bv_engine_image_remove(s->e, ref, true, &ignored) < 0)
			bv_error_free(ignored);
	}
	if (r < 0)
		return bv_error_wrap(err, r, "could not snapshot session '%s'", name);
	*image_out = bv_xasprintf("%s:%s", repo, tag);
	return 0;
}

/* The labels a session's container carries over when it is recreated from an image. */
json_t *bv_session_carried_labels(json_t *container_or_image_config)
{
	json_t *labels = json_object_get(container_or_image_config, "Labels");
	json_t *out = json_object();
	static const char *const keep[] = {BV_LABEL_TOOL, BV_LABEL_IMAGE, NULL};
	for (size_t i = 0; keep[i]; i++) {
		const char *v = bv_session_label(labels, keep[i]);
		if (v)
			json_object_set_new(out, keep[i], json_string(v));
	}
	return out;
}

int bv_session_restore(char **name_out, struct bv_session_ctx *s, const char *snapshot,
		       const char *name, struct bv_error **err)
{
	json_t *img = NULL, *labels;
	struct bv_session_create c = {0};
	const char *session;
	int r = bv_session_inspect_image(&img, s->e, snapshot, err);
	if (r == BV_ENOTFOUND)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "no snapshot '%s'", snapshot);
	if (r < 0)
		return r;
	session = name ? name
		       : bv_session_label(json_object_get(json_object_get(img, "Config"), "Labels"),
					  BV_LABEL_SESSION);
	if (!session || !*session) {
		json_decref(img);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "snapshot '%s' names no session; give one with --name",
				     snapshot);
	}
	r = bv_session_check_name(session, err);
	if (r < 0) {
		json_decref(img);
		return r;
	}
	labels = bv_session_carried_labels(json_object_get(img, "Config"));
	json_object_set_new(labels, BV_LABEL_RESTORED_FROM, json_string(snapshot));
	c.session = session;
	c.image_id = bv_session_jstr(img, "Id");
	c.labels = labels;
	r = bv_session_create_container(NULL, s, &c, err);
	json_decref(labels);
	if (r >= 0)
		*name_out = bv_xstrdup(session);
	json_decref(img);
	return r;
}

static int remove_image(struct bv_engine *e, const char *ref, struct bv_error **err)
{
	return bv_engine_image_remove(e, ref, true, err);
}

int bv_session_evict_image(const char *image, void *payload, struct bv_error **err)
{
	return remove_image(payload, image, err);
}

/* Drops a removed cached step's image from the cached-step store. */
static int forget_cached(struct bv_session_ctx *s, const char *cache_ref, struct bv_error **err)
{
	char *dir = NULL;
	int r = bv_session_state_dir(&dir, s, err);
	if (r < 0)
		return r;
	r = bv_session_cache_forget(dir, cache_ref, err);
	free(dir);
	return r;
}

/* Whether image labels make it a snapshot of session `session` of this context's project. */
static bool of_session(const struct bv_session_ctx *s, json_t *labels, const char *session)
{
	const char *snap = bv_session_label(labels, BV_LABEL_SNAPSHOT);
	const char *sess = bv_session_label(labels, BV_LABEL_SESSION);
	const char *project = bv_session_label(labels, BV_LABEL_PROJECT);
	return snap && !strcmp(snap, "1") && sess && !strcmp(sess, session) && project &&
	       !strcmp(project, s->root);
}

int bv_session_snapshot_remove(struct bv_session_ctx *s, const char *snapshot, const char *session,
			       struct bv_error **err)
{
	json_t *img = NULL;
	_cleanup_free_ char *cache_ref = NULL;
	json_t *labels;
	const char *cached, *key;
	int r = bv_session_inspect_image(&img, s->e, snapshot, err);
	if (r < 0 && r != BV_ENOTFOUND)
		return r;
	labels = img ? json_object_get(json_object_get(img, "Config"), "Labels") : NULL;
	/* As the seed's engine answers: a snapshot that is not there is an error to report. */
	if (!img || (session && !of_session(s, labels, session))) {
		json_decref(img);
		if (session)
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "no snapshot '%s' in session '%s'", snapshot, session);
		return bv_error_setc(err, BV_ENOTFOUND, 0, "no snapshot '%s'", snapshot);
	}
	cached = bv_session_label(labels, BV_LABEL_CACHE);
	key = bv_session_label(labels, BV_LABEL_KEY);
	if (cached && !strcmp(cached, "1") && key && *key)
		cache_ref = bv_session_cache_ref(key);
	json_decref(img);
	r = remove_image(s->e, snapshot, err);
	if (r < 0 || !cache_ref)
		return r;
	return forget_cached(s, cache_ref, err);
}
