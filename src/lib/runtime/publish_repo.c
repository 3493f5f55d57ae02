/*
 * publish_repo.c - the registry checkout of bv publish (bv/publish.h): checks before the
 * build, then one commit on a new branch, pushed when there is a remote, rolled back on any
 * failure.  git runs as a subprocess with a fixed argv (never a shell), no prompt, no
 * credential helper, nothing inherited from a surrounding git command.
 */
#include <bv/error.h>
#include <bv/index.h>
#include <bv/publish.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/model/version-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define GIT_OUTPUT_MAX (4u << 20)
#define INDEX_MAX      (64u << 20)

struct bv_publish_repo {
	char *dir;    /* the work tree's top level */
	char *base;   /* the branch checked out at open */
	char *branch; /* bv-publish/<id>-<version> */
	char *rel;    /* tools/<id>/<version>.toml */
	char *remote; /* origin's URL, or NULL */
	bool pushed;
};

/*
 * Runs git in `dir`.  *out (may be NULL) gets its stdout and stderr; a non-zero exit is an
 * error quoting git's last line unless `status_out` takes it.
 */
static int git(struct bv_buf *out, int *status_out, const char *dir, const char *const *args,
	       struct bv_error **err)
{
	static const char *const unset[] = {"GIT_DIR",        "GIT_WORK_TREE",
					    "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
					    "GIT_COMMON_DIR", "GIT_NAMESPACE",
					    "GIT_PREFIX",     "GIT_ALTERNATE_OBJECT_DIRECTORIES"};
	struct bv_proc p = BV_PROC_INIT;
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int status = 0, r;
	bv_strv_pushv(&p.args, (const char *const[]){"git", "-c", "credential.helper=", "-c",
						     "protocol.ext.allow=never", "-c",
						     "core.hooksPath=/dev/null", NULL});
	if (dir)
		bv_strv_pushv(&p.args, (const char *const[]){"-C", dir, NULL});
	bv_strv_pushv(&p.args, args);
	for (size_t i = 0; i < BV_ARRAY_SIZE(unset); i++)
		bv_strv_push(&p.env, unset[i]);
	bv_strv_pushv(&p.env, (const char *const[]){"GIT_TERMINAL_PROMPT=0",
						    "GCM_INTERACTIVE=never", "LC_ALL=C", NULL});
	p.no_stdin = true;
	p.stderr_to_stdout = true;
	r = bv_proc_capture(&text, &status, &p, GIT_OUTPUT_MAX, err);
	bv_proc_clear(&p);
	if (r < 0)
		return r;
	while (text.len && (text.buf[text.len - 1] == '\n' || text.buf[text.len - 1] == ' '))
		bv_buf_setlen(&text, text.len - 1);
	if (status && !status_out) {
		const char *last = text.buf ? strrchr(text.buf, '\n') : NULL;
		size_t verb = 0;
		while (args[verb] && args[verb + 1] && !strcmp(args[verb], "-c"))
			verb += 2; /* "-c key=value" pairs come before the subcommand */
		return bv_error_setc(err, BV_ERR, 0, "git %s failed%s%s%s: %s", args[verb],
				     dir ? " in '" : "", dir ? dir : "", dir ? "'" : "",
				     last       ? last + 1
				     : text.len ? text.buf
						: "no output");
	}
	if (status_out)
		*status_out = status;
	if (out)
		bv_buf_add(out, text.buf ? text.buf : "", text.len);
	return 0;
}

/* The error's text with the user-info of `url` (user:password@, a token) replaced by "***":
 * git quotes URLs in its messages, and they may carry credentials. */
