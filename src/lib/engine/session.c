/*
 * session.c - persistent sessions on a Docker Engine (see bv/session.h): names, the context,
 * images, and the containers of sessions.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/session.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/engine/session-internal.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define CACHE_REPO "bv-cache"

/* ---- Names ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

int bv_session_check_name(const char *name, struct bv_error **err)
{
	size_t len = name ? strlen(name) : 0;
	if (!len)
		return bv_error_setc(err, BV_EINVALID, 0, "a session name cannot be empty");
	if (len > BV_SESSION_NAME_MAX)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid session name '%.63s...': longer than %d characters",
				     name, BV_SESSION_NAME_MAX);
	if (!name_char(name[0]) || name[0] == '_' || name[0] == '.' || name[0] == '-')
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"invalid session name '%s': it must start with a letter or digit", name);
	for (size_t i = 0; i < len; i++)
		if (!name_char(name[i]))
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"invalid session name '%s': only letters, digits, '_', '.' and '-' are allowed",
				name);
	return 0;
}

static const char *last_component(const char *path)
{
	const char *end = path + strlen(path);
	const char *start;
	while (end > path && end[-1] == '/')
		end--;
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	return start;
}

/*
 * Only the root goes in (see session.h): a name from bv.toml would differ between callers that
 * read it and the warm runner, which does not, and change under sessions when it is edited.
 */
char *bv_session_container_name(const char *project_root, const char *session)
{
	char hash[BV_SHA256_HEX_LEN + 1];
	struct bv_buf b = BV_BUF_INIT;
	const char *name = last_component(project_root);
	size_t kept = 0;
	bv_sha256_hex(hash, project_root, strlen(project_root));
	bv_buf_puts(&b, "bv-");
	for (const char *p = name; *p && *p != '/' && kept < 32; p++, kept++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		bv_buf_putc(&b, name_char(c) ? c : '-');
	}
	if (!kept)
		bv_buf_puts(&b, "project");
	bv_buf_printf(&b, "-%.8s-%s", hash, session);
	return bv_buf_detach(&b, NULL);
}

char *bv_session_snapshot_ref(const char *container_id, uint64_t ns, long pid)
{
	return bv_xasprintf(BV_SESSION_SNAPSHOT_REPO ":%.12s-%llu-%ld", container_id,
			    (unsigned long long)ns, pid);
}

char *bv_session_cache_ref(const char *key)
{
	char hash[BV_SHA256_HEX_LEN + 1];
	struct bv_buf b = BV_BUF_INIT;
	size_t n = 0;
	bv_sha256_hex(hash, key, strlen(key));
	bv_buf_puts(&b, CACHE_REPO ":");
	for (const char *p = key; *p && n < 48; p++, n++) {
		char c = name_char(*p) ? *p : '_';
		if (n == 0 && (c == '.' || c == '-'))
			c = '_'; /* a tag starts with [A-Za-z0-9_] */
		bv_buf_putc(&b, c);
	}
	if (n)
		bv_buf_putc(&b, '-');
	bv_buf_printf(&b, "%.16s", hash);
	return bv_buf_detach(&b, NULL);
}

/* ---- The context ---- */

int bv_session_open(struct bv_session_ctx **out, struct bv_engine *engine,
		    const struct bv_session_config *cfg, struct bv_error **err)
{
	struct bv_session_ctx *s;
	if (!cfg->project_root || cfg->project_root[0] != '/') {
		bv_error_setc(err, BV_EINVALID, 0, "sessions need the absolute path of a project");
		return BV_EINVALID;
	}
	s = bv_xcalloc(1, sizeof(*s));
	if (!engine) {
		int r = bv_engine_open(&engine, NULL, err);
		if (r < 0) {
			free(s);
			return r;
		}
		s->own_engine = true;
	}
	s->e = engine;
	s->root = bv_xstrdup(cfg->project_root);
	s->cache_dir = cfg->cache_dir ? bv_xstrdup(cfg->cache_dir) : NULL;
	s->user = bv_xasprintf("%u:%u", (unsigned)getuid(), (unsigned)getgid());
	s->capacity = cfg->cache_capacity;
	*out = s;
	return 0;
}

void bv_session_close(struct bv_session_ctx *s)
{
	if (!s)
		return;
	if (s->own_engine)
		bv_engine_free(s->e);
	free(s->root);
	free(s->cache_dir);
	free(s->user);
	free(s);
}

char *bv_session_cname(const struct bv_session_ctx *s, const char *name)
{
	return bv_session_container_name(s->root, name);
}

