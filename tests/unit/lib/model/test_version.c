#include <string.h>

#include "lib/model/version-internal.h"
#include "test.h"
#include "util/cleanup.h"

static void test_version__semver_parse_valid(void **state)
{
	(void)state;
	struct bv_semver v;

	assert_int_equal(bv_semver_parse(&v, "1.21.0"), 0);
	assert_true(v.major == 1 && v.minor == 21 && v.patch == 0);
	assert_null(v.pre);
	assert_null(v.build);
	bv_semver_release(&v);

	assert_int_equal(bv_semver_parse(&v, "0.0.0-rc.1+linux.x86-64"), 0);
	assert_string_equal(v.pre, "rc.1");
	assert_string_equal(v.build, "linux.x86-64");
	bv_semver_release(&v);

	assert_int_equal(bv_semver_parse(&v, "18446744073709551615.0.1-0.a-b.00x"), 0);
	assert_true(v.major == UINT64_MAX);
	assert_string_equal(v.pre, "0.a-b.00x");
	bv_semver_release(&v);

	assert_int_equal(bv_semver_parse(&v, "1.0.0+007"), 0); /* build ids may have zeros */
	assert_string_equal(v.build, "007");
	bv_semver_release(&v);
}

static void test_version__semver_parse_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",          "1",
		"1.2",       "1.2.3.4",
		"01.2.3",    "1.02.3",
		"1.2.03",    "1.2.3-",
		"1.2.3-01",  "1.2.3-a..b",
		"1.2.3+",    "1.2.3+a..b",
		"v1.2.3",    " 1.2.3",
		"1.2.3 ",    "1.2.3-a_b",
		"1.2.x",     "-1.2.3",
		"1..3",      "1.2.3-rc+",
		"1.2.3+b+c", "18446744073709551616.0.0",
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		struct bv_semver v = {0};
		if (bv_semver_parse(&v, bad[i]) != BV_EINVALID)
			fail_msg("'%s' parsed as a version", bad[i]);
		assert_null(v.pre);
	}
}

static void test_version__semver_precedence(void **state)
{
	(void)state;
	/* The SemVer 2.0.0 specification's own example chain, plus numeric widths. */
	static const char *const chain[] = {
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0",
		"1.0.1",
		"1.9.0",
		"1.10.0",
		"2.0.0",
		"10.0.0",
		"18446744073709551615.0.0",
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(chain); i++) {
		for (size_t j = 0; j < BV_ARRAY_SIZE(chain); j++) {
			struct bv_semver a, b;
			int c, want = i < j ? -1 : i > j;
			assert_int_equal(bv_semver_parse(&a, chain[i]), 0);
			assert_int_equal(bv_semver_parse(&b, chain[j]), 0);
			c = bv_semver_compare(&a, &b);
			if ((c > 0) - (c < 0) != want)
				fail_msg("compare(%s, %s) = %d", chain[i], chain[j], c);
			if (bv_version_compare(chain[i], chain[j]) * want <= 0 && i != j)
				fail_msg("bv_version_compare(%s, %s) disagrees", chain[i],
					 chain[j]);
			bv_semver_release(&a);
			bv_semver_release(&b);
		}
	}
}

static void test_version__semver_build_ignored(void **state)
{
	(void)state;
	struct bv_semver a, b;

	assert_int_equal(bv_semver_parse(&a, "1.2.3+a"), 0);
	assert_int_equal(bv_semver_parse(&b, "1.2.3+b"), 0);
	assert_int_equal(bv_semver_compare(&a, &b), 0);
	/* ...but the string order stays total. */
	assert_true(bv_version_compare("1.2.3+a", "1.2.3+b") < 0);
	assert_true(bv_version_compare("1.2.3+b", "1.2.3+a") > 0);
	bv_semver_release(&a);
	bv_semver_release(&b);
}

static int cmp_sign(const char *a, const char *b)
{
	int c = bv_version_compare(a, b);
	return (c > 0) - (c < 0);
}

