/*
 * engine-internal.h - the typed Docker Engine API: one function per endpoint bv calls, on
 * top of the transport of bv/engine.h.  The docker backend, sessions and project services
 * all go through it; no other file builds an Engine API path, escapes a value for one or
 * decides what an HTTP status means.
 *
 * Calling sequence:
 *   struct bv_engine *e;   bv_engine_open(&e, NULL, &err);
 *   char *id;
 *   bv_engine_container_create(&id, e, "bv-p-1234abcd-work", body, "session 'work'", &err);
 *   bv_engine_container_start(e, id, "session 'work'", &err);
 *   json_t *c;   bv_engine_container_inspect(&c, e, id, &err);        c NULL: no such container
 *   bv_engine_container_remove(e, id, "session 'work'", &err);       absent is done
 *   json_t *img; bv_engine_image_ensure(&img, NULL, e, &want, &err); present, pulled, verified
 *
 * Every call has one success policy, the same for every caller:
 *
 *   call                     success            also success                 else
 *   container create         201 + Id           -                            409: BV_EEXISTS
 *   container start          204                304 running already          404: BV_ENOTFOUND
 *   container stop           204                304 stopped already, 404 gone
 *   container restart        204                -
 *   container kill           204                404 gone, 409 not running
 *   container remove         2xx                404 gone, 409 removal under way
 *   container inspect        200 + Id           404: *out NULL
 *   container wait           200 + StatusCode   -
 *   container list/logs      200                -
 *   container put archive    200                -
 *   container healthcheck    200                409 not running, no check    (Podman only)
 *   exec create              201 + Id           409 container stopped: started once, retried
 *   exec inspect             200                -
 *   image inspect            200 + Id           404: *out NULL
 *   image remove             2xx                404 gone                     409: BV_EEXISTS
 *   image list               200 + array        -
 *   image commit             201                -
 *   image pull, build        200, no "error"    -                            404: BV_ENOTFOUND
 *                            in the stream
 *   network inspect          200                404: *out NULL
 *   network list             200 + array        -
 *   network create           200, 201 + Id      -                            409: BV_EEXISTS
 *   network remove           2xx                404 gone
 *   volume inspect           200                404: *out NULL
 *   volume create            201                -
 *   volume remove            2xx                404 gone                     409 in use: BV_EEXISTS
 *   volume list              200 + Volumes      -
 *   network connect          200                -
 *   network disconnect       200                404 gone
 *
 * Deadlines (the classes of bv/engine.h): every call above is short except
 *
 *   container stop, restart  short + the stop timeout `timeout_s`
 *   container wait           none once connected
 *   container logs           none with `follow`, else long
 *   container attach, exec start   the response head short, then none
 *   put archive, image commit, pull, build   long (an idle limit, no total)
 *
 * and every failure to get an answer (a deadline, a lost connection, a body that is not JSON)
 * comes back as "could not <verb> <what>: <what the transport saw>".
 *
 * Any other status is an error made by bv_engine_fail(): "could not <verb> <what>: <the
 * engine's message>", classified by status (404 BV_ENOTFOUND, 409 BV_EEXISTS, else BV_ERR).
 * `what` names the object as the user knows it ("session 'work'", "the container", "container
 * 'bv-x'"); a container create refused with 409 says "<what> exists already".
 *
 * Labels.  bv writes labels in one namespace, "bv.*" (BV_LABEL_*).  Containers made by older
 * versions carry "io.bv.*"; bv_engine_label() reads a label under either name, so they are
 * still found.
 *
 * Images.  bv_engine_image_ensure() is the one way an image becomes available: it looks the
 * image up under each of its names, pulls it when the engine has none (with bv's registry
 * credentials), and, when the caller knows the locked digest, checks that the engine's copy
 * carries it (RepoDigests), before and after the pull.  A tag on an engine can point at
 * anything; the digest cannot.
 *
 * Ownership: strings and JSON passed in are borrowed; ids (char **) are new strings and
 * documents (json_t **) new references, written only on success.
 *
 * Errors: 0 or a negative enum bv_error_code with *err set; `err` may be NULL.
 */
