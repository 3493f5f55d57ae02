/*
 * engine_images.c - the typed Engine API for images: inspect, remove, list, commit, build,
 * and the one ensure-and-verify every caller uses (see engine-internal.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <jansson.h>
#include <string.h>

#include "lib/engine/engine-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* "/images/<reference>" + rest: a reference keeps its '/', ':' and '@' (the engine's router
 * takes the whole rest of the path as the name). */
static char *image_path(const char *ref, const char *rest)
{
	_cleanup_free_ char *eref = bv_url_escape(ref, BV_URL_KEEP_REF);
	return bv_xasprintf("/images/%s%s", eref, rest);
}

int bv_engine_image_inspect(json_t **out, struct bv_engine *e, const char *ref,
			    struct bv_error **err)
{
	_cleanup_free_ char *path = image_path(ref, "/json");
	_cleanup_free_ char *what = bv_xasprintf("image '%s'", ref);
	json_t *resp = NULL;
	int r = bv_engine_inspect(&resp, e, path, what, err);
	if (r < 0 || !resp) {
		*out = NULL;
		return r;
	}
	if (!jstr(resp, "Id")) {
		json_decref(resp);
		return bv_error_setc(err, BV_ERR, 0,
				     "the engine described image '%s' without an Id", ref);
	}
	*out = resp;
	return 0;
}

int bv_engine_image_remove(struct bv_engine *e, const char *ref, bool force, struct bv_error **err)
{
	static const long ok[] = {404, 0}; /* gone already */
	_cleanup_free_ char *path = image_path(ref, force ? "?force=1" : "");
	_cleanup_free_ char *what = bv_xasprintf("image '%s'", ref);
	return bv_engine_request(NULL, e, "DELETE", path, NULL, ok, "remove", what, err);
}

int bv_engine_image_list(json_t **out, struct bv_engine *e, const char *const *labels,
			 const char *what, struct bv_error **err)
{
	return bv_engine_list(out, e, "images", labels, what, err);
}

/*
 * dockerd takes the labels from the commit body; Podman's compat commit ignores the body and
 * reads one "LABEL k=v" change per label, stripping the quotes around the value and nothing
 * else (dockerd would parse the value as a shell word, hence the body for it).
 */
int bv_engine_image_commit(struct bv_engine *e, const char *id, const char *repo, const char *tag,
			   json_t *labels, struct bv_error **err)
{
	_cleanup_free_ char *eid = bv_url_escape(id, NULL);
	_cleanup_free_ char *erepo = bv_url_escape(repo, NULL), *etag = bv_url_escape(tag, NULL);
	_cleanup_free_ char *what = bv_xasprintf("'%s:%s'", repo, tag);
	_cleanup_buf_ struct bv_buf path = BV_BUF_INIT;
	const char *k;
	json_t *v, *body;
	int r;
	bv_buf_printf(&path, "/commit?container=%s&repo=%s&tag=%s&pause=1", eid, erepo, etag);
	if (bv_engine_is_podman(e)) {
		json_object_foreach(labels, k, v)
		{
			_cleanup_free_ char *change =
				bv_xasprintf("LABEL %s=\"%s\"", k,
					     json_string_value(v) ? json_string_value(v) : "");
			_cleanup_free_ char *echange = bv_url_escape(change, NULL);
			bv_buf_printf(&path, "&changes=%s", echange);
		}
	}
	body = json_pack("{s:O}", "Labels", labels);
	if (!body)
		bv_oom();
	/* a commit answers only when the image is written: no byte moves until then */
	r = bv_engine_request_within(NULL, e, "POST", path.buf, body, NULL, "commit", what,
				     BV_ENGINE_WAIT_LONG, 0, err);
	json_decref(body);
	return r;
}

