/*
 * bv/services.h - project services: long-running containers a project declares in bv.toml
 * ([[services]]), started in dependency order on a Docker Engine API (dockerd, or Podman's
 * Docker-compatible service) by `bv up`, listed by `bv ps`, stopped by `bv down`.
 *
 *   [[services]]
 *   name = "web"                          [a-z0-9][a-z0-9_.-]*, at most 63 characters
 *   build = "web"                         or: image = "nginx:1.25", or: tool = "samtools",
 *                                         or: build = { context = "web", dockerfile = "...",
 *                                                       args = { V = "1" }, target = "run" }
 *   dockerfile = "Dockerfile"             (build only; relative to the context)
 *   build_args = { VERSION = "1.2" }      (build only; --build-arg)
 *   target = "runtime"                    (build only; the stage of a multi-stage Dockerfile)
 *   buildkit = true                       (build only; as DOCKER_BUILDKIT=1 does for all)
 *   command = ["busybox", "httpd", "-f"]
 *   env = { GREETING = "hi" }
 *   working_dir = "/srv"                  user = "1000:1000"
 *   ports = ["8080:80", "0.0.0.0:8443:443/tcp"]     bound to 127.0.0.1 unless an address is given
 *   volumes = ["./conf:/etc/app:ro", "data:/var/lib/x", "/scratch"]
 *                                         host path (starts with '.', '/' or '~'), named
 *                                         volume (declared in [volumes]) or anonymous volume
 *   allow_outside = true                  host paths and build contexts outside the project
 *   depends_on = ["db"]
 *   healthcheck = { test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"], interval = "1s",
 *                   timeout = "500ms", start_period = "2m", retries = 3 }
 *
 *   [volumes]
 *   data = {}                             every named volume a service mounts, as in compose
 *
 * Named volumes are the engine's volumes bv-<project>_<name>, labelled bv.project and
 * bv.volume, created by `bv up`, kept by `bv down` and removed by bv_services_remove_volumes()
 * (`bv down --volumes`).  Anonymous volumes go with their container: a recreated container
 * gets new ones.  Unknown keys in [[services]] and its tables are errors ("bv.toml:12: unknown
 * key 'buld' in [[services]] 'web'"): a misspelt option must not be silently dropped.
 *
 * Calling sequence:
 *   struct bv_services_lock *l;   (up, down, restart: first, so bv.toml is read under it)
 *   if (bv_services_lock(&l, project_root, on_wait, NULL, &err) < 0) ...
 *   struct bv_services *s;
 *   if (bv_services_parse(&s, project, &err) < 0) ...       "bv.toml:12:9: ..." errors
 *   bv_strv_foreach(w, &s->warnings) print w;                (none today)
 *   for (size_t i = 0; i < s->n; i++) s->v[s->order[i]] ...  dependencies before dependents
 *   struct bv_engine *e;  bv_engine_open(&e, NULL, &err);
 *   bv_services_up(e, s, &options, &err);     bv_services_down(e, s, &events, &err);
 *   bv_services_ps(&rows, &n, e, s, &err);    bv_services_logs(e, s, "web", &logopts, &err);
 *   bv_services_free(s);   bv_services_unlock(l);
 *
 * What the engine sees: every container is named bv-<project>-<service>, labelled
 * bv.project=<project root> and bv.service=<name>, and attached to the bridge network
 * bv-<project>-net (by its id) with the service name as its DNS alias, so services reach
 * each other by name.  <project> is the project's name, lower-cased, with characters an engine name
 * cannot hold replaced by '-'.  The root label is what makes a container or network the project's:
 * a same-named network or container without it is refused, never reused or removed, so two
 * projects that happen to share a name cannot tear each other down.  A label bv.config holds
 * a digest of the container's whole definition (and its image id): `bv up` keeps a running
 * container whose definition did not change and that the engine still shows as bv made it
 * (see bv_services_up), and recreates any other.
 *
 * Health: `bv up` starts a service only when its dependencies are ready: healthy when they
 * have a healthcheck (their own or their image's), running otherwise.  dockerd runs
 * healthchecks itself.  Podman's service never does: it schedules them with systemd timers,
 * and where it runs as a plain service there is no systemd.  Against Podman, bv triggers each
 * check itself, at the check's interval (the first at once), through the endpoint behind
 * `podman healthcheck run` (GET /libpod/containers/{id}/healthcheck), so Podman still applies
 * the timeout, start period and retries and records the verdict where `bv ps` reads it.
 * (Running the test through a detached exec is no substitute: Podman 4.3 reports such an exec
 * as running for minutes after it ended.)  A container that exits before it is ready is an
 * error quoting its exit code and the last lines of its log; so is an "unhealthy" verdict,
 * quoting the last check's output.
 *
 * Ownership: strings of struct bv_service that are `const char *` point into the project's
 * TOML document, so a struct bv_services must not outlive the struct bv_project it was
 * parsed from; everything else belongs to the struct bv_services.
 *
 * Errors: 0 or a negative enum bv_error_code with *err set.  Errors about bv.toml start with
 * "file:line:column: "; engine failures name the service and the operation.
 */
