/*
 * Tables, arrays, lookups, the document builder, equality and datetimes.
 *
 * Tables keep their entries in document order (the writer sorts, the reader must not).  Small
 * tables are searched linearly; once a table passes TABLE_INDEX_MIN entries it gets an
 * open-addressing index, so a lock file with thousands of binaries does not parse in
 * quadratic time.
 */
#include <bv/error.h>
#include <bv/toml.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml_internal.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define TABLE_INDEX_MIN 12

static uint32_t hash_key(const char *key, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

struct bv_toml_table *toml_table_new(struct bv_arena *arena)
{
	return bv_arena_alloc(arena, sizeof(struct bv_toml_table));
}

struct bv_toml_array *toml_array_new(struct bv_arena *arena)
{
	return bv_arena_alloc(arena, sizeof(struct bv_toml_array));
}

static bool key_is(const struct bv_toml_kv *kv, const char *key, size_t len)
{
	return kv->key_len == len && !memcmp(kv->key, key, len);
}

struct bv_toml_kv *toml_table_lookup(const struct bv_toml_table *t, const char *key, size_t len)
{
	if (t->index) {
		size_t mask = t->index_cap - 1;
		for (size_t i = hash_key(key, len) & mask;; i = (i + 1) & mask) {
			uint32_t slot = t->index[i];
			if (!slot)
				return NULL;
			if (key_is(&t->items[slot - 1], key, len))
				return &t->items[slot - 1];
		}
	}
	for (size_t i = 0; i < t->n; i++)
		if (key_is(&t->items[i], key, len))
			return &t->items[i];
	return NULL;
}

static void index_insert(struct bv_toml_table *t, size_t item)
{
	size_t mask = t->index_cap - 1;
	size_t i = hash_key(t->items[item].key, t->items[item].key_len) & mask;
	while (t->index[i])
		i = (i + 1) & mask;
	t->index[i] = (uint32_t)(item + 1);
}

static void index_rebuild(struct bv_arena *arena, struct bv_toml_table *t)
{
	size_t cap = 32;
	while (cap < t->n * 2 + 2)
		cap *= 2;
	t->index = bv_arena_alloc(arena, cap * sizeof(*t->index));
	t->index_cap = cap;
	for (size_t i = 0; i < t->n; i++)
		index_insert(t, i);
}

struct bv_toml_kv *toml_table_append(struct bv_arena *arena, struct bv_toml_table *t,
				     const char *key, size_t len)
{
	struct bv_toml_kv *kv;
	if (t->n >= UINT32_MAX - 1)
		bv_oom();
	bv_arena_grow(arena, (void **)&t->items, &t->alloc, t->n, t->n + 1, sizeof(*t->items));
	kv = &t->items[t->n++];
	kv->key = key;
	kv->key_len = len;
	if (t->n >= TABLE_INDEX_MIN) {
		if (!t->index || t->n * 2 > t->index_cap)
			index_rebuild(arena, t);
		else
			index_insert(t, t->n - 1);
	}
	return kv;
}

struct bv_toml_value *toml_array_append(struct bv_arena *arena, struct bv_toml_array *a)
{
	bv_arena_grow(arena, (void **)&a->items, &a->alloc, a->n, a->n + 1, sizeof(*a->items));
	return &a->items[a->n++];
}

const struct bv_toml_kv *bv_toml_table_find(const struct bv_toml_table *t, const char *key,
					    size_t key_len)
{
	return toml_table_lookup(t, key, key_len);
}

const struct bv_toml_value *bv_toml_table_get(const struct bv_toml_table *t, const char *key)
{
	const struct bv_toml_kv *kv = toml_table_lookup(t, key, strlen(key));
	return kv ? &kv->value : NULL;
}

const struct bv_toml_table *bv_toml_doc_root(const struct bv_toml_doc *doc)
{
	return doc->root;
}

struct bv_toml_table *bv_toml_doc_root_mut(struct bv_toml_doc *doc)
{
	return doc->root;
}

struct bv_toml_doc *bv_toml_doc_new(void)
{
	struct bv_toml_doc *doc = bv_xcalloc(1, sizeof(*doc));
	doc->root = toml_table_new(&doc->arena);
	return doc;
}

void bv_toml_doc_free(struct bv_toml_doc *doc)
{
	if (!doc)
		return;
	bv_arena_release(&doc->arena);
	free(doc);
}

bool bv_toml_table_is_section(const struct bv_toml_table *t)
{
	return (t->flags & (TABLE_DEFINED | TABLE_IMPLICIT)) &&
	       !(t->flags & (TABLE_DOTTED | TABLE_FROZEN));
}

const char *bv_toml_type_name(enum bv_toml_type type)
{
	switch (type) {
	case BV_TOML_STRING:
		return "string";
	case BV_TOML_INTEGER:
		return "integer";
	case BV_TOML_FLOAT:
		return "float";
	case BV_TOML_BOOL:
		return "boolean";
	case BV_TOML_OFFSET_DATETIME:
		return "offset datetime";
	case BV_TOML_LOCAL_DATETIME:
		return "local datetime";
	case BV_TOML_LOCAL_DATE:
		return "local date";
	case BV_TOML_LOCAL_TIME:
		return "local time";
	case BV_TOML_ARRAY:
		return "array";
	case BV_TOML_TABLE:
		return "table";
	}
	return "unknown";
}

/* Builder. */

struct bv_toml_value *bv_toml_table_add(struct bv_toml_doc *doc, struct bv_toml_table *t,
					const char *key, enum bv_toml_type type)
{
	size_t len = strlen(key);
	struct bv_toml_kv *kv;
	if (toml_table_lookup(t, key, len))
		return NULL;
	kv = toml_table_append(&doc->arena, t, bv_arena_strndup(&doc->arena, key, len), len);
	kv->value.type = type;
	if (type == BV_TOML_TABLE)
		kv->value.u.table = toml_table_new(&doc->arena);
	else if (type == BV_TOML_ARRAY)
		kv->value.u.array = toml_array_new(&doc->arena);
	return &kv->value;
}

struct bv_toml_table *bv_toml_table_add_table(struct bv_toml_doc *doc, struct bv_toml_table *t,
					      const char *key)
{
	struct bv_toml_value *v = bv_toml_table_add(doc, t, key, BV_TOML_TABLE);
	return v ? v->u.table : NULL;
}

struct bv_toml_array *bv_toml_table_add_array(struct bv_toml_doc *doc, struct bv_toml_table *t,
					      const char *key)
{
	struct bv_toml_value *v = bv_toml_table_add(doc, t, key, BV_TOML_ARRAY);
	return v ? v->u.array : NULL;
}

static void set_string(struct bv_toml_doc *doc, struct bv_toml_value *v, const char *s)
{
	size_t len = strlen(s);
	v->u.string.ptr = bv_arena_strndup(&doc->arena, s, len);
	v->u.string.len = len;
}

struct bv_toml_value *bv_toml_table_add_string(struct bv_toml_doc *doc, struct bv_toml_table *t,
					       const char *key, const char *s)
{
	struct bv_toml_value *v = bv_toml_table_add(doc, t, key, BV_TOML_STRING);
	if (v)
		set_string(doc, v, s);
	return v;
}

struct bv_toml_value *bv_toml_table_add_integer(struct bv_toml_doc *doc, struct bv_toml_table *t,
						const char *key, int64_t i)
{
	struct bv_toml_value *v = bv_toml_table_add(doc, t, key, BV_TOML_INTEGER);
	if (v)
		v->u.integer = i;
	return v;
}

struct bv_toml_value *bv_toml_table_add_bool(struct bv_toml_doc *doc, struct bv_toml_table *t,
					     const char *key, bool b)
{
	struct bv_toml_value *v = bv_toml_table_add(doc, t, key, BV_TOML_BOOL);
	if (v)
		v->u.boolean = b;
	return v;
}

struct bv_toml_value *bv_toml_array_push(struct bv_toml_doc *doc, struct bv_toml_array *a,
					 enum bv_toml_type type)
{
	struct bv_toml_value *v = toml_array_append(&doc->arena, a);
	v->type = type;
	if (type == BV_TOML_TABLE)
		v->u.table = toml_table_new(&doc->arena);
	else if (type == BV_TOML_ARRAY)
		v->u.array = toml_array_new(&doc->arena);
	return v;
}

struct bv_toml_table *bv_toml_array_push_table(struct bv_toml_doc *doc, struct bv_toml_array *a)
{
	return bv_toml_array_push(doc, a, BV_TOML_TABLE)->u.table;
}

struct bv_toml_value *bv_toml_array_push_string(struct bv_toml_doc *doc, struct bv_toml_array *a,
						const char *s)
{
	struct bv_toml_value *v = bv_toml_array_push(doc, a, BV_TOML_STRING);
	set_string(doc, v, s);
	return v;
}

/* Equality. */

bool bv_toml_table_equal(const struct bv_toml_table *a, const struct bv_toml_table *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct bv_toml_kv *other =
			toml_table_lookup(b, a->items[i].key, a->items[i].key_len);
		if (!other || !bv_toml_value_equal(&a->items[i].value, &other->value))
			return false;
	}
	return true;
}

