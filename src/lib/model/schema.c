#include "lib/model/schema.h"

#include <bv/error.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/model/validate.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

struct bv_schema_table bv_schema_root(struct bv_schema *s, const struct bv_toml_table *root)
{
	struct bv_schema_table t = {.t = root, .pos = {1, 1}, .name = "the top level"};
	(void)s;
	return t;
}

/* open + parent + "." + key + close, cut short to fit (names are for messages only). */
static void set_name(struct bv_schema_table *t, const char *open, const char *parent_name,
		     size_t parent_len, const char *key, const char *close)
{
	const char *parts[] = {open, parent_name, parent_len ? "." : "", key, close};
	size_t lens[] = {strlen(open), parent_len, parent_len ? 1 : 0, strlen(key), strlen(close)};
	size_t n = 0;
	for (size_t i = 0; i < BV_ARRAY_SIZE(parts); i++) {
		size_t take = lens[i] < sizeof(t->name) - 1 - n ? lens[i] : sizeof(t->name) - 1 - n;
		memcpy(t->name + n, parts[i], take);
		n += take;
	}
	t->name[n] = '\0';
	if (n == sizeof(t->name) - 1)
		memcpy(t->name + sizeof(t->name) - 5, "...]", 5);
}

void bv_schema_release(struct bv_schema *s)
{
	bv_strv_clear(&s->names);
}

int bv_schema_fail(struct bv_schema *s, struct bv_toml_pos pos, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	msg = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(s->err, BV_EINVALID, 0, "%s:%u:%u: %s", s->file, pos.line, pos.column,
			     msg);
}

const struct bv_toml_kv *bv_schema_find(const struct bv_schema_table *t, const char *key)
{
	return bv_toml_table_find(t->t, key, strlen(key));
}

static const char *article(enum bv_toml_type type)
{
	return type == BV_TOML_INTEGER || type == BV_TOML_ARRAY || type == BV_TOML_OFFSET_DATETIME
		       ? "an"
		       : "a";
}

/* Finds `key` and checks its type; returns 1, 0 (absent, optional) or BV_EINVALID. */
static int get(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
	       enum bv_toml_type type, bool required, const struct bv_toml_kv **out)
{
	const struct bv_toml_kv *kv = bv_schema_find(t, key);
	/* BV_EINVALID spelled out, not bv_schema_fail's result: gcc cannot see that it is
	 * negative, and warns (-Wnull-dereference, release builds) that a caller's kv is NULL */
	if (!kv) {
		if (!required)
			return 0;
		(void)bv_schema_fail(s, t->pos, "missing key '%s' in %s", key, t->name);
		return BV_EINVALID;
	}
	if (kv->value.type != type &&
	    !(type == BV_TOML_FLOAT && kv->value.type == BV_TOML_INTEGER)) {
		(void)bv_schema_fail(s, kv->value.pos, "'%s' in %s must be %s %s, not %s %s", key,
				     t->name, article(type),
				     type == BV_TOML_FLOAT ? "number" : bv_toml_type_name(type),
				     article(kv->value.type), bv_toml_type_name(kv->value.type));
		return BV_EINVALID;
	}
	*out = kv;
	return 1;
}

int bv_schema_string(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		     bool required, const char **out)
{
	const struct bv_toml_kv *kv = NULL;
	int r = get(s, t, key, BV_TOML_STRING, required, &kv);
	if (r <= 0)
		return r;
	if (strlen(kv->value.u.string.ptr) != kv->value.u.string.len)
		return bv_schema_fail(s, kv->value.pos, "'%s' in %s must not contain NUL", key,
				      t->name);
	*out = kv->value.u.string.ptr;
	return 1;
}

int bv_schema_bool(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		   bool required, bool *out)
{
	const struct bv_toml_kv *kv = NULL;
	int r = get(s, t, key, BV_TOML_BOOL, required, &kv);
	if (r > 0)
		*out = kv->value.u.boolean;
	return r;
}

int bv_schema_integer(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		      bool required, int64_t *out)
{
	const struct bv_toml_kv *kv = NULL;
	int r = get(s, t, key, BV_TOML_INTEGER, required, &kv);
	if (r > 0)
		*out = kv->value.u.integer;
	return r;
}

int bv_schema_number(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		     bool required, double *out)
{
	const struct bv_toml_kv *kv = NULL;
	int r = get(s, t, key, BV_TOML_FLOAT, required, &kv);
	if (r > 0)
		*out = kv->value.type == BV_TOML_INTEGER ? (double)kv->value.u.integer
							 : kv->value.u.floating;
	return r;
}

/* "[tool]" + "image" -> "[tool.image]"; the top level contributes nothing. */
static void name_child(struct bv_schema_table *out, const struct bv_schema_table *parent,
		       const char *key)
{
	size_t brackets = parent->name[0] != '[' ? 0 : parent->name[1] == '[' ? 2 : 1;
	size_t len = brackets ? strlen(parent->name) - 2 * brackets : 0;
	set_name(out, "[", parent->name + brackets, len, key, "]");
}

