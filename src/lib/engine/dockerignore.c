/*
 * dockerignore.c - build contexts for project services: .dockerignore matching and the tar
 * stream sent to POST /build (see include/bv/services.h).
 *
 * Matching follows Docker's documented rules, with fnmatch(3) doing the work for each path
 * component (so '*' and '?' never cross a '/', as in Go's filepath.Match); a component that
 * is exactly "**" matches any number of components.  Inside a longer component "**" acts as
 * '*'.  The tar is written with libarchive's writer, loaded on first use like its reader.
 */
#include <archive.h>
#include <archive_entry.h>
#include <bv/error.h>
#include <bv/services.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/store/archive_calls.h"
#include "lib/oci/store/archive_loader.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

struct pattern {
	char *text; /* cleaned, without '!' */
	bool exception;
	struct bv_strv parts; /* text split at '/' */
};

struct bv_dockerignore {
	struct pattern *v;
	size_t n;
	bool has_exceptions;
};

void bv_dockerignore_free(struct bv_dockerignore *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].text);
		bv_strv_clear(&d->v[i].parts);
	}
	free(d->v);
	free(d);
}

static void split_path(struct bv_strv *out, const char *path)
{
	const char *s = path;
	for (;;) {
		const char *slash = strchr(s, '/');
		if (!slash) {
			bv_strv_push(out, s);
			return;
		}
		bv_strv_push_take(out, bv_xstrndup(s, (size_t)(slash - s)));
		s = slash + 1;
	}
}

/* Whether fnmatch(3) reads `p` as Go's filepath.Match would accept it: closed classes, no
 * dangling escape. */
static bool pattern_valid(const char *p)
{
	for (; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				return false;
		} else if (*p == '[') {
			p++;
			if (*p == '^' || *p == '!')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']') {
				if (*p == '\\' && !*++p)
					return false;
				p++;
			}
			if (!*p)
				return false;
		}
	}
	return true;
}

