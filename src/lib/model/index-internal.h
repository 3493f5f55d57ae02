/*
 * index-internal.h - the registry index's version lists, manifest paths, root and URL.
 *
 * Internal to the library: only src/lib/ and its tests (unit, bench) include it, never
 * src/cli/ or a header of include/bv/.  It includes bv/index.h, which opens an index (what the CLI
 * does) and describes where its tree comes from.
 *
 * Calling sequence:
 *   struct bv_strv v = BV_STRV_INIT;
 *   bv_index_tool_versions(&v, idx, "samtools", &err);  ascending: v.v[v.n - 1] is newest
 *   char *path = bv_index_tool_path(idx, "samtools", v.v[v.n - 1]);
 *   ... bv_manifest_load(path) ...
 *
 * Version lists: every stem of tools/<id>/<version>.toml (data/<id>/<version>.toml), semver
 * or not (calendar versions such as 2024_01 are versions too: upstream dropped them), in
 * bv_version_compare() order.  Only regular files count: symlinks, hidden files and other
 * names are skipped, so a registry cannot make bv read files outside its tree through a link.
 * Ids containing '/' or starting with '.' are rejected, so an id from the command line cannot
 * leave the tree.
 *
 * Credentials: bv_index_url() returns the URL as given, which may carry them: redact it
 * (bv_index_redact_url()) before printing.
 *
 * Ownership: the index owns its URL and root strings; the getters return borrowed pointers
 * valid until bv_index_free().  Functions returning char * return new strings.  Version and
 * id lists are appended to the caller's vector, which then owns them.
 *
 * Errors: 0 or a negative enum bv_error_code with details in `err`; outputs are written only
 * on success.  Nothing here prints.
 */
#ifndef BV_LIB_INDEX_INTERNAL_H
#define BV_LIB_INDEX_INTERNAL_H

#include <bv/index.h>

struct bv_error;
struct bv_index;
struct bv_strv;

#define BV_DEFAULT_REGISTRY "https://github.com/tejasprabhune/bv-registry"

/* Seconds a fetched copy stays fresh in BV_INDEX_REFRESH_STALE unless BV_INDEX_TTL is set. */
#define BV_INDEX_DEFAULT_TTL 300

/* The directory holding tools/ and data/ (absolute for local paths and clones). */
const char *bv_index_root(const struct bv_index *idx);
/* The URL as passed to bv_index_open(); may contain credentials. */
const char *bv_index_url(const struct bv_index *idx);

/*
 * Appends the versions of `tool` (data set `id`) in ascending order.  BV_ENOTFOUND "tool 'x'
 * is not in the registry" when tools/<tool> does not exist; an existing directory without
 * manifests yields no versions and success.  BV_EINVALID for an invalid id.
 */
int bv_index_tool_versions(struct bv_strv *out, const struct bv_index *idx, const char *tool,
			   struct bv_error **err);
int bv_index_data_versions(struct bv_strv *out, const struct bv_index *idx, const char *id,
			   struct bv_error **err);

/*
 * Appends the ids under tools/ (data/), sorted bytewise: every non-hidden directory.  A
 * registry without tools/ (data/) has none.
 */
int bv_index_list_data(struct bv_strv *out, const struct bv_index *idx, struct bv_error **err);

/*
 * "<root>/tools/<tool>/<version>.toml" ("<root>/data/<id>/<version>.toml") as a new string.
 * The names must be valid ids and versions, e.g. ones the listing functions returned; these
 * functions only build the string.
 */
char *bv_index_tool_path(const struct bv_index *idx, const char *tool, const char *version);
char *bv_index_data_path(const struct bv_index *idx, const char *id, const char *version);

#endif
