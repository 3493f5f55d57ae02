/*
 * Persistent sessions on a Docker Engine: see include/bv/session.h.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/session.h>
#include <bv/toml.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/engine/engine-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/store/archive_calls.h"
#include "lib/oci/store/archive_loader.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/signals.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define WORKSPACE          "/workspace"
#define SNAPSHOT_REPO      "bv-snapshot"
#define CACHE_REPO         "bv-cache"
#define LINE_MAX_PENDING   (64 * 1024)
#define LRU_FILE           "cache-lru.json"
#define LRU_LOCK           "cache-lru.lock"
#define LRU_MAX_BYTES      (4 * 1024 * 1024)
#define STATE_VERSION      1
#define EXEC_POLL_ATTEMPTS 100

/* ---- Names ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

int bv_session_check_name(const char *name, struct bv_error **err)
{
	size_t len = name ? strlen(name) : 0;
	if (!len)
		return bv_error_setc(err, BV_EINVALID, 0, "a session name cannot be empty");
	if (len > BV_SESSION_NAME_MAX)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid session name '%.63s...': longer than %d characters",
				     name, BV_SESSION_NAME_MAX);
	if (!name_char(name[0]) || name[0] == '_' || name[0] == '.' || name[0] == '-')
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"invalid session name '%s': it must start with a letter or digit", name);
	for (size_t i = 0; i < len; i++)
		if (!name_char(name[i]))
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"invalid session name '%s': only letters, digits, '_', '.' and '-' are allowed",
				name);
	return 0;
}

static const char *last_component(const char *path)
{
	const char *end = path + strlen(path);
	const char *start;
	while (end > path && end[-1] == '/')
		end--;
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	return start;
}

/*
 * Only the root goes in (see session.h): a name from bv.toml would differ between callers that
 * read it and the warm runner, which does not, and change under sessions when it is edited.
 */
char *bv_session_container_name(const char *project_root, const char *session)
{
	char hash[BV_SHA256_HEX_LEN + 1];
	struct bv_buf b = BV_BUF_INIT;
	const char *name = last_component(project_root);
	size_t kept = 0;
	bv_sha256_hex(project_root, strlen(project_root), hash);
	bv_buf_puts(&b, "bv-");
	for (const char *p = name; *p && *p != '/' && kept < 32; p++, kept++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		bv_buf_putc(&b, name_char(c) ? c : '-');
	}
	if (!kept)
		bv_buf_puts(&b, "project");
	bv_buf_printf(&b, "-%.8s-%s", hash, session);
	return bv_buf_detach(&b, NULL);
}

char *bv_session_snapshot_ref(const char *container_id, uint64_t ns, long pid)
{
	return bv_xasprintf(SNAPSHOT_REPO ":%.12s-%llu-%ld", container_id, (unsigned long long)ns,
			    pid);
}

char *bv_session_cache_ref(const char *key)
{
	char hash[BV_SHA256_HEX_LEN + 1];
	struct bv_buf b = BV_BUF_INIT;
	size_t n = 0;
	bv_sha256_hex(key, strlen(key), hash);
	bv_buf_puts(&b, CACHE_REPO ":");
	for (const char *p = key; *p && n < 48; p++, n++) {
		char c = name_char(*p) ? *p : '_';
		if (n == 0 && (c == '.' || c == '-'))
			c = '_'; /* a tag starts with [A-Za-z0-9_] */
		bv_buf_putc(&b, c);
	}
	if (n)
		bv_buf_putc(&b, '-');
	bv_buf_printf(&b, "%.16s", hash);
	return bv_buf_detach(&b, NULL);
}

/* ---- Whole lines ---- */

int bv_session_lines_feed(struct bv_session_lines *l, const char *data, size_t len)
{
	const char *nl = NULL;
	size_t whole;
	for (size_t i = len; i > 0; i--) {
		if (data[i - 1] == '\n') {
			nl = data + i - 1;
			break;
		}
	}
	if (!len)
		return 0;
	if (!nl) {
		if (l->len + len > LINE_MAX_PENDING) {
			int r = bv_session_lines_flush(l);
			if (r < 0)
				return r;
			return l->emit(data, len, l->payload);
		}
		BV_GROW(l->pending, l->alloc, l->len + len);
		memcpy(l->pending + l->len, data, len);
		l->len += len;
		return 0;
	}
	whole = (size_t)(nl - data) + 1;
	if (l->len) {
		/* One write for the pending start of a line and the lines completing it. */
		int r;
		BV_GROW(l->pending, l->alloc, l->len + whole);
		memcpy(l->pending + l->len, data, whole);
		r = l->emit(l->pending, l->len + whole, l->payload);
		l->len = 0;
		if (r < 0)
			return r;
	} else {
		int r = l->emit(data, whole, l->payload);
		if (r < 0)
			return r;
	}
	if (whole < len)
		return bv_session_lines_feed(l, data + whole, len - whole);
	return 0;
}

int bv_session_lines_flush(struct bv_session_lines *l)
{
	int r = 0;
	if (l->len)
		r = l->emit(l->pending, l->len, l->payload);
	l->len = 0;
	return r;
}

void bv_session_lines_release(struct bv_session_lines *l)
{
	free(l->pending);
	l->pending = NULL;
	l->len = l->alloc = 0;
}

/* ---- The cached-step store ---- */

static char *key_hash(const char *key)
{
	char hash[BV_SHA256_HEX_LEN + 1];
	bv_sha256_hex(key, strlen(key), hash);
	return bv_xstrdup(hash);
}

static int lock_key_file(struct bv_lock *lk, const char *state_dir, const char *key,
			 const char *suffix, bool exclusive, bool wait, struct bv_error **err)
{
	_cleanup_free_ char *keys = bv_path_join(state_dir, "keys");
	_cleanup_free_ char *hash = key_hash(key);
	_cleanup_free_ char *name = bv_xasprintf("%s%s", hash, suffix);
	_cleanup_free_ char *path = bv_path_join(keys, name);
	if (bv_mkdir_p(keys, 0755, err) < 0)
		return BV_ERR;
	return bv_lock_acquire(lk, path, exclusive ? BV_LOCK_EXCLUSIVE : BV_LOCK_SHARED, wait, err);
}

int bv_session_cache_lock_key(struct bv_lock *lk, const char *state_dir, const char *key,
			      bool exclusive, bool wait, struct bv_error **err)
{
	return lock_key_file(lk, state_dir, key, ".lock", exclusive, wait, err);
}

void bv_session_cache_entries_free(struct bv_session_cache_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].image);
	}
	free(v);
}

struct lru {
	struct bv_session_cache_entry *v;
	size_t n, alloc;
};

static void lru_release(struct lru *l)
{
	bv_session_cache_entries_free(l->v, l->n);
	memset(l, 0, sizeof(*l));
}

static void lru_push(struct lru *l, const char *key, const char *image, int64_t last_used)
{
	BV_GROW(l->v, l->alloc, l->n + 1);
	l->v[l->n].key = bv_xstrdup(key);
	l->v[l->n].image = bv_xstrdup(image);
	l->v[l->n].last_used = last_used;
	l->n++;
}

