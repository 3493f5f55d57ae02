/*
 * bv/lockops.h - what goes into bv.lock: resolving bv.toml against the registry index,
 * mapping a manifest to a lock entry, relocking, diffing two locks and writing bv.toml,
 * bv.lock and .bv/bin as one transaction under the project lock.
 *
 * The commands that change a project (add, remove, lock, update, exec's auto-sync) only
 * parse options, pull images, show progress and print; every decision about the lock is
 * made here, where it can be unit tested without a network.  The image digests only an OCI
 * registry knows come from the caller: `bv add` passes them in (struct bv_lockops_image),
 * a relock asks for them through a callback (bv_lockops_images_fn), because only the relock
 * knows which tools need one.
 *
 * Calling sequence (bv lock):
 *   struct bv_lockops_txn txn;
 *   bv_lockops_open(&txn, root, true, &lock_options, &err);     lock, then read both files
 *   struct bv_lockops_relock_options o = {.images = pull_fn, .payload = &state};
 *   struct bv_lockops_result res = BV_LOCKOPS_RESULT_INIT;
 *   bv_lockops_relock(&res, txn.project, txn.lock, index, types, &o, &err);
 *   for each res.warnings, each line of each res.diff.changes[i]: print it
 *   if (res.lock) bv_lockops_commit(&txn, &res, &err);          bv.toml, bv.lock, .bv/bin
 *   bv_lockops_result_release(&res);
 *   bv_lockops_txn_release(&txn);                               unlocks
 *
 * bv add resolves with bv_lockops_resolve(), pulls, then bv_lockops_add(); bv remove calls
 * bv_lockops_remove(); both commit the result.  `bv lock --check` runs bv_lockops_relock()
 * without a callback on a transaction opened without the lock, and never commits.
 *
 * Relock rule: a declared tool whose requirement is the one recorded in its entry, whose
 * requirement still selects the locked version and whose manifest still has the locked
 * digest keeps its entry untouched (without its manifest being parsed: what keeps --check
 * fast on a large project).  Every other declared tool is resolved again and mapped with
 * bv_lockops_fill_entry(); entries no longer declared are dropped; the binary index is
 * rebuilt with bv.toml's [binary_overrides].
 *
 * Ownership: a transaction owns its project, lock and project lock until
 * bv_lockops_txn_release(); a result owns everything in it until bv_lockops_result_release().
 * Inputs are borrowed.  Strings in struct bv_lockops_image are borrowed for the duration of
 * the call they are passed to (the lock copies them).
 *
 * Errors: 0 or a negative enum bv_error_code with `err` filled.  Nothing here prints:
 * warnings (an override naming a tool that is not locked, a deprecated tool) are returned in
 * `warnings` for the caller to show.  Not thread-safe (nothing in bv is).
 */
#ifndef BV_LOCKOPS_H
#define BV_LOCKOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strv.h"

struct bv_error;
struct bv_index;
struct bv_lock_binary;
struct bv_lock_tool;
struct bv_lockfile;
struct bv_manifest;
struct bv_project;
struct bv_project_lock;
struct bv_project_lock_options;
struct bv_types;

/* The image reference a tool's image is pulled from (the factored image when it has one). */
const char *bv_lockops_image_reference(const struct bv_manifest *m);
/* The digest the image must be pulled at, or NULL to resolve its tag (factored images are
 * pinned by the registry manifest itself, as upstream pulls them). */
const char *bv_lockops_image_pin(const struct bv_manifest *m);

/* What an OCI registry says a tool's image is; every string is borrowed. */
struct bv_lockops_layer {
	const char *digest;
	int64_t size;
	const char *media_type;
};

struct bv_lockops_image {
	const char *digest; /* bv.lock's image_digest: what the tag (or pin) points to */
	int64_t size;       /* -1 when not looked up */
	struct bv_lockops_layer *layers;
	size_t n_layers;
};

/*
 * The one mapping from a manifest to its bv.lock entry: requirement, version, spec kind,
 * image reference, manifest digest, resolved_at (`now`, RFC 3339; NULL: the current time)
 * and binaries.  With `image`, also the image digest, size and layers, each layer with the
 * conda package the manifest lists for its digest.  Without one (`bv lock --check`, which
 * asks no registry) the digest is the manifest's pin for a factored image, is kept when the
 * entry already holds the same version, and is emptied otherwise; size and layers are kept.
 */
void bv_lockops_fill_entry(struct bv_lock_tool *t, const struct bv_manifest *m,
			   const char *requirement, const struct bv_lockops_image *image,
			   const char *now);

/*
 * Resolves `id` at `requirement` ("" or NULL: the newest) in the index (bv/resolve.h) and
 * appends a warning when the version chosen is deprecated or the tool experimental.
 */