bool bv_toml_value_equal(const struct bv_toml_value *a, const struct bv_toml_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case BV_TOML_STRING:
		return a->u.string.len == b->u.string.len &&
		       !memcmp(a->u.string.ptr, b->u.string.ptr, a->u.string.len);
	case BV_TOML_INTEGER:
		return a->u.integer == b->u.integer;
	case BV_TOML_FLOAT:
		if (isnan(a->u.floating) || isnan(b->u.floating))
			return isnan(a->u.floating) && isnan(b->u.floating);
		/* equal values and the same sign: 0.0 and -0.0 differ, as their bits do */
		return a->u.floating == b->u.floating &&
		       !signbit(a->u.floating) == !signbit(b->u.floating);
	case BV_TOML_BOOL:
		return a->u.boolean == b->u.boolean;
	case BV_TOML_OFFSET_DATETIME:
	case BV_TOML_LOCAL_DATETIME:
	case BV_TOML_LOCAL_DATE:
	case BV_TOML_LOCAL_TIME: {
		const struct bv_toml_datetime *x = &a->u.datetime, *y = &b->u.datetime;
		return x->year == y->year && x->month == y->month && x->day == y->day &&
		       x->hour == y->hour && x->minute == y->minute && x->second == y->second &&
		       x->nanosecond == y->nanosecond && x->offset_minutes == y->offset_minutes;
	}
	case BV_TOML_ARRAY:
		if (a->u.array->n != b->u.array->n)
			return false;
		for (size_t i = 0; i < a->u.array->n; i++)
			if (!bv_toml_value_equal(&a->u.array->items[i], &b->u.array->items[i]))
				return false;
		return true;
	case BV_TOML_TABLE:
		return bv_toml_table_equal(a->u.table, b->u.table);
	}
	return false;
}

