#include <bv/error.h>
#include <bv/syncrecord.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"

struct fixture {
	char *root;
	char *toml;
	char *lock;
};

static void write_text(const char *path, const char *text)
{
	struct bv_error *err = NULL;
	assert_ok(bv_write_file_atomic(path, text, strlen(text), 0644, &err), &err);
}

/* Until every file made so far has a ctime two ticks of the file clock old. */
static void let_settle(const char *path)
{
	struct stat st;
	for (int i = 0; i < 200; i++) {
		struct timespec ms = {0, 5 * 1000 * 1000};
		assert_int_equal(stat(path, &st), 0);
		if (bv_stat_settled(&st))
			return;
		nanosleep(&ms, NULL);
	}
	fail_msg("'%s' never settled", path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *dot;
	f->root = test_mkdtemp("syncrecord");
	f->toml = bv_path_join(f->root, "bv.toml");
	f->lock = bv_path_join(f->root, "bv.lock");
	dot = bv_path_join(f->root, ".bv");
	assert_int_equal(mkdir(dot, 0755), 0);
	free(dot);
	write_text(f->toml, "[project]\nname = \"x\"\n");
	write_text(f->lock, "version = 1\n");
	let_settle(f->lock);
	unsetenv("BV_SYNC_RECORD");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	(void)bv_rm_rf(f->root, NULL);
	free(f->root);
	free(f->toml);
	free(f->lock);
	free(f);
	return 0;
}

/* Replaces `path` in place, without the fsync of an atomic write: a thousand of them follow. */
static void put_bytes(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static bool write_record(const struct fixture *f, const char *context, size_t n_tools)
{
	struct bv_sync_record *rec = bv_sync_record_new(context);
	bool written;
	bv_sync_record_add(rec, f->toml);
	bv_sync_record_add(rec, f->lock);
	written = bv_sync_record_write(rec, f->root, n_tools);
	bv_sync_record_free(rec);
	return written;
}

/* Written, it holds for the same context and files, and gives back the number of tools. */
static void test_syncrecord__holds(void **state)
{
	struct fixture *f = *state;
	size_t n = 0;
	assert_false(bv_sync_record_check(f->root, "ctx\n", &n)); /* none yet */
	assert_true(write_record(f, "ctx\n", 42));
	assert_true(bv_sync_record_check(f->root, "ctx\n", &n));
	assert_int_equal(n, 42);
	/* another context (arguments, environment, machine) is another answer */
	assert_false(bv_sync_record_check(f->root, "ctx2\n", &n));
	assert_false(bv_sync_record_check(f->root, "ctx", &n));
}

/* Any change to a recorded file, even one that keeps its size, voids it; so does removal. */
static void test_syncrecord__file_changes(void **state)
{
	struct fixture *f = *state;
	size_t n;
	assert_true(write_record(f, "c", 1));
	write_text(f->toml, "[project]\nname = \"y\"\n"); /* same length */
	assert_false(bv_sync_record_check(f->root, "c", &n));

	let_settle(f->toml);
	assert_true(write_record(f, "c", 1));
	assert_true(bv_sync_record_check(f->root, "c", &n));
	assert_int_equal(unlink(f->lock), 0);
	assert_false(bv_sync_record_check(f->root, "c", &n));
}

/* A file changed a moment ago could change again in the same tick: no record for it. */
static void test_syncrecord__unsettled(void **state)
{
	struct fixture *f = *state;
	struct bv_sync_record *rec = bv_sync_record_new("c");
	struct stat st;
	size_t n;
	/* as stat(2) finds a file written this very moment: its ctime is now */
	assert_int_equal(stat(f->lock, &st), 0);
	assert_int_equal(clock_gettime(CLOCK_REALTIME_COARSE, &st.st_ctim), 0);
	bv_sync_record_add(rec, f->toml);
	bv_sync_record_add_stat(rec, f->lock, &st);
	assert_false(bv_sync_record_write(rec, f->root, 1));
	bv_sync_record_free(rec);
	assert_false(bv_sync_record_check(f->root, "c", &n));
}

/* A file that changes between the sync's reading and the record's writing: not written. */
static void test_syncrecord__changed_meanwhile(void **state)
{
	struct fixture *f = *state;
	struct bv_sync_record *rec = bv_sync_record_new("c");
	size_t n;
	bv_sync_record_add(rec, f->toml);
	bv_sync_record_add(rec, f->lock);
	write_text(f->lock, "version = 1\n# meanwhile\n");
	assert_false(bv_sync_record_write(rec, f->root, 1));
	bv_sync_record_free(rec);
	assert_false(bv_sync_record_check(f->root, "c", &n));
}

/* Spoiled, missing files, a time already past, or records turned off: nothing written. */
static void test_syncrecord__not_written(void **state)
{
	struct fixture *f = *state;
	struct bv_sync_record *rec;
	char *gone = bv_path_join(f->root, "gone");
	size_t n;

	rec = bv_sync_record_new("c");
	bv_sync_record_add(rec, f->toml);
	bv_sync_record_spoil(rec, "test");
	assert_false(bv_sync_record_write(rec, f->root, 1));
	bv_sync_record_free(rec);

	rec = bv_sync_record_new("c");
	bv_sync_record_add(rec, gone);
	assert_false(bv_sync_record_write(rec, f->root, 1));
	bv_sync_record_free(rec);

	rec = bv_sync_record_new("c");
	bv_sync_record_add(rec, f->toml);
	bv_sync_record_window(rec, INT64_MIN, bv_time_now() - 1);
	assert_false(bv_sync_record_write(rec, f->root, 1));
	bv_sync_record_free(rec);
	rec = bv_sync_record_new("c");
	bv_sync_record_add(rec, f->toml);
	bv_sync_record_window(rec, bv_time_now() + 60, INT64_MAX); /* a clock set back */
	assert_false(bv_sync_record_write(rec, f->root, 1));
	bv_sync_record_free(rec);
	assert_false(bv_sync_record_check(f->root, "c", &n));

	/* off: a record written before is not trusted either */
	assert_true(write_record(f, "c", 1));
	assert_int_equal(setenv("BV_SYNC_RECORD", "0", 1), 0);
	assert_false(bv_sync_record_check(f->root, "c", &n));
	assert_false(write_record(f, "c", 1));
	unsetenv("BV_SYNC_RECORD");
	assert_true(bv_sync_record_check(f->root, "c", &n));
	free(gone);
}

/* Every single byte changed, dropped or added makes the record a miss, never a wrong hit. */
static void test_syncrecord__damage(void **state)
{
	struct fixture *f = *state;
	struct bv_error *err = NULL;
	struct bv_buf text = BV_BUF_INIT;
	char *path = bv_path_join(f->root, ".bv/sync.ok");
	size_t n;
	assert_true(write_record(f, "c", 7));
	assert_ok(bv_buf_read_file(&text, path, 1 << 20, &err), &err);
	for (size_t i = 0; i < text.len; i++) {
		char *copy = malloc(text.len + 1);
		memcpy(copy, text.buf, text.len);
		copy[i] ^= 0x01;
		put_bytes(path, copy, text.len);
		assert_false(bv_sync_record_check(f->root, "c", &n));
		put_bytes(path, text.buf, i);
		assert_false(bv_sync_record_check(f->root, "c", &n));
		free(copy);
	}
	put_bytes(path, text.buf, text.len);
	assert_true(bv_sync_record_check(f->root, "c", &n));
	assert_int_equal(n, 7);
	bv_buf_release(&text);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_syncrecord__holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syncrecord__file_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syncrecord__unsettled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syncrecord__changed_meanwhile, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_syncrecord__not_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syncrecord__damage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
