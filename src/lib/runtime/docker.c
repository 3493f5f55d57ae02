/*
 * docker.c - the docker backend (see bv/docker.h and bv/runtime.h), on the Engine API client
 * of bv/engine.h.  It never runs the docker CLI.
 *
 * A run is: inspect the pinned image (not there: "run bv sync"), create the container, attach
 * to it (hijacked connection) and only then start it, so no output is lost; copy stdin, stdout
 * and stderr until the engine ends the stream; wait for the exit status; remove the container.
 * The container is removed by bv (AutoRemove would race with /wait on older engines and hide
 * the status) on every path once it exists.  While the tool runs, SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT sent to bv are forwarded to the container (POST /containers/{id}/kill): they arrive
 * through the self-pipe of util/signals.h, which the attach loop watches, so nothing but
 * write(2) happens in the handler.  A second SIGINT or SIGTERM kills the container (SIGKILL).
 */
#include <bv/docker.h>
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/registry.h>
#include <bv/runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/engine/engine-internal.h"
#include "lib/model/hardware-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/runtime/docker-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/log.h"
#include "util/signals.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define PING_TIMEOUT_MS   1000L
#define EPIPE_TICK_NS     50000000L /* 50 ms */
#define EPIPE_GRACE_TICKS 40

struct docker {
	struct bv_engine *e;
	struct bv_mirrors *mirrors;
	bool mirrors_loaded;
	bool no_init; /* a Podman without an init: create without asking for one */
	/*
	 * The image is_available() just inspected, by its pinned name, so the run that follows
	 * in the same process does not ask the engine again (bv run checks, then runs).  It is
	 * used once and only for the same name; it is as fresh as the second inspect was,
	 * since the container is created after either.
	 */
	char *seen_name;
	json_t *seen;
};

/* ------------------------------------------------------------------------------------ */
/* Pure parts (bv/docker.h) */

int bv_docker_image_name(char **repo_out, char **pinned_out, const char *reference,
			 const char *digest, const struct bv_mirrors *mirrors,
			 struct bv_error **err)
{
	struct bv_imageref ref = {0};
	const char *host;
	char *repo;
	int r;

	if (!bv_digest_valid(digest))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid image digest '%s' for '%s'",
				     digest ? digest : "", reference);
	if ((r = bv_imageref_parse(&ref, reference, err)) < 0)
		return r;
	if (ref.digest && strcmp(ref.digest, digest) != 0) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "image reference '%s' names a digest other than the locked %s",
				  reference, digest);
		bv_imageref_release(&ref);
		return r;
	}
	host = mirrors ? bv_mirrors_lookup(mirrors, ref.registry) : NULL;
	repo = bv_xasprintf("%s/%s", host ? host : ref.registry, ref.repository);
	*pinned_out = bv_xasprintf("%s@%s", repo, digest);
	*repo_out = repo;
	bv_imageref_release(&ref);
	return 0;
}

bool bv_docker_repo_digests_match(json_t *repo_digests, const char *digest)
{
	return bv_engine_repo_digests_match(repo_digests, digest);
}

static bool env_has(json_t *env, const char *name)
{
	size_t len = strlen(name), i;
	json_t *v;
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		if (s && strncmp(s, name, len) == 0 && s[len] == '=')
			return true;
	}
	return false;
}

/* A Binds entry cannot hold a path with ':' (its separator) or ',' (Podman splits options). */
static bool bind_safe(const char *path)
{
	return !strchr(path, ':') && !strchr(path, ',');
}

