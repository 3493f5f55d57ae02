#include "fs.h"

#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup.h"
#include "xalloc.h"

#include "banned.h"

char *bv_executable_path(void)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		return NULL;
	path[n] = '\0';
	return bv_xstrdup(path);
}

int bv_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t bv_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Reports a failure on the temporary file, then removes it (keeping errno for the report). */
static int atomic_fail(const char *tmp, const char *what, const char *path, struct bv_error **err)
{
	int r = bv_error_set_errno(err, "could not %s '%s'", what, path);
	int saved = errno;
	unlink(tmp);
	errno = saved;
	return r;
}

/* Publishes `tmp` as `path`: rename(2), or without `replace` a rename that fails on EEXIST. */
static int publish(const char *tmp, const char *path, bool replace, struct bv_error **err)
{
	int r;
	if (replace)
		r = rename(tmp, path);
	else if ((r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE)) < 0 &&
		 errno == EINVAL)
		/* A file system without RENAME_NOREPLACE (older NFS): link(2) fails on EEXIST too.
		 */
		r = link(tmp, path) == 0 ? unlink(tmp) : -1;
	if (r == 0)
		return 0;
	if (!replace && errno == EEXIST)
		r = bv_error_setc(err, BV_EEXISTS, EEXIST, "'%s' already exists", path);
	else
		r = bv_error_set_errno(err, "could not rename '%s' to '%s'", tmp, path);
	unlink(tmp);
	return r;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode, bool replace,
		      struct bv_error **err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int fd = -1;
	_cleanup_close_ int dfd = -1;
	int r;

	if (!*base)
		return bv_error_setc(err, BV_EINVALID, 0, "invalid file name '%s'", path);
	/* Same directory, so rename(2) stays on one file system and is atomic. */
	tmp = bv_xasprintf("%.*s.%s.XXXXXX", (int)dirlen, path, base);
	dir = dirlen ? bv_xstrndup(path, dirlen) : bv_xstrdup(".");

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not create a temporary file for '%s'", path);
	if (bv_write_all(fd, data, len) < 0)
		return atomic_fail(tmp, "write", tmp, err);
	/* mkostemp() creates 0600; fchmod() is not subject to the umask, so `mode` is exact. */
	if (fchmod(fd, mode) < 0)
		return atomic_fail(tmp, "change the mode of", tmp, err);
	if (fsync(fd) < 0)
		return atomic_fail(tmp, "flush", tmp, err);
	/* close() reports deferred write errors on NFS; ignoring them would hide data loss. */
	if (close(TAKE_FD(fd)) < 0)
		return atomic_fail(tmp, "close", tmp, err);
	r = publish(tmp, path, replace, err);
	if (r < 0)
		return r;

	/* The rename lives in the directory; without this a crash can bring back the old file. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return bv_error_set_errno(err, "could not open directory '%s' to flush '%s'", dir,
					  path);
	/* Some file systems cannot fsync a directory at all (EINVAL); there is nothing to do. */
	if (fsync(dfd) < 0 && errno != EINVAL)
		return bv_error_set_errno(err, "could not flush directory '%s' after writing '%s'",
					  dir, path);
	return 0;
}

int bv_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			 struct bv_error **err)
{
	return write_file(path, data, len, mode, true, err);
}

int bv_write_file_new(const char *path, const void *data, size_t len, mode_t mode,
		      struct bv_error **err)
{
	return write_file(path, data, len, mode, false, err);
}

static int mkdir_one(const char *path, mode_t mode, struct bv_error **err)
{
	struct stat st;
	int saved;
	if (mkdir(path, mode) == 0)
		return 0;
	/* Existing directories give EEXIST, or EACCES/EROFS where we may not write: ask stat. */
	saved = errno;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		saved = ENOTDIR;
	}
	return bv_error_setc(err, BV_ERR, saved, "could not create directory '%s'", path);
}

int bv_mkdir_p(const char *path, mode_t mode, struct bv_error **err)
{
	_cleanup_free_ char *p = NULL;
	struct stat st;

	if (!*path)
		return bv_error_setc(err, BV_EINVALID, 0, "could not create directory ''");
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	p = bv_xstrdup(path);
	for (char *s = p + 1;; s++) {
		char c = *s;
		if (c && c != '/')
			continue;
		if (s[-1] != '/') {
			int r;
			*s = '\0';
			r = mkdir_one(p, mode, err);
			*s = c;
			if (r < 0)
				return r;
		}
		if (!c)
			return 0;
	}
}

/*
 * Why it matters: on ext4 without a journal (this project's CI machines have one like that),
 * a new inode is never one freed in the last half minute, and the allocator checks each such
 * inode of the group one by one.  A cold pull right after a cache was removed (as the cold
 * benchmarks do) spent more than half its time in that check; spread over other groups, a
 * 4-image cold sync went from 1.2-1.7 s to 0.5-0.65 s.
 */
