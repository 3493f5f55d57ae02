/*
 * services_engine.c - project services on the Docker Engine API: the project network, image
 * builds and pulls, containers started in dependency order and gated on health, down, ps,
 * logs and restart (see include/bv/services.h).
 *
 * Everything goes through include/bv/engine.h, so dockerd and Podman's service are driven
 * the same way; the one difference handled here is health (Podman never runs healthchecks
 * on its own without systemd, so bv runs them through exec).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/services.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/engine/buildkit.h"
#include "lib/engine/engine-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define DEFAULT_TIMEOUT_NS (120 * UINT64_C(1000000000))
#define POLL_NS            (100 * UINT64_C(1000000)) /* inspect every 100 ms while waiting */
/* ...after a first pause of 10 ms, a quarter longer each time: a healthcheck every 100 ms
 * passes about 100 ms after the start, and a fixed 100 ms poll saw that up to 100 ms late,
 * for each service in turn (bv up of three such services: 25% over the Engine API's floor) */
#define FIRST_POLL_NS (10 * UINT64_C(1000000))
/* Without a healthcheck, "ready" is "still running this long after it started": a command
 * that fails at once must not count as a started service just because bv looked first. */
#define SETTLE_NS           (1000 * INT64_C(1000000))
#define STOP_TIMEOUT_S      10
#define LOG_TAIL_LINES      20
#define MAX_SHOWN_LOG_BYTES 4096

BV_DEFINE_CLEANUP(json_t *, services_json_decrefp, json_decref, NULL)
#define _cleanup_json_ _cleanup_(services_json_decrefp)

/* ---- small helpers -------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void event(const struct bv_services_events *ev,
							const char *service, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	va_list ap;
	if (!ev || !ev->on_event)
		return;
	va_start(ap, fmt);
	what = bv_xvasprintf(fmt, ap);
	va_end(ap);
	ev->on_event(service, what, ev->payload);
}

static void output(const struct bv_services_events *ev, const char *service, const char *line)
{
	if (ev && ev->on_output)
		ev->on_output(service, line, ev->payload);
}

/* A string member, or NULL. */
static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* o[k1][k2]..., NULL-terminated keys. */
static json_t *jpath(json_t *o, ...)
{
	va_list ap;
	const char *k;
	va_start(ap, o);
	while (o && (k = va_arg(ap, const char *)))
		o = json_object_get(o, k);
	va_end(ap);
	return o;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000),
			      .tv_nsec = (long)(ns % 1000000000)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Whether `labels` carry this project's root. */
static bool is_ours(const struct bv_services *s, json_t *labels)
{
	const char *root = bv_engine_label(labels, BV_LABEL_PROJECT);
	return root && !strcmp(root, s->project_root);
}

/* ---- progress streams (pull, build) --------------------------------------------------- */

struct progress {
	const struct bv_services_events *ev;
	const char *service;
	char *image_id; /* a build's, from its aux message; owned */
};

/* BuildKit's progress (buildkit.h) and the id of the image a build made. */
static void progress_aux(struct progress *p, const char *id, json_t *aux)
{
	if (id && !strcmp(id, "moby.buildkit.trace")) {
		_cleanup_strv_ struct bv_strv lines = BV_STRV_INIT;
		(void)bv_buildkit_trace_lines(&lines, json_string_value(aux));
		bv_strv_foreach (l, &lines)
			output(p->ev, p->service, *l);
	} else if ((!id || !strcmp(id, "moby.image.id")) && jstr(aux, "ID")) {
		/* BuildKit's "moby.image.id", the classic builder's id-less aux */
		free(p->image_id);
		p->image_id = bv_xstrdup(jstr(aux, "ID"));
	}
}

/* One event of a pull or build stream: its text lines to the caller (errors are the layer's). */
static int progress_event(json_t *j, void *payload)
{
	struct progress *p = payload;
	const char *msg;
	if (json_object_get(j, "errorDetail") || json_object_get(j, "error"))
		return 0;
	if (json_object_get(j, "aux")) {
		progress_aux(p, jstr(j, "id"), json_object_get(j, "aux"));
		return 0;
	}
	msg = jstr(j, "stream");
	if (msg) {
		/* build output: text that may hold several lines */
		const char *s = msg;
		while (*s) {
			const char *nl = strchr(s, '\n');
			size_t n = nl ? (size_t)(nl - s) : strlen(s);
			if (n) {
				_cleanup_free_ char *one = bv_xstrndup(s, n);
				output(p->ev, p->service, one);
			}
			s += n + (nl ? 1 : 0);
		}
		return 0;
	}
	msg = jstr(j, "status");
	if (msg && !jstr(j, "progress")) { /* not the many "Downloading [==>  ]" lines */
		const char *id = jstr(j, "id");
		_cleanup_free_ char *one = id ? bv_xasprintf("%s: %s", id, msg) : bv_xstrdup(msg);
		output(p->ev, p->service, one);
	}
	return 0;
}

/* ---- images --------------------------------------------------------------------------- */

/* The image's id, or NULL (with 0) when the engine does not have it. */
static int image_id(char **out, struct bv_engine *e, const char *image, struct bv_error **err)
{
	_cleanup_json_ json_t *resp = NULL;
	int r = bv_engine_image_inspect(&resp, e, image, err);
	if (r < 0)
		return r;
	*out = resp ? bv_xstrdup(jstr(resp, "Id")) : NULL;
	return 0;
}

/* The image of a service that is pulled: present, else pulled; checked against its digest. */
static int pull(char **id_out, struct bv_engine *e, const char *service, const char *image,
		const struct bv_services_events *ev, struct bv_error **err)
{
	struct bv_imageref ref;
	struct progress p = {.ev = ev, .service = service};
	const char *names[] = {image, NULL};
	_cleanup_free_ char *repo = NULL, *what = bv_xasprintf("'%s'", image);
	struct bv_engine_image_want w = {.names = names,
					 .subject = image,
					 .pull_what = what,
					 .on_event = progress_event,
					 .payload = &p};
	_cleanup_json_ json_t *img = NULL;
	int r = bv_imageref_parse(&ref, image, err);
	if (r < 0)
		return r;
	/* the tag (or digest) apart: without one the engine would pull every tag */
	repo = bv_xasprintf("%s/%s", ref.registry, ref.repository);
	w.repo = repo;
	w.tag = ref.digest ? ref.digest : ref.tag ? ref.tag : "latest";
	w.digest = ref.digest;
	r = bv_engine_image_find(&img, e, &w, err);
	if (r >= 0 && !img) {
		event(ev, service, "pulling %s", image);
		r = bv_engine_image_ensure(&img, NULL, e, &w, err);
	}
	if (r >= 0)
		*id_out = bv_xstrdup(jstr(img, "Id"));
	bv_imageref_release(&ref);
	return r;
}

/* DOCKER_BUILDKIT as the docker CLI reads it (Go's strconv.ParseBool). */
static bool buildkit_from_env(void)
{
	const char *v = getenv("DOCKER_BUILDKIT");
	static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
	for (size_t i = 0; v && i < BV_ARRAY_SIZE(yes); i++)
		if (!strcmp(v, yes[i]))
			return true;
	return false;
}

