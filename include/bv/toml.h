/*
 * bv/toml.h - strict TOML 1.0 reader, document builder and deterministic writer.
 *
 * Reading:
 *   struct bv_toml_doc *doc = NULL;
 *   if (bv_toml_parse(&doc, text, len, "bv.toml", &err) < 0)
 *           ...           err says "bv.toml:3:7: duplicate key 'name'"
 *   const struct bv_toml_table *root = bv_toml_doc_root(doc);
 *   const struct bv_toml_value *v = bv_toml_table_get(root, "project");
 *   if (v && v->type == BV_TOML_TABLE) ...
 *   bv_toml_doc_free(doc);
 *
 * Writing (bv.lock and the other files bv writes):
 *   struct bv_toml_doc *doc = bv_toml_doc_new();
 *   struct bv_toml_table *root = bv_toml_doc_root_mut(doc);
 *   bv_toml_table_add_integer(doc, root, "version", 1);
 *   struct bv_toml_table *t = bv_toml_array_push_table(doc, bv_toml_table_add_array(doc, root,
 * "tools")); bv_toml_table_add_string(doc, t, "id", "samtools"); bv_toml_write(root, &buf); sorted
 * keys, fixed layout, reads back identically
 *
 * Ownership: the document owns every table, array, key and string in it (one arena); pointers
 * into it stay valid until bv_toml_doc_free().  Keys and strings are NUL-terminated and also
 * carry a length, because a TOML string may contain U+0000.
 *
 * Strictness: the reader implements TOML 1.0.0 exactly.  Invalid UTF-8, control characters,
 * duplicate keys, redefined tables, integers outside int64, invalid dates and every other
 * violation are errors (BV_EINVALID) whose message starts with "file:line:column: ".  Columns
 * count characters, not bytes.  The document is either complete or not returned at all.
 *
 * Errors: bv_toml_parse() returns 0 or BV_EINVALID; the builder's add functions return NULL
 * when the key already exists (a programming error in the caller, never user input).
 */
#ifndef BV_TOML_H
#define BV_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_buf;
struct bv_error;
struct bv_toml_doc;

enum bv_toml_type {
	BV_TOML_STRING = 1,
	BV_TOML_INTEGER,
	BV_TOML_FLOAT,
	BV_TOML_BOOL,
	BV_TOML_OFFSET_DATETIME, /* 1979-05-27T07:32:00Z, 1979-05-27 00:32:00-07:00 */
	BV_TOML_LOCAL_DATETIME,  /* 1979-05-27T07:32:00 */
	BV_TOML_LOCAL_DATE,      /* 1979-05-27 */
	BV_TOML_LOCAL_TIME,      /* 07:32:00.999 */
	BV_TOML_ARRAY,
	BV_TOML_TABLE,
};

/* The fields a kind does not have are 0 (a local date has no hour; only offset kinds use offset).
 */
struct bv_toml_datetime {
	int year, month, day;
	int hour, minute, second;
	uint32_t nanosecond; /* fractional digits beyond nine are truncated */
	int offset_minutes;  /* east of UTC; "Z" is 0 */
};

struct bv_toml_pos {
	uint32_t line;   /* 1-based */
	uint32_t column; /* 1-based, in characters */
};

struct bv_toml_array;
struct bv_toml_table;

struct bv_toml_value {
	enum bv_toml_type type;
	struct bv_toml_pos pos; /* where the value starts (for a table: its header or key) */
	union {
		struct {
			const char *ptr;
			size_t len;
		} string;
		int64_t integer;
		double floating;
		bool boolean;
		struct bv_toml_datetime datetime;
		struct bv_toml_array *array;
		struct bv_toml_table *table;
	} u;
};

struct bv_toml_kv {
	const char *key;
	size_t key_len;
	struct bv_toml_pos pos; /* where the key was written */
	struct bv_toml_value value;
};

/* Entries keep the order in which they appeared in the document. */
struct bv_toml_table {
	struct bv_toml_kv *items;
	size_t n;
	size_t alloc;
	uint32_t *index; /* open-addressing hash of item positions, built for large tables */
	size_t index_cap;
	unsigned flags; /* reader bookkeeping (how the table was created) */
};

struct bv_toml_array {
	struct bv_toml_value *items;
	size_t n;
	size_t alloc;
	unsigned flags;
};

