/*
 * toml_internal.h - what the TOML reader, builder and writer share; not part of the API.
 *
 * The document owns one arena; tables and arrays are arena objects whose item arrays grow by
 * copying within the arena.  Table and array flags record how a container came to exist,
 * because TOML's redefinition rules depend on it (see toml_read.c).
 */
#ifndef BV_TOML_INTERNAL_H
#define BV_TOML_INTERNAL_H

#include <bv/toml.h>

#include "util/arena.h"

struct bv_toml_doc {
	struct bv_arena arena;
	struct bv_toml_table *root;
};

enum {
	TABLE_DEFINED =
		1
		<< 0, /* by a [header], or closed to headers (dotted keys of an earlier section) */
	TABLE_FROZEN = 1 << 1,   /* an inline table or inside one: nothing may be added */
	TABLE_IMPLICIT = 1 << 2, /* created as a parent of a [header]; may be defined later */
	TABLE_DOTTED = 1 << 3,   /* created by a dotted key */
};

enum {
	ARRAY_FROZEN = 1 << 0,    /* written as [ ... ]: never extended */
	ARRAY_OF_TABLES = 1 << 1, /* created by [[header]] */
};

struct bv_toml_table *toml_table_new(struct bv_arena *arena);
struct bv_toml_array *toml_array_new(struct bv_arena *arena);

/* Finds `key`; NULL when absent. */
struct bv_toml_kv *toml_table_lookup(const struct bv_toml_table *t, const char *key, size_t len);

/* Appends `key` (already arena-owned, not present in `t`) and returns its zeroed entry. */
struct bv_toml_kv *toml_table_append(struct bv_arena *arena, struct bv_toml_table *t,
				     const char *key, size_t len);

struct bv_toml_value *toml_array_append(struct bv_arena *arena, struct bv_toml_array *a);

#endif
