/*
 * conformance.c - `bv conformance`: smoke-tests the tools of a registry (bv/conformance.h).
 */
#include <bv/conformance.h>
#include <bv/error.h>
#include <bv/install.h>
#include <bv/lockfile.h>
#include <bv/lockops.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/resolve.h>
#include <bv/runplan.h>
#include <bv/runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/oci/install-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* upstream's alive rule (bv-conformance runner.rs) */
#define ALIVE_OUTPUT_BYTES      30
#define PROBE_TIMEOUT_DEFAULT_S 30
#define COMMAND_NOT_FOUND       127
/* a child's result is one tool's JSON: a few hundred bytes per binary */
#define RESULT_MAX (1u << 20)
/* an image config is a few KiB; Docker's own limit for one is far above real ones */
#define CONFIG_MAX (8u << 20)

static const char *const default_probes[] = {"--version", "-version", "--help", "-h",
					     "-v",        "version",  "",       NULL};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *result_new(const char *id, const char *version)
{
	return json_pack("{s:s, s:s?, s:s, s:[]}", "id", id, "version", version, "status", "fail",
			 "binaries");
}

static void result_set(json_t *res, const char *status, const char *message)
{
	json_object_set_new(res, "status", json_string(status));
	if (message)
		json_object_set_new(res, "message", json_string(message));
}

static void result_set_error(json_t *res, struct bv_error *e)
{
	_cleanup_free_ char *msg = bv_error_format(e);
	result_set(res, "fail", msg);
	bv_error_free(e);
}

/*
 * Whether `binary` is an executable file in one of the PATH directories of the image's
 * config, resolved inside `rootfs` as the container would see it: absolute symlinks in the
 * image (Debian's /etc/alternatives) point into the image, never at the host.
 */
static bool binary_in_rootfs(const char *rootfs, const char *binary)
{
	_cleanup_free_ char *config_path = bv_install_config_path(rootfs);
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	json_t *cfg = NULL, *env;
	size_t i;
	json_t *v;
	bool found = false;

	if (root < 0)
		return false;
	if (bv_buf_read_file(&text, config_path, CONFIG_MAX, NULL) == 0)
		cfg = json_loadb(text.buf, text.len, 0, NULL);
	env = json_object_get(json_object_get(cfg, "config"), "Env");
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		if (s && !strncmp(s, "PATH=", 5))
			path = s + 5;
	}
	if (strchr(binary, '/')) {
		path = "";
	}
	do {
		size_t len = strcspn(path, ":");
		struct open_how how = {.flags = O_PATH | O_CLOEXEC,
				       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
		_cleanup_free_ char *rel =
			strchr(binary, '/') ? bv_xstrdup(binary)
					    : bv_xasprintf("%.*s/%s", (int)len, path, binary);
		struct stat st;
		int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
		if (fd >= 0) {
			found = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
			close(fd);
		}
		path += len + (path[len] == ':');
	} while (!found && *path);
	json_decref(cfg);
	return found;
}

/*
 * One probe: a child in its own process group runs the request as `bv run` does, replacing
 * itself with the tool where the backend can, its output in a memory file.  The error pipe is
 * close-on-exec, so it only carries bv's own failure to start the tool.
 */
