/*
 * bv/unpack.h - the trees that hold unpacked images: checking them against their seals and
 * removing them, for `bv cache verify` and `bv cache prune`.  Unpacking itself (layer blobs
 * into layer trees, layer trees into an image's root filesystem, Docker's layer semantics and
 * the rules that keep a hostile layer inside its tree), which only the library and its tests
 * call, is in src/lib/oci/store/unpack-internal.h.
 *
 * Trees: each layer blob is extracted once into its own "layer tree" (<cache>/layers/<hex>),
 * and each image's root filesystem (<cache>/rootfs/<image>) is built from hard links into the
 * layer trees, so two images that share a layer share its inodes.
 *
 * Calling sequence:
 *   char *problem = NULL;
 *   r = bv_unpack_verify(&problem, "<cache>/rootfs/<image>", fast, true, err);
 *           1: intact; 0: damaged or unsealed, `problem` says where (and the seal is gone)
 *   bv_unpack_remove_tree("<cache>/rootfs/<image>", err);     never plain rm -rf (see below)
 *
 * Atomicity: both unpacking steps build into "<dest>.tmp-<pid>" next to <dest> and rename it into
 * place only when complete (after syncfs(2)), with RENAME_NOREPLACE.  A crash therefore never
 * leaves a partial tree under the final name.  Just before the rename the tree is sealed:
 * "<dest>.seal" lists every entry with its type, mode, size and content digest (layer trees
 * hash their files; a root filesystem takes the digests from its layers' seals, since its
 * files are their hard links).  An existing <dest> directory WITH a seal means the work was
 * done: the call returns 0 without looking at it; one without a seal (an older bv, or marked
 * damaged by bv_unpack_verify) is removed and built again.  Leftover "<dest>.tmp-<pid>" directories
 * of processes that no longer exist are removed by the next call for the same <dest>.  Two
 * processes racing for the same <dest> both succeed; the loser discards its copy.  The parent
 * of <dest> is created when missing.
 *
 * Read-only trees: every file loses its write bits, every directory ends up with its mode
 * minus the write bits (plus u+rx, so bv can always walk it; normally 0555).  Files must be
 * read-only in layer trees too, because the root filesystems hard-link them: a write through
 * any image would change every image sharing the layer.  Consequently a tree cannot be removed
 * by unlinking alone; bv_unpack_remove_tree() makes each directory writable (u+rwx) before
 * emptying it, and never follows symlinks.  Other code that deletes these trees must do the
 * same.  Layer trees and root filesystems should live on one file system: when hard-linking
 * fails with EXDEV or EMLINK (too many links to one inode) the file is copied instead.
 *
 * Ownership: the caller owns every argument; *problem is a new string the caller frees.
 *
 * Errors: 0 (or 1, see bv_unpack_verify()) on success, otherwise a negative enum
 * bv_error_code with a message in *err; BV_ERR for system failures.
 */
#ifndef BV_UNPACK_H
#define BV_UNPACK_H

#include <stdbool.h>

struct bv_error;

/*
 * Compares `tree` with the seal written when it was built (names, types, modes, sizes, link
 * targets and, unless `fast`, file contents): 1 when intact, 0 when damaged or unsealed with
 * *problem saying where (the caller frees it), < 0 when it cannot be read.  With
 * `unseal_damaged` the seal of a damaged tree is removed, so the next install rebuilds it.
 */
int bv_unpack_verify(char **problem, const char *tree, bool fast, bool unseal_damaged,
		     struct bv_error **err);

/*
 * Removes the tree at `dir` (a layer tree, a root filesystem or a leftover temporary tree),
 * making each directory writable before emptying it.  Symlinks are removed, never followed,
 * and directories are opened relative to their parent with O_NOFOLLOW.  A missing `dir` is
 * success; a symlink at `dir` is removed itself.
 */
int bv_unpack_remove_tree(const char *dir, struct bv_error **err);

#endif
