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

/* `version` NULL or "" means the latest. */
int bv_resolve_dataset(struct bv_dataset **out, const struct bv_index *idx, const char *id,
		       const char *version, struct bv_error **err);

#endif
