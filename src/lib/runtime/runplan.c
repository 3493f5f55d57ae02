#include <bv/error.h>
#include <bv/index.h>
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/project.h>
#include <bv/resolve.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/model/paths-internal.h"
#include "lib/model/validate.h"
#include "lib/runtime/runplan-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define WORKSPACE "/workspace"

const struct bv_lock_tool *bv_run_plan_find_tool(const struct bv_lockfile *lock, const char *name,
						 bool *is_binary_out)
{
	const struct bv_lock_tool *t = bv_lockfile_find(lock, name);
	*is_binary_out = false;
	if (t)
		return t;
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		if (strcmp(lock->binary_index[i].binary, name) == 0) {
			*is_binary_out = true;
			return bv_lockfile_find(lock, lock->binary_index[i].tool);
		}
	}
	return NULL;
}

char *bv_run_plan_cache_slug(const char *container_path)
{
	struct bv_buf b = BV_BUF_INIT;
	for (const char *p = container_path; *p; p++) {
		if (*p == '/') {
			/* Leading, trailing and repeated slashes make no empty parts. */
			if (b.len && b.buf[b.len - 1] != '-' && p[strspn(p, "/")])
				bv_buf_putc(&b, '-');
			continue;
		}
		bv_buf_putc(&b, *p == '.' && (b.len == 0 || b.buf[b.len - 1] == '-') ? '_' : *p);
	}
	if (!b.len)
		bv_buf_puts(&b, "root");
	return bv_buf_detach(&b, NULL);
}

static char *manifest_copy_path(const char *cache_dir, const char *digest)
{
	if (!bv_digest_valid(digest))
		return NULL;
	return bv_xasprintf("%s/manifests/%s.toml", cache_dir, digest + 7);
}

int bv_run_plan_save_manifest(const struct bv_manifest *m, const char *cache_dir,
			      struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_free_ char *path = manifest_copy_path(cache_dir, m->digest), *dir = NULL;
	int r;
	if (!path || !m->path)
		return 0;
	if (bv_path_exists(path))
		return 0;
	dir = bv_path_join(cache_dir, "manifests");
	r = bv_mkdir_p(dir, 0755, err);
	if (r >= 0)
		r = bv_buf_read_file(&text, m->path, 1u << 20, err);
	if (r >= 0)
		r = bv_write_file_atomic(path, text.buf, text.len, 0644, err);
	return r < 0 ? bv_error_wrap(err, r, "could not keep the manifest of %s %s", m->id,
				     m->version)
		     : 0;
}

struct bv_manifest *bv_run_plan_saved_manifest(const struct bv_lock_tool *t, const char *cache_dir)
{
	struct bv_manifest *m = NULL;
	struct bv_error *err = NULL;
	_cleanup_free_ char *path = manifest_copy_path(cache_dir, t->manifest_sha256);
	if (path && bv_manifest_load_known(&m, path, t->manifest_sha256, &err) == 0)
		return m;
	bv_error_free(err);
	return NULL;
}

/*
 * The manifest bv.lock's entry was made from: the kept copy when its digest still matches,
 * else the registry's copy of that exact version (offline), kept for next time.  Not finding
 * one is not an error: a run then uses the tool id as the command.
 */
static struct bv_manifest *load_manifest(const struct bv_lock_tool *t, const struct bv_project *p,
					 const char *cache_dir)
{
	struct bv_manifest *m = bv_run_plan_saved_manifest(t, cache_dir);
	struct bv_index *idx = NULL;
	struct bv_error *err = NULL;
	_cleanup_free_ char *pinned = NULL;
	if (m)
		return m;
	pinned = bv_xasprintf("=%s", t->version);
	if (bv_index_open(&idx, bv_registry_url_choose(NULL, p ? p->registry_url : NULL),
			  BV_INDEX_OFFLINE, &err) == 0 &&
	    bv_resolve_tool(&m, idx, t->tool_id, pinned, NULL, &err) == 0)
		(void)bv_run_plan_save_manifest(m, cache_dir, NULL);
	bv_error_free(err);
	bv_index_free(idx);
	return m;
}

static const struct bv_manifest_subcommand *find_subcommand(const struct bv_manifest *m,
							    const char *name)
{
	for (size_t i = 0; i < m->n_subcommands; i++)
		if (strcmp(m->subcommands[i].name, name) == 0)
			return &m->subcommands[i];
	return NULL;
}