static void test_version__compare_pairs(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		int want;
	} cases[] = {
		{"2024_01", "2024_11", -1},
		{"2024_11", "2025", -1},
		{"2024_01", "2025", -1},
		{"36.0", "138.1", -1},
		{"7.525.0", "7.5.0", 1},
		{"2.14.0", "2.15.0", -1},
		{"0.7.18", "0.7.9", 1},
		{"1.0", "1.0-rc1", 1},
		{"1.0-rc1", "1.0-rc2", -1},
		{"1.0.0", "1.0.0-rc.1", 1},
		{"1.0.0-", "1.0.0", -1},
		{"2024_01", "2024_01", 0},
		{"01", "1", -1}, /* equal numbers, tie broken by strcmp */
		{"1", "01", 1},
		{"", "0", -1},
		{"12345678901234567890123", "9", 1}, /* digit runs of any length */
		{"v2", "v10", -1},
		{"1.2.3", "1.2.3.1", -1},
		{"1.2.3+b2", "1.2.3+b10", 1}, /* semver ties fall to strcmp, not natural order */
		{"2.31.1", "2.31.1", 0},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		if (cmp_sign(cases[i].a, cases[i].b) != cases[i].want)
			fail_msg("compare(%s, %s) != %d", cases[i].a, cases[i].b, cases[i].want);
		if (cmp_sign(cases[i].b, cases[i].a) != -cases[i].want)
			fail_msg("compare(%s, %s) not antisymmetric", cases[i].b, cases[i].a);
	}
}

static int qsort_versions(const void *a, const void *b)
{
	return bv_version_compare(*(const char *const *)a, *(const char *const *)b);
}

/* Sorting a shuffled list must give one order, and the order must be transitive. */
static void test_version__compare_total_order(void **state)
{
	(void)state;
	/* "2.0.0-x_y" is not semver; the natural rule still puts its '-' suffix first.  '.' sorts
	 * before '_', so "2024.12" precedes "2024_01". */
	static const char *const sorted[] = {
		"0.9",     "1.0.0-rc.1", "1.0.0",     "1.0.0+build", "1.0.1", "1.2",
		"1.10",    "2",          "2.0.0-x_y", "2.0.0",       "36.0",  "138.1",
		"2024.12", "2024_01",    "2024_11",   "2025",        "v1",    "v1.1",
	};
	const char *list[BV_ARRAY_SIZE(sorted)];
	size_t n = BV_ARRAY_SIZE(sorted);

	/* A deterministic shuffle: reverse, then rotate. */
	for (size_t i = 0; i < n; i++)
		list[i] = sorted[(n - 1 - i + 5) % n];
	qsort(list, n, sizeof(*list), qsort_versions);
	for (size_t i = 0; i + 1 < n; i++)
		assert_true(bv_version_compare(list[i], list[i + 1]) < 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			for (size_t k = 0; k < n; k++)
				if (bv_version_compare(list[i], list[j]) < 0 &&
				    bv_version_compare(list[j], list[k]) < 0)
					assert_true(bv_version_compare(list[i], list[k]) < 0);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list[i], sorted[i]);
}

struct req_case {
	const char *req;
	const char *version;
	bool want;
};