static char *without_userinfo(const struct bv_error *e, const char *url)
{
	_cleanup_free_ char *text = bv_error_format(e);
	const char *scheme = strstr(url, "://");
	const char *start = scheme ? scheme + 3 : NULL;
	const char *end = start ? strchr(start, '@') : NULL;
	const char *slash = start ? strchr(start, '/') : NULL;
	struct bv_buf out = BV_BUF_INIT;
	size_t n;
	if (!end || (slash && slash < end) || end == start)
		return TAKE_PTR(text);
	n = (size_t)(end - start);
	for (const char *p = text; *p;) {
		if (!strncmp(p, start, n)) {
			bv_buf_puts(&out, "***");
			p += n;
		} else {
			bv_buf_putc(&out, *p++);
		}
	}
	return bv_buf_detach(&out, NULL);
}

static bool is_url(const char *s)
{
	const char *colon = strchr(s, ':');
	const char *slash = strchr(s, '/');
	if (strstr(s, "://"))
		return true;
	/* scp-like user@host:path, as git takes it; a local path with ':' has a '/' first */
	return colon && s[0] != '/' && s[0] != '.' && s[0] != '~' && (!slash || colon < slash);
}

const char *bv_publish_repo_dir(const struct bv_publish_repo *r)
{
	return r->dir;
}

const char *bv_publish_repo_branch(const struct bv_publish_repo *r)
{
	return r->branch;
}

const char *bv_publish_repo_base(const struct bv_publish_repo *r)
{
	return r->base;
}

const char *bv_publish_repo_remote(const struct bv_publish_repo *r)
{
	return r->remote;
}

bool bv_publish_repo_pushed(const struct bv_publish_repo *r)
{
	return r->pushed;
}

void bv_publish_repo_free(struct bv_publish_repo *r)
{
	if (!r)
		return;
	free(r->dir);
	free(r->base);
	free(r->branch);
	free(r->rel);
	free(r->remote);
	free(r);
}

static int open_checks(struct bv_publish_repo *r, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT;
	_cleanup_free_ char *ref = bv_xasprintf("refs/heads/%s", r->branch);
	_cleanup_free_ char *file = bv_path_join(r->dir, r->rel);
	int status = 0;
	if (git(&out, &status, r->dir,
		(const char *const[]){"symbolic-ref", "--quiet", "--short", "HEAD", NULL}, err) < 0)
		return BV_ERR;
	if (status || !out.len)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "registry checkout '%s' is not on a branch", r->dir);
	r->base = bv_buf_detach(&out, NULL);
	if (git(NULL, &status, r->dir,
		(const char *const[]){"rev-parse", "--verify", "--quiet", "HEAD", NULL}, err) < 0)
		return BV_ERR;
	if (status)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "registry checkout '%s' has no commit on branch '%s'", r->dir,
				     r->base);
	if (git(&out, NULL, r->dir,
		(const char *const[]){"status", "--porcelain", "--untracked-files=all", NULL},
		err) < 0)
		return BV_ERR;
	if (out.len)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "registry checkout '%s' has uncommitted changes; commit or "
				     "stash them first",
				     r->dir);
	if (git(NULL, &status, r->dir,
		(const char *const[]){"rev-parse", "--verify", "--quiet", ref, NULL}, err) < 0)
		return BV_ERR;
	if (!status)
		return bv_error_setc(err, BV_EEXISTS, 0,
				     "branch '%s' exists already in registry checkout '%s'; delete "
				     "it or publish another version",
				     r->branch, r->dir);
	if (bv_path_exists(file))
		return bv_error_setc(err, BV_EEXISTS, 0,
				     "registry checkout '%s' has %s already; publish another "
				     "version",
				     r->dir, r->rel);
	bv_buf_reset(&out);
	if (git(&out, &status, r->dir, (const char *const[]){"remote", "get-url", "origin", NULL},
		err) < 0)
		return BV_ERR;
	if (!status && out.len)
		r->remote = bv_buf_detach(&out, NULL);
	return 0;
}