void bv_dir_mark_top(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int flags;
	if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || (flags & FS_TOPDIR_FL))
		return;
	flags |= FS_TOPDIR_FL;
	(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

bool bv_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

char *bv_path_join(const char *a, const char *b)
{
	struct bv_buf out = BV_BUF_INIT;
	size_t la = strlen(a);
	if (!*a)
		return bv_xstrdup(b);
	if (!*b)
		return bv_xstrdup(a);
	while (la && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	bv_buf_add(&out, a, la);
	bv_buf_putc(&out, '/');
	bv_buf_puts(&out, b);
	return bv_buf_detach(&out, NULL);
}

static int rm_entry(int dfd, const char *name, const char *parent, struct bv_error **err);

/*
 * Calls `fn` for every entry of the directory open at `dfd` but "." and "..", stopping at
 * the first negative return.  Takes ownership of `dfd`; `path` is for messages.
 */
static int each_entry(int dfd, const char *path,
		      int (*fn)(int dfd, const char *name, const char *parent, void *payload,
				struct bv_error **err),
		      void *payload, struct bv_error **err)
{
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		int r = bv_error_set_errno(err, "could not read directory '%s'", path);
		close(dfd);
		return r;
	}
	for (;;) {
		struct dirent *de;
		int r;
		errno = 0;
		de = readdir(d);
		if (!de)
			return errno ? bv_error_set_errno(err, "could not read directory '%s'",
							  path)
				     : 0;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = fn(dirfd(d), de->d_name, path, payload, err);
		if (r < 0)
			return r;
	}
}

static int rm_each(int dfd, const char *name, const char *parent, void *payload,
		   struct bv_error **err)
{
	(void)payload;
	return rm_entry(dfd, name, parent, err);
}

/* Empties the directory open at `dfd` (taking ownership of it); `path` is for messages. */
static int rm_contents(int dfd, const char *path, struct bv_error **err)
{
	struct stat st;
	if (fstat(dfd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(dfd, st.st_mode | S_IRWXU); /* if it fails, unlinkat() will say why */
	return each_entry(dfd, path, rm_each, NULL, err);
}

static int rm_entry(int dfd, const char *name, const char *parent, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(parent, name);
	struct stat st;
	int sub, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return bv_error_set_errno(err, "could not stat '%s'", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return bv_error_set_errno(err, "could not remove '%s'", path);
		return 0;
	}
	/* O_NOFOLLOW: if a symlink replaced the directory since fstatat(), fail rather than follow.
	 */
	sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0) {
		if (errno == ENOENT)
			return 0;
		return bv_error_set_errno(err, "could not open directory '%s'", path);
	}
	r = rm_contents(sub, path, err);
	if (r < 0)
		return r;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return bv_error_set_errno(err, "could not remove directory '%s'", path);
	return 0;
}

/* Inodes with more than one link, to count each once (a sorted array; trees are bounded). */
struct du_state {
	struct du_inode {
		dev_t dev;
		ino_t ino;
	} * seen;
	size_t n, alloc;
};

static int du_inode_cmp(const void *a, const void *b)
{
	const struct du_inode *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Whether `st` was counted already; records it when not.  Insertion keeps the array sorted. */
static bool du_seen(struct du_state *st, const struct stat *s)
{
	struct du_inode key = {s->st_dev, s->st_ino};
	size_t lo = 0, hi = st->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = du_inode_cmp(&key, &st->seen[mid]);
		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	BV_GROW(st->seen, st->alloc, st->n + 1);
	memmove(&st->seen[lo + 1], &st->seen[lo], (st->n - lo) * sizeof(*st->seen));
	st->seen[lo] = key;
	st->n++;
	return false;
}

struct du_walk {
	struct du_state *state;
	int64_t *bytes;
};

static int du_each(int dfd, const char *name, const char *parent, void *payload,
		   struct bv_error **err);

static int du_entry(struct du_state *state, int dfd, const char *name, const char *parent,
		    int64_t *bytes, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(parent, name);
	struct du_walk walk = {state, bytes};
	struct stat st;
	int sub;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0; /* removed meanwhile: a concurrent prune */
		return bv_error_set_errno(err, "could not stat '%s'", path);
	}
	if (!(st.st_nlink > 1 && !S_ISDIR(st.st_mode) && du_seen(state, &st)))
		*bytes += (int64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return 0;
	sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0) {
		if (errno == ENOENT)
			return 0;
		return bv_error_set_errno(err, "could not open directory '%s'", path);
	}
	return each_entry(sub, path, du_each, &walk, err);
}

static int du_each(int dfd, const char *name, const char *parent, void *payload,
		   struct bv_error **err)
{
	struct du_walk *walk = payload;
	return du_entry(walk->state, dfd, name, parent, walk->bytes, err);
}

int bv_disk_usage(int64_t *bytes_out, const char *const *paths, struct bv_error **err)
{
	struct du_state state = {0};
	int r = 0;
	for (size_t i = 0; paths[i]; i++) {
		bytes_out[i] = 0;
		if (r >= 0)
			r = du_entry(&state, AT_FDCWD, paths[i], "", &bytes_out[i], err);
	}
	free(state.seen);
	return r;
}

int bv_rm_rf(const char *path, struct bv_error **err)
{
	_cleanup_free_ char *p = bv_xstrdup(path);
	size_t n = strlen(p);

	/* A trailing slash makes the kernel follow a final symlink; strip it. */
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	if (!n || !strcmp(p, "/"))
		return bv_error_setc(err, BV_EINVALID, 0, "refusing to remove '%s'", path);
	return rm_entry(AT_FDCWD, p, "", err);
}

int bv_path_check_beneath(const char *base, const char *rel)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int dir = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd;

	if (dir < 0)
		return -errno;
	fd = (int)syscall(SYS_openat2, dir, rel, &how, sizeof(how));
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != ENOSYS && errno != EPERM && errno != E2BIG)
		return -errno;
	/* no openat2: refuse what is lexically outside, at least */
	if (rel[0] == '/' || !strcmp(rel, "..") || !strncmp(rel, "../", 3) || strstr(rel, "/../") ||
	    (strlen(rel) >= 3 && !strcmp(rel + strlen(rel) - 3, "/..")))
		return -EXDEV;
	{
		_cleanup_free_ char *path = bv_path_join(base, rel);
		return access(path, F_OK) == 0 ? 0 : -errno;
	}
}