#ifndef BV_ENGINE_INTERNAL_H
#define BV_ENGINE_INTERNAL_H

#include <bv/engine.h>
#include <jansson.h>
#include <stdbool.h>

struct bv_error;

/* ---- Labels ---- */

#define BV_LABEL_PROJECT       "bv.project"  /* the project's root */
#define BV_LABEL_TOOL          "bv.tool"     /* the tool id a container runs */
#define BV_LABEL_IMAGE         "bv.image"    /* the reference a session was started from */
#define BV_LABEL_SESSION       "bv.session"  /* a session's name */
#define BV_LABEL_SNAPSHOT      "bv.snapshot" /* "1" on session snapshots */
#define BV_LABEL_KEY           "bv.key"      /* a snapshot's key, or a cached step's */
#define BV_LABEL_CACHE         "bv.cache"    /* "1" on a cached step's snapshot */
#define BV_LABEL_RESTORED_FROM "bv.restored-from"
#define BV_LABEL_WARM          "bv.warm"        /* a warm session's image digest */
#define BV_LABEL_WARM_CONFIG   "bv.warm-config" /* what it was created with */
#define BV_LABEL_ENTRYPOINT    "bv.entrypoint"  /* the image's, as JSON */
#define BV_LABEL_CMD           "bv.cmd"
#define BV_LABEL_SERVICE       "bv.service"   /* a project service's name */
#define BV_LABEL_CONFIG        "bv.config"    /* the digest of its definition */
#define BV_LABEL_BUILT_FOR     "bv.built-for" /* on images built for a service: the root */
#define BV_LABEL_BUILT_AS      "bv.built-as"  /* and the service */
#define BV_LABEL_VOLUME        "bv.volume"    /* a project volume's name in bv.toml */

/* The value of label `name` ("bv.x") in a Labels object, else of "io.bv.x"; NULL if none. */
const char *bv_engine_label(json_t *labels, const char *name);

/* Whether an image's RepoDigests ("name@sha256:...") hold `digest` (see bv/docker.h). */
bool bv_engine_repo_digests_match(json_t *repo_digests, const char *digest);

/* ---- Containers ---- */

/* `name` NULL: the engine picks one.  *id_out is the new container's id. */
int bv_engine_container_create(char **id_out, struct bv_engine *e, const char *name, json_t *body,
			       const char *what, struct bv_error **err);
int bv_engine_container_start(struct bv_engine *e, const char *id, const char *what,
			      struct bv_error **err);
int bv_engine_container_stop(struct bv_engine *e, const char *id, int timeout_s, const char *what,
			     struct bv_error **err);
int bv_engine_container_restart(struct bv_engine *e, const char *id, int timeout_s,
				const char *what, struct bv_error **err);
/* `signal` is a name: "SIGINT", "SIGKILL". */
int bv_engine_container_kill(struct bv_engine *e, const char *id, const char *signal,
			     const char *what, struct bv_error **err);
/* Forced, with its anonymous volumes. */
int bv_engine_container_remove(struct bv_engine *e, const char *id, const char *what,
			       struct bv_error **err);
/*
 * Removes a container bv created when a later step failed (a start that timed out, an attach
 * that broke): forced, with a short deadline of its own, errors ignored, so the caller
 * reports the first error and leaves nothing half-created behind.
 */
void bv_engine_container_discard(struct bv_engine *e, const char *id);
/* By name or id; *out NULL (and 0) when there is no such container. */
int bv_engine_container_inspect(json_t **out, struct bv_engine *e, const char *ref,
				struct bv_error **err);
/* Waits until it stops; *status_out is its exit status. */
int bv_engine_container_wait(int *status_out, struct bv_engine *e, const char *id, const char *what,
			     struct bv_error **err);
