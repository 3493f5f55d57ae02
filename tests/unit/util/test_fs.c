#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

static int setup_tmpdir(void **state)
{
	*state = test_mkdtemp("fs");
	return *state ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	char *dir = *state;
	int r = bv_rm_rf(dir, NULL);
	free(dir);
	return r;
}

static void assert_file_contents(const char *path, const char *want)
{
	struct bv_buf b = BV_BUF_INIT;
	assert_int_equal(bv_buf_read_file(&b, path, 1 << 20, NULL), 0);
	assert_string_equal(b.buf, want);
	bv_buf_release(&b);
}

static void test_fs__atomic_write_replaces(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *path = bv_path_join(dir, "bv.lock");
	struct stat st;
	(void)state;
	assert_false(bv_path_exists(path));
	assert_int_equal(bv_write_file_atomic(path, "old\n", 4, 0644, NULL), 0);
	assert_true(bv_path_exists(path));
	assert_file_contents(path, "old\n");
	assert_int_equal(bv_write_file_atomic(path, "new contents\n", 13, 0600, NULL), 0);
	assert_file_contents(path, "new contents\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* No temporary file left next to it. */
	assert_int_equal(test_count_entries(dir), 1);
}

static void test_fs__atomic_write_mode_ignores_umask(void **state)
{
	_cleanup_free_ char *path = bv_path_join(*state, "script");
	mode_t old = umask(077);
	struct stat st;
	assert_int_equal(bv_write_file_atomic(path, "#!/bin/sh\n", 10, 0755, NULL), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
}

static void test_fs__write_new_never_replaces(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *path = bv_path_join(dir, "bv.toml");
	struct bv_error *err = NULL;
	char *msg;
	struct stat st;
	assert_int_equal(bv_write_file_new(path, "first\n", 6, 0644, NULL), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(bv_write_file_new(path, "second\n", 7, 0644, &err), BV_EEXISTS);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "bv.toml' already exists"));
	free(msg);
	bv_error_free(err);
	assert_file_contents(path, "first\n");
	/* the loser's temporary file is gone too */
	assert_int_equal(test_count_entries(dir), 1);
}

/* Many processes create the same file at once: exactly one wins, the file is whole. */
static void test_fs__write_new_one_winner(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *path = bv_path_join(dir, "bv.toml");
	enum { N = 8 };
	pid_t pids[N];
	int winners = 0, st;
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char text[32];
			int len = snprintf(text, sizeof(text), "writer %d\n", i);
			_exit(bv_write_file_new(path, text, (size_t)len, 0644, NULL) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		winners += WEXITSTATUS(st) == 0;
	}
	assert_int_equal(winners, 1);
	assert_int_equal(test_count_entries(dir), 1);
}

static void test_fs__atomic_write_missing_dir(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *path = bv_path_join(dir, "missing/file");
	struct bv_error *err = NULL;
	char *msg;
	assert_int_equal(bv_write_file_atomic(path, "x", 1, 0644, &err), BV_ERR);
	assert_non_null(err);
	assert_int_equal(bv_error_errno(err), ENOENT);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, path));
	free(msg);
	bv_error_free(err);
	assert_int_equal(test_count_entries(dir), 0);
	assert_int_equal(bv_write_file_atomic(dir, "x", 1, 0644, NULL), BV_ERR);
	assert_int_equal(test_count_entries(dir), 0);
}

static void test_fs__mkdir_p(void **state)
{
	_cleanup_free_ char *deep = bv_path_join(*state, "a//b/c/");
	_cleanup_free_ char *file = bv_path_join(*state, "a/f");
	_cleanup_free_ char *below = bv_path_join(*state, "a/f/g");
	struct bv_error *err = NULL;
	struct stat st;
	assert_int_equal(bv_mkdir_p(deep, 0755, NULL), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(bv_mkdir_p(deep, 0755, NULL), 0); /* existing is fine */
	assert_int_equal(bv_write_file_atomic(file, "", 0, 0644, NULL), 0);
	assert_int_equal(bv_mkdir_p(file, 0755, &err), BV_ERR);
	assert_int_equal(bv_error_errno(err), ENOTDIR);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_mkdir_p(below, 0755, &err), BV_ERR);
	bv_error_free(err);
}