/*
 * *id_out: the id of the image built (new string), or NULL when the stream named none.
 * *told: whether the fallback from BuildKit was reported already (once per `bv up`).
 */
static int build(char **id_out, bool *told, struct bv_engine *e, const struct bv_services *s,
		 const struct bv_service *svc, const char *tag, const struct bv_services_events *ev,
		 struct bv_error **err)
{
	struct stat st;
	struct progress p = {.ev = ev, .service = svc->name};
	_cleanup_free_ char *df = bv_path_join(svc->context, svc->dockerfile);
	_cleanup_free_ char *clean = NULL, *what = NULL;
	_cleanup_json_ json_t *label_obj = NULL, *args = NULL;
	struct bv_engine_build o = {.tag = tag, .target = svc->target};
	bool want_buildkit = svc->buildkit || buildkit_from_env();
	int r;
	if (stat(svc->context, &st) < 0 || !S_ISDIR(st.st_mode))
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "%s:%u:%u: build context '%s' of service '%s' is not a "
				     "directory",
				     s->file, svc->source_pos.line, svc->source_pos.column,
				     svc->context, svc->name);
	if (stat(df, &st) < 0 || !S_ISREG(st.st_mode))
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "%s:%u:%u: service '%s' has no Dockerfile '%s' in '%s'",
				     s->file, svc->source_pos.line, svc->source_pos.column,
				     svc->name, svc->dockerfile, svc->context);
	o.buildkit = want_buildkit && bv_engine_has_buildkit(e);
	if (want_buildkit && !o.buildkit && !*told) {
		*told = true;
		event(ev, svc->name,
		      "BuildKit is not available on this engine (%s); building with the classic "
		      "builder",
		      bv_engine_is_podman(e) ? "Podman's service" : "API too old");
	}
	event(ev, svc->name, "building %s%s", tag, o.buildkit ? " with BuildKit" : "");
	/*
	 * Not bv.project: containers inherit their image's labels, and any container made from
	 * this image, by anyone, would then count as the project's and fall to `bv down`.
	 */
	label_obj = json_pack("{s:s, s:s}", BV_LABEL_BUILT_FOR, s->project_root, BV_LABEL_BUILT_AS,
			      svc->name);
	args = json_object();
	if (!label_obj || !args)
		bv_oom();
	bv_strv_foreach (a, &svc->build_args) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *key = bv_xstrndup(*a, (size_t)(eq - *a));
		json_object_set_new(args, key, json_string(eq + 1));
	}
	clean = bv_services_clean_path(svc->dockerfile);
	what = bv_xasprintf("service '%s'", svc->name);
	o.dockerfile = clean;
	o.labels = label_obj;
	o.buildargs = args;
	r = bv_engine_build_dir(e, &o, svc->context, progress_event, &p, what, err);
	if (r >= 0)
		*id_out = TAKE_PTR(p.image_id);
	free(p.image_id);
	return r;
}

/* Builds or pulls what `svc` runs; *id_out is the image's id.  *told: see build(). */
static int ensure_image(char **id_out, bool *told, struct bv_engine *e, const struct bv_services *s,
			const struct bv_service *svc, const char *image,
			const struct bv_services_events *ev, struct bv_error **err)
{
	char *id = NULL;
	int r;
	if (svc->source == BV_SERVICE_BUILD) {
		r = build(&id, told, e, s, svc, image, ev, err);
		if (r >= 0 && id) {
			*id_out = id;
			return 0;
		}
	} else {
		r = pull(&id, e, svc->name, image, ev, err);
		if (r >= 0) {
			*id_out = id;
			return 0;
		}
	}
	if (r >= 0)
		r = image_id(&id, e, image, err);
	if (r >= 0 && !id)
		r = bv_error_setc(err, BV_ENOTFOUND, 0,
				  "image '%s' of service '%s' is missing after it was %s", image,
				  svc->name, svc->source == BV_SERVICE_BUILD ? "built" : "pulled");
	if (r < 0)
		return r;
	*id_out = id;
	return 0;
}

/* ---- volumes -------------------------------------------------------------------------- */

/* Whether a selected service mounts the named volume `name`. */
static bool volume_used(const struct bv_services *s, const bool *selected, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; selected[i] && j < s->v[i].n_volumes; j++)
			if (s->v[i].volumes[j].kind == BV_VOLUME_NAMED &&
			    !strcmp(s->v[i].volumes[j].host, name))
				return true;
	return false;
}

/* Creates the project's named volumes that are missing; an existing one must be its own. */
static int ensure_volumes(struct bv_engine *e, const struct bv_services *s, const bool *selected,
			  const struct bv_services_events *ev, struct bv_error **err)
{
	bv_strv_foreach (v, &s->volumes) {
		_cleanup_free_ char *name = bv_services_volume_name(s, *v);
		_cleanup_json_ json_t *info = NULL, *labels = NULL;
		const char *owner;
		int r;
		if (!volume_used(s, selected, *v))
			continue;
		r = bv_engine_volume_inspect(&info, e, name, err);
		if (r < 0)
			return r;
		if (info) {
			owner = bv_engine_label(json_object_get(info, "Labels"), BV_LABEL_PROJECT);
			if (owner && !strcmp(owner, s->project_root))
				continue;
			return bv_error_setc(
				err, BV_EEXISTS, 0,
				"volume '%s' exists but does not belong to this project (label " BV_LABEL_PROJECT
				" is '%s', not '%s'); remove it or give the project another name",
				name, owner ? owner : "", s->project_root);
		}
		labels = json_pack("{s:s, s:s}", BV_LABEL_PROJECT, s->project_root, BV_LABEL_VOLUME,
				   *v);
		if (!labels)
			bv_oom();
		r = bv_engine_volume_create(e, name, labels, err);
		if (r < 0)
			return r;
		event(ev, NULL, "created volume %s", name);
	}
	return 0;
}

int bv_services_remove_volumes(struct bv_engine *e, const struct bv_services *s,
			       const struct bv_services_events *events, struct bv_error **err)
{
	_cleanup_free_ char *label = bv_xasprintf(BV_LABEL_PROJECT "=%s", s->project_root);
	_cleanup_free_ char *what = bv_xasprintf("the volumes of '%s'", s->project_root);
	const char *labels[] = {label, BV_LABEL_VOLUME, NULL};
	_cleanup_json_ json_t *list = NULL;
	json_t *v;
	size_t i;
	int r = bv_engine_volume_list(&list, e, labels, what, err);
	if (r < 0)
		return r;
	json_array_foreach(list, i, v)
	{
		const char *name = jstr(v, "Name");
		/* the filter is the engine's; the label is checked again, as for containers */
		if (!name || !is_ours(s, json_object_get(v, "Labels")))
			continue;
		r = bv_engine_volume_remove(e, name, err);
		if (r < 0)
			return r;
		event(events, NULL, "removed volume %s", name);
	}
	return 0;
}

/* ---- containers ----------------------------------------------------------------------- */

