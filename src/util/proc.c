#include "proc.h"

#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup.h"
#include "fs.h"
#include "xalloc.h"

#include "banned.h"

/* What the child was doing when it failed; sent to the parent with its errno. */
enum child_stage {
	STAGE_DUP = 1,
	STAGE_CHDIR,
	STAGE_EXEC,
};

struct child_report {
	int stage;
	int sys_errno;
};

/* Everything the child needs, prepared before fork() so the child need not allocate. */
struct child_plan {
	const char *path;
	char **argv;
	char **envp;
	char **sh_argv; /* "/bin/sh path args..." for scripts without a #! line (ENOEXEC) */
	const char *cwd;
	int fd[3]; /* descriptors for 0, 1, 2, or -1 to inherit */
	bool stderr_to_stdout;
	int report_fd;
};

/* Bits of owned_fds_, in the order in, out, err. */
#define OWN_IN  (1u << 0)
#define OWN_OUT (1u << 1)
#define OWN_ERR (1u << 2)

static char sh_path[] = "/bin/sh";

/*
 * Looks `prog` up in the parent's PATH, like execvp(), but before fork() because execvp() is
 * not async-signal-safe.  Returns 0 or the errno execvp() would have failed with.
 */
static int resolve_program(const char *prog, char **out)
{
	const char *path = getenv("PATH");
	int failure = ENOENT;
	if (!*prog)
		return ENOENT;
	if (strchr(prog, '/')) {
		*out = bv_xstrdup(prog);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (;;) {
		const char *end = strchrnul(path, ':');
		int len = (int)(end - path);
		_cleanup_free_ char *cand =
			len ? bv_xasprintf("%.*s/%s", len, path, prog) : bv_xasprintf("./%s", prog);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (faccessat(AT_FDCWD, cand, X_OK, AT_EACCESS) == 0) {
				*out = TAKE_PTR(cand);
				return 0;
			}
			failure = EACCES; /* keep looking, but report this if nothing better */
		}
		if (!*end)
			return failure;
		path = end + 1;
	}
}

/* environ with the "K=V" / "K" entries of `overrides` applied; NULL to use environ as is. */
static char **build_env(const struct bv_strv *overrides)
{
	size_t n = 0, cap;
	char **envp;
	if (!overrides->n)
		return NULL;
	for (char **e = environ; e && *e; e++)
		n++;
	cap = n + overrides->n + 1;
	envp = bv_xcalloc(cap, sizeof(*envp));
	for (size_t i = 0; i < n; i++)
		envp[i] = environ[i];
	for (size_t i = 0; i < overrides->n; i++) {
		char *o = overrides->v[i];
		size_t klen = (size_t)(strchrnul(o, '=') - o), kept = 0;
		for (size_t j = 0; j < n; j++)
			if (strncmp(envp[j], o, klen) != 0 || envp[j][klen] != '=')
				envp[kept++] = envp[j];
		n = kept;
		if (o[klen] == '=')
			envp[n++] = o;
	}
	envp[n] = NULL;
	return envp;
}

/*
 * pipe2() that writes `fds` only on success, so that error paths can close whatever the
 * caller initialised to -1.  `tmp` starts initialised because GCC 12's analyzer does not
 * know that pipe2() fills it and would report each later close() as an uninitialised read.
 */
static int pipe_cloexec(int fds[2])
{
	int tmp[2] = {-1, -1};
	if (pipe2(tmp, O_CLOEXEC) < 0)
		return -1;
	fds[0] = tmp[0];
	fds[1] = tmp[1];
	return 0;
}

/*
 * Decides where one of the child's standard streams comes from: an fd of the caller's (> 0),
 * inherited (0), or a new pipe (-1), whose ends are stored in *parent_end and *child_end.
 */
