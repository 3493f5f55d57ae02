/*
 * docker_owned.c - the record of the images bv pulled into a Docker engine, and the prune
 * that removes those no project pins (see bv/docker.h).  The record is
 * <cache>/owned-images.txt, one "reference<TAB>digest" line per image as upstream bv writes
 * it; every change happens under an exclusive lock on <cache>/owned-images.lock, so
 * concurrent pulls of several projects never lose or duplicate a line.
 */
#include <bv/docker.h>
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lib/engine/engine-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define RECORD_MAX      (16u << 20)
#define PING_TIMEOUT_MS 2000L

static int lock_record(struct bv_lock *lk, const char *cache_dir, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(cache_dir, "owned-images.lock");
	int r = bv_mkdir_p(cache_dir, 0755, err);
	if (r < 0)
		return r;
	return bv_lock_acquire(lk, path, BV_LOCK_EXCLUSIVE, true, err);
}

/* The record's lines, each "reference\tdigest"; a missing record is empty. */
static int read_lines(struct bv_strv *lines, const char *cache_dir, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(cache_dir, "owned-images.txt");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	char *save = NULL;
	int r = bv_buf_read_file(&text, path, RECORD_MAX, err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(*err);
		*err = NULL;
		return 0;
	}
	if (r < 0)
		return r;
	bv_buf_putc(&text, '\0');
	for (char *l = strtok_r(text.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strchr(l, '\t') && !bv_strv_contains(lines, l))
			bv_strv_push(lines, l);
	return 0;
}

int bv_docker_owned_record(const char *cache_dir, const char *reference, const char *digest,
			   struct bv_error **err)
{
	struct bv_lock lk = BV_LOCK_INIT;
	_cleanup_strv_ struct bv_strv lines = BV_STRV_INIT;
	_cleanup_free_ char *line = NULL, *path = NULL;
	int fd, r;
	if (strpbrk(reference, "\t\n") || strpbrk(digest, "\t\n"))
		return bv_error_setc(err, BV_EINVALID, 0, "cannot record image '%s'", reference);
	if ((r = lock_record(&lk, cache_dir, err)) < 0)
		return r;
	line = bv_xasprintf("%s\t%s", reference, digest);
	r = read_lines(&lines, cache_dir, err);
	if (r < 0 || bv_strv_contains(&lines, line))
		goto out;
	path = bv_path_join(cache_dir, "owned-images.txt");
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = bv_error_setc(err, BV_ERR, errno, "could not open '%s'", path);
		goto out;
	}
	if (bv_write_all(fd, line, strlen(line)) < 0 || bv_write_all(fd, "\n", 1) < 0)
		r = bv_error_setc(err, BV_ERR, errno, "could not write '%s'", path);
	close(fd);
out:
	bv_lock_release(&lk);
	return r < 0 ? r : 0;
}

static bool digest_kept(const char *digest, const char *const *keep, size_t n_keep)
{
	for (size_t i = 0; i < n_keep; i++)
		if (strcmp(keep[i], digest) == 0)
			return true;
	return false;
}

/* Rewrites the record without `gone` (lines), under the lock held by the caller. */
static int drop_lines(const char *cache_dir, const struct bv_strv *gone, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv lines = BV_STRV_INIT;
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_free_ char *path = bv_path_join(cache_dir, "owned-images.txt");
	int r = read_lines(&lines, cache_dir, err);
	if (r < 0)
		return r;
	bv_strv_foreach (l, &lines)
		if (!bv_strv_contains(gone, *l))
			bv_buf_printf(&text, "%s\n", *l);
	return bv_write_file_atomic(path, text.len ? text.buf : "", text.len, 0644, err);
}

int bv_docker_owned_prune(struct bv_strv *removed, struct bv_strv *kept, const char *cache_dir,
			  const char *const *keep_digests, size_t n_keep, bool dry_run,
			  struct bv_error **err)
{
	struct bv_lock lk = BV_LOCK_INIT;
	_cleanup_strv_ struct bv_strv lines = BV_STRV_INIT, gone = BV_STRV_INIT;
	struct bv_engine *e = NULL;
	size_t candidates = 0;
	int r;
	if ((r = lock_record(&lk, cache_dir, err)) < 0)
		return r;
	if ((r = read_lines(&lines, cache_dir, err)) < 0)
		goto out;
	bv_strv_foreach (l, &lines)
		if (!digest_kept(strchr(*l, '\t') + 1, keep_digests, n_keep))
			candidates++;
	/* nothing to remove: no engine is asked, so prune stays fast without Docker */
	if (!candidates)
		goto out;
	if (bv_engine_ping(NULL, PING_TIMEOUT_MS, NULL) < 0 || bv_engine_open(&e, NULL, NULL) < 0) {
		r = 1;
		goto out;
	}
	bv_strv_foreach (l, &lines) {
		_cleanup_free_ char *reference = bv_xstrndup(*l, (size_t)(strchr(*l, '\t') - *l));
		struct bv_error *e2 = NULL;
		if (digest_kept(strchr(*l, '\t') + 1, keep_digests, n_keep))
			continue;
		if (dry_run) {
			bv_strv_push(removed, reference);
			continue;
		}
		/* by the name bv pulled it as: a name someone else gave the image stays, and so
		 * does the image under it; an image a container uses is refused by the engine */
		if (bv_engine_image_remove(e, reference, false, &e2) < 0) {
			_cleanup_free_ char *msg = bv_error_format(e2);
			bv_error_free(e2);
			bv_strv_pushf(kept, "%s (%s)", reference, msg);
			continue;
		}
		bv_strv_push(removed, reference);
		bv_strv_push(&gone, *l);
	}
	if (gone.n)
		r = drop_lines(cache_dir, &gone, err);
out:
	bv_engine_free(e);
	bv_lock_release(&lk);
	return r;
}
