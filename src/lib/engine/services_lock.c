/*
 * services_lock.c - the services lock (bv/services.h): one OFD lock on <root>/.bv/services.lock
 * held by `bv up`, `bv down` and `bv restart` of a project while they change its containers
 * and network.
 *
 * Why a lock: six `bv up` of one project run at once each saw no network and each created
 * one; dockerd's duplicate-name check is not atomic, so three networks of the same name were
 * left, and every later `bv up` and `bv down` failed as "ambiguous".  Each of up, down and
 * restart reads the engine's state and then changes it, so only a lock held across the whole
 * command serialises them.
 *
 * Why not the project lock (.bv/lock): that one guards bv.toml, bv.lock and .bv/bin, and is
 * held only for the moments they are written.  `bv up` holds its lock for as long as builds
 * take and services need to become healthy (minutes); under the project lock, `bv add`,
 * `bv lock` and the automatic sync of `bv exec` would wait for all of that, although services
 * never write those files.
 */
#include <bv/error.h>
#include <bv/services.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/xalloc.h"

#include "util/banned.h"

struct bv_services_lock {
	struct bv_lock lk;
};

int bv_services_lock(struct bv_services_lock **out, const char *root,
		     void (*on_wait)(const char *lock_path, void *payload), void *payload,
		     struct bv_error **err)
{
	_cleanup_free_ char *dot = bv_path_join(root, ".bv");
	_cleanup_free_ char *path = bv_path_join(dot, "services.lock");
	struct bv_lock lk = BV_LOCK_INIT;
	struct bv_services_lock *l;
	int r;
	/* mkdir(2) alone, as for the project lock: the root exists, bv.toml is in it */
	if (mkdir(dot, 0755) < 0 && errno != EEXIST)
		return bv_error_set_errno(err, "could not create '%s' for the services lock", dot);
	r = bv_lock_acquire_noting(&lk, path, BV_LOCK_EXCLUSIVE, 1000, on_wait, payload, err);
	if (r < 0)
		return r;
	l = bv_xcalloc(1, sizeof(*l));
	l->lk = lk;
	*out = l;
	return 0;
}

struct bv_services_lock *bv_services_unlock(struct bv_services_lock *l)
{
	if (l) {
		bv_lock_release(&l->lk);
		free(l);
	}
	return NULL;
}
