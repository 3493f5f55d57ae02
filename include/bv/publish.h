/*
 * bv/publish.h - publishing a tool (bv publish): its source directory is built into an image,
 * the image is pushed to an OCI registry, and a manifest pinning it by digest is committed
 * on a new branch of a checkout of a bv registry repository.
 *
 * Calling sequence (cmd_publish.c):
 *   struct bv_publish_config c;
 *   bv_publish_config_load(&c, "./mytool", &err);        bv-publish.toml, if there is one
 *   ... the CLI overrides fields from its flags or prompts ...
 *   bv_publish_config_check(&c, true, &err);             "missing tool version: ..."
 *   bv_publish_detect(&kind, c.source, &err);            Dockerfile, environment.yml, ...
 *   bv_publish_dockerfile(&df, &written, kind, &c, &err);   Dockerfile, or Dockerfile.bv
 *   bv_publish_repo_open(&repo, c.registry_repo, clone_dir, id, version, &err);
 *   bv_publish_build(&c, df, "docker", layout, "img", &events, &err);   an OCI layout
 *   bv_push(&res, "oci:<layout>:img", dest, ...);
 *   text = bv_publish_manifest_text(&c, "reg/repo:tag", res.digest);
 *   bv_publish_check(&result, &c, text, bv_publish_repo_dir(repo), backend, &err);
 *   bv_publish_repo_commit(repo, &c, text, &err);        branch, commit, push, back
 *   bv_publish_repo_free(repo);  bv_publish_config_release(&c);
 *
 * bv-publish.toml (all keys optional; flags win; unknown keys are errors):
 *   name, version, description, homepage, license    the tool ([tool] of the manifest)
 *   entrypoint = "hello"                             default: the name
 *   binaries = ["hello"]                             default: [entrypoint]
 *   push_to = "registry.example/tools/hello"         repository; ":<version>" is added
 *                                                    unless it names a tag
 *   registry_repo = "../bv-registry"                 a checkout, or a git URL to clone
 *   base_image = "debian:bookworm-slim"              the image Dockerfile.bv runs on
 *   build_image = "..."                              its build stage (default: base_image)
 *   build_packages = ["build-essential"]             apt packages of the build stage
 *   platform = "linux/amd64"
 *   cpu_cores = 1, ram_gb = 1.0, disk_gb = 1.0       [tool.hardware]
 *
 * Build systems, in upstream's order: Dockerfile (used as it is, never rewritten),
 * environment.yml or environment.yaml (micromamba), pyproject.toml with [build-system]
 * (pip install), requirements.txt (pip install -r), Cargo.toml (cargo install), Makefile
 * (make, make install DESTDIR=/out PREFIX=/usr/local, copied onto base_image).  For all but
 * the first, Dockerfile.bv is written; one that does not start with the marker line bv writes
 * is the user's (edited) file and is used as it is.
 *
 * The registry checkout: a local work tree must be clean, on a branch with a commit, and not
 * have the branch bv-publish/<id>-<version> or tools/<id>/<version>.toml.  Commit makes one
 * commit on top of HEAD holding tools/<id>/<version>.toml (and index.json with the tool, when
 * the registry has one) with git's plumbing and a private index file, so the work tree, the
 * user's index and HEAD are never touched; the branch appears in one step (update-ref, which
 * must create it) and is pushed to `origin` when there is a remote, or deleted again when that
 * push fails.  No failure, and no kill -9, leaves the checkout off its branch or with half a
 * commit.  git runs as a subprocess with fixed argv, no prompt, no credential helper, no hooks.
 *
 * Ownership: a config owns its strings; inputs are borrowed; returned strings are new.
 *
 * Errors: 0 or a negative enum bv_error_code with one message in *err; BV_ENOTFOUND for a
 * source without a build system, BV_EINVALID for a bad or missing value, BV_EEXISTS for a
 * branch or manifest that exists already.  Nothing prints: build output goes to the events.
 */
#ifndef BV_PUBLISH_H
#define BV_PUBLISH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_error;

enum bv_publish_kind {
	BV_PUBLISH_DOCKERFILE = 1,
	BV_PUBLISH_CONDA,
	BV_PUBLISH_PYPROJECT,
	BV_PUBLISH_REQUIREMENTS,
	BV_PUBLISH_CARGO,
	BV_PUBLISH_MAKEFILE,
};

/* "Dockerfile", "conda environment", ...: for messages. */
const char *bv_publish_kind_name(enum bv_publish_kind k);

struct bv_publish_config {
	char *source; /* absolute */
	char *name, *version, *description, *homepage, *license, *entrypoint;
	struct bv_strv binaries;
	char *push_to, *registry_repo, *base_image, *build_image, *platform;
	struct bv_strv build_packages;
	bool build_packages_set; /* given (maybe empty) in bv-publish.toml */
	int64_t cpu_cores;
	double ram_gb, disk_gb;
	bool from_file; /* bv-publish.toml was read */
	/* PEM public key of --sign-key: the manifest gets [tool.signatures] trusting it */
	char *public_key;
};

