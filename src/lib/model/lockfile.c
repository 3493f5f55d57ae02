/*
 * bv.lock: reading, writing, editing and comparing lock files.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/toml.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/model/lockfile-internal.h"
#include "lib/model/schema.h"
#include "lib/model/validate.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *str(const char *s)
{
	return s ? s : "";
}

/* ---- memory ---- */

/*
 * The index mappings lent to live locks (lockfile-internal.h).  A process-wide table rather
 * than a field of the lock, because bv_lock_set_string() is handed a field and not its lock;
 * a process holds one or two locks at a time, so a few slots are plenty (when they are all
 * taken the index is decoded with copies).
 */
#define N_LENT 8

static struct {
	uintptr_t start, end;
	const struct bv_lockfile *lock;
} lent[N_LENT];

static bool is_lent(const char *s)
{
	uintptr_t p = (uintptr_t)s;
	for (size_t i = 0; i < N_LENT; i++)
		if (p >= lent[i].start && p < lent[i].end)
			return true;
	return false;
}

/* free() for a string of a lock, which may be lent */
static void str_free(char *s)
{
	if (s && !is_lent(s))
		free(s);
}

bool bv_lockfile_lend(struct bv_lockfile *lock, void *map, size_t len)
{
	for (size_t i = 0; i < N_LENT; i++) {
		if (lent[i].lock)
			continue;
		lent[i].start = (uintptr_t)map;
		lent[i].end = (uintptr_t)map + len;
		lent[i].lock = lock;
		return true;
	}
	return false;
}

/* Unmaps what was lent to `lock`, once none of its strings is used any more. */
static void unlend(const struct bv_lockfile *lock)
{
	for (size_t i = 0; i < N_LENT; i++) {
		if (lent[i].lock != lock)
			continue;
		(void)munmap((void *)lent[i].start, lent[i].end - lent[i].start);
		memset(&lent[i], 0, sizeof(lent[i]));
	}
}

static void conda_free(struct bv_lock_conda *c)
{
	if (!c)
		return;
	str_free(c->name);
	str_free(c->version);
	str_free(c->build);
	str_free(c->channel);
	str_free(c->sha256);
	free(c);
}

void bv_lock_tool_clear_layers(struct bv_lock_tool *t)
{
	for (size_t i = 0; i < t->n_layers; i++) {
		str_free(t->layers[i].digest);
		str_free(t->layers[i].media_type);
		conda_free(t->layers[i].conda);
	}
	free(t->layers);
	t->layers = NULL;
	t->n_layers = 0;
}

static void tool_clear(struct bv_lock_tool *t)
{
	str_free(t->tool_id);
	str_free(t->declared_version_req);
	str_free(t->version);
	str_free(t->image_reference);
	str_free(t->image_digest);
	str_free(t->manifest_sha256);
	str_free(t->resolved_at);
	bv_lock_tool_clear_layers(t);
	for (size_t i = 0; i < t->n_pins; i++) {
		str_free(t->pins[i].key);
		str_free(t->pins[i].id);
		str_free(t->pins[i].version);
		str_free(t->pins[i].sha256);
	}
	free(t->pins);
	bv_strv_clear(&t->binaries);
}

static void tool_init(struct bv_lock_tool *t, const char *tool_id)
{
	memset(t, 0, sizeof(*t));
	t->tool_id = bv_xstrdup(tool_id);
	t->declared_version_req = bv_xstrdup("");
	t->version = bv_xstrdup("");
	t->image_reference = bv_xstrdup("");
	t->image_digest = bv_xstrdup("");
	t->manifest_sha256 = bv_xstrdup("");
	t->resolved_at = bv_xstrdup("");
	t->image_size_bytes = -1;
	bv_strv_init(&t->binaries);
}

static void binary_index_free(struct bv_lock_binary *index, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		str_free(index[i].binary);
		str_free(index[i].tool);
	}
	free(index);
}

void bv_lockfile_free(struct bv_lockfile *lock)
{
	if (!lock)
		return;
	str_free(lock->bv_version);
	str_free(lock->generated_at);
	str_free(lock->hardware_summary);
	for (size_t i = 0; i < lock->n_tools; i++)
		tool_clear(&lock->tools[i]);
	free(lock->tools);
	binary_index_free(lock->binary_index, lock->n_binary_index);
	unlend(lock);
	free(lock);
}

struct bv_lockfile *bv_lockfile_new(const char *bv_version, int64_t now)
{
	struct bv_lockfile *lock = bv_xcalloc(1, sizeof(*lock));
	char stamp[BV_RFC3339_LEN + 1];
	if (bv_time_format_rfc3339(stamp, now) < 0)
		(void)bv_time_format_rfc3339(stamp, 0);
	lock->version = BV_LOCKFILE_VERSION;
	lock->bv_version = bv_xstrdup(str(bv_version));
	lock->generated_at = bv_xstrdup(stamp);
	return lock;
}

void bv_lock_set_string(char **field, const char *value)
{
	char *copy = bv_xstrdup(str(value));
	str_free(*field);
	*field = copy;
}

/* ---- lookup and editing ---- */

