/*
 * bv/syncrecord.h - the record of a `bv sync` that found nothing to do, <project>/.bv/sync.ok,
 * so that the next one can say "Everything is up to date" without reading the project while
 * nothing it depends on has changed.
 *
 * What a sync with nothing to do concluded depends on files (bv.toml, bv.lock, the directory
 * the backend keeps its images in, the registry copy's refresh stamp and snapshot, .bv/bin,
 * the cache's registration of the project), on its arguments and environment (a context
 * string the caller composes), on bv itself, and on time (a registry copy older than its TTL,
 * or from the future, is refreshed).  The record keeps the stat key (bv_stat_key: device,
 * inode, size, mtime, ctime) of every such file as it was before the sync read it, the
 * context, the build id, the times between which it holds and the number of tools; it is
 * valid only while every one of them is unchanged.  Only files whose ctime had settled
 * (bv_stat_settled) are recorded, so an edit in the same tick of the file clock cannot keep
 * a recorded key.
 *
 * Calling sequence:
 *   size_t n;
 *   if (bv_sync_record_check(root, context, &n)) ... nothing to do, n tools
 *   struct bv_sync_record *rec = bv_sync_record_new(context);
 *   bv_sync_record_add(rec, path);                  before the sync reads the file
 *   bv_sync_record_add_stat(rec, path, &st);        a stat taken when it was read
 *   bv_sync_record_window(rec, from, until);        the registry copy's TTL
 *   bv_sync_record_spoil(rec, why);                 the sync did something, or warned
 *   bv_sync_record_write(rec, root, n_tools);       only if every file is still as recorded
 *   bv_sync_record_free(rec);
 *
 * A record that cannot be written (a file missing or unsettled, a read-only checkout) is
 * simply not written, and one that does not match is ignored: the next sync does the whole
 * work, as it would without records.  The file is replaced by rename and carries a checksum,
 * so a torn or damaged record is a miss, never a wrong answer.  BV_SYNC_RECORD=0 in the
 * environment turns records off (neither read nor written).
 *
 * Ownership: the record is the caller's until bv_sync_record_free(); strings are copied.
 * Errors: none are reported; every failure means "no record".
 */
#ifndef BV_SYNCRECORD_H
#define BV_SYNCRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stat;
struct bv_sync_record;

struct bv_sync_record *bv_sync_record_new(const char *context);
void bv_sync_record_free(struct bv_sync_record *rec);

/* Records `path` as stat(2) finds it now; a file that is missing or unsettled spoils it. */
void bv_sync_record_add(struct bv_sync_record *rec, const char *path);
void bv_sync_record_add_stat(struct bv_sync_record *rec, const char *path, const struct stat *st);

/* The record holds from `from` and before `until` (seconds since the epoch) at most. */
void bv_sync_record_window(struct bv_sync_record *rec, int64_t from, int64_t until);

/* The sync this record describes did something, said something or read something the record
 * cannot vouch for (`why`, for the debug log): it must not be written. */
void bv_sync_record_spoil(struct bv_sync_record *rec, const char *why);

/* Writes .bv/sync.ok when nothing spoiled the record and every file is still as recorded. */
bool bv_sync_record_write(const struct bv_sync_record *rec, const char *project_root,
			  size_t n_tools);

/*
 * Whether the project at `project_root` has a record for `context` by this build whose time
 * has not run out and whose every file is unchanged; then *n_tools is its number of tools.
 */
bool bv_sync_record_check(const char *project_root, const char *context, size_t *n_tools);

#endif