json_t *bv_docker_create_body(const struct bv_run_request *req, const char *pinned,
			      json_t *image_config, uid_t uid, gid_t gid,
			      const char *nvidia_visible, const char *cpuset, bool init)
{
	json_t *body = json_object(), *host = json_object(), *env = json_array();
	json_t *binds = json_array(), *mounts = json_array(), *labels = json_object();
	bool inherit = req->stdio == BV_STDIO_INHERIT, workspace = false;
	const char *workdir = req->workdir;
	char *user;

	if (!body || !host || !env || !binds || !mounts || !labels)
		bv_oom();
	json_object_set_new(body, "Image", json_string(pinned));
	if (req->argv && req->argv[0]) {
		json_t *cmd = json_array();
		for (const char *const *a = req->argv; *a; a++)
			json_array_append_new(cmd, json_string(*a));
		json_object_set_new(body, "Cmd", cmd);
	}
	for (const char *const *e = req->env; e && *e; e++)
		json_array_append_new(env, json_string(*e));
	if (!env_has(env, "HOME") && !env_has(json_object_get(image_config, "Env"), "HOME"))
		json_array_append_new(env, json_string("HOME=/tmp"));
	if (req->gpu && nvidia_visible && !env_has(env, "NVIDIA_VISIBLE_DEVICES")) {
		char *v = bv_xasprintf("NVIDIA_VISIBLE_DEVICES=%s", nvidia_visible);
		json_array_append_new(env, json_string(v));
		free(v);
	}
	json_object_set_new(body, "Env", env);
	user = bv_xasprintf("%u:%u", (unsigned)uid, (unsigned)gid);
	json_object_set_new(body, "User", json_string(user));
	free(user);

	for (size_t i = 0; i < req->n_mounts; i++) {
		const struct bv_run_mount *m = &req->mounts[i];
		if (m->kind == BV_MOUNT_WORKSPACE)
			workspace = true;
		if (bind_safe(m->host) && bind_safe(m->target)) {
			char *b = bv_xasprintf("%s:%s:%s", m->host, m->target,
					       m->read_only ? "ro" : "rw");
			json_array_append_new(binds, json_string(b));
			free(b);
		} else {
			json_array_append_new(mounts,
					      json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind",
							"Source", m->host, "Target", m->target,
							"ReadOnly", m->read_only));
		}
	}
	if (!workdir && workspace)
		workdir = "/workspace";
	if (workdir)
		json_object_set_new(body, "WorkingDir", json_string(workdir));

	json_object_set_new(body, "AttachStdin", json_boolean(inherit));
	json_object_set_new(body, "OpenStdin", json_boolean(inherit));
	json_object_set_new(body, "StdinOnce", json_boolean(inherit));
	json_object_set_new(body, "AttachStdout", json_true());
	json_object_set_new(body, "AttachStderr", json_true());
	json_object_set_new(body, "Tty", json_false());
	if (req->image.tool_id)
		json_object_set_new(labels, BV_LABEL_TOOL, json_string(req->image.tool_id));
	if (req->project_root)
		json_object_set_new(labels, BV_LABEL_PROJECT, json_string(req->project_root));
	json_object_set_new(body, "Labels", labels);

	json_object_set_new(host, "Binds", binds);
	if (json_array_size(mounts))
		json_object_set_new(host, "Mounts", mounts);
	else
		json_decref(mounts);
	json_object_set_new(host, "AutoRemove", json_false());
	if (init)
		json_object_set_new(host, "Init", json_true());
	if (cpuset)
		json_object_set_new(host, "CpusetCpus", json_string(cpuset));
	if (req->gpu)
		json_object_set_new(host, "DeviceRequests",
				    json_pack("[{s:s, s:i, s:[[s]]}]", "Driver", "nvidia", "Count",
					      -1, "Capabilities", "gpu"));
	json_object_set_new(body, "HostConfig", host);
	return body;
}

static struct bv_docker_layer *layer_get(struct bv_docker_progress *dp, const char *id)
{
	for (size_t i = 0; i < dp->n_layers; i++)
		if (strcmp(dp->layers[i].id, id) == 0)
			return &dp->layers[i];
	BV_GROW(dp->layers, dp->alloc, dp->n_layers + 1);
	dp->layers[dp->n_layers] = (struct bv_docker_layer){.id = bv_xstrdup(id)};
	return &dp->layers[dp->n_layers++];
}

static void progress_count(struct bv_docker_progress *dp, double elapsed_s)
{
	uint64_t done = 0, total = 0, fetched = 0;
	size_t n_done = 0;
	for (size_t i = 0; i < dp->n_layers; i++) {
		const struct bv_docker_layer *l = &dp->layers[i];
		total += l->total;
		done += l->done ? l->total : l->current;
		/* "Already exists" layers never report a download */
		fetched += l->done && l->current ? l->total : l->current;
		n_done += l->done;
	}
	/* Docker never mentions the config blob, which bv counts: it is there once done. */
	dp->p.layers_total = dp->n_layers + !dp->podman;
	dp->p.layers_done = n_done + (!dp->podman && dp->p.finished);
	dp->p.bytes_total = total;
	dp->p.bytes_done = done;
	dp->p.bytes_fetched = fetched;
	dp->p.rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
}

