/*
 * The Apptainer backend: docker:// sources, the pull and run command lines, version parsing,
 * the SIF cache and its records, and the whole backend against a small stand-in binary.
 */
#include <bv/imageref.h>
#include <bv/runtime.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/runtime/apptainer-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#define HEX64  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DGST   "sha256:" HEX64
#define OTHER  "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define SAMREF "quay.io/biocontainers/samtools:1.16.1--debian"

/* Fails with both vectors printed when `got` is not exactly `want` (NULL-terminated). */
static void assert_strv(const struct bv_strv *got, const char *const *want)
{
	size_t n = 0;
	bool same;
	while (want[n])
		n++;
	same = got->n == n;
	for (size_t i = 0; same && i < n; i++)
		same = !strcmp(got->v[i], want[i]);
	if (!same) {
		print_error("got:");
		bv_strv_foreach (s, got)
			print_error(" [%s]", *s);
		print_error("\nwant:");
		for (size_t i = 0; i < n; i++)
			print_error(" [%s]", want[i]);
		print_error("\n");
		fail();
	}
}

static char *mirror_home(const char *mirrors_env, const char *file_text)
{
	char *dir = test_mkdtemp("apptainer-mirrors");
	assert_non_null(dir);
	assert_int_equal(setenv("XDG_CONFIG_HOME", dir, 1), 0);
	if (mirrors_env)
		assert_int_equal(setenv("BV_MIRRORS", mirrors_env, 1), 0);
	else
		assert_int_equal(unsetenv("BV_MIRRORS"), 0);
	if (file_text) {
		_cleanup_free_ char *bvdir = bv_path_join(dir, "bv");
		_cleanup_free_ char *path = bv_path_join(bvdir, "mirrors.toml");
		assert_int_equal(bv_mkdir_p(bvdir, 0755, NULL), 0);
		assert_int_equal(
			bv_write_file_atomic(path, file_text, strlen(file_text), 0644, NULL), 0);
	}
	return dir;
}

static void drop_home(char *dir)
{
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("BV_MIRRORS");
}

/* ---- sources ------------------------------------------------------------------------------ */

static void test_apptainer__source_without_mirror(void **state)
{
	static const struct {
		const char *reference, *uri;
		bool plain_http;
	} cases[] = {
		{SAMREF, "docker://quay.io/biocontainers/samtools@" DGST, false},
		/* Docker Hub names: "library/" added, docker.io spelt out, tag dropped */
		{"ubuntu:22.04", "docker://docker.io/library/ubuntu@" DGST, false},
		{"biocontainers/bwa", "docker://docker.io/biocontainers/bwa@" DGST, false},
		{"index.docker.io/staphb/spades:3.15", "docker://docker.io/staphb/spades@" DGST,
		 false},
		/* a port is not a tag */
		{"registry.example.org:5000/team/tool:1.0",
		 "docker://registry.example.org:5000/team/tool@" DGST, false},
		/* loopback registries are plain http, as for bv's own client */
		{"127.0.0.1:5000/biocontainers/samtools:1",
		 "docker://127.0.0.1:5000/biocontainers/samtools@" DGST, true},
		{"localhost:5000/x", "docker://localhost:5000/x@" DGST, true},
		/* a reference already pinned at the same digest */
		{"quay.io/biocontainers/samtools:1.21@" DGST,
		 "docker://quay.io/biocontainers/samtools@" DGST, false},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		struct bv_apptainer_source src = {0};
		struct bv_error *err = NULL;
		assert_ok(bv_apptainer_source(&src, cases[i].reference, DGST, NULL, &err), &err);
		if (strcmp(src.uri, cases[i].uri) != 0 || src.plain_http != cases[i].plain_http)
			fail_msg("%s: got %s plain=%d, want %s plain=%d", cases[i].reference,
				 src.uri, src.plain_http, cases[i].uri, cases[i].plain_http);
		bv_apptainer_source_release(&src);
		assert_null(src.uri);
	}
}

