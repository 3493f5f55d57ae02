/*
 * The run plan: name routing, command vectors, mounts and env for a locked tool, built from
 * real project, lock and manifest files in a temporary directory; and the GPU file search
 * under a fake root.
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/runtime.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/runtime/runplan-internal.h"
#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char manifest_text[] = "[tool]\n"
				    "id = \"kit\"\n"
				    "version = \"1.0.0\"\n"
				    "[tool.hardware]\n"
				    "[tool.image]\n"
				    "backend = \"docker\"\n"
				    "reference = \"quay.io/x/kit:1\"\n"
				    "[tool.entrypoint]\n"
				    "command = \"kit-main\"\n"
				    "[tool.entrypoint.env]\n"
				    "KIT_MODE = \"fast\"\n"
				    "[tool.subcommands]\n"
				    "align = [\"kit-align\", \"--fast\"]\n"
				    "[tool.binaries]\n"
				    "exposed = [\"kit-main\", \"kit-align\"]\n";

struct fixture {
	char *dir, *cache;
	struct bv_project *project;
	struct bv_lockfile *lock;
};

static int setup(void **state)
{
	struct fixture *f = bv_xcalloc(1, sizeof(*f));
	struct bv_error *err = NULL;
	_cleanup_free_ char *toml = NULL, *manifest = NULL;
	char digest[72];
	struct bv_lock_tool *t;
	f->dir = test_mkdtemp("runplan");
	f->cache = bv_path_join(f->dir, "cache");
	toml = bv_path_join(f->dir, "bv.toml");
	if (bv_write_file_atomic(toml,
				 "[project]\nname = \"p\"\n[[tools]]\nid = \"kit\"\n"
				 "[[cache]]\nmatch = \"kit\"\ncontainer_path = \"/models\"\n"
				 "host_path = \"~/models/{tool}\"\n",
				 strlen("[project]\nname = \"p\"\n[[tools]]\nid = \"kit\"\n"
					"[[cache]]\nmatch = \"kit\"\ncontainer_path = "
					"\"/models\"\nhost_path = \"~/models/{tool}\"\n"),
				 0644, &err) < 0 ||
	    bv_project_load(&f->project, f->dir, &err) < 0)
		return -1;
	/* the manifest copy, named by its digest, as bv add keeps it */
	bv_manifest_text_digest(digest, manifest_text, sizeof(manifest_text) - 1);
	manifest = bv_xasprintf("%s/manifests/%s.toml", f->cache, digest + 7);
	{
		_cleanup_free_ char *mdir = bv_path_join(f->cache, "manifests");
		if (bv_mkdir_p(mdir, 0755, &err) < 0 ||
		    bv_write_file_atomic(manifest, manifest_text, sizeof(manifest_text) - 1, 0644,
					 &err) < 0)
			return -1;
	}
	f->lock = bv_lockfile_new("0.1.29", 0);
	t = bv_lockfile_upsert(f->lock, "kit");
	bv_lock_set_string(&t->version, "1.0.0");
	bv_lock_set_string(&t->image_reference, "quay.io/x/kit:1");
	bv_lock_set_string(
		&t->image_digest,
		"sha256:1111111111111111111111111111111111111111111111111111111111111111");
	bv_lock_set_string(&t->manifest_sha256, digest);
	bv_strv_push(&t->binaries, "kit-main");
	bv_strv_push(&t->binaries, "kit-align");
	{
		const char *none[] = {NULL};
		if (bv_lockfile_rebuild_binary_index(f->lock, none, none, 0, &err) < 0)
			return -1;
	}
	setenv("HOME", f->dir, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct bv_error *err = NULL;
	if (bv_rm_rf(f->dir, &err) < 0)
		bv_error_free(err);
	bv_project_free(f->project);
	bv_lockfile_free(f->lock);
	free(f->dir);
	free(f->cache);
	free(f);
	return 0;
}

static void build(struct fixture *f, struct bv_run_plan *plan, const char *name, char *const *args,
		  size_t n, const char *cwd)
{
	struct bv_error *err = NULL;
	struct bv_run_plan_input in = {.project = f->project,
				       .lock = f->lock,
				       .name = name,
				       .args = args,
				       .n_args = n,
				       .cwd = cwd,
				       .cache_dir = f->cache};
	assert_ok(bv_run_plan_build(plan, &in, &err), &err);
}

static char *joined(const char *const *v)
{
	struct bv_buf b = BV_BUF_INIT;
	for (const char *const *p = v; p && *p; p++) {
		if (p != v)
			bv_buf_putc(&b, ' ');
		bv_buf_puts(&b, *p);
	}
	bv_buf_putc(&b, 0);
	return bv_buf_detach(&b, NULL);
}

