#include "config.h"

#include <bv/toml.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/model/types-internal.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"

/* The registry sample directory meson passes as argv[1]; may be missing. */
static const char *sample_dir;

static struct bv_types *load_ok(const char *path)
{
	struct bv_types *t = NULL;
	struct bv_error *err = NULL;

	assert_ok(bv_types_load(&t, path, &err), &err);
	assert_non_null(t);
	return t;
}

static int setup_types(void **state)
{
	*state = load_ok(BV_SOURCE_TYPES);
	return 0;
}

static int teardown_types(void **state)
{
	bv_types_free(*state);
	return 0;
}

static void test_types__all_ids_present(void **state)
{
	const struct bv_types *t = *state;
	static const char *const ids[] = {
		"bam",           "bcf",  "blast_db",    "blast_tab",    "dir",     "fasta",
		"fastq",         "file", "hmm_profile", "hmmer_output", "mmcif",   "mmseqs_db",
		"mmseqs_output", "msa",  "pdb",         "sam",          "tabular", "vcf",
	};
	_cleanup_strv_ struct bv_strv got = BV_STRV_INIT;

	bv_types_ids(&got, t);
	assert_int_equal(got.n, 18);
	for (size_t i = 0; i < BV_ARRAY_SIZE(ids); i++) {
		assert_string_equal(got.v[i], ids[i]); /* sorted */
		assert_non_null(bv_types_lookup(t, ids[i]));
		assert_string_equal(bv_types_lookup(t, ids[i])->id, ids[i]);
		assert_non_null(bv_types_lookup(t, ids[i])->description);
	}
	assert_null(bv_types_lookup(t, "FASTA"));
	assert_null(bv_types_lookup(t, "fasta[protein]"));
	assert_null(bv_types_lookup(t, ""));
	assert_null(bv_types_lookup(t, NULL));
}

static void test_types__definitions(void **state)
{
	const struct bv_types *t = *state;
	const struct bv_type_def *d;

	d = bv_types_lookup(t, "file");
	assert_null(d->parent);
	assert_string_equal(d->kind, "file");
	assert_null(d->parameters[0]);

	d = bv_types_lookup(t, "blast_db");
	assert_null(d->parent);
	assert_string_equal(d->kind, "directory");

	d = bv_types_lookup(t, "fasta");
	assert_string_equal(d->parent, "file");
	assert_string_equal(d->kind, "file"); /* inherited from the root */
	assert_string_equal(d->parameters[0], "alphabet");
	assert_null(d->parameters[1]);
	assert_null(d->required_files[0]);

	d = bv_types_lookup(t, "msa");
	assert_string_equal(d->parameters[0], "format");
	assert_null(d->mime);

	d = bv_types_lookup(t, "blast_tab");
	assert_string_equal(d->parent, "tabular");
	assert_string_equal(d->columns, "blast_outfmt_6");
	assert_null(bv_types_lookup(t, "vcf")->columns);
}

static void test_types__subtyping(void **state)
{
	const struct bv_types *t = *state;

	assert_true(bv_types_is_subtype(t, "sam", "tabular"));
	assert_true(bv_types_is_subtype(t, "tabular", "file"));
	assert_true(bv_types_is_subtype(t, "sam", "file"));
	assert_true(bv_types_is_subtype(t, "blast_tab", "tabular"));
	assert_true(bv_types_is_subtype(t, "vcf", "vcf")); /* reflexive */
	assert_true(bv_types_is_subtype(t, "dir", "dir"));
	assert_false(bv_types_is_subtype(t, "vcf", "bam"));
	assert_false(bv_types_is_subtype(t, "file", "sam"));
	assert_false(bv_types_is_subtype(t, "bam", "tabular"));
	assert_false(bv_types_is_subtype(t, "blast_db", "file"));
	assert_false(bv_types_is_subtype(t, "mmseqs_db", "dir")); /* separate roots */
	assert_false(bv_types_is_subtype(t, "nope", "nope"));
	assert_false(bv_types_is_subtype(t, "sam", "nope"));
	assert_false(bv_types_is_subtype(t, "nope", "file"));
}

