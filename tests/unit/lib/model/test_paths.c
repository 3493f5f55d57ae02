#include <bv/error.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/model/paths-internal.h"
#include "test.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/xalloc.h"

/* A fresh directory that is also HOME, with BV_CACHE_DIR and XDG_CACHE_HOME unset. */
static char *fake_home(void)
{
	char *dir = test_mkdtemp("paths");
	char *real;
	assert_non_null(dir);
	/* /tmp may be a symlink; bv_project_find() returns canonical paths. */
	real = realpath(dir, NULL);
	assert_non_null(real);
	free(dir);
	assert_int_equal(setenv("HOME", real, 1), 0);
	assert_int_equal(unsetenv("BV_CACHE_DIR"), 0);
	assert_int_equal(unsetenv("XDG_CACHE_HOME"), 0);
	return real;
}

static void drop(char *dir)
{
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

static void touch(const char *dir, const char *name)
{
	char *path = bv_path_join(dir, name);
	assert_int_equal(bv_write_file_atomic(path, "", 0, 0644, NULL), 0);
	free(path);
}

static char *cache_dir_ok(void)
{
	struct bv_error *err = NULL;
	char *out = NULL;
	assert_ok(bv_cache_dir(&out, &err), &err);
	return out;
}

static void test_paths__cache_dir_precedence(void **state)
{
	(void)state;
	char *home = fake_home();
	char *want, *got;

	want = bv_xasprintf("%s/.cache/bv", home);
	got = cache_dir_ok();
	assert_string_equal(got, want);
	free(got);
	free(want);

	/* Empty and relative XDG_CACHE_HOME are ignored. */
	setenv("XDG_CACHE_HOME", "", 1);
	got = cache_dir_ok();
	assert_true(bv_str_has_suffix(got, "/.cache/bv") && !strncmp(got, home, strlen(home)));
	free(got);
	setenv("XDG_CACHE_HOME", "relative/cache", 1);
	got = cache_dir_ok();
	assert_null(strstr(got, "relative"));
	free(got);

	setenv("XDG_CACHE_HOME", "/xdg/cache/", 1);
	got = cache_dir_ok();
	assert_string_equal(got, "/xdg/cache/bv");
	free(got);

	setenv("BV_CACHE_DIR", "", 1);
	got = cache_dir_ok();
	assert_string_equal(got, "/xdg/cache/bv");
	free(got);

	setenv("BV_CACHE_DIR", "/explicit/cache//", 1);
	got = cache_dir_ok();
	assert_string_equal(got, "/explicit/cache");
	free(got);

	unsetenv("BV_CACHE_DIR");
	unsetenv("XDG_CACHE_HOME");
	drop(home);
}

static void test_paths__cache_dir_without_home(void **state)
{
	(void)state;
	const struct passwd *pw = getpwuid(getuid());
	char *saved = getenv("HOME") ? bv_xstrdup(getenv("HOME")) : NULL;
	char *want, *got;

	/* HOME unset or empty (env -i, some batch systems): the password database's home */
	assert_non_null(pw);
	want = bv_path_join(pw->pw_dir, ".cache/bv");
	unsetenv("BV_CACHE_DIR");
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "", 1);
	got = cache_dir_ok();
	assert_string_equal(got, want);
	free(got);
	unsetenv("HOME");
	got = cache_dir_ok();
	assert_string_equal(got, want);
	free(got);
	got = bv_expand_home("~/refs");
	free(want);
	want = bv_path_join(pw->pw_dir, "refs");
	assert_string_equal(got, want);
	free(got);
	free(want);
	if (saved)
		setenv("HOME", saved, 1);
	free(saved);
}

static void test_paths__image_mode(void **state)
{
	enum bv_image_mode mode = BV_IMAGE_SQUASHFS;
	struct bv_error *err = NULL;
	(void)state;
	unsetenv("BV_IMAGE_MODE");
	assert_int_equal(bv_image_mode(&mode, NULL), 0);
	assert_int_equal(mode, BV_IMAGE_TREE);
	setenv("BV_IMAGE_MODE", "local_dir", 1);
	assert_int_equal(bv_image_mode(&mode, NULL), 0);
	assert_int_equal(mode, BV_IMAGE_LOCAL_DIR);
	setenv("BV_IMAGE_MODE", "squashfs", 1);
	assert_int_equal(bv_image_mode(&mode, NULL), 0);
	assert_string_equal(bv_image_mode_name(mode), "squashfs");
	setenv("BV_IMAGE_MODE", "overlay", 1);
	assert_int_equal(bv_image_mode(&mode, &err), BV_EINVALID);
	assert_non_null(strstr(err->message, "unknown BV_IMAGE_MODE 'overlay'"));
	bv_error_free(err);
	assert_int_equal(bv_image_mode_parse("tree"), BV_IMAGE_TREE);
	assert_int_equal(bv_image_mode_parse(""), -1);
	unsetenv("BV_IMAGE_MODE");
}

