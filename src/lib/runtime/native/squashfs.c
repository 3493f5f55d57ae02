/*
 * squashfs.c - SquashFS images of root filesystems: built by mksquashfs, recorded, checked,
 * and mounted for a run (see squashfs.h and bv/squashfs.h).
 */
#include "lib/runtime/native/squashfs.h"

#include <bv/error.h>
#include <bv/paths.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/install-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define IMAGE_SUFFIX  ".sqfs"
#define RECORD_SUFFIX ".record"

int bv_squashfs_paths(char **image_out, char **record_out, const char *top_digest,
		      struct bv_error **err)
{
	_cleanup_free_ char *rootfs = NULL, *cache = NULL;
	int r = bv_install_shared_rootfs_path(&rootfs, top_digest, err);
	if (r < 0)
		return r;
	r = bv_cache_dir(&cache, err);
	if (r < 0)
		return r;
	*image_out = bv_xasprintf("%s/squashfs/%s" IMAGE_SUFFIX, cache, strrchr(rootfs, '/') + 1);
	*record_out = bv_xasprintf("%s" RECORD_SUFFIX, *image_out);
	return 0;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* sha256 hex of what `fd` holds from its start. */
static int hash_fd(int fd, char hex[BV_SHA256_HEX_LEN + 1], const char *path, struct bv_error **err)
{
	if (lseek(fd, 0, SEEK_SET) < 0 || bv_sha256_fd_hex(fd, hex, NULL) < 0)
		return bv_error_set_errno(err, "could not read '%s'", path);
	return 0;
}

/* The record, or NULL when it is missing or not a record. */
static json_t *record_load(const char *record)
{
	json_error_t jerr;
	json_t *rec = json_load_file(record, 0, &jerr);
	if (rec && (!json_is_string(json_object_get(rec, "sha256")) ||
		    !json_is_integer(json_object_get(rec, "size")) ||
		    !json_is_integer(json_object_get(rec, "mtime_ns")) ||
		    !json_is_integer(json_object_get(rec, "inode")))) {
		json_decref(rec);
		rec = NULL;
	}
	return rec;
}

static bool stamp_matches(const json_t *rec, const struct stat *st)
{
	return S_ISREG(st->st_mode) &&
	       json_integer_value(json_object_get(rec, "size")) == (json_int_t)st->st_size &&
	       json_integer_value(json_object_get(rec, "mtime_ns")) == mtime_ns(st) &&
	       json_integer_value(json_object_get(rec, "inode")) == (json_int_t)st->st_ino;
}

bool bv_squashfs_present(const char *image, const char *record)
{
	struct stat st;
	json_t *rec;
	bool ok;
	if (stat(image, &st) < 0)
		return false;
	rec = record_load(record);
	ok = rec && stamp_matches(rec, &st);
	json_decref(rec);
	return ok;
}

/* Removes "<image>.tmp-<pid>" files of processes that are gone. */
static void remove_stale_tmps(const char *image)
{
	_cleanup_free_ char *dir = bv_xstrndup(image, (size_t)(strrchr(image, '/') - image));
	_cleanup_free_ char *prefix = bv_xasprintf("%s.tmp-", strrchr(image, '/') + 1);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		long pid;
		char *end;
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		pid = strtol(de->d_name + strlen(prefix), &end, 10);
		if (*end || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH) ||
		    pid == (long)getpid())
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
}

static int run_mksquashfs(const char *rootfs, const char *tmp, struct bv_error **err)
{
	static const char *const fixed[] = {"-noappend", "-no-progress",
					    "-quiet",    "-no-xattrs",
					    "-all-root", "-mkfs-time",
					    "0",         "-all-time",
					    "0",         "-b",
					    "131072",    "-comp",
					    "gzip",      NULL};
	struct bv_proc p = BV_PROC_INIT;
	int status = 0, r;
	bv_strv_push(&p.args, "mksquashfs");
	bv_strv_push(&p.args, rootfs);
	bv_strv_push(&p.args, tmp);
	for (const char *const *o = fixed; *o; o++)
		bv_strv_push(&p.args, *o);
	p.out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	r = bv_proc_run(&status, &p, err);
	if (p.out > 0)
		close(p.out);
	bv_proc_clear(&p);
	if (r == BV_ENOTFOUND)
		return bv_error_wrap(err, r, "squashfs images need mksquashfs (squashfs-tools)");
	if (r >= 0 && status)
		r = bv_error_setc(err, BV_ERR, 0, "mksquashfs failed on '%s' (exit status %d)",
				  rootfs, status);
	return r;
}

