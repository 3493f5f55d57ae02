/*
 * bv session start|exec|cp|snapshot|restore|ls|rm|snapshots|snapshot-rm: long-lived
 * containers of the project on the Docker Engine (include/bv/session.h).
 *
 * Exit status: exec returns the command's own status; everything else 0, or 1 when bv
 * failed and 2 for a wrong command line.
 */
#include <bv/error.h>
#include <bv/imageref.h>
#include <bv/lockfile.h>
#include <bv/project.h>
#include <bv/session.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util/cleanup.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

static const char *arg_name;
static const char *arg_cache;
static const char *arg_key;
static struct bv_strv arg_env = BV_STRV_INIT;
static const char *arg_workdir;
static bool arg_force;

/* Which options a subcommand takes. */
enum {
	OPT_NAME = 1 << 0,
	OPT_CACHE = 1 << 1,
	OPT_KEY = 1 << 2,
	OPT_ENV = 1 << 3,
	OPT_WORKDIR = 1 << 4,
	OPT_FORCE = 1 << 5,
};

struct subcommand {
	const char *name;
	int min, max; /* operands after the subcommand; max -1: any number */
	int (*run)(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n);
	unsigned opts; /* OPT_* */
	const char *usage;
};

/* 0: `what` is a tool of the project, *out is its lock entry; -1: it is not; else an exit status.
 */
static int tool_image(struct bv_cli_ctx *ctx, const char *what, struct bv_session_image *out)
{
	const struct bv_lock_tool *t = ctx->lock ? bv_lockfile_find(ctx->lock, what) : NULL;
	if (!t) {
		if (bv_project_find_tool(ctx->project, what)) {
			bv_cli_error("'%s' is not in bv.lock yet", what);
			bv_cli_hint("run 'bv lock' or 'bv sync' first");
			return BV_EXIT_FAILURE;
		}
		return -1;
	}
	if (!t->image_digest[0]) {
		bv_cli_error("bv.lock pins no image digest for '%s'", what);
		bv_cli_hint("run 'bv sync' first");
		return BV_EXIT_FAILURE;
	}
	out->tool_id = t->tool_id;
	out->reference = t->image_reference;
	out->digest = t->image_digest;
	return 0;
}

/* "quay.io/biocontainers/samtools:1.16" -> "samtools", when that is a valid session name. */
static char *name_from_reference(const char *ref)
{
	const char *slash = strrchr(ref, '/');
	const char *start = slash ? slash + 1 : ref;
	size_t len = strcspn(start, ":@");
	char *name = bv_xstrndup(start, len);
	if (bv_session_check_name(name, NULL) < 0) {
		free(name);
		return NULL;
	}
	return name;
}

static int do_start(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	struct bv_session_image image = {.reference = ops[0]};
	struct bv_error *err = NULL;
	_cleanup_free_ char *derived = NULL;
	const char *name = arg_name;
	int r = tool_image(ctx, ops[0], &image);
	(void)n;
	if (r > 0)
		return r;
	if (!name) {
		name = derived = name_from_reference(image.tool_id ? image.tool_id : ops[0]);
		if (!name) {
			bv_cli_error("cannot make a session name from '%s'", ops[0]);
			bv_cli_hint("give one with --name");
			return BV_EXIT_USAGE;
		}
	}
	if (bv_session_start(s, name, &image, &err) < 0)
		return bv_cli_report(err);
	bv_cli_status("Started session '%s' from %s\n", bv_cli_text(name),
		      bv_cli_text(image.digest ? image.tool_id : image.reference));
	printf("%s\n", name);
	return BV_EXIT_OK;
}

/* Standard input goes to the command when it carries data: a pipe, socket or file. */
static bool stdin_has_data(void)
{
	struct stat st;
	if (fstat(STDIN_FILENO, &st) < 0)
		return false;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode);
}

/*
 * The --env entries as the exec takes them: K=V as given; K alone is K's value in bv's own
 * environment, or nothing when bv has no K (as docker exec -e K does).
 */
static int exec_env(struct bv_strv *out)
{
	bv_strv_foreach (e, &arg_env) {
		if (!**e || **e == '=') {
			bv_cli_error("invalid --env '%s': expected NAME=VALUE or NAME", *e);
			return BV_EXIT_USAGE;
		}
		if (strchr(*e, '=')) {
			bv_strv_push(out, *e);
		} else {
			const char *v = getenv(*e);
			if (v)
				bv_strv_pushf(out, "%s=%s", *e, v);
		}
	}
	return BV_EXIT_OK;
}