/* BV_LOCAL_DIR, then TMPDIR; one directory per user and per cache below it. */
static void test_paths__local_dir(void **state)
{
	char *a = NULL, *b = NULL, *c = NULL, *prefix = NULL;
	struct bv_error *err = NULL;
	char *saved_tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	(void)state;
	setenv("BV_CACHE_DIR", "/shared/cache-one", 1);
	setenv("BV_LOCAL_DIR", "/scratch/", 1);
	assert_int_equal(bv_local_dir(&a, NULL), 0);
	prefix = bv_xasprintf("/scratch/bv-%u/", (unsigned)getuid());
	assert_true(bv_str_has_prefix(a, prefix));
	assert_int_equal(strlen(a), strlen(prefix) + 16);
	setenv("BV_CACHE_DIR", "/shared/cache-two", 1);
	assert_int_equal(bv_local_dir(&b, NULL), 0);
	assert_string_not_equal(a, b); /* two caches never share scratch trees */
	unsetenv("BV_LOCAL_DIR");
	setenv("TMPDIR", "/node/tmp", 1);
	assert_int_equal(bv_local_dir(&c, NULL), 0);
	assert_true(bv_str_has_prefix(c, "/node/tmp/bv-"));
	free(c);
	c = NULL;
	setenv("BV_LOCAL_DIR", "relative", 1);
	assert_int_equal(bv_local_dir(&c, &err), BV_EINVALID);
	bv_error_free(err);
	unsetenv("BV_LOCAL_DIR");
	unsetenv("BV_CACHE_DIR");
	if (saved_tmpdir)
		setenv("TMPDIR", saved_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(saved_tmpdir);
	free(a);
	free(b);
	free(prefix);
}

static void test_paths__expand_home(void **state)
{
	(void)state;
	char *s;
	setenv("HOME", "/home/u/", 1);
	s = bv_expand_home("~");
	assert_string_equal(s, "/home/u/");
	free(s);
	s = bv_expand_home("~/refs/x");
	assert_string_equal(s, "/home/u/refs/x");
	free(s);
	s = bv_expand_home("~other/x");
	assert_string_equal(s, "~other/x");
	free(s);
	s = bv_expand_home("/abs/~/x");
	assert_string_equal(s, "/abs/~/x");
	free(s);
	s = bv_expand_home("");
	assert_string_equal(s, "");
	free(s);
}

static void test_paths__project_container_dir(void **state)
{
	(void)state;
	char *s = bv_project_container_dir("/p/proj", "/p/proj", "/workspace");
	assert_string_equal(s, "/workspace");
	free(s);
	s = bv_project_container_dir("/p/proj", "/p/proj/a/b", "/workspace");
	assert_string_equal(s, "/workspace/a/b");
	free(s);
	/* a sibling sharing the prefix is outside, and so is a parent */
	assert_null(bv_project_container_dir("/p/proj", "/p/project2", "/workspace"));
	assert_null(bv_project_container_dir("/p/proj", "/p", "/workspace"));
}

static void test_paths__project_found_from_nested_dir(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *home = fake_home();
	char *proj = bv_path_join(home, "proj");
	char *deep = bv_path_join(proj, "a/b/c");
	char *inner = bv_path_join(proj, "a/b");
	char *root = NULL;
	char *cwd = getcwd(NULL, 0);

	assert_ok(bv_mkdir_p(deep, 0755, &err), &err);
	touch(proj, "bv.toml");
	/* A bv.lock alone does not make a project, and a directory named bv.toml is no file. */
	touch(inner, "bv.lock");
	{
		char *fake = bv_path_join(inner, "bv.toml");
		assert_int_equal(mkdir(fake, 0755), 0);
		free(fake);
	}

	assert_ok(bv_project_find(&root, deep, &err), &err);
	assert_string_equal(root, proj);
	free(root);
	root = NULL;

	/* A relative start with ".." is canonicalised. */
	assert_int_equal(chdir(deep), 0);
	assert_ok(bv_project_find(&root, "../..", &err), &err);
	assert_string_equal(root, proj);
	free(root);
	root = NULL;

	/* NULL starts at the current directory. */
	assert_ok(bv_project_find(&root, NULL, &err), &err);
	assert_string_equal(root, proj);
	free(root);
	root = NULL;

	/* The project directory itself. */
	assert_ok(bv_project_find(&root, proj, &err), &err);
	assert_string_equal(root, proj);
	free(root);

	assert_int_equal(chdir(cwd), 0);
	free(cwd);
	free(inner);
	free(deep);
	free(proj);
	drop(home);
}

static void test_paths__project_not_found(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *home = fake_home();
	char *other = bv_path_join(home, "elsewhere/sub");
	static char untouched[] = "untouched";
	char *root = untouched;
	char *msg, *want;

	assert_ok(bv_mkdir_p(other, 0755, &err), &err);
	assert_int_equal(bv_project_find(&root, other, &err), BV_ENOTFOUND);
	assert_string_equal(root, "untouched");
	msg = bv_error_format(err);
	want = bv_xasprintf("not in a bv project (no bv.toml in '%s' or any parent directory)",
			    other);
	assert_string_equal(msg, want);
	free(want);
	free(msg);
	bv_error_free(err);
	err = NULL;

	/* A missing start directory is an error of its own, not "not in a project". */
	msg = bv_path_join(home, "missing");
	assert_int_equal(bv_project_find(&root, msg, &err), BV_ERR);
	assert_string_equal(root, "untouched");
	free(msg);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "could not resolve"));
	free(msg);
	bv_error_free(err);

	free(other);
	drop(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths__cache_dir_precedence),
		cmocka_unit_test(test_paths__cache_dir_without_home),
		cmocka_unit_test(test_paths__image_mode),
		cmocka_unit_test(test_paths__local_dir),
		cmocka_unit_test(test_paths__expand_home),
		cmocka_unit_test(test_paths__project_container_dir),
		cmocka_unit_test(test_paths__project_found_from_nested_dir),
		cmocka_unit_test(test_paths__project_not_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