bool bv_docker_progress_feed(struct bv_docker_progress *dp, json_t *event, double elapsed_s)
{
	static const char *const layer_states[] = {
		"Pulling fs layer",  "Waiting",    "Downloading",   "Verifying Checksum",
		"Download complete", "Extracting", "Pull complete", "Already exists",
	};
	const char *status = json_string_value(json_object_get(event, "status"));
	const char *id = json_string_value(json_object_get(event, "id"));
	json_t *detail = json_object_get(event, "progressDetail");
	json_int_t current = json_integer_value(json_object_get(detail, "current"));
	json_int_t total = json_integer_value(json_object_get(detail, "total"));
	struct bv_docker_layer *l;
	bool known = false;

	if (!status || !id)
		return false;
	for (size_t i = 0; i < BV_ARRAY_SIZE(layer_states); i++)
		known = known || strcmp(status, layer_states[i]) == 0;
	if (!known)
		return false; /* "Pulling from <repo>" carries the repository as its id */
	l = layer_get(dp, id);
	if (strcmp(status, "Downloading") == 0) {
		if (total > 0)
			l->total = (uint64_t)total;
		if (current > 0)
			l->current = (uint64_t)current;
	} else if (strcmp(status, "Pull complete") == 0 || strcmp(status, "Already exists") == 0 ||
		   (dp->podman && strcmp(status, "Download complete") == 0)) {
		l->done = true;
	}
	progress_count(dp, elapsed_s);
	return true;
}

void bv_docker_progress_finish(struct bv_docker_progress *dp, double elapsed_s)
{
	for (size_t i = 0; i < dp->n_layers; i++)
		dp->layers[i].done = true;
	dp->p.finished = true;
	progress_count(dp, elapsed_s);
}

void bv_docker_progress_release(struct bv_docker_progress *dp)
{
	for (size_t i = 0; i < dp->n_layers; i++)
		free(dp->layers[i].id);
	free(dp->layers);
	dp->layers = NULL;
	dp->n_layers = dp->alloc = 0;
}

/* ------------------------------------------------------------------------------------ */
/* The backend */

static int engine(struct docker *d, struct bv_error **err)
{
	if (d->e)
		return 0;
	return bv_engine_open(&d->e, NULL, err);
}

static int mirrors(struct docker *d, struct bv_error **err)
{
	int r;
	if (d->mirrors_loaded)
		return 0;
	if ((r = bv_mirrors_load(&d->mirrors, err)) < 0)
		return r;
	d->mirrors_loaded = true;
	return 0;
}

static int names_of(struct docker *d, const struct bv_image_spec *img, char **repo, char **pinned,
		    struct bv_error **err)
{
	int r = mirrors(d, err);
	if (r < 0)
		return r;
	return bv_docker_image_name(repo, pinned, img->reference, img->digest, d->mirrors, err);
}

static void seen_drop(struct docker *d)
{
	free(d->seen_name);
	d->seen_name = NULL;
	json_decref(d->seen);
	d->seen = NULL;
}

/* The engine's image `pinned`: *json_out is NULL when the engine does not have it. */
static int image_json(struct docker *d, const char *pinned, json_t **json_out,
		      struct bv_error **err)
{
	if (!pinned) /* names_of() always sets it; said for the analyzer */
		return bv_error_setc(err, BV_ERR, 0, "no image name to look up");
	if (d->seen && d->seen_name && !strcmp(d->seen_name, pinned)) {
		*json_out = TAKE_PTR(d->seen);
		seen_drop(d);
		return 0;
	}
	seen_drop(d);
	return bv_engine_image_inspect(json_out, d->e, pinned, err);
}

static bool docker_is_usable(struct bv_runtime *rt)
{
	(void)rt;
	return bv_engine_ping(NULL, PING_TIMEOUT_MS, NULL) == 0;
}