int bv_session_state_dir(char **out, struct bv_session_ctx *s, struct bv_error **err)
{
	if (!s->cache_dir && bv_cache_dir(&s->cache_dir, err) < 0)
		return BV_ERR;
	*out = bv_path_join(s->cache_dir, "sessions");
	return 0;
}

/* ---- Images ---- */

/* The engine's image `ref`: 0 with *resp_out, BV_ENOTFOUND (no message), or an error. */
int bv_session_inspect_image(json_t **resp_out, struct bv_engine *e, const char *ref,
			     struct bv_error **err)
{
	json_t *img = NULL;
	int r = bv_engine_image_inspect(&img, e, ref, err);
	if (r < 0)
		return r;
	if (!img)
		return BV_ENOTFOUND;
	*resp_out = img;
	return 0;
}

/*
 * Makes the image available to the engine and returns its inspect document.  Pinned images
 * are looked up under their own name and their mirror's, pulled from the mirror, and checked
 * to carry the digest; other references are used as the engine knows them.
 */
int bv_session_ensure_image(json_t **out, struct bv_engine *e, const struct bv_session_image *spec,
			    struct bv_error **err)
{
	struct bv_imageref ref = {0};
	struct bv_mirrors *mirrors = NULL;
	struct bv_strv names = BV_STRV_INIT;
	_cleanup_free_ char *pull_repo = NULL;
	struct bv_engine_image_want w = {0};
	const char *tag;
	const char *host;
	bool pinned = spec->digest && *spec->digest;
	json_t *img = NULL;
	int r;

	if (!pinned) {
		r = bv_session_inspect_image(out, e, spec->reference, err);
		if (r != BV_ENOTFOUND)
			return r;
	}
	r = bv_imageref_parse(&ref, spec->reference, err);
	if (r < 0)
		return r;
	r = bv_mirrors_load(&mirrors, err);
	if (r < 0)
		goto out;
	host = bv_mirrors_lookup(mirrors, ref.registry);
	tag = pinned ? spec->digest : ref.digest ? ref.digest : ref.tag ? ref.tag : "latest";
	if (pinned) {
		bv_strv_push_take(&names, bv_imageref_pinned(&ref, spec->digest));
	} else {
		bv_strv_push_take(&names, bv_imageref_format(&ref));
	}
	if (host) {
		bv_strv_pushf(&names, "%s/%s%s%s", host, ref.repository,
			      bv_str_has_prefix(tag, "sha256:") ? "@" : ":", tag);
		pull_repo = bv_xasprintf("%s/%s", host, ref.repository);
	} else {
		pull_repo = bv_xasprintf("%s/%s", ref.registry, ref.repository);
	}
	w.names = (const char *const *)names.v;
	w.repo = pull_repo;
	w.tag = tag;
	w.digest = pinned ? spec->digest : NULL;
	w.subject = spec->tool_id ? spec->tool_id : spec->reference;
	r = bv_engine_image_ensure(&img, NULL, e, &w, err);
	if (r >= 0)
		*out = img;
out:
	bv_strv_clear(&names);
	bv_mirrors_free(mirrors);
	bv_imageref_release(&ref);
	return r;
}

/* ---- Containers ---- */

/* GET /containers/<cname>/json: 0 with *out, or BV_ENOTFOUND without a message. */
int bv_session_inspect_container(json_t **out, struct bv_engine *e, const char *cname,
				 struct bv_error **err)
{
	json_t *resp = NULL;
	int r = bv_engine_container_inspect(&resp, e, cname, err);
	if (r < 0)
		return r;
	if (!resp)
		return BV_ENOTFOUND;
	*out = resp;
	return 0;
}

/* The session's container, checked to belong to this project. */
int bv_session_find(json_t **out, struct bv_session_ctx *s, const char *name, struct bv_error **err)
{
	_cleanup_free_ char *cname = NULL;
	json_t *c = NULL, *labels;
	const char *project;
	int r = bv_session_check_name(name, err);
	if (r < 0)
		return r;
	cname = bv_session_cname(s, name);
	r = bv_session_inspect_container(&c, s->e, cname, err);
	if (r == BV_ENOTFOUND)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "no session '%s' in project '%s'", name,
				     s->root);
	if (r < 0)
		return r;
	labels = json_object_get(json_object_get(c, "Config"), "Labels");
	project = bv_session_label(labels, BV_LABEL_PROJECT);
	if (!project || strcmp(project, s->root)) {
		json_decref(c);
		return bv_error_setc(
			err, BV_ERR, 0,
			"container '%s' exists but is not session '%s' of this project", cname,
			name);
	}
	*out = c;
	return 0;
}