static void test_types__mime_inherited(void **state)
{
	const struct bv_types *t = *state;

	assert_string_equal(bv_types_mime(t, "sam"), "text/x-sam");
	assert_string_equal(bv_types_mime(t, "blast_tab"), "text/tab-separated-values");
	assert_string_equal(bv_types_mime(t, "msa"), "application/octet-stream");
	assert_string_equal(bv_types_mime(t, "hmmer_output"), "application/octet-stream");
	assert_string_equal(bv_types_mime(t, "fasta"), "application/x-fasta");
	assert_null(bv_types_mime(t, "dir"));
	assert_null(bv_types_mime(t, "blast_db"));
	assert_null(bv_types_mime(t, "nope"));
}

static void test_types__suggest(void **state)
{
	const struct bv_types *t = *state;

	assert_string_equal(bv_types_suggest(t, "fastaq"), "fastq");
	assert_string_equal(bv_types_suggest(t, "fsta"), "fasta");
	assert_string_equal(bv_types_suggest(t, "FASTA"), "fasta"); /* case-insensitive */
	assert_string_equal(bv_types_suggest(t, "bams"), "bam");
	assert_string_equal(bv_types_suggest(t, "blastdb"), "blast_db");
	assert_string_equal(bv_types_suggest(t, "tabluar"), "tabular");
	assert_string_equal(bv_types_suggest(t, "mmcfi"), "mmcif");
	/* "cam" is one edit from bam and sam; both end in "am", so the alphabetical rule picks. */
	assert_string_equal(bv_types_suggest(t, "cam"), "bam");
	assert_null(bv_types_suggest(t, "xyzzy123"));
	assert_null(bv_types_suggest(t, ""));
	assert_null(bv_types_suggest(t, NULL));
	assert_null(
		bv_types_suggest(t, "a_very_long_type_name_that_is_nowhere_near_any_known_one"));
}

static void test_types__ref_parse_good(void **state)
{
	(void)state;
	static const struct {
		const char *text, *id, *params[3], *formatted;
	} cases[] = {
		{"fasta", "fasta", {NULL}, "fasta"},
		{"fasta[protein]", "fasta", {"protein", NULL}, "fasta[protein]"},
		{"msa[a3m,stockholm]", "msa", {"a3m", "stockholm", NULL}, "msa[a3m,stockholm]"},
		{" msa[ a3m , stockholm ] ",
		 "msa",
		 {"a3m", "stockholm", NULL},
		 "msa[a3m,stockholm]"},
		{"Unknown_Type", "Unknown_Type", {NULL}, "Unknown_Type"},
		{"x[1.0-beta]", "x", {"1.0-beta", NULL}, "x[1.0-beta]"},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_type_ref ref;
		char *text;
		size_t n = 0;

		assert_int_equal(bv_type_ref_parse(&ref, cases[i].text), 0);
		assert_string_equal(ref.id, cases[i].id);
		while (cases[i].params[n])
			n++;
		assert_int_equal(ref.params.n, n);
		for (size_t j = 0; j < n; j++)
			assert_string_equal(ref.params.v[j], cases[i].params[j]);
		assert_null(ref.params.v[n]);
		text = bv_type_ref_format(&ref);
		assert_string_equal(text, cases[i].formatted);
		free(text);
		bv_type_ref_release(&ref);
		assert_null(ref.id);
	}
}

static void test_types__ref_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",        "   ",       "[protein]",       "fasta[",      "fasta[protein",
		"fasta[]", "fasta[,]",  "fasta[a,]",       "fasta[,a]",   "fasta[a]x",
		"fasta]",  "fasta x",   "fasta [protein]", "fasta[a[b]]", "fasta[a b]",
		"fa/sta",  "fasta[a]]", "fasta,fastq",
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		struct bv_type_ref ref = {.id = NULL};
		if (bv_type_ref_parse(&ref, bad[i]) != BV_EINVALID)
			fail_msg("'%s' parsed", bad[i]);
		assert_null(ref.id);
	}
	assert_int_equal(bv_type_ref_parse(&(struct bv_type_ref){0}, NULL), BV_EINVALID);
}

