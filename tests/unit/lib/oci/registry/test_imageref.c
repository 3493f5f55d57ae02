#include <stdbool.h>
#include <string.h>

#include "lib/oci/registry/imageref-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DGST  "sha256:" HEX64

struct ref_case {
	const char *text;
	const char *registry, *repository, *tag, *digest; /* expected; registry NULL: invalid */
	const char *why;                                  /* part of the error message */
};

static const struct ref_case ref_cases[] = {
	/* Docker Hub defaults */
	{"ubuntu", "docker.io", "library/ubuntu", NULL, NULL, NULL},
	{"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", NULL, NULL},
	{"biocontainers/samtools", "docker.io", "biocontainers/samtools", NULL, NULL, NULL},
	{"biocontainers/samtools:1.21--h50ea8bc_0", "docker.io", "biocontainers/samtools",
	 "1.21--h50ea8bc_0", NULL, NULL},
	{"docker.io/ubuntu", "docker.io", "library/ubuntu", NULL, NULL, NULL},
	{"docker.io/library/ubuntu:latest", "docker.io", "library/ubuntu", "latest", NULL, NULL},
	{"index.docker.io/ubuntu", "docker.io", "library/ubuntu", NULL, NULL, NULL},
	{"registry-1.docker.io/staphb/spades", "docker.io", "staphb/spades", NULL, NULL, NULL},
	{"Docker.IO/ubuntu", "docker.io", "library/ubuntu", NULL, NULL, NULL},
	{"a/b/c/d", "docker.io", "a/b/c/d", NULL, NULL, NULL},
	/* other registries, ports and tags */
	{"quay.io/biocontainers/samtools:1.21--h50ea8bc_0", "quay.io", "biocontainers/samtools",
	 "1.21--h50ea8bc_0", NULL, NULL},
	{"quay.io/ubuntu", "quay.io", "ubuntu", NULL, NULL, NULL},
	{"QUAY.io/biocontainers/bwa", "quay.io", "biocontainers/bwa", NULL, NULL, NULL},
	{"ghcr.io/owner/tool:v1", "ghcr.io", "owner/tool", "v1", NULL, NULL},
	{"127.0.0.1:5000/busybox", "127.0.0.1:5000", "busybox", NULL, NULL, NULL},
	{"127.0.0.1:5000/busybox:1", "127.0.0.1:5000", "busybox", "1", NULL, NULL},
	{"localhost/foo", "localhost", "foo", NULL, NULL, NULL},
	{"localhost:5000/a/b:c", "localhost:5000", "a/b", "c", NULL, NULL},
	{"localhost:5000", "docker.io", "library/localhost", "5000", NULL, NULL},
	{"[::1]:5000/img:t", "[::1]:5000", "img", "t", NULL, NULL},
	{"my-registry.example.com:443/x", "my-registry.example.com:443", "x", NULL, NULL, NULL},
	{"foo/bar:Tag_1.x-y", "docker.io", "foo/bar", "Tag_1.x-y", NULL, NULL},
	{"foo:_underscore", "docker.io", "library/foo", "_underscore", NULL, NULL},
	/* repository separators */
	{"a_b/c__d/e.f/g-h/i---j", "docker.io", "a_b/c__d/e.f/g-h/i---j", NULL, NULL, NULL},
	/* digests */
	{"ubuntu@" DGST, "docker.io", "library/ubuntu", NULL, DGST, NULL},
	{"quay.io/biocontainers/samtools:1.21@" DGST, "quay.io", "biocontainers/samtools", "1.21",
	 DGST, NULL},
	{"127.0.0.1:5000/busybox@" DGST, "127.0.0.1:5000", "busybox", NULL, DGST, NULL},
	/* docker:// prefix */
	{"docker://ubuntu", "docker.io", "library/ubuntu", NULL, NULL, NULL},
	{"docker://quay.io/biocontainers/bwa:0.7.17", "quay.io", "biocontainers/bwa", "0.7.17",
	 NULL, NULL},

	/* invalid */
	{"", NULL, NULL, NULL, NULL, "empty"},
	{"docker://", NULL, NULL, NULL, NULL, "missing repository"},
	{"//", NULL, NULL, NULL, NULL, "empty path component"},
	{"/ubuntu", NULL, NULL, NULL, NULL, "empty path component"},
	{"ubuntu/", NULL, NULL, NULL, NULL, "empty path component"},
	{"a//b", NULL, NULL, NULL, NULL, "empty path component"},
	{"quay.io/", NULL, NULL, NULL, NULL, "missing repository"},
	{"Ubuntu", NULL, NULL, NULL, NULL, "must be lower case"},
	{"quay.io/BioContainers/samtools", NULL, NULL, NULL, NULL, "must be lower case"},
	{"ubuntu:", NULL, NULL, NULL, NULL, "empty tag"},
	{"ubuntu:-x", NULL, NULL, NULL, NULL, "invalid tag"},
	{"ubuntu:a:b", NULL, NULL, NULL, NULL, "invalid tag"},
	{"ubuntu:a/b", NULL, NULL, NULL, NULL, "invalid registry host 'ubuntu:a'"},
	{"ubuntu@", NULL, NULL, NULL, NULL, "digest must be"},
	{"ubuntu@sha256:" HEX64 "0", NULL, NULL, NULL, NULL, "64 hex digits, not 65"},
	{"ubuntu@sha256:abc", NULL, NULL, NULL, NULL, "64 hex digits, not 3"},
	{"ubuntu@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", NULL,
	 NULL, NULL, NULL, "lower-case hex"},
	{"ubuntu@sha256:g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL,
	 NULL, NULL, NULL, "lower-case hex"},
	{"ubuntu@sha512:" HEX64 HEX64, NULL, NULL, NULL, NULL, "unsupported digest algorithm"},
	{"ubuntu@" DGST "@" DGST, NULL, NULL, NULL, NULL, "64 hex digits"},
	{"ubuntu@" HEX64, NULL, NULL, NULL, NULL, "digest must be"},
	{"ubu ntu", NULL, NULL, NULL, NULL, "invalid repository component"},
	{"a..b", NULL, NULL, NULL, NULL, "invalid repository component"},
	{"a___b", NULL, NULL, NULL, NULL, "invalid repository component"},
	{"-a", NULL, NULL, NULL, NULL, "invalid repository component"},
	{"a-", NULL, NULL, NULL, NULL, "invalid repository component"},
	{"quay.io:/x", NULL, NULL, NULL, NULL, "invalid registry host"},
	{"quay.io:99999/x", NULL, NULL, NULL, NULL, "invalid registry host"},
	{"quay..io/x", NULL, NULL, NULL, NULL, "invalid registry host"},
	{"-quay.io/x", NULL, NULL, NULL, NULL, "invalid registry host"},
	{"[zz::1]:5000/x", NULL, NULL, NULL, NULL, "invalid registry host"},
	{"quay.io/a\x1b[31m", NULL, NULL, NULL, NULL, "invalid repository component 'a?[31m'"},
};

