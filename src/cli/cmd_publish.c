/*
 * bv publish <source-dir>: builds a tool, pushes its image with bv's own registry client and
 * commits a manifest pinning it on a branch of a registry checkout (bv/publish.h).
 *
 * The image leaves the builder as an OCI image layout (the engine's export converted, or
 * what `buildah push oci:` writes) and goes up with bv_push(), so any OCI registry works and
 * the digest recorded is the one bv computed and the registry confirmed.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/index.h>
#include <bv/publish.h>
#include <bv/push.h>
#include <bv/signature.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_name;
static const char *arg_version;
static const char *arg_push_to;
static const char *arg_registry_repo;
static const char *arg_platform;
static const char *arg_backend;
static const char *arg_github_token;
static const char *arg_sign_key;
static bool arg_non_interactive;
static bool arg_no_push;
static bool arg_no_pr;

static void on_line(const char *line, void *payload)
{
	(void)payload;
	bv_cli_status("  %s\n", bv_cli_text(line));
}

/* Asks for a missing value on the terminal; an empty answer leaves it missing. */
static void ask(char **field, const char *question)
{
	char line[1024];
	size_t n;
	if (*field)
		return;
	fprintf(stderr, "%s: ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return;
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	bv_publish_config_set(field, line);
}

/* docker when an engine answers (DOCKER_HOST), else buildah when it is installed. */
static const char *pick_backend(void)
{
	struct bv_error *err = NULL;
	if (arg_backend)
		return arg_backend;
	if (bv_engine_ping(NULL, 2000, &err) >= 0)
		return "docker";
	bv_error_free(err);
	return "buildah";
}

/* A new temporary directory (new string), or NULL with the error reported. */
static char *temp_dir(const char *what)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = bv_xasprintf("%s/bv-publish-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
	if (!mkdtemp(dir)) {
		bv_cli_error("could not create a temporary directory '%s'", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

static void remove_dir(char *dir)
{
	struct bv_error *err = NULL;
	if (dir && bv_rm_rf(dir, &err) < 0)
		bv_error_free(err);
	free(dir);
}

struct run {
	struct bv_publish_config c;
	struct bv_publish_repo *repo;
	char *layout_dir, *clone_dir, *dest, *manifest;
	struct bv_push_result pushed;
};

/* Opens the pull request when there is a token and no --no-pr, or says why it does not. */
static int pull_request(const struct run *x, const char *token)
{
	struct bv_error *err = NULL;
	char *pr = NULL; /* freed by hand: gcc's analyzer misreads a cleanup attribute here */
	if (arg_no_pr || !token || !*token) {
		bv_cli_status("No pull request opened (%s)\n",
			      arg_no_pr ? "--no-pr" : "no --github-token or GITHUB_TOKEN");
		return BV_EXIT_OK;
	}
	if (bv_publish_open_pr(&pr, x->repo, &x->c, token, &err) < 0)
		return bv_cli_report(err);
	printf("Opened pull request %s\n", bv_cli_text(pr));
	free(pr);
	return BV_EXIT_OK;
}

static int publish(struct run *x, const char *source)
{
	struct bv_publish_events ev = {.on_line = on_line};
	struct bv_push_options po = {0};
	struct bv_error *err = NULL;
	enum bv_publish_kind kind;
	const char *dockerfile, *backend = pick_backend();
	const char *token = arg_github_token ? arg_github_token : getenv("GITHUB_TOKEN");
	_cleanup_free_ char *layout = NULL, *source_ref = NULL, *shown = NULL;
	json_t *probe = NULL;
	bool written;

	if (bv_publish_config_load(&x->c, source, &err) < 0)
		return bv_cli_report(err);
	bv_publish_config_set(&x->c.name, arg_name ? arg_name : x->c.name);
	bv_publish_config_set(&x->c.version, arg_version ? arg_version : x->c.version);
	bv_publish_config_set(&x->c.push_to, arg_push_to ? arg_push_to : x->c.push_to);
	bv_publish_config_set(&x->c.registry_repo,
			      arg_registry_repo ? arg_registry_repo : x->c.registry_repo);
	bv_publish_config_set(&x->c.platform, arg_platform ? arg_platform : x->c.platform);
	/* prompts only on a terminal: anything else is a script, which gets a clear error */
	if (!arg_non_interactive && isatty(STDIN_FILENO)) {
		ask(&x->c.name, "Tool name");
		ask(&x->c.version, "Tool version");
		if (!arg_no_push) {
			ask(&x->c.push_to, "Image repository to push to (host/path)");
			ask(&x->c.registry_repo, "Registry repository (checkout path or git URL)");
		}
	}
	if (bv_publish_config_check(&x->c, !arg_no_push, &err) < 0 ||
	    bv_publish_detect(&kind, x->c.source, &err) < 0)
		return bv_cli_report(err);
	/* a key that cannot sign is found before anything is built */
	if (arg_sign_key && !arg_no_push &&
	    bv_signature_check_key(arg_sign_key, &x->c.public_key, &err) < 0)
		return bv_cli_report(err);
	if (bv_publish_dockerfile(&dockerfile, &written, kind, &x->c, &err) < 0)
		return bv_cli_report(err);
	bv_cli_status("Build system: %s (%s%s)\n", bv_publish_kind_name(kind), dockerfile,
		      written ? ", written" : "");
	if (!arg_no_push) {
		/* every check of the checkout before the build: a refusal costs nothing */
		if (!(x->clone_dir = temp_dir("registry")))
			return BV_EXIT_FAILURE;
		layout = bv_path_join(x->clone_dir, "checkout");
		if (bv_publish_repo_open(&x->repo, x->c.registry_repo, layout, x->c.name,
					 x->c.version, &err) < 0)
			return bv_cli_report(err);
		free(TAKE_PTR(layout));
	}
	if (!(x->layout_dir = temp_dir("image")))
		return BV_EXIT_FAILURE;
	layout = bv_path_join(x->layout_dir, "oci");
	bv_cli_status("Building %s %s with %s\n", bv_cli_text(x->c.name), bv_cli_text(x->c.version),
		      backend);
	if (bv_publish_build(&x->c, dockerfile, backend, layout, "image", &ev, &err) < 0)
		return bv_cli_report(err);
	if (arg_no_push) {
		printf("Built %s %s (--no-push: nothing pushed or committed)\n",
		       bv_cli_text(x->c.name), bv_cli_text(x->c.version));
		return BV_EXIT_OK;
	}
	x->dest = bv_publish_destination(&x->c);
	source_ref = bv_xasprintf("oci:%s:image", layout);
	if (bv_push(&x->pushed, source_ref, x->dest, &po, &err) < 0)
		return bv_cli_report(err);
	printf("Pushed %s\n", bv_cli_text(x->pushed.reference));
	if (arg_sign_key) {
		_cleanup_free_ char *sig = NULL;
		if (bv_signature_sign(&sig, x->pushed.reference, arg_sign_key, &err) < 0)
			return bv_cli_report(err);
		printf("Signed %s\n", bv_cli_text(sig));
	}
	fflush(stdout);
	x->manifest = bv_publish_manifest_text(&x->c, x->dest, x->pushed.digest);
	bv_cli_status("Checking the manifest and probing the image\n");
	if (bv_publish_check(&probe, &x->c, x->manifest, bv_publish_repo_dir(x->repo), NULL, &err) <
	    0)
		return bv_cli_report(err);
	json_decref(probe);
	if (bv_publish_repo_commit(x->repo, &x->c, x->manifest, &err) < 0)
		return bv_cli_report(err);
	/* a clone is gone when bv exits: name what it was cloned from, without credentials */
	shown = bv_publish_repo_remote(x->repo) && x->clone_dir &&
				!strncmp(bv_publish_repo_dir(x->repo), x->clone_dir,
					 strlen(x->clone_dir))
			? bv_index_redact_url(bv_publish_repo_remote(x->repo))
			: bv_xstrdup(bv_publish_repo_dir(x->repo));
	printf("Committed tools/%s/%s.toml on branch %s of %s\n", bv_cli_text(x->c.name),
	       bv_cli_text(x->c.version), bv_cli_text(bv_publish_repo_branch(x->repo)),
	       bv_cli_text(shown));
	if (bv_publish_repo_pushed(x->repo))
		printf("Pushed branch %s to origin\n",
		       bv_cli_text(bv_publish_repo_branch(x->repo)));
	return pull_request(x, token);
}

static int run_publish(int argc, char **argv)
{
	struct run x = {0};
	int first = 0, r;
	int status = bv_cli_begin(&bv_cmd_publish, argc, argv, 1, 1, &first);
	if (status >= 0)
		return status;
	r = publish(&x, argv[first]);
	bv_publish_repo_free(x.repo);
	bv_publish_config_release(&x.c);
	bv_push_result_release(&x.pushed);
	free(x.dest);
	free(x.manifest);
	remove_dir(x.layout_dir);
	remove_dir(x.clone_dir);
	return r;
}

static const struct bv_cli_option publish_options[] = {
	{"tool-name", 0, BV_OPT_STRING, &arg_name, "NAME", "the tool's id (bv-publish.toml: name)"},
	{"tool-version", 0, BV_OPT_STRING, &arg_version, "VERSION",
	 "the version to publish (bv-publish.toml: version)"},
	{"non-interactive", 0, BV_OPT_FLAG, &arg_non_interactive, NULL,
	 "never prompt, even on a terminal"},
	{"no-push", 0, BV_OPT_FLAG, &arg_no_push, NULL, "build only: push nothing, commit nothing"},
	{"no-pr", 0, BV_OPT_FLAG, &arg_no_pr, NULL, "do not open a pull request"},
	{"push-to", 0, BV_OPT_STRING, &arg_push_to, "REPO",
	 "image repository to push to, host/path[:tag] (bv-publish.toml: push_to)"},
	{"registry-repo", 0, BV_OPT_STRING, &arg_registry_repo, "PATH-OR-URL",
	 "registry checkout, or a git URL to clone (bv-publish.toml: registry_repo)"},
	{"platform", 0, BV_OPT_STRING, &arg_platform, "PLATFORM",
	 "platform to build for, os/arch (bv-publish.toml: platform)"},
	{"backend", 0, BV_OPT_STRING, &arg_backend, "NAME",
	 "docker or buildah (default: docker when an engine answers)"},
	{"github-token", 0, BV_OPT_STRING, &arg_github_token, "TOKEN",
	 "forge token for the pull request (default: GITHUB_TOKEN)"},
	{"sign-key", 0, BV_OPT_STRING, &arg_sign_key, "FILE",
	 "sign the pushed digest with this PEM EC P-256 private key and trust its public half "
	 "in the manifest"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

const struct bv_cli_command bv_cmd_publish = {
	.name = "publish",
	.usage = "[--tool-name <NAME>] [--tool-version <VERSION>] [--non-interactive]\n"
		 "       [--no-push] [--no-pr] [--push-to <REPO>] [--registry-repo <PATH-OR-URL>]\n"
		 "       [--platform <PLATFORM>] [--backend docker|buildah] [--sign-key <FILE>]\n"
		 "       <source-dir>",
	.summary = "build a tool, push its image and commit its manifest to a registry",
	.description =
		"Detects how <source-dir> builds (Dockerfile, environment.yml, pyproject.toml,\n"
		"requirements.txt, Cargo.toml, Makefile; all but the first get a generated\n"
		"Dockerfile.bv), builds it on the Docker Engine API or with buildah, pushes the\n"
		"image with bv's registry client and writes tools/<id>/<version>.toml pinning\n"
		"its digest into the registry checkout, checked with bv's manifest loader and\n"
		"the conformance probe, as one commit on a new branch bv-publish/<id>-<version>\n"
		"(pushed to origin when the checkout has one).  Values come from flags, then\n"
		"bv-publish.toml in <source-dir>, then prompts when stdin is a terminal.\n"
		"On any failure the checkout is left on its branch, without the new branch.\n"
		"With --sign-key the pushed digest is signed as cosign stores signatures and the\n"
		"manifest's [tool.signatures] trusts the key's public half, so bv add\n"
		"--require-signed accepts the tool.",
	.options = publish_options,
	.run = run_publish,
	.operands = BV_OPERANDS_FILES,
};