int bv_schema_table(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		    bool required, struct bv_schema_table *out)
{
	const struct bv_toml_kv *kv = NULL;
	int r = get(s, t, key, BV_TOML_TABLE, required, &kv);
	if (r <= 0)
		return r;
	out->t = kv->value.u.table;
	out->pos = kv->value.pos;
	name_child(out, t, key);
	return 1;
}

int bv_schema_array(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		    bool required, const struct bv_toml_array **out, struct bv_toml_pos *pos_out)
{
	const struct bv_toml_kv *kv = NULL;
	int r = get(s, t, key, BV_TOML_ARRAY, required, &kv);
	if (r <= 0)
		return r;
	*out = kv->value.u.array;
	if (pos_out)
		*pos_out = kv->value.pos;
	return 1;
}

int bv_schema_strings(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		      bool required, struct bv_strv *out)
{
	const struct bv_toml_array *a = NULL;
	int r = bv_schema_array(s, t, key, required, &a, NULL);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < a->n; i++) {
		const struct bv_toml_value *v = &a->items[i];
		if (v->type != BV_TOML_STRING || strlen(v->u.string.ptr) != v->u.string.len)
			return bv_schema_fail(s, v->pos, "'%s' in %s must be an array of strings",
					      key, t->name);
	}
	for (size_t i = 0; i < a->n; i++)
		bv_strv_push(out, a->items[i].u.string.ptr);
	return 1;
}

int bv_schema_table_at(struct bv_schema *s, const struct bv_toml_array *a, size_t i,
		       const char *name, struct bv_schema_table *out)
{
	const struct bv_toml_value *v = &a->items[i];
	if (v->type != BV_TOML_TABLE)
		return bv_schema_fail(s, v->pos, "entries of %s must be tables, not %s %s", name,
				      article(v->type), bv_toml_type_name(v->type));
	out->t = v->u.table;
	out->pos = v->pos;
	set_name(out, "", "", 0, name, "");
	return 1;
}

int bv_schema_check_keys(struct bv_schema *s, const struct bv_schema_table *t,
			 const char *const *known)
{
	for (size_t i = 0; i < t->t->n; i++) {
		const struct bv_toml_kv *kv = &t->t->items[i];
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strlen(*k) == kv->key_len && !memcmp(*k, kv->key, kv->key_len);
		if (ok)
			continue;
		if (!s->warnings)
			return bv_schema_fail(s, kv->pos, "unknown key '%s' in %s", kv->key,
					      t->name);
		bv_strv_pushf(s->warnings, "%s:%u: unknown key '%s' in %s (ignored)", s->file,
			      kv->pos.line, kv->key, t->name);
	}
	return 0;
}

int bv_schema_check_name(struct bv_schema *s, struct bv_toml_pos pos, const char *what,
			 const char *where, const char *value)
{
	_cleanup_free_ char *shown = NULL;
	if (bv_valid_name(value))
		return 0;
	if (!*value)
		return bv_schema_fail(s, pos, "%s%s%s must not be empty", what, where ? " in " : "",
				      where ? where : "");
	shown = bv_str_shown(value, strlen(value), 200);
	return bv_schema_fail(s, pos, "invalid %s '%s'%s%s; %s", what, shown, where ? " in " : "",
			      where ? where : "", BV_NAME_RULE);
}

int bv_schema_name(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		   bool required, const char **out)
{
	const struct bv_toml_kv *kv;
	int r = bv_schema_string(s, t, key, required, out);
	if (r <= 0)
		return r;
	kv = bv_schema_find(t, key);
	if (!**out)
		return bv_schema_fail(s, kv->value.pos, "'%s' in %s must not be empty", key,
				      t->name);
	return bv_schema_check_name(s, kv->value.pos, key, t->name, *out) < 0 ? BV_EINVALID : 1;
}

int bv_schema_check_container_path(struct bv_schema *s, struct bv_toml_pos pos, const char *what,
				   const char *where, const char *value)
{
	const char *why = NULL;
	_cleanup_free_ char *shown = NULL;
	if (bv_valid_container_path(value, &why))
		return 0;
	shown = bv_str_shown(value, strlen(value), 200);
	return bv_schema_fail(s, pos, "invalid %s '%s'%s%s: %s", what, shown, where ? " in " : "",
			      where ? where : "", why);
}

int bv_schema_container_path(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
			     bool required, const char **out)
{
	const struct bv_toml_kv *kv;
	int r = bv_schema_string(s, t, key, required, out);
	if (r <= 0)
		return r;
	kv = bv_schema_find(t, key);
	return bv_schema_check_container_path(s, kv->value.pos, key, t->name, *out) < 0
		       ? BV_EINVALID
		       : 1;
}