static void test_imageref__table(void **state)
{
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(ref_cases); i++) {
		const struct ref_case *c = &ref_cases[i];
		struct bv_imageref ref = {0};
		struct bv_error *err = NULL;
		int r = bv_imageref_parse(&ref, c->text, &err);

		if (!c->registry) {
			char *msg;
			if (r != BV_EINVALID)
				fail_msg("'%s' was accepted (r=%d)", c->text, r);
			assert_null(ref.registry); /* output untouched */
			msg = bv_error_format(err);
			if (!strstr(msg, c->why) || strncmp(msg, "invalid image reference '", 25))
				fail_msg("'%s': message '%s' lacks '%s'", c->text, msg, c->why);
			free(msg);
			bv_error_free(err);
			continue;
		}
		if (r < 0) {
			char *msg = bv_error_format(err);
			fail_msg("'%s' rejected: %s", c->text, msg);
		}
		assert_string_equal(ref.registry, c->registry);
		assert_string_equal(ref.repository, c->repository);
		if (c->tag)
			assert_string_equal(ref.tag, c->tag);
		else
			assert_null(ref.tag);
		if (c->digest)
			assert_string_equal(ref.digest, c->digest);
		else
			assert_null(ref.digest);
		bv_imageref_release(&ref);
		assert_null(ref.registry);
	}
	assert_true(BV_ARRAY_SIZE(ref_cases) >= 40);
}