static const struct req_case req_cases[] = {
	/* any */
	{"", "1.2.3", true},
	{"*", "0.0.1", true},
	{"latest", "2024_01", true},
	{"LaTeSt", "1.0.0-rc.1", true},
	{"  *  ", "36.0", true},
	/* bare means caret */
	{"1.2", "1.2.0", true},
	{"1.2", "1.9.7", true},
	{"1.2", "2.0.0", false},
	{"1.2", "1.1.9", false},
	{"2.5", "2.5.1", true},
	/* caret */
	{"^1.2.3", "1.2.3", true},
	{"^1.2.3", "1.2.2", false},
	{"^1.2.3", "1.99.0", true},
	{"^1.2.3", "2.0.0", false},
	{"^0.2.3", "0.2.3", true},
	{"^0.2.3", "0.2.9", true},
	{"^0.2.3", "0.3.0", false},
	{"^0.2.3", "0.2.2", false},
	{"^0.0.3", "0.0.3", true},
	{"^0.0.3", "0.0.4", false},
	{"^0.0", "0.0.7", true},
	{"^0.0", "0.1.0", false},
	{"^0", "0.9.9", true},
	{"^0", "1.0.0", false},
	{"^1", "1.99.99", true},
	{"^ 1.2", "1.3.0", true},
	/* tilde */
	{"~1.2.3", "1.2.3", true},
	{"~1.2.3", "1.2.9", true},
	{"~1.2.3", "1.3.0", false},
	{"~1.2.3", "1.2.2", false},
	{"~1.2", "1.2.0", true},
	{"~1.2", "1.3.0", false},
	{"~1", "1.9.0", true},
	{"~1", "2.0.0", false},
	{"~0.0.1", "0.0.5", true},
	/* exact, partial exact */
	{"=1.2.3", "1.2.3", true},
	{"=1.2.3", "1.2.4", false},
	{"=1.2", "1.2.9", true},
	{"=1.2", "1.3.0", false},
	{"=1", "1.5.0", true},
	{"= 1.21.0", "1.21.0", true},
	/* comparison operators */
	{">1.2.3", "1.2.3", false},
	{">1.2.3", "1.2.4", true},
	{">1.2", "1.2.9", false},
	{">1.2", "1.3.0", true},
	{">=1.2", "1.2.0", true},
	{">=1.2", "1.1.99", false},
	{"<1.2", "1.1.99", true},
	{"<1.2", "1.2.0", false},
	{"<=1.2", "1.2.99", true},
	{"<=1.2", "1.3.0", false},
	{"<2", "1.99.0", true},
	{"<2", "2.0.0", false},
	{"> 0.7", "0.8.0", true},
	/* comma lists */
	{">=1, <2", "1.5.0", true},
	{">=1,<2", "2.0.0", false},
	{">=1 , <2", "0.9.0", false},
	{">=2.14, <2.15", "2.14.0", true},
	{">=2.14, <2.15", "2.15.0", false},
	{">1.0.0, <=1.0.5, ~1.0.3", "1.0.4", true},
	{">1.0.0, <=1.0.5, ~1.0.3", "1.0.2", false},
	/* wildcards */
	{"1.*", "1.0.0", true},
	{"1.*", "1.9.9", true},
	{"1.*", "2.0.0", false},
	{"1.2.*", "1.2.5", true},
	{"1.2.*", "1.3.0", false},
	{"1.x", "1.4.0", true},
	{"1.2.X", "1.2.0", true},
	{"0.*", "0.9.0", true},
	{">=1.*", "3.0.0", true},
	{"1.*.*", "1.7.2", true},
	/* pre-releases */
	{">=1.0", "2.0.0-rc.1", false},
	{"*", "2.0.0-rc.1", true},
	{">=2.0.0-rc.1", "2.0.0-rc.1", true},
	{">=2.0.0-rc.1", "2.0.0-rc.2", true},
	{">=2.0.0-rc.1", "2.0.0", true},
	{">=2.0.0-rc.1", "2.0.1-rc.1", false},
	{">=2.0.0-rc.1", "2.0.0-beta", false},
	{"^1.2.3-alpha.1", "1.2.3-alpha.2", true},
	{"^1.2.3-alpha.1", "1.2.4-alpha.2", false},
	{"^1.2.3-alpha.1", "1.2.4", true},
	{"=1.2.3-rc.1", "1.2.3-rc.1", true},
	{"=1.2.3-rc.1", "1.2.3", false},
	{"<1.2.3", "1.2.3-rc.1", false},
	{"~1.2.3-beta", "1.2.3-beta.2", true},
	{"~1.2.3-beta", "1.2.3-alpha", false},
	{"1.2.3+build5", "1.2.3", true},
	/* versions that are not semver */
	{"36", "36.0", true},
	{">=36", "138.1", true},
	{"^2024", "2024", true},
	{"<37", "36.0.1.2", false},
	{"=2024_01", "2024_01", true},
	{"=2024_01", "2024_11", false},
	{">=2024", "2024_01", false},
	{"=2024.01", "2024.01", true},
	{"=2024.01", "2024.1", false},
	{"=2024.1", "2024.01", true},
	{"^1", "v1.2.3", false},
	{"=v1.2.3", "v1.2.3", true},
};

static void test_version__requirements_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(req_cases); i++) {
		struct bv_version_req *req = NULL;
		struct bv_error *err = NULL;
		const struct req_case *c = &req_cases[i];

		if (bv_version_req_parse(&req, c->req, &err) < 0) {
			char *msg = bv_error_format(err);
			fail_msg("'%s' did not parse: %s", c->req, msg);
		}
		if (bv_version_req_matches(req, c->version) != c->want)
			fail_msg("'%s' %s '%s'", c->req,
				 c->want ? "should match" : "should not match", c->version);
		bv_version_req_free(req);
	}
	assert_true(BV_ARRAY_SIZE(req_cases) >= 40);
}

