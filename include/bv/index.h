/*
 * bv/index.h - the registry index: a directory tree of manifests, usually a git checkout.
 * The CLI opens it, lists its tools, reads its summaries and the digests of its manifests;
 * manifests are chosen from it with bv/resolve.h.  Version lists, manifest paths, the URL and
 * its redaction, which only the library and its tests use, are in
 * src/lib/model/index-internal.h.
 *
 * Calling sequence:
 *   const char *url = bv_registry_url_choose(flag, project->registry_url);
 *   struct bv_index *idx = NULL;
 *   if (bv_index_open(&idx, url, BV_INDEX_REFRESH_STALE, &err) < 0) ...
 *   if (bv_index_warning(idx)) print it               the refresh failed, old copy in use
 *   struct bv_strv ids = BV_STRV_INIT;
 *   bv_index_list_tools(&ids, idx, &err);              "samtools", ...
 *   char digest[72];
 *   bv_index_manifest_digest(idx, "samtools", "1.21", digest, &err);
 *   bv_index_free(idx);
 *
 * Layout of a registry: tools/<id>/<version>.toml, data/<id>/<version>.toml and an optional
 * generated index.json with one summary per tool (for search).
 *
 * Where the tree comes from (bv_index_open):
 * - A plain path ("/srv/registry", "../reg", "~/reg"; relative to the current directory) must
 *   be an existing directory and is used in place: no clone, no refresh, whatever `mode`.  It
 *   may be a git working tree; its current files, committed or not, are what bv sees, which
 *   is what someone editing a registry wants.  To clone a local repository instead, name it
 *   with a file:// URL.
 * - A file:// URL (file:///abs or file://localhost/abs) naming a git repository (a directory
 *   with .git, or a bare repository) is cloned like a remote.  One naming a plain directory
 *   that is not a repository is used in place, as a path would be.
 * - Anything else (https://, http://, ssh://, git://, user@host:path) is a git URL.  It is
 *   cloned shallowly into <cache>/index/<name>-<16 hex of FNV-1a-64(url)>, where <name> is the
 *   sanitised last path component ("bv-registry"): one clone per URL, so two registries never
 *   overwrite each other's checkout.  The clone is made in "<dir>.tmp" and renamed into place,
 *   so an interrupted clone is never mistaken for a complete one.  A refresh is `git fetch
 *   --depth 1 origin` plus `git reset --hard FETCH_HEAD`, which also follows force-pushes.
 *   Cloning and refreshing happen under an exclusive lock on "<dir>.lock", so concurrent bv
 *   processes wait for each other instead of racing.  After each success the file
 *   <dir>/.bv-refresh is rewritten; its mtime is the age of the copy.
 *
 * Refresh modes: BV_INDEX_OFFLINE never runs git and needs an existing clone;
 * BV_INDEX_REFRESH_STALE refreshes when the copy is older than $BV_INDEX_TTL seconds (default
 * 300; 0 refreshes every time); BV_INDEX_REFRESH_ALWAYS refreshes every time.  When a refresh
 * fails (no network, a git error) and a clone exists, the clone is used and
 * bv_index_warning() says so; only a failed first clone is an error.
 *
 * git never prompts: it runs with stdin from /dev/null, GIT_TERMINAL_PROMPT=0,
 * GCM_INTERACTIVE=never, no credential helper, the ext:: transport disabled, and without
 * GIT_DIR-style variables inherited from a surrounding git command.
 *
 * Credentials: a URL may carry them (https://user:token@host/...).  No message produced here
 * contains them: URLs are shown with the user-info replaced by "***", and git's own output is
 * scrubbed of the user-info, its password and a token-like user name.
 *
 * Lock files stay behind after a failed first clone; they are empty, and deleting a lock file
 * that another process may be waiting on would let two clones run at once.
 *
 * Ownership: the index owns its warning string; bv_index_warning() returns a borrowed pointer
 * valid until bv_index_free().  Id lists are appended to the caller's vector, which then owns
 * them.  bv_index_load_summaries() returns a new jansson reference (json_decref() it).
 *
 * Errors: 0 or a negative enum bv_error_code with details in `err`; outputs are written only
 * on success.  Nothing here prints.
 */
#ifndef BV_INDEX_H
#define BV_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct bv_error;
struct bv_strv;
struct bv_index;

