#include "lib/runtime/native/nvidia.h"

#include <bv/error.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* Host files of the NVIDIA driver that a container needs, like Apptainer's --nv list. */
static bool is_nvidia_library(const char *name)
{
	static const char *const prefixes[] = {
		"libcuda.so",
		"libnvidia-ml.so",
		"libnvidia-ptxjitcompiler.so",
		"libnvidia-fatbinaryloader.so",
		"libnvidia-opencl.so",
		"libnvidia-compiler.so",
		"libnvidia-nvvm.so",
		"libnvidia-allocator.so",
		"libcudadebugger.so",
		"libnvcuvid.so",
		"libnvidia-encode.so",
		"libnvidia-opticalflow.so",
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(prefixes); i++)
		if (bv_str_has_prefix(name, prefixes[i]))
			return true;
	return false;
}

int bv_nvidia_files(struct bv_strv *devices, struct bv_strv *libraries, struct bv_error **err)
{
	static const char *const lib_dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib64",
					       "/usr/lib/aarch64-linux-gnu", "/usr/lib"};
	/* BV_NVIDIA_ROOT moves the search under another root, for tests without a GPU. */
	const char *root = getenv("BV_NVIDIA_ROOT");
	_cleanup_free_ char *dev = bv_xasprintf("%s/dev", root ? root : "");
	_cleanup_closedir_ DIR *d = opendir(dev);
	struct dirent *de;
	(void)err;
	while (d && (de = readdir(d)))
		if (bv_str_has_prefix(de->d_name, "nvidia"))
			bv_strv_pushf(devices, "%s/%s", dev, de->d_name);
	bv_strv_sort(devices);
	if (!devices->n)
		return 0;
	for (size_t i = 0; i < BV_ARRAY_SIZE(lib_dirs); i++) {
		_cleanup_free_ char *dir = bv_xasprintf("%s%s", root ? root : "", lib_dirs[i]);
		_cleanup_closedir_ DIR *ld = opendir(dir);
		while (ld && (de = readdir(ld))) {
			_cleanup_free_ char *path = NULL;
			if (!is_nvidia_library(de->d_name))
				continue;
			path = bv_path_join(dir, de->d_name);
			if (!bv_strv_contains(libraries, path))
				bv_strv_push(libraries, path);
		}
	}
	bv_strv_sort(libraries);
	return 0;
}

/* N of a GPU node "nvidia<N>" (a basename), or -1 for the driver's other nodes. */
static long gpu_index(const char *name)
{
	unsigned n;
	if (!bv_str_has_prefix(name, "nvidia") || !name[6] || bv_parse_uint(&n, name + 6) < 0)
		return -1;
	return (long)n;
}

/* Whether index `n` is in a grant such as "0,2-3"; -1 when the grant is malformed. */
static int granted_has(const char *granted, unsigned n)
{
	_cleanup_free_ char *copy = bv_xstrdup(granted);
	char *save = NULL;
	int found = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned lo, hi;
		if (dash)
			*dash = '\0';
		if (bv_parse_uint(&lo, tok) < 0 || (dash ? bv_parse_uint(&hi, dash + 1) : 0) < 0)
			return -1;
		if (!dash)
			hi = lo;
		if (lo > hi)
			return -1;
		if (n >= lo && n <= hi)
			found = 1;
	}
	return found;
}

int bv_nvidia_hidden(struct bv_strv *hidden, const struct bv_strv *devices, const char *granted,
		     struct bv_error **err)
{
	if (!granted)
		return 0;
	/* "" or a lone separator is no list of indices either */
	if (granted_has(granted, 0) < 0 || !strpbrk(granted, "0123456789"))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the scheduler's GPU grant '%s' is not a list of GPU indices",
				     granted);
	for (size_t i = 0; i < devices->n; i++) {
		const char *slash = strrchr(devices->v[i], '/');
		long n = gpu_index(slash ? slash + 1 : devices->v[i]);
		if (n >= 0 && granted_has(granted, (unsigned)n) == 0)
			bv_strv_push(hidden, devices->v[i]);
	}
	return 0;
}