/* Index of `tool_id` in the sorted tools, or where it would go (with *found false). */
static size_t tool_slot(const struct bv_lockfile *lock, const char *tool_id, bool *found)
{
	size_t lo = 0, hi = lock->n_tools;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(lock->tools[mid].tool_id, tool_id);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct bv_lock_tool *bv_lockfile_find(const struct bv_lockfile *lock, const char *tool_id)
{
	bool found;
	size_t i = tool_slot(lock, tool_id, &found);
	return found ? &lock->tools[i] : NULL;
}

struct bv_lock_tool *bv_lockfile_upsert(struct bv_lockfile *lock, const char *tool_id)
{
	bool found;
	size_t i = tool_slot(lock, tool_id, &found);
	if (found)
		return &lock->tools[i];
	lock->tools = bv_xreallocarray(lock->tools, lock->n_tools + 1, sizeof(*lock->tools));
	memmove(&lock->tools[i + 1], &lock->tools[i], (lock->n_tools - i) * sizeof(*lock->tools));
	lock->n_tools++;
	tool_init(&lock->tools[i], tool_id);
	return &lock->tools[i];
}

int bv_lockfile_remove(struct bv_lockfile *lock, const char *tool_id)
{
	bool found;
	size_t i = tool_slot(lock, tool_id, &found);
	if (!found)
		return BV_ENOTFOUND;
	tool_clear(&lock->tools[i]);
	memmove(&lock->tools[i], &lock->tools[i + 1],
		(lock->n_tools - i - 1) * sizeof(*lock->tools));
	lock->n_tools--;
	return 0;
}

struct bv_lock_layer *bv_lock_tool_add_layer(struct bv_lock_tool *tool)
{
	struct bv_lock_layer *l;
	tool->layers = bv_xreallocarray(tool->layers, tool->n_layers + 1, sizeof(*tool->layers));
	l = &tool->layers[tool->n_layers++];
	l->digest = bv_xstrdup("");
	l->size = 0;
	l->media_type = bv_xstrdup("");
	l->conda = NULL;
	return l;
}

struct bv_lock_data_pin *bv_lock_tool_set_pin(struct bv_lock_tool *tool, const char *key)
{
	size_t i = 0;
	struct bv_lock_data_pin *p;
	while (i < tool->n_pins && strcmp(tool->pins[i].key, key) < 0)
		i++;
	if (i < tool->n_pins && !strcmp(tool->pins[i].key, key))
		return &tool->pins[i];
	tool->pins = bv_xreallocarray(tool->pins, tool->n_pins + 1, sizeof(*tool->pins));
	memmove(&tool->pins[i + 1], &tool->pins[i], (tool->n_pins - i) * sizeof(*tool->pins));
	tool->n_pins++;
	p = &tool->pins[i];
	p->key = bv_xstrdup(key);
	p->id = bv_xstrdup("");
	p->version = bv_xstrdup("");
	p->sha256 = bv_xstrdup("");
	return p;
}

int bv_lockfile_validate_digest(const char *digest)
{
	return bv_digest_valid(digest) ? 0 : BV_EINVALID;
}

/* ---- reading ---- */

/* A name (validate.h) when present; reading the value itself is left to the caller. */
static int check_name(struct bv_schema *s, const struct bv_schema_table *t, const char *key)
{
	const char *v;
	return bv_schema_name(s, t, key, false, &v) < 0 ? BV_EINVALID : 0;
}

/* A required or optional string copied into *out ("" when absent and optional). */
static int read_string(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		       bool required, char **out)
{
	const char *v = "";
	int r = bv_schema_string(s, t, key, required, &v);
	if (r < 0)
		return r;
	*out = bv_xstrdup(v);
	return r;
}

static int check_digest(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
			const char *value)
{
	if (!value[0] || bv_lockfile_validate_digest(value) == 0)
		return 0;
	return bv_schema_fail(s, bv_schema_find(t, key)->value.pos,
			      "'%s' in %s must be 'sha256:' and 64 lowercase hex digits, not '%s'",
			      key, t->name, value);
}

static int check_timestamp(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
			   const char *value)
{
	int64_t secs;
	if (bv_time_parse_rfc3339(&secs, NULL, value) == 0)
		return 0;
	return bv_schema_fail(s, bv_schema_find(t, key)->value.pos,
			      "'%s' in %s must be an RFC 3339 timestamp, not '%s'", key, t->name,
			      value);
}

/* An integer that must not be negative; returns what bv_schema_integer() does. */
static int read_size(struct bv_schema *s, const struct bv_schema_table *t, const char *key,
		     bool required, int64_t *out)
{
	int64_t v = 0;
	int r = bv_schema_integer(s, t, key, required, &v);
	if (r <= 0)
		return r;
	if (v < 0)
		return bv_schema_fail(s, bv_schema_find(t, key)->value.pos,
				      "'%s' in %s must not be negative", key, t->name);
	*out = v;
	return r;
}

static int read_conda(struct bv_schema *s, const struct bv_schema_table *layer,
		      struct bv_lock_layer *l)
{
	struct bv_schema_table t;
	struct bv_lock_conda *c;
	int r = bv_schema_table(s, layer, "conda_package", false, &t);
	if (r <= 0)
		return r;
	c = l->conda = bv_xcalloc(1, sizeof(*c));
	if (read_string(s, &t, "name", true, &c->name) < 0 ||
	    read_string(s, &t, "version", true, &c->version) < 0 ||
	    read_string(s, &t, "build", true, &c->build) < 0 ||
	    read_string(s, &t, "channel", true, &c->channel) < 0 ||
	    read_string(s, &t, "sha256", true, &c->sha256) < 0)
		return BV_EINVALID;
	return 0; /* upstream ignores other keys of a layer and its conda package */
}

static int read_layers(struct bv_schema *s, const struct bv_schema_table *tool_t,
		       struct bv_lock_tool *tool)
{
	const struct bv_toml_array *a = NULL;
	const char *name;
	int r = bv_schema_array(s, tool_t, "layers", false, &a, NULL);
	if (r <= 0)
		return r;
	name = bv_strv_pushf(&s->names, "[[tools.%s.layers]]", tool->tool_id);
	for (size_t i = 0; i < a->n; i++) {
		struct bv_schema_table t;
		struct bv_lock_layer *l;
		if (bv_schema_table_at(s, a, i, name, &t) < 0)
			return BV_EINVALID;
		l = bv_lock_tool_add_layer(tool);
		str_free(l->digest);
		str_free(l->media_type);
		l->digest = l->media_type = NULL;
		if (read_string(s, &t, "digest", true, &l->digest) < 0 ||
		    read_size(s, &t, "size", true, &l->size) < 0 ||
		    read_string(s, &t, "media_type", true, &l->media_type) < 0 ||
		    read_conda(s, &t, l) < 0 || check_digest(s, &t, "digest", l->digest) < 0)
			return BV_EINVALID;
	}
	return 0;
}

static int read_pins(struct bv_schema *s, const struct bv_schema_table *tool_t,
		     struct bv_lock_tool *tool)
{
	static const char *const known[] = {"id", "version", "sha256", NULL};
	struct bv_schema_table pins;
	int r = bv_schema_table(s, tool_t, "reference_data_pins", false, &pins);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < pins.t->n; i++) {
		const char *key = pins.t->items[i].key;
		struct bv_schema_table t;
		struct bv_lock_data_pin *p;
		if (strlen(key) != pins.t->items[i].key_len)
			return bv_schema_fail(s, pins.t->items[i].pos,
					      "key in %s must not contain NUL", pins.name);
		if (bv_schema_check_name(s, pins.t->items[i].pos, "name", pins.name, key) < 0 ||
		    bv_schema_table(s, &pins, key, true, &t) < 0 || check_name(s, &t, "id") < 0 ||
		    check_name(s, &t, "version") < 0)
			return BV_EINVALID;
		p = bv_lock_tool_set_pin(tool, key);
		str_free(p->id);
		str_free(p->version);
		str_free(p->sha256);
		p->id = p->version = p->sha256 = NULL;
		if (read_string(s, &t, "id", true, &p->id) < 0 ||
		    read_string(s, &t, "version", true, &p->version) < 0 ||
		    read_string(s, &t, "sha256", true, &p->sha256) < 0 ||
		    bv_schema_check_keys(s, &t, known) < 0)
			return BV_EINVALID;
	}
	return 0;
}

