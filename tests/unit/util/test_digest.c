#include <string.h>

#include "test.h"
#include "util/digest.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_digest__valid(void **state)
{
	(void)state;
	assert_true(bv_digest_valid("sha256:" HEX64));
	assert_int_equal(strlen("sha256:" HEX64), BV_DIGEST_LEN);
}

static void test_digest__refused(void **state)
{
	char d[] = "sha256:" HEX64;
	(void)state;
	assert_false(bv_digest_valid(NULL));
	assert_false(bv_digest_valid(""));
	assert_false(bv_digest_valid("sha256:"));
	assert_false(bv_digest_valid(HEX64));
	assert_false(bv_digest_valid("sha512:" HEX64));
	assert_false(bv_digest_valid("SHA256:" HEX64));
	assert_false(bv_digest_valid(" sha256:" HEX64));
	/* one digit short, one too many, anything after the 64th */
	d[BV_DIGEST_LEN - 1] = '\0';
	assert_false(bv_digest_valid(d));
	d[BV_DIGEST_LEN - 1] = 'f';
	assert_true(bv_digest_valid(d));
	assert_false(bv_digest_valid("sha256:" HEX64 "0"));
	assert_false(bv_digest_valid("sha256:" HEX64 "\n"));
	assert_false(bv_digest_valid("sha256:" HEX64 ".toml"));
	/* only lower-case hex, and nothing that could climb out of a directory */
	d[7 + 10] = 'A';
	assert_false(bv_digest_valid(d));
	d[7 + 10] = 'g';
	assert_false(bv_digest_valid(d));
	assert_false(bv_digest_valid("sha256:../../../../../../etc/passwd"));
	assert_false(
		bv_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123/../"
				"ef"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest__valid),
		cmocka_unit_test(test_digest__refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
