/*
 * docker_warm.c - warm runs of the docker backend (`bv run --warm`, the runtime's optional
 * warm operation): one long-lived session per tool image per project, created on first use
 * and then only exec'd into.  See docker-internal.h.
 */
#include <bv/docker.h>
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/runtime.h>
#include <bv/session.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/engine/session-internal.h"
#include "lib/runtime/docker-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *warm_root(const struct bv_run_request *req)
{
	if (req->project_root)
		return req->project_root;
	for (size_t i = 0; i < req->n_mounts; i++)
		if (req->mounts[i].kind == BV_MOUNT_WORKSPACE)
			return req->mounts[i].host;
	return NULL;
}

/* What the warm container was made with; a different request needs a new one. */
static char *warm_config(const struct bv_run_request *req, const char *image_id, const char *user)
{
	struct bv_buf b = BV_BUF_INIT;
	char hash[BV_SHA256_HEX_LEN + 1];
	bv_buf_printf(&b, "image %s\nuser %s\ngpu %d\n", image_id, user, req->gpu ? 1 : 0);
	for (size_t i = 0; i < req->n_mounts; i++)
		bv_buf_printf(&b, "mount %s%c%s%c%d\n", req->mounts[i].host, 0,
			      req->mounts[i].target, 0, req->mounts[i].read_only ? 1 : 0);
	bv_sha256_hex(hash, b.buf, b.len);
	bv_buf_release(&b);
	return bv_xstrdup(hash);
}

static bool stdin_is_data(void)
{
	struct stat st;
	if (fstat(0, &st) < 0)
		return false;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode);
}

static void set_json_label(json_t *labels, const char *key, json_t *array);

/* The warm session's container: found when it fits the request, else (re)created. */
static int warm_container(struct bv_session_ctx *s, const struct bv_run_request *req,
			  const char *session, const char *warm_key, json_t **out,
			  struct bv_error **err)
{
	_cleanup_free_ char *cname = bv_session_cname(s, session);
	_cleanup_free_ char *config = NULL;
	json_t *c = NULL, *img = NULL;
	int r;
	/* Inspect, (re)create, inspect again: twice more if other bv processes interfere. */
	for (int attempt = 0; attempt < 4; attempt++) {
		json_t *labels, *iconf;
		struct bv_session_create spec = {0};
		struct bv_session_mount *mounts;
		r = bv_session_inspect_container(&c, s->e, cname, err);
		if (r < 0 && r != BV_ENOTFOUND)
			break;
		if (r == 0) {
			const char *have;
			labels = json_object_get(json_object_get(c, "Config"), "Labels");
			have = bv_session_label(labels, BV_LABEL_WARM_CONFIG);
			if (!config) {
				/* The image id is part of the configuration. */
				const char *image_id = bv_session_jstr(c, "Image");
				config = warm_config(req, image_id ? image_id : "", s->user);
			}
			if (have && !strcmp(have, config) &&
			    !strcmp(bv_session_label(labels, BV_LABEL_WARM)
					    ? bv_session_label(labels, BV_LABEL_WARM)
					    : "",
				    warm_key)) {
				*out = c;
				json_decref(img);
				return 0;
			}
			r = bv_session_remove_container(s->e, bv_session_jstr(c, "Id"), err);
			json_decref(c);
			c = NULL;
			free(config);
			config = NULL;
			if (r < 0)
				break;
		}
		r = 0;
		if (attempt == 3)
			break;
		if (!img) {
			const struct bv_session_image image = {.tool_id = req->image.tool_id,
							       .reference = req->image.reference,
							       .digest = req->image.digest};
			r = bv_session_ensure_image(&img, s->e, &image, err);
			if (r < 0)
				break;
		}
		free(config);
		config = warm_config(req, bv_session_jstr(img, "Id"), s->user);
		iconf = json_object_get(img, "Config");
		labels = json_pack("{s:s, s:s, s:s}", BV_LABEL_WARM, warm_key, BV_LABEL_WARM_CONFIG,
				   config, BV_LABEL_IMAGE, req->image.reference);
		if (req->image.tool_id)
			json_object_set_new(labels, BV_LABEL_TOOL, json_string(req->image.tool_id));
		set_json_label(labels, BV_LABEL_ENTRYPOINT, json_object_get(iconf, "Entrypoint"));
		set_json_label(labels, BV_LABEL_CMD, json_object_get(iconf, "Cmd"));
		spec.session = session;
		spec.image_id = bv_session_jstr(img, "Id");
		spec.labels = labels;
		mounts = bv_xcalloc(req->n_mounts + 1, sizeof(*mounts));
		for (size_t i = 0; i < req->n_mounts; i++)
			mounts[i] =
				(struct bv_session_mount){.host = req->mounts[i].host,
							  .target = req->mounts[i].target,
							  .read_only = req->mounts[i].read_only};
		spec.mounts = mounts;
		spec.n_mounts = req->n_mounts;
		spec.gpu = req->gpu;
		r = bv_session_create_container(NULL, s, &spec, err);
		free(mounts);
		json_decref(labels);
		if (r == BV_EEXISTS) {
			/* Another bv made it first: use theirs. */
			bv_error_free(err ? *err : NULL);
			if (err)
				*err = NULL;
			continue;
		}
		if (r < 0)
			break;
	}
	json_decref(img);
	if (r >= 0)
		r = bv_error_setc(err, BV_ERR, 0, "the warm session '%s' keeps changing", session);
	return r;
}