static int read_tool(struct bv_schema *s, const struct bv_schema_table *tools,
		     const struct bv_toml_kv *kv, struct bv_lockfile *lock)
{
	static const char *const known[] = {"tool_id",
					    "declared_version_req",
					    "version",
					    "spec_kind",
					    "image_reference",
					    "image_digest",
					    "manifest_sha256",
					    "image_size_bytes",
					    "layers",
					    "resolved_at",
					    "reference_data_pins",
					    "binaries",
					    NULL};
	struct bv_schema_table t;
	struct bv_lock_tool *tool;
	const char *tool_id = NULL, *spec_kind = NULL;

	if (strlen(kv->key) != kv->key_len || !kv->key_len)
		return bv_schema_fail(s, kv->pos, "invalid tool id in %s", tools->name);
	if (bv_schema_check_name(s, kv->pos, "tool id", tools->name, kv->key) < 0 ||
	    bv_schema_table(s, tools, kv->key, true, &t) < 0 || check_name(s, &t, "version") < 0 ||
	    bv_schema_string(s, &t, "tool_id", true, &tool_id) < 0)
		return BV_EINVALID;
	if (strcmp(tool_id, kv->key))
		return bv_schema_fail(s, bv_schema_find(&t, "tool_id")->value.pos,
				      "'tool_id' is '%s' but the table is %s", tool_id, t.name);
	/* Keys are unique in a TOML table, so this always appends a new entry. */
	tool = bv_lockfile_upsert(lock, tool_id);
	str_free(tool->declared_version_req);
	str_free(tool->version);
	str_free(tool->image_reference);
	str_free(tool->image_digest);
	str_free(tool->manifest_sha256);
	str_free(tool->resolved_at);
	tool->declared_version_req = tool->version = tool->image_reference = NULL;
	tool->image_digest = tool->manifest_sha256 = tool->resolved_at = NULL;
	if (read_string(s, &t, "declared_version_req", false, &tool->declared_version_req) < 0 ||
	    read_string(s, &t, "version", true, &tool->version) < 0 ||
	    bv_schema_string(s, &t, "spec_kind", false, &spec_kind) < 0 ||
	    read_string(s, &t, "image_reference", true, &tool->image_reference) < 0 ||
	    read_string(s, &t, "image_digest", true, &tool->image_digest) < 0 ||
	    read_string(s, &t, "manifest_sha256", false, &tool->manifest_sha256) < 0 ||
	    read_size(s, &t, "image_size_bytes", false, &tool->image_size_bytes) < 0 ||
	    read_string(s, &t, "resolved_at", true, &tool->resolved_at) < 0 ||
	    bv_schema_strings(s, &t, "binaries", false, &tool->binaries) < 0 ||
	    read_layers(s, &t, tool) < 0 || read_pins(s, &t, tool) < 0 ||
	    bv_schema_check_keys(s, &t, known) < 0)
		return BV_EINVALID;
	if (spec_kind && !strcmp(spec_kind, "factored_oci"))
		tool->factored = true;
	else if (spec_kind && strcmp(spec_kind, "legacy_image"))
		return bv_schema_fail(
			s, bv_schema_find(&t, "spec_kind")->value.pos,
			"unknown 'spec_kind' '%s' in %s; expected legacy_image or factored_oci",
			spec_kind, t.name);
	for (size_t i = 0; i < tool->binaries.n; i++)
		if (bv_schema_check_name(s, bv_schema_find(&t, "binaries")->value.pos,
					 "binary name", t.name, tool->binaries.v[i]) < 0)
			return BV_EINVALID;
	if (check_digest(s, &t, "image_digest", tool->image_digest) < 0 ||
	    check_digest(s, &t, "manifest_sha256", tool->manifest_sha256) < 0 ||
	    check_timestamp(s, &t, "resolved_at", tool->resolved_at) < 0)
		return BV_EINVALID;
	return 0;
}