int bv_engine_image_build(struct bv_engine *e, const struct bv_engine_build *o, int context_fd,
			  int (*on_event)(json_t *event, void *payload), void *payload,
			  const char *what, struct bv_error **err)
{
	struct bv_engine_progress p = {.on_event = on_event, .payload = payload};
	_cleanup_free_ char *ltext = json_dumps(o->labels, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *etag = bv_url_escape(o->tag, NULL);
	_cleanup_free_ char *edf = bv_url_escape(o->dockerfile, NULL);
	_cleanup_free_ char *elabels = NULL, *path = NULL;
	struct bv_buf extra = BV_BUF_INIT;
	json_t *body = NULL;
	long status = 0;
	int r;
	if (!ltext)
		bv_oom();
	elabels = bv_url_escape(ltext, NULL);
	if (o->buildargs && json_object_size(o->buildargs)) {
		_cleanup_free_ char *atext =
			json_dumps(o->buildargs, JSON_COMPACT | JSON_SORT_KEYS);
		_cleanup_free_ char *eargs = NULL;
		if (!atext)
			bv_oom();
		eargs = bv_url_escape(atext, NULL);
		bv_buf_printf(&extra, "&buildargs=%s", eargs);
	}
	if (o->target) {
		_cleanup_free_ char *etarget = bv_url_escape(o->target, NULL);
		bv_buf_printf(&extra, "&target=%s", etarget);
	}
	if (o->platform) {
		_cleanup_free_ char *eplatform = bv_url_escape(o->platform, NULL);
		bv_buf_printf(&extra, "&platform=%s", eplatform);
	}
	/* version=2 is BuildKit: dockerd serves the request's tar body to it as the context, so
	 * no session (gRPC over a hijacked connection) is needed */
	if (o->buildkit)
		bv_buf_puts(&extra, "&version=2");
	path = bv_xasprintf("/build?t=%s&dockerfile=%s&labels=%s&rm=1&forcerm=1%s", etag, edf,
			    elabels, extra.len ? extra.buf : "");
	bv_buf_release(&extra);
	r = bv_engine_stream_within(&status, &body, e, "POST", path, "application/x-tar",
				    context_fd, bv_engine_progress_feed, &p, BV_ENGINE_WAIT_LONG,
				    err);
	if (r < 0)
		r = bv_error_wrap(err, r, "could not build %s", what);
	else if (status >= 400)
		r = bv_engine_fail(err, status, body, "could not build %s", what);
	else if (r >= 0 && (r = bv_engine_progress_finish(&p)) >= 0 && p.error)
		r = bv_error_setc(err, BV_ERR, 0, "could not build %s: %s", what, p.error);
	json_decref(body);
	bv_engine_progress_release(&p);
	return r;
}

bool bv_engine_has_buildkit(const struct bv_engine *e)
{
	unsigned major = 0, minor = 0;
	const char *v = bv_engine_api_version(e);
	const char *dot = v ? strchr(v, '.') : NULL;
	_cleanup_free_ char *maj = dot ? bv_xstrndup(v, (size_t)(dot - v)) : NULL;
	if (bv_engine_is_podman(e) || !maj || bv_parse_uint(&major, maj) < 0 ||
	    bv_parse_uint(&minor, dot + 1) < 0)
		return false;
	return major > 1 || (major == 1 && minor >= 39);
}

/* ---- Ensure and verify ---- */

int bv_engine_image_find(json_t **out, struct bv_engine *e, const struct bv_engine_image_want *w,
			 struct bv_error **err)
{
	for (const char *const *n = w->names; n && *n; n++) {
		json_t *img = NULL;
		int r = bv_engine_image_inspect(&img, e, *n, err);
		if (r < 0)
			return r;
		if (!img)
			continue;
		if (w->digest &&
		    !bv_engine_repo_digests_match(json_object_get(img, "RepoDigests"), w->digest)) {
			json_decref(img);
			return bv_error_set(err,
					    "digest mismatch for '%s': the engine's copy of '%s' "
					    "does not carry the locked digest %s",
					    w->subject, *n, w->digest);
		}
		*out = img;
		return 0;
	}
	*out = NULL;
	return 0;
}

int bv_engine_image_ensure(json_t **out, bool *pulled_out, struct bv_engine *e,
			   const struct bv_engine_image_want *w, struct bv_error **err)
{
	json_t *img = NULL;
	const char *last = NULL;
	int r = bv_engine_image_find(&img, e, w, err);
	if (r < 0)
		return r;
	if (img) {
		*out = img;
		if (pulled_out)
			*pulled_out = false;
		return 0;
	}
	r = bv_engine_image_pull(e, w->repo, w->tag, w->on_event, w->payload, w->pull_what, err);
	if (r < 0)
		return r;
	r = bv_engine_image_find(&img, e, w, err);
	if (r < 0)
		return r;
	for (const char *const *n = w->names; n && *n; n++)
		last = *n;
	if (!img && w->digest)
		return bv_error_set(err,
				    "digest mismatch for '%s': the engine pulled '%s' but has no "
				    "image with the locked digest %s",
				    w->subject, w->repo, w->digest);
	if (!img)
		return bv_error_setc(err, BV_ERR, 0, "the engine pulled '%s' but does not have it",
				     last ? last : w->repo);
	*out = img;
	if (pulled_out)
		*pulled_out = true;
	return 0;
}
