/*
 * bv/docker.h - the docker backend of bv/runtime.h: tools run as containers of a Docker
 * engine (dockerd, or Podman's Docker-compatible service) reached through bv/engine.h.
 * bv_runtime_docker_new() is the entry point; this header exposes the backend's pure parts
 * so unit tests can check them without an engine.
 *
 * Calling sequence (inside the backend):
 *   bv_docker_image_name(&repo, &pinned, spec.reference, spec.digest, mirrors, &err);
 *           repo "127.0.0.1:5000/biocontainers/samtools" (the mirror, when there is one)
 *           pinned "127.0.0.1:5000/biocontainers/samtools@sha256:..."
 *   POST /images/create?fromImage=<repo>&tag=<digest>, each progress event through
 *   bv_docker_progress_feed(); then GET /images/<pinned>/json and
 *   bv_docker_repo_digests_match(RepoDigests, digest) must hold, else "digest mismatch".
 *   body = bv_docker_create_body(&req, pinned, config, uid, gid, getenv("NVIDIA_..."), cpus,
 *                                true);
 *
 * Images are named on the engine by where they were pulled from and the locked digest,
 * never by tag: a tag on the engine could point at anything, the digest cannot.  So an image
 * pulled through a mirror carries the mirror's name, and a changed mirror setting means a
 * new pull (what a user who changes mirrors expects anyway).
 *
 * The container (bv_docker_create_body): Cmd = the request's argv (the image's Entrypoint
 * stays), Env = the request's env, plus HOME=/tmp when neither the image nor the request
 * sets HOME (Docker gives an arbitrary uid HOME=/, which it cannot write), plus
 * NVIDIA_VISIBLE_DEVICES from the caller for GPU tools; User = the caller's uid:gid, so files
 * written to /workspace belong to the caller; WorkingDir = the request's, else /workspace
 * when the project is mounted, else the image's; binds "host:target:ro|rw" (a path with a
 * ':' or ',' goes to HostConfig.Mounts, which has no separator to trip over); stdin attached
 * only for BV_STDIO_INHERIT; no tty; GPUs as DeviceRequests (what `docker run --gpus all`
 * sends); labels bv.tool and bv.project, so leftovers can be found; `init` puts the
 * engine's init (docker-init, Podman's catatonit) in as PID 1, because the kernel drops
 * signals to a PID 1 without a handler, and most tools install none: without it, Ctrl-C
 * forwarded by bv would not stop `samtools sort`; `cpuset` becomes HostConfig.CpusetCpus:
 * the daemon, not bv, forks the container, so the CPUs a scheduler (Slurm's task/affinity,
 * taskset) granted bv must be passed on to reach the tool.
 *
 * Ownership: strings and JSON returned are new and the caller's; the request is borrowed.
 *
 * Errors: bv_docker_image_name() fails with BV_EINVALID for a reference that does not parse,
 * an invalid digest, or a reference that pins a different digest than bv.lock.
 */
#ifndef BV_DOCKER_H
#define BV_DOCKER_H

#include <bv/registry.h>
#include <bv/runtime.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bv_error;
struct bv_mirrors;
struct bv_strv;

/*
 * Owned images: the images bv itself pulled into the engine, recorded in
 * <cache_dir>/owned-images.txt as upstream bv does (one "reference<TAB>digest" line per
 * image, the reference being the name bv pulled it as, "repo@sha256:...").  The backend
 * records each image it pulls; `bv cache prune` removes the recorded images whose digest no
 * known project pins, and only those: an image bv did not pull is never touched.
 *
 *   bv_docker_owned_record(cache, "127.0.0.1:5000/x/samtools@sha256:..", "sha256:..", &err);
 *   r = bv_docker_owned_prune(&removed, &kept, cache, keep, n_keep, dry_run, &err);
 *       r == 1: no engine answers; nothing was removed (the caller says so)
 *
 * Recording is idempotent and serialised by a lock on <cache_dir>/owned-images.lock.  Prune
 * asks the engine (DOCKER_HOST or the default socket) only when some recorded image is not
 * pinned; it removes by the recorded name, so another name of the same image keeps it.
 * `removed` gets each reference removed (or, with `dry_run`, that would be), `kept` one
 * "reference (why)" per image the engine refused to remove (a container uses it); removed
 * ones leave the record.  Errors: BV_ERR for the record's file or lock.
 */
int bv_docker_owned_record(const char *cache_dir, const char *reference, const char *digest,
			   struct bv_error **err);
int bv_docker_owned_prune(struct bv_strv *removed, struct bv_strv *kept, const char *cache_dir,
			  const char *const *keep_digests, size_t n_keep, bool dry_run,
			  struct bv_error **err);

int bv_docker_image_name(char **repo_out, char **pinned_out, const char *reference,
			 const char *digest, const struct bv_mirrors *mirrors,
			 struct bv_error **err);

/*
 * Whether an image's RepoDigests ("name@sha256:...") hold `digest`.  Only the digest counts:
 * Podman finds an image by digest under any name (pulled earlier through another mirror
 * address, say) and lists only the names it was pulled as; the content is what is pinned.
 */
bool bv_docker_repo_digests_match(json_t *repo_digests, const char *digest);

/* The body of POST /containers/create.  `image_config` is the image's "Config" object (for
 * its Env), may be NULL; `nvidia_visible` is the caller's NVIDIA_VISIBLE_DEVICES or NULL;
 * `cpuset` the CPU list ("0-3,8") the tool is limited to, NULL for no limit. */
json_t *bv_docker_create_body(const struct bv_run_request *req, const char *pinned,
			      json_t *image_config, uid_t uid, gid_t gid,
			      const char *nvidia_visible, const char *cpuset, bool init);

/*
 * Pull progress from the engine's event stream, as struct bv_pull_progress counts it.
 * Docker reports layers by short id ("Pulling fs layer", "Downloading" with progressDetail
 * {current, total}, "Already exists", "Pull complete"); Podman reports every blob, config
 * included, and ends each with "Download complete".  bv counts the config among the blobs,
 * so for dockerd one is added for it.
 */
struct bv_docker_progress {
	struct bv_pull_progress p;
	bool podman;
	struct bv_docker_layer {
		char *id;
		uint64_t current, total;
		bool done;
	} * layers;
	size_t n_layers, alloc;
};

/* Updates the counters from one event; returns true when they changed. */
bool bv_docker_progress_feed(struct bv_docker_progress *dp, json_t *event, double elapsed_s);
/* Marks the pull finished (all layers done). */
void bv_docker_progress_finish(struct bv_docker_progress *dp, double elapsed_s);
void bv_docker_progress_release(struct bv_docker_progress *dp);

#endif
