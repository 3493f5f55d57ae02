/*
 * Resolution against a private copy of the sample registry, opened as a local path (used in
 * place, BV_INDEX_OFFLINE: no git, no network).  Each test gets a fresh copy so it can add
 * broken or extra manifests.
 *
 * argv[1] is the sample registry (../shared/bv-registry-sample).
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/manifest.h>
#include <bv/types.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/model/resolve-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"

static const char *sample;

struct fixture {
	char *dir;      /* the temporary directory, removed afterwards */
	char *registry; /* <dir>/registry, a copy of the sample */
	struct bv_index *idx;
	struct bv_types *types;
};

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *quiet;
	va_start(ap, fmt);
	cmd = bv_xvasprintf(fmt, ap);
	va_end(ap);
	/* stdout is cmocka's TAP stream. */
	quiet = bv_xasprintf("( %s ) >&2", cmd);
	if (system(quiet) != 0) {
		print_error("command failed: %s\n", cmd);
		free(cmd);
		free(quiet);
		fail();
	}
	free(cmd);
	free(quiet);
}

static void write_text(const char *registry, const char *rel, const char *text)
{
	struct bv_error *err = NULL;
	char *path = bv_path_join(registry, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	assert_ok(bv_mkdir_p(path, 0755, &err), &err);
	*slash = '/';
	assert_ok(bv_write_file_atomic(path, text, strlen(text), 0644, &err), &err);
	free(path);
}

static int setup(void **state)
{
	struct bv_error *err = NULL;
	struct fixture *f;
	char *tmp, *p;
	if (!sample)
		return 0;
	f = bv_xcalloc(1, sizeof(*f));
	tmp = test_mkdtemp("resolve");
	if (!tmp)
		return -1;
	f->dir = realpath(tmp, NULL);
	free(tmp);
	if (!f->dir)
		return -1;
	p = bv_path_join(f->dir, "home");
	mkdir(p, 0700);
	setenv("HOME", p, 1);
	free(p);
	p = bv_path_join(f->dir, "xdg");
	setenv("XDG_CACHE_HOME", p, 1);
	free(p);
	p = bv_path_join(f->dir, "cache");
	setenv("BV_CACHE_DIR", p, 1);
	free(p);
	unsetenv("BV_REGISTRY");
	f->registry = bv_path_join(f->dir, "registry");
	{
		char *cmd = bv_xasprintf("cp -R '%s' '%s' && chmod -R u+w '%s'", sample,
					 f->registry, f->registry);
		int rc = system(cmd);
		free(cmd);
		if (rc != 0)
			return -1;
	}
	if (bv_index_open(&f->idx, f->registry, BV_INDEX_OFFLINE, &err) < 0 ||
	    bv_types_load_default(&f->types, &err) < 0) {
		char *msg = bv_error_format(err);
		print_error("setup: %s\n", msg);
		free(msg);
		bv_error_free(err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!f)
		return 0;
	bv_index_free(f->idx);
	bv_types_free(f->types);
	bv_rm_rf(f->dir, NULL);
	free(f->registry);
	free(f->dir);
	free(f);
	*state = NULL;
	return 0;
}

static struct fixture *fixture(void **state)
{
	if (!sample) {
		print_message("# sample registry missing: skipped\n");
		skip();
	}
	assert_non_null(*state);
	return *state;
}

/* Resolves and returns the chosen version (new string). */
static char *resolve_ok(struct fixture *f, const char *id, const char *req)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	char *version;
	assert_ok(bv_resolve_tool(&m, f->idx, id, req, f->types, &err), &err);
	assert_non_null(m);
	assert_string_equal(m->id, id);
	version = bv_xstrdup(m->version);
	bv_manifest_free(m);
	return version;
}

static void assert_resolves(struct fixture *f, const char *id, const char *req, const char *want)
{
	char *got = resolve_ok(f, id, req);
	assert_string_equal(got, want);
	free(got);
}

/* Expects `code` and returns the formatted message. */
static char *resolve_fail(struct fixture *f, const char *id, const char *req, int code)
{
	struct bv_error *err = NULL;
	struct bv_manifest *m = NULL;
	char *msg;
	assert_int_equal(bv_resolve_tool(&m, f->idx, id, req, f->types, &err), code);
	assert_null(m);
	assert_non_null(err);
	msg = bv_error_format(err);
	bv_error_free(err);
	return msg;
}

static void test_resolve__highest_match(void **state)
{
	struct fixture *f = fixture(state);
	assert_resolves(f, "blast", "", "2.15.0");
	assert_resolves(f, "blast", NULL, "2.15.0");
	assert_resolves(f, "blast", "latest", "2.15.0");
	assert_resolves(f, "blast", "=2.14.0", "2.14.0");
	assert_resolves(f, "blast", "^2.14", "2.15.0");
	assert_resolves(f, "blast", "<2.15", "2.14.0");
	assert_resolves(f, "blast", "~2.14", "2.14.0");
	assert_resolves(f, "blast", ">=2.14, <3", "2.15.0");
	assert_resolves(f, "blast", "2", "2.15.0");
	assert_resolves(f, "colabfold", "", "1.6.1");
	assert_resolves(f, "colabfold", "=1.6.0", "1.6.0");
	assert_resolves(f, "samtools", "^1.21", "1.21.0");
	/* Three-part numbers beyond one digit compare numerically. */
	assert_resolves(f, "mafft", "", "7.525.0");
}

static void test_resolve__version_only(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_error *err = NULL;
	char *version = NULL, *path = NULL, *want;
	assert_ok(bv_resolve_tool_version(&version, &path, f->idx, "blast", "<2.15", &err), &err);
	assert_string_equal(version, "2.14.0");
	want = bv_xasprintf("%s/tools/blast/2.14.0.toml", f->registry);
	assert_string_equal(path, want);
	free(want);
	free(version);
	free(path);
	version = path = NULL;
	assert_int_equal(bv_resolve_tool_version(&version, &path, f->idx, "blast", ">=9", &err),
			 BV_ENOTFOUND);
	assert_null(version);
	assert_null(path);
	bv_error_free(err);
}

static void test_resolve__no_match(void **state)
{
	struct fixture *f = fixture(state);
	char *msg = resolve_fail(f, "blast", ">=3", BV_ENOTFOUND);
	assert_string_equal(msg, "no version of 'blast' matches '>=3' (the registry has 2.14.0, "
				 "2.15.0)");
	free(msg);
	msg = resolve_fail(f, "blast", "=2.14.1", BV_ENOTFOUND);
	assert_string_equal(msg, "no version of 'blast' matches '=2.14.1' (the registry has "
				 "2.14.0, 2.15.0)");
	free(msg);
	msg = resolve_fail(f, "samtools", "^2", BV_ENOTFOUND);
	assert_string_equal(msg, "no version of 'samtools' matches '^2' (the registry has 1.21.0)");
	free(msg);
}

/* The message lists the last eight versions, newest last. */
static void test_resolve__no_match_many_versions(void **state)
{
	struct fixture *f = fixture(state);
	char *msg;
	for (int i = 1; i <= 10; i++) {
		char *rel = bv_xasprintf("tools/many/1.%d.0.toml", i);
		write_text(f->registry, rel, "not read\n");
		free(rel);
	}
	msg = resolve_fail(f, "many", ">=2", BV_ENOTFOUND);
	assert_string_equal(msg, "no version of 'many' matches '>=2' (the registry has ..., 1.3.0, "
				 "1.4.0, 1.5.0, 1.6.0, 1.7.0, 1.8.0, 1.9.0, 1.10.0)");
	free(msg);
}

/* A tool directory without manifests has no version to offer, whatever the requirement. */
static void test_resolve__no_versions(void **state)
{
	struct fixture *f = fixture(state);
	char *msg;
	sh("mkdir -p '%s/tools/empty'", f->registry);
	msg = resolve_fail(f, "empty", NULL, BV_ENOTFOUND);
	assert_null(strstr(msg, "(null)"));
	assert_non_null(strstr(msg, "tool 'empty' has no versions in the registry"));
	free(msg);
	msg = resolve_fail(f, "empty", "^1", BV_ENOTFOUND);
	assert_non_null(strstr(msg, "tool 'empty' has no versions in the registry"));
	free(msg);
}

static void test_resolve__unknown_tool(void **state)
{
	struct fixture *f = fixture(state);
	char *msg = resolve_fail(f, "nosuchtool", "", BV_ENOTFOUND);
	assert_string_equal(msg, "tool 'nosuchtool' is not in the registry");
	free(msg);
	/* A dataset is not a tool. */
	msg = resolve_fail(f, "pdbaa", "", BV_ENOTFOUND);
	assert_string_equal(msg, "tool 'pdbaa' is not in the registry");
	free(msg);
	msg = resolve_fail(f, "../data", "", BV_EINVALID);
	assert_string_equal(msg, "invalid tool name '../data'");
	free(msg);
}

static void test_resolve__bad_requirement(void **state)
{
	struct fixture *f = fixture(state);
	char *msg = resolve_fail(f, "blast", ">>1", BV_EINVALID);
	assert_string_equal(msg, "invalid version requirement '>>1': unexpected '>'");
	free(msg);
}

/* A registry cannot serve one tool under another's name or version. */
static void test_resolve__manifest_disagrees_with_name(void **state)
{
	struct fixture *f = fixture(state);
	char *msg, *want;
	sh("mkdir -p '%s/tools/samtools2' && cp '%s/tools/samtools/1.21.0.toml' "
	   "'%s/tools/samtools2/1.21.0.toml'",
	   f->registry, f->registry, f->registry);
	msg = resolve_fail(f, "samtools2", "", BV_EINVALID);
	want = bv_xasprintf("registry manifest '%s/tools/samtools2/1.21.0.toml' declares samtools "
			    "1.21.0, not samtools2 1.21.0",
			    f->registry);
	assert_string_equal(msg, want);
	free(want);
	free(msg);

	/* Same id, another version: the newer file name wins and is caught. */
	sh("cp '%s/tools/samtools/1.21.0.toml' '%s/tools/samtools/1.22.0.toml'", f->registry,
	   f->registry);
	msg = resolve_fail(f, "samtools", "", BV_EINVALID);
	want = bv_xasprintf("registry manifest '%s/tools/samtools/1.22.0.toml' declares samtools "
			    "1.21.0, not samtools 1.22.0",
			    f->registry);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
	/* An older requirement still reaches the good file. */
	assert_resolves(f, "samtools", "=1.21.0", "1.21.0");
}

static void test_resolve__malformed_manifest(void **state)
{
	struct fixture *f = fixture(state);
	char *msg, *want;
	write_text(f->registry, "tools/broken/1.0.0.toml",
		   "[tool]\nid = \"broken\"\nversion = \"1.0.0\"\n");
	msg = resolve_fail(f, "broken", "", BV_EINVALID);
	want = bv_xasprintf("%s/tools/broken/1.0.0.toml:1:1: missing key 'image' in [tool]",
			    f->registry);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
}

static char *dataset_ok(struct fixture *f, const char *id, const char *version)
{
	struct bv_error *err = NULL;
	struct bv_dataset *d = NULL;
	char *got;
	assert_ok(bv_resolve_dataset(&d, f->idx, id, version, &err), &err);
	assert_non_null(d);
	assert_string_equal(d->id, id);
	got = bv_xstrdup(d->version);
	bv_dataset_free(d);
	return got;
}

static void assert_dataset(struct fixture *f, const char *id, const char *version, const char *want)
{
	char *got = dataset_ok(f, id, version);
	assert_string_equal(got, want);
	free(got);
}

static char *dataset_fail(struct fixture *f, const char *id, const char *version, int code)
{
	struct bv_error *err = NULL;
	struct bv_dataset *d = NULL;
	char *msg;
	assert_int_equal(bv_resolve_dataset(&d, f->idx, id, version, &err), code);
	assert_null(d);
	msg = bv_error_format(err);
	bv_error_free(err);
	return msg;
}

static void test_resolve__dataset_calendar_version(void **state)
{
	struct fixture *f = fixture(state);
	struct bv_error *err = NULL;
	struct bv_dataset *d = NULL;
	/* 2024_01 is not semver; upstream's resolver found no version at all. */
	assert_ok(bv_resolve_dataset(&d, f->idx, "pdbaa", NULL, &err), &err);
	assert_string_equal(d->id, "pdbaa");
	assert_string_equal(d->version, "2024_01");
	assert_string_equal(d->post_download_action, "extract");
	bv_dataset_free(d);
	assert_dataset(f, "pdbaa", "", "2024_01");
	assert_dataset(f, "pdbaa", "2024_01", "2024_01");
	assert_dataset(f, "pfam", NULL, "36.0");
	assert_dataset(f, "card", NULL, "3.3.0");
}

static void test_resolve__dataset_latest_of_several(void **state)
{
	struct fixture *f = fixture(state);
	static const char *const versions[] = {"2023_06", "2024_11", "2024_02"};
	for (size_t i = 0; i < BV_ARRAY_SIZE(versions); i++) {
		char *rel = bv_xasprintf("data/pdbaa/%s.toml", versions[i]);
		char *text = bv_xasprintf("[data]\nid = \"pdbaa\"\nversion = \"%s\"\n"
					  "source_urls = [\"https://example.org/%s.tar.gz\"]\n",
					  versions[i], versions[i]);
		write_text(f->registry, rel, text);
		free(text);
		free(rel);
	}
	assert_dataset(f, "pdbaa", NULL, "2024_11");
	assert_dataset(f, "pdbaa", "2023_06", "2023_06");
	assert_dataset(f, "pdbaa", "2024_01", "2024_01");
}

static void test_resolve__dataset_errors(void **state)
{
	struct fixture *f = fixture(state);
	char *msg, *want;

	msg = dataset_fail(f, "pdbaa", "2023_01", BV_ENOTFOUND);
	assert_string_equal(msg, "dataset 'pdbaa' has no version '2023_01' (the registry has "
				 "2024_01)");
	free(msg);

	msg = dataset_fail(f, "nosuchdata", NULL, BV_ENOTFOUND);
	assert_string_equal(msg, "dataset 'nosuchdata' is not in the registry");
	free(msg);
	msg = dataset_fail(f, "blast", NULL, BV_ENOTFOUND);
	assert_string_equal(msg, "dataset 'blast' is not in the registry");
	free(msg);

	sh("mkdir -p '%s/data/empty'", f->registry);
	msg = dataset_fail(f, "empty", NULL, BV_ENOTFOUND);
	assert_string_equal(msg, "dataset 'empty' has no versions");
	free(msg);

	/* A file whose contents name another dataset. */
	write_text(f->registry, "data/pdbaa/2025_01.toml",
		   "[data]\nid = \"pfam\"\nversion = \"2025_01\"\nsource_urls = [\"u\"]\n");
	msg = dataset_fail(f, "pdbaa", NULL, BV_EINVALID);
	want = bv_xasprintf("registry dataset '%s/data/pdbaa/2025_01.toml' declares pfam 2025_01, "
			    "not pdbaa 2025_01",
			    f->registry);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
	assert_dataset(f, "pdbaa", "2024_01", "2024_01");

	/* A malformed one. */
	write_text(f->registry, "data/pdbaa/2026_01.toml",
		   "[data]\nid = \"pdbaa\"\nversion = \"2026_01\"\nsource_urls = []\n");
	msg = dataset_fail(f, "pdbaa", "2026_01", BV_EINVALID);
	want = bv_xasprintf("%s/data/pdbaa/2026_01.toml:4:15: 'source_urls' in [data] is empty",
			    f->registry);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve__highest_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__version_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__no_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__no_match_many_versions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resolve__no_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__unknown_tool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__bad_requirement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__manifest_disagrees_with_name, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resolve__malformed_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve__dataset_calendar_version, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resolve__dataset_latest_of_several, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resolve__dataset_errors, setup, teardown),
	};
	struct stat st;
	if (argc > 1 && stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode))
		sample = argv[1];
	unsetenv("BV_TYPES_FILE");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
