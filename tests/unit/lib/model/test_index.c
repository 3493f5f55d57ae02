/*
 * The registry index against real directories and real git repositories: local registries
 * used in place, clones through file:// URLs into a private BV_CACHE_DIR, TTL refreshes,
 * the offline fallback and credential redaction.  Nothing touches the network: the only
 * remote URLs point at 127.0.0.1 port 1, which refuses connections.
 *
 * argv[1] is the sample registry (../shared/bv-registry-sample).
 */
#include <bv/error.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/model/index-internal.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"

static const char *sample;

/* A private HOME, XDG cache and BV_CACHE_DIR under a new temporary directory. */
static char *sandbox(void)
{
	char *dir = test_mkdtemp("index");
	char *real, *p;
	assert_non_null(dir);
	real = realpath(dir, NULL);
	assert_non_null(real);
	free(dir);
	p = bv_path_join(real, "home");
	assert_int_equal(mkdir(p, 0700), 0);
	setenv("HOME", p, 1);
	free(p);
	p = bv_path_join(real, "xdg");
	setenv("XDG_CACHE_HOME", p, 1);
	free(p);
	p = bv_path_join(real, "cache");
	setenv("BV_CACHE_DIR", p, 1);
	free(p);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	unsetenv("BV_REGISTRY");
	unsetenv("BV_INDEX_TTL");
	return real;
}

static void drop(char *dir)
{
	assert_int_equal(bv_rm_rf(dir, NULL), 0);
	free(dir);
}

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	va_start(ap, fmt);
	cmd = bv_xvasprintf(fmt, ap);
	va_end(ap);
	{
		/* stdout is cmocka's TAP stream: keep git's chatter out of it. */
		char *quiet = bv_xasprintf("( %s ) >&2", cmd);
		free(cmd);
		cmd = quiet;
	}
	if (system(cmd) != 0) {
		print_error("command failed: %s\n", cmd);
		free(cmd);
		fail();
	}
	free(cmd);
}

static void git_commit(const char *dir, const char *msg)
{
	sh("git -C '%s' add -A && git -C '%s' -c user.name=t -c user.email=t@t commit -qm '%s'",
	   dir, dir, msg);
}

/* A git repository at <base>/<name> with blast, bwa, pdbaa and index.json from the sample. */
static char *make_origin(const char *base, const char *name)
{
	char *dir = bv_path_join(base, name);
	sh("mkdir -p '%s/tools' '%s/data' && cp -R '%s/tools/blast' '%s/tools/bwa' '%s/tools/' && "
	   "cp -R '%s/data/pdbaa' '%s/data/' && cp '%s/index.json' '%s/' && chmod -R u+w '%s'",
	   dir, dir, sample, sample, dir, sample, dir, sample, dir, dir);
	sh("git -c init.defaultBranch=main init -q '%s'", dir);
	git_commit(dir, "init");
	return dir;
}

static char *file_url(const char *path)
{
	return bv_xasprintf("file://%s", path);
}

static struct bv_index *open_ok(const char *url, enum bv_index_refresh mode)
{
	struct bv_error *err = NULL;
	struct bv_index *idx = NULL;
	assert_ok(bv_index_open(&idx, url, mode, &err), &err);
	assert_non_null(idx);
	return idx;
}

/* Opens `url`, expects failure with `code`, returns the formatted message. */
static char *open_fail(const char *url, enum bv_index_refresh mode, int code)
{
	struct bv_error *err = NULL;
	struct bv_index *idx = NULL;
	char *msg;
	assert_int_equal(bv_index_open(&idx, url, mode, &err), code);
	assert_null(idx);
	msg = bv_error_format(err);
	bv_error_free(err);
	return msg;
}

/* The versions of `tool` joined with spaces. */
static char *versions(const struct bv_index *idx, const char *tool, bool data)
{
	struct bv_error *err = NULL;
	struct bv_strv v = BV_STRV_INIT;
	char *joined = bv_xstrdup("");
	if (data)
		assert_ok(bv_index_data_versions(&v, idx, tool, &err), &err);
	else
		assert_ok(bv_index_tool_versions(&v, idx, tool, &err), &err);
	bv_strv_foreach (s, &v) {
		char *next = bv_xasprintf("%s%s%s", joined, *joined ? " " : "", *s);
		free(joined);
		joined = next;
	}
	bv_strv_clear(&v);
	return joined;
}