/* Every container (running or not) carrying all of `labels` ("k" or "k=v", NULL-ended). */
int bv_engine_container_list(json_t **out, struct bv_engine *e, const char *const *labels,
			     const char *what, struct bv_error **err);

struct bv_engine_logs {
	bool follow;
	bool timestamps;
	int tail; /* the last lines only; 0: all */
};
/* The log (stdout and stderr, multiplexed unless it has a tty) through on_data. */
int bv_engine_container_logs(struct bv_engine *e, const char *id, const struct bv_engine_logs *o,
			     bv_engine_data_fn on_data, void *payload, struct bv_error **err);
/* A hijacked attach to stdout and stderr, and stdin when `with_stdin`. */
int bv_engine_container_attach(struct bv_engine *e, const char *id, bool with_stdin,
			       const struct bv_engine_attach_options *o, struct bv_error **err);
/* Unpacks the tar read from `tar_fd` into directory `target` of the container. */
int bv_engine_container_put_archive(struct bv_engine *e, const char *id, const char *target,
				    int tar_fd, const char *what, struct bv_error **err);
/* Podman: runs the container's healthcheck now (what `podman healthcheck run` does). */
int bv_engine_container_healthcheck(struct bv_engine *e, const char *id, struct bv_error **err);

/* ---- Execs ---- */

int bv_engine_exec_create(char **id_out, struct bv_engine *e, const char *container_id,
			  json_t *body, const char *what, struct bv_error **err);
/* Starts it attached (no tty) and streams it until it ends. */
int bv_engine_exec_start(struct bv_engine *e, const char *exec_id,
			 const struct bv_engine_attach_options *o, struct bv_error **err);
int bv_engine_exec_inspect(json_t **out, struct bv_engine *e, const char *exec_id,
			   struct bv_error **err);

/* ---- Images ---- */

/* *out NULL (and 0) when the engine has no image `ref`. */
int bv_engine_image_inspect(json_t **out, struct bv_engine *e, const char *ref,
			    struct bv_error **err);
int bv_engine_image_remove(struct bv_engine *e, const char *ref, bool force, struct bv_error **err);
int bv_engine_image_list(json_t **out, struct bv_engine *e, const char *const *labels,
			 const char *what, struct bv_error **err);
/* Commits container `id` as repo:tag with `labels` (a JSON object of strings). */
int bv_engine_image_commit(struct bv_engine *e, const char *id, const char *repo, const char *tag,
			   json_t *labels, struct bv_error **err);
/*
 * POST /images/create (see bv_engine_pull); `what` names the image in messages ("could not
 * pull <what>: ..."); NULL: '<repo>@<tag>'.
 */
int bv_engine_image_pull(struct bv_engine *e, const char *repo, const char *tag,
			 int (*on_event)(json_t *event, void *payload), void *payload,
			 const char *what, struct bv_error **err);
struct bv_engine_build {
	const char *tag;
	const char *dockerfile; /* relative to the context */
	json_t *labels;         /* object of strings */
	json_t *buildargs;      /* object of strings, or NULL */
	const char *target;     /* the stage to build, or NULL */
	bool buildkit;          /* POST /build?version=2: only where bv_engine_has_buildkit() */
	const char *platform;   /* "linux/amd64", or NULL: the engine's own */
};
/*
 * Builds the tar build context read from `context_fd`; events as for a pull.  With BuildKit
 * the stream also carries aux events: "moby.buildkit.trace" (progress, buildkit.h) and
 * "moby.image.id" (the image built).
 */
int bv_engine_image_build(struct bv_engine *e, const struct bv_engine_build *o, int context_fd,
			  int (*on_event)(json_t *event, void *payload), void *payload,
			  const char *what, struct bv_error **err);
