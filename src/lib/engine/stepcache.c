/*
 * stepcache.c - cached steps: the LRU store of their images under <cache>/sessions and the
 * step itself, which restores the key's image or runs the command and commits it (see
 * bv/session.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/session.h>
#include <bv/toml.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/engine/session-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define LRU_FILE      "cache-lru.json"
#define LRU_LOCK      "cache-lru.lock"
#define LRU_MAX_BYTES (4 * 1024 * 1024)
#define STATE_VERSION 1

/* ---- The cached-step store ---- */

static char *key_hash(const char *key)
{
	char hash[BV_SHA256_HEX_LEN + 1];
	bv_sha256_hex(hash, key, strlen(key));
	return bv_xstrdup(hash);
}

/* keys/<sha256(key)><suffix> in the store, its directory made.  New string in *out. */
static int key_file(char **out, const char *state_dir, const char *key, const char *suffix,
		    struct bv_error **err)
{
	_cleanup_free_ char *keys = bv_path_join(state_dir, "keys");
	_cleanup_free_ char *hash = key_hash(key);
	_cleanup_free_ char *name = bv_xasprintf("%s%s", hash, suffix);
	if (bv_mkdir_p(keys, 0755, err) < 0)
		return BV_ERR;
	*out = bv_path_join(keys, name);
	return 0;
}