static void assert_versions(const struct bv_index *idx, const char *tool, bool data,
			    const char *want)
{
	char *got = versions(idx, tool, data);
	assert_string_equal(got, want);
	free(got);
}

/* Number of entries in `dir` (excluding . and ..) whose name contains `part`. */
static int count_entries(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strstr(de->d_name, part))
			n++;
	closedir(d);
	return n;
}

static void add_blast_version(const char *origin, const char *version)
{
	sh("cp '%s/tools/blast/2.15.0.toml' '%s/tools/blast/%s.toml'", origin, origin, version);
	git_commit(origin, version);
}

static void test_index__url_choose(void **state)
{
	(void)state;
	unsetenv("BV_REGISTRY");
	assert_string_equal(bv_registry_url_choose(NULL, NULL), BV_DEFAULT_REGISTRY);
	assert_string_equal(bv_registry_url_choose("", ""), BV_DEFAULT_REGISTRY);
	assert_string_equal(bv_registry_url_choose(NULL, "toml"), "toml");
	setenv("BV_REGISTRY", "", 1);
	assert_string_equal(bv_registry_url_choose(NULL, "toml"), "toml");
	setenv("BV_REGISTRY", "env", 1);
	assert_string_equal(bv_registry_url_choose(NULL, "toml"), "env");
	assert_string_equal(bv_registry_url_choose("", "toml"), "env");
	assert_string_equal(bv_registry_url_choose("flag", "toml"), "flag");
	unsetenv("BV_REGISTRY");
}

static void test_index__redact_url(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"https://user:secret@host/p", "https://***@host/p"},
		{"https://tok@host:8443/a/b.git", "https://***@host:8443/a/b.git"},
		{"https://u:p@ss@host/x", "https://***@host/x"},
		{"https://host/a@b", "https://host/a@b"},
		{"git@github.com:o/r.git", "git@github.com:o/r.git"},
		{"/local/path", "/local/path"},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		char *got = bv_index_redact_url(cases[i][0]);
		assert_string_equal(got, cases[i][1]);
		free(got);
	}
}

static void test_index__local_directory_in_place(void **state)
{
	(void)state;
	char *base = sandbox();
	char *real = realpath(sample, NULL);
	char *cache_index = bv_path_join(base, "cache/index");
	char *cwd = getcwd(NULL, 0);
	char *url, *msg, *parent, *slash;
	struct bv_index *idx;

	/* Even REFRESH_ALWAYS leaves a local directory alone: nothing is cloned. */
	idx = open_ok(sample, BV_INDEX_REFRESH_ALWAYS);
	assert_string_equal(bv_index_root(idx), real);
	assert_string_equal(bv_index_url(idx), sample);
	assert_null(bv_index_warning(idx));
	assert_versions(idx, "blast", false, "2.14.0 2.15.0");
	bv_index_free(idx);
	assert_false(bv_path_exists(cache_index));

	/* A relative path, resolved against the current directory. */
	parent = bv_xstrdup(real);
	slash = strrchr(parent, '/');
	assert_true(slash && slash != parent); /* the sample is not directly below "/" */
	*slash = '\0';
	assert_int_equal(chdir(parent), 0);
	idx = open_ok(slash + 1, BV_INDEX_OFFLINE);
	assert_string_equal(bv_index_root(idx), real);
	bv_index_free(idx);
	assert_int_equal(chdir(cwd), 0);

	/* A file:// URL to a directory that is not a repository is a local directory too. */
	url = file_url(real);
	idx = open_ok(url, BV_INDEX_REFRESH_ALWAYS);
	assert_string_equal(bv_index_root(idx), real);
	bv_index_free(idx);
	free(url);
	assert_false(bv_path_exists(cache_index));

	url = bv_path_join(base, "missing");
	msg = open_fail(url, BV_INDEX_REFRESH_STALE, BV_ENOTFOUND);
	assert_non_null(strstr(msg, "does not exist"));
	assert_non_null(strstr(msg, url));
	free(msg);
	free(url);
	url = bv_path_join(real, "index.json");
	msg = open_fail(url, BV_INDEX_REFRESH_STALE, BV_EINVALID);
	assert_non_null(strstr(msg, "is not a directory"));
	free(msg);
	free(url);
	msg = open_fail("", BV_INDEX_REFRESH_STALE, BV_EINVALID);
	free(msg);

	free(parent);
	free(cwd);
	free(cache_index);
	free(real);
	drop(base);
}