int bv_lockops_resolve(struct bv_manifest **out, struct bv_strv *warnings,
		       const struct bv_index *idx, const char *id, const char *requirement,
		       const struct bv_types *types, struct bv_error **err);

/*
 * Rebuilds the binary index of `lock` with the overrides of `p` that name locked tools
 * (bv_lockfile_rebuild_binary_index: two tools exposing one binary, or a tool shadowing a
 * system command, without an override are BV_EINVALID).  An override naming a tool that is
 * not locked is skipped with a warning.
 */
int bv_lockops_rebuild_binary_index(struct bv_lockfile *lock, struct bv_strv *warnings,
				    const struct bv_project *p, struct bv_error **err);

/*
 * The first entry of the binary index that would replace a system command in bv exec and
 * bv shell without bv.toml's [binary_overrides] naming exactly that binary and tool, or NULL.
 * bv.lock may come from someone else, so its index is checked against bv.toml before any
 * shim is written, whatever wrote the index.
 */
const struct bv_lock_binary *bv_lockops_unallowed_shadow(const struct bv_lockfile *lock,
							 const struct bv_project *p);

/*
 * `bv sync --frozen`: appends one message per disagreement between bv.toml and bv.lock (a
 * tool declared but not locked, a locked version the requirement no longer allows, a tool
 * locked but no longer declared) and returns how many there were.
 */
size_t bv_lockops_check_frozen(struct bv_strv *problems, const struct bv_project *p,
			       const struct bv_lockfile *lock);

/* The differences between two locks, for reporting. */
enum bv_lockops_change_kind {
	BV_LOCKOPS_ADDED,        /* a tool only the new lock has */
	BV_LOCKOPS_REMOVED,      /* a tool only the old lock has */
	BV_LOCKOPS_CHANGED,      /* a tool both have, with a difference bv lock --check reports */
	BV_LOCKOPS_BINARY_INDEX, /* the binary index (tool_id NULL) */
};

struct bv_lockops_change {
	enum bv_lockops_change_kind kind;
	char *tool_id;        /* NULL for BV_LOCKOPS_BINARY_INDEX */
	char *old_version;    /* NULL when added (and for the binary index) */
	char *new_version;    /* NULL when removed (and for the binary index) */
	struct bv_strv lines; /* bv_lockfile_diff()'s readable lines for this change */
};

struct bv_lockops_diff {
	struct bv_lockops_change *changes; /* in tool order, the binary index last */
	size_t n_changes;                  /* 0: the locks are equivalent */
};

/* Compares `old` with `new` as bv_lockfile_diff() does (the same lines, grouped). */
void bv_lockops_diff(struct bv_lockops_diff *out, const struct bv_lockfile *old,
		     const struct bv_lockfile *new);
void bv_lockops_diff_release(struct bv_lockops_diff *d);

/* What an operation wants written, and what the caller should show. */
struct bv_lockops_result {
	char *toml_text;            /* bv.toml's new text; NULL: unchanged */
	struct bv_project *project; /* toml_text parsed; NULL when unchanged */
	struct bv_lockfile *lock;   /* bv.lock to write; NULL: nothing to write */
	struct bv_lockops_diff diff;
	struct bv_manifest **manifests; /* resolved by a relock and recorded in `lock` */
	size_t n_manifests;
	struct bv_strv warnings;
};

#define BV_LOCKOPS_RESULT_INIT           \
	{                                \
		.warnings = BV_STRV_INIT \
	}

/* Frees everything in `res` and leaves it as BV_LOCKOPS_RESULT_INIT. */
void bv_lockops_result_release(struct bv_lockops_result *res);

/* One tool for bv_lockops_add(): resolved by the caller, its image pulled. */
struct bv_lockops_addition {
	const char *id;
	const char *requirement; /* as given, "" for the newest */
	const struct bv_manifest *manifest;
	struct bv_lockops_image image;
};

/*
 * bv add: `old` (NULL: no bv.lock yet) with an entry for each tool, and bv.toml's text with
 * each tool declared at its requirement (an existing declaration's requirement replaced).
 * Every edited text is parsed again, and the binary index rebuilt with the edited bv.toml,
 * before anything is returned, so a commit never writes a file bv cannot read.
 */
int bv_lockops_add(struct bv_lockops_result *out, const struct bv_project *p,
		   const struct bv_lockfile *old, const struct bv_lockops_addition *tools, size_t n,
		   struct bv_error **err);

/*
 * bv remove: bv.toml's text without each of `ids` (BV_ENOTFOUND when one is not declared)
 * and, when there is a bv.lock (`old`), the lock without them, its binary index rebuilt.
 */