static int plan_command(struct bv_run_plan *plan, const char *name, bool is_binary,
			char *const *args, size_t n_args, struct bv_error **err)
{
	const struct bv_manifest *m = plan->manifest;
	const struct bv_manifest_subcommand *sub = NULL;
	if (n_args && strcmp(args[0], "--") == 0) {
		args++;
		n_args--;
	}
	if (is_binary || !m) {
		bv_strv_push(&plan->argv, name);
	} else if (n_args && (sub = find_subcommand(m, args[0]))) {
		bv_strv_pushv(&plan->argv, (const char *const *)sub->argv.v);
		args++;
		n_args--;
	} else if (m->n_subcommands && !m->entrypoint) {
		_cleanup_buf_ struct bv_buf names = BV_BUF_INIT;
		if (!n_args) {
			plan->list_subcommands = true;
			return 0;
		}
		for (size_t i = 0; i < m->n_subcommands; i++) {
			if (i)
				bv_buf_puts(&names, ", ");
			bv_buf_puts(&names, m->subcommands[i].name);
		}
		return bv_error_setc(err, BV_EINVALID, 0,
				     "'%s' is not a subcommand of %s (it has: %s)", args[0], m->id,
				     names.buf);
	} else {
		bv_strv_push(&plan->argv, m->entrypoint ? m->entrypoint : name);
	}
	for (size_t i = 0; i < n_args; i++)
		bv_strv_push(&plan->argv, args[i]);
	return 0;
}

/* Adds a mount, or replaces the host side of one with the same target (a later rule wins). */
static void add_mount(struct bv_run_plan *plan, size_t *n, const char *host, const char *target,
		      bool read_only, enum bv_mount_kind kind)
{
	struct bv_run_mount *m = NULL;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(plan->mounts[i].target, target) == 0)
			m = &plan->mounts[i];
	if (!m) {
		plan->mounts = bv_xrealloc(plan->mounts, (*n + 1) * sizeof(*plan->mounts));
		m = &plan->mounts[(*n)++];
	}
	m->host = bv_strv_push(&plan->strings, host);
	m->target = bv_strv_push(&plan->strings, target);
	m->read_only = read_only;
	m->kind = kind;
	bv_logf(BV_LOG_DEBUG, "run: mount %s at %s%s", host, target,
		read_only ? " (read-only)" : "");
}

static int plan_workspace(struct bv_run_plan *plan, size_t *n, const char *root, const char *cwd)
{
	plan->workdir = bv_project_container_dir(root, cwd ? cwd : root, WORKSPACE);
	if (plan->workdir) {
		add_mount(plan, n, root, WORKSPACE, false, BV_MOUNT_WORKSPACE);
	} else {
		add_mount(plan, n, cwd, WORKSPACE, false, BV_MOUNT_WORKSPACE);
		plan->workdir = bv_xstrdup(WORKSPACE);
	}
	return 0;
}

static int plan_caches(struct bv_run_plan *plan, size_t *n, const struct bv_project *p,
		       const char *tool, const char *cache_dir, struct bv_error **err)
{
	const struct bv_manifest *m = plan->manifest;
	int r = 0;
	for (size_t i = 0; m && i < m->cache_paths.n && r >= 0; i++) {
		_cleanup_free_ char *slug = bv_run_plan_cache_slug(m->cache_paths.v[i]);
		_cleanup_free_ char *host =
			bv_xasprintf("%s/tool-cache/%s/%s", cache_dir, tool, slug);
		r = bv_mkdir_p(host, 0755, err);
		if (r >= 0)
			add_mount(plan, n, host, m->cache_paths.v[i], false, BV_MOUNT_CACHE);
	}
	for (size_t i = 0; p && i < p->n_caches && r >= 0; i++) {
		const struct bv_cache_rule *rule = &p->caches[i];
		_cleanup_free_ char *host = NULL;
		if (strcmp(rule->match, "*") != 0 && strcmp(rule->match, tool) != 0)
			continue;
		host = bv_cache_rule_host_path(rule, tool);
		{
			/* checked with a placeholder when bv.toml was read; now with the real id */
			_cleanup_free_ char *home = bv_expand_home("~");
			const char *why = NULL;
			if (!bv_valid_host_mount(host, home[0] == '/' ? home : NULL, &why)) {
				r = bv_error_setc(err, BV_EINVALID, 0,
						  "[[cache]] host_path '%s' is not allowed: %s",
						  rule->host_path, why);
				break;
			}
		}
		r = bv_mkdir_p(host, 0755, err);
		if (r >= 0)
			add_mount(plan, n, host, rule->container_path, false, BV_MOUNT_CACHE);
	}
	return r < 0 ? bv_error_wrap(err, r, "could not prepare the caches of %s", tool) : 0;
}