/* Datetimes (RFC 3339 as restricted by TOML 1.0). */

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

static bool is_date_at(const char *s, size_t len)
{
	return len >= 10 && s[4] == '-' && s[7] == '-';
}

static bool is_time_at(const char *s, size_t len)
{
	return len >= 8 && s[2] == ':' && s[5] == ':';
}

int bv_toml_parse_datetime(struct bv_toml_datetime *out, enum bv_toml_type *type_out, const char *s,
			   size_t len)
{
	struct bv_toml_datetime dt = {0};
	bool has_date = false;
	size_t pos = 0;

	if (is_date_at(s, len)) {
		if (!digits(s, 4, &dt.year) || !digits(s + 5, 2, &dt.month) ||
		    !digits(s + 8, 2, &dt.day))
			return BV_EINVALID;
		if (dt.month < 1 || dt.month > 12 || dt.day < 1 ||
		    dt.day > days_in_month(dt.year, dt.month))
			return BV_EINVALID;
		has_date = true;
		pos = 10;
		if (pos == len) {
			*out = dt;
			*type_out = BV_TOML_LOCAL_DATE;
			return 0;
		}
		if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')
			return BV_EINVALID;
		pos++;
	}
	if (!is_time_at(s + pos, len - pos))
		return BV_EINVALID;
	if (!digits(s + pos, 2, &dt.hour) || !digits(s + pos + 3, 2, &dt.minute) ||
	    !digits(s + pos + 6, 2, &dt.second))
		return BV_EINVALID;
	if (dt.hour > 23 || dt.minute > 59 || dt.second > 60)
		return BV_EINVALID;
	pos += 8;
	if (pos < len && s[pos] == '.') {
		size_t n = 0;
		uint32_t scale = 100000000;
		pos++;
		while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
			if (n < 9) {
				dt.nanosecond += (uint32_t)(s[pos] - '0') * scale;
				scale /= 10;
			}
			n++;
			pos++;
		}
		if (!n)
			return BV_EINVALID;
	}
	if (!has_date) {
		if (pos != len)
			return BV_EINVALID;
		*out = dt;
		*type_out = BV_TOML_LOCAL_TIME;
		return 0;
	}
	if (pos == len) {
		*out = dt;
		*type_out = BV_TOML_LOCAL_DATETIME;
		return 0;
	}
	if (s[pos] == 'Z' || s[pos] == 'z') {
		pos++;
	} else if (s[pos] == '+' || s[pos] == '-') {
		int oh, om;
		if (len - pos != 6 || s[pos + 3] != ':' || !digits(s + pos + 1, 2, &oh) ||
		    !digits(s + pos + 4, 2, &om) || oh > 23 || om > 59)
			return BV_EINVALID;
		dt.offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
		pos += 6;
	} else {
		return BV_EINVALID;
	}
	if (pos != len)
		return BV_EINVALID;
	*out = dt;
	*type_out = BV_TOML_OFFSET_DATETIME;
	return 0;
}

void bv_toml_format_datetime(struct bv_buf *out, const struct bv_toml_datetime *dt,
			     enum bv_toml_type type)
{
	if (type != BV_TOML_LOCAL_TIME)
		bv_buf_printf(out, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
	if (type == BV_TOML_LOCAL_DATE)
		return;
	if (type != BV_TOML_LOCAL_TIME)
		bv_buf_putc(out, 'T');
	bv_buf_printf(out, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
	if (dt->nanosecond) {
		char frac[16];
		int n = 9;
		(void)snprintf(frac, sizeof(frac), "%09u", (unsigned)dt->nanosecond);
		while (n > 1 && frac[n - 1] == '0')
			n--;
		bv_buf_printf(out, ".%.*s", n, frac);
	}
	if (type != BV_TOML_OFFSET_DATETIME)
		return;
	if (!dt->offset_minutes) {
		bv_buf_putc(out, 'Z');
	} else {
		int off = abs(dt->offset_minutes);
		bv_buf_printf(out, "%c%02d:%02d", dt->offset_minutes < 0 ? '-' : '+', off / 60,
			      off % 60);
	}
}
