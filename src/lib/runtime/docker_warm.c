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
#include <time.h>

#include "lib/engine/session-internal.h"
#include "lib/runtime/docker-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* How long a warm run waits for another bv process that is making its container. */
#define WARM_WAIT_NS  (60ull * 1000 * 1000 * 1000)
#define WARM_PAUSE_NS 20000000L /* 20 ms between looks */

static const char *warm_root(const struct bv_run_request *req)
{
	if (req->project_root)
		return req->project_root;
	for (size_t i = 0; i < req->n_mounts; i++)
		if (req->mounts[i].kind == BV_MOUNT_WORKSPACE)
			return req->mounts[i].host;
	return NULL;
}

/*
 * What the warm container is made with, hashed: the image (its pinned digest, which fixes its
 * content, so no image id is needed), the user, the GPU request and every mount.  A request
 * that differs in any of them needs another container, and gets another name.
 */
static void warm_config(char hash[BV_SHA256_HEX_LEN + 1], const struct bv_run_request *req,
			const char *warm_key, const char *user)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_buf_printf(&b, "image %s\nuser %s\ngpu %d\n", warm_key, user, req->gpu ? 1 : 0);
	for (size_t i = 0; i < req->n_mounts; i++)
		bv_buf_printf(&b, "mount %s%c%s%c%d\n", req->mounts[i].host, 0,
			      req->mounts[i].target, 0, req->mounts[i].read_only ? 1 : 0);
	bv_sha256_hex(hash, b.buf, b.len);
	bv_buf_release(&b);
}

static bool stdin_is_data(void)
{
	struct stat st;
	if (fstat(0, &st) < 0)
		return false;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode);
}