/* Writes the record of the image now at `image`, whose bytes hash to `hex`. */
static int record_write(const char *image, const char *record, const char *hex, const char *rootfs,
			struct bv_error **err)
{
	_cleanup_free_ char *config_path = bv_install_config_path(rootfs), *text = NULL;
	json_error_t jerr;
	json_t *config = json_load_file(config_path, 0, &jerr);
	json_t *rec;
	struct stat st;
	if (stat(image, &st) < 0)
		return bv_error_set_errno(err, "could not stat '%s'", image);
	rec = json_pack("{s:s, s:I, s:I, s:I, s:o}", "sha256", hex, "size", (json_int_t)st.st_size,
			"mtime_ns", (json_int_t)mtime_ns(&st), "inode", (json_int_t)st.st_ino,
			"config", config ? config : json_null());
	text = json_dumps(rec, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(rec);
	return bv_write_file_atomic(record, text, strlen(text), 0644, err);
}

int bv_squashfs_build(const char *rootfs, const char *image, const char *record,
		      struct bv_error **err)
{
	_cleanup_free_ char *dir = bv_xstrndup(image, (size_t)(strrchr(image, '/') - image));
	_cleanup_free_ char *lock_path = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -1;
	struct bv_lock lk = BV_LOCK_INIT;
	char hex[BV_SHA256_HEX_LEN + 1];
	int r = bv_mkdir_p(dir, 0755, err);
	if (r < 0)
		return r;
	lock_path = bv_xasprintf("%.*s.lock", (int)(strlen(image) - strlen(IMAGE_SUFFIX)), image);
	r = bv_lock_acquire(&lk, lock_path, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	if (bv_squashfs_present(image, record))
		goto out; /* built while we waited */
	remove_stale_tmps(image);
	tmp = bv_xasprintf("%s.tmp-%ld", image, (long)getpid());
	r = run_mksquashfs(rootfs, tmp, err);
	if (r >= 0) {
		fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			r = bv_error_set_errno(err, "could not open '%s'", tmp);
	}
	if (r >= 0)
		r = hash_fd(fd, hex, tmp, err);
	if (r >= 0 && fsync(fd) < 0)
		r = bv_error_set_errno(err, "could not sync '%s'", tmp);
	/* a record left by an earlier image must never describe the new one: it goes first */
	if (r >= 0 && unlink(record) < 0 && errno != ENOENT)
		r = bv_error_set_errno(err, "could not remove '%s'", record);
	if (r >= 0 && rename(tmp, image) < 0)
		r = bv_error_set_errno(err, "could not rename '%s'", tmp);
	if (r >= 0)
		r = record_write(image, record, hex, rootfs, err);
	if (r < 0 && tmp)
		(void)unlink(tmp);
	if (r >= 0)
		bv_logf(BV_LOG_DEBUG, "built %s (sha256:%s)", image, hex);
out:
	bv_lock_release(&lk);
	return r < 0 ? bv_error_wrap(err, r, "could not build the squashfs image of '%s'", rootfs)
		     : 0;
}

int bv_squashfs_open(int *fd_out, json_t **config_out, const char *image, const char *record,
		     struct bv_error **err)
{
	_cleanup_close_ int fd = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	json_t *rec;
	if (fd < 0)
		return bv_error_setc(err, errno == ENOENT ? BV_ENOTFOUND : BV_ERR, errno,
				     "could not open the squashfs image '%s'", image);
	if (fstat(fd, &st) < 0)
		return bv_error_set_errno(err, "could not stat '%s'", image);
	rec = record_load(record);
	if (!rec || !stamp_matches(rec, &st)) {
		json_decref(rec);
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"the squashfs image '%s' does not match its record (changed since bv sync built it); run 'bv sync' to build it again",
			image);
	}
	*config_out = json_incref(json_object_get(rec, "config"));
	if (json_is_null(*config_out)) {
		json_decref(*config_out);
		*config_out = NULL;
	}
	json_decref(rec);
	*fd_out = fd;
	fd = -1;
	return 0;
}

static int write_file(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || bv_write_all(fd, text, strlen(text)) < 0)
		return -1;
	return 0;
}

/* As root: a read-only loop device over `fd`, gone with the last mount (autoclear). */
static int mount_kernel(int fd, const char *mountpoint)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -1;
	for (int tries = 0; tries < 16; tries++) {
		struct loop_config cfg;
		char dev[32];
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		_cleanup_close_ int lfd = -1;
		if (n < 0)
			return -1;
		(void)snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		lfd = open(dev, O_RDONLY | O_CLOEXEC);
		if (lfd < 0)
			return -1;
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (unsigned)fd;
		cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
			if (errno == EBUSY)
				continue; /* another process took it first */
			return -1;
		}
		if (mount(dev, mountpoint, "squashfs", MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
			return -1;
		bv_logf(BV_LOG_DEBUG, "mounted the squashfs image with the kernel's squashfs on %s",
			dev);
		return 0;
	}
	errno = EBUSY;
	return -1;
}

