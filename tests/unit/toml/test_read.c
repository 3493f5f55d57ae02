#include <math.h>
#include <stdio.h>

#include "helpers.h"

static void test_toml_read__scalars_and_lookup(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = parse_ok("s = \"a\\tb\\u00e9\"\n"
					   "i = -0\n"
					   "big = 9_223_372_036_854_775_807\n"
					   "small = -9223372036854775808\n"
					   "h = 0xDEAD_beef\n"
					   "f = 6.02e23\n"
					   "b = true\n"
					   "n = -nan\n");
	const struct bv_toml_table *root = bv_toml_doc_root(doc);
	const struct bv_toml_value *v = bv_toml_table_get(root, "s");
	assert_non_null(v);
	assert_int_equal(v->type, BV_TOML_STRING);
	assert_string_equal(v->u.string.ptr, "a\tb\xc3\xa9");
	assert_int_equal(bv_toml_table_get(root, "big")->u.integer, INT64_MAX);
	assert_true(bv_toml_table_get(root, "small")->u.integer == INT64_MIN);
	assert_int_equal(bv_toml_table_get(root, "h")->u.integer, 0xDEADBEEF);
	assert_true(bv_toml_table_get(root, "f")->u.floating == 6.02e23);
	assert_true(bv_toml_table_get(root, "b")->u.boolean);
	assert_true(isnan(bv_toml_table_get(root, "n")->u.floating));
	assert_null(bv_toml_table_get(root, "missing"));
	bv_toml_doc_free(doc);
}

/* A float with '-' where a date has its first dash is still a float (a fuzzer finding:
 * 2.6e-33, written back from 26e-34, was read as a bad datetime). */
static void test_toml_read__floats_that_look_like_dates(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = parse_ok("a = 2.6e-33\n"
					   "b = 1.5e-7\n"
					   "c = -1.2e-3\n"
					   "d = 1_0.5e-1\n");
	const struct bv_toml_table *root = bv_toml_doc_root(doc);
	assert_int_equal(bv_toml_table_get(root, "a")->type, BV_TOML_FLOAT);
	assert_true(bv_toml_table_get(root, "a")->u.floating == 2.6e-33);
	assert_true(bv_toml_table_get(root, "b")->u.floating == 1.5e-7);
	assert_true(bv_toml_table_get(root, "c")->u.floating == -1.2e-3);
	assert_true(bv_toml_table_get(root, "d")->u.floating == 1.05);
	bv_toml_doc_free(doc);
}

static void test_toml_read__datetime_kinds(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = parse_ok("odt = 1979-05-27 00:32:00.999999999-07:00\n"
					   "ldt = 1979-05-27T07:32:00\n"
					   "ld = 2024-02-29\n"
					   "lt = 07:32:00.5\n");
	const struct bv_toml_table *root = bv_toml_doc_root(doc);
	const struct bv_toml_value *odt = bv_toml_table_get(root, "odt");
	assert_int_equal(odt->type, BV_TOML_OFFSET_DATETIME);
	assert_int_equal(odt->u.datetime.offset_minutes, -420);
	assert_int_equal(odt->u.datetime.nanosecond, 999999999);
	assert_int_equal(bv_toml_table_get(root, "ldt")->type, BV_TOML_LOCAL_DATETIME);
	assert_int_equal(bv_toml_table_get(root, "ld")->type, BV_TOML_LOCAL_DATE);
	assert_int_equal(bv_toml_table_get(root, "ld")->u.datetime.day, 29);
	assert_int_equal(bv_toml_table_get(root, "lt")->type, BV_TOML_LOCAL_TIME);
	assert_int_equal(bv_toml_table_get(root, "lt")->u.datetime.nanosecond, 500000000);
	bv_toml_doc_free(doc);
}

static void test_toml_read__tables_keep_order_and_positions(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = parse_ok("[tool]\nid = \"bwa\"\n  version = \"0.7.17\"\n"
					   "[[tool.binaries]]\nname = \"bwa\"\n"
					   "[[tool.binaries]]\nname = \"bwa-mem2\"\n");
	const struct bv_toml_value *tool = bv_toml_table_get(bv_toml_doc_root(doc), "tool");
	const struct bv_toml_kv *version;
	const struct bv_toml_value *bins;
	assert_int_equal(tool->type, BV_TOML_TABLE);
	assert_string_equal(tool->u.table->items[0].key, "id");
	assert_string_equal(tool->u.table->items[1].key, "version");
	version = bv_toml_table_find(tool->u.table, "version", 7);
	assert_int_equal(version->pos.line, 3);
	assert_int_equal(version->pos.column, 3);
	bins = bv_toml_table_get(tool->u.table, "binaries");
	assert_int_equal(bins->type, BV_TOML_ARRAY);
	assert_int_equal(bins->u.array->n, 2);
	assert_string_equal(
		bv_toml_table_get(bins->u.array->items[1].u.table, "name")->u.string.ptr,
		"bwa-mem2");
	bv_toml_doc_free(doc);
}

