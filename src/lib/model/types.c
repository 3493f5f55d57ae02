/*
 * types.c - loading and querying the data type vocabulary (data/types.toml).
 *
 * The definitions point into the parsed TOML document, which the vocabulary keeps alive; only
 * the entry array and the NULL-terminated string lists are allocated separately.
 */
#include "config.h"

#include <bv/error.h>
#include <bv/toml.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/model/types-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define TYPE_ID_MAX   64
#define SUGGEST_EDITS 3

struct entry {
	struct bv_type_def def;
	struct bv_toml_pos pos;        /* the type's [types.<id>] header */
	struct bv_toml_pos kind_pos;   /* valid when def.kind was declared */
	struct bv_toml_pos parent_pos; /* valid when def.parent is set */
	bool declared_kind;
	const char **owned[2]; /* the allocated lists behind parameters and required_files */
};

struct bv_types {
	struct bv_toml_doc *doc;
	struct entry *entries; /* document order */
	struct entry **sorted; /* by id, for lookups */
	size_t n;
};

static const char *const no_strings[] = {NULL};

void bv_types_free(struct bv_types *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->entries[i].owned[0]);
		free(t->entries[i].owned[1]);
	}
	free(t->entries);
	free(t->sorted);
	bv_toml_doc_free(t->doc);
	free(t);
}

static void types_freep(struct bv_types **t)
{
	bv_types_free(*t);
}

/* Holds what every error about the file needs. */
struct loader {
	const char *path;
	struct bv_error **err;
};

__attribute__((format(printf, 3, 4))) static int fail(const struct loader *l,
						      struct bv_toml_pos pos, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(l->err, BV_EINVALID, 0, "%s:%u:%u: %s", l->path, pos.line, pos.column,
			     msg);
}

static bool valid_type_id(const char *id, size_t len)
{
	if (len == 0 || len > TYPE_ID_MAX || strlen(id) != len || !(id[0] >= 'a' && id[0] <= 'z'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') ||
		      id[i] == '_'))
			return false;
	return true;
}

static int get_string(const struct loader *l, const struct bv_toml_kv *kv, const char *id,
		      const char **out)
{
	const struct bv_toml_value *v = &kv->value;

	if (v->type != BV_TOML_STRING)
		return fail(l, v->pos, "'%s' of type '%s' must be a string, not %s", kv->key, id,
			    bv_toml_type_name(v->type));
	if (v->u.string.len == 0 || strlen(v->u.string.ptr) != v->u.string.len)
		return fail(l, v->pos, "'%s' of type '%s' must be a non-empty string", kv->key, id);
	*out = v->u.string.ptr;
	return 0;
}

static int get_strings(const struct loader *l, const struct bv_toml_kv *kv, const char *id,
		       const char *const **out, const char ***owned)
{
	const struct bv_toml_value *v = &kv->value;
	const struct bv_toml_array *a;
	const char **list;

	if (v->type != BV_TOML_ARRAY)
		return fail(l, v->pos, "'%s' of type '%s' must be an array of strings, not %s",
			    kv->key, id, bv_toml_type_name(v->type));
	a = v->u.array;
	for (size_t i = 0; i < a->n; i++) {
		const struct bv_toml_value *item = &a->items[i];
		if (item->type != BV_TOML_STRING || item->u.string.len == 0 ||
		    strlen(item->u.string.ptr) != item->u.string.len)
			return fail(l, item->pos,
				    "'%s' of type '%s' must hold non-empty strings only", kv->key,
				    id);
	}
	if (a->n == 0) {
		*out = no_strings;
		return 0;
	}
	free(*owned); /* a duplicate key cannot reach here, but stay leak-free regardless */
	list = bv_xcalloc(a->n + 1, sizeof(*list));
	for (size_t i = 0; i < a->n; i++)
		list[i] = a->items[i].u.string.ptr;
	*owned = list;
	*out = list;
	return 0;
}