static int run_probe(int *status_out, size_t *bytes_out, bool *timed_out, struct bv_runtime *rt,
		     const struct bv_run_request *req, unsigned timeout_s, struct bv_error **err)
{
	_cleanup_close_ int out = memfd_create("bv-probe", MFD_CLOEXEC);
	_cleanup_close_ int pidfd = -1;
	_cleanup_buf_ struct bv_buf msg = BV_BUF_INIT;
	int pipefd[2];
	int status = 0;
	pid_t pid;
	off_t end;

	*timed_out = false;
	if (out < 0 || pipe2(pipefd, O_CLOEXEC) < 0)
		return bv_error_set_errno(err, "could not prepare a probe");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return bv_error_set_errno(err, "could not start a probe");
	}
	if (pid == 0) {
		struct bv_run_request r = *req;
		struct bv_run_result res = {0};
		struct bv_error *e = NULL;
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		setpgid(0, 0);
		close(pipefd[0]);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(125);
		r.stdio = BV_STDIO_INHERIT;
		r.may_replace_process = true;
		if (rt->ops->run(rt, &r, &res, &e) < 0) {
			char *s = bv_error_format(e);
			(void)bv_write_all(pipefd[1], s, strlen(s));
			_exit(125);
		}
		_exit(res.status & 0xff);
	}
	/* both sides set the group, so the kill below never misses it */
	setpgid(pid, pid);
	close(pipefd[1]);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		int n;
		do
			n = poll(&p, 1, (int)timeout_s * 1000);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			/*
			 * Asked twice before it is killed: bv's docker backend forwards the first
			 * SIGTERM to the container and kills it on the second, so a probe that
			 * hangs leaves no container behind; a SIGKILL of bv alone would.
			 */
			static const struct {
				int sig, grace_ms;
			} steps[] = {{SIGTERM, 1000}, {SIGTERM, 3000}, {SIGKILL, 0}};
			*timed_out = true;
			for (size_t i = 0; i < BV_ARRAY_SIZE(steps) && n == 0; i++) {
				kill(-pid, steps[i].sig);
				if (!steps[i].grace_ms)
					break;
				do
					n = poll(&p, 1, steps[i].grace_ms);
				while (n < 0 && errno == EINTR);
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	(void)bv_buf_read_fd(&msg, pipefd[0], 4096, NULL);
	close(pipefd[0]);
	if (msg.len)
		return bv_error_set(err, "%s", msg.buf);
	end = lseek(out, 0, SEEK_END);
	*bytes_out = end > 0 ? (size_t)end : 0;
	*status_out = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

struct tool_run {
	struct bv_runtime *rt;
	struct bv_run_plan plan;
	const char *rootfs; /* NULL when the backend does not run from bv's store */
	unsigned timeout_s;
};

/* Probes one binary; returns whether it is alive, or a negative code when it could not run. */
static int probe_binary(json_t *binaries, struct tool_run *t, const struct bv_manifest *m,
			const char *binary, struct bv_error **err)
{
	const char *pinned[2] = {NULL, NULL};
	const char *const *probes = default_probes;
	json_t *b = json_pack("{s:s, s:b, s:[]}", "name", binary, "alive", 0, "probes");
	json_t *tries = json_object_get(b, "probes");
	bool alive = false;
	int r = 0;

	json_array_append_new(binaries, b);
	for (size_t i = 0; i < m->n_smoke_probes; i++)
		if (!strcmp(m->smoke_probes[i].name, binary)) {
			pinned[0] = m->smoke_probes[i].value;
			probes = pinned;
		}
	if (t->rootfs && !binary_in_rootfs(t->rootfs, binary)) {
		json_object_set_new(b, "present", json_false());
		return bv_error_setc(err, BV_ENOTFOUND, 0, "binary '%s' not in the image", binary);
	}
	for (size_t i = 0; probes[i] && !alive; i++) {
		const char *argv[3] = {binary, probes[i][0] ? probes[i] : NULL, NULL};
		struct bv_run_request req = t->plan.req;
		size_t bytes = 0;
		bool timed_out;
		int status = 0;
		req.argv = argv;
		req.gpu = false;
		r = run_probe(&status, &bytes, &timed_out, t->rt, &req, t->timeout_s, err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not run '%s'", binary);
		alive = !timed_out && (status == 0 || bytes >= ALIVE_OUTPUT_BYTES);
		json_array_append_new(tries, json_pack("{s:s, s:i, s:I, s:b}", "probe", probes[i],
						       "exit", status, "output_bytes",
						       (json_int_t)bytes, "timed_out", timed_out));
		/*
		 * 127 is how the engines and the shell say the command does not exist, with an
		 * error message long enough to pass upstream's 30-byte rule: on a backend whose
		 * root filesystem bv cannot look into, that is the missing-binary check.
		 */
		if (status == COMMAND_NOT_FOUND) {
			json_object_set_new(b, "present", json_false());
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "binary '%s' not in the image (exit status %d)",
					     binary, COMMAND_NOT_FOUND);
		}
	}
	json_object_set_new(b, "alive", json_boolean(alive));
	if (!alive)
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"binary '%s' is not alive: no probe exited 0 or wrote %d bytes", binary,
			ALIVE_OUTPUT_BYTES);
	return 0;
}

