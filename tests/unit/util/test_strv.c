#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/strv.h"

static void test_strv__push_pop(void **state)
{
	struct bv_strv v = BV_STRV_INIT;
	char s[] = "copied";
	const char *const more[] = {"c", "d", NULL};
	(void)state;
	bv_strv_push(&v, s);
	s[0] = 'X'; /* push copies */
	bv_strv_push_take(&v, strdup("taken"));
	bv_strv_pushf(&v, "--threads=%d", 4);
	bv_strv_pushv(&v, more);
	assert_int_equal(v.n, 5);
	assert_string_equal(v.v[0], "copied");
	assert_string_equal(v.v[1], "taken");
	assert_string_equal(v.v[2], "--threads=4");
	assert_string_equal(v.v[4], "d");
	assert_null(v.v[5]);
	bv_strv_pop(&v);
	assert_int_equal(v.n, 4);
	assert_null(v.v[4]);
	for (int i = 0; i < 100; i++)
		bv_strv_pushf(&v, "%d", i);
	assert_int_equal(v.n, 104);
	assert_string_equal(v.v[103], "99");
	assert_null(v.v[104]);
	bv_strv_clear(&v);
	assert_int_equal(v.n, 0);
	assert_null(v.v[0]);
}

static void test_strv__sort_contains(void **state)
{
	struct bv_strv v = BV_STRV_INIT;
	size_t n = 0;
	(void)state;
	bv_strv_push(&v, "samtools");
	bv_strv_push(&v, "bcftools");
	bv_strv_push(&v, "htslib");
	assert_true(bv_strv_contains(&v, "htslib"));
	assert_false(bv_strv_contains(&v, "hts"));
	bv_strv_sort(&v);
	assert_string_equal(v.v[0], "bcftools");
	assert_string_equal(v.v[1], "htslib");
	assert_string_equal(v.v[2], "samtools");
	bv_strv_foreach (s, &v)
		n++;
	assert_int_equal(n, 3);
	bv_strv_clear(&v);
}

static void test_strv__detach(void **state)
{
	struct bv_strv v = BV_STRV_INIT;
	char **a;
	(void)state;
	bv_strv_push(&v, "a");
	bv_strv_push(&v, "b");
	a = bv_strv_detach(&v);
	assert_int_equal(v.n, 0);
	assert_null(v.v[0]);
	assert_string_equal(a[0], "a");
	assert_string_equal(a[1], "b");
	assert_null(a[2]);
	bv_strv_free(a);
	a = bv_strv_detach(&v); /* an empty vector still gives an owned array */
	assert_non_null(a);
	assert_null(a[0]);
	bv_strv_free(a);
	bv_strv_free(NULL);
	bv_strv_pop(&v); /* no-op when empty */
	assert_false(bv_strv_contains(&v, ""));
	bv_strv_clear(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strv__push_pop),
		cmocka_unit_test(test_strv__sort_contains),
		cmocka_unit_test(test_strv__detach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