/* Loads `text` as a types file and checks the whole error message. */
static void assert_load_error(const char *text, const char *want_after_path)
{
	char *dir = test_mkdtemp("types");
	char *path, *msg, *want;
	struct bv_types *t = NULL;
	struct bv_error *err = NULL;

	assert_non_null(dir);
	path = bv_path_join(dir, "types.toml");
	assert_ok(bv_write_file_atomic(path, text, strlen(text), 0644, &err), &err);
	assert_int_equal(bv_types_load(&t, path, &err), BV_EINVALID);
	assert_null(t);
	msg = bv_error_format(err);
	want = bv_xasprintf("%s:%s", path, want_after_path);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
	bv_error_free(err);
	assert_ok(bv_rm_rf(dir, &err), &err);
	free(path);
	free(dir);
}

static void test_types__malformed_files(void **state)
{
	(void)state;
	assert_load_error("[types.file]\nkind = \"file\"\ndescription = \"f\"\n"
			  "[types.sam]\nparent = \"tabularr\"\ndescription = \"s\"\n",
			  "5:10: type 'sam' has unknown parent 'tabularr'");
	assert_load_error("[types.a]\nparent = \"b\"\ndescription = \"a\"\n"
			  "[types.b]\nparent = \"c\"\ndescription = \"b\"\n"
			  "[types.c]\nparent = \"b\"\ndescription = \"c\"\n",
			  "5:10: type 'b' is its own ancestor (b -> c -> b)");
	assert_load_error("[types.a]\nparent = \"a\"\ndescription = \"a\"\n",
			  "2:10: type 'a' is its own ancestor (a -> a)");
	assert_load_error("[types.file]\nkind = \"file\"\n", "1:8: type 'file' has no description");
	assert_load_error("[types.file]\nkind = \"file\"\ndescription = \"\"\n",
			  "3:15: 'description' of type 'file' must be a non-empty string");
	assert_load_error("[types.file]\ndescription = \"f\"\n",
			  "1:8: type 'file' needs a kind (for a root type) or a parent");
	assert_load_error("[types.file]\nkind = \"file\"\ndescription = \"f\"\n"
			  "[types.x]\nkind = \"file\"\nparent = \"file\"\ndescription = \"x\"\n",
			  "5:8: type 'x' has both a kind and a parent");
	assert_load_error("[types.file]\nkind = \"socket\"\ndescription = \"f\"\n",
			  "2:8: kind of type 'file' must be 'file' or 'directory', not 'socket'");
	assert_load_error("[types.file]\nkind = \"file\"\ndescription = \"f\"\nmimetype = \"x\"\n",
			  "4:1: unknown key 'mimetype' in type 'file'");
	assert_load_error("[types.file]\nkind = \"file\"\ndescription = 3\n",
			  "3:15: 'description' of type 'file' must be a string, not integer");
	assert_load_error(
		"[types.file]\nkind = \"file\"\ndescription = \"f\"\nparameters = \"a\"\n",
		"4:14: 'parameters' of type 'file' must be an array of strings, not string");
	assert_load_error("[types.file]\nkind = \"file\"\ndescription = \"f\"\n"
			  "parameters = [\"a\", 1]\n",
			  "4:20: 'parameters' of type 'file' must hold non-empty strings only");
	assert_load_error("[types.File]\nkind = \"file\"\ndescription = \"f\"\n",
			  "1:8: invalid type id 'File' (expected a lower-case letter, then "
			  "letters, digits or '_', at most 64 in all)");
	assert_load_error("types = 1\n", "1:9: 'types' must be a table, not integer");
	assert_load_error("[types]\nfile = 1\n", "2:8: type 'file' must be a table, not integer");
	assert_load_error("[other]\n", "1:2: unknown key 'other' (expected [types.<id>])");
	assert_load_error("", "1:1: no [types.<id>] tables");
	assert_load_error("[types]\n", "1:1: no types are defined");
	/* The TOML reader's own errors come through unchanged. */
	assert_load_error("[types.file]\nkind = file\n", "2:8: invalid value");
}

