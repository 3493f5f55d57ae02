/*
 * signals.c - the self-pipe of forwarded signals (see signals.h).
 */
#include "util/signals.h"

#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static const int forwarded[BV_SIGNAL_PIPE_N] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static volatile sig_atomic_t pipe_w = -1;

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	if (pipe_w >= 0 && write(pipe_w, &c, 1) < 0) {
		/* a full pipe already holds enough signals to forward */
	}
	errno = saved;
}

int bv_signal_pipe_install(struct bv_signal_pipe *sp, bool ignore_sigpipe, struct bv_error **err)
{
	struct sigaction sa;
	if (pipe2(sp->fd, O_CLOEXEC | O_NONBLOCK) < 0) {
		sp->fd[0] = sp->fd[1] = -1;
		return bv_error_set_errno(err, "could not create a pipe");
	}
	pipe_w = sp->fd[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < BV_SIGNAL_PIPE_N; i++)
		sigaction(forwarded[i], &sa, &sp->old[i]);
	sp->ignore_sigpipe = ignore_sigpipe;
	if (ignore_sigpipe) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, &sp->old_pipe);
	}
	sp->installed = true;
	return 0;
}

size_t bv_signal_pipe_read(struct bv_signal_pipe *sp, int *sigs, size_t max)
{
	unsigned char buf[64];
	ssize_t n;
	if (!sp->installed || !max)
		return 0;
	n = read(sp->fd[0], buf, max < sizeof(buf) ? max : sizeof(buf));
	for (ssize_t i = 0; i < n; i++)
		sigs[i] = buf[i];
	return n > 0 ? (size_t)n : 0;
}

void bv_signal_pipe_restore(struct bv_signal_pipe *sp)
{
	if (!sp->installed)
		return;
	for (size_t i = 0; i < BV_SIGNAL_PIPE_N; i++)
		sigaction(forwarded[i], &sp->old[i], NULL);
	if (sp->ignore_sigpipe)
		sigaction(SIGPIPE, &sp->old_pipe, NULL);
	pipe_w = -1;
	close(sp->fd[0]);
	close(sp->fd[1]);
	sp->fd[0] = sp->fd[1] = -1;
	sp->installed = false;
}
