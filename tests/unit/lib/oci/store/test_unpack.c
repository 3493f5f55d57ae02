/*
 * Layer extraction and root filesystem assembly against real tarballs, written at run time by
 * tests/data/unpack/make_tars.py (python's tarfile, gzip and the zstd program): formats and
 * compressions, whiteouts across layers, hard links shared between layer trees and images,
 * long names, hostile layers (nothing may appear outside the destination), special files
 * and modes in rootless mode, limits, crash leftovers, diff_ids and removal.
 *
 * Layout of the scratch directory:
 *   <work>/tars/      the generated layers
 *   <work>/outside/   holds "canary"; hostile layers aim at it
 *   <work>/cases/     destinations, so "../../outside" from one of them is <work>/outside
 */
#include "config.h"

#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/oci/store/unpack-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/strv.h"

#define OCI_TAR  "application/vnd.oci.image.layer.v1.tar"
#define OCI_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define DOCKER   "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define CANARY   "canary\n"

static char *work, *tars, *outside, *cases;
static bool tmp_evil_existed;

/* The source tree, from the configured path of data/types.toml. */
static char *source_root(void)
{
	const char *types = BV_SOURCE_TYPES;
	const char *suffix = "/data/types.toml";
	size_t n = strlen(types), m = strlen(suffix);
	assert_true(n > m && !strcmp(types + n - m, suffix));
	return bv_xstrndup(types, n - m);
}

static int setup(void **state)
{
	_cleanup_free_ char *dir = test_mkdtemp("unpack");
	_cleanup_free_ char *src = NULL, *script = NULL, *canary = NULL;
	struct bv_proc p = BV_PROC_INIT;
	struct bv_error *err = NULL;
	int status = -1;

	(void)state;
	if (!dir)
		return -1;
	work = realpath(dir, NULL);
	tars = bv_path_join(work, "tars");
	outside = bv_path_join(work, "outside");
	cases = bv_path_join(work, "cases");
	if (mkdir(outside, 0755) < 0 || mkdir(cases, 0755) < 0)
		return -1;
	canary = bv_path_join(outside, "canary");
	if (bv_write_file_atomic(canary, CANARY, strlen(CANARY), 0644, NULL) < 0)
		return -1;
	tmp_evil_existed = bv_path_exists("/tmp/evil");

	src = source_root();
	script = bv_path_join(src, "tests/data/unpack/make_tars.py");
	bv_strv_push(&p.args, "python3");
	bv_strv_push(&p.args, script);
	bv_strv_push(&p.args, tars);
	bv_strv_push(&p.args, outside);
	p.out = 2; /* stdout is cmocka's TAP stream */
	p.no_stdin = true;
	if (bv_proc_run(&status, &p, &err) < 0 || status != 0) {
		char *msg = err ? bv_error_format(err) : NULL;
		print_error("make_tars.py failed (status %d): %s\n", status, msg ? msg : "");
		free(msg);
		bv_error_free(err);
		bv_proc_clear(&p);
		return -1;
	}
	bv_proc_clear(&p);
	return 0;
}

static int teardown(void **state)
{
	int r = bv_unpack_remove_tree(work, NULL);
	(void)state;
	free(work);
	free(tars);
	free(outside);
	free(cases);
	return r;
}

/* ------------------------------------------------------------------------------------------ */

static char *tar(const char *name)
{
	return bv_path_join(tars, name);
}

/* Entries of `dir` that are not seals (each tree has "<tree>.seal" beside it). */
static int count_trees(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !bv_str_has_suffix(de->d_name, ".seal"))
			n++;
	return n;
}

static char *in_case(const char *name)
{
	return bv_path_join(cases, name);
}

static char *read_text(const char *path)
{
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	assert_ok(bv_buf_read_file(&b, path, 1 << 20, &err), &err);
	return bv_buf_detach(&b, NULL);
}

static void assert_file(const char *dir, const char *rel, const char *want)
{
	_cleanup_free_ char *path = bv_path_join(dir, rel);
	_cleanup_free_ char *got = NULL;
	struct stat st;
	if (lstat(path, &st) < 0) {
		print_error("missing: %s\n", path);
		fail();
	}
	assert_true(S_ISREG(st.st_mode));
	got = read_text(path);
	assert_string_equal(got, want);
}

static void assert_missing(const char *dir, const char *rel)
{
	_cleanup_free_ char *path = bv_path_join(dir, rel);
	if (bv_path_exists(path)) {
		print_error("should not exist: %s\n", path);
		fail();
	}
}

static struct stat lstat_of(const char *dir, const char *rel)
{
	_cleanup_free_ char *path = bv_path_join(dir, rel);
	struct stat st;
	if (lstat(path, &st) < 0) {
		print_error("missing: %s\n", path);
		fail();
	}
	return st;
}

static void assert_mode(const char *dir, const char *rel, mode_t want)
{
	struct stat st = lstat_of(dir, rel);
	if ((st.st_mode & 07777) != want) {
		print_error("%s/%s: mode %04o, want %04o\n", dir, rel, st.st_mode & 07777, want);
		fail();
	}
}

static void assert_symlink(const char *dir, const char *rel, const char *want)
{
	_cleanup_free_ char *path = bv_path_join(dir, rel);
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/* Whether anything below `dir` (symlinks not followed) has a name starting with `prefix`. */
static bool find_prefix(const char *dir, const char *prefix)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return false;
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (bv_str_has_prefix(de->d_name, prefix))
			return true;
		path = bv_path_join(dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && find_prefix(path, prefix))
			return true;
	}
	return false;
}

static void assert_outside_untouched(void)
{
	_cleanup_free_ char *canary = bv_path_join(outside, "canary");
	_cleanup_free_ char *text = read_text(canary);
	assert_string_equal(text, CANARY);
	assert_int_equal(test_count_entries(outside), 1);
	assert_false(find_prefix(work, "evil"));
	assert_false(bv_path_exists("/abs"));
	if (!tmp_evil_existed)
		assert_false(bv_path_exists("/tmp/evil"));
}

static void remove_case(const char *name)
{
	_cleanup_free_ char *path = in_case(name);
	struct bv_error *err = NULL;
	assert_ok(bv_unpack_remove_tree(path, &err), &err);
}