static void lru_drop(struct lru *l, size_t i)
{
	free(l->v[i].key);
	free(l->v[i].image);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

/* Most recently used first; equal times by key, so the order is total. */
static int lru_cmp(const void *a, const void *b)
{
	const struct bv_session_cache_entry *x = a, *y = b;
	if (x->last_used != y->last_used)
		return x->last_used > y->last_used ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int lru_read(struct lru *l, const char *path, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_error_t jerr;
	json_t *root, *entries;
	size_t i;
	int r = bv_buf_read_file(&text, path, LRU_MAX_BYTES, err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		return 0;
	}
	if (r < 0)
		return r;
	root = json_loadb(text.buf, text.len, 0, &jerr);
	if (!root)
		return bv_error_setc(err, BV_EINVALID, 0, "%s:%d:%d: %s", path, jerr.line,
				     jerr.column, jerr.text);
	entries = json_object_get(root, "entries");
	if (!json_is_array(entries)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0, "%s: no 'entries' array", path);
	}
	for (i = 0; i < json_array_size(entries); i++) {
		json_t *e = json_array_get(entries, i);
		const char *key = json_string_value(json_object_get(e, "key"));
		const char *image = json_string_value(json_object_get(e, "image"));
		json_t *used = json_object_get(e, "last_used");
		if (!key || !image || !json_is_integer(used)) {
			json_decref(root);
			lru_release(l);
			return bv_error_setc(err, BV_EINVALID, 0,
					     "%s: entry %zu needs key, image and last_used", path,
					     i);
		}
		lru_push(l, key, image, (int64_t)json_integer_value(used));
	}
	json_decref(root);
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), lru_cmp);
	return 0;
}

static int lru_write(const struct lru *l, const char *path, struct bv_error **err)
{
	json_t *entries = json_array();
	json_t *root = json_pack("{s:i, s:o}", "version", STATE_VERSION, "entries", entries);
	char *text;
	int r;
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(entries, json_pack("{s:s, s:s, s:I}", "key", l->v[i].key,
							 "image", l->v[i].image, "last_used",
							 (json_int_t)l->v[i].last_used));
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		bv_oom();
	r = bv_write_file_atomic(path, text, strlen(text), 0644, err);
	free(text);
	return r;
}

/* Runs with the store's exclusive lock held; `fn` edits the entries, which are then saved. */
static int lru_locked(const char *state_dir, int (*fn)(struct lru *l, void *p), void *payload,
		      bool save, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(state_dir, LRU_FILE);
	_cleanup_free_ char *lock_path = bv_path_join(state_dir, LRU_LOCK);
	struct bv_lock lk = BV_LOCK_INIT;
	struct lru l = {0};
	int r;
	if (bv_mkdir_p(state_dir, 0755, err) < 0)
		return BV_ERR;
	r = bv_lock_acquire(&lk, lock_path, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	r = lru_read(&l, path, err);
	if (r >= 0)
		r = fn(&l, payload);
	if (r >= 0 && save)
		r = lru_write(&l, path, err);
	lru_release(&l);
	bv_lock_release(&lk);
	return r;
}

struct touch {
	const char *state_dir, *key, *image;
	int64_t now;
	unsigned capacity;
	bv_session_evict_fn evict;
	void *payload;
	struct bv_strv *evicted;
};

static int touch_fn(struct lru *l, void *p)
{
	struct touch *t = p;
	size_t i;
	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].key, t->key))
			break;
	if (i == l->n) {
		lru_push(l, t->key, t->image, t->now);
	} else {
		free(l->v[i].image);
		l->v[i].image = bv_xstrdup(t->image);
		l->v[i].last_used = t->now;
	}
	qsort(l->v, l->n, sizeof(*l->v), lru_cmp);

	/* From the least recently used up, while there are too many. */
	for (i = l->n; i > 0 && l->n > t->capacity; i--) {
		struct bv_session_cache_entry *e = &l->v[i - 1];
		struct bv_lock lk = BV_LOCK_INIT;
		struct bv_error *e_err = NULL;
		int r;
		if (!strcmp(e->key, t->key))
			continue;
		r = bv_session_cache_lock_key(&lk, t->state_dir, e->key, true, false, &e_err);
		if (r < 0) {
			/* In use by a running step (or the lock is unreadable): keep it for now. */
			bv_error_free(e_err);
			continue;
		}
		r = t->evict ? t->evict(e->image, t->payload, &e_err) : 0;
		bv_lock_release(&lk);
		if (r < 0) {
			bv_error_free(e_err);
			continue;
		}
		if (t->evicted)
			bv_strv_push(t->evicted, e->image);
		lru_drop(l, i - 1);
	}
	return 0;
}

int bv_session_cache_touch(const char *state_dir, const char *key, const char *image, int64_t now,
			   unsigned capacity, bv_session_evict_fn evict, void *payload,
			   struct bv_strv *evicted, struct bv_error **err)
{
	struct touch t = {
		.state_dir = state_dir,
		.key = key,
		.image = image,
		.now = now,
		.capacity = capacity ? capacity : 1,
		.evict = evict,
		.payload = payload,
		.evicted = evicted,
	};
	return lru_locked(state_dir, touch_fn, &t, true, err);
}

static int forget_fn(struct lru *l, void *p)
{
	const char *image = p;
	for (size_t i = l->n; i > 0; i--)
		if (!strcmp(l->v[i - 1].image, image))
			lru_drop(l, i - 1);
	return 0;
}

int bv_session_cache_forget(const char *state_dir, const char *image, struct bv_error **err)
{
	/* The const is dropped only to pass it through the callback's payload. */
	return lru_locked(state_dir, forget_fn, (void *)(uintptr_t)image, true, err);
}

struct load {
	struct bv_session_cache_entry *v;
	size_t n;
};

static int load_fn(struct lru *l, void *p)
{
	struct load *ld = p;
	ld->v = TAKE_PTR(l->v);
	ld->n = l->n;
	l->n = l->alloc = 0;
	return 0;
}

int bv_session_cache_load(const char *state_dir, struct bv_session_cache_entry **out, size_t *n_out,
			  struct bv_error **err)
{
	struct load ld = {0};
	int r = lru_locked(state_dir, load_fn, &ld, false, err);
	if (r < 0)
		return r;
	*out = ld.v;
	*n_out = ld.n;
	return 0;
}

int bv_session_cache_capacity(const struct bv_project *project, unsigned *out,
			      struct bv_error **err)
{
	const char *env = getenv("BV_SESSION_CACHE_CAPACITY");
	unsigned v = BV_SESSION_CACHE_CAPACITY_DEFAULT;
	if (env && *env) {
		if (bv_parse_uint(env, &v) < 0 || v == 0)
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"invalid BV_SESSION_CACHE_CAPACITY '%s': expected a whole number >= 1",
				env);
	} else if (project && project->doc) {
		const struct bv_toml_value *t =
			bv_toml_table_get(bv_toml_doc_root(project->doc), "session");
		const struct bv_toml_value *c =
			t && t->type == BV_TOML_TABLE
				? bv_toml_table_get(t->u.table, "cache_capacity")
				: NULL;
		if (c) {
			if (c->type != BV_TOML_INTEGER || c->u.integer < 1 ||
			    c->u.integer > (int64_t)UINT32_MAX)
				return bv_error_setc(
					err, BV_EINVALID, 0,
					"%s:%u:%u: [session] cache_capacity must be a whole number >= 1",
					project->path, c->pos.line, c->pos.column);
			v = (unsigned)c->u.integer;
		}
	}
	*out = v;
	return 0;
}

/* ---- The context ---- */

struct bv_session_ctx {
	struct bv_engine *e;
	bool own_engine;
	char *root;
	char *cache_dir; /* NULL until a cached step needs it */
	char *user;      /* "uid:gid" */
	unsigned capacity;
};

int bv_session_open(struct bv_session_ctx **out, struct bv_engine *engine,
		    const struct bv_session_config *cfg, struct bv_error **err)
{
	struct bv_session_ctx *s;
	if (!cfg->project_root || cfg->project_root[0] != '/') {
		bv_error_setc(err, BV_EINVALID, 0, "sessions need the absolute path of a project");
		return BV_EINVALID;
	}
	s = bv_xcalloc(1, sizeof(*s));
	if (!engine) {
		int r = bv_engine_open(&engine, NULL, err);
		if (r < 0) {
			free(s);
			return r;
		}
		s->own_engine = true;
	}
	s->e = engine;
	s->root = bv_xstrdup(cfg->project_root);
	s->cache_dir = cfg->cache_dir ? bv_xstrdup(cfg->cache_dir) : NULL;
	s->user = bv_xasprintf("%u:%u", (unsigned)getuid(), (unsigned)getgid());
	s->capacity = cfg->cache_capacity;
	*out = s;
	return 0;
}