#ifndef BV_SERVICES_H
#define BV_SERVICES_H

#include <bv/toml.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_engine;
struct bv_error;
struct bv_lockfile;
struct bv_mirrors;
struct bv_project;

enum bv_service_source {
	BV_SERVICE_IMAGE = 1, /* any reference, pulled when missing */
	BV_SERVICE_TOOL,      /* a locked tool: its image pinned by digest in bv.lock */
	BV_SERVICE_BUILD,     /* a Dockerfile in a context directory of the project */
};

struct bv_service_port {
	char host_ip[48];        /* "127.0.0.1" unless the mapping names one; IPv6 without [] */
	unsigned host_port;      /* 1..65535 */
	unsigned container_port; /* 1..65535 */
	const char *proto;       /* "tcp" or "udp" (static strings) */
};

enum bv_volume_kind {
	BV_VOLUME_BIND = 0, /* a host path */
	BV_VOLUME_NAMED,    /* a volume of the project, declared in [volumes] */
	BV_VOLUME_ANON,     /* a new volume per container */
};

struct bv_service_volume {
	enum bv_volume_kind kind;
	char *host;      /* BV_VOLUME_BIND: absolute, cleaned; BV_VOLUME_NAMED: the name */
	char *container; /* absolute */
	bool read_only;
	struct bv_toml_pos pos; /* of the entry in bv.toml (0:0 when parsed on its own) */
};

/* Durations are nanoseconds, as the Engine API takes them; 0 means the engine's default. */
struct bv_healthcheck {
	struct bv_strv test; /* ["CMD", argv...], ["CMD-SHELL", line] or ["NONE"]; empty: none */
	int64_t interval_ns, timeout_ns, start_period_ns;
	int64_t retries;
};

/* The engines' interval when none is given: how often bv triggers checks on Podman. */
#define BV_HEALTH_DEFAULT_INTERVAL_NS (30 * INT64_C(1000000000))

struct bv_service {
	const char *name;
	enum bv_service_source source;
	const char *tool;          /* BV_SERVICE_TOOL */
	const char *image;         /* BV_SERVICE_IMAGE, as written */
	char *context;             /* BV_SERVICE_BUILD: absolute directory */
	const char *dockerfile;    /* BV_SERVICE_BUILD: relative to the context */
	struct bv_strv build_args; /* BV_SERVICE_BUILD: "KEY=value", in the file's order */
	const char *target;        /* BV_SERVICE_BUILD: the stage to build, or NULL */
	bool buildkit;             /* BV_SERVICE_BUILD: build with BuildKit where the engine can */
	bool allow_outside;        /* host paths and the context may be outside the project */
	struct bv_strv command;    /* empty: the image's */
	struct bv_strv env;        /* "KEY=value", in the file's order */
	const char *working_dir;   /* NULL: the image's */
	const char *user;          /* NULL: the image's */
	struct bv_service_port *ports;
	size_t n_ports;
	struct bv_service_volume *volumes;
	size_t n_volumes;
	struct bv_healthcheck health;
	struct bv_strv depends_on;
	size_t *deps;                  /* indices into bv_services.v, one per depends_on entry */
	struct bv_toml_pos pos;        /* of the [[services]] entry */
	struct bv_toml_pos source_pos; /* of its tool, image or build value */
};

