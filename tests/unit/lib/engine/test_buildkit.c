/*
 * BuildKit's progress (moby.buildkit.trace aux messages) as text lines: a real message from
 * dockerd 20.10, one made by hand with every field bv reads, and damaged input.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/engine/buildkit.h"
#include "test.h"
#include "util/strv.h"

/* From dockerd 20.10's stream: "[two 1/1] COPY b /b-yy", started and completed. */
static const char real[] =
	"CsUBCkdzaGEyNTY6ZTc4NWQzMmM4NWUwMWVlMGU0YmU4ZTZhZjkwNTIwZGE1NTU3NDQ5ODAwN2E0YjAzZjQyZTgy"
	"NWUyOWQ1YTI2MhJHc2hhMjU2OjU2MDY3NDNjZTBhNGQ0ODhmYmQ2N2YxZWYwOTRiMjAwMThlMWVjODZkOTMyNjc5"
	"ZDMwMTAyMGU3MGE1YTUzNTEaFlt0d28gMS8xXSBDT1BZIGIgL2IteXkqDAjniNfYBhDQrp/NAzILCOiI19gGENHY"
	"zCU=";

/*
 * Made with a protobuf encoder: a cached vertex, a failed one, one only started, a log of two
 * lines (a tab and an escape sequence in it) and a warning (field 4, not read).
 */
static const char made[] =
	"CiUKCHNoYTI1NjphGg9bMS8yXSBGUk9NIGJhc2UgATIGCIDiz6oGCnMKCHNoYTI1NjpiGg9bMi8yXSBSVU4gZmFs"
	"c2UqBgiA4s+qBjIGCIDiz6oGOkZwcm9jZXNzICIvYmluL3NoIC1jIGZhbHNlIiBkaWQgbm90IGNvbXBsZXRlIHN1"
	"Y2Nlc3NmdWxseTogZXhpdCBjb2RlOiAxCiIKCHNoYTI1NjpjGg5bMi8yXSBSVU4gbWFrZSoGCIDiz6oGGiwKCHNo"
	"YTI1NjpiEgYIgOLPqgYYAiIWbGluZSBvbmUKbGluZQl0d28bWzBtCiIDCgF4";

static void test_buildkit__real_message(void **state)
{
	struct bv_strv lines = BV_STRV_INIT;
	(void)state;
	assert_int_equal(bv_buildkit_trace_lines(&lines, real), 0);
	assert_int_equal(lines.n, 1);
	assert_string_equal(lines.v[0], "[two 1/1] COPY b /b-yy");
	bv_strv_clear(&lines);
}

static void test_buildkit__every_field(void **state)
{
	struct bv_strv lines = BV_STRV_INIT;
	(void)state;
	assert_int_equal(bv_buildkit_trace_lines(&lines, made), 0);
	assert_int_equal(lines.n, 4);
	assert_string_equal(lines.v[0], "[1/2] FROM base CACHED");
	assert_string_equal(lines.v[1], "[2/2] RUN false ERROR: process \"/bin/sh -c false\" did "
					"not complete successfully: exit code: 1");
	assert_string_equal(lines.v[2], "line one");
	assert_string_equal(lines.v[3], "line\ttwo?[0m"); /* control characters are not passed on */
	bv_strv_clear(&lines);
}

static void test_buildkit__damaged(void **state)
{
	struct bv_strv lines = BV_STRV_INIT;
	char *cut = strdup(made);
	size_t len = 0;
	uint8_t *raw;
	(void)state;
	assert_int_equal(bv_buildkit_trace_lines(&lines, "not base64!"), -EINVAL);
	assert_int_equal(bv_buildkit_trace_lines(&lines, NULL), -EINVAL);
	assert_int_equal(lines.n, 0);
	/* cut inside the second vertex: the first is kept, the rest is refused */
	cut[60] = '\0';
	assert_int_equal(bv_buildkit_trace_lines(&lines, cut), -EINVAL);
	assert_int_equal(lines.n, 1);
	assert_string_equal(lines.v[0], "[1/2] FROM base CACHED");
	free(cut);
	bv_strv_clear(&lines);
	/* a length past the end */
	assert_int_equal(bv_buildkit_trace_lines(&lines, "Cv8B"), -EINVAL);
	raw = bv_buildkit_base64("aGk=", &len);
	assert_int_equal(len, 2);
	assert_memory_equal(raw, "hi", 2);
	free(raw);
	bv_strv_clear(&lines);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buildkit__real_message),
		cmocka_unit_test(test_buildkit__every_field),
		cmocka_unit_test(test_buildkit__damaged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