void bv_session_close(struct bv_session_ctx *s)
{
	if (!s)
		return;
	if (s->own_engine)
		bv_engine_free(s->e);
	free(s->root);
	free(s->cache_dir);
	free(s->user);
	free(s);
}

static char *cname_of(const struct bv_session_ctx *s, const char *name)
{
	return bv_session_container_name(s->root, name);
}

static int state_dir(struct bv_session_ctx *s, char **out, struct bv_error **err)
{
	if (!s->cache_dir && bv_cache_dir(&s->cache_dir, err) < 0)
		return BV_ERR;
	*out = bv_path_join(s->cache_dir, "sessions");
	return 0;
}

static int capacity_of(struct bv_session_ctx *s, unsigned *out, struct bv_error **err)
{
	if (s->capacity) {
		*out = s->capacity;
		return 0;
	}
	return bv_session_cache_capacity(NULL, out, err);
}

static const char *jstr(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static const char *label_of(json_t *labels, const char *key)
{
	return bv_engine_label(labels, key);
}

/* ---- Requests ---- */

/* ---- Images ---- */

/* The engine's image `ref`: 0 with *resp_out, BV_ENOTFOUND (no message), or an error. */
static int inspect_image(struct bv_engine *e, const char *ref, json_t **resp_out,
			 struct bv_error **err)
{
	json_t *img = NULL;
	int r = bv_engine_image_inspect(&img, e, ref, err);
	if (r < 0)
		return r;
	if (!img)
		return BV_ENOTFOUND;
	*resp_out = img;
	return 0;
}

/*
 * Makes the image available to the engine and returns its inspect document.  Pinned images
 * are looked up under their own name and their mirror's, pulled from the mirror, and checked
 * to carry the digest; other references are used as the engine knows them.
 */
static int ensure_image(struct bv_engine *e, const struct bv_session_image *spec, json_t **out,
			struct bv_error **err)
{
	struct bv_imageref ref = {0};
	struct bv_mirrors *mirrors = NULL;
	struct bv_strv names = BV_STRV_INIT;
	_cleanup_free_ char *pull_repo = NULL;
	struct bv_engine_image_want w = {0};
	const char *tag;
	const char *host;
	bool pinned = spec->digest && *spec->digest;
	json_t *img = NULL;
	int r;

	if (!pinned) {
		r = inspect_image(e, spec->reference, out, err);
		if (r != BV_ENOTFOUND)
			return r;
	}
	r = bv_imageref_parse(&ref, spec->reference, err);
	if (r < 0)
		return r;
	r = bv_mirrors_load(&mirrors, err);
	if (r < 0)
		goto out;
	host = bv_mirrors_lookup(mirrors, ref.registry);
	tag = pinned ? spec->digest : ref.digest ? ref.digest : ref.tag ? ref.tag : "latest";
	if (pinned) {
		bv_strv_push_take(&names, bv_imageref_pinned(&ref, spec->digest));
	} else {
		bv_strv_push_take(&names, bv_imageref_format(&ref));
	}
	if (host) {
		bv_strv_pushf(&names, "%s/%s%s%s", host, ref.repository,
			      bv_str_has_prefix(tag, "sha256:") ? "@" : ":", tag);
		pull_repo = bv_xasprintf("%s/%s", host, ref.repository);
	} else {
		pull_repo = bv_xasprintf("%s/%s", ref.registry, ref.repository);
	}
	w.names = (const char *const *)names.v;
	w.repo = pull_repo;
	w.tag = tag;
	w.digest = pinned ? spec->digest : NULL;
	w.subject = spec->tool_id ? spec->tool_id : spec->reference;
	r = bv_engine_image_ensure(&img, NULL, e, &w, err);
	if (r >= 0)
		*out = img;
out:
	bv_strv_clear(&names);
	bv_mirrors_free(mirrors);
	bv_imageref_release(&ref);
	return r;
}

/* ---- Containers ---- */

/* GET /containers/<cname>/json: 0 with *out, or BV_ENOTFOUND without a message. */
static int inspect_container(struct bv_engine *e, const char *cname, json_t **out,
			     struct bv_error **err)
{
	json_t *resp = NULL;
	int r = bv_engine_container_inspect(&resp, e, cname, err);
	if (r < 0)
		return r;
	if (!resp)
		return BV_ENOTFOUND;
	*out = resp;
	return 0;
}

/* The session's container, checked to belong to this project. */
static int find_session(struct bv_session_ctx *s, const char *name, json_t **out,
			struct bv_error **err)
{
	_cleanup_free_ char *cname = NULL;
	json_t *c = NULL, *labels;
	const char *project;
	int r = bv_session_check_name(name, err);
	if (r < 0)
		return r;
	cname = cname_of(s, name);
	r = inspect_container(s->e, cname, &c, err);
	if (r == BV_ENOTFOUND)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "no session '%s' in project '%s'", name,
				     s->root);
	if (r < 0)
		return r;
	labels = json_object_get(json_object_get(c, "Config"), "Labels");
	project = label_of(labels, BV_LABEL_PROJECT);
	if (!project || strcmp(project, s->root)) {
		json_decref(c);
		return bv_error_setc(
			err, BV_ERR, 0,
			"container '%s' exists but is not session '%s' of this project", cname,
			name);
	}
	*out = c;
	return 0;
}

static int remove_container(struct bv_engine *e, const char *ref, struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%s'", ref);
	return bv_engine_container_remove(e, ref, what, err);
}

static int start_container(struct bv_engine *e, const char *id, struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%.12s'", id);
	return bv_engine_container_start(e, id, what, err);
}

struct create_spec {
	const char *session;  /* name */
	const char *image_id; /* what the container runs */
	json_t *labels;       /* borrowed; bv.session and bv.project are added */
	const struct bv_run_mount *mounts;
	size_t n_mounts; /* 0: the project at /workspace */
	bool gpu;
};

/*
 * Creates and starts the container of a session.  BV_EEXISTS when the name is taken.  A
 * container that cannot be started is removed again, so a failed start leaves nothing.
 */
static int create_session(struct bv_session_ctx *s, const struct create_spec *c, char **id_out,
			  struct bv_error **err)
{
	_cleanup_free_ char *cname = cname_of(s, c->session);
	_cleanup_free_ char *what = bv_xasprintf("session '%s'", c->session);
	json_t *labels = json_object(), *mounts = json_array(), *host, *body;
	char *id = NULL;
	int r;