struct bv_services {
	char *project_root; /* the bv.project label */
	char *project_name; /* the <project> of engine names */
	char *file;         /* bv.toml's path, for messages */
	struct bv_service *v;
	size_t n;
	size_t *order; /* every index of v, dependencies first, otherwise in the file's order */
	struct bv_strv volumes; /* names declared in [volumes], in the file's order */
	struct bv_strv warnings;
};

/* Reads [[services]] from the project's document; a project without any gives n == 0. */
int bv_services_parse(struct bv_services **out, const struct bv_project *p, struct bv_error **err);
void bv_services_free(struct bv_services *s);

/* The service called `name`, or NULL. */
const struct bv_service *bv_services_find(const struct bv_services *s, const char *name);

/*
 * Marks in `selected` (s->n entries) the services named in `names` and everything they depend
 * on, transitively; with n_names == 0, every service.  BV_ENOTFOUND for an unknown name.
 */
int bv_services_select(bool *selected, const struct bv_services *s, const char *const *names,
		       size_t n_names, struct bv_error **err);

/* Engine names (new strings): "bv-<project>-net", "bv-<project>-<service>", and the tag
 * "bv-<project>-<service>:latest" given to images built for a service; volumes
 * "bv-<project>_<volume>" (compose's "<project>_<volume>" with bv's prefix). */
char *bv_services_network_name(const struct bv_services *s);
char *bv_services_volume_name(const struct bv_services *s, const char *volume);
char *bv_services_container_name(const struct bv_services *s, const char *service);
char *bv_services_build_tag(const struct bv_services *s, const char *service);

/*
 * The image a service runs (new string): the image as written, a tool's reference pinned to
 * the digest bv.lock records, or the build tag.  Images from a registry that has a mirror
 * (BV_MIRRORS, mirrors.toml) are taken from the mirror, like every other pull bv makes.
 * `lock` and `mirrors` may be NULL.  A tool that is not locked, or locked without a digest,
 * is a "bv.toml:line:column: " error.
 */
int bv_service_image(char **out, const struct bv_services *s, const struct bv_service *svc,
		     const struct bv_lockfile *lock, const struct bv_mirrors *mirrors,
		     struct bv_error **err);

/* Leaf parsers, exposed for tests.  Ports: "HOST:CONTAINER", "ADDR:HOST:CONTAINER" or
 * "[v6addr]:HOST:CONTAINER", each optionally followed by "/tcp" or "/udp". */
int bv_service_port_parse(struct bv_service_port *out, const char *text, struct bv_error **err);
/*
 * Compose's short syntax: "SOURCE:CONTAINER[:ro|:rw]" or "CONTAINER" (anonymous).  A source
 * that starts with '.', '/' or '~' is a host path (`root` makes a relative one absolute);
 * any other is a volume name.  The caller checks that a named volume is declared.
 */
int bv_service_volume_parse(struct bv_service_volume *out, const char *text, const char *root,
			    struct bv_error **err);

/*
 * What `bv up` checks before it creates anything: every host path a selected service mounts
 * and every build context exists (bv never lets the engine create a missing one: dockerd
 * would, as root), and lies inside the project, symlinks resolved, unless the service says
 * allow_outside = true.  `selected` may be NULL (every service).  BV_ENOTFOUND for a missing
 * path, BV_EINVALID for one outside; both name bv.toml's line, the service and the path.
 */
