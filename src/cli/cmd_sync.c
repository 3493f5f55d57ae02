/*
 * bv sync: make this machine hold exactly what bv.lock pins.
 */
#include <bv/bundle.h>
#include <bv/data.h>
#include <bv/error.h>
#include <bv/index.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/registry.h>
#include <bv/resolve.h>
#include <bv/retain.h>
#include <bv/runplan.h>
#include <bv/runtime.h>
#include <bv/shims.h>
#include <bv/syncrecord.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool arg_frozen;
static bool arg_data;
static unsigned arg_jobs;
static const char *arg_backend;
static const char *arg_platform;
static const char *arg_registry;
static const char *arg_from;
static bool arg_require_signed;

/* --frozen: bv.toml and bv.lock must agree, tool for tool, before anything is pulled. */
static int check_frozen(const struct bv_cli_ctx *ctx)
{
	struct bv_strv problems = BV_STRV_INIT;
	if (!bv_lockops_check_frozen(&problems, ctx->project, ctx->lock))
		return 0;
	bv_strv_foreach (p, &problems)
		bv_cli_error("%s", *p);
	bv_strv_clear(&problems);
	bv_cli_hint("run 'bv lock' to update bv.lock, or drop --frozen");
	return BV_EXIT_FAILURE;
}

/*
 * Without --frozen, a bv.toml that declares tools bv.lock does not pin (or pins at versions
 * its requirements refuse, or pins tools it no longer declares) is locked again first, under
 * the project lock, as bv exec does: "Everything is up to date" must not hide a tool that
 * bv.toml asks for.
 */
static int lock_declared(struct bv_cli_ctx *ctx, struct bv_sync_record *record)
{
	struct bv_strv problems = BV_STRV_INIT;
	size_t n = bv_lockops_check_frozen(&problems, ctx->project, ctx->lock);
	int r;
	bv_strv_clear(&problems);
	if (!n)
		return 0;
	if (record)
		bv_sync_record_spoil(record, "bv.lock is locked again");
	if ((r = bv_cli_ctx_take_lock(ctx)))
		return r;
	/* bv.lock as it is under the lock: another command may have locked it meanwhile */
	n = bv_lockops_check_frozen(&problems, ctx->project, ctx->lock);
	bv_strv_clear(&problems);
	if (!n)
		return 0;
	bv_cli_status("Updating bv.lock (it does not match bv.toml)\n");
	if (arg_registry && !ctx->index && (r = bv_cli_ctx_load_index(ctx, arg_registry, false)))
		return r;
	return bv_cli_relock_reload(ctx);
}

/*
 * Whether the registry's manifest of locked tool `t` says something else than bv.lock
 * records: the entry made again from it (without pulling) differs in anything but the
 * manifest digest.  This is how a lock written by upstream bv, whose manifest_sha256 hashes
 * its own re-serialisation, is compared (see keep_foreign_manifest_digests in lockops.c).
 */
static bool entry_changed(const struct bv_lockfile *lock, const struct bv_lock_tool *t,
			  const struct bv_manifest *m)
{
	struct bv_lockfile *again = bv_lockfile_clone(lock);
	struct bv_lock_tool *u = bv_lockfile_find(again, t->tool_id);
	struct bv_strv lines = BV_STRV_INIT;
	bool changed;
	bv_lockops_fill_entry(u, m, t->declared_version_req, NULL, t->resolved_at);
	bv_lock_set_string(&u->manifest_sha256, t->manifest_sha256);
	bv_lockfile_diff(lock, again, &lines);
	changed = lines.n > 0;
	bv_strv_clear(&lines);
	bv_lockfile_free(again);
	return changed;
}

/* The registry copy the drift check reads, as it was read, and how long it stays unrefreshed. */
static void record_index_sources(struct bv_sync_record *record, const struct bv_index *idx)
{
	struct bv_index_sources sources;
	if (!bv_index_sources(idx, &sources)) {
		bv_sync_record_spoil(record, "the registry is used in place, or its copy is "
					     "refreshed on every sync");
		return;
	}
	for (int i = 0; i < 2; i++)
		bv_sync_record_add_stat(record, sources.paths[i], sources.stats[i]);
	bv_sync_record_window(record, sources.fresh_from, sources.fresh_until);
}

/*
 * The drift warning: a locked tool whose registry manifest changed since bv.lock was written
 * (the registry republished that version).  A digest bv computed itself (a kept copy carries
 * it as its name, bv/runplan.h) that differs means the file changed; a digest bv cannot
 * reproduce (upstream's) warns only when the content changed.  Best effort: no registry, no
 * network or a version the registry dropped is silence, never a failure.
 */