static void test_index__clone_one_dir_per_url(void **state)
{
	(void)state;
	char *base = sandbox();
	char *origin = make_origin(base, "origin-a");
	char *cache_index = bv_path_join(base, "cache/index");
	char *url = file_url(origin);
	char *url2 = bv_xasprintf("file://localhost%s", origin);
	char *bare = bv_path_join(base, "bv-registry.git");
	char *url3 = file_url(bare);
	char *prefix = bv_path_join(cache_index, "origin-a-");
	char *root, *tmp, *stamp;
	struct bv_index *idx, *idx2, *idx3;

	idx = open_ok(url, BV_INDEX_REFRESH_STALE);
	root = bv_xstrdup(bv_index_root(idx));
	assert_null(bv_index_warning(idx));
	assert_true(bv_str_has_prefix(root, prefix));
	assert_int_equal(strlen(root), strlen(prefix) + 16);
	assert_true(strspn(root + strlen(prefix), "0123456789abcdef") == 16);
	assert_versions(idx, "blast", false, "2.14.0 2.15.0");
	assert_versions(idx, "pdbaa", true, "2024_01");
	tmp = bv_xasprintf("%s.tmp", root);
	assert_false(bv_path_exists(tmp));
	stamp = bv_path_join(root, ".bv-refresh");
	assert_true(bv_path_exists(stamp));
	/* The clone is shallow. */
	sh("test \"$(git -C '%s' rev-parse --is-shallow-repository)\" = true", root);

	/* The same URL again, offline: the same clone. */
	idx2 = open_ok(url, BV_INDEX_OFFLINE);
	assert_string_equal(bv_index_root(idx2), root);
	bv_index_free(idx2);

	/* A different URL for the same repository gets its own clone. */
	idx2 = open_ok(url2, BV_INDEX_REFRESH_STALE);
	assert_true(bv_str_has_prefix(bv_index_root(idx2), prefix));
	assert_string_not_equal(bv_index_root(idx2), root);
	assert_versions(idx2, "bwa", false, "0.7.18");

	/* A bare repository behind file:// is cloned; ".git" is not part of the name. */
	sh("git clone -q --bare '%s' '%s'", origin, bare);
	idx3 = open_ok(url3, BV_INDEX_REFRESH_STALE);
	assert_int_equal(count_entries(cache_index, "bv-registry-"), 2); /* dir + .lock */
	assert_string_not_equal(bv_index_root(idx3), root);
	assert_versions(idx3, "blast", false, "2.14.0 2.15.0");

	/* Three clones, three locks, no temporary directories. */
	assert_int_equal(count_entries(cache_index, ".lock"), 3);
	assert_int_equal(count_entries(cache_index, ".tmp"), 0);
	assert_int_equal(count_entries(cache_index, ""), 6);

	bv_index_free(idx3);
	bv_index_free(idx2);
	bv_index_free(idx);
	free(stamp);
	free(tmp);
	free(root);
	free(prefix);
	free(url3);
	free(bare);
	free(url2);
	free(url);
	free(cache_index);
	free(origin);
	drop(base);
}

