/*
 * bv add <tool[@version]>...: resolve in the registry, pull, then record in bv.toml and
 * bv.lock.  Nothing is written unless every tool resolved and pulled.
 */
#include <bv/error.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/project.h>
#include <bv/registry.h>
#include <bv/runtime.h>
#include <bv/version.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_registry;
static unsigned arg_jobs;
static const char *arg_backend;
static const char *arg_platform;
static bool arg_fetch_data;
static bool arg_ignore_hardware;
static bool arg_allow_experimental;
static bool arg_require_signed;

struct wanted {
	char *id;
	char *requirement;
	struct bv_manifest *manifest;
};

/*
 * Resolves each "tool[@version]" in the registry; `items` get the images to pull.  A tool
 * that is experimental or that this machine cannot run is refused here, before anything is
 * pulled or written.
 */
static int resolve_all(struct wanted *want, struct bv_install_item *items,
		       const struct bv_cli_ctx *ctx, char **specs, size_t n, const char *platform)
{
	struct bv_error *err = NULL;
	/* a lock made here for another platform runs on other machines: this one's hardware
	 * says nothing about them */
	bool foreign = platform && !bv_platform_matches(bv_registry_default_platform(), platform);
	struct bv_cli_admit admit = {.allow_experimental = arg_allow_experimental,
				     .ignore_hardware = arg_ignore_hardware,
				     .skip_hardware = foreign};
	int r = 0;
	for (size_t i = 0; i < n && !r; i++) {
		struct wanted *w = &want[i];
		_cleanup_strv_ struct bv_strv warnings = BV_STRV_INIT;
		const struct bv_project_tool *declared;
		if (bv_tool_spec_parse(&w->id, &w->requirement, specs[i], &err) < 0) {
			r = bv_cli_report(err);
			break;
		}
		/* re-adding a tool by its bare id keeps the requirement bv.toml has for it */
		declared = bv_project_find_tool(ctx->project, w->id);
		if (!strchr(specs[i], '@') && declared && declared->version[0]) {
			free(w->requirement);
			w->requirement = bv_xstrdup(declared->version);
		}
		if (bv_lockops_resolve(&w->manifest, &warnings, ctx->index, w->id, w->requirement,
				       ctx->types, &err) < 0) {
			r = bv_cli_report(err);
			break;
		}
		if (bv_cli_admit_check(&admit, w->manifest, &err) < 0) {
			r = bv_cli_report(err);
			bv_cli_admit_hint(&admit);
			break;
		}
		bv_cli_print_warnings(&warnings);
		items[i].tool_id = w->id;
		items[i].reference = bv_lockops_image_reference(w->manifest);
		items[i].pinned = bv_lockops_image_pin(w->manifest);
	}
	bv_cli_admit_release(&admit);
	return r;
}

/* image_mode squashfs: the native backend's ensure also builds the squashfs images. */
static bool squashfs_mode(void)
{
	enum bv_image_mode mode;
	return bv_image_mode(&mode, NULL) >= 0 && mode == BV_IMAGE_SQUASHFS;
}

/* Pulls every image at once: into bv's store and unpacked for the native backend, else
 * resolved here and pulled by the backend, which keeps its own copy. */
static int pull_all(struct bv_install_item *items, size_t n, const struct bv_cli_ctx *ctx,
		    const char *platform)
{
	struct bv_error *err = NULL;
	struct bv_cli_progress progress = {0};
	struct bv_install_options o = {.mode = BV_INSTALL_FULL,
				       .jobs = arg_jobs,
				       .platform = platform,
				       .progress = bv_cli_pull_progress,
				       .progress_payload = &progress};
	bool foreign = platform && !bv_platform_matches(bv_registry_default_platform(), platform);
	bool native = !strcmp(bv_runtime_selected_name(arg_backend, ctx->project->runtime_backend),
			      "native");
	if (!native)
		o.mode = BV_INSTALL_RESOLVE_ONLY;
	if (bv_install(items, n, &o, &err) < 0)
		return bv_cli_report(err);
	/* an image for another platform stays in bv's store: no backend here could run it */
	if ((!native || squashfs_mode()) && !foreign)
		return bv_cli_ensure_on_backend(ctx, arg_backend, items, n, arg_jobs);
	return 0;
}

/* bv.toml and bv.lock with every tool, each edit checked before any file is written. */
static int record_all(const struct bv_cli_ctx *ctx, const struct wanted *want,
		      const struct bv_install_item *items, size_t n)
{
	struct bv_error *err = NULL;
	struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
	struct bv_lockops_addition *adds = bv_xcalloc(n + 1, sizeof(*adds));
	int r;
	for (size_t i = 0; i < n; i++) {
		adds[i] = (struct bv_lockops_addition){.id = want[i].id,
						       .requirement = want[i].requirement,
						       .manifest = want[i].manifest};
		bv_cli_image_of(&adds[i].image, &items[i]);
	}
	r = bv_lockops_add(&res, ctx->project, ctx->lock, adds, n, &err);
	if (r < 0) {
		r = bv_cli_report(err);
	} else if (bv_cli_require_signed(ctx)) {
		/* the whole new lock, before anything is written */
		const struct bv_manifest **ms = bv_xcalloc(n + 1, sizeof(*ms));
		for (size_t i = 0; i < n; i++)
			ms[i] = want[i].manifest;
		r = bv_cli_verify_signed(ctx, res.lock, ms, n);
		free(ms);
	}
	if (!r) {
		(void)bv_lockops_fill_data_pins(res.lock, ctx->index, &res.warnings);
		bv_cli_print_warnings(&res.warnings);
		r = bv_cli_commit(ctx, &res);
	}
	for (size_t i = 0; i < n; i++)
		free(adds[i].image.layers);
	free(adds);
	bv_lockops_result_release(&res);
	return r;
}

