#include <dirent.h>
#include <stdio.h>

#include "helpers.h"
#include "util/buf.h"

static const char *sample_dir;

static char *write_doc(const struct bv_toml_doc *doc)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_toml_write(&b, bv_toml_doc_root(doc));
	return bv_buf_detach(&b, NULL);
}

/* Writes `doc`, reads it back, and checks equality and byte-stable rewriting. */
static void assert_round_trip(const struct bv_toml_doc *doc)
{
	char *first = write_doc(doc), *second;
	struct bv_toml_doc *back = parse_ok(first);
	assert_true(bv_toml_table_equal(bv_toml_doc_root(doc), bv_toml_doc_root(back)));
	second = write_doc(back);
	assert_string_equal(first, second);
	free(first);
	free(second);
	bv_toml_doc_free(back);
}

static void test_toml_write__layout_is_fixed(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = bv_toml_doc_new();
	struct bv_toml_table *root = bv_toml_doc_root_mut(doc);
	struct bv_toml_array *tools;
	struct bv_toml_table *t;
	char *text;

	tools = bv_toml_table_add_array(doc, root, "tools");
	t = bv_toml_array_push_table(doc, tools);
	bv_toml_table_add_string(doc, t, "version", "1.21");
	bv_toml_table_add_string(doc, t, "id", "samtools");
	bv_toml_table_add_integer(doc, root, "version", 1);
	bv_toml_table_add_string(doc, bv_toml_table_add_table(doc, root, "binary_index"), "bwa mem",
				 "bwa");
	assert_null(bv_toml_table_add_integer(doc, root, "version", 2));

	text = write_doc(doc);
	assert_string_equal(text, "version = 1\n"
				  "\n"
				  "[binary_index]\n"
				  "\"bwa mem\" = \"bwa\"\n"
				  "\n"
				  "[[tools]]\n"
				  "id = \"samtools\"\n"
				  "version = \"1.21\"\n");
	free(text);
	assert_round_trip(doc);
	bv_toml_doc_free(doc);
}

static void test_toml_write__insertion_order_does_not_matter(void **state)
{
	(void)state;
	struct bv_toml_doc *a = parse_ok("b = 1\na = 2\n[z]\nx = 1\n[y]\n");
	struct bv_toml_doc *b = parse_ok("[y]\n[z]\nx = 1\n[ROOT_IGNORED]\n");
	struct bv_toml_doc *c = parse_ok("a = 2\nb = 1\ny = {}\nz.x = 1\n");
	char *ta = write_doc(a), *tc = write_doc(c);
	assert_string_equal(ta, tc);
	assert_string_equal(ta, "a = 2\nb = 1\n\n[y]\n\n[z]\nx = 1\n");
	free(ta);
	free(tc);
	bv_toml_doc_free(a);
	bv_toml_doc_free(b);
	bv_toml_doc_free(c);
}

static void test_toml_write__tricky_values_round_trip(void **state)
{
	(void)state;
	struct bv_toml_doc *doc = parse_ok(
		"s = \"quote \\\" backslash \\\\ tab \\t nul \\u0000 del \\u007f \xe2\x82\xac\"\n"
		"'key with spaces' = 1\n"
		"\"\" = \"empty key\"\n"
		"f = [0.1, -0.0, 1e300, inf, -inf, nan, 3.0]\n"
		"mixed = [1, \"two\", {three = 3}, [4]]\n"
		"dt = [1979-05-27T07:32:00.5-07:00, 1979-05-27T07:32:00Z, 1979-05-27, 07:32:00]\n"
		"ml = '''\nline1\nline2'''\n"
		"[a.b.c]\n[[a.arr]]\n[[a.arr]]\nx.y = 1\n[empty]\n");
	assert_round_trip(doc);
	bv_toml_doc_free(doc);
}

static void test_toml_write__registry_manifests_round_trip(void **state)
{
	(void)state;
	struct bv_buf path = BV_BUF_INIT;
	DIR *tools;
	struct dirent *tool;
	int files = 0;
	bv_buf_printf(&path, "%s/tools", sample_dir);
	tools = opendir(path.buf);
	if (!tools) {
		bv_buf_release(&path);
		skip(); /* the sample registry lives beside the checkout */
	}
	while ((tool = readdir(tools))) {
		DIR *versions;
		struct dirent *ver;
		size_t base = path.len;
		if (tool->d_name[0] == '.')
			continue;
		bv_buf_printf(&path, "/%s", tool->d_name);
		versions = opendir(path.buf);
		assert_non_null(versions);
		while ((ver = readdir(versions))) {
			struct bv_toml_doc *doc = NULL;
			struct bv_error *err = NULL;
			size_t dir_len = path.len;
			if (!strstr(ver->d_name, ".toml"))
				continue;
			bv_buf_printf(&path, "/%s", ver->d_name);
			if (bv_toml_parse_file(&doc, path.buf, &err) < 0) {
				char *msg = bv_error_format(err);
				print_error("%s\n", msg);
				free(msg);
				bv_error_free(err);
				fail();
			}
			assert_round_trip(doc);
			bv_toml_doc_free(doc);
			files++;
			bv_buf_setlen(&path, dir_len);
		}
		closedir(versions);
		bv_buf_setlen(&path, base);
	}
	closedir(tools);
	bv_buf_release(&path);
	assert_true(files >= 20);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toml_write__layout_is_fixed),
		cmocka_unit_test(test_toml_write__insertion_order_does_not_matter),
		cmocka_unit_test(test_toml_write__tricky_values_round_trip),
		cmocka_unit_test(test_toml_write__registry_manifests_round_trip),
	};
	sample_dir = argc > 1 ? argv[1] : "../shared/bv-registry-sample";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
