#include <errno.h>
#include <limits.h>

#include "test.h"
#include "util/cleanup.h"
#include "util/parse.h"

static void test_parse__u64_bounds(void **state)
{
	uint64_t v = 42;
	(void)state;
	assert_int_equal(bv_parse_u64(&v, "0"), 0);
	assert_true(v == 0);
	assert_int_equal(bv_parse_u64(&v, "18446744073709551615"), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(bv_parse_u64(&v, "007"), 0);
	assert_true(v == 7);
	v = 42;
	assert_int_equal(bv_parse_u64(&v, "18446744073709551616"), -ERANGE);
	assert_int_equal(bv_parse_u64(&v, "99999999999999999999999"), -ERANGE);
	assert_true(v == 42); /* untouched on failure */
}

static void test_parse__u64_rejects_junk(void **state)
{
	static const char *const bad[] = {"",   " 1", "1 ",  "1x",  "0x10", "+1",
					  "-1", "-0", "1.0", "1e3", "\t1",  "99999999999999999999x",
					  NULL};
	uint64_t v = 42;
	(void)state;
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(bv_parse_u64(&v, bad[i]), -EINVAL);
	assert_int_equal(bv_parse_u64(&v, NULL), -EINVAL);
	assert_true(v == 42);
}

static void test_parse__i64_bounds_and_signs(void **state)
{
	int64_t v = 0;
	(void)state;
	assert_int_equal(bv_parse_i64(&v, "9223372036854775807"), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(bv_parse_i64(&v, "-9223372036854775808"), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(bv_parse_i64(&v, "9223372036854775808"), -ERANGE);
	assert_int_equal(bv_parse_i64(&v, "-9223372036854775809"), -ERANGE);
	assert_int_equal(bv_parse_i64(&v, "-12"), 0);
	assert_true(v == -12);
	assert_int_equal(bv_parse_i64(&v, "+12"), 0);
	assert_true(v == 12);
	assert_int_equal(bv_parse_i64(&v, "-0"), 0);
	assert_true(v == 0);
	assert_int_equal(bv_parse_i64(&v, "-"), -EINVAL);
	assert_int_equal(bv_parse_i64(&v, "+"), -EINVAL);
	assert_int_equal(bv_parse_i64(&v, "--1"), -EINVAL);
	assert_int_equal(bv_parse_i64(&v, "+-1"), -EINVAL);
	assert_int_equal(bv_parse_i64(&v, " -1"), -EINVAL);
	assert_int_equal(bv_parse_i64(&v, ""), -EINVAL);
}

static void test_parse__int_and_uint_ranges(void **state)
{
	int i = 0;
	unsigned u = 0;
	size_t z = 0;
	(void)state;
	assert_int_equal(bv_parse_int(&i, "2147483647"), 0);
	assert_int_equal(i, INT_MAX);
	assert_int_equal(bv_parse_int(&i, "-2147483648"), 0);
	assert_int_equal(i, INT_MIN);
	assert_int_equal(bv_parse_int(&i, "2147483648"), -ERANGE);
	assert_int_equal(bv_parse_int(&i, "-2147483649"), -ERANGE);
	assert_int_equal(bv_parse_uint(&u, "4294967295"), 0);
	assert_true(u == UINT_MAX);
	assert_int_equal(bv_parse_uint(&u, "4294967296"), -ERANGE);
	assert_int_equal(bv_parse_uint(&u, "-1"), -EINVAL);
	assert_int_equal(bv_parse_size(&z, "1048576"), 0);
	assert_true(z == 1048576);
	assert_int_equal(bv_parse_size(&z, "1k"), -EINVAL);
}

static void test_parse__bool(void **state)
{
	static const char *const yes[] = {"1", "true", "TRUE", "Yes", "on", "ON", NULL};
	static const char *const no[] = {"0", "false", "False", "no", "NO", "off", NULL};
	static const char *const bad[] = {"", "2", "y", "n", "truex", " true", "enable", NULL};
	bool b;
	(void)state;
	for (size_t i = 0; yes[i]; i++) {
		b = false;
		assert_int_equal(bv_parse_bool(&b, yes[i]), 0);
		assert_true(b);
	}
	for (size_t i = 0; no[i]; i++) {
		b = true;
		assert_int_equal(bv_parse_bool(&b, no[i]), 0);
		assert_false(b);
	}
	for (size_t i = 0; bad[i]; i++) {
		b = true;
		assert_int_equal(bv_parse_bool(&b, bad[i]), -EINVAL);
		assert_true(b);
	}
}

static void test_parse__prefix_suffix(void **state)
{
	(void)state;
	assert_true(bv_str_has_prefix("samtools-1.19", "samtools"));
	assert_true(bv_str_has_prefix("abc", ""));
	assert_false(bv_str_has_prefix("sam", "samtools"));
	assert_false(bv_str_has_prefix("xsamtools", "samtools"));
	assert_true(bv_str_has_suffix("data.tar.gz", ".tar.gz"));
	assert_true(bv_str_has_suffix("abc", ""));
	assert_false(bv_str_has_suffix("gz", ".tar.gz"));
	assert_false(bv_str_has_suffix("data.tar.gzx", ".tar.gz"));
}

static void test_parse__seconds_ms(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {{"30", 30000}, {"0.5", 500}, {"2.25", 2250}, {"1.0005", 1000},
		    {"007", 7000}, {"0", 0},     {"0.001", 1},   {"86400", 86400000}};
	static const char *const bad[] = {"",   ".5",  "1.",    "-1",  "+1",  "1e3",  " 1", "1 ",
					  "1s", "0x1", "1.2.3", "nan", "1,5", "1.-5", NULL};
	uint64_t v;
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(good); i++) {
		v = 99;
		assert_int_equal(bv_parse_seconds_ms(&v, good[i].s, 86400000), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (size_t i = 0; bad[i]; i++) {
		v = 99;
		assert_int_equal(bv_parse_seconds_ms(&v, bad[i], 86400000), -EINVAL);
		assert_int_equal(v, 99);
	}
	assert_int_equal(bv_parse_seconds_ms(&v, NULL, 1000), -EINVAL);
	assert_int_equal(bv_parse_seconds_ms(&v, "86400.001", 86400000), -ERANGE);
	assert_int_equal(bv_parse_seconds_ms(&v, "99999999999999999999999", 86400000), -ERANGE);
	assert_int_equal(bv_parse_seconds_ms(&v, "99999999999999999999999.5", 86400000), -ERANGE);
	assert_int_equal(v, 99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse__u64_bounds),
		cmocka_unit_test(test_parse__u64_rejects_junk),
		cmocka_unit_test(test_parse__i64_bounds_and_signs),
		cmocka_unit_test(test_parse__int_and_uint_ranges),
		cmocka_unit_test(test_parse__bool),
		cmocka_unit_test(test_parse__prefix_suffix),
		cmocka_unit_test(test_parse__seconds_ms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