static json_t *string_array(const struct bv_strv *v, size_t from)
{
	json_t *a = json_array();
	for (size_t i = from; i < v->n; i++)
		json_array_append_new(a, json_string(v->v[i]));
	return a;
}

static json_t *healthcheck_json(const struct bv_healthcheck *h)
{
	json_t *o = json_object();
	json_object_set_new(o, "Test", string_array(&h->test, 0));
	if (h->interval_ns)
		json_object_set_new(o, "Interval", json_integer(h->interval_ns));
	if (h->timeout_ns)
		json_object_set_new(o, "Timeout", json_integer(h->timeout_ns));
	if (h->start_period_ns)
		json_object_set_new(o, "StartPeriod", json_integer(h->start_period_ns));
	if (h->retries)
		json_object_set_new(o, "Retries", json_integer(h->retries));
	return o;
}

/* The body of POST /containers/create, without the config digest label. */
static json_t *container_body(const struct bv_services *s, const struct bv_service *svc,
			      const char *image, const char *network)
{
	json_t *body = json_object(), *host = json_object(), *exposed = json_object();
	json_t *bindings = json_object(), *binds = json_array(), *labels = json_object();
	json_t *endpoints = json_object(), *endpoint = json_object(), *aliases = json_array();
	json_t *anon = NULL;

	json_object_set_new(body, "Image", json_string(image));
	if (svc->command.n)
		json_object_set_new(body, "Cmd", string_array(&svc->command, 0));
	if (svc->env.n)
		json_object_set_new(body, "Env", string_array(&svc->env, 0));
	if (svc->working_dir)
		json_object_set_new(body, "WorkingDir", json_string(svc->working_dir));
	if (svc->user)
		json_object_set_new(body, "User", json_string(svc->user));
	json_object_set_new(labels, BV_LABEL_PROJECT, json_string(s->project_root));
	json_object_set_new(labels, BV_LABEL_SERVICE, json_string(svc->name));
	json_object_set_new(body, "Labels", labels);
	if (svc->health.test.n)
		json_object_set_new(body, "Healthcheck", healthcheck_json(&svc->health));

	for (size_t i = 0; i < svc->n_ports; i++) {
		const struct bv_service_port *p = &svc->ports[i];
		char key[32], host_port[16];
		json_t *list;
		(void)snprintf(key, sizeof(key), "%u/%s", p->container_port, p->proto);
		(void)snprintf(host_port, sizeof(host_port), "%u", p->host_port);
		json_object_set_new(exposed, key, json_object());
		list = json_object_get(bindings, key);
		if (!list) {
			list = json_array();
			json_object_set_new(bindings, key, list);
		}
		json_array_append_new(
			list, json_pack("{s:s, s:s}", "HostIp", p->host_ip, "HostPort", host_port));
	}
	if (svc->n_ports)
		json_object_set_new(body, "ExposedPorts", exposed);
	else
		json_decref(exposed);
	for (size_t i = 0; i < svc->n_volumes; i++) {
		const struct bv_service_volume *v = &svc->volumes[i];
		_cleanup_free_ char *source = NULL, *bind = NULL;
		if (v->kind == BV_VOLUME_ANON) {
			/* Config.Volumes: the engine makes a new volume for each container */
			if (!anon)
				anon = json_object();
			json_object_set_new(anon, v->container, json_object());
			continue;
		}
		source = v->kind == BV_VOLUME_NAMED ? bv_services_volume_name(s, v->host)
						    : bv_xstrdup(v->host);
		bind = bv_xasprintf("%s:%s%s", source, v->container, v->read_only ? ":ro" : "");
		json_array_append_new(binds, json_string(bind));
	}
	if (anon)
		json_object_set_new(body, "Volumes", anon);
	json_object_set_new(host, "PortBindings", bindings);
	json_object_set_new(host, "Binds", binds);
	json_object_set_new(host, "NetworkMode", json_string(network));
	json_object_set_new(body, "HostConfig", host);
	json_array_append_new(aliases, json_string(svc->name));
	json_object_set_new(endpoint, "Aliases", aliases);
	json_object_set_new(endpoints, network, endpoint);
	json_object_set_new(body, "NetworkingConfig",
			    json_pack("{s:o}", "EndpointsConfig", endpoints));
	return body;
}

/* Inspects a container by name or id: *out NULL (and 0) when there is none. */
static int inspect_container(json_t **out, struct bv_engine *e, const char *ref,
			     struct bv_error **err)
{
	return bv_engine_container_inspect(out, e, ref, err);
}

static int stop_container(struct bv_engine *e, const char *id, const char *name,
			  struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%s'", name);
	return bv_engine_container_stop(e, id, STOP_TIMEOUT_S, what, err);
}

static int remove_container(struct bv_engine *e, const char *id, const char *name,
			    struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%s'", name);
	return bv_engine_container_remove(e, id, what, err);
}

static int start_container(struct bv_engine *e, const char *id, const char *name,
			   struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%s'", name);
	return bv_engine_container_start(e, id, what, err);
}

/* ---- logs ----------------------------------------------------------------------------- */

struct log_stream {
	struct bv_engine_demux demux;
	struct bv_log_splitter split;
	bool tty;
};

static int log_frame(int stream, const char *data, size_t len, void *payload)
{
	struct log_stream *ls = payload;
	return bv_log_splitter_feed(&ls->split, stream, data, len);
}

static int log_data(const char *data, size_t len, void *payload)
{
	struct log_stream *ls = payload;
	if (ls->tty)
		return bv_log_splitter_feed(&ls->split, 1, data, len);
	return bv_engine_demux_feed(&ls->demux, data, len);
}

static int stream_logs(struct bv_engine *e, const char *id, bool tty,
		       const struct bv_engine_logs *o,
		       int (*on_line)(int, const char *, const char *, void *), void *payload,
		       struct bv_error **err)
{
	struct log_stream ls = {.tty = tty};
	int r, fr;
	ls.demux.on_frame = log_frame;
	ls.demux.payload = &ls;
	ls.split.timestamps = o->timestamps;
	ls.split.on_line = on_line;
	ls.split.payload = payload;
	r = bv_engine_container_logs(e, id, o, log_data, &ls, err);
	fr = bv_log_splitter_finish(&ls.split);
	return r < 0 ? r : fr;
}

static int collect_tail(int stream, const char *timestamp, const char *line, void *payload)
{
	struct bv_buf *b = payload;
	(void)stream;
	(void)timestamp;
	if (b->len < MAX_SHOWN_LOG_BYTES)
		bv_buf_printf(b, "\n  %s", line);
	return 0;
}

/* "\n  line" for each of the last lines of the container's log ("" if it cannot be read). */
static char *log_tail(struct bv_engine *e, const char *id, bool tty)
{
	struct bv_buf b = BV_BUF_INIT;
	const struct bv_engine_logs o = {.tail = LOG_TAIL_LINES};
	if (stream_logs(e, id, tty, &o, collect_tail, &b, NULL) < 0)
		bv_buf_reset(&b);
	return bv_buf_detach(&b, NULL);
}

