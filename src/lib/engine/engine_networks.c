/*
 * engine_networks.c - the typed Engine API for networks (see engine-internal.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <jansson.h>
#include <string.h>

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

int bv_engine_network_create(char **id_out, struct bv_engine *e, const char *name, json_t *labels,
			     struct bv_error **err)
{
	json_t *body = json_pack("{s:s, s:s, s:b, s:O}", "Name", name, "Driver", "bridge",
				 "CheckDuplicate", 1, "Labels", labels);
	_cleanup_free_ char *what = bv_xasprintf("network '%s'", name);
	json_t *resp = NULL;
	const char *id;
	int r;
	if (!body)
		bv_oom();
	r = bv_engine_request(&resp, e, "POST", "/networks/create", body, NULL, "create", what,
			      err);
	json_decref(body);
	if (r < 0)
		return r;
	id = json_string_value(json_object_get(resp, "Id"));
	if (!id || !*id) {
		r = bv_engine_fail(err, 500, resp, "could not create %s: no id in the answer",
				   what);
		json_decref(resp);
		return r;
	}
	if (id_out)
		*id_out = bv_xstrdup(id);
	json_decref(resp);
	return 0;
}

int bv_engine_network_list(json_t **out, struct bv_engine *e, const char *name,
			   const char *const *labels, struct bv_error **err)
{
	json_t *filters = json_object(), *list = json_array();
	_cleanup_free_ char *text = NULL, *etext = NULL, *path = NULL;
	_cleanup_free_ char *what =
		name ? bv_xasprintf("the networks named '%s'", name) : bv_xstrdup("networks");
	json_t *resp = NULL;
	long status = 0;
	int r;
	for (; labels && *labels; labels++)
		json_array_append_new(list, json_string(*labels));
	if (json_array_size(list))
		json_object_set_new(filters, "label", list);
	else
		json_decref(list);
	if (name)
		json_object_set_new(filters, "name", json_pack("[s]", name));
	text = json_dumps(filters, JSON_COMPACT);
	json_decref(filters);
	if (!text)
		bv_oom();
	etext = bv_url_escape(text, NULL);
	/* GET /networks, not /networks/json: that would inspect a network called "json" */
	path = bv_xasprintf("/networks?filters=%s", etext);
	r = bv_engine_call(&status, &resp, e, "GET", path, NULL, err);
	if (r < 0)
		return r;
	if (status != 200 || !json_is_array(resp)) {
		r = bv_engine_fail(err, status >= 400 ? status : 500, resp, "could not list %s",
				   what);
		json_decref(resp);
		return r;
	}
	if (name) {
		/* the engines' name filter matches substrings: keep the exact name only */
		size_t i = 0;
		while (i < json_array_size(resp)) {
			const char *n =
				json_string_value(json_object_get(json_array_get(resp, i), "Name"));
			if (n && !strcmp(n, name))
				i++;
			else
				json_array_remove(resp, i);
		}
	}
	*out = resp;
	return 0;
}

int bv_engine_network_remove(struct bv_engine *e, const char *name, struct bv_error **err)
{
	static const long ok[] = {404, 0}; /* gone already */
	_cleanup_free_ char *path = network_path(name, "");
	_cleanup_free_ char *what = bv_xasprintf("network '%s'", name);
	return bv_engine_request(NULL, e, "DELETE", path, NULL, ok, "remove", what, err);
}

int bv_engine_network_disconnect(struct bv_engine *e, const char *network, const char *container,
				 struct bv_error **err)
{
	static const long ok[] = {404, 0}; /* the container or the network is gone */
	_cleanup_free_ char *path = network_path(network, "/disconnect");
	_cleanup_free_ char *what =
		bv_xasprintf("'%.12s' from network '%.12s'", container, network);
	json_t *body = json_pack("{s:s, s:b}", "Container", container, "Force", 1);
	int r;
	if (!body)
		bv_oom();
	r = bv_engine_request(NULL, e, "POST", path, body, ok, "disconnect", what, err);
	json_decref(body);
	return r;
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