/* Reads <source>/bv-publish.toml when it exists; BV_ENOTFOUND for a missing source. */
int bv_publish_config_load(struct bv_publish_config *c, const char *source, struct bv_error **err);
void bv_publish_config_release(struct bv_publish_config *c);
/* Replaces a string field (NULL or "" leaves it unset). */
void bv_publish_config_set(char **field, const char *value);
/*
 * Fills defaults (entrypoint, binaries) and checks: name and version given and valid,
 * push_to and registry_repo given when `publishing`.  The message names the flag and key.
 */
int bv_publish_config_check(struct bv_publish_config *c, bool publishing, struct bv_error **err);

int bv_publish_detect(enum bv_publish_kind *out, const char *source, struct bv_error **err);

/*
 * The Dockerfile to build, relative to the source (*out is static: "Dockerfile" or
 * "Dockerfile.bv"); *written: Dockerfile.bv was (re)written.
 */
int bv_publish_dockerfile(const char **out, bool *written, enum bv_publish_kind kind,
			  const struct bv_publish_config *c, struct bv_error **err);
/* Dockerfile.bv's text for `kind` (not BV_PUBLISH_DOCKERFILE); new string. */
char *bv_publish_dockerfile_text(enum bv_publish_kind kind, const struct bv_publish_config *c);

struct bv_publish_events {
	void (*on_line)(const char *line, void *payload); /* build output, one line at a time */
	void *payload;
};

/*
 * Builds the source with `backend` ("docker": the Docker Engine API, DOCKER_HOST; "buildah":
 * `buildah bud --isolation chroot`) and leaves the image as `name` in a new OCI image layout
 * at `layout`.  A failed build's error ends with the last lines of its output.
 */
int bv_publish_build(const struct bv_publish_config *c, const char *dockerfile, const char *backend,
		     const char *layout, const char *name, const struct bv_publish_events *ev,
		     struct bv_error **err);

/* The repository to push to: push_to, with ":<version>" unless it names a tag (new string). */
char *bv_publish_destination(const struct bv_publish_config *c);

/* tools/<id>/<version>.toml pinning `reference` (repo:tag) at `digest` (new string). */
char *bv_publish_manifest_text(const struct bv_publish_config *c, const char *reference,
			       const char *digest);

/*
 * Loads the manifest with bv's loader and runs `bv conformance`'s probe on the pushed image
 * (`backend` as bv conformance takes it, NULL: auto), in a temporary registry holding only it
 * (and `registry_dir`'s types.toml, when there is one).  *result_out: the probe's result
 * object (new reference).  A failed probe is an error quoting its message.
 */
int bv_publish_check(json_t **result_out, const struct bv_publish_config *c, const char *text,
		     const char *registry_dir, const char *backend, struct bv_error **err);

struct bv_publish_repo;
/*
 * Opens the registry: a local work tree in place, or a git URL (file://, https://, ssh://,
 * user@host:path) cloned into `clone_dir` (must not exist).  Checks it is clean, that
 * branch bv-publish/<id>-<version> and tools/<id>/<version>.toml do not exist, and records
 * the branch checked out.
 */
int bv_publish_repo_open(struct bv_publish_repo **out, const char *where, const char *clone_dir,
			 const char *id, const char *version, struct bv_error **err);
const char *bv_publish_repo_dir(const struct bv_publish_repo *r);
const char *bv_publish_repo_branch(const struct bv_publish_repo *r); /* the new branch */
/* Whether commit pushed the branch (the checkout has a remote named origin). */
bool bv_publish_repo_pushed(const struct bv_publish_repo *r);
/* The remote's URL (origin), or NULL. */
const char *bv_publish_repo_remote(const struct bv_publish_repo *r);
const char *bv_publish_repo_base(const struct bv_publish_repo *r); /* the original branch */
int bv_publish_repo_commit(struct bv_publish_repo *r, const struct bv_publish_config *c,
			   const char *manifest_text, struct bv_error **err);
void bv_publish_repo_free(struct bv_publish_repo *r);

/*
 * Opens a pull request for the pushed branch against the original one, on the GitHub
 * repository origin names (https://github.com/o/r, git@github.com:o/r.git, ...), through the
 * REST API at BV_GITHUB_API (default https://api.github.com).  *url_out: its html_url.
 * BV_EINVALID when the branch was not pushed or origin is not on GitHub.
 */
int bv_publish_open_pr(char **url_out, const struct bv_publish_repo *r,
		       const struct bv_publish_config *c, const char *token, struct bv_error **err);

#endif
