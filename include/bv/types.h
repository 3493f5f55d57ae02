/*
 * bv/types.h - the vocabulary of data types that tool inputs and outputs are declared with.
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
 *   struct bv_type_ref ref;
 *   if (bv_type_ref_parse(&ref, "fasta[protein]") < 0) ...        ref.id "fasta", params
 *   if (!bv_types_lookup(types, ref.id)) guess = bv_types_suggest(types, ref.id);
 *   bv_types_is_subtype(types, "vcf", "tabular")                 true
 *   bv_type_ref_release(&ref);
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
 * Ownership: struct bv_types owns every bv_type_def and every string reachable from it; they
 * stay valid until bv_types_free().  A struct bv_type_ref owns its id and params (release it
 * with bv_type_ref_release()); bv_type_ref_format() returns a new string.
 *
 * Errors: loading returns 0, BV_ENOTFOUND (no file), BV_ERR (unreadable) or BV_EINVALID; errors
 * about the file's contents start with "file:line:column: ".  bv_type_ref_parse() returns 0 or
 * BV_EINVALID without a message: its callers know where the text came from.
 */
#ifndef BV_TYPES_H
#define BV_TYPES_H

#include <stdbool.h>

#include "util/strv.h"

struct bv_error;
struct bv_types;

struct bv_type_def {
	const char *id;
	const char *kind;              /* "file" or "directory"; for subtypes, the root's kind */
	const char *parent;            /* NULL for a root */
	const char *description;       /* never NULL */
	const char *mime;              /* as declared, or NULL; see bv_types_mime() */
	const char *columns;           /* or NULL */
	const char *const *parameters; /* NULL-terminated, never NULL */
	const char *const *required_files; /* NULL-terminated, never NULL */
};

int bv_types_load(struct bv_types **out, const char *path, struct bv_error **err);
int bv_types_load_default(struct bv_types **out, struct bv_error **err);
/* Accepts NULL. */
void bv_types_free(struct bv_types *t);

/* NULL when `id` is not in the vocabulary (ids are case-sensitive). */
const struct bv_type_def *bv_types_lookup(const struct bv_types *t, const char *id);

/* True when `child` is `parent` or descends from it; false when either is unknown. */
bool bv_types_is_subtype(const struct bv_types *t, const char *child, const char *parent);

/* The mime type of `id` or of its nearest ancestor that declares one; NULL if none does. */
const char *bv_types_mime(const struct bv_types *t, const char *id);

/*
 * The known id nearest to `unknown` for a "did you mean" hint, or NULL when none is within
 * 3 edits (Levenshtein, ignoring case).  Ties go to the id that shares the longer ending with
 * `unknown` (format names differ at the end: "fastaq" suggests "fastq", not "fasta"), then to
 * the alphabetically first.
 */
const char *bv_types_suggest(const struct bv_types *t, const char *unknown);

/* Appends every id, sorted, to `out`. */
void bv_types_ids(const struct bv_types *t, struct bv_strv *out);

/* A type as written in a manifest: "fasta", "fasta[protein]", "msa[a3m, stockholm]". */
struct bv_type_ref {
	char *id;
	struct bv_strv params;
};

/*
 * Parses `text`: an id of [A-Za-z0-9_.-], optionally followed by comma-separated parameters
 * in brackets; spaces around the whole and around each parameter are dropped.  An empty id,
 * an empty parameter, an unclosed '[' or anything after ']' is BV_EINVALID.  Whether the id is
 * known is for bv_types_lookup() to say.
 */
int bv_type_ref_parse(struct bv_type_ref *out, const char *text);
void bv_type_ref_release(struct bv_type_ref *ref);
/* "id" or "id[p1,p2]", new string. */
char *bv_type_ref_format(const struct bv_type_ref *ref);

#endif