static void say_waiting(const char *key, void *payload)
{
	(void)payload;
	bv_cli_status("Waiting for another bv process running cached step '%s'\n",
		      bv_cli_text(key));
}

static int do_exec(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	_cleanup_strv_ struct bv_strv env = BV_STRV_INIT;
	_cleanup_free_ char *cwd = getcwd(NULL, 0);
	struct bv_session_exec x = {
		.argv = (const char *const *)(ops + 1),
		.cwd = cwd,
		.workdir = arg_workdir,
		.stdin_fd = stdin_has_data() ? STDIN_FILENO : -1,
		.stdout_fd = STDOUT_FILENO,
		.stderr_fd = STDERR_FILENO,
		.cache_key = arg_cache,
		.on_wait = say_waiting,
		.forward_signals = true,
	};
	struct bv_session_exec_result res = {0};
	struct bv_error *err = NULL;
	int r;
	(void)ctx;
	(void)n;
	r = exec_env(&env);
	if (r != BV_EXIT_OK)
		return r;
	x.env = (const char *const *)env.v;
	fflush(stdout);
	if (bv_session_exec(&res, s, ops[0], &x, &err) < 0)
		return bv_cli_report(err);
	if (res.cached)
		bv_cli_status("cached: %s\n", arg_cache);
	return res.status;
}

static int do_cp(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	struct bv_error *err = NULL;
	const char *colon = strchr(ops[1], ':');
	_cleanup_free_ char *name = NULL;
	(void)ctx;
	(void)n;
	if (!colon || colon == ops[1] || !colon[1]) {
		bv_cli_error("expected <session>:<path> as the target, not '%s'", ops[1]);
		return BV_EXIT_USAGE;
	}
	name = bv_xstrndup(ops[1], (size_t)(colon - ops[1]));
	if (bv_session_copy_in(s, name, ops[0], colon + 1, &err) < 0)
		return bv_cli_report(err);
	bv_cli_status("Copied '%s' to %s\n", ops[0], ops[1]);
	return BV_EXIT_OK;
}

static int do_snapshot(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	struct bv_error *err = NULL;
	char *image = NULL;
	(void)ctx;
	(void)n;
	if (bv_session_snapshot(&image, s, ops[0], arg_key, &err) < 0)
		return bv_cli_report(err);
	printf("%s\n", bv_cli_text(image));
	free(image);
	return BV_EXIT_OK;
}

static int do_restore(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	struct bv_error *err = NULL;
	char *name = NULL;
	(void)ctx;
	(void)n;
	if (bv_session_restore(&name, s, ops[0], arg_name, &err) < 0) {
		int code = bv_error_root_code(err);
		int r = bv_cli_report(err);
		if (code == BV_EEXISTS)
			bv_cli_hint("remove it with 'bv session rm' or choose another with --name");
		return r;
	}
	bv_cli_status("Restored session '%s' from %s\n", bv_cli_text(name), bv_cli_text(ops[0]));
	printf("%s\n", name);
	free(name);
	return BV_EXIT_OK;
}

static int do_ls(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	struct bv_session_info *v = NULL;
	struct bv_error *err = NULL;
	size_t count = 0, wname = 4, wstate = 5;
	(void)ctx;
	(void)ops;
	(void)n;
	if (bv_session_list(&v, &count, s, &err) < 0)
		return bv_cli_report(err);
	if (!count) {
		bv_cli_status("No sessions in this project; start one with 'bv session start'\n");
		bv_session_infos_free(v, count);
		return BV_EXIT_OK;
	}
	for (size_t i = 0; i < count; i++) {
		if (strlen(bv_cli_text(v[i].name)) > wname)
			wname = strlen(bv_cli_text(v[i].name));
		if (strlen(bv_cli_text(v[i].state)) > wstate)
			wstate = strlen(bv_cli_text(v[i].state));
	}
	printf("%-*s  %-*s  %s\n", (int)wname, "NAME", (int)wstate, "STATE", "IMAGE");
	for (size_t i = 0; i < count; i++)
		printf("%-*s  %-*s  %s\n", (int)wname, bv_cli_text(v[i].name), (int)wstate,
		       bv_cli_text(v[i].state), bv_cli_text(v[i].image));
	bv_session_infos_free(v, count);
	return BV_EXIT_OK;
}

static int do_rm(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	(void)ctx;
	for (int i = 0; i < n; i++) {
		struct bv_error *err = NULL;
		if (bv_session_remove(s, ops[i], &err) < 0)
			return bv_cli_report(err);
	}
	return BV_EXIT_OK;
}

