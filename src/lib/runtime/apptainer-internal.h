/*
 * apptainer-internal.h - the Apptainer (Singularity) backend's pure parts: the docker://
 * source of a pull, the command lines of `apptainer pull` and `apptainer run`, and where SIF
 * files live.  The backend itself is bv_runtime_apptainer_new() (bv/runtime.h); these
 * functions are declared apart so that they can be tested without Apptainer.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/apptainer.h (the full check of the SIF cache, which the CLI
 * uses), where the layout of the SIF cache is described.
 *
 * Calling sequence (what src/lib/runtime/apptainer.c does):
 *   struct bv_apptainer_source src;
 *   if (bv_apptainer_source(&src, "quay.io/biocontainers/samtools:1.21--0", digest, mirrors,
 *                           &err) < 0) ...
 *           src.uri "docker://127.0.0.1:5000/biocontainers/samtools@sha256:..." (mirrored)
 *   bv_apptainer_pull_argv(&argv, bin, staging, &src);
 *   bv_apptainer_source_release(&src);
 *   if (bv_apptainer_run_argv(&argv, &env, bin, sif, &req, fallback_dir, &err) < 0) ...
 *
 * Ownership: outputs are appended to the caller's vectors or are new strings the caller
 * frees; a source owns its strings until bv_apptainer_source_release().
 *
 * Errors: 0 or a negative enum bv_error_code with a message in `err`; BV_EINVALID for a
 * reference, digest, mount or environment entry that cannot be expressed on Apptainer's
 * command line (the message names it).
 */
#ifndef BV_LIB_APPTAINER_INTERNAL_H
#define BV_LIB_APPTAINER_INTERNAL_H

#include <bv/apptainer.h>
#include <stdbool.h>

struct bv_error;
struct bv_mirrors;
struct bv_run_request;
struct bv_strv;

/* What `apptainer pull` fetches, the locked reference pinned by its digest. */
struct bv_apptainer_source {
	char *uri;       /* "docker://<host>/<repository>@sha256:<hex>"; the tag is dropped */
	char *host;      /* the host the pull talks to: the mirror's when one is configured */
	bool plain_http; /* that host is loopback or listed insecure: pull with --no-https */
};

/*
 * Builds the source of `reference` pinned at `digest` ("sha256:<hex>"), through the mirror
 * `mirrors` (may be NULL) names for its registry.  A reference that carries a digest of its
 * own must carry this one.
 */
int bv_apptainer_source(struct bv_apptainer_source *out, const char *reference, const char *digest,
			const struct bv_mirrors *mirrors, struct bv_error **err);
void bv_apptainer_source_release(struct bv_apptainer_source *s);

/*
 * <bin> pull --disable-cache [--no-https] <staging> <uri>.  Apptainer's own cache is off:
 * bv's SIF cache replaces it, and Apptainer's is not safe for concurrent pulls on a shared
 * file system.  No --force: staging names are unique, so an existing file is a bug to report.
 */
void bv_apptainer_pull_argv(struct bv_strv *argv, const char *bin, const char *staging,
			    const struct bv_apptainer_source *src);

/*
 * Whether a run of `req` gets the fallback cache binds (/cache and /root/.cache): only when
 * the request has no BV_MOUNT_CACHE mount, since a SIF is read-only and tools that write a
 * cache would otherwise fail.
 */
bool bv_apptainer_wants_cache_fallbacks(const struct bv_run_request *req);

/*
 * The command line that runs `req` from `sif`:
 *   <bin> exec --cleanenv --no-home --pwd <workdir> --bind <host>:<target>[:ro]...
 *         [--nv] --env K=V... <sif> <argv...>
 * `exec` runs argv exactly, as the issue and HPC sites expect, and exists in every Apptainer
 * and Singularity; unlike the other backends it does not put an image Entrypoint in front
 * (biocontainers images have none: their tool is the Cmd, which argv replaces anyway).  A
 * request without argv uses `run`, the image's own runscript.  workdir NULL is
 * "/" (Apptainer does not keep the image's WorkingDir).  When `fallback_dir` is not NULL and
 * bv_apptainer_wants_cache_fallbacks(), <fallback_dir>/cache and <fallback_dir>/root-cache
 * are bound at /cache and /root/.cache (unless a mount already targets them); the caller
 * creates them.  An environment value that --env cannot carry (its argument is split at
 * commas and parsed as CSV) goes to `env` instead, as APPTAINERENV_K=V (SINGULARITYENV_ for
 * a binary named singularity*), for the environment of the apptainer process.  Mount paths
 * with ':' or ',' cannot be expressed with --bind and are rejected.
 */
int bv_apptainer_run_argv(struct bv_strv *argv, struct bv_strv *env, const char *bin,
			  const char *sif, const struct bv_run_request *req,
			  const char *fallback_dir, struct bv_error **err);

/*
 * The version in the first line of `<bin> --version` ("apptainer version 1.3.4",
 * "singularity-ce version 4.1.0"): a new string, or NULL when the text has none.
 */
char *bv_apptainer_parse_version(const char *text);

/* <cache>/sif/sha256-<hex>.sif for `digest` ("sha256:<hex>"); BV_EINVALID for a bad digest. */
int bv_apptainer_sif_path(char **out, const char *cache_dir, const char *digest,
			  struct bv_error **err);

#endif