static void test_index__ttl_refresh(void **state)
{
	(void)state;
	char *base = sandbox();
	char *origin = make_origin(base, "origin");
	char *url = file_url(origin);
	struct bv_error *err = NULL;
	struct bv_index *idx;
	char *msg;

	idx = open_ok(url, BV_INDEX_REFRESH_STALE);
	bv_index_free(idx);
	add_blast_version(origin, "2.16.0");

	/* Within the default TTL of 300 s the copy is fresh: no fetch, old versions. */
	idx = open_ok(url, BV_INDEX_REFRESH_STALE);
	assert_versions(idx, "blast", false, "2.14.0 2.15.0");
	bv_index_free(idx);
	/* Offline never fetches. */
	setenv("BV_INDEX_TTL", "0", 1);
	idx = open_ok(url, BV_INDEX_OFFLINE);
	assert_versions(idx, "blast", false, "2.14.0 2.15.0");
	bv_index_free(idx);

	/* TTL 0: every STALE open refreshes. */
	idx = open_ok(url, BV_INDEX_REFRESH_STALE);
	assert_null(bv_index_warning(idx));
	assert_versions(idx, "blast", false, "2.14.0 2.15.0 2.16.0");
	bv_index_free(idx);

	/* A long TTL, but REFRESH_ALWAYS. */
	setenv("BV_INDEX_TTL", "100000", 1);
	add_blast_version(origin, "2.17.0");
	idx = open_ok(url, BV_INDEX_REFRESH_ALWAYS);
	assert_versions(idx, "blast", false, "2.14.0 2.15.0 2.16.0 2.17.0");
	bv_index_free(idx);

	/* A force-push replacing 2.17.0 by 2.18.0 is followed (pull --ff-only would refuse). */
	sh("cd '%s' && git mv tools/blast/2.17.0.toml tools/blast/2.18.0.toml && "
	   "git -c user.name=t -c user.email=t@t commit -q --amend -m rewritten",
	   origin);
	idx = open_ok(url, BV_INDEX_REFRESH_ALWAYS);
	assert_null(bv_index_warning(idx));
	assert_versions(idx, "blast", false, "2.14.0 2.15.0 2.16.0 2.18.0");
	bv_index_free(idx);

	setenv("BV_INDEX_TTL", "5m", 1);
	assert_int_equal(bv_index_open(&idx, url, BV_INDEX_REFRESH_STALE, &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, "invalid BV_INDEX_TTL '5m': expected a number of seconds");
	free(msg);
	bv_error_free(err);
	unsetenv("BV_INDEX_TTL");

	free(url);
	free(origin);
	drop(base);
}

static void test_index__offline_fallback(void **state)
{
	(void)state;
	char *base = sandbox();
	char *origin = make_origin(base, "origin");
	char *url = file_url(origin);
	char *want;
	const char *warning;
	struct bv_index *idx;

	idx = open_ok(url, BV_INDEX_REFRESH_ALWAYS);
	bv_index_free(idx);
	assert_int_equal(bv_rm_rf(origin, NULL), 0);

	/* The origin is gone: the refresh fails, the clone is still served, with a warning. */
	idx = open_ok(url, BV_INDEX_REFRESH_ALWAYS);
	warning = bv_index_warning(idx);
	assert_non_null(warning);
	want = bv_xasprintf("could not refresh registry '%s' (", url);
	assert_true(bv_str_has_prefix(warning, want));
	assert_non_null(strstr(warning, "); using the copy from "));
	assert_true(bv_str_has_suffix(warning, "Z"));
	assert_versions(idx, "blast", false, "2.14.0 2.15.0");
	bv_index_free(idx);

	setenv("BV_INDEX_TTL", "0", 1);
	idx = open_ok(url, BV_INDEX_REFRESH_STALE);
	assert_non_null(bv_index_warning(idx));
	bv_index_free(idx);
	unsetenv("BV_INDEX_TTL");

	idx = open_ok(url, BV_INDEX_OFFLINE);
	assert_null(bv_index_warning(idx));
	assert_versions(idx, "pdbaa", true, "2024_01");
	bv_index_free(idx);

	free(want);
	free(url);
	free(origin);
	drop(base);
}

static void test_index__offline_without_clone(void **state)
{
	(void)state;
	char *base = sandbox();
	char *origin = make_origin(base, "origin");
	char *url = file_url(origin);
	char *cache = bv_path_join(base, "cache");
	char *msg, *want;

	msg = open_fail(url, BV_INDEX_OFFLINE, BV_ENOTFOUND);
	want = bv_xasprintf("registry '%s' has not been fetched yet", url);
	assert_true(bv_str_has_prefix(msg, want));
	free(want);
	free(msg);
	msg = open_fail("https://u:secret@127.0.0.1:1/reg", BV_INDEX_OFFLINE, BV_ENOTFOUND);
	assert_null(strstr(msg, "secret"));
	assert_non_null(strstr(msg, "'https://***@127.0.0.1:1/reg'"));
	free(msg);
	/* Offline touches nothing, not even the cache directory. */
	assert_false(bv_path_exists(cache));

	free(cache);
	free(url);
	free(origin);
	drop(base);
}

static void test_index__failed_clone(void **state)
{
	(void)state;
	char *base = sandbox();
	char *missing = bv_path_join(base, "no-such-repo");
	char *url = file_url(missing);
	char *cache_index = bv_path_join(base, "cache/index");
	char *want = bv_xasprintf("could not clone registry '%s': ", url);
	char *msg = open_fail(url, BV_INDEX_REFRESH_STALE, BV_ERR);

	assert_true(bv_str_has_prefix(msg, want));
	assert_true(strlen(msg) > strlen(want));      /* git's reason follows */
	assert_null(strstr(msg, "Please make sure")); /* but not its advice */
	assert_null(strchr(msg, '\n'));
	/* Nothing half-made is left: only the lock file. */
	assert_int_equal(count_entries(cache_index, ""), 1);
	assert_int_equal(count_entries(cache_index, ".lock"), 1);

	free(msg);
	free(want);
	free(cache_index);
	free(url);
	free(missing);
	drop(base);
}

static void test_index__credentials_redacted(void **state)
{
	(void)state;
	static const char *const urls[][2] = {
		{"https://user:secret@127.0.0.1:1/x", "secret"},
		{"https://ghp_0123456789abcdef@127.0.0.1:1/org/reg.git", "ghp_0123456789abcdef"},
	};
	char *base = sandbox();
	char *cache_index = bv_path_join(base, "cache/index");

	for (size_t i = 0; i < BV_ARRAY_SIZE(urls); i++) {
		char *shown = bv_index_redact_url(urls[i][0]);
		char *want = bv_xasprintf("could not clone registry '%s': ", shown);
		char *msg = open_fail(urls[i][0], BV_INDEX_REFRESH_ALWAYS, BV_ERR);
		assert_true(bv_str_has_prefix(msg, want));
		assert_null(strstr(msg, urls[i][1]));
		assert_true(strlen(msg) > strlen(want));
		assert_int_equal(count_entries(cache_index, urls[i][1]), 0);
		free(msg);
		free(want);
		free(shown);
	}
	/* The names come from the path, never from the user-info. */
	assert_int_equal(count_entries(cache_index, "x-"), 1);
	assert_int_equal(count_entries(cache_index, "reg-"), 1);
	assert_int_equal(count_entries(cache_index, ".tmp"), 0);

	free(cache_index);
	drop(base);
}

static void test_index__concurrent_first_clone(void **state)
{
	(void)state;
	char *base = sandbox();
	char *origin = make_origin(base, "origin");
	char *url = file_url(origin);
	char *cache_index = bv_path_join(base, "cache/index");
	pid_t pids[4];
	struct bv_index *idx;

	for (size_t i = 0; i < BV_ARRAY_SIZE(pids); i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct bv_index *child = NULL;
			int r = bv_index_open(&child, url, BV_INDEX_REFRESH_ALWAYS, NULL);
			_exit(r < 0 || bv_index_warning(child) ? 1 : 0);
		}
	}
	for (size_t i = 0; i < BV_ARRAY_SIZE(pids); i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(count_entries(cache_index, ""), 2);
	idx = open_ok(url, BV_INDEX_OFFLINE);
	assert_versions(idx, "blast", false, "2.14.0 2.15.0");
	bv_index_free(idx);

	free(cache_index);
	free(url);
	free(origin);
	drop(base);
}

static void test_index__versions_sorted(void **state)
{
	(void)state;
	char *base = sandbox();
	char *reg = bv_path_join(base, "reg");
	struct bv_error *err = NULL;
	struct bv_strv v = BV_STRV_INIT;
	struct bv_index *idx;

	sh("mkdir -p '%s/tools/t/5.0.0.toml' '%s/data/cal' && cd '%s/tools/t' && "
	   "touch 1.10.0.toml 1.9.0.toml 1.0.0-rc.1.toml 1.0.0.toml 1.0.0-alpha.toml "
	   "0.7.18.toml 1.0.0-rc.10.toml 1.0.0-rc.2.toml .hidden.toml .toml notes.txt README && "
	   "ln -s /etc/passwd 9.9.9.toml && cd '%s/data/cal' && "
	   "touch 2024_11.toml 2023_12.toml 2024.toml 2024_01.toml 36.0.toml 138.1.toml",
	   reg, reg, reg, reg);
	idx = open_ok(reg, BV_INDEX_REFRESH_STALE);
	assert_versions(idx, "t", false,
			"0.7.18 1.0.0-alpha 1.0.0-rc.1 1.0.0-rc.2 1.0.0-rc.10 1.0.0 1.9.0 1.10.0");
	assert_versions(idx, "cal", true, "36.0 138.1 2023_12 2024 2024_01 2024_11");

	/* Results are appended to what the vector holds. */
	bv_strv_push(&v, "keep");
	assert_ok(bv_index_data_versions(&v, idx, "cal", &err), &err);
	assert_int_equal(v.n, 7);
	assert_string_equal(v.v[0], "keep");
	assert_string_equal(v.v[1], "36.0");
	bv_strv_clear(&v);
	bv_index_free(idx);

	/* The sample registry: calendar versions are listed, semver ones in order. */
	idx = open_ok(sample, BV_INDEX_OFFLINE);
	assert_versions(idx, "pdbaa", true, "2024_01");
	assert_versions(idx, "pfam", true, "36.0");
	assert_versions(idx, "colabfold", false, "1.6.0 1.6.1");
	bv_index_free(idx);

	free(reg);
	drop(base);
}

static void test_index__bad_and_unknown_names(void **state)
{
	(void)state;
	static const char *const bad[] = {"", ".", "..", "../tools", "a/b", ".git", "/etc"};
	struct bv_index *idx = open_ok(sample, BV_INDEX_OFFLINE);
	struct bv_strv v = BV_STRV_INIT;
	struct bv_error *err = NULL;
	char *msg;

	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		assert_int_equal(bv_index_tool_versions(&v, idx, bad[i], &err), BV_EINVALID);
		bv_error_free(err);
		err = NULL;
		assert_int_equal(bv_index_data_versions(&v, idx, bad[i], &err), BV_EINVALID);
		bv_error_free(err);
		err = NULL;
	}
	assert_int_equal(bv_index_tool_versions(&v, idx, "nope", &err), BV_ENOTFOUND);
	msg = bv_error_format(err);
	assert_string_equal(msg, "tool 'nope' is not in the registry");
	free(msg);
	bv_error_free(err);
	err = NULL;
	/* A data set is not a tool. */
	assert_int_equal(bv_index_tool_versions(&v, idx, "pdbaa", &err), BV_ENOTFOUND);
	bv_error_free(err);
	assert_int_equal(v.n, 0);
	bv_index_free(idx);
}

