/*
 * unpack-internal.h - turning OCI/Docker layer blobs into the read-only root filesystem of an
 * image.
 *
 * Internal to the library: only src/lib/ and its tests (unit, fuzz, bench) include it, never
 * src/cli/ or a header of include/bv/.  It includes bv/unpack.h (checking and removing trees,
 * which the CLI uses), where atomicity, seals and read-only trees are described.
 *
 * Unpacking happens in two steps, so that a layer shared by many images is on disk once:
 *
 *   1. bv_unpack_layer() extracts one layer blob into its own "layer tree": a directory that
 *      holds exactly the files of that layer.  Whiteouts are recorded, not applied: they stay
 *      the empty regular files `.wh.<name>` and `.wh..wh..opq` they were in the tar.
 *   2. bv_unpack_image() builds an image's root filesystem from its layer trees, lowest first:
 *      directories are created, symlinks copied, and every other file is HARD-LINKED from its
 *      layer tree, so two images that share a layer share its inodes.  `.wh.<name>` deletes
 *      <name> from the layers below, `.wh..wh..opq` empties its directory of what the layers
 *      below put there, and a later layer overrides an earlier one (as overlayfs does: a
 *      directory replaces a lower symlink of the same name instead of being written through it).
 *
 * Calling sequence:
 *   struct bv_strv warnings = BV_STRV_INIT;
 *   struct bv_unpack_options o = BV_UNPACK_OPTIONS_INIT;
 *   o.warnings = &warnings;
 *   char diff_id[BV_UNPACK_DIFF_ID_LEN + 1];
 *   bv_unpack_diff_id(blob, media_type, diff_id, err);      compare with rootfs.diff_ids[i]
 *   bv_unpack_layer(blob, media_type, "<store>/layers/<digest>", &o, err);
 *   bv_unpack_image(trees, n, "<store>/rootfs/<image>", &o, err);
 *   ...
 *   bv_unpack_remove_tree("<store>/rootfs/<image>", err);     never plain rm -rf (bv/unpack.h)
 *
 * Layer semantics are Docker's with its default overlay2 driver, where moby's archive.Apply
 * writes each layer into a directory of its own, chrooted there, and overlayfs stacks them:
 *   - Names are cleaned lexically (empty and "." components dropped, ".." removing the one
 *     before it).  A name starting with '/' is relative to the image root and its ".." stops
 *     at the root, so "/", "./" and "/etc/x" are fine; a relative name whose ".." climbs above
 *     the root is refused, as Docker refuses it (containerd clamps it to the root instead).
 *     The root directory's own entry is ignored: its mode is bv's.
 *   - Parent directories are resolved inside the layer being written, through the symlinks
 *     that earlier entries of the same layer made, as if the layer root were "/"
 *     (openat2 RESOLVE_IN_ROOT): `var/run -> ../run` then `var/run/app.pid` writes
 *     run/app.pid, and an absolute target such as `/usr/bin` means the image's /usr/bin.
 *     Missing directories are created below what the existing part resolved to.  A parent
 *     that is a file, a symlink to nothing, or a symlink loop fails the layer.  On kernels
 *     without openat2 (before 5.6) a symlink in a parent is refused instead.
 *   - A symlink made by a LOWER layer is never followed: each layer tree is built alone, and
 *     in the image a later layer's directory replaces a lower symlink of the same name, as
 *     overlayfs shows it (containerd, applying onto the merged view, writes through it).
 *   - Whiteouts (`.wh.<name>`) and opaque directories (`.wh..wh..opq`) act on lower layers.
 *   - A hard link names an earlier entry of the same layer, cleaned and resolved like a name;
 *     the target itself is never followed, so a link to a symlink links the symlink.  The
 *     link's mode (and owner, when not rootless) is then applied to the shared inode, as
 *     Docker does.  A link to a directory or to nothing fails the layer.
 *   - A layer may end without the zero padding and the two end-of-archive blocks after its
 *     last complete entry, as Go's archive/tar allows (Debian 12's umoci writes such layers);
 *     an entry whose header or data is cut short still fails the layer.
 *   - GNU and pax long names, links and sparse files are read by libarchive.
 *   - Extended attributes: security.capability is kept unless rootless; everything else (and
 *     security.capability in rootless mode) is dropped, with one counted warning per layer.
 *     Docker keeps what the file system accepts.
 *
 * Security: layer blobs come from registries and are hostile until proven otherwise.  No
 * entry can create or change anything outside the tree being built: names are cleaned as
 * above, symlinks are resolved only inside the tree and never followed by the final
 * component, existing files are unlinked and re-created (O_EXCL|O_NOFOLLOW), never written
 * through.  An entry that fails any rule fails the whole layer, and the message names the
 * layer and the entry: "layer sha256:...: entry '../../etc/passwd' escapes the image root".
 * In rootless mode (the default) device nodes, fifos and sockets are dropped (one counted
 * warning per layer), setuid/setgid/sticky bits are cleared and ownership is not applied;
 * otherwise ownership is applied and modes keep their 07777 bits.  Limits on the number of
 * entries, the total size of the files and the depth of paths resist tar bombs; data is
 * streamed, so memory does not grow with the layer size.
 *
 * Ownership: the caller owns every argument; `opts->warnings`, when not NULL, receives one
 * string per warning (appended, owned by the vector).
 *
 * Errors: 0 on success, otherwise a negative enum bv_error_code with a message in *err.
 * BV_EINVALID for a layer that is malformed, malicious, over a limit or of an unsupported
 * media type; BV_ENOTFOUND for a missing blob or layer tree; BV_ERR for system failures.
 * On failure nothing remains of the temporary tree.
 */
