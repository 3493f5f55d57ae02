#include <bv/error.h>
#include <stdlib.h>
#include <string.h>

#include "lib/runtime/native/nvidia.h"
#include "test.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"

#include "util/banned.h"

static int setup(void **state)
{
	*state = test_mkdtemp("nvidia");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	char *dir = *state;
	int r = bv_rm_rf(dir, NULL);
	free(dir);
	return r;
}

static void test_nvidia__files(void **state)
{
	const char *dir = *state;
	struct bv_strv devices = BV_STRV_INIT, libs = BV_STRV_INIT;
	struct bv_error *err = NULL;
	_cleanup_free_ char *root = bv_path_join(dir, "gpu"), *dev = NULL, *lib = NULL, *p = NULL;
	dev = bv_path_join(root, "dev");
	lib = bv_path_join(root, "usr/lib/x86_64-linux-gnu");
	assert_ok(bv_mkdir_p(dev, 0755, &err), &err);
	assert_ok(bv_mkdir_p(lib, 0755, &err), &err);
	setenv("BV_NVIDIA_ROOT", root, 1);
	/* no device: nothing, even with libraries present */
	p = bv_path_join(lib, "libcuda.so.1");
	assert_ok(bv_write_file_atomic(p, "", 0, 0644, &err), &err);
	assert_ok(bv_nvidia_files(&devices, &libs, &err), &err);
	assert_int_equal(devices.n, 0);
	assert_int_equal(libs.n, 0);
	free(p);
	p = bv_path_join(dev, "nvidia0");
	assert_ok(bv_write_file_atomic(p, "", 0, 0644, &err), &err);
	free(p);
	p = bv_path_join(lib, "libz.so.1");
	assert_ok(bv_write_file_atomic(p, "", 0, 0644, &err), &err);
	assert_ok(bv_nvidia_files(&devices, &libs, &err), &err);
	assert_int_equal(devices.n, 1);
	assert_int_equal(libs.n, 1);
	assert_non_null(strstr(libs.v[0], "/libcuda.so.1"));
	unsetenv("BV_NVIDIA_ROOT");
	bv_strv_clear(&devices);
	bv_strv_clear(&libs);
}

static void test_nvidia__hidden_by_grant(void **state)
{
	_cleanup_strv_ struct bv_strv devices = BV_STRV_INIT, hidden = BV_STRV_INIT;
	struct bv_error *err = NULL;
	(void)state;
	bv_strv_push(&devices, "/dev/nvidia-uvm");
	bv_strv_push(&devices, "/dev/nvidia0");
	bv_strv_push(&devices, "/dev/nvidia1");
	bv_strv_push(&devices, "/dev/nvidia2");
	bv_strv_push(&devices, "/dev/nvidia3");
	bv_strv_push(&devices, "/dev/nvidiactl");
	/* no grant: nothing hidden */
	assert_ok(bv_nvidia_hidden(&hidden, &devices, NULL, &err), &err);
	assert_int_equal(hidden.n, 0);
	/* a list and a range; the control nodes always stay */
	assert_ok(bv_nvidia_hidden(&hidden, &devices, "0,2-3", &err), &err);
	assert_int_equal(hidden.n, 1);
	assert_string_equal(hidden.v[0], "/dev/nvidia1");
	bv_strv_clear(&hidden);
	assert_ok(bv_nvidia_hidden(&hidden, &devices, "3", &err), &err);
	assert_int_equal(hidden.n, 3);
	assert_string_equal(hidden.v[2], "/dev/nvidia2");
	bv_strv_clear(&hidden);
	/* a malformed grant is refused, never read as "every GPU" */
	static const char *const bad[] = {"", ",", "gpu0", "1-", "3-1", "0;1", "-1"};
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		assert_int_equal(bv_nvidia_hidden(&hidden, &devices, bad[i], &err), BV_EINVALID);
		assert_non_null(strstr(err->message, "not a list of GPU indices"));
		bv_error_free(err);
		err = NULL;
	}
	assert_int_equal(hidden.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nvidia__files),
		cmocka_unit_test(test_nvidia__hidden_by_grant),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