/* Unpacks tars/<tarname> into cases/<dest>; returns the new tree's path. */
static char *unpack_ok(const char *tarname, const char *media_type, const char *dest,
		       const struct bv_unpack_options *o)
{
	_cleanup_free_ char *blob = tar(tarname);
	char *tree = in_case(dest);
	struct bv_error *err = NULL;
	assert_ok(bv_unpack_layer(blob, media_type, tree, o, &err), &err);
	return tree;
}

static char *image_ok(const char *const *trees, size_t n, const char *dest)
{
	char *rootfs = in_case(dest);
	struct bv_error *err = NULL;
	assert_ok(bv_unpack_image(trees, n, rootfs, NULL, &err), &err);
	return rootfs;
}

/* Runs `fn` expecting failure with code `code` and `needle` in the message. */
static void assert_error(int r, struct bv_error *err, int code, const char *needle)
{
	char *msg = bv_error_format(err);
	if (r != code || !strstr(msg, needle)) {
		print_error("got %d '%s', want %d with '%s'\n", r, msg, code, needle);
		free(msg);
		bv_error_free(err);
		fail();
	}
	free(msg);
	bv_error_free(err);
}

static void check_plain(const char *t)
{
	struct stat a = lstat_of(t, "bin/tool"), b = lstat_of(t, "bin/tool-again");

	assert_file(t, "bin/tool", "#!/bin/sh\necho tool\n");
	assert_mode(t, "bin/tool", 0555);
	assert_int_equal(a.st_ino, b.st_ino); /* hard link inside the layer */
	assert_file(t, "etc/config", "key = value\n");
	assert_mode(t, "etc/config", 0444);
	assert_int_equal(lstat_of(t, "etc/config").st_mtime, 1700000000);
	assert_symlink(t, "etc/passwd-link", "/etc/passwd");
	assert_symlink(t, "etc/config-link", "config");
	assert_mode(t, "private", 0500);
	assert_mode(t, "private/secret", 0400);
	assert_file(t, "implicit/deep/file", "deep\n");
	assert_mode(t, "implicit", 0555);
	assert_mode(t, "implicit/deep", 0555);
	assert_mode(t, "bin", 0555);
	assert_mode(t, ".", 0555);
}

/* ------------------------------------------------------------------------------------------ */

static void test_unpack__plain_gzip_zstd(void **state)
{
	static const struct {
		const char *tar, *media_type;
	} cases_[] = {
		{"plain.tar", OCI_TAR},
		{"plain.tar.gz", OCI_GZIP},
		{"plain.tar.gz", DOCKER},
		{"plain.tar.zst", OCI_ZSTD},
		/* generic or wrong media types: the magic bytes decide */
		{"plain.tar.zst", "application/octet-stream"},
		{"plain.tar.gz", NULL},
		{"plain.tar", OCI_GZIP},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases_); i++) {
		_cleanup_free_ char *dest = bv_xasprintf("plain-%zu", i);
		_cleanup_free_ char *tree =
			unpack_ok(cases_[i].tar, cases_[i].media_type, dest, NULL);
		check_plain(tree);
		/* nothing but the tree itself is left next to it */
		assert_int_equal(count_trees(cases), 1);
		remove_case(dest);
	}
	assert_int_equal(count_trees(cases), 0);
}

static void test_unpack__whiteouts_across_layers(void **state)
{
	_cleanup_free_ char *l1 = unpack_ok("layer1.tar", OCI_TAR, "l1", NULL);
	_cleanup_free_ char *l2 = unpack_ok("layer2.tar", OCI_TAR, "l2", NULL);
	_cleanup_free_ char *l3 = unpack_ok("layer3.tar", OCI_TAR, "l3", NULL);
	const char *trees[] = {l1, l2, l3};
	_cleanup_free_ char *r = image_ok(trees, 3, "rootfs");
	(void)state;

	/* the layer trees record whiteouts without applying them */
	assert_file(l2, "etc/.wh.a", "");
	assert_file(l2, "opt/x/.wh..wh..opq", "");
	assert_file(l2, ".wh.usr", "");

	assert_file(r, "etc/a", "a3\n"); /* deleted by layer 2, back in layer 3 */
	assert_file(r, "etc/b", "b1\n");
	assert_file(r, "etc/c", "c3\n"); /* a whiteout never hides its own layer's file */
	assert_file(r, "opt/x/new", "new2\n");
	assert_file(r, "opt/x/old", "old3\n");
	assert_missing(r, "opt/x/keep"); /* opaque in layer 2 */
	assert_missing(r, "opt/x/sub");
	assert_missing(r, "usr/share"); /* whole directory deleted by layer 2 */
	assert_file(r, "usr/fresh", "fresh3\n");
	assert_file(r, "bin-tool", "v2\n");
	assert_true(S_ISDIR(lstat_of(r, "lib").st_mode)); /* replaced the lower symlink */
	assert_file(r, "lib/libz.so", "z2\n");
	assert_missing(r, "usr/lib");
	assert_false(find_prefix(r, ".wh."));
	assert_mode(r, ".", 0555);
	assert_mode(r, "opt/x", 0555);
	assert_mode(r, "etc/a", 0444);

	remove_case("rootfs");
	remove_case("l1");
	remove_case("l2");
	remove_case("l3");
}

static void test_unpack__hardlinks_share_inodes(void **state)
{
	_cleanup_free_ char *tree = unpack_ok("plain.tar.gz", OCI_GZIP, "shared", NULL);
	const char *trees[] = {tree};
	_cleanup_free_ char *a = image_ok(trees, 1, "image-a");
	_cleanup_free_ char *b = image_ok(trees, 1, "image-b");
	struct stat lt = lstat_of(tree, "bin/tool");
	(void)state;

	check_plain(a);
	check_plain(b);
	assert_int_equal(lstat_of(a, "bin/tool").st_ino, lt.st_ino);
	assert_int_equal(lstat_of(b, "bin/tool").st_ino, lt.st_ino);
	assert_int_equal(lstat_of(a, "bin/tool-again").st_ino, lt.st_ino);
	assert_int_equal(lstat_of(b, "etc/config").st_ino, lstat_of(tree, "etc/config").st_ino);
	/* two names in the layer, two in each image */
	assert_int_equal(lstat_of(tree, "bin/tool").st_nlink, 6);
	/* symlinks are hard-linked too: the same inode, so the same target */
	assert_int_equal(lstat_of(a, "etc/passwd-link").st_ino,
			 lstat_of(tree, "etc/passwd-link").st_ino);
	assert_true(S_ISLNK(lstat_of(a, "etc/passwd-link").st_mode));

	remove_case("image-a");
	remove_case("image-b");
	remove_case("shared");
}

