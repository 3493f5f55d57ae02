/*
 * squashfs.h - image_mode "squashfs": one SquashFS file per image in the shared cache, built
 * by `bv sync` from the image's root filesystem, and mounted by a run inside a private mount
 * namespace, so that a task opens one file of the shared file system instead of walking
 * thousands.  Where the files are and what their record holds: bv/squashfs.h.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.
 *
 * Calling sequence:
 *   char *image = NULL, *record = NULL;
 *   bv_squashfs_paths(&image, &record, "sha256:...", err);
 *   bv_squashfs_build(rootfs, image, record, err);         bv sync, once per image
 *   bv_squashfs_present(image, record)                     the cheap stamp test
 *   int fd; json_t *config;
 *   bv_squashfs_open(&fd, &config, image, record, err);    a run: stamp checked, fd kept
 *   bv_squashfs_mount(fd, mountpoint, err);                then run from `mountpoint`
 *
 * Building: mksquashfs (squashfs-tools) into "<image>.tmp-<pid>" with fixed options, so that
 * two builds of one tree are byte-identical: -noappend -no-progress -quiet -no-xattrs
 * -all-root -mkfs-time 0 -all-time 0 -b 131072 -comp gzip (gzip: every kernel and squashfuse
 * read it).  mksquashfs sorts directories and, since 4.4, writes the same bytes whatever the
 * number of processors it uses.  The file is hashed, synced and renamed
 * into place under an OFD lock, then its record is written.  Files belong to root in the
 * image (-all-root): tree mode shows the unpacking user instead, and nothing else differs.
 *
 * Mounting, in the calling process, which must be single-threaded and stays in the new
 * namespaces (a run forks or execs from there):
 *   - as root: a new mount namespace, a read-only loop device bound to `fd` (autoclear) and
 *     the kernel's squashfs; when that fails (no loop devices in a container), as below;
 *   - otherwise: new user and mount namespaces (the caller's uid and gid mapped to
 *     themselves), /dev/fuse opened and mounted as "fuse" at `mountpoint`, and squashfuse
 *     started on that descriptor ("/dev/fd/N"), in the foreground, killed when the process
 *     that started it exits (PR_SET_PDEATHSIG).  This needs unprivileged user namespaces and
 *     read-write access to /dev/fuse (Debian's default mode is 0666).
 * `mountpoint` is an empty directory on node-local storage (the caller makes it; it is shared
 * by every run on the node, each mounting in its own namespace).
 *
 * Ownership: strings are the caller's; *config is a new reference the caller releases.
 *
 * Errors: 0 or a negative enum bv_error_code with a message in `err`.  An image that fails
 * the stamp test is BV_EINVALID with a message that says to run `bv sync`.
 */
#ifndef BV_LIB_SQUASHFS_H
#define BV_LIB_SQUASHFS_H

#include <bv/squashfs.h>
#include <jansson.h>
#include <stdbool.h>

struct bv_error;

int bv_squashfs_paths(char **image_out, char **record_out, const char *top_digest,
		      struct bv_error **err);
bool bv_squashfs_present(const char *image, const char *record);
int bv_squashfs_build(const char *rootfs, const char *image, const char *record,
		      struct bv_error **err);
int bv_squashfs_open(int *fd_out, json_t **config_out, const char *image, const char *record,
		     struct bv_error **err);
int bv_squashfs_mount(int fd, const char *mountpoint, struct bv_error **err);

#endif