static int compare_binary(const void *a, const void *b)
{
	return strcmp(((const struct bv_lock_binary *)a)->binary,
		      ((const struct bv_lock_binary *)b)->binary);
}

static int read_binary_index(struct bv_schema *s, const struct bv_schema_table *root,
			     struct bv_lockfile *lock)
{
	struct bv_schema_table t;
	int r = bv_schema_table(s, root, "binary_index", false, &t);
	if (r <= 0)
		return r;
	lock->binary_index = bv_xcalloc(t.t->n + 1, sizeof(*lock->binary_index));
	for (size_t i = 0; i < t.t->n; i++) {
		const struct bv_toml_kv *kv = &t.t->items[i];
		const char *tool = NULL;
		const struct bv_lock_tool *owner;
		if (strlen(kv->key) != kv->key_len || !kv->key_len)
			return bv_schema_fail(s, kv->pos, "invalid binary name in %s", t.name);
		if (bv_schema_check_name(s, kv->pos, "binary name", t.name, kv->key) < 0 ||
		    bv_schema_string(s, &t, kv->key, true, &tool) < 0)
			return BV_EINVALID;
		owner = bv_lockfile_find(lock, tool);
		if (!owner)
			return bv_schema_fail(
				s, kv->value.pos,
				"binary '%s' in %s names tool '%s', which is not locked", kv->key,
				t.name, tool);
		/* a tool that lists its binaries must list this one: the index may not invent */
		if (owner->binaries.n && !bv_strv_contains(&owner->binaries, kv->key))
			return bv_schema_fail(
				s, kv->value.pos,
				"binary '%s' in %s names tool '%s', which does not provide it",
				kv->key, t.name, tool);
		lock->binary_index[i].binary = bv_xstrdup(kv->key);
		lock->binary_index[i].tool = bv_xstrdup(tool);
		lock->n_binary_index++;
	}
	qsort(lock->binary_index, lock->n_binary_index, sizeof(*lock->binary_index),
	      compare_binary);
	return 0;
}

static int read_version(struct bv_schema *s, const struct bv_schema_table *root,
			struct bv_lockfile *lock)
{
	const struct bv_toml_kv *kv;
	if (bv_schema_integer(s, root, "version", true, &lock->version) < 0)
		return BV_EINVALID;
	kv = bv_schema_find(root, "version");
	if (lock->version > BV_LOCKFILE_VERSION)
		return bv_schema_fail(
			s, kv->pos,
			"lock file format version %lld is newer than this bv understands (%d); upgrade bv",
			(long long)lock->version, BV_LOCKFILE_VERSION);
	if (lock->version < 1)
		return bv_schema_fail(s, kv->pos,
				      "invalid lock file format version %lld; expected %d",
				      (long long)lock->version, BV_LOCKFILE_VERSION);
	return 0;
}

static int read_lock(struct bv_schema *s, const struct bv_toml_doc *doc, struct bv_lockfile *lock)
{
	static const char *const known[] = {"version", "metadata", "tools", "binary_index", NULL};
	struct bv_schema_table root = bv_schema_root(s, bv_toml_doc_root(doc));
	struct bv_schema_table meta, tools;
	const char *hw = NULL;
	int r;

	/* First, so that a newer format is refused with the upgrade hint, not its new keys. */
	if (read_version(s, &root, lock) < 0)
		return BV_EINVALID;
	if (bv_schema_check_keys(s, &root, known) < 0)
		return BV_EINVALID;
	/*
	 * As upstream reads it: [metadata] may be missing (#[serde(default)]) and keys it does
	 * not know are ignored there (only the top level and [tools.<id>] deny them).
	 */
	r = bv_schema_table(s, &root, "metadata", false, &meta);
	if (r < 0)
		return BV_EINVALID;
	if (r > 0 && (read_string(s, &meta, "bv_version", false, &lock->bv_version) < 0 ||
		      read_string(s, &meta, "generated_at", false, &lock->generated_at) < 0 ||
		      bv_schema_string(s, &meta, "hardware_summary", false, &hw) < 0 ||
		      (lock->generated_at[0] &&
		       check_timestamp(s, &meta, "generated_at", lock->generated_at) < 0)))
		return BV_EINVALID;
	if (!lock->bv_version)
		lock->bv_version = bv_xstrdup("");
	if (!lock->generated_at)
		lock->generated_at = bv_xstrdup("");
	if (hw)
		lock->hardware_summary = bv_xstrdup(hw);
	r = bv_schema_table(s, &root, "tools", false, &tools);
	if (r < 0)
		return r;
	for (size_t i = 0; r > 0 && i < tools.t->n; i++)
		if (read_tool(s, &tools, &tools.t->items[i], lock) < 0)
			return BV_EINVALID;
	return read_binary_index(s, &root, lock);
}

