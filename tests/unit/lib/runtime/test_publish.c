/*
 * bv publish's pure parts: bv-publish.toml, build-system detection in upstream's order,
 * Dockerfile.bv (written, regenerated, or left alone once the user edits it), the push
 * destination and the manifest, which bv's own loader must read back.
 */
#include <bv/error.h>
#include <bv/manifest.h>
#include <bv/publish.h>
#include <bv/types.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static void put(const char *dir, const char *name, const char *text)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *p = bv_path_join(dir, name);
	assert_ok(bv_write_file_atomic(p, text, strlen(text), 0644, &err), &err);
}

static void test_publish__detect_order(void **state)
{
	(void)state;
	_cleanup_free_ char *d = test_mkdtemp("publish");
	struct bv_error *err = NULL;
	enum bv_publish_kind k;
	struct bv_error *e2 = NULL;
	assert_int_equal(bv_publish_detect(&k, d, &e2), BV_ENOTFOUND);
	bv_error_free(e2);
	put(d, "Makefile", "all:\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_MAKEFILE);
	put(d, "Cargo.toml", "[package]\nname = \"x\"\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_CARGO);
	put(d, "requirements.txt", "numpy\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_REQUIREMENTS);
	/* a pyproject.toml without [build-system] is not something pip can install */
	put(d, "pyproject.toml", "[tool.black]\nline-length = 100\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_REQUIREMENTS);
	put(d, "pyproject.toml", "[build-system]\nrequires = [\"hatchling\"]\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_PYPROJECT);
	put(d, "environment.yml", "name: x\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_CONDA);
	put(d, "Dockerfile", "FROM scratch\n");
	assert_ok(bv_publish_detect(&k, d, &err), &err);
	assert_int_equal(k, BV_PUBLISH_DOCKERFILE);
	assert_ok(bv_rm_rf(d, &err), &err);
}

static void test_publish__config(void **state)
{
	(void)state;
	_cleanup_free_ char *d = test_mkdtemp("publish");
	struct bv_publish_config c;
	struct bv_error *err = NULL;
	put(d, "bv-publish.toml",
	    "name = \"hello\"\nbinaries = [\"hello\", \"hello-admin\"]\nbuild_packages = []\n"
	    "ram_gb = 2\n");
	assert_ok(bv_publish_config_load(&c, d, &err), &err);
	assert_true(c.from_file);
	assert_string_equal(c.name, "hello");
	assert_true(c.build_packages_set);
	assert_int_equal(c.build_packages.n, 0);
	/* a missing version names the flag and the key */
	assert_int_equal(bv_publish_config_check(&c, false, &err), BV_EINVALID);
	{
		_cleanup_free_ char *m = bv_error_format(err);
		assert_string_equal(m, "missing tool version: give --tool-version or 'version' in "
				       "bv-publish.toml");
		bv_error_free(err);
		err = NULL;
	}
	bv_publish_config_set(&c.version, "1.2.3");
	assert_ok(bv_publish_config_check(&c, false, &err), &err);
	assert_string_equal(c.entrypoint, "hello");
	assert_int_equal(c.binaries.n, 2);
	/* publishing needs somewhere to push */
	assert_int_equal(bv_publish_config_check(&c, true, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	bv_publish_config_release(&c);
	/* unknown keys are errors, with the file's position */
	put(d, "bv-publish.toml", "name = \"x\"\nverison = \"1\"\n");
	assert_int_equal(bv_publish_config_load(&c, d, &err), BV_EINVALID);
	{
		_cleanup_free_ char *m = bv_error_format(err);
		assert_non_null(strstr(m, "bv-publish.toml:2"));
		assert_non_null(strstr(m, "verison"));
		bv_error_free(err);
		err = NULL;
	}
	bv_publish_config_release(&c);
	assert_ok(bv_rm_rf(d, &err), &err);
}

static void test_publish__dockerfile_bv(void **state)
{
	(void)state;
	_cleanup_free_ char *d = test_mkdtemp("publish");
	_cleanup_free_ char *path = bv_path_join(d, "Dockerfile.bv");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_publish_config c;
	struct bv_error *err = NULL;
	const char *df;
	bool written;
	put(d, "Makefile", "all:\n");
	assert_ok(bv_publish_config_load(&c, d, &err), &err);
	bv_publish_config_set(&c.base_image, "base:1");
	assert_ok(bv_publish_dockerfile(&df, &written, BV_PUBLISH_MAKEFILE, &c, &err), &err);
	assert_string_equal(df, "Dockerfile.bv");
	assert_true(written);
	assert_ok(bv_buf_read_file(&text, path, 1u << 20, &err), &err);
	assert_non_null(strstr(text.buf, "FROM base:1 AS build\n"));
	assert_non_null(strstr(text.buf, "apt-get install -y --no-install-recommends "
					 "build-essential"));
	assert_non_null(strstr(text.buf, "make install DESTDIR=/out PREFIX=/usr/local"));
	assert_non_null(strstr(text.buf, "\nFROM base:1\nCOPY --from=build /out/ /\n"));
	/* the same text again: not rewritten */
	assert_ok(bv_publish_dockerfile(&df, &written, BV_PUBLISH_MAKEFILE, &c, &err), &err);
	assert_false(written);
	/* without bv's first line it is the user's: never rewritten */
	put(d, "Dockerfile.bv", "FROM mine\n");
	bv_publish_config_set(&c.base_image, "base:2");
	assert_ok(bv_publish_dockerfile(&df, &written, BV_PUBLISH_MAKEFILE, &c, &err), &err);
	assert_false(written);
	bv_buf_reset(&text);
	assert_ok(bv_buf_read_file(&text, path, 1u << 20, &err), &err);
	assert_string_equal(text.buf, "FROM mine\n");
	/* a Dockerfile is used as it is, and no Dockerfile.bv is made for it */
	assert_ok(bv_publish_dockerfile(&df, &written, BV_PUBLISH_DOCKERFILE, &c, &err), &err);
	assert_string_equal(df, "Dockerfile");
	assert_false(written);
	bv_publish_config_release(&c);
	assert_ok(bv_rm_rf(d, &err), &err);
}

static void test_publish__manifest_loads(void **state)
{
	(void)state;
	_cleanup_free_ char *d = test_mkdtemp("publish");
	_cleanup_free_ char *dest = NULL, *text = NULL;
	struct bv_publish_config c;
	struct bv_types *types = NULL;
	struct bv_manifest *m = NULL;
	struct bv_error *err = NULL;
	static const char digest[] =
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	assert_ok(bv_publish_config_load(&c, d, &err), &err);
	bv_publish_config_set(&c.name, "hello");
	bv_publish_config_set(&c.version, "1.0.0");
	bv_publish_config_set(&c.description, "Says \"hello\"");
	bv_publish_config_set(&c.push_to, "127.0.0.1:5000/tools/hello");
	bv_publish_config_set(&c.registry_repo, "/nowhere");
	assert_ok(bv_publish_config_check(&c, true, &err), &err);
	dest = bv_publish_destination(&c);
	assert_string_equal(dest, "127.0.0.1:5000/tools/hello:1.0.0");
	bv_publish_config_set(&c.push_to, "127.0.0.1:5000/tools/hello:stable");
	free(dest);
	dest = bv_publish_destination(&c);
	assert_string_equal(dest, "127.0.0.1:5000/tools/hello:stable");
	text = bv_publish_manifest_text(&c, dest, digest);
	assert_ok(bv_types_load_default(&types, &err), &err);
	assert_ok(bv_manifest_parse(&m, text, strlen(text), "1.0.0.toml", types, &err), &err);
	assert_string_equal(m->image_reference, dest);
	assert_string_equal(m->image_digest, digest);
	assert_string_equal(m->description, "Says \"hello\"");
	assert_string_equal(m->entrypoint, "hello");
	bv_manifest_free(m);
	bv_types_free(types);
	bv_publish_config_release(&c);
	assert_ok(bv_rm_rf(d, &err), &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish__detect_order),
		cmocka_unit_test(test_publish__config),
		cmocka_unit_test(test_publish__dockerfile_bv),
		cmocka_unit_test(test_publish__manifest_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