/* ---- health --------------------------------------------------------------------------- */

/* Seconds and nanoseconds of an RFC 3339 time as one comparable number; 0 if unreadable. */
static int64_t time_ns(const char *text)
{
	int64_t secs;
	uint32_t nanos;
	if (!text || bv_time_parse_rfc3339(&secs, &nanos, text) < 0)
		return 0;
	return secs * 1000000000 + nanos;
}

/* The last healthcheck's result, as one line. */
static char *last_health_output(json_t *health)
{
	json_t *log = json_object_get(health, "Log");
	size_t n = json_array_size(log);
	const char *text;
	char *out;
	if (!n)
		return bv_xstrdup("");
	text = jstr(json_array_get(log, n - 1), "Output");
	out = bv_xasprintf("exit code %lld%s%s",
			   (long long)json_integer_value(
				   json_object_get(json_array_get(log, n - 1), "ExitCode")),
			   text && *text ? ", output: " : "", text ? text : "");
	for (char *c = out; *c; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
	for (size_t len = strlen(out); len && out[len - 1] == ' '; len--)
		out[len - 1] = '\0';
	return out;
}

/* Whether the container has a healthcheck (its own or its image's). */
static bool has_healthcheck(json_t *info)
{
	json_t *test = jpath(info, "Config", "Healthcheck", "Test", NULL);
	const char *first = json_string_value(json_array_get(test, 0));
	return first && strcmp(first, "NONE") && json_array_size(test) > 1;
}

/* Whether a "healthy" verdict comes from a check made since the container last started. */
static bool verdict_is_fresh(json_t *state)
{
	json_t *log = jpath(state, "Health", "Log", NULL);
	size_t n = json_array_size(log);
	int64_t started = time_ns(jstr(state, "StartedAt"));
	int64_t checked = n ? time_ns(jstr(json_array_get(log, n - 1), "Start")) : 0;
	return !n || !started || !checked || checked >= started;
}

/*
 * Waits until the container `id` of service `name` is ready: healthy when it has a
 * healthcheck, running otherwise.  An exit, an "unhealthy" verdict or the timeout is an error.
 */
static int wait_ready(struct bv_engine *e, const char *name, const char *id, uint64_t timeout_ns,
		      const struct bv_services_events *ev, struct bv_error **err)
{
	uint64_t deadline = bv_time_monotonic_ns() + timeout_ns, next_check = 0;
	uint64_t pause = FIRST_POLL_NS;
	bool podman = bv_engine_is_podman(e), announced = false;
	_cleanup_free_ char *status = bv_xstrdup("unknown"), *health = bv_xstrdup("");
	_cleanup_free_ char *last_output = NULL;
	for (;;) {
		_cleanup_json_ json_t *info = NULL;
		json_t *state;
		const char *st, *hs;
		uint64_t now;
		int r = inspect_container(&info, e, id, err);
		if (r < 0)
			return r;
		if (!info)
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "the container of service '%s' disappeared", name);
		state = json_object_get(info, "State");
		st = jstr(state, "Status");
		if (st && (!strcmp(st, "exited") || !strcmp(st, "dead"))) {
			_cleanup_free_ char *tail =
				log_tail(e, id, json_is_true(jpath(info, "Config", "Tty", NULL)));
			return bv_error_setc(
				err, BV_ERR, 0,
				"service '%s' exited with code %lld before it was ready%s%s", name,
				(long long)json_integer_value(json_object_get(state, "ExitCode")),
				*tail ? "; the last lines of its log:" : " (its log is empty)",
				tail);
		}
		free(status);
		status = bv_xstrdup(st ? st : "unknown");
		now = bv_time_monotonic_ns();
		if (st && !strcmp(st, "running")) {
			json_t *h = json_object_get(state, "Health");
			if (!has_healthcheck(info)) {
				struct timespec wall;
				int64_t started = time_ns(jstr(state, "StartedAt"));
				clock_gettime(CLOCK_REALTIME, &wall);
				if (!started ||
				    (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec - started >=
					    SETTLE_NS)
					return 0;
				goto next;
			}
			if (podman && now >= next_check) {
				json_int_t interval = json_integer_value(
					jpath(info, "Config", "Healthcheck", "Interval", NULL));
				/* Podman runs no healthchecks without systemd:
				 * bv runs each one (see engine-internal.h) */
				r = bv_engine_container_healthcheck(e, id, err);
				if (r < 0)
					return r;
				next_check =
					now + (uint64_t)(interval > 0
								 ? interval
								 : BV_HEALTH_DEFAULT_INTERVAL_NS);
				continue; /* read the verdict it recorded */
			}
			hs = jstr(h, "Status");
			free(health);
			health = bv_xstrdup(hs && *hs ? hs : "starting");
			free(last_output);
			last_output = last_health_output(h);
			if (!strcmp(health, "healthy") && verdict_is_fresh(state))
				return 0;
			if (!strcmp(health, "unhealthy"))
				return bv_error_setc(
					err, BV_ERR, 0,
					"service '%s' is unhealthy: its healthcheck failed (%s)",
					name, *last_output ? last_output : "no output");
			if (!announced) {
				event(ev, name, "waiting until it is healthy");
				announced = true;
			}
		}
next:
		if (now >= deadline)
			return bv_error_setc(
				err, BV_ERR, 0,
				"service '%s' was not ready within %llu s (state: %s%s%s%s%s)",
				name, (unsigned long long)(timeout_ns / 1000000000), status,
				*health ? ", health: " : "", health,
				last_output && *last_output ? ", last check: " : "",
				last_output && *last_output ? last_output : "");
		sleep_ns(pause);
		pause = pause + pause / 4 < POLL_NS ? pause + pause / 4 : POLL_NS;
	}
}

/* ---- the network ---------------------------------------------------------------------- */

/* The project's network, as bv_services_up() found or made it. */
struct project_net {
	const char *name; /* bv-<project>-net */
	char *id;
};

/*
 * Several networks carry the project's label and its network's name (an older bv raced with
 * itself, or someone made them): keeps the one most containers are attached to, else the
 * oldest, and empties and removes the others.  All of them are bv's (labelled); a same-named
 * network without the label is not in `ours` and is never touched.
 */
static int repair_networks(char **id_out, struct bv_engine *e, const char *name, json_t *ours,
			   const struct bv_services_events *ev, struct bv_error **err)
{
	_cleanup_json_ json_t *infos = json_array();
	size_t keep = SIZE_MAX, best_attached = 0, i;
	int64_t best_created = 0;
	const char *keep_id;
	json_t *net, *info;
	json_array_foreach(ours, i, net)
	{
		size_t attached;
		int64_t created;
		int r;
		info = NULL;
		r = bv_engine_network_inspect(&info, e, jstr(net, "Id"), err);
		if (r < 0)
			return r;
		json_array_append_new(infos, info ? info : json_null());
		if (!info)
			continue; /* removed meanwhile */
		/* the list leaves Containers empty: only an inspect counts them */
		attached = json_object_size(json_object_get(info, "Containers"));
		created = time_ns(jstr(info, "Created"));
		if (keep == SIZE_MAX || attached > best_attached ||
		    (attached == best_attached && created &&
		     (!best_created || created < best_created))) {
			keep = i;
			best_attached = attached;
			best_created = created;
		}
	}
	if (keep == SIZE_MAX)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "the networks named '%s' disappeared while bv repaired them",
				     name);
	keep_id = jstr(json_array_get(ours, keep), "Id");
	json_array_foreach(infos, i, info)
	{
		const char *id = jstr(json_array_get(ours, i), "Id"), *cid;
		size_t n = 0;
		json_t *v;
		int r;
		if (i == keep || json_is_null(info))
			continue;
		json_object_foreach(json_object_get(info, "Containers"), cid, v)
		{
			r = bv_engine_network_disconnect(e, id, cid, err);
			if (r < 0)
				return r;
			n++;
		}
		r = bv_engine_network_remove(e, id, err);
		if (r < 0)
			return r;
		event(ev, NULL,
		      "repaired network %s: removed a duplicate (%.12s, %zu container%s "
		      "disconnected), kept %.12s",
		      name, id, n, n == 1 ? "" : "s", keep_id);
	}
	*id_out = bv_xstrdup(keep_id);
	return 0;
}

