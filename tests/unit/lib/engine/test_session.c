#include <bv/engine.h>
#include <bv/error.h>
#include <bv/project.h>
#include <bv/session.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

static void test_session__names(void **state)
{
	static const char *const good[] = {"a", "work", "Step-1.b_2", "0", NULL};
	static const char *const bad[] = {"", "-x", ".x", "_x", "a b", "a/b", "a:b", "é", NULL};
	char long_name[BV_SESSION_NAME_MAX + 2];
	struct bv_error *err = NULL;
	(void)state;
	for (size_t i = 0; good[i]; i++)
		assert_ok(bv_session_check_name(good[i], &err), &err);
	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(bv_session_check_name(bad[i], &err), BV_EINVALID);
		assert_non_null(err);
		bv_error_free(err);
		err = NULL;
	}
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(bv_session_check_name(long_name, NULL), BV_EINVALID);
	long_name[BV_SESSION_NAME_MAX] = '\0';
	assert_int_equal(bv_session_check_name(long_name, NULL), 0);
}

static void test_session__container_names(void **state)
{
	_cleanup_free_ char *a = bv_session_container_name("/p/align", "work");
	_cleanup_free_ char *b = bv_session_container_name("/q/align", "work");
	_cleanup_free_ char *a2 = bv_session_container_name("/p/align", "work");
	_cleanup_free_ char *c = bv_session_container_name("/p/align", "work2");
	_cleanup_free_ char *d = bv_session_container_name("/p/My Project!", "s");
	_cleanup_free_ char *e = bv_session_container_name("/p/align/", "s");
	(void)state;
	/* the same project and session always give the same name */
	assert_string_equal(a, a2);
	/* same directory name, other root: other hash */
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_true(bv_str_has_prefix(a, "bv-align-"));
	assert_true(bv_str_has_suffix(a, "-work"));
	assert_int_equal(strlen(a), strlen("bv-align-") + 8 + strlen("-work"));
	/* the name is reduced to what the engine accepts, lower case */
	assert_true(bv_str_has_prefix(d, "bv-my-project--"));
	assert_true(bv_str_has_prefix(e, "bv-align-"));
	for (const char *p = d; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			    strchr("-_.", *p));
}

static void test_session__snapshot_refs_unique(void **state)
{
	const char *id = "0123456789abcdef0123456789abcdef";
	_cleanup_free_ char *a = bv_session_snapshot_ref(id, 1000, 7);
	_cleanup_free_ char *b = bv_session_snapshot_ref(id, 1001, 7);
	_cleanup_free_ char *c = bv_session_snapshot_ref(id, 1000, 8);
	_cleanup_free_ char *d = bv_session_snapshot_ref("fedcba9876543210", 1000, 7);
	(void)state;
	assert_string_equal(a, "bv-snapshot:0123456789ab-1000-7");
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
}

static void test_session__cache_refs(void **state)
{
	_cleanup_free_ char *a = bv_session_cache_ref("align:v1");
	_cleanup_free_ char *a2 = bv_session_cache_ref("align:v1");
	_cleanup_free_ char *b = bv_session_cache_ref("align/v1");
	_cleanup_free_ char *c = bv_session_cache_ref(".hidden");
	_cleanup_free_ char *lng = NULL;
	char key[300];
	const char *tag;
	(void)state;
	assert_string_equal(a, a2);
	/* "align:v1" and "align/v1" sanitise alike, the hash tells them apart */
	assert_true(bv_str_has_prefix(a, "bv-cache:align_v1-"));
	assert_true(bv_str_has_prefix(b, "bv-cache:align_v1-"));
	assert_string_not_equal(a, b);
	assert_true(bv_str_has_prefix(c, "bv-cache:_hidden-"));
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	lng = bv_session_cache_ref(key);
	tag = strchr(lng, ':') + 1;
	/* a Docker tag has at most 128 characters */
	assert_true(strlen(tag) <= 128);
	assert_int_equal(strlen(tag), 48 + 1 + 16);
}

/* ---- whole lines ---- */

struct collected {
	struct bv_strv writes;
};

