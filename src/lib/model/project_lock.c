/*
 * The project lock (bv/project.h): one OFD lock on <root>/.bv/lock around every
 * read-modify-write of bv.toml, bv.lock and .bv/bin.
 *
 * Why a lock and not just atomic files: each file is already replaced by rename(2), so
 * nobody sees half a file, but two `bv add` running at once both read the same bv.toml, each
 * adds its tool, and the second rename wins: the first tool is lost although its command said
 * "Added".  Only a lock held from before the read until after the last write serialises them.
 */
#include <bv/error.h>
#include <bv/project.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/log.h"
#include "util/xalloc.h"

#include "util/banned.h"

struct bv_project_lock {
	struct bv_lock lk;
};

char *bv_project_lock_path(const char *root)
{
	return bv_xasprintf("%s/.bv/lock", root);
}

/* A lock file some other program made world writable would let anyone hold the project
 * hostage; put it back to 0644 when it is ours (someone else's file we leave alone). */
static void not_world_writable(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IWOTH) && st.st_uid == geteuid())
		(void)fchmod(fd, 0644);
}

int bv_project_lock(struct bv_project_lock **out, const char *root,
		    const struct bv_project_lock_options *o, struct bv_error **err)
{
	static const struct bv_project_lock_options defaults = {0};
	_cleanup_free_ char *dot = bv_path_join(root, ".bv");
	_cleanup_free_ char *path = bv_project_lock_path(root);
	struct bv_lock lk = BV_LOCK_INIT;
	struct bv_project_lock *pl;
	int r;

	if (!o)
		o = &defaults;
	/* mkdir(2) alone: the root exists (bv.toml is in it), and mkdir -p would only hide a
	 * vanished project behind a recreated directory. */
	if (mkdir(dot, 0755) < 0 && errno != EEXIST)
		return bv_error_set_errno(err, "could not create '%s' for the project lock", dot);
	if (o->no_wait) {
		r = bv_lock_acquire(&lk, path, BV_LOCK_EXCLUSIVE, false, err);
		if (r == BV_EEXISTS)
			return bv_error_wrap(
				err, r, "another bv process is changing the project in '%s'", root);
	} else {
		r = bv_lock_acquire_noting(&lk, path, BV_LOCK_EXCLUSIVE,
					   o->note_after_ms ? o->note_after_ms : 1000, o->on_wait,
					   o->payload, err);
	}
	if (r < 0)
		return r;
	bv_logf(BV_LOG_DEBUG, "project lock: holding %s", path);
	not_world_writable(lk.fd);
	pl = bv_xcalloc(1, sizeof(*pl));
	pl->lk = lk;
	*out = pl;
	return 0;
}

struct bv_project_lock *bv_project_unlock(struct bv_project_lock *pl)
{
	if (pl) {
		bv_lock_release(&pl->lk);
		free(pl);
	}
	return NULL;
}