int bv_publish_repo_open(struct bv_publish_repo **out, const char *where, const char *clone_dir,
			 const char *id, const char *version, struct bv_error **err)
{
	struct bv_publish_repo *r = bv_xcalloc(1, sizeof(*r));
	_cleanup_buf_ struct bv_buf top = BV_BUF_INIT;
	char real[PATH_MAX];
	int status = 0;
	r->branch = bv_xasprintf("bv-publish/%s-%s", id, version);
	r->rel = bv_xasprintf("tools/%s/%s.toml", id, version);
	if (is_url(where)) {
		struct bv_error *cerr = NULL;
		if (git(NULL, NULL, NULL,
			(const char *const[]){"clone", "--quiet", "--", where, clone_dir, NULL},
			&cerr) < 0) {
			_cleanup_free_ char *shown = bv_index_redact_url(where);
			_cleanup_free_ char *why = without_userinfo(cerr, where);
			bv_error_free(cerr);
			bv_publish_repo_free(r);
			return bv_error_setc(err, BV_ERR, 0, "could not clone registry '%s': %s",
					     shown, why);
		}
		where = clone_dir;
	}
	if (!realpath(where, real)) {
		bv_publish_repo_free(r);
		return bv_error_setc(err, BV_ENOTFOUND, 0, "registry checkout '%s' does not exist",
				     where);
	}
	if (git(&top, &status, real, (const char *const[]){"rev-parse", "--show-toplevel", NULL},
		err) < 0 ||
	    status) {
		bv_publish_repo_free(r);
		if (status)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "registry checkout '%s' is not a git work tree",
					     where);
		return BV_ERR;
	}
	r->dir = bv_buf_detach(&top, NULL);
	if (open_checks(r, err) < 0) {
		bv_publish_repo_free(r);
		return BV_ERR;
	}
	*out = r;
	return 0;
}

/* ---- index.json ----------------------------------------------------------------------- */

/* The registry's index.json with this version of the tool in it. */
static int update_index(const char *path, const struct bv_publish_config *c, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_t *root, *tools, *t = NULL, *versions, *v;
	json_error_t jerr;
	char *dumped;
	size_t i;
	bool newest = true;
	int r;
	if (bv_buf_read_file(&text, path, INDEX_MAX, err) < 0)
		return BV_ERR;
	root = json_loadb(text.buf ? text.buf : "", text.len, JSON_DECODE_ANY, &jerr);
	tools = json_object_get(root, "tools");
	if (!json_is_array(tools)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' has no \"tools\" array", path);
	}
	json_array_foreach(tools, i, v)
	{
		if (json_is_string(json_object_get(v, "id")) &&
		    !strcmp(json_string_value(json_object_get(v, "id")), c->name))
			t = v;
	}
	if (!t) {
		t = json_pack("{s:s, s:s, s:[], s:s, s:s, s:[], s:[], s:[], s:b}", "id", c->name,
			      "version", c->version, "versions", "description", c->description,
			      "tier", "community", "maintainers", "input_types", "output_types",
			      "deprecated", 0);
		if (!t)
			bv_oom();
		json_array_append_new(tools, t);
	}
	versions = json_object_get(t, "versions");
	if (!json_is_array(versions)) {
		versions = json_array();
		json_object_set_new(t, "versions", versions);
	}
	json_array_foreach(versions, i, v)
	{
		if (json_is_string(v) && bv_version_compare(json_string_value(v), c->version) > 0)
			newest = false;
	}
	json_array_append_new(versions, json_string(c->version));
	if (newest) {
		json_object_set_new(t, "version", json_string(c->version));
		json_object_set_new(t, "description", json_string(c->description));
		if (c->homepage)
			json_object_set_new(t, "homepage", json_string(c->homepage));
		if (c->license)
			json_object_set_new(t, "license", json_string(c->license));
	}
	dumped = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!dumped)
		bv_oom();
	{
		_cleanup_free_ char *withnl = bv_xasprintf("%s\n", dumped);
		free(dumped);
		r = bv_write_file_atomic(path, withnl, strlen(withnl), 0644, err);
	}
	return r;
}

/* ---- the commit ----------------------------------------------------------------------- */