int bv_lockfile_parse(struct bv_lockfile **out, const char *text, size_t len, const char *path,
		      struct bv_error **err)
{
	struct bv_toml_doc *doc = NULL;
	struct bv_lockfile *lock;
	struct bv_schema s = {.file = path, .warnings = NULL, .err = err};
	int r = bv_toml_parse(&doc, text, len, path, err);
	if (r < 0)
		return r;
	lock = bv_xcalloc(1, sizeof(*lock));
	bv_strv_init(&s.names);
	r = read_lock(&s, doc, lock);
	bv_schema_release(&s);
	bv_toml_doc_free(doc);
	if (r < 0) {
		bv_lockfile_free(lock);
		return BV_EINVALID;
	}
	*out = lock;
	return 0;
}

/* ---- writing ---- */

static void build_tool(struct bv_toml_doc *doc, struct bv_toml_table *tools,
		       const struct bv_lock_tool *tool)
{
	struct bv_toml_table *t = bv_toml_table_add_table(doc, tools, tool->tool_id);
	struct bv_toml_array *a;
	struct bv_toml_table *pins;

	bv_toml_table_add_string(doc, t, "tool_id", tool->tool_id);
	if (tool->declared_version_req && tool->declared_version_req[0])
		bv_toml_table_add_string(doc, t, "declared_version_req",
					 tool->declared_version_req);
	bv_toml_table_add_string(doc, t, "version", str(tool->version));
	if (tool->factored)
		bv_toml_table_add_string(doc, t, "spec_kind", "factored_oci");
	bv_toml_table_add_string(doc, t, "image_reference", str(tool->image_reference));
	bv_toml_table_add_string(doc, t, "image_digest", str(tool->image_digest));
	bv_toml_table_add_string(doc, t, "manifest_sha256", str(tool->manifest_sha256));
	if (tool->image_size_bytes >= 0)
		bv_toml_table_add_integer(doc, t, "image_size_bytes", tool->image_size_bytes);
	bv_toml_table_add_string(doc, t, "resolved_at", str(tool->resolved_at));

	a = bv_toml_table_add_array(doc, t, "binaries");
	bv_strv_foreach (b, &tool->binaries)
		bv_toml_array_push_string(doc, a, *b);

	a = bv_toml_table_add_array(doc, t, "layers");
	for (size_t i = 0; i < tool->n_layers; i++) {
		const struct bv_lock_layer *l = &tool->layers[i];
		struct bv_toml_table *lt = bv_toml_array_push_table(doc, a);
		bv_toml_table_add_string(doc, lt, "digest", str(l->digest));
		bv_toml_table_add_integer(doc, lt, "size", l->size);
		bv_toml_table_add_string(doc, lt, "media_type", str(l->media_type));
		if (l->conda) {
			struct bv_toml_table *c = bv_toml_table_add_table(doc, lt, "conda_package");
			bv_toml_table_add_string(doc, c, "name", str(l->conda->name));
			bv_toml_table_add_string(doc, c, "version", str(l->conda->version));
			bv_toml_table_add_string(doc, c, "build", str(l->conda->build));
			bv_toml_table_add_string(doc, c, "channel", str(l->conda->channel));
			bv_toml_table_add_string(doc, c, "sha256", str(l->conda->sha256));
		}
	}

	pins = bv_toml_table_add_table(doc, t, "reference_data_pins");
	for (size_t i = 0; i < tool->n_pins; i++) {
		const struct bv_lock_data_pin *p = &tool->pins[i];
		struct bv_toml_table *pt = bv_toml_table_add_table(doc, pins, p->key);
		bv_toml_table_add_string(doc, pt, "id", str(p->id));
		bv_toml_table_add_string(doc, pt, "version", str(p->version));
		bv_toml_table_add_string(doc, pt, "sha256", str(p->sha256));
	}
}

