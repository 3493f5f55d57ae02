/*
 * Runs busybox from a tiny rootfs in real user and mount namespaces.  Nothing is skipped: on a
 * machine without working user namespaces every case fails, which is the point.
 */
#include <bv/runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/install-internal.h"
#include "lib/runtime/native/native-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static char *root;

static const char *const tools[] = {"sh", "echo", "cat", "id", "ls", "pwd", "touch", "kill"};

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char chunk[65536];
	ssize_t n;
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, chunk, sizeof(chunk))) > 0)
		if (bv_write_all(out, chunk, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

static int setup_rootfs(void **state)
{
	static const char *const dirs[] = {"bin", "proc", "dev", "sys", "tmp", "etc", "workspace"};
	(void)state;
	root = test_mkdtemp("native");
	if (!root)
		return -1;
	for (size_t i = 0; i < BV_ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *d = bv_path_join(root, dirs[i]);
		if (mkdir(d, 0755) < 0)
			return -1;
	}
	_cleanup_free_ char *bb = bv_path_join(root, "bin/busybox");
	if (copy_file("/bin/busybox", bb, 0755) < 0)
		return -1;
	for (size_t i = 0; i < BV_ARRAY_SIZE(tools); i++) {
		_cleanup_free_ char *link = bv_xasprintf("%s/bin/%s", root, tools[i]);
		if (symlink("busybox", link) < 0)
			return -1;
	}
	/* Like an unpacked image: the caller owns it but cannot write it without chmod. */
	_cleanup_free_ char *bin = bv_path_join(root, "bin");
	if (chmod(bin, 0555) < 0 || chmod(root, 0555) < 0)
		return -1;
	return 0;
}

static int teardown_rootfs(void **state)
{
	struct bv_error *err = NULL;
	(void)state;
	if (root && bv_rm_rf(root, &err) < 0)
		bv_error_free(err);
	free(root);
	return 0;
}

static const char *const base_env[] = {"PATH=/bin", NULL};

/*
 * Runs `argv` with stdout redirected to a pipe; returns what bv_native_run() returned and
 * stores the output (the tests print little, far less than a pipe holds).
 */
static int run_capture(struct bv_native_request *req, int *status, char **out,
		       struct bv_error **err)
{
	int fds[2];
	int saved, r;
	struct bv_buf buf = BV_BUF_INIT;
	char chunk[4096];
	ssize_t n;

	fflush(stdout);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	saved = dup(1);
	assert_true(saved >= 0);
	assert_true(dup2(fds[1], 1) == 1);
	close(fds[1]);
	r = bv_native_run(status, req, err);
	assert_true(dup2(saved, 1) == 1);
	close(saved);
	while ((n = read(fds[0], chunk, sizeof(chunk))) > 0)
		bv_buf_add(&buf, chunk, (size_t)n);
	close(fds[0]);
	*out = bv_buf_detach(&buf, NULL);
	return r;
}

static void run_sh(const char *script, const char *const *env, int *status, char **out)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	struct bv_native_request req = {.rootfs = root, .argv = argv, .env = env};
	struct bv_error *err = NULL;
	assert_ok(run_capture(&req, status, out, &err), &err);
}

static void test_native__exit_status(void **state)
{
	_cleanup_free_ char *out = NULL;
	int status = -1;
	(void)state;
	run_sh("exit 7", base_env, &status, &out);
	assert_int_equal(status, 7);
}

static void test_native__signal_status(void **state)
{
	_cleanup_free_ char *out = NULL;
	int status = -1;
	(void)state;
	run_sh("kill -9 $$", base_env, &status, &out);
	assert_int_equal(status, 128 + 9);
}

static void test_native__stdout_and_uid(void **state)
{
	_cleanup_free_ char *out = NULL, *want = NULL;
	int status = -1;
	(void)state;
	run_sh("echo hello; id -u; id -g", base_env, &status, &out);
	assert_int_equal(status, 0);
	want = bv_xasprintf("hello\n%u\n%u\n", (unsigned)getuid(), (unsigned)getgid());
	assert_string_equal(out, want);
}

static void test_native__env_exact(void **state)
{
	static const char *const env[] = {"PATH=/bin", "FOO=bar baz", NULL};
	_cleanup_free_ char *out = NULL;
	int status = -1;
	(void)state;
	/* A variable of the caller must not leak in: the environment is exactly `env`. */
	setenv("BV_TEST_NATIVE_LEAK", "1", 1);
	run_sh("echo \"$FOO|$BV_TEST_NATIVE_LEAK|$PATH\"", env, &status, &out);
	assert_int_equal(status, 0);
	assert_string_equal(out, "bar baz||/bin\n");
}

static void test_native__rootfs_read_only_tmp_writable(void **state)
{
	_cleanup_free_ char *out = NULL, *x = bv_path_join(root, "x");
	int status = -1;
	(void)state;
	run_sh("touch /x 2>/dev/null && echo wrote; touch /tmp/y && ls /tmp", base_env, &status,
	       &out);
	assert_int_equal(status, 0);
	assert_string_equal(out, "y\n");
	assert_false(bv_path_exists(x));
}

static void test_native__workdir(void **state)
{
	const char *argv[] = {"pwd", NULL};
	struct bv_native_request req = {
		.rootfs = root, .argv = argv, .env = base_env, .workdir = "/etc"};
	struct bv_error *err = NULL;
	_cleanup_free_ char *out = NULL;
	int status = -1;
	(void)state;
	assert_ok(run_capture(&req, &status, &out, &err), &err);
	assert_int_equal(status, 0);
	assert_string_equal(out, "/etc\n");
}

static void test_native__workspace_mounts(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "echo data > /workspace/out.txt && "
			      "if touch /etc/nope 2>/dev/null; then echo ro-writable; fi",
			      NULL};
	_cleanup_free_ char *ws = test_mkdtemp("native-ws"), *ro = test_mkdtemp("native-ro");
	_cleanup_free_ char *file = NULL, *nope = NULL, *out = NULL;
	struct bv_native_mount mounts[] = {
		{.host = ws, .target = "/workspace", .read_only = false},
		{.host = ro, .target = "/etc", .read_only = true},
	};
	struct bv_native_request req = {
		.rootfs = root, .argv = argv, .env = base_env, .mounts = mounts, .n_mounts = 2};
	struct bv_error *err = NULL;
	struct stat st;
	int status = -1;
	(void)state;
	assert_non_null(ws);
	assert_non_null(ro);
	assert_ok(run_capture(&req, &status, &out, &err), &err);
	assert_int_equal(status, 0);
	assert_string_equal(out, "");
	file = bv_path_join(ws, "out.txt");
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_uid, getuid());
	assert_int_equal(st.st_gid, getgid());
	nope = bv_path_join(ro, "nope");
	assert_false(bv_path_exists(nope));
	assert_ok(bv_rm_rf(ws, &err), &err);
	assert_ok(bv_rm_rf(ro, &err), &err);
}

