/*
 * seal.c - listing, writing and checking tree seals (see seal.h).
 */
#include "lib/oci/store/seal.h"

#include <bv/error.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define SEAL_HEADER "bv-seal 1\n"
#define SEAL_MAX    (512u << 20)
#define MAX_DEPTH   256

/* ---- path -> digest map: open addressing, FNV-1a ---- */

struct slot {
	char *path;
	char *digest;
};

struct bv_seal_map {
	struct slot *slots;
	size_t n, cap; /* cap is a power of two */
};

struct bv_seal_map *bv_seal_map_new(void)
{
	struct bv_seal_map *m = bv_xcalloc(1, sizeof(*m));
	m->cap = 64;
	m->slots = bv_xcalloc(m->cap, sizeof(*m->slots));
	return m;
}

void bv_seal_map_free(struct bv_seal_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].path);
		free(m->slots[i].digest);
	}
	free(m->slots);
	free(m);
}

static struct slot *find_slot(struct slot *slots, size_t cap, const char *path)
{
	size_t i = (size_t)bv_fnv1a64(path, strlen(path)) & (cap - 1);
	while (slots[i].path && strcmp(slots[i].path, path))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

void bv_seal_map_put(struct bv_seal_map *m, const char *path, const char *digest)
{
	struct slot *s;
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap * 2;
		struct slot *slots = bv_xcalloc(cap, sizeof(*slots));
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].path)
				*find_slot(slots, cap, m->slots[i].path) = m->slots[i];
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	s = find_slot(m->slots, m->cap, path);
	if (s->path) {
		free(s->digest);
	} else {
		s->path = bv_xstrdup(path);
		m->n++;
	}
	s->digest = bv_xstrdup(digest);
}

const char *bv_seal_map_get(const struct bv_seal_map *m, const char *path)
{
	const struct slot *s;
	if (!m || !m->n)
		return NULL;
	s = find_slot(m->slots, m->cap, path);
	/* "" records a path whose digest is not known (hashed when listed) */
	return s->path && s->digest[0] ? s->digest : NULL;
}

/* ---- listing ---- */

/* Paths and link targets in a line: '%', tab, newline and control bytes as %XX. */
static void put_escaped(struct bv_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '%')
			bv_buf_printf(b, "%%%02X", c);
		else
			bv_buf_putc(b, (char)c);
	}
}

static int hash_file(int dfd, const char *name, char out[BV_SHA256_HEX_LEN + 1])
{
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || bv_sha256_fd_hex(fd, out, NULL) < 0)
		return -errno;
	return 0;
}

struct lister {
	const struct bv_seal_map *known;
	bool contents;  /* false: file digests are "-" */
	bool read_only; /* takes the write bits off each directory it lists (bv_seal_write) */
	char *dirbuf;   /* BV_DIRBUF_SIZE bytes of scratch for bv_dir_each() */
	struct bv_buf out;
};

/* The mode a directory ends with in a sealed tree: no write bits, and its owner may enter. */
static mode_t read_only_mode(mode_t mode)
{
	return ((mode & 07777) & ~(mode_t)0222) | S_IRUSR | S_IXUSR;
}

static int list_entry(struct lister *ls, int dfd, const char *name, const char *rel,
		      const struct stat *st, unsigned depth);

static int push_name(const char *name, unsigned char type, void *payload)
{
	(void)type;
	bv_strv_push(payload, name);
	return 0;
}

/*
 * Lists the directory `fd` (borrowed, just opened: read from its start by bv_dir_each()).
 */
