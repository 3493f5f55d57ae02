/*
 * cli.h - the command table, option tables and terminal output of the bv command line.
 *
 * Calling sequence (main.c):
 *   bv_cli_init_output();                     decides on colour once
 *   cmd = bv_cli_find_command(name);
 *   bv_cli_parse_options(cmd->options, ...);  fills the arg_* variables the table points at
 *   return cmd->run(argc, argv);              an exit status
 *
 * Each command lives in its own cmd_<name>.c and exports one `const struct bv_cli_command`.
 * Its options are a table of struct bv_cli_option, from which both getopt_long's table and
 * the --help text are generated, so the two never disagree.
 *
 * Only src/cli/ prints or exits.  Commands report failures with bv_cli_error() (one line,
 * "error: ..." on stderr) and return an exit status from exit.h: BV_EXIT_OK, BV_EXIT_FAILURE,
 * BV_EXIT_USAGE, and for the commands that run a tool also 125, 126, 127 and 128+N.
 */
#ifndef BV_CLI_H
#define BV_CLI_H

#include <bv/hardware.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "exit.h"
#include "util/buf.h"

struct bv_error;

enum bv_cli_option_kind {
	BV_OPT_FLAG,   /* bool *dest set to true */
	BV_OPT_STRING, /* const char **dest set to the argument */
	BV_OPT_UINT,   /* unsigned *dest parsed with bv_parse_uint */
	BV_OPT_LIST,   /* struct bv_strv *dest: each use appends its argument (--env A --env B) */
};

struct bv_cli_option {
	const char *long_name;
	char short_name; /* 0 for none */
	enum bv_cli_option_kind kind;
	void *dest;
	const char *arg_name; /* "N", "FILE": shown in --help; NULL for flags */
	const char *help;
};

/* What a command's operands are, for the shell completions (cmd_completions.c). */
enum bv_cli_operands {
	BV_OPERANDS_NONE,     /* free text, or nothing to offer */
	BV_OPERANDS_FILES,    /* paths */
	BV_OPERANDS_TOOLS,    /* tool ids of the project's bv.lock */
	BV_OPERANDS_RUNNABLE, /* a tool id or binary of bv.lock, then the tool's own arguments */
	BV_OPERANDS_DATASETS, /* dataset ids of the registry (its copy in the cache) */
	BV_OPERANDS_COMMANDS, /* bv's commands */
};

/* A word that must follow the command (bv cache prune), and what comes after it. */
struct bv_cli_subcommand {
	const char *name;
	enum bv_cli_operands operands;
};

struct bv_cli_command {
	const char *name;
	const char *usage;   /* after "bv <name> ", e.g. "[--json] <tool>..." */
	const char *summary; /* one line, lower case, for the command list */
	const char *description;
	const struct bv_cli_option *options; /* terminated by an entry with long_name NULL */
	bool stop_at_operand; /* options end at the first operand (bv run <tool> --its-flags) */
	int (*run)(int argc, char **argv);
	/* For the completions and man pages only: NULL-name-terminated, or NULL for none. */
	const struct bv_cli_subcommand *subcommands;
	enum bv_cli_operands operands; /* without subcommands: what the operands are */
};

/* All commands, NULL-terminated, in the order `bv --help` lists them. */
extern const struct bv_cli_command *const bv_cli_commands[];

const struct bv_cli_command *bv_cli_find_command(const char *name);

/* The closest command name to `name`, or NULL when nothing is close. */
const char *bv_cli_suggest_command(const char *name);

/* Reports `name` as an unknown command, with a suggestion; returns BV_EXIT_USAGE. */
int bv_cli_unknown_command(const char *name);

/*
 * Parses the options of `cmd` from argv (argv[0] is the command name) and returns the index
 * of the first operand, or -1 after printing a usage error.  Handles -h/--help itself by
 * printing the help and returning -2, which the caller turns into exit status 0.
 */
int bv_cli_parse_options(const struct bv_cli_command *cmd, int argc, char **argv);