static int do_snapshots(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	struct bv_snapshot_info *v = NULL;
	struct bv_error *err = NULL;
	size_t count = 0, wimage = 5, wsession = 7;
	(void)ctx;
	(void)ops;
	(void)n;
	if (bv_session_snapshots(&v, &count, s, &err) < 0)
		return bv_cli_report(err);
	if (!count) {
		bv_cli_status("No snapshots; take one with 'bv session snapshot <name>'\n");
		bv_snapshot_infos_free(v, count);
		return BV_EXIT_OK;
	}
	for (size_t i = 0; i < count; i++) {
		if (strlen(v[i].image) > wimage)
			wimage = strlen(v[i].image);
		if (v[i].session && strlen(v[i].session) > wsession)
			wsession = strlen(v[i].session);
	}
	printf("%-*s  %-*s  %10s  %s\n", (int)wimage, "IMAGE", (int)wsession, "SESSION", "SIZE",
	       "KEY");
	for (size_t i = 0; i < count; i++) {
		char human[32];
		bv_cli_format_size(human, sizeof(human), v[i].size);
		printf("%-*s  %-*s  %10s  %s%s\n", (int)wimage, bv_cli_text(v[i].image),
		       (int)wsession, v[i].session ? bv_cli_text(v[i].session) : "-", human,
		       v[i].key ? bv_cli_text(v[i].key) : "-", v[i].cached ? " (cached step)" : "");
	}
	bv_snapshot_infos_free(v, count);
	return BV_EXIT_OK;
}

static int do_snapshot_rm(struct bv_session_ctx *s, struct bv_cli_ctx *ctx, char **ops, int n)
{
	int status = BV_EXIT_OK;
	(void)ctx;
	for (int i = 0; i < n; i++) {
		struct bv_error *err = NULL;
		if (bv_session_snapshot_remove(s, ops[i], arg_name, &err) >= 0)
			continue;
		/* --force: a snapshot that is not there is what the caller wanted (rm -f) */
		if (arg_force && bv_error_root_code(err) == BV_ENOTFOUND)
			bv_error_free(err);
		else
			status = bv_cli_report(err);
	}
	return status;
}

static const struct subcommand subcommands[] = {
	{"start", 1, 1, do_start, OPT_NAME, "start <tool|image> [--name N]"},
	{"exec", 2, -1, do_exec, OPT_CACHE | OPT_ENV | OPT_WORKDIR,
	 "exec [--cache KEY] [--env K[=V]]... [--workdir DIR] <name> -- <cmd...>"},
	{"cp", 2, 2, do_cp, 0, "cp <host-dir> <name>:<path>"},
	{"snapshot", 1, 1, do_snapshot, OPT_KEY, "snapshot <name> [--key repo:tag]"},
	{"restore", 1, 1, do_restore, OPT_NAME, "restore <snapshot> [--name N]"},
	{"ls", 0, 0, do_ls, 0, "ls"},
	{"rm", 1, -1, do_rm, 0, "rm <name>..."},
	{"snapshots", 0, 0, do_snapshots, 0, "snapshots"},
	{"snapshot-rm", 1, -1, do_snapshot_rm, OPT_NAME | OPT_FORCE,
	 "snapshot-rm [--name N] [--force] <snapshot>..."},
	{NULL, 0, 0, NULL, 0, NULL},
};

static const struct subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; subcommands[i].name; i++)
		if (!strcmp(subcommands[i].name, name))
			return &subcommands[i];
	return NULL;
}

/* Options that do not belong to the subcommand are usage errors, not silently ignored. */
static bool check_options(const struct subcommand *sc)
{
	const char *wrong = arg_name && !(sc->opts & OPT_NAME)         ? "--name"
			    : arg_cache && !(sc->opts & OPT_CACHE)     ? "--cache"
			    : arg_key && !(sc->opts & OPT_KEY)         ? "--key"
			    : arg_env.n && !(sc->opts & OPT_ENV)       ? "--env"
			    : arg_workdir && !(sc->opts & OPT_WORKDIR) ? "--workdir"
			    : arg_force && !(sc->opts & OPT_FORCE)     ? "--force"
								       : NULL;
	if (!wrong)
		return true;
	bv_cli_error("'bv session %s' has no option %s", sc->name, wrong);
	bv_cli_hint("usage: bv session %s", sc->usage);
	return false;
}