static void test_unpack__long_names(void **state)
{
	_cleanup_free_ char *names_path = tar("long-names.txt");
	_cleanup_free_ char *names = read_text(names_path);
	char *nl = strchr(names, '\n');
	const char *gnu = names, *pax;
	_cleanup_free_ char *gnu_link = NULL, *pax_link = NULL;
	(void)state;

	assert_non_null(nl);
	*nl = '\0';
	pax = nl + 1;
	nl = strchr(pax, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_true(strlen(gnu) > 100);
	assert_true(strlen(pax) > 255);
	gnu_link = bv_xasprintf("%s.link", gnu);
	pax_link = bv_xasprintf("%s.link", pax);
	{
		_cleanup_free_ char *t = unpack_ok("long-gnu.tar", OCI_TAR, "long-gnu", NULL);
		assert_file(t, gnu, "gnu\n");
		assert_int_equal(lstat_of(t, gnu).st_ino, lstat_of(t, gnu_link).st_ino);
	}
	{
		_cleanup_free_ char *t = unpack_ok("long-pax.tar", OCI_TAR, "long-pax", NULL);
		assert_file(t, pax, "pax\n");
		assert_int_equal(lstat_of(t, pax).st_ino, lstat_of(t, pax_link).st_ino);
		assert_symlink(t, "pax-symlink", pax);
	}
	remove_case("long-gnu");
	remove_case("long-pax");
}

static void test_unpack__symlink_not_followed(void **state)
{
	_cleanup_free_ char *t = unpack_ok("symlink-replaced.tar", OCI_TAR, "symlinks", NULL);
	(void)state;

	/* "s" pointed at the canary; the file of the same name replaced the link instead */
	assert_file(t, "s", "replaced\n");
	assert_symlink(t, "dangling", "/nonexistent/target");
	assert_outside_untouched();
	{
		/* the image copies symlinks as they are, dangling or not */
		const char *trees[] = {t};
		_cleanup_free_ char *r = image_ok(trees, 1, "symlinks-rootfs");
		assert_symlink(r, "dangling", "/nonexistent/target");
		assert_file(r, "s", "replaced\n");
	}
	remove_case("symlinks-rootfs");
	remove_case("symlinks");
}

static void test_unpack__hostile_layers(void **state)
{
	_cleanup_free_ char *list_path = tar("hostile.txt");
	_cleanup_free_ char *list = read_text(list_path);
	size_t n = 0;
	char *line = list;
	(void)state;

	while (*line) {
		char *nl = strchr(line, '\n');
		char *tab = strchr(line, '\t');
		_cleanup_free_ char *tarname = NULL, *blob = NULL, *dest = NULL, *needle = NULL;
		struct bv_error *err = NULL;
		int r;

		assert_non_null(nl);
		assert_non_null(tab);
		*nl = '\0';
		*tab = '\0';
		tarname = bv_xasprintf("hostile-%s.tar", line);
		blob = tar(tarname);
		dest = in_case(line);
		needle = bv_xasprintf("entry '%s' ", tab + 1);
		r = bv_unpack_layer(blob, OCI_TAR, dest, NULL, &err);
		assert_error(r, err, BV_EINVALID, needle);
		/* nothing written anywhere: not the tree, not its temporary, not outside */
		assert_false(bv_path_exists(dest));
		assert_int_equal(count_trees(cases), 0);
		assert_outside_untouched();
		n++;
		line = nl + 1;
	}
	assert_int_equal(n, 9);
}

/*
 * bv_unpack_layer_from(): a blob that grows while it is read, as a download does.  Each
 * wait() appends the next 100 bytes of the real blob to the file being read.
 */
struct growing {
	int fd;           /* the file the unpack reads */
	const char *data; /* the whole blob */
	size_t len, written;
	unsigned waits;
	int verdict;
};

static int growing_wait(void *payload, uint64_t have, struct bv_error **err)
{
	struct growing *g = payload;
	size_t n = g->len - g->written < 100 ? g->len - g->written : 100;
	(void)err;
	assert_int_equal(have, g->written); /* it waits only at the end of what is there */
	assert_true(n > 0);
	assert_int_equal(pwrite(g->fd, g->data + g->written, n, (off_t)g->written), (ssize_t)n);
	g->written += n;
	g->waits++;
	return 0;
}

static int growing_verdict(void *payload, struct bv_error **err)
{
	struct growing *g = payload;
	/* the tar may end before the blob does (padding): the verdict covers the whole blob */
	return g->verdict == 0 ? 0 : bv_error_set(err, "the blob failed verification");
}

static int unpack_growing(const char *tarname, const char *media_type, const char *dest,
			  int verdict, struct bv_error **err)
{
	_cleanup_free_ char *blob = tar(tarname);
	_cleanup_free_ char *partial = bv_path_join(work, "growing.partial");
	_cleanup_buf_ struct bv_buf data = BV_BUF_INIT;
	struct growing g = {.verdict = verdict};
	struct bv_unpack_source src = {
		.wait = growing_wait, .verdict = growing_verdict, .payload = &g};
	int r;

	assert_ok(bv_buf_read_file(&data, blob, 64u << 20, err), err);
	g.data = data.buf;
	g.len = data.len;
	g.fd = open(partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(g.fd >= 0);
	src.fd = g.fd;
	src.size = data.len;
	r = bv_unpack_layer_from(&src, tarname, media_type, dest, NULL, err);
	close(g.fd);
	unlink(partial);
	if (r == 0)
		assert_true(g.waits > 1);
	return r;
}

static void test_unpack__from_growing_file(void **state)
{
	static const struct {
		const char *tar, *media_type;
	} cases_[] = {
		{"plain.tar", OCI_TAR},
		{"plain.tar.gz", OCI_GZIP},
		{"plain.tar.zst", OCI_ZSTD},
	};
	(void)state;
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases_); i++) {
		_cleanup_free_ char *name = bv_xasprintf("growing-%zu", i);
		_cleanup_free_ char *dest = in_case(name);
		struct bv_error *err = NULL;
		/* a bad digest at the end: nothing is published, nothing is left */
		int r = unpack_growing(cases_[i].tar, cases_[i].media_type, dest, -1, &err);
		assert_error(r, err, BV_ERR, "failed verification");
		assert_false(bv_path_exists(dest));
		assert_int_equal(count_trees(cases), 0);
		/* a good one: the same tree as bv_unpack_layer() makes */
		assert_ok(unpack_growing(cases_[i].tar, cases_[i].media_type, dest, 0, &err), &err);
		check_plain(dest);
		assert_int_equal(count_trees(cases), 1);
		remove_case(name);
	}
}