void bv_lockfile_write(struct bv_buf *out, const struct bv_lockfile *lock)
{
	struct bv_toml_doc *doc = bv_toml_doc_new();
	struct bv_toml_table *root = bv_toml_doc_root_mut(doc);
	struct bv_toml_table *meta, *tools;

	bv_toml_table_add_integer(doc, root, "version", lock->version);
	meta = bv_toml_table_add_table(doc, root, "metadata");
	bv_toml_table_add_string(doc, meta, "bv_version", str(lock->bv_version));
	bv_toml_table_add_string(doc, meta, "generated_at", str(lock->generated_at));
	if (lock->hardware_summary)
		bv_toml_table_add_string(doc, meta, "hardware_summary", lock->hardware_summary);
	tools = bv_toml_table_add_table(doc, root, "tools");
	for (size_t i = 0; i < lock->n_tools; i++)
		build_tool(doc, tools, &lock->tools[i]);
	if (lock->n_binary_index) {
		struct bv_toml_table *index = bv_toml_table_add_table(doc, root, "binary_index");
		for (size_t i = 0; i < lock->n_binary_index; i++)
			bv_toml_table_add_string(doc, index, lock->binary_index[i].binary,
						 lock->binary_index[i].tool);
	}
	bv_toml_write(out, root);
	bv_toml_doc_free(doc);
}

/* ---- binary index ---- */

struct provider {
	const char *binary;
	const char *tool;
};

static int compare_provider(const void *a, const void *b)
{
	const struct provider *x = a, *y = b;
	int c = strcmp(x->binary, y->binary);
	return c ? c : strcmp(x->tool, y->tool);
}

static bool tool_provides(const struct bv_lock_tool *t, const char *binary)
{
	return bv_strv_contains(&t->binaries, binary);
}

static bool named_by(const char *bin, const char *const *override_binaries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(override_binaries[i], bin))
			return true;
	return false;
}

int bv_lockfile_rebuild_binary_index(struct bv_lockfile *lock, const char *const *override_binaries,
				     const char *const *override_tools, size_t n_overrides,
				     struct bv_error **err)
{
	_cleanup_free_ struct provider *all = NULL;
	struct bv_lock_binary *index = NULL;
	size_t n_all = 0, alloc = 0, n_index = 0;

	for (size_t i = 0; i < n_overrides; i++) {
		const char *bin = override_binaries[i], *tool = override_tools[i];
		const struct bv_lock_tool *t = bv_lockfile_find(lock, tool);
		bool exposed = false;
		for (size_t j = 0; j < lock->n_tools && !exposed; j++)
			exposed = tool_provides(&lock->tools[j], bin);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(override_binaries[j], bin))
				return bv_error_setc(err, BV_EINVALID, 0,
						     "binary override '%s' is given twice", bin);
		if (!t)
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"binary override '%s' names tool '%s', which is not locked", bin,
				tool);
		if (!exposed)
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"binary override '%s' names a binary no locked tool provides", bin);
		if (!tool_provides(t, bin))
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"binary override '%s' names tool '%s', which does not provide it",
				bin, tool);
	}

	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		bv_strv_foreach (b, &t->binaries) {
			BV_GROW(all, alloc, n_all + 1);
			all[n_all].binary = *b;
			all[n_all].tool = t->tool_id;
			n_all++;
		}
	}
	if (n_all)
		qsort(all, n_all, sizeof(*all), compare_provider);

	index = bv_xcalloc(n_all + 1, sizeof(*index));
	for (size_t i = 0; i < n_all;) {
		const char *bin = all[i].binary, *winner = all[i].tool, *rival = NULL;
		size_t end = i;
		while (end < n_all && !strcmp(all[end].binary, bin)) {
			if (strcmp(all[end].tool, winner) && !rival)
				rival = all[end].tool;
			end++;
		}
		for (size_t j = 0; j < n_overrides; j++)
			if (!strcmp(override_binaries[j], bin)) {
				winner = override_tools[j];
				rival = NULL;
			}
		if (rival) {
			int r = bv_error_setc(
				err, BV_EINVALID, 0,
				"binary '%s' is provided by both '%s' and '%s'; choose one in bv.toml:\n"
				"  [binary_overrides]\n"
				"  %s = \"%s\"",
				bin, winner, rival, bin, winner);
			binary_index_free(index, n_index);
			return r;
		}
		if (!rival && bv_shadows_system_command(bin) &&
		    !named_by(bin, override_binaries, n_overrides)) {
			int r = bv_error_setc(
				err, BV_EINVALID, 0,
				"tool '%s' exposes '%s', which would replace the system command in "
				"bv exec and bv shell; if that is what you want, say so in bv.toml:\n"
				"  [binary_overrides]\n"
				"  %s = \"%s\"",
				winner, bin, bin, winner);
			binary_index_free(index, n_index);
			return r;
		}
		index[n_index].binary = bv_xstrdup(bin);
		index[n_index].tool = bv_xstrdup(winner);
		n_index++;
		i = end;
	}

	binary_index_free(lock->binary_index, lock->n_binary_index);
	lock->binary_index = index;
	lock->n_binary_index = n_index;
	return 0;
}

/* ---- comparison ---- */

/* "sha256:" and the first 12 hex digits, then "…"; "(none)" for an empty digest. */
static void short_digest(struct bv_buf *b, const char *digest)
{
	const char *hex = strchr(digest, ':');
	size_t keep;
	if (!digest[0]) {
		bv_buf_puts(b, "(none)");
		return;
	}
	keep = hex ? (size_t)(hex - digest) + 1 + 12 : 12;
	if (strlen(digest) <= keep) {
		bv_buf_puts(b, digest);
		return;
	}
	bv_buf_add(b, digest, keep);
	bv_buf_puts(b, "…");
}