/*
 * The start of every command: parses its options and checks that it got between
 * `min_operands` and `max_operands` (-1: no limit) operands.  Returns -1 to go on, with the
 * first operand's index in *first_out, or the exit status to return at once (after --help,
 * or after printing a usage error).
 */
int bv_cli_begin(const struct bv_cli_command *cmd, int argc, char **argv, int min_operands,
		 int max_operands, int *first_out);

void bv_cli_print_command_help(FILE *out, const struct bv_cli_command *cmd);
void bv_cli_print_main_help(FILE *out);

/*
 * The global options (main.c parses them by hand; --help, completions and man pages list
 * them from here), terminated by an entry with long_name NULL.  -h/--help is not in it.
 */
extern const struct bv_cli_option bv_cli_global_options[];

/*
 * man.c: the man page bv(1) (cmd NULL) or bv-<name>(1), as roff, written to `out` from the
 * command table, so it cannot disagree with --help.  `bv help --man [<command>]` prints it.
 */
void bv_cli_print_man(FILE *out, const struct bv_cli_command *cmd);

/* Output. */
void bv_cli_init_output(void);
bool bv_cli_color(FILE *stream);
/* fd is a terminal that understands escape sequences (not TERM=dumb); colour also needs
 * NO_COLOR unset, redrawn progress lines do not */
