/*
 * publish_repo.c - the registry checkout of bv publish (bv/publish.h): checks before the
 * build, then one commit on a new branch made without touching the work tree, pushed when
 * there is a remote, deleted again when the push fails.  git runs as a subprocess with a fixed argv
 * (never a shell), no prompt, no credential helper, nothing inherited from a surrounding git
 * command.
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

#define GIT_OUTPUT_MAX (64u << 20) /* index.json comes through git cat-file */

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
static int git_in(struct bv_buf *out, int *status_out, const char *dir, const char *index_file,
		  const char *const *args, struct bv_error **err)
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
	if (index_file)
		bv_strv_push_take(&p.env, bv_xasprintf("GIT_INDEX_FILE=%s", index_file));
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

static int git(struct bv_buf *out, int *status_out, const char *dir, const char *const *args,
	       struct bv_error **err)
{
	return git_in(out, status_out, dir, NULL, args, err);
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

/* The registry's index.json (text) with this version of the tool in it (new string). */
static int update_index(char **out, const char *text, size_t len, const struct bv_publish_config *c,
			struct bv_error **err)
{
	json_t *root, *tools, *t = NULL, *versions, *v;
	char *dumped;
	size_t i;
	bool newest = true;
	root = json_loadb(text, len, 0, NULL);
	tools = json_object_get(root, "tools");
	if (!json_is_array(tools)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "the registry's index.json has no \"tools\" array");
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
	*out = bv_xasprintf("%s\n", dumped);
	free(dumped);
	return 0;
}

/* ---- the commit ----------------------------------------------------------------------- */

/*
 * The commit is made with git's plumbing, against a private index file: the work tree, the
 * user's index and HEAD are never touched, so no failure (and no kill -9) can leave the
 * checkout on another branch or with half a change.  The branch appears in one step,
 * `update-ref` with the all-zero old value (it must not exist), and is deleted again when
 * the push fails.
 */

/* Stores `text` as a blob; *oid_out: its id (new string). */
static int put_blob(char **oid_out, const char *dir, const char *scratch, const char *text,
		    struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(scratch, "blob");
	_cleanup_buf_ struct bv_buf oid = BV_BUF_INIT;
	if (bv_write_file_atomic(path, text, strlen(text), 0644, err) < 0 ||
	    git(&oid, NULL, dir, (const char *const[]){"hash-object", "-w", "--", path, NULL},
		err) < 0)
		return BV_ERR;
	*oid_out = bv_buf_detach(&oid, NULL);
	return 0;
}

static int make_commit(char **commit_out, struct bv_publish_repo *r,
		       const struct bv_publish_config *c, const char *manifest_text,
		       const char *scratch, struct bv_error **err)
{
	_cleanup_free_ char *index_file = bv_path_join(scratch, "index");
	_cleanup_free_ char *mblob = NULL, *iblob = NULL, *itext = NULL, *mentry = NULL;
	_cleanup_free_ char *ientry = NULL;
	_cleanup_free_ char *message = bv_xasprintf("Add %s %s", c->name, c->version);
	_cleanup_buf_ struct bv_buf old_index = BV_BUF_INIT, tree = BV_BUF_INIT,
				    email = BV_BUF_INIT;
	_cleanup_strv_ struct bv_strv args = BV_STRV_INIT;
	int status = 0;
	if (git(&old_index, &status, r->dir,
		(const char *const[]){"cat-file", "blob", "HEAD:index.json", NULL}, err) < 0 ||
	    (!status &&
	     update_index(&itext, old_index.buf ? old_index.buf : "", old_index.len, c, err) < 0))
		return BV_ERR;
	if (put_blob(&mblob, r->dir, scratch, manifest_text, err) < 0 ||
	    (itext && put_blob(&iblob, r->dir, scratch, itext, err) < 0))
		return BV_ERR;
	mentry = bv_xasprintf("100644,%s,%s", mblob, r->rel);
	ientry = iblob ? bv_xasprintf("100644,%s,index.json", iblob) : NULL;
	if (git_in(NULL, NULL, r->dir, index_file, (const char *const[]){"read-tree", "HEAD", NULL},
		   err) < 0 ||
	    git_in(NULL, NULL, r->dir, index_file,
		   (const char *const[]){"update-index", "--add", "--cacheinfo", mentry, NULL},
		   err) < 0 ||
	    (ientry &&
	     git_in(NULL, NULL, r->dir, index_file,
		    (const char *const[]){"update-index", "--cacheinfo", ientry, NULL}, err) < 0) ||
	    git_in(&tree, NULL, r->dir, index_file, (const char *const[]){"write-tree", NULL},
		   err) < 0)
		return BV_ERR;
	/* an identity only when git has none: a configured one is the user's to keep */
	if (git(&email, &status, r->dir, (const char *const[]){"config", "user.email", NULL}, err) <
	    0)
		return BV_ERR;
	if (status)
		bv_strv_pushv(&args, (const char *const[]){"-c", "user.email=bv-publish@localhost",
							   "-c", "user.name=bv publish", NULL});
	bv_strv_pushv(&args, (const char *const[]){"commit-tree", tree.buf, "-p", "HEAD", "-m",
						   message, NULL});
	bv_buf_reset(&tree);
	if (git(&tree, NULL, r->dir, (const char *const *)args.v, err) < 0)
		return BV_ERR;
	*commit_out = bv_buf_detach(&tree, NULL);
	return 0;
}

int bv_publish_repo_commit(struct bv_publish_repo *r, const struct bv_publish_config *c,
			   const char *manifest_text, struct bv_error **err)
{
	static const char zero[] = "0000000000000000000000000000000000000000";
	const char *tmp = getenv("TMPDIR");
	_cleanup_free_ char *scratch =
		bv_xasprintf("%s/bv-publish-git-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	_cleanup_free_ char *ref = bv_xasprintf("refs/heads/%s", r->branch);
	_cleanup_free_ char *refspec = bv_xasprintf("%s:%s", ref, ref);
	_cleanup_free_ char *commit = NULL;
	struct bv_error *e = NULL;
	int rc;
	if (!mkdtemp(scratch))
		return bv_error_set_errno(err, "could not create a temporary directory");
	rc = make_commit(&commit, r, c, manifest_text, scratch, err);
	if (bv_rm_rf(scratch, &e) < 0)
		bv_error_free(e);
	if (rc < 0)
		return rc;
	if (git(NULL, NULL, r->dir,
		(const char *const[]){"update-ref", "-m", "bv publish", ref, commit, zero, NULL},
		err) < 0)
		return BV_ERR;
	if (r->remote) {
		struct bv_error *perr = NULL;
		rc = git(NULL, NULL, r->dir,
			 (const char *const[]){"push", "--quiet", "origin", refspec, NULL}, &perr);
		if (rc < 0) {
			_cleanup_free_ char *why = without_userinfo(perr, r->remote);
			bv_error_free(perr);
			e = NULL;
			(void)git(NULL, NULL, r->dir,
				  (const char *const[]){"update-ref", "-d", ref, commit, NULL}, &e);
			bv_error_free(e);
			return bv_error_setc(err, BV_ERR, 0,
					     "could not push branch '%s' to origin: %s", r->branch,
					     why);
		}
		r->pushed = true;
	}
	return 0;
}
