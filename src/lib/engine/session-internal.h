/*
 * session-internal.h - what the files of the session module share (bv/session.h is the
 * public half): the context, the session's container, execs, snapshots and cached steps.
 *
 *   session.c    names, the context, images, creating, starting and removing containers
 *   exec.c       whole lines, execs (signals forwarded), bv_session_exec()
 *   stepcache.c  the cached-step LRU store and the cached step itself
 *   snapshot.c   commit, snapshot, restore, snapshot removal
 *   cp.c         copying a host directory into a session
 *   list.c       listing sessions and snapshots
 *
 * The docker backend's warm runs (lib/runtime/docker_warm.c) are built on the same pieces.
 *
 * Calling sequence (a warm run):
 *   struct bv_session_ctx *s;
 *   bv_session_open(&s, engine, &cfg, &err);
 *   json_t *c;
 *   if (bv_session_inspect_container(&c, s->e, cname, &err) == BV_ENOTFOUND) {
 *           bv_session_ensure_image(&img, s->e, &image, &err);
 *           bv_session_create_container(NULL, s, &(struct bv_session_create){...}, &err);
 *   }
 *   struct bv_session_exec_req x = {.argv = argv, .out = {.fd = 1}, .err = {.fd = 2}};
 *   bv_session_exec_in(&status, s->e, id, "the warm session of 'x'", &x, &err);
 *   bv_session_close(s);
 *
 * Ownership: as in bv/session.h; json_t ** outputs are new references, the context's
 * strings are its own.
 *
 * Errors: 0 or a negative enum bv_error_code with *err set; the inspect and find functions
 * return BV_ENOTFOUND without a message when the engine has no such object.
 */
#ifndef BV_SESSION_INTERNAL_H
#define BV_SESSION_INTERNAL_H

#include <bv/session.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/engine/engine-internal.h"

struct bv_buf;
struct bv_engine;
struct bv_error;

#define BV_SESSION_WORKSPACE     "/workspace"
#define BV_SESSION_SNAPSHOT_REPO "bv-snapshot"

struct bv_session_ctx {
	struct bv_engine *e;
	bool own_engine;
	char *root;
	char *cache_dir; /* NULL until a cached step needs it */
	char *user;      /* "uid:gid" */
	unsigned capacity;
};

static inline const char *bv_session_jstr(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static inline const char *bv_session_label(json_t *labels, const char *key)
{
	return bv_engine_label(labels, key);
}

/* The engine's container name of session `name` of this context's project.  New string. */
char *bv_session_cname(const struct bv_session_ctx *s, const char *name);
/* <cache>/sessions, the cached-step store.  New string in *out. */
int bv_session_state_dir(char **out, struct bv_session_ctx *s, struct bv_error **err);

/* ---- Images and containers (session.c) ---- */

int bv_session_inspect_image(json_t **resp_out, struct bv_engine *e, const char *ref,
			     struct bv_error **err);
/* Present (pulled from the mirror when it is not), and carrying the digest when pinned. */
int bv_session_ensure_image(json_t **out, struct bv_engine *e, const struct bv_session_image *spec,
			    struct bv_error **err);
int bv_session_inspect_container(json_t **out, struct bv_engine *e, const char *cname,
				 struct bv_error **err);
/* The session's container, checked to belong to this project. */
int bv_session_find(json_t **out, struct bv_session_ctx *s, const char *name,
		    struct bv_error **err);
int bv_session_remove_container(struct bv_engine *e, const char *ref, struct bv_error **err);

struct bv_session_mount {
	const char *host;   /* an existing host path */
	const char *target; /* absolute, in the container */
	bool read_only;
};

struct bv_session_create {
	const char *session;  /* name */
	const char *image_id; /* what the container runs */
	json_t *labels;       /* borrowed; bv.session and bv.project are added */
	const struct bv_session_mount *mounts;
	size_t n_mounts; /* 0: the project at /workspace */
	bool gpu;
};

/*
 * Creates and starts the container of a session.  BV_EEXISTS when the name is taken.  A
 * container that cannot be started is removed again, so a failed start leaves nothing.
 */
int bv_session_create_container(char **id_out, struct bv_session_ctx *s,
				const struct bv_session_create *c, struct bv_error **err);

/* ---- Execs (exec.c) ---- */

struct bv_session_sink {
	int fd;           /* >= 0: write here */
	struct bv_buf *b; /* else: collect here */
	bool broken;      /* the reader went away: drop the rest */
};

struct bv_session_exec_req {
	const char *const *argv;
	const char *const *env;
	const char *workdir;
	const char *user; /* NULL: the container's */
	int stdin_fd;
	struct bv_session_sink out, err;
	bool forward_signals;
	/*
	 * No container `id` (or it went away before the command started): BV_ENOTFOUND with no
	 * message, and nothing ran, so the caller may make the container and try again.
	 */
	bool absent_ok;
};

/*
 * Runs one command in container `id` (a name or an id; started first when it stopped) and
 * returns its exit status.  `what` names the session in messages.
 */
int bv_session_exec_in(int *status_out, struct bv_engine *e, const char *id, const char *what,
		       struct bv_session_exec_req *x, struct bv_error **err);

/* ---- Snapshots (snapshot.c) and cached steps (stepcache.c) ---- */

int bv_session_commit(struct bv_engine *e, const char *id, const char *repo, const char *tag,
		      json_t *labels, struct bv_error **err);
json_t *bv_session_snapshot_labels(struct bv_session_ctx *s, const char *session, const char *key,
				   bool cached);
/* The labels a session's container carries over when it is recreated from an image. */
json_t *bv_session_carried_labels(json_t *container_or_image_config);
/* A bv_session_evict_fn whose payload is the engine. */
int bv_session_evict_image(const char *image, void *payload, struct bv_error **err);

/* A cached step's key and who to tell when it waits for another step of that key. */
struct bv_session_step {
	const char *key;
	void (*on_wait)(const char *key, void *payload);
	void *payload;
};

/*
 * Runs `x` in session `name` as the cached step `step->key`, or restores the session from the
 * key's image (see bv/session.h).  The session is looked up again once the step's turn comes:
 * a step of the same key that ran meanwhile may have replaced its container.
 */
int bv_session_cached_step(struct bv_session_exec_result *out, struct bv_session_ctx *s,
			   const char *name, struct bv_session_exec_req *x,
			   const struct bv_session_step *step, struct bv_error **err);

#endif