static void test_fs__path_join(void **state)
{
	static const char *const cases[][3] = {
		{"a", "b", "a/b"},        {"a/", "b", "a/b"},      {"a//", "/b", "a/b"},
		{"/", "b", "/b"},         {"a", "", "a"},          {"", "b", "b"},
		{"/x", "/etc", "/x/etc"}, {"a", "b/c/", "a/b/c/"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = bv_path_join(cases[i][0], cases[i][1]);
		assert_string_equal(s, cases[i][2]);
		free(s);
	}
}

static void test_fs__rm_rf_does_not_follow_symlinks(void **state)
{
	_cleanup_free_ char *outside = bv_path_join(*state, "outside");
	_cleanup_free_ char *precious = bv_path_join(outside, "precious");
	_cleanup_free_ char *tree = bv_path_join(*state, "tree");
	_cleanup_free_ char *sub = bv_path_join(tree, "sub/deeper");
	_cleanup_free_ char *leaf = bv_path_join(sub, "leaf");
	_cleanup_free_ char *link = bv_path_join(tree, "sub/link");
	_cleanup_free_ char *ro = bv_path_join(tree, "ro");
	_cleanup_free_ char *rofile = bv_path_join(ro, "file");
	_cleanup_free_ char *toplink = bv_path_join(*state, "toplink");
	_cleanup_free_ char *toplink_slash = bv_xasprintf("%s/", toplink);

	assert_int_equal(bv_mkdir_p(outside, 0755, NULL), 0);
	assert_int_equal(bv_write_file_atomic(precious, "keep", 4, 0644, NULL), 0);
	assert_int_equal(bv_mkdir_p(sub, 0755, NULL), 0);
	assert_int_equal(bv_write_file_atomic(leaf, "x", 1, 0644, NULL), 0);
	assert_int_equal(symlink(outside, link), 0);
	/* A read-only directory, as Go's module cache leaves them. */
	assert_int_equal(bv_mkdir_p(ro, 0755, NULL), 0);
	assert_int_equal(bv_write_file_atomic(rofile, "x", 1, 0444, NULL), 0);
	assert_int_equal(chmod(ro, 0555), 0);

	assert_int_equal(bv_rm_rf(tree, NULL), 0);
	assert_false(bv_path_exists(tree));
	assert_file_contents(precious, "keep");

	/* A symlink given directly, even with a trailing slash, is removed, not followed. */
	assert_int_equal(symlink(outside, toplink), 0);
	assert_int_equal(bv_rm_rf(toplink_slash, NULL), 0);
	assert_false(bv_path_exists(toplink));
	assert_int_equal(symlink("nowhere", toplink), 0);
	assert_true(bv_path_exists(toplink)); /* a dangling link exists */
	assert_int_equal(bv_rm_rf(toplink, NULL), 0);
	assert_false(bv_path_exists(toplink));
	assert_file_contents(precious, "keep");

	assert_int_equal(bv_rm_rf(tree, NULL), 0); /* missing is success */
	assert_int_equal(bv_rm_rf(precious, NULL), 0);
	assert_false(bv_path_exists(precious));
	assert_int_equal(bv_rm_rf("/", NULL), BV_EINVALID);
}

static void test_fs__read_write_all(void **state)
{
	int fds[2], st;
	char big[200000], back[200001];
	ssize_t n;
	pid_t pid;
	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	/* Larger than a pipe buffer, so the writer needs several write() calls. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(bv_write_all(fds[1], big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(fds[1]);
	n = bv_read_all(fds[0], back, sizeof(back));
	close(fds[0]);
	assert_int_equal(n, sizeof(big));
	assert_memory_equal(back, big, sizeof(big));
	assert_int_equal(bv_write_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(bv_read_all(-1, back, 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(st, 0);
}

static void test_fs__check_beneath(void **state)
{
	const char *dir = *state;
	_cleanup_free_ char *base = bv_path_join(dir, "data");
	_cleanup_free_ char *inside = bv_path_join(dir, "data/db/1");
	_cleanup_free_ char *secret = bv_path_join(dir, "secret");
	_cleanup_free_ char *link = bv_path_join(dir, "data/evil");
	_cleanup_free_ char *abs = bv_path_join(dir, "data/abs");

	assert_int_equal(bv_mkdir_p(inside, 0755, NULL), 0);
	assert_int_equal(bv_mkdir_p(secret, 0755, NULL), 0);
	assert_int_equal(symlink("../secret", link), 0);
	assert_int_equal(symlink(secret, abs), 0);
	assert_int_equal(bv_path_check_beneath(base, "db/1"), 0);
	assert_int_equal(bv_path_check_beneath(base, "db/2"), -ENOENT);
	assert_int_equal(bv_path_check_beneath(base, "../secret"), -EXDEV);
	assert_int_equal(bv_path_check_beneath(base, "db/../../secret"), -EXDEV);
	assert_int_equal(bv_path_check_beneath(base, "evil"), -EXDEV);
	assert_int_equal(bv_path_check_beneath(base, "abs"), -EXDEV);
}

struct seen {
	unsigned files, dirs, links, calls;
	int stop_at; /* return -EINTR on this call (1-based); 0: never */
};

static int see_entry(const char *name, unsigned char type, void *payload)
{
	struct seen *s = payload;
	s->calls++;
	assert_true(strcmp(name, ".") && strcmp(name, ".."));
	s->files += type == DT_REG;
	s->dirs += type == DT_DIR;
	s->links += type == DT_LNK;
	return s->stop_at && (int)s->calls == s->stop_at ? -EINTR : 0;
}

/* Every entry but "." and "..", with its type; a callback's error stops the walk. */
/*
 * The directory gets the Orlov flag where the file system keeps flags (ext4: /tmp on the CI
 * machines), keeps the flags it had, and a missing path or a file is no error.
 */
static void test_fs__dir_mark_top(void **state)
{
	(void)state;
	char *tmp = test_mkdtemp("marktop");
	char *file = bv_path_join(tmp, "file");
	int fd, flags;
	bv_dir_mark_top(file); /* nothing there */
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	bv_dir_mark_top(file); /* not a directory */
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		print_message("note: %s keeps no inode flags (%s); only the no-error part runs\n",
			      tmp, strerror(errno));
		bv_dir_mark_top(tmp);
	} else {
		int before = flags;
		assert_false(flags & FS_TOPDIR_FL);
		bv_dir_mark_top(tmp);
		assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
		assert_true(flags & FS_TOPDIR_FL);
		assert_int_equal(flags & ~FS_TOPDIR_FL, before);
		bv_dir_mark_top(tmp); /* again: unchanged */
		assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
		assert_int_equal(flags, before | FS_TOPDIR_FL);
	}
	close(fd);
	(void)bv_rm_rf(tmp, NULL);
	free(file);
	free(tmp);
}