static void test_version__requirements_invalid(void **state)
{
	(void)state;
	static const struct {
		const char *req, *message;
	} cases[] = {
		{">>1", "invalid version requirement '>>1': unexpected '>'"},
		{"1.2.3.4", "invalid version requirement '1.2.3.4': unexpected '.'"},
		{"01.2", "invalid version requirement '01.2': leading zero in '01'"},
		{">=1.02", "invalid version requirement '>=1.02': leading zero in '02'"},
		{"1.2-rc.1", "invalid version requirement '1.2-rc.1': '-' needs a full "
			     "major.minor.patch version"},
		{"1.2.3-", "invalid version requirement '1.2.3-': invalid pre-release ''"},
		{"1.2.3-01", "invalid version requirement '1.2.3-01': invalid pre-release '01'"},
		{">=1,", "invalid version requirement '>=1,': unexpected end of input"},
		{",1", "invalid version requirement ',1': unexpected ','"},
		{">=1,,<2", "invalid version requirement '>=1,,<2': unexpected ','"},
		{">=1 <2", "invalid version requirement '>=1 <2': unexpected '<', expected ','"},
		{">=", "invalid version requirement '>=': unexpected end of input"},
		{"*, >=1", "invalid version requirement '*, >=1': wildcard '*' must be the only "
			   "comparator"},
		{"1.*.3", "invalid version requirement '1.*.3': unexpected '3' after a wildcard"},
		{"=*", "invalid version requirement '=*': wildcard '*' must be the only "
		       "comparator"},
		{"2024_01", "invalid version requirement '2024_01': unexpected '_' (write "
			    "'=2024_01' for a version that is not semver)"},
		{"abc", "invalid version requirement 'abc': unexpected 'a' (write '=abc' for a "
			"version that is not semver)"},
		{"99999999999999999999", "invalid version requirement '99999999999999999999': "
					 "number too large '99999999999999999999'"},
		{"=", "invalid version requirement '=': unexpected end of input"},
		{"!1", "invalid version requirement '!1': unexpected '!'"},
		{"=1/2", "invalid version requirement '=1/2': unexpected '/'"},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_version_req *req = NULL;
		struct bv_error *err = NULL;
		char *msg;

		if (bv_version_req_parse(&req, cases[i].req, &err) != BV_EINVALID)
			fail_msg("'%s' parsed", cases[i].req);
		assert_null(req);
		msg = bv_error_format(err);
		assert_string_equal(msg, cases[i].message);
		free(msg);
		bv_error_free(err);
	}
}

static void test_version__requirement_text(void **state)
{
	(void)state;
	static const struct {
		const char *in, *text;
		bool any;
	} cases[] = {
		{"", "", true},        {"  latest ", "", true},
		{"*", "", true},       {" >=1, <2 ", ">=1, <2", false},
		{"2.5", "2.5", false}, {"=2024_01", "=2024_01", false},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_version_req *req = NULL;
		struct bv_error *err = NULL;
		assert_ok(bv_version_req_parse(&req, cases[i].in, &err), &err);
		assert_string_equal(bv_version_req_text(req), cases[i].text);
		assert_int_equal(bv_version_req_is_any(req), cases[i].any);
		bv_version_req_free(req);
	}
	bv_version_req_free(NULL);
}

static int best_of(const char *text, const char *const *versions, size_t n)
{
	struct bv_version_req *req = NULL;
	struct bv_error *err = NULL;
	int best;

	assert_ok(bv_version_req_parse(&req, text, &err), &err);
	best = bv_version_req_best(req, versions, n);
	bv_version_req_free(req);
	return best;
}