static void test_index__lists_and_paths(void **state)
{
	(void)state;
	char *base = sandbox();
	char *reg = bv_path_join(base, "reg");
	struct bv_index *idx = open_ok(sample, BV_INDEX_OFFLINE);
	struct bv_strv v = BV_STRV_INIT;
	struct bv_error *err = NULL;
	char *path, *want;

	assert_ok(bv_index_list_tools(&v, idx, &err), &err);
	assert_int_equal(v.n, 20);
	for (size_t i = 1; i < v.n; i++)
		assert_true(strcmp(v.v[i - 1], v.v[i]) < 0);
	assert_true(bv_strv_contains(&v, "samtools"));
	assert_false(bv_strv_contains(&v, "pdbaa"));
	bv_strv_clear(&v);
	assert_ok(bv_index_list_data(&v, idx, &err), &err);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0], "card");
	assert_string_equal(v.v[1], "pdbaa");
	assert_string_equal(v.v[2], "pfam");
	bv_strv_clear(&v);

	path = bv_index_tool_path(idx, "bwa", "0.7.18");
	want = bv_xasprintf("%s/tools/bwa/0.7.18.toml", bv_index_root(idx));
	assert_string_equal(path, want);
	assert_true(bv_path_exists(path));
	free(want);
	free(path);
	path = bv_index_data_path(idx, "pdbaa", "2024_01");
	want = bv_xasprintf("%s/data/pdbaa/2024_01.toml", bv_index_root(idx));
	assert_string_equal(path, want);
	assert_true(bv_path_exists(path));
	free(want);
	free(path);
	bv_index_free(idx);

	/* A registry without data/ (and a hidden directory in tools/) lists what it has. */
	sh("mkdir -p '%s/tools/b' '%s/tools/a' '%s/tools/.git' && touch '%s/tools/file'", reg, reg,
	   reg, reg);
	idx = open_ok(reg, BV_INDEX_OFFLINE);
	assert_ok(bv_index_list_data(&v, idx, &err), &err);
	assert_int_equal(v.n, 0);
	assert_ok(bv_index_list_tools(&v, idx, &err), &err);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.v[0], "a");
	assert_string_equal(v.v[1], "b");
	bv_strv_clear(&v);
	bv_index_free(idx);

	free(reg);
	drop(base);
}

