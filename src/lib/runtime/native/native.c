#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/runtime/native/native-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* What the child was doing when it failed; sent to the parent with errno and a mount index. */
enum stage {
	STAGE_UNSHARE = 1,
	STAGE_SETGROUPS,
	STAGE_UID_MAP,
	STAGE_GID_MAP,
	STAGE_PRIVATE,
	STAGE_ROOTFS,
	STAGE_SCRATCH,
	STAGE_OVERLAY,
	STAGE_MKDIR,
	STAGE_FILE,
	STAGE_PROC,
	STAGE_DEV,
	STAGE_SYS,
	STAGE_TMP,
	STAGE_RESOLV,
	STAGE_HOSTS,
	STAGE_USER_MOUNT,
	STAGE_ROOT_READ_ONLY,
	STAGE_PIVOT,
	STAGE_CHDIR,
	STAGE_NO_NEW_PRIVS,
	STAGE_EXEC,
};

struct child_report {
	int stage;
	int sys_errno;
	size_t index; /* which user mount, for STAGE_USER_MOUNT */
};

/* Everything the child needs, built before fork() so that the child makes no allocation. */
struct child_plan {
	const char *rootfs;
	char *proc, *dev, *sys, *tmp;
	char *resolv, *hosts; /* NULL: the image has no regular file there, or the host has none */
	char **targets;       /* host-side paths of the user mount targets */
	const struct bv_native_mount *mounts;
	size_t n_mounts;
	/*
	 * The writable scaffold: an overlay whose upper layer is a private tmpfs, so mount
	 * points the image lacks can be created without touching the image.  NULL when every
	 * target exists and no file is injected.
	 */
	char *overlay_options; /* "lowerdir=<rootfs>,upperdir=/proc/self/fd/" + fd + "/u,..." */
	char **create_dirs;    /* host-side paths to mkdir, parents first */
	char **create_files;   /* host-side paths of file mount points to create */
	char **file_targets;   /* host-side paths of the injected files */
	const struct bv_native_file *files;
	size_t n_files;
	char uid_map[64], gid_map[64];
	const char *workdir;
	char **candidates; /* paths to try for argv[0] inside the new root, in order */
	char **argv, **envp;
	int report_fd;
};