#ifndef BV_LIB_UNPACK_INTERNAL_H
#define BV_LIB_UNPACK_INTERNAL_H

#include <bv/unpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_error;
struct bv_strv;

#define BV_UNPACK_DEFAULT_MAX_ENTRIES 1000000ULL
#define BV_UNPACK_DEFAULT_MAX_BYTES   (64ULL << 30)
/* Entries nested deeper than this are rejected; walking a tree holds a descriptor per level. */
#define BV_UNPACK_MAX_DEPTH 128
/* "sha256:" and 64 hex digits. */
#define BV_UNPACK_DIFF_ID_LEN 71

struct bv_unpack_options {
	bool rootless;            /* drop special files, clear setuid/setgid/sticky, keep our uid */
	uint64_t max_entries;     /* entries per layer, 0 = BV_UNPACK_DEFAULT_MAX_ENTRIES */
	uint64_t max_bytes;       /* sum of file sizes per layer, 0 = BV_UNPACK_DEFAULT_MAX_BYTES */
	struct bv_strv *warnings; /* NULL: warnings are not reported */
	const char *mount_point;  /* bv_unpack_image: an empty directory made at the top */
};

/* Use this rather than zero-initialising: a zeroed struct would not be rootless. */
#define BV_UNPACK_OPTIONS_INIT                                                                  \
	{                                                                                       \
		.rootless = true, .max_entries = BV_UNPACK_DEFAULT_MAX_ENTRIES,                 \
		.max_bytes = BV_UNPACK_DEFAULT_MAX_BYTES, .warnings = NULL, .mount_point = NULL \
	}

/*
 * Extracts the layer blob at `layer_path` into the new layer tree `dest_dir` (see above).
 * `media_type` is the descriptor's: the OCI layer types (tar, tar+gzip, tar+zstd, also
 * "nondistributable"), Docker's rootfs.diff.tar.gzip, or a generic one (NULL, "",
 * "application/octet-stream").  The compression is always taken from the blob's magic bytes,
 * because registries serve "gzip" layers that are plain tars; an unknown media type or
 * compression (bzip2, xz) is BV_EINVALID.  Messages name the layer by its digest when the
 * blob is stored as ".../sha256/<hex>" or "sha256:<hex>", and by its path otherwise.
 * `opts` may be NULL for the defaults.
 */
