/*
 * exec.c - commands in sessions: whole lines of output, execs with forwarded signals, and
 * bv_session_exec() (see bv/session.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/session.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/engine/session-internal.h"
#include "lib/model/paths-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/signals.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define LINE_MAX_PENDING   (64 * 1024)
#define EXEC_POLL_ATTEMPTS 100

/* ---- Whole lines ---- */

int bv_session_lines_feed(struct bv_session_lines *l, const char *data, size_t len)
{
	const char *nl = NULL;
	size_t whole;
	for (size_t i = len; i > 0; i--) {
		if (data[i - 1] == '\n') {
			nl = data + i - 1;
			break;
		}
	}
	if (!len)
		return 0;
	if (!nl) {
		if (l->len + len > LINE_MAX_PENDING) {
			int r = bv_session_lines_flush(l);
			if (r < 0)
				return r;
			return l->emit(data, len, l->payload);
		}
		BV_GROW(l->pending, l->alloc, l->len + len);
		memcpy(l->pending + l->len, data, len);
		l->len += len;
		return 0;
	}
	whole = (size_t)(nl - data) + 1;
	if (l->len) {
		/* One write for the pending start of a line and the lines completing it. */
		int r;
		BV_GROW(l->pending, l->alloc, l->len + whole);
		memcpy(l->pending + l->len, data, whole);
		r = l->emit(l->pending, l->len + whole, l->payload);
		l->len = 0;
		if (r < 0)
			return r;
	} else {
		int r = l->emit(data, whole, l->payload);
		if (r < 0)
			return r;
	}
	if (whole < len)
		return bv_session_lines_feed(l, data + whole, len - whole);
	return 0;
}

int bv_session_lines_flush(struct bv_session_lines *l)
{
	int r = 0;
	if (l->len)
		r = l->emit(l->pending, l->len, l->payload);
	l->len = 0;
	return r;
}

void bv_session_lines_release(struct bv_session_lines *l)
{
	free(l->pending);
	l->pending = NULL;
	l->len = l->alloc = 0;
}

/* ---- Exec ---- */

static int sink_emit(const char *data, size_t len, void *payload)
{
	struct bv_session_sink *k = payload;
	if (k->b) {
		bv_buf_add(k->b, data, len);
		return 0;
	}
	if (k->broken || k->fd < 0)
		return 0;
	if (bv_write_all(k->fd, data, len) < 0)
		k->broken = true; /* EPIPE and friends: the command runs on regardless */
	return 0;
}

/*
 * Signals for a running exec.  The engine has no API to signal an exec, but GET /exec/{id}/json
 * names its process by host PID, and it runs as the caller's uid, so bv can kill(2) it
 * directly when the engine is on this machine (over a remote or rootless engine the kill
 * fails and the signal only stops bv).  They arrive through util/signals.h's self-pipe, which
 * the attach loop watches.
 */
struct exec_run {
	struct bv_session_lines lines[2]; /* stdout, stderr */
	struct bv_engine *e;
	const char *exec_id;
	struct bv_signal_pipe sig;
};

static int forward_pending(void *payload, struct bv_error **err)
{
	struct exec_run *x = payload;
	int sigs[16];
	size_t n = bv_signal_pipe_read(&x->sig, sigs, BV_ARRAY_SIZE(sigs));
	(void)err;
	for (size_t i = 0; i < n; i++) {
		json_t *resp = NULL;
		json_int_t pid;
		if (bv_engine_exec_inspect(&resp, x->e, x->exec_id, NULL) < 0)
			continue;
		pid = json_integer_value(json_object_get(resp, "Pid"));
		json_decref(resp);
		if (pid > 1)
			(void)kill((pid_t)pid, sigs[i]);
	}
	return 0;
}

/* stdout and stderr of an exec, each cut into whole lines. */
static int on_output(int stream, const char *data, size_t len, void *payload, struct bv_error **err)
{
	struct exec_run *x = payload;
	(void)err;
	return bv_session_lines_feed(&x->lines[stream == 2 ? 1 : 0], data, len);
}

