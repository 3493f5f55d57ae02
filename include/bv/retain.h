/*
 * bv/retain.h - what keeps an image in a shared cache: the projects that pin it, and the runs
 * that are using it right now.  `bv cache prune` asks this module before it removes anything.
 * The lease a run takes, which only the library (the native backend) and its tests use, is in
 * src/lib/oci/store/retain-internal.h.
 *
 * Projects: every command that writes a project's bv.lock or .bv/bin (add, remove, lock,
 * update, sync, an exec that relocks) registers the project root in the cache, as the file
 * "<cache>/projects/<64-bit FNV-1a of the root, in hex>" holding the root's path.  Prune keeps
 * every image that a registered project's bv.lock pins; an entry whose bv.toml is gone is dropped,
 * so a deleted project stops pinning its images.  A project on a disk that is not mounted right now
 * still has its bv.toml missing, and loses its pins: a careful user runs prune with the disk
 * mounted, and `--dry-run` shows what would go.
 *
 * Leases: a run holds a shared OFD lock on "<rootfs>.lease" for as long as it runs.  On the
 * exec path the descriptor is deliberately NOT close-on-exec: the tool process itself keeps
 * the lease, and the kernel drops it when the last process of the run exits (also on a
 * crash).  Prune takes the lease exclusively without waiting before it removes a root
 * filesystem, and keeps a tree it cannot claim.  A run that opened the lease file just before
 * prune unlinked it notices (the path no longer names its inode) and takes the new one.
 *
 * Calling sequence:
 *   bv_retain_register_project(cache, root, &err);                add, sync, lock, ...
 *   bv_retain_projects(cache, &roots, &err);                      prune: who pins what
 *   r = bv_retain_claim(&fd, rootfs, &err);  1: claimed, remove the tree, then
 *       bv_retain_unclaim(rootfs, fd);    0: in use, keep it
 *
 * Ownership: strings are borrowed; `roots` receives new strings; claim descriptors
 * belong to the caller.
 *
 * Errors: 0 (or 1, see above) on success, BV_ERR with a message for system failures.  A
 * registry entry that cannot be read is skipped, never fatal.
 */
#ifndef BV_RETAIN_H
#define BV_RETAIN_H

struct bv_error;
struct bv_strv;

int bv_retain_register_project(const char *cache_dir, const char *project_root,
			       struct bv_error **err);

/* The file that registers `project_root` in the cache (a new string, the caller's). */
char *bv_retain_project_entry(const char *cache_dir, const char *project_root);

/* The registered project roots that still have a bv.toml, sorted; dead entries removed. */
int bv_retain_projects(const char *cache_dir, struct bv_strv *roots, struct bv_error **err);

/* An exclusive claim without waiting: 1 and *fd_out when nobody uses the tree, 0 when busy. */
int bv_retain_claim(int *fd_out, const char *rootfs, struct bv_error **err);

/* After the tree is gone: removes its lease file and drops the claim. */
void bv_retain_unclaim(const char *rootfs, int fd);

#endif