	if (c->labels)
		json_object_update(labels, c->labels);
	json_object_set_new(labels, BV_LABEL_SESSION, json_string(c->session));
	json_object_set_new(labels, BV_LABEL_PROJECT, json_string(s->root));
	if (!c->n_mounts) {
		json_array_append_new(mounts,
				      json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source",
						s->root, "Target", WORKSPACE, "ReadOnly", 0));
	}
	for (size_t i = 0; i < c->n_mounts; i++)
		json_array_append_new(mounts,
				      json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source",
						c->mounts[i].host, "Target", c->mounts[i].target,
						"ReadOnly", c->mounts[i].read_only));
	host = json_pack("{s:o, s:{s:s}}", "Mounts", mounts, "RestartPolicy", "Name",
			 "unless-stopped");
	if (c->gpu)
		json_object_set_new(host, "DeviceRequests",
				    json_pack("[{s:s, s:i, s:[[s]]}]", "Driver", "", "Count", -1,
					      "Capabilities", "gpu"));
	/* Entrypoint and Cmd both given, so neither is taken from the image. */
	body = json_pack("{s:s, s:[s], s:[s], s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:o}", "Image",
			 c->image_id, "Entrypoint", "sleep", "Cmd", "infinity", "User", s->user,
			 "WorkingDir", WORKSPACE, "Labels", labels, "AttachStdin", 0,
			 "AttachStdout", 0, "AttachStderr", 0, "Tty", 0, "HostConfig", host);
	r = bv_engine_container_create(&id, s->e, cname, body, what, err);
	json_decref(body);
	if (r < 0)
		return r;
	r = start_container(s->e, id, err);
	if (r < 0) {
		(void)remove_container(s->e, id, NULL);
		free(id);
		return bv_error_wrap(err, r, "could not start session '%s'", c->session);
	}
	if (id_out)
		*id_out = id;
	else
		free(id);
	return 0;
}

int bv_session_start(struct bv_session_ctx *s, const char *name,
		     const struct bv_session_image *image, struct bv_error **err)
{
	json_t *img = NULL, *labels;
	struct create_spec c = {.session = name};
	int r = bv_session_check_name(name, err);
	if (r < 0)
		return r;
	r = ensure_image(s->e, image, &img, err);
	if (r < 0)
		return r;
	labels = json_object();
	if (image->digest && *image->digest)
		json_object_set_new(labels, BV_LABEL_IMAGE,
				    json_sprintf("%s@%s", image->reference, image->digest));
	else
		json_object_set_new(labels, BV_LABEL_IMAGE, json_string(image->reference));
	if (image->tool_id)
		json_object_set_new(labels, BV_LABEL_TOOL, json_string(image->tool_id));
	c.image_id = jstr(img, "Id");
	c.labels = labels;
	r = create_session(s, &c, NULL, err);
	json_decref(labels);
	json_decref(img);
	return r;
}

int bv_session_remove(struct bv_session_ctx *s, const char *name, struct bv_error **err)
{
	_cleanup_free_ char *cname = NULL;
	int r = bv_session_check_name(name, err);
	if (r < 0)
		return r;
	cname = cname_of(s, name);
	return remove_container(s->e, cname, err);
}

/* ---- Exec ---- */

struct sink {
	int fd;           /* >= 0: write here */
	struct bv_buf *b; /* else: collect here */
	bool broken;      /* the reader went away: drop the rest */
};

static int sink_emit(const char *data, size_t len, void *payload)
{
	struct sink *k = payload;
	if (k->b) {
		bv_buf_add(k->b, data, len);
		return 0;
	}
	if (k->broken || k->fd < 0)
		return 0;
	if (bv_write_all(k->fd, data, len) < 0)
		k->broken = true; /* EPIPE and friends: the command runs on regardless */
	return 0;
}

/*
 * Signals for a running exec.  The engine has no API to signal an exec, but GET /exec/{id}/json
 * names its process by host PID, and it runs as the caller's uid, so bv can kill(2) it
 * directly when the engine is on this machine (over a remote or rootless engine the kill
 * fails and the signal only stops bv).  They arrive through util/signals.h's self-pipe, which
 * the attach loop watches.
 */
struct exec_run {
	struct bv_session_lines lines[2]; /* stdout, stderr */
	struct bv_engine *e;
	const char *exec_id;
	struct bv_signal_pipe sig;
};

static int forward_pending(void *payload, struct bv_error **err)
{
	struct exec_run *x = payload;
	int sigs[16];
	size_t n = bv_signal_pipe_read(&x->sig, sigs, BV_ARRAY_SIZE(sigs));
	(void)err;
	for (size_t i = 0; i < n; i++) {
		json_t *resp = NULL;
		json_int_t pid;
		if (bv_engine_exec_inspect(&resp, x->e, x->exec_id, NULL) < 0)
			continue;
		pid = json_integer_value(json_object_get(resp, "Pid"));
		json_decref(resp);
		if (pid > 1)
			(void)kill((pid_t)pid, sigs[i]);
	}
	return 0;
}

/* stdout and stderr of an exec, each cut into whole lines. */
static int on_output(int stream, const char *data, size_t len, void *payload, struct bv_error **err)
{
	struct exec_run *x = payload;
	(void)err;
	return bv_session_lines_feed(&x->lines[stream == 2 ? 1 : 0], data, len);
}