static void test_native__missing_program(void **state)
{
	const char *argv[] = {"no-such-tool", NULL};
	struct bv_native_request req = {.rootfs = root, .argv = argv, .env = base_env};
	struct bv_error *err = NULL;
	_cleanup_free_ char *out = NULL, *msg = NULL;
	int status = -1;
	(void)state;
	assert_int_equal(run_capture(&req, &status, &out, &err), BV_ENOTFOUND);
	assert_int_equal(status, -1);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "'no-such-tool'"));
	assert_int_equal(bv_error_errno(err), ENOENT);
	bv_error_free(err);
}

/* Targets the image lacks are made in the scaffold; the image directory itself is untouched. */
/* An image without /proc, /dev, /sys and /tmp (scratch, distroless) still gets them. */
static void test_native__system_dirs_without_image_dirs(void **state)
{
	const char *argv[] = {
		"/busybox", "sh", "-c",
		"for d in /dev/null /dev/zero /dev/full /dev/random /dev/urandom; do "
		"test -c $d || echo no $d; done; "
		"for d in /dev/shm /sys/kernel /tmp /proc/self/fd; do test -d $d || echo no $d; done; "
		"test -e /proc/self/exe || echo no exe; echo hi > /dev/null && echo done",
		NULL};
	_cleanup_free_ char *bare = test_mkdtemp("native-bare"), *bb = NULL, *proc = NULL,
			    *out = NULL;
	struct bv_native_request req = {.rootfs = NULL, .argv = argv, .env = base_env};
	struct bv_error *err = NULL;
	int status = -1;
	(void)state;

	assert_non_null(bare);
	bb = bv_path_join(bare, "busybox");
	assert_int_equal(copy_file("/bin/busybox", bb, 0755), 0);
	assert_int_equal(chmod(bare, 0555), 0);
	req.rootfs = bare;
	assert_ok(run_capture(&req, &status, &out, &err), &err);
	assert_string_equal(out, "done\n");
	assert_int_equal(status, 0);
	proc = bv_path_join(bare, "proc");
	assert_false(bv_path_exists(proc)); /* made over the image, never in it */
	assert_ok(bv_rm_rf(bare, &err), &err);
}

