/*
 * schema.h - typed reading of TOML documents, with positioned errors and unknown-key warnings.
 *
 * Every bv file format (bv.toml, bv.lock, tool and dataset manifests, types.toml) is a TOML
 * document with a fixed schema.  This module turns "is this key there, and of the right type"
 * into one call, so each format's reader is a list of fields rather than a thicket of checks,
 * and every error names file:line:column the same way.
 *
 * Calling sequence:
 *   struct bv_schema s = {.file = "bv.toml", .warnings = &warnings, .err = err};
 *   struct bv_schema_table root = bv_schema_root(&s, bv_toml_doc_root(doc));
 *   struct bv_schema_table project;
 *   if (bv_schema_table(&s, &root, "project", true, &project) < 0) return BV_EINVALID;
 *   if (bv_schema_string(&s, &project, "name", true, &name) < 0) return BV_EINVALID;
 *   static const char *const known[] = {"name", "description", NULL};
 *   if (bv_schema_check_keys(&s, &project, known) < 0) return BV_EINVALID;
 *
 * Getters return 1 when the key is present and well typed (and fill *out), 0 when an optional
 * key is absent (leaving *out alone), and BV_EINVALID with an error
 * "file:line:column: 'key' in [table] must be a string, not an integer" otherwise.
 *
 * Unknown keys: with `warnings` set, each is recorded as "file:line: unknown key 'k' in [t]"
 * and reading goes on (bv.toml, where a typo must not lose the user's data); with `warnings`
 * NULL an unknown key is an error (bv.lock, whose fields are exactly upstream's).
 *
 * Ownership: strings returned point into the TOML document and live as long as it does.
 * `names` is scratch space a caller may use for names it builds itself (bv_schema_release()).
 */
#ifndef BV_LIB_SCHEMA_H
#define BV_LIB_SCHEMA_H

#include <bv/toml.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_error;

struct bv_schema {
	const char *file;
	struct bv_strv *warnings; /* NULL: unknown keys are errors */
	struct bv_error **err;
	struct bv_strv names; /* table names built for messages, owned */
};

struct bv_schema_table {
	const struct bv_toml_table *t;
	struct bv_toml_pos pos; /* of the header or key that opened the table */
	/*
	 * "[tool.image]", "[[tools]]", "the top level": kept in the struct, because building
	 * a heap string for each of the thousands of tables of a large lock showed up in
	 * profiles; names longer than the buffer are cut short (messages only).
	 */
	char name[128];
};

struct bv_schema_table bv_schema_root(struct bv_schema *s, const struct bv_toml_table *root);
void bv_schema_release(struct bv_schema *s);

/* Records "file:line:column: <message>" in s->err and returns BV_EINVALID. */
__attribute__((format(printf, 3, 4))) int
bv_schema_fail(struct bv_schema *s, struct bv_toml_pos pos, const char *fmt, ...);

/* The entry for `key`, or NULL. */
const struct bv_toml_kv *bv_schema_find(const struct bv_schema_table *t, const char *key);

int bv_schema_string(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		     bool required, const char **out);
int bv_schema_bool(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		   bool required, bool *out);
int bv_schema_integer(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		      bool required, int64_t *out);
/* An integer or a float ("ram_gb = 8" and "ram_gb = 8.0" are both fine). */
int bv_schema_number(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		     bool required, double *out);
int bv_schema_table(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		    bool required, struct bv_schema_table *out);
int bv_schema_array(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		    bool required, const struct bv_toml_array **out, struct bv_toml_pos *pos_out);
/* An array whose every element is a string, appended to `out`. */
int bv_schema_strings(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		      bool required, struct bv_strv *out);
/* Element `i` of an array of tables, named "[[<name>]]" in messages. */
int bv_schema_table_at(struct bv_schema *s, const struct bv_toml_array *a, size_t i,
		       const char *name, struct bv_schema_table *out);

/*
 * Untrusted names and container paths (validate.h), checked as they are read so that every
 * refusal names the file, line and key: "bv.lock:3:8: invalid id '../x' in [[tools]]; use
 * letters, ...".  The _check_ forms take a value found elsewhere (a table key, an array
 * element), described by `what` ("subcommand name") and `where` ("[tool.binaries]", or NULL).
 */
int bv_schema_name(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		   bool required, const char **out);
int bv_schema_check_name(struct bv_schema *s, struct bv_toml_pos pos, const char *what,
			 const char *where, const char *value);
int bv_schema_container_path(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
			     bool required, const char **out);
int bv_schema_check_container_path(struct bv_schema *s, struct bv_toml_pos pos, const char *what,
				   const char *where, const char *value);

/* Reports every key of `t` that is not in `known` (NULL-terminated). */
int bv_schema_check_keys(struct bv_schema *s, const struct bv_schema_table *t,
			 const char *const *known);

#endif