/* The exit code of a finished exec (the engine may need a moment to record it). */
static int exec_exit_code(struct bv_engine *e, const char *exec_id, int *status_out,
			  struct bv_error **err)
{
	for (int attempt = 0; attempt < EXEC_POLL_ATTEMPTS; attempt++) {
		json_t *resp = NULL, *code;
		int r = bv_engine_exec_inspect(&resp, e, exec_id, err);
		if (r < 0)
			return r;
		code = json_object_get(resp, "ExitCode");
		if (!json_is_true(json_object_get(resp, "Running")) && json_is_integer(code)) {
			*status_out = (int)json_integer_value(code);
			json_decref(resp);
			return 0;
		}
		json_decref(resp);
		{
			struct timespec ts = {0, (attempt < 10 ? 2 : 20) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	return bv_error_setc(err, BV_ERR, 0, "exec '%.12s' has no exit code", exec_id);
}

struct exec_req {
	const char *const *argv;
	const char *const *env;
	const char *workdir;
	const char *user; /* NULL: the container's */
	int stdin_fd;
	struct sink out, err;
	bool forward_signals;
};

static json_t *strv_json(const char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

/*
 * Runs one command in container `id` (starting the container first when it stopped) and
 * returns its exit status.  `what` names the session in messages.
 */
static int exec_in(struct bv_engine *e, const char *id, const char *what, struct exec_req *x,
		   int *status_out, struct bv_error **err)
{
	char *exec_id = NULL;
	json_t *body;
	struct exec_run run = {.e = e, .sig = BV_SIGNAL_PIPE_INIT};
	struct bv_engine_attach_options o = {0};
	int r;

	body = json_pack("{s:b, s:b, s:b, s:b, s:o, s:s}", "AttachStdin", x->stdin_fd >= 0,
			 "AttachStdout", 1, "AttachStderr", 1, "Tty", 0, "Cmd", strv_json(x->argv),
			 "WorkingDir", x->workdir ? x->workdir : WORKSPACE);
	if (x->env && *x->env)
		json_object_set_new(body, "Env", strv_json(x->env));
	if (x->user)
		json_object_set_new(body, "User", json_string(x->user));
	/* A container that stopped is started once (see engine-internal.h). */
	r = bv_engine_exec_create(&exec_id, e, id, body, what, err);
	json_decref(body);
	if (r < 0)
		return r;

	run.exec_id = exec_id;
	run.lines[0].emit = sink_emit;
	run.lines[0].payload = &x->out;
	run.lines[1].emit = sink_emit;
	run.lines[1].payload = &x->err;
	o.stdin_fd = x->stdin_fd;
	o.stdout_fd = -1;
	o.stderr_fd = -1;
	o.on_output = on_output;
	o.watch_fd = -1;
	o.payload = &run;
	if (x->forward_signals && bv_signal_pipe_install(&run.sig, false, NULL) == 0) {
		o.watch_fd = run.sig.fd[0];
		o.on_watch = forward_pending;
	}
	r = bv_engine_exec_start(e, exec_id, &o, err);
	bv_signal_pipe_restore(&run.sig);
	(void)bv_session_lines_flush(&run.lines[0]);
	(void)bv_session_lines_flush(&run.lines[1]);
	bv_session_lines_release(&run.lines[0]);
	bv_session_lines_release(&run.lines[1]);
	if (r >= 0)
		r = exec_exit_code(e, exec_id, status_out, err);
	free(exec_id);
	if (r < 0)
		return bv_error_wrap(err, r, "could not run a command in %s", what);
	return 0;
}

/* ---- Snapshots ---- */

static int commit(struct bv_engine *e, const char *id, const char *repo, const char *tag,
		  json_t *labels, struct bv_error **err)
{
	return bv_engine_image_commit(e, id, repo, tag, labels, err);
}

static json_t *snapshot_labels(struct bv_session_ctx *s, const char *session, const char *key,
			       bool cached)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", BV_LABEL_SNAPSHOT, "1", BV_LABEL_SESSION,
			 session, BV_LABEL_PROJECT, s->root, BV_LABEL_KEY, key ? key : "",
			 BV_LABEL_CACHE, cached ? "1" : "");
}

/* Splits "repo[:tag]" (a tag only after the last '/'), checking it is an image name. */
static int split_key(const char *key, char **repo_out, char **tag_out, struct bv_error **err)
{
	struct bv_imageref ref = {0};
	const char *slash = strrchr(key, '/');
	const char *colon = strrchr(slash ? slash : key, ':');
	int r = bv_imageref_parse(&ref, key, err);
	if (r < 0)
		return bv_error_wrap(err, r, "invalid snapshot key '%s'", key);
	bv_imageref_release(&ref);
	if (strchr(key, '@'))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid snapshot key '%s': a key cannot name a digest", key);
	if (colon) {
		*repo_out = bv_xstrndup(key, (size_t)(colon - key));
		*tag_out = bv_xstrdup(colon + 1);
	} else {
		*repo_out = bv_xstrdup(key);
		*tag_out = bv_xstrdup("latest");
	}
	return 0;
}

int bv_session_snapshot(struct bv_session_ctx *s, const char *name, const char *key,
			char **image_out, struct bv_error **err)
{
	_cleanup_free_ char *repo = NULL, *tag = NULL;
	json_t *c = NULL, *labels;
	const char *id;
	int r;
	if (key) {
		r = split_key(key, &repo, &tag, err);
		if (r < 0)
			return r;
	}
	r = find_session(s, name, &c, err);
	if (r < 0)
		return r;
	id = jstr(c, "Id");
	if (!key) {
		struct timespec ts;
		char *ref;
		clock_gettime(CLOCK_REALTIME, &ts);
		ref = bv_session_snapshot_ref(
			id, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
			(long)getpid());
		repo = bv_xstrdup(SNAPSHOT_REPO);
		tag = bv_xstrdup(strchr(ref, ':') + 1);
		free(ref);
	}
	labels = snapshot_labels(s, name, key, false);
	r = commit(s->e, id, repo, tag, labels, err);
	json_decref(labels);
	json_decref(c);
	if (r < 0)
		return bv_error_wrap(err, r, "could not snapshot session '%s'", name);
	*image_out = bv_xasprintf("%s:%s", repo, tag);
	return 0;
}

/* The labels a session's container carries over when it is recreated from an image. */
static json_t *carried_labels(json_t *container_or_image_config)
{
	json_t *labels = json_object_get(container_or_image_config, "Labels");
	json_t *out = json_object();
	static const char *const keep[] = {BV_LABEL_TOOL, BV_LABEL_IMAGE, NULL};
	for (size_t i = 0; keep[i]; i++) {
		const char *v = label_of(labels, keep[i]);
		if (v)
			json_object_set_new(out, keep[i], json_string(v));
	}
	return out;
}

int bv_session_restore(struct bv_session_ctx *s, const char *snapshot, const char *name,
		       char **name_out, struct bv_error **err)
{
	json_t *img = NULL, *labels;
	struct create_spec c = {0};
	const char *session;
	int r = inspect_image(s->e, snapshot, &img, err);
	if (r == BV_ENOTFOUND)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "no snapshot '%s'", snapshot);
	if (r < 0)
		return r;
	session = name ? name
		       : label_of(json_object_get(json_object_get(img, "Config"), "Labels"),
				  BV_LABEL_SESSION);
	if (!session || !*session) {
		json_decref(img);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "snapshot '%s' names no session; give one with --name",
				     snapshot);
	}
	r = bv_session_check_name(session, err);
	if (r < 0) {
		json_decref(img);
		return r;
	}
	labels = carried_labels(json_object_get(img, "Config"));
	json_object_set_new(labels, BV_LABEL_RESTORED_FROM, json_string(snapshot));
	c.session = session;
	c.image_id = jstr(img, "Id");
	c.labels = labels;
	r = create_session(s, &c, NULL, err);
	json_decref(labels);
	if (r >= 0)
		*name_out = bv_xstrdup(session);
	json_decref(img);
	return r;
}

static int remove_image(struct bv_engine *e, const char *ref, struct bv_error **err)
{
	return bv_engine_image_remove(e, ref, true, err);
}

static int evict_image(const char *image, void *payload, struct bv_error **err)
{
	return remove_image(payload, image, err);
}

int bv_session_snapshot_remove(struct bv_session_ctx *s, const char *snapshot,
			       struct bv_error **err)
{
	_cleanup_free_ char *dir = NULL;
	json_t *img = NULL;
	_cleanup_free_ char *cache_ref = NULL;
	json_t *labels;
	const char *cached, *key;
	int r = inspect_image(s->e, snapshot, &img, err);
	if (r == BV_ENOTFOUND)
		return 0;
	if (r < 0)
		return r;
	labels = json_object_get(json_object_get(img, "Config"), "Labels");
	cached = label_of(labels, BV_LABEL_CACHE);
	key = label_of(labels, BV_LABEL_KEY);
	if (cached && !strcmp(cached, "1") && key && *key)
		cache_ref = bv_session_cache_ref(key);
	json_decref(img);
	r = remove_image(s->e, snapshot, err);
	if (r < 0 || !cache_ref)
		return r;
	r = state_dir(s, &dir, err);
	if (r < 0)
		return r;
	return bv_session_cache_forget(dir, cache_ref, err);
}

/* ---- Cached steps and exec ---- */