static const char *skip_reason(const struct bv_manifest *m, const struct bv_conformance_options *o)
{
	if (o->skip_deprecated && m->deprecated)
		return "deprecated";
	if (o->skip_gpu && m->gpu_required)
		return "needs a GPU";
	for (size_t i = 0; o->skip_reference_data && i < m->n_reference_data; i++)
		if (m->reference_data[i].required)
			return "needs reference data";
	return NULL;
}

/* The commands to probe: the exposed binaries but the skipped ones, then the entrypoint. */
static void commands_to_probe(struct bv_strv *out, const struct bv_manifest *m)
{
	for (size_t i = 0; i < m->binaries.n; i++)
		if (!bv_strv_contains(&m->smoke_skip, m->binaries.v[i]))
			bv_strv_push(out, m->binaries.v[i]);
	if (m->entrypoint && !bv_strv_contains(out, m->entrypoint)) {
		const char *base = strrchr(m->entrypoint, '/');
		base = base ? base + 1 : m->entrypoint;
		/* the manifest's rules make the entrypoint's basename a binary; probe it by its
		 * own path only when that is different and not skipped */
		if (!bv_strv_contains(&m->smoke_skip, base) && strcmp(base, m->entrypoint))
			bv_strv_push(out, m->entrypoint);
	}
}

/* Everything about one tool, in the child; fills `res`, returns a negative code on failure. */
static int check_tool(json_t *res, const struct bv_index *idx, const struct bv_types *types,
		      const char *id, const struct bv_conformance_options *o, struct bv_error **err)
{
	struct bv_manifest *m = NULL;
	struct bv_runtime *rt = NULL;
	struct bv_lockfile *lock = NULL;
	struct bv_install_item item = {0};
	struct bv_lockops_image image = {.size = -1};
	struct bv_image_spec spec;
	struct bv_ensure_options eo = {.jobs = 0};
	struct tool_run t = {.timeout_s = o->probe_timeout_s ? o->probe_timeout_s
							     : PROBE_TIMEOUT_DEFAULT_S};
	struct bv_install_options io = {.mode = BV_INSTALL_RESOLVE_ONLY};
	struct bv_run_plan_input in = {0};
	_cleanup_strv_ struct bv_strv commands = BV_STRV_INIT;
	_cleanup_free_ char *cache_dir = NULL, *workspace = NULL, *rootfs = NULL;
	const char *why;
	bool planned = false;
	int r;

	r = bv_resolve_tool(&m, idx, id, NULL, types, err);
	if (r < 0)
		return r;
	json_object_set_new(res, "version", json_string(m->version));
	if ((why = skip_reason(m, o))) {
		result_set(res, "skip", why);
		bv_manifest_free(m);
		return 0;
	}
	item.tool_id = m->id;
	item.reference = bv_lockops_image_reference(m);
	item.pinned = bv_lockops_image_pin(m);
	r = bv_cache_dir(&cache_dir, err);
	if (r >= 0)
		r = bv_runtime_select(&rt, o->backend, NULL, err);
	if (r >= 0)
		r = bv_install(&item, 1, &io, err);
	if (r >= 0) {
		spec = (struct bv_image_spec){
			.tool_id = m->id, .reference = item.reference, .digest = item.top_digest};
		json_object_set_new(res, "image_digest", json_string(item.top_digest));
		r = rt->ops->ensure(rt, &spec, 1, &eo, err);
	}
	if (r >= 0 && bv_runtime_runs_from_store(rt->ops->name))
		r = bv_install_rootfs_path(&rootfs, item.top_digest, err);
	if (r >= 0)
		r = bv_run_plan_save_manifest(m, cache_dir, err);
	if (r >= 0) {
		/* a one-tool lock, as if the tool were added to a project in a temporary directory
		 */
		char tmpl[] = "/tmp/bv-conformance-XXXXXX";
		workspace = mkdtemp(tmpl) ? bv_xstrdup(tmpl) : NULL;
		if (!workspace)
			r = bv_error_set_errno(err, "could not make a workspace");
	}
	if (r >= 0) {
		image.digest = item.top_digest;
		lock = bv_lockfile_new("conformance", 0);
		bv_lockops_fill_entry(bv_lockfile_upsert(lock, m->id), m, "", &image, NULL);
		in = (struct bv_run_plan_input){.lock = lock,
						.name = m->id,
						.cwd = workspace,
						.cache_dir = cache_dir,
						.host_env = o->host_env};
		r = bv_run_plan_build(&t.plan, &in, err);
		planned = r >= 0;
	}
	if (r >= 0) {
		json_t *binaries = json_object_get(res, "binaries");
		t.rt = rt;
		t.rootfs = rootfs;
		commands_to_probe(&commands, m);
		for (size_t i = 0; i < commands.n && r >= 0; i++)
			r = probe_binary(binaries, &t, m, commands.v[i], err);
		if (r >= 0)
			result_set(res, "pass", NULL);
	}
	if (planned)
		bv_run_plan_release(&t.plan);
	if (workspace)
		(void)bv_rm_rf(workspace, NULL);
	bv_lockfile_free(lock);
	bv_install_item_release(&item);
	bv_runtime_free(rt);
	bv_manifest_free(m);
	return r;
}

