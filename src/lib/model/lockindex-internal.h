/*
 * lockindex-internal.h - the parsed-lock cache, <project>/.bv/lock.idx: bv.lock as a compact
 * binary image, so that the commands that only read the lock (list, run and the shims, lock
 * --check, sync with nothing to do) skip parsing 550 KB of TOML on a 1000-tool project.
 *
 * Internal to src/lib/model: bv_lockfile_load() and bv_lockfile_save() are its only callers,
 * so every reader and writer of bv.lock uses it without knowing.
 *
 * Calling sequence (inside lockfile.c):
 *   struct stat st;  stat("bv.lock", &st);
 *   if (bv_lock_index_load(&lock, "bv.lock", &st) == 0) ...   hit: no need to read bv.lock
 *   ... else open bv.lock, fstat(2) it (st_before), settled = bv_lock_index_settled(),
 *   read and parse it, fstat(2) it again (st_after), and when settled:
 *   bv_lock_index_store(lock, "bv.lock", &st_before, &st_after);   best effort
 *
 * Validity.  The index records the identity of the bv.lock it was made from: st_dev, st_ino,
 * st_size, st_mtim and st_ctim (ctime: no one can set it back, so an edit by hand that
 * restores the size and the mtime with touch -d is still seen), plus a format version and the
 * GNU build id of the running executable (another build may lay out the lock differently), and
 * a checksum of the whole file.  Any mismatch, a short or damaged file, or anything the decoder
 * does not expect is a miss: the caller parses bv.lock as if there were no index.  An index is
 * only written for a bv.lock whose ctime is older than the current clock tick (or second, on
 * a file system without sub-second times), so that a later edit in place cannot reuse the
 * recorded ctime (the "racily clean" case git knows).  A build without a build id never reads
 * or writes an index.  BV_LOCK_INDEX=0 in the environment turns the index off.
 *
 * Writing: only into an existing <dir>/.bv/ (no directory is ever created for it) of a file
 * named bv.lock, as a temporary file renamed over lock.idx, so a reader sees a whole index,
 * old or new, never a partial one.  Not flushed with fsync: a torn index after a crash fails its
 * checksum and is ignored.
 *
 * Ownership: a lock returned by bv_lock_index_load() is the caller's (bv_lockfile_free()).
 *
 * Errors: none are reported; both functions are best effort and never fail the command.
 */
#ifndef BV_LIB_LOCKINDEX_INTERNAL_H
#define BV_LIB_LOCKINDEX_INTERNAL_H

#include <stdbool.h>
#include <sys/stat.h>

struct bv_lockfile;

/* 0 and a new lock in *out when the index of `lock_path` matches `st`; -1 otherwise. */
int bv_lock_index_load(struct bv_lockfile **out, const char *lock_path, const struct stat *st);

/*
 * Whether `st`, just taken, describes a file whose next change is sure to give it another
 * ctime: its ctime lies at least two ticks before the clock the kernel stamps files with (the
 * current second must have moved on where the file system keeps whole seconds only).
 */
bool bv_lock_index_settled(const struct stat *st);

/*
 * Writes the index of `lock`, the content of `lock_path` as read between `before` (settled
 * when taken) and `after`; nothing is written unless the two describe the same unchanged file.
 */
void bv_lock_index_store(const struct bv_lockfile *lock, const char *lock_path,
			 const struct stat *before, const struct stat *after);

/* The index path for `lock_path` (<dir>/.bv/lock.idx), or NULL when it has none.  New string. */
char *bv_lock_index_path(const char *lock_path);

#endif