/* Replaces session `name` (container `old`) by a new container from `image_id`. */
static int recreate_from(struct bv_session_ctx *s, const char *name, json_t *old,
			 const char *image_id, const char *from, struct bv_error **err)
{
	json_t *labels = carried_labels(json_object_get(old, "Config"));
	struct create_spec c = {.session = name, .image_id = image_id, .labels = labels};
	int r;
	json_object_set_new(labels, BV_LABEL_RESTORED_FROM, json_string(from));
	r = remove_container(s->e, jstr(old, "Id"), err);
	if (r >= 0)
		r = create_session(s, &c, NULL, err);
	json_decref(labels);
	return r;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cached_step(struct bv_session_ctx *s, const char *name, json_t *c, struct exec_req *x,
		       const char *key, struct bv_session_exec_result *out, struct bv_error **err)
{
	_cleanup_free_ char *dir = NULL, *ref = bv_session_cache_ref(key), *what = NULL;
	struct bv_lock lk = BV_LOCK_INIT, wlk = BV_LOCK_INIT;
	json_t *img = NULL;
	unsigned capacity;
	bool hit = false;
	int status = 0;
	int r;

	if ((r = capacity_of(s, &capacity, err)) < 0 || (r = state_dir(s, &dir, err)) < 0)
		return r;
	r = bv_session_cache_lock_key(&lk, dir, key, false, true, err);
	if (r < 0)
		return r;
	r = inspect_image(s->e, ref, &img, err);
	if (r == 0) {
		const char *k = label_of(json_object_get(json_object_get(img, "Config"), "Labels"),
					 BV_LABEL_KEY);
		hit = k && !strcmp(k, key);
	} else if (r == BV_ENOTFOUND) {
		r = 0;
	}
	if (r < 0)
		goto out;
	if (hit) {
		r = recreate_from(s, name, c, jstr(img, "Id"), ref, err);
		if (r < 0)
			goto out;
	} else {
		what = bv_xasprintf("session '%s'", name);
		r = exec_in(s->e, jstr(c, "Id"), what, x, &status, err);
		if (r < 0 || status != 0)
			goto out;
		r = lock_key_file(&wlk, dir, key, ".write.lock", true, true, err);
		if (r >= 0) {
			json_t *labels = snapshot_labels(s, name, key, true);
			const char *colon = strchr(ref, ':');
			_cleanup_free_ char *repo = bv_xstrndup(ref, (size_t)(colon - ref));
			r = commit(s->e, jstr(c, "Id"), repo, colon + 1, labels, err);
			json_decref(labels);
			bv_lock_release(&wlk);
		}
		if (r < 0)
			goto out;
	}
	r = bv_session_cache_touch(dir, key, ref, now_ns(), capacity, evict_image, s->e, NULL, err);
out:
	bv_lock_release(&lk);
	json_decref(img);
	if (r < 0)
		return bv_error_wrap(err, r, "cached step '%s' in session '%s' failed", key, name);
	out->status = hit ? 0 : status;
	out->cached = hit;
	return 0;
}

int bv_session_exec(struct bv_session_ctx *s, const char *name, const struct bv_session_exec *x,
		    struct bv_session_exec_result *out, struct bv_error **err)
{
	struct exec_req req = {
		.argv = x->argv,
		.env = x->env,
		.workdir = x->workdir,
		.stdin_fd = x->stdin_fd,
		.out = {.fd = x->stdout_fd},
		.err = {.fd = x->stderr_fd},
		.forward_signals = x->forward_signals,
	};
	struct bv_session_exec_result res = {0};
	_cleanup_free_ char *what = NULL;
	json_t *c = NULL;
	int r;
	if (!x->argv || !x->argv[0])
		return bv_error_setc(err, BV_EINVALID, 0, "no command to run in session '%s'",
				     name);
	if (x->cache_key && !*x->cache_key)
		return bv_error_setc(err, BV_EINVALID, 0, "a cache key cannot be empty");
	r = find_session(s, name, &c, err);
	if (r < 0)
		return r;
	if (x->cache_key) {
		r = cached_step(s, name, c, &req, x->cache_key, &res, err);
	} else {
		what = bv_xasprintf("session '%s'", name);
		r = exec_in(s->e, jstr(c, "Id"), what, &req, &res.status, err);
	}
	json_decref(c);
	if (r < 0)
		return r;
	*out = res;
	return 0;
}

/* ---- cp ---- */

struct tar_ctx {
	struct archive *a;
	const char *top; /* for messages */
	struct bv_error **err;
};

static int tar_fail(struct tar_ctx *t, const char *rel)
{
	const char *why = archive_error_string(t->a);
	return bv_error_setc(t->err, BV_ERR, 0, "could not add '%s/%s' to the archive: %s", t->top,
			     rel, why ? why : "unknown error");
}

static int tar_file(struct tar_ctx *t, int dirfd, const char *name, const char *rel,
		    const struct stat *st)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	char buf[65536];
	off_t left = st->st_size;
	if (fd < 0)
		return bv_error_set_errno(t->err, "could not open '%s/%s'", t->top, rel);
	while (left > 0) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bv_error_set_errno(t->err, "could not read '%s/%s'", t->top, rel);
		if (n == 0)
			return bv_error_setc(t->err, BV_ERR, 0,
					     "'%s/%s' shrank while it was being copied", t->top,
					     rel);
		if (n > left)
			n = (ssize_t)left; /* it grew: copy what the header promised */
		if (archive_write_data(t->a, buf, (size_t)n) < 0)
			return tar_fail(t, rel);
		left -= n;
	}
	return 0;
}

static int tar_dir(struct tar_ctx *t, int dirfd, const char *prefix);

static int tar_entry(struct tar_ctx *t, int dirfd, const char *name, const char *prefix)
{
	_cleanup_free_ char *rel = prefix ? bv_xasprintf("%s/%s", prefix, name) : bv_xstrdup(name);
	struct archive_entry *en;
	struct stat st;
	char target[4096];
	ssize_t tlen = 0;
	int r = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return bv_error_set_errno(t->err, "could not stat '%s/%s'", t->top, rel);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0; /* devices, fifos and sockets have no place in a copy */
	if (S_ISLNK(st.st_mode)) {
		tlen = readlinkat(dirfd, name, target, sizeof(target) - 1);
		if (tlen < 0)
			return bv_error_set_errno(t->err, "could not read link '%s/%s'", t->top,
						  rel);
		target[tlen] = '\0';
	}
	en = archive_entry_new();
	if (!en)
		bv_oom();
	archive_entry_copy_stat(en, &st);
	archive_entry_copy_pathname(en, rel);
	if (!S_ISREG(st.st_mode))
		archive_entry_set_size(en, 0);
	if (S_ISLNK(st.st_mode))
		archive_entry_copy_symlink(en, target);
	if (archive_write_header(t->a, en) < 0)
		r = tar_fail(t, rel);
	archive_entry_free(en);
	if (r < 0)
		return r;
	if (S_ISREG(st.st_mode))
		return tar_file(t, dirfd, name, rel, &st);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int sub =
			openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return bv_error_set_errno(t->err, "could not open '%s/%s'", t->top, rel);
		return tar_dir(t, sub, rel);
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the entries of the directory at `dirfd` (borrowed), sorted, so archives are stable. */
static int tar_dir(struct tar_ctx *t, int dirfd, const char *prefix)
{
	struct bv_strv names = BV_STRV_INIT;
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d;
	struct dirent *de;
	int r = 0;
	if (dup_fd < 0)
		return bv_error_set_errno(t->err, "could not read '%s'", t->top);
	d = fdopendir(dup_fd);
	if (!d) {
		r = bv_error_set_errno(t->err, "could not read '%s'", t->top);
		close(dup_fd);
		return r;
	}
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			bv_strv_push(&names, de->d_name);
	if (errno)
		r = bv_error_set_errno(t->err, "could not read '%s'", t->top);
	closedir(d);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), name_cmp);
	for (size_t i = 0; r >= 0 && i < names.n; i++)
		r = tar_entry(t, dirfd, names.v[i], prefix);
	bv_strv_clear(&names);
	return r;
}

