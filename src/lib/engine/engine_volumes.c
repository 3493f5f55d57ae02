/*
 * engine_volumes.c - the typed Engine API for volumes (see engine-internal.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <jansson.h>

#include "lib/engine/engine-internal.h"
#include "util/cleanup.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

static char *volume_path(const char *name)
{
	_cleanup_free_ char *ename = bv_url_escape(name, NULL);
	return bv_xasprintf("/volumes/%s", ename);
}

int bv_engine_volume_inspect(json_t **out, struct bv_engine *e, const char *name,
			     struct bv_error **err)
{
	_cleanup_free_ char *path = volume_path(name);
	_cleanup_free_ char *what = bv_xasprintf("volume '%s'", name);
	return bv_engine_inspect(out, e, path, what, err);
}

int bv_engine_volume_create(struct bv_engine *e, const char *name, json_t *labels,
			    struct bv_error **err)
{
	json_t *body =
		json_pack("{s:s, s:s, s:O}", "Name", name, "Driver", "local", "Labels", labels);
	_cleanup_free_ char *what = bv_xasprintf("volume '%s'", name);
	int r;
	if (!body)
		bv_oom();
	r = bv_engine_request(NULL, e, "POST", "/volumes/create", body, NULL, "create", what, err);
	json_decref(body);
	return r;
}

int bv_engine_volume_remove(struct bv_engine *e, const char *name, struct bv_error **err)
{
	static const long ok[] = {404, 0}; /* gone already */
	_cleanup_free_ char *path = volume_path(name);
	_cleanup_free_ char *what = bv_xasprintf("volume '%s'", name);
	return bv_engine_request(NULL, e, "DELETE", path, NULL, ok, "remove", what, err);
}

int bv_engine_volume_list(json_t **out, struct bv_engine *e, const char *const *labels,
			  const char *what, struct bv_error **err)
{
	_cleanup_free_ char *filters = bv_engine_label_filters(labels);
	_cleanup_free_ char *path = bv_xasprintf("/volumes?filters=%s", filters);
	json_t *resp = NULL;
	json_t *list;
	long status = 0;
	int r = bv_engine_call(&status, &resp, e, "GET", path, NULL, err);
	if (r < 0)
		return r;
	/* {"Volumes": [...] or null, "Warnings": ...} */
	list = json_object_get(resp, "Volumes");
	if (status != 200 || !json_is_object(resp) ||
	    (list && !json_is_null(list) && !json_is_array(list))) {
		r = bv_engine_fail(err, status >= 400 ? status : 500, resp, "could not list %s",
				   what);
		json_decref(resp);
		return r;
	}
	*out = json_is_array(list) ? json_incref(list) : json_array();
	json_decref(resp);
	return 0;
}
