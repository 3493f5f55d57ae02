/*
 * unpack.c - layer blobs to layer trees to read-only root filesystems (see unpack-internal.h
 * and include/bv/unpack.h).
 *
 * libarchive only reads: it decompresses and parses the tar headers (ustar, GNU long names,
 * pax).  Everything that touches the file system is done here with *at() calls relative to
 * descriptors of the tree being built, because archive_write_disk's protections are options
 * that are easy to get wrong and it cannot express the layer-tree/whiteout model anyway.
 */
#include <archive.h>
#include <archive_entry.h>
#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/oci/store/archive_calls.h"
#include "lib/oci/store/archive_loader.h"
#include "lib/oci/store/seal.h"
#include "lib/oci/store/unpack-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define READ_BLOCK     (128 * 1024)
#define WRITEBACK_STEP (8u << 20)
#define WHITEOUT       ".wh."
#define WHITEOUT_META  ".wh..wh."
#define OPAQUE         ".wh..wh..opq"
#define XATTR_CAPS     "security.capability"

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define _cleanup_archive_ _cleanup_(archive_freep)

/* ------------------------------------------------------------------------------------------ */
/* Names */

/* How messages name a layer: its digest when the blob is stored by digest, else its path. */
static char *layer_label(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (bv_str_has_prefix(base, "sha256:"))
		return bv_xstrdup(base);
	if (bv_sha256_hex_valid(base) && base - path >= 7 && !memcmp(base - 7, "sha256/", 7) &&
	    (base - path == 7 || base[-8] == '/'))
		return bv_xasprintf("sha256:%s", base);
	return bv_xasprintf("'%s'", path);
}

/* Entry names go into messages: control characters become '?' and huge names are cut. */
static char *printable(const char *s)
{
	struct bv_buf b = BV_BUF_INIT;
	size_t n = strlen(s);
	for (size_t i = 0; i < n && i < 512; i++) {
		unsigned char c = (unsigned char)s[i];
		bv_buf_putc(&b, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
	if (n > 512)
		bv_buf_puts(&b, "...");
	return bv_buf_detach(&b, NULL);
}

enum {
	PATH_ESCAPES = -1,
	PATH_TOO_LONG = -2,
	PATH_TOO_DEEP = -3,
};

/*
 * Writes the root-relative path of a tar name into `out` ("" is the root itself), cleaned
 * lexically as Docker does (moby's archive.Apply runs filepath.Clean on every name): empty
 * and "." components go, ".." removes the component before it, and a name that starts with
 * '/' is relative to the image root, where ".." stays at the root.  A relative name whose
 * ".." climbs above the root escapes it and is refused, as Docker refuses it.
 */
static int clean_path(const char *in, struct bv_buf *out)
{
	bool absolute = *in == '/';
	const char *p = in;
	size_t depth = 0;

	bv_buf_reset(out);
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t len = (size_t)(end - p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (depth) {
				const char *slash = memrchr(out->buf, '/', out->len);
				bv_buf_setlen(out, slash ? (size_t)(slash - out->buf) : 0);
				depth--;
			} else if (!absolute) {
				return PATH_ESCAPES;
			}
		} else if (len && !(len == 1 && p[0] == '.')) {
			if (len > NAME_MAX)
				return PATH_TOO_LONG;
			if (out->len)
				bv_buf_putc(out, '/');
			bv_buf_add(out, p, len);
			if (out->len >= PATH_MAX)
				return PATH_TOO_LONG;
			depth++;
		}
		p = *end ? end + 1 : end;
	}
	if (depth > BV_UNPACK_MAX_DEPTH)
		return PATH_TOO_DEEP;
	return 0;
}

/* Splits a clean, non-empty path into a new directory string ("" at the top) and its name. */
static char *split_path(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*name = path;
		return bv_xstrdup("");
	}
	*name = slash + 1;
	return bv_xstrndup(path, (size_t)(slash - path));
}

static bool valid_whiteout_target(const char *victim)
{
	return *victim && strcmp(victim, ".") && strcmp(victim, "..") && !strchr(victim, '/');
}

/* ------------------------------------------------------------------------------------------ */
/* Safe file system primitives: every path below a tree root is one component at a time. */

/* openat2(2) with `resolve`; -1 with errno ENOSYS where the kernel or a filter lacks it. */
static int open_dir_how(int root, const char *rel, uint64_t resolve)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = resolve | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
	/* EPERM: a seccomp filter that does not know openat2; E2BIG: an older struct open_how */
	if (fd < 0 && (errno == EPERM || errno == E2BIG))
		errno = ENOSYS;
	return fd;
}

/*
 * Kernels before 5.6 have no openat2(2): the directory is opened one component at a time with
 * O_NOFOLLOW, so a symlink on the way is refused (-ELOOP) instead of resolved in the root.
 */
static int open_nofollow_walk(int root, const char *rel, bool create)
{
	_cleanup_free_ char *copy = bv_xstrdup(rel);
	_cleanup_close_ int cur = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *p = copy;

	if (cur < 0)
		return -errno;
	while (*p) {
		char *slash = strchr(p, '/');
		int next;
		if (slash)
			*slash = '\0';
		next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
				return -errno;
			next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			/* the umask must not decide the mode of implicit directories */
			if (next >= 0)
				(void)fchmod(next, 0755);
		}
		if (next < 0) {
			struct stat st;
			int e = errno;
			if ((e == ELOOP || e == ENOTDIR) &&
			    fstatat(cur, p, &st, AT_SYMLINK_NOFOLLOW) == 0)
				return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
			return -e;
		}
		close(cur);
		cur = next;
		p = slash ? slash + 1 : p + strlen(p);
	}
	return TAKE_FD(cur);
}

/* The path of the open directory `fd` inside the tree `root` ("" for the root), or NULL. */
static char *path_in_root(int root, int fd)
{
	char link[64], rpath[PATH_MAX], fpath[PATH_MAX];
	ssize_t rn, fn;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", root);
	rn = readlink(link, rpath, sizeof(rpath) - 1);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	fn = readlink(link, fpath, sizeof(fpath) - 1);
	if (rn <= 0 || fn <= 0 || fn < rn || memcmp(rpath, fpath, (size_t)rn) ||
	    (fn > rn && fpath[rn] != '/'))
		return NULL;
	return bv_xstrndup(fpath + rn + (fn > rn), (size_t)(fn - rn - (fn > rn)));
}

/* How many symlinks to nothing one open_in_root() may create directories through. */
#define MAX_DANGLING_HOPS 40

static int open_in_root_hops(int root, const char *rel, bool create, unsigned hops);

/*
 * `name` in the directory `cur` is a symlink whose target does not exist, and the directory
 * `rest` ("" or more components) is wanted below it: opens "<target>/<rest>" in the root,
 * creating it.  Docker's chrooted unpacking reaches the same place when it creates the
 * parent directories of an entry through such a symlink.
 */
static int open_through_dangling(int root, int cur, const char *name, const char *rest,
				 unsigned hops)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(cur, name, target, sizeof(target) - 1);
	_cleanup_free_ char *base = NULL, *joined = NULL;
	struct bv_buf clean = BV_BUF_INIT;
	int r;

	if (n < 0)
		return errno == EINVAL ? -ENOTDIR : -errno; /* not a symlink after all */
	target[n] = '\0';
	if (hops >= MAX_DANGLING_HOPS)
		return -ELOOP;
	base = target[0] == '/' ? bv_xstrdup("") : path_in_root(root, cur);
	if (!base)
		return -ENOENT;
	/* a leading '/' makes ".." stop at the root, as RESOLVE_IN_ROOT does */
	joined = bv_xasprintf("/%s/%s/%s", base, target, rest);
	r = clean_path(joined, &clean);
	if (r == 0)
		r = open_in_root_hops(root, clean.buf, true, hops + 1);
	else
		r = -ENAMETOOLONG;
	bv_buf_release(&clean);
	return r;
}

/*
 * Opens the directory `rel` (a clean relative path) of the tree `root`, resolving symlinks on
 * the way as if `root` were "/" (RESOLVE_IN_ROOT: an absolute target or a ".." starts again
 * at `root`, never above it).  This is what Docker gets by applying a layer chrooted into its
 * directory.  Missing directories are created (0755) when `create`, below whatever the
 * existing part resolved to, also where a symlink points at nothing yet.  Returns the
 * descriptor or -errno: -ENOTDIR when a component is a file, -ELOOP for a symlink loop (or
 * any symlink without openat2), -ENOENT for a missing part when not `create`.
 */
static int open_in_root(int root, const char *rel, bool create)
{
	return open_in_root_hops(root, rel, create, 0);
}