static void test_native__creates_missing_mount_points(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "cat /deep/data/in.txt && echo x > /deep/data/out.txt && "
			      "cat /opt/one.conf && "
			      "if touch /new-file 2>/dev/null; then echo root-writable; fi",
			      NULL};
	_cleanup_free_ char *dir = test_mkdtemp("native-data"), *in = NULL, *conf = NULL,
			    *out = NULL, *deep = NULL, *opt = NULL;
	struct bv_native_mount mounts[2] = {{.target = "/deep/data"},
					    {.target = "/opt/one.conf", .read_only = true}};
	struct bv_native_request req = {
		.rootfs = root, .argv = argv, .env = base_env, .mounts = mounts, .n_mounts = 2};
	struct bv_error *err = NULL;
	int status = -1;
	(void)state;
	assert_non_null(dir);
	in = bv_path_join(dir, "in.txt");
	conf = bv_path_join(dir, "one.conf");
	assert_ok(bv_write_file_atomic(in, "input\n", 6, 0644, &err), &err);
	assert_ok(bv_write_file_atomic(conf, "conf\n", 5, 0644, &err), &err);
	mounts[0].host = dir;
	mounts[1].host = conf;
	assert_ok(run_capture(&req, &status, &out, &err), &err);
	assert_int_equal(status, 0);
	assert_string_equal(out, "input\nconf\n");
	free(out);
	out = bv_path_join(dir, "out.txt");
	assert_true(bv_path_exists(out));
	deep = bv_path_join(root, "deep");
	opt = bv_path_join(root, "opt");
	assert_false(bv_path_exists(deep));
	assert_false(bv_path_exists(opt));
	assert_ok(bv_rm_rf(dir, &err), &err);
}

static void test_native__injected_file(void **state)
{
	static const char passwd[] = "someone:x:4242:4242::/tmp:/bin/sh\n";
	const char *argv[] = {"sh", "-c", "cat /etc/passwd /etc/new/group", NULL};
	struct bv_native_file files[] = {
		{.target = "/etc/passwd", .content = passwd, .len = sizeof(passwd) - 1},
		{.target = "/etc/new/group", .content = "g:x:1:\n", .len = 7},
	};
	struct bv_native_request req = {
		.rootfs = root, .argv = argv, .env = base_env, .files = files, .n_files = 2};
	struct bv_error *err = NULL;
	_cleanup_free_ char *out = NULL;
	int status = -1;
	(void)state;
	assert_ok(run_capture(&req, &status, &out, &err), &err);
	assert_int_equal(status, 0);
	assert_string_equal(out, "someone:x:4242:4242::/tmp:/bin/sh\ng:x:1:\n");
}

static void test_native__symlink_target_refused(void **state)
{
	const char *argv[] = {"true", NULL};
	struct bv_native_mount m = {.host = "/tmp", .target = "/bin/sh/x"};
	struct bv_native_request req = {
		.rootfs = root, .argv = argv, .env = base_env, .mounts = &m, .n_mounts = 1};
	struct bv_error *err = NULL;
	_cleanup_free_ char *out = NULL, *msg = NULL;
	int status = -1;
	(void)state;
	assert_int_equal(run_capture(&req, &status, &out, &err), BV_EINVALID);
	msg = bv_error_format(err);
	assert_non_null(strstr(msg, "symbolic link"));
	bv_error_free(err);
}