enum bv_index_refresh {
	BV_INDEX_OFFLINE,       /* never touch the network; needs an existing clone */
	BV_INDEX_REFRESH_STALE, /* refresh when older than the TTL */
	BV_INDEX_REFRESH_ALWAYS,
};

/*
 * The registry to use: `flag` (--registry), else $BV_REGISTRY, else `from_bv_toml` ([registry]
 * url), else BV_DEFAULT_REGISTRY.  NULL and empty strings count as unset.  Returns one of the
 * arguments, the environment's string or the constant: borrowed, not to be freed.
 */
const char *bv_registry_url_choose(const char *flag, const char *from_bv_toml);

/*
 * Opens the registry at `url` (see above).  BV_ENOTFOUND when a path does not exist or, in
 * BV_INDEX_OFFLINE, when the registry has never been fetched; BV_EINVALID for an empty URL,
 * a path that is not a directory or a malformed BV_INDEX_TTL; BV_ERR when the first clone
 * fails, with the last lines of git's output.
 */
int bv_index_open(struct bv_index **out, const char *url, enum bv_index_refresh mode,
		  struct bv_error **err);

/* `url` with its user-info ("user:token" in https://user:token@host/x) replaced by "***". */
char *bv_index_redact_url(const char *url);

/*
 * The directory the index is read from (borrowed), and whether it is a clone in bv's cache
 * rather than a directory used in place.
 */
const char *bv_index_location(const struct bv_index *idx, bool *cloned);

/*
 * What the index's answers about manifests come from, for a caller that keeps something it
 * concluded from them (bv sync's record, bv/syncrecord.h): the clone's refresh stamp and its
 * snapshot, each with the stat(2) taken before it was read, and the times between which
 * bv_index_open() would use this copy without refreshing it (from the refresh on, before it
 * is $BV_INDEX_TTL seconds old; always when offline).  False when there is no such list: a
 * registry used in place may change at any time, a snapshot built by this very open is too
 * new to trust its times, and a copy whose refresh failed or that is refreshed on every open
 * must be opened again.  Paths and stats are borrowed from the index.
 */
struct stat;
struct bv_index_sources {
	const char *paths[2];
	const struct stat *stats[2];
	int64_t fresh_from, fresh_until; /* seconds since the epoch, until excluded */
};
bool bv_index_sources(const struct bv_index *idx, struct bv_index_sources *out);

/* $BV_INDEX_TTL, else the default (300): seconds a clone stays fresh.  BV_EINVALID when
 * malformed. */
int bv_index_ttl(int64_t *out, struct bv_error **err);

/* A registry clone in <cache>/index (bv doctor). */
struct bv_index_clone {
	char *dir;         /* absolute */
	char *url;         /* the clone's origin, user-info redacted; NULL when unreadable */
	int64_t refreshed; /* Unix time of the last clone or refresh, -1 when unknown */
};

/*
 * Every clone in <cache>/index, sorted by directory (*n_out 0 when there is none).  The
 * origin comes from the clone's .git/config, read without running git.  Free with
 * bv_index_clones_free().
 */
int bv_index_list_clones(struct bv_index_clone **out, size_t *n_out, struct bv_error **err);
void bv_index_clones_free(struct bv_index_clone *clones, size_t n);

/* Why the copy in use may be out of date, or NULL. */
const char *bv_index_warning(const struct bv_index *idx);
void bv_index_free(struct bv_index *idx);

/*
 * Appends the ids under tools/, sorted bytewise: every non-hidden directory.  A registry
 * without tools/ has none.
 */
int bv_index_list_tools(struct bv_strv *out, const struct bv_index *idx, struct bv_error **err);

/*
 * "sha256:<hex>" of the bytes of a tool manifest (the manifest_sha256 of bv.lock).  For a
 * cloned registry it comes from the snapshot made at the last refresh, without reading the
 * file.  `out` holds 71 characters and a NUL.
 */
int bv_index_manifest_digest(const struct bv_index *idx, const char *tool, const char *version,
			     char out[72], struct bv_error **err);

/*
 * Reads <root>/index.json (at most 64 MiB, duplicate keys rejected) and stores its "tools"
 * array in *out as a new reference.  BV_ENOTFOUND when the registry has no index.json (fall
 * back to reading manifests); BV_EINVALID when it is not JSON, its schema_version is not 1
 * or it has no "tools" array.
 */
int bv_index_load_summaries(json_t **out, const struct bv_index *idx, struct bv_error **err);

#endif
