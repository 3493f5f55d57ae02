/*
 * bv/session.h - persistent sessions: long-lived containers on a Docker Engine (dockerd or
 * Podman's service) that commands are exec'd into, snapshotted by commit, restored from a
 * snapshot, and cached steps that skip a command whose result is already an image.
 *
 * Calling sequence (bv session ...):
 *   struct bv_session_config cfg = {.project_root = root};
 *   struct bv_session_ctx *s;
 *   if (bv_session_open(&s, NULL, &cfg, &err) < 0) ...        DOCKER_HOST or the default socket
 *   bv_session_start(s, "work", &(struct bv_session_image){...}, &err);
 *   struct bv_session_exec x = {.argv = argv, .stdin_fd = -1, .stdout_fd = 1, .stderr_fd = 2};
 *   struct bv_session_exec_result res;
 *   bv_session_exec(&res, s, "work", &x, &err);                res.status: the command's
 *   bv_session_snapshot(&image, s, "work", NULL, &err);         "bv-snapshot:<id12>-<ns>-<pid>"
 *   bv_session_restore(&name, s, image, "work2", &err);
 *   bv_session_remove(s, "work", &err);                          absent is success
 *   bv_session_close(s);
 *
 * What a session is.  A container started from a tool's locked image (reference + digest,
 * pulled by the engine (bv_engine_pull, with bv's registry credentials) from the configured
 * mirror of its registry when the engine lacks it) or from any
 * image reference, running `sleep infinity` as its only process, as the caller's uid:gid,
 * with the project mounted read-write at /workspace (also the working directory).  It is
 * labelled bv.session=<name> and bv.project=<project root>, and named
 *   bv-<project directory>-<8 hex of sha256(project root)>-<session name>
 * (the root's last component reduced to [a-z0-9_.-], at most 32 characters), so one name
 * finds it in one request, two projects in directories of the same name never share
 * sessions, and creating a session that exists fails atomically in the engine (409) instead
 * of racing.  The name comes from the root alone, never from bv.toml's name: every caller
 * (the warm runner knows only the root) makes the same one, and editing bv.toml does not
 * lose a project's sessions.  Session names are [A-Za-z0-9][A-Za-z0-9_.-]*, at most 63
 * characters.  The restart policy is unless-stopped,
 * so sessions survive a daemon restart.
 *
 * exec creates an engine exec (argv, env, working directory: the caller's place in the project
 * under /workspace unless told otherwise), starts it over a hijacked
 * connection (bv_engine_attach_with) and streams its stdout and stderr to the caller's
 * descriptors in whole lines: each write(2) carries only
 * complete lines, so the two streams sharing one terminal never tear a line; a last line
 * without a newline is written at the end.  The status is the exec's ExitCode (128 + N for
 * a command killed by signal N).  Standard input is forwarded only when stdin_fd >= 0.
 *
 * cp uploads a host directory's contents as a tar (written with libarchive into an unlinked
 * temporary file, symlinks kept as symlinks, devices and sockets skipped) with PUT
 * /containers/{id}/archive.  The target directory is created first by an exec of
 * `mkdir -p` as root (and given to the session's user when it did not exist), because a tar
 * carrying the parent directories would also reset the owner and mode of existing ones such
 * as /usr.
 *
 * Snapshots are images made by POST /commit.  Without a key the tag is unique to the
 * container and the moment (bv-snapshot:<container id 12>-<realtime ns>-<pid>), so two
 * snapshots taken at once never fight over a tag.  With a key ("repo:tag", or "repo" for
 * :latest) the image gets that name.  Snapshot images carry bv.snapshot=1, bv.session,
 * bv.project and bv.key (empty without a key), which is how bv_session_snapshots() finds
 * them (dockerd takes labels from the commit body, Podman only from LABEL changes, which
 * bv adds for it).  restore starts a new session from any such image (or any image at all).
 *
 * Cached steps (exec with cache_key): the key names the state after a successful command.
 * Its image is bv-cache:<key reduced to [A-Za-z0-9_.-], at most 48>-<16 hex of sha256(key)>
 * with the label bv.key=<key>.  If it exists, the session is recreated from it and the
 * command does not run (result.cached); otherwise the command runs and, on exit status 0
 * only, the session is committed under the key.  Steps of one key take turns: an exclusive
 * OFD lock on <cache>/sessions/keys/<sha256(key)>.step.lock is held from before the lookup
 * until the commit, so of two steps started at once one runs and the other waits (on_wait),
 * then finds the image and restores it; the lock dies with its holder, so a step killed with
 * SIGKILL never blocks the next one.  The key's entry in the LRU store is written before the
 * commit, so no committed image is ever outside the store; a killed step may leave an entry
 * whose image was never made, which costs nothing (removing a missing image succeeds) and is
 * replaced by the next step of the key.  An image carrying the key's bv.key label found by a
 * later step is adopted (used and entered in the store); after each step, untagged images
 * with the key's label (left when commits of one key raced, as older bv versions let them) are
 * removed.  Cached images are bounded: the last-use time of each is kept in
 * <cache>/sessions/cache-lru.json (replaced atomically, read and written under an exclusive OFD
 * lock on cache-lru.lock), and when there are more than the capacity the least recently used
 * are removed from the engine.  A step holds a shared OFD lock on
 * <cache>/sessions/keys/<sha256(key)>.lock from the lookup until it has recreated the session
 * or committed; eviction takes that lock exclusively without waiting and skips the entry when
 * it cannot, so it never removes an image a running step is using.  The capacity is
 * BV_SESSION_CACHE_CAPACITY, else bv.toml's [session] cache_capacity, else 16.
 *
 * Warm runs (`bv run --warm`) are sessions too; the docker backend makes them
 * (lib/runtime/docker-internal.h).
 *
 * Ownership: strings passed in are borrowed; strings and arrays returned are the caller's
 * (free with free() or the *_free functions below).  The context owns the engine it opened;
 * an engine passed in stays the caller's and must outlive the context.
 *
 * Errors: 0 or a negative enum bv_error_code with *err set.  BV_ENOTFOUND for a session or
 * snapshot that does not exist, BV_EEXISTS for a session name that is taken, BV_EINVALID for
 * a bad name or key.  A command that runs and fails is not an error: its status is in the
 * result.
 */
