/*
 * The deterministic TOML writer.
 *
 * bv.lock must be byte-identical whenever its content is, so that lock files diff cleanly in
 * version control.  The layout is therefore fixed: within each table, keys are sorted
 * bytewise; plain values come first, then sub-tables as [a.b] sections and arrays of tables
 * as [[a.b]] sections, each section preceded by a blank line.  A table that holds only
 * sections gets no header of its own (TOML creates it implicitly); an empty table keeps one,
 * so that it survives a round trip.
 */
#include <bv/toml.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml_internal.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool is_bare_key(const char *key, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool needs_escape(unsigned char c)
{
	return c == '"' || c == '\\' || c < 0x20 || c == 0x7f;
}

void bv_toml_write_string(struct bv_buf *out, const char *s, size_t len)
{
	bv_buf_putc(out, '"');
	for (size_t i = 0; i < len;) {
		size_t run = i;
		unsigned char c;
		while (run < len && !needs_escape((unsigned char)s[run]))
			run++;
		bv_buf_add(out, s + i, run - i); /* most strings are one run */
		if (run == len)
			break;
		c = (unsigned char)s[run];
		switch (c) {
		case '"':
			bv_buf_puts(out, "\\\"");
			break;
		case '\\':
			bv_buf_puts(out, "\\\\");
			break;
		case '\b':
			bv_buf_puts(out, "\\b");
			break;
		case '\t':
			bv_buf_puts(out, "\\t");
			break;
		case '\n':
			bv_buf_puts(out, "\\n");
			break;
		case '\f':
			bv_buf_puts(out, "\\f");
			break;
		case '\r':
			bv_buf_puts(out, "\\r");
			break;
		default:
			bv_buf_printf(out, "\\u%04X", c);
		}
		i = run + 1;
	}
	bv_buf_putc(out, '"');
}

static void write_key(struct bv_buf *out, const char *key, size_t len)
{
	if (is_bare_key(key, len))
		bv_buf_add(out, key, len);
	else
		bv_toml_write_string(out, key, len);
}

