/*
 * dockerignore.c - build contexts for project services: .dockerignore matching and the tar
 * stream sent to POST /build (see include/bv/services.h).
 *
 * Matching is what the docker CLI does, not what its documentation says: the same reading
 * of the file, the same translation of each pattern into a regular expression, the same
 * parent rule and the same walk (which skips an excluded directory whole unless an exception
 * names a path below it).  The tests hold a table of patterns with the answer the docker
 * CLI (docker.io 20.10) gave for each, and t0721 compares bv with it live.  The tar is
 * written with libarchive's writer, loaded on first use like its reader.
 */
#include <archive.h>
#include <archive_entry.h>
#include <bv/error.h>
#include <bv/services.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/oci/store/archive_calls.h"
#include "lib/oci/store/archive_loader.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

struct pattern {
	char *text; /* cleaned, without '!': what Docker's walk compares directories with */
	bool exception;
	size_t n_dirs; /* components of text: how far up a file's parents are tried */
	regex_t re;
};

struct bv_dockerignore {
	struct pattern *v;
	size_t n, alloc;
	bool has_exceptions;
};

void bv_dockerignore_free(struct bv_dockerignore *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].text);
		regfree(&d->v[i].re);
	}
	free(d->v);
	free(d);
}

/* Whether `p` is a pattern Go's filepath.Match accepts (Docker refuses the others): closed
 * classes, no dangling escape. */
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

/*
 * Docker's translation of a pattern into a regular expression (moby pkg/fileutils, the
 * client's .dockerignore reader): two stars at the end match anything; two stars elsewhere,
 * with the slash after them, match any number of whole components, none included; one star
 * matches within a component, '?' one character of it; '.' and '$' are escaped, a backslash
 * escapes the next character, everything else (classes included) is passed on as written.
 * So two stars inside a component ("a**b") are not one star: they match "ab" and "a/x/b",
 * not "axb".
 */
static char *pattern_regex(const char *p)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_buf_putc(&b, '^');
	for (; *p; p++) {
		if (p[0] == '*' && p[1] == '*') {
			p++;
			if (p[1] == '/')
				p++;
			bv_buf_puts(&b, p[1] ? "(.*/)?" : ".*");
		} else if (*p == '*') {
			bv_buf_puts(&b, "[^/]*");
		} else if (*p == '?') {
			bv_buf_puts(&b, "[^/]");
		} else if (*p == '.' || *p == '$') {
			bv_buf_putc(&b, '\\');
			bv_buf_putc(&b, *p);
		} else if (*p == '\\') {
			bv_buf_putc(&b, '\\');
			if (p[1])
				bv_buf_putc(&b, *++p);
			else
				bv_buf_putc(&b, '\\');
		} else {
			bv_buf_putc(&b, *p);
		}
	}
	bv_buf_putc(&b, '$');
	return bv_buf_detach(&b, NULL);
}

/*
 * Whether the regular expression is one Go's RE2, which docker uses, accepts with linear
 * cost, as far as glibc's regcomp() is concerned: a repetition ('+', '*', '?', '{') may not
 * follow another one or stand first (RE2 refuses "a++", "a*{2}", "+a"), and a counted
 * repetition may not exceed 1000 (RE2's limit).  glibc accepts these and builds automata
 * that grow without bound ("o+++++..." took gigabytes), so a hostile .dockerignore could
 * exhaust memory; docker refuses the same patterns.
 */