/*
 * Builds directory `context` (its .dockerignore applied, o->dockerfile relative to it): the
 * context goes to an unlinked temporary file as a tar, then to bv_engine_image_build().  The
 * one build path of bv (services, bv publish).  "could not send the build context of <what>"
 * when the directory cannot be read.
 */
int bv_engine_build_dir(struct bv_engine *e, const struct bv_engine_build *o, const char *context,
			int (*on_event)(json_t *event, void *payload), void *payload,
			const char *what, struct bv_error **err);
/* An unlinked temporary file in TMPDIR (else /tmp), read-write; or a negative error. */
int bv_engine_temp_fd(struct bv_error **err);
/*
 * Exports image `ref` (GET /images/{name}/get, a docker-archive) into a new OCI image layout
 * at `layout` (created) holding that one image as `name`: the config as it is, the layers as
 * the plain tars the archive holds (so their digests are the config's diff_ids) with the
 * media type application/vnd.oci.image.layer.v1.tar.  For bv_push("oci:<layout>:<name>").
 */
int bv_engine_image_export_oci(struct bv_engine *e, const char *ref, const char *layout,
			       const char *name, struct bv_error **err);
/*
 * Whether the engine builds with BuildKit: dockerd from API 1.39 on (its /_ping sends
 * Builder-Version only when daemon.json turns BuildKit on by default, so that header cannot
 * tell); never Podman's service, which ignores version=2 and builds with Buildah.
 */
bool bv_engine_has_buildkit(const struct bv_engine *e);

struct bv_engine_image_want {
	const char *const *names; /* NULL-ended names to look for; the last is what a pull makes */
	const char *repo;         /* pulled from: "registry/repository" (the mirror's) */
	const char *tag;          /* the tag or "sha256:..." to pull */
	const char *digest;       /* the locked digest every copy must carry; NULL: none */
	const char *subject;      /* the tool or reference, for messages */
	const char *pull_what;    /* for pull failures (bv_engine_image_pull); may be NULL */
	int (*on_event)(json_t *event, void *payload); /* pull progress; may be NULL */
	void *payload;
};

/* The first of w->names the engine has, checked against w->digest; *out NULL when none. */
int bv_engine_image_find(json_t **out, struct bv_engine *e, const struct bv_engine_image_want *w,
			 struct bv_error **err);
/* Finds it, else pulls it and finds it again; *pulled_out (may be NULL): whether it pulled. */
int bv_engine_image_ensure(json_t **out, bool *pulled_out, struct bv_engine *e,
			   const struct bv_engine_image_want *w, struct bv_error **err);

/* ---- Networks ---- */

/* By name or id; *out NULL (and 0) when there is no such network. */
int bv_engine_network_inspect(json_t **out, struct bv_engine *e, const char *name,
			      struct bv_error **err);
/*
 * The networks named exactly `name` (NULL: any name) carrying all of `labels` ("k" or "k=v",
 * NULL-ended; may be NULL), as the engine lists them (Id, Name, Created, Labels; Containers
 * is empty in a list: inspect a network for those).  dockerd lets several networks share a
 * name; Podman does not.
 */
int bv_engine_network_list(json_t **out, struct bv_engine *e, const char *name,
			   const char *const *labels, struct bv_error **err);
/* A bridge network with `labels` (a JSON object of strings); *id_out (may be NULL) its id. */
int bv_engine_network_create(char **id_out, struct bv_engine *e, const char *name, json_t *labels,
			     struct bv_error **err);
/* By name or id (an id is never ambiguous; a name shared by several networks is). */
int bv_engine_network_remove(struct bv_engine *e, const char *name, struct bv_error **err);
/* Disconnects container `container` (name or id) from `network` (name or id), forced. */
int bv_engine_network_disconnect(struct bv_engine *e, const char *network, const char *container,
				 struct bv_error **err);