/*
 * The id of the project's network: the one named `name` with the project's label, made when
 * there is none.  Found by label and used by id, never by name alone: dockerd lets several
 * networks share a name, and a container attached by name fails to start ("ambiguous") once
 * they do.
 */
static int ensure_network(char **id_out, struct bv_engine *e, const struct bv_services *s,
			  const char *name, const struct bv_services_events *ev,
			  struct bv_error **err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		_cleanup_json_ json_t *all = NULL, *ours = json_array(), *labels = NULL;
		json_t *net, *foreign = NULL;
		size_t i;
		int r = bv_engine_network_list(&all, e, name, NULL, err);
		if (r < 0)
			return r;
		json_array_foreach(all, i, net)
		{
			if (is_ours(s, json_object_get(net, "Labels")) && jstr(net, "Id"))
				json_array_append(ours, net);
			else if (!foreign)
				foreign = net;
		}
		if (json_array_size(ours) == 1) {
			*id_out = bv_xstrdup(jstr(json_array_get(ours, 0), "Id"));
			return 0;
		}
		if (json_array_size(ours) > 1)
			return repair_networks(id_out, e, name, ours, ev, err);
		if (foreign) {
			const char *owner = bv_engine_label(json_object_get(foreign, "Labels"),
							    BV_LABEL_PROJECT);
			return bv_error_setc(
				err, BV_EEXISTS, 0,
				"network '%s' exists but does not belong to this project (label " BV_LABEL_PROJECT
				" is '%s', not '%s'); remove it or give the project another name",
				name, owner ? owner : "", s->project_root);
		}
		labels = json_pack("{s:s}", BV_LABEL_PROJECT, s->project_root);
		if (!labels)
			bv_oom();
		r = bv_engine_network_create(id_out, e, name, labels, err);
		if (r != BV_EEXISTS)
			return r;
		/* created meanwhile (by a bv that does not take the services lock): look again */
		bv_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
	}
	return bv_error_set(err, "could not create network '%s'", name);
}

/*
 * Points a create body at the network by id: dockerd looks a network name up again at every
 * start, and fails when two networks share it; the endpoint's NetworkID pins the one meant.
 * Done after the config digest is taken, which keeps the name, so that an unchanged service
 * keeps its digest when its network is made anew.
 */
static void pin_network(json_t *body, const struct project_net *net)
{
	json_t *endpoints = jpath(body, "NetworkingConfig", "EndpointsConfig", NULL);
	json_t *endpoint = json_object_get(endpoints, net->name);
	if (!endpoint)
		return;
	json_incref(endpoint);
	json_object_del(endpoints, net->name);
	json_object_set_new(endpoint, "NetworkID", json_string(net->id));
	json_object_set_new(endpoints, net->id, endpoint);
	json_object_set_new(json_object_get(body, "HostConfig"), "NetworkMode",
			    json_string(net->id));
}

/* ---- what changed behind bv's back ---------------------------------------------------- */

/* "sha256:<hex>" and "<hex>" alike. */
static const char *bare_id(const char *id)
{
	if (!id)
		return "";
	return strncmp(id, "sha256:", 7) ? id : id + 7;
}

/* Two lists of strings as the engines give them, where null and [] are the same. */
static bool same_list(json_t *a, json_t *b)
{
	if (!json_array_size(a) && !json_array_size(b))
		return true;
	return json_equal(a, b);
}

static bool list_has(json_t *list, const char *s)
{
	json_t *v;
	size_t i;
	json_array_foreach(list, i, v)
	{
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	}
	return false;
}

static bool same_env_key(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");
	return !strncmp(a, b, n) && (b[n] == '=' || b[n] == '\0');
}

/* Variables an engine adds to every container itself (Podman: these four), which bv.toml
 * need not name. */
static bool engine_env(const char *entry)
{
	static const char *const keys[] = {"container=", "HOME=", "HOSTNAME=", "TERM=", NULL};
	for (const char *const *k = keys; *k; k++)
		if (!strncmp(entry, *k, strlen(*k)))
			return true;
	return false;
}

/* Whether the container's environment is its image's with bv.toml's over it, as the
 * engines merge them at create. */
static bool env_matches(json_t *have, json_t *image_env, json_t *want)
{
	json_t *v;
	size_t i, j;
	json_array_foreach(want, i, v)
	{
		if (!list_has(have, json_string_value(v)))
			return false;
	}
	json_array_foreach(image_env, i, v)
	{
		const char *entry = json_string_value(v);
		bool overridden = false;
		json_t *w;
		if (!entry)
			continue;
		json_array_foreach(want, j, w)
		{
			if (json_is_string(w) && same_env_key(json_string_value(w), entry))
				overridden = true;
		}
		if (!overridden && !list_has(have, entry))
			return false;
	}
	json_array_foreach(have, i, v)
	{
		const char *entry = json_string_value(v);
		if (entry && !list_has(want, entry) && !list_has(image_env, entry) &&
		    !engine_env(entry))
			return false;
	}
	return true;
}

/* Binds as "source:target:ro" or ":rw", sorted: Podman reports its own options with them
 * ("/a:/b:ro,rprivate,rbind"). */
