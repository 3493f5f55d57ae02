/*
 * The project lock (bv/project.h): one holder at a time, across processes and inside one
 * process; a holder killed with SIGKILL frees it; a long wait is noted once.
 */
#include <bv/error.h>
#include <bv/project.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"

static int setup_tmpdir(void **state)
{
	*state = test_mkdtemp("project-lock");
	return *state ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	char *dir = *state;
	int r = bv_rm_rf(dir, NULL);
	free(dir);
	return r;
}

static const struct bv_project_lock_options no_wait = {.no_wait = true};

/* Tries the lock without waiting; returns its result and checks the message on conflict. */
static int try_lock(const char *root)
{
	struct bv_project_lock *pl = NULL;
	struct bv_error *err = NULL;
	int r = bv_project_lock(&pl, root, &no_wait, &err);
	if (r == BV_EEXISTS) {
		char *msg = bv_error_format(err);
		assert_non_null(strstr(msg, "another bv process is changing the project in"));
		assert_non_null(strstr(msg, root));
		free(msg);
		assert_null(pl);
	}
	bv_error_free(err);
	bv_project_unlock(pl);
	return r;
}

/* Takes the lock, waiting as `o` says; fails the test with the error's text otherwise. */
static struct bv_project_lock *lock_ok(const char *root, const struct bv_project_lock_options *o)
{
	struct bv_project_lock *pl = NULL;
	struct bv_error *err = NULL;
	assert_ok(bv_project_lock(&pl, root, o, &err), &err);
	assert_non_null(pl);
	return pl;
}

/* Forks a child that takes the lock, says so on a pipe, then holds it until every write end of
 * the pipe `release` is closed (or, when `release` is NULL, until it is killed). */
static pid_t child_holding(const char *root, const int *release)
{
	int ready[2];
	char c;
	pid_t pid;
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct bv_project_lock *pl = NULL;
		close(ready[0]);
		if (release)
			close(release[1]);
		if (bv_project_lock(&pl, root, NULL, NULL) < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		if (!release)
			for (;;)
				pause();
		while (read(release[0], &c, 1) > 0)
			;
		bv_project_unlock(pl);
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void test_project_lock__creates_dot_bv_and_is_private(void **state)
{
	const char *root = *state;
	_cleanup_free_ char *path = bv_project_lock_path(root);
	struct bv_project_lock *pl = NULL;
	struct stat st;
	mode_t old = umask(0);
	pl = lock_ok(root, NULL);
	umask(old);
	assert_non_null(pl);
	assert_true(bv_path_exists(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_null(bv_project_unlock(pl));
	assert_null(bv_project_unlock(NULL));
	assert_true(bv_path_exists(path)); /* kept: removing it would race */

	/* a world-writable lock file of ours is put back to 0644 */
	assert_int_equal(chmod(path, 0666), 0);
	pl = lock_ok(root, NULL);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	bv_project_unlock(pl);
}

static void test_project_lock__two_in_one_process_conflict(void **state)
{
	const char *root = *state;
	struct bv_project_lock *a = NULL, *b = NULL;
	a = lock_ok(root, NULL);
	assert_int_equal(try_lock(root), BV_EEXISTS);
	bv_project_unlock(a);
	b = lock_ok(root, &no_wait);
	assert_int_equal(try_lock(root), BV_EEXISTS);
	bv_project_unlock(b);
	assert_int_equal(try_lock(root), 0);
}

static void test_project_lock__child_holds_it(void **state)
{
	const char *root = *state;
	int release[2], st;
	pid_t pid;
	assert_int_equal(pipe2(release, O_CLOEXEC), 0);
	pid = child_holding(root, release);
	close(release[0]);
	assert_int_equal(try_lock(root), BV_EEXISTS);
	close(release[1]); /* the child unlocks and exits */
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(try_lock(root), 0);
}

static void test_project_lock__sigkill_leaves_nothing_stale(void **state)
{
	const char *root = *state;
	int st;
	pid_t pid = child_holding(root, NULL);
	assert_int_equal(try_lock(root), BV_EEXISTS);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(try_lock(root), 0);
}

struct noted {
	int calls;
	char *path;
};

static void note(const char *lock_path, void *payload)
{
	struct noted *n = payload;
	n->calls++;
	free(n->path);
	n->path = bv_xstrdup(lock_path);
}

static void test_project_lock__long_wait_is_noted_once(void **state)
{
	const char *root = *state;
	_cleanup_free_ char *path = bv_project_lock_path(root);
	struct noted n = {0};
	struct bv_project_lock_options o = {.note_after_ms = 50, .on_wait = note, .payload = &n};
	struct bv_project_lock *pl = NULL;
	int release[2], st;
	pid_t pid, releaser;

	/* uncontended: no note */
	pl = lock_ok(root, &o);
	pl = bv_project_unlock(pl);
	assert_int_equal(n.calls, 0);

	assert_int_equal(pipe2(release, O_CLOEXEC), 0);
	pid = child_holding(root, release);
	close(release[0]);
	/* a second child lets the holder go after 300 ms, while we wait */
	releaser = fork();
	assert_true(releaser >= 0);
	if (releaser == 0) {
		usleep(300 * 1000);
		_exit(0); /* closes its copy of release[1] */
	}
	close(release[1]);
	pl = lock_ok(root, &o);
	assert_int_equal(n.calls, 1);
	assert_string_equal(n.path, path);
	bv_project_unlock(pl);
	free(n.path);
	assert_int_equal(waitpid(releaser, &st, 0), releaser);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_project_lock__no_dot_bv_is_an_error(void **state)
{
	_cleanup_free_ char *root = bv_path_join(*state, "gone");
	struct bv_project_lock *pl = NULL;
	struct bv_error *err = NULL;
	char *msg;
	assert_int_equal(bv_project_lock(&pl, root, NULL, &err), BV_ERR);
	assert_null(pl);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "could not create '"));
	assert_non_null(strstr(msg, "gone/.bv' for the project lock"));
	free(msg);
	bv_error_free(err);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmpdir, teardown_tmpdir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_project_lock__creates_dot_bv_and_is_private),
		T(test_project_lock__two_in_one_process_conflict),
		T(test_project_lock__child_holds_it),
		T(test_project_lock__sigkill_leaves_nothing_stale),
		T(test_project_lock__long_wait_is_noted_once),
		T(test_project_lock__no_dot_bv_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