/* Every valid reference formats canonically, and the canonical form is a fixed point. */
static void test_imageref__format_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(ref_cases); i++) {
		struct bv_imageref a = {0}, b = {0};
		char *text, *again;
		if (!ref_cases[i].registry)
			continue;
		assert_int_equal(bv_imageref_parse(&a, ref_cases[i].text, NULL), 0);
		text = bv_imageref_format(&a);
		assert_true(bv_str_has_prefix(text, ref_cases[i].registry));
		assert_int_equal(bv_imageref_parse(&b, text, NULL), 0);
		again = bv_imageref_format(&b);
		assert_string_equal(text, again);
		assert_string_equal(a.repository, b.repository);
		free(text);
		free(again);
		bv_imageref_release(&a);
		bv_imageref_release(&b);
	}
}

static void test_imageref__format_and_pin(void **state)
{
	(void)state;
	struct bv_imageref r = {0};
	char *s;

	assert_int_equal(bv_imageref_parse(&r, "docker://samtools:1.21", NULL), 0);
	s = bv_imageref_format(&r);
	assert_string_equal(s, "docker.io/library/samtools:1.21");
	free(s);
	assert_null(bv_imageref_pinned(&r, NULL));
	s = bv_imageref_pinned(&r, DGST);
	assert_string_equal(s, "docker.io/library/samtools@" DGST);
	free(s);
	bv_imageref_release(&r);

	assert_int_equal(bv_imageref_parse(&r, "quay.io/biocontainers/bwa:0.7@" DGST, NULL), 0);
	s = bv_imageref_format(&r);
	assert_string_equal(s, "quay.io/biocontainers/bwa:0.7@" DGST);
	free(s);
	s = bv_imageref_pinned(&r, NULL); /* the tag is dropped */
	assert_string_equal(s, "quay.io/biocontainers/bwa@" DGST);
	free(s);
	bv_imageref_release(&r);
}

static void test_imageref__length_limits(void **state)
{
	(void)state;
	struct bv_buf b = BV_BUF_INIT;
	struct bv_imageref r = {0};
	struct bv_error *err = NULL;
	char *msg;

	/* 4097 characters: refused before any other check, with a shortened quote. */
	bv_buf_puts(&b, "quay.io/");
	while (b.len < BV_IMAGEREF_MAX_LEN + 1)
		bv_buf_putc(&b, 'a');
	assert_int_equal(bv_imageref_parse(&r, b.buf, &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "longer than 4096"));
	assert_non_null(strstr(msg, "...'"));
	assert_true(strlen(msg) < 200);
	free(msg);
	bv_error_free(err);
	err = NULL;

	/* A 300-character repository is under 4096 but over the registry's 255. */
	bv_buf_reset(&b);
	bv_buf_puts(&b, "quay.io/");
	for (int i = 0; i < 300; i++)
		bv_buf_putc(&b, 'b');
	assert_int_equal(bv_imageref_parse(&r, b.buf, &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "longer than 255"));
	free(msg);
	bv_error_free(err);

	/* 129-character tag. */
	bv_buf_reset(&b);
	bv_buf_puts(&b, "quay.io/x:");
	for (int i = 0; i < 128; i++)
		bv_buf_putc(&b, 't');
	assert_int_equal(bv_imageref_parse(&r, b.buf, NULL), 0);
	bv_imageref_release(&r);
	bv_buf_putc(&b, 't');
	assert_int_equal(bv_imageref_parse(&r, b.buf, NULL), BV_EINVALID);
	bv_buf_release(&b);
}

static void test_imageref__api_host_and_same_registry(void **state)
{
	(void)state;
	assert_string_equal(bv_imageref_api_host("docker.io"), "registry-1.docker.io");
	assert_string_equal(bv_imageref_api_host("index.docker.io"), "registry-1.docker.io");
	assert_string_equal(bv_imageref_api_host("quay.io"), "quay.io");
	assert_string_equal(bv_imageref_api_host("127.0.0.1:5000"), "127.0.0.1:5000");
	assert_true(bv_imageref_same_registry("docker.io", "registry-1.docker.io"));
	assert_true(bv_imageref_same_registry("INDEX.docker.io", "docker.io"));
	assert_true(bv_imageref_same_registry("Quay.IO", "quay.io"));
	assert_false(bv_imageref_same_registry("quay.io", "quay.io:443"));
	assert_false(bv_imageref_same_registry("docker.io", "docker.io.evil"));
}