static int docker_health(struct bv_runtime *rt, struct bv_runtime_info *out, struct bv_error **err)
{
	struct docker *d = rt->state;
	int r = engine(d, err);
	if (r < 0)
		return r;
	out->name = bv_xstrdup("docker");
	out->version = bv_xstrdup(bv_engine_server_version(d->e));
	out->detail = bv_xasprintf("%s at unix://%s, API %s",
				   bv_engine_is_podman(d->e) ? "Podman" : "dockerd",
				   bv_engine_socket(d->e), bv_engine_api_version(d->e));
	return 0;
}

static double since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

struct pulling {
	struct bv_docker_progress dp;
	const struct bv_ensure_options *o;
	struct timespec t0;
};

static int pull_event(json_t *event, void *payload)
{
	struct pulling *pl = payload;
	if (bv_docker_progress_feed(&pl->dp, event, since(&pl->t0)) && pl->o && pl->o->progress)
		pl->o->progress(&pl->dp.p, pl->o->progress_payload);
	return 0;
}

/* What bv_engine_image_ensure() looks for: `pinned`, carrying the locked digest. */
static void want_of(struct bv_engine_image_want *w, const char *names[2], const char *repo,
		    const char *pinned, const struct bv_image_spec *img)
{
	names[0] = pinned;
	names[1] = NULL;
	*w = (struct bv_engine_image_want){
		.names = names,
		.repo = repo,
		.tag = img->digest,
		.digest = img->digest,
		.subject = img->tool_id ? img->tool_id : img->reference,
	};
}

/*
 * Records an image this backend pulled, so `bv cache prune` may remove it later (see
 * bv/docker.h).  Best effort: a record that cannot be written only means prune leaves the
 * image on the engine, which is never worth failing a pull for.
 */
static void record_owned(const char *pinned, const char *digest)
{
	_cleanup_free_ char *cache = NULL;
	struct bv_error *err = NULL;
	if (bv_cache_dir(&cache, &err) < 0 ||
	    bv_docker_owned_record(cache, pinned, digest, &err) < 0) {
		_cleanup_free_ char *msg = bv_error_format(err);
		bv_logf(BV_LOG_DEBUG, "could not record owned image %s: %s", pinned, msg);
		bv_error_free(err);
	}
}

static int ensure_one(struct docker *d, size_t index, const struct bv_image_spec *img,
		      const struct bv_ensure_options *o, struct bv_error **err)
{
	_cleanup_free_ char *repo = NULL, *pinned = NULL;
	struct pulling pl = {.o = o};
	struct bv_engine_image_want w;
	const char *names[2];
	json_t *found = NULL;
	bool pulled = false;
	int r;

	if ((r = names_of(d, img, &repo, &pinned, err)) < 0)
		return r;
	want_of(&w, names, repo, pinned, img);
	w.on_event = pull_event;
	w.payload = &pl;
	pl.dp.p.image = index;
	pl.dp.p.name = img->reference;
	pl.dp.podman = bv_engine_is_podman(d->e);
	clock_gettime(CLOCK_MONOTONIC, &pl.t0);
	r = bv_engine_image_ensure(&found, &pulled, d->e, &w, err);
	json_decref(found);
	if (r >= 0 && pulled) {
		record_owned(pinned, img->digest);
		bv_docker_progress_finish(&pl.dp, since(&pl.t0));
		if (o && o->progress)
			o->progress(&pl.dp.p, o->progress_payload);
	}
	bv_docker_progress_release(&pl.dp);
	return r;
}

static int docker_ensure(struct bv_runtime *rt, const struct bv_image_spec *images, size_t n,
			 const struct bv_ensure_options *o, struct bv_error **err)
{
	struct docker *d = rt->state;
	int r = engine(d, err);
	/* One pull at a time: the engine downloads the layers of each pull in parallel. */
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = ensure_one(d, i, &images[i], o, err);
	return r;
}

static int docker_is_available(struct bv_runtime *rt, const struct bv_image_spec *image,
			       bool *available_out, struct bv_error **err)
{
	struct docker *d = rt->state;
	_cleanup_free_ char *repo = NULL, *pinned = NULL;
	struct bv_engine_image_want w;
	const char *names[2];
	json_t *found = NULL;
	int r;
	if ((r = engine(d, err)) < 0 || (r = names_of(d, image, &repo, &pinned, err)) < 0)
		return r;
	want_of(&w, names, repo, pinned, image);
	if ((r = bv_engine_image_find(&found, d->e, &w, err)) < 0)
		return r;
	*available_out = found != NULL;
	seen_drop(d);
	if (found) {
		d->seen_name = TAKE_PTR(pinned);
		d->seen = found;
	}
	return 0;
}