static int open_in_root_hops(int root, const char *rel, bool create, unsigned hops)
{
	_cleanup_close_ int cur = -1;
	const char *p;
	int fd;

	if (!*rel) {
		fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	/* the common case, a plain directory path, costs one call */
	fd = open_dir_how(root, rel, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
	if (fd >= 0)
		return fd;
	if (errno == ENOSYS)
		return open_nofollow_walk(root, rel, create);
	if (errno != ELOOP && !(errno == ENOENT && create))
		return -errno;
	fd = open_dir_how(root, rel, RESOLVE_IN_ROOT);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;

	/* Something is missing: find the longest existing prefix, then create the rest. */
	cur = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	for (p = rel; *p;) {
		const char *end = strchrnul(p, '/');
		_cleanup_free_ char *prefix = bv_xstrndup(rel, (size_t)(end - rel));
		_cleanup_free_ char *name = bv_xstrndup(p, (size_t)(end - p));
		int next = open_dir_how(root, prefix, RESOLVE_IN_ROOT);
		if (next < 0 && errno == ENOENT) {
			if (mkdirat(cur, name, 0755) < 0) {
				if (errno != EEXIST)
					return -errno;
				return open_through_dangling(root, cur, name, *end ? end + 1 : "",
							     hops);
			}
			next = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next >= 0)
				(void)fchmod(next, 0755);
		}
		if (next < 0)
			return -errno;
		close(cur);
		cur = next;
		p = *end ? end + 1 : end;
	}
	return TAKE_FD(cur);
}

static int remove_at(int dfd, const char *name);

/* Removes everything in the directory `fd` (which it closes), making it writable first. */
static int empty_dir(int fd)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct stat st;

	if (fstat(fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(fd, (st.st_mode & 07777) | S_IRWXU); /* else unlinkat() says why */
	d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	for (;;) {
		struct dirent *de;
		int r;
		errno = 0;
		de = readdir(d);
		if (!de)
			return errno ? -errno : 0;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = remove_at(dirfd(d), de->d_name);
		if (r < 0)
			return r;
	}
}

/* rm -rf of `name` in `dfd` for read-only trees; never follows symlinks.  0 or -errno. */
static int remove_at(int dfd, const char *name)
{
	struct stat st;
	int fd, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		/* A directory we may not even read (mode 0000): make it ours to walk first. */
		if (fchmodat(dfd, name, S_IRWXU, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = empty_dir(fd);
	if (r < 0)
		return r;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/*
 * Makes room for a new entry `name` in `pfd`: whatever is there goes, except a directory when
 * `keep_dir` (a tar may list a directory twice; its contents stay).  Returns 1 when a directory
 * was kept, 0 when the name is free, -errno on failure.
 */
static int clear_slot(int pfd, const char *name, bool keep_dir)
{
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return keep_dir ? 1 : remove_at(pfd, name);
	if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/*
 * A directory stream of its own for the directory `fd` (borrowed), which stays open and
 * positioned where it was; returns 0 or -errno.
 */
static int open_dir_stream(int fd, DIR **out)
{
	int own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (own < 0)
		return -errno;
	*out = fdopendir(own);
	if (!*out) {
		int e = errno;
		close(own);
		return -e;
	}
	return 0;
}

/* Takes the write bits off every directory below and including `fd` (borrowed). */
static int seal_dir(int fd)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct stat st;
	int r0 = open_dir_stream(fd, &d);

	if (r0 < 0)
		return r0;
	for (;;) {
		struct dirent *de;
		int r;
		_cleanup_close_ int sub = -1;
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				return -errno;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			if (errno == ENOTDIR || errno == ELOOP)
				continue;
			return -errno;
		}
		r = seal_dir(sub);
		if (r < 0)
			return r;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (fchmod(fd, ((st.st_mode & 07777) & ~(mode_t)0222) | S_IRUSR | S_IXUSR) < 0)
		return -errno;
	return 0;
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, buf, len, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Staging: build "<dest>.tmp-<pid>", rename it into place when complete. */

struct stage {
	char *final; /* dest without trailing slashes */
	char *tmp;
	int root; /* the open temporary tree */
};

static void stage_release(struct stage *s)
{
	if (s->root >= 0)
		close(s->root);
	s->root = -1;
	free(s->final);
	free(s->tmp);
	s->final = s->tmp = NULL;
}

/* Splits a path without trailing slashes into a new parent directory string and its base. */
static char *parent_of(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*base = path;
		return bv_xstrdup(".");
	}
	*base = slash + 1;
	return slash == path ? bv_xstrdup("/") : bv_xstrndup(path, (size_t)(slash - path));
}

/*
 * Removes "<base>.tmp-<pid>" next to `final` for processes that are gone (or for this one: a
 * previous attempt in this process failed to clean up).  Best effort: the next call retries.
 */
static void clean_stale(const char *final)
{
	const char *base;
	_cleanup_free_ char *dir = parent_of(final, &base);
	_cleanup_free_ char *prefix = bv_xasprintf("%s.tmp-", base);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int pid;
		if (!bv_str_has_prefix(de->d_name, prefix))
			continue;
		if (bv_parse_int(&pid, de->d_name + strlen(prefix)) < 0 || pid <= 0)
			continue;
		if (pid != getpid() && (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		(void)remove_at(dirfd(d), de->d_name);
	}
}

/* Returns 1 when `final` exists already (nothing to do), 0 with the stage ready, or < 0. */
static int stage_begin(struct stage *s, const char *final, struct bv_error **err)
{
	struct stat st;
	size_t n;
	const char *base;
	_cleanup_free_ char *parent = NULL;

	s->root = -1;
	s->tmp = NULL;
	s->final = bv_xstrdup(final);
	n = strlen(s->final);
	while (n > 1 && s->final[n - 1] == '/')
		s->final[--n] = '\0';
	if (!n || !strcmp(s->final, "/") || !strcmp(s->final, ".") || !strcmp(s->final, ".."))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid destination '%s'", final);

	clean_stale(s->final);
	if (lstat(s->final, &st) == 0) {
		_cleanup_free_ char *seal = NULL;
		if (!S_ISDIR(st.st_mode))
			return bv_error_setc(err, BV_EEXISTS, 0,
					     "'%s' exists and is not a directory", s->final);
		seal = bv_seal_path(s->final);
		if (bv_path_exists(seal))
			return 1;
		/* unsealed: cut short before its seal, made by an older bv, or found damaged */
		if (bv_unpack_remove_tree(s->final, err) < 0)
			return BV_ERR;
	} else if (errno != ENOENT) {
		return bv_error_set_errno(err, "could not stat '%s'", s->final);
	}
	parent = parent_of(s->final, &base);
	if (bv_mkdir_p(parent, 0755, err) < 0)
		return BV_ERR;
	bv_dir_mark_top(parent); /* "layers" and "rootfs": their trees are unrelated */
	s->tmp = bv_xasprintf("%s.tmp-%ld", s->final, (long)getpid());
	if (mkdir(s->tmp, 0700) < 0) {
		int r = bv_error_set_errno(err, "could not create directory '%s'", s->tmp);
		free(s->tmp);
		s->tmp = NULL; /* not ours to remove */
		return r;
	}
	s->root = open(s->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->root < 0)
		return bv_error_set_errno(err, "could not open directory '%s'", s->tmp);
	return 0;
}

/* Discards the temporary tree, if any. */
static void stage_abort(struct stage *s)
{
	if (s->root >= 0)
		close(s->root);
	s->root = -1;
	if (s->tmp)
		(void)remove_at(AT_FDCWD, s->tmp);
	stage_release(s);
}

static int stage_commit(struct stage *s, const struct bv_seal_map *known, struct bv_error **err)
{
	const char *base;
	_cleanup_free_ char *parent = parent_of(s->final, &base);
	_cleanup_close_ int pfd = -1;
	int r = 0;

	/* the top was private (0700) while it was incomplete; it ends up 0555 like the rest */
	if (fchmod(s->root, 0755) < 0)
		r = -errno;
	if (r < 0)
		return bv_error_setc(err, BV_ERR, -r, "could not make '%s' read-only", s->tmp);
	/*
	 * The seal first: a tree that appears without one is not trusted (include/bv/unpack.h).
	 * Listing the tree for it also takes the write bits off every directory.
	 */
	if (bv_seal_write(s->root, s->final, known, err) < 0)
		return BV_ERR;
	/* The rename must not reach the disk before the data it publishes. */
	if (syncfs(s->root) < 0)
		return bv_error_set_errno(err, "could not sync '%s'", s->tmp);
	if (renameat2(AT_FDCWD, s->tmp, AT_FDCWD, s->final, RENAME_NOREPLACE) < 0) {
		if (errno == EINVAL && rename(s->tmp, s->final) == 0)
			goto renamed;
		if (errno == EEXIST || errno == ENOTEMPTY) {
			/* Another process finished the same tree first; theirs is as good. */
			stage_abort(s);
			return 0;
		}
		return bv_error_set_errno(err, "could not rename '%s' to '%s'", s->tmp, s->final);
	}
renamed:
	free(s->tmp);
	s->tmp = NULL;
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fsync(pfd) < 0)
		return bv_error_set_errno(err, "could not sync directory '%s'", parent);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading blobs */

enum compression { COMP_NONE, COMP_GZIP, COMP_ZSTD, COMP_BZIP2, COMP_XZ };

/* What messages call the file: OCI layers, or the archives of reference data (plain mode). */
static const char *kind_of(bool plain)
{
	return plain ? "archive" : "layer";
}

static bool media_type_supported(const char *mt)
{
	static const char *const known[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		"application/octet-stream",
		"application/x-tar",
	};
	if (!mt || !*mt)
		return true;
	for (size_t i = 0; i < BV_ARRAY_SIZE(known); i++)
		if (!strcmp(mt, known[i]))
			return true;
	return false;
}

/* The compression of the blob open at `fd`, from its first bytes. */
static int sniff(int fd, const char *label, bool plain, enum compression *out,
		 struct bv_error **err)
{
	unsigned char m[6] = {0};
	ssize_t n;

	do
		n = pread(fd, m, sizeof(m), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return bv_error_set_errno(err, "could not read %s %s", kind_of(plain), label);
	if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
		*out = COMP_GZIP;
	else if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		*out = COMP_ZSTD;
	else if (plain && n >= 3 && !memcmp(m, "BZh", 3))
		*out = COMP_BZIP2;
	else if (plain && n >= 6 &&
		 !memcmp(m,
			 "\xfd"
			 "7zXZ",
			 6))
		*out = COMP_XZ;
	else if ((n >= 3 && !memcmp(m, "BZh", 3)) ||
		 (n >= 6 && !memcmp(m,
				    "\xfd"
				    "7zXZ\0",
				    6)) ||
		 (n >= 4 && !memcmp(m, "\x04\x22\x4d\x18", 4)))
		return bv_error_setc(err, BV_EINVALID, 0, "%s %s uses an unsupported compression",
				     kind_of(plain), label);
	else
		*out = COMP_NONE;
	return 0;
}

/*
 * Damaged data comes with EILSEQ (libarchive's private ARCHIVE_ERRNO_FILE_FORMAT), -1 or
 * EINVAL; only a real I/O failure is a system error rather than a bad layer.
 */
static bool io_failure(struct archive *a)
{
	int e = archive_errno(a);
	return !(e == EILSEQ || e == EINVAL || e <= 0);
}

static int archive_failed(struct archive *a, const char *label, bool plain, struct bv_error **err)
{
	const char *msg = archive_error_string(a);
	int e = io_failure(a) ? archive_errno(a) : 0;
	return bv_error_setc(err, e ? BV_ERR : BV_EINVALID, e, "could not read %s %s: %s",
			     kind_of(plain), label, msg ? msg : "unknown error");
}

/*
 * A libarchive reader with exactly the filter `comp` calls for, and the tar formats (or
 * "raw", to see the uncompressed stream itself); the caller opens it on its source.
 */
static int new_reader(enum compression comp, const char *label, bool raw, bool plain,
		      struct archive **out, struct bv_error **err)
{
	_cleanup_archive_ struct archive *a = archive_read_new();
	int r;

	if (!a)
		bv_oom();
	switch (comp) {
	case COMP_GZIP:
		r = archive_read_support_filter_gzip(a);
		break;
	case COMP_ZSTD:
		r = archive_read_support_filter_zstd(a);
		break;
	case COMP_BZIP2:
		r = archive_read_support_filter_bzip2(a);
		break;
	case COMP_XZ:
		r = archive_read_support_filter_xz(a);
		break;
	case COMP_NONE:
	default:
		r = archive_read_support_filter_none(a);
		break;
	}
	/* ARCHIVE_WARN means libarchive would fork an external program; bv does not do that. */
	if (r != ARCHIVE_OK)
		return bv_error_setc(err, BV_ERR, 0,
				     "%s %s: this libarchive cannot decompress it in process",
				     kind_of(plain), label);
	if (raw) {
		r = archive_read_support_format_raw(a);
		if (r == ARCHIVE_OK) /* an empty stream, which the tar reader accepts too */
			r = archive_read_support_format_empty(a);
	} else {
		r = archive_read_support_format_tar(a);
		if (r == ARCHIVE_OK)
			r = archive_read_support_format_gnutar(a);
		if (r == ARCHIVE_OK)
			r = archive_read_support_format_empty(a);
		/* reference data comes as zip too (never a layer); only uncompressed at the top */
		if (r == ARCHIVE_OK && plain && comp == COMP_NONE)
			r = archive_read_support_format_zip(a);
	}
	if (r != ARCHIVE_OK)
		return bv_error_setc(err, BV_ERR, 0, "%s %s: %s", kind_of(plain), label,
				     archive_error_string(a) ? archive_error_string(a)
							     : "libarchive failed");
	*out = TAKE_PTR(a);
	return 0;
}

/* libarchive is loaded and `media_type` is a layer type bv unpacks. */
static int can_read_layer(const char *media_type, const char *label, struct bv_error **err)
{
	if (!bv_archive_get(err))
		return BV_ERR;
	if (!media_type_supported(media_type))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "layer %s has the unsupported media type '%s'", label,
				     media_type);
	return 0;
}

/*
 * Opens the blob and a libarchive reader on it (new_reader() with the filter its magic bytes
 * call for).  `*fd` must outlive `*out`.
 */
static int open_reader(const char *path, const char *media_type, const char *label, bool raw,
		       bool plain, int *fd, struct archive **out, struct bv_error **err)
{
	_cleanup_archive_ struct archive *a = NULL;
	enum compression comp = COMP_NONE;
	int r;

	if ((r = can_read_layer(media_type, label, err)) < 0)
		return r;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return bv_error_setc(err, errno == ENOENT ? BV_ENOTFOUND : BV_ERR, errno,
				     "could not open %s '%s'", kind_of(plain), path);
	r = sniff(*fd, label, plain, &comp, err);
	if (r == 0)
		r = new_reader(comp, label, raw, plain, &a, err);
	if (r < 0)
		return r;
	if (archive_read_open_fd(a, *fd, READ_BLOCK) != ARCHIVE_OK)
		return archive_failed(a, label, plain, err);
	*out = TAKE_PTR(a);
	return 0;
}

int bv_unpack_diff_id(const char *layer_path, const char *media_type,
		      char out[BV_UNPACK_DIFF_ID_LEN + 1], struct bv_error **err)
{
	_cleanup_free_ char *label = layer_label(layer_path);
	_cleanup_close_ int fd = -1;
	_cleanup_archive_ struct archive *a = NULL;
	struct archive_entry *e;
	struct bv_sha256 *h;
	char hex[BV_SHA256_HEX_LEN + 1];
	int r;

	r = open_reader(layer_path, media_type, label, true, false, &fd, &a, err);
	if (r < 0)
		return r;
	h = bv_sha256_new();
	r = archive_read_next_header(a, &e);
	if (r != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			bv_sha256_free(h);
			return archive_failed(a, label, false, err);
		}
		for (;;) {
			const void *buf;
			size_t len;
			la_int64_t off;
			r = archive_read_data_block(a, &buf, &len, &off);
			if (r == ARCHIVE_EOF)
				break;
			if (r < ARCHIVE_WARN) {
				bv_sha256_free(h);
				return archive_failed(a, label, false, err);
			}
			bv_sha256_update(h, buf, len);
		}
	}
	bv_sha256_final_hex(hex, h);
	memcpy(out, "sha256:", 7);
	memcpy(out + 7, hex, BV_SHA256_HEX_LEN + 1);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Layer trees */

struct layer {
	struct archive *a;
	const char *label;
	bool plain; /* reference data (bv_unpack_archive), not an image layer */
	const struct bv_unpack_options *o;
	uint64_t max_entries, max_bytes;
	int root;
	uint64_t entries, bytes, dropped, dropped_xattrs;
	bool data_read;              /* the current entry's data was read by its extractor */
	struct bv_seal_map *digests; /* path -> digest of each file written, for the seal */
	bool ended;                  /* the stream ended in the padding after the current entry */
	const char *raw;             /* the current entry's name as the tar has it */
	struct bv_buf path;          /* ... cleaned */
	struct bv_buf target;        /* a hard link's cleaned target */
	/*
	 * The parent directory of the last entry, kept open for the next one, which in a tar is
	 * mostly in the same directory: `parent_dir` (cleaned, root-relative) resolved to
	 * `parent_fd`.  Stale once anything of the tree was removed or replaced, which could
	 * change what that path resolves to.
	 */
	int parent_fd;
	bool parent_stale;
	struct bv_buf parent_dir;
};

/* A layer read under the options `o`, its limits theirs or the defaults. */
static struct layer layer_init(const char *label, const struct bv_unpack_options *o)
{
	return (struct layer){
		.label = label,
		.o = o,
		.max_entries = o->max_entries ? o->max_entries : BV_UNPACK_DEFAULT_MAX_ENTRIES,
		.max_bytes = o->max_bytes ? o->max_bytes : BV_UNPACK_DEFAULT_MAX_BYTES,
		.path = BV_BUF_INIT,
		.target = BV_BUF_INIT,
		.parent_fd = -1,
		.parent_dir = BV_BUF_INIT,
	};
}

static void layer_release(struct layer *l)
{
	if (l->parent_fd >= 0)
		close(l->parent_fd);
	l->parent_fd = -1;
	bv_buf_release(&l->parent_dir);
	bv_buf_release(&l->path);
	bv_buf_release(&l->target);
}

/* "layer X: entry 'NAME' <what>" for entries that are invalid or hostile. */
__attribute__((format(printf, 3, 4))) static int
entry_invalid(struct bv_error **err, const struct layer *l, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	_cleanup_free_ char *name = printable(l->raw);
	va_list ap;

	va_start(ap, fmt);
	what = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(err, BV_EINVALID, 0, "%s %s: entry '%s' %s", kind_of(l->plain),
			     l->label, name, what);
}

/* For failing system calls; `e` is the errno. */
static int entry_failed(struct bv_error **err, const struct layer *l, int e)
{
	_cleanup_free_ char *name = printable(l->raw);
	return bv_error_setc(err, BV_ERR, e, "%s %s: could not extract entry '%s'",
			     kind_of(l->plain), l->label, name);
}

static int path_error(struct bv_error **err, const struct layer *l, int r, const char *link)
{
	_cleanup_free_ char *target = link ? printable(link) : NULL;
	const char *what = r == PATH_ESCAPES    ? "escapes the image root"
			   : r == PATH_TOO_LONG ? "has a name that is too long"
						: "is nested too deeply";
	if (target)
		return entry_invalid(err, l, "is a hard link to '%s', which %s", target, what);
	return entry_invalid(err, l, "%s", what);
}

/*
 * Why the directory of an entry, or of a hard link's target `link` (NULL: of the entry
 * itself), could not be opened: `r` is open_in_root()'s -errno.
 */
static int parent_error(struct bv_error **err, const struct layer *l, int r, const char *link)
{
	_cleanup_free_ char *shown = link ? printable(link) : NULL;
	_cleanup_free_ char *prefix =
		link ? bv_xasprintf("is a hard link to '%s', which ", shown) : bv_xstrdup("");
	if (r == -ELOOP)
		return entry_invalid(err, l,
				     "%sis below a symlink that cannot be resolved in the image",
				     prefix);
	if (r == -ENOTDIR)
		return entry_invalid(err, l, "%sis below something that is not a directory",
				     prefix);
	return entry_failed(err, l, -r);
}

/*
 * Opens the parent directory `dir` of the current entry, with entry-named errors; borrowed:
 * the layer keeps it for the next entry.
 */
static int entry_parent(struct layer *l, const char *dir, struct bv_error **err)
{
	int fd;
	if (l->parent_fd >= 0 && !l->parent_stale && !strcmp(dir, l->parent_dir.buf))
		return l->parent_fd;
	if (l->parent_fd >= 0)
		close(l->parent_fd);
	l->parent_fd = -1;
	fd = open_in_root(l->root, dir, true);
	if (fd < 0)
		return parent_error(err, l, fd, NULL);
	l->parent_fd = fd;
	l->parent_stale = false;
	bv_buf_reset(&l->parent_dir);
	bv_buf_puts(&l->parent_dir, dir);
	return fd;
}

/*
 * clear_slot() for an entry of the layer: what it removed may have been on the way to the
 * parent entry_parent() keeps, which is then resolved again for the next entry.
 */
static int layer_clear_slot(struct layer *l, int pfd, const char *name, bool keep_dir)
{
	int r = clear_slot(pfd, name, keep_dir);
	if (r <= 0)
		l->parent_stale = true;
	return r;
}

static mode_t entry_perm(const struct layer *l, struct archive_entry *e)
{
	return archive_entry_mode(e) & (l->o->rootless ? 0777 : 07777);
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	if (archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = archive_entry_mtime(e);
		ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	} else {
		ts[1].tv_sec = 0;
		ts[1].tv_nsec = UTIME_OMIT;
	}
	ts[0] = ts[1];
}

/* Applies the entry's owner (never in rootless mode) to `name` in `pfd`, or to `fd`. */
static int entry_owner(struct layer *l, struct archive_entry *e, int pfd, const char *name, int fd,
		       struct bv_error **err)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

	if (l->o->rootless)
		return 0;
	if (uid < 0 || gid < 0 || uid >= (la_int64_t)UINT32_MAX || gid >= (la_int64_t)UINT32_MAX)
		return entry_invalid(err, l, "has an invalid owner");
	if ((fd >= 0 ? fchown(fd, (uid_t)uid, (gid_t)gid)
		     : fchownat(pfd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW)) < 0)
		return entry_failed(err, l, errno);
	return 0;
}

/*
 * Extended attributes: only security.capability (file capabilities, such as ping's
 * cap_net_raw) changes what a container can do, and it is the one Docker itself writes into
 * `docker export` and `docker save`.  It is kept when not rootless; in rootless mode it goes,
 * like the setuid bit and for the same reason: files in a cache owned by root would grant
 * capabilities to whoever runs them on the host.  Other attributes (user.*, trusted.*,
 * security.selinux) are dropped.  Everything dropped is counted for one warning per layer.
 * Must run after fchown(), which clears security.capability.
 */
static int entry_xattrs(struct layer *l, struct archive_entry *e, int fd, struct bv_error **err)
{
	const char *name;
	const void *value;
	size_t size;

	if (archive_entry_xattr_reset(e) == 0)
		return 0;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!l->o->rootless && name && !strcmp(name, XATTR_CAPS)) {
			if (fsetxattr(fd, name, value, size, 0) == 0)
				continue;
			if (errno != EPERM && errno != ENOTSUP && errno != EINVAL)
				return entry_failed(err, l, errno);
		}
		l->dropped_xattrs++;
	}
	return 0;
}

static int check_slot(struct layer *l, int r, struct bv_error **err)
{
	return r < 0 ? entry_failed(err, l, -r) : r;
}

static int extract_dir(struct layer *l, struct archive_entry *e, int pfd, const char *name,
		       struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = 0;

	/* the name is mostly free: only when it is not, look at what holds it */
	if (mkdirat(pfd, name, 0700) < 0) {
		if (errno != EEXIST)
			return entry_failed(err, l, errno);
		r = check_slot(l, layer_clear_slot(l, pfd, name, true), err);
		if (r < 0)
			return r;
		if (r == 0 && mkdirat(pfd, name, 0700) < 0)
			return entry_failed(err, l, errno);
	}
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_failed(err, l, errno);
	r = entry_owner(l, e, pfd, name, fd, err);
	if (r == 0)
		r = entry_xattrs(l, e, fd, err);
	if (r < 0)
		return r;
	/* writable while the layer is filled in; seal_dir() takes the write bits away */
	if (fchmod(fd, entry_perm(l, e) | S_IRWXU) < 0)
		return entry_failed(err, l, errno);
	return 0;
}

/*
 * Whether a failure to read past the last byte of an entry is the stream ending inside the
 * entry's zero padding: libarchive reads the padding right after the data and says so in its
 * message.  Anything else (a damaged compressed stream, an I/O error) stays an error.
 */
static bool ended_in_padding(struct layer *l, uint64_t got, la_int64_t size,
			     struct archive_entry *e)
{
	const char *msg = archive_error_string(l->a);
	return got == (uint64_t)size && archive_entry_sparse_count(e) == 0 && msg &&
	       bv_str_has_prefix(msg, "Truncated input file");
}

/*
 * Reads the current entry's data, writing it at its offsets into `fd` (-1: only reads it).
 * Go's archive/tar, and so Docker, Podman, containerd and umoci, read a layer up to its last
 * complete entry even when the zero padding and the end-of-archive blocks after it are
 * missing (Debian 12's umoci 0.4.7 writes such layers); libarchive calls that truncation.
 * Here it sets l->ended instead, so the layer ends after this entry.  Data cut short before
 * the entry's size is still an error naming the entry.
 */
static int read_data(struct layer *l, struct archive_entry *e, int fd, la_int64_t size,
		     struct bv_error **err)
{
	uint64_t got = 0, end = 0, kicked = 0;
	/* a file's digest for its seal, while the bytes go by; holes would need zeros */
	struct bv_sha256 *h = fd >= 0 && l->digests ? bv_sha256_new() : NULL;
	bool in_order = true;
	int ret = 0;

	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(l->a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			if (ended_in_padding(l, got, size, e)) {
				l->ended = true;
				break;
			}
			if (io_failure(l->a))
				ret = archive_failed(l->a, l->label, l->plain, err);
			else
				ret = entry_invalid(err, l, "is damaged or cut short: %s",
						    archive_error_string(l->a)
							    ? archive_error_string(l->a)
							    : "unknown error");
			goto out;
		}
		if (off < 0 || (uint64_t)off > (uint64_t)size || len > (uint64_t)(size - off)) {
			ret = entry_invalid(err, l, "has more data than its size");
			goto out;
		}
		if (fd >= 0 && pwrite_all(fd, buf, len, (off_t)off) < 0) {
			ret = entry_failed(err, l, errno);
			goto out;
		}
		if ((uint64_t)off != got)
			in_order = false;
		if ((uint64_t)off + len > end)
			end = (uint64_t)off + len;
		/*
		 * A large file starts its write-back as it goes, so the syncfs() before the tree
		 * is published finds little left to write: 256 MiB in one file otherwise all go
		 * to the disk then, after the unpack (as src/lib/data does for datasets).
		 */
		if (fd >= 0 && end - kicked >= WRITEBACK_STEP) {
			(void)sync_file_range(fd, (off64_t)kicked, (off64_t)(end - kicked),
					      SYNC_FILE_RANGE_WRITE);
			kicked = end;
		}
		if (h && in_order)
			bv_sha256_update(h, buf, len);
		got += len;
	}
	/* sparse files may end in a hole */
	if (fd >= 0 && end < (uint64_t)size && ftruncate(fd, (off_t)size) < 0) {
		ret = entry_failed(err, l, errno);
		goto out;
	}
	if (h && in_order && got == (uint64_t)size) {
		char hex[BV_SHA256_HEX_LEN + 8];
		memcpy(hex, "sha256:", 7);
		bv_sha256_final_hex(hex + 7, h);
		h = NULL;
		bv_seal_map_put(l->digests, l->path.buf, hex);
	}
out:
	if (h)
		bv_sha256_free(h);
	return ret;
}

static int extract_file(struct layer *l, struct archive_entry *e, int pfd, const char *name,
			bool marker, struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	la_int64_t size = marker ? 0 : archive_entry_size(e);
	mode_t perm = marker ? 0444 : entry_perm(l, e);
	struct timespec ts[2];
	int r;

	if (size < 0)
		return entry_invalid(err, l, "has a negative size");
	if ((uint64_t)size > l->max_bytes - l->bytes)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "%s %s: more than %" PRIu64 " bytes of files",
				     kind_of(l->plain), l->label, l->max_bytes);
	l->bytes += (uint64_t)size;
	/* O_EXCL|O_NOFOLLOW: this only ever creates a new file; a taken name is cleared first */
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		r = check_slot(l, layer_clear_slot(l, pfd, name, false), err);
		if (r < 0)
			return r;
		fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return entry_failed(err, l, errno);
	if (!marker) {
		r = read_data(l, e, fd, size, err);
		if (r < 0)
			return r;
		l->data_read = true;
		r = entry_owner(l, e, pfd, name, fd, err);
		if (r == 0)
			r = entry_xattrs(l, e, fd, err);
		if (r < 0)
			return r;
	}
	/* after fchown(), which clears setuid */
	if (fchmod(fd, perm & ~(mode_t)0222) < 0)
		return entry_failed(err, l, errno);
	if (!marker) {
		entry_times(e, ts);
		(void)futimens(fd, ts); /* cosmetic; some file systems refuse odd timestamps */
	}
	return 0;
}

static int extract_symlink(struct layer *l, struct archive_entry *e, int pfd, const char *name,
			   struct bv_error **err)
{
	const char *target = archive_entry_symlink(e);
	struct timespec ts[2];
	int r;

	if (!target || !*target || strlen(target) >= PATH_MAX)
		return entry_invalid(err, l, "is a symlink without a valid target");
	if (l->plain) {
		/*
		 * Reference data is read on the host too, not only in a container's root: a
		 * link to /etc/passwd or ../../.ssh there would hand a host file to whoever
		 * reads the dataset.  Links must resolve inside the dataset's own directory, and
		 * a lexical check of "dir/target" is not enough: with s -> ../../c, a link
		 * a/b/t -> s/../../x looks like a/x but climbs out through c.  So ".." may only
		 * lead the target, as many as the link's real directory is deep, and the rest
		 * goes down; every link then lands inside, and so do chains of them.
		 */
		_cleanup_free_ char *shown = printable(target);
		_cleanup_free_ char *dir = path_in_root(l->root, pfd);
		size_t depth = 0, ups = 0;
		bool down = false, bad = false;
		const char *p = target;
		if (target[0] == '/')
			return entry_invalid(err, l, "is a symlink to the absolute path '%s'",
					     shown);
		if (!dir)
			return entry_failed(err, l, ENOENT);
		for (const char *c = dir; *c; c++)
			depth += c == dir || c[-1] == '/';
		while (*p) {
			const char *end = strchrnul(p, '/');
			size_t len = (size_t)(end - p);
			if (len == 2 && p[0] == '.' && p[1] == '.') {
				bad = bad || down || ++ups > depth;
			} else if (len && !(len == 1 && p[0] == '.')) {
				down = true;
			}
			p = *end ? end + 1 : end;
		}
		if (bad || !down)
			return entry_invalid(err, l,
					     "is a symlink to '%s', which leads out of the archive",
					     shown);
	}
	/* created as the image has it; it is never followed while unpacking */
	if (symlinkat(target, pfd, name) < 0) {
		if (errno != EEXIST)
			return entry_failed(err, l, errno);
		r = check_slot(l, layer_clear_slot(l, pfd, name, false), err);
		if (r < 0)
			return r;
		if (symlinkat(target, pfd, name) < 0)
			return entry_failed(err, l, errno);
	}
	r = entry_owner(l, e, pfd, name, -1, err);
	if (r < 0)
		return r;
	entry_times(e, ts);
	(void)utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int extract_special(struct layer *l, struct archive_entry *e, int pfd, const char *name,
			   struct bv_error **err)
{
	mode_t type = archive_entry_filetype(e);
	int r;

	if (l->plain)
		return entry_invalid(err, l,
				     "is a device, fifo or socket, which data may not hold");
	if (l->o->rootless || (type != AE_IFCHR && type != AE_IFBLK && type != AE_IFIFO)) {
		l->dropped++;
		return 0;
	}
	r = check_slot(l, layer_clear_slot(l, pfd, name, false), err);
	if (r < 0)
		return r;
	if (mknodat(pfd, name, type | entry_perm(l, e), archive_entry_rdev(e)) < 0)
		return entry_failed(err, l, errno);
	return entry_owner(l, e, pfd, name, -1, err);
}

/*
 * A hard link to an earlier entry of this layer, as link(2) in a chroot makes it: the
 * target's parents resolve inside the root, the target itself is never followed (a link to
 * a symlink links the symlink), and the entry's mode (and owner, when not rootless) then
 * applies to the shared inode, as Docker applies them.
 */
static int extract_hardlink(struct layer *l, struct archive_entry *e, const char *link, int pfd,
			    const char *name, struct bv_error **err)
{
	_cleanup_free_ char *tdir = NULL;
	_cleanup_close_ int tfd = -1;
	_cleanup_free_ char *shown = printable(link);
	const char *tname;
	struct stat st;
	int r = clean_path(link, &l->target);

	if (r < 0)
		return path_error(err, l, r, link);
	if (!l->target.len)
		return entry_invalid(err, l, "is a hard link to the image root");
	if (!strcmp(l->target.buf, l->path.buf))
		return 0;
	tdir = split_path(l->target.buf, &tname);
	tfd = open_in_root(l->root, tdir, false);
	if (tfd >= 0 && fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	else
		r = tfd < 0 ? tfd : 0;
	if (r == -ENOENT) {
		/* linking to a special file that rootless mode dropped */
		if (l->dropped) {
			l->dropped++;
			return 0;
		}
		return entry_invalid(err, l, "is a hard link to '%s', which does not exist", shown);
	}
	if (r < 0)
		return parent_error(err, l, r, link);
	if (S_ISDIR(st.st_mode))
		return entry_invalid(err, l, "is a hard link to the directory '%s'", shown);
	/* data: a symlink checked where it was made would mean something else elsewhere */
	if (l->plain && S_ISLNK(st.st_mode))
		return entry_invalid(err, l, "is a hard link to the symlink '%s'", shown);
	r = check_slot(l, layer_clear_slot(l, pfd, name, false), err);
	if (r < 0)
		return r;
	/* flags 0: link the target itself, never what it might point to */
	if (linkat(tfd, tname, pfd, name, 0) < 0)
		return entry_failed(err, l, errno);
	if (S_ISLNK(st.st_mode))
		return 0;
	r = entry_owner(l, e, pfd, name, -1, err);
	if (r < 0)
		return r;
	if (fchmodat(pfd, name, entry_perm(l, e) & ~(mode_t)0222, 0) < 0)
		return entry_failed(err, l, errno);
	return 0;
}

static int extract_entry(struct layer *l, struct archive_entry *e, struct bv_error **err)
{
	_cleanup_free_ char *dir = NULL;
	int pfd; /* the layer's (entry_parent()) */
	const char *name, *link;
	mode_t type;
	int r;

	l->raw = archive_entry_pathname(e);
	if (!l->raw)
		l->raw = archive_entry_pathname_utf8(e);
	if (!l->raw)
		return bv_error_setc(err, BV_EINVALID, 0, "%s %s: entry %" PRIu64 " has no name",
				     kind_of(l->plain), l->label, l->entries);
	r = clean_path(l->raw, &l->path);
	if (r < 0)
		return path_error(err, l, r, NULL);
	if (!l->path.len)
		return 0; /* "./": the root's own metadata is bv's to choose */
	dir = split_path(l->path.buf, &name);
	type = archive_entry_filetype(e);
	link = archive_entry_hardlink(e);

	if (l->plain && type != AE_IFDIR && type != AE_IFREG && type != AE_IFLNK && !link)
		return entry_invalid(err, l,
				     "is a device, fifo or socket, which data may not hold");
	if (l->plain)
		goto parent; /* no whiteouts: a ".wh." name is an ordinary file in data */
	if (bv_str_has_prefix(name, WHITEOUT_META) && strcmp(name, OPAQUE))
		return 0; /* aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs) */
	if (bv_str_has_prefix(name, WHITEOUT) && strcmp(name, OPAQUE) &&
	    !valid_whiteout_target(name + strlen(WHITEOUT)))
		return entry_invalid(err, l, "is not a valid whiteout");

	if (!link && !bv_str_has_prefix(name, WHITEOUT) && type != AE_IFDIR && type != AE_IFREG &&
	    type != AE_IFLNK && l->o->rootless) {
		l->dropped++; /* before creating its parent, which the image may not have */
		return 0;
	}
parent:
	pfd = entry_parent(l, dir, err);
	if (pfd < 0)
		return pfd;
	if (!l->plain && bv_str_has_prefix(name, WHITEOUT))
		return extract_file(l, e, pfd, name, true, err);
	if (link)
		return extract_hardlink(l, e, link, pfd, name, err);
	switch (type) {
	case AE_IFDIR:
		return extract_dir(l, e, pfd, name, err);
	case AE_IFREG:
		return extract_file(l, e, pfd, name, false, err);
	case AE_IFLNK:
		return extract_symlink(l, e, pfd, name, err);
	default:
		return extract_special(l, e, pfd, name, err);
	}
}

static int read_entries(struct layer *l, struct bv_error **err)
{
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(l->a, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN && l->entries && l->path.len && !io_failure(l->a)) {
			/* l->path still names the entry before, which helps find the damage */
			_cleanup_free_ char *prev = printable(l->path.buf);
			const char *msg = archive_error_string(l->a);
			return bv_error_setc(
				err, BV_EINVALID, 0,
				"%s %s: the entry after '%s' is damaged or cut short: %s",
				kind_of(l->plain), l->label, prev, msg ? msg : "unknown error");
		}
		if (r < ARCHIVE_WARN)
			return archive_failed(l->a, l->label, l->plain, err);
		if (++l->entries > l->max_entries)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "%s %s: more than %" PRIu64 " entries",
					     kind_of(l->plain), l->label, l->max_entries);
		l->data_read = false;
		r = extract_entry(l, e, err);
		/* whatever replaced a file at this path has no known digest (seal.h hashes it) */
		if (r == 0 && !l->data_read && l->path.len && l->digests)
			bv_seal_map_put(l->digests, l->path.buf, "");
		/* data nobody wrote is still read, so a missing trailer is found the same way */
		if (r == 0 && !l->data_read)
			r = read_data(l, e, -1, archive_entry_size(e), err);
		if (r < 0 || l->ended)
			return r;
	}
}

static const struct bv_unpack_options default_options = BV_UNPACK_OPTIONS_INIT;

static void report_drops(const struct layer *l, const struct bv_unpack_options *o)
{
	if (l->dropped && o->warnings)
		bv_strv_pushf(o->warnings,
			      "layer %s: dropped %" PRIu64
			      " device nodes, fifos and sockets (rootless mode cannot create them)",
			      l->label, l->dropped);
	if (l->dropped_xattrs && o->warnings)
		bv_strv_pushf(o->warnings, "layer %s: dropped %" PRIu64 " extended attributes (%s)",
			      l->label, l->dropped_xattrs,
			      o->rootless ? "rootless mode keeps none"
					  : "only security.capability is kept");
}

int bv_unpack_layer(const char *layer_path, const char *media_type, const char *dest_dir,
		    const struct bv_unpack_options *opts, struct bv_error **err)
{
	const struct bv_unpack_options *o = opts ? opts : &default_options;
	_cleanup_free_ char *label = layer_label(layer_path);
	_cleanup_close_ int fd = -1;
	_cleanup_archive_ struct archive *a = NULL;
	struct stage s;
	struct layer l = layer_init(label, o);
	int r = stage_begin(&s, dest_dir, err);

	if (r != 0) {
		if (r < 0)
			stage_abort(&s);
		stage_release(&s);
		return r < 0 ? r : 0;
	}
	r = open_reader(layer_path, media_type, label, false, false, &fd, &a, err);
	if (r == 0) {
		l.a = a;
		l.root = s.root;
		l.digests = bv_seal_map_new();
		r = read_entries(&l, err);
	}
	layer_release(&l);
	if (r == 0)
		r = stage_commit(&s, l.digests, err);
	bv_seal_map_free(l.digests);
	if (r < 0) {
		stage_abort(&s);
		return r;
	}
	stage_release(&s);
	report_drops(&l, o);
	return 0;
}

/*
 * Layers read while they download (bv_unpack_layer_from()): pread() on the growing blob,
 * waiting through the source for bytes that are not written yet.
 */
struct source_reader {
	const struct bv_unpack_source *src;
	uint64_t pos;
	bool failed;
	struct bv_error *err; /* why the source stopped, when it did */
	char buf[READ_BLOCK];
};

static la_ssize_t source_read(struct archive *a, void *payload, const void **out)
{
	struct source_reader *r = payload;
	const struct bv_unpack_source *src = r->src;

	(void)a;
	if (r->failed)
		return -1;
	if (r->pos >= src->size)
		return 0; /* all read: the verdict decides now */
	if (src->check && src->check(src->payload, &r->err) < 0) {
		r->failed = true;
		return -1;
	}
	while (r->pos < src->size) {
		size_t want =
			src->size - r->pos < READ_BLOCK ? (size_t)(src->size - r->pos) : READ_BLOCK;
		ssize_t n = pread(src->fd, r->buf, want, (off_t)r->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			bv_error_set_errno(&r->err, "could not read the layer");
			r->failed = true;
			return -1;
		}
		if (n > 0) {
			r->pos += (uint64_t)n;
			*out = r->buf;
			return n;
		}
		if (src->wait(src->payload, r->pos, &r->err) < 0) {
			r->failed = true;
			return -1;
		}
	}
	return 0;
}

int bv_unpack_layer_from(const struct bv_unpack_source *src, const char *label,
			 const char *media_type, const char *dest_dir,
			 const struct bv_unpack_options *opts, struct bv_error **err)
{
	const struct bv_unpack_options *o = opts ? opts : &default_options;
	_cleanup_archive_ struct archive *a = NULL;
	struct source_reader *rd = NULL;
	enum compression comp = COMP_NONE;
	struct stage s;
	struct layer l = layer_init(label, o);
	uint64_t head = src->size < 6 ? src->size : 6;
	struct stat st;
	int r;

	if ((r = can_read_layer(media_type, label, err)) < 0)
		return r;
	r = stage_begin(&s, dest_dir, err);
	if (r != 0) {
		if (r < 0)
			stage_abort(&s);
		stage_release(&s);
		return r < 0 ? r : 0;
	}
	/* the magic bytes first: sniff() needs them in the file */
	while (r == 0) {
		if (fstat(src->fd, &st) < 0)
			r = bv_error_set_errno(err, "could not stat layer %s", label);
		else if ((uint64_t)st.st_size >= head)
			break;
		else
			r = src->wait(src->payload, (uint64_t)st.st_size, err);
	}
	if (r == 0)
		r = sniff(src->fd, label, false, &comp, err);
	if (r == 0)
		r = new_reader(comp, label, false, false, &a, err);
	if (r == 0) {
		rd = bv_xcalloc(1, sizeof(*rd));
		rd->src = src;
		if (archive_read_open(a, rd, NULL, source_read, NULL) != ARCHIVE_OK)
			r = archive_failed(a, label, false, err);
	}
	if (r == 0) {
		l.a = a;
		l.root = s.root;
		l.digests = bv_seal_map_new();
		r = read_entries(&l, err);
	}
	if (r < 0 && rd && rd->err) {
		/* the source stopped (an abort, a read error): that is the cause, not the tar */
		if (err) {
			bv_error_free(*err);
			*err = TAKE_PTR(rd->err);
		}
		r = BV_ERR;
	}
	layer_release(&l);
	/* nothing is published before the blob's digest is known good */
	if (r == 0)
		r = src->verdict(src->payload, err);
	if (r == 0)
		r = stage_commit(&s, l.digests, err);
	bv_seal_map_free(l.digests);
	if (a) {
		archive_read_free(a);
		a = NULL;
	}
	if (rd) {
		bv_error_free(rd->err);
		free(rd);
	}
	if (r < 0) {
		stage_abort(&s);
		return r;
	}
	stage_release(&s);
	report_drops(&l, o);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reference data: archives and compressed files that are not image layers */

int bv_unpack_archive(int dest_fd, const char *archive_path, const char *label,
		      const struct bv_unpack_options *opts, struct bv_error **err)
{
	const struct bv_unpack_options *o = opts ? opts : &default_options;
	_cleanup_close_ int fd = -1;
	_cleanup_archive_ struct archive *a = NULL;
	struct bv_unpack_options plain_opts = *o;
	struct layer l = layer_init(label, o);
	int r;

	/* data never carries owners, setuid bits or capabilities into the cache */
	plain_opts.rootless = true;
	l.plain = true;
	l.o = &plain_opts;
	l.root = dest_fd;
	r = open_reader(archive_path, NULL, label, false, true, &fd, &a, err);
	if (r == 0) {
		l.a = a;
		r = read_entries(&l, err);
	}
	layer_release(&l);
	if (r == 0 && l.dropped_xattrs && o->warnings)
		bv_strv_pushf(o->warnings, "archive %s: dropped %" PRIu64 " extended attributes",
			      label, l.dropped_xattrs);
	return r;
}

int bv_unpack_decompress(uint64_t *size_out, int out_fd, const char *path, const char *label,
			 uint64_t max_bytes, struct bv_sha256 *h, struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_archive_ struct archive *a = NULL;
	struct archive_entry *e;
	uint64_t total = 0;
	int r = open_reader(path, NULL, label, true, true, &fd, &a, err);

	if (r < 0)
		return r;
	if (!max_bytes)
		max_bytes = BV_UNPACK_DEFAULT_MAX_BYTES;
	r = archive_read_next_header(a, &e);
	if (r == ARCHIVE_EOF)
		goto done;
	if (r < ARCHIVE_WARN)
		return archive_failed(a, label, true, err);
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return archive_failed(a, label, true, err);
		if (len > max_bytes - total)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "archive %s: decompresses to more than %" PRIu64
					     " bytes",
					     label, max_bytes);
		if (bv_write_all(out_fd, buf, len) < 0)
			return bv_error_set_errno(err, "could not write what %s decompresses to",
						  label);
		if (h)
			bv_sha256_update(h, buf, len);
		total += len;
	}
done:
	*size_out = total;
	return 0;
}

