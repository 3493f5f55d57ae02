#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/xalloc.h"

static int setup_tmpdir(void **state)
{
	char *dir = test_mkdtemp("lock");
	if (!dir)
		return -1;
	*state = bv_path_join(dir, "store.lock");
	free(dir);
	return 0;
}

static int teardown_tmpdir(void **state)
{
	char *path = *state;
	*strrchr(path, '/') = '\0';
	int r = bv_rm_rf(path, NULL);
	free(path);
	return r;
}

/* Tries the lock from another process; returns the result code (as a positive number). */
static int try_in_child(const char *path, enum bv_lock_mode mode)
{
	int st;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct bv_lock lk = BV_LOCK_INIT;
		struct bv_error *err = NULL;
		int r = bv_lock_acquire(&lk, path, mode, false, &err);
		if (r == BV_EEXISTS) {
			char *msg = bv_error_format(err);
			/* Check the message here; the parent only sees the exit status. */
			if (!strstr(msg, path) || !strstr(msg, "is locked by another bv process"))
				r = 99;
			free(msg);
		}
		bv_error_free(err);
		bv_lock_release(&lk);
		_exit(r < 0 ? -r : r);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_lock__exclusive_excludes_other_process(void **state)
{
	const char *path = *state;
	struct bv_lock lk = BV_LOCK_INIT;
	struct stat st;
	assert_int_equal(bv_lock_acquire(&lk, path, BV_LOCK_EXCLUSIVE, false, NULL), 0);
	assert_true(lk.fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777 & ~0022, 0644 & ~0022);
	assert_int_equal(try_in_child(path, BV_LOCK_EXCLUSIVE), -BV_EEXISTS);
	assert_int_equal(try_in_child(path, BV_LOCK_SHARED), -BV_EEXISTS);
	bv_lock_release(&lk);
	assert_int_equal(lk.fd, -1);
	assert_int_equal(try_in_child(path, BV_LOCK_EXCLUSIVE), 0);
	bv_lock_release(&lk);              /* idempotent */
	assert_true(bv_path_exists(path)); /* the lock file is kept */
}

static void test_lock__shared_with_shared(void **state)
{
	const char *path = *state;
	struct bv_lock a = BV_LOCK_INIT, b = BV_LOCK_INIT;
	assert_int_equal(bv_lock_acquire(&a, path, BV_LOCK_SHARED, false, NULL), 0);
	assert_int_equal(bv_lock_acquire(&b, path, BV_LOCK_SHARED, false, NULL), 0);
	assert_int_equal(try_in_child(path, BV_LOCK_SHARED), 0);
	assert_int_equal(try_in_child(path, BV_LOCK_EXCLUSIVE), -BV_EEXISTS);
	bv_lock_release(&a);
	assert_int_equal(try_in_child(path, BV_LOCK_EXCLUSIVE), -BV_EEXISTS);
	bv_lock_release(&b);
	assert_int_equal(try_in_child(path, BV_LOCK_EXCLUSIVE), 0);
}

static void test_lock__same_process_conflicts(void **state)
{
	const char *path = *state;
	struct bv_lock a = BV_LOCK_INIT, b = BV_LOCK_INIT;
	struct bv_error *err = NULL;
	assert_int_equal(bv_lock_acquire(&a, path, BV_LOCK_EXCLUSIVE, false, NULL), 0);
	/* OFD locks conflict between open file descriptions even inside one process. */
	assert_int_equal(bv_lock_acquire(&b, path, BV_LOCK_EXCLUSIVE, false, &err), BV_EEXISTS);
	assert_int_equal(b.fd, -1);
	assert_null(b.path);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_lock_acquire(&a, path, BV_LOCK_SHARED, false, &err), BV_EINVALID);
	bv_error_free(err);
	bv_lock_release(&a);
	assert_int_equal(bv_lock_acquire(&b, path, BV_LOCK_EXCLUSIVE, true, NULL), 0);
	bv_lock_release(&b);
}

static void test_lock__wait_blocks_until_release(void **state)
{
	const char *path = *state;
	struct bv_lock lk = BV_LOCK_INIT;
	int fds[2], st;
	char c;
	pid_t pid;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct bv_lock held = BV_LOCK_INIT;
		close(fds[0]);
		if (bv_lock_acquire(&held, path, BV_LOCK_EXCLUSIVE, false, NULL) < 0)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(2);
		usleep(200000);
		bv_lock_release(&held);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	assert_int_equal(bv_lock_acquire(&lk, path, BV_LOCK_EXCLUSIVE, false, NULL), BV_EEXISTS);
	assert_int_equal(bv_lock_acquire(&lk, path, BV_LOCK_EXCLUSIVE, true, NULL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(st, 0);
	bv_lock_release(&lk);
}

/* The bare call: a descriptor opened without O_CLOEXEC (a run lease) locks like bv_lock. */
static void test_lock__bare_fd_conflicts_with_bv_lock(void **state)
{
	const char *path = *state;
	struct bv_lock held = BV_LOCK_INIT;
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	int r;
	assert_true(fd >= 0);
	assert_int_equal(bv_lock_acquire(&held, path, BV_LOCK_SHARED, false, NULL), 0);
	assert_int_equal(bv_lock_fd(fd, BV_LOCK_SHARED, false), 0);
	bv_lock_release(&held);
	assert_int_equal(bv_lock_acquire(&held, path, BV_LOCK_EXCLUSIVE, false, NULL), BV_EEXISTS);
	assert_int_equal(close(fd), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(bv_lock_acquire(&held, path, BV_LOCK_EXCLUSIVE, false, NULL), 0);
	r = bv_lock_fd(fd, BV_LOCK_SHARED, false);
	assert_true(r == -EAGAIN || r == -EACCES);
	bv_lock_release(&held);
	assert_int_equal(bv_lock_fd(fd, BV_LOCK_EXCLUSIVE, false), 0);
	close(fd);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmpdir, teardown_tmpdir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_lock__exclusive_excludes_other_process),
		T(test_lock__shared_with_shared),
		T(test_lock__same_process_conflicts),
		T(test_lock__wait_blocks_until_release),
		T(test_lock__bare_fd_conflicts_with_bv_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