bool bv_cli_terminal_draws(int fd);
/* Asks "<question> [y/N] " on stderr and reads the answer from stdin: true for y or Y. */
bool bv_cli_confirm(const char *question);
__attribute__((format(printf, 1, 2))) void bv_cli_error(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void bv_cli_warning(const char *fmt, ...);
/* How many warnings this process has printed (bv sync keeps no record of a sync that warned). */
unsigned bv_cli_warnings_shown(void);
__attribute__((format(printf, 1, 2))) void bv_cli_hint(const char *fmt, ...);
/* A status line on stderr ("Added ...", progress), which --quiet silences; errors stay. */
__attribute__((format(printf, 1, 2))) void bv_cli_status(const char *fmt, ...);
extern bool bv_cli_quiet;
/*
 * The global options any command takes, before or after its name: -C/--directory DIR,
 * -q/--quiet, --offline (sets BV_OFFLINE for bv and what it starts) and, before the name
 * only, -v/--verbose (repeatable).  Returns 0, or an exit status after an error message.
 */
int bv_cli_global_option(const char *name, const char *value);
/* -v count and BV_LOG into the library's log level, with diagnostics printed on stderr. */
void bv_cli_init_log(unsigned verbose);
/*
 * `s` made safe for a terminal (bv_buf_add_printable, newlines escaped too): every string
 * from a registry manifest, bv.lock, an image config or an engine goes through this before
 * human-readable output prints it; --json output keeps the exact value.  Returns `s` itself
 * when nothing needs escaping (NULL stays NULL), else a buffer that stays valid for the next
 * 15 calls, so one printf may take several.  bv_cli_error/warning/hint escape their whole
 * message themselves (newlines kept).
 */
const char *bv_cli_text(const char *s);
/* Prints "error: <formatted chain>" and frees `err`; returns BV_EXIT_FAILURE. */
int bv_cli_report(struct bv_error *err);

/*
 * What most commands load: the project found from the cwd, its lock, the registry index and
 * the type vocabulary.  Each loader prints its own error and returns an exit status (0 on
 * success), so a command can stop with `return r;`.  Warnings (unknown keys in bv.toml, an
 * index used offline) are printed as they are found.
 */
struct bv_project;
struct bv_lockfile;
struct bv_index;
struct bv_types;

struct bv_project_lock;

struct bv_cli_ctx {
	struct bv_project_lock *project_lock; /* held with BV_CTX_WRITE, until release */
	struct bv_project *project;
	struct bv_lockfile *lock; /* NULL when the project has no bv.lock yet */
	char *lock_path;
	struct bv_index *index;
	struct bv_types *types;
	bool require_signed; /* --require-signed (set by the command after loading) */
};

enum {
	BV_CTX_NO_PROJECT = 1 << 4,    /* a project is optional (bv show, bv search) */
	BV_CTX_LOCK = 1 << 0,          /* bv.lock must exist */
	BV_CTX_INDEX = 1 << 1,         /* open the registry, refreshing it when stale */
	BV_CTX_INDEX_OFFLINE = 1 << 2, /* open the registry without touching the network */
	BV_CTX_TYPES = 1 << 3,
	/* The command writes bv.toml, bv.lock or .bv/bin: take the project lock (bv/project.h)
	 * before bv.toml is read, printing a note when another bv makes us wait; it is held
	 * until bv_cli_ctx_release() (or exec(2): the descriptor is O_CLOEXEC). */
	BV_CTX_WRITE = 1 << 5,
};

int bv_cli_ctx_load(struct bv_cli_ctx *ctx, unsigned what, const char *registry_flag);
/*
 * For a command loaded without BV_CTX_WRITE that finds it must write .bv/bin after all (bv
 * sync and bv shell, for stale shims): takes the project lock, then reads bv.lock again, since
 * another bv may have changed it before the lock was granted.  bv.toml is not read again: such a
 * command must not write it.  Returns an exit status, the error reported.
 */
int bv_cli_ctx_take_lock(struct bv_cli_ctx *ctx);
/* The same for the project around `start_dir` (NULL: the working directory). */
int bv_cli_ctx_load_from(struct bv_cli_ctx *ctx, unsigned what, const char *start_dir);
/* Opens the registry (flag > BV_REGISTRY > bv.toml > default) without a project. */
int bv_cli_ctx_load_index(struct bv_cli_ctx *ctx, const char *registry_flag, bool offline);
int bv_cli_ctx_load_types(struct bv_cli_ctx *ctx);
void bv_cli_ctx_release(struct bv_cli_ctx *ctx);

/* Prints a JSON value to stdout, indented, with a final newline; consumes the reference. */
struct json_t;
int bv_cli_print_json(struct json_t *j);

/*
 * The same text as bv_cli_print_json() of an array, printed one element at a time, so a long
 * list never holds the whole tree nor its whole text (on a 1000-tool project that memory is
 * most of the command's page faults):
 *
 *	struct bv_cli_json_array a;
 *	bv_cli_json_array_begin(&a);
 *	for (...)
 *		bv_cli_json_array_add(&a, element);	(consumes the reference)
 *	return bv_cli_json_array_end(&a);		(0, or an exit status after an error)
 */
struct bv_cli_json_array {
	bool any, failed, members;
	char *text; /* the last element's text, its buffer reused */
	size_t cap;
	struct bv_buf out;      /* indented text not yet written */
	struct json_t *scratch; /* the one string value a member's string is dumped from */
};
void bv_cli_json_array_begin(struct bv_cli_json_array *a);
void bv_cli_json_array_add(struct bv_cli_json_array *a, struct json_t *element);
int bv_cli_json_array_end(struct bv_cli_json_array *a);

/*
 * Or an element that is an object, written member by member without building it (the same
 * text again: what the object's json_dumps() would give, every value still dumped by jansson;
 * only the braces, the indentation and keys that are plain literals are written here):
 *
 *	bv_cli_json_array_object_begin(&a);
 *	bv_cli_json_array_member_string(&a, "id", t->tool_id);	(borrowed, valid UTF-8)
 *	bv_cli_json_array_member(&a, "tier", json_null());		(consumes the reference)
 *	bv_cli_json_array_member_strings(&a, "binaries", &t->binaries);
 *	bv_cli_json_array_object_end(&a);
 *
 * A NULL value omits the member, as json_object_set_new() does.  Keys are C literals.
 */
struct bv_strv;
void bv_cli_json_array_object_begin(struct bv_cli_json_array *a);
void bv_cli_json_array_member(struct bv_cli_json_array *a, const char *key, struct json_t *value);
void bv_cli_json_array_member_string(struct bv_cli_json_array *a, const char *key,
				     const char *value);
void bv_cli_json_array_member_strings(struct bv_cli_json_array *a, const char *key,
				      const struct bv_strv *values);
void bv_cli_json_array_object_end(struct bv_cli_json_array *a);

/* Progress of pulls, drawn on stderr (bv_registry_options.progress). */
struct bv_pull_progress;
#define BV_CLI_PROGRESS_LINE_S 5.0 /* seconds between plain progress lines of one image */
struct bv_cli_progress {
	double started, last_draw;
	double last_line[16]; /* per image (index modulo 16), for plain lines */
};
void bv_cli_pull_progress(const struct bv_pull_progress *p, void *payload);

/* The command-line side of bv/lockops.h (locking.c, context.c). */
struct bv_manifest;
struct bv_install_item;
struct bv_lockops_image;
struct bv_lockops_result;
struct bv_strv;
/* Keeps a copy of `m` for bv run; a failure is only a warning. */
void bv_cli_keep_manifest(const struct bv_manifest *m);
/* The image `it` resolved to, as lockops takes it; borrows from `it`, free(out->layers). */
void bv_cli_image_of(struct bv_lockops_image *out, const struct bv_install_item *it);
/* Prints each of the warnings a lock operation returned. */
void bv_cli_print_warnings(const struct bv_strv *warnings);
/* bv_lockops_commit() of `res` in the project `ctx` holds locked (BV_CTX_WRITE); returns an
 * exit status, the error reported. */
int bv_cli_commit(const struct bv_cli_ctx *ctx, const struct bv_lockops_result *res);

/* Re-resolving bv.toml (locking.c): bv lock --check, bv lock, bv update. */
enum bv_relock_mode {
	BV_RELOCK_CHECK,  /* compare and print; never talks to an image registry */
	BV_RELOCK_WRITE,  /* resolve changed tools' tags, write bv.lock */
	BV_RELOCK_UPDATE, /* also re-resolve unchanged tools (all, or `only`), pull, write */
};
/*
 * What bv add and bv update let into a project (locking.c): an experimental tool only with
 * --allow-experimental; a tool whose [tool.hardware] this machine does not meet only with
 * --ignore-hardware, and then with a warning.  The machine is looked at once, on first use.
 *
 *   struct bv_cli_admit a = {.allow_experimental = flag, .ignore_hardware = flag2};
 *   if (bv_cli_admit_check(&a, manifest, &err) < 0) {
 *           r = bv_cli_report(err);  bv_cli_admit_hint(&a);  ...
 *   }
 *   bv_cli_admit_release(&a);
 */
struct bv_cli_admit {
	bool allow_experimental, ignore_hardware;
	bool skip_hardware; /* checks the tier only (bv add --platform for another platform) */
	const char *hint;   /* set by a refusal: what to pass to go ahead anyway */
	bool detected, asked_nvidia_smi;
	struct bv_hardware hw;
};
int bv_cli_admit_check(struct bv_cli_admit *a, const struct bv_manifest *m, struct bv_error **err);
void bv_cli_admit_hint(const struct bv_cli_admit *a);
void bv_cli_admit_release(struct bv_cli_admit *a);
/* Makes `n` images resolved into bv's store available to backend `rt_name` (bv add, bv
 * update with a backend other than native); returns an exit status, the error reported. */
struct bv_install_item;
int bv_cli_ensure_on_backend(const struct bv_cli_ctx *ctx, const char *backend,
			     const struct bv_install_item *items, size_t n, unsigned jobs);

/* What bv update adds to a relock. */
struct bv_cli_update {
	const char *backend;        /* --backend: pull for it; NULL: BV_BACKEND, bv.toml, auto */
	struct bv_cli_admit *admit; /* checks each tool resolved again; experimental tools that
				       are locked are kept as they are unless allowed */
};
/*
 * `platform` (NULL: this machine's, see bv_install_options) re-resolves every tool for it;
 * `update` is NULL except for bv update.
 */
int bv_cli_relock(struct bv_cli_ctx *ctx, enum bv_relock_mode mode, char **only, size_t n_only,
		  unsigned jobs, const char *platform, const struct bv_cli_update *update);
/* bv lock's write under the project lock the caller holds, then bv.lock read back into ctx. */
/*
 * bv init's work: bv.toml in the working directory for project `name` (NULL: the directory's
 * name), with [registry] url when `registry` is given; *path_out (may be NULL) gets its path.
 */
int bv_cli_create_project(char **path_out, const char *name, const char *registry);
int bv_cli_relock_reload(struct bv_cli_ctx *ctx);

/*
 * --platform of bv add, bv lock and bv sync: `arg` normalised into *out (NULL when `arg` is
 * NULL), or "error: invalid platform ..." printed.  Returns an exit status.
 */
int bv_cli_platform_arg(char **out, const char *arg);
#define BV_CLI_PLATFORM_HELP                                                                    \
	"os/arch[/variant], such as linux/arm64: resolve images for that platform and pin its " \
	"manifest (default: this machine's, pinning the tag's index)"

/* A shim in .bv/bin (a link to bv named after a binary): bv run <argv[0]> argv[1...]. */
int bv_cli_run_shim(int argc, char **argv);
/* Whether bv was called under its own name ("bv", "bv-*", "biov") rather than as a shim. */
bool bv_cli_is_own_name(const char *argv0);

/* syncing.c: bv.lock's images onto the backend chosen by `backend` (NULL: the default
 * order); prints one summary line ("Synced ...", or "Everything is up to date" unless
 * `quiet`).  With a `record` (bv sync's, bv/syncrecord.h, else NULL) the backend's image
 * sources are recorded before anything is asked, and a pull spoils it.
 * bv_cli_write_shims() rewrites .bv/bin.  Both return an exit status. */
struct bv_sync_record;
int bv_cli_sync_images(const struct bv_cli_ctx *ctx, const char *backend, unsigned jobs, bool quiet,
		       const char *platform, struct bv_sync_record *record);
int bv_cli_write_shims(const struct bv_cli_ctx *ctx);

/*
 * signing.c: whether the command must check signatures (ctx->require_signed or bv.toml's
 * [registry] require_signed), and the check of every image `lock` pins (bv/signature.h),
 * each tool's manifest taken from `known`, else bv's kept copy, else ctx->index.  Returns an
 * exit status, the error and a hint printed; "Verified ..." on success.
 */
bool bv_cli_require_signed(const struct bv_cli_ctx *ctx);
int bv_cli_verify_signed(const struct bv_cli_ctx *ctx, const struct bv_lockfile *lock,
			 const struct bv_manifest *const *known, size_t n_known);
/* Records the project in the cache, so prune keeps what it pins (bv/retain.h); warns only. */
int bv_cli_register_project(const struct bv_cli_ctx *ctx);
/* setenv() that reports its failure; returns an exit status. */
int bv_cli_setenv(const char *name, const char *value);
/* PATH with the project's .bv/bin first, and BV_PROJECT_ROOT (bv exec, bv shell). */
int bv_cli_export_project_env(const struct bv_cli_ctx *ctx);

/*
 * services_cli.c: the start and end the services commands (up, down, ps, logs, restart)
 * share.  bv_services_cli_begin() runs bv_cli_begin() with the command's operand limits, then
 * loads the project (bv_cli_ctx_load), parses its [[services]] and, with `open_engine`, opens
 * the engine (DOCKER_HOST).  Like bv_cli_begin() it returns -1 to go on, with everything
 * loaded, or the exit status to return at once, with the error reported and nothing left to
 * release.  bv_services_cli_open_engine() opens the engine later (for a command with checks
 * of its own before it) and returns 0 or an exit status, the error reported.  After a begin
 * that went on, bv_services_cli_end() releases everything, whatever happened since.
 * `open_engine` is a set of flags: BV_SERVICES_CLI_ENGINE (true) opens the engine, and
 * BV_SERVICES_CLI_LOCK (up, down, restart) first takes the services lock (bv/services.h),
 * saying so when another command makes it wait, and only then reads bv.toml, so that a
 * command that waited acts on the bv.toml of its turn.
 */
struct bv_services;
struct bv_engine;
struct bv_services_lock;
enum {
	BV_SERVICES_CLI_ENGINE = 1 << 0, /* open the engine (`true` means this) */
	BV_SERVICES_CLI_LOCK = 1 << 1,   /* take the services lock first */
};
struct bv_services_cli {
	struct bv_cli_ctx ctx;
	struct bv_services_lock *lock; /* with BV_SERVICES_CLI_LOCK, until the end */
	struct bv_services *services;
	struct bv_engine *engine; /* NULL until opened */
	char **operands;
	int n_operands;
};
int bv_services_cli_begin(struct bv_services_cli *sc, const struct bv_cli_command *cmd, int argc,
			  char **argv, int min_operands, int max_operands, unsigned open_engine);
int bv_services_cli_open_engine(struct bv_services_cli *sc);
void bv_services_cli_end(struct bv_services_cli *sc);
/* bv_services_events.on_event: "<service>: <what>", or "<what>", on stderr. */
void bv_services_cli_on_event(const char *service, const char *what, void *payload);

/*
 * cmd_data.c: fetches `n` resolved datasets (bv/data.h) with progress on stderr, after asking
 * unless `yes` (refusing without a terminal); prints one line per dataset.  Returns an exit
 * status, the error reported.  Also used by bv add --fetch-data and bv sync --data.
 */
struct bv_dataset;
int bv_cli_data_fetch(struct bv_dataset **sets, size_t n, unsigned jobs, bool yes);
/*
 * After bv add: the reference data the tools `ms` need that is not in the cache, one line
 * each and the exact 'bv data fetch' line (upstream's notice), or with `fetch` fetched.
 * Returns an exit status.
 */
struct bv_index;
int bv_cli_data_notice(const struct bv_manifest *const *ms, size_t n, const struct bv_index *idx,
		       bool fetch, unsigned jobs);
/* bv sync --data: fetches every dataset bv.lock pins.  Returns an exit status. */
struct bv_lockfile;
int bv_cli_sync_data(const struct bv_lockfile *lock, const struct bv_index *idx, unsigned jobs);
/*
 * bv sync --frozen: a pinned dataset in the cache whose recorded sha256 differs from its pin
 * is an error line each.  Returns an exit status.
 */
int bv_cli_check_data_pins(const struct bv_lockfile *lock);

/* Human sizes: "1.2 GiB". */
void bv_cli_format_size(char *out, size_t len, int64_t bytes);

/* Commands. */
extern const struct bv_cli_command bv_cmd_add;
extern const struct bv_cli_command bv_cmd_cache;
extern const struct bv_cli_command bv_cmd_completions;
extern const struct bv_cli_command bv_cmd_data;
extern const struct bv_cli_command bv_cmd_doctor;
extern const struct bv_cli_command bv_cmd_down;
extern const struct bv_cli_command bv_cmd_exec;
extern const struct bv_cli_command bv_cmd_export;
extern const struct bv_cli_command bv_cmd_help;
extern const struct bv_cli_command bv_cmd_info;
extern const struct bv_cli_command bv_cmd_init;
extern const struct bv_cli_command bv_cmd_bundle;
extern const struct bv_cli_command bv_cmd_list;
extern const struct bv_cli_command bv_cmd_lock;
extern const struct bv_cli_command bv_cmd_logs;
extern const struct bv_cli_command bv_cmd_ps;
extern const struct bv_cli_command bv_cmd_publish;
extern const struct bv_cli_command bv_cmd_push;
extern const struct bv_cli_command bv_cmd_remove;
extern const struct bv_cli_command bv_cmd_restart;
extern const struct bv_cli_command bv_cmd_run;
extern const struct bv_cli_command bv_cmd_search;
extern const struct bv_cli_command bv_cmd_session;
extern const struct bv_cli_command bv_cmd_shell;
extern const struct bv_cli_command bv_cmd_show;
extern const struct bv_cli_command bv_cmd_sync;
extern const struct bv_cli_command bv_cmd_up;
extern const struct bv_cli_command bv_cmd_update;
extern const struct bv_cli_command bv_cmd_conformance;
extern const struct bv_cli_command bv_cmd_version;
extern const struct bv_cli_command bv_cmd_why;

#endif