int bv_session_remove_container(struct bv_engine *e, const char *ref, struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%s'", ref);
	return bv_engine_container_remove(e, ref, what, err);
}

static int start_container(struct bv_engine *e, const char *id, struct bv_error **err)
{
	_cleanup_free_ char *what = bv_xasprintf("container '%.12s'", id);
	return bv_engine_container_start(e, id, what, err);
}

/*
 * Creates and starts the container of a session.  BV_EEXISTS when the name is taken.  A
 * container that cannot be started is removed again, so a failed start leaves nothing.
 */
int bv_session_create_container(char **id_out, struct bv_session_ctx *s,
				const struct bv_session_create *c, struct bv_error **err)
{
	_cleanup_free_ char *cname = bv_session_cname(s, c->session);
	_cleanup_free_ char *what = bv_xasprintf("session '%s'", c->session);
	json_t *labels = json_object(), *mounts = json_array(), *host, *body;
	char *id = NULL;
	int r;

	if (c->labels)
		json_object_update(labels, c->labels);
	json_object_set_new(labels, BV_LABEL_SESSION, json_string(c->session));
	json_object_set_new(labels, BV_LABEL_PROJECT, json_string(s->root));
	if (!c->n_mounts) {
		json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind",
							"Source", s->root, "Target",
							BV_SESSION_WORKSPACE, "ReadOnly", 0));
	}
	for (size_t i = 0; i < c->n_mounts; i++)
		json_array_append_new(mounts,
				      json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source",
						c->mounts[i].host, "Target", c->mounts[i].target,
						"ReadOnly", c->mounts[i].read_only));
	host = json_pack("{s:o, s:{s:s}}", "Mounts", mounts, "RestartPolicy", "Name",
			 "unless-stopped");
	if (c->gpu)
		json_object_set_new(host, "DeviceRequests",
				    json_pack("[{s:s, s:i, s:[[s]]}]", "Driver", "", "Count", -1,
					      "Capabilities", "gpu"));
	/* Entrypoint and Cmd both given, so neither is taken from the image. */
	body = json_pack("{s:s, s:[s], s:[s], s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:o}", "Image",
			 c->image_id, "Entrypoint", "sleep", "Cmd", "infinity", "User", s->user,
			 "WorkingDir", BV_SESSION_WORKSPACE, "Labels", labels, "AttachStdin", 0,
			 "AttachStdout", 0, "AttachStderr", 0, "Tty", 0, "HostConfig", host);
	r = bv_engine_container_create(&id, s->e, cname, body, what, err);
	json_decref(body);
	if (r < 0)
		return r;
	r = start_container(s->e, id, err);
	if (r < 0) {
		bv_engine_container_discard(s->e, id);
		free(id);
		return bv_error_wrap(err, r, "could not start session '%s'", c->session);
	}
	if (id_out)
		*id_out = id;
	else
		free(id);
	return 0;
}

int bv_session_start(struct bv_session_ctx *s, const char *name,
		     const struct bv_session_image *image, struct bv_error **err)
{
	json_t *img = NULL, *labels;
	struct bv_session_create c = {.session = name};
	int r = bv_session_check_name(name, err);
	if (r < 0)
		return r;
	r = bv_session_ensure_image(&img, s->e, image, err);
	if (r < 0)
		return r;
	labels = json_object();
	if (image->digest && *image->digest)
		json_object_set_new(labels, BV_LABEL_IMAGE,
				    json_sprintf("%s@%s", image->reference, image->digest));
	else
		json_object_set_new(labels, BV_LABEL_IMAGE, json_string(image->reference));
	if (image->tool_id)
		json_object_set_new(labels, BV_LABEL_TOOL, json_string(image->tool_id));
	c.image_id = bv_session_jstr(img, "Id");
	c.labels = labels;
	r = bv_session_create_container(NULL, s, &c, err);
	json_decref(labels);
	json_decref(img);
	return r;
}

int bv_session_remove(struct bv_session_ctx *s, const char *name, struct bv_error **err)
{
	_cleanup_free_ char *cname = NULL;
	int r = bv_session_check_name(name, err);
	if (r < 0)
		return r;
	cname = bv_session_cname(s, name);
	return bv_session_remove_container(s->e, cname, err);
}
