/*
 * resolve-internal.h - choosing a data set's manifest from a registry index.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/resolve.h (tools, which the CLI resolves), whose rules apply
 * to data sets too.
 *
 * Calling sequence:
 *   struct bv_dataset *d;
 *   bv_resolve_dataset(&d, idx, "pdbaa", NULL, &err);       latest, calendar versions too
 *
 * Ownership: the dataset returned belongs to the caller.
 * Errors: BV_ENOTFOUND (unknown dataset, or no matching version, with the versions that exist in
 * the message), BV_EINVALID (malformed manifest), BV_ERR otherwise.
 */
#ifndef BV_LIB_RESOLVE_INTERNAL_H
#define BV_LIB_RESOLVE_INTERNAL_H

#include <bv/resolve.h>

struct bv_dataset;
struct bv_error;
struct bv_index;
struct bv_version_req;

/*
 * bv_resolve_tool_version() with the requirement parsed already (`req`, from `requirement`,
 * which messages quote): a caller resolving many tools parses a requirement they share once.
 */
int bv_resolve_tool_version_req(char **version_out, char **path_out, const struct bv_index *idx,
				const char *id, const struct bv_version_req *req,
				const char *requirement, struct bv_error **err);

/* `version` NULL or "" means the latest. */
int bv_resolve_dataset(struct bv_dataset **out, const struct bv_index *idx, const char *id,
		       const char *version, struct bv_error **err);

#endif