/* Parses `len` bytes of `text`; `filename` is used in error messages only. */
int bv_toml_parse(struct bv_toml_doc **out, const char *text, size_t len, const char *filename,
		  struct bv_error **err);

/* Reads and parses the file at `path` (at most 16 MiB). */
int bv_toml_parse_file(struct bv_toml_doc **out, const char *path, struct bv_error **err);

void bv_toml_doc_free(struct bv_toml_doc *doc);

const struct bv_toml_table *bv_toml_doc_root(const struct bv_toml_doc *doc);

/* Lookup by key; NULL when absent. */
const struct bv_toml_value *bv_toml_table_get(const struct bv_toml_table *t, const char *key);
const struct bv_toml_kv *bv_toml_table_find(const struct bv_toml_table *t, const char *key,
					    size_t key_len);

/*
 * True when a parsed table was opened by a [header] or an [[array]] header (or created as a
 * parent of one), false for inline tables, tables made by dotted keys, and built tables.
 * Tools that edit a file's text use it to find where sections begin.
 */
bool bv_toml_table_is_section(const struct bv_toml_table *t);

/* "string", "integer", "offset datetime", ... for messages. */
const char *bv_toml_type_name(enum bv_toml_type type);

/*
 * Parses one datetime in any of the four TOML forms, the whole of `s` (length `len`).
 * Returns 0 and fills *out / *type_out, or BV_EINVALID.  Used by the reader and by tools that
 * compare datetimes written by others.
 */
int bv_toml_parse_datetime(struct bv_toml_datetime *out, enum bv_toml_type *type_out, const char *s,
			   size_t len);

/* Appends the canonical form: "T" separator, "Z" for a zero offset, no trailing zero digits. */
void bv_toml_format_datetime(struct bv_buf *out, const struct bv_toml_datetime *dt,
			     enum bv_toml_type type);

/* Building documents. */
struct bv_toml_doc *bv_toml_doc_new(void);
struct bv_toml_table *bv_toml_doc_root_mut(struct bv_toml_doc *doc);

struct bv_toml_value *bv_toml_table_add(struct bv_toml_doc *doc, struct bv_toml_table *t,
					const char *key, enum bv_toml_type type);
struct bv_toml_table *bv_toml_table_add_table(struct bv_toml_doc *doc, struct bv_toml_table *t,
					      const char *key);
struct bv_toml_array *bv_toml_table_add_array(struct bv_toml_doc *doc, struct bv_toml_table *t,
					      const char *key);
struct bv_toml_value *bv_toml_table_add_string(struct bv_toml_doc *doc, struct bv_toml_table *t,
					       const char *key, const char *s);
struct bv_toml_value *bv_toml_table_add_integer(struct bv_toml_doc *doc, struct bv_toml_table *t,
						const char *key, int64_t i);
struct bv_toml_value *bv_toml_table_add_bool(struct bv_toml_doc *doc, struct bv_toml_table *t,
					     const char *key, bool b);

struct bv_toml_value *bv_toml_array_push(struct bv_toml_doc *doc, struct bv_toml_array *a,
					 enum bv_toml_type type);
struct bv_toml_table *bv_toml_array_push_table(struct bv_toml_doc *doc, struct bv_toml_array *a);
struct bv_toml_value *bv_toml_array_push_string(struct bv_toml_doc *doc, struct bv_toml_array *a,
						const char *s);

/*
 * Appends `root` as TOML to `out`.  Keys are sorted bytewise; each table prints its plain
 * values first, then its sub-tables as [headers] and arrays of tables as [[headers]], so the
 * same document always gives the same bytes.  Arrays whose elements are all tables print as
 * [[arrays of tables]]; other arrays print inline.  Reading the output back gives a document
 * equal to `root`.
 */
void bv_toml_write(struct bv_buf *out, const struct bv_toml_table *root);
/* Appends `s` (`len` bytes) as a TOML basic string, quotes and control characters escaped. */
void bv_toml_write_string(struct bv_buf *out, const char *s, size_t len);

/* Structural equality (datetimes by fields, floats bitwise except NaN == NaN). */
bool bv_toml_value_equal(const struct bv_toml_value *a, const struct bv_toml_value *b);
bool bv_toml_table_equal(const struct bv_toml_table *a, const struct bv_toml_table *b);

#endif