static int plan_data(struct bv_run_plan *plan, size_t *n, const char *cache_dir,
		     struct bv_error **err)
{
	const struct bv_manifest *m = plan->manifest;
	for (size_t i = 0; m && i < m->n_reference_data; i++) {
		const struct bv_manifest_reference *ref = &m->reference_data[i];
		_cleanup_free_ char *data_root = bv_path_join(cache_dir, "data");
		_cleanup_free_ char *rel = bv_xasprintf("%s/%s", ref->id, ref->version);
		_cleanup_free_ char *host = bv_path_join(data_root, rel);
		_cleanup_free_ char *target = NULL;
		/* the names were checked when the manifest was read; this is the second wall */
		int beneath = bv_path_check_beneath(data_root, rel);
		if (beneath == -EXDEV || beneath == -ELOOP)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "reference data '%s' %s of %s resolves outside the "
					     "cache's data directory",
					     ref->id, ref->version, m->id);
		if (beneath < 0) {
			if (ref->required)
				return bv_error_setc(err, BV_EINVALID, 0,
						     "%s needs reference data '%s' %s, which is "
						     "not in the cache; fetch it with 'bv data "
						     "fetch %s@%s'",
						     m->id, ref->id, ref->version, ref->id,
						     ref->version);
			bv_strv_pushf(&plan->warnings,
				      "%s can use reference data '%s' %s, which is not in the "
				      "cache; 'bv data fetch %s@%s' fetches it",
				      m->id, ref->id, ref->version, ref->id, ref->version);
			continue;
		}
		target = ref->mount_path ? bv_xstrdup(ref->mount_path)
					 : bv_xasprintf("/data/%s", ref->id);
		add_mount(plan, n, host, target, true, BV_MOUNT_DATA);
	}
	return 0;
}

/*
 * Host variables a tool needs to behave as if installed: the terminal (samtools tview), the
 * locale and time zone, and how many threads numeric libraries may start.
 */
static const char *const passthrough_names[] = {
	"TERM",
	"COLORTERM",
	"NO_COLOR",
	"LANG",
	"LANGUAGE",
	"TZ",
	"OMP_NUM_THREADS",
	"OPENBLAS_NUM_THREADS",
	"MKL_NUM_THREADS",
	"NUMEXPR_NUM_THREADS",
	"BLIS_NUM_THREADS",
	"VECLIB_MAXIMUM_THREADS",
	"GOTO_NUM_THREADS",
	/* the GPUs a scheduler granted, so CUDA and ROCm count only those */
	"CUDA_VISIBLE_DEVICES",
	"ROCR_VISIBLE_DEVICES",
	"GPU_DEVICE_ORDINAL",
	NULL,
};

static bool name_in_list(const char *name, size_t len, const char *list)
{
	while (list && *list) {
		size_t n = strcspn(list, ",:");
		if (n == len && !strncmp(list, name, len))
			return true;
		list += n + (list[n] != '\0');
	}
	return false;
}

static bool passes_through(const char *entry, size_t name_len, const char *extra)
{
	if (name_len > 3 && !strncmp(entry, "LC_", 3))
		return true;
	/*
	 * A Slurm job's description (SLURM_JOB_ID, SLURM_CPUS_PER_TASK, SLURM_NTASKS,
	 * SLURM_PROCID, ...): tools size their threads and shards by it, and it describes the
	 * job, not who started it.
	 */
	if (name_len > 6 && !strncmp(entry, "SLURM_", 6))
		return true;
	for (size_t i = 0; passthrough_names[i]; i++)
		if (strlen(passthrough_names[i]) == name_len &&
		    !strncmp(entry, passthrough_names[i], name_len))
			return true;
	return name_in_list(entry, name_len, extra);
}

static const char *host_value(const char *const *host_env, const char *name, size_t len)
{
	for (size_t i = 0; host_env && host_env[i]; i++)
		if (!strncmp(host_env[i], name, len) && host_env[i][len] == '=')
			return host_env[i] + len + 1;
	return NULL;
}