static void normal_binds(struct bv_strv *out, json_t *binds)
{
	json_t *v;
	size_t i;
	json_array_foreach(binds, i, v)
	{
		const char *b = json_string_value(v), *c1, *c2;
		bool ro = false;
		if (!b)
			continue;
		c1 = strchr(b, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		for (const char *o = c2 ? c2 + 1 : NULL; o && *o;) {
			size_t n = strcspn(o, ",");
			if (n == 2 && !strncmp(o, "ro", 2))
				ro = true;
			o += n + (o[n] == ',');
		}
		bv_strv_pushf(out, "%.*s:%s", c2 ? (int)(c2 - b) : (int)strlen(b), b,
			      ro ? "ro" : "rw");
	}
	bv_strv_sort(out);
}

static bool same_binds(json_t *a, json_t *b)
{
	_cleanup_strv_ struct bv_strv x = BV_STRV_INIT, y = BV_STRV_INIT;
	normal_binds(&x, a);
	normal_binds(&y, b);
	if (x.n != y.n)
		return false;
	for (size_t i = 0; i < x.n; i++)
		if (strcmp(x.v[i], y.v[i]))
			return false;
	return true;
}

/*
 * Why container `c` (inspected) no longer is what bv would create from `body` on `net`,
 * although its config label says it is: what the engine reports, changed behind bv's back
 * (a network deleted and made anew, a container disconnected, or recreated by hand with the
 * same labels).  *why_out: a new string, or NULL when nothing differs.
 */
static int container_drift(char **why_out, struct bv_engine *e, json_t *c, json_t *body,
			   const char *image_id, const struct project_net *net,
			   const struct bv_service *svc, struct bv_error **err)
{
	_cleanup_json_ json_t *img = NULL;
	json_t *config = json_object_get(c, "Config"), *host = json_object_get(c, "HostConfig");
	json_t *ep, *ports_want, *ports_have;
	const char *key;
	bool attached = false, alias = false;
	int r;
	*why_out = NULL;
	if (strcmp(bare_id(jstr(c, "Image")), bare_id(image_id))) {
		*why_out = bv_xstrdup("it runs another image");
		return 0;
	}
	json_object_foreach(jpath(c, "NetworkSettings", "Networks", NULL), key, ep)
	{
		const char *nid = jstr(ep, "NetworkID");
		/* dockerd records the network's id (none before the first start); Podman its
		 * name, which it keeps unique */
		if (nid && *nid ? strcmp(nid, net->id) && strcmp(nid, net->name)
				: strcmp(key, net->name))
			continue;
		attached = true;
		alias = alias || list_has(json_object_get(ep, "Aliases"), svc->name);
	}
	if (!attached) {
		*why_out = bv_xasprintf("it is not attached to network %s", net->name);
		return 0;
	}
	if (!alias) {
		*why_out = bv_xasprintf("it is not reachable as '%s' on network %s", svc->name,
					net->name);
		return 0;
	}
	r = bv_engine_image_inspect(&img, e, image_id, err);
	if (r < 0)
		return r;
	if (!same_list(json_object_get(body, "Cmd") ? json_object_get(body, "Cmd")
						    : jpath(img, "Config", "Cmd", NULL),
		       json_object_get(config, "Cmd")) ||
	    !same_list(jpath(img, "Config", "Entrypoint", NULL),
		       json_object_get(config, "Entrypoint"))) {
		*why_out = bv_xstrdup("its command changed");
		return 0;
	}
	if (!env_matches(json_object_get(config, "Env"), jpath(img, "Config", "Env", NULL),
			 json_object_get(body, "Env"))) {
		*why_out = bv_xstrdup("its environment changed");
		return 0;
	}
	ports_want = jpath(body, "HostConfig", "PortBindings", NULL);
	ports_have = json_object_get(host, "PortBindings");
	if ((json_object_size(ports_want) || json_object_size(ports_have)) &&
	    !json_equal(ports_want, ports_have)) {
		*why_out = bv_xstrdup("its published ports changed");
		return 0;
	}
	if (!same_binds(jpath(body, "HostConfig", "Binds", NULL), json_object_get(host, "Binds"))) {
		*why_out = bv_xstrdup("its volumes changed");
		return 0;
	}
	return 0;
}

/* ---- up ------------------------------------------------------------------------------- */

/* What bv_services_up() shares with up_one(). */
struct up_run {
	const struct bv_services_up_options *o;
	const bool *selected;
	const struct project_net *net;
	const char **stopped_for; /* per service: the dependency whose recreation stopped it */
};

/*
 * Before service `index` is recreated, stops its direct dependents that are selected and
 * running, so that they start again after it: compose's `depends_on: {restart: true}`, which
 * bv does for every dependency (a dependent may hold connections to the container that goes
 * away, or may only read its peer at start).
 */
static int stop_dependents(struct bv_engine *e, const struct bv_services *s, size_t index,
			   struct up_run *u, struct bv_error **err)
{
	for (size_t j = 0; j < s->n; j++) {
		const struct bv_service *d = &s->v[j];
		_cleanup_free_ char *name = NULL;
		_cleanup_json_ json_t *info = NULL;
		bool depends = false;
		int r;
		for (size_t k = 0; k < d->depends_on.n; k++)
			depends = depends || d->deps[k] == index;
		if (!depends || !u->selected[j] || u->stopped_for[j])
			continue;
		name = bv_services_container_name(s, d->name);
		r = inspect_container(&info, e, name, err);
		if (r < 0)
			return r;
		if (!info || !is_ours(s, jpath(info, "Config", "Labels", NULL)) ||
		    !json_is_true(jpath(info, "State", "Running", NULL)))
			continue;
		event(&u->o->events, d->name, "stopping (it depends on '%s', which is recreated)",
		      s->v[index].name);
		r = stop_container(e, jstr(info, "Id"), name, err);
		if (r < 0)
			return r;
		u->stopped_for[j] = s->v[index].name;
	}
	return 0;
}

static int up_one(struct bv_engine *e, const struct bv_services *s, size_t index, const char *image,
		  const char *image_id_text, struct up_run *u, struct bv_error **err)
{
	const struct bv_service *svc = &s->v[index];
	const struct bv_services_events *ev = &u->o->events;
	_cleanup_free_ char *name = bv_services_container_name(s, svc->name);
	_cleanup_free_ char *dump = NULL, *id = NULL, *started = NULL;
	_cleanup_json_ json_t *body = container_body(s, svc, image, u->net->name);
	_cleanup_json_ json_t *existing = NULL;
	char digest[BV_SHA256_HEX_LEN + 1];
	struct bv_buf text = BV_BUF_INIT;
	int r;

	/* the definition's digest decides whether a container can be kept */
	dump = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!dump)
		bv_oom();
	bv_buf_printf(&text, "%s\n%s", dump, image_id_text);
	bv_sha256_hex(digest, text.buf, text.len);
	bv_buf_release(&text);
	json_object_set_new(json_object_get(body, "Labels"), BV_LABEL_CONFIG, json_string(digest));
	started = u->stopped_for[index] ? bv_xasprintf("restarted (after '%s' was recreated)",
						       u->stopped_for[index])
					: bv_xstrdup("started");

	r = inspect_container(&existing, e, name, err);
	if (r < 0)
		return r;
	if (existing) {
		json_t *labels = jpath(existing, "Config", "Labels", NULL);
		const char *have = bv_engine_label(labels, BV_LABEL_CONFIG);
		const char *existing_id = jstr(existing, "Id");
		_cleanup_free_ char *why = NULL;
		if (!is_ours(s, labels))
			return bv_error_setc(
				err, BV_EEXISTS, 0,
				"a container named '%s' exists and does not belong to this project; "
				"remove it or give the project another name",
				name);
		if (!existing_id)
			return bv_error_set(err, "container '%s' has no id", name);
		if (!have || strcmp(have, digest))
			why = bv_xstrdup("its definition changed");
		else if ((r = container_drift(&why, e, existing, body, image_id_text, u->net, svc,
					      err)) < 0)
			return r;
		if (!why) {
			id = bv_xstrdup(existing_id);
			if (json_is_true(jpath(existing, "State", "Running", NULL))) {
				event(ev, svc->name, "up to date");
			} else {
				r = start_container(e, id, name, err);
				if (r < 0)
					return r;
				event(ev, svc->name, "%s", started);
			}
		} else {
			r = stop_dependents(e, s, index, u, err);
			if (r < 0)
				return r;
			event(ev, svc->name, "recreating (%s)", why);
			r = stop_container(e, existing_id, name, err);
			if (r >= 0)
				r = remove_container(e, existing_id, name, err);
			if (r < 0)
				return r;
		}
	}
	if (!id) {
		_cleanup_free_ char *what =
			bv_xasprintf("the container of service '%s'", svc->name);
		pin_network(body, u->net);
		r = bv_engine_container_create(&id, e, name, body, what, err);
		if (r < 0)
			return r;
		r = start_container(e, id, name, err);
		if (r < 0) {
			/* a container that never ran is not left for the next up to find */
			bv_engine_container_discard(e, id);
			return r;
		}
		event(ev, svc->name, "%s", started);
	}
	r = wait_ready(e, svc->name, id, u->o->timeout_ns ? u->o->timeout_ns : DEFAULT_TIMEOUT_NS,
		       ev, err);
	if (r < 0)
		return r;
	event(ev, svc->name,
	      svc->health.test.n && strcmp(svc->health.test.v[0], "NONE") ? "healthy" : "running");
	return 0;
}

