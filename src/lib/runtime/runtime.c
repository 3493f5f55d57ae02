#include <bv/error.h>
#include <bv/runtime.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

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

bool bv_runtime_runs_from_store(const char *name)
{
	return strcmp(name, "native") == 0;
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