int bv_session_cache_lock_key(struct bv_lock *lk, const char *state_dir, const char *key,
			      bool exclusive, bool wait, struct bv_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (key_file(&path, state_dir, key, ".lock", err) < 0)
		return BV_ERR;
	return bv_lock_acquire(lk, path, exclusive ? BV_LOCK_EXCLUSIVE : BV_LOCK_SHARED, wait, err);
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

int bv_session_cache_load(struct bv_session_cache_entry **out, size_t *n_out, const char *state_dir,
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

int bv_session_cache_capacity(unsigned *out, const struct bv_project *project,
			      struct bv_error **err)
{
	const char *env = getenv("BV_SESSION_CACHE_CAPACITY");
	unsigned v = BV_SESSION_CACHE_CAPACITY_DEFAULT;
	if (env && *env) {
		if (bv_parse_uint(&v, env) < 0 || v == 0)
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

static int capacity_of(struct bv_session_ctx *s, unsigned *out, struct bv_error **err)
{
	if (s->capacity) {
		*out = s->capacity;
		return 0;
	}
	return bv_session_cache_capacity(out, NULL, err);
}

/* ---- Cached steps and exec ---- */

/* Replaces session `name` (container `old`) by a new container from `image_id`. */
static int recreate_from(struct bv_session_ctx *s, const char *name, json_t *old,
			 const char *image_id, const char *from, struct bv_error **err)
{
	json_t *labels = bv_session_carried_labels(json_object_get(old, "Config"));
	struct bv_session_create c = {.session = name, .image_id = image_id, .labels = labels};
	int r;
	json_object_set_new(labels, BV_LABEL_RESTORED_FROM, json_string(from));
	r = bv_session_remove_container(s->e, bv_session_jstr(old, "Id"), err);
	if (r >= 0)
		r = bv_session_create_container(NULL, s, &c, err);
	json_decref(labels);
	return r;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void note_wait(const char *path, void *payload)
{
	const struct bv_session_step *step = payload;
	(void)path;
	if (step->on_wait)
		step->on_wait(step->key, step->payload);
}

/*
 * The key's turn: an exclusive lock held from the lookup to the commit, so two steps of one key
 * never both run and commit (the second commit would move the tag and leave the first image
 * untagged, outside the store).  The note comes as soon as the lock is found taken.
 */
static int lock_step(struct bv_lock *lk, const char *state_dir, const struct bv_session_step *step,
		     struct bv_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (key_file(&path, state_dir, step->key, ".step.lock", err) < 0)
		return BV_ERR;
	/* The const is dropped only to pass it through the callback's payload. */
	return bv_lock_acquire_noting(lk, path, BV_LOCK_EXCLUSIVE, 0, note_wait,
				      (void *)(uintptr_t)step, err);
}

/*
 * Removes the untagged images labelled with `key`: two steps of one key committing at once (as
 * older bv versions let them, or two cache directories on one engine) move the tag and leave
 * the first image nameless, outside the store.  One a session still runs from stays (the
 * engine refuses, which is fine).
 */
static void remove_strays(struct bv_engine *e, const char *key)
{
	_cleanup_free_ char *key_label = bv_xasprintf(BV_LABEL_KEY "=%s", key);
	const char *labels[] = {BV_LABEL_CACHE "=1", key_label, NULL};
	json_t *list = NULL, *img;
	size_t i;
	if (bv_engine_image_list(&list, e, labels, "the cached step's images", NULL) < 0)
		return;
	json_array_foreach(list, i, img)
	{
		json_t *tags = json_object_get(img, "RepoTags");
		const char *id = json_string_value(json_object_get(img, "Id"));
		bool tagged = false;
		size_t j;
		json_t *t;
		json_array_foreach(tags, j, t)
		{
			const char *tag = json_string_value(t);
			if (tag && strcmp(tag, "<none>:<none>") != 0)
				tagged = true;
		}
		if (id && !tagged)
			(void)bv_engine_image_remove(e, id, false, NULL);
	}
	json_decref(list);
}

int bv_session_cached_step(struct bv_session_exec_result *out, struct bv_session_ctx *s,
			   const char *name, struct bv_session_exec_req *x,
			   const struct bv_session_step *step, struct bv_error **err)
{
	const char *key = step->key;
	_cleanup_free_ char *dir = NULL, *ref = bv_session_cache_ref(key), *what = NULL;
	struct bv_lock lk = BV_LOCK_INIT, slk = BV_LOCK_INIT;
	json_t *img = NULL, *c = NULL;
	unsigned capacity;
	bool hit = false;
	int status = 0;
	int r;

	if ((r = capacity_of(s, &capacity, err)) < 0 ||
	    (r = bv_session_state_dir(&dir, s, err)) < 0)
		return r;
	/* The turn first, then the shared key lock: eviction only ever tries the latter. */
	r = lock_step(&slk, dir, step, err);
	if (r < 0)
		goto out;
	r = bv_session_cache_lock_key(&lk, dir, key, false, true, err);
	if (r < 0)
		goto out;
	r = bv_session_find(&c, s, name, err);
	if (r < 0)
		goto out;
	r = bv_session_inspect_image(&img, s->e, ref, err);
	if (r == 0) {
		const char *k = bv_session_label(
			json_object_get(json_object_get(img, "Config"), "Labels"), BV_LABEL_KEY);
		hit = k && !strcmp(k, key);
	} else if (r == BV_ENOTFOUND) {
		r = 0;
	}
	if (r < 0)
		goto out;
	if (hit) {
		/* Also adopts a key image the store does not list (made by an older bv whose step
		 * died between commit and store, or under another cache directory). */
		r = recreate_from(s, name, c, bv_session_jstr(img, "Id"), ref, err);
		if (r >= 0)
			r = bv_session_cache_touch(dir, key, ref, now_ns(), capacity,
						   bv_session_evict_image, s->e, NULL, err);
	} else {
		json_t *labels;
		const char *colon = strchr(ref, ':');
		_cleanup_free_ char *repo = bv_xstrndup(ref, (size_t)(colon - ref));
		what = bv_xasprintf("session '%s'", name);
		r = bv_session_exec_in(&status, s->e, bv_session_jstr(c, "Id"), what, x, err);
		if (r < 0 || status != 0)
			goto out;
		/* The store's entry before the image: a step killed in between leaves an entry
		 * without an image (harmless), never an image outside the store. */
		r = bv_session_cache_touch(dir, key, ref, now_ns(), capacity,
					   bv_session_evict_image, s->e, NULL, err);
		if (r < 0)
			goto out;
		labels = bv_session_snapshot_labels(s, name, key, true);
		r = bv_session_commit(s->e, bv_session_jstr(c, "Id"), repo, colon + 1, labels, err);
		json_decref(labels);
		if (r < 0) {
			(void)bv_session_cache_forget(dir, ref, NULL);
			goto out;
		}
	}
	if (r >= 0)
		remove_strays(s->e, key);
out:
	bv_lock_release(&lk);
	bv_lock_release(&slk);
	json_decref(img);
	json_decref(c);
	if (r < 0)
		return bv_error_wrap(err, r, "cached step '%s' in session '%s' failed", key, name);
	out->status = hit ? 0 : status;
	out->cached = hit;
	return 0;
}