int bv_services_check_paths(const struct bv_services *s, const bool *selected,
			    struct bv_error **err);
/*
 * A path cleaned lexically (new string): "//" and "." components dropped, "x/.." removed, no
 * trailing '/'; "" becomes ".".  Used on volume sources, build contexts and ignore patterns.
 */
char *bv_services_clean_path(const char *path);
/* "500ms", "1s", "2m", "1h", "1m30s"; units ns, us, ms, s, m, h.  0 or -EINVAL/-ERANGE. */
int bv_duration_parse(int64_t *ns_out, const char *text);

/*
 * .dockerignore, read as the docker CLI reads it: one pattern per line; lines starting with
 * '#' are comments; surrounding white space is dropped; a leading '!' makes an exception (a
 * lone '!' is an error); a pattern is cleaned like a path ("./a//b/" is "a/b", a leading '/'
 * is dropped) and matched as Docker's regular expression against paths relative to the
 * context ('*' and '?' within a component, two stars then '/' any number of components, two
 * stars at the end anything); a pattern of N components also matches a path whose first N
 * components it matches.  The last pattern that matches decides.
 */
struct bv_dockerignore;
int bv_dockerignore_parse(struct bv_dockerignore **out, const char *text, size_t len,
			  const char *file, struct bv_error **err);
void bv_dockerignore_free(struct bv_dockerignore *d);
/* Whether `path` ("dir/file", relative to the context) is excluded. */
bool bv_dockerignore_excluded(const struct bv_dockerignore *d, const char *path);
/*
 * Whether the walk must look inside an excluded directory: Docker's rule, an exception whose
 * text, with a '/' added, starts with "<dir>/".  Others are skipped whole, so "lib/" then two
 * stars, then the exception "!lib/" two stars "/" star ".so", drops lib/x/b.so.
 */
bool bv_dockerignore_may_include_below(const struct bv_dockerignore *d, const char *dir);

/*
 * Writes the build context `dir` as a tar stream to `fd`: regular files, directories and
 * symlinks (not followed), sorted by name, owned by 0:0, without what <dir>/.dockerignore
 * excludes, except that the Dockerfile (`dockerfile`, relative to `dir`) and .dockerignore
 * itself are always sent, as the docker CLI does: as exceptions added after the file's own
 * patterns.  An excluded directory the walk enters is not sent itself, only what it keeps.
 */
int bv_build_context_write(int fd, const char *dir, const char *dockerfile, struct bv_error **err);

/*
 * Log lines: feed it what bv_engine_demux_feed() hands out (stream 1 stdout, 2 stderr, any
 * chunking); it calls on_line once per complete line, without the newline.  With
 * `timestamps`, the engine's RFC 3339 prefix ("2026-11-22T08:39:36.537897016Z ") is split off
 * and passed as `timestamp` (NULL when a line has none).  Lines are NUL-terminated copies.
 */
struct bv_log_splitter {
	bool timestamps;
	int (*on_line)(int stream, const char *timestamp, const char *line, void *payload);
	void *payload;
	char *partial[3]; /* per stream: the incomplete line, private */
	size_t partial_len[3], partial_alloc[3];
};
int bv_log_splitter_feed(struct bv_log_splitter *ls, int stream, const char *data, size_t len);
/* Passes on what is left of unterminated lines, then frees them. */
int bv_log_splitter_finish(struct bv_log_splitter *ls);

/* What bv_services_up() reports while it works (any callback may be NULL). */
struct bv_services_events {
	/* "building", "pulling 127.0.0.1:5000/x@sha256:...", "created", "started", "healthy" */
	void (*on_event)(const char *service, const char *what, void *payload);
	/* one line of build or pull progress */
	void (*on_output)(const char *service, const char *line, void *payload);
	void *payload;
};