#ifndef BV_SESSION_H
#define BV_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_engine;
struct bv_error;
struct bv_lock;
struct bv_project;
struct bv_strv;

#define BV_SESSION_NAME_MAX               63
#define BV_SESSION_CACHE_CAPACITY_DEFAULT 16

struct bv_session_config {
	const char *project_root; /* absolute; /workspace, the bv.project label, container names */
	const char *cache_dir;    /* bv's cache root (cached-step state); NULL: bv_cache_dir() */
	unsigned cache_capacity;  /* cached snapshots kept; 0: BV_SESSION_CACHE_CAPACITY or 16 */
};

struct bv_session_ctx;

/* The image a session starts from: a tool's locked image, or any image reference. */
struct bv_session_image {
	const char *tool_id;   /* the bv.tool label and messages; may be NULL */
	const char *reference; /* "quay.io/biocontainers/samtools:1.21--h50ea8bc_0", "busybox" */
	const char *digest;    /* "sha256:..." from bv.lock, or NULL: `reference` as it is */
};

/* `engine` NULL: opens the engine at DOCKER_HOST (or the default socket) and owns it. */
int bv_session_open(struct bv_session_ctx **out, struct bv_engine *engine,
		    const struct bv_session_config *cfg, struct bv_error **err);
void bv_session_close(struct bv_session_ctx *s);

/*
 * Starts session `name`.  `image->digest` set: the image pinned by digest (a tool's lock
 * entry), pulled from the mirror of its registry when configured; NULL: `image->reference`
 * is any image reference, used when the engine has it and pulled otherwise.
 */
int bv_session_start(struct bv_session_ctx *s, const char *name,
		     const struct bv_session_image *image, struct bv_error **err);

struct bv_session_exec {
	const char *const *argv; /* NULL-terminated, not empty */
	const char *const *env;  /* "K=V" (K not empty), on top of the session's; may be NULL */
	/* The caller's directory on the host: inside the project, the command starts in the
	 * same place under /workspace, as with bv run; NULL or outside: /workspace. */
	const char *cwd;
	const char *workdir; /* NULL: as `cwd` says; relative: below that; never "" */
	int stdin_fd;        /* -1: the command gets no standard input */
	int stdout_fd;       /* where its output goes, in whole lines */
	int stderr_fd;
	const char *cache_key; /* NULL: a plain exec; else a cached step (see above) */
	/* A cached step that waits for another step of the same key calls this once (may be
	 * NULL), so the caller can say why it does not move. */
	void (*on_wait)(const char *key, void *payload);
	void *payload;
	/* While it runs, SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to bv go to the command (bv's
	 * handlers for them are replaced meanwhile).  Needs an engine on this machine. */
	bool forward_signals;
};

struct bv_session_exec_result {
	int status;  /* the command's exit status; 0 for a cache hit */
	bool cached; /* the command did not run: the session was restored from the key's image */
};

int bv_session_exec(struct bv_session_exec_result *out, struct bv_session_ctx *s, const char *name,
		    const struct bv_session_exec *x, struct bv_error **err);

/* Copies the contents of `host_dir` into the directory `target` (absolute) of the session. */
int bv_session_copy_in(struct bv_session_ctx *s, const char *name, const char *host_dir,
		       const char *target, struct bv_error **err);

/* Commits the session; *image_out is the new image's "repo:tag". */
int bv_session_snapshot(char **image_out, struct bv_session_ctx *s, const char *name,
			const char *key, struct bv_error **err);

/*
 * A new session from `snapshot` (an image reference or id).  `name` NULL: the snapshot's
 * bv.session label.  *name_out is the session's name.
 */
int bv_session_restore(char **name_out, struct bv_session_ctx *s, const char *snapshot,
		       const char *name, struct bv_error **err);

/* Removes the session's container, running or not; a session that does not exist is done. */
int bv_session_remove(struct bv_session_ctx *s, const char *name, struct bv_error **err);

