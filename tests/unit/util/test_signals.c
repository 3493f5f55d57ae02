#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "test.h"
#include "util/signals.h"

#include "util/banned.h"

static volatile sig_atomic_t own_handler_ran;

static void own_handler(int sig)
{
	own_handler_ran = sig;
}

static void test_signals__forwarded_signals_arrive_on_the_pipe(void **state)
{
	struct bv_signal_pipe sp = BV_SIGNAL_PIPE_INIT;
	struct bv_error *err = NULL;
	struct pollfd p;
	int sigs[8];
	(void)state;
	assert_ok(bv_signal_pipe_install(&sp, false, &err), &err);
	assert_true(sp.fd[0] >= 0);
	assert_true(fcntl(sp.fd[0], F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(sp.fd[1], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(bv_signal_pipe_read(&sp, sigs, 8), 0); /* nothing yet, no blocking */
	raise(SIGTERM);
	raise(SIGINT);
	raise(SIGHUP);
	raise(SIGQUIT);
	p = (struct pollfd){.fd = sp.fd[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(bv_signal_pipe_read(&sp, sigs, 8), 4);
	assert_int_equal(sigs[0], SIGTERM);
	assert_int_equal(sigs[1], SIGINT);
	assert_int_equal(sigs[2], SIGHUP);
	assert_int_equal(sigs[3], SIGQUIT);
	bv_signal_pipe_restore(&sp);
	assert_int_equal(sp.fd[0], -1);
	bv_signal_pipe_restore(&sp); /* twice is harmless */
}

static void test_signals__restore_puts_back_the_old_handlers(void **state)
{
	struct bv_signal_pipe sp = BV_SIGNAL_PIPE_INIT;
	struct bv_error *err = NULL;
	struct sigaction sa, cur;
	int sigs[2];
	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = own_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	own_handler_ran = 0;

	assert_ok(bv_signal_pipe_install(&sp, true, &err), &err);
	sigaction(SIGPIPE, NULL, &cur);
	assert_ptr_equal(cur.sa_handler, SIG_IGN);
	raise(SIGINT);
	assert_int_equal(own_handler_ran, 0);
	assert_int_equal(bv_signal_pipe_read(&sp, sigs, 2), 1);
	bv_signal_pipe_restore(&sp);

	sigaction(SIGPIPE, NULL, &cur);
	assert_ptr_equal(cur.sa_handler, SIG_DFL);
	raise(SIGINT);
	assert_int_equal(own_handler_ran, SIGINT);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGINT, &sa, NULL);
}

static void test_signals__not_installed_reads_nothing(void **state)
{
	struct bv_signal_pipe sp = BV_SIGNAL_PIPE_INIT;
	int sigs[2];
	(void)state;
	assert_int_equal(bv_signal_pipe_read(&sp, sigs, 2), 0);
	bv_signal_pipe_restore(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signals__forwarded_signals_arrive_on_the_pipe),
		cmocka_unit_test(test_signals__restore_puts_back_the_old_handlers),
		cmocka_unit_test(test_signals__not_installed_reads_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