static void test_apptainer__source_through_mirror(void **state)
{
	char *home = mirror_home("quay.io=127.0.0.1:5999,docker.io=mirror.example:5000",
				 "[insecure]\nregistries = [\"hub-cache.example\"]\n");
	struct bv_mirrors *m = NULL;
	struct bv_apptainer_source src = {0};
	struct bv_error *err = NULL;
	(void)state;
	assert_ok(bv_mirrors_load(&m, &err), &err);

	assert_ok(bv_apptainer_source(&src, SAMREF, DGST, m, &err), &err);
	assert_string_equal(src.uri, "docker://127.0.0.1:5999/biocontainers/samtools@" DGST);
	assert_string_equal(src.host, "127.0.0.1:5999");
	assert_true(src.plain_http);
	bv_apptainer_source_release(&src);

	/* a remote mirror speaks https unless it is listed insecure */
	assert_ok(bv_apptainer_source(&src, "ubuntu", DGST, m, &err), &err);
	assert_string_equal(src.uri, "docker://mirror.example:5000/library/ubuntu@" DGST);
	assert_false(src.plain_http);
	bv_apptainer_source_release(&src);

	/* registries without a mirror are pulled from directly */
	assert_ok(bv_apptainer_source(&src, "ghcr.io/o/t:1", DGST, m, &err), &err);
	assert_string_equal(src.uri, "docker://ghcr.io/o/t@" DGST);
	assert_string_equal(src.host, "ghcr.io");
	bv_apptainer_source_release(&src);
	bv_mirrors_free(m);
	drop_home(home);

	home = mirror_home("quay.io=hub-cache.example",
			   "[insecure]\nregistries = [\"hub-cache.example\"]\n");
	m = NULL;
	assert_ok(bv_mirrors_load(&m, &err), &err);
	assert_ok(bv_apptainer_source(&src, SAMREF, DGST, m, &err), &err);
	assert_string_equal(src.uri, "docker://hub-cache.example/biocontainers/samtools@" DGST);
	assert_true(src.plain_http);
	bv_apptainer_source_release(&src);
	bv_mirrors_free(m);
	drop_home(home);
}