static int docker_inspect(struct bv_runtime *rt, const struct bv_image_spec *image,
			  struct bv_image_info *out, struct bv_error **err)
{
	struct docker *d = rt->state;
	_cleanup_free_ char *repo = NULL, *pinned = NULL;
	json_t *j = NULL, *size;
	int r;
	if ((r = engine(d, err)) < 0 || (r = names_of(d, image, &repo, &pinned, err)) < 0 ||
	    (r = image_json(d, pinned, &j, err)) < 0)
		return r;
	if (!j)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "image '%s' is not on the engine at '%s'", pinned,
				     bv_engine_socket(d->e));
	size = json_object_get(j, "Size");
	out->size = json_is_integer(size) ? (int64_t)json_integer_value(size) : -1;
	json_decref(j);
	return 0;
}

static int docker_remove(struct bv_runtime *rt, const struct bv_image_spec *image,
			 struct bv_error **err)
{
	struct docker *d = rt->state;
	_cleanup_free_ char *repo = NULL, *pinned = NULL;
	int r;
	seen_drop(d);
	if ((r = engine(d, err)) < 0 || (r = names_of(d, image, &repo, &pinned, err)) < 0)
		return r;
	return bv_engine_image_remove(d->e, pinned, false, err);
}

/* ------------------------------------------------------------------------------------ */
/* Running */

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGINT:
		return "SIGINT";
	case SIGTERM:
		return "SIGTERM";
	case SIGHUP:
		return "SIGHUP";
	case SIGQUIT:
		return "SIGQUIT";
	case SIGPIPE:
		return "SIGPIPE";
	default:
		return "SIGKILL";
	}
}

struct running {
	struct docker *d;
	const char *id;
	bool started;
	unsigned interrupts; /* SIGINT and SIGTERM forwarded so far */
	struct bv_signal_pipe sig;
	struct bv_buf out, err;
};

static int kill_container(struct running *c, int sig, struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%.12s'", c->id);
	return bv_engine_container_kill(c->d->e, c->id, signal_name(sig), what, err);
}

static int start_container(void *payload, struct bv_error **err)
{
	struct running *c = payload;
	int r = bv_engine_container_start(c->d->e, c->id, "the container", err);
	if (r >= 0)
		c->started = true;
	return r;
}

static int forward_signals(void *payload, struct bv_error **err)
{
	struct running *c = payload;
	int sigs[16];
	size_t n = bv_signal_pipe_read(&c->sig, sigs, BV_ARRAY_SIZE(sigs));
	for (size_t i = 0; i < n; i++) {
		int sig = sigs[i], r;
		/* The second interrupt is not a request any more: a tool that ignores them (or
		 * runs as PID 1 without an init, which the kernel shields) is killed. */
		if (sig == SIGINT || sig == SIGTERM)
			sig = c->interrupts++ ? SIGKILL : sig;
		if ((r = kill_container(c, sig, err)) < 0)
			return r;
	}
	return 0;
}

static int capture(int stream, const char *data, size_t len, void *payload, struct bv_error **err)
{
	struct running *c = payload;
	(void)err;
	bv_buf_add(stream == 1 ? &c->out : &c->err, data, len);
	return 0;
}

static int wait_container(struct running *c, int *status_out, struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%.12s'", c->id);
	return bv_engine_container_wait(status_out, c->d->e, c->id, what, err);
}

static bool container_running(struct running *c)
{
	json_t *info = NULL;
	struct bv_error *ignored = NULL;
	bool running = false;
	if (bv_engine_container_inspect(&info, c->d->e, c->id, &ignored) < 0)
		bv_error_free(ignored);
	else
		running = json_is_true(json_object_get(json_object_get(info, "State"), "Running"));
	json_decref(info);
	return running;
}

