/*
 * types-internal.h - queries on the vocabulary of data types (lookup, ancestry, mime types,
 * "did you mean"), loading it from a given file, and parsing and formatting type references.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/types.h (loading the default vocabulary and the
 * type references manifests carry, which the CLI uses), where the file format is described.
 *
 * Calling sequence:
 *   struct bv_type_ref ref;
 *   if (bv_type_ref_parse(&ref, "fasta[protein]") < 0) ...        ref.id "fasta", params
 *   if (!bv_types_lookup(types, ref.id)) guess = bv_types_suggest(types, ref.id);
 *   bv_types_is_subtype(types, "vcf", "tabular")                 true
 *   bv_type_ref_release(&ref);
 *
 * Ownership: every bv_type_def and every string reachable from it belongs to the struct
 * bv_types it came from and stays valid until bv_types_free(); strings returned by the
 * queries too.  bv_type_ref_format() returns a new string.
 *
 * Errors: bv_types_load() returns 0, BV_ENOTFOUND (no file), BV_ERR (unreadable) or
 * BV_EINVALID; errors about the file's contents start with "file:line:column: ".
 * bv_type_ref_parse() returns 0 or BV_EINVALID without a message: its callers know where the
 * text came from.
 */
#ifndef BV_LIB_TYPES_INTERNAL_H
#define BV_LIB_TYPES_INTERNAL_H

#include <bv/types.h>
#include <stdbool.h>

struct bv_error;
struct bv_strv;
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
void bv_types_ids(struct bv_strv *out, const struct bv_types *t);

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