static int read_entry(const struct loader *l, struct entry *e, const struct bv_toml_kv *type_kv)
{
	const char *id = type_kv->key;
	const struct bv_toml_table *t;

	e->def.id = id;
	e->def.parameters = no_strings;
	e->def.required_files = no_strings;
	e->pos = type_kv->pos;
	if (!valid_type_id(id, type_kv->key_len))
		return fail(l, type_kv->pos,
			    "invalid type id '%s' (expected a lower-case letter, then letters, "
			    "digits or '_', at most %d in all)",
			    id, TYPE_ID_MAX);
	if (type_kv->value.type != BV_TOML_TABLE)
		return fail(l, type_kv->value.pos, "type '%s' must be a table, not %s", id,
			    bv_toml_type_name(type_kv->value.type));
	t = type_kv->value.u.table;
	for (size_t i = 0; i < t->n; i++) {
		const struct bv_toml_kv *kv = &t->items[i];
		int r;

		if (!strcmp(kv->key, "kind")) {
			r = get_string(l, kv, id, &e->def.kind);
			e->kind_pos = kv->value.pos;
			e->declared_kind = true;
		} else if (!strcmp(kv->key, "parent")) {
			r = get_string(l, kv, id, &e->def.parent);
			e->parent_pos = kv->value.pos;
		} else if (!strcmp(kv->key, "description")) {
			r = get_string(l, kv, id, &e->def.description);
		} else if (!strcmp(kv->key, "mime")) {
			r = get_string(l, kv, id, &e->def.mime);
		} else if (!strcmp(kv->key, "columns")) {
			r = get_string(l, kv, id, &e->def.columns);
		} else if (!strcmp(kv->key, "parameters")) {
			r = get_strings(l, kv, id, &e->def.parameters, &e->owned[0]);
		} else if (!strcmp(kv->key, "required_files")) {
			r = get_strings(l, kv, id, &e->def.required_files, &e->owned[1]);
		} else {
			r = fail(l, kv->pos, "unknown key '%s' in type '%s'", kv->key, id);
		}
		if (r < 0)
			return r;
	}
	if (!e->def.description)
		return fail(l, e->pos, "type '%s' has no description", id);
	if (e->declared_kind && e->def.parent)
		return fail(l, e->kind_pos, "type '%s' has both a kind and a parent", id);
	if (!e->declared_kind && !e->def.parent)
		return fail(l, e->pos, "type '%s' needs a kind (for a root type) or a parent", id);
	if (e->declared_kind && strcmp(e->def.kind, "file") && strcmp(e->def.kind, "directory"))
		return fail(l, e->kind_pos,
			    "kind of type '%s' must be 'file' or 'directory', not '%s'", id,
			    e->def.kind);
	return 0;
}

static int compare_entries(const void *a, const void *b)
{
	const struct entry *const *x = a, *const *y = b;
	return strcmp((*x)->def.id, (*y)->def.id);
}