static void test_types__missing_file(void **state)
{
	(void)state;
	struct bv_types *t = NULL;
	struct bv_error *err = NULL;

	assert_true(bv_types_load(&t, "/nonexistent/bv/types.toml", &err) < 0);
	assert_null(t);
	assert_non_null(err);
	bv_error_free(err);
}

static void test_types__load_default(void **state)
{
	(void)state;
	struct bv_types *t = NULL;
	struct bv_error *err = NULL;
	char *saved = getenv("BV_TYPES_FILE") ? bv_xstrdup(getenv("BV_TYPES_FILE")) : NULL;
	char *dir = test_mkdtemp("types-env");
	char *path = bv_path_join(dir, "mine.toml");
	static const char mine[] = "[types.thing]\nkind = \"file\"\ndescription = \"t\"\n";

	/* Without the variable: the installed copy or the source tree's. */
	unsetenv("BV_TYPES_FILE");
	assert_ok(bv_types_load_default(&t, &err), &err);
	assert_non_null(bv_types_lookup(t, "fastq"));
	bv_types_free(t);

	/* The variable wins over everything. */
	assert_ok(bv_write_file_atomic(path, mine, strlen(mine), 0644, &err), &err);
	setenv("BV_TYPES_FILE", path, 1);
	assert_ok(bv_types_load_default(&t, &err), &err);
	assert_non_null(bv_types_lookup(t, "thing"));
	assert_null(bv_types_lookup(t, "fastq"));
	bv_types_free(t);
	t = NULL;

	setenv("BV_TYPES_FILE", "/nonexistent/types.toml", 1);
	assert_true(bv_types_load_default(&t, &err) < 0);
	assert_null(t);
	bv_error_free(err);
	err = NULL;

	if (saved)
		setenv("BV_TYPES_FILE", saved, 1);
	else
		unsetenv("BV_TYPES_FILE");
	free(saved);
	assert_ok(bv_rm_rf(dir, &err), &err);
	free(path);
	free(dir);
}

