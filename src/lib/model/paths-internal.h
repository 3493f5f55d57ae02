/*
 * paths-internal.h - the home directory, "~" in paths read from bv.toml and config files, and
 * where the caller's directory lies in a container that mounts the project.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/paths.h (the cache root and the project root, which the CLI
 * uses), where "home" is defined.
 *
 * Calling sequence:
 *   char *home = bv_home_dir();                    NULL: there is none
 *   char *p = bv_expand_home("~/refs");            "/home/u/refs"
 *   char *w = bv_project_container_dir(root, cwd, "/workspace");   NULL: outside
 *   free(home); free(p); free(w);
 *
 * Ownership: every returned string is new and belongs to the caller.
 *
 * Errors: none can fail; bv_home_dir() returns NULL when there is no home.
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

/*
 * The directory inside a container that mounts the project `root` at `mount` ("/workspace")
 * matching the host directory `cwd`: "/workspace/sub/dir" for <root>/sub/dir, `mount` itself
 * for the root, NULL when `cwd` is not inside the project.  Both paths are absolute and
 * canonical (getcwd(3), bv_project_find()), so a plain prefix comparison on whole components
 * decides.  bv run and bv session exec both follow the caller with it.
 */
char *bv_project_container_dir(const char *root, const char *cwd, const char *mount);

#endif
