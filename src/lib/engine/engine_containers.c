/*
 * engine_containers.c - the typed Engine API for containers and execs (see
 * engine-internal.h, whose table of success policies this file implements).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "lib/engine/engine-internal.h"
#include "util/cleanup.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* "/containers/<escaped id>" + `rest`. */
static char *container_path(const char *id, const char *rest)
{
	_cleanup_free_ char *eid = bv_url_escape(id, NULL);
	return bv_xasprintf("/containers/%s%s", eid, rest);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int bv_engine_container_create(char **id_out, struct bv_engine *e, const char *name, json_t *body,
			       const char *what, struct bv_error **err)
{
	_cleanup_free_ char *ename = name ? bv_url_escape(name, NULL) : NULL;
	_cleanup_free_ char *path = name ? bv_xasprintf("/containers/create?name=%s", ename)
					 : bv_xstrdup("/containers/create");
	json_t *resp = NULL;
	long status = 0;
	int r = bv_engine_call(&status, &resp, e, "POST", path, body, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not create %s", what);
	if (status == 409) {
		/* the name is taken: creating is how bv claims a name without racing */
		json_decref(resp);
		return bv_error_setc(err, BV_EEXISTS, 0, "%s exists already", what);
	}
	if (status >= 200 && status < 300 && !jstr(resp, "Id")) {
		json_decref(resp);
		return bv_error_set(err, "could not create %s: the engine's answer has no Id",
				    what);
	}
	if (status != 201) {
		r = bv_engine_fail(err, status >= 400 ? status : 500, resp, "could not create %s",
				   what);
		json_decref(resp);
		return r;
	}
	*id_out = bv_xstrdup(jstr(resp, "Id"));
	json_decref(resp);
	return 0;
}

int bv_engine_container_start(struct bv_engine *e, const char *id, const char *what,
			      struct bv_error **err)
{
	static const long ok[] = {304, 0}; /* running already */
	_cleanup_free_ char *path = container_path(id, "/start");
	return bv_engine_request(NULL, e, "POST", path, NULL, ok, "start", what, err);
}

int bv_engine_container_stop(struct bv_engine *e, const char *id, int timeout_s, const char *what,
			     struct bv_error **err)
{
	static const long ok[] = {304, 404, 0}; /* stopped already, gone */
	_cleanup_free_ char *rest = bv_xasprintf("/stop?t=%d", timeout_s);
	_cleanup_free_ char *path = container_path(id, rest);
	/* the engine answers once the container stopped: after up to timeout_s, then SIGKILL */
	return bv_engine_request_within(NULL, e, "POST", path, NULL, ok, "stop", what,
					BV_ENGINE_WAIT_SHORT, (long)timeout_s * 1000, err);
}

int bv_engine_container_restart(struct bv_engine *e, const char *id, int timeout_s,
				const char *what, struct bv_error **err)
{
	_cleanup_free_ char *rest = bv_xasprintf("/restart?t=%d", timeout_s);
	_cleanup_free_ char *path = container_path(id, rest);
	return bv_engine_request_within(NULL, e, "POST", path, NULL, NULL, "restart", what,
					BV_ENGINE_WAIT_SHORT, (long)timeout_s * 1000, err);
}

int bv_engine_container_kill(struct bv_engine *e, const char *id, const char *signal,
			     const char *what, struct bv_error **err)
{
	/* 409: it is not running any more, which is what the signal was for */
	static const long ok[] = {404, 409, 0};
	_cleanup_free_ char *esig = bv_url_escape(signal, NULL);
	_cleanup_free_ char *rest = bv_xasprintf("/kill?signal=%s", esig);
	_cleanup_free_ char *path = container_path(id, rest);
	return bv_engine_request(NULL, e, "POST", path, NULL, ok, "signal", what, err);
}

int bv_engine_container_remove(struct bv_engine *e, const char *id, const char *what,
			       struct bv_error **err)
{
	/* 404: gone already; 409: another remove of it is under way */
	static const long ok[] = {404, 409, 0};
	_cleanup_free_ char *path = container_path(id, "?force=1&v=1");
	return bv_engine_request(NULL, e, "DELETE", path, NULL, ok, "remove", what, err);
}

void bv_engine_container_discard(struct bv_engine *e, const char *id)
{
	/* a request of its own, so a fresh short deadline (the failed call's is spent) */
	struct bv_error *ignored = NULL;
	if (bv_engine_container_remove(e, id, "the container", &ignored) < 0)
		bv_error_free(ignored);
}

int bv_engine_container_inspect(json_t **out, struct bv_engine *e, const char *ref,
				struct bv_error **err)
{
	_cleanup_free_ char *path = container_path(ref, "/json");
	_cleanup_free_ char *what = bv_xasprintf("container '%s'", ref);
	json_t *resp = NULL;
	int r = bv_engine_inspect(&resp, e, path, what, err);
	if (r < 0 || !resp) {
		*out = NULL;
		return r;
	}
	if (!jstr(resp, "Id")) {
		json_decref(resp);
		return bv_error_set(err, "could not inspect %s: the engine's answer has no Id",
				    what);
	}
	*out = resp;
	return 0;
}

int bv_engine_container_wait(int *status_out, struct bv_engine *e, const char *id, const char *what,
			     struct bv_error **err)
{
	_cleanup_free_ char *path = container_path(id, "/wait");
	json_t *resp = NULL, *code;
	long status = 0;
	/* the answer comes when the container exits: no deadline */
	int r = bv_engine_call_within(&status, &resp, e, "POST", path, NULL, BV_ENGINE_WAIT_STREAM,
				      0, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not wait for %s", what);
	code = json_object_get(resp, "StatusCode");
	if (status != 200 || !json_is_integer(code))
		r = bv_engine_fail(err, status, resp, "could not wait for %s", what);
	else
		*status_out = (int)json_integer_value(code);
	json_decref(resp);
	return r;
}

/* "filters={"label":[...]}", escaped, for the list endpoints. */
static char *label_filters(const char *const *labels)
{
	json_t *list = json_array();
	json_t *f = json_pack("{s:o}", "label", list);
	_cleanup_free_ char *text = NULL;
	for (; labels && *labels; labels++)
		json_array_append_new(list, json_string(*labels));
	text = json_dumps(f, JSON_COMPACT);
	json_decref(f);
	if (!text)
		bv_oom();
	return bv_url_escape(text, NULL);
}

char *bv_engine_label_filters(const char *const *labels)
{
	return label_filters(labels);
}

int bv_engine_list(json_t **out, struct bv_engine *e, const char *kind, const char *const *labels,
		   const char *what, struct bv_error **err)
{
	_cleanup_free_ char *filters = label_filters(labels);
	/* all=1: stopped containers too (for images it would add intermediate layers) */
	_cleanup_free_ char *path = bv_xasprintf(
		"/%s/json?%sfilters=%s", kind, strcmp(kind, "containers") ? "" : "all=1&", filters);
	json_t *resp = NULL;
	long status = 0;
	int r = bv_engine_call(&status, &resp, e, "GET", path, NULL, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not list %s", what);
	if (status == 200 && !json_is_array(resp)) {
		json_decref(resp);
		return bv_error_set(err, "could not list %s: the engine's answer is not a list",
				    what);
	}
	if (status != 200) {
		r = bv_engine_fail(err, status >= 400 ? status : 500, resp, "could not list %s",
				   what);
		json_decref(resp);
		return r;
	}
	*out = resp;
	return 0;
}

int bv_engine_container_list(json_t **out, struct bv_engine *e, const char *const *labels,
			     const char *what, struct bv_error **err)
{
	return bv_engine_list(out, e, "containers", labels, what, err);
}

int bv_engine_container_logs(struct bv_engine *e, const char *id, const struct bv_engine_logs *o,
			     bv_engine_data_fn on_data, void *payload, struct bv_error **err)
{
	_cleanup_free_ char *rest = NULL, *path = NULL, *tail = NULL;
	json_t *body = NULL;
	long status = 0;
	int r;
	if (o->tail > 0)
		tail = bv_xasprintf("&tail=%d", o->tail);
	rest = bv_xasprintf("/logs?stdout=1&stderr=1%s%s%s", o->follow ? "&follow=1" : "",
			    o->timestamps ? "&timestamps=1" : "", tail ? tail : "");
	path = container_path(id, rest);
	/* a followed log is quiet for as long as the service is: only connecting is bounded */
	r = bv_engine_stream_within(&status, &body, e, "GET", path, NULL, -1, on_data, payload,
				    o->follow ? BV_ENGINE_WAIT_STREAM : BV_ENGINE_WAIT_LONG, err);
	if (r >= 0 && status >= 400)
		r = bv_engine_fail(err, status, body, "could not read the log of '%s'", id);
	json_decref(body);
	return r;
}

int bv_engine_container_attach(struct bv_engine *e, const char *id, bool with_stdin,
			       const struct bv_engine_attach_options *o, struct bv_error **err)
{
	_cleanup_free_ char *path =
		container_path(id, with_stdin ? "/attach?stream=1&stdout=1&stderr=1&stdin=1"
					      : "/attach?stream=1&stdout=1&stderr=1");
	return bv_engine_attach_with(e, path, NULL, o, err);
}

static int discard(const char *data, size_t len, void *payload)
{
	(void)data;
	(void)len;
	(void)payload;
	return 0;
}

int bv_engine_container_put_archive(struct bv_engine *e, const char *id, const char *target,
				    int tar_fd, const char *what, struct bv_error **err)
{
	_cleanup_free_ char *etarget = bv_url_escape(target, NULL);
	_cleanup_free_ char *rest = bv_xasprintf("/archive?path=%s", etarget);
	_cleanup_free_ char *path = container_path(id, rest);
	json_t *body = NULL;
	long status = 0;
	int r = bv_engine_stream_within(&status, &body, e, "PUT", path, "application/x-tar", tar_fd,
					discard, NULL, BV_ENGINE_WAIT_LONG, err);
	if (r < 0)
		r = bv_error_wrap(err, r, "could not copy %s", what);
	else if (status >= 400)
		r = bv_engine_fail(err, status, body, "could not copy %s", what);
	json_decref(body);
	return r;
}

/*
 * Podman schedules healthchecks with systemd timers, so where there is no systemd its API
 * service never runs one; this is the endpoint behind `podman healthcheck run`, which records
 * the result in State.Health as the timers would have.  409: not running, or no healthcheck,
 * which the next inspect reports.
 */
int bv_engine_container_healthcheck(struct bv_engine *e, const char *id, struct bv_error **err)
{
	static const long ok[] = {409, 0};
	_cleanup_free_ char *eid = bv_url_escape(id, NULL);
	_cleanup_free_ char *path = bv_xasprintf("/libpod/containers/%s/healthcheck", eid);
	_cleanup_free_ char *what = bv_xasprintf("the healthcheck of '%s'", id);
	return bv_engine_request(NULL, e, "GET", path, NULL, ok, "run", what, err);
}

/* ---- Execs ---- */

int bv_engine_exec_create(char **id_out, struct bv_engine *e, const char *container_id,
			  json_t *body, const char *what, struct bv_error **err)
{
	_cleanup_free_ char *path = container_path(container_id, "/exec");
	json_t *resp = NULL;
	long status = 0;
	int r;
	for (int attempt = 0;; attempt++) {
		r = bv_engine_call(&status, &resp, e, "POST", path, body, err);
		if (r < 0 || status != 409 || attempt)
			break;
		/* Not running (stopped by hand, or the daemon restarted): start it, once. */
		json_decref(resp);
		resp = NULL;
		{
			_cleanup_free_ char *cwhat =
				bv_xasprintf("container '%.12s'", container_id);
			r = bv_engine_container_start(e, container_id, cwhat, err);
		}
		if (r < 0)
			break;
	}
	if (r < 0) {
		json_decref(resp);
		return bv_error_wrap(err, r, "could not run a command in %s", what);
	}
	if (status < 200 || status >= 300 || !jstr(resp, "Id")) {
		r = bv_engine_fail(err, status >= 400 ? status : 500, resp,
				   "could not run a command in %s", what);
		json_decref(resp);
		return r;
	}
	*id_out = bv_xstrdup(jstr(resp, "Id"));
	json_decref(resp);
	return 0;
}

int bv_engine_exec_start(struct bv_engine *e, const char *exec_id,
			 const struct bv_engine_attach_options *o, struct bv_error **err)
{
	_cleanup_free_ char *eid = bv_url_escape(exec_id, NULL);
	_cleanup_free_ char *path = bv_xasprintf("/exec/%s/start", eid);
	json_t *start = json_pack("{s:b, s:b}", "Detach", 0, "Tty", 0);
	int r;
	if (!start)
		bv_oom();
	r = bv_engine_attach_with(e, path, start, o, err);
	json_decref(start);
	return r;
}

int bv_engine_exec_inspect(json_t **out, struct bv_engine *e, const char *exec_id,
			   struct bv_error **err)
{
	_cleanup_free_ char *eid = bv_url_escape(exec_id, NULL);
	_cleanup_free_ char *path = bv_xasprintf("/exec/%s/json", eid);
	_cleanup_free_ char *what = bv_xasprintf("exec '%.12s'", exec_id);
	return bv_engine_request(out, e, "GET", path, NULL, NULL, "inspect", what, err);
}