static void test_apptainer__source_pins_the_locked_digest(void **state)
{
	struct bv_apptainer_source src = {0};
	struct bv_error *err = NULL;
	(void)state;
	/* a reference pinned elsewhere */
	assert_int_equal(bv_apptainer_source(&src, "quay.io/x/y@" OTHER, DGST, NULL, &err),
			 BV_EINVALID);
	assert_non_null(strstr(err->message, DGST));
	bv_error_free(err);
	err = NULL;
	/* digests bv cannot verify, or none */
	assert_int_equal(bv_apptainer_source(&src, SAMREF, "sha256:abc", NULL, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_apptainer_source(&src, SAMREF, NULL, NULL, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_apptainer_source(&src, SAMREF, "sha512:" HEX64, NULL, &err),
			 BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	/* an unparsable reference */
	assert_int_equal(bv_apptainer_source(&src, "Quay.io/UPPER/case", DGST, NULL, &err),
			 BV_EINVALID);
	bv_error_free(err);
	assert_null(src.uri);
}

static void test_apptainer__pull_argv(void **state)
{
	char uri[] = "docker://quay.io/b/s@" DGST, host[] = "quay.io";
	struct bv_apptainer_source src = {.uri = uri, .host = host};
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, b = BV_STRV_INIT;
	(void)state;
	bv_apptainer_pull_argv(&a, "/opt/apptainer/bin/apptainer", "/c/sif/tmp/x.sif", &src);
	assert_strv(&a,
		    (const char *const[]){"/opt/apptainer/bin/apptainer", "pull", "--disable-cache",
					  "/c/sif/tmp/x.sif", "docker://quay.io/b/s@" DGST, NULL});
	src.plain_http = true;
	bv_apptainer_pull_argv(&b, "apptainer", "/s.sif", &src);
	assert_strv(&b, (const char *const[]){"apptainer", "pull", "--disable-cache", "--no-https",
					      "/s.sif", "docker://quay.io/b/s@" DGST, NULL});
}

/* ---- run command lines ------------------------------------------------------------------- */

static void test_apptainer__run_argv_mounts_env_gpu(void **state)
{
	const struct bv_run_mount mounts[] = {
		{"/home/u/proj", "/workspace", false, BV_MOUNT_WORKSPACE},
		{"/refs/hg38", "/data/hg38", true, BV_MOUNT_DATA},
		{"/c/tool-cache/colabfold/cache-colabfold", "/cache/colabfold", false,
		 BV_MOUNT_CACHE},
	};
	const char *const argv[] = {"samtools", "view", "-h", "in.bam", NULL};
	const char *const env[] = {"LC_ALL=C", "OPTS=-a=b c", NULL};
	struct bv_run_request req = {.image = {.reference = SAMREF, .digest = DGST},
				     .argv = argv,
				     .env = env,
				     .mounts = mounts,
				     .n_mounts = BV_ARRAY_SIZE(mounts),
				     .workdir = "/workspace/sub",
				     .gpu = true};
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, e = BV_STRV_INIT;
	struct bv_error *err = NULL;
	(void)state;
	assert_false(bv_apptainer_wants_cache_fallbacks(&req));
	/* a fallback directory is ignored when the request has cache mounts */
	assert_ok(bv_apptainer_run_argv(&a, &e, "/usr/bin/apptainer", "/c/sif/x.sif", &req,
					"/c/tool-cache/samtools", &err),
		  &err);
	assert_strv(&a, (const char *const[]){
				"/usr/bin/apptainer",
				"exec",
				"--cleanenv",
				"--no-home",
				"--pwd",
				"/workspace/sub",
				"--bind",
				"/home/u/proj:/workspace",
				"--bind",
				"/refs/hg38:/data/hg38:ro",
				"--bind",
				"/c/tool-cache/colabfold/cache-colabfold:/cache/colabfold",
				"--nv",
				"--env",
				"LC_ALL=C",
				"--env",
				"OPTS=-a=b c",
				"/c/sif/x.sif",
				"samtools",
				"view",
				"-h",
				"in.bam",
				NULL});
	assert_int_equal(e.n, 0);
}

static void test_apptainer__run_argv_fallbacks_and_defaults(void **state)
{
	const struct bv_run_mount mounts[] = {
		{"/p", "/workspace", false, BV_MOUNT_WORKSPACE},
	};
	struct bv_run_request req = {.image = {.reference = SAMREF, .digest = DGST},
				     .mounts = mounts,
				     .n_mounts = BV_ARRAY_SIZE(mounts)};
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, e = BV_STRV_INIT, b = BV_STRV_INIT;
	struct bv_error *err = NULL;
	(void)state;
	assert_true(bv_apptainer_wants_cache_fallbacks(&req));
	/* no argv: the image's own command; no workdir: "/"; no GPU: no --nv */
	assert_ok(
		bv_apptainer_run_argv(&a, &e, "apptainer", "/s.sif", &req, "/c/tc/samtools", &err),
		&err);
	assert_strv(&a, (const char *const[]){"apptainer", "run", "--cleanenv", "--no-home",
					      "--pwd", "/", "--bind", "/p:/workspace", "--bind",
					      "/c/tc/samtools/cache:/cache", "--bind",
					      "/c/tc/samtools/root-cache:/root/.cache", "/s.sif",
					      NULL});
	/* without a fallback directory there are no fallbacks */
	assert_ok(bv_apptainer_run_argv(&b, &e, "apptainer", "/s.sif", &req, NULL, &err), &err);
	assert_false(bv_strv_contains(&b, "/c/tc/samtools/cache:/cache"));
	assert_int_equal(b.n, 9);
}

static void test_apptainer__run_argv_fallback_skips_claimed_target(void **state)
{
	const struct bv_run_mount mounts[] = {
		{"/p", "/workspace", false, BV_MOUNT_WORKSPACE},
		{"/mine", "/root/.cache", false, BV_MOUNT_OTHER},
	};
	struct bv_run_request req = {.image = {.reference = SAMREF, .digest = DGST},
				     .mounts = mounts,
				     .n_mounts = BV_ARRAY_SIZE(mounts)};
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, e = BV_STRV_INIT;
	struct bv_error *err = NULL;
	(void)state;
	assert_ok(bv_apptainer_run_argv(&a, &e, "apptainer", "/s.sif", &req, "/fb", &err), &err);
	assert_true(bv_strv_contains(&a, "/fb/cache:/cache"));
	assert_true(bv_strv_contains(&a, "/mine:/root/.cache"));
	assert_false(bv_strv_contains(&a, "/fb/root-cache:/root/.cache"));
}

static void test_apptainer__run_argv_env_that_env_flag_cannot_carry(void **state)
{
	const char *const env[] = {"A=1,2", "B=say \"hi\"", "C=plain", "D=two\nlines", NULL};
	struct bv_run_request req = {.image = {.reference = SAMREF, .digest = DGST}, .env = env};
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, e = BV_STRV_INIT, sa = BV_STRV_INIT,
				      se = BV_STRV_INIT;
	struct bv_error *err = NULL;
	(void)state;
	assert_ok(bv_apptainer_run_argv(&a, &e, "/bin/apptainer", "/s.sif", &req, NULL, &err),
		  &err);
	assert_strv(&e, (const char *const[]){"APPTAINERENV_A=1,2", "APPTAINERENV_B=say \"hi\"",
					      "APPTAINERENV_D=two\nlines", NULL});
	assert_true(bv_strv_contains(&a, "C=plain"));
	assert_false(bv_strv_contains(&a, "A=1,2"));
	/* the singularity binary reads SINGULARITYENV_ */
	assert_ok(bv_apptainer_run_argv(&sa, &se, "/usr/local/bin/singularity", "/s.sif", &req,
					NULL, &err),
		  &err);
	assert_string_equal(se.v[0], "SINGULARITYENV_A=1,2");
}

static void test_apptainer__run_argv_rejects(void **state)
{
	static const struct {
		struct bv_run_mount mount;
		const char *env, *workdir, *needle;
	} cases[] = {
		{{"/a:b", "/x", false, BV_MOUNT_OTHER}, NULL, NULL, "/a:b"},
		{{"/a,b", "/x", false, BV_MOUNT_OTHER}, NULL, NULL, "/a,b"},
		{{"/a", "/x:y", true, BV_MOUNT_DATA}, NULL, NULL, "/x:y"},
		{{"/a", "relative", false, BV_MOUNT_OTHER}, NULL, NULL, "relative"},
		{{"/a", "/x", false, BV_MOUNT_OTHER}, "NOEQUALS", NULL, "NOEQUALS"},
		{{"/a", "/x", false, BV_MOUNT_OTHER}, "1BAD=x", NULL, "1BAD=x"},
		{{"/a", "/x", false, BV_MOUNT_OTHER}, "=x", NULL, "'=x'"},
		{{"/a", "/x", false, BV_MOUNT_OTHER}, NULL, "work", "work"},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		const char *env[] = {cases[i].env, NULL};
		struct bv_run_request req = {.image = {.reference = SAMREF, .digest = DGST},
					     .mounts = &cases[i].mount,
					     .n_mounts = 1,
					     .env = env,
					     .workdir = cases[i].workdir};
		_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, e = BV_STRV_INIT;
		struct bv_error *err = NULL;
		assert_int_equal(
			bv_apptainer_run_argv(&a, &e, "apptainer", "/s.sif", &req, NULL, &err),
			BV_EINVALID);
		if (!strstr(err->message, cases[i].needle))
			fail_msg("case %zu: '%s' does not name '%s'", i, err->message,
				 cases[i].needle);
		assert_int_equal(a.n, 0); /* nothing appended on failure */
		bv_error_free(err);
	}
}

static void test_apptainer__parse_version(void **state)
{
	static const struct {
		const char *text, *version;
	} cases[] = {
		{"apptainer version 1.3.4\n", "1.3.4"},
		{"apptainer version 1.3.4-double\n", "1.3.4-double"},
		{"singularity-ce version 4.1.0-jammy\n", "4.1.0-jammy"},
		{"singularity version 3.8.7-1.el8\nmore\n", "3.8.7-1.el8"},
		{"  version 1.0.0  \r\n", "1.0.0"},
		{"1.2.3", "1.2.3"},
		{"", NULL},
		{"no version here at all\n", NULL},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		char *v = bv_apptainer_parse_version(cases[i].text);
		if (!cases[i].version ? v != NULL : !v || strcmp(v, cases[i].version) != 0)
			fail_msg("'%s': got '%s', want '%s'", cases[i].text, v ? v : "(null)",
				 cases[i].version ? cases[i].version : "(null)");
		free(v);
	}
	assert_null(bv_apptainer_parse_version(NULL));
}

static void test_apptainer__sif_path(void **state)
{
	char *p = NULL;
	struct bv_error *err = NULL;
	(void)state;
	assert_ok(bv_apptainer_sif_path(&p, "/c", DGST, &err), &err);
	assert_string_equal(p, "/c/sif/sha256-" HEX64 ".sif");
	free(p);
	p = NULL;
	assert_int_equal(bv_apptainer_sif_path(&p, "/c", "sha256:../../etc", &err), BV_EINVALID);
	assert_null(p);
	bv_error_free(err);
}

/* ---- the backend against a stand-in binary ----------------------------------------------- */

/*
 * A shell script standing in for apptainer: logs every call, "pulls" by writing a file
 * derived from the URI (or fails like a 404 when the URI names MISSING), and "runs" by
 * printing its arguments and exiting with $FAKE_STATUS.
 */
static const char fake_script[] =
	"#!/bin/sh\n"
	"echo \"$*\" >>\"$FAKE_LOG\"\n"
	"case $1 in\n"
	"--version) echo 'apptainer version 7.8.9-unit' ;;\n"
	"pull)\n"
	"  shift; while [ \"${1#--}\" != \"$1\" ]; do shift; done\n"
	"  case $2 in *" OTHER ") echo 'INFO: fetching'; echo 'FATAL: manifest unknown' >&2;"
	" exit 255 ;; esac\n"
	"  [ -e \"$1\" ] && { echo 'FATAL: exists' >&2; exit 255; }\n"
	"  printf 'SIF of %s\\n' \"$2\" >\"$1\" ;;\n"
	"run | exec)\n"
	"  echo \"ran $*\"; echo \"APPTAINERENV_A=$APPTAINERENV_A\" >&2; exit ${FAKE_STATUS:-0} ;;\n"
	"esac\n";

struct fake {
	char *dir, *bin, *cache, *log;
	struct bv_runtime *rt;
};

static void fake_setup(struct fake *f)
{
	struct bv_error *err = NULL;
	f->dir = test_mkdtemp("apptainer");
	assert_non_null(f->dir);
	f->bin = bv_path_join(f->dir, "apptainer");
	f->cache = bv_path_join(f->dir, "cache");
	f->log = bv_path_join(f->dir, "log");
	assert_int_equal(bv_write_file_atomic(f->bin, fake_script, strlen(fake_script), 0755, NULL),
			 0);
	assert_int_equal(setenv("BV_APPTAINER", f->bin, 1), 0);
	assert_int_equal(setenv("BV_CACHE_DIR", f->cache, 1), 0);
	assert_int_equal(setenv("FAKE_LOG", f->log, 1), 0);
	assert_int_equal(setenv("BV_MIRRORS", "quay.io=127.0.0.1:5999", 1), 0);
	assert_int_equal(setenv("XDG_CONFIG_HOME", f->dir, 1), 0);
	assert_ok(bv_runtime_apptainer_new(&f->rt, &err), &err);
}

static void fake_teardown(struct fake *f)
{
	/* what bv_runtime_free() does, without linking every backend into this test */
	f->rt->ops->free(f->rt);
	free(f->rt);
	assert_int_equal(bv_rm_rf(f->dir, NULL), 0);
	free(f->dir);
	free(f->bin);
	free(f->cache);
	free(f->log);
	unsetenv("BV_APPTAINER");
	unsetenv("BV_CACHE_DIR");
	unsetenv("FAKE_LOG");
	unsetenv("FAKE_STATUS");
	unsetenv("BV_MIRRORS");
	unsetenv("XDG_CONFIG_HOME");
}

static size_t log_count(const struct fake *f, const char *needle)
{
	struct bv_buf text = BV_BUF_INIT;
	size_t n = 0;
	if (bv_buf_read_file(&text, f->log, 1u << 20, NULL) == 0)
		for (const char *p = text.buf; (p = strstr(p, needle)); p++)
			n++;
	bv_buf_release(&text);
	return n;
}

static void test_apptainer__backend_health(void **state)
{
	struct fake f = {0};
	struct bv_runtime_info info = {0};
	struct bv_error *err = NULL;
	(void)state;
	fake_setup(&f);
	assert_string_equal(f.rt->ops->name, "apptainer");
	assert_true(f.rt->ops->is_usable(f.rt));
	assert_ok(f.rt->ops->health(f.rt, &info, &err), &err);
	assert_string_equal(info.name, "apptainer");
	assert_string_equal(info.version, "7.8.9-unit");
	assert_string_equal(info.detail, f.bin);
	free(info.name);
	free(info.version);
	free(info.detail);
	fake_teardown(&f);
}

static void test_apptainer__backend_missing_binary(void **state)
{
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	struct bv_image_spec img = {.reference = SAMREF, .digest = DGST};
	char *dir = test_mkdtemp("apptainer-nobin");
	const char *old = getenv("PATH");
	char *saved = old ? bv_xstrdup(old) : NULL;
	(void)state;
	assert_int_equal(setenv("PATH", dir, 1), 0);
	assert_int_equal(setenv("BV_CACHE_DIR", dir, 1), 0);
	unsetenv("BV_APPTAINER");
	assert_ok(bv_runtime_apptainer_new(&rt, &err), &err);
	assert_false(rt->ops->is_usable(rt));
	assert_int_equal(rt->ops->ensure(rt, &img, 1, NULL, &err), BV_ENOTFOUND);
	assert_non_null(strstr(err->message, "neither 'apptainer' nor 'singularity'"));
	bv_error_free(err);
	err = NULL;
	rt->ops->free(rt);
	free(rt);
	/* BV_APPTAINER naming something that is not there */
	assert_int_equal(setenv("BV_APPTAINER", "/nonexistent/apptainer", 1), 0);
	assert_ok(bv_runtime_apptainer_new(&rt, &err), &err);
	assert_false(rt->ops->is_usable(rt));
	{
		struct bv_runtime_info info = {0};
		assert_int_equal(rt->ops->health(rt, &info, &err), BV_ENOTFOUND);
		assert_non_null(strstr(err->message, "/nonexistent/apptainer"));
		bv_error_free(err);
	}
	rt->ops->free(rt);
	free(rt);
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
	unsetenv("BV_APPTAINER");
	unsetenv("BV_CACHE_DIR");
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

static void test_apptainer__backend_ensure_run_remove(void **state)
{
	struct fake f = {0};
	struct bv_error *err = NULL;
	struct bv_image_spec img = {.tool_id = "samtools", .reference = SAMREF, .digest = DGST};
	struct bv_image_info info = {0};
	_cleanup_free_ char *sif = NULL, *record = NULL, *fb = NULL;
	bool available = true;
	(void)state;
	fake_setup(&f);
	sif = bv_xasprintf("%s/sif/sha256-%s.sif", f.cache, HEX64);
	record = bv_xasprintf("%s.json", sif);

	assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
	assert_false(available);
	assert_ok(f.rt->ops->ensure(f.rt, &img, 1, NULL, &err), &err);
	assert_int_equal(log_count(&f, "pull --disable-cache --no-https "), 1);
	assert_int_equal(log_count(&f, "docker://127.0.0.1:5999/biocontainers/samtools@" DGST), 1);
	assert_true(bv_path_exists(sif));
	assert_true(bv_path_exists(record));
	/* staging files are gone */
	{
		_cleanup_free_ char *tmp = bv_xasprintf("%s/sif/tmp", f.cache);
		assert_int_equal(test_count_entries(tmp), 0);
	}
	assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
	assert_true(available);
	assert_ok(f.rt->ops->inspect(f.rt, &img, &info, &err), &err);
	assert_true(info.size > 20);

	/* a second ensure finds it and pulls nothing */
	assert_ok(f.rt->ops->ensure(f.rt, &img, 1, NULL, &err), &err);
	assert_int_equal(log_count(&f, "pull "), 1);

	/* a run: captured output, exit status, fallbacks created, env through the variable */
	{
		const char *const argv[] = {"samtools", "--version", NULL};
		const char *const env[] = {"A=1,2", NULL};
		struct bv_run_request req = {.image = img,
					     .argv = argv,
					     .env = env,
					     .workdir = "/workspace",
					     .stdio = BV_STDIO_CAPTURE};
		struct bv_run_result res = {0};
		assert_int_equal(setenv("FAKE_STATUS", "3", 1), 0);
		assert_ok(f.rt->ops->run(f.rt, &req, &res, &err), &err);
		assert_int_equal(res.status, 3);
		assert_non_null(strstr(res.out, "ran exec --cleanenv --no-home --pwd "
						"/workspace --bind "));
		assert_non_null(strstr(res.out, sif));
		assert_non_null(strstr(res.out, " samtools --version"));
		assert_string_equal(res.err, "APPTAINERENV_A=1,2\n");
		assert_int_equal(res.err_len, strlen(res.err));
		free(res.out);
		free(res.err);
		fb = bv_xasprintf("%s/tool-cache/samtools/root-cache", f.cache);
		assert_true(bv_path_exists(fb));
	}

	/* a SIF changed behind bv's back: run refuses, ensure re-hashes and pulls again */
	{
		FILE *fp = fopen(sif, "a");
		struct bv_run_request req = {.image = img, .stdio = BV_STDIO_CAPTURE};
		struct bv_run_result res = {0};
		assert_non_null(fp);
		fputs("junk", fp);
		fclose(fp);
		assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
		assert_false(available);
		assert_int_equal(f.rt->ops->run(f.rt, &req, &res, &err), BV_EINVALID);
		assert_non_null(strstr(err->message, "does not match its record"));
		bv_error_free(err);
		err = NULL;
		assert_ok(f.rt->ops->ensure(f.rt, &img, 1, NULL, &err), &err);
		assert_int_equal(log_count(&f, "pull "), 2);
		assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
		assert_true(available);
	}

	/* touched but unchanged: the record is refreshed, nothing is pulled */
	{
		struct timespec times[2] = {{.tv_sec = 1000000000, .tv_nsec = 0},
					    {.tv_sec = 1000000000, .tv_nsec = 0}};
		assert_int_equal(utimensat(AT_FDCWD, sif, times, 0), 0);
		assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
		assert_false(available);
		assert_ok(f.rt->ops->ensure(f.rt, &img, 1, NULL, &err), &err);
		assert_int_equal(log_count(&f, "pull "), 2);
		assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
		assert_true(available);
	}

	/* remove, twice */
	assert_ok(f.rt->ops->remove(f.rt, &img, &err), &err);
	assert_false(bv_path_exists(sif));
	assert_false(bv_path_exists(record));
	assert_ok(f.rt->ops->remove(f.rt, &img, &err), &err);
	{
		struct bv_run_request req = {.image = img, .stdio = BV_STDIO_CAPTURE};
		struct bv_run_result res = {0};
		assert_int_equal(f.rt->ops->run(f.rt, &req, &res, &err), BV_ENOTFOUND);
		assert_non_null(strstr(err->message, "bv sync"));
		bv_error_free(err);
		err = NULL;
		assert_int_equal(f.rt->ops->inspect(f.rt, &img, &info, &err), BV_ENOTFOUND);
		bv_error_free(err);
	}
	fake_teardown(&f);
}

static void test_apptainer__backend_failed_pull(void **state)
{
	struct fake f = {0};
	struct bv_error *err = NULL;
	struct bv_image_spec img = {.tool_id = "bwa", .reference = SAMREF, .digest = OTHER};
	_cleanup_free_ char *tmp = NULL, *msg = NULL;
	bool available = true;
	(void)state;
	fake_setup(&f);
	assert_int_equal(f.rt->ops->ensure(f.rt, &img, 1, NULL, &err), BV_ERR);
	msg = bv_error_format(err);
	/* one error: the image, the tool, the exit status and apptainer's last lines */
	assert_non_null(strstr(msg, SAMREF " of bwa"));
	assert_non_null(strstr(msg, "exit status 255"));
	assert_non_null(strstr(msg, "\n    INFO: fetching\n    FATAL: manifest unknown"));
	bv_error_free(err);
	err = NULL;
	tmp = bv_xasprintf("%s/sif/tmp", f.cache);
	assert_int_equal(test_count_entries(tmp), 0);
	assert_ok(f.rt->ops->is_available(f.rt, &img, &available, &err), &err);
	assert_false(available);
	fake_teardown(&f);
}

static void test_apptainer__verify(void **state)
{
	struct fake f = {0};
	struct bv_error *err = NULL;
	struct bv_image_spec img = {.reference = SAMREF, .digest = DGST};
	_cleanup_strv_ struct bv_strv problems = BV_STRV_INIT;
	_cleanup_free_ char *sif = NULL, *stray = NULL;
	uint64_t checked = 99;
	(void)state;
	fake_setup(&f);
	/* an empty cache has no problems */
	assert_ok(bv_apptainer_verify(&problems, &checked, f.cache, &err), &err);
	assert_int_equal(checked, 0);
	assert_ok(f.rt->ops->ensure(f.rt, &img, 1, NULL, &err), &err);
	assert_ok(bv_apptainer_verify(&problems, &checked, f.cache, &err), &err);
	assert_int_equal(checked, 1);
	assert_int_equal(problems.n, 0);

	/* same size, same mtime, other bytes: only the full hash sees it */
	sif = bv_xasprintf("%s/sif/sha256-%s.sif", f.cache, HEX64);
	{
		struct stat st;
		struct timespec times[2];
		FILE *fp;
		assert_int_equal(stat(sif, &st), 0);
		fp = fopen(sif, "r+");
		assert_non_null(fp);
		fputc('X', fp);
		fclose(fp);
		times[0] = st.st_atim;
		times[1] = st.st_mtim;
		assert_int_equal(utimensat(AT_FDCWD, sif, times, 0), 0);
	}
	stray = bv_xasprintf("%s/sif/sha256-%s.sif", f.cache, OTHER + 7);
	assert_int_equal(bv_write_file_atomic(stray, "x", 1, 0644, NULL), 0);
	assert_ok(bv_apptainer_verify(&problems, &checked, f.cache, &err), &err);
	assert_int_equal(checked, 2);
	assert_int_equal(problems.n, 2);
	bv_strv_sort(&problems);
	assert_non_null(strstr(problems.v[0], "sha256-" HEX64 ".sif: sha256:"));
	assert_non_null(strstr(problems.v[0], "does not match its record"));
	assert_non_null(strstr(problems.v[1], ": no record"));
	fake_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apptainer__source_without_mirror),
		cmocka_unit_test(test_apptainer__source_through_mirror),
		cmocka_unit_test(test_apptainer__source_pins_the_locked_digest),
		cmocka_unit_test(test_apptainer__pull_argv),
		cmocka_unit_test(test_apptainer__run_argv_mounts_env_gpu),
		cmocka_unit_test(test_apptainer__run_argv_fallbacks_and_defaults),
		cmocka_unit_test(test_apptainer__run_argv_fallback_skips_claimed_target),
		cmocka_unit_test(test_apptainer__run_argv_env_that_env_flag_cannot_carry),
		cmocka_unit_test(test_apptainer__run_argv_rejects),
		cmocka_unit_test(test_apptainer__parse_version),
		cmocka_unit_test(test_apptainer__sif_path),
		cmocka_unit_test(test_apptainer__backend_health),
		cmocka_unit_test(test_apptainer__backend_missing_binary),
		cmocka_unit_test(test_apptainer__backend_ensure_run_remove),
		cmocka_unit_test(test_apptainer__backend_failed_pull),
		cmocka_unit_test(test_apptainer__verify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