static const char default_path[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/* The pid the parent's handlers forward signals to; 0 outside bv_native_run(). */
static volatile sig_atomic_t forward_pid;

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void forward_signal(int sig)
{
	int saved = errno;
	if (forward_pid > 0)
		kill((pid_t)forward_pid, sig);
	errno = saved;
}

/*
 * bv_native_exec() runs the child's steps in the calling process; a failure then jumps back
 * to it with the report instead of writing it to the parent.
 */
static jmp_buf *in_process_jump;
static struct child_report in_process_report;

/* Async-signal-safe from here to the end of child_run(). */
static __attribute__((noreturn)) void child_fail(const struct child_plan *c, int stage,
						 size_t index)
{
	struct child_report rep = {.stage = stage, .sys_errno = errno, .index = index};
	if (in_process_jump) {
		in_process_report = rep;
		longjmp(*in_process_jump, 1);
	}
	(void)bv_write_all(c->report_fd, &rep, sizeof(rep)); /* a plain write loop: safe here */
	_exit(127);
}

static int write_proc_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -1;
	n = write(fd, text, len);
	if (n < 0 || (size_t)n != len) {
		int saved = n < 0 ? errno : EIO;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/*
 * Makes the bind mount at `path` read-only.  In a user namespace the kernel refuses a remount
 * that would drop nosuid, nodev or noexec locked in by the mount's owner, so those are kept;
 * atime flags are left out, which makes the kernel keep them as they are.
 */
static int remount_read_only(const char *path)
{
	struct statvfs sv;
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	if (statvfs(path, &sv) < 0)
		return -1;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	return mount(NULL, path, NULL, flags, NULL);
}

/* Recursive bind mount of a host tree; a mount point the image lacks is not an error. */
static void bind_optional(const struct child_plan *c, const char *host, const char *target,
			  bool read_only, int stage)
{
	if (mount(host, target, NULL, MS_BIND | MS_REC, NULL) < 0) {
		if (errno == ENOENT)
			return;
		child_fail(c, stage, 0);
	}
	if (read_only && remount_read_only(target) < 0)
		child_fail(c, stage, 0);
}

static void setup_namespaces(const struct child_plan *c)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		child_fail(c, STAGE_UNSHARE, 0);
	/* An unprivileged process may write gid_map only once setgroups(2) is off for good. */
	if (write_proc_file("/proc/self/setgroups", "deny") < 0)
		child_fail(c, STAGE_SETGROUPS, 0);
	if (write_proc_file("/proc/self/uid_map", c->uid_map) < 0)
		child_fail(c, STAGE_UID_MAP, 0);
	if (write_proc_file("/proc/self/gid_map", c->gid_map) < 0)
		child_fail(c, STAGE_GID_MAP, 0);
	/* Without this our mounts would propagate back to the host's shared mounts. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(c, STAGE_PRIVATE, 0);
}

/* Appends `text` at *p within [*p, end); false when it does not fit.  (No stdio in the child.) */
static bool put_text(char **p, const char *end, const char *text)
{
	size_t len = strlen(text);
	if ((size_t)(end - *p) <= len)
		return false;
	memcpy(*p, text, len + 1);
	*p += len;
	return true;
}

static bool put_uint(char **p, const char *end, unsigned n)
{
	char digits[16];
	size_t i = sizeof(digits) - 1;
	digits[i] = 0;
	do
		digits[--i] = (char)('0' + n % 10);
	while ((n /= 10) && i);
	return put_text(p, end, digits + i);
}

/*
 * A tmpfs that is mounted nowhere (fsopen + fsmount), so it needs no mount point on the host
 * and disappears with the namespace; returns its fd, with "u" and "w" made for the overlay.
 */
static int make_scratch(void)
{
	int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	int mnt;
	if (fs < 0)
		return -1;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		close(fs);
		return -1;
	}
	mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	close(fs);
	if (mnt < 0)
		return -1;
	if (mkdirat(mnt, "u", 0755) < 0 || mkdirat(mnt, "w", 0755) < 0) {
		close(mnt);
		return -1;
	}
	return mnt;
}

static bool scratch_path(char *buf, size_t size, int scratch, const char *name)
{
	char *p = buf;
	return put_text(&p, buf + size, "/proc/self/fd/") &&
	       put_uint(&p, buf + size, (unsigned)scratch) && put_text(&p, buf + size, "/") &&
	       put_text(&p, buf + size, name);
}

static void write_injected_files(const struct child_plan *c, int scratch)
{
	for (size_t i = 0; i < c->n_files; i++) {
		char name[16] = "f", *p = name + 1;
		int fd;
		put_uint(&p, name + sizeof(name), (unsigned)i);
		fd = openat(scratch, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || bv_write_all(fd, c->files[i].content, c->files[i].len) < 0)
			child_fail(c, STAGE_FILE, i);
		close(fd);
	}
}

/* Mounts the overlay over the rootfs and creates the missing mount points in it. */
static void setup_overlay(const struct child_plan *c, int scratch)
{
	char opts[8192], *p = opts;
	const char *end = opts + sizeof(opts);
	if (!put_text(&p, end, c->overlay_options) || !put_uint(&p, end, (unsigned)scratch) ||
	    !put_text(&p, end, "/u,workdir=/proc/self/fd/") ||
	    !put_uint(&p, end, (unsigned)scratch) || !put_text(&p, end, "/w")) {
		errno = ENAMETOOLONG;
		child_fail(c, STAGE_OVERLAY, 0);
	}
	if (mount("overlay", c->rootfs, "overlay", 0, opts) < 0)
		child_fail(c, STAGE_OVERLAY, 0);
	for (size_t i = 0; c->create_dirs[i]; i++)
		if (mkdir(c->create_dirs[i], 0755) < 0 && errno != EEXIST)
			child_fail(c, STAGE_MKDIR, i);
	for (size_t i = 0; c->create_files[i]; i++) {
		int fd = open(c->create_files[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			child_fail(c, STAGE_MKDIR, i);
		close(fd);
	}
}

static void setup_mounts(const struct child_plan *c)
{
	int scratch = -1;
	/* Binding the rootfs onto itself also makes it a mount point, which pivot_root needs. */
	if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    remount_read_only(c->rootfs) < 0)
		child_fail(c, STAGE_ROOTFS, 0);
	if (c->overlay_options || c->n_files) {
		scratch = make_scratch();
		if (scratch < 0)
			child_fail(c, STAGE_SCRATCH, 0);
		if (c->overlay_options)
			setup_overlay(c, scratch);
		write_injected_files(c, scratch);
	}
	bind_optional(c, "/proc", c->proc, false, STAGE_PROC);
	bind_optional(c, "/dev", c->dev, false, STAGE_DEV);
	bind_optional(c, "/sys", c->sys, true, STAGE_SYS);
	if (mount("tmpfs", c->tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0 &&
	    errno != ENOENT)
		child_fail(c, STAGE_TMP, 0);
	if (c->resolv && mount("/etc/resolv.conf", c->resolv, NULL, MS_BIND, NULL) < 0)
		child_fail(c, STAGE_RESOLV, 0);
	if (c->hosts && mount("/etc/hosts", c->hosts, NULL, MS_BIND, NULL) < 0)
		child_fail(c, STAGE_HOSTS, 0);
	for (size_t i = 0; i < c->n_mounts; i++) {
		if (mount(c->mounts[i].host, c->targets[i], NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(c, STAGE_USER_MOUNT, i);
		if (c->mounts[i].read_only && remount_read_only(c->targets[i]) < 0)
			child_fail(c, STAGE_USER_MOUNT, i);
	}
	for (size_t i = 0; i < c->n_files; i++) {
		char src[64], name[16] = "f", *p = name + 1;
		put_uint(&p, name + sizeof(name), (unsigned)i);
		if (!scratch_path(src, sizeof(src), scratch, name) ||
		    mount(src, c->file_targets[i], NULL, MS_BIND, NULL) < 0 ||
		    remount_read_only(c->file_targets[i]) < 0)
			child_fail(c, STAGE_FILE, i);
	}
	if (c->overlay_options && remount_read_only(c->rootfs) < 0)
		child_fail(c, STAGE_ROOT_READ_ONLY, 0);
	if (scratch >= 0)
		close(scratch);
}

/*
 * pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching "." then
 * drops it (see pivot_root(2)), so no put-old directory is needed in a read-only image.
 */
static void enter_root(const struct child_plan *c)
{
	if (chdir(c->rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(c, STAGE_PIVOT, 0);
	if (chdir(c->workdir) < 0)
		child_fail(c, STAGE_CHDIR, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(c, STAGE_NO_NEW_PRIVS, 0);
}

static void reset_signals(void)
{
	sigset_t none;
	bv_proc_default_signals();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static __attribute__((noreturn)) void child_run(const struct child_plan *c)
{
	int failure = ENOENT;
	reset_signals();
	setup_namespaces(c);
	setup_mounts(c);
	enter_root(c);
	/* Like execvp(): a candidate that exists but cannot run is reported if nothing else runs.
	 */
	for (char **p = c->candidates; *p; p++) {
		execve(*p, c->argv, c->envp);
		if (errno != ENOENT && errno != ENOTDIR)
			failure = errno;
	}
	errno = failure;
	child_fail(c, STAGE_EXEC, 0);
}

/* The PATH in `env`, which is what the tool would search itself, or a usual default. */
static const char *env_path(const char *const *env)
{
	for (; env && *env; env++)
		if (strncmp(*env, "PATH=", 5) == 0)
			return *env + 5;
	return default_path;
}

static void plan_candidates(const char *prog, const char *path, struct bv_strv *out)
{
	if (strchr(prog, '/')) {
		bv_strv_push(out, prog);
		return;
	}
	for (;;) {
		const char *end = strchrnul(path, ':');
		int len = (int)(end - path);
		/* An empty PATH element means the working directory, as in execvp(). */
		if (len)
			bv_strv_pushf(out, "%.*s/%s", len, path, prog);
		else
			bv_strv_pushf(out, "./%s", prog);
		if (!*end)
			return;
		path = end + 1;
	}
}

/* The image's file at `rel` when it is a regular file and the host has `host` too; else NULL. */
static char *plan_host_file(const char *rootfs, const char *rel, const char *host)
{
	_cleanup_free_ char *path = bv_path_join(rootfs, rel);
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	if (stat(host, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	return TAKE_PTR(path);
}

static void plan_clear(struct child_plan *c)
{
	free(c->proc);
	free(c->dev);
	free(c->sys);
	free(c->tmp);
	free(c->resolv);
	free(c->hosts);
	free(c->overlay_options);
	bv_strv_free(c->targets);
	bv_strv_free(c->create_dirs);
	bv_strv_free(c->create_files);
	bv_strv_free(c->file_targets);
	bv_strv_free(c->candidates);
	bv_strv_free(c->argv);
	bv_strv_free(c->envp);
}

static int check_request(const struct bv_native_request *req, struct bv_error **err)
{
	struct stat st;
	if (!req->rootfs || !req->argv || !req->argv[0] || !req->argv[0][0])
		return bv_error_setc(err, BV_EINVALID, 0,
				     "native run needs a rootfs and a program");
	if (stat(req->rootfs, &st) < 0)
		return bv_error_setc(err, errno == ENOENT ? BV_ENOTFOUND : BV_ERR, errno,
				     "could not use image root '%s'", req->rootfs);
	if (!S_ISDIR(st.st_mode))
		return bv_error_setc(err, BV_EINVALID, ENOTDIR, "could not use image root '%s'",
				     req->rootfs);
	if (req->workdir && req->workdir[0] != '/')
		return bv_error_setc(err, BV_EINVALID, 0, "working directory '%s' is not absolute",
				     req->workdir);
	for (size_t i = 0; i < req->n_mounts; i++) {
		const struct bv_native_mount *m = &req->mounts[i];
		if (!m->host || !m->target || m->target[0] != '/')
			return bv_error_setc(err, BV_EINVALID, 0,
					     "mount target '%s' is not an absolute path",
					     m->target ? m->target : "");
		if (stat(m->host, &st) < 0)
			return bv_error_setc(err, errno == ENOENT ? BV_ENOTFOUND : BV_ERR, errno,
					     "could not use mount source '%s'", m->host);
	}
	for (size_t i = 0; i < req->n_files; i++)
		if (!req->files[i].target || req->files[i].target[0] != '/' ||
		    (req->files[i].len && !req->files[i].content))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "file target '%s' is not an absolute path",
					     req->files[i].target ? req->files[i].target : "");
	return 0;
}

/*
 * Checks the path of `target` (absolute, inside the image) component by component and queues
 * what is missing: parents as directories, the last one as a directory or an empty file.
 * Symbolic links are refused, because before pivot_root they would resolve on the host.
 */
static int plan_target(const char *rootfs, const char *target, bool is_dir, struct bv_strv *dirs,
		       struct bv_strv *files, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf path = BV_BUF_INIT;
	const char *p = target;
	bv_buf_puts(&path, rootfs);
	while (*p) {
		struct stat st;
		const char *end;
		bool last;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		if ((end - p == 1 && p[0] == '.') || (end - p == 2 && p[0] == '.' && p[1] == '.'))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "mount target '%s' contains '.' or '..'", target);
		bv_buf_putc(&path, '/');
		bv_buf_add(&path, p, (size_t)(end - p));
		last = !*end || !end[strspn(end, "/")];
		p = end;
		if (lstat(path.buf, &st) < 0) {
			if (errno != ENOENT)
				return bv_error_setc(err, BV_ERR, errno,
						     "could not check mount target '%s'", target);
			if (last && !is_dir)
				bv_strv_push(files, path.buf);
			else if (!bv_strv_contains(dirs, path.buf))
				bv_strv_push(dirs, path.buf);
			continue;
		}
		if (S_ISLNK(st.st_mode))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "mount target '%s' passes through a symbolic link in "
					     "the image",
					     target);
		if (!last && !S_ISDIR(st.st_mode))
			return bv_error_setc(err, BV_EINVALID, ENOTDIR,
					     "mount target '%s' passes through a file in the image",
					     target);
	}
	return 0;
}

/* Mounted in every container; created over the image when it lacks them. */
static const char *const system_dirs[] = {"/proc", "/dev", "/sys", "/tmp"};

static int build_plan(const struct bv_native_request *req, struct child_plan *c,
		      struct bv_error **err)
{
	struct bv_strv targets = BV_STRV_INIT, cand = BV_STRV_INIT, argv = BV_STRV_INIT,
		       envp = BV_STRV_INIT, dirs = BV_STRV_INIT, files = BV_STRV_INIT,
		       file_targets = BV_STRV_INIT;
	int r = 0;
	c->rootfs = req->rootfs;
	c->proc = bv_path_join(req->rootfs, "proc");
	c->dev = bv_path_join(req->rootfs, "dev");
	c->sys = bv_path_join(req->rootfs, "sys");
	c->tmp = bv_path_join(req->rootfs, "tmp");
	c->resolv = plan_host_file(req->rootfs, "etc/resolv.conf", "/etc/resolv.conf");
	c->hosts = plan_host_file(req->rootfs, "etc/hosts", "/etc/hosts");
	/*
	 * The container's system directories do not depend on the image, as under Docker: an
	 * image without /proc, /dev, /sys or /tmp (scratch, distroless, nix) gets them made.
	 */
	for (size_t i = 0; i < BV_ARRAY_SIZE(system_dirs) && r >= 0; i++)
		r = plan_target(req->rootfs, system_dirs[i], true, &dirs, &files, err);
	for (size_t i = 0; i < req->n_mounts && r >= 0; i++) {
		struct stat st;
		bool is_dir = stat(req->mounts[i].host, &st) == 0 && S_ISDIR(st.st_mode);
		r = plan_target(req->rootfs, req->mounts[i].target, is_dir, &dirs, &files, err);
		bv_strv_push_take(&targets, bv_path_join(req->rootfs, req->mounts[i].target));
	}
	for (size_t i = 0; i < req->n_files && r >= 0; i++) {
		r = plan_target(req->rootfs, req->files[i].target, false, &dirs, &files, err);
		bv_strv_push_take(&file_targets, bv_path_join(req->rootfs, req->files[i].target));
	}
	if (r >= 0 && (dirs.n || files.n)) {
		/* overlayfs options are split at ',' and ':' and unescape '\\'. */
		if (strpbrk(req->rootfs, ",:\\"))
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "cannot create mount points in image root '%s': its path "
					  "contains ',', ':' or '\\'",
					  req->rootfs);
		else
			c->overlay_options =
				bv_xasprintf("lowerdir=%s,upperdir=/proc/self/fd/", req->rootfs);
	}
	c->targets = bv_strv_detach(&targets);
	c->create_dirs = bv_strv_detach(&dirs);
	c->create_files = bv_strv_detach(&files);
	c->file_targets = bv_strv_detach(&file_targets);
	c->mounts = req->mounts;
	c->n_mounts = req->n_mounts;
	c->files = req->files;
	c->n_files = req->n_files;
	snprintf(c->uid_map, sizeof(c->uid_map), "%u %u 1\n", (unsigned)getuid(),
		 (unsigned)getuid());
	snprintf(c->gid_map, sizeof(c->gid_map), "%u %u 1\n", (unsigned)getgid(),
		 (unsigned)getgid());
	c->workdir = req->workdir ? req->workdir : "/";
	plan_candidates(req->argv[0], env_path(req->env), &cand);
	c->candidates = bv_strv_detach(&cand);
	bv_strv_pushv(&argv, req->argv);
	c->argv = bv_strv_detach(&argv);
	if (req->env)
		bv_strv_pushv(&envp, req->env);
	c->envp = bv_strv_detach(&envp);
	c->report_fd = -1;
	return r;
}

static const char *stage_what(int stage)
{
	switch (stage) {
	case STAGE_UNSHARE:
		return "could not create user and mount namespaces";
	case STAGE_SETGROUPS:
		return "could not write '/proc/self/setgroups'";
	case STAGE_UID_MAP:
		return "could not write '/proc/self/uid_map'";
	case STAGE_GID_MAP:
		return "could not write '/proc/self/gid_map'";
	case STAGE_PRIVATE:
		return "could not make the mounts private";
	case STAGE_PROC:
		return "could not bind-mount '/proc'";
	case STAGE_DEV:
		return "could not bind-mount '/dev'";
	case STAGE_SYS:
		return "could not bind-mount '/sys' read-only";
	case STAGE_TMP:
		return "could not mount a tmpfs on '/tmp'";
	case STAGE_RESOLV:
		return "could not bind-mount '/etc/resolv.conf'";
	case STAGE_HOSTS:
		return "could not bind-mount '/etc/hosts'";
	case STAGE_NO_NEW_PRIVS:
		return "could not set no_new_privs";
	case STAGE_SCRATCH:
		return "could not create a private tmpfs";
	case STAGE_OVERLAY:
		return "could not mount an overlay over the image to create mount points";
	case STAGE_ROOT_READ_ONLY:
		return "could not make the image root read-only";
	default:
		return "could not set up the image";
	}
}

static int report_failure(const struct child_report *rep, const struct bv_native_request *req,
			  const char *workdir, struct bv_error **err)
{
	const char *prog = req->argv[0];
	int e = rep->sys_errno;
	int code = e == ENOENT ? BV_ENOTFOUND : BV_ERR;
	switch (rep->stage) {
	case STAGE_EXEC:
		return bv_error_setc(err, code, e, "could not run '%s' in image root '%s'", prog,
				     req->rootfs);
	case STAGE_CHDIR:
		bv_error_setc(err, code, e, "could not change directory to '%s' in the image",
			      workdir);
		break;
	case STAGE_USER_MOUNT:
		if (rep->index >= req->n_mounts)
			bv_error_setc(err, BV_ERR, e, "could not bind-mount a directory");
		else if (e == ENOENT)
			bv_error_setc(err, BV_ENOTFOUND, 0,
				      "mount target '%s' does not exist in image root '%s'",
				      req->mounts[rep->index].target, req->rootfs);
		else
			bv_error_setc(err, BV_ERR, e, "could not bind-mount '%s' on '%s'",
				      req->mounts[rep->index].host, req->mounts[rep->index].target);
		code = e == ENOENT ? BV_ENOTFOUND : BV_ERR;
		break;
	case STAGE_MKDIR:
		code = BV_ERR;
		bv_error_setc(err, code, e, "could not create a mount point in the image");
		break;
	case STAGE_FILE:
		code = BV_ERR;
		if (rep->index < req->n_files)
			bv_error_setc(err, code, e, "could not provide '%s'",
				      req->files[rep->index].target);
		else
			bv_error_setc(err, code, e, "could not provide a file");
		break;
	case STAGE_ROOTFS:
		code = BV_ERR;
		bv_error_setc(err, code, e, "could not bind-mount '%s' read-only", req->rootfs);
		break;
	case STAGE_PIVOT:
		code = BV_ERR;
		bv_error_setc(err, code, e, "could not pivot_root into '%s'", req->rootfs);
		break;
	default:
		code = BV_ERR;
		bv_error_setc(err, code, e, "%s", stage_what(rep->stage));
		break;
	}
	return bv_error_wrap(err, code, "could not run '%s'", prog);
}

static pid_t waitpid_eintr(pid_t pid, int *status)
{
	pid_t r;
	do
		r = waitpid(pid, status, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Reads the child's report: 1 when it sent one (setup failed), 0 at EOF (exec succeeded). */
static int read_report(int fd, struct child_report *rep)
{
	size_t got = 0;
	while (got < sizeof(*rep)) {
		ssize_t n = read(fd, (char *)rep + got, sizeof(*rep) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got == sizeof(*rep);
}

int bv_native_run(int *status_out, const struct bv_native_request *req, struct bv_error **err)
{
	struct child_plan plan;
	struct sigaction fwd, old[BV_ARRAY_SIZE(forwarded_signals)];
	struct child_report rep;
	int fds[2] = {-1, -1};
	int status = 0, r = 0, failed;
	pid_t pid;

	r = check_request(req, err);
	if (r < 0)
		return r;
	memset(&plan, 0, sizeof(plan));
	r = build_plan(req, &plan, err);
	if (r < 0)
		goto out;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		r = bv_error_set_errno(err, "could not create a pipe");
		goto out;
	}
	plan.report_fd = fds[1];
	pid = fork();
	if (pid < 0) {
		r = bv_error_set_errno(err, "could not fork");
		goto out;
	}
	if (pid == 0) {
		close(fds[0]);
		child_run(&plan);
	}
	close(fds[1]);
	fds[1] = -1;

	memset(&fwd, 0, sizeof(fwd));
	fwd.sa_handler = forward_signal;
	fwd.sa_flags = SA_RESTART;
	sigemptyset(&fwd.sa_mask);
	forward_pid = pid;
	for (size_t i = 0; i < BV_ARRAY_SIZE(forwarded_signals); i++)
		sigaction(forwarded_signals[i], &fwd, &old[i]);

	failed = read_report(fds[0], &rep);
	if (waitpid_eintr(pid, &status) < 0 && !failed)
		r = bv_error_set_errno(err, "could not wait for '%s'", req->argv[0]);

	forward_pid = 0;
	for (size_t i = 0; i < BV_ARRAY_SIZE(forwarded_signals); i++)
		sigaction(forwarded_signals[i], &old[i], NULL);

	if (failed)
		r = report_failure(&rep, req, plan.workdir, err);
	else if (r == 0 && status_out)
		*status_out = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	plan_clear(&plan);
	return r;
}

int bv_native_exec(const struct bv_native_request *req, struct bv_error **err)
{
	struct child_plan plan;
	jmp_buf jump;
	int r = check_request(req, err);
	if (r < 0)
		return r;
	memset(&plan, 0, sizeof(plan));
	r = build_plan(req, &plan, err);
	if (r >= 0) {
		in_process_jump = &jump;
		if (setjmp(jump) == 0)
			child_run(&plan);
		in_process_jump = NULL;
		r = report_failure(&in_process_report, req, plan.workdir, err);
	}
	plan_clear(&plan);
	return r;
}