static int collect(const char *data, size_t len, void *payload)
{
	struct collected *c = payload;
	bv_strv_push_take(&c->writes, bv_xstrndup(data, len));
	return 0;
}

static void test_session__lines_across_chunks(void **state)
{
	const char *text = "first line\nsecond\n\nfourth without end";
	size_t len = strlen(text);
	(void)state;
	/* every way of cutting the stream in three */
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			struct collected c = {.writes = BV_STRV_INIT};
			struct bv_session_lines l = {.emit = collect, .payload = &c};
			struct bv_buf all = BV_BUF_INIT;
			assert_int_equal(bv_session_lines_feed(&l, text, i), 0);
			assert_int_equal(bv_session_lines_feed(&l, text + i, j - i), 0);
			assert_int_equal(bv_session_lines_feed(&l, text + j, len - j), 0);
			/* before the flush, every write ended a line */
			bv_strv_foreach (w, &c.writes)
				assert_true(bv_str_has_suffix(*w, "\n"));
			assert_int_equal(bv_session_lines_flush(&l), 0);
			bv_strv_foreach (w, &c.writes)
				bv_buf_puts(&all, *w);
			assert_string_equal(all.buf, text);
			assert_string_equal(c.writes.v[c.writes.n - 1], "fourth without end");
			bv_buf_release(&all);
			bv_strv_clear(&c.writes);
			bv_session_lines_release(&l);
		}
	}
}

static void test_session__lines_bounded(void **state)
{
	struct collected c = {.writes = BV_STRV_INIT};
	struct bv_session_lines l = {.emit = collect, .payload = &c};
	char *chunk = bv_xmalloc(40000);
	(void)state;
	memset(chunk, 'x', 40000);
	assert_int_equal(bv_session_lines_feed(&l, chunk, 40000), 0);
	assert_int_equal(c.writes.n, 0);
	/* a line longer than 64 KiB does not wait for its end */
	assert_int_equal(bv_session_lines_feed(&l, chunk, 40000), 0);
	assert_int_equal(c.writes.n, 2);
	assert_int_equal(strlen(c.writes.v[0]) + strlen(c.writes.v[1]), 80000);
	assert_int_equal(l.len, 0);
	assert_int_equal(bv_session_lines_feed(&l, "ab\ncd", 5), 0);
	assert_string_equal(c.writes.v[2], "ab\n");
	assert_int_equal(bv_session_lines_flush(&l), 0);
	assert_string_equal(c.writes.v[3], "cd");
	/* a flush with nothing pending writes nothing */
	assert_int_equal(bv_session_lines_flush(&l), 0);
	assert_int_equal(c.writes.n, 4);
	free(chunk);
	bv_strv_clear(&c.writes);
	bv_session_lines_release(&l);
}

static int fail_emit(const char *data, size_t len, void *payload)
{
	(void)data;
	(void)len;
	(void)payload;
	return -7;
}

static void test_session__lines_emit_error(void **state)
{
	struct bv_session_lines l = {.emit = fail_emit};
	(void)state;
	assert_int_equal(bv_session_lines_feed(&l, "a", 1), 0);
	assert_int_equal(bv_session_lines_feed(&l, "b\n", 2), -7);
	bv_session_lines_release(&l);
}

/* The engine's multiplexed exec stream, demultiplexed and cut into lines, as exec does. */
struct two_streams {
	struct collected c[2];
	struct bv_session_lines l[2];
};

static int to_lines(int stream, const char *data, size_t len, void *payload)
{
	struct two_streams *t = payload;
	return bv_session_lines_feed(&t->l[stream == 2 ? 1 : 0], data, len);
}

static void frame(struct bv_buf *b, int stream, const char *text)
{
	size_t len = strlen(text);
	unsigned char h[8] = {(unsigned char)stream,
			      0,
			      0,
			      0,
			      (unsigned char)(len >> 24),
			      (unsigned char)(len >> 16),
			      (unsigned char)(len >> 8),
			      (unsigned char)len};
	bv_buf_add(b, h, sizeof(h));
	bv_buf_add(b, text, len);
}