/*
 * Our stdout (or stderr) is a closed pipe: `bv run tool | head`.  A native tool would die of
 * SIGPIPE at its next write; in a container its writes go to the engine, which never stops
 * reading (and would log them forever).  So the tool gets SIGPIPE, and if it is still there
 * shortly after (it ignores SIGPIPE, or runs as a PID 1 that the kernel shields) SIGKILL; the
 * status is then what the shell reports for a SIGPIPE death.
 */
static int end_after_epipe(struct running *c, int *status_out, struct bv_error **err)
{
	const struct timespec tick = {.tv_sec = 0, .tv_nsec = EPIPE_TICK_NS};
	int r = kill_container(c, SIGPIPE, err);
	bool running = true;
	for (int i = 0; r >= 0 && i < EPIPE_GRACE_TICKS && running; i++) {
		nanosleep(&tick, NULL);
		running = container_running(c);
	}
	if (r >= 0 && running) {
		r = kill_container(c, SIGKILL, err);
		if (r >= 0)
			r = wait_container(c, status_out, err);
		if (r >= 0)
			*status_out = 128 + SIGPIPE;
		return r;
	}
	if (r >= 0)
		r = wait_container(c, status_out, err);
	return r;
}

static void remove_container(struct running *c)
{
	/* Best effort: the tool's result matters more than a leftover, which has labels. */
	bv_engine_container_discard(c->d->e, c->id);
}

static int create_container(struct docker *d, const struct bv_run_request *req, const char *pinned,
			    json_t *image, bool init, char **id_out, struct bv_error **err)
{
	/* the daemon forks the container, so the CPUs a scheduler granted this process are
	 * passed on explicitly; an unrestricted affinity adds nothing */
	bool restricted = false;
	_cleanup_free_ char *cpus = bv_cpu_affinity_list(&restricted);
	json_t *body = bv_docker_create_body(
		req, pinned, json_object_get(image, "Config"), getuid(), getgid(),
		req->gpu ? getenv("NVIDIA_VISIBLE_DEVICES") : NULL, restricted ? cpus : NULL, init);
	_cleanup_free_ char *what = bv_xasprintf("a container of '%s'", pinned);
	int r = bv_engine_container_create(id_out, d->e, NULL, body, what, err);
	json_decref(body);
	return r;
}

/*
 * With an init as PID 1 when the engine has one.  dockerd always ships docker-init; Podman
 * needs catatonit (or init_path in containers.conf), which not every installation has, and
 * says so only in the text of a 500.  So on Podman a failed create is tried once more without
 * the init: a tool that ignores forwarded signals is better than no tool, and any other
 * failure comes back the same the second time.
 */
static int create_with_init(struct docker *d, const struct bv_run_request *req, const char *pinned,
			    json_t *image, char **id_out, struct bv_error **err)
{
	struct bv_error *first = NULL;
	int r;
	if (d->no_init)
		return create_container(d, req, pinned, image, false, id_out, err);
	r = create_container(d, req, pinned, image, true, id_out, &first);
	if (r >= 0 || !bv_engine_is_podman(d->e)) {
		if (r < 0 && err)
			*err = TAKE_PTR(first);
		bv_error_free(first);
		return r;
	}
	bv_error_free(first);
	r = create_container(d, req, pinned, image, false, id_out, err);
	if (r >= 0)
		d->no_init = true;
	return r;
}

static int docker_run(struct bv_runtime *rt, const struct bv_run_request *req,
		      struct bv_run_result *out, struct bv_error **err)
{
	struct docker *d = rt->state;
	_cleanup_free_ char *repo = NULL, *pinned = NULL, *id = NULL;
	struct running c = {
		.d = d, .sig = BV_SIGNAL_PIPE_INIT, .out = BV_BUF_INIT, .err = BV_BUF_INIT};
	bool inherit = req->stdio == BV_STDIO_INHERIT;
	struct bv_engine_attach_options o = {.stdin_fd = inherit ? STDIN_FILENO : -1,
					     .stdout_fd = STDOUT_FILENO,
					     .stderr_fd = STDERR_FILENO,
					     .on_output = inherit ? NULL : capture,
					     .on_ready = start_container,
					     .on_watch = forward_signals,
					     .payload = &c};
	struct bv_error *attach_err = NULL;
	json_t *image = NULL;
	int status = -1, r;

