/*
 * buildid.h - the GNU build id of the running executable: what caches written by bv (the
 * parsed-lock index, the record of a sync with nothing to do) are tied to, so that another
 * build, which may lay out or judge things differently, never trusts them.
 *
 * Calling sequence:
 *   const unsigned char *id;
 *   size_t len = bv_build_id(&id);         0: this build has none, so keep no cache
 *
 * The id is read once from the main program's NT_GNU_BUILD_ID note, in memory (no system
 * call), and kept for the life of the process.
 *
 * Ownership: *id points into static storage.  Errors: none; no id is a length of 0.
 */
#ifndef BV_UTIL_BUILDID_H
#define BV_UTIL_BUILDID_H

#include <stddef.h>

#define BV_BUILD_ID_MAX 64

size_t bv_build_id(const unsigned char **id);

#endif