static bool regex_tame(const char *re)
{
	bool after_atom = false, after_repeat = false;
	for (const char *c = re; *c; c++) {
		if (*c == '\\' && c[1]) {
			c++;
			after_atom = true;
			after_repeat = false;
		} else if (*c == '[') {
			const char *end = c + 1;
			if (*end == '^')
				end++;
			if (*end == ']')
				end++;
			while (*end && *end != ']') {
				if (*end == '[' &&
				    (end[1] == ':' || end[1] == '.' || end[1] == '=')) {
					const char *close =
						strstr(end + 2, (char[]){end[1], ']', '\0'});
					if (!close)
						return false;
					end = close + 2;
				} else {
					end++;
				}
			}
			if (!*end)
				return false;
			c = end;
			after_atom = true;
			after_repeat = false;
		} else if (*c == '*' || *c == '+' || *c == '?' || *c == '{') {
			if (!after_atom || after_repeat)
				return false;
			if (*c == '{') {
				unsigned long n = 0;
				const char *q = c + 1;
				for (; *q && *q != '}'; q++) {
					if (*q >= '0' && *q <= '9') {
						n = n * 10 + (unsigned long)(*q - '0');
						if (n > 1000)
							return false;
					} else if (*q == ',') {
						n = 0;
					} else {
						return false;
					}
				}
				if (!*q)
					return false;
				c = q;
			}
			after_repeat = true;
		} else if (*c == '(' || *c == '|' || *c == '^') {
			after_atom = false;
			after_repeat = false;
		} else {
			after_atom = true;
			after_repeat = false;
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

/* Adds a pattern already cleaned as Docker's reader does; -EINVAL when it does not compile. */
static int add_pattern(struct bv_dockerignore *d, const char *text, bool exception)
{
	struct pattern *pat;
	_cleanup_free_ char *re = pattern_regex(text);
	BV_GROW(d->v, d->alloc, d->n + 1);
	pat = &d->v[d->n];
	memset(pat, 0, sizeof(*pat));
	if (!regex_tame(re) || regcomp(&pat->re, re, REG_EXTENDED | REG_NOSUB) != 0)
		return -EINVAL;
	d->n++;
	pat->text = bv_xstrdup(text);
	pat->exception = exception;
	pat->n_dirs = 1;
	for (const char *c = text; *c; c++)
		pat->n_dirs += *c == '/';
	d->has_exceptions = d->has_exceptions || exception;
	return 0;
}

int bv_dockerignore_parse(struct bv_dockerignore **out, const char *text, size_t len,
			  const char *file, struct bv_error **err)
{
	struct bv_dockerignore *d = bv_xcalloc(1, sizeof(*d));
	size_t line_no = 0;
	const char *s = text, *end = text + len;
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		_cleanup_free_ char *line = bv_xstrndup(s, n);
		_cleanup_free_ char *clean = NULL;
		const char *why = NULL;
		char *p;
		bool exception = false;
		s += n + (nl ? 1 : 0);
		line_no++;
		if (strlen(line) != n)
			why = "NUL byte in a pattern";
		else if (line[0] == '#') /* before trimming: " #x" is a pattern */
			continue;
		p = trim(line);
		if (!why && !*p)
			continue;
		if (!why && *p == '!') {
			exception = true;
			p = trim(p + 1);
			if (!*p)
				why = "illegal exclusion pattern: \"!\"";
		}
		if (!why && !pattern_valid(p))
			why = "invalid pattern";
		if (!why) {
			/* Go's filepath.Clean, then a leading '/' dropped ("/" itself stays) */
			clean = bv_services_clean_path(p);
			if (add_pattern(d, clean[0] == '/' && clean[1] ? clean + 1 : clean,
					exception) < 0)
				why = "invalid pattern";
		}
		if (why) {
			_cleanup_free_ char *shown =
				bv_str_shown(p ? p : "", strlen(p ? p : ""), 80);
			bv_dockerignore_free(d);
			if (!strcmp(why, "invalid pattern"))
				return bv_error_setc(err, BV_EINVALID, 0,
						     "%s:%zu:1: invalid pattern '%s'", file,
						     line_no, shown);
			return bv_error_setc(err, BV_EINVALID, 0, "%s:%zu:1: %s", file, line_no,
					     why);
		}
	}
	*out = d;
	return 0;
}

/*
 * Docker 20.10's PatternMatcher.Matches: the last pattern that matches the path decides;
 * a pattern of N components that does not match the path itself is tried on the path's
 * first N components when those are a parent of it ("build" excludes "build/a/b"; a pattern
 * of two components is tried on "a/b" only, never on "a/b/x", a deeper parent).
 */
bool bv_dockerignore_excluded(const struct bv_dockerignore *d, const char *path)
{
	_cleanup_free_ char *copy = NULL;
	size_t n_parent_dirs = 0;
	const char *last_slash;
	bool excluded = false;
	if (!d || !d->n)
		return false;
	copy = bv_xstrdup(path);
	last_slash = strrchr(path, '/');
	if (last_slash)
		for (const char *c = path; c <= last_slash; c++)
			n_parent_dirs += *c == '/';
	for (size_t i = 0; i < d->n; i++) {
		const struct pattern *p = &d->v[i];
		bool m = regexec(&p->re, path, 0, NULL, 0) == 0;
		if (!m && last_slash && p->n_dirs <= n_parent_dirs) {
			/* the first n_dirs components of the parent */
			char *cut = copy;
			for (size_t k = 0; k < p->n_dirs; k++)
				cut = strchr(cut, '/') + 1;
			cut[-1] = '\0';
			m = regexec(&p->re, copy, 0, NULL, 0) == 0;
			cut[-1] = '/';
		}
		if (m)
			excluded = !p->exception;
	}
	return excluded;
}

/*
 * Docker's client (archive.TarWithOptions) skips an excluded directory whole unless the text
 * of an exception pattern starts with the directory's path and a '/'; it then walks in and
 * matches each entry on its own, without sending the directory itself.  So "lib/<2 stars>"
 * then "!lib/<2 stars>/<star>.so" keeps lib/a.so but drops lib/x/b.so: lib/x is excluded,
 * and the exception's text does not start with "lib/x/".
 */
bool bv_dockerignore_may_include_below(const struct bv_dockerignore *d, const char *dir)
{
	size_t n = strlen(dir);
	if (!d || !d->has_exceptions)
		return false;
	for (size_t i = 0; i < d->n; i++) {
		const struct pattern *p = &d->v[i];
		size_t len = strlen(p->text);
		if (!p->exception || len + 1 < n + 1)
			continue;
		/* (text + "/") starts with (dir + "/") */
		if (!strncmp(p->text, dir, n) && (p->text[n] == '/' || p->text[n] == '\0'))
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

static int add_path(struct tar_writer *w, int dirfd, const char *name, const char *rel,
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
		int r = add_path(w, dirfd, *n, child, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_path(struct tar_writer *w, int dirfd, const char *name, const char *rel,
		    struct bv_error **err)
{
	struct stat st;
	bool excluded = bv_dockerignore_excluded(w->ignore, rel);
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
	/*
	 * The docker CLI's TrimBuildFilesFromExcludes: the Dockerfile and .dockerignore are sent
	 * even when excluded, as exceptions added at the end, which the walk then follows like
	 * any other (into an excluded directory only as far as the exception leads).
	 */
	if (ignore && bv_dockerignore_excluded(ignore, ".dockerignore"))
		(void)add_pattern(ignore, ".dockerignore", true);
	if (ignore && bv_dockerignore_excluded(ignore, df))
		(void)add_pattern(ignore, df, true);
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
	if (r >= 0 && archive_write_close(w.a) != ARCHIVE_OK)
		r = archive_fail(&w, ".", err);
out:
	archive_entry_free(w.entry);
	archive_write_free(w.a);
	bv_dockerignore_free(ignore);
	return r;
}