int bv_unpack_read_only(int dir_fd, const char *label, struct bv_error **err)
{
	int r = seal_dir(dir_fd);
	if (r < 0)
		return bv_error_setc(err, BV_ERR, -r, "could not make '%s' read-only", label);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Root filesystems */

struct image {
	const struct bv_unpack_options *o;
	const char *tree;              /* the layer tree being applied, for messages */
	struct bv_seal_map *layer_map; /* its files' digests, from its seal */
	struct bv_seal_map *image_map; /* the digest of every file the image has so far */
	char *dirbuf;                  /* BV_DIRBUF_SIZE bytes for list_dents() */
};

__attribute__((format(printf, 4, 5))) static int
image_failed(struct bv_error **err, const struct image *im, int e, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	what = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return bv_error_setc(err, BV_ERR, e, "layer tree '%s': %s", im->tree, what);
}

/* The names in directory `fd` (borrowed), sorted, so images come out the same every time. */
static int list_names(int fd, struct bv_strv *out)
{
	_cleanup_closedir_ DIR *d = NULL;
	int r0 = open_dir_stream(fd, &d);

	if (r0 < 0)
		return r0;
	for (;;) {
		struct dirent *de;
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			bv_strv_push(out, de->d_name);
	}
	if (errno)
		return -errno;
	bv_strv_sort(out);
	return 0;
}

/* One entry of a layer directory: its name and its type as the directory says (DT_*). */
struct dent {
	char *name;
	unsigned char type; /* DT_UNKNOWN where the file system does not say */
};

struct dents {
	struct dent *v;
	size_t n, alloc;
};

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

static void dents_release(struct dents *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	d->v = NULL;
	d->n = d->alloc = 0;
}

static int push_dent(const char *name, unsigned char type, void *payload)
{
	struct dents *out = payload;
	BV_GROW(out->v, out->alloc, out->n + 1);
	out->v[out->n].name = bv_xstrdup(name);
	out->v[out->n++].type = type;
	return 0;
}

/*
 * The entries of the directory `fd` (borrowed, just opened: read from its start), sorted, so
 * images come out the same every time; the types bv_dir_each() gives spare a stat of every
 * file.  `buf` is BV_DIRBUF_SIZE bytes of scratch.
 */
static int list_dents(int fd, char *buf, struct dents *out)
{
	int r = bv_dir_each(fd, buf, push_dent, out);
	if (r < 0)
		return r;
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), dent_cmp);
	return 0;
}