/* Writes `json` as <reg>/index.json and returns the result of loading the summaries. */
static int summaries_of(const char *reg, const char *json, json_t **out, char **msg)
{
	char *path = bv_path_join(reg, "index.json");
	struct bv_error *err = NULL;
	struct bv_index *idx = open_ok(reg, BV_INDEX_OFFLINE);
	int r;
	assert_int_equal(bv_write_file_atomic(path, json, strlen(json), 0644, NULL), 0);
	r = bv_index_load_summaries(out, idx, &err);
	*msg = r < 0 ? bv_error_format(err) : NULL;
	bv_error_free(err);
	bv_index_free(idx);
	free(path);
	return r;
}

static void test_index__summaries(void **state)
{
	(void)state;
	char *base = sandbox();
	char *reg = bv_path_join(base, "reg");
	struct bv_index *idx = open_ok(sample, BV_INDEX_OFFLINE);
	struct bv_error *err = NULL;
	json_t *tools = NULL, *e;
	size_t i;
	bool found = false;
	char *msg;

	assert_ok(bv_index_load_summaries(&tools, idx, &err), &err);
	assert_true(json_is_array(tools));
	assert_true(json_array_size(tools) > 0);
	json_array_foreach(tools, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		if (id && !strcmp(id, "bwa"))
			found = true;
	}
	assert_true(found);
	json_decref(tools);
	tools = NULL;
	bv_index_free(idx);

	assert_ok(bv_mkdir_p(reg, 0755, &err), &err);
	idx = open_ok(reg, BV_INDEX_OFFLINE);
	assert_int_equal(bv_index_load_summaries(&tools, idx, &err), BV_ENOTFOUND);
	assert_null(tools);
	bv_error_free(err);
	bv_index_free(idx);

	assert_int_equal(summaries_of(reg, "{\"schema_version\":1,\"tools\":[{\"id\":\"x\"}]}",
				      &tools, &msg),
			 0);
	assert_int_equal(json_array_size(tools), 1);
	json_decref(tools);
	tools = NULL;

	assert_int_equal(summaries_of(reg, "{\"schema_version\":2,\"tools\":[]}", &tools, &msg),
			 BV_EINVALID);
	assert_non_null(strstr(msg, "unsupported index.json schema_version 2"));
	free(msg);
	assert_int_equal(
		summaries_of(reg, "{\"schema_version\":1,\"tools\":[],\"tools\":[]}", &tools, &msg),
		BV_EINVALID);
	assert_non_null(strstr(msg, "duplicate"));
	free(msg);
	assert_int_equal(summaries_of(reg, "{\"schema_version\":1}", &tools, &msg), BV_EINVALID);
	assert_non_null(strstr(msg, "\"tools\""));
	free(msg);
	assert_int_equal(summaries_of(reg, "{\"tools\":[]}", &tools, &msg), BV_EINVALID);
	assert_non_null(strstr(msg, "schema_version"));
	free(msg);
	assert_int_equal(summaries_of(reg, "{\n\"schema_version\": 1,\n]", &tools, &msg),
			 BV_EINVALID);
	assert_non_null(strstr(msg, "/index.json:3:"));
	free(msg);
	assert_null(tools);

	free(reg);
	drop(base);
}