/* The rules of bv_unpack_layer() hold for a layer read while it grows. */
static void test_unpack__from_growing_hostile(void **state)
{
	_cleanup_free_ char *list_path = tar("hostile.txt");
	_cleanup_free_ char *list = read_text(list_path);
	char *line = list;
	(void)state;

	while (*line) {
		char *nl = strchr(line, '\n');
		char *tab = strchr(line, '\t');
		_cleanup_free_ char *tarname = NULL, *dest = NULL, *needle = NULL;
		struct bv_error *err = NULL;

		*nl = '\0';
		*tab = '\0';
		tarname = bv_xasprintf("hostile-%s.tar", line);
		dest = in_case(line);
		needle = bv_xasprintf("entry '%s' ", tab + 1);
		int r = unpack_growing(tarname, OCI_TAR, dest, 0, &err);
		assert_error(r, err, BV_EINVALID, needle);
		assert_false(bv_path_exists(dest));
		assert_int_equal(count_trees(cases), 0);
		assert_outside_untouched();
		line = nl + 1;
	}
}

/* Names that look hostile but stay in the root under Docker's rules. */
static void test_unpack__contained(void **state)
{
	_cleanup_free_ char *a = unpack_ok("contained-absolute.tar", OCI_TAR, "c-abs", NULL);
	_cleanup_free_ char *b =
		unpack_ok("contained-symlink-dotdot.tar", OCI_TAR, "c-dotdot", NULL);
	_cleanup_free_ char *c = unpack_ok("contained-symlink-abs.tar", OCI_TAR, "c-symabs", NULL);
	_cleanup_free_ char *d =
		unpack_ok("contained-hardlink-symlink.tar", OCI_TAR, "c-hardsym", NULL);
	_cleanup_free_ char *e = unpack_ok("contained-symlink-outside.tar", OCI_TAR, "c-out", NULL);
	_cleanup_free_ char *f = unpack_ok("contained-symlink-tmp.tar", OCI_TAR, "c-tmp", NULL);
	_cleanup_free_ char *g = unpack_ok("contained-symlink-dir.tar", OCI_TAR, "c-dir", NULL);
	_cleanup_free_ char *h =
		unpack_ok("contained-replaced-parent.tar", OCI_TAR, "c-replaced", NULL);
	_cleanup_free_ char *canary = bv_path_join(outside, "canary");
	_cleanup_free_ char *in_e = bv_path_join(outside + 1, "evil");
	_cleanup_free_ char *in_g = bv_path_join(outside + 1, "sub/evil");
	(void)state;

	assert_file(a, "abs/evil", "pwned\n");
	assert_file(b, "evil", "pwned\n"); /* ".." of the root is the root */
	assert_symlink(b, "link", "..");
	assert_file(c, "tmp/evil", "pwned\n"); /* "/tmp" is the image's */
	assert_file(d, "evil", "pwned\n");
	assert_symlink(d, "sl", canary);
	assert_file(e, in_e, "pwned\n"); /* the outside path, made inside the root */
	assert_symlink(e, "link", outside);
	assert_file(f, "tmp/evil", "pwned\n");
	assert_file(g, in_g, "pwned\n");
	assert_symlink(h, "q/r", "/q");
	assert_file(h, "y", "y\n");
	assert_missing(h, "q/y");
	remove_case("c-replaced");
	remove_case("c-out");
	remove_case("c-tmp");
	remove_case("c-dir");
	remove_case("c-abs");
	remove_case("c-dotdot");
	remove_case("c-symabs");
	remove_case("c-hardsym");
	assert_outside_untouched();
}

/* Layers as umoci, Docker and GNU tar write them; each rule is in unpack-internal.h. */
static void test_unpack__docker_rules(void **state)
{
	_cleanup_free_ char *root = unpack_ok("compat-root-member.tar", OCI_TAR, "root", NULL);
	_cleanup_free_ char *sym = unpack_ok("compat-symlink-parents.tar", OCI_TAR, "sym", NULL);
	_cleanup_free_ char *hard = unpack_ok("compat-hardlinks.tar", OCI_TAR, "hard", NULL);
	struct stat s, h, t, t2;
	(void)state;

	assert_file(root, "etc/os-release", "ID=test\n");
	assert_file(root, "usr/x", "x\n");
	assert_mode(root, ".", 0555);

	assert_symlink(sym, "var/run", "../run");
	assert_file(sym, "run/app.pid", "42\n");
	assert_symlink(sym, "bin", "usr/bin");
	assert_file(sym, "usr/bin/c", "c\n");
	assert_mode(sym, "usr/bin", 0555); /* created below the symlink's target */
	assert_file(sym, "usr/lib/x.so", "so\n");
	assert_file(sym, "opt/real/deep/file", "deep\n"); /* chain1 -> chain2 -> /opt/real */
	assert_missing(sym, "chain1/../deep");

	s = lstat_of(hard, "s");
	h = lstat_of(hard, "h");
	assert_true(S_ISLNK(h.st_mode));
	assert_int_equal(s.st_ino, h.st_ino); /* a link to the symlink itself */
	assert_symlink(hard, "h", "target");
	t = lstat_of(hard, "bin/t");
	t2 = lstat_of(hard, "other/t2");
	assert_int_equal(t.st_ino, t2.st_ino); /* "/bin/t": root-relative */
	assert_mode(hard, "bin/t", 0500);      /* the link's 0700 applies to the inode */
	remove_case("root");
	remove_case("sym");
	remove_case("hard");
}

