#include <bv/error.h>
#include <bv/lockfile.h>
#include <bv/paths.h>
#include <bv/shims.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

static bool name_ok(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < NAME_MAX;
}

static char *own_executable(struct bv_error **err)
{
	char *path = bv_executable_path();
	if (!path)
		bv_error_set_errno(err, "could not find the bv executable");
	return path;
}

/* Appends ".bv/" to <root>/.gitignore unless a line already says so. */
static int ignore_in_git(const char *root, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(root, ".gitignore");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_error *read_err = NULL;
	int r = bv_buf_read_file(&text, path, 1u << 20, &read_err);
	if (r < 0 && r != BV_ENOTFOUND) {
		*err = read_err;
		return r;
	}
	bv_error_free(read_err);
	if (r < 0)
		bv_buf_reset(&text);
	for (const char *line = text.buf; line && *line;) {
		size_t len = strcspn(line, "\n");
		if ((len == 4 && !strncmp(line, ".bv/", 4)) ||
		    (len == 3 && !strncmp(line, ".bv", 3)))
			return 0;
		line += len + (line[len] == '\n');
	}
	if (text.len && text.buf[text.len - 1] != '\n')
		bv_buf_putc(&text, '\n');
	bv_buf_puts(&text, ".bv/\n");
	return bv_write_file_atomic(path, text.buf, text.len, 0644, err);
}

int bv_shims_write(const char *project_root, const struct bv_lockfile *lock, struct bv_error **err)
{
	_cleanup_free_ char *exe = own_executable(err);
	_cleanup_free_ char *dot = bv_path_join(project_root, ".bv");
	_cleanup_free_ char *bin = bv_path_join(dot, "bin");
	_cleanup_free_ char *tmp = NULL;
	int r = 0;
	if (!exe)
		return BV_ERR;
	tmp = bv_xasprintf("%s/bin.tmp-%ld", dot, (long)getpid());
	if (bv_path_exists(tmp) && (r = bv_rm_rf(tmp, err)) < 0)
		return r;
	r = bv_mkdir_p(tmp, 0755, err);
	for (size_t i = 0; i < lock->n_binary_index && r >= 0; i++) {
		const char *name = lock->binary_index[i].binary;
		_cleanup_free_ char *link = NULL;
		if (!name_ok(name)) {
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "binary '%s' of %s cannot be a file name", name,
					  lock->binary_index[i].tool);
			break;
		}
		link = bv_path_join(tmp, name);
		if (symlink(exe, link) < 0)
			r = bv_error_set_errno(err, "could not create shim '%s'", link);
	}
	if (r >= 0) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, bin, RENAME_EXCHANGE) == 0)
			r = bv_rm_rf(tmp, err); /* now the old directory */
		else if (errno == ENOENT && rename(tmp, bin) == 0)
			r = 0;
		else
			r = bv_error_set_errno(err, "could not replace '%s'", bin);
	}
	if (r < 0) {
		(void)bv_rm_rf(tmp, NULL);
		return bv_error_wrap(err, r, "could not write the shims in '%s'", bin);
	}
	return ignore_in_git(project_root, err);
}

/*
 * The stamp of a verified .bv/bin: the directory's identity (any link added, removed or
 * replaced in it changes its mtime and ctime, and a new directory has another inode), a hash
 * of the binary index's names and the executable the links must point at.  Written to
 * .bv/bin.ok only when the directory's ctime had settled before it was read (bv_stat_settled),
 * so equal times mean the same links.
 */
static char *shims_stamp(const struct stat *dir, const struct bv_lockfile *lock, const char *exe)
{
	_cleanup_buf_ struct bv_buf names = BV_BUF_INIT;
	for (size_t i = 0; i < lock->n_binary_index; i++)
		bv_buf_add(&names, lock->binary_index[i].binary,
			   strlen(lock->binary_index[i].binary) + 1);
	return bv_xasprintf("bvshims1 %llu %llu %lld %ld %lld %ld %zu %016llx %s\n",
			    (unsigned long long)dir->st_dev, (unsigned long long)dir->st_ino,
			    (long long)dir->st_mtim.tv_sec, dir->st_mtim.tv_nsec,
			    (long long)dir->st_ctim.tv_sec, dir->st_ctim.tv_nsec,
			    lock->n_binary_index,
			    (unsigned long long)bv_fnv1a64(names.buf, names.len), exe);
}