struct child {
	pid_t pid;
	int fd; /* the memory file the child writes its result to */
	size_t index;
	double started;
};

static void tool_child(int fd, const struct bv_index *idx, const struct bv_types *types,
		       const char *id, const struct bv_conformance_options *o)
{
	json_t *res = result_new(id, NULL);
	struct bv_error *e = NULL;
	char *text;
	if (check_tool(res, idx, types, id, o, &e) < 0)
		result_set_error(res, e);
	text = json_dumps(res, JSON_COMPACT);
	if (!text || bv_write_all(fd, text, strlen(text)) < 0)
		_exit(1);
	_exit(0);
}

static void collect(json_t *results, struct child *c, int status, const char *id,
		    const struct bv_conformance_options *o)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_t *res = NULL;
	if (lseek(c->fd, 0, SEEK_SET) == 0 && bv_buf_read_fd(&text, c->fd, RESULT_MAX, NULL) == 0)
		res = json_loadb(text.buf, text.len, 0, NULL);
	close(c->fd);
	c->fd = -1;
	if (!res) {
		/* a child that died reports nothing; say how, for the tool's line */
		_cleanup_free_ char *msg =
			WIFSIGNALED(status)
				? bv_xasprintf("the check died of signal %d", WTERMSIG(status))
				: bv_xasprintf("the check exited with status %d and no result",
					       WEXITSTATUS(status));
		res = result_new(id, NULL);
		result_set(res, "fail", msg);
	}
	json_object_set_new(res, "seconds", json_real(now_s() - c->started));
	json_array_set(results, c->index, res);
	if (o->on_result)
		o->on_result(res, o->payload);
	json_decref(res);
}

int bv_conformance_run(json_t **results_out, const struct bv_index *idx,
		       const struct bv_types *types, const char *const *ids, size_t n,
		       const struct bv_conformance_options *o, struct bv_error **err)
{
	size_t jobs = o->jobs ? o->jobs : 1, next = 0, running = 0;
	struct child *kids = bv_xcalloc(jobs, sizeof(*kids));
	json_t *results = json_array();
	int r = 0;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(results, json_null());
	for (size_t k = 0; k < jobs; k++)
		kids[k].pid = -1;
	while (next < n || running) {
		int status = 0;
		pid_t pid;
		for (size_t k = 0; k < jobs && next < n && r >= 0; k++) {
			if (kids[k].pid > 0)
				continue;
			kids[k].fd = memfd_create("bv-conformance", MFD_CLOEXEC);
			if (kids[k].fd < 0) {
				r = bv_error_set_errno(err, "could not check '%s'", ids[next]);
				break;
			}
			fflush(stdout);
			fflush(stderr);
			kids[k].pid = fork();
			if (kids[k].pid < 0) {
				r = bv_error_set_errno(err, "could not check '%s'", ids[next]);
				close(kids[k].fd);
				break;
			}
			if (kids[k].pid == 0)
				tool_child(kids[k].fd, idx, types, ids[next], o);
			kids[k].index = next++;
			kids[k].started = now_s();
			running++;
		}
		if (!running)
			break;
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			r = bv_error_set_errno(err, "could not wait for a check");
			break;
		}
		for (size_t k = 0; k < jobs; k++) {
			if (kids[k].pid != pid)
				continue;
			kids[k].pid = -1;
			running--;
			collect(results, &kids[k], status, ids[kids[k].index], o);
		}
		if (r < 0 && !running)
			break;
	}
	free(kids);
	if (r < 0) {
		json_decref(results);
		return r;
	}
	*results_out = results;
	return 0;
}