static void test_toml_read__errors_carry_line_and_column(void **state)
{
	(void)state;
	assert_parse_error("a = 1\nb = 2\na = 3\n", "t.toml:3:1: duplicate key 'a'");
	assert_parse_error("[x]\n[x]\n", "t.toml:2:1: table 'x' is defined more than once");
	assert_parse_error("x = 9223372036854775808\n", "t.toml:1:5: integer is out of range");
	assert_parse_error("x = -9223372036854775809\n", "integer is out of range");
	/* columns count characters, not bytes */
	assert_parse_error("k = \"\xc3\xa9\xc3\xa9\" x\n",
			   "t.toml:1:10: expected the end of the line");
	assert_parse_error("a = {b = 1}\na.c = 2\n", "cannot add keys to inline table 'a'");
	assert_parse_error("[a]\nb.c = 1\n[a.b]\n", "table 'b' is defined more than once");
	assert_parse_error("a = [1]\n[[a]]\n", "cannot define array of tables 'a'");
	assert_parse_error("d = 2023-02-29\n", "invalid datetime");
	assert_parse_error("x = 01\n", "leading zeros");
	assert_parse_error("x = \"\\e\"\n", "invalid escape sequence '\\e'");
	assert_parse_error("x = 1_\n", "invalid integer");
	assert_parse_error("x = {a = 1,}\n", "trailing comma in inline table");
}

static void test_toml_read__rejects_bad_bytes(void **state)
{
	(void)state;
	char *msg = parse_fail("a = \"\xff\"\n", 8);
	assert_non_null(strstr(msg, "t.toml:1:6: invalid UTF-8 byte 0xff"));
	free(msg);
	/* overlong encoding of '/' and an encoded surrogate */
	free(parse_fail("a = \"\xc0\xaf\"\n", 9));
	free(parse_fail("a = \"\xed\xa0\x80\"\n", 10));
	/* NUL inside a string and DEL inside a comment */
	msg = parse_fail("a = \"x\0y\"\n", 10);
	assert_non_null(strstr(msg, "control character U+0000 in string"));
	free(msg);
	msg = parse_fail("a = 1 # \x7f\n", 10);
	assert_non_null(strstr(msg, "control character U+007F in comment"));
	free(msg);
	msg = parse_fail("a = 1\rb = 2\n", 12);
	assert_non_null(strstr(msg, "carriage return"));
	free(msg);
}

static void test_toml_read__nesting_is_bounded(void **state)
{
	(void)state;
	char text[1024];
	size_t n = 0;
	n += (size_t)snprintf(text, sizeof(text), "a = ");
	for (int i = 0; i < 300; i++)
		text[n++] = '[';
	text[n] = '\0';
	assert_parse_error(text, "nested too deeply");
}

static void test_toml_read__large_table_uses_index(void **state)
{
	(void)state;
	char line[64];
	char *text = calloc(5000, 32);
	size_t n = 0;
	struct bv_toml_doc *doc;
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(line, sizeof(line), "key%d = %d\n", i, i);
		memcpy(text + n, line, (size_t)len);
		n += (size_t)len;
	}
	text[n] = '\0';
	doc = parse_ok(text);
	assert_int_equal(bv_toml_table_get(bv_toml_doc_root(doc), "key4321")->u.integer, 4321);
	assert_null(bv_toml_table_get(bv_toml_doc_root(doc), "key5000"));
	bv_toml_doc_free(doc);
	/* a duplicate far into a large table is still found */
	memcpy(text + n, "key17 = 1\n", 11);
	free(parse_fail(text, n + 10));
	free(text);
}

/*
 * Short keys and strings repeated in a document share one copy (keep_string): strings of the
 * same length and end bytes fall in one slot, and each must still read back as written.
 */
static void test_toml_read__repeated_strings_read_back(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = parse_ok("[[t]]\nid = \"tool0000\"\nv = \"^1.0\"\n"
					   "[[t]]\nid = \"tool1110\"\nv = \"^1.0\"\n"
					   "[[t]]\nid = \"tool0000\"\nv = \"^2.0\"\n"
					   "[[t]]\nid = \"\"\nv = \"^1.0\"\n");
	static const char *const ids[] = {"tool0000", "tool1110", "tool0000", ""};
	static const char *const reqs[] = {"^1.0", "^1.0", "^2.0", "^1.0"};
	const struct bv_toml_value *t = bv_toml_table_get(bv_toml_doc_root(doc), "t");
	assert_non_null(t);
	assert_int_equal(t->u.array->n, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct bv_toml_table *e = t->u.array->items[i].u.table;
		assert_string_equal(bv_toml_table_get(e, "id")->u.string.ptr, ids[i]);
		assert_string_equal(bv_toml_table_get(e, "v")->u.string.ptr, reqs[i]);
		assert_int_equal(e->n, 2);
		assert_string_equal(e->items[0].key, "id");
		assert_string_equal(e->items[1].key, "v");
	}
	bv_toml_doc_free(doc);
}

static void test_toml_read__missing_file(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = NULL;
	struct bv_error *err = NULL;
	assert_int_equal(bv_toml_parse_file(&doc, "/nonexistent/bv.toml", &err), BV_ENOTFOUND);
	assert_null(doc);
	bv_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toml_read__scalars_and_lookup),
		cmocka_unit_test(test_toml_read__floats_that_look_like_dates),
		cmocka_unit_test(test_toml_read__datetime_kinds),
		cmocka_unit_test(test_toml_read__tables_keep_order_and_positions),
		cmocka_unit_test(test_toml_read__errors_carry_line_and_column),
		cmocka_unit_test(test_toml_read__rejects_bad_bytes),
		cmocka_unit_test(test_toml_read__nesting_is_bounded),
		cmocka_unit_test(test_toml_read__large_table_uses_index),
		cmocka_unit_test(test_toml_read__repeated_strings_read_back),
		cmocka_unit_test(test_toml_read__missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