static int run_session(int argc, char **argv)
{
	struct bv_session_config cfg = {0};
	struct bv_session_ctx *s = NULL;
	struct bv_cli_ctx ctx;
	struct bv_error *err = NULL;
	const struct subcommand *sc;
	int first = 0, n, r;
	int status = bv_cli_begin(&bv_cmd_session, argc, argv, 1, -1, &first);
	if (status >= 0)
		return status;
	sc = find_subcommand(argv[first]);
	if (!sc) {
		bv_cli_error("unknown session command '%s'", argv[first]);
		bv_cli_hint("expected start, exec, cp, snapshot, restore, ls, rm, snapshots or "
			    "snapshot-rm");
		return BV_EXIT_USAGE;
	}
	n = argc - first - 1;
	if (n < sc->min || (sc->max >= 0 && n > sc->max)) {
		bv_cli_error("'bv session %s' needs %s", sc->name,
			     n < sc->min ? "more arguments" : "fewer arguments");
		bv_cli_hint("usage: bv session %s", sc->usage);
		return BV_EXIT_USAGE;
	}
	if (!check_options(sc))
		return BV_EXIT_USAGE;
	if (arg_workdir && !*arg_workdir) {
		bv_cli_error("--workdir cannot be empty");
		return BV_EXIT_USAGE;
	}
	r = bv_cli_ctx_load(&ctx, 0, NULL);
	if (r)
		return r;
	r = bv_session_cache_capacity(&cfg.cache_capacity, ctx.project, &err);
	if (r >= 0) {
		cfg.project_root = ctx.project->root;
		r = bv_session_open(&s, NULL, &cfg, &err);
	}
	if (r < 0) {
		r = bv_cli_report(err);
	} else {
		r = sc->run(s, &ctx, argv + first + 1, n);
		bv_session_close(s);
	}
	bv_cli_ctx_release(&ctx);
	return r;
}

static const struct bv_cli_option session_options[] = {
	{"name", 'n', BV_OPT_STRING, &arg_name, "N",
	 "start, restore: the session's name; snapshot-rm: only that session's"},
	{"cache", 0, BV_OPT_STRING, &arg_cache, "KEY",
	 "exec: a cached step; skip the command when KEY's snapshot exists"},
	{"env", 'e', BV_OPT_LIST, &arg_env, "K[=V]",
	 "exec: set K (repeatable); K alone passes bv's own K when it is set"},
	{"workdir", 'w', BV_OPT_STRING, &arg_workdir, "DIR",
	 "exec: run in DIR (relative: to where the command would start)"},
	{"key", 0, BV_OPT_STRING, &arg_key, "REPO:TAG", "snapshot: name the image"},
	{"force", 'f', BV_OPT_FLAG, &arg_force, NULL,
	 "snapshot-rm: a snapshot that does not exist is not an error"},
	{NULL, 0, BV_OPT_FLAG, NULL, NULL, NULL},
};

/* For completions: the names of subcommands[] above. */
static const struct bv_cli_subcommand session_subcommands[] = {
	{"start", BV_OPERANDS_TOOLS},      {"exec", BV_OPERANDS_NONE},
	{"cp", BV_OPERANDS_FILES},         {"snapshot", BV_OPERANDS_NONE},
	{"restore", BV_OPERANDS_NONE},     {"ls", BV_OPERANDS_NONE},
	{"rm", BV_OPERANDS_NONE},          {"snapshots", BV_OPERANDS_NONE},
	{"snapshot-rm", BV_OPERANDS_NONE}, {NULL, BV_OPERANDS_NONE},
};

const struct bv_cli_command bv_cmd_session = {
	.name = "session",
	.usage = "start|exec|cp|snapshot|restore|ls|rm|snapshots|snapshot-rm [args...]",
	.summary = "long-lived containers: exec, snapshot, restore, cached steps",
	.description =
		"Sessions are containers of this project on the Docker Engine (DOCKER_HOST), with the\n"
		"project at /workspace, running as you.\n"
		"  start <tool|image> [--name N]         start one from a locked tool or any image\n"
		"  exec [--cache KEY] <name> -- <cmd...> run a command; its exit status is bv's; with\n"
		"                                        --cache, a snapshot of KEY replaces the run;\n"
		"                                        it starts where you are in the project\n"
		"  cp <host-dir> <name>:<path>           copy a directory's contents into a session\n"
		"  snapshot <name> [--key repo:tag]      commit a session to an image\n"
		"  restore <snapshot> [--name N]         a new session from a snapshot\n"
		"  ls | rm <name>... | snapshots | snapshot-rm [--force] <snapshot>...\n"
		"Cached steps keep BV_SESSION_CACHE_CAPACITY (bv.toml [session] cache_capacity,\n"
		"default 16) snapshots, dropping the least recently used.",
	.options = session_options,
	.run = run_session,
	.subcommands = session_subcommands,
};