static bool label_is(json_t *labels, const char *key, const char *want)
{
	const char *have = bv_session_label(labels, key);
	return have && !strcmp(have, want);
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

/*
 * The project's other warm containers of this image, made for another configuration: one
 * warm container per tool image per project, as before names carried the configuration.
 * Best effort: a leftover is only a container too many.
 */
static void remove_others(struct bv_session_ctx *s, const char *warm_key, const char *cname)
{
	_cleanup_free_ char *project = bv_xasprintf(BV_LABEL_PROJECT "=%s", s->root);
	_cleanup_free_ char *warm = bv_xasprintf(BV_LABEL_WARM "=%s", warm_key);
	_cleanup_free_ char *want = bv_xasprintf("/%s", cname);
	const char *filter[] = {project, warm, NULL};
	json_t *list = NULL, *c;
	size_t i;
	if (bv_engine_container_list(&list, s->e, filter, "the warm sessions", NULL) < 0)
		return;
	json_array_foreach(list, i, c)
	{
		const char *name =
			json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		const char *id = bv_session_jstr(c, "Id");
		if (id && (!name || strcmp(name, want)))
			(void)bv_session_remove_container(s->e, id, NULL);
	}
	json_decref(list);
}

/*
 * The slow path: the warm session's container when it fits the request, else (re)made from
 * `image`; *id_out is its id.
 *
 * Another bv making it at the same time holds the name (create answers 409) before the engine
 * shows the container (inspect answers 404 until its file system is ready), so a 409 is
 * followed by another look a moment later, until WARM_WAIT_NS has passed.
 */
static int warm_container(char **id_out, struct bv_session_ctx *s, const struct bv_run_request *req,
			  json_t *image, const char *session, const char *warm_key,
			  const char *config, struct bv_error **err)
{
	_cleanup_free_ char *cname = bv_session_cname(s, session);
	uint64_t deadline = bv_time_monotonic_ns() + WARM_WAIT_NS;
	bool others_removed = false;
	int removed = 0, r = 0;
	for (;;) {
		const struct timespec pause = {.tv_sec = 0, .tv_nsec = WARM_PAUSE_NS};
		json_t *c = NULL, *labels, *iconf;
		struct bv_session_create spec = {0};
		struct bv_session_mount *mounts;
		r = bv_session_inspect_container(&c, s->e, cname, err);
		if (r < 0 && r != BV_ENOTFOUND)
			return r;
		if (r == 0) {
			labels = json_object_get(json_object_get(c, "Config"), "Labels");
			if (label_is(labels, BV_LABEL_WARM_CONFIG, config) &&
			    label_is(labels, BV_LABEL_WARM, warm_key) && bv_session_jstr(c, "Id")) {
				*id_out = bv_xstrdup(bv_session_jstr(c, "Id"));
				json_decref(c);
				return 0;
			}
			/* not what its name says (made by hand?): made again, 3 times at most */
			if (removed++ == 3) {
				json_decref(c);
				break;
			}
			r = bv_session_remove_container(s->e, bv_session_jstr(c, "Id"), err);
			json_decref(c);
			if (r < 0)
				return r;
			continue;
		}
		if (!others_removed) {
			remove_others(s, warm_key, cname);
			others_removed = true;
		}
		iconf = json_object_get(image, "Config");
		labels = json_pack("{s:s, s:s, s:s}", BV_LABEL_WARM, warm_key, BV_LABEL_WARM_CONFIG,
				   config, BV_LABEL_IMAGE, req->image.reference);
		if (req->image.tool_id)
			json_object_set_new(labels, BV_LABEL_TOOL, json_string(req->image.tool_id));
		set_json_label(labels, BV_LABEL_ENTRYPOINT, json_object_get(iconf, "Entrypoint"));
		set_json_label(labels, BV_LABEL_CMD, json_object_get(iconf, "Cmd"));
		spec.session = session;
		spec.image_id = bv_session_jstr(image, "Id");
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
		r = bv_session_create_container(id_out, s, &spec, err);
		free(mounts);
		json_decref(labels);
		if (r != BV_EEXISTS)
			return r;
		/* Another bv is making it: look at theirs once the engine shows it. */
		bv_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		if (bv_time_monotonic_ns() > deadline)
			break;
		nanosleep(&pause, NULL);
	}
	return bv_error_setc(err, BV_ERR, 0, "the warm session '%s' keeps changing", session);
}

static void push_json_strings(struct bv_strv *v, json_t *a)
{
	for (size_t i = 0; i < json_array_size(a); i++)
		if (json_string_value(json_array_get(a, i)))
			bv_strv_push(v, json_string_value(json_array_get(a, i)));
}

int bv_docker_warm(struct bv_run_result *out, struct bv_engine *e, const struct bv_run_request *req,
		   json_t *image, struct bv_error **err)
{
	struct bv_session_config cfg = {0};
	struct bv_session_ctx *s = NULL;
	struct bv_strv argv = BV_STRV_INIT;
	struct bv_buf cap_out = BV_BUF_INIT, cap_err = BV_BUF_INIT;
	char config[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *session = NULL, *what = NULL, *warm_key = NULL, *cname = NULL;
	char *id = NULL; /* freed by hand: -fanalyzer loses a cleanup attribute here */
	struct bv_session_exec_req x = {0};
	json_t *iconf = json_object_get(image, "Config");
	int status = 0, r;

	cfg.project_root = warm_root(req);
	if (!cfg.project_root)
		return bv_error_setc(err, BV_EINVALID, 0, "a warm run needs a project");
	if (!req->image.reference || !bv_session_jstr(image, "Id"))
		return bv_error_setc(err, BV_EINVALID, 0, "a warm run needs an image");
	if (req->image.digest && bv_str_has_prefix(req->image.digest, "sha256:"))
		warm_key = bv_xstrdup(req->image.digest);
	else
		warm_key = bv_xstrdup(req->image.reference);
	r = bv_session_open(&s, e, &cfg, err);
	if (r < 0)
		return r;
	warm_config(config, req, warm_key, s->user);
	session = bv_xasprintf("warm-%.12s", config);
	cname = bv_session_cname(s, session);

	/* The image's Entrypoint and Cmd, as its container would have them. */
	push_json_strings(&argv, json_object_get(iconf, "Entrypoint"));
	if (req->argv && req->argv[0])
		bv_strv_pushv(&argv, req->argv);
	else
		push_json_strings(&argv, json_object_get(iconf, "Cmd"));
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
	/*
	 * The fast path: the name says everything the container was made with, so the exec goes
	 * to it straight away (create, start attached, inspect).  Only when there is no such
	 * container is it made, and then the exec is tried once more.
	 */
	x.absent_ok = true;
	r = bv_session_exec_in(&status, s->e, cname, what, &x, err);
	if (r == BV_ENOTFOUND) {
		x.absent_ok = false;
		r = warm_container(&id, s, req, image, session, warm_key, config, err);
		if (r >= 0)
			r = bv_session_exec_in(&status, s->e, id, what, &x, err);
	}
	if (r < 0)
		goto out;
	memset(out, 0, sizeof(*out));
	out->status = status;
	if (req->stdio == BV_STDIO_CAPTURE) {
		out->out = bv_buf_detach(&cap_out, &out->out_len);
		out->err = bv_buf_detach(&cap_err, &out->err_len);
	}
out:
	free(id);
	bv_strv_clear(&argv);
	bv_buf_release(&cap_out);
	bv_buf_release(&cap_err);
	bv_session_close(s);
	return r;
}
