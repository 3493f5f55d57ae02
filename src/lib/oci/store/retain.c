/*
 * retain.c - the project registry and run leases that protect a shared cache from prune
 * (see include/bv/retain.h).
 */
#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/store/retain-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define PROJECTS_DIR "projects"
#define LEASE_SUFFIX ".lease"

/* "<cache>/projects/<FNV-1a of the root>": the content is checked, so a cheap name will do */
char *bv_retain_project_entry(const char *cache_dir, const char *project_root)
{
	return bv_xasprintf("%s/" PROJECTS_DIR "/%016" PRIx64, cache_dir,
			    bv_fnv1a64(project_root, strlen(project_root)));
}

int bv_retain_register_project(const char *cache_dir, const char *project_root,
			       struct bv_error **err)
{
	_cleanup_free_ char *path = bv_retain_project_entry(cache_dir, project_root);
	_cleanup_free_ char *dir = bv_path_join(cache_dir, PROJECTS_DIR);
	_cleanup_buf_ struct bv_buf old = BV_BUF_INIT;
	int r;

	/* the common case, already registered, writes nothing */
	if (bv_buf_read_file(&old, path, 1 << 16, NULL) == 0 && old.len == strlen(project_root) &&
	    !memcmp(old.buf, project_root, old.len))
		return 0;
	r = bv_mkdir_p(dir, 0755, err);
	if (r < 0)
		return r;
	return bv_write_file_atomic(path, project_root, strlen(project_root), 0644, err);
}

int bv_retain_projects(const char *cache_dir, struct bv_strv *roots, struct bv_error **err)
{
	_cleanup_free_ char *dir = bv_path_join(cache_dir, PROJECTS_DIR);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return bv_error_set_errno(err, "could not read '%s'", dir);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *toml = NULL, *expected = NULL;
		_cleanup_buf_ struct bv_buf root = BV_BUF_INIT;
		if (strlen(de->d_name) != 16)
			continue;
		path = bv_path_join(dir, de->d_name);
		if (bv_buf_read_file(&root, path, 1 << 16, NULL) < 0 || !root.len ||
		    root.buf[0] != '/' || memchr(root.buf, '\0', root.len))
			continue;
		/* an entry must be the one its root would get, or it is not ours to trust */
		expected = bv_retain_project_entry(cache_dir, root.buf);
		if (strcmp(expected, path))
			continue;
		toml = bv_path_join(root.buf, "bv.toml");
		if (!bv_path_exists(toml)) {
			(void)unlink(path); /* the project is gone: it pins nothing any more */
			continue;
		}
		bv_strv_push(roots, root.buf);
	}
	bv_strv_sort(roots);
	return 0;
}

static char *lease_path(const char *rootfs)
{
	_cleanup_free_ char *copy = bv_xstrdup(rootfs);
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	return bv_xasprintf("%s" LEASE_SUFFIX, copy);
}

/* Whether `fd` is still the file at `path` (prune may have unlinked it meanwhile). */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int bv_retain_lease(int *fd_out, const char *rootfs, struct bv_error **err)
{
	_cleanup_free_ char *path = lease_path(rootfs);

	for (;;) {
		/* not O_CLOEXEC: on the exec path the tool itself holds the lease (see retain.h) */
		int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
		int r;
		if (fd < 0 && (errno == EACCES || errno == EROFS))
			fd = open(path, O_RDONLY | O_NOFOLLOW);
		if (fd < 0) {
			/* a read-only cache nobody can prune: run without a lease */
			if (errno == EACCES || errno == EROFS) {
				*fd_out = -1;
				return 0;
			}
			return bv_error_set_errno(err, "could not open the lease '%s'", path);
		}
		r = bv_lock_fd(fd, BV_LOCK_SHARED, true);
		if (r < 0) {
			close(fd);
			return bv_error_setc(err, BV_ERR, -r, "could not take the lease '%s'",
					     path);
		}
		if (still_linked(fd, path)) {
			*fd_out = fd;
			return 0;
		}
		close(fd);
	}
}

int bv_retain_claim(int *fd_out, const char *rootfs, struct bv_error **err)
{
	_cleanup_free_ char *path = lease_path(rootfs);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	int r;

	if (fd < 0)
		return bv_error_set_errno(err, "could not open the lease '%s'", path);
	r = bv_lock_fd(fd, BV_LOCK_EXCLUSIVE, false);
	if (r == -EAGAIN || r == -EACCES) {
		close(fd);
		return 0;
	}
	if (r < 0) {
		close(fd);
		return bv_error_setc(err, BV_ERR, -r, "could not claim '%s'", path);
	}
	*fd_out = fd;
	return 1;
}

void bv_retain_unclaim(const char *rootfs, int fd)
{
	_cleanup_free_ char *path = lease_path(rootfs);
	(void)unlink(path);
	if (fd >= 0)
		close(fd);
}