static void warn_drift(struct bv_cli_ctx *ctx, struct bv_sync_record *record)
{
	struct bv_error *err = NULL;
	char *cache = NULL; /* freed by hand: gcc's analyzer misreads a cleanup attribute here */
	const char *from_toml = ctx->project ? ctx->project->registry_url : NULL;
	if (!ctx->index &&
	    bv_index_open(&ctx->index, bv_registry_url_choose(arg_registry, from_toml),
			  bv_offline() ? BV_INDEX_OFFLINE : BV_INDEX_REFRESH_STALE, &err) < 0) {
		bv_error_free(err);
		ctx->index = NULL;
		/* the next sync tries again (and may reach the registry): it must not be skipped */
		bv_sync_record_spoil(record, "the registry could not be opened");
		return;
	}
	record_index_sources(record, ctx->index);
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		err = NULL;
		cache = NULL;
	}
	for (size_t i = 0; i < ctx->lock->n_tools; i++) {
		const struct bv_lock_tool *t = &ctx->lock->tools[i];
		struct bv_manifest *m = NULL, *own = NULL;
		_cleanup_free_ char *pinned = NULL;
		char digest[72];
		bool changed;
		if (!t->manifest_sha256[0] ||
		    bv_index_manifest_digest(ctx->index, t->tool_id, t->version, digest, &err) <
			    0 ||
		    !strcmp(digest, t->manifest_sha256)) {
			bv_error_free(err);
			err = NULL;
			continue;
		}
		own = cache ? bv_run_plan_saved_manifest(t, cache) : NULL;
		changed = own != NULL;
		bv_manifest_free(own);
		pinned = bv_xasprintf("=%s", t->version);
		/* what follows reads files the record does not know */
		bv_sync_record_spoil(record, "a manifest differs from the registry's");
		if (!changed &&
		    bv_resolve_tool(&m, ctx->index, t->tool_id, pinned, NULL, &err) == 0)
			changed = entry_changed(ctx->lock, t, m);
		bv_error_free(err);
		err = NULL;
		bv_manifest_free(m);
		if (changed)
			bv_cli_warning("the manifest of %s %s changed since bv.lock was written; "
				       "'bv lock' to take it",
				       t->tool_id, t->version);
	}
	free(cache);
}

/*
 * The project --from installs into: the one here, whose bv.lock must be the bundle's byte for
 * byte (a bundle for another lock would leave images the lock does not name), or none, and
 * then bv.toml and bv.lock come from the bundle (*create).
 */
static int check_project(bool *create, const struct bv_bundle *b)
{
	struct bv_error *err = NULL;
	struct bv_cli_ctx ctx;
	_cleanup_buf_ struct bv_buf mine = BV_BUF_INIT;
	size_t len;
	const char *text = bv_bundle_lock_text(b, &len);
	int r = bv_cli_ctx_load(&ctx, BV_CTX_NO_PROJECT, NULL);
	if (r)
		return r;
	*create = !ctx.project;
	if (ctx.project && ctx.project->require_signed) {
		/* signatures are in registries; a bundle is installed offline */
		bv_cli_error("'%s' requires signed images ([registry] require_signed), which 'bv "
			     "sync --from' cannot check offline",
			     ctx.project->path);
		r = BV_EXIT_FAILURE;
	} else if (ctx.project &&
		   (!ctx.lock || bv_buf_read_file(&mine, ctx.lock_path, 64u << 20, &err) < 0 ||
		    mine.len != len || memcmp(mine.buf, text, len))) {
		bv_error_free(err);
		bv_cli_error("bundle '%s' was made for another bv.lock than '%s'", arg_from,
			     ctx.project->root);
		bv_cli_hint("run 'bv sync --from' in an empty directory, or bundle this project");
		r = BV_EXIT_FAILURE;
	}
	bv_cli_ctx_release(&ctx);
	return r;
}

/* Writes bv.toml and bv.lock of a bundle into the current directory, which has neither. */
static int create_project(const struct bv_bundle *b)
{
	struct bv_error *err = NULL;
	size_t toml_len, lock_len;
	const char *toml = bv_bundle_toml_text(b, &toml_len);
	const char *lock = bv_bundle_lock_text(b, &lock_len);
	if (bv_write_file_new("bv.toml", toml, toml_len, 0644, &err) < 0 ||
	    bv_write_file_new("bv.lock", lock, lock_len, 0644, &err) < 0)
		return bv_cli_report(err);
	return 0;
}

