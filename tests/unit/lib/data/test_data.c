/*
 * Reference data: URL rules and file names, mirrors, specs, the archive rules for data
 * (symlinks that leave the tree, devices, "..") and the cache's records (list, verify --local,
 * rm), and a fetch that fails leaving nothing behind.  Downloads from real servers are in
 * tests/e2e/t0900-data.bats.
 */
#include <archive.h>
#include <archive_entry.h>
#include <bv/data.h>
#include <bv/error.h>
#include <bv/manifest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/data/data-internal.h"
#include "lib/oci/store/archive_calls.h"
#include "lib/oci/store/archive_loader.h"
#include "lib/oci/store/unpack-internal.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

static void test_data__url_name(void **state)
{
	struct bv_error *err = NULL;
	char *name = NULL;
	(void)state;
	assert_ok(bv_data_url_name(&name, "https://h.org/blast/db/pdbaa.tar.gz?x=1#f", &err), &err);
	assert_string_equal(name, "pdbaa.tar.gz");
	free(name);
	assert_ok(bv_data_url_name(&name, "https://card.mcmaster.ca/latest/data", &err), &err);
	assert_string_equal(name, "data");
	free(name);
	assert_ok(bv_data_url_name(&name, "ftp://u@h:21/pub/x.vcf.gz.tbi", &err), &err);
	assert_string_equal(name, "x.vcf.gz.tbi");
	free(name);
	/* a name from the URL becomes a path: never "..", hidden, empty or an option */
	assert_int_equal(bv_data_url_name(&name, "https://h/a/..", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_url_name(&name, "https://h/", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_url_name(&name, "https://h/.bashrc", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_url_name(&name, "https://h/%2e%2e", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_url_name(&name, "no-url", &err), BV_EINVALID);
	bv_error_free(err);
}

static void test_data__url_allowed(void **state)
{
	const char *why = NULL;
	(void)state;
	assert_true(bv_data_url_allowed("https://ftp.ncbi.nlm.nih.gov/x", &why));
	assert_true(bv_data_url_allowed("ftp://ftp.ebi.ac.uk/pub/x", &why));
	assert_true(bv_data_url_allowed("ftps://h/x", &why));
	assert_true(bv_data_url_allowed("http://127.0.0.1:8080/x", &why));
	assert_true(bv_data_url_allowed("http://localhost/x", &why));
	assert_true(bv_data_url_allowed("http://[::1]:80/x", &why));
	assert_false(bv_data_url_allowed("http://example.org/x", &why));
	assert_non_null(strstr(why, "loopback"));
	assert_false(bv_data_url_allowed("http://127.0.0.1.evil.org/x", &why));
	assert_false(bv_data_url_allowed("http://user@evil.org/127.0.0.1", &why));
	assert_false(bv_data_url_allowed("file:///etc/passwd", &why));
	assert_false(bv_data_url_allowed("gopher://h/x", &why));
	assert_false(bv_data_url_allowed("https://h/a b", &why));
}

static void test_data__mirrors(void **state)
{
	struct bv_data_mirrors *m = bv_data_mirrors_new();
	struct bv_error *err = NULL;
	char *u;
	(void)state;
	assert_ok(bv_data_mirrors_parse_env(
			  m,
			  "https://ftp.ncbi.nlm.nih.gov/=http://127.0.0.1:9/ncbi/, "
			  "https://ftp.ncbi.nlm.nih.gov/blast/=https://m.example/blast/",
			  &err),
		  &err);
	u = bv_data_mirror_apply(m, "https://ftp.ncbi.nlm.nih.gov/blast/db/pdbaa.tar.gz");
	assert_string_equal(u, "https://m.example/blast/db/pdbaa.tar.gz"); /* longest prefix */
	free(u);
	u = bv_data_mirror_apply(m, "https://ftp.ncbi.nlm.nih.gov/genomes/x");
	assert_string_equal(u, "http://127.0.0.1:9/ncbi/genomes/x");
	free(u);
	u = bv_data_mirror_apply(m, "https://other.org/x");
	assert_string_equal(u, "https://other.org/x");
	free(u);
	/* a later entry for the same prefix replaces the earlier one */
	assert_ok(bv_data_mirrors_parse_env(m, "https://other.org/=https://o2.org/", &err), &err);
	assert_ok(bv_data_mirrors_parse_env(m, "https://other.org/=https://o3.org/", &err), &err);
	u = bv_data_mirror_apply(m, "https://other.org/x");
	assert_string_equal(u, "https://o3.org/x");
	free(u);
	assert_int_equal(bv_data_mirrors_parse_env(m, "nonsense", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_mirrors_parse_env(m, "https://a/=http://evil.org/", &err),
			 BV_EINVALID);
	bv_error_free(err);
	bv_data_mirrors_free(m);
	u = bv_data_mirror_apply(NULL, "https://a/x");
	assert_string_equal(u, "https://a/x");
	free(u);
}

static void test_data__spec(void **state)
{
	struct bv_error *err = NULL;
	char *id = NULL, *version = NULL;
	(void)state;
	assert_ok(bv_data_spec_parse(&id, &version, "pdbaa@2024_01", &err), &err);
	assert_string_equal(id, "pdbaa");
	assert_string_equal(version, "2024_01");
	free(id);
	free(version);
	assert_ok(bv_data_spec_parse(&id, &version, "hg38", &err), &err);
	assert_string_equal(id, "hg38");
	assert_null(version);
	free(id);
	assert_int_equal(bv_data_spec_parse(&id, &version, "../x", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_spec_parse(&id, &version, "x@../../etc", &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_data_spec_parse(&id, &version, "x@", &err), BV_EINVALID);
	bv_error_free(err);
}

/* A tar.gz at `path` with the entries given: (name, type, data or link target). */
struct entry {
	const char *name;
	mode_t type;
	const char *body;
};

static void write_tar(const char *path, const struct entry *e, size_t n)
{
	struct archive *a;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_non_null(bv_archive_get(NULL));
	a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		if (!e[i].type) { /* a hard link to body */
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].body);
			archive_entry_set_perm(ae, 0644);
			assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
			archive_entry_free(ae);
			continue;
		}
		archive_entry_set_filetype(ae, e[i].type);
		archive_entry_set_perm(ae, e[i].type == AE_IFDIR ? 0755 : 0644);
		if (e[i].type == AE_IFLNK)
			archive_entry_set_symlink(ae, e[i].body);
		if (e[i].type == AE_IFREG)
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].body));
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == AE_IFREG)
			archive_write_data(a, e[i].body, strlen(e[i].body));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	close(fd);
}

/* Extracts `e` into a new directory; returns the result, `msg` gets the error text. */
static int extract(const struct entry *e, size_t n, char **msg, char **dir_out)
{
	char *dir = test_mkdtemp("data-x");
	_cleanup_free_ char *tar = bv_path_join(dir, "a.tar");
	_cleanup_free_ char *tree = bv_path_join(dir, "tree");
	struct bv_error *err = NULL;
	int fd, r;
	write_tar(tar, e, n);
	assert_int_equal(mkdir(tree, 0755), 0);
	fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = bv_unpack_archive(fd, tar, "'a.tar'", NULL, &err);
	close(fd);
	*msg = err ? bv_error_format(err) : NULL;
	bv_error_free(err);
	*dir_out = dir;
	return r;
}

static void test_data__archive_rules(void **state)
{
	const struct entry ok[] = {
		{"db/", AE_IFDIR, NULL},
		{"db/a.txt", AE_IFREG, "alpha"},
		{"db/link", AE_IFLNK, "a.txt"},
		{"db/up", AE_IFLNK, "../db/a.txt"},
		{"db/.wh.x", AE_IFREG, "not a whiteout"},
	};
	const struct entry abs_link[] = {{"passwd", AE_IFLNK, "/etc/passwd"}};
	const struct entry up_link[] = {{"d/x", AE_IFLNK, "../../home"}};
	const struct entry climb[] = {{"../x", AE_IFREG, "x"}};
	/* a link fine at a/b/s would climb out from the top */
	const struct entry hardlinked[] = {
		{"c/", AE_IFDIR, NULL},
		{"a/b/s", AE_IFLNK, "../../c"},
		{"t", 0, "a/b/s"},
	};
	/* lexically a/x, really ../x: s leads up to c, and ".." then climbs out of the tree */
	const struct entry chain[] = {
		{"c/", AE_IFDIR, NULL},
		{"a/b/s", AE_IFLNK, "../../c"},
		{"a/b/t", AE_IFLNK, "s/../../x"},
	};
	const struct entry fifo[] = {{"p", AE_IFIFO, NULL}};
	char *msg = NULL, *dir = NULL, *p;
	char buf[16] = {0};
	(void)state;

	assert_int_equal(extract(ok, BV_ARRAY_SIZE(ok), &msg, &dir), 0);
	p = bv_xasprintf("%s/tree/db/link", dir);
	assert_int_equal(readlink(p, buf, sizeof(buf) - 1), 5);
	free(p);
	p = bv_xasprintf("%s/tree/db/.wh.x", dir);
	assert_true(bv_path_exists(p));
	free(p);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);

	assert_int_equal(extract(abs_link, 1, &msg, &dir), BV_EINVALID);
	assert_string_equal(msg, "archive 'a.tar': entry 'passwd' is a symlink to the absolute "
				 "path '/etc/passwd'");
	free(msg);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);

	assert_int_equal(extract(up_link, 1, &msg, &dir), BV_EINVALID);
	assert_string_equal(msg, "archive 'a.tar': entry 'd/x' is a symlink to '../../home', "
				 "which leads out of the archive");
	free(msg);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);

	assert_int_equal(extract(chain, BV_ARRAY_SIZE(chain), &msg, &dir), BV_EINVALID);
	assert_string_equal(msg, "archive 'a.tar': entry 'a/b/t' is a symlink to 's/../../x', "
				 "which leads out of the archive");
	free(msg);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);

	assert_int_equal(extract(hardlinked, BV_ARRAY_SIZE(hardlinked), &msg, &dir), BV_EINVALID);
	assert_string_equal(msg, "archive 'a.tar': entry 't' is a hard link to the symlink "
				 "'a/b/s'");
	free(msg);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);

	assert_int_equal(extract(climb, 1, &msg, &dir), BV_EINVALID);
	assert_string_equal(msg, "archive 'a.tar': entry '../x' escapes the image root");
	free(msg);
	p = bv_xasprintf("%s/x", dir);
	assert_false(bv_path_exists(p));
	free(p);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);

	assert_int_equal(extract(fifo, 1, &msg, &dir), BV_EINVALID);
	assert_non_null(strstr(msg, "is a device, fifo or socket"));
	free(msg);
	bv_unpack_remove_tree(dir, NULL);
	free(dir);
}