/* Whether .bv/bin.ok holds exactly `stamp`. */
static bool stamp_matches(const char *dot, const char *stamp)
{
	_cleanup_free_ char *path = bv_path_join(dot, "bin.ok");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	return bv_buf_read_file(&text, path, 1u << 16, NULL) == 0 && text.len == strlen(stamp) &&
	       memcmp(text.buf, stamp, text.len) == 0;
}

/* Writes .bv/bin.ok by rename; best effort (a read-only checkout just checks every link). */
static void stamp_write(const char *dot, const char *stamp)
{
	_cleanup_free_ char *path = bv_path_join(dot, "bin.ok");
	_cleanup_free_ char *tmp = bv_xasprintf("%s.%ld", path, (long)getpid());
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	if (bv_write_all(fd, stamp, strlen(stamp)) < 0 || close(TAKE_FD(fd)) < 0 ||
	    rename(tmp, path) < 0)
		(void)unlink(tmp);
}

bool bv_shims_current(const char *project_root, const struct bv_lockfile *lock)
{
	_cleanup_free_ char *dot = bv_xasprintf("%s/.bv", project_root);
	_cleanup_free_ char *bin = bv_xasprintf("%s/.bv/bin", project_root);
	_cleanup_free_ char *exe = own_executable(NULL);
	_cleanup_free_ char *stamp = NULL;
	_cleanup_closedir_ DIR *d = opendir(bin);
	struct dirent *de;
	struct stat before, after;
	size_t entries = 0;
	bool settled;
	if (!d || !exe || fstat(dirfd(d), &before) < 0)
		return false;
	settled = bv_stat_settled(&before);
	/* a stamp of this very directory, these names and this bv: 2000 readlinkat(2) saved */
	stamp = shims_stamp(&before, lock, exe);
	if (settled && !strchr(exe, '\n') && stamp_matches(dot, stamp))
		return true;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			entries++;
	if (entries != lock->n_binary_index)
		return false;
	/* relative to the directory already open: a path from / costs a walk per shim, which
	 * was a quarter of `bv sync` on a project of 2000 shims */
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dirfd(d), lock->binary_index[i].binary, target,
				       sizeof(target) - 1);
		if (n < 0)
			return false;
		target[n] = 0;
		if (strcmp(target, exe))
			return false;
	}
	if (settled && !strchr(exe, '\n') && fstat(dirfd(d), &after) == 0 &&
	    after.st_ino == before.st_ino && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	    after.st_mtim.tv_nsec == before.st_mtim.tv_nsec &&
	    after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
	    after.st_ctim.tv_nsec == before.st_ctim.tv_nsec)
		stamp_write(dot, stamp);
	return true;
}

/* A link to `bin` at <cache>/path/<sha256(bin)[:32]>, created or repaired (see the header). */
static int link_in_cache(char **out, const char *bin, struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL, *dir = NULL, *link = NULL, *tmp = NULL;
	char hex[BV_SHA256_HEX_LEN + 1], target[PATH_MAX];
	ssize_t n;
	int r;
	if ((r = bv_cache_dir(&cache, err)) < 0)
		return bv_error_wrap(err, r, "'%s' has a ':', which PATH cannot hold", bin);
	dir = bv_path_join(cache, "path");
	if (strchr(dir, ':'))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "'%s' has a ':', which PATH cannot hold, and so has the cache "
				     "'%s' (set BV_CACHE_DIR to a path without one)",
				     bin, cache);
	if ((r = bv_mkdir_p(dir, 0755, err)) < 0)
		return r;
	bv_sha256_hex(hex, bin, strlen(bin));
	hex[32] = '\0';
	link = bv_path_join(dir, hex);
	n = readlink(link, target, sizeof(target) - 1);
	if (n >= 0 && (target[n] = '\0', !strcmp(target, bin))) {
		*out = TAKE_PTR(link);
		return 0;
	}
	/* built aside and renamed over, so a concurrent bv exec never sees no link */
	tmp = bv_xasprintf("%s.tmp-%ld", link, (long)getpid());
	(void)unlink(tmp);
	if (symlink(bin, tmp) < 0)
		return bv_error_set_errno(err, "could not create '%s'", tmp);
	if (rename(tmp, link) < 0) {
		r = bv_error_set_errno(err, "could not create '%s'", link);
		(void)unlink(tmp);
		return r;
	}
	*out = TAKE_PTR(link);
	return 0;
}

int bv_shims_path_dir(char **out, const char *project_root, struct bv_error **err)
{
	_cleanup_free_ char *bin = bv_xasprintf("%s/.bv/bin", project_root);
	if (strchr(bin, ':'))
		return link_in_cache(out, bin, err);
	*out = TAKE_PTR(bin);
	return 0;
}