/* Go's archive/tar accepts a layer that ends after its last complete entry. */
static void test_unpack__missing_trailer(void **state)
{
	static const struct {
		const char *tar, *media_type;
	} ok[] = {
		{"compat-no-trailer.tar", OCI_TAR},
		{"compat-no-trailer.tar.gz", OCI_GZIP},
		{"compat-no-end-blocks.tar", OCI_TAR},
	};
	static const struct {
		const char *tar, *needle;
	} torn[] = {
		{"torn-data.tar", "entry 'a/x' is damaged or cut short"},
		{"torn-header.tar", "the entry after 'a/x' is damaged or cut short"},
	};
	(void)state;

	for (size_t i = 0; i < BV_ARRAY_SIZE(ok); i++) {
		_cleanup_free_ char *t = unpack_ok(ok[i].tar, ok[i].media_type, "trailer", NULL);
		assert_file(t, "a/x", "hello");
		remove_case("trailer");
	}
	for (size_t i = 0; i < BV_ARRAY_SIZE(torn); i++) {
		_cleanup_free_ char *blob = tar(torn[i].tar);
		_cleanup_free_ char *dest = in_case("torn");
		struct bv_error *err = NULL;
		int r = bv_unpack_layer(blob, OCI_TAR, dest, NULL, &err);
		assert_error(r, err, BV_EINVALID, torn[i].needle);
		assert_false(bv_path_exists(dest));
	}
	assert_int_equal(count_trees(cases), 0);
}

static void test_unpack__xattrs(void **state)
{
	struct bv_strv warnings = BV_STRV_INIT;
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	_cleanup_free_ char *t = NULL, *ping = NULL;
	char caps[64];
	ssize_t n;
	(void)state;

	/* rootless: security.capability goes like the setuid bit */
	o.warnings = &warnings;
	t = unpack_ok("compat-xattrs.tar", OCI_TAR, "xattrs", &o);
	ping = bv_path_join(t, "bin/ping");
	assert_file(t, "bin/ping", "ping\n");
	assert_true(lgetxattr(ping, "security.capability", caps, sizeof(caps)) < 0);
	assert_int_equal(warnings.n, 1);
	assert_non_null(strstr(warnings.v[0], "dropped 2 extended attributes"));
	bv_strv_clear(&warnings);
	remove_case("xattrs");
	free(t);
	free(ping);

	/* not rootless: kept where the kernel lets this process set it */
	o.rootless = false;
	t = unpack_ok("compat-xattrs.tar", OCI_TAR, "xattrs", &o);
	ping = bv_path_join(t, "bin/ping");
	n = lgetxattr(ping, "security.capability", caps, sizeof(caps));
	if (geteuid() == 0) {
		assert_int_equal(n, 20);
		assert_int_equal((unsigned char)caps[5], 0x20); /* CAP_NET_RAW, bit 13 */
		assert_non_null(strstr(warnings.v[0], "dropped 1 extended attributes"));
	} else {
		assert_true(n < 0);
		assert_non_null(strstr(warnings.v[0], "dropped 2 extended attributes"));
	}
	bv_strv_clear(&warnings);
	remove_case("xattrs");
}

static void test_unpack__sparse(void **state)
{
	static const char *const tars_[] = {"compat-sparse-gnu.tar", "compat-sparse-posix.tar"};
	(void)state;

	for (size_t i = 0; i < BV_ARRAY_SIZE(tars_); i++) {
		_cleanup_free_ char *t = unpack_ok(tars_[i], OCI_TAR, "sparse", NULL);
		_cleanup_free_ char *path = bv_path_join(t, "holes");
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		char buf[8] = {0};
		assert_true(fd >= 0);
		assert_int_equal(lstat_of(t, "holes").st_size, 3 << 20);
		assert_int_equal(pread(fd, buf, 4, 0), 4);
		assert_memory_equal(buf, "head", 4);
		assert_int_equal(pread(fd, buf, 6, 1 << 20), 6);
		assert_memory_equal(buf, "middle", 6);
		assert_int_equal(pread(fd, buf, 4, 2 << 20), 4);
		assert_memory_equal(buf, "\0\0\0\0", 4);
		remove_case("sparse");
	}
}

/* Overwrites `rel` in a read-only tree with `text`, as a user with a shell could. */
static void tamper(const char *tree, const char *rel, const char *text)
{
	_cleanup_free_ char *path = bv_path_join(tree, rel);
	_cleanup_free_ char *dir = bv_xstrndup(path, (size_t)(strrchr(path, '/') - path));
	int fd;
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chmod(path, 0644), 0);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(bv_write_all(fd, text, strlen(text)), 0);
	close(fd);
	assert_int_equal(chmod(path, 0555), 0);
	assert_int_equal(chmod(dir, 0555), 0);
}