/* The contents of `dir` as a tar in an unlinked temporary file, positioned at its start. */
static int tar_directory(const char *dir, int *fd_out, struct bv_error **err)
{
	const char *tmp = getenv("TMPDIR");
	_cleanup_free_ char *path = bv_xasprintf("%s/bv-cp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	_cleanup_close_ int fd = -1, top = -1;
	struct tar_ctx t = {.top = dir, .err = err};
	int r;
	if (!bv_archive_get(err))
		return BV_ERR;
	top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		return bv_error_set_errno(err, "could not open directory '%s'", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not create a temporary file in '%s'",
					  tmp && *tmp ? tmp : "/tmp");
	(void)unlink(path);
	t.a = archive_write_new();
	if (!t.a)
		bv_oom();
	if (archive_write_set_format_pax_restricted(t.a) < 0 ||
	    archive_write_open_fd(t.a, fd) < 0) {
		r = tar_fail(&t, ".");
		archive_write_free(t.a);
		return r;
	}
	r = tar_dir(&t, top, NULL);
	if (r >= 0 && archive_write_close(t.a) < 0)
		r = tar_fail(&t, ".");
	archive_write_free(t.a);
	if (r < 0)
		return r;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return bv_error_set_errno(err, "could not rewind the archive of '%s'", dir);
	*fd_out = TAKE_FD(fd);
	return 0;
}

int bv_session_copy_in(struct bv_session_ctx *s, const char *name, const char *host_dir,
		       const char *target, struct bv_error **err)
{
	static const char script[] =
		"[ -d \"$1\" ] || { mkdir -p -- \"$1\" && chown -- \"$2\" \"$1\"; }";
	const char *argv[] = {"/bin/sh", "-c", script, "sh", target, NULL, NULL};
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT, errs = BV_BUF_INIT;
	_cleanup_free_ char *what = NULL, *copy = NULL;
	_cleanup_close_ int fd = -1;
	struct exec_req x = {.argv = argv, .workdir = "/", .user = "0:0", .stdin_fd = -1};
	json_t *c = NULL;
	int code = 0;
	int r;
	if (!target || target[0] != '/')
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid target '%s': give an absolute path in the session",
				     target ? target : "");
	r = find_session(s, name, &c, err);
	if (r < 0)
		return r;
	argv[5] = s->user;
	x.out.b = &out;
	x.err.b = &errs;
	what = bv_xasprintf("session '%s'", name);
	r = tar_directory(host_dir, &fd, err);
	if (r >= 0)
		r = exec_in(s->e, jstr(c, "Id"), what, &x, &code, err);
	if (r >= 0 && code != 0) {
		while (errs.len && errs.buf[errs.len - 1] == '\n')
			bv_buf_setlen(&errs, errs.len - 1);
		r = bv_error_setc(err, BV_ERR, 0, "could not create '%s' in session '%s': %s",
				  target, name, errs.len ? errs.buf : "mkdir failed");
	}
	if (r >= 0) {
		copy = bv_xasprintf("'%s' to '%s:%s'", host_dir, name, target);
		r = bv_engine_container_put_archive(s->e, jstr(c, "Id"), target, fd, copy, err);
	}
	json_decref(c);
	return r;
}

/* ---- Listing ---- */

void bv_session_infos_free(struct bv_session_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].container);
		free(v[i].id);
		free(v[i].image);
		free(v[i].tool);
		free(v[i].state);
	}
	free(v);
}

static int info_cmp(const void *a, const void *b)
{
	const struct bv_session_info *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static char *dup_or_null(const char *s)
{
	return s ? bv_xstrdup(s) : NULL;
}

int bv_session_list(struct bv_session_ctx *s, struct bv_session_info **out, size_t *n_out,
		    struct bv_error **err)
{
	_cleanup_free_ char *project_label = bv_xasprintf(BV_LABEL_PROJECT "=%s", s->root);
	const char *labels_filter[] = {BV_LABEL_SESSION, project_label, NULL};
	struct bv_session_info *v = NULL;
	size_t n = 0, alloc = 0, i;
	json_t *resp = NULL;
	int r = bv_engine_container_list(&resp, s->e, labels_filter, "the sessions", err);
	if (r < 0)
		return r;
	for (i = 0; i < json_array_size(resp); i++) {
		json_t *c = json_array_get(resp, i), *labels = json_object_get(c, "Labels");
		const char *name = label_of(labels, BV_LABEL_SESSION);
		const char *project = label_of(labels, BV_LABEL_PROJECT);
		json_t *names = json_object_get(c, "Names");
		const char *cname = json_string_value(json_array_get(names, 0));
		if (!name || !project || strcmp(project, s->root))
			continue;
		BV_GROW(v, alloc, n + 1);
		memset(&v[n], 0, sizeof(v[n]));
		v[n].name = bv_xstrdup(name);
		v[n].container = bv_xstrdup(cname ? cname + (cname[0] == '/') : "");
		v[n].id = bv_xstrdup(jstr(c, "Id") ? jstr(c, "Id") : "");
		v[n].image = bv_xstrdup(label_of(labels, BV_LABEL_IMAGE)
						? label_of(labels, BV_LABEL_IMAGE)
					: jstr(c, "Image") ? jstr(c, "Image")
							   : "");
		v[n].tool = dup_or_null(label_of(labels, BV_LABEL_TOOL));
		v[n].state = bv_xstrdup(jstr(c, "State") ? jstr(c, "State") : "unknown");
		v[n].created = json_integer_value(json_object_get(c, "Created"));
		n++;
	}
	json_decref(resp);
	if (n > 1)
		qsort(v, n, sizeof(*v), info_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

void bv_snapshot_infos_free(struct bv_snapshot_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].image);
		free(v[i].id);
		free(v[i].session);
		free(v[i].project);
		free(v[i].key);
	}
	free(v);
}

static int snap_cmp(const void *a, const void *b)
{
	const struct bv_snapshot_info *x = a, *y = b;
	return strcmp(x->image, y->image);
}

/* "docker.io/library/bv-snapshot:x" and Podman's "localhost/bv-snapshot:x" as one writes them. */
static const char *short_name(const char *tag)
{
	if (bv_str_has_prefix(tag, "docker.io/library/"))
		return tag + strlen("docker.io/library/");
	if (bv_str_has_prefix(tag, "localhost/"))
		return tag + strlen("localhost/");
	return tag;
}

