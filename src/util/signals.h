/*
 * signals.h - hands the signals a user sends to bv (SIGINT, SIGTERM, SIGHUP, SIGQUIT) to the
 * code that forwards them to a tool bv does not run itself (a container, an engine exec).
 *
 * Calling sequence:
 *   struct bv_signal_pipe sp = BV_SIGNAL_PIPE_INIT;
 *   if (bv_signal_pipe_install(&sp, true, &err) < 0) ...
 *   poll() sp.fd[0] beside the other descriptors; when it is readable:
 *   int sigs[16];
 *   size_t n = bv_signal_pipe_read(&sp, sigs, 16);          forward each
 *   bv_signal_pipe_restore(&sp);                            on every path; also when not installed
 *
 * A self-pipe: the handler only write(2)s the signal number into a non-blocking pipe (the one
 * thing a handler may safely do here), and the loop that owns the connection to the tool reads
 * it when poll() says so.  A full pipe drops signals: it already holds plenty to forward.
 * With `ignore_sigpipe`, SIGPIPE is ignored meanwhile, so a closed stdout comes back as EPIPE
 * and bv lives to stop the tool instead of dying and orphaning it.  One pipe at a time: the
 * handlers are process-wide.
 *
 * Ownership: the struct owns both ends of the pipe until bv_signal_pipe_restore(), which also
 * puts back the handlers it replaced.
 * Errors: install fails only when the pipe cannot be made (errno appended).
 */
#ifndef BV_UTIL_SIGNALS_H
#define BV_UTIL_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct bv_error;

#define BV_SIGNAL_PIPE_N 4 /* SIGINT, SIGTERM, SIGHUP, SIGQUIT */

struct bv_signal_pipe {
	int fd[2]; /* fd[0]: read end, poll it; -1 when not installed */
	struct sigaction old[BV_SIGNAL_PIPE_N];
	struct sigaction old_pipe;
	bool ignore_sigpipe;
	bool installed;
};

#define BV_SIGNAL_PIPE_INIT      \
	{                        \
		.fd = { -1, -1 } \
	}

int bv_signal_pipe_install(struct bv_signal_pipe *sp, bool ignore_sigpipe, struct bv_error **err);

/* The signals that arrived since the last read, at most `max`; 0 when none. */
size_t bv_signal_pipe_read(struct bv_signal_pipe *sp, int *sigs, size_t max);

void bv_signal_pipe_restore(struct bv_signal_pipe *sp);

#endif