static void test_unpack__seals(void **state)
{
	_cleanup_free_ char *t = unpack_ok("plain.tar", OCI_TAR, "sealed", NULL);
	_cleanup_free_ char *seal = in_case("sealed.seal");
	_cleanup_free_ char *blob = tar("plain.tar");
	_cleanup_free_ char *l1 = NULL, *l2 = NULL, *rootfs = in_case("sealed-rootfs");
	struct bv_error *err = NULL;
	char *problem = NULL;
	(void)state;

	assert_true(bv_unpack_is_sealed(t));
	assert_int_equal(bv_unpack_verify(&problem, t, false, false, &err), 1);
	assert_null(problem);
	/* same size, other content: only a full check sees it */
	tamper(t, "bin/tool", "#!/bin/sh\necho evil\n");
	assert_int_equal(bv_unpack_verify(&problem, t, true, false, &err), 1);
	free(problem);
	problem = NULL;
	assert_int_equal(bv_unpack_verify(&problem, t, false, true, &err), 0);
	assert_non_null(strstr(problem, "'bin/tool' differs from the seal"));
	free(problem);
	problem = NULL;
	assert_false(bv_path_exists(seal)); /* unsealed: the next unpack rebuilds it */
	assert_ok(bv_unpack_layer(blob, OCI_TAR, t, NULL, &err), &err);
	assert_true(bv_unpack_is_sealed(t));
	assert_file(t, "bin/tool", "#!/bin/sh\necho tool\n");
	/* a new file and a changed mode are seen by the fast check */
	{
		_cleanup_free_ char *extra = bv_path_join(t, "etc");
		_cleanup_free_ char *file = bv_path_join(t, "etc/new");
		assert_int_equal(chmod(extra, 0755), 0);
		assert_int_equal(bv_write_file_atomic(file, "x", 1, 0444, NULL), 0);
		assert_int_equal(bv_unpack_verify(&problem, t, true, false, &err), 0);
		assert_non_null(problem);
		free(problem);
		problem = NULL;
		assert_int_equal(unlink(file), 0);
		assert_int_equal(bv_unpack_verify(&problem, t, true, false, &err), 0);
		assert_non_null(strstr(problem, "'etc' differs from the seal"));
		free(problem);
		problem = NULL;
		assert_int_equal(chmod(extra, 0555), 0);
		assert_int_equal(bv_unpack_verify(&problem, t, false, false, &err), 1);
	}
	/* an edit through an image's hard link damages the layer tree too */
	l1 = unpack_ok("layer1.tar", OCI_TAR, "seal-l1", NULL);
	l2 = unpack_ok("layer2.tar", OCI_TAR, "seal-l2", NULL);
	{
		const char *trees[] = {l1, l2};
		_cleanup_free_ char *r = image_ok(trees, 2, "sealed-rootfs");
		assert_int_equal(bv_unpack_verify(&problem, r, false, false, &err), 1);
		tamper(r, "lib/libz.so", "z9\n");
		assert_int_equal(bv_unpack_verify(&problem, r, false, false, &err), 0);
		assert_non_null(strstr(problem, "'lib/libz.so'"));
		free(problem);
		problem = NULL;
		assert_int_equal(bv_unpack_verify(&problem, l2, false, false, &err), 0);
		free(problem);
		problem = NULL;
	}
	(void)rootfs;
	remove_case("sealed");
	remove_case("sealed-rootfs");
	remove_case("seal-l1");
	remove_case("seal-l2");
	assert_int_equal(count_trees(cases), 0);
	assert_false(bv_path_exists(seal));
}

/* Makes openat2(2) fail with ENOSYS in this process, as on kernels before 5.6. */
static int hide_openat2(void)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = BV_ARRAY_SIZE(code), .filter = code};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* The same hostile layers, and a good one, through the O_NOFOLLOW walk instead of openat2. */
static void test_unpack__without_openat2(void **state)
{
	_cleanup_free_ char *plain = tar("plain.tar");
	_cleanup_free_ char *dest = in_case("no-openat2");
	int status;
	pid_t pid;
	(void)state;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		_cleanup_closedir_ DIR *d = NULL;
		struct dirent *de;
		int n = 0;
		if (hide_openat2() < 0)
			_exit(20);
		if (syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0) != -1 || errno != ENOSYS)
			_exit(21);
		d = opendir(tars);
		if (!d)
			_exit(22);
		while ((de = readdir(d))) {
			_cleanup_free_ char *blob = NULL, *to = NULL;
			if (!bv_str_has_prefix(de->d_name, "hostile-"))
				continue;
			blob = tar(de->d_name);
			to = in_case(de->d_name);
			if (bv_unpack_layer(blob, OCI_TAR, to, NULL, NULL) != BV_EINVALID)
				_exit(23);
			if (bv_path_exists(to))
				_exit(24);
			n++;
		}
		if (n != 9)
			_exit(25);
		if (bv_unpack_layer(plain, OCI_TAR, dest, NULL, NULL) < 0)
			_exit(26);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_outside_untouched();
	assert_int_equal(count_trees(cases), 1);
	check_plain(dest);
	remove_case("no-openat2");
}

static void test_unpack__error_messages(void **state)
{
	_cleanup_free_ char *store = in_case("blobs/sha256");
	const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	_cleanup_free_ char *blob = bv_path_join(store, hex);
	_cleanup_free_ char *src = tar("hostile-dotdot.tar");
	_cleanup_free_ char *want =
		bv_xasprintf("layer sha256:%s: entry '../evil' escapes the image root", hex);
	_cleanup_free_ char *data = NULL;
	_cleanup_free_ char *dest = in_case("named");
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	char *msg;
	int r;
	(void)state;

	assert_ok(bv_mkdir_p(store, 0755, &err), &err);
	assert_ok(bv_buf_read_file(&b, src, 1 << 20, &err), &err);
	assert_ok(bv_write_file_atomic(blob, b.buf, b.len, 0644, &err), &err);
	bv_buf_release(&b);
	r = bv_unpack_layer(blob, OCI_TAR, dest, NULL, &err);
	assert_int_equal(r, BV_EINVALID);
	msg = bv_error_format(err);
	assert_string_equal(msg, want);
	free(msg);
	bv_error_free(err);
	err = NULL;
	remove_case("blobs");
	assert_int_equal(count_trees(cases), 0);
}

static void test_unpack__bad_blobs(void **state)
{
	_cleanup_free_ char *garbage = tar("garbage.tar");
	_cleanup_free_ char *bz2 = tar("layer.tar.bz2");
	_cleanup_free_ char *plain = tar("plain.tar");
	_cleanup_free_ char *missing = tar("missing.tar");
	_cleanup_free_ char *dest = in_case("bad");
	struct bv_error *err = NULL;
	int r;
	(void)state;

	r = bv_unpack_layer(garbage, OCI_TAR, dest, NULL, &err);
	assert_error(r, err, BV_EINVALID, "could not read layer");
	err = NULL;
	r = bv_unpack_layer(bz2, NULL, dest, NULL, &err);
	assert_error(r, err, BV_EINVALID, "unsupported compression");
	err = NULL;
	r = bv_unpack_layer(plain, "application/vnd.oci.image.layer.v1.tar+bzip2", dest, NULL,
			    &err);
	assert_error(r, err, BV_EINVALID, "unsupported media type");
	err = NULL;
	r = bv_unpack_layer(missing, OCI_TAR, dest, NULL, &err);
	assert_error(r, err, BV_ENOTFOUND, "missing.tar");
	err = NULL;
	assert_int_equal(count_trees(cases), 0);
}

