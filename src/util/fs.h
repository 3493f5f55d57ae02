/*
 * fs.h - file system helpers: atomic replacement, directory trees, path strings, I/O loops,
 * bounded reads of whole files into a struct bv_buf.
 *
 * Calling sequence:
 *   if (bv_mkdir_p(dir, 0755, err) < 0) ...
 *   _cleanup_free_ char *path = bv_path_join(dir, "bv.lock");
 *   if (bv_write_file_atomic(path, text, len, 0644, err) < 0) ...
 *   if (bv_rm_rf(staging, err) < 0) ...
 *   if (bv_buf_read_file(&text, path, 1u << 20, err) < 0) ...      at most 1 MiB
 *
 * Why atomic replacement: bv rewrites lock files and install manifests that other bv processes
 * (and a crash) must never see half-written.  A reader sees either the old file or the new
 * one, and after bv_write_file_atomic() returns both the data and the rename are on disk.
 *
 * Ownership: bv_path_join() returns a new string the caller frees; nothing else allocates
 * memory the caller sees.
 *
 * Errors: functions taking `err` return 0 or BV_ERR and describe the failing path there.
 * bv_write_all() and bv_read_all() are low-level loops that return -1 with errno set, so
 * callers can word the message for what the descriptor is.
 */
#ifndef BV_UTIL_FS_H
#define BV_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bv_buf;
struct bv_error;

/*
 * Replaces `path` with `len` bytes of `data`, with permission bits exactly `mode` (the umask
 * does not apply).  On failure the temporary file is removed and `path` is untouched, except
 * when only the final fsync of the directory fails: the new contents are then in place but
 * may not survive a crash, and the error says so.
 */
int bv_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			 struct bv_error **err);

/*
 * The same for a file that must not exist yet: the complete file appears under `path` at once
 * (renameat2(RENAME_NOREPLACE), else link(2)), or not at all.  Of two processes creating the
 * same path, exactly one succeeds; the other gets BV_EEXISTS ("'<path>' already exists") and
 * the file it found is untouched.
 */
int bv_write_file_new(const char *path, const void *data, size_t len, mode_t mode,
		      struct bv_error **err);

/* Creates `path` and its missing parents with `mode` (subject to the umask); existing is ok. */
int bv_mkdir_p(const char *path, mode_t mode, struct bv_error **err);

/*
 * Whether a file `st` describes (just taken by stat(2)) is sure to get another ctime when it
 * next changes: its ctime is at least two ticks of the kernel's file clock old (a second on a
 * file system that keeps no nanoseconds).  Caches keyed by a file's stat use it against the
 * "racily clean" case: two writes in one tick that leave the same times.
 */
struct stat;
bool bv_stat_settled(const struct stat *st);

/*
 * What such caches key a file by: device, inode, size, mtime and ctime (seconds and
 * nanoseconds).  A rename, a rewrite in place, or a touch -d back to the old mtime all change
 * it (ctime cannot be set from user space).
 */
#define BV_STAT_KEY_LEN 7
void bv_stat_key(uint64_t key[BV_STAT_KEY_LEN], const struct stat *st);

/* Whether anything is at `path`, without following a final symlink (a dangling link exists). */
bool bv_path_exists(const char *path);

/*
 * Marks the directory `path` as the top of unrelated trees (FS_TOPDIR_FL, chattr +T), so that
 * ext4 places each directory made in it in a block group of its own choosing (the Orlov
 * allocator) rather than beside its parent: the cache's layer and root filesystem trees have
 * nothing to do with each other.  Best effort, and nothing depends on it: other file systems
 * ignore or refuse the flag.
 */
void bv_dir_mark_top(const char *path);

/*
 * Returns "a/b" as a new string with exactly one '/' between the parts, whatever slashes `a`
 * ends with or `b` starts with.  `b` is always appended, even when it starts with '/', so
 * joining a directory with untrusted input cannot escape to the root.  An empty part yields a
 * copy of the other.
 */
char *bv_path_join(const char *a, const char *b);

/*
 * Removes `path` and, if it is a directory, everything below it, like `rm -rf`: a missing path
 * is success.  Symlinks are removed, never followed, and directories are opened with
 * O_NOFOLLOW relative to their parent, so a link swapped in concurrently cannot redirect the
 * removal outside the tree.  Read-only directories that we own (Go's module cache makes them
 * 0555) are made writable first.
 */
/*
 * Disk usage of the trees at `paths` (NULL-terminated; missing ones count 0), as du(1) counts
 * it: allocated blocks, each inode once however many hard links reach it (the unpacked
 * layers and image trees of the cache share theirs).  Symbolic links are not followed.
 * `bytes_out[i]` gets what path i adds to the paths before it; the total is their sum.
 */
int bv_disk_usage(int64_t *bytes_out, const char *const *paths, struct bv_error **err);

int bv_rm_rf(const char *path, struct bv_error **err);

/*
 * Whether `rel` names something that exists beneath the directory `base` without leaving it:
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so neither ".." nor a symlink may climb
 * out.  0 when it does, -EXDEV when the path escapes `base`, other -errno (-ENOENT) when it
 * cannot be opened.  Kernels without openat2 (before 5.6) get a lexical check only.
 */
int bv_path_check_beneath(const char *base, const char *rel);

/* The running executable's absolute path (/proc/self/exe) as a new string; NULL with errno. */
char *bv_executable_path(void);

/*
 * Appends everything readable from `fd` to `b` until EOF.  Fails (BV_ERR, EFBIG) when more
 * than `max` bytes would be appended, and with the errno of read(2) otherwise; `b` is then as
 * it was.  Every input from outside is read through these two, so each has a bound.
 */
int bv_buf_read_fd(struct bv_buf *b, int fd, size_t max, struct bv_error **err);

/* Appends the whole file at `path` (see bv_buf_read_fd); BV_ENOTFOUND when it does not exist. */
int bv_buf_read_file(struct bv_buf *b, const char *path, size_t max, struct bv_error **err);

/* Writes all `len` bytes, retrying on EINTR and short writes; 0 or -1 with errno. */
int bv_write_all(int fd, const void *buf, size_t len);

/* Reads until `len` bytes or EOF, retrying on EINTR; returns the count or -1 with errno. */
ssize_t bv_read_all(int fd, void *buf, size_t len);

/*
 * Calls `fn` for every entry of the directory `fd` (borrowed, just opened: read from its
 * start) but "." and "..", in the file system's order, with the entry's name and d_type
 * (DT_UNKNOWN where the file system gives none).  getdents64() on `fd` itself: a DIR stream
 * would cost a second descriptor and more system calls per directory.  `buf` is
 * BV_DIRBUF_SIZE bytes of scratch.  Returns 0, -errno, or the first negative value of `fn`.
 */
#define BV_DIRBUF_SIZE (32 * 1024)
int bv_dir_each(int fd, char *buf, int (*fn)(const char *name, unsigned char type, void *payload),
		void *payload);

#endif