static void put(const char *path, const char *text)
{
	assert_int_equal(bv_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
}

static void test_data__cache_records(void **state)
{
	_cleanup_free_ char *cache = test_mkdtemp("data-cache");
	_cleanup_free_ char *dir = bv_xasprintf("%s/data/db/1", cache);
	_cleanup_free_ char *file = bv_xasprintf("%s/data/db/1/f.txt", cache);
	_cleanup_free_ char *rec = bv_xasprintf("%s/data/db/1.json", cache);
	_cleanup_free_ char *orphan = bv_xasprintf("%s/data/db/2", cache);
	struct bv_data_entry *e = NULL;
	struct bv_error *err = NULL;
	char *problem = NULL;
	size_t n = 0, removed = 0;
	(void)state;

	assert_int_equal(bv_mkdir_p(dir, 0755, NULL), 0);
	assert_int_equal(bv_mkdir_p(orphan, 0755, NULL), 0); /* no record: not present */
	put(file, "hello\n");
	/* sha256 of "hello\n" */
	put(rec,
	    "{\"id\":\"db\",\"version\":\"1\",\"size\":6,\"sha256\":\"sha256:5891b5b522d5df086d0"
	    "ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\",\"declared_sha256\":\"sha256:5891b5"
	    "b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\",\"fetched_at\":\"x\","
	    "\"files\":[{\"path\":\"f.txt\",\"size\":6,\"sha256\":\"sha256:5891b5b522d5df086d0"
	    "ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\"}]}");
	assert_ok(bv_data_list(&e, &n, cache, &err), &err);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].id, "db");
	assert_int_equal(e[0].size, 6);
	assert_true(e[0].verified);
	bv_data_entries_free(e, n);

	assert_int_equal(bv_data_verify_local(&problem, cache, "db", "1", &err), 1);
	put(file, "hellO\n");
	assert_int_equal(bv_data_verify_local(&problem, cache, "db", "1", &err), 0);
	assert_string_equal(problem, "'f.txt' has changed");
	free(problem);
	unlink(file);
	assert_int_equal(bv_data_verify_local(&problem, cache, "db", "1", &err), 0);
	assert_string_equal(problem, "'f.txt' is missing");
	free(problem);

	assert_int_equal(bv_data_remove(&removed, cache, "db", "9", &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	assert_ok(bv_data_remove(&removed, cache, "db", NULL, &err), &err);
	assert_int_equal(removed, 2);
	assert_false(bv_path_exists(dir));
	assert_false(bv_path_exists(rec));
	assert_int_equal(bv_data_lookup(&e[0], cache, "db", "1", &err), BV_ENOTFOUND);
	bv_error_free(err);
	bv_rm_rf(cache, NULL);
}

static void test_data__failed_fetch_leaves_nothing(void **state)
{
	_cleanup_free_ char *cache = test_mkdtemp("data-fail");
	_cleanup_free_ char *tmp = bv_xasprintf("%s/data/.tmp", cache);
	_cleanup_free_ char *final = bv_xasprintf("%s/data/x/1", cache);
	struct bv_dataset *d = NULL;
	const char *text = "[data]\nid = \"x\"\nversion = \"1\"\n"
			   "source_urls = [\"http://127.0.0.1:1/x.gz\"]\nformat = \"gz\"\n";
	struct bv_data_options o = {.cache_dir = cache, .retries = 1, .backoff_ms = 1};
	enum bv_data_outcome out;
	struct bv_error *err = NULL;
	char *msg;
	(void)state;

	assert_ok(bv_dataset_parse(&d, text, strlen(text), "x/1.toml", &err), &err);
	assert_int_equal(bv_data_fetch(&out, (const struct bv_dataset *const *)&d, 1, &o, &err),
			 BV_ERR);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "could not fetch x 1: x.gz: "));
	assert_non_null(strstr(msg, "after 2 attempts"));
	free(msg);
	bv_error_free(err);
	assert_false(bv_path_exists(final));
	assert_int_equal(test_count_entries(tmp), 0);
	bv_dataset_free(d);
	bv_rm_rf(cache, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data__url_name),
		cmocka_unit_test(test_data__url_allowed),
		cmocka_unit_test(test_data__mirrors),
		cmocka_unit_test(test_data__spec),
		cmocka_unit_test(test_data__archive_rules),
		cmocka_unit_test(test_data__cache_records),
		cmocka_unit_test(test_data__failed_fetch_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