static char *trim(char *s)
{
	char *end = s + strlen(s);
	while (*s && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int bv_dockerignore_parse(struct bv_dockerignore **out, const char *text, size_t len,
			  const char *file, struct bv_error **err)
{
	struct bv_dockerignore *d = bv_xcalloc(1, sizeof(*d));
	size_t alloc = 0, line_no = 0;
	const char *s = text, *end = text + len;
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		_cleanup_free_ char *line = bv_xstrndup(s, n);
		char *p;
		bool exception = false;
		struct pattern *pat;
		s += n + (nl ? 1 : 0);
		line_no++;
		if (strlen(line) != n) {
			bv_dockerignore_free(d);
			return bv_error_setc(err, BV_EINVALID, 0, "%s:%zu:1: NUL byte in a pattern",
					     file, line_no);
		}
		if (line[0] == '#')
			continue;
		p = trim(line);
		if (!*p)
			continue;
		if (*p == '!') {
			exception = true;
			p = trim(p + 1);
			if (!*p)
				continue;
		}
		if (!pattern_valid(p)) {
			bv_dockerignore_free(d);
			return bv_error_setc(err, BV_EINVALID, 0, "%s:%zu:1: invalid pattern '%s'",
					     file, line_no, p);
		}
		BV_GROW(d->v, alloc, d->n + 1);
		pat = &d->v[d->n++];
		pat->exception = exception;
		pat->text = bv_services_clean_path(p);
		if (pat->text[0] == '/' && pat->text[1]) {
			char *rel = bv_xstrdup(pat->text + 1);
			free(pat->text);
			pat->text = rel;
		}
		bv_strv_init(&pat->parts);
		split_path(&pat->parts, pat->text);
		d->has_exceptions = d->has_exceptions || exception;
	}
	*out = d;
	return 0;
}

static bool match_parts(char *const *pat, size_t np, char *const *path, size_t nq)
{
	if (!np)
		return !nq;
	if (!strcmp(pat[0], "**")) {
		if (np == 1) /* a final "**" needs a component: "cache/" + "**" is not "cache" */
			return nq > 0;
		for (size_t k = 0; k <= nq; k++)
			if (match_parts(pat + 1, np - 1, path + k, nq - k))
				return true;
		return false;
	}
	if (!nq)
		return false;
	if (strstr(pat[0], "**")) {
		/* "**" inside a component: the same as '*' there */
		_cleanup_free_ char *single = bv_xstrdup(pat[0]);
		char *w = single;
		for (const char *r = single; *r; r++) {
			if (r[0] == '*' && r[1] == '*')
				continue;
			*w++ = *r;
		}
		*w = '\0';
		if (fnmatch(single, path[0], 0) != 0)
			return false;
	} else if (fnmatch(pat[0], path[0], 0) != 0) {
		return false;
	}
	return match_parts(pat + 1, np - 1, path + 1, nq - 1);
}

bool bv_dockerignore_excluded(const struct bv_dockerignore *d, const char *path)
{
	_cleanup_strv_ struct bv_strv parts = BV_STRV_INIT;
	bool excluded = false;
	if (!d || !d->n)
		return false;
	split_path(&parts, path);
	for (size_t i = 0; i < d->n; i++) {
		const struct pattern *p = &d->v[i];
		bool m = false;
		/* the path itself, or one of the directories it is in */
		for (size_t len = parts.n; len > 0 && !m; len--)
			m = match_parts(p->parts.v, p->parts.n, parts.v, len);
		if (m)
			excluded = !p->exception;
	}
	return excluded;
}

bool bv_dockerignore_may_include_below(const struct bv_dockerignore *d, const char *dir)
{
	_cleanup_strv_ struct bv_strv parts = BV_STRV_INIT;
	if (!d || !d->has_exceptions)
		return false;
	split_path(&parts, dir);
	for (size_t i = 0; i < d->n; i++) {
		const struct pattern *p = &d->v[i];
		bool possible = true;
		if (!p->exception)
			continue;
		for (size_t k = 0; k < parts.n && possible; k++) {
			if (k < p->parts.n && strstr(p->parts.v[k], "**"))
				break; /* anything below may match */
			/* a pattern shorter than the directory cannot name anything below it */
			possible = k < p->parts.n && fnmatch(p->parts.v[k], parts.v[k], 0) == 0;
		}
		if (possible)
			return true;
	}
	return false;
}

/* ---- the tar stream ------------------------------------------------------------------- */

struct tar_writer {
	struct archive *a;
	struct archive_entry *entry;
	const struct bv_dockerignore *ignore;
	const char *dockerfile; /* cleaned, relative */
	bool dockerfile_sent;
};

static int archive_fail(struct tar_writer *w, const char *path, struct bv_error **err)
{
	const char *why = archive_error_string(w->a);
	return bv_error_setc(err, BV_ERR, 0, "could not add '%s' to the build context: %s", path,
			     why ? why : "unknown error");
}

/* Adds one entry; `fd` is the open file of a regular file, `target` a symlink's. */
static int add_entry(struct tar_writer *w, const char *rel, const struct stat *st, int fd,
		     const char *target, struct bv_error **err)
{
	archive_entry_clear(w->entry);
	archive_entry_set_pathname(w->entry, rel);
	archive_entry_set_perm(w->entry, st->st_mode & 07777);
	archive_entry_set_uid(w->entry, 0);
	archive_entry_set_gid(w->entry, 0);
	archive_entry_set_mtime(w->entry, st->st_mtim.tv_sec, 0); /* whole seconds: ustar */
	if (S_ISDIR(st->st_mode)) {
		archive_entry_set_filetype(w->entry, AE_IFDIR);
	} else if (S_ISLNK(st->st_mode)) {
		archive_entry_set_filetype(w->entry, AE_IFLNK);
		archive_entry_set_symlink(w->entry, target);
	} else {
		archive_entry_set_filetype(w->entry, AE_IFREG);
		archive_entry_set_size(w->entry, st->st_size);
	}
	if (archive_write_header(w->a, w->entry) != ARCHIVE_OK)
		return archive_fail(w, rel, err);
	if (fd >= 0) {
		char buf[65536];
		int64_t left = st->st_size;
		while (left > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return bv_error_set_errno(
					err, "could not read '%s' of the build context", rel);
			if (n == 0)
				break; /* shrank while we read: libarchive pads the entry */
			if (n > left)
				n = (ssize_t)left;
			if (archive_write_data(w->a, buf, (size_t)n) < 0)
				return archive_fail(w, rel, err);
			left -= n;
		}
	}
	return 0;
}

static int add_path(struct tar_writer *w, int dirfd, const char *name, const char *rel, bool force,
		    struct bv_error **err);

static int walk(struct tar_writer *w, int dirfd, const char *rel, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	int fd = dup(dirfd);
	DIR *dir;
	struct dirent *de;
	if (fd < 0)
		return bv_error_set_errno(err, "could not read directory '%s'", rel[0] ? rel : ".");
	dir = fdopendir(fd);
	if (!dir) {
		int saved = errno;
		close(fd);
		errno = saved;
		return bv_error_set_errno(err, "could not read directory '%s'", rel[0] ? rel : ".");
	}
	rewinddir(dir);
	errno = 0;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			bv_strv_push(&names, de->d_name);
	if (errno) {
		int saved = errno;
		closedir(dir);
		errno = saved;
		return bv_error_set_errno(err, "could not read directory '%s'", rel[0] ? rel : ".");
	}
	closedir(dir);
	bv_strv_sort(&names);
	bv_strv_foreach (n, &names) {
		_cleanup_free_ char *child =
			rel[0] ? bv_xasprintf("%s/%s", rel, *n) : bv_xstrdup(*n);
		int r = add_path(w, dirfd, *n, child, false, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_path(struct tar_writer *w, int dirfd, const char *name, const char *rel, bool force,
		    struct bv_error **err)
{
	struct stat st;
	bool always = force || !strcmp(rel, ".dockerignore") || !strcmp(rel, w->dockerfile);
	bool excluded = !always && bv_dockerignore_excluded(w->ignore, rel);
	int r = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return bv_error_set_errno(err, "could not read '%s' of the build context", rel);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int fd = -1;
		if (excluded && !bv_dockerignore_may_include_below(w->ignore, rel))
			return 0;
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return bv_error_set_errno(err, "could not open directory '%s'", rel);
		if (!excluded)
			r = add_entry(w, rel, &st, -1, NULL, err);
		return r < 0 ? r : walk(w, fd, rel, err);
	}
	if (excluded)
		return 0;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return bv_error_set_errno(err, "could not read symlink '%s'", rel);
		target[n] = '\0';
		return add_entry(w, rel, &st, -1, target, err);
	}
	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int fd =
			openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return bv_error_set_errno(err, "could not open '%s' of the build context",
						  rel);
		if (!strcmp(rel, w->dockerfile))
			w->dockerfile_sent = true;
		return add_entry(w, rel, &st, fd, NULL, err);
	}
	return 0; /* sockets, fifos and devices have no place in an image build */
}

int bv_build_context_write(int fd, const char *dir, const char *dockerfile, struct bv_error **err)
{
	struct tar_writer w = {0};
	struct bv_dockerignore *ignore = NULL;
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *ignore_path = NULL;
	_cleanup_free_ char *df = bv_services_clean_path(dockerfile);
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_error *read_err = NULL;
	int r;
	if (dirfd < 0)
		return bv_error_set_errno(err, "could not open build context '%s'", dir);
	if (!bv_archive_get(err))
		return BV_ERR;
	ignore_path = bv_path_join(dir, ".dockerignore");
	r = bv_buf_read_file(&text, ignore_path, 4u << 20, &read_err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(read_err);
	} else if (r < 0) {
		if (err)
			*err = read_err;
		else
			bv_error_free(read_err);
		return r;
	} else if ((r = bv_dockerignore_parse(&ignore, text.buf, text.len, ignore_path, err)) < 0) {
		return r;
	}
	w.ignore = ignore;
	w.dockerfile = df;
	w.a = archive_write_new();
	w.entry = archive_entry_new();
	if (!w.a || !w.entry)
		bv_oom();
	if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
	    archive_write_open_fd(w.a, fd) != ARCHIVE_OK) {
		r = archive_fail(&w, ".", err);
		goto out;
	}
	r = walk(&w, dirfd, "", err);
	if (r >= 0 && !w.dockerfile_sent) {
		/* in an excluded directory, or missing: send it on its own if it exists */
		char *slash = strrchr(df, '/');
		_cleanup_close_ int parent = -1;
		struct stat st;
		if (slash) {
			*slash = '\0';
			parent = openat(dirfd, df, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			*slash = '/';
		}
		if (!slash || parent >= 0) {
			const char *base = slash ? slash + 1 : df;
			int pfd = slash ? parent : dirfd;
			if (fstatat(pfd, base, &st, 0) == 0 && S_ISREG(st.st_mode))
				r = add_path(&w, pfd, base, df, true, err);
		}
	}
	if (r >= 0 && archive_write_close(w.a) != ARCHIVE_OK)
		r = archive_fail(&w, ".", err);
out:
	archive_entry_free(w.entry);
	archive_write_free(w.a);
	bv_dockerignore_free(ignore);
	return r;
}