static void test_session__demuxed_lines(void **state)
{
	struct bv_buf wire = BV_BUF_INIT;
	(void)state;
	/* lines split across frames, and a stderr frame between the halves of a stdout line */
	frame(&wire, 1, "out one\nout tw");
	frame(&wire, 2, "err one\n");
	frame(&wire, 1, "o\nout three");
	frame(&wire, 2, "err two\nerr th");
	frame(&wire, 2, "ree\n");
	for (size_t cut = 0; cut <= wire.len; cut++) {
		struct two_streams t = {.c = {{BV_STRV_INIT}, {BV_STRV_INIT}}};
		struct bv_engine_demux d = {.on_frame = to_lines, .payload = &t};
		struct bv_buf out = BV_BUF_INIT, err = BV_BUF_INIT;
		for (int i = 0; i < 2; i++) {
			t.l[i].emit = collect;
			t.l[i].payload = &t.c[i];
		}
		assert_int_equal(bv_engine_demux_feed(&d, wire.buf, cut), 0);
		assert_int_equal(bv_engine_demux_feed(&d, wire.buf + cut, wire.len - cut), 0);
		for (int i = 0; i < 2; i++)
			bv_strv_foreach (w, &t.c[i].writes)
				assert_true(bv_str_has_suffix(*w, "\n"));
		assert_int_equal(bv_session_lines_flush(&t.l[0]), 0);
		assert_int_equal(bv_session_lines_flush(&t.l[1]), 0);
		bv_strv_foreach (w, &t.c[0].writes)
			bv_buf_puts(&out, *w);
		bv_strv_foreach (w, &t.c[1].writes)
			bv_buf_puts(&err, *w);
		assert_string_equal(out.buf, "out one\nout two\nout three");
		assert_string_equal(err.buf, "err one\nerr two\nerr three\n");
		bv_buf_release(&out);
		bv_buf_release(&err);
		for (int i = 0; i < 2; i++) {
			bv_strv_clear(&t.c[i].writes);
			bv_session_lines_release(&t.l[i]);
		}
	}
	bv_buf_release(&wire);
}

/* ---- the cached-step store ---- */

struct evictions {
	struct bv_strv removed;
	const char *refuse; /* an image whose removal fails */
};

static int fake_evict(const char *image, void *payload, struct bv_error **err)
{
	struct evictions *ev = payload;
	if (ev->refuse && !strcmp(image, ev->refuse))
		return bv_error_set(err, "engine said no for '%s'", image);
	bv_strv_push(&ev->removed, image);
	return 0;
}

static int setup_dir(void **state)
{
	*state = test_mkdtemp("session");
	return *state ? 0 : -1;
}

static int teardown_dir(void **state)
{
	int r = bv_rm_rf(*state, NULL);
	free(*state);
	return r;
}

static char **keys_of(const char *dir)
{
	struct bv_session_cache_entry *v = NULL;
	struct bv_strv keys = BV_STRV_INIT;
	struct bv_error *err = NULL;
	size_t n = 0;
	assert_ok(bv_session_cache_load(&v, &n, dir, &err), &err);
	for (size_t i = 0; i < n; i++)
		bv_strv_push(&keys, v[i].key);
	bv_session_cache_entries_free(v, n);
	return bv_strv_detach(&keys);
}

static void touch(const char *dir, const char *key, int64_t now, unsigned capacity,
		  struct evictions *ev)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *image = bv_xasprintf("img-%s", key);
	assert_ok(
		bv_session_cache_touch(dir, key, image, now, capacity, fake_evict, ev, NULL, &err),
		&err);
}

