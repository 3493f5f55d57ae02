/*
 * bv/types.h - the vocabulary of data types that tool inputs and outputs are declared with.
 * The CLI loads it for the manifest readers (bv/manifest.h), whose inputs and outputs carry
 * type references.  Queries on the vocabulary and parsing type references, which only the
 * library and its tests use, are in src/lib/model/types-internal.h.
 *
 * A manifest says `type = "fasta[protein]"` for an input; the type vocabulary (data/types.toml,
 * installed as <datadir>/bv/types.toml) says which ids exist, what they mean and how they
 * nest: every type is either a root with a `kind` ("file" or "directory") or has a `parent`,
 * so "sam" is a kind of "tabular", which is a kind of "file".  The same ids, kinds and parents
 * as upstream bv's vocabulary are used, so manifests written for one read in the other.
 *
 * Calling sequence:
 *   struct bv_types *types;
 *   if (bv_types_load_default(&types, &err) < 0) ...
 *   ... bv_manifest_load(&m, path, types, &err) ...
 *   bv_types_free(types);
 *
 * File format, one table per type:
 *   [types.<id>]
 *   kind = "file" | "directory"   roots only
 *   parent = "<id>"               every other type
 *   description = "..."           required
 *   mime = "..."                  optional, inherited by subtypes (bv_types_mime)
 *   parameters = ["..."]          optional names of the [params] a reference may carry
 *   required_files = ["..."]      optional, for directory types
 *   columns = "..."               optional name of a column layout
 * Ids are 1 to 64 characters of [a-z0-9_], starting with a letter.  Loading rejects unknown
 * keys, roots with a parent, non-roots without one, unknown parents and parent cycles.
 *
 * Where the default file is found: $BV_TYPES_FILE when set; else share/bv/types.toml next to
 * the running executable's prefix (<exe dir>/../share/bv); else the installed datadir; else
 * the copy in the source tree the binary was built from, so an uninstalled build works.
 *
 * Ownership: struct bv_types owns everything reachable from it until bv_types_free().  A
 * struct bv_type_ref owns its id and params.
 *
 * Errors: loading returns 0, BV_ENOTFOUND (no file), BV_ERR (unreadable) or BV_EINVALID; errors
 * about the file's contents start with "file:line:column: ".
 */
#ifndef BV_TYPES_H
#define BV_TYPES_H

#include "util/strv.h"

struct bv_error;
struct bv_types;

int bv_types_load_default(struct bv_types **out, struct bv_error **err);
/* Accepts NULL. */
void bv_types_free(struct bv_types *t);

/* A type as written in a manifest: "fasta", "fasta[protein]", "msa[a3m, stockholm]". */
struct bv_type_ref {
	char *id;
	struct bv_strv params;
};

#endif
