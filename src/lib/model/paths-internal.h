/*
 * paths-internal.h - the home directory, and "~" in paths read from bv.toml and config files.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/paths.h (the cache root and the project root, which the CLI
 * uses), where "home" is defined.
 *
 * Calling sequence:
 *   char *home = bv_home_dir();                    NULL: there is none
 *   char *p = bv_expand_home("~/refs");            "/home/u/refs"
 *   free(home); free(p);
 *
 * Ownership: every returned string is new and belongs to the caller.
 *
 * Errors: neither function can fail; bv_home_dir() returns NULL when there is no home.
 */
#ifndef BV_LIB_PATHS_INTERNAL_H
#define BV_LIB_PATHS_INTERNAL_H

#include <bv/paths.h>

/* The home directory (see bv/paths.h), new, or NULL when there is none. */
char *bv_home_dir(void);

/*
 * Replaces a leading "~" (the whole string) or "~/" with the home directory.  Anything else,
 * "~user" included, and any path when there is no home directory, comes back unchanged.  Always
 * returns a new string.
 */
char *bv_expand_home(const char *path);

#endif
