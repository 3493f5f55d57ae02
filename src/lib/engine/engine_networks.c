/*
 * engine_networks.c - the typed Engine API for networks (see engine-internal.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <jansson.h>

#include "lib/engine/engine-internal.h"
#include "util/cleanup.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

static char *network_path(const char *name, const char *rest)
{
	_cleanup_free_ char *ename = bv_url_escape(name, NULL);
	return bv_xasprintf("/networks/%s%s", ename, rest);
}

int bv_engine_network_inspect(json_t **out, struct bv_engine *e, const char *name,
			      struct bv_error **err)
{
	_cleanup_free_ char *path = network_path(name, "");
	_cleanup_free_ char *what = bv_xasprintf("network '%s'", name);
	return bv_engine_inspect(out, e, path, what, err);
}

int bv_engine_network_create(struct bv_engine *e, const char *name, json_t *labels,
			     struct bv_error **err)
{
	json_t *body = json_pack("{s:s, s:s, s:b, s:O}", "Name", name, "Driver", "bridge",
				 "CheckDuplicate", 1, "Labels", labels);
	_cleanup_free_ char *what = bv_xasprintf("network '%s'", name);
	int r;
	if (!body)
		bv_oom();
	r = bv_engine_request(NULL, e, "POST", "/networks/create", body, NULL, "create", what, err);
	json_decref(body);
	return r;
}

int bv_engine_network_remove(struct bv_engine *e, const char *name, struct bv_error **err)
{
	static const long ok[] = {404, 0}; /* gone already */
	_cleanup_free_ char *path = network_path(name, "");
	_cleanup_free_ char *what = bv_xasprintf("network '%s'", name);
	return bv_engine_request(NULL, e, "DELETE", path, NULL, ok, "remove", what, err);
}

int bv_engine_network_connect(struct bv_engine *e, const char *name, const char *id,
			      const char *const *aliases, struct bv_error **err)
{
	_cleanup_free_ char *path = network_path(name, "/connect");
	_cleanup_free_ char *what = bv_xasprintf("'%.12s' to network '%s'", id, name);
	json_t *list = json_array();
	json_t *body;
	int r;
	for (; aliases && *aliases; aliases++)
		json_array_append_new(list, json_string(*aliases));
	body = json_pack("{s:s, s:{s:o}}", "Container", id, "EndpointConfig", "Aliases", list);
	if (!body)
		bv_oom();
	r = bv_engine_request(NULL, e, "POST", path, body, NULL, "connect", what, err);
	json_decref(body);
	return r;
}
