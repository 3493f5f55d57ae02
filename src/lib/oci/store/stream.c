/*
 * stream.c - a child process per layer that unpacks the blob while it downloads (stream.h).
 */
#include "lib/oci/store/stream.h"

#include <bv/error.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/oci/store/archive_loader.h"
#include "lib/oci/store/unpack-internal.h"
#include "util/cleanup.h"
#include "util/proc.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* How many new bytes make a notification worth a system call. */
#define NOTIFY_STEP (256u * 1024)
#define MESSAGE_MAX 4096
#define MSG_MORE_   'n'
#define MSG_COMMIT  'C'
#define MSG_ABORT   'A'

struct bv_unpack_stream {
	pid_t pid;
	int sock;
	uint64_t size, notified;
	bool verdict_sent;
	char *digest;
};

struct answer {
	int32_t code;
	uint32_t len; /* message bytes that follow */
};

/* ---- the child --------------------------------------------------------------------------- */

struct child {
	int sock;
	int verdict; /* 0: none yet, 1: commit, -1: abort */
};

/* Reads what the parent sent; `block`: wait for at least one byte.  < 0 on abort or EOF. */
static int child_read(struct child *c, bool block)
{
	char buf[512];
	for (;;) {
		ssize_t n = recv(c->sock, buf, sizeof(buf), block ? 0 : MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			c->verdict = c->verdict ? c->verdict : -1;
			return c->verdict < 0 ? -1 : 0;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == MSG_COMMIT && !c->verdict)
				c->verdict = 1;
			else if (buf[i] == MSG_ABORT)
				c->verdict = -1;
		return c->verdict < 0 ? -1 : 0;
	}
}

static int child_wait(void *payload, uint64_t have, struct bv_error **err)
{
	struct child *c = payload;
	(void)have;
	if (c->verdict > 0) /* committed, yet the file is short: cannot happen, do not hang */
		return bv_error_set(err, "the blob ended early");
	if (child_read(c, true) < 0)
		return bv_error_set(err, "the download was abandoned");
	return 0;
}

static int child_check(void *payload, struct bv_error **err)
{
	struct child *c = payload;
	if (c->verdict < 0 || (!c->verdict && child_read(c, false) < 0))
		return bv_error_set(err, "the download was abandoned");
	return 0;
}

static int child_verdict(void *payload, struct bv_error **err)
{
	struct child *c = payload;
	while (!c->verdict)
		if (child_read(c, true) < 0)
			break;
	return c->verdict > 0 ? 0 : bv_error_set(err, "the blob failed verification");
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

/* Closes every descriptor above stderr except a and b. */
static void close_others(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;
	if (lo > 3)
		(void)close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		(void)close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	(void)close_range((unsigned)hi + 1, ~0u, 0);
}

__attribute__((noreturn)) static void child_main(int sock, int fd, uint64_t size,
						 const char *media_type, const char *dest,
						 const char *digest)
{
	struct child c = {.sock = sock};
	struct bv_unpack_source src = {
		.fd = fd,
		.size = size,
		.wait = child_wait,
		.check = child_check,
		.verdict = child_verdict,
		.payload = &c,
	};
	struct bv_error *e = NULL;
	struct answer ans = {0};
	_cleanup_free_ char *msg = NULL;
	int r;

	bv_proc_default_signals();
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	close_others(sock, fd);
	r = bv_unpack_layer_from(&src, digest, media_type, dest, NULL, &e);
	ans.code = r < 0 ? r : 0;
	if (r < 0) {
		msg = e ? bv_error_format(e) : bv_xstrdup("unknown error");
		ans.len = (uint32_t)strnlen(msg, MESSAGE_MAX);
	}
	send_all(sock, &ans, sizeof(ans));
	if (ans.len)
		send_all(sock, msg, ans.len);
	_exit(0);
}

/* ---- the parent -------------------------------------------------------------------------- */

int bv_unpack_stream_start(struct bv_unpack_stream **out, const char *partial_path, uint64_t size,
			   const char *media_type, const char *dest_dir, const char *digest,
			   struct bv_error **err)
{
	_cleanup_close_ int fd = -1;
	int sv[2];
	pid_t pid;

	/* loaded here, not in every child */
	if (!bv_archive_get(err))
		return BV_ERR;
	if (!bv_proc_single_threaded())
		return bv_error_setc(err, BV_EEXISTS, 0, "a second thread is running");
	fd = open(partial_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return bv_error_set_errno(err, "could not open '%s'", partial_path);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return bv_error_set_errno(err, "could not make a socket pair");
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return bv_error_set_errno(err, "could not start an unpacker");
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(sv[1], fd, size, media_type, dest_dir, digest);
	}
	close(sv[1]);
	*out = bv_xcalloc(1, sizeof(**out));
	(*out)->pid = pid;
	(*out)->sock = sv[0];
	(*out)->size = size;
	(*out)->digest = bv_xstrdup(digest);
	return 0;
}

static void send_byte(struct bv_unpack_stream *s, char c, bool block)
{
	ssize_t w;
	do
		w = send(s->sock, &c, 1, MSG_NOSIGNAL | (block ? 0 : MSG_DONTWAIT));
	while (w < 0 && errno == EINTR);
	/* EAGAIN: notifications are pending anyway; EPIPE: the child is done already */
}

void bv_unpack_stream_notify(struct bv_unpack_stream *s, uint64_t have)
{
	if (!s || s->verdict_sent || (have - s->notified < NOTIFY_STEP && have < s->size))
		return;
	s->notified = have;
	send_byte(s, MSG_MORE_, false);
}

void bv_unpack_stream_verdict(struct bv_unpack_stream *s, bool ok)
{
	if (!s || s->verdict_sent)
		return;
	s->verdict_sent = true;
	send_byte(s, ok ? MSG_COMMIT : MSG_ABORT, true);
}

bool bv_unpack_stream_ready(const struct bv_unpack_stream *s)
{
	struct pollfd p = {.fd = s->sock, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

static void stream_free(struct bv_unpack_stream *s)
{
	close(s->sock);
	free(s->digest);
	free(s);
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int bv_unpack_stream_finish(struct bv_unpack_stream *s, struct bv_error **err)
{
	struct answer ans = {0};
	char msg[MESSAGE_MAX + 1];
	ssize_t got = read_full(s->sock, &ans, sizeof(ans));
	int status = 0, r = 0;

	if (got == (ssize_t)sizeof(ans) && ans.code < 0) {
		size_t len = ans.len < MESSAGE_MAX ? ans.len : MESSAGE_MAX;
		got = read_full(s->sock, msg, len);
		msg[got > 0 ? got : 0] = '\0';
		r = bv_error_setc(err, ans.code, 0, "%s", msg);
	} else if (got != (ssize_t)sizeof(ans)) {
		r = bv_error_set(err, "the unpacker of layer %.19s stopped without an answer",
				 s->digest);
	}
	while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
		;
	stream_free(s);
	return r;
}

void bv_unpack_stream_abort(struct bv_unpack_stream *s)
{
	if (!s)
		return;
	bv_unpack_stream_verdict(s, false);
	(void)bv_unpack_stream_finish(s, NULL);
}
