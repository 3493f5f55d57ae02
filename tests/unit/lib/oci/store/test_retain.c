/*
 * What keeps an image in a shared cache: the project registry (entries for deleted projects
 * drop out, forged entries are ignored) and run leases against prune's claims, across
 * processes, including a claim that unlinks the lease file under a waiting run.
 */
#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/oci/store/retain-internal.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

static void make_project(const char *root)
{
	_cleanup_free_ char *toml = bv_path_join(root, "bv.toml");
	assert_int_equal(bv_mkdir_p(root, 0755, NULL), 0);
	assert_int_equal(bv_write_file_atomic(toml, "[project]\nname = \"p\"\n", 21, 0644, NULL),
			 0);
}

static void test_retain__registry(void **state)
{
	_cleanup_free_ char *dir = test_mkdtemp("retain");
	_cleanup_free_ char *cache = bv_path_join(dir, "cache");
	_cleanup_free_ char *a = bv_path_join(dir, "a"), *b = bv_path_join(dir, "b");
	_cleanup_free_ char *a_toml = bv_path_join(a, "bv.toml");
	_cleanup_free_ char *forged = bv_path_join(cache, "projects/0000000000000000");
	struct bv_strv roots = BV_STRV_INIT;
	struct bv_error *err = NULL;
	(void)state;

	make_project(a);
	make_project(b);
	assert_ok(bv_retain_register_project(cache, a, &err), &err);
	assert_ok(bv_retain_register_project(cache, b, &err), &err);
	assert_ok(bv_retain_register_project(cache, a, &err), &err); /* idempotent */
	/* an entry whose name is not the hash of its content is not trusted */
	assert_int_equal(bv_write_file_atomic(forged, "/etc", 4, 0644, NULL), 0);
	assert_ok(bv_retain_projects(cache, &roots, &err), &err);
	assert_int_equal(roots.n, 2);
	assert_string_equal(roots.v[0], a);
	assert_string_equal(roots.v[1], b);
	bv_strv_clear(&roots);

	/* a deleted project pins nothing and leaves the registry */
	assert_int_equal(unlink(a_toml), 0);
	assert_ok(bv_retain_projects(cache, &roots, &err), &err);
	assert_int_equal(roots.n, 1);
	assert_string_equal(roots.v[0], b);
	bv_strv_clear(&roots);
	assert_ok(bv_rm_rf(dir, &err), &err);
}

static void test_retain__lease_and_claim(void **state)
{
	_cleanup_free_ char *dir = test_mkdtemp("retain");
	_cleanup_free_ char *tree = bv_path_join(dir, "rootfs/abc");
	_cleanup_free_ char *lease_file = bv_path_join(dir, "rootfs/abc.lease");
	struct bv_error *err = NULL;
	int lease = -1, claim = -1, status, go[2];
	pid_t pid;
	(void)state;

	assert_int_equal(bv_mkdir_p(tree, 0755, NULL), 0);
	assert_ok(bv_retain_lease(&lease, tree, &err), &err);
	assert_true(lease >= 0);
	assert_int_equal(fcntl(lease, F_GETFD) & FD_CLOEXEC, 0); /* survives exec on purpose */
	/* another process holding the lease: prune cannot claim the tree */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = -1;
		_exit(bv_retain_claim(&fd, tree, NULL) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	close(lease);

	/* a claim; a run waiting meanwhile gets a fresh lease file once the claim is dropped */
	assert_int_equal(bv_retain_claim(&claim, tree, &err), 1);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stat a, b;
		int fd = -1;
		char c;
		close(go[0]);
		close(claim); /* the claim belongs to the parent alone */
		if (bv_retain_lease(&fd, tree, NULL) < 0)
			_exit(2);
		/* the lease it holds is the file now at the path */
		if (fstat(fd, &a) < 0 || stat(lease_file, &b) < 0 || a.st_ino != b.st_ino)
			_exit(3);
		c = 'x';
		(void)write(go[1], &c, 1);
		_exit(0);
	}
	close(go[1]);
	usleep(100 * 1000); /* let the child block on the claim */
	bv_retain_unclaim(tree, claim);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(go[0]);
	assert_ok(bv_rm_rf(dir, &err), &err);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retain__registry),
		cmocka_unit_test(test_retain__lease_and_claim),
	};
	(void)argc;
	(void)argv;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
