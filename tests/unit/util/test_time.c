#include <errno.h>
#include <string.h>

#include "test.h"
#include "util/time.h"

static int64_t parse(const char *s)
{
	int64_t t = 0;
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, s), 0);
	return t;
}

static void test_time__format(void **state)
{
	char out[BV_RFC3339_LEN + 1];
	(void)state;
	assert_int_equal(bv_time_format_rfc3339(out, 0), 0);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	assert_int_equal(bv_time_format_rfc3339(out, 1795267816), 0);
	assert_string_equal(out, "2026-11-21T13:30:16Z");
	assert_int_equal(bv_time_format_rfc3339(out, -1), 0);
	assert_string_equal(out, "1969-12-31T23:59:59Z");
	assert_int_equal(bv_time_format_rfc3339(out, 253402300799), 0);
	assert_string_equal(out, "9999-12-31T23:59:59Z");
	assert_int_equal(bv_time_format_rfc3339(out, 253402300800), -EOVERFLOW);
	assert_int_equal(bv_time_format_rfc3339(out, -62167219201), -EOVERFLOW);
}

static void test_time__round_trip(void **state)
{
	static const int64_t samples[] = {0,           1,          -1,          951782400,
					  1709164800,  4102444800, -2208988800, -62167219200,
					  253402300799};
	char out[BV_RFC3339_LEN + 1];
	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		assert_int_equal(bv_time_format_rfc3339(out, samples[i]), 0);
		assert_true(parse(out) == samples[i]);
	}
	/* Every day across four years, against gmtime_r through the formatter. */
	for (int64_t t = 946684800 - 86400 * 400; t < 946684800 + 86400 * 1100; t += 86400 + 7) {
		assert_int_equal(bv_time_format_rfc3339(out, t), 0);
		assert_true(parse(out) == t);
	}
}

static void test_time__leap_years(void **state)
{
	int64_t t = 7;
	(void)state;
	assert_true(parse("2024-02-29T00:00:00Z") == 1709164800);
	assert_true(parse("2000-02-29T00:00:00Z") == 951782400);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "2023-02-29T00:00:00Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "1900-02-29T00:00:00Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "2024-02-30T00:00:00Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "2024-04-31T00:00:00Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "2024-13-01T00:00:00Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "2024-00-01T00:00:00Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, "2024-01-00T00:00:00Z"), -EINVAL);
	assert_true(t == 7); /* untouched on failure */
}

static void test_time__offsets(void **state)
{
	(void)state;
	assert_true(parse("2026-11-23T15:30:16+02:00") == parse("2026-11-23T13:30:16Z"));
	assert_true(parse("2026-11-23T08:00:16-05:30") == parse("2026-11-23T13:30:16Z"));
	assert_true(parse("2026-01-01T00:30:00+01:00") == parse("2025-12-31T23:30:00Z"));
	assert_true(parse("2026-11-23t13:30:16z") == parse("2026-11-23T13:30:16Z"));
	assert_true(parse("2026-11-23 13:30:16Z") == parse("2026-11-23T13:30:16Z"));
	assert_true(parse("2026-11-23T13:30:16-00:00") == parse("2026-11-23T13:30:16Z"));
}

static void test_time__fraction(void **state)
{
	int64_t t;
	uint32_t ns = 1;
	(void)state;
	assert_int_equal(bv_time_parse_rfc3339(&t, &ns, "1970-01-01T00:00:01.5Z"), 0);
	assert_true(t == 1);
	assert_int_equal(ns, 500000000);
	assert_int_equal(bv_time_parse_rfc3339(&t, &ns, "1970-01-01T00:00:01.123456789987Z"), 0);
	assert_int_equal(ns, 123456789);
	assert_int_equal(bv_time_parse_rfc3339(&t, &ns, "1970-01-01T00:00:01.000000001+00:00"), 0);
	assert_int_equal(ns, 1);
	assert_int_equal(bv_time_parse_rfc3339(&t, &ns, "1970-01-01T00:00:01Z"), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(bv_time_parse_rfc3339(&t, &ns, "1970-01-01T00:00:01.Z"), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, &ns, "1970-01-01T00:00:01.12a4Z"), -EINVAL);
}

static void test_time__bad_formats(void **state)
{
	static const char *const bad[] = {"",
					  "2026-11-23",
					  "2026-11-23T13:30:16",
					  "2026-11-23T13:30Z",
					  "2026-11-23X13:30:16Z",
					  "26-11-23T13:30:16Z",
					  "2026-1-23T13:30:16Z",
					  "2026-11-23T24:00:00Z",
					  "2026-11-23T13:60:00Z",
					  "2026-11-23T23:59:60Z",
					  "2026-11-23T13:30:16+2:00",
					  "2026-11-23T13:30:16+0200",
					  "2026-11-23T13:30:16+24:00",
					  "2026-11-23T13:30:16+02:60",
					  "2026-11-23T13:30:16Z ",
					  " 2026-11-23T13:30:16Z",
					  "2026-11-23T13:30:16ZZ",
					  "+026-11-23T13:30:16Z",
					  NULL};
	int64_t t = 0;
	(void)state;
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(bv_time_parse_rfc3339(&t, NULL, bad[i]), -EINVAL);
	assert_int_equal(bv_time_parse_rfc3339(&t, NULL, NULL), -EINVAL);
}

static void test_time__clocks(void **state)
{
	uint64_t a, b;
	(void)state;
	assert_true(bv_time_now() > 1700000000);
	a = bv_time_monotonic_ns();
	b = bv_time_monotonic_ns();
	assert_true(b >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time__format),     cmocka_unit_test(test_time__round_trip),
		cmocka_unit_test(test_time__leap_years), cmocka_unit_test(test_time__offsets),
		cmocka_unit_test(test_time__fraction),   cmocka_unit_test(test_time__bad_formats),
		cmocka_unit_test(test_time__clocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