struct bv_services_up_options {
	const char *const *only; /* services to start (with their dependencies); NULL: all */
	size_t n_only;
	const struct bv_lockfile *lock;   /* for tool services; may be NULL */
	const struct bv_mirrors *mirrors; /* may be NULL */
	uint64_t timeout_ns;              /* per service, to become healthy; 0: 120 s */
	struct bv_services_events events;
};

/*
 * Brings the selected services up in dependency order, reconciling what the engine has with
 * bv.toml.  The network is the one named bv-<project>-net that carries this project's label,
 * found by label and used by id (never by name alone): when there are several (made by an
 * older bv that raced, or by hand), the one most containers are attached to is kept (else
 * the oldest) and the others, which bv owns, are emptied and removed, with an event saying
 * so; a same-named network without the label is never touched.  A container is kept when its
 * config label matches and the engine's view of it still does too: attached to that network
 * (by id) under its service name, running the image id it was made from, with the command,
 * environment, published ports and binds bv.toml gives.  Any other is recreated (an event
 * says why), and its direct dependents that are selected and running are stopped first and
 * started again in their turn, as compose does for `depends_on: {restart: true}`.
 */
int bv_services_up(struct bv_engine *e, const struct bv_services *s,
		   const struct bv_services_up_options *o, struct bv_error **err);

/* Stops and removes every container labelled with this project, then every network
 * labelled with it (duplicates too).  What is already gone is fine, so running it twice
 * succeeds. */
int bv_services_down(struct bv_engine *e, const struct bv_services *s,
		     const struct bv_services_events *events, struct bv_error **err);

/* Removes the project's named volumes (labelled with its root), after bv_services_down(). */
int bv_services_remove_volumes(struct bv_engine *e, const struct bv_services *s,
			       const struct bv_services_events *events, struct bv_error **err);

/*
 * The services lock: `bv up`, `bv down` and `bv restart` of the project at `root` hold it
 * while they change its containers and network, so that concurrent ones run one after the
 * other instead of each creating a network.  An OFD lock on <root>/.bv/services.lock, not the
 * project lock (.bv/lock): `bv up` may hold it for minutes of builds and healthchecks, and
 * must not hold up `bv add` or `bv lock` that long.  Waits without a limit; when not granted
 * within a second, calls on_wait(lock_path, payload) once (may be NULL).  The kernel drops it
 * when the process ends.  bv_services_unlock() accepts NULL and returns NULL.
 * Errors: BV_ERR when .bv/ or the lock file cannot be created or locked.
 */
struct bv_services_lock;
int bv_services_lock(struct bv_services_lock **out, const char *root,
		     void (*on_wait)(const char *lock_path, void *payload), void *payload,
		     struct bv_error **err);
struct bv_services_lock *bv_services_unlock(struct bv_services_lock *l);

/* Restarts one service's container and waits until it is healthy again. */
int bv_services_restart(struct bv_engine *e, const struct bv_services *s, const char *service,
			uint64_t timeout_ns, const struct bv_services_events *events,
			struct bv_error **err);

struct bv_service_status {
	char *service;
	char *container; /* name */
	char *state;     /* "running", "exited", "created", ... */
	char *health;    /* "healthy", "starting", "unhealthy", or "" without a healthcheck */
	char *ports;     /* "127.0.0.1:8080->80/tcp, ..." or "" */
	int exit_code;
};

/* The project's containers, from their labels, sorted by service name. */
int bv_services_ps(struct bv_service_status **out, size_t *n_out, struct bv_engine *e,
		   const struct bv_services *s, struct bv_error **err);
void bv_service_status_free(struct bv_service_status *rows, size_t n);

struct bv_services_log_options {
	bool follow;
	bool timestamps;
	int (*on_line)(int stream, const char *timestamp, const char *line, void *payload);
	void *payload;
};

/* The log of one service's container, line by line.  BV_ENOTFOUND when it has none. */
int bv_services_logs(struct bv_engine *e, const struct bv_services *s, const char *service,
		     const struct bv_services_log_options *o, struct bv_error **err);

#endif
