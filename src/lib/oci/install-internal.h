/*
 * install-internal.h - where install puts an image on this machine: the path of its root
 * filesystem and of the image config saved beside it, for the backends that run from them.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/install.h (resolve, pull and unpack, what the CLI calls).
 *
 * Calling sequence (the native backend):
 *   char *rootfs = NULL;
 *   if (bv_install_rootfs_path(&rootfs, lock_tool->image_digest, &err) < 0) ...
 *   char *config = bv_install_config_path(rootfs);     "<rootfs>.json"
 *
 * Many images in one process (is_available over a lock), the same paths without looking up
 * the mode, the root and the platform again for each:
 *   struct bv_install_rootfs_namer n;
 *   if (bv_install_rootfs_namer_init(&n, &err) < 0) ...
 *   for each image: if (bv_install_rootfs_namer_path(&n, digest, &err) < 0) ...   n.path
 *   bv_install_rootfs_namer_release(&n);
 *
 * Ownership: returned strings are new and the caller frees them; a namer owns its path.
 *
 * Errors: 0 or a negative enum bv_error_code with details in `err`; outputs are written only
 * on success.
 */
#ifndef BV_LIB_INSTALL_INTERNAL_H
#define BV_LIB_INSTALL_INTERNAL_H

#include <bv/install.h>

struct bv_error;

/*
 * Where the root filesystem of an image pinned at `top_digest` lives on this machine: in the
 * cache, or in the node-local directory when the image mode is local_dir (bv/paths.h).
 */
int bv_install_rootfs_path(char **out, const char *top_digest, struct bv_error **err);

/*
 * The same path as bv_install_rootfs_path() for image after image, in one buffer.  `path` is
 * "<dir>/<name>", NUL-terminated, dir_len bytes of directory and name_len of name, with room
 * for ".seal" and a NUL after the name; each bv_install_rootfs_namer_path() call writes the
 * name of its digest there (an invalid digest is BV_EINVALID as from bv_install_rootfs_path(),
 * and leaves in `path` a name of no particular digest).  init reads the environment (the image
 * mode, the cache or node-local directory) once: a namer answers for the settings of its time.
 */
struct bv_install_rootfs_namer {
	char *path;
	size_t dir_len;  /* "<root>/rootfs" */
	size_t name_len; /* "<hex>-<platform>" */
};

int bv_install_rootfs_namer_init(struct bv_install_rootfs_namer *n, struct bv_error **err);
int bv_install_rootfs_namer_path(struct bv_install_rootfs_namer *n, const char *top_digest,
				 struct bv_error **err);
void bv_install_rootfs_namer_release(struct bv_install_rootfs_namer *n);

/* The one in the cache, whatever the mode (local_dir falls back to it when the node is full). */
int bv_install_shared_rootfs_path(char **out, const char *top_digest, struct bv_error **err);

/* The directory of the cache's root filesystems and their seals: the parent of those paths. */
int bv_install_shared_rootfs_dir(char **out, struct bv_error **err);

/*
 * local_dir mode, for a run: the node-local root filesystem of `image` (its tool_id,
 * reference and pinned digest are read) in *rootfs_out, unpacked from the store first when
 * this node has none, under the node's lock.  A sealed tree is checked against its seal
 * cheaply (names, types, modes, sizes; no contents) and one that differs is unpacked again,
 * with a warning.  No registry is opened: an image whose blobs are not in the store is
 * BV_ENOTFOUND.  A full node-local disk yields the shared tree (see bv_install()).
 */
int bv_install_local_tree(char **rootfs_out, const struct bv_install_item *image,
			  struct bv_error **err);

/* Whether the store holds everything to unpack the image pinned at `top_digest`. */
bool bv_install_in_store(const char *top_digest);

/*
 * The image's config blob (OCI/Docker JSON) saved beside its rootfs: "<rootfs>.json".  It is
 * written before the rootfs is renamed into place; images unpacked by older versions of bv
 * have none, and a run then uses defaults.
 */
char *bv_install_config_path(const char *rootfs);

#endif