int bv_services_up(struct bv_engine *e, const struct bv_services *s,
		   const struct bv_services_up_options *o, struct bv_error **err)
{
	_cleanup_free_ bool *selected = bv_xcalloc(s->n + 1, sizeof(*selected));
	_cleanup_free_ const char **stopped_for = bv_xcalloc(s->n + 1, sizeof(*stopped_for));
	_cleanup_strv_ struct bv_strv images = BV_STRV_INIT, ids = BV_STRV_INIT;
	_cleanup_free_ char *network = bv_services_network_name(s), *network_id = NULL;
	struct project_net net = {.name = network};
	struct up_run u = {.o = o, .selected = selected, .net = &net, .stopped_for = stopped_for};
	bool told = false;
	int r = bv_services_select(selected, s, o->only, o->n_only, err);
	if (r < 0)
		return r;
	/* before anything is made: a missing host path would be created by the engine as root */
	r = bv_services_check_paths(s, selected, err);
	if (r < 0)
		return r;
	/* every image first, so nothing starts when a build or pull fails */
	for (size_t k = 0; k < s->n; k++) {
		const struct bv_service *svc = &s->v[s->order[k]];
		char *image = NULL, *id = NULL;
		if (!selected[s->order[k]]) {
			bv_strv_push(&images, "");
			bv_strv_push(&ids, "");
			continue;
		}
		r = bv_service_image(&image, s, svc, o->lock, o->mirrors, err);
		if (r < 0)
			return r;
		bv_strv_push_take(&images, image);
		r = ensure_image(&id, &told, e, s, svc, image, &o->events, err);
		if (r < 0)
			return r;
		bv_strv_push_take(&ids, id);
	}
	r = ensure_network(&network_id, e, s, network, &o->events, err);
	if (r >= 0)
		r = ensure_volumes(e, s, selected, &o->events, err);
	if (r < 0)
		return r;
	net.id = network_id;
	for (size_t k = 0; k < s->n; k++) {
		if (!selected[s->order[k]])
			continue;
		r = up_one(e, s, s->order[k], images.v[k], ids.v[k], &u, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- down, ps ------------------------------------------------------------------------- */

/*
 * The project's service containers: labelled with its root and a service name (sessions and
 * the docker backend's containers carry the root too, and are not services).
 */
static int list_containers(json_t **out, struct bv_engine *e, const struct bv_services *s,
			   struct bv_error **err)
{
	_cleanup_free_ char *label = bv_xasprintf(BV_LABEL_PROJECT "=%s", s->project_root);
	_cleanup_free_ char *what = bv_xasprintf("the containers of '%s'", s->project_root);
	const char *labels[] = {label, BV_LABEL_SERVICE, NULL};
	return bv_engine_container_list(out, e, labels, what, err);
}

static const char *container_name(json_t *c)
{
	const char *n = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
	if (!n)
		return jstr(c, "Id");
	return n[0] == '/' ? n + 1 : n;
}

int bv_services_down(struct bv_engine *e, const struct bv_services *s,
		     const struct bv_services_events *events, struct bv_error **err)
{
	_cleanup_json_ json_t *list = NULL, *nets = NULL, *named = NULL;
	_cleanup_free_ char *network = bv_services_network_name(s);
	_cleanup_free_ char *label = bv_xasprintf(BV_LABEL_PROJECT "=%s", s->project_root);
	_cleanup_strv_ struct bv_strv seen = BV_STRV_INIT;
	const char *labels[] = {label, NULL};
	json_t *c;
	size_t i;
	int r = list_containers(&list, e, s, err);
	if (r < 0)
		return r;
	json_array_foreach(list, i, c)
	{
		const char *id = jstr(c, "Id");
		const char *service =
			bv_engine_label(json_object_get(c, "Labels"), BV_LABEL_SERVICE);
		const char *name = container_name(c);
		if (!id || !is_ours(s, json_object_get(c, "Labels")))
			continue;
		event(events, service ? service : name, "stopping");
		r = stop_container(e, id, name, err);
		if (r >= 0)
			r = remove_container(e, id, name, err);
		if (r < 0)
			return r;
		event(events, service ? service : name, "removed");
	}
	/* every network labelled with the project (duplicates, and those of an earlier name
	 * of it), by id; then the same-named ones, to say which are left alone */
	r = bv_engine_network_list(&nets, e, NULL, labels, err);
	if (r < 0)
		return r;
	r = bv_engine_network_list(&named, e, network, NULL, err);
	if (r < 0)
		return r;
	json_array_extend(nets, named);
	json_array_foreach(nets, i, c)
	{
		const char *id = jstr(c, "Id"), *name = jstr(c, "Name");
		if (!id || bv_strv_contains(&seen, id))
			continue;
		bv_strv_push(&seen, id);
		if (!is_ours(s, json_object_get(c, "Labels"))) {
			event(events, NULL,
			      "network '%s' does not belong to this project; left alone",
			      name ? name : id);
			continue;
		}
		r = bv_engine_network_remove(e, id, err);
		if (r < 0)
			return r;
		event(events, NULL, "removed network %s", name ? name : id);
	}
	return 0;
}

void bv_service_status_free(struct bv_service_status *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].service);
		free(rows[i].container);
		free(rows[i].state);
		free(rows[i].health);
		free(rows[i].ports);
	}
	free(rows);
}