/* Back to the original branch; the new branch and what was written gone. */
static void roll_back(struct bv_publish_repo *r, const char *made_dir)
{
	struct bv_error *e = NULL;
	_cleanup_free_ char *file = bv_path_join(r->dir, r->rel);
	(void)git(NULL, NULL, r->dir, (const char *const[]){"reset", "--quiet", "--hard", NULL},
		  &e);
	bv_error_free(e);
	e = NULL;
	(void)unlink(file);
	if (made_dir)
		(void)rmdir(made_dir);
	(void)git(NULL, NULL, r->dir,
		  (const char *const[]){"checkout", "--quiet", "-f", r->base, NULL}, &e);
	bv_error_free(e);
	e = NULL;
	(void)git(NULL, NULL, r->dir, (const char *const[]){"branch", "-D", r->branch, NULL}, &e);
	bv_error_free(e);
}

int bv_publish_repo_commit(struct bv_publish_repo *r, const struct bv_publish_config *c,
			   const char *manifest_text, struct bv_error **err)
{
	_cleanup_free_ char *file = bv_path_join(r->dir, r->rel);
	_cleanup_free_ char *tool_dir = bv_xasprintf("%s/tools/%s", r->dir, c->name);
	_cleanup_free_ char *index = bv_path_join(r->dir, "index.json");
	_cleanup_free_ char *message = bv_xasprintf("Add %s %s", c->name, c->version);
	_cleanup_free_ char *refspec =
		bv_xasprintf("refs/heads/%s:refs/heads/%s", r->branch, r->branch);
	_cleanup_buf_ struct bv_buf email = BV_BUF_INIT;
	struct bv_strv commit = BV_STRV_INIT;
	const char *made_dir = NULL;
	bool has_index = bv_path_exists(index);
	int status = 0, rc;
	if (git(NULL, NULL, r->dir,
		(const char *const[]){"checkout", "--quiet", "-b", r->branch, NULL}, err) < 0)
		return BV_ERR;
	if (!bv_path_exists(tool_dir))
		made_dir = tool_dir;
	rc = bv_mkdir_p(tool_dir, 0755, err);
	if (rc >= 0)
		rc = bv_write_file_atomic(file, manifest_text, strlen(manifest_text), 0644, err);
	if (rc >= 0 && has_index)
		rc = update_index(index, c, err);
	if (rc >= 0)
		rc = git(NULL, NULL, r->dir,
			 (const char *const[]){"add", "--", r->rel, has_index ? "index.json" : NULL,
					       NULL},
			 err);
	/* an identity only when git has none: a configured one is the user's to keep */
	if (rc >= 0)
		rc = git(&email, &status, r->dir,
			 (const char *const[]){"config", "user.email", NULL}, err);
	if (rc >= 0) {
		if (status)
			bv_strv_pushv(&commit,
				      (const char *const[]){"-c", "user.email=bv-publish@localhost",
							    "-c", "user.name=bv publish", NULL});
		bv_strv_pushv(&commit, (const char *const[]){"commit", "--quiet", "--no-verify",
							     "-m", message, NULL});
		rc = git(NULL, NULL, r->dir, (const char *const *)commit.v, err);
		bv_strv_clear(&commit);
	}
	if (rc >= 0 && r->remote) {
		struct bv_error *perr = NULL;
		rc = git(NULL, NULL, r->dir,
			 (const char *const[]){"push", "--quiet", "origin", refspec, NULL}, &perr);
		if (rc < 0) {
			_cleanup_free_ char *why = without_userinfo(perr, r->remote);
			bv_error_free(perr);
			rc = bv_error_setc(err, BV_ERR, 0,
					   "could not push branch '%s' to origin: %s", r->branch,
					   why);
		} else {
			r->pushed = true;
		}
	}
	if (rc >= 0)
		rc = git(NULL, NULL, r->dir,
			 (const char *const[]){"checkout", "--quiet", r->base, NULL}, err);
	if (rc < 0) {
		roll_back(r, made_dir);
		return rc;
	}
	return 0;
}