static void test_version__best(void **state)
{
	(void)state;
	static const char *const blast[] = {"2.14.0", "2.15.0", "2.9.0", "3.0.0-rc.1",
					    "2.15.1-beta"};
	static const char *const calendar[] = {"2024_01", "2025", "2024_11"};
	static const char *const mixed[] = {"36.0", "138.1", "99"};

	assert_int_equal(best_of("", blast, BV_ARRAY_SIZE(blast)), 3); /* any takes rc too */
	assert_int_equal(best_of(">=2", blast, BV_ARRAY_SIZE(blast)), 1);
	assert_int_equal(best_of("2.14", blast, BV_ARRAY_SIZE(blast)), 1);
	assert_int_equal(best_of("~2.14", blast, BV_ARRAY_SIZE(blast)), 0);
	assert_int_equal(best_of("<2.14", blast, BV_ARRAY_SIZE(blast)), 2);
	assert_int_equal(best_of(">=3.0.0-rc.1", blast, BV_ARRAY_SIZE(blast)), 3);
	assert_int_equal(best_of("^4", blast, BV_ARRAY_SIZE(blast)), -1);
	assert_int_equal(best_of("", blast, 0), -1);
	assert_int_equal(best_of("latest", calendar, BV_ARRAY_SIZE(calendar)), 1);
	assert_int_equal(best_of("=2024_11", calendar, BV_ARRAY_SIZE(calendar)), 2);
	assert_int_equal(best_of("^2025", calendar, BV_ARRAY_SIZE(calendar)), 1);
	assert_int_equal(best_of("^2024", calendar, BV_ARRAY_SIZE(calendar)), -1); /* not semver */
	assert_int_equal(best_of("*", mixed, BV_ARRAY_SIZE(mixed)), 1);
	assert_int_equal(best_of("<100", mixed, BV_ARRAY_SIZE(mixed)), 2);
}

static void test_version__tool_spec(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *id, *req;
	} good[] = {
		{"samtools", "samtools", ""},
		{"samtools@latest", "samtools", ""},
		{"samtools@LATEST", "samtools", ""},
		{"samtools@*", "samtools", ""},
		{"samtools@2.5", "samtools", "2.5"},
		{"blast@>=1,<2", "blast", ">=1,<2"},
		{"blast@ >=2.14 ", "blast", ">=2.14"},
		{"bwa-mem2@2.2.1", "bwa-mem2", "2.2.1"},
		{"gtdb_tk", "gtdb_tk", ""},
		{"r.base", "r.base", ""},
		{"4peaks@=2024_01", "4peaks", "=2024_01"},
	};
	static const struct {
		const char *spec, *message;
	} bad[] = {
		{"", "invalid tool name ''"},
		{"@1.2", "invalid tool name ''"},
		{"SamTools", "invalid tool name 'SamTools'"},
		{"-samtools", "invalid tool name '-samtools'"},
		{"sam tools", "invalid tool name 'sam tools'"},
		{"sam/tools@1", "invalid tool name 'sam/tools'"},
		{"a1234567890123456789012345678901234567890123456789012345678901234@1",
		 "invalid tool name "
		 "'a1234567890123456789012345678901234567890123456789012345678901234'"},
		{"samtools@", "missing version requirement after '@' in 'samtools@'"},
		{"samtools@>>1", "invalid version requirement '>>1': unexpected '>'"},
		{"samtools@1@2", "invalid version requirement '1@2': unexpected '@'"},
	};

	for (size_t i = 0; i < BV_ARRAY_SIZE(good); i++) {
		char *id = NULL, *req = NULL;
		struct bv_error *err = NULL;
		assert_ok(bv_tool_spec_parse(&id, &req, good[i].spec, &err), &err);
		assert_string_equal(id, good[i].id);
		assert_string_equal(req, good[i].req);
		free(id);
		free(req);
	}
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		char *id = NULL, *req = NULL;
		struct bv_error *err = NULL;
		char *msg;
		if (bv_tool_spec_parse(&id, &req, bad[i].spec, &err) != BV_EINVALID)
			fail_msg("'%s' parsed", bad[i].spec);
		assert_null(id);
		assert_null(req);
		msg = bv_error_format(err);
		assert_string_equal(msg, bad[i].message);
		free(msg);
		bv_error_free(err);
	}
	/* 64 characters is the longest id allowed. */
	{
		char spec[65];
		char *id = NULL, *req = NULL;
		struct bv_error *err = NULL;
		memset(spec, 'a', 64);
		spec[64] = '\0';
		assert_ok(bv_tool_spec_parse(&id, &req, spec, &err), &err);
		assert_int_equal(strlen(id), 64);
		free(id);
		free(req);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version__semver_parse_valid),
		cmocka_unit_test(test_version__semver_parse_invalid),
		cmocka_unit_test(test_version__semver_precedence),
		cmocka_unit_test(test_version__semver_build_ignored),
		cmocka_unit_test(test_version__compare_pairs),
		cmocka_unit_test(test_version__compare_total_order),
		cmocka_unit_test(test_version__requirements_match),
		cmocka_unit_test(test_version__requirements_invalid),
		cmocka_unit_test(test_version__requirement_text),
		cmocka_unit_test(test_version__best),
		cmocka_unit_test(test_version__tool_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
