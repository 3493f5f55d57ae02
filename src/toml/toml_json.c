#include "toml_json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

#include "util/banned.h"

static json_t *checked(json_t *j)
{
	if (!j)
		bv_oom();
	return j;
}

static json_t *tagged(const char *type, const char *value, size_t len)
{
	json_t *o = checked(json_object());
	json_object_set_new(o, "type", checked(json_string(type)));
	json_object_set_new(o, "value", checked(json_stringn(value, len)));
	return o;
}

static json_t *value_to_json(const struct bv_toml_value *v);

static json_t *table_to_json(const struct bv_toml_table *t)
{
	json_t *o = checked(json_object());
	for (size_t i = 0; i < t->n; i++)
		json_object_setn_new(o, t->items[i].key, t->items[i].key_len,
				     value_to_json(&t->items[i].value));
	return o;
}

static json_t *value_to_json(const struct bv_toml_value *v)
{
	struct bv_buf b = BV_BUF_INIT;
	json_t *j;
	switch (v->type) {
	case BV_TOML_STRING:
		return tagged("string", v->u.string.ptr, v->u.string.len);
	case BV_TOML_INTEGER:
		bv_buf_printf(&b, "%lld", (long long)v->u.integer);
		j = tagged("integer", b.buf, b.len);
		break;
	case BV_TOML_FLOAT:
		if (isnan(v->u.floating))
			bv_buf_puts(&b, "nan");
		else if (isinf(v->u.floating))
			bv_buf_puts(&b, v->u.floating < 0 ? "-inf" : "inf");
		else
			bv_buf_printf(&b, "%.17g", v->u.floating);
		j = tagged("float", b.buf, b.len);
		break;
	case BV_TOML_BOOL:
		return tagged("bool", v->u.boolean ? "true" : "false", v->u.boolean ? 4 : 5);
	case BV_TOML_OFFSET_DATETIME:
	case BV_TOML_LOCAL_DATETIME:
	case BV_TOML_LOCAL_DATE:
	case BV_TOML_LOCAL_TIME: {
		static const char *const names[] = {"datetime", "datetime-local", "date-local",
						    "time-local"};
		bv_toml_format_datetime(&b, &v->u.datetime, v->type);
		j = tagged(names[v->type - BV_TOML_OFFSET_DATETIME], b.buf, b.len);
		break;
	}
	case BV_TOML_ARRAY:
		j = checked(json_array());
		for (size_t i = 0; i < v->u.array->n; i++)
			json_array_append_new(j, value_to_json(&v->u.array->items[i]));
		return j;
	case BV_TOML_TABLE:
		return table_to_json(v->u.table);
	default:
		abort();
	}
	bv_buf_release(&b);
	return j;
}

json_t *bv_toml_to_tagged_json(const struct bv_toml_table *root)
{
	return table_to_json(root);
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	if (!strcmp(s, "nan") || !strcmp(s, "+nan") || !strcmp(s, "-nan")) {
		*out = NAN;
		return true;
	}
	if (!strcmp(s, "inf") || !strcmp(s, "+inf")) {
		*out = INFINITY;
		return true;
	}
	if (!strcmp(s, "-inf")) {
		*out = -INFINITY;
		return true;
	}
	errno = 0;
	*out = strtod(s, &end);
	return *s && !*end;
}

static bool scalar_equal(const char *type, const char *a, const char *b)
{
	if (!strcmp(type, "integer")) {
		char *ea, *eb;
		long long x = strtoll(a, &ea, 10), y = strtoll(b, &eb, 10);
		return !*ea && !*eb && x == y;
	}
	if (!strcmp(type, "float")) {
		double x, y;
		if (!parse_double(a, &x) || !parse_double(b, &y))
			return false;
		return (isnan(x) && isnan(y)) || x == y;
	}
	if (!strncmp(type, "datetime", 8) || !strcmp(type, "date-local") ||
	    !strcmp(type, "time-local")) {
		struct bv_toml_datetime x, y;
		enum bv_toml_type tx, ty;
		if (bv_toml_parse_datetime(&x, &tx, a, strlen(a)) < 0 ||
		    bv_toml_parse_datetime(&y, &ty, b, strlen(b)) < 0)
			return false;
		return tx == ty && !memcmp(&x, &y, sizeof(x));
	}
	return !strcmp(a, b);
}

bool bv_toml_tagged_json_equal(const json_t *a, const json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!bv_toml_tagged_json_equal(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	if (json_is_object(a)) {
		const char *key;
		json_t *va;
		const json_t *ta = json_object_get(a, "type"), *xa = json_object_get(a, "value");
		const json_t *tb = json_object_get(b, "type"), *xb = json_object_get(b, "value");
		if (json_object_size(a) == 2 && json_is_string(ta) && json_is_string(xa)) {
			return json_object_size(b) == 2 && json_is_string(tb) &&
			       json_is_string(xb) && json_equal(ta, tb) &&
			       scalar_equal(json_string_value(ta), json_string_value(xa),
					    json_string_value(xb));
		}
		if (json_object_size(a) != json_object_size(b))
			return false;
		/* json_object_foreach needs a non-const object; the loop does not modify it. */
		json_object_foreach((json_t *)(uintptr_t)a, key, va)
		{
			const json_t *vb = json_object_get(b, key);
			if (!vb || !bv_toml_tagged_json_equal(va, vb))
				return false;
		}
		return true;
	}
	return json_equal(a, b);
}
