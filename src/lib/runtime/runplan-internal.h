/*
 * runplan-internal.h - two steps of building a run plan, declared so that the tests can call
 * them on their own: which locked tool a name is routed to, and the host directory name of a
 * cache path.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/runplan.h (building a run plan, which the CLI does), where
 * name resolution and cache mounts are described.
 *
 * Calling sequence:
 *   bool is_binary;
 *   const struct bv_lock_tool *t = bv_run_plan_find_tool(lock, "samtools", &is_binary);
 *   char *slug = bv_run_plan_cache_slug("/cache/colabfold");       "cache-colabfold"
 *
 * Ownership: the tool returned points into `lock`; the slug is a new string the caller frees.
 */
#ifndef BV_LIB_RUNPLAN_INTERNAL_H
#define BV_LIB_RUNPLAN_INTERNAL_H

#include <bv/runplan.h>
#include <stdbool.h>

struct bv_lock_tool;
struct bv_lockfile;

/* The tool bv.lock routes `name` to (tool id first, then binary index), or NULL. */
const struct bv_lock_tool *bv_run_plan_find_tool(const struct bv_lockfile *lock, const char *name,
						 bool *is_binary_out);

/* "/cache/colabfold" → "cache-colabfold": the host directory name of a cache path. */
char *bv_run_plan_cache_slug(const char *container_path);

#endif
