#include <bv/error.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static void assert_format(const struct bv_error *err, const char *want)
{
	char *s = bv_error_format(err);
	assert_string_equal(s, want);
	free(s);
}

static void test_error__set(void **state)
{
	struct bv_error *err = NULL;
	(void)state;
	assert_int_equal(bv_error_set(&err, "invalid key '%s'", "x"), BV_ERR);
	assert_int_equal(err->code, BV_ERR);
	assert_int_equal(err->sys_errno, 0);
	assert_format(err, "invalid key 'x'");
	/* A second set replaces the first instead of leaking it. */
	assert_int_equal(bv_error_setc(&err, BV_EINVALID, 0, "bad '%s'", "y"), BV_EINVALID);
	assert_format(err, "bad 'y'");
	assert_int_equal(bv_error_root_code(err), BV_EINVALID);
	bv_error_free(err);
}

static void test_error__errno_preserved(void **state)
{
	struct bv_error *err = NULL;
	(void)state;
	errno = ENOENT;
	assert_int_equal(bv_error_set_errno(&err, "could not open '%s'", "bv.toml"), BV_ERR);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(err->sys_errno, ENOENT);
	assert_int_equal(bv_error_errno(err), ENOENT);
	assert_format(err, "could not open 'bv.toml': No such file or directory");
	bv_error_free(err);
}

static void test_error__wrap_chain(void **state)
{
	struct bv_error *err = NULL;
	(void)state;
	errno = EACCES;
	bv_error_set_errno(&err, "could not read '%s'", "a");
	assert_int_equal(bv_error_wrap(&err, BV_ENOTFOUND, "could not load '%s'", "p"),
			 BV_ENOTFOUND);
	assert_int_equal(bv_error_wrap(&err, 0, "outer"), BV_ERR); /* a non-negative code */
	assert_format(err, "outer: could not load 'p': could not read 'a': Permission denied");
	assert_int_equal(err->code, BV_ERR);
	assert_int_equal(bv_error_errno(err), EACCES);
	assert_int_equal(bv_error_root_code(err), BV_ERR);
	bv_error_free(err);

	/* Wrapping nothing records a fresh error. */
	err = NULL;
	assert_int_equal(bv_error_wrap(&err, BV_EUSAGE, "usage"), BV_EUSAGE);
	assert_format(err, "usage");
	bv_error_free(err);
}

static void test_error__null_err(void **state)
{
	(void)state;
	errno = EIO;
	assert_int_equal(bv_error_set_errno(NULL, "x"), BV_ERR);
	assert_int_equal(errno, EIO);
	assert_int_equal(bv_error_set(NULL, "x"), BV_ERR);
	assert_int_equal(bv_error_setc(NULL, BV_EEXISTS, 0, "x"), BV_EEXISTS);
	assert_int_equal(bv_error_setc(NULL, 5, 0, "x"), BV_ERR);
	assert_int_equal(bv_error_wrap(NULL, BV_ENOTFOUND, "x"), BV_ENOTFOUND);
	assert_int_equal(bv_error_errno(NULL), 0);
	assert_int_equal(bv_error_root_code(NULL), BV_OK);
	assert_format(NULL, "unknown error");
	bv_error_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error__set),
		cmocka_unit_test(test_error__errno_preserved),
		cmocka_unit_test(test_error__wrap_chain),
		cmocka_unit_test(test_error__null_err),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
