#include "lock.h"

#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "xalloc.h"

#include "banned.h"

int bv_lock_acquire(struct bv_lock *lk, const char *path, enum bv_lock_mode mode, bool wait,
		    struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	struct flock fl = {
		.l_type = mode == BV_LOCK_EXCLUSIVE ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* the whole file, however large it grows */
		.l_pid = 0, /* must be 0 for OFD locks */
	};

	if (lk->fd >= 0)
		return bv_error_setc(err, BV_EINVALID, 0, "lock '%s' is already held", lk->path);

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0 && mode == BV_LOCK_SHARED && (errno == EACCES || errno == EROFS))
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY); /* F_RDLCK only needs reading */
	if (fd < 0)
		return bv_error_set_errno(err, "could not open lock file '%s'", path);

	for (;;) {
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (!wait && (errno == EAGAIN || errno == EACCES))
			return bv_error_setc(err, BV_EEXISTS, 0,
					     "'%s' is locked by another bv process", path);
		return bv_error_set_errno(err, "could not lock '%s'", path);
	}

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
