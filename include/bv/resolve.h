/*
 * bv/resolve.h - choosing tool manifests from a registry index.  Data sets, which only the
 * library and its tests resolve, are in src/lib/model/resolve-internal.h.
 *
 * Calling sequence:
 *   struct bv_manifest *m;
 *   if (bv_resolve_tool(&m, idx, "samtools", "^1.20", types, &err) < 0) ...
 *
 * Resolution is per tool, as upstream's: the highest version in the registry that satisfies
 * the requirement.  A manifest whose [tool] id or version disagrees with its file name is an
 * error, so a registry cannot serve one tool under another's name.
 *
 * Ownership: the manifest returned belongs to the caller.
 * Errors: BV_ENOTFOUND (unknown tool, or no matching version, with the versions
 * that exist in the message), BV_EINVALID (malformed manifest), BV_ERR otherwise.
 */
#ifndef BV_RESOLVE_H
#define BV_RESOLVE_H

struct bv_error;
struct bv_index;
struct bv_manifest;
struct bv_types;

/*
 * The version of `id` that `requirement` selects and the path of its manifest, without
 * reading the manifest (both new strings).
 */
int bv_resolve_tool_version(char **version_out, char **path_out, const struct bv_index *idx,
			    const char *id, const char *requirement, struct bv_error **err);

int bv_resolve_tool(struct bv_manifest **out, const struct bv_index *idx, const char *id,
		    const char *requirement, const struct bv_types *types, struct bv_error **err);

#endif
