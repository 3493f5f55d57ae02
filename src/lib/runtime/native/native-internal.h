/*
 * native-internal.h - running a tool directly from an unpacked image root filesystem, without
 * a container engine, through unprivileged user and mount namespaces (the ch-run sequence).
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  The CLI reaches it through the native backend, bv_runtime_native_new()
 * (bv/runtime.h), which src/lib/runtime/native/backend.c builds on these two calls.
 *
 * Calling sequence:
 *   const char *argv[] = {"samtools", "--version", NULL};
 *   const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", NULL};
 *   struct bv_native_mount m = {.host = project_dir, .target = "/workspace"};
 *   struct bv_native_request req = {.rootfs = dir, .argv = argv, .env = env,
 *                                   .workdir = "/workspace", .mounts = &m, .n_mounts = 1};
 *   int status;
 *   if (bv_native_run(&status, &req, &err) < 0)
 *           ... setup failed (namespaces, a mount, the working directory, exec)
 *   ... status is the tool's exit code, or 128 + signal number if it was killed
 *
 * What the tool sees, built in a forked child:
 *   1. new user and mount namespaces; the caller's uid and gid are mapped to themselves (one
 *      ID each), so files the tool writes through a bind mount belong to the caller, whether
 *      bv runs as root or not, and no setuid helper is needed;
 *   2. the rootfs bind-mounted onto itself read-only, so an image stays pristine for every run;
 *   3. the host's /proc, /dev and /sys (read-only) bind-mounted recursively.  /proc is the
 *      host's because there is no PID namespace: mounting a fresh proc requires one;
 *   4. a fresh tmpfs (mode 1777) on /tmp, and the host's /etc/resolv.conf and /etc/hosts over
 *      the image's when the image has them as regular files;
 *   5. the caller's mounts, in order, and the injected files (read-only).  A target the image
 *      lacks is created in a writable scaffold: an overlay whose upper layer is a private
 *      tmpfs made with fsopen(2), mounted over the rootfs only when something is missing, so
 *      the image itself is never written; the overlay is made read-only again before exec;
 *   6. pivot_root(2) into the rootfs with the "pivot_root(".", ".")" idiom, which needs no
 *      put-old directory, then the old root is detached;
 *   7. chdir(workdir), PR_SET_NO_NEW_PRIVS, and execve() with exactly `env` as environment;
 *      argv[0] without a '/' is looked up in PATH from `env` inside the new root.
 * Mount points for /proc, /dev, /sys and /tmp that the image lacks are skipped silently:
 * minimal images (scratch + one static binary) often have none of them.
 *
 * stdin, stdout and stderr are inherited, so the caller redirects them beforehand.  While
 * waiting, the parent forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the child, and restores
 * its own handlers afterwards.
 *
 * Errors: any failure before exec (namespaces, a mount, the working directory, a program that
 * cannot be found or executed) is returned as an error from the parent, not as exit status
 * 127, because the child sends its stage and errno back over a close-on-exec pipe.  A missing
 * program or mount target returns BV_ENOTFOUND.
 *
 * A mount target that is, or passes through, a symbolic link in the image is refused: before
 * pivot_root the link would resolve against the host.  Known limits: submounts of /sys stay
 * writable (only its top mount is made read-only); only one uid and gid exist inside, so files the
 * image owns under other IDs appear as the overflow ID (nobody).
 *
 * Ownership: everything in the request is borrowed and only read.
 */
#ifndef BV_LIB_NATIVE_INTERNAL_H
#define BV_LIB_NATIVE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

struct bv_error;

struct bv_native_mount {
	const char *host;   /* an existing host path */
	const char *target; /* absolute path inside the image, which must exist there */
	bool read_only;
};

/* A small file made for the run (e.g. /etc/passwd with the caller's entry), bound read-only. */
struct bv_native_file {
	const char *target; /* absolute path inside the image */
	const char *content;
	size_t len;
};

struct bv_native_request {
	const char *rootfs;      /* the unpacked image root, e.g. <cache>/rootfs/<digest> */
	const char *const *argv; /* NULL-terminated, at least argv[0] */
	const char *const *env;  /* NULL-terminated "K=V", the complete environment; NULL: empty */
	const char *workdir;     /* inside the image; NULL: "/" */
	const struct bv_native_mount *mounts;
	size_t n_mounts;
	const struct bv_native_file *files;
	size_t n_files;
};

/*
 * Runs req->argv inside req->rootfs and waits for it.  On success *status_out is the exit
 * code, or 128 + the signal number when the tool was killed.
 */
int bv_native_run(int *status_out, const struct bv_native_request *req, struct bv_error **err);

/*
 * The same steps in the calling process, which becomes the tool: no fork, no waiting, and the
 * tool's exit status and signals are the caller's (bv run, like ch-run).  Returns only when
 * something failed before exec; the process is then in the new namespaces and should exit.
 */
int bv_native_exec(const struct bv_native_request *req, struct bv_error **err);

#endif