/* The shortest decimal form that reads back to the same double. */
static void write_float(struct bv_buf *out, double d)
{
	char text[40];
	if (isnan(d)) {
		bv_buf_puts(out, signbit(d) ? "-nan" : "nan");
		return;
	}
	if (isinf(d)) {
		bv_buf_puts(out, d < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		(void)snprintf(text, sizeof(text), "%.*g", prec, d);
		if (strtod(text, NULL) == d)
			break;
	}
	bv_buf_puts(out, text);
	if (!strpbrk(text, ".eEn"))
		bv_buf_puts(out, ".0");
}

static int compare_kv(const void *a, const void *b)
{
	const struct bv_toml_kv *x = *(const struct bv_toml_kv *const *)a;
	const struct bv_toml_kv *y = *(const struct bv_toml_kv *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Entries of `t` in key order; the caller frees the array. */
static const struct bv_toml_kv **sorted_items(const struct bv_toml_table *t)
{
	const struct bv_toml_kv **items = bv_xcalloc(t->n + 1, sizeof(*items));
	for (size_t i = 0; i < t->n; i++)
		items[i] = &t->items[i];
	if (t->n > 1)
		qsort(items, t->n, sizeof(*items), compare_kv);
	return items;
}

static void write_inline(struct bv_buf *out, const struct bv_toml_value *v);

static void write_inline_table(struct bv_buf *out, const struct bv_toml_table *t)
{
	const struct bv_toml_kv **items = sorted_items(t);
	if (!t->n) {
		bv_buf_puts(out, "{}");
		free(items);
		return;
	}
	bv_buf_puts(out, "{ ");
	for (size_t i = 0; i < t->n; i++) {
		if (i)
			bv_buf_puts(out, ", ");
		write_key(out, items[i]->key, items[i]->key_len);
		bv_buf_puts(out, " = ");
		write_inline(out, &items[i]->value);
	}
	bv_buf_puts(out, " }");
	free(items);
}

static void write_inline(struct bv_buf *out, const struct bv_toml_value *v)
{
	switch (v->type) {
	case BV_TOML_STRING:
		bv_toml_write_string(out, v->u.string.ptr, v->u.string.len);
		break;
	case BV_TOML_INTEGER:
		bv_buf_printf(out, "%lld", (long long)v->u.integer);
		break;
	case BV_TOML_FLOAT:
		write_float(out, v->u.floating);
		break;
	case BV_TOML_BOOL:
		bv_buf_puts(out, v->u.boolean ? "true" : "false");
		break;
	case BV_TOML_OFFSET_DATETIME:
	case BV_TOML_LOCAL_DATETIME:
	case BV_TOML_LOCAL_DATE:
	case BV_TOML_LOCAL_TIME:
		bv_toml_format_datetime(out, &v->u.datetime, v->type);
		break;
	case BV_TOML_ARRAY:
		bv_buf_putc(out, '[');
		for (size_t i = 0; i < v->u.array->n; i++) {
			if (i)
				bv_buf_puts(out, ", ");
			write_inline(out, &v->u.array->items[i]);
		}
		bv_buf_putc(out, ']');
		break;
	case BV_TOML_TABLE:
		write_inline_table(out, v->u.table);
		break;
	}
}

static bool is_array_of_tables(const struct bv_toml_value *v)
{
	if (v->type != BV_TOML_ARRAY || !v->u.array->n)
		return false;
	for (size_t i = 0; i < v->u.array->n; i++)
		if (v->u.array->items[i].type != BV_TOML_TABLE)
			return false;
	return true;
}

static bool is_section(const struct bv_toml_value *v)
{
	return v->type == BV_TOML_TABLE || is_array_of_tables(v);
}

static void write_header(struct bv_buf *out, const struct bv_buf *path, bool array)
{
	if (out->len)
		bv_buf_putc(out, '\n');
	bv_buf_puts(out, array ? "[[" : "[");
	bv_buf_add(out, path->buf, path->len);
	bv_buf_puts(out, array ? "]]\n" : "]\n");
}

static void write_body(struct bv_buf *out, const struct bv_toml_table *t, struct bv_buf *path);

static void write_section(struct bv_buf *out, const struct bv_toml_table *t, struct bv_buf *path,
			  bool array)
{
	bool has_plain = false;
	for (size_t i = 0; i < t->n && !has_plain; i++)
		has_plain = !is_section(&t->items[i].value);
	if (array || has_plain || !t->n)
		write_header(out, path, array);
	write_body(out, t, path);
}

static void write_body(struct bv_buf *out, const struct bv_toml_table *t, struct bv_buf *path)
{
	const struct bv_toml_kv **items = sorted_items(t);
	size_t base = path->len;

	for (size_t i = 0; i < t->n; i++) {
		if (is_section(&items[i]->value))
			continue;
		write_key(out, items[i]->key, items[i]->key_len);
		bv_buf_puts(out, " = ");
		write_inline(out, &items[i]->value);
		bv_buf_putc(out, '\n');
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct bv_toml_value *v = &items[i]->value;
		if (!is_section(v))
			continue;
		if (base)
			bv_buf_putc(path, '.');
		write_key(path, items[i]->key, items[i]->key_len);
		if (v->type == BV_TOML_TABLE) {
			write_section(out, v->u.table, path, false);
		} else {
			for (size_t j = 0; j < v->u.array->n; j++)
				write_section(out, v->u.array->items[j].u.table, path, true);
		}
		bv_buf_setlen(path, base);
	}
	free(items);
}

void bv_toml_write(struct bv_buf *out, const struct bv_toml_table *root)
{
	struct bv_buf path = BV_BUF_INIT;
	bv_buf_grow(&path, 64);
	write_body(out, root, &path);
	bv_buf_release(&path);
}