/* The fallback when a hard link is impossible (another file system, too many links). */
static int copy_file(int lfd, int rfd, const char *name, const struct stat *st, bool rootless)
{
	_cleanup_close_ int in = openat(lfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	char buf[64 * 1024];

	if (in < 0)
		return -errno;
	out = openat(rfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (bv_write_all(out, buf, (size_t)n) < 0)
			return -errno;
	}
	if (!rootless && fchown(out, st->st_uid, st->st_gid) < 0)
		return -errno;
	if (!rootless) {
		/* the one attribute layer trees keep (see entry_xattrs) */
		char caps[256];
		ssize_t n = fgetxattr(in, XATTR_CAPS, caps, sizeof(caps));
		if (n > 0 && fsetxattr(out, XATTR_CAPS, caps, (size_t)n, 0) < 0 && errno != EPERM &&
		    errno != ENOTSUP)
			return -errno;
	}
	if (fchmod(out, st->st_mode & 07777 & ~(mode_t)0222) < 0)
		return -errno;
	(void)futimens(out, ts);
	return 0;
}

static int apply_dir(struct image *im, int lfd, int rfd, const char *rel, unsigned depth,
		     struct bv_error **err);

/*
 * The layer directory `name` (a directory in the layer tree, whatever its type says in the
 * root filesystem so far): made or kept in `rfd` with the layer's mode, then filled.
 */
static int apply_subdir(struct image *im, int lfd, int rfd, const char *path, const char *name,
			unsigned depth, struct bv_error **err)
{
	_cleanup_close_ int lsub = -1, rsub = -1;
	mode_t mask = im->o->rootless ? 0777 : 07777;
	struct stat st;
	int r = 0;

	if (depth >= BV_UNPACK_MAX_DEPTH)
		return image_failed(err, im, 0, "'%s' is nested too deeply", path);
	lsub = openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (lsub < 0)
		return image_failed(err, im, errno, "could not open directory '%s'", path);
	if (fstat(lsub, &st) < 0)
		return image_failed(err, im, errno, "could not stat '%s'", path);
	/* Most names are new: mkdirat() first, and only when the name is taken, look at what
	 * holds it (a directory replaces a lower non-directory, as in overlayfs). */
	if (mkdirat(rfd, name, 0700) < 0) {
		r = errno == EEXIST ? clear_slot(rfd, name, true) : -errno;
		if (r == 0 && mkdirat(rfd, name, 0700) < 0)
			r = -errno;
		if (r < 0)
			return image_failed(err, im, -r, "could not create directory '%s'", path);
	}
	rsub = openat(rfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rsub < 0)
		return image_failed(err, im, errno, "could not open directory '%s'", path);
	if (!im->o->rootless && fchown(rsub, st.st_uid, st.st_gid) < 0)
		return image_failed(err, im, errno, "could not chown '%s'", path);
	if (fchmod(rsub, (st.st_mode & mask) | S_IRWXU) < 0)
		return image_failed(err, im, errno, "could not chmod '%s'", path);
	return apply_dir(im, lsub, rsub, path, depth + 1, err);
}

/*
 * Adds (or replaces) the non-whiteout entry `de` of the layer directory `lfd` in `rfd`.
 * The entry's type comes from the directory listing, so a file or symlink costs one
 * linkat() when its name is free in the root filesystem so far, which it mostly is; only a
 * taken name, an unknown type or a failed link look further.
 */
static int apply_entry(struct image *im, int lfd, int rfd, const char *rel, const struct dent *de,
		       unsigned depth, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(rel, de->name);
	const char *name = de->name;
	unsigned char type = de->type;
	struct stat st;
	int r, e;

	if (type == DT_UNKNOWN) {
		if (fstatat(lfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return image_failed(err, im, errno, "could not stat '%s'", path);
		type = (unsigned char)IFTODT(st.st_mode);
	}
	if (type == DT_DIR)
		return apply_subdir(im, lfd, rfd, path, name, depth, err);
	if (type == DT_REG) {
		const char *digest = bv_seal_map_get(im->layer_map, path);
		if (digest)
			bv_seal_map_put(im->image_map, path, digest);
	}
	/*
	 * A symlink is hard-linked like a file (linkat() without AT_SYMLINK_FOLLOW links the
	 * symlink itself): same target, same owner, and on this project's machines symlinkat()
	 * cost 0.5 ms against linkat()'s 0.02 ms, with a busybox base layer bringing hundreds.
	 */
	if (linkat(lfd, name, rfd, name, 0) == 0)
		return 0;
	if (errno == EEXIST) {
		/* a lower layer's entry: whatever it is goes */
		r = clear_slot(rfd, name, false);
		if (r < 0)
			return image_failed(err, im, -r, "could not replace '%s'", path);
		if (linkat(lfd, name, rfd, name, 0) == 0)
			return 0;
	}
	e = errno;
	if (fstatat(lfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return image_failed(err, im, errno, "could not stat '%s'", path);
	r = clear_slot(rfd, name, false);
	if (r < 0)
		return image_failed(err, im, -r, "could not replace '%s'", path);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		ssize_t n = readlinkat(lfd, name, target, sizeof(target));
		if (n < 0 || (size_t)n >= sizeof(target))
			return image_failed(err, im, n < 0 ? errno : ENAMETOOLONG,
					    "could not read symlink '%s'", path);
		target[n] = '\0';
		if (symlinkat(target, rfd, name) < 0)
			return image_failed(err, im, errno, "could not create symlink '%s'", path);
		if (!im->o->rootless &&
		    fchownat(rfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			return image_failed(err, im, errno, "could not chown '%s'", path);
		(void)utimensat(rfd, name, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if ((e == EXDEV || e == EMLINK) && S_ISREG(st.st_mode)) {
		r = copy_file(lfd, rfd, name, &st, im->o->rootless);
		if (r < 0)
			return image_failed(err, im, -r, "could not copy '%s'", path);
		return 0;
	}
	return image_failed(err, im, e, "could not link '%s'", path);
}

static int dent_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct dent *)elem)->name);
}

static const struct dent *dents_find(const struct dents *d, const char *name)
{
	return d->n ? bsearch(name, d->v, d->n, sizeof(*d->v), dent_key_cmp) : NULL;
}

/* Applies the layer directory `lfd` onto the root filesystem directory `rfd` (both borrowed). */
static int apply_dir(struct image *im, int lfd, int rfd, const char *rel, unsigned depth,
		     struct bv_error **err)
{
	_cleanup_(dents_release) struct dents names = {0};
	int r = list_dents(lfd, im->dirbuf, &names);

	if (r < 0)
		return image_failed(err, im, -r, "could not read directory '%s'", *rel ? rel : ".");
	/* Whiteouts act on the layers below only, so they go before this layer's own files. */
	if (dents_find(&names, OPAQUE)) {
		_cleanup_strv_ struct bv_strv lower = BV_STRV_INIT;
		r = list_names(rfd, &lower);
		bv_strv_foreach (n, &lower) {
			if (r >= 0)
				r = remove_at(rfd, *n);
		}
		if (r < 0)
			return image_failed(err, im, -r, "could not empty opaque directory '%s'",
					    *rel ? rel : ".");
	}
	for (size_t i = 0; i < names.n; i++) {
		const char *n = names.v[i].name;
		const char *victim = n + strlen(WHITEOUT);
		if (!bv_str_has_prefix(n, WHITEOUT) || bv_str_has_prefix(n, WHITEOUT_META))
			continue;
		if (!valid_whiteout_target(victim))
			continue;
		r = remove_at(rfd, victim);
		if (r < 0) {
			_cleanup_free_ char *path = bv_path_join(rel, victim);
			return image_failed(err, im, -r, "could not delete '%s'", path);
		}
	}
	for (size_t i = 0; i < names.n; i++) {
		if (bv_str_has_prefix(names.v[i].name, WHITEOUT))
			continue;
		r = apply_entry(im, lfd, rfd, rel, &names.v[i], depth, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * An empty directory at the image's top where every run mounts something (the project at
 * /workspace): with it in the image a run needs no overlay to create the mount point.
 */
static int add_mount_point(struct stage *s, const char *name, struct bv_error **err)
{
	if (!valid_whiteout_target(name))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid mount point '%s'", name);
	if (mkdirat(s->root, name, 0755) < 0 && errno != EEXIST)
		return bv_error_set_errno(err, "could not create '%s' in '%s'", name, s->tmp);
	return 0;
}

int bv_unpack_image(const char *const *layer_trees, size_t n, const char *rootfs_dir,
		    const struct bv_unpack_options *opts, struct bv_error **err)
{
	struct image im = {.o = opts ? opts : &default_options};
	struct stage s;
	int r = stage_begin(&s, rootfs_dir, err);

	if (r != 0) {
		if (r < 0)
			stage_abort(&s);
		stage_release(&s);
		return r < 0 ? r : 0;
	}
	im.image_map = bv_seal_map_new();
	im.dirbuf = bv_xmalloc(BV_DIRBUF_SIZE);
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_close_ int lfd = open(layer_trees[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		im.tree = layer_trees[i];
		im.layer_map = bv_seal_map_new();
		bv_seal_map_load(im.layer_map, layer_trees[i]);
		if (lfd < 0)
			r = bv_error_setc(err, errno == ENOENT ? BV_ENOTFOUND : BV_ERR, errno,
					  "could not open layer tree '%s'", layer_trees[i]);
		else
			r = apply_dir(&im, lfd, s.root, "", 0, err);
		bv_seal_map_free(im.layer_map);
		im.layer_map = NULL;
	}
	if (r == 0 && im.o->mount_point)
		r = add_mount_point(&s, im.o->mount_point, err);
	if (r == 0)
		r = stage_commit(&s, im.image_map, err);
	bv_seal_map_free(im.image_map);
	free(im.dirbuf);
	if (r < 0) {
		stage_abort(&s);
		return r;
	}
	stage_release(&s);
	return 0;
}

int bv_unpack_remove_tree(const char *dir, struct bv_error **err)
{
	_cleanup_free_ char *p = bv_xstrdup(dir);
	size_t n = strlen(p);
	int r;

	/* a trailing slash would make the kernel follow a final symlink */
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	if (!n || !strcmp(p, "/") || !strcmp(p, ".") || !strcmp(p, ".."))
		return bv_error_setc(err, BV_EINVALID, 0, "refusing to remove '%s'", dir);
	{
		/* the seal goes first: a crash halfway leaves an unsealed tree, never a sealed one
		 */
		_cleanup_free_ char *seal = bv_seal_path(p);
		if (unlink(seal) < 0 && errno != ENOENT)
			return bv_error_set_errno(err, "could not remove '%s'", seal);
	}
	r = remove_at(AT_FDCWD, p);
	if (r < 0)
		return bv_error_setc(err, BV_ERR, -r, "could not remove '%s'", p);
	return 0;
}

bool bv_unpack_is_sealed(const char *tree)
{
	_cleanup_free_ char *seal = bv_seal_path(tree);
	return bv_path_exists(seal);
}

int bv_unpack_verify(char **problem, const char *tree, bool fast, bool unseal_damaged,
		     struct bv_error **err)
{
	int r = bv_seal_check(problem, tree, fast, err);
	if (r == 0 && unseal_damaged) {
		_cleanup_free_ char *seal = bv_seal_path(tree);
		if (unlink(seal) < 0 && errno != ENOENT)
			return bv_error_set_errno(err, "could not remove '%s'", seal);
	}
	return r;
}