static void test_unpack__devices_dropped_rootless(void **state)
{
	struct bv_strv warnings = BV_STRV_INIT;
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	_cleanup_free_ char *t = NULL;
	(void)state;

	o.warnings = &warnings;
	t = unpack_ok("devices.tar", OCI_TAR, "devices", &o);
	assert_file(t, "dev/regular", "kept\n");
	assert_missing(t, "dev/null");
	assert_missing(t, "dev/sda");
	assert_missing(t, "dev/null-again");
	assert_missing(t, "run"); /* only the fifo was there */
	assert_int_equal(warnings.n, 1);
	assert_non_null(strstr(warnings.v[0], "dropped 4 device nodes"));
	assert_non_null(strstr(warnings.v[0], "devices.tar"));
	bv_strv_clear(&warnings);
	remove_case("devices");
}

static void test_unpack__setuid_cleared(void **state)
{
	_cleanup_free_ char *t = unpack_ok("modes.tar", OCI_TAR, "modes", NULL);
	(void)state;

	assert_mode(t, "bin/su", 0555);   /* 04755 */
	assert_mode(t, "bin/wall", 0555); /* 02755 */
	assert_mode(t, "tmp", 0555);      /* 01777 */
	assert_mode(t, "bin/locked", 0000);
	remove_case("modes");
}

static void test_unpack__limits(void **state)
{
	struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
	_cleanup_free_ char *many = tar("many.tar");
	_cleanup_free_ char *big = tar("big.tar");
	_cleanup_free_ char *dest = in_case("bomb");
	struct bv_error *err = NULL;
	int r;
	(void)state;

	o.max_entries = 10;
	r = bv_unpack_layer(many, OCI_TAR, dest, &o, &err);
	assert_error(r, err, BV_EINVALID, "more than 10 entries");
	err = NULL;
	assert_int_equal(count_trees(cases), 0);
	o.max_entries = 50; /* exactly the count */
	assert_ok(bv_unpack_layer(many, OCI_TAR, dest, &o, &err), &err);
	remove_case("bomb");

	o = (struct bv_unpack_options)BV_UNPACK_OPTIONS_INIT;
	o.max_bytes = 1000;
	r = bv_unpack_layer(big, OCI_TAR, dest, &o, &err);
	assert_error(r, err, BV_EINVALID, "more than 1000 bytes");
	err = NULL;
	assert_int_equal(count_trees(cases), 0);
	o.max_bytes = 1 << 20;
	assert_ok(bv_unpack_layer(big, OCI_TAR, dest, &o, &err), &err);
	assert_int_equal(lstat_of(dest, "big").st_size, 1 << 20);
	remove_case("bomb");
}

static pid_t dead_pid(void)
{
	int status;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return pid;
}

/* A leftover temporary tree as a crash would leave it: partly filled and read-only. */
static char *make_stale(const char *dest, pid_t pid)
{
	char *tmp = bv_xasprintf("%s/%s.tmp-%ld", cases, dest, (long)pid);
	_cleanup_free_ char *sub = bv_path_join(tmp, "usr");
	_cleanup_free_ char *file = bv_path_join(sub, "half-written");
	struct bv_error *err = NULL;
	assert_ok(bv_mkdir_p(sub, 0755, &err), &err);
	assert_ok(bv_write_file_atomic(file, "x", 1, 0444, &err), &err);
	assert_int_equal(chmod(sub, 0555), 0);
	assert_int_equal(chmod(tmp, 0555), 0);
	return tmp;
}

static void test_unpack__crash_leftovers(void **state)
{
	pid_t dead = dead_pid();
	_cleanup_free_ char *stale_layer = make_stale("crash-layer", dead);
	_cleanup_free_ char *stale_rootfs = make_stale("crash-rootfs", dead);
	/* pid 1 is alive: its temporary tree may still be in use and must stay */
	_cleanup_free_ char *live = make_stale("crash-rootfs", 1);
	_cleanup_free_ char *missing = in_case("no-such-tree");
	_cleanup_free_ char *failed = in_case("failed-rootfs");
	struct bv_error *err = NULL;
	int r;
	(void)state;

	{
		_cleanup_free_ char *t = unpack_ok("plain.tar", OCI_TAR, "crash-layer", NULL);
		const char *trees[] = {t};
		_cleanup_free_ char *rootfs = NULL;
		assert_false(bv_path_exists(stale_layer));
		rootfs = image_ok(trees, 1, "crash-rootfs");
		assert_false(bv_path_exists(stale_rootfs));
		assert_true(bv_path_exists(live));
		check_plain(rootfs);

		/* a build that fails half-way leaves neither the rootfs nor its temporary */
		{
			const char *bad[] = {t, missing};
			r = bv_unpack_image(bad, 2, failed, NULL, &err);
			assert_error(r, err, BV_ENOTFOUND, "no-such-tree");
			err = NULL;
			assert_false(bv_path_exists(failed));
			assert_false(find_prefix(cases, "failed-rootfs"));
		}
	}
	assert_ok(bv_unpack_remove_tree(live, &err), &err);
	remove_case("crash-rootfs");
	remove_case("crash-layer");
	assert_int_equal(count_trees(cases), 0);
}

static void test_unpack__existing_is_done(void **state)
{
	_cleanup_free_ char *t = unpack_ok("plain.tar", OCI_TAR, "done", NULL);
	_cleanup_free_ char *again = unpack_ok("layer1.tar", OCI_TAR, "done", NULL);
	_cleanup_free_ char *l1 = unpack_ok("layer1.tar", OCI_TAR, "done-l1", NULL);
	const char *trees[] = {t};
	const char *other[] = {l1};
	_cleanup_free_ char *r1 = image_ok(trees, 1, "done-rootfs");
	_cleanup_free_ char *r2 = image_ok(other, 1, "done-rootfs");
	(void)state;

	check_plain(again); /* untouched by the second call */
	check_plain(r2);
	assert_missing(r2, "etc/a");
	remove_case("done");
	remove_case("done-l1");
	remove_case("done-rootfs");
}

