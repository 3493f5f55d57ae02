/*
 * lock.h - advisory locks on files, to serialise bv processes sharing a tool store.
 *
 * Calling sequence:
 *   struct bv_lock lk = BV_LOCK_INIT;
 *   r = bv_lock_acquire(&lk, "/store/.bv.lock", BV_LOCK_EXCLUSIVE, false, err);
 *   if (r == BV_EEXISTS) ... another bv is installing; retry or tell the user
 *   ... modify the store ...
 *   bv_lock_release(&lk);
 *
 * Mechanism: open file description (OFD) locks, fcntl(F_OFD_SETLK/F_OFD_SETLKW) on the whole
 * file.  Unlike classic POSIX record locks they belong to the open file description, so closing
 * an unrelated descriptor of the same file elsewhere in the process does not drop them, and two
 * bv_lock objects in one process conflict just as two processes do.  Unlike flock(2) they are
 * forwarded to the server on NFS, where tool stores on clusters usually live.  The kernel drops
 * the lock when the last descriptor closes, so a crashed bv never leaves a stale lock behind.
 * The descriptor is O_CLOEXEC: children run by bv do not keep the lock alive.
 *
 * Ownership: `lk` owns the descriptor and a copy of the path until bv_lock_release().
 *
 * Waiting with a note: bv_lock_acquire_noting() waits like bv_lock_acquire(.., wait=true) but
 * tells its caller once when the wait gets long, so a command can say why it is not moving:
 *   r = bv_lock_acquire_noting(&lk, path, BV_LOCK_EXCLUSIVE, 1000, say_waiting, NULL, err);
 *
 * Errors: BV_EEXISTS when `wait` is false and another holder conflicts; BV_ERR for failures to
 * open or lock the file; BV_EINVALID when `lk` already holds a lock.
 */
#ifndef BV_UTIL_LOCK_H
#define BV_UTIL_LOCK_H

#include <stdbool.h>

struct bv_error;

enum bv_lock_mode {
	BV_LOCK_SHARED,    /* readers: any number at once */
	BV_LOCK_EXCLUSIVE, /* a writer: nobody else */
};

struct bv_lock {
	int fd;     /* -1 when not held */
	char *path; /* for messages; NULL when not held */
};

#define BV_LOCK_INIT                   \
	{                              \
		.fd = -1, .path = NULL \
	}

/*
 * Locks `path`, creating it (mode 0644) if needed.  With `wait`, blocks until the lock is
 * granted; a signal interrupting the wait does not abort it.  A shared lock on a file we may
 * not write (a read-only store) is still possible as long as the file exists.
 */
int bv_lock_acquire(struct bv_lock *lk, const char *path, enum bv_lock_mode mode, bool wait,
		    struct bv_error **err);

/*
 * Waits for the lock, as bv_lock_acquire() with `wait`; when it is still not granted after
 * `note_after_ms` milliseconds, calls `on_wait(path, payload)` once (if not NULL) and goes on
 * waiting without a limit.  Until then it polls (backing off from 1 to 32 ms), because an
 * OFD lock has no timed wait; after the note it blocks in the kernel.  An uncontended lock
 * costs what bv_lock_acquire() costs: one open(2) and one fcntl(2).
 */
int bv_lock_acquire_noting(struct bv_lock *lk, const char *path, enum bv_lock_mode mode,
			   unsigned note_after_ms, void (*on_wait)(const char *path, void *payload),
			   void *payload, struct bv_error **err);

/*
 * The bare lock call under bv_lock_acquire(), for a descriptor the caller opened itself (a run
 * lease must survive exec, so it cannot be O_CLOEXEC like bv_lock's): an OFD lock on the whole
 * of `fd`, retried on EINTR.  Returns 0 or -errno (-EAGAIN or -EACCES when `wait` is false and
 * another holder conflicts); it sets no error, so the caller words the message.
 */
int bv_lock_fd(int fd, enum bv_lock_mode mode, bool wait);

/* Drops the lock; safe to call on a lock that is not held, and more than once. */
void bv_lock_release(struct bv_lock *lk);

#endif