int bv_buf_read_fd(struct bv_buf *b, int fd, size_t max, struct bv_error **err)
{
	size_t start = b->len, spare = 4096;
	struct stat st;
	/* A regular file's size lets one read() do: a 1000-tool bv.lock took 60 of them. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uint64_t)st.st_size <= max) {
		bv_buf_grow(b, (size_t)st.st_size + 1);
		spare = 2; /* room for the read() that returns end of file */
	}
	for (;;) {
		ssize_t n;
		if (b->alloc - b->len < spare)
			bv_buf_grow(b, 8192);
		n = read(fd, b->buf + b->len, b->alloc - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bv_buf_setlen(b, start);
			return bv_error_set_errno(err, "could not read");
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		if (b->len - start > max) {
			bv_buf_setlen(b, start);
			return bv_error_setc(err, BV_ERR, EFBIG, "input is larger than %zu bytes",
					     max);
		}
	}
	b->buf[b->len] = '\0';
	return 0;
}

int bv_buf_read_file(struct bv_buf *b, const char *path, size_t max, struct bv_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int r;
	if (fd < 0) {
		int code = errno == ENOENT ? BV_ENOTFOUND : BV_ERR;
		return bv_error_setc(err, code, errno, "could not open '%s'", path);
	}
	r = bv_buf_read_fd(b, fd, max, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not read '%s'", path);
	return 0;
}

/*
 * The kernel stamps files from a coarse clock, so two writes within one tick can leave the
 * same ctime: only a ctime two ticks old is sure to change with the next write.
 */
void bv_stat_key(uint64_t key[BV_STAT_KEY_LEN], const struct stat *st)
{
	key[0] = (uint64_t)st->st_dev;
	key[1] = (uint64_t)st->st_ino;
	key[2] = (uint64_t)st->st_size;
	key[3] = (uint64_t)st->st_mtim.tv_sec;
	key[4] = (uint64_t)st->st_mtim.tv_nsec;
	key[5] = (uint64_t)st->st_ctim.tv_sec;
	key[6] = (uint64_t)st->st_ctim.tv_nsec;
}

bool bv_stat_settled(const struct stat *st)
{
	struct timespec now, res;
	int64_t later;
	if (clock_gettime(CLOCK_REALTIME_COARSE, &now) < 0 ||
	    clock_getres(CLOCK_REALTIME_COARSE, &res) < 0)
		return false;
	if (!st->st_ctim.tv_nsec && !st->st_mtim.tv_nsec)
		return now.tv_sec > st->st_ctim.tv_sec;
	/* ctime + 2 ticks < now, in nanoseconds from the ctime's second */
	later = (int64_t)(now.tv_sec - st->st_ctim.tv_sec) * 1000000000 +
		(now.tv_nsec - st->st_ctim.tv_nsec);
	return later > 2 * ((int64_t)res.tv_sec * 1000000000 + res.tv_nsec);
}

int bv_dir_each(int fd, char *buf, int (*fn)(const char *name, unsigned char type, void *payload),
		void *payload)
{
	for (;;) {
		ssize_t n = getdents64(fd, buf, BV_DIRBUF_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (ssize_t pos = 0; pos < n;) {
			const struct dirent64 *de = (const struct dirent64 *)(buf + pos);
			int r;
			pos += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			r = fn(de->d_name, de->d_type, payload);
			if (r < 0)
				return r;
		}
	}
}