static struct entry *find(const struct bv_types *t, const char *id)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(id, t->sorted[mid]->def.id);
		if (c == 0)
			return t->sorted[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The parent of `e`, after check_tree's first loop found every parent. */
static struct entry *parent_of(const struct bv_types *t, const struct entry *e)
{
	struct entry *p = find(t, e->def.parent);
	if (!p)
		abort(); /* unreachable: a dangling parent link was refused */
	return p;
}

/* Checks the parent links; afterwards every walk up the tree ends at a root. */
static int check_tree(const struct loader *l, struct bv_types *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct entry *e = &t->entries[i];
		if (e->def.parent && !find(t, e->def.parent))
			return fail(l, e->parent_pos, "type '%s' has unknown parent '%s'",
				    e->def.id, e->def.parent);
	}
	for (size_t i = 0; i < t->n; i++) {
		struct entry *e = &t->entries[i];
		size_t steps = 0;

		while (e->def.parent && steps <= t->n) {
			e = parent_of(t, e);
			steps++;
		}
		if (e->def.parent) {
			/* More steps than types: `e` is on a cycle.  Name the cycle from its
			 * member written first, so the message does not depend on the walk. */
			_cleanup_buf_ struct bv_buf path = BV_BUF_INIT;
			struct entry *start = e, *c = e;
			do {
				c = parent_of(t, c);
				if (c < e)
					e = c;
			} while (c != start);
			c = e;
			bv_buf_puts(&path, e->def.id);
			do {
				c = parent_of(t, c);
				bv_buf_printf(&path, " -> %s", c->def.id);
			} while (c != e);
			return fail(l, e->parent_pos, "type '%s' is its own ancestor (%s)",
				    e->def.id, path.buf);
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		struct entry *e = &t->entries[i], *root = e;
		while (root->def.parent)
			root = parent_of(t, root);
		e->def.kind = root->def.kind;
	}
	return 0;
}

int bv_types_load(struct bv_types **out, const char *path, struct bv_error **err)
{
	_cleanup_(types_freep) struct bv_types *t = bv_xcalloc(1, sizeof(*t));
	const struct loader l = {path, err};
	const struct bv_toml_table *root, *table;
	const struct bv_toml_value *v;
	int r;

	r = bv_toml_parse_file(&t->doc, path, err);
	if (r < 0)
		return r;
	root = bv_toml_doc_root(t->doc);
	for (size_t i = 0; i < root->n; i++)
		if (strcmp(root->items[i].key, "types"))
			return fail(&l, root->items[i].pos,
				    "unknown key '%s' (expected [types.<id>])", root->items[i].key);
	v = bv_toml_table_get(root, "types");
	if (!v)
		return fail(&l, (struct bv_toml_pos){1, 1}, "no [types.<id>] tables");
	if (v->type != BV_TOML_TABLE)
		return fail(&l, v->pos, "'types' must be a table, not %s",
			    bv_toml_type_name(v->type));
	table = v->u.table;
	t->entries = bv_xcalloc(table->n ? table->n : 1, sizeof(*t->entries));
	t->sorted = bv_xcalloc(table->n ? table->n : 1, sizeof(*t->sorted));
	for (size_t i = 0; i < table->n; i++) {
		t->n = i + 1; /* so that the lists of a half-read entry are freed */
		r = read_entry(&l, &t->entries[i], &table->items[i]);
		if (r < 0)
			return r;
		t->sorted[i] = &t->entries[i];
	}
	t->n = table->n;
	if (t->n == 0)
		return fail(&l, v->pos, "no types are defined");
	qsort(t->sorted, t->n, sizeof(*t->sorted), compare_entries);
	r = check_tree(&l, t);
	if (r < 0)
		return r;
	*out = TAKE_PTR(t);
	return 0;
}

/* "<prefix>/share/bv/types.toml" for the prefix the running executable is installed in. */
static char *beside_executable(void)
{
	_cleanup_free_ char *exe = bv_executable_path();
	char *slash;

	if (!exe)
		return NULL;
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	return bv_xasprintf("%s/../share/bv/types.toml", exe);
}

int bv_types_load_default(struct bv_types **out, struct bv_error **err)
{
	const char *env = getenv("BV_TYPES_FILE");
	_cleanup_free_ char *local = NULL;
	const char *candidates[3];
	size_t n = 0;

	if (env && *env)
		return bv_types_load(out, env, err);
	local = beside_executable();
	if (local)
		candidates[n++] = local;
	candidates[n++] = BV_DATADIR_TYPES;
	candidates[n++] = BV_SOURCE_TYPES;
	for (size_t i = 0; i < n; i++)
		if (bv_path_exists(candidates[i]))
			return bv_types_load(out, candidates[i], err);
	return bv_error_setc(err, BV_ENOTFOUND, 0,
			     "could not find the type vocabulary '%s' (set BV_TYPES_FILE to its "
			     "path)",
			     BV_DATADIR_TYPES);
}

const struct bv_type_def *bv_types_lookup(const struct bv_types *t, const char *id)
{
	const struct entry *e = id ? find(t, id) : NULL;
	return e ? &e->def : NULL;
}

bool bv_types_is_subtype(const struct bv_types *t, const char *child, const char *parent)
{
	const struct entry *e = child ? find(t, child) : NULL;

	if (!parent || !find(t, parent))
		return false;
	for (; e; e = e->def.parent ? find(t, e->def.parent) : NULL)
		if (!strcmp(e->def.id, parent))
			return true;
	return false;
}

const char *bv_types_mime(const struct bv_types *t, const char *id)
{
	for (const struct entry *e = id ? find(t, id) : NULL; e;
	     e = e->def.parent ? find(t, e->def.parent) : NULL)
		if (e->def.mime)
			return e->def.mime;
	return NULL;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Edit distance of `a` and `b` (|b| <= TYPE_ID_MAX), ignoring ASCII case. */
static size_t levenshtein(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t row[TYPE_ID_MAX + 1], prev[TYPE_ID_MAX + 1];

	for (size_t j = 0; j <= blen; j++)
		prev[j] = j;
	for (size_t i = 1; i <= alen; i++) {
		row[0] = i;
		for (size_t j = 1; j <= blen; j++) {
			size_t best = prev[j - 1] + (lower(a[i - 1]) != lower(b[j - 1]));
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
		}
		memcpy(prev, row, (blen + 1) * sizeof(*row));
	}
	return prev[blen];
}

static size_t common_suffix(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = 0;

	while (n < alen && n < blen && lower(a[alen - 1 - n]) == lower(b[blen - 1 - n]))
		n++;
	return n;
}

const char *bv_types_suggest(const struct bv_types *t, const char *unknown)
{
	size_t ulen = unknown ? strlen(unknown) : 0;
	const char *best = NULL;
	size_t best_dist = SUGGEST_EDITS + 1, best_suffix = 0;

	if (ulen == 0 || ulen > TYPE_ID_MAX + SUGGEST_EDITS)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		const char *id = t->sorted[i]->def.id;
		size_t len = strlen(id), d, s;

		if ((len > ulen ? len - ulen : ulen - len) > SUGGEST_EDITS)
			continue;
		d = levenshtein(unknown, ulen, id, len);
		s = common_suffix(unknown, ulen, id, len);
		if (d < best_dist || (d == best_dist && s > best_suffix)) {
			best = id;
			best_dist = d;
			best_suffix = s;
		}
	}
	return best;
}

void bv_types_ids(struct bv_strv *out, const struct bv_types *t)
{
	for (size_t i = 0; i < t->n; i++)
		bv_strv_push(out, t->sorted[i]->def.id);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_ref_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

int bv_type_ref_parse(struct bv_type_ref *out, const char *text)
{
	_cleanup_strv_ struct bv_strv params = BV_STRV_INIT;
	const char *p = text, *end, *id;
	size_t id_len;

	if (!text)
		return BV_EINVALID;
	while (is_space(*p))
		p++;
	end = p + strlen(p);
	while (end > p && is_space(end[-1]))
		end--;
	for (id = p; p < end && is_ref_char(*p); p++)
		;
	id_len = (size_t)(p - id);
	if (id_len == 0)
		return BV_EINVALID;
	if (p < end) {
		if (*p != '[' || end[-1] != ']')
			return BV_EINVALID;
		p++;
		for (;;) {
			const char *s, *e;
			while (p < end && is_space(*p))
				p++;
			for (s = p; p < end && is_ref_char(*p); p++)
				;
			e = p;
			while (p < end && is_space(*p))
				p++;
			if (e == s || p >= end)
				return BV_EINVALID;
			bv_strv_push_take(&params, bv_xstrndup(s, (size_t)(e - s)));
			if (*p == ']' && p + 1 == end)
				break;
			if (*p != ',')
				return BV_EINVALID;
			p++;
		}
	}
	out->id = bv_xstrndup(id, id_len);
	out->params = params;
	bv_strv_init(&params);
	return 0;
}

void bv_type_ref_release(struct bv_type_ref *ref)
{
	free(ref->id);
	ref->id = NULL;
	bv_strv_clear(&ref->params);
}

char *bv_type_ref_format(const struct bv_type_ref *ref)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;

	bv_buf_puts(&b, ref->id);
	if (ref->params.n) {
		bv_buf_putc(&b, '[');
		for (size_t i = 0; i < ref->params.n; i++) {
			if (i)
				bv_buf_putc(&b, ',');
			bv_buf_puts(&b, ref->params.v[i]);
		}
		bv_buf_putc(&b, ']');
	}
	return bv_buf_detach(&b, NULL);
}