/* A staging directory for the bundle's bv/data/ entries, on the cache's file system. */
static int data_staging(char **out)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *cache = NULL, *tmp = NULL;
	char *dir;
	if (bv_cache_dir(&cache, &err) < 0)
		return bv_cli_report(err);
	tmp = bv_xasprintf("%s/data/.tmp", cache);
	if (bv_mkdir_p(tmp, 0755, &err) < 0)
		return bv_cli_report(err);
	dir = bv_xasprintf("%s/bundle.XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		bv_cli_error("could not create '%s': %s", dir, strerror(errno));
		free(dir);
		return BV_EXIT_FAILURE;
	}
	*out = dir;
	return 0;
}

/* The datasets bv.lock pins that the bundle brought, checked and published. */
static int import_data(const struct bv_lockfile *lock, const char *staging)
{
	struct bv_error *err = NULL;
	for (size_t i = 0; i < lock->n_tools; i++) {
		for (size_t k = 0; k < lock->tools[i].n_pins; k++) {
			const struct bv_lock_data_pin *p = &lock->tools[i].pins[k];
			_cleanup_free_ char *dir =
				bv_xasprintf("%s/%s/%s", staging, p->id, p->version);
			_cleanup_free_ char *rec = bv_xasprintf("%s.json", dir);
			if (!bv_path_exists(rec))
				continue; /* not in the bundle, or published for an earlier pin */
			if (bv_data_import(NULL, p->id, p->version, p->sha256, dir, rec, &err) < 0)
				return bv_cli_report(err);
			(void)unlink(rec);
		}
	}
	return 0;
}

/*
 * --from FILE: every blob checked against its digest and the lock's pins before anything is
 * published, then the sync of a warm store, offline: nothing here may reach a network.
 */