static int plan_env(struct bv_run_plan *plan, const struct bv_run_plan_input *in,
		    struct bv_error **err)
{
	const char *extra = host_value(in->host_env, "BV_PASS_ENV", strlen("BV_PASS_ENV"));
	for (size_t i = 0; in->host_env && in->host_env[i]; i++) {
		const char *eq = strchr(in->host_env[i], '=');
		if (eq && bv_env_name_valid(in->host_env[i], (size_t)(eq - in->host_env[i])) &&
		    passes_through(in->host_env[i], (size_t)(eq - in->host_env[i]), extra))
			bv_strv_env_set(&plan->env, in->host_env[i]);
	}
	for (size_t i = 0; plan->manifest && i < plan->manifest->n_env; i++) {
		_cleanup_free_ char *entry = bv_xasprintf("%s=%s", plan->manifest->env[i].name,
							  plan->manifest->env[i].value);
		bv_strv_env_set(&plan->env, entry);
	}
	for (size_t i = 0; in->env_args && in->env_args[i]; i++) {
		const char *arg = in->env_args[i];
		const char *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const char *value;
		if (!bv_env_name_valid(arg, len))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "invalid --env '%s': expected NAME=VALUE or NAME",
					     arg);
		if (eq) {
			bv_strv_env_set(&plan->env, arg);
		} else if ((value = host_value(in->host_env, arg, len))) {
			_cleanup_free_ char *entry = bv_xasprintf("%s=%s", arg, value);
			bv_strv_env_set(&plan->env, entry);
		}
	}
	return 0;
}

int bv_run_plan_build(struct bv_run_plan *plan, const struct bv_run_plan_input *in,
		      struct bv_error **err)
{
	_cleanup_free_ char *cache_owned = NULL;
	const char *cache_dir = in->cache_dir;
	const char *root = in->project ? in->project->root : in->cwd;
	size_t n_mounts = 0;
	bool is_binary;
	int r;

	memset(plan, 0, sizeof(*plan));
	plan->tool = bv_run_plan_find_tool(in->lock, in->name, &is_binary);
	if (!plan->tool)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "'%s' is not a tool or binary of this project", in->name);
	if (!plan->tool->image_digest[0])
		return bv_error_setc(err, BV_EINVALID, 0, "bv.lock pins no image digest for '%s'",
				     plan->tool->tool_id);
	if (!cache_dir) {
		r = bv_cache_dir(&cache_owned, err);
		if (r < 0)
			return r;
		cache_dir = cache_owned;
	}
	plan->manifest = load_manifest(plan->tool, in->project, cache_dir);
	r = plan_command(plan, in->name, is_binary, in->args, in->n_args, err);
	if (r >= 0 && !plan->list_subcommands) {
		r = plan_workspace(plan, &n_mounts, root ? root : ".", in->cwd);
		if (r >= 0)
			r = plan_data(plan, &n_mounts, cache_dir, err);
		if (r >= 0)
			r = plan_caches(plan, &n_mounts, in->project, plan->tool->tool_id,
					cache_dir, err);
	}
	if (r >= 0)
		r = plan_env(plan, in, err);
	if (r < 0) {
		bv_run_plan_release(plan);
		return r;
	}
	plan->req.image.tool_id = plan->tool->tool_id;
	plan->req.image.reference = plan->tool->image_reference;
	plan->req.image.digest = plan->tool->image_digest;
	plan->req.argv = (const char *const *)plan->argv.v;
	plan->req.env = (const char *const *)plan->env.v;
	plan->req.mounts = plan->mounts;
	plan->req.n_mounts = n_mounts;
	plan->req.workdir = plan->workdir;
	plan->req.gpu = plan->manifest && plan->manifest->gpu_required;
	plan->req.project_root = in->project ? in->project->root : NULL;
	return 0;
}

void bv_run_plan_release(struct bv_run_plan *plan)
{
	bv_strv_clear(&plan->argv);
	bv_strv_clear(&plan->env);
	bv_strv_clear(&plan->strings);
	bv_strv_clear(&plan->warnings);
	free(plan->mounts);
	free(plan->workdir);
	bv_manifest_free(plan->manifest);
	memset(plan, 0, sizeof(*plan));
}