static void test_imageref__loopback(void **state)
{
	(void)state;
	static const struct {
		const char *host;
		bool loopback;
	} cases[] = {
		{"localhost", true},
		{"LocalHost:5000", true},
		{"127.0.0.1", true},
		{"127.0.0.1:5000", true},
		{"127.255.3.4:80", true},
		{"[::1]", true},
		{"[::1]:5000", true},
		{"[0:0:0:0:0:0:0:1]:5000", true},
		{"::1", false}, /* without brackets it is not a host[:port] */
		{"[::2]:5000", false},
		{"128.0.0.1", false},
		{"10.0.0.1:5000", false},
		{"127.0.0.1.example.com", false},
		{"localhost.example.com", false},
		{"127.1", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:x", false},
		{"quay.io", false},
		{"", false},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++)
		if (bv_imageref_host_is_loopback(cases[i].host) != cases[i].loopback)
			fail_msg("loopback('%s') should be %d", cases[i].host, cases[i].loopback);
}

/* ---- mirrors ------------------------------------------------------------------------- */

static char *config_home(void)
{
	char *dir = test_mkdtemp("mirrors");
	assert_non_null(dir);
	assert_int_equal(setenv("XDG_CONFIG_HOME", dir, 1), 0);
	assert_int_equal(unsetenv("BV_MIRRORS"), 0);
	return dir;
}

static char *write_mirrors(const char *home, const char *text)
{
	char *bvdir = bv_path_join(home, "bv"), *path = bv_path_join(bvdir, "mirrors.toml");
	assert_int_equal(bv_mkdir_p(bvdir, 0755, NULL), 0);
	assert_int_equal(bv_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
	free(bvdir);
	return path;
}

static void drop(char *dir)
{
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("BV_MIRRORS");
}

static void test_imageref__mirrors_missing_file(void **state)
{
	(void)state;
	char *home = config_home();
	struct bv_mirrors *m = NULL;
	struct bv_error *err = NULL;

	assert_ok(bv_mirrors_load(&m, &err), &err);
	assert_null(err);
	assert_null(bv_mirrors_lookup(m, "quay.io"));
	assert_false(bv_mirrors_insecure(m, "quay.io"));
	bv_mirrors_free(m);
	drop(home);
}

static void test_imageref__mirrors_from_file(void **state)
{
	(void)state;
	char *home = config_home();
	struct bv_mirrors *m = NULL;
	struct bv_error *err = NULL;
	char *path = write_mirrors(home, "# mirrors for the cluster\n"
					 "[mirrors]\n"
					 "\"quay.io\" = \"127.0.0.1:5000\"\n"
					 "\"index.docker.io\" = \"Mirror.Local:5000\"\n"
					 "[insecure]\n"
					 "registries = [\"mirror.local:5000\"]\n");

	assert_ok(bv_mirrors_load(&m, &err), &err);
	assert_string_equal(bv_mirrors_lookup(m, "quay.io"), "127.0.0.1:5000");
	assert_string_equal(bv_mirrors_lookup(m, "QUAY.IO"), "127.0.0.1:5000");
	/* any spelling of Docker Hub, host names lower-cased */
	assert_string_equal(bv_mirrors_lookup(m, "docker.io"), "mirror.local:5000");
	assert_string_equal(bv_mirrors_lookup(m, "registry-1.docker.io"), "mirror.local:5000");
	assert_null(bv_mirrors_lookup(m, "ghcr.io"));
	assert_true(bv_mirrors_insecure(m, "mirror.local:5000"));
	assert_true(bv_mirrors_insecure(m, "MIRROR.local:5000"));
	assert_false(bv_mirrors_insecure(m, "mirror.local"));
	assert_false(bv_mirrors_insecure(m, "127.0.0.1:5000"));
	assert_false(bv_mirrors_insecure(m, NULL));
	bv_mirrors_free(m);
	free(path);
	drop(home);
}

static void test_imageref__mirrors_env_overrides_file(void **state)
{
	(void)state;
	char *home = config_home();
	struct bv_mirrors *m = NULL;
	struct bv_error *err = NULL;
	char *path = write_mirrors(home, "[mirrors]\n"
					 "\"quay.io\" = \"file.mirror\"\n"
					 "\"ghcr.io\" = \"ghcr.mirror\"\n");

	setenv("BV_MIRRORS", " quay.io = 127.0.0.1:5000 ,, docker.io=mirror.local,", 1);
	assert_ok(bv_mirrors_load(&m, &err), &err);
	assert_string_equal(bv_mirrors_lookup(m, "quay.io"), "127.0.0.1:5000");
	assert_string_equal(bv_mirrors_lookup(m, "ghcr.io"), "ghcr.mirror");
	assert_string_equal(bv_mirrors_lookup(m, "docker.io"), "mirror.local");
	bv_mirrors_free(m);
	free(path);
	drop(home);
}

static void test_imageref__mirrors_env_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {"quay.io",     "quay.io=",    "=x.io",
					  "quay.io=a b", "quay.io=x/y", "a=b,junk"};
	char *home = config_home();
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		struct bv_mirrors *m = NULL;
		struct bv_error *err = NULL;
		char *msg;
		setenv("BV_MIRRORS", bad[i], 1);
		if (bv_mirrors_load(&m, &err) != BV_EINVALID)
			fail_msg("BV_MIRRORS='%s' was accepted", bad[i]);
		assert_null(m);
		msg = bv_error_format(err);
		assert_true(bv_str_has_prefix(msg, "invalid BV_MIRRORS entry '"));
		free(msg);
		bv_error_free(err);
	}
	drop(home);
}