/* Connects container `id` to network `name`, reachable there under `aliases` (may be NULL). */
int bv_engine_network_connect(struct bv_engine *e, const char *name, const char *id,
			      const char *const *aliases, struct bv_error **err);

/* ---- Volumes ---- */

int bv_engine_volume_inspect(json_t **out, struct bv_engine *e, const char *name,
			     struct bv_error **err);
/* A local volume with `labels` (a JSON object of strings); creating an existing one is a
 * success, as the engines answer it (the caller inspects its labels first). */
int bv_engine_volume_create(struct bv_engine *e, const char *name, json_t *labels,
			    struct bv_error **err);
int bv_engine_volume_remove(struct bv_engine *e, const char *name, struct bv_error **err);
/* GET /volumes with label filters: *out is the array of volumes (empty for none). */
int bv_engine_volume_list(json_t **out, struct bv_engine *e, const char *const *labels,
			  const char *what, struct bv_error **err);

/* ---- The layer's own plumbing (engine_*.c only) ---- */

/* How long a call may take; the limits come from bv_engine_open() (see bv/engine.h). */
enum bv_engine_wait {
	BV_ENGINE_WAIT_SHORT,  /* the whole call within BV_ENGINE_TIMEOUT (+ extra_ms) */
	BV_ENGINE_WAIT_LONG,   /* no total; BV_ENGINE_LONG_TIMEOUT without a byte either way */
	BV_ENGINE_WAIT_STREAM, /* no limit once connected */
};

/* bv_engine_call(), bv_engine_stream() and bv_engine_request() of class `wait`. */
int bv_engine_call_within(long *status_out, json_t **resp_out, struct bv_engine *e,
			  const char *method, const char *path, json_t *body,
			  enum bv_engine_wait wait, long extra_ms, struct bv_error **err);
int bv_engine_stream_within(long *status_out, json_t **error_body_out, struct bv_engine *e,
			    const char *method, const char *path, const char *content_type,
			    int upload_fd, bv_engine_data_fn on_data, void *payload,
			    enum bv_engine_wait wait, struct bv_error **err);
int bv_engine_request_within(json_t **out, struct bv_engine *e, const char *method,
			     const char *path, json_t *body, const long *also_ok, const char *verb,
			     const char *what, enum bv_engine_wait wait, long extra_ms,
			     struct bv_error **err);

/*
 * One call whose success is a 2xx status or one of `also_ok` (0-ended, may be NULL); else
 * "could not <verb> <what>".  *out (may be NULL) gets the response on success.
 */
int bv_engine_request(json_t **out, struct bv_engine *e, const char *method, const char *path,
		      json_t *body, const long *also_ok, const char *verb, const char *what,
		      struct bv_error **err);

/*
 * GET `path` of one object: 200 gives *out, 404 gives *out = NULL and 0 (it does not exist),
 * anything else fails with "could not inspect <what>".
 */
int bv_engine_inspect(json_t **out, struct bv_engine *e, const char *path, const char *what,
		      struct bv_error **err);

/* "filters={"label":[...]}", URL-escaped (new string), for the list endpoints. */
char *bv_engine_label_filters(const char *const *labels);

/* GET /<kind>/json with label filters: "containers" (all, running or not) or "images". */
int bv_engine_list(json_t **out, struct bv_engine *e, const char *kind, const char *const *labels,
		   const char *what, struct bv_error **err);

/* A stream of JSON progress objects (pull, build), one per line; the first error is kept. */
struct bv_engine_progress {
	char *line;
	size_t len, alloc;
	bool too_long;
	char *error; /* the first {"error": ...} or errorDetail.message, shown safely */
	int (*on_event)(json_t *event, void *payload);
	void *payload;
};
int bv_engine_progress_feed(const char *data, size_t len, void *payload);
/* The last line without a newline; 0 or what on_event returned. */
int bv_engine_progress_finish(struct bv_engine_progress *p);
void bv_engine_progress_release(struct bv_engine_progress *p);

#endif