static int sync_from(void)
{
	struct bv_error *err = NULL;
	struct bv_bundle *b = NULL;
	struct bv_lockfile *lock = NULL;
	struct bv_cli_ctx ctx = {0};
	_cleanup_free_ char *staging = NULL;
	bool create = false, loaded = false;
	size_t len;
	const char *text;
	int r;

	if ((r = bv_cli_setenv("BV_OFFLINE", "1")))
		return r;
	if (bv_bundle_open(&b, arg_from, &err) < 0)
		return bv_cli_report(err);
	text = bv_bundle_lock_text(b, &len);
	if (bv_lockfile_parse(&lock, text, len, "bv.lock (in the bundle)", &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	if ((r = check_project(&create, b)))
		goto out;
	if (bv_bundle_has_data(b) && (r = data_staging(&staging)))
		goto out;
	if (bv_bundle_install(b, lock, staging, &err) < 0) {
		r = bv_cli_report(err);
		goto out;
	}
	if (staging && (r = import_data(lock, staging)))
		goto out;
	if (create && (r = create_project(b)))
		goto out;
	if ((r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL)))
		goto out;
	loaded = true;
	r = bv_cli_sync_images(&ctx, arg_backend, arg_jobs, false, NULL, NULL);
	if (!r && !bv_shims_current(ctx.project->root, ctx.lock) &&
	    !(r = bv_cli_ctx_take_lock(&ctx)) && !bv_shims_current(ctx.project->root, ctx.lock))
		r = bv_cli_write_shims(&ctx);
	else if (!r)
		r = bv_cli_register_project(&ctx);
out:
	if (staging && bv_rm_rf(staging, &err) < 0)
		bv_error_free(TAKE_PTR(err));
	if (loaded)
		bv_cli_ctx_release(&ctx);
	bv_lockfile_free(lock);
	bv_bundle_free(b);
	return r;
}

/*
 * What a sync's answer depends on besides files (bv/syncrecord.h): the arguments that change
 * it, every BV_* variable and those that place the cache and configuration, the user, the
 * machine (a project on a shared file system is synced from nodes of several kinds), whether
 * user namespaces work (the default backend), and bv's own path (the shims point at it).
 * The variables are sorted: the order of the environment says nothing.
 */
static char *record_context(void)
{
	static const char *const placing[] = {"HOME=", "XDG_CACHE_HOME=", "XDG_CONFIG_HOME="};
	_cleanup_strv_ struct bv_strv vars = BV_STRV_INIT;
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	_cleanup_free_ char *exe = bv_executable_path();
	struct bv_runtime *native = NULL;
	struct bv_error *err = NULL;
	struct utsname u;
	bool usable = false;
	if (!exe || uname(&u) < 0)
		return NULL;
	if (bv_runtime_native_new(&native, &err) < 0)
		bv_error_free(err);
	else
		usable = native->ops->is_usable(native);
	bv_runtime_free(native);
	for (char **e = environ; *e; e++) {
		/* BV_LOG only says how much to tell: a debug run may use the record too */
		bool wanted = bv_str_has_prefix(*e, "BV_") && !bv_str_has_prefix(*e, "BV_LOG=");
		for (size_t i = 0; !wanted && i < BV_ARRAY_SIZE(placing); i++)
			wanted = bv_str_has_prefix(*e, placing[i]);
		if (wanted)
			bv_strv_push(&vars, *e);
	}
	bv_strv_sort(&vars);
	bv_buf_printf(&b, "exe %s\nuid %u\nhost %s %s %s\nuserns %d\n", exe, (unsigned)geteuid(),
		      u.nodename, u.machine, u.release, usable);
	/* "=value" when given, nothing when not: an empty value is not an absent one */
	bv_buf_printf(&b, "backend %s%s\nregistry %s%s\n", arg_backend ? "=" : "",
		      arg_backend ? arg_backend : "", arg_registry ? "=" : "",
		      arg_registry ? arg_registry : "");
	bv_strv_foreach (v, &vars)
		bv_buf_printf(&b, "env %s\n", *v);
	return bv_buf_detach(&b, NULL);
}

/*
 * A plain sync (no option that asks for more than the images and the shims) whose record
 * still holds: nothing is read but the record and the files it names.  *context is set for
 * the record of a sync that goes the whole way; NULL when none can be kept.
 */
static bool nothing_changed(char **context, char **root)
{
	struct bv_error *err = NULL;
	size_t n;
	*context = NULL;
	*root = NULL;
	if (arg_frozen || arg_data || arg_platform || arg_require_signed || arg_from)
		return false;
	if (bv_project_find(root, NULL, &err) < 0) {
		bv_error_free(err);
		return false;
	}
	if (!(*context = record_context()) || !bv_sync_record_check(*root, *context, &n))
		return false;
	bv_cli_status("Everything is up to date (%zu tool%s)\n", n, n == 1 ? "" : "s");
	return true;
}

/* The files a sync reads first, stat'ed before it reads them. */
static void record_project(struct bv_sync_record *record, const char *root)
{
	_cleanup_free_ char *toml = bv_path_join(root, "bv.toml");
	_cleanup_free_ char *lock = bv_path_join(root, "bv.lock");
	bv_sync_record_add(record, toml);
	bv_sync_record_add(record, lock);
}

/*
 * The files the end of a sync reads: the shims and the cache's registration.  .bv/bin is
 * enough for the shims: a link cannot be changed in place, only replaced, which changes the
 * directory (its stamp .bv/bin.ok only spares reading the links, and is written by the very
 * check that would record it).
 */
static void record_shims(struct bv_sync_record *record, const struct bv_cli_ctx *ctx)
{
	struct bv_error *err = NULL;
	_cleanup_free_ char *bin = bv_path_join(ctx->project->root, ".bv/bin");
	_cleanup_free_ char *cache = NULL, *entry = NULL;
	bv_sync_record_add(record, bin);
	if (bv_cache_dir(&cache, &err) < 0) {
		bv_error_free(err);
		bv_sync_record_spoil(record, "no cache directory");
		return;
	}
	entry = bv_retain_project_entry(cache, ctx->project->root);
	bv_sync_record_add(record, entry);
}

static int run_sync(int argc, char **argv)
{
	struct bv_cli_ctx ctx;
	_cleanup_free_ char *platform = NULL, *context = NULL, *root = NULL;
	struct bv_sync_record *record = NULL;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_sync, argc, argv, 0, 0, &first);
	if (status >= 0)
		return status;
	/* sync writes neither bv.toml nor bv.lock, only .bv/bin when it is stale: the project
	 * lock is taken for that write alone, with bv.lock read again under it.  So a warm sync
	 * costs no lock, works in a read-only checkout, and a long pull never holds up bv add. */
	if ((r = bv_cli_platform_arg(&platform, arg_platform)))
		return r;
	if (arg_from && (platform || arg_frozen || arg_data || arg_require_signed)) {
		bv_cli_error("--from takes no --platform, --frozen, --data or --require-signed: "
			     "the bundle says it all, offline");
		return BV_EXIT_USAGE;
	}
	if (arg_from)
		return sync_from();
	if (nothing_changed(&context, &root))
		return BV_EXIT_OK;
	record = bv_sync_record_new(context ? context : "");
	if (!context)
		bv_sync_record_spoil(record,
				     "an option asks for more than the images and the shims");
	else
		record_project(record, root);
	r = bv_cli_ctx_load(&ctx, BV_CTX_LOCK, NULL);
	if (r)
		goto out; /* what the load took before it failed is released there */
	ctx.require_signed = arg_require_signed;
	if (platform && !bv_runtime_runs_from_store(bv_runtime_selected_name(
				arg_backend, ctx.project->runtime_backend))) {
		bv_cli_error("--platform needs the native backend, whose store bv fills itself");
		r = BV_EXIT_USAGE;
		goto out;
	}
	/* the project found may not be the one recorded: another bv.toml may have appeared */
	if (!root || strcmp(root, ctx.project->root) != 0 || bv_cli_require_signed(&ctx))
		bv_sync_record_spoil(record, "another project, or signatures to check");
	if (arg_frozen && ((r = check_frozen(&ctx)) || (r = bv_cli_check_data_pins(ctx.lock))))
		goto out;
	if (!arg_frozen && (r = lock_declared(&ctx, record)))
		goto out;
	warn_drift(&ctx, record);
	r = bv_cli_sync_images(&ctx, arg_backend, arg_jobs, false, platform, record);
	/* the datasets last, from the registry the drift check opened when it could */
	if (!r && arg_data &&
	    (ctx.index || !(r = bv_cli_ctx_load_index(&ctx, arg_registry, false))))
		r = bv_cli_sync_data(ctx.lock, ctx.index, arg_jobs);
	if (!r)
		record_shims(record, &ctx);
	if (!r && !bv_shims_current(ctx.project->root, ctx.lock) &&
	    !(r = bv_cli_ctx_take_lock(&ctx)) && !bv_shims_current(ctx.project->root, ctx.lock)) {
		bv_sync_record_spoil(record, "the shims are written again");
		r = bv_cli_write_shims(&ctx);
	} else if (!r) {
		r = bv_cli_register_project(&ctx);
	}
	if (!r && !bv_cli_warnings_shown())
		(void)bv_sync_record_write(record, ctx.project->root, ctx.lock->n_tools);
out:
	bv_cli_ctx_release(&ctx);
	bv_sync_record_free(record);
	return r;
}