	if ((r = engine(d, err)) < 0 || (r = names_of(d, &req->image, &repo, &pinned, err)) < 0 ||
	    (r = image_json(d, pinned, &image, err)) < 0)
		goto out;
	if (!image) {
		r = bv_error_setc(err, BV_ENOTFOUND, 0,
				  "the image of '%s' is not on the engine at '%s' (run 'bv sync "
				  "--backend docker')",
				  req->image.tool_id ? req->image.tool_id : req->image.reference,
				  bv_engine_socket(d->e));
		goto out;
	}
	if ((r = bv_signal_pipe_install(&c.sig, true, err)) < 0)
		goto out;
	o.watch_fd = c.sig.fd[0];
	if ((r = create_with_init(d, req, pinned, image, &id, err)) < 0)
		goto out;
	c.id = id;
	r = bv_engine_container_attach(d->e, id, inherit, &o, &attach_err);
	if (r < 0 && c.started && bv_error_errno(attach_err) == EPIPE) {
		bv_error_free(attach_err);
		r = end_after_epipe(&c, &status, err);
		goto out;
	} else if (r < 0 && err) {
		*err = TAKE_PTR(attach_err);
		/* Podman creates the container's process when attaching: a missing
		 * command fails here, before the start. */
		if (!c.started)
			r = bv_error_wrap(err, r, "could not start the container");
	}
	bv_error_free(attach_err);
	if (r >= 0 && c.started)
		r = wait_container(&c, &status, err);
out:
	if (c.id)
		remove_container(&c);
	bv_signal_pipe_restore(&c.sig);
	json_decref(image);
	if (r >= 0) {
		out->status = status;
		if (!inherit) {
			out->out = bv_buf_detach(&c.out, &out->out_len);
			out->err = bv_buf_detach(&c.err, &out->err_len);
		}
	}
	bv_buf_release(&c.out);
	bv_buf_release(&c.err);
	return r;
}

/*
 * The image is the one is_available() just found (no second call), checked against the
 * locked digest; the warm run takes its Entrypoint and Cmd, and its id when it must make the
 * container.
 */
static int docker_warm(struct bv_runtime *rt, const struct bv_run_request *req,
		       struct bv_run_result *out, struct bv_error **err)
{
	struct docker *d = rt->state;
	_cleanup_free_ char *repo = NULL, *pinned = NULL;
	json_t *image = NULL;
	int r;
	if ((r = engine(d, err)) < 0 || (r = names_of(d, &req->image, &repo, &pinned, err)) < 0 ||
	    (r = image_json(d, pinned, &image, err)) < 0)
		return r;
	if (!image)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "the image of '%s' is not on the engine at '%s' (run 'bv sync "
				     "--backend docker')",
				     req->image.tool_id ? req->image.tool_id : req->image.reference,
				     bv_engine_socket(d->e));
	r = bv_docker_warm(out, d->e, req, image, err);
	json_decref(image);
	return r;
}

static void docker_free(struct bv_runtime *rt)
{
	struct docker *d = rt->state;
	if (!d)
		return;
	seen_drop(d);
	bv_engine_free(d->e);
	bv_mirrors_free(d->mirrors);
	free(d);
	rt->state = NULL;
}

static const struct bv_runtime_ops docker_ops = {
	.name = "docker",
	.is_usable = docker_is_usable,
	.health = docker_health,
	.ensure = docker_ensure,
	.is_available = docker_is_available,
	.inspect = docker_inspect,
	.run = docker_run,
	.remove = docker_remove,
	.warm = docker_warm,
	.free = docker_free,
};

/*
 * A bv started with stdin (or stdout, stderr) closed would hand that descriptor number to the
 * next thing it opens, the engine's socket, and then copy the socket into the container as
 * its stdin.  /dev/null takes the place; close-on-exec, so children still see it closed.
 */
static void hold_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int got;
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* the lowest free number is `fd`: the ones below it are open by now */
		got = open("/dev/null", (fd ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
		if (got >= 0 && got != fd)
			close(got);
	}
}

int bv_runtime_docker_new(struct bv_runtime **out, struct bv_error **err)
{
	struct bv_runtime *rt = bv_xcalloc(1, sizeof(*rt));
	(void)err;
	hold_std_fds();
	rt->ops = &docker_ops;
	rt->state = bv_xcalloc(1, sizeof(struct docker));
	*out = rt;
	return 0;
}