int bv_session_snapshots(struct bv_session_ctx *s, struct bv_snapshot_info **out, size_t *n_out,
			 struct bv_error **err)
{
	static const char *const labels_filter[] = {BV_LABEL_SNAPSHOT "=1", NULL};
	struct bv_snapshot_info *v = NULL;
	size_t n = 0, alloc = 0;
	json_t *resp = NULL;
	int r = bv_engine_image_list(&resp, s->e, labels_filter, "the snapshots", err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < json_array_size(resp); i++) {
		json_t *img = json_array_get(resp, i), *labels = json_object_get(img, "Labels");
		json_t *tags = json_object_get(img, "RepoTags");
		const char *key = label_of(labels, BV_LABEL_KEY);
		const char *cached = label_of(labels, BV_LABEL_CACHE);
		size_t n_tags = json_array_size(tags);
		if (!label_of(labels, BV_LABEL_SNAPSHOT))
			continue;
		/* One row per tag: a snapshot re-tagged by hand shows under each name. */
		for (size_t t = 0; t < (n_tags ? n_tags : 1); t++) {
			const char *tag = json_string_value(json_array_get(tags, t));
			if (tag && !strcmp(tag, "<none>:<none>"))
				tag = NULL;
			BV_GROW(v, alloc, n + 1);
			memset(&v[n], 0, sizeof(v[n]));
			v[n].id = bv_xstrdup(jstr(img, "Id") ? jstr(img, "Id") : "");
			v[n].image = bv_xstrdup(tag ? short_name(tag) : v[n].id);
			v[n].session = dup_or_null(label_of(labels, BV_LABEL_SESSION));
			v[n].project = dup_or_null(label_of(labels, BV_LABEL_PROJECT));
			v[n].key = key && *key ? bv_xstrdup(key) : NULL;
			v[n].cached = cached && !strcmp(cached, "1");
			v[n].created = json_integer_value(json_object_get(img, "Created"));
			v[n].size = json_integer_value(json_object_get(img, "Size"));
			n++;
		}
	}
	json_decref(resp);
	if (n > 1)
		qsort(v, n, sizeof(*v), snap_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

/* ---- Warm runs ---- */

static const char *warm_root(const struct bv_run_request *req)
{
	if (req->project_root)
		return req->project_root;
	for (size_t i = 0; i < req->n_mounts; i++)
		if (req->mounts[i].kind == BV_MOUNT_WORKSPACE)
			return req->mounts[i].host;
	return NULL;
}

/* What the warm container was made with; a different request needs a new one. */
static char *warm_config(const struct bv_run_request *req, const char *image_id, const char *user)
{
	struct bv_buf b = BV_BUF_INIT;
	char hash[BV_SHA256_HEX_LEN + 1];
	bv_buf_printf(&b, "image %s\nuser %s\ngpu %d\n", image_id, user, req->gpu ? 1 : 0);
	for (size_t i = 0; i < req->n_mounts; i++)
		bv_buf_printf(&b, "mount %s%c%s%c%d\n", req->mounts[i].host, 0,
			      req->mounts[i].target, 0, req->mounts[i].read_only ? 1 : 0);
	bv_sha256_hex(b.buf, b.len, hash);
	bv_buf_release(&b);
	return bv_xstrdup(hash);
}

static bool stdin_is_data(void)
{
	struct stat st;
	if (fstat(0, &st) < 0)
		return false;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode);
}

static void set_json_label(json_t *labels, const char *key, json_t *array);

/* The warm session's container: found when it fits the request, else (re)created. */
static int warm_container(struct bv_session_ctx *s, const struct bv_run_request *req,
			  const char *session, const char *warm_key, json_t **out,
			  struct bv_error **err)
{
	_cleanup_free_ char *cname = cname_of(s, session);
	_cleanup_free_ char *config = NULL;
	json_t *c = NULL, *img = NULL;
	int r;
	/* Inspect, (re)create, inspect again: twice more if other bv processes interfere. */
	for (int attempt = 0; attempt < 4; attempt++) {
		json_t *labels, *iconf;
		struct create_spec spec = {0};
		r = inspect_container(s->e, cname, &c, err);
		if (r < 0 && r != BV_ENOTFOUND)
			break;
		if (r == 0) {
			const char *have;
			labels = json_object_get(json_object_get(c, "Config"), "Labels");
			have = label_of(labels, BV_LABEL_WARM_CONFIG);
			if (!config) {
				/* The image id is part of the configuration. */
				const char *image_id = jstr(c, "Image");
				config = warm_config(req, image_id ? image_id : "", s->user);
			}
			if (have && !strcmp(have, config) &&
			    !strcmp(label_of(labels, BV_LABEL_WARM)
					    ? label_of(labels, BV_LABEL_WARM)
					    : "",
				    warm_key)) {
				*out = c;
				json_decref(img);
				return 0;
			}
			r = remove_container(s->e, jstr(c, "Id"), err);
			json_decref(c);
			c = NULL;
			free(config);
			config = NULL;
			if (r < 0)
				break;
		}
		r = 0;
		if (attempt == 3)
			break;
		if (!img) {
			const struct bv_session_image image = {.tool_id = req->image.tool_id,
							       .reference = req->image.reference,
							       .digest = req->image.digest};
			r = ensure_image(s->e, &image, &img, err);
			if (r < 0)
				break;
		}
		free(config);
		config = warm_config(req, jstr(img, "Id"), s->user);
		iconf = json_object_get(img, "Config");
		labels = json_pack("{s:s, s:s, s:s}", BV_LABEL_WARM, warm_key, BV_LABEL_WARM_CONFIG,
				   config, BV_LABEL_IMAGE, req->image.reference);
		if (req->image.tool_id)
			json_object_set_new(labels, BV_LABEL_TOOL, json_string(req->image.tool_id));
		set_json_label(labels, BV_LABEL_ENTRYPOINT, json_object_get(iconf, "Entrypoint"));
		set_json_label(labels, BV_LABEL_CMD, json_object_get(iconf, "Cmd"));
		spec.session = session;
		spec.image_id = jstr(img, "Id");
		spec.labels = labels;
		spec.mounts = req->mounts;
		spec.n_mounts = req->n_mounts;
		spec.gpu = req->gpu;
		r = create_session(s, &spec, NULL, err);
		json_decref(labels);
		if (r == BV_EEXISTS) {
			/* Another bv made it first: use theirs. */
			bv_error_free(err ? *err : NULL);
			if (err)
				*err = NULL;
			continue;
		}
		if (r < 0)
			break;
	}
	json_decref(img);
	if (r >= 0)
		r = bv_error_setc(err, BV_ERR, 0, "the warm session '%s' keeps changing", session);
	return r;
}

static void set_json_label(json_t *labels, const char *key, json_t *array)
{
	json_t *empty = json_array();
	char *text = json_dumps(json_is_array(array) ? array : empty, JSON_COMPACT);
	json_decref(empty);
	if (!text)
		bv_oom();
	json_object_set_new(labels, key, json_string(text));
	free(text);
}

static void push_json_strings(struct bv_strv *v, const char *text)
{
	json_t *a = text ? json_loads(text, 0, NULL) : NULL;
	for (size_t i = 0; i < json_array_size(a); i++)
		if (json_string_value(json_array_get(a, i)))
			bv_strv_push(v, json_string_value(json_array_get(a, i)));
	json_decref(a);
}

int bv_session_run_warm(struct bv_engine *e, const struct bv_run_request *req,
			struct bv_run_result *out, struct bv_error **err)
{
	struct bv_session_config cfg = {0};
	struct bv_session_ctx *s = NULL;
	struct bv_strv argv = BV_STRV_INIT;
	struct bv_buf cap_out = BV_BUF_INIT, cap_err = BV_BUF_INIT;
	char hash[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *session = NULL, *what = NULL, *warm_key = NULL;
	struct exec_req x = {0};
	json_t *c = NULL, *labels;
	int status = 0, r;

	cfg.project_root = warm_root(req);
	if (!cfg.project_root)
		return bv_error_setc(err, BV_EINVALID, 0, "a warm run needs a project");
	if (!req->image.reference)
		return bv_error_setc(err, BV_EINVALID, 0, "a warm run needs an image");
	if (req->image.digest && bv_str_has_prefix(req->image.digest, "sha256:")) {
		warm_key = bv_xstrdup(req->image.digest);
		session = bv_xasprintf("warm-%.12s", req->image.digest + strlen("sha256:"));
	} else {
		bv_sha256_hex(req->image.reference, strlen(req->image.reference), hash);
		warm_key = bv_xstrdup(req->image.reference);
		session = bv_xasprintf("warm-%.12s", hash);
	}
	r = bv_session_open(&s, e, &cfg, err);
	if (r < 0)
		return r;
	r = warm_container(s, req, session, warm_key, &c, err);
	if (r < 0)
		goto out;
	labels = json_object_get(json_object_get(c, "Config"), "Labels");
	push_json_strings(&argv, label_of(labels, BV_LABEL_ENTRYPOINT));
	if (req->argv && req->argv[0])
		bv_strv_pushv(&argv, req->argv);
	else
		push_json_strings(&argv, label_of(labels, BV_LABEL_CMD));
	if (!argv.n) {
		r = bv_error_setc(err, BV_EINVALID, 0, "image '%s' has no command to run",
				  req->image.reference);
		goto out;
	}
	x.argv = (const char *const *)argv.v;
	x.env = req->env;
	x.workdir = req->workdir ? req->workdir : WORKSPACE;
	if (req->stdio == BV_STDIO_CAPTURE) {
		x.stdin_fd = -1;
		x.out.b = &cap_out;
		x.err.b = &cap_err;
	} else {
		x.stdin_fd = stdin_is_data() ? 0 : -1;
		x.out.fd = 1;
		x.err.fd = 2;
		x.forward_signals = true;
	}
	what = bv_xasprintf("the warm session of '%s'",
			    req->image.tool_id ? req->image.tool_id : req->image.reference);
	r = exec_in(s->e, jstr(c, "Id"), what, &x, &status, err);
	if (r < 0)
		goto out;
	memset(out, 0, sizeof(*out));
	out->status = status;
	if (req->stdio == BV_STDIO_CAPTURE) {
		out->out = bv_buf_detach(&cap_out, &out->out_len);
		out->err = bv_buf_detach(&cap_err, &out->err_len);
	}
out:
	json_decref(c);
	bv_strv_clear(&argv);
	bv_buf_release(&cap_out);
	bv_buf_release(&cap_err);
	bv_session_close(s);
	return r;
}