static const struct bv_cli_option sync_options[] = {
	{"frozen", 0, BV_OPT_FLAG, &arg_frozen, NULL,
	 "fail unless bv.lock matches bv.toml exactly (and cached datasets their pins)"},
	{"data", 0, BV_OPT_FLAG, &arg_data, NULL,
	 "also fetch the reference data bv.lock pins (without asking)"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "parallel downloads (default: BV_JOBS, else 8)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer (default: BV_BACKEND, bv.toml, then auto)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry for the drift check, the data and a relock (default: BV_REGISTRY, bv.toml, "
	 "the public registry)"},
	{"platform", 0, BV_OPT_STRING, &arg_platform, "OS/ARCH",
	 "pull the images for os/arch[/variant] into the store (native backend; unpacked only "
	 "when this machine can run them)"},
	{"require-signed", 0, BV_OPT_FLAG, &arg_require_signed, NULL,
	 "check that every image bv.lock pins has a signature by a trusted key first"},
	{"from", 0, BV_OPT_STRING, &arg_from, "FILE",
	 "install from a bundle of 'bv bundle', offline, every digest checked"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_sync = {
	.name = "sync",
	.usage = "[--frozen] [--data] [--jobs <N>] [--backend <NAME>] [--registry <URL>] "
		 "[--platform <OS/ARCH[/VARIANT]>] [--require-signed] [--from <FILE>]",
	.summary = "pull exactly what bv.lock pins onto the backend",
	.description =
		"Pulls every image bv.lock pins, by digest, onto the selected backend and verifies\nit; the native backend unpacks each image once.  Images already there are not\ntouched.  Rewrites the shims in .bv/bin.  Warns when the registry's manifest of a locked\ntool changed since bv.lock was written (best effort: silent without the registry).\n\nWith --platform the images for that platform are pulled into the store, from an\nindex bv.lock pins or by a platform's manifest it pins, so that machines of that\nplatform sharing the cache find them there.\n\nWith --from the images, manifests and data come from a bundle of 'bv bundle',\nwithout any network; in a directory without a project, the bundle's bv.toml\nand bv.lock make one, else bv.lock must be the bundle's.\n\nWith --require-signed (or [registry] require_signed in bv.toml) every image bv.lock\npins must carry a signature by a trusted key (see bv add) before anything is pulled;\nthat asks the registry on every sync.",
	.options = sync_options,
	.run = run_sync,
};