/*
 * is_available over many images (the directory listing of backend.c takes over after the
 * first few): each answer is what stat(2) would say, for sealed trees, unsealed ones, missing
 * ones, files where a tree should be and trees reached through a symbolic link.
 */
static void test_native__is_available_many(void **state)
{
	(void)state;
	char *cache = test_mkdtemp("native-cache");
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	enum { N = 60 };
	char digests[N][72];
	bool want[N];

	assert_non_null(cache);
	assert_int_equal(setenv("BV_CACHE_DIR", cache, 1), 0);
	assert_ok(bv_runtime_select(&rt, "native", NULL, &err), &err);
	for (unsigned i = 0; i < N; i++) {
		char *rootfs = NULL, *seal;
		(void)snprintf(digests[i], sizeof(digests[i]), "sha256:%064x", i + 1);
		assert_ok(bv_install_rootfs_path(&rootfs, digests[i], &err), &err);
		seal = bv_xasprintf("%s.seal", rootfs);
		want[i] = i % 5 != 1 && i % 5 != 2 && i % 7 != 3;
		if (i % 5 == 1) /* missing */
			;
		else if (i % 5 == 2) /* a tree without its seal */
			assert_ok(bv_mkdir_p(rootfs, 0755, &err), &err);
		else if (i % 7 == 3) /* a file where the tree should be, sealed */
			assert_ok(bv_write_file_atomic(rootfs, "", 0, 0644, &err), &err);
		else if (i % 5 == 4) { /* a sealed tree reached through a symbolic link */
			char *real = bv_xasprintf("%s.real", rootfs);
			assert_ok(bv_mkdir_p(real, 0755, &err), &err);
			assert_int_equal(symlink(real, rootfs), 0);
			free(real);
		} else
			assert_ok(bv_mkdir_p(rootfs, 0755, &err), &err);
		if (i % 5 != 1 && i % 5 != 2)
			assert_ok(bv_write_file_atomic(seal, "", 0, 0644, &err), &err);
		free(seal);
		free(rootfs);
	}
	for (unsigned pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < N; i++) {
			struct bv_image_spec image = {
				.tool_id = "t", .reference = "r", .digest = digests[i]};
			bool available = !want[i];
			assert_ok(rt->ops->is_available(rt, &image, &available, &err), &err);
			if (available != want[i])
				fail_msg("image %u: available %d, expected %d", i, available,
					 want[i]);
		}
	bv_runtime_free(rt);
	assert_int_equal(unsetenv("BV_CACHE_DIR"), 0);
	assert_ok(bv_rm_rf(cache, &err), &err);
	free(cache);
}

/* A sealed tree (or only its seal, or only the tree) at `rootfs`. */
static void make_tree(const char *rootfs, bool tree, bool seal)
{
	struct bv_error *err = NULL;
	char *path = bv_xasprintf("%s.seal", rootfs);
	if (tree)
		assert_ok(bv_mkdir_p(rootfs, 0755, &err), &err);
	if (seal)
		assert_ok(bv_write_file_atomic(path, "", 0, 0644, &err), &err);
	free(path);
}

/*
 * A thousand images, the listing answering for all but the first few: one tree without its
 * seal, one seal without its tree, and digests that are not digests (upper case, one digit
 * short) whose names have sealed trees all the same, are each reported missing; in local_dir
 * mode, the node-local trees count and the shared ones do not.
 */