static void test_imageref__mirrors_file_errors_positioned(void **state)
{
	(void)state;
	static const struct {
		const char *text, *where, *why;
	} cases[] = {
		{"[mirrors]\n\"quay.io\" = \"a\"\nx = [\n", ":3:5: ", "unterminated array"},
		{"[mirrors]\nquay.io = \"127.0.0.1:5000\"\n", ":2:1: ", "must be a string"},
		{"[mirrors]\n\"quay.io\" = \"not a host\"\n", ":2:13: ", "registry host"},
		{"[mirrors]\n\"bad host\" = \"x.io\"\n", ":2:1: ", "not a registry host"},
		{"[insecure]\nregistries = [\"ok.io\", 3]\n", ":2:24: ", "registry hosts"},
		{"[mirrorz]\n", ":1:2: ", "unknown key 'mirrorz'"},
	};
	char *home = config_home();
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_mirrors *m = NULL;
		struct bv_error *err = NULL;
		char *path = write_mirrors(home, cases[i].text);
		char *want = bv_xasprintf("%s%s", path, cases[i].where);
		char *msg;
		assert_int_equal(bv_mirrors_load(&m, &err), BV_EINVALID);
		assert_null(m);
		msg = bv_error_format(err);
		if (!bv_str_has_prefix(msg, want) || !strstr(msg, cases[i].why))
			fail_msg("case %zu: '%s' should start '%s' and say '%s'", i, msg, want,
				 cases[i].why);
		free(msg);
		free(want);
		free(path);
		bv_error_free(err);
	}
	drop(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imageref__table),
		cmocka_unit_test(test_imageref__format_round_trip),
		cmocka_unit_test(test_imageref__format_and_pin),
		cmocka_unit_test(test_imageref__length_limits),
		cmocka_unit_test(test_imageref__api_host_and_same_registry),
		cmocka_unit_test(test_imageref__loopback),
		cmocka_unit_test(test_imageref__mirrors_missing_file),
		cmocka_unit_test(test_imageref__mirrors_from_file),
		cmocka_unit_test(test_imageref__mirrors_env_overrides_file),
		cmocka_unit_test(test_imageref__mirrors_env_invalid),
		cmocka_unit_test(test_imageref__mirrors_file_errors_positioned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