static void push_digest_change(struct bv_strv *lines, const char *prefix, const char *a,
			       const char *b)
{
	struct bv_buf line = BV_BUF_INIT;
	bv_buf_puts(&line, prefix);
	short_digest(&line, a);
	bv_buf_puts(&line, " -> ");
	short_digest(&line, b);
	bv_strv_push_take(lines, bv_buf_detach(&line, NULL));
}

static void format_list(struct bv_buf *b, const struct bv_strv *v)
{
	bv_buf_putc(b, '[');
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			bv_buf_puts(b, ", ");
		bv_buf_puts(b, v->v[i]);
	}
	bv_buf_putc(b, ']');
}

/* Whether two lists hold the same set of names (order and repeats do not matter). */
static bool same_names(const struct bv_strv *a, const struct bv_strv *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!bv_strv_contains(b, a->v[i]))
			return false;
	for (size_t i = 0; i < b->n; i++)
		if (!bv_strv_contains(a, b->v[i]))
			return false;
	return true;
}

static const struct bv_lock_data_pin *find_pin(const struct bv_lock_tool *t, const char *key)
{
	for (size_t i = 0; i < t->n_pins; i++)
		if (!strcmp(t->pins[i].key, key))
			return &t->pins[i];
	return NULL;
}

static void diff_pins(const struct bv_lock_tool *a, const struct bv_lock_tool *b,
		      struct bv_strv *lines)
{
	const char *id = a->tool_id;
	for (size_t i = 0; i < a->n_pins; i++) {
		const struct bv_lock_data_pin *p = &a->pins[i], *q = find_pin(b, p->key);
		if (!q)
			bv_strv_pushf(lines, "~ %s: data pin '%s' removed", id, p->key);
		else if (strcmp(p->id, q->id) || strcmp(p->version, q->version) ||
			 strcmp(p->sha256, q->sha256))
			bv_strv_pushf(lines, "~ %s: data pin '%s' %s@%s -> %s@%s", id, p->key,
				      p->id, p->version, q->id, q->version);
	}
	for (size_t i = 0; i < b->n_pins; i++)
		if (!find_pin(a, b->pins[i].key))
			bv_strv_pushf(lines, "~ %s: data pin '%s' added", id, b->pins[i].key);
}

static void diff_layers(const struct bv_lock_tool *a, const struct bv_lock_tool *b,
			struct bv_strv *lines)
{
	const char *id = a->tool_id;
	size_t n = a->n_layers < b->n_layers ? a->n_layers : b->n_layers;
	if (a->n_layers != b->n_layers)
		bv_strv_pushf(lines, "~ %s: layer count %zu -> %zu", id, a->n_layers, b->n_layers);
	for (size_t i = 0; i < n; i++) {
		const struct bv_lock_layer *x = &a->layers[i], *y = &b->layers[i];
		const struct bv_lock_conda *c = y->conda ? y->conda : x->conda;
		_cleanup_free_ char *prefix = NULL;
		if (!strcmp(str(x->digest), str(y->digest)))
			continue;
		if (c)
			prefix = bv_xasprintf("~ %s: layer[%zu] (%s@%s) digest ", id, i,
					      str(c->name), str(c->version));
		else
			prefix = bv_xasprintf("~ %s: layer[%zu] digest ", id, i);
		push_digest_change(lines, prefix, str(x->digest), str(y->digest));
	}
}

static void diff_tool(const struct bv_lock_tool *a, const struct bv_lock_tool *b,
		      struct bv_strv *lines)
{
	const char *id = a->tool_id;
	if (strcmp(str(a->version), str(b->version)))
		bv_strv_pushf(lines, "~ %s: version %s -> %s", id, str(a->version),
			      str(b->version));
	if (a->factored != b->factored)
		bv_strv_pushf(lines, "~ %s: spec kind %s -> %s", id,
			      a->factored ? "factored_oci" : "legacy_image",
			      b->factored ? "factored_oci" : "legacy_image");
	if (strcmp(str(a->image_reference), str(b->image_reference)))
		bv_strv_pushf(lines, "~ %s: image reference %s -> %s", id, str(a->image_reference),
			      str(b->image_reference));
	if (strcmp(str(a->image_digest), str(b->image_digest))) {
		_cleanup_free_ char *prefix = bv_xasprintf("~ %s: image digest ", id);
		push_digest_change(lines, prefix, str(a->image_digest), str(b->image_digest));
	}
	/* An empty manifest digest means "not recorded", which upstream does not count. */
	if (str(a->manifest_sha256)[0] && str(b->manifest_sha256)[0] &&
	    strcmp(a->manifest_sha256, b->manifest_sha256))
		bv_strv_pushf(lines, "~ %s: manifest changed", id);
	diff_layers(a, b, lines);
	if (!same_names(&a->binaries, &b->binaries)) {
		struct bv_buf line = BV_BUF_INIT;
		bv_buf_printf(&line, "~ %s: binaries ", id);
		format_list(&line, &a->binaries);
		bv_buf_puts(&line, " -> ");
		format_list(&line, &b->binaries);
		bv_strv_push_take(lines, bv_buf_detach(&line, NULL));
	}
	diff_pins(a, b, lines);
}

