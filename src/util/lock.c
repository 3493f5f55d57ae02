#include "lock.h"

#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "time.h"
#include "xalloc.h"

#include "banned.h"

static int open_lock_file(const char *path, enum bv_lock_mode mode, struct bv_error **err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0 && mode == BV_LOCK_SHARED && (errno == EACCES || errno == EROFS))
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY); /* F_RDLCK only needs reading */
	if (fd < 0)
		return bv_error_set_errno(err, "could not open lock file '%s'", path);
	return fd;
}

int bv_lock_fd(int fd, enum bv_lock_mode mode, bool wait)
{
	struct flock fl = {
		.l_type = mode == BV_LOCK_EXCLUSIVE ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* the whole file, however large it grows */
		.l_pid = 0, /* must be 0 for OFD locks */
	};
	for (;;) {
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* One attempt (or, with `wait`, a blocking wait): 0, BV_EEXISTS when held elsewhere, BV_ERR. */
static int lock_fd(int fd, const char *path, enum bv_lock_mode mode, bool wait,
		   struct bv_error **err)
{
	int r = bv_lock_fd(fd, mode, wait);
	if (r == 0)
		return 0;
	if (!wait && (r == -EAGAIN || r == -EACCES))
		return bv_error_setc(err, BV_EEXISTS, 0, "'%s' is locked by another bv process",
				     path);
	errno = -r;
	return bv_error_set_errno(err, "could not lock '%s'", path);
}

int bv_lock_acquire(struct bv_lock *lk, const char *path, enum bv_lock_mode mode, bool wait,
		    struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	int r;

	if (lk->fd >= 0)
		return bv_error_setc(err, BV_EINVALID, 0, "lock '%s' is already held", lk->path);
	fd = open_lock_file(path, mode, err);
	if (fd < 0)
		return fd;
	r = lock_fd(fd, path, mode, wait, err);
	if (r < 0)
		return r;
	lk->fd = TAKE_FD(fd);
	lk->path = bv_xstrdup(path);
	return 0;
}

int bv_lock_acquire_noting(struct bv_lock *lk, const char *path, enum bv_lock_mode mode,
			   unsigned note_after_ms, void (*on_wait)(const char *path, void *payload),
			   void *payload, struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	uint64_t deadline = bv_time_monotonic_ns() + (uint64_t)note_after_ms * 1000000u;
	long pause_ns = 1000000; /* 1 ms, doubled up to 32 ms */
	int r;

	if (lk->fd >= 0)
		return bv_error_setc(err, BV_EINVALID, 0, "lock '%s' is already held", lk->path);
	fd = open_lock_file(path, mode, err);
	if (fd < 0)
		return fd;
	for (;;) {
		r = lock_fd(fd, path, mode, false, NULL);
		if (r != BV_EEXISTS)
			break;
		if (bv_time_monotonic_ns() >= deadline) {
			if (on_wait)
				on_wait(path, payload);
			r = lock_fd(fd, path, mode, true, NULL);
			break;
		}
		struct timespec ts = {.tv_sec = 0, .tv_nsec = pause_ns};
		/* cut short by a signal, the sleep only means an earlier retry */
		(void)nanosleep(&ts, NULL);
		if (pause_ns < 32000000)
			pause_ns *= 2;
	}
	if (r < 0) /* lock_fd(.., NULL) kept errno: report it here, with the path */
		return bv_error_set_errno(err, "could not lock '%s'", path);
	lk->fd = TAKE_FD(fd);
	lk->path = bv_xstrdup(path);
	return 0;
}

void bv_lock_release(struct bv_lock *lk)
{
	/*
	 * The lock file stays.  Unlinking it here would race: another process may have opened the
	 * file just before the unlink and then lock the now nameless inode, while a third creates
	 * a fresh file under the same name and locks that one; both would believe they hold the
	 * lock.  An empty file left in the store costs nothing.
	 */
	if (lk->fd >= 0)
		close(lk->fd); /* closing the only descriptor drops the OFD lock */
	lk->fd = -1;
	free(lk->path);
	lk->path = NULL;
}