static void test_runplan__tool_entrypoint_and_env(void **state)
{
	struct fixture *f = *state;
	struct bv_run_plan plan;
	static char dashes[] = "--", x[] = "-x", in[] = "in.fa";
	char *args[] = {dashes, x, in};
	_cleanup_free_ char *argv = NULL, *env = NULL;
	build(f, &plan, "kit", args, 3, f->dir);
	argv = joined(plan.req.argv);
	env = joined(plan.req.env);
	assert_string_equal(argv, "kit-main -x in.fa");
	assert_string_equal(env, "KIT_MODE=fast");
	assert_string_equal(plan.req.image.digest, f->lock->tools[0].image_digest);
	assert_string_equal(plan.req.workdir, "/workspace");
	bv_run_plan_release(&plan);
}

/* A Slurm job's SLURM_* and the granted GPUs reach the tool; other host variables do not. */
static void test_runplan__scheduler_env(void **state)
{
	struct fixture *f = *state;
	struct bv_run_plan plan;
	struct bv_error *err = NULL;
	const char *const host[] = {"SLURM_JOB_ID=42",
				    "SLURM_CPUS_PER_TASK=3",
				    "SLURM_=odd",
				    "SLURMX=no",
				    "CUDA_VISIBLE_DEVICES=1,3",
				    "SECRET=no",
				    NULL};
	struct bv_run_plan_input in = {.project = f->project,
				       .lock = f->lock,
				       .name = "kit",
				       .cwd = f->dir,
				       .cache_dir = f->cache,
				       .host_env = host};
	_cleanup_free_ char *env = NULL;
	assert_ok(bv_run_plan_build(&plan, &in, &err), &err);
	env = joined(plan.req.env);
	assert_string_equal(
		env,
		"SLURM_JOB_ID=42 SLURM_CPUS_PER_TASK=3 CUDA_VISIBLE_DEVICES=1,3 KIT_MODE=fast");
	bv_run_plan_release(&plan);
}

static void test_runplan__binary_and_subcommand(void **state)
{
	struct fixture *f = *state;
	struct bv_run_plan plan;
	static char align[] = "align", reads[] = "r.fq";
	char *args[] = {align, reads};
	_cleanup_free_ char *a = NULL, *b = NULL;
	build(f, &plan, "kit-align", args + 1, 1, NULL);
	a = joined(plan.req.argv);
	assert_string_equal(a, "kit-align r.fq");
	bv_run_plan_release(&plan);
	build(f, &plan, "kit", args, 2, NULL);
	b = joined(plan.req.argv);
	assert_string_equal(b, "kit-align --fast r.fq");
	bv_run_plan_release(&plan);
}

static void test_runplan__mounts(void **state)
{
	struct fixture *f = *state;
	struct bv_run_plan plan;
	_cleanup_free_ char *sub = bv_path_join(f->dir, "a/b"), *models = NULL;
	struct bv_error *err = NULL;
	bool saw_workspace = false, saw_models = false;
	assert_ok(bv_mkdir_p(sub, 0755, &err), &err);
	build(f, &plan, "kit", NULL, 0, sub);
	assert_string_equal(plan.req.workdir, "/workspace/a/b");
	models = bv_xasprintf("%s/models/kit", f->dir);
	for (size_t i = 0; i < plan.req.n_mounts; i++) {
		const struct bv_run_mount *m = &plan.req.mounts[i];
		if (!strcmp(m->target, "/workspace")) {
			saw_workspace = true;
			assert_string_equal(m->host, f->project->root);
			assert_false(m->read_only);
			assert_int_equal(m->kind, BV_MOUNT_WORKSPACE);
		} else if (!strcmp(m->target, "/models")) {
			saw_models = true;
			assert_string_equal(m->host, models);
			assert_int_equal(m->kind, BV_MOUNT_CACHE);
		}
	}
	assert_true(saw_workspace);
	assert_true(saw_models);
	assert_true(bv_path_exists(models));
	bv_run_plan_release(&plan);
}

static void test_runplan__unknown_name(void **state)
{
	struct fixture *f = *state;
	struct bv_run_plan plan;
	struct bv_error *err = NULL;
	struct bv_run_plan_input in = {
		.project = f->project, .lock = f->lock, .name = "nope", .cache_dir = f->cache};
	assert_int_equal(bv_run_plan_build(&plan, &in, &err), BV_ENOTFOUND);
	bv_error_free(err);
}

static void test_runplan__cache_slug(void **state)
{
	(void)state;
	_cleanup_free_ char *a = bv_run_plan_cache_slug("/cache/colabfold");
	_cleanup_free_ char *b = bv_run_plan_cache_slug("//root/.cache/");
	_cleanup_free_ char *c = bv_run_plan_cache_slug("/");
	assert_string_equal(a, "cache-colabfold");
	assert_string_equal(b, "root-_cache");
	assert_string_equal(c, "root");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runplan__tool_entrypoint_and_env),
		cmocka_unit_test(test_runplan__scheduler_env),
		cmocka_unit_test(test_runplan__binary_and_subcommand),
		cmocka_unit_test(test_runplan__mounts),
		cmocka_unit_test(test_runplan__unknown_name),
		cmocka_unit_test(test_runplan__cache_slug),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