static void set_json_label(json_t *labels, const char *key, json_t *array)
{
	json_t *empty = json_array();
	char *text = json_dumps(json_is_array(array) ? array : empty, JSON_COMPACT);
	json_decref(empty);
	if (!text)
		bv_oom();
	json_object_set_new(labels, key, json_string(text));
	free(text);
}

static void push_json_strings(struct bv_strv *v, const char *text)
{
	json_t *a = text ? json_loads(text, 0, NULL) : NULL;
	for (size_t i = 0; i < json_array_size(a); i++)
		if (json_string_value(json_array_get(a, i)))
			bv_strv_push(v, json_string_value(json_array_get(a, i)));
	json_decref(a);
}

int bv_docker_warm(struct bv_run_result *out, struct bv_engine *e, const struct bv_run_request *req,
		   struct bv_error **err)
{
	struct bv_session_config cfg = {0};
	struct bv_session_ctx *s = NULL;
	struct bv_strv argv = BV_STRV_INIT;
	struct bv_buf cap_out = BV_BUF_INIT, cap_err = BV_BUF_INIT;
	char hash[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *session = NULL, *what = NULL, *warm_key = NULL;
	struct bv_session_exec_req x = {0};
	json_t *c = NULL, *labels;
	int status = 0, r;

	cfg.project_root = warm_root(req);
	if (!cfg.project_root)
		return bv_error_setc(err, BV_EINVALID, 0, "a warm run needs a project");
	if (!req->image.reference)
		return bv_error_setc(err, BV_EINVALID, 0, "a warm run needs an image");
	if (req->image.digest && bv_str_has_prefix(req->image.digest, "sha256:")) {
		warm_key = bv_xstrdup(req->image.digest);
		session = bv_xasprintf("warm-%.12s", req->image.digest + strlen("sha256:"));
	} else {
		bv_sha256_hex(hash, req->image.reference, strlen(req->image.reference));
		warm_key = bv_xstrdup(req->image.reference);
		session = bv_xasprintf("warm-%.12s", hash);
	}
	r = bv_session_open(&s, e, &cfg, err);
	if (r < 0)
		return r;
	r = warm_container(s, req, session, warm_key, &c, err);
	if (r < 0)
		goto out;
	labels = json_object_get(json_object_get(c, "Config"), "Labels");
	push_json_strings(&argv, bv_session_label(labels, BV_LABEL_ENTRYPOINT));
	if (req->argv && req->argv[0])
		bv_strv_pushv(&argv, req->argv);
	else
		push_json_strings(&argv, bv_session_label(labels, BV_LABEL_CMD));
	if (!argv.n) {
		r = bv_error_setc(err, BV_EINVALID, 0, "image '%s' has no command to run",
				  req->image.reference);
		goto out;
	}
	x.argv = (const char *const *)argv.v;
	x.env = req->env;
	x.workdir = req->workdir ? req->workdir : BV_SESSION_WORKSPACE;
	if (req->stdio == BV_STDIO_CAPTURE) {
		x.stdin_fd = -1;
		x.out.b = &cap_out;
		x.err.b = &cap_err;
	} else {
		x.stdin_fd = stdin_is_data() ? 0 : -1;
		x.out.fd = 1;
		x.err.fd = 2;
		x.forward_signals = true;
	}
	what = bv_xasprintf("the warm session of '%s'",
			    req->image.tool_id ? req->image.tool_id : req->image.reference);
	r = bv_session_exec_in(&status, s->e, bv_session_jstr(c, "Id"), what, &x, err);
	if (r < 0)
		goto out;
	memset(out, 0, sizeof(*out));
	out->status = status;
	if (req->stdio == BV_STDIO_CAPTURE) {
		out->out = bv_buf_detach(&cap_out, &out->out_len);
		out->err = bv_buf_detach(&cap_err, &out->err_len);
	}
out:
	json_decref(c);
	bv_strv_clear(&argv);
	bv_buf_release(&cap_out);
	bv_buf_release(&cap_err);
	bv_session_close(s);
	return r;
}