int bv_unpack_layer(const char *layer_path, const char *media_type, const char *dest_dir,
		    const struct bv_unpack_options *opts, struct bv_error **err);

/*
 * bv_unpack_layer() for a blob that is still being written (src/lib/oci/store/stream.h runs
 * it in a child process while the blob downloads): the bytes are read with pread() from
 * `fd`, up to `size`; where the file ends before that, wait() blocks until more may have
 * been written (< 0: stop, with the reason in err).  check(), when not NULL, is called
 * before each read and may stop the unpack the same way.  After the last entry, verdict()
 * says whether the blob's digest matched: only then (0) is the tree published; otherwise it
 * is discarded.  Every rule of bv_unpack_layer() applies; `label` names the layer in
 * messages.
 */
struct bv_unpack_source {
	int fd;
	uint64_t size;
	int (*wait)(void *payload, uint64_t have, struct bv_error **err);
	int (*check)(void *payload, struct bv_error **err);
	int (*verdict)(void *payload, struct bv_error **err);
	void *payload;
};

int bv_unpack_layer_from(const struct bv_unpack_source *src, const char *label,
			 const char *media_type, const char *dest_dir,
			 const struct bv_unpack_options *opts, struct bv_error **err);

/*
 * Builds the root filesystem `rootfs_dir` from `n` layer trees made by bv_unpack_layer(),
 * `layer_trees[0]` being the lowest layer.  Only `opts->rootless` matters here: without it,
 * directory and symlink ownership is copied from the layer trees.
 */
int bv_unpack_image(const char *const *layer_trees, size_t n, const char *rootfs_dir,
		    const struct bv_unpack_options *opts, struct bv_error **err);

/*
 * Writes "sha256:<hex>" of the uncompressed tar stream (the layer's "diff_id") into `out`,
 * decompressing on the fly whatever the magic bytes say.  `media_type` is checked as for
 * bv_unpack_layer().
 */
int bv_unpack_diff_id(const char *layer_path, const char *media_type,
		      char out[BV_UNPACK_DIFF_ID_LEN + 1], struct bv_error **err);

/* Whether `tree` has a seal; only a sealed tree is complete and trusted. */
bool bv_unpack_is_sealed(const char *tree);

/*
 * Reference data (src/lib/data/): the archive at `archive_path` (tar, uncompressed or gzip,
 * bzip2, xz or zstd, or zip) extracted into the directory open at `dest_fd`, with the rules
 * above for names and parents (cleaned, resolved inside `dest_fd`, never written through),
 * rootless, and stricter ones, because a dataset is read on the host as well: a symlink must
 * resolve inside the tree (no absolute target, no ".." above it); a device, fifo or socket
 * fails the archive; ".wh." names are ordinary files.  No staging and no seal: the caller
 * publishes the directory.  Messages read "archive <label>: entry '../x' escapes the image
 * root".  `opts` may be NULL; its limits apply.
 */
int bv_unpack_archive(int dest_fd, const char *archive_path, const char *label,
		      const struct bv_unpack_options *opts, struct bv_error **err);

/*
 * The single compressed file at `path` (gzip, also several members as bgzip writes them,
 * bzip2, xz or zstd; an uncompressed file is copied) decompressed into `out_fd` with large
 * writes, hashed into `h` (may be NULL) as it goes; its size in *size_out.  More than
 * `max_bytes` (0: BV_UNPACK_DEFAULT_MAX_BYTES) is BV_EINVALID.
 */
struct bv_sha256;
int bv_unpack_decompress(uint64_t *size_out, int out_fd, const char *path, const char *label,
			 uint64_t max_bytes, struct bv_sha256 *h, struct bv_error **err);

/* Takes the write bits off every directory below and at `dir_fd` (files are read-only). */
int bv_unpack_read_only(int dir_fd, const char *label, struct bv_error **err);

#endif