static void diff_binary_index(const struct bv_lockfile *a, const struct bv_lockfile *b,
			      struct bv_strv *lines)
{
	size_t i = 0, j = 0;
	while (i < a->n_binary_index || j < b->n_binary_index) {
		const struct bv_lock_binary *x = i < a->n_binary_index ? &a->binary_index[i] : NULL;
		const struct bv_lock_binary *y = j < b->n_binary_index ? &b->binary_index[j] : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(x->binary, y->binary);
		if (c < 0 && x) {
			bv_strv_pushf(lines, "~ binary index: %s: %s -> (none)", x->binary,
				      x->tool);
			i++;
		} else if (c > 0 && y) {
			bv_strv_pushf(lines, "~ binary index: %s: (none) -> %s", y->binary,
				      y->tool);
			j++;
		} else if (x && y) {
			if (strcmp(x->tool, y->tool))
				bv_strv_pushf(lines, "~ binary index: %s: %s -> %s", x->binary,
					      x->tool, y->tool);
			i++;
			j++;
		}
	}
}

void bv_lockfile_diff(const struct bv_lockfile *old, const struct bv_lockfile *new,
		      struct bv_strv *lines)
{
	/* Both tool arrays are sorted by id: one merge pass pairs them up.  Indices, not
	 * pointers: a lock without tools may have no array at all (found by fuzz_model). */
	size_t i = 0, j = 0;
	while (i < old->n_tools || j < new->n_tools) {
		const struct bv_lock_tool *x = i < old->n_tools ? &old->tools[i] : NULL;
		const struct bv_lock_tool *y = j < new->n_tools ? &new->tools[j] : NULL;
		int c = !x ? 1 : !y ? -1 : strcmp(x->tool_id, y->tool_id);
		if (c < 0 && x) {
			bv_strv_pushf(lines, "- %s %s (removed)", x->tool_id, str(x->version));
			i++;
		} else if (c > 0 && y) {
			bv_strv_pushf(lines, "+ %s %s (new)", y->tool_id, str(y->version));
			j++;
		} else if (x && y) {
			diff_tool(x, y, lines);
			i++;
			j++;
		}
	}
	diff_binary_index(old, new, lines);
}

bool bv_lockfile_equivalent(const struct bv_lockfile *a, const struct bv_lockfile *b)
{
	_cleanup_strv_ struct bv_strv lines = BV_STRV_INIT;
	bv_lockfile_diff(a, b, &lines);
	return lines.n == 0;
}

static void copy_tool(struct bv_lock_tool *dst, const struct bv_lock_tool *src)
{
	bv_lock_set_string(&dst->declared_version_req, src->declared_version_req);
	bv_lock_set_string(&dst->version, src->version);
	dst->factored = src->factored;
	bv_lock_set_string(&dst->image_reference, src->image_reference);
	bv_lock_set_string(&dst->image_digest, src->image_digest);
	bv_lock_set_string(&dst->manifest_sha256, src->manifest_sha256);
	dst->image_size_bytes = src->image_size_bytes;
	bv_lock_set_string(&dst->resolved_at, src->resolved_at);
	for (size_t i = 0; i < src->n_layers; i++) {
		const struct bv_lock_layer *sl = &src->layers[i];
		struct bv_lock_layer *dl = bv_lock_tool_add_layer(dst);
		bv_lock_set_string(&dl->digest, sl->digest);
		dl->size = sl->size;
		bv_lock_set_string(&dl->media_type, sl->media_type);
		if (sl->conda) {
			dl->conda = bv_xcalloc(1, sizeof(*dl->conda));
			bv_lock_set_string(&dl->conda->name, sl->conda->name);
			bv_lock_set_string(&dl->conda->version, sl->conda->version);
			bv_lock_set_string(&dl->conda->build, sl->conda->build);
			bv_lock_set_string(&dl->conda->channel, sl->conda->channel);
			bv_lock_set_string(&dl->conda->sha256, sl->conda->sha256);
		}
	}
	for (size_t i = 0; i < src->n_pins; i++) {
		struct bv_lock_data_pin *p = bv_lock_tool_set_pin(dst, src->pins[i].key);
		bv_lock_set_string(&p->id, src->pins[i].id);
		bv_lock_set_string(&p->version, src->pins[i].version);
		bv_lock_set_string(&p->sha256, src->pins[i].sha256);
	}
	bv_strv_clear(&dst->binaries);
	bv_strv_pushv(&dst->binaries, (const char *const *)src->binaries.v);
}

struct bv_lockfile *bv_lockfile_clone(const struct bv_lockfile *lock)
{
	struct bv_lockfile *copy = bv_xcalloc(1, sizeof(*copy));
	copy->version = lock->version;
	copy->bv_version = bv_xstrdup(str(lock->bv_version));
	copy->generated_at = bv_xstrdup(str(lock->generated_at));
	copy->hardware_summary = lock->hardware_summary ? bv_xstrdup(lock->hardware_summary) : NULL;
	/* The source is sorted, so each upsert appends. */
	for (size_t i = 0; i < lock->n_tools; i++)
		copy_tool(bv_lockfile_upsert(copy, lock->tools[i].tool_id), &lock->tools[i]);
	copy->binary_index = bv_xcalloc(lock->n_binary_index + 1, sizeof(*copy->binary_index));
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		copy->binary_index[i].binary = bv_xstrdup(lock->binary_index[i].binary);
		copy->binary_index[i].tool = bv_xstrdup(lock->binary_index[i].tool);
	}
	copy->n_binary_index = lock->n_binary_index;
	return copy;
}
