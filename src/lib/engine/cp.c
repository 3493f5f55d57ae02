/*
 * cp.c - copying a host directory into a session as a tar (see bv/session.h).
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/session.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/engine/session-internal.h"
#include "lib/oci/store/archive_calls.h"
#include "lib/oci/store/archive_loader.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

/* ---- cp ---- */

struct tar_ctx {
	struct archive *a;
	const char *top; /* for messages */
	struct bv_error **err;
};

static int tar_fail(struct tar_ctx *t, const char *rel)
{
	const char *why = archive_error_string(t->a);
	return bv_error_setc(t->err, BV_ERR, 0, "could not add '%s/%s' to the archive: %s", t->top,
			     rel, why ? why : "unknown error");
}

static int tar_file(struct tar_ctx *t, int dirfd, const char *name, const char *rel,
		    const struct stat *st)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	char buf[65536];
	off_t left = st->st_size;
	if (fd < 0)
		return bv_error_set_errno(t->err, "could not open '%s/%s'", t->top, rel);
	while (left > 0) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bv_error_set_errno(t->err, "could not read '%s/%s'", t->top, rel);
		if (n == 0)
			return bv_error_setc(t->err, BV_ERR, 0,
					     "'%s/%s' shrank while it was being copied", t->top,
					     rel);
		if (n > left)
			n = (ssize_t)left; /* it grew: copy what the header promised */
		if (archive_write_data(t->a, buf, (size_t)n) < 0)
			return tar_fail(t, rel);
		left -= n;
	}
	return 0;
}

static int tar_dir(struct tar_ctx *t, int dirfd, const char *prefix);

static int tar_entry(struct tar_ctx *t, int dirfd, const char *name, const char *prefix)
{
	_cleanup_free_ char *rel = prefix ? bv_xasprintf("%s/%s", prefix, name) : bv_xstrdup(name);
	struct archive_entry *en;
	struct stat st;
	char target[4096];
	ssize_t tlen = 0;
	int r = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return bv_error_set_errno(t->err, "could not stat '%s/%s'", t->top, rel);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0; /* devices, fifos and sockets have no place in a copy */
	if (S_ISLNK(st.st_mode)) {
		tlen = readlinkat(dirfd, name, target, sizeof(target) - 1);
		if (tlen < 0)
			return bv_error_set_errno(t->err, "could not read link '%s/%s'", t->top,
						  rel);
		target[tlen] = '\0';
	}
	en = archive_entry_new();
	if (!en)
		bv_oom();
	archive_entry_copy_stat(en, &st);
	archive_entry_copy_pathname(en, rel);
	if (!S_ISREG(st.st_mode))
		archive_entry_set_size(en, 0);
	if (S_ISLNK(st.st_mode))
		archive_entry_copy_symlink(en, target);
	if (archive_write_header(t->a, en) < 0)
		r = tar_fail(t, rel);
	archive_entry_free(en);
	if (r < 0)
		return r;
	if (S_ISREG(st.st_mode))
		return tar_file(t, dirfd, name, rel, &st);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int sub =
			openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return bv_error_set_errno(t->err, "could not open '%s/%s'", t->top, rel);
		return tar_dir(t, sub, rel);
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the entries of the directory at `dirfd` (borrowed), sorted, so archives are stable. */
static int tar_dir(struct tar_ctx *t, int dirfd, const char *prefix)
{
	struct bv_strv names = BV_STRV_INIT;
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d;
	struct dirent *de;
	int r = 0;
	if (dup_fd < 0)
		return bv_error_set_errno(t->err, "could not read '%s'", t->top);
	d = fdopendir(dup_fd);
	if (!d) {
		r = bv_error_set_errno(t->err, "could not read '%s'", t->top);
		close(dup_fd);
		return r;
	}
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			bv_strv_push(&names, de->d_name);
	if (errno)
		r = bv_error_set_errno(t->err, "could not read '%s'", t->top);
	closedir(d);
	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), name_cmp);
	for (size_t i = 0; r >= 0 && i < names.n; i++)
		r = tar_entry(t, dirfd, names.v[i], prefix);
	bv_strv_clear(&names);
	return r;
}

/* The contents of `dir` as a tar in an unlinked temporary file, positioned at its start. */
static int tar_directory(const char *dir, int *fd_out, struct bv_error **err)
{
	const char *tmp = getenv("TMPDIR");
	_cleanup_free_ char *path = bv_xasprintf("%s/bv-cp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	_cleanup_close_ int fd = -1, top = -1;
	struct tar_ctx t = {.top = dir, .err = err};
	int r;
	if (!bv_archive_get(err))
		return BV_ERR;
	top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		return bv_error_set_errno(err, "could not open directory '%s'", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not create a temporary file in '%s'",
					  tmp && *tmp ? tmp : "/tmp");
	(void)unlink(path);
	t.a = archive_write_new();
	if (!t.a)
		bv_oom();
	if (archive_write_set_format_pax_restricted(t.a) < 0 ||
	    archive_write_open_fd(t.a, fd) < 0) {
		r = tar_fail(&t, ".");
		archive_write_free(t.a);
		return r;
	}
	r = tar_dir(&t, top, NULL);
	if (r >= 0 && archive_write_close(t.a) < 0)
		r = tar_fail(&t, ".");
	archive_write_free(t.a);
	if (r < 0)
		return r;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return bv_error_set_errno(err, "could not rewind the archive of '%s'", dir);
	*fd_out = TAKE_FD(fd);
	return 0;
}

int bv_session_copy_in(struct bv_session_ctx *s, const char *name, const char *host_dir,
		       const char *target, struct bv_error **err)
{
	static const char script[] =
		"[ -d \"$1\" ] || { mkdir -p -- \"$1\" && chown -- \"$2\" \"$1\"; }";
	const char *argv[] = {"/bin/sh", "-c", script, "sh", target, NULL, NULL};
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT, errs = BV_BUF_INIT;
	_cleanup_free_ char *what = NULL, *copy = NULL;
	_cleanup_close_ int fd = -1;
	struct bv_session_exec_req x = {
		.argv = argv, .workdir = "/", .user = "0:0", .stdin_fd = -1};
	json_t *c = NULL;
	int code = 0;
	int r;
	if (!target || target[0] != '/')
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid target '%s': give an absolute path in the session",
				     target ? target : "");
	r = bv_session_find(&c, s, name, err);
	if (r < 0)
		return r;
	argv[5] = s->user;
	x.out.b = &out;
	x.err.b = &errs;
	what = bv_xasprintf("session '%s'", name);
	r = tar_directory(host_dir, &fd, err);
	if (r >= 0)
		r = bv_session_exec_in(&code, s->e, bv_session_jstr(c, "Id"), what, &x, err);
	if (r >= 0 && code != 0) {
		while (errs.len && errs.buf[errs.len - 1] == '\n')
			bv_buf_setlen(&errs, errs.len - 1);
		r = bv_error_setc(err, BV_ERR, 0, "could not create '%s' in session '%s': %s",
				  target, name, errs.len ? errs.buf : "mkdir failed");
	}
	if (r >= 0) {
		copy = bv_xasprintf("'%s' to '%s:%s'", host_dir, name, target);
		r = bv_engine_container_put_archive(s->e, bv_session_jstr(c, "Id"), target, fd,
						    copy, err);
	}
	json_decref(c);
	return r;
}