static bool sample_present(void)
{
	struct stat st;
	return sample_dir && stat(sample_dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Our vocabulary must agree with upstream's on everything but the prose. */
static void test_types__matches_upstream_vocabulary(void **state)
{
	const struct bv_types *ours = *state;
	struct bv_types *theirs;
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, b = BV_STRV_INIT;
	char *path;

	if (!sample_present())
		skip();
	path = bv_path_join(sample_dir, "types.toml");
	theirs = load_ok(path);
	bv_types_ids(&a, ours);
	bv_types_ids(&b, theirs);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		const struct bv_type_def *x = bv_types_lookup(ours, a.v[i]);
		const struct bv_type_def *y = bv_types_lookup(theirs, a.v[i]);
		assert_string_equal(a.v[i], b.v[i]);
		assert_non_null(y);
		assert_string_equal(x->kind, y->kind);
		assert_true((x->parent == NULL) == (y->parent == NULL));
		if (x->parent)
			assert_string_equal(x->parent, y->parent);
		assert_true((x->mime == NULL) == (y->mime == NULL));
		if (x->mime)
			assert_string_equal(x->mime, y->mime);
		assert_true((x->columns == NULL) == (y->columns == NULL));
		if (x->columns)
			assert_string_equal(x->columns, y->columns);
		for (size_t j = 0; x->parameters[j] || y->parameters[j]; j++) {
			assert_non_null(x->parameters[j]);
			assert_non_null(y->parameters[j]);
			assert_string_equal(x->parameters[j], y->parameters[j]);
		}
		assert_string_not_equal(x->description, y->description); /* our own words */
	}
	bv_types_free(theirs);
	free(path);
}

/* Checks the `type` of every [[tool.inputs]] / [[tool.outputs]] entry of one manifest. */
static size_t check_manifest_types(const struct bv_types *t, const char *path)
{
	struct bv_toml_doc *doc = NULL;
	struct bv_error *err = NULL;
	const struct bv_toml_value *tool;
	static const char *const sections[] = {"inputs", "outputs"};
	size_t checked = 0;

	assert_ok(bv_toml_parse_file(&doc, path, &err), &err);
	tool = bv_toml_table_get(bv_toml_doc_root(doc), "tool");
	assert_non_null(tool);
	assert_int_equal(tool->type, BV_TOML_TABLE);
	for (size_t s = 0; s < BV_ARRAY_SIZE(sections); s++) {
		const struct bv_toml_value *list = bv_toml_table_get(tool->u.table, sections[s]);
		if (!list)
			continue;
		assert_int_equal(list->type, BV_TOML_ARRAY);
		for (size_t i = 0; i < list->u.array->n; i++) {
			const struct bv_toml_value *io = &list->u.array->items[i];
			const struct bv_toml_value *type;
			struct bv_type_ref ref;

			assert_int_equal(io->type, BV_TOML_TABLE);
			type = bv_toml_table_get(io->u.table, "type");
			assert_non_null(type);
			assert_int_equal(type->type, BV_TOML_STRING);
			if (bv_type_ref_parse(&ref, type->u.string.ptr) < 0)
				fail_msg("%s: type '%s' does not parse", path, type->u.string.ptr);
			if (!bv_types_lookup(t, ref.id))
				fail_msg("%s: type '%s' is unknown", path, ref.id);
			bv_type_ref_release(&ref);
			checked++;
		}
	}
	bv_toml_doc_free(doc);
	return checked;
}

static void test_types__registry_sample_types_known(void **state)
{
	const struct bv_types *t = *state;
	char *tools;
	DIR *top;
	struct dirent *de;
	size_t manifests = 0, checked = 0;

	if (!sample_present())
		skip();
	tools = bv_path_join(sample_dir, "tools");
	top = opendir(tools);
	assert_non_null(top);
	while ((de = readdir(top))) {
		char *tool_dir;
		DIR *d;
		struct dirent *ve;

		if (de->d_name[0] == '.')
			continue;
		tool_dir = bv_path_join(tools, de->d_name);
		d = opendir(tool_dir);
		if (d) {
			while ((ve = readdir(d))) {
				size_t len = strlen(ve->d_name);
				char *path;
				if (len < 6 || strcmp(ve->d_name + len - 5, ".toml"))
					continue;
				path = bv_path_join(tool_dir, ve->d_name);
				checked += check_manifest_types(t, path);
				manifests++;
				free(path);
			}
			closedir(d);
		}
		free(tool_dir);
	}
	closedir(top);
	free(tools);
	assert_true(manifests > 0);
	assert_true(checked > 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types__all_ids_present),
		cmocka_unit_test(test_types__definitions),
		cmocka_unit_test(test_types__subtyping),
		cmocka_unit_test(test_types__mime_inherited),
		cmocka_unit_test(test_types__suggest),
		cmocka_unit_test(test_types__ref_parse_good),
		cmocka_unit_test(test_types__ref_parse_bad),
		cmocka_unit_test(test_types__malformed_files),
		cmocka_unit_test(test_types__missing_file),
		cmocka_unit_test(test_types__load_default),
		cmocka_unit_test(test_types__matches_upstream_vocabulary),
		cmocka_unit_test(test_types__registry_sample_types_known),
	};

	sample_dir = argc > 1 ? argv[1] : NULL;
	return cmocka_run_group_tests(tests, setup_types, teardown_types);
}