static void test_session__lru_order_and_eviction(void **state)
{
	const char *dir = *state;
	struct evictions ev = {.removed = BV_STRV_INIT};
	char **keys;
	(void)state;
	keys = keys_of(dir);
	assert_null(keys[0]); /* no state file: an empty store */
	bv_strv_free(keys);

	touch(dir, "a", 100, 3, &ev);
	touch(dir, "b", 200, 3, &ev);
	touch(dir, "c", 300, 3, &ev);
	keys = keys_of(dir);
	assert_string_equal(keys[0], "c");
	assert_string_equal(keys[1], "b");
	assert_string_equal(keys[2], "a");
	bv_strv_free(keys);

	/* using "a" again makes it the most recent, so "b" is now the one to go */
	touch(dir, "a", 400, 3, &ev);
	touch(dir, "d", 500, 3, &ev);
	assert_int_equal(ev.removed.n, 1);
	assert_string_equal(ev.removed.v[0], "img-b");
	keys = keys_of(dir);
	assert_string_equal(keys[0], "d");
	assert_string_equal(keys[1], "a");
	assert_string_equal(keys[2], "c");
	assert_null(keys[3]);
	bv_strv_free(keys);

	/* a smaller capacity evicts several at once, oldest first, never the one just used */
	touch(dir, "c", 600, 1, &ev);
	assert_int_equal(ev.removed.n, 3);
	assert_string_equal(ev.removed.v[1], "img-a");
	assert_string_equal(ev.removed.v[2], "img-d");
	keys = keys_of(dir);
	assert_string_equal(keys[0], "c");
	assert_null(keys[1]);
	bv_strv_free(keys);
	bv_strv_clear(&ev.removed);
}

static void test_session__lru_skips_locked_keys(void **state)
{
	const char *dir = *state;
	struct evictions ev = {.removed = BV_STRV_INIT};
	struct bv_lock step = BV_LOCK_INIT;
	struct bv_error *err = NULL;
	struct bv_strv evicted = BV_STRV_INIT;
	char **keys;
	touch(dir, "old", 100, 2, &ev);
	touch(dir, "mid", 200, 2, &ev);
	/* a running step uses "old": it holds the key's lock shared (another open file
	 * description, which conflicts with the evictor's like another process would) */
	assert_ok(bv_session_cache_lock_key(&step, dir, "old", false, true, &err), &err);
	assert_ok(bv_session_cache_touch(dir, "new", "img-new", 300, 2, fake_evict, &ev, &evicted,
					 &err),
		  &err);
	assert_int_equal(ev.removed.n, 1);
	assert_string_equal(ev.removed.v[0], "img-mid");
	assert_int_equal(evicted.n, 1);
	assert_string_equal(evicted.v[0], "img-mid");
	keys = keys_of(dir);
	assert_string_equal(keys[0], "new");
	assert_string_equal(keys[1], "old");
	assert_null(keys[2]);
	bv_strv_free(keys);

	/* with only locked candidates left, the store stays over capacity until they are free */
	touch(dir, "newer", 400, 1, &ev);
	keys = keys_of(dir);
	assert_string_equal(keys[0], "newer");
	assert_string_equal(keys[1], "old");
	assert_null(keys[2]);
	bv_strv_free(keys);
	assert_int_equal(ev.removed.n, 2);
	assert_string_equal(ev.removed.v[1], "img-new");

	bv_lock_release(&step);
	touch(dir, "newest", 500, 1, &ev);
	assert_int_equal(ev.removed.n, 4);
	keys = keys_of(dir);
	assert_string_equal(keys[0], "newest");
	assert_null(keys[1]);
	bv_strv_free(keys);

	/* eviction's own exclusive lock is gone again: a step can take the key */
	assert_ok(bv_session_cache_lock_key(&step, dir, "old", true, false, &err), &err);
	bv_lock_release(&step);
	bv_strv_clear(&ev.removed);
	bv_strv_clear(&evicted);
}

static void test_session__lru_failed_eviction_keeps_entry(void **state)
{
	const char *dir = *state;
	struct evictions ev = {.removed = BV_STRV_INIT, .refuse = "img-x"};
	char **keys;
	touch(dir, "x", 100, 1, &ev);
	touch(dir, "y", 200, 1, &ev);
	keys = keys_of(dir);
	assert_string_equal(keys[0], "y");
	assert_string_equal(keys[1], "x");
	bv_strv_free(keys);
	ev.refuse = NULL;
	touch(dir, "y", 300, 1, &ev);
	keys = keys_of(dir);
	assert_string_equal(keys[0], "y");
	assert_null(keys[1]);
	bv_strv_free(keys);
	bv_strv_clear(&ev.removed);
}

