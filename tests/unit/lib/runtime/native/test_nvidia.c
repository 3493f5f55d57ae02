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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nvidia__files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
