#include <bv/error.h>
#include <bv/runtime.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *const known_names = "native, docker, apptainer, singularity or auto";

static int new_named(struct bv_runtime **out, const char *name, struct bv_error **err)
{
	if (strcmp(name, "native") == 0)
		return bv_runtime_native_new(out, err);
	if (strcmp(name, "docker") == 0)
		return bv_runtime_docker_new(out, err);
	if (strcmp(name, "apptainer") == 0 || strcmp(name, "singularity") == 0)
		return bv_runtime_apptainer_new(out, err);
	return bv_error_setc(err, BV_EINVALID, 0, "unknown backend '%s' (expected %s)", name,
			     known_names);
}

/* Tries the backends in the order of "auto" and returns the first usable one. */
static int new_auto(struct bv_runtime **out, struct bv_error **err)
{
	static const char *const order[] = {"native", "docker", "apptainer"};
	for (size_t i = 0; i < BV_ARRAY_SIZE(order); i++) {
		struct bv_runtime *rt = NULL;
		struct bv_error *ignored = NULL;
		if (new_named(&rt, order[i], &ignored) < 0 || !rt) {
			bv_error_free(ignored);
			continue;
		}
		if (rt->ops->is_usable(rt)) {
			*out = rt;
			return 0;
		}
		bv_runtime_free(rt);
	}
	return bv_error_setc(err, BV_ENOTFOUND, 0,
			     "no backend can run tools here: user namespaces are disabled, no "
			     "Docker engine answers and no apptainer is on PATH");
}

int bv_runtime_new(struct bv_runtime **out, const char *name, struct bv_error **err)
{
	if (!name || !name[0] || strcmp(name, "auto") == 0)
		return new_auto(out, err);
	return new_named(out, name, err);
}

static const char *chosen_name(const char *flag, const char *project_setting)
{
	const char *env = getenv("BV_BACKEND");
	if (flag && flag[0])
		return flag;
	if (env && env[0])
		return env;
	if (project_setting && project_setting[0])
		return project_setting;
	return "auto";
}

int bv_runtime_select(struct bv_runtime **out, const char *flag, const char *project_setting,
		      struct bv_error **err)
{
	return bv_runtime_new(out, chosen_name(flag, project_setting), err);
}

const char *bv_runtime_selected_name(const char *flag, const char *project_setting)
{
	const char *name = chosen_name(flag, project_setting);
	struct bv_runtime *rt = NULL;
	struct bv_error *err = NULL;
	if (strcmp(name, "auto") != 0)
		return strcmp(name, "singularity") == 0 ? "apptainer" : name;
	if (new_auto(&rt, &err) < 0 || !rt) {
		bv_error_free(err);
		return "auto";
	}
	name = rt->ops->name;
	bv_runtime_free(rt);
	return name;
}

void bv_runtime_free(struct bv_runtime *rt)
{
	if (!rt)
		return;
	if (rt->ops->free)
		rt->ops->free(rt);
	free(rt);
}

void bv_runtime_info_release(struct bv_runtime_info *info)
{
	free(info->name);
	free(info->version);
	free(info->detail);
	memset(info, 0, sizeof(*info));
}

void bv_run_result_release(struct bv_run_result *res)
{
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof(*res));
}

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

int bv_runtime_nvidia_files(struct bv_strv *devices, struct bv_strv *libraries,
			    struct bv_error **err)
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