static int plan_stream(int field, bool child_reads, int *child_fd, int *parent_end, int *child_end)
{
	int fds[2] = {-1, -1};
	if (field > 0)
		*child_fd = field;
	if (field != -1)
		return 0;
	if (pipe_cloexec(fds) < 0)
		return -1;
	*parent_end = child_reads ? fds[1] : fds[0];
	*child_end = child_reads ? fds[0] : fds[1];
	*child_fd = *child_end;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Async-signal-safe from here to child_exec(). */
static __attribute__((noreturn)) void child_fail(int report_fd, int stage)
{
	struct child_report rep = {.stage = stage, .sys_errno = errno};
	(void)bv_write_all(report_fd, &rep, sizeof(rep)); /* a plain write loop: safe here */
	_exit(127);
}

static int child_dup(int fd, int target)
{
	if (fd < 0)
		return 0;
	/* dup2() onto itself would keep O_CLOEXEC, and exec would then close the descriptor. */
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	while (dup2(fd, target) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/*
 * The hexadecimal mask after "\n<field>:\t" in /proc/self/status's text `buf`, into *mask;
 * false when the field is not there.  Plain loops: this runs between fork() and exec().
 */
static bool status_mask(const char *buf, const char *field, uint64_t *mask)
{
	size_t flen = strlen(field);
	for (const char *p = buf; (p = strchr(p, '\n')) != NULL;) {
		p++;
		if (strncmp(p, field, flen) != 0 || p[flen] != ':')
			continue;
		p += flen + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		*mask = 0;
		for (int digits = 0; digits < 16; digits++, p++) {
			int v = *p >= '0' && *p <= '9'   ? *p - '0'
				: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
							 : -1;
			if (v < 0)
				return digits > 0;
			*mask = *mask << 4 | (uint64_t)v;
		}
		return true;
	}
	return false;
}

/*
 * Which signals have a handler and which are ignored, from the kernel's own masks in
 * /proc/self/status: one read instead of a sigaction() per signal, which on a virtual machine
 * costs a run a tenth of a millisecond.  False when /proc cannot tell (not mounted).
 */
static bool signal_masks(uint64_t *caught, uint64_t *ignored)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return status_mask(buf, "SigCgt", caught) && status_mask(buf, "SigIgn", ignored);
}

void bv_proc_default_signals(void)
{
	struct sigaction dfl;
	uint64_t caught, ignored;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	/*
	 * Handlers of bv must not run in the child; ignored signals other than SIGPIPE stay so.
	 * A signal already at its default is left alone: setting it again changes nothing.
	 */
	if (signal_masks(&caught, &ignored)) {
		for (int sig = 1; sig < NSIG && sig <= 64; sig++)
			if ((caught >> (sig - 1) & 1) ||
			    (sig == SIGPIPE && (ignored >> (sig - 1) & 1)))
				sigaction(sig, &dfl, NULL);
		return;
	}
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction cur;
		if (sigaction(sig, NULL, &cur) < 0)
			continue;
		if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL)
			continue;
		if (sig == SIGPIPE || (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_IGN)
			sigaction(sig, &dfl, NULL);
	}
}

bool bv_proc_single_threaded(void)
{
	char buf[4096];
	_cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	const char *t;
	if (n <= 0)
		return false;
	buf[n] = '\0';
	t = strstr(buf, "\nThreads:");
	return t && strtol(t + 9, NULL, 10) == 1;
}

static __attribute__((noreturn)) void child_exec(const struct child_plan *c)
{
	sigset_t none;

	bv_proc_default_signals();

	if (child_dup(c->fd[0], 0) < 0 || child_dup(c->fd[1], 1) < 0)
		child_fail(c->report_fd, STAGE_DUP);
	if (c->stderr_to_stdout ? child_dup(1, 2) < 0 : child_dup(c->fd[2], 2) < 0)
		child_fail(c->report_fd, STAGE_DUP);
	if (c->cwd && chdir(c->cwd) < 0)
		child_fail(c->report_fd, STAGE_CHDIR);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(c->path, c->argv, c->envp);
	if (errno == ENOEXEC)
		execve(sh_path, c->sh_argv, c->envp);
	child_fail(c->report_fd, STAGE_EXEC);
}

static int report_child_failure(const struct child_report *rep, const char *prog, const char *cwd,
				struct bv_error **err)
{
	int code = rep->sys_errno == ENOENT ? BV_ENOTFOUND : BV_ERR;
	switch (rep->stage) {
	case STAGE_CHDIR:
		bv_error_setc(err, code, rep->sys_errno, "could not change directory to '%s'", cwd);
		return bv_error_wrap(err, code, "could not run '%s'", prog);
	case STAGE_DUP:
		bv_error_setc(err, BV_ERR, rep->sys_errno, "could not set up standard descriptors");
		return bv_error_wrap(err, BV_ERR, "could not run '%s'", prog);
	default:
		return bv_error_setc(err, code, rep->sys_errno, "could not run '%s'", prog);
	}
}

static pid_t waitpid_eintr(pid_t pid, int *status)
{
	pid_t r;
	do
		r = waitpid(pid, status, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

int bv_proc_start(struct bv_proc *p, struct bv_error **err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char **envp = NULL;
	_cleanup_free_ char **sh_argv = NULL;
	_cleanup_close_ int null_fd = -1;
	/* Our ends and the child's ends of the pipes for stdin, stdout and stderr. */
	int in_parent = -1, in_child = -1, out_parent = -1, out_child = -1, err_parent = -1,
	    err_child = -1;
	int report_read = -1, report_write = -1; /* the child's exec status pipe */
	int fds[2] = {-1, -1};
	const int fields[3] = {p->in, p->out, p->stderr_to_stdout ? 0 : p->err};
	struct child_plan c = {.cwd = p->cwd, .fd = {-1, -1, -1}};
	struct child_report rep;
	sigset_t all, old;
	const char *prog;
	ssize_t n;
	pid_t pid;
	int e, r = 0;

	if (!p->args.n)
		return bv_error_setc(err, BV_EINVALID, 0, "no program to run");
	prog = p->args.v[0];
	if (p->pid > 0)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' is already running", prog);
	e = resolve_program(prog, &path);
	if (e)
		return bv_error_setc(err, e == ENOENT ? BV_ENOTFOUND : BV_ERR, e,
				     "could not run '%s'", prog);

	envp = build_env(&p->env);
	sh_argv = bv_xcalloc(p->args.n + 2, sizeof(*sh_argv));
	sh_argv[0] = sh_path;
	sh_argv[1] = path;
	for (size_t i = 1; i < p->args.n; i++)
		sh_argv[i + 1] = p->args.v[i];
	c.path = path;
	c.argv = p->args.v;
	c.envp = envp ? envp : environ;
	c.sh_argv = sh_argv;
	c.stderr_to_stdout = p->stderr_to_stdout;

	if (plan_stream(fields[0], true, &c.fd[0], &in_parent, &in_child) < 0 ||
	    plan_stream(fields[1], false, &c.fd[1], &out_parent, &out_child) < 0 ||
	    plan_stream(fields[2], false, &c.fd[2], &err_parent, &err_child) < 0) {
		r = bv_error_set_errno(err, "could not create a pipe to run '%s'", prog);
		goto out;
	}
	if (!fields[0] && p->no_stdin) {
		null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (null_fd < 0) {
			r = bv_error_set_errno(err, "could not open '/dev/null'");
			goto out;
		}
		c.fd[0] = null_fd;
	}
	if (pipe_cloexec(fds) < 0) {
		r = bv_error_set_errno(err, "could not create a pipe to run '%s'", prog);
		goto out;
	}
	report_read = fds[0];
	report_write = fds[1];
	c.report_fd = report_write;

	/* Blocked until the child has reset the handlers, so none of ours runs in the child. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_exec(&c);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close_fd(&report_write);
	close_fd(&in_child);
	close_fd(&out_child);
	close_fd(&err_child);
	if (pid < 0) {
		errno = e;
		r = bv_error_set_errno(err, "could not fork to run '%s'", prog);
		goto out;
	}

	/* EOF means exec succeeded and closed the descriptor; a report means it did not. */
	do
		n = read(report_read, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(rep)) {
		int ignored;
		waitpid_eintr(pid, &ignored);
		r = report_child_failure(&rep, prog, p->cwd, err);
		goto out;
	}

	p->pid = pid;
	p->owned_fds_ = 0;
	if (in_parent >= 0) {
		p->in = TAKE_FD(in_parent);
		p->owned_fds_ |= OWN_IN;
	}
	if (out_parent >= 0) {
		p->out = TAKE_FD(out_parent);
		p->owned_fds_ |= OWN_OUT;
	}
	if (err_parent >= 0) {
		p->err = TAKE_FD(err_parent);
		p->owned_fds_ |= OWN_ERR;
	}
out:
	close_fd(&report_read);
	close_fd(&report_write);
	close_fd(&in_parent);
	close_fd(&out_parent);
	close_fd(&err_parent);
	close_fd(&in_child);
	close_fd(&out_child);
	close_fd(&err_child);
	return r;
}

int bv_proc_finish(int *status_out, struct bv_proc *p, struct bv_error **err)
{
	const char *prog = p->args.n ? p->args.v[0] : "(none)";
	int st, code;

	if (p->pid <= 0)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' is not running", prog);
	if ((p->owned_fds_ & OWN_IN) && p->in >= 0) {
		close(p->in);
		p->in = -1;
	}
	if (waitpid_eintr(p->pid, &st) < 0) {
		p->pid = -1;
		return bv_error_set_errno(err, "could not wait for '%s'", prog);
	}
	p->pid = -1;
	if (WIFEXITED(st))
		code = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		code = 128 + WTERMSIG(st);
	else
		code = 255; /* not reachable without WUNTRACED */

	if (status_out) {
		*status_out = code;
		return 0;
	}
	if (WIFSIGNALED(st))
		return bv_error_set(err, "'%s' was killed by signal %d", prog, WTERMSIG(st));
	if (code)
		return bv_error_set(err, "'%s' exited with status %d", prog, code);
	return 0;
}

int bv_proc_run(int *status_out, struct bv_proc *p, struct bv_error **err)
{
	int r = bv_proc_start(p, err);
	if (r < 0)
		return r;
	return bv_proc_finish(status_out, p, err);
}

int bv_proc_stream(int *status_out, struct bv_proc *p,
		   void (*on_output)(const char *data, size_t len, void *payload), void *payload,
		   struct bv_error **err)
{
	char chunk[4096];
	int r;
	p->out = -1;
	p->stderr_to_stdout = true;
	p->no_stdin = true;
	r = bv_proc_start(p, err);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(p->out, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		on_output(chunk, (size_t)n, payload);
	}
	return bv_proc_finish(status_out, p, err);
}

int bv_proc_capture(struct bv_buf *out, int *status_out, struct bv_proc *p, size_t max,
		    struct bv_error **err)
{
	size_t start_len = out->len;
	const char *prog = p->args.n ? p->args.v[0] : "(none)";
	int r;

	if (p->out > 0)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "cannot capture the output of '%s': stdout is redirected",
				     prog);
	p->out = -1;
	r = bv_proc_start(p, err);
	if (r < 0) {
		p->out = 0;
		return r;
	}
	r = bv_buf_read_fd(out, p->out, max, err);
	close(p->out);
	p->out = -1;
	p->owned_fds_ &= ~OWN_OUT;
	if (r < 0) {
		int ignored;
		kill(p->pid, SIGKILL); /* still our unreaped child, so the pid cannot be reused */
		bv_proc_finish(&ignored, p, NULL);
		return bv_error_wrap(err, r, "could not read the output of '%s'", prog);
	}
	r = bv_proc_finish(status_out, p, err);
	if (r < 0) {
		bv_buf_setlen(out, start_len);
		return r;
	}
	return 0;
}

void bv_proc_clear(struct bv_proc *p)
{
	int *const slot[3] = {&p->in, &p->out, &p->err};
	for (int i = 0; i < 3; i++)
		if ((p->owned_fds_ & (1u << i)) && *slot[i] >= 0)
			close(*slot[i]);
	bv_strv_clear(&p->args);
	bv_strv_clear(&p->env);
	*p = (struct bv_proc)BV_PROC_INIT;
}
