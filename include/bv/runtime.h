/*
 * bv/runtime.h - one interface over the three ways bv runs a tool: the native runner
 * (namespaces, no daemon), the Docker Engine API, and Apptainer.
 *
 * Calling sequence (bv run, bv sync, bv doctor):
 *   struct bv_runtime *rt;
 *   if (bv_runtime_select(&rt, flag, project->runtime_backend, &err) < 0) ...
 *   rt->ops->ensure(rt, images, n, &pull_options, &err);       bv sync: get the pinned images
 *   struct bv_run_request req = {.image = {...}, .argv = argv, .mounts = m, .n_mounts = k};
 *   struct bv_run_result res = {0};
 *   if (rt->ops->run(rt, &req, &res, &err) < 0) ...        or rt->ops->warm, when not NULL
 *   exit(res.status);
 *   bv_run_result_release(&res);
 *   bv_runtime_free(rt);
 *
 * Selection (bv_runtime_select): the --backend flag, else BV_BACKEND, else bv.toml's
 * [runtime] backend, else "auto": native when unprivileged user namespaces work here, else
 * docker when an engine answers on its socket, else apptainer when apptainer or singularity
 * is on PATH.  "singularity" is another name for "apptainer"; an unknown name is an error
 * listing the known ones.
 *
 * Images are always named by what bv.lock records: the reference as the manifest writes it
 * (tag kept) and the registry's manifest digest.  Every backend keys its copy by that digest,
 * so one bv.lock serves all three.  Mirrors (BV_MIRRORS, mirrors.toml) apply to every
 * backend's pulls through bv_imageref.
 *
 * The run request is backend-neutral.  argv replaces the image's Cmd and the image's
 * Entrypoint, when it has one, is put in front (Docker's rule, which all backends follow).
 * The environment is the image config's Env, then req->env on top.  workdir NULL means the
 * image's WorkingDir, else "/".  Mount targets need not exist in the image.
 *
 * Ownership: the request and everything it points to are borrowed.  A result's captured
 * output belongs to the result until bv_run_result_release().  The runtime owns its state.
 *
 * Errors: ops return 0 or a negative code with *err set.  A tool that runs and fails is not
 * an error: its status is in the result.  Errors before the tool starts (no such image, the
 * engine is down, a mount cannot be made) are errors, so the CLI can tell "the tool said
 * no" (its own exit status) from "bv could not run it" (exit 1 with a message).
 */
#ifndef BV_RUNTIME_H
#define BV_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_error;
struct bv_pull_progress;
struct bv_strv;

/* Which image: exactly what bv.lock records for a tool. */
struct bv_image_spec {
	const char *tool_id;   /* for messages, labels and per-tool state; may be NULL */
	const char *reference; /* "quay.io/biocontainers/samtools:1.21--h50ea8bc_0" */
	const char *digest;    /* "sha256:<hex>", the registry manifest digest (image_digest) */
};

enum bv_mount_kind {
	BV_MOUNT_WORKSPACE, /* the project directory at /workspace */
	BV_MOUNT_DATA,      /* reference data, read-only */
	BV_MOUNT_CACHE,     /* a tool cache_paths or bv.toml [[cache]] entry */
	BV_MOUNT_OTHER,
};

struct bv_run_mount {
	const char *host;   /* an existing host path */
	const char *target; /* absolute path inside the container */
	bool read_only;
	enum bv_mount_kind kind;
};

enum bv_run_stdio {
	BV_STDIO_INHERIT, /* the tool reads bv's stdin and writes bv's stdout and stderr */
	BV_STDIO_CAPTURE, /* stdin is /dev/null; stdout and stderr land in the result */
};

struct bv_run_request {
	struct bv_image_spec image;
	const char *const *argv; /* NULL-terminated; NULL or empty: the image's own command */
	const char *const *env;  /* NULL-terminated "K=V", on top of the image's Env; may be NULL */
	const struct bv_run_mount *mounts;
	size_t n_mounts;
	const char *workdir; /* inside the container; NULL: the image's WorkingDir, else "/" */
	bool gpu;            /* the tool needs a GPU: --nv, DeviceRequests, NVIDIA binds */
	enum bv_run_stdio stdio;
	/*
	 * The backend may replace the bv process with the runtime (exec(2)) so that schedulers
	 * and signals see the tool directly.  run() then returns only on failure.  Only the
	 * CLI's bv run sets it, and only with BV_STDIO_INHERIT.
	 */
	bool may_replace_process;
	const char *project_root; /* for labels and per-project state; may be NULL */
};