static void test_fs__dir_each(void **state)
{
	const char *dir = *state;
	char *buf = bv_xmalloc(BV_DIRBUF_SIZE);
	struct seen s = {0};
	int fd;
	for (int i = 0; i < 300; i++) { /* more than one getdents64() buffer's worth of names */
		char name[300];
		snprintf(name, sizeof(name), "%s/file-%03d-%0200d", dir, i, i);
		assert_int_equal(bv_write_file_atomic(name, "x", 1, 0644, NULL), 0);
	}
	_cleanup_free_ char *sub = bv_path_join(dir, "sub");
	_cleanup_free_ char *link = bv_path_join(dir, "link");
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(symlink("sub", link), 0);

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(bv_dir_each(fd, buf, see_entry, &s), 0);
	close(fd);
	assert_int_equal(s.calls, 302);
	assert_int_equal(s.files, 300);
	assert_int_equal(s.dirs, 1);
	assert_int_equal(s.links, 1);

	s = (struct seen){.stop_at = 5};
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(bv_dir_each(fd, buf, see_entry, &s), -EINTR);
	close(fd);
	assert_int_equal(s.calls, 5);
	free(buf);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmpdir, teardown_tmpdir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fs__atomic_write_replaces),
		T(test_fs__atomic_write_mode_ignores_umask),
		T(test_fs__atomic_write_missing_dir),
		T(test_fs__write_new_never_replaces),
		T(test_fs__write_new_one_winner),
		T(test_fs__mkdir_p),
		T(test_fs__path_join),
		T(test_fs__rm_rf_does_not_follow_symlinks),
		T(test_fs__read_write_all),
		T(test_fs__check_beneath),
		T(test_fs__dir_each),
		T(test_fs__dir_mark_top),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