static int list_dir(struct lister *ls, int fd, const char *rel, unsigned depth)
{
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	int r = bv_dir_each(fd, ls->dirbuf, push_name, &names);
	if (r < 0)
		return r;
	bv_strv_sort(&names);
	bv_strv_foreach (n, &names) {
		_cleanup_free_ char *path = *rel ? bv_xasprintf("%s/%s", rel, *n) : bv_xstrdup(*n);
		struct stat st;
		if (fstatat(fd, *n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		r = list_entry(ls, fd, *n, path, &st, depth);
		if (r < 0)
			return r;
	}
	return 0;
}

static int list_entry(struct lister *ls, int dfd, const char *name, const char *rel,
		      const struct stat *st, unsigned depth)
{
	struct bv_buf *b = &ls->out;
	char type = S_ISDIR(st->st_mode)   ? 'd'
		    : S_ISREG(st->st_mode) ? 'f'
		    : S_ISLNK(st->st_mode) ? 'l'
					   : '?';
	mode_t mode = type == 'd' && ls->read_only ? read_only_mode(st->st_mode) : st->st_mode;

	put_escaped(b, rel);
	bv_buf_printf(b, "\t%c\t%04o\t%lld\t", type, (unsigned)(mode & 07777),
		      type == 'f' ? (long long)st->st_size : 0LL);
	if (type == 'f') {
		const char *known = bv_seal_map_get(ls->known, rel);
		char hex[BV_SHA256_HEX_LEN + 1];
		if (!ls->contents) {
			bv_buf_puts(b, "-");
		} else if (known) {
			bv_buf_puts(b, known);
		} else {
			int r = hash_file(dfd, name, hex);
			if (r < 0)
				return r;
			bv_buf_printf(b, "sha256:%s", hex);
		}
	} else if (type == 'l') {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		put_escaped(b, target);
	} else {
		bv_buf_puts(b, "-");
	}
	bv_buf_putc(b, '\n');
	if (type == 'd') {
		_cleanup_close_ int sub = -1;
		int r;
		if (depth >= MAX_DEPTH)
			return -ELOOP;
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return -errno;
		r = list_dir(ls, sub, rel, depth + 1);
		if (r == 0 && ls->read_only && (st->st_mode & 07777) != mode &&
		    fchmod(sub, mode) < 0)
			r = -errno;
		return r;
	}
	return 0;
}

/* The listing of the tree at `fd` (entries only, no header or end line). */
static int list_tree(int fd, const struct bv_seal_map *known, bool contents, bool read_only,
		     struct bv_buf *out)
{
	struct lister ls = {
		.known = known, .contents = contents, .read_only = read_only, .out = BV_BUF_INIT};
	_cleanup_close_ int own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	mode_t mode = 0;
	int r = 0;

	if (own < 0 || fstat(own, &st) < 0)
		r = -errno;
	if (r == 0) {
		mode = read_only ? read_only_mode(st.st_mode) : st.st_mode;
		bv_buf_printf(&ls.out, ".\td\t%04o\t0\t-\n", (unsigned)(mode & 07777));
		ls.dirbuf = bv_xmalloc(BV_DIRBUF_SIZE);
		r = list_dir(&ls, own, "", 0);
		free(ls.dirbuf);
	}
	if (r == 0 && read_only && (st.st_mode & 07777) != mode && fchmod(own, mode) < 0)
		r = -errno;
	if (r < 0) {
		bv_buf_release(&ls.out);
		return r;
	}
	*out = ls.out;
	return 0;
}

char *bv_seal_path(const char *tree)
{
	_cleanup_free_ char *copy = bv_xstrdup(tree);
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	return bv_xasprintf("%s" BV_SEAL_SUFFIX, copy);
}

static void end_line(const char *text, size_t len, struct bv_buf *out)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	bv_sha256_hex(hex, text, len);
	bv_buf_printf(out, "end sha256:%s\n", hex);
}

/*
 * Writes `text` to `path` by a rename, without fsync: the caller (unpack.c's stage_commit)
 * calls syncfs(2) on the same file system before it publishes the tree, which makes this
 * file and its rename durable too, for the price of one flush instead of three.
 */
static int write_unsynced(const char *path, const struct bv_buf *text, struct bv_error **err)
{
	_cleanup_free_ char *tmp = bv_xasprintf("%s.tmp-%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0444);

	if (fd < 0)
		return bv_error_set_errno(err, "could not create '%s'", tmp);
	if (bv_write_all(fd, text->buf, text->len) < 0) {
		int r = bv_error_set_errno(err, "could not write '%s'", tmp);
		close(fd);
		(void)unlink(tmp);
		return r;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int r = bv_error_set_errno(err, "could not write '%s'", path);
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

int bv_seal_write(int root_fd, const char *final_tree, const struct bv_seal_map *known,
		  struct bv_error **err)
{
	_cleanup_free_ char *path = bv_seal_path(final_tree);
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_buf listing = BV_BUF_INIT;
	int r = list_tree(root_fd, known, true, true, &listing);

	if (r < 0)
		return bv_error_setc(err, BV_ERR, -r, "could not list '%s' for its seal",
				     final_tree);
	bv_buf_puts(&text, SEAL_HEADER);
	bv_buf_add(&text, listing.buf, listing.len);
	bv_buf_release(&listing);
	end_line(text.buf, text.len, &text);
	return write_unsynced(path, &text, err);
}

/* The entries of a seal, checked against its end line; NULL when it is not a valid seal. */
static char *read_seal(const char *tree, size_t *len_out)
{
	_cleanup_free_ char *path = bv_seal_path(tree);
	struct bv_buf text = BV_BUF_INIT;
	struct bv_buf want = BV_BUF_INIT;
	const char *last;
	size_t body;
	bool ok;

	if (bv_buf_read_file(&text, path, SEAL_MAX, NULL) < 0)
		return NULL;
	last = text.len >= 2 ? memrchr(text.buf, '\n', text.len - 1) : NULL;
	body = last ? (size_t)(last - text.buf) + 1 : 0;
	ok = body >= strlen(SEAL_HEADER) && !memcmp(text.buf, SEAL_HEADER, strlen(SEAL_HEADER));
	if (ok) {
		end_line(text.buf, body, &want);
		ok = text.len - body == want.len && !memcmp(text.buf + body, want.buf, want.len);
	}
	bv_buf_release(&want);
	if (!ok) {
		bv_buf_release(&text);
		return NULL;
	}
	memmove(text.buf, text.buf + strlen(SEAL_HEADER), body - strlen(SEAL_HEADER));
	*len_out = body - strlen(SEAL_HEADER);
	text.buf[*len_out] = '\0';
	return bv_buf_detach(&text, NULL);
}

void bv_seal_map_load(struct bv_seal_map *m, const char *tree)
{
	size_t len = 0;
	_cleanup_free_ char *entries = read_seal(tree, &len);
	char *line = entries;

	while (line && *line) {
		char *nl = strchr(line, '\n');
		char *f[5] = {line};
		int n = 1;
		if (!nl)
			break;
		*nl = '\0';
		for (char *p = line; *p && n < 5; p++)
			if (*p == '\t') {
				*p = '\0';
				f[n++] = p + 1;
			}
		/* paths with escapes would need unescaping; those files are simply hashed */
		if (n == 5 && !strcmp(f[1], "f") && !strchr(f[0], '%'))
			bv_seal_map_put(m, f[0], f[4]);
		line = nl + 1;
	}
}

/* `text` with the digest field of every file line replaced by "-" (for a fast check). */
static char *without_digests(const char *text)
{
	struct bv_buf b = BV_BUF_INIT;
	while (*text) {
		const char *nl = strchrnul(text, '\n');
		int tabs = 0;
		const char *first = NULL, *fourth = NULL;
		for (const char *p = text; p < nl; p++) {
			if (*p != '\t')
				continue;
			if (++tabs == 1)
				first = p;
			else if (tabs == 4)
				fourth = p;
		}
		/* a file line: "<path>\tf\t<mode>\t<size>\t<digest>" */
		if (first && fourth && !strncmp(first, "\tf\t", 3)) {
			bv_buf_add(&b, text, (size_t)(fourth - text));
			bv_buf_puts(&b, "\t-");
		} else {
			bv_buf_add(&b, text, (size_t)(nl - text));
		}
		if (*nl) {
			bv_buf_putc(&b, '\n');
			nl++;
		}
		text = nl;
	}
	return bv_buf_detach(&b, NULL);
}

/* Where the listings `want` (the seal) and `got` (the tree) first differ, for a message. */
static char *first_difference(const char *want, const char *got)
{
	while (*want || *got) {
		const char *wn = strchrnul(want, '\n'), *gn = strchrnul(got, '\n');
		size_t wl = (size_t)(wn - want), gl = (size_t)(gn - got);
		if (wl != gl || memcmp(want, got, wl)) {
			int wp = (int)strcspn(want, "\t\n"), gp = (int)strcspn(got, "\t\n");
			if (!wl)
				return bv_xasprintf("'%.*s' is not in the seal", gp, got);
			if (!gl)
				return bv_xasprintf("'%.*s' is missing", wp, want);
			if (wp == gp && !memcmp(want, got, (size_t)wp))
				return bv_xasprintf("'%.*s' differs from the seal (type, mode, "
						    "size, content or link target)",
						    wp, want);
			return bv_xasprintf("an entry was added or removed near '%.*s'", wp, want);
		}
		want = *wn ? wn + 1 : wn;
		got = *gn ? gn + 1 : gn;
	}
	return bv_xstrdup("the listing differs");
}

int bv_seal_check(char **problem, const char *tree, bool fast, struct bv_error **err)
{
	size_t len = 0;
	_cleanup_free_ char *want = read_seal(tree, &len);
	_cleanup_free_ char *fast_want = NULL;
	_cleanup_close_ int fd = -1;
	struct bv_buf got = BV_BUF_INIT;
	int r;

	*problem = NULL;
	if (!want) {
		*problem = bv_xstrdup("it has no valid seal");
		return 0;
	}
	fd = open(tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not open '%s'", tree);
	r = list_tree(fd, NULL, !fast, false, &got);
	if (r < 0)
		return bv_error_setc(err, BV_ERR, -r, "could not list '%s'", tree);
	if (fast)
		fast_want = without_digests(want);
	bv_buf_putc(&got, '\0');
	got.len--;
	if (!strcmp(fast ? fast_want : want, got.buf)) {
		bv_buf_release(&got);
		return 1;
	}
	*problem = first_difference(fast ? fast_want : want, got.buf);
	bv_buf_release(&got);
	return 0;
}