struct bv_run_result {
	int status; /* the tool's exit status, or 128 + signal number */
	char *out, *err;
	size_t out_len, err_len; /* captured output (BV_STDIO_CAPTURE), NUL-terminated */
};

struct bv_runtime_info {
	char *name;    /* "native", "docker", "apptainer" */
	char *version; /* the engine's or tool's version, or bv's own for native */
	char *detail;  /* one line: socket, API version, binary path; may be NULL */
};

struct bv_image_info {
	int64_t size; /* bytes on this backend's storage; -1 when unknown */
};

typedef void (*bv_runtime_progress_fn)(const struct bv_pull_progress *p, void *payload);

struct bv_ensure_options {
	unsigned jobs;        /* parallel pulls; 0: the backend's default */
	const char *platform; /* native only: pull for this platform (bv_install_options) */
	bv_runtime_progress_fn progress;
	void *progress_payload;
};

struct bv_runtime;

struct bv_runtime_ops {
	const char *name;
	/* Is the backend usable at all here?  Cheap; used by "auto". Never fails. */
	bool (*is_usable)(struct bv_runtime *rt);
	/* Talks to the backend (daemon ping, binary version) and describes it. */
	int (*health)(struct bv_runtime *rt, struct bv_runtime_info *out, struct bv_error **err);
	/* Makes every image available to this backend, pulling what is missing; verifies each
	 * against its digest.  Nothing partial becomes visible. */
	int (*ensure)(struct bv_runtime *rt, const struct bv_image_spec *images, size_t n,
		      const struct bv_ensure_options *o, struct bv_error **err);
	int (*is_available)(struct bv_runtime *rt, const struct bv_image_spec *image,
			    bool *available_out, struct bv_error **err);
	int (*inspect)(struct bv_runtime *rt, const struct bv_image_spec *image,
		       struct bv_image_info *out, struct bv_error **err);
	int (*run)(struct bv_runtime *rt, const struct bv_run_request *req,
		   struct bv_run_result *out, struct bv_error **err);
	/* Removes the backend's copy of the image; removing an absent image is not an error. */
	int (*remove)(struct bv_runtime *rt, const struct bv_image_spec *image,
		      struct bv_error **err);
	/*
	 * Optional; NULL when the backend has no warm runs.  Runs the request in a long-lived
	 * container kept for the tool's image in this project, created on first use and then
	 * only exec'd into (`bv run --warm`).  As run(), but may_replace_process is ignored.
	 */
	int (*warm)(struct bv_runtime *rt, const struct bv_run_request *req,
		    struct bv_run_result *out, struct bv_error **err);
	/*
	 * Optional.  The paths whose stat keys (bv_stat_key) change whenever is_available()
	 * may answer otherwise for any image, appended to `out`: for a caller that remembers
	 * its answers (bv sync's record, bv/syncrecord.h).  -1 when the backend cannot name
	 * them (a daemon keeps the images; a mode that checks image files one by one).
	 */
	int (*image_sources)(struct bv_runtime *rt, struct bv_strv *out);
	void (*free)(struct bv_runtime *rt);
};

struct bv_runtime {
	const struct bv_runtime_ops *ops;
	void *state; /* the backend's own */
};

/* Backends.  Each constructor is cheap: nothing is contacted until an op needs it. */
int bv_runtime_native_new(struct bv_runtime **out, struct bv_error **err);
int bv_runtime_docker_new(struct bv_runtime **out, struct bv_error **err);
int bv_runtime_apptainer_new(struct bv_runtime **out, struct bv_error **err);

/* The backend by name ("native", "docker", "apptainer", "singularity", "auto"). */
int bv_runtime_new(struct bv_runtime **out, const char *name, struct bv_error **err);

/* flag > BV_BACKEND > project setting > auto; `flag` and `project_setting` may be NULL. */
int bv_runtime_select(struct bv_runtime **out, const char *flag, const char *project_setting,
		      struct bv_error **err);

/* The name the selection rules pick, without constructing it ("auto" is resolved). */
const char *bv_runtime_selected_name(const char *flag, const char *project_setting);

/* Whether the backend of that name runs images from bv's own store (native does; docker and
 * apptainer keep images in their own), so that a pull for another platform can be kept. */
bool bv_runtime_runs_from_store(const char *name);

void bv_runtime_free(struct bv_runtime *rt);
void bv_runtime_info_release(struct bv_runtime_info *info);
void bv_run_result_release(struct bv_run_result *res);

#endif
