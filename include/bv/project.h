/*
 * bv/project.h - the project file, bv.toml.
 *
 * Calling sequence:
 *   char *root;  bv_project_find(&root, NULL, &err)          (paths.h: walks up from the cwd)
 *   struct bv_project *p;
 *   if (bv_project_load(&p, root, &err) < 0) ...
 *   bv_strv_foreach(w, &p->warnings) print w;                 unknown keys, with file:line
 *   for (size_t i = 0; i < p->n_tools; i++) p->tools[i].id ...
 *   bv_project_free(p);
 *
 * Edits (bv add, bv remove) are made to the file's text, not by re-serialising the model, so
 * comments, layout and keys this bv does not know survive; the edited text is parsed again
 * before it is written (atomically), so an edit never produces a file bv cannot read.
 *
 * Ownership: all strings in struct bv_project point into the project's TOML document and live
 * until bv_project_free().
 *
 * Errors: BV_ENOTFOUND when bv.toml does not exist; BV_EINVALID with "bv.toml:line:column: ..."
 * for syntax and schema errors.  Unknown keys are not errors: they are listed in `warnings`.
 */
#ifndef BV_PROJECT_H
#define BV_PROJECT_H

#include <bv/toml.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_error;

struct bv_project_tool {
	const char *id;
	const char *version; /* requirement as written; "" means latest */
	struct bv_toml_pos pos;
};

struct bv_binary_override {
	const char *binary;
	const char *tool;
};

struct bv_cache_rule {
	const char *match;          /* tool id or "*" */
	const char *container_path; /* absolute */
	const char *host_path;      /* may contain "~" and "{tool}" */
};

struct bv_project_data {
	const char *key;
	const char *id;
	const char *version;
};

struct bv_project {
	char *path; /* absolute path of bv.toml */
	char *root; /* its directory */
	char *text; /* the file as read */
	size_t text_len;
	struct bv_toml_doc *doc;

	const char *name;
	const char *description;     /* NULL when absent */
	const char *registry_url;    /* NULL when absent */
	const char *runtime_backend; /* NULL when absent */
	bool require_signed;         /* [registry] require_signed (bv/signature.h) */
	const char *image_mode;      /* [runtime] image_mode, checked; NULL when absent */
	const char *local_dir;       /* [runtime] local_dir, absolute; NULL when absent */

	struct bv_project_tool *tools;
	size_t n_tools;
	struct bv_binary_override *overrides;
	size_t n_overrides;
	struct bv_cache_rule *caches;
	size_t n_caches;
	struct bv_project_data *data;
	size_t n_data;

	/* [hardware]: what the project expects of a machine; negative when not given */
	int gpu; /* 1, 0, or -1 */
	int64_t cpu_cores;
	double ram_gb;

	struct bv_strv warnings;
};

/* Reads <root>/bv.toml. */
int bv_project_load(struct bv_project **out, const char *root, struct bv_error **err);
/* Parses `text` as the bv.toml at `path` (used by load, by edits and by tests). */
int bv_project_parse(struct bv_project **out, const char *text, size_t len, const char *path,
		     struct bv_error **err);
void bv_project_free(struct bv_project *p);

const struct bv_project_tool *bv_project_find_tool(const struct bv_project *p, const char *id);

/* The project name: [project] name, else the directory's name. */
const char *bv_project_display_name(const struct bv_project *p);

/* The text of a new bv.toml for a project called `name` (bv init). */
char *bv_project_template(const char *name);

/*
 * New text of bv.toml without the [[tools]] entry for `id` (BV_ENOTFOUND when there is none).
 * The entry's lines, from its header to the next header, are removed; nothing else changes.
 */
int bv_project_text_without_tool(char **out, const struct bv_project *p, const char *id,
				 struct bv_error **err);

/*
 * New text of bv.toml with `id` declared at requirement `version` ("" for latest): the
 * existing entry's version is replaced, or a [[tools]] entry is appended.
 */
int bv_project_text_with_tool(char **out, const struct bv_project *p, const char *id,
			      const char *version, struct bv_error **err);

/* Checks `text` parses as a project and writes it to p->path atomically. */
int bv_project_save_text(const struct bv_project *p, const char *text, struct bv_error **err);

/*
 * The project lock: one exclusive lock per project, so that commands editing it never lose
 * each other's writes.  Every command that reads bv.toml or bv.lock in order to write bv.toml,
 * bv.lock or .bv/bin (add, remove, lock, update, exec's auto-sync) takes it BEFORE reading
 * bv.toml and drops it only after all three are written; a command that writes only .bv/bin
 * from bv.lock (sync, shell, for stale shims) may take it late, but must then read bv.lock
 * again under it:
 *
 *   struct bv_project_lock *pl = NULL;
 *   struct bv_project_lock_options o = {.on_wait = say_waiting};   (or NULL for defaults)
 *   if (bv_project_lock(&pl, root, &o, &err) < 0) ...
 *   ... bv_project_load(), edit, bv_project_save_text(), bv_lockfile_save(), bv_shims_write()
 *   pl = bv_project_unlock(pl);
 *
 * Readers (bv run, list, show, info, lock --check) do not take it: each of bv.toml, bv.lock and
 * every .bv/bin directory is replaced by one rename(2), so a reader sees each file whole, old
 * or new, without waiting.  Between the two files it may see the new bv.toml with the
 * previous bv.lock for a moment (bv.toml is always written first).
 *
 * Mechanism: an OFD lock (util/lock.h) on <root>/.bv/lock, created mode 0644 (never world
 * writable; an existing world-writable file owned by the caller is fixed to 0644 as well).
 * .bv/ is created (0755) when missing; a project directory where it cannot be created (read
 * only) is an error saying so.  The kernel drops the lock when the last descriptor closes, so
 * a bv killed with SIGKILL leaves nothing stale; the descriptor is O_CLOEXEC, so a command
 * that exec(2)s (bv exec, bv shell) releases it at the exec.  Two locks taken in one process
 * conflict as two processes do.  The file itself is never removed (see util/lock.c).
 *
 * Waiting: the lock is waited for without a limit.  When it is not granted within
 * `note_after_ms` (0: 1000 ms), `on_wait(lock_path, payload)` is called once, so the caller
 * can say why nothing is happening; with `no_wait` the call fails at once with BV_EEXISTS
 * instead of waiting.
 *
 * Ownership: the lock object belongs to the caller until bv_project_unlock(), which accepts
 * NULL and returns NULL.
 *
 * Errors: BV_EEXISTS ("another bv process is changing the project in '<root>'") with
 * `no_wait`; BV_ERR when .bv/ or the lock file cannot be created or locked.
 */
struct bv_project_lock;

struct bv_project_lock_options {
	unsigned note_after_ms; /* 0: 1000 */
	void (*on_wait)(const char *lock_path, void *payload);
	void *payload;
	bool no_wait; /* fail with BV_EEXISTS instead of waiting */
};

/* The path of the lock file of the project at `root`, "<root>/.bv/lock".  New string. */
char *bv_project_lock_path(const char *root);

/* Takes the lock of the project at `root`; `o` may be NULL (defaults). */
int bv_project_lock(struct bv_project_lock **out, const char *root,
		    const struct bv_project_lock_options *o, struct bv_error **err);
struct bv_project_lock *bv_project_unlock(struct bv_project_lock *pl);

/* The host directory of a [[cache]] rule for `tool`: "~" and "{tool}" expanded.  New string. */
char *bv_cache_rule_host_path(const struct bv_cache_rule *rule, const char *tool);

#endif
