/*
 * bv/squashfs.h - the SquashFS images of image_mode "squashfs" (bv/paths.h), for `bv cache
 * verify`.  Building and mounting them, which only the native backend and its tests use, is
 * in src/lib/runtime/native/squashfs.h.
 *
 * Files, under bv's cache directory, named like the root filesystem they are made from:
 *   squashfs/<hex>-<os>-<arch>.sqfs          the image, made by mksquashfs reproducibly
 *                                            and published by rename(2) once complete
 *   squashfs/<hex>-<os>-<arch>.sqfs.record   JSON: its sha256, size, mtime (ns) and inode,
 *                                            and the image config a run needs, written
 *                                            atomically after the image is in place
 *   squashfs/<hex>-<os>-<arch>.sqfs.lease    leases of the runs using it (bv/retain.h)
 *   squashfs/<hex>-<os>-<arch>.lock          OFD lock held while one process builds it
 * An image counts as present when it has a record and its size, mtime and inode are the
 * record's: a cheap test (one stat on the shared file system) that every run makes.  The full
 * hash is taken when the image is built and by bv_squashfs_verify().
 *
 * Ownership: problems are appended to the caller's vector, which owns them.
 *
 * Errors: 0 or a negative enum bv_error_code with a message in `err`.
 */
#ifndef BV_SQUASHFS_H
#define BV_SQUASHFS_H

struct bv_error;
struct bv_strv;

/*
 * Hashes every SquashFS image of the cache at `cache_dir` against its record; one that
 * differs (or has no record) is a problem, and loses its record so the next `bv sync` builds
 * it again.
 */
int bv_squashfs_verify(struct bv_strv *problems, const char *cache_dir, struct bv_error **err);

#endif