static void test_unpack__diff_id(void **state)
{
	static const char *const compressed[] = {"plain.tar.gz", "plain.tar.zst"};
	_cleanup_free_ char *plain = tar("plain.tar");
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	char got[BV_UNPACK_DIFF_ID_LEN + 1], want[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *want_id = NULL;
	(void)state;

	/* a plain tar's diff_id is the digest of the blob itself */
	assert_ok(bv_buf_read_file(&b, plain, 1 << 20, &err), &err);
	bv_sha256_hex(want, b.buf, b.len);
	bv_buf_release(&b);
	want_id = bv_xasprintf("sha256:%s", want);
	assert_ok(bv_unpack_diff_id(plain, OCI_TAR, got, &err), &err);
	assert_string_equal(got, want_id);

	for (size_t i = 0; i < BV_ARRAY_SIZE(compressed); i++) {
		_cleanup_free_ char *blob = tar(compressed[i]);
		_cleanup_free_ char *id_name = bv_xasprintf("%s.diffid", compressed[i]);
		_cleanup_free_ char *id_path = tar(id_name);
		_cleanup_free_ char *expected = read_text(id_path);
		char blob_digest[BV_SHA256_HEX_LEN + 1];

		assert_ok(bv_unpack_diff_id(blob, NULL, got, &err), &err);
		assert_int_equal(strlen(got), BV_UNPACK_DIFF_ID_LEN);
		assert_string_equal(got, expected);
		assert_string_equal(got, want_id); /* same tar inside */
		/* and not merely the digest of the compressed blob */
		assert_ok(bv_buf_read_file(&b, blob, 1 << 20, &err), &err);
		bv_sha256_hex(blob_digest, b.buf, b.len);
		bv_buf_release(&b);
		assert_string_not_equal(got + 7, blob_digest);
	}

	/* found by fuzz_unpack: an empty stream unpacks (to nothing), so it has a diff_id */
	{
		_cleanup_free_ char *empty = in_case("empty.tar");
		_cleanup_free_ char *dest = in_case("empty-tree");
		assert_int_equal(bv_write_file_atomic(empty, "", 0, 0644, NULL), 0);
		assert_ok(bv_unpack_layer(empty, OCI_TAR, dest, NULL, &err), &err);
		assert_ok(bv_unpack_diff_id(empty, OCI_TAR, got, &err), &err);
		assert_string_equal(
			got,
			"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		assert_ok(bv_unpack_remove_tree(dest, &err), &err);
		assert_int_equal(unlink(empty), 0);
	}
}

/* Drops every capability, so that root is held to file permissions like everyone else. */
static int drop_capabilities(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	return (int)syscall(SYS_capset, &h, d);
}

static void test_unpack__remove_read_only_tree(void **state)
{
	_cleanup_free_ char *t = unpack_ok("plain.tar", OCI_TAR, "ro-layer", NULL);
	const char *trees[] = {t};
	_cleanup_free_ char *rootfs = image_ok(trees, 1, "ro-rootfs");
	_cleanup_free_ char *manual = in_case("ro-manual");
	_cleanup_free_ char *locked = bv_path_join(manual, "locked");
	_cleanup_free_ char *link = bv_path_join(manual, "to-outside");
	_cleanup_free_ char *config = bv_path_join(rootfs, "etc/config");
	struct bv_error *err = NULL;
	int status;
	pid_t pid;
	(void)state;

	/* a directory nobody may read, and a symlink to a directory that must survive */
	assert_ok(bv_mkdir_p(locked, 0755, &err), &err);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(chmod(locked, 0), 0);
	assert_int_equal(chmod(manual, 0555), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (drop_capabilities() < 0)
			_exit(10);
		/* the trees really are read-only for this process */
		if (unlink(config) == 0 || errno != EACCES)
			_exit(11);
		if (bv_unpack_remove_tree(rootfs, NULL) < 0)
			_exit(12);
		if (bv_unpack_remove_tree(t, NULL) < 0)
			_exit(13);
		if (bv_unpack_remove_tree(manual, NULL) < 0)
			_exit(14);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(bv_path_exists(rootfs));
	assert_false(bv_path_exists(t));
	assert_false(bv_path_exists(manual));
	assert_outside_untouched();
	assert_true(bv_path_exists("/etc/passwd"));

	/* a missing tree is fine; a symlink at the top is removed, not followed */
	assert_ok(bv_unpack_remove_tree(rootfs, &err), &err);
	assert_int_equal(symlink(outside, manual), 0);
	assert_ok(bv_unpack_remove_tree(manual, &err), &err);
	assert_false(bv_path_exists(manual));
	assert_outside_untouched();
	assert_int_equal(count_trees(cases), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unpack__plain_gzip_zstd),
		cmocka_unit_test(test_unpack__from_growing_file),
		cmocka_unit_test(test_unpack__from_growing_hostile),
		cmocka_unit_test(test_unpack__whiteouts_across_layers),
		cmocka_unit_test(test_unpack__hardlinks_share_inodes),
		cmocka_unit_test(test_unpack__long_names),
		cmocka_unit_test(test_unpack__symlink_not_followed),
		cmocka_unit_test(test_unpack__hostile_layers),
		cmocka_unit_test(test_unpack__contained),
		cmocka_unit_test(test_unpack__docker_rules),
		cmocka_unit_test(test_unpack__missing_trailer),
		cmocka_unit_test(test_unpack__xattrs),
		cmocka_unit_test(test_unpack__sparse),
		cmocka_unit_test(test_unpack__seals),
		cmocka_unit_test(test_unpack__without_openat2),
		cmocka_unit_test(test_unpack__error_messages),
		cmocka_unit_test(test_unpack__bad_blobs),
		cmocka_unit_test(test_unpack__devices_dropped_rootless),
		cmocka_unit_test(test_unpack__setuid_cleared),
		cmocka_unit_test(test_unpack__limits),
		cmocka_unit_test(test_unpack__crash_leftovers),
		cmocka_unit_test(test_unpack__existing_is_done),
		cmocka_unit_test(test_unpack__diff_id),
		cmocka_unit_test(test_unpack__remove_read_only_tree),
	};
	(void)argc;
	(void)argv;
	return cmocka_run_group_tests(tests, setup, teardown);
}