static void test_native__is_available_thousand(void **state)
{
	(void)state;
	char *cache = test_mkdtemp("native-cache"), *local = test_mkdtemp("native-local");
	struct bv_error *err = NULL;
	enum { N = 1000, NO_SEAL = 737, NO_TREE = 512, LOCAL = 300 };
	static char digests[N][72];
	char bad[4][80];
	/* upper case, one digit short, a non-hex digit last, another algorithm */
	(void)snprintf(bad[0], sizeof(bad[0]), "sha256:ABCDEF%058x", 1);
	(void)snprintf(bad[1], sizeof(bad[1]), "sha256:%063x", 1);
	(void)snprintf(bad[2], sizeof(bad[2]), "sha256:%063xg", 1);
	(void)snprintf(bad[3], sizeof(bad[3]), "sha512:%064x", 1);

	assert_non_null(cache);
	assert_non_null(local);
	assert_int_equal(setenv("BV_CACHE_DIR", cache, 1), 0);
	assert_int_equal(setenv("BV_LOCAL_DIR", local, 1), 0);
	for (unsigned i = 0; i < N; i++) {
		char *rootfs = NULL;
		(void)snprintf(digests[i], sizeof(digests[i]), "sha256:%032x%032x", i * 7919u,
			       i + 1);
		assert_ok(bv_install_rootfs_path(&rootfs, digests[i], &err), &err);
		make_tree(rootfs, i != NO_TREE, i != NO_SEAL);
		free(rootfs);
	}
	/* the name each bad digest would have, sealed: the digest still does not count */
	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		char *rootfs = NULL, *name;
		assert_ok(bv_install_rootfs_path(&rootfs, digests[0], &err), &err);
		name = bv_xasprintf("%.*s/%s%s", (int)(strrchr(rootfs, '/') - rootfs), rootfs,
				    bad[b] + 7, strrchr(rootfs, '/') + 1 + 64);
		make_tree(name, true, true);
		free(name);
		free(rootfs);
	}
	for (unsigned mode = 0; mode < 2; mode++) {
		struct bv_runtime *rt = NULL;
		if (mode == 1) { /* local_dir: only LOCAL has a node-local tree */
			char *rootfs = NULL;
			assert_int_equal(setenv("BV_IMAGE_MODE", "local_dir", 1), 0);
			assert_ok(bv_install_rootfs_path(&rootfs, digests[LOCAL], &err), &err);
			assert_int_equal(strncmp(rootfs, local, strlen(local)), 0);
			make_tree(rootfs, true, true);
			free(rootfs);
		}
		assert_ok(bv_runtime_select(&rt, "native", NULL, &err), &err);
		for (unsigned i = 0; i < N; i++) {
			struct bv_image_spec image = {
				.tool_id = "t", .reference = "r", .digest = digests[i]};
			bool want = mode == 0 ? i != NO_SEAL && i != NO_TREE : i == LOCAL;
			bool available = !want;
			assert_ok(rt->ops->is_available(rt, &image, &available, &err), &err);
			if (available != want)
				fail_msg("mode %u, image %u: available %d, expected %d", mode, i,
					 available, want);
		}
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			struct bv_image_spec image = {
				.tool_id = "t", .reference = "r", .digest = bad[b]};
			bool available = true;
			assert_ok(rt->ops->is_available(rt, &image, &available, &err), &err);
			if (available)
				fail_msg("'%s' is no digest, yet available", bad[b]);
		}
		bv_runtime_free(rt);
	}
	assert_int_equal(unsetenv("BV_IMAGE_MODE"), 0);
	assert_int_equal(unsetenv("BV_LOCAL_DIR"), 0);
	assert_int_equal(unsetenv("BV_CACHE_DIR"), 0);
	assert_ok(bv_rm_rf(cache, &err), &err);
	assert_ok(bv_rm_rf(local, &err), &err);
	free(cache);
	free(local);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native__exit_status),
		cmocka_unit_test(test_native__signal_status),
		cmocka_unit_test(test_native__stdout_and_uid),
		cmocka_unit_test(test_native__env_exact),
		cmocka_unit_test(test_native__rootfs_read_only_tmp_writable),
		cmocka_unit_test(test_native__workdir),
		cmocka_unit_test(test_native__workspace_mounts),
		cmocka_unit_test(test_native__missing_program),
		cmocka_unit_test(test_native__creates_missing_mount_points),
		cmocka_unit_test(test_native__system_dirs_without_image_dirs),
		cmocka_unit_test(test_native__injected_file),
		cmocka_unit_test(test_native__symlink_target_refused),
		cmocka_unit_test(test_native__is_available_many),
		cmocka_unit_test(test_native__is_available_thousand),
	};
	return cmocka_run_group_tests(tests, setup_rootfs, teardown_rootfs);
}
