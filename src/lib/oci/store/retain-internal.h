/*
 * retain-internal.h - the lease a run holds on the root filesystem it runs from.
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/retain.h (project registration and the claims of `bv cache
 * prune`, which the CLI uses), where leases and claims are described.
 *
 * Calling sequence (the native backend):
 *   int fd; bv_retain_lease(&fd, rootfs, &err); ... run ... close(fd) (or exec)
 *
 * Ownership: strings are borrowed; the lease descriptor belongs to the caller.
 *
 * Errors: 0 on success, BV_ERR with a message for system failures.
 */
#ifndef BV_LIB_RETAIN_INTERNAL_H
#define BV_LIB_RETAIN_INTERNAL_H

#include <bv/retain.h>

struct bv_error;

/* A shared lease on the tree `rootfs` (waits while prune holds it); *fd_out is not CLOEXEC. */
int bv_retain_lease(int *fd_out, const char *rootfs, struct bv_error **err);

#endif