/* squashfuse in PATH, looked up before fork (the child only execs). */
static char *find_squashfuse(void)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = bv_xstrdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand = bv_xasprintf("%s/squashfuse", dir);
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
	}
	return NULL;
}

static int mount_fuse(int fd, const char *mountpoint, struct bv_error **err)
{
	char map[64], opts[128], image_arg[32], fuse_arg[32];
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
	_cleanup_free_ char *prog = find_squashfuse();
	_cleanup_close_ int fuse = -1;
	pid_t parent = getpid(), pid;
	if (!prog)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "squashfs images need squashfuse to be mounted without root");
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return bv_error_set_errno(err, "could not create a user namespace for squashfuse");
	(void)snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
	if (write_file("/proc/self/setgroups", "deny") < 0 ||
	    write_file("/proc/self/uid_map", map) < 0)
		return bv_error_set_errno(err, "could not map the user into its namespace");
	(void)snprintf(map, sizeof(map), "%u %u 1\n", gid, gid);
	if (write_file("/proc/self/gid_map", map) < 0)
		return bv_error_set_errno(err, "could not map the group into its namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return bv_error_set_errno(err, "could not make the mounts private");
	/* opened inside the namespace: FUSE wants the device opened where it is mounted */
	fuse = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fuse < 0)
		return bv_error_set_errno(
			err,
			"could not open /dev/fuse (an unprivileged squashfs mount needs read and write access to it)");
	(void)snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fuse, uid,
		       gid);
	if (mount("squashfuse", mountpoint, "fuse.squashfuse", MS_RDONLY | MS_NOSUID | MS_NODEV,
		  opts) < 0)
		return bv_error_set_errno(err, "could not mount FUSE on '%s'", mountpoint);
	(void)snprintf(image_arg, sizeof(image_arg), "/dev/fd/%d", fd);
	(void)snprintf(fuse_arg, sizeof(fuse_arg), "/dev/fd/%d", fuse);
	pid = fork();
	if (pid < 0)
		return bv_error_set_errno(err, "could not start squashfuse");
	if (pid == 0) {
		/* squashfuse serves the mount as long as the process that mounted it lives */
		char foreground[] = "-f";
		char *const argv[] = {prog, foreground, image_arg, fuse_arg, NULL};
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		if (null >= 0) {
			(void)dup2(null, STDIN_FILENO);
			(void)dup2(null, STDOUT_FILENO);
		}
		(void)fcntl(fd, F_SETFD, 0);
		(void)fcntl(fuse, F_SETFD, 0);
		execv(prog, argv);
		_exit(127);
	}
	bv_logf(BV_LOG_DEBUG, "mounted the squashfs image with squashfuse (pid %ld)", (long)pid);
	return 0;
}

int bv_squashfs_mount(int fd, const char *mountpoint, struct bv_error **err)
{
	if (geteuid() == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			return bv_error_set_errno(err, "could not create a mount namespace");
		if (mount_kernel(fd, mountpoint) == 0)
			return 0;
		bv_logf(BV_LOG_DEBUG,
			"no loop device for the squashfs image (%s); using squashfuse",
			strerror(errno));
	}
	return mount_fuse(fd, mountpoint, err);
}

int bv_squashfs_verify(struct bv_strv *problems, const char *cache_dir, struct bv_error **err)
{
	_cleanup_free_ char *dir = bv_path_join(cache_dir, "squashfs");
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return errno == ENOENT ? 0 : bv_error_set_errno(err, "could not open '%s'", dir);
	while ((de = readdir(d))) {
		_cleanup_free_ char *image = NULL, *record = NULL;
		_cleanup_close_ int fd = -1;
		char hex[BV_SHA256_HEX_LEN + 1];
		json_t *rec;
		struct stat st;
		if (!bv_str_has_suffix(de->d_name, IMAGE_SUFFIX))
			continue;
		image = bv_path_join(dir, de->d_name);
		record = bv_xasprintf("%s" RECORD_SUFFIX, image);
		fd = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) < 0)
			continue;
		rec = record_load(record);
		if (!rec) {
			bv_strv_pushf(problems, "squashfs image %s has no record (run 'bv sync')",
				      image);
			continue;
		}
		if (hash_fd(fd, hex, image, err) < 0) {
			json_decref(rec);
			return BV_ERR;
		}
		if (strcmp(hex, json_string_value(json_object_get(rec, "sha256")))) {
			bv_strv_pushf(
				problems,
				"squashfs image %s is damaged: sha256:%s, its record says sha256:%s (run 'bv sync' to build it again)",
				image, hex, json_string_value(json_object_get(rec, "sha256")));
			(void)unlink(record);
		}
		json_decref(rec);
	}
	return 0;
}
