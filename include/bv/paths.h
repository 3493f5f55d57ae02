/*
 * bv/paths.h - where bv keeps its cache and where the current project is.  The home directory
 * itself and "~" expansion, which only the library and its tests use, are in
 * src/lib/model/paths-internal.h.
 *
 * Calling sequence:
 *   char *cache = NULL, *root = NULL;
 *   if (bv_cache_dir(&cache, &err) < 0) ...        "/home/u/.cache/bv"
 *   r = bv_project_find(&root, NULL, &err);        the directory holding bv.toml
 *   if (r == BV_ENOTFOUND) ...                     not inside a project
 *   free(cache); free(root);
 *
 * Home: $HOME, else (unset or empty, as under `env -i` or some batch systems) the home
 * directory of the password database entry of the real uid.
 *
 * Cache root: $BV_CACHE_DIR, else $XDG_CACHE_HOME/bv, else <home>/.cache/bv, the same on
 * every platform.  Empty variables count as unset, and a relative XDG_CACHE_HOME is ignored
 * as the XDG base directory specification requires.  BV_CACHE_DIR is taken as given: a
 * user setting it explicitly means it.  Trailing slashes are removed.
 *
 * Project root: the nearest directory, starting at `start_dir` and walking up to "/", that
 * contains a regular file (or a symlink to one) named bv.toml.  bv.lock plays no part: a
 * lock without a manifest is not a project.  The walk does not stop at file-system
 * boundaries or at $HOME: projects on a separate mount below a directory tree are common on
 * clusters, and a stray bv.toml in a parent is something the user can see and remove.  The
 * start directory is made absolute and canonical first (realpath(3)), so the root is an
 * absolute path without symlinks, "." or "..", and without a trailing slash (except "/").
 * Directories that cannot be searched (EACCES) are treated as not containing bv.toml.
 *
 * Project root, fallback: with no bv.toml anywhere above, the nearest directory holding a
 * bv.lock (a lock shipped alone; bv/project.h reads its tools from the lock).
 *
 * Offline: BV_OFFLINE set to anything but "", "0" or "false" (bv --offline sets it, so the
 * bv processes a command starts are offline too) means nothing may use the network: image
 * and dataset downloads, engine pulls and registry clones fail with one error saying so, and
 * registry clones are used as they are.
 *
 * Image mode (issue 17): how the native backend keeps an image's root filesystem.
 * BV_IMAGE_MODE, else bv.toml's [runtime] image_mode (the CLI copies it into the variable, so
 * the bv processes a command starts agree), else "tree":
 *   "tree"       unpacked under <cache>/rootfs, shared by every node using the cache;
 *   "local_dir"  blobs stay in the shared cache, each node unpacks an image once into
 *                node-local scratch (bv_local_dir()) and runs from there;
 *   "squashfs"   bv sync also writes one SquashFS file per image into <cache>/squashfs, and a
 *                run mounts it, so a task touches one file of the shared cache.
 * Node-local scratch: BV_LOCAL_DIR, else [runtime] local_dir, else $TMPDIR, else /local when
 * it is a directory, else /tmp; bv uses "<that>/bv-<uid>/<16 hex digits of the cache path>",
 * so two caches (or two users) on one node never share scratch trees.
 *
 * Ownership: every returned string is new and belongs to the caller.
 *
 * Errors: 0 or a negative enum bv_error_code with details in `err`; outputs are written only
 * on success.
 */
#ifndef BV_PATHS_H
#define BV_PATHS_H

#include <stdbool.h>

struct bv_error;

/* Whether bv must not use the network (BV_OFFLINE, see above). */
bool bv_offline(void);

/* "bv is offline ..." as the reason `what` cannot be done: returns BV_EINVALID. */
int bv_offline_error(struct bv_error **err, const char *what);

enum bv_image_mode {
	BV_IMAGE_TREE,
	BV_IMAGE_LOCAL_DIR,
	BV_IMAGE_SQUASHFS,
};

/* The image mode (see above); BV_EINVALID names a BV_IMAGE_MODE bv does not know. */
int bv_image_mode(enum bv_image_mode *out, struct bv_error **err);

/* The mode's name as bv.toml and BV_IMAGE_MODE spell it; -1 from the parse for others. */
const char *bv_image_mode_name(enum bv_image_mode mode);
int bv_image_mode_parse(const char *name);

/* This cache's node-local scratch directory (see above); not created here. */
int bv_local_dir(char **out, struct bv_error **err);

/* The cache root (see above); BV_ENOTFOUND when there is no home either. */
int bv_cache_dir(char **out, struct bv_error **err);

/*
 * The root of the project containing `start_dir` (NULL: the current directory); BV_ENOTFOUND
 * when no directory up to "/" contains bv.toml, BV_ERR when `start_dir` cannot be resolved.
 */
int bv_project_find(char **root_out, const char *start_dir, struct bv_error **err);

#endif