int bv_lockops_remove(struct bv_lockops_result *out, const struct bv_project *p,
		      const struct bv_lockfile *old, const char *const *ids, size_t n,
		      struct bv_error **err);

/* A request for the image of one tool a relock resolved again. */
struct bv_lockops_image_request {
	const char *tool_id;
	const char *reference; /* bv_lockops_image_reference() */
	const char *pinned;    /* bv_lockops_image_pin(), NULL to resolve the tag */
};

/*
 * Fills out[i] for each of the `n` requests (all at once, so the caller can ask the registry
 * in parallel).  The strings it stores must stay valid until bv_lockops_relock() returns.
 */
typedef int (*bv_lockops_images_fn)(struct bv_lockops_image *out,
				    const struct bv_lockops_image_request *requests, size_t n,
				    void *payload, struct bv_error **err);

struct bv_lockops_relock_options {
	/* NULL: compare only (bv lock --check): no registry is asked, nothing is returned to
	 * write, a changed tool keeps the digest only a registry could refresh (see
	 * bv_lockops_fill_entry()). */
	bv_lockops_images_fn images;
	void *payload;
	bool force_all;          /* resolve every tool again (bv update, --platform) */
	const char *const *only; /* ... or these (bv update <tool>...), which must be declared */
	size_t n_only;
	/* NULL, or called for each tool resolved again before any image is asked for (bv
	 * update's experimental and hardware checks): 0 takes the new manifest, 1 keeps a locked
	 * tool's entry as it is, a negative code stops the relock with that error. */
	int (*admit)(const struct bv_manifest *m, bool locked, void *payload,
		     struct bv_error **err);
	void *admit_payload;
};

/*
 * Relocks `old` (NULL: no bv.lock yet) against bv.toml `p` and the index (the rule at the top
 * of this file).  out->diff holds old -> new; out->lock is the lock to write, with a new
 * generated_at, or NULL when nothing changed (or when only comparing); out->manifests are
 * the manifests of the tools resolved again.  Errors: BV_ENOTFOUND for an `only` tool that
 * bv.toml does not declare or a requirement nothing satisfies, and whatever the callback,
 * the resolution or the binary index fail with.
 */
int bv_lockops_relock(struct bv_lockops_result *out, const struct bv_project *p,
		      const struct bv_lockfile *old, const struct bv_index *idx,
		      const struct bv_types *types, const struct bv_lockops_relock_options *o,
		      struct bv_error **err);

/*
 * A transaction on a project: with `lock`, the project lock is taken before bv.toml is read,
 * so nothing read here can change until bv_lockops_txn_release(); without it (readers, and
 * commands that lock only to write .bv/bin), bv_lockops_txn_lock() takes it later and reads
 * bv.lock again under it.
 */
struct bv_lockops_txn {
	struct bv_project_lock *project_lock; /* NULL when not held */
	struct bv_project *project;
	struct bv_lockfile *lock; /* NULL when the project has no bv.lock */
	char *lock_path;
};

/* Opens the project at `root`; `o` is for bv_project_lock() (NULL: defaults).  On failure
 * nothing is held and *txn is empty. */
int bv_lockops_open(struct bv_lockops_txn *txn, const char *root, bool lock,
		    const struct bv_project_lock_options *o, struct bv_error **err);

/* Takes the project lock when not held, then reads bv.lock again (BV_ENOTFOUND when it has
 * gone), replacing txn->lock only on success. */
int bv_lockops_txn_lock(struct bv_lockops_txn *txn, const struct bv_project_lock_options *o,
			struct bv_error **err);

/*
 * Writes what `res` holds, in upstream's order: bv.toml, then bv.lock, then .bv/bin (with
 * the lock's binary index, whenever bv.lock is written).  A crash in between leaves a lock
 * with an extra tool, which bv lock --check reports, never a bv.toml that declares a tool
 * the lock lacks.  Refused (BV_EINVALID, nothing written) without the project lock, and when
 * a shim would shadow a system command that bv.toml does not allow.
 */
int bv_lockops_commit(const struct bv_lockops_txn *txn, const struct bv_lockops_result *res,
		      struct bv_error **err);

/* Frees the files read and releases the project lock; the transaction is empty afterwards. */
void bv_lockops_txn_release(struct bv_lockops_txn *txn);

/*
 * Fills the empty sha256 of every reference_data_pins entry of `lock` from the registry's
 * data manifest (bv_lockops_fill_entry() keeps known ones); a dataset the registry lacks is
 * a warning and its pin stays without a digest.
 */
struct bv_index;
int bv_lockops_fill_data_pins(struct bv_lockfile *lock, const struct bv_index *idx,
			      struct bv_strv *warnings);

#endif