static int compare_rows(const void *a, const void *b)
{
	const struct bv_service_status *x = a, *y = b;
	int c = strcmp(x->service, y->service);
	return c ? c : strcmp(x->container, y->container);
}

static char *format_ports(json_t *ports)
{
	struct bv_buf b = BV_BUF_INIT;
	_cleanup_strv_ struct bv_strv items = BV_STRV_INIT;
	json_t *p;
	size_t i;
	json_array_foreach(ports, i, p)
	{
		const char *ip = jstr(p, "IP"), *type = jstr(p, "Type");
		json_int_t priv = json_integer_value(json_object_get(p, "PrivatePort"));
		json_int_t pub = json_integer_value(json_object_get(p, "PublicPort"));
		if (pub)
			bv_strv_pushf(&items, "%s%s%s:%lld->%lld/%s",
				      ip && strchr(ip, ':') ? "[" : "", ip && *ip ? ip : "0.0.0.0",
				      ip && strchr(ip, ':') ? "]" : "", (long long)pub,
				      (long long)priv, type ? type : "tcp");
		else
			bv_strv_pushf(&items, "%lld/%s", (long long)priv, type ? type : "tcp");
	}
	bv_strv_sort(&items);
	for (size_t k = 0; k < items.n; k++) {
		/* the engine lists a port once per address family; show it once */
		if (k && !strcmp(items.v[k], items.v[k - 1]))
			continue;
		if (b.len)
			bv_buf_puts(&b, ", ");
		bv_buf_puts(&b, items.v[k]);
	}
	return bv_buf_detach(&b, NULL);
}

/*
 * A row from the container list alone.  dockerd's Status carries what an inspect would add:
 * the verdict of a healthcheck ("Up 2 minutes (healthy)", "(unhealthy)", "(health:
 * starting)", nothing without one) and the exit code ("Exited (3) 5 seconds ago").  Reading it
 * spares one inspect per container: `bv ps` of 50 services made 51 requests before.  Podman's
 * list shows neither, so on Podman every container is inspected.
 */
static void row_from_list(struct bv_service_status *row, json_t *c)
{
	const char *state = jstr(c, "State"), *status = jstr(c, "Status");
	const char *health = "";
	row->state = bv_xstrdup(state && *state ? state : "unknown");
	if (status && !strcmp(row->state, "running")) {
		if (bv_str_has_suffix(status, " (healthy)"))
			health = "healthy";
		else if (bv_str_has_suffix(status, " (unhealthy)"))
			health = "unhealthy";
		else if (bv_str_has_suffix(status, " (health: starting)"))
			health = "starting";
	}
	row->health = bv_xstrdup(health);
	if (status && bv_str_has_prefix(status, "Exited (")) {
		const char *code = status + strlen("Exited (");
		_cleanup_free_ char *digits = bv_xstrndup(code, strcspn(code, ")"));
		(void)bv_parse_int(&row->exit_code, digits);
	}
}

/* A row from an inspect of the container. */
static void row_from_inspect(struct bv_service_status *row, json_t *info)
{
	const char *st = jstr(jpath(info, "State", NULL), "Status");
	const char *health = NULL;
	row->state = bv_xstrdup(st ? st : "unknown");
	if (has_healthcheck(info))
		health = jstr(jpath(info, "State", "Health", NULL), "Status");
	row->health = bv_xstrdup(health && strcmp(health, "none") ? health : "");
	row->exit_code = (int)json_integer_value(jpath(info, "State", "ExitCode", NULL));
}

int bv_services_ps(struct bv_service_status **out, size_t *n_out, struct bv_engine *e,
		   const struct bv_services *s, struct bv_error **err)
{
	_cleanup_json_ json_t *list = NULL;
	struct bv_service_status *rows;
	bool podman = bv_engine_is_podman(e);
	size_t n = 0, i;
	json_t *c;
	int r = list_containers(&list, e, s, err);
	if (r < 0)
		return r;
	rows = bv_xcalloc(json_array_size(list) + 1, sizeof(*rows));
	json_array_foreach(list, i, c)
	{
		_cleanup_json_ json_t *info = NULL;
		struct bv_service_status *row;
		json_t *labels = json_object_get(c, "Labels");
		const char *service = bv_engine_label(labels, BV_LABEL_SERVICE),
			   *id = jstr(c, "Id");
		if (!id || !is_ours(s, labels))
			continue;
		if (podman) {
			r = inspect_container(&info, e, id, err);
			if (r < 0) {
				bv_service_status_free(rows, n);
				return r;
			}
			if (!info)
				continue; /* removed meanwhile */
		}
		row = &rows[n++];
		row->service = bv_xstrdup(service ? service : "");
		row->container = bv_xstrdup(container_name(c));
		if (info)
			row_from_inspect(row, info);
		else
			row_from_list(row, c);
		row->ports = format_ports(json_object_get(c, "Ports"));
	}
	qsort(rows, n, sizeof(*rows), compare_rows);
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- logs, restart -------------------------------------------------------------------- */

/* The container of `service`, which must be this project's. */
static int find_service_container(json_t **out, struct bv_engine *e, const struct bv_services *s,
				  const char *service, struct bv_error **err)
{
	_cleanup_free_ char *name = bv_services_container_name(s, service);
	json_t *info = NULL;
	int r = inspect_container(&info, e, name, err);
	if (r < 0)
		return r;
	if (!info)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "service '%s' has no container; run 'bv up %s'", service,
				     service);
	if (!is_ours(s, jpath(info, "Config", "Labels", NULL)) || !jstr(info, "Id")) {
		json_decref(info);
		return bv_error_setc(err, BV_EEXISTS, 0,
				     "container '%s' does not belong to this project", name);
	}
	*out = info;
	return 0;
}

int bv_services_logs(struct bv_engine *e, const struct bv_services *s, const char *service,
		     const struct bv_services_log_options *o, struct bv_error **err)
{
	_cleanup_json_ json_t *info = NULL;
	const struct bv_engine_logs lo = {.follow = o->follow, .timestamps = o->timestamps};
	int r = find_service_container(&info, e, s, service, err);
	if (r < 0)
		return r;
	return stream_logs(e, jstr(info, "Id"), json_is_true(jpath(info, "Config", "Tty", NULL)),
			   &lo, o->on_line, o->payload, err);
}

int bv_services_restart(struct bv_engine *e, const struct bv_services *s, const char *service,
			uint64_t timeout_ns, const struct bv_services_events *events,
			struct bv_error **err)
{
	_cleanup_json_ json_t *info = NULL;
	_cleanup_free_ char *what = NULL;
	const char *id;
	int r = find_service_container(&info, e, s, service, err);
	if (r < 0)
		return r;
	id = jstr(info, "Id");
	what = bv_xasprintf("service '%s'", service);
	event(events, service, "restarting");
	r = bv_engine_container_restart(e, id, STOP_TIMEOUT_S, what, err);
	if (r < 0)
		return r;
	r = wait_ready(e, service, id, timeout_ns ? timeout_ns : DEFAULT_TIMEOUT_NS, events, err);
	if (r >= 0)
		event(events, service, "restarted");
	return r;
}