static int run_add(int argc, char **argv)
{
	_cleanup_free_ char *found = NULL, *created = NULL;
	struct bv_cli_ctx ctx;
	struct bv_install_item *items = NULL;
	struct wanted *want = NULL;
	char *platform = NULL;
	size_t n = 0;
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_add, argc, argv, 1, -1, &first);
	if (status >= 0)
		return status;
	if ((r = bv_cli_platform_arg(&platform, arg_platform)))
		return r;
	/* as upstream: outside a project, add starts one here (and records a chosen registry) */
	if (bv_project_find(&found, NULL, NULL) == BV_ENOTFOUND) {
		if ((r = bv_cli_create_project(&created, NULL, arg_registry)))
			return r;
	}
	r = bv_cli_ctx_load(&ctx, BV_CTX_WRITE | BV_CTX_INDEX | BV_CTX_TYPES, arg_registry);
	if (r)
		goto out;
	ctx.require_signed = arg_require_signed;
	n = (size_t)(argc - first);
	want = bv_xcalloc(n + 1, sizeof(*want));
	items = bv_xcalloc(n + 1, sizeof(*items));
	/* nothing is written unless every tool resolved and pulled */
	if ((r = resolve_all(want, items, &ctx, argv + first, n, platform)) ||
	    (r = pull_all(items, n, &ctx, platform)) || (r = record_all(&ctx, want, items, n)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		bv_cli_keep_manifest(want[i].manifest);
		bv_cli_status("Added %s %s (%.19s)%s%s\n", bv_cli_text(want[i].id),
			      bv_cli_text(want[i].manifest->version),
			      bv_cli_text(items[i].top_digest), platform ? " for " : "",
			      platform ? platform : "");
	}
	r = bv_cli_register_project(&ctx);
	if (!r) {
		const struct bv_manifest **ms = bv_xcalloc(n + 1, sizeof(*ms));
		for (size_t i = 0; i < n; i++)
			ms[i] = want[i].manifest;
		r = bv_cli_data_notice(ms, n, ctx.index, arg_fetch_data, arg_jobs);
		free(ms);
	}
out:
	for (size_t i = 0; want && i < n; i++) {
		free(want[i].id);
		free(want[i].requirement);
		bv_manifest_free(want[i].manifest);
		bv_install_item_release(&items[i]);
	}
	free(want);
	free(items);
	free(platform);
	bv_cli_ctx_release(&ctx);
	if (r && created) {
		/* nothing was added: the bv.toml this add started goes again */
		_cleanup_free_ char *lock = bv_xasprintf(
			"%.*s/bv.lock", (int)(strrchr(created, '/') - created), created);
		if (!bv_path_exists(lock))
			(void)unlink(created);
	}
	return r;
}

static const struct bv_cli_option add_options[] = {
	{"require-signed", 0, BV_OPT_FLAG, &arg_require_signed, NULL,
	 "refuse images without a signature by a trusted key (as [registry] require_signed)"},
	{"registry", 0, BV_OPT_STRING, &arg_registry, "URL",
	 "registry to resolve in (default: BV_REGISTRY, bv.toml, the public registry)"},
	{"jobs", 'j', BV_OPT_UINT, &arg_jobs, "N", "parallel downloads (default: BV_JOBS, else 8)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "native, docker or apptainer (default: BV_BACKEND, bv.toml, then auto)"},
	{"platform", 0, BV_OPT_STRING, &arg_platform, "OS/ARCH", BV_CLI_PLATFORM_HELP},
	{"fetch-data", 0, BV_OPT_FLAG, &arg_fetch_data, NULL,
	 "also fetch the reference data the tools need (bv data fetch, without asking)"},
	{"ignore-hardware", 0, BV_OPT_FLAG, &arg_ignore_hardware, NULL,
	 "add tools whose [tool.hardware] this machine does not meet (with a warning)"},
	{"allow-experimental", 0, BV_OPT_FLAG, &arg_allow_experimental, NULL,
	 "add tools of the experimental tier"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_add = {
	.name = "add",
	.usage =
		"[--registry <URL>] [--backend <NAME>] [--platform <OS/ARCH[/VARIANT]>]\n       [--fetch-data] [--ignore-hardware] [--allow-experimental]\n       [--require-signed] <tool[@version]>...",
	.summary = "add tools to the project and pull them",
	.description =
		"Resolves each tool in the registry (the latest version, or the newest matching\n@version; a bare number means ^), pulls and unpacks its image, then records it in\nbv.toml and bv.lock.  Nothing is written unless every tool was pulled.  Reference\ndata a tool needs is pinned in bv.lock and listed with the line that fetches it;\n--fetch-data fetches it.\n\nA tool whose [tool.hardware] this machine does not meet (CPU cores, RAM, free disk\nof the cache, NVIDIA GPUs, their memory, the CUDA version) is refused unless\n--ignore-hardware is given; an experimental tool is refused unless\n--allow-experimental is given.\n\nWith --require-signed (or [registry] require_signed = true in bv.toml) every image\nthe new bv.lock pins must carry a cosign-style signature by a trusted key (the\nmanifest's [tool.signatures] public_keys, ~/.config/bv/keys/*.pub) over its digest.\n\nWith --platform (a lock for other machines) bv.lock pins the digest of that\nplatform's manifest; an image for another platform than this machine's is pulled\ninto the store but not unpacked, and a native 'bv run' of it refuses to start.",
	.options = add_options,
	.run = run_add,
};
