/*
 * bv/runplan.h - turning "bv run <name> args..." into a backend-neutral run request for a
 * locked tool: which tool, which command, which mounts, which environment.  Routing a name to
 * its locked tool and naming cache directories, which only the library's tests call on their
 * own, are in src/lib/runtime/runplan-internal.h.
 *
 * Calling sequence (bv run, shims, bv session, bv run --warm):
 *   struct bv_run_plan plan;
 *   struct bv_run_plan_input in = {.project = p, .lock = lock, .name = "samtools",
 *                                  .args = argv + 1, .n_args = argc - 1, .cwd = cwd};
 *   if (bv_run_plan_build(&plan, &in, &err) < 0) ...
 *   if (plan.list_subcommands) ...             print plan.manifest's subcommands, exit 0
 *   rt->ops->run(rt, &plan.req, &res, &err);
 *   bv_run_plan_release(&plan);
 *
 * Name resolution follows upstream: the tool id first, then bv.lock's binary index.  The
 * command is, in order: a binary alias → [binary, args...]; a first argument naming one of
 * the tool's subcommands → the subcommand's argv + the rest; a tool with subcommands only and
 * no arguments → list_subcommands; an unknown argument to such a tool → an error listing the
 * subcommands; otherwise [entrypoint, args...].  A leading "--" in args is dropped.
 *
 * Mounts: the project root at /workspace (read-write), with the working directory following
 * the caller's position inside the project (upstream mounts only $PWD, which breaks "../x"
 * paths from a subdirectory); reference data read-only at its mount path when it exists in
 * the cache (<cache>/data/<id>/<version>), an error when a required dataset is missing; a
 * missing optional one leaves a line in plan.warnings; the manifest's cache_paths at
 * <cache>/tool-cache/<tool>/<slug>, then bv.toml's [[cache]] rules
 * ("*" or the tool id; a later rule wins for the same container path), host directories
 * created as needed.
 *
 * Environment, later entries winning: the image's Env; then from host_env the names in
 * the pass-through set (TERM, COLORTERM, NO_COLOR, LANG, LANGUAGE, LC_*, TZ, the thread-count
 * variables such as OMP_NUM_THREADS, a scheduler's job description SLURM_* and the granted
 * GPUs CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL) plus those BV_PASS_ENV
 * names (comma- or colon-separated);
 * then the manifest's entrypoint env; then env_args.  Everything else of the host stays out,
 * so a run does not depend on who starts it.
 *
 * Manifests: the manifest a lock entry was made from is kept in <cache>/manifests/<hex>.toml
 * (named by bv.lock's manifest_sha256) by bv_run_plan_save_manifest() at add/sync time, so a
 * run neither opens the registry index nor depends on it still having that version.  Without
 * that copy the registry is read offline and the copy is made.
 *
 * Ownership: the input is borrowed and must outlive the plan (the request points into the
 * lock); everything else in the plan is owned by it.
 *
 * Errors: an unknown name is BV_ENOTFOUND ("'x' is not a tool or binary of this project");
 * a locked tool without an image digest, a bad subcommand, a missing dataset or an --env
 * argument that is not NAME=VALUE or NAME is BV_EINVALID.
 */
#ifndef BV_RUNPLAN_H
#define BV_RUNPLAN_H

#include <bv/runtime.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/strv.h"

struct bv_error;
struct bv_lock_tool;
struct bv_lockfile;
struct bv_manifest;
struct bv_project;

struct bv_run_plan_input {
	const struct bv_project *project;
	const struct bv_lockfile *lock;
	const char *name; /* tool id or binary */
	char *const *args;
	size_t n_args;
	const char *cwd;       /* the caller's directory; NULL: the project root */
	const char *cache_dir; /* NULL: bv_cache_dir() */
	/* the caller's environment (environ); NULL passes nothing of it through */
	const char *const *host_env;
	/* --env arguments: "K=V", or "K" for host_env's K (left out when it is unset) */
	const char *const *env_args;
};

struct bv_run_plan {
	struct bv_run_request req;
	const struct bv_lock_tool *tool;
	struct bv_manifest *manifest; /* NULL when no copy of it could be found */
	bool list_subcommands;
	/* storage behind req */
	struct bv_strv argv, env, strings;
	struct bv_strv warnings; /* optional reference data that is missing, for the caller */
	struct bv_run_mount *mounts;
	char *workdir;
};

int bv_run_plan_build(struct bv_run_plan *plan, const struct bv_run_plan_input *in,
		      struct bv_error **err);
void bv_run_plan_release(struct bv_run_plan *plan);

/* Keeps a copy of manifest `m` for runs, named by its digest (see above). */
int bv_run_plan_save_manifest(const struct bv_manifest *m, const char *cache_dir,
			      struct bv_error **err);

/*
 * The kept copy for lock entry `t` (named by its manifest_sha256, loaded without hashing:
 * bv_manifest_load_known), else NULL: no copy, a foreign manifest_sha256 or a damaged file
 * are never an error.  Never reads the registry.  Free with bv_manifest_free().
 */
struct bv_manifest *bv_run_plan_saved_manifest(const struct bv_lock_tool *t, const char *cache_dir);

/*
 * The tier of each tool of `lock` from its kept copy (as bv_run_plan_saved_manifest() gives
 * it; NULL where there is no copy or no tier), through <cache>/manifests.tiers, a cache of
 * the tiers keyed by the manifests directory's stat(2) (copies are named by their digest and
 * only ever added or removed), else by each copy's, so a 1000-tool `bv list` reads one file
 * and stats one directory instead of parsing the copies.  A vector of lock->n_tools strings,
 * the caller's (free each, then the vector).  Never fails; the cache is best effort
 * (src/lib/runtime/tiers.c).
 */
char **bv_run_plan_saved_tiers(const struct bv_lockfile *lock, const char *cache_dir);

#endif