struct bv_session_info {
	char *name;
	char *container; /* the engine's container name */
	char *id;
	char *image; /* the reference it was started from (bv.image), else the engine's */
	char *tool;  /* bv.tool, or NULL */
	char *state; /* "running", "exited", ... */
	int64_t created;
};

/* This project's sessions, sorted by name. */
int bv_session_list(struct bv_session_info **out, size_t *n_out, struct bv_session_ctx *s,
		    struct bv_error **err);
void bv_session_infos_free(struct bv_session_info *v, size_t n);

struct bv_snapshot_info {
	char *image;   /* "repo:tag" (the first tag), or the id when untagged */
	char *id;      /* "sha256:..." */
	char *session; /* bv.session, or NULL */
	char *project; /* bv.project, or NULL */
	char *key;     /* bv.key, or NULL when empty or absent */
	bool cached;   /* a cached step's image */
	int64_t created, size;
};

/* Every bv snapshot the engine holds (any project), sorted by image name. */
int bv_session_snapshots(struct bv_snapshot_info **out, size_t *n_out, struct bv_session_ctx *s,
			 struct bv_error **err);
void bv_snapshot_infos_free(struct bv_snapshot_info *v, size_t n);

/*
 * Removes a snapshot image (untags it while a session still uses it).  `session` NULL: any
 * snapshot; else only one of that session of this project.  BV_ENOTFOUND ("no snapshot 'x'",
 * "no snapshot 'x' in session 'y'") when there is none.
 */
int bv_session_snapshot_remove(struct bv_session_ctx *s, const char *snapshot, const char *session,
			       struct bv_error **err);

/*
 * The capacity of the cached-step store: BV_SESSION_CACHE_CAPACITY, else `project`'s
 * [session] cache_capacity (project may be NULL), else the default.  BV_EINVALID for a value
 * that is not a whole number >= 1.
 */
int bv_session_cache_capacity(unsigned *out, const struct bv_project *project,
			      struct bv_error **err);

/* ---- Pieces without an engine, exposed for the command line and for tests. ---- */

/* 0 when `name` is a valid session name, BV_EINVALID with a message otherwise. */
int bv_session_check_name(const char *name, struct bv_error **err);

/*
 * The engine's container name of session `session` of the project at `project_root` (see
 * above); every container name of a session is made here.  New string.
 */
char *bv_session_container_name(const char *project_root, const char *session);

/* "bv-snapshot:<first 12 of container_id>-<ns>-<pid>".  New string. */
char *bv_session_snapshot_ref(const char *container_id, uint64_t ns, long pid);

/* The image a cached step's `key` is stored as: "bv-cache:<sanitised key>-<hash16>". */
char *bv_session_cache_ref(const char *key);

/*
 * Whole lines out of a byte stream cut anywhere: feed() passes on everything up to and
 * including the last newline it has seen, in one call of `emit`, and keeps the rest; a
 * partial line longer than 64 KiB is passed on as it is (output that never ends a line
 * must not grow without bound).  flush() passes on what is left.  `emit` returns 0 or a
 * negative value, which feed() and flush() return.
 */
struct bv_session_lines {
	int (*emit)(const char *data, size_t len, void *payload);
	void *payload;
	char *pending;
	size_t len, alloc;
};
int bv_session_lines_feed(struct bv_session_lines *l, const char *data, size_t len);
int bv_session_lines_flush(struct bv_session_lines *l);
void bv_session_lines_release(struct bv_session_lines *l);

/*
 * The cached-step store in `state_dir` (<cache>/sessions).  An entry is a key, its image and
 * the last time a step used it (ns since the epoch).
 */
struct bv_session_cache_entry {
	char *key;
	char *image;
	int64_t last_used;
};

/* Removes a cached image from the engine; 0 (also when it was already gone) or negative. */
typedef int (*bv_session_evict_fn)(const char *image, void *payload, struct bv_error **err);

/*
 * Records that `key` (stored as `image`) was used at `now`, then, while more than `capacity`
 * entries remain, evicts the least recently used ones other than `key`: each only when its
 * key lock can be taken exclusively at once, and only when `evict` succeeds.  The images
 * removed are appended to `evicted` (may be NULL).
 */
int bv_session_cache_touch(const char *state_dir, const char *key, const char *image, int64_t now,
			   unsigned capacity, bv_session_evict_fn evict, void *payload,
			   struct bv_strv *evicted, struct bv_error **err);

/* Drops the entries whose image is `image` (a snapshot removed by hand); none is fine. */
int bv_session_cache_forget(const char *state_dir, const char *image, struct bv_error **err);

/* The entries, most recently used first; a missing state file is an empty store. */
int bv_session_cache_load(struct bv_session_cache_entry **out, size_t *n_out, const char *state_dir,
			  struct bv_error **err);
void bv_session_cache_entries_free(struct bv_session_cache_entry *v, size_t n);

/* Takes the key lock of `key` (shared by steps, exclusive by eviction). */
int bv_session_cache_lock_key(struct bv_lock *lk, const char *state_dir, const char *key,
			      bool exclusive, bool wait, struct bv_error **err);

#endif
