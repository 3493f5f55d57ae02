/*
 * lockfile-internal.h - what lockindex.c needs of lockfile.c to lend a lock its strings.
 *
 * Internal to src/lib/model/ (and its tests).  A lock decoded from .bv/lock.idx keeps most of
 * its strings where they are in the index's read-only mapping instead of copying each into
 * its own heap block: on a 1000-tool project that spares some ten thousand allocations and
 * the hundred-odd pages they would touch.  Every function of bv/lockfile.h that frees or
 * replaces a string (bv_lock_set_string(), bv_lockfile_remove(), bv_lockfile_free(), ...)
 * leaves a lent one alone, so the ownership rules of bv/lockfile.h hold for the caller as
 * before, with one exception kept out of reach: `binaries` entries are always heap copies
 * (callers clear that vector with bv_strv_clear()).  Lent strings are read-only.
 *
 * Calling sequence (lockindex.c):
 *   if (bv_lockfile_lend(lock, map, len))      lock now owns the mapping: its strings may
 *           ... decode, pointing into map ...  point into it; bv_lockfile_free() unmaps it
 *   else    ... decode with copies; munmap(map, len) ...
 */
#ifndef BV_LOCKFILE_INTERNAL_H
#define BV_LOCKFILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

struct bv_lockfile;

/*
 * Hands the mapping [map, map + len) to `lock` (which must have none yet): false, with
 * nothing done, when no more mappings can be lent at once (then decode with copies).
 */
bool bv_lockfile_lend(struct bv_lockfile *lock, void *map, size_t len);

#endif
