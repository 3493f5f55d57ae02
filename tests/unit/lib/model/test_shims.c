#include <bv/error.h>
#include <bv/paths.h>
#include <bv/shims.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "util/fs.h"

/* A project root without ':' is its own .bv/bin on PATH; nothing is created. */
static void test_shims__path_dir_plain(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *dir = NULL;
	assert_ok(bv_shims_path_dir(&dir, "/work/proj", &err), &err);
	assert_string_equal(dir, "/work/proj/.bv/bin");
	free(dir);
}

/* A ':' in the root: a link in the cache, the same one every time, repaired when wrong. */
static void test_shims__path_dir_colon(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *tmp = test_mkdtemp("shims");
	char *cache = bv_path_join(tmp, "cache");
	char *root = bv_path_join(tmp, "runs:2024/proj");
	char *want = bv_path_join(root, ".bv/bin");
	char *dir = NULL, *again = NULL, *msg;
	char target[PATH_MAX];
	ssize_t n;

	assert_int_equal(setenv("BV_CACHE_DIR", cache, 1), 0);
	assert_ok(bv_shims_path_dir(&dir, root, &err), &err);
	assert_null(strchr(dir, ':'));
	assert_int_equal(strncmp(dir, cache, strlen(cache)), 0);
	n = readlink(dir, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, want);

	assert_int_equal(unlink(dir), 0);
	assert_int_equal(symlink("/elsewhere", dir), 0);
	assert_ok(bv_shims_path_dir(&again, root, &err), &err);
	assert_string_equal(again, dir);
	n = readlink(dir, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, want);
	free(again);
	again = NULL;

	/* a cache with ':' cannot help: a clear error */
	free(cache);
	cache = bv_path_join(tmp, "ca:che");
	assert_int_equal(setenv("BV_CACHE_DIR", cache, 1), 0);
	assert_int_equal(bv_shims_path_dir(&again, root, &err), BV_EINVALID);
	assert_null(again);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "set BV_CACHE_DIR to a path without one"));
	free(msg);
	bv_error_free(err);

	unsetenv("BV_CACHE_DIR");
	assert_int_equal(bv_rm_rf(tmp, NULL), 0);
	free(dir);
	free(want);
	free(root);
	free(cache);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shims__path_dir_plain),
		cmocka_unit_test(test_shims__path_dir_colon),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