/* bv doctor's list: clones only (not locks, staging directories or strays), origin redacted */
static void test_index__list_clones(void **state)
{
	(void)state;
	char *base = sandbox();
	char *index = bv_path_join(base, "cache/index");
	struct bv_index_clone *clones = NULL;
	struct bv_error *err = NULL;
	size_t n = 9;
	int64_t ttl = 0;

	assert_ok(bv_index_list_clones(&clones, &n, &err), &err);
	assert_int_equal(n, 0);
	bv_index_clones_free(clones, n);
	sh("mkdir -p '%s/reg-00/.git' '%s/reg-01/.git' '%s/reg-02.tmp/.git' '%s/stray'", index,
	   index, index, index);
	sh("touch '%s/reg-00.lock' '%s/reg-00/.bv-refresh'", index, index);
	sh("printf '[core]\n\turl = wrong\n[remote \"origin\"]\n\turl = "
	   "https://user:tok@host/x.git\n' >'%s/reg-00/.git/config'",
	   index);
	assert_ok(bv_index_list_clones(&clones, &n, &err), &err);
	assert_int_equal(n, 2);
	assert_true(bv_str_has_suffix(clones[0].dir, "/cache/index/reg-00"));
	assert_string_equal(clones[0].url, "https://***@host/x.git");
	assert_true(clones[0].refreshed > 0);
	assert_null(clones[1].url); /* no config: no origin */
	assert_int_equal(clones[1].refreshed, -1);
	bv_index_clones_free(clones, n);

	assert_ok(bv_index_ttl(&ttl, &err), &err);
	assert_int_equal(ttl, 300);
	setenv("BV_INDEX_TTL", "60", 1);
	assert_ok(bv_index_ttl(&ttl, &err), &err);
	assert_int_equal(ttl, 60);
	setenv("BV_INDEX_TTL", "soon", 1);
	assert_int_equal(bv_index_ttl(&ttl, &err), BV_EINVALID);
	bv_error_free(err);
	unsetenv("BV_INDEX_TTL");
	free(index);
	drop(base);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index__url_choose),
		cmocka_unit_test(test_index__redact_url),
		cmocka_unit_test(test_index__local_directory_in_place),
		cmocka_unit_test(test_index__clone_one_dir_per_url),
		cmocka_unit_test(test_index__ttl_refresh),
		cmocka_unit_test(test_index__offline_fallback),
		cmocka_unit_test(test_index__offline_without_clone),
		cmocka_unit_test(test_index__failed_clone),
		cmocka_unit_test(test_index__credentials_redacted),
		cmocka_unit_test(test_index__concurrent_first_clone),
		cmocka_unit_test(test_index__versions_sorted),
		cmocka_unit_test(test_index__bad_and_unknown_names),
		cmocka_unit_test(test_index__lists_and_paths),
		cmocka_unit_test(test_index__summaries),
		cmocka_unit_test(test_index__list_clones),
	};
	if (argc < 2) {
		fprintf(stderr, "usage: %s <sample registry>\n", argv[0]);
		return 1;
	}
	sample = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