/* The exit code of a finished exec (the engine may need a moment to record it). */
static int exec_exit_code(struct bv_engine *e, const char *exec_id, int *status_out,
			  struct bv_error **err)
{
	for (int attempt = 0; attempt < EXEC_POLL_ATTEMPTS; attempt++) {
		json_t *resp = NULL, *code;
		int r = bv_engine_exec_inspect(&resp, e, exec_id, err);
		if (r < 0)
			return r;
		code = json_object_get(resp, "ExitCode");
		if (!json_is_true(json_object_get(resp, "Running")) && json_is_integer(code)) {
			*status_out = (int)json_integer_value(code);
			json_decref(resp);
			return 0;
		}
		json_decref(resp);
		{
			struct timespec ts = {0, (attempt < 10 ? 2 : 20) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	return bv_error_setc(err, BV_ERR, 0, "exec '%.12s' has no exit code", exec_id);
}

static json_t *strv_json(const char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

/*
 * Runs one command in container `id` (a name or an id; started first when it stopped) and
 * returns its exit status.  `what` names the session in messages.
 */
int bv_session_exec_in(int *status_out, struct bv_engine *e, const char *id, const char *what,
		       struct bv_session_exec_req *x, struct bv_error **err)
{
	char *exec_id = NULL;
	json_t *body;
	struct exec_run run = {.e = e, .sig = BV_SIGNAL_PIPE_INIT};
	struct bv_engine_attach_options o = {0};
	int r;

	body = json_pack("{s:b, s:b, s:b, s:b, s:o, s:s}", "AttachStdin", x->stdin_fd >= 0,
			 "AttachStdout", 1, "AttachStderr", 1, "Tty", 0, "Cmd", strv_json(x->argv),
			 "WorkingDir", x->workdir ? x->workdir : BV_SESSION_WORKSPACE);
	if (x->env && *x->env)
		json_object_set_new(body, "Env", strv_json(x->env));
	if (x->user)
		json_object_set_new(body, "User", json_string(x->user));
	/* A container that stopped is started once (see engine-internal.h). */
	r = bv_engine_exec_create(&exec_id, e, id, body, what, err);
	json_decref(body);
	if (r == BV_ENOTFOUND && x->absent_ok) {
		/* a 404 of the create, or of the start of a stopped container: nothing ran */
		if (err) {
			bv_error_free(*err);
			*err = NULL;
		}
		return r;
	}
	if (r < 0)
		return r;

	run.exec_id = exec_id;
	run.lines[0].emit = sink_emit;
	run.lines[0].payload = &x->out;
	run.lines[1].emit = sink_emit;
	run.lines[1].payload = &x->err;
	o.stdin_fd = x->stdin_fd;
	o.stdout_fd = -1;
	o.stderr_fd = -1;
	o.on_output = on_output;
	o.watch_fd = -1;
	o.payload = &run;
	if (x->forward_signals && bv_signal_pipe_install(&run.sig, false, NULL) == 0) {
		o.watch_fd = run.sig.fd[0];
		o.on_watch = forward_pending;
	}
	r = bv_engine_exec_start(e, exec_id, &o, err);
	bv_signal_pipe_restore(&run.sig);
	(void)bv_session_lines_flush(&run.lines[0]);
	(void)bv_session_lines_flush(&run.lines[1]);
	bv_session_lines_release(&run.lines[0]);
	bv_session_lines_release(&run.lines[1]);
	if (r >= 0)
		r = exec_exit_code(e, exec_id, status_out, err);
	free(exec_id);
	if (r < 0)
		return bv_error_wrap(err, r, "could not run a command in %s", what);
	return 0;
}

/* Every entry NAME=VALUE with a name: the engine would pass "=x" or "K" on as they are. */
static int check_env(const char *const *env, struct bv_error **err)
{
	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		if (!eq || eq == *env)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "invalid environment entry '%s': expected NAME=VALUE",
					     *env);
	}
	return 0;
}

/*
 * The exec's working directory: `workdir` when absolute, else below the default, which is the
 * caller's place in the project (the helper bv run uses) or /workspace.  New string.
 */
static int exec_workdir(char **out, const struct bv_session_ctx *s, const struct bv_session_exec *x,
			struct bv_error **err)
{
	_cleanup_free_ char *base = NULL;
	if (x->workdir && !*x->workdir)
		return bv_error_setc(err, BV_EINVALID, 0, "a working directory cannot be empty");
	if (x->workdir && x->workdir[0] == '/') {
		*out = bv_xstrdup(x->workdir);
		return 0;
	}
	base = x->cwd ? bv_project_container_dir(s->root, x->cwd, BV_SESSION_WORKSPACE) : NULL;
	if (!base)
		base = bv_xstrdup(BV_SESSION_WORKSPACE);
	*out = x->workdir ? bv_path_join(base, x->workdir) : TAKE_PTR(base);
	return 0;
}

int bv_session_exec(struct bv_session_exec_result *out, struct bv_session_ctx *s, const char *name,
		    const struct bv_session_exec *x, struct bv_error **err)
{
	_cleanup_free_ char *workdir = NULL;
	struct bv_session_exec_req req = {
		.argv = x->argv,
		.env = x->env,
		.stdin_fd = x->stdin_fd,
		.out = {.fd = x->stdout_fd},
		.err = {.fd = x->stderr_fd},
		.forward_signals = x->forward_signals,
	};
	struct bv_session_exec_result res = {0};
	_cleanup_free_ char *what = NULL;
	json_t *c = NULL;
	int r;
	if (!x->argv || !x->argv[0])
		return bv_error_setc(err, BV_EINVALID, 0, "no command to run in session '%s'",
				     name);
	if (x->cache_key && !*x->cache_key)
		return bv_error_setc(err, BV_EINVALID, 0, "a cache key cannot be empty");
	if ((r = check_env(x->env, err)) < 0 || (r = exec_workdir(&workdir, s, x, err)) < 0)
		return r;
	req.workdir = workdir;
	r = bv_session_find(&c, s, name, err);
	if (r < 0)
		return r;
	if (x->cache_key) {
		struct bv_session_step step = {
			.key = x->cache_key, .on_wait = x->on_wait, .payload = x->payload};
		r = bv_session_cached_step(&res, s, name, &req, &step, err);
	} else {
		what = bv_xasprintf("session '%s'", name);
		r = bv_session_exec_in(&res.status, s->e, bv_session_jstr(c, "Id"), what, &req,
				       err);
	}
	json_decref(c);
	if (r < 0)
		return r;
	*out = res;
	return 0;
}
