/*
 * proc.h - running subprocesses (modelled on git's run-command.h and libgit2's process.c).
 *
 * Calling sequence:
 *   struct bv_proc p = BV_PROC_INIT;
 *   bv_strv_push(&p.args, "tar");            args[0] is looked up in PATH unless it has a '/'
 *   bv_strv_push(&p.args, "-xf");
 *   bv_strv_push(&p.env, "LC_ALL=C");        "K=V" sets, a bare "K" unsets, on top of environ
 *   p.cwd = dir;
 *   r = bv_proc_run(&status, &p, err);       or bv_proc_capture(&out, &status, &p, max, err)
 *   bv_proc_clear(&p);
 *
 * For streaming, set a field of in/out/err to -1 before bv_proc_start(): it then holds the
 * parent's end of a new pipe (write end for `in`, read ends for `out` and `err`).  Read or
 * write it, then call bv_proc_finish().  To send EOF early, close `in` and set it to -1.
 *
 * Errors are reported in the parent: a program that cannot be found or executed, a `cwd` that
 * does not exist and a failed dup2() are returned as errors ("could not run 'prog': No such
 * file or directory", BV_ENOTFOUND for a missing program or cwd) rather than as exit status
 * 127, because the child sends its errno back over a close-on-exec pipe that exec closes on
 * success.  The exit status itself is not an error when `status_out` is given: it is the exit
 * code, or 128 + the signal number when the child was killed, as in the shell.  With a NULL
 * `status_out` any non-zero status is reported as an error.
 *
 * The child resets every signal handler and SIGPIPE to the default and unblocks all signals
 * before exec: bv ignores SIGPIPE (curl needs that), and `tar | head` style children must die
 * of it as usual.  Between fork() and exec() the child makes only async-signal-safe calls;
 * the argument and environment arrays and the resolved program path are built beforehand.
 *
 * Ownership: `p` owns args, env and the pipe ends that bv_proc_start() created; `cwd` is
 * borrowed.  Descriptors passed in (> 0) stay the caller's and are not closed.
 */
#ifndef BV_UTIL_PROC_H
#define BV_UTIL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "strv.h"

struct bv_buf;
struct bv_error;

struct bv_proc {
	struct bv_strv args;
	struct bv_strv env; /* "K=V" to set, "K" to unset, applied in order on top of environ */
	const char *cwd;    /* NULL: the parent's */
	/* 0: inherit; -1: make a pipe and store the parent's end here; > 0: dup2 onto 0/1/2 */
	int in, out, err;
	bool no_stdin;         /* stdin from /dev/null (when `in` is 0) */
	bool stderr_to_stdout; /* 2>&1, after stdout is set up; `err` is then ignored */
	pid_t pid;             /* the running child, -1 otherwise */
	unsigned owned_fds_;   /* private: which of in/out/err are pipes we created */
};

#define BV_PROC_INIT                                                                               \
	{                                                                                          \
		.args = BV_STRV_INIT, .env = BV_STRV_INIT, .cwd = NULL, .in = 0, .out = 0,         \
		.err = 0, .no_stdin = false, .stderr_to_stdout = false, .pid = -1, .owned_fds_ = 0 \
	}

int bv_proc_start(struct bv_proc *p, struct bv_error **err);

/*
 * Waits for the child.  Closes the `in` pipe first if start created it and it is still open,
 * so a child reading stdin cannot keep the parent waiting forever.
 */
int bv_proc_finish(int *status_out, struct bv_proc *p, struct bv_error **err);

/* start + finish; use with inherited or caller-provided descriptors, not pipes. */
int bv_proc_run(int *status_out, struct bv_proc *p, struct bv_error **err);

/*
 * Runs the child with stdout to a pipe and appends all of it to `out`.  More than `max` bytes
 * is an error (EFBIG; the child is then killed with SIGKILL and reaped); `out` is only changed on
 * success.  `p->out` must be 0 or -1.
 */
int bv_proc_capture(struct bv_buf *out, int *status_out, struct bv_proc *p, size_t max,
		    struct bv_error **err);

/*
 * Runs the child with stdin from /dev/null and stdout and stderr merged into one pipe, hands
 * every chunk of that output to `on_output` as it comes (build logs shown line by line, a
 * failure's last lines kept), then waits for it.
 */
int bv_proc_stream(int *status_out, struct bv_proc *p,
		   void (*on_output)(const char *data, size_t len, void *payload), void *payload,
		   struct bv_error **err);

/* Releases args and env and closes the pipe ends start created; `p` can then be reused. */
void bv_proc_clear(struct bv_proc *p);

/*
 * For a child between fork() and exec(): puts every handled signal, and SIGPIPE, back to its
 * default disposition; other ignored signals stay ignored, as exec would leave them.  The
 * signal mask is left to the caller, which unblocks when it is ready.  Async-signal-safe.
 */
void bv_proc_default_signals(void);

/*
 * Whether this process runs one thread only (from /proc/self/status), which is when it may
 * fork() and let the child carry on in C: bv starts no threads, but libcurl's resolver may
 * run one for a moment while it looks a host name up.  False when it cannot tell.
 */
bool bv_proc_single_threaded(void);

#endif