static void test_session__lru_forget_and_file(void **state)
{
	const char *dir = *state;
	struct evictions ev = {.removed = BV_STRV_INIT};
	struct bv_error *err = NULL;
	_cleanup_free_ char *path = bv_path_join(dir, "cache-lru.json");
	struct bv_buf text = BV_BUF_INIT;
	char **keys;
	touch(dir, "p", 100, 4, &ev);
	touch(dir, "q", 200, 4, &ev);
	assert_ok(bv_session_cache_forget(dir, "img-p", &err), &err);
	assert_ok(bv_session_cache_forget(dir, "img-none", &err), &err);
	keys = keys_of(dir);
	assert_string_equal(keys[0], "q");
	assert_null(keys[1]);
	bv_strv_free(keys);
	/* the state is JSON naming key, image and time */
	assert_ok(bv_buf_read_file(&text, path, 1 << 20, &err), &err);
	assert_non_null(strstr(text.buf, "\"key\": \"q\""));
	assert_non_null(strstr(text.buf, "\"image\": \"img-q\""));
	assert_non_null(strstr(text.buf, "\"last_used\": 200"));
	bv_buf_release(&text);
	/* a damaged state file is an error, not silently an empty store */
	assert_ok(bv_write_file_atomic(path, "{\"entries\": 3}", 14, 0644, &err), &err);
	assert_int_equal(
		bv_session_cache_touch(dir, "r", "img-r", 300, 4, fake_evict, &ev, NULL, &err),
		BV_EINVALID);
	bv_error_free(err);
	bv_strv_clear(&ev.removed);
}

static void test_session__capacity(void **state)
{
	static const char toml[] = "[project]\nname = \"x\"\n\n[session]\ncache_capacity = 5\n";
	static const char bad_toml[] = "[project]\nname = \"x\"\n[session]\ncache_capacity = 0\n";
	struct bv_project *p = NULL, *bad = NULL;
	struct bv_error *err = NULL;
	unsigned v = 0;
	(void)state;
	unsetenv("BV_SESSION_CACHE_CAPACITY");
	assert_ok(bv_session_cache_capacity(&v, NULL, &err), &err);
	assert_int_equal(v, BV_SESSION_CACHE_CAPACITY_DEFAULT);
	assert_ok(bv_project_parse(&p, toml, strlen(toml), "/x/bv.toml", &err), &err);
	assert_ok(bv_session_cache_capacity(&v, p, &err), &err);
	assert_int_equal(v, 5);
	assert_ok(bv_project_parse(&bad, bad_toml, strlen(bad_toml), "/x/bv.toml", &err), &err);
	assert_int_equal(bv_session_cache_capacity(&v, bad, &err), BV_EINVALID);
	assert_non_null(strstr(err->message, "bv.toml:4:"));
	bv_error_free(err);
	err = NULL;
	/* the environment wins over bv.toml */
	setenv("BV_SESSION_CACHE_CAPACITY", "3", 1);
	assert_ok(bv_session_cache_capacity(&v, p, &err), &err);
	assert_int_equal(v, 3);
	setenv("BV_SESSION_CACHE_CAPACITY", "0", 1);
	assert_int_equal(bv_session_cache_capacity(&v, p, NULL), BV_EINVALID);
	setenv("BV_SESSION_CACHE_CAPACITY", "-2", 1);
	assert_int_equal(bv_session_cache_capacity(&v, p, NULL), BV_EINVALID);
	unsetenv("BV_SESSION_CACHE_CAPACITY");
	bv_project_free(p);
	bv_project_free(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session__names),
		cmocka_unit_test(test_session__container_names),
		cmocka_unit_test(test_session__snapshot_refs_unique),
		cmocka_unit_test(test_session__cache_refs),
		cmocka_unit_test(test_session__lines_across_chunks),
		cmocka_unit_test(test_session__lines_bounded),
		cmocka_unit_test(test_session__lines_emit_error),
		cmocka_unit_test(test_session__demuxed_lines),
		cmocka_unit_test_setup_teardown(test_session__lru_order_and_eviction, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_session__lru_skips_locked_keys, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_session__lru_failed_eviction_keeps_entry,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_session__lru_forget_and_file, setup_dir,
						teardown_dir),
		cmocka_unit_test(test_session__capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
