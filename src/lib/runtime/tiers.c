/*
 * tiers.c - the tier of every locked tool from the kept manifest copies, for `bv list`,
 * through a cache of what those copies said: <cache>/manifests.tiers (see bv/runplan.h).
 *
 * The file: a first line "tiers2 <dev> <ino> <size> <mtime s> <mtime ns> <ctime s> <ctime ns>"
 * (the manifests directory's stat(2) when the file was made, or "tiers2 -"), one line per copy,
 * sorted by name: "<64 hex> <the copy's 7 numbers, the same> <tier>", the tier as "=<name>" or
 * "-" when the manifest has none, and a last line "sum <16 hex digits>", the FNV-1a hash of the
 * lines before (against damage, and it needs no libcrypto, which a list otherwise never loads).
 * A file that does not end with the right sum, or whose lines are out of order, is ignored
 * whole.  Written beside the directory (not in it: writing it would change the directory it
 * describes) by rename, without fsync (a torn file fails its sum).
 *
 * While the directory's stat gives the very numbers of the first line, every line holds without
 * looking at its copy: one stat for the whole project instead of one per tool.  That rests on
 * what may change a copy.  A copy is named by the sha256 of its text, and bv only ever creates
 * one where its name was free (by rename: bv_run_plan_save_manifest(), a bundle's keep_copies())
 * or removes one (bv cache verify, prune, clean); each of those changes the directory's mtime
 * and ctime, as does any rename or link by hand.  What it does not see is a copy written in
 * place, which no longer matches its name: a damaged copy, which `bv cache verify` removes
 * (and then the tier goes).  The first line is recorded only when the directory's ctime had
 * settled before anything was read (bv_stat_settled), so a later change always moves it.
 *
 * When the directory changed, every line is checked as before against its copy's own stat,
 * those that still hold are kept (a copy is recorded only when its ctime had settled before it
 * was read, so an edit in place always changes its numbers), and the file is written again with
 * the directory's new numbers.  A copy without a line is read and gets one.
 */
#include <bv/lockfile.h>
#include <bv/manifest.h>
#include <bv/runplan.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define TIERS_NAME     "manifests.tiers"
#define TIERS_MAGIC    "tiers2 "
#define TIERS_MAX_SIZE (16u << 20)
#define TIERS_MAX_KEEP 100000
#define HEX_LEN        64
#define SUM_HEX        16
#define SUM_LINE       (4 + SUM_HEX + 1)

struct entry {
	const char *line; /* "<hex> ...\n", in the loaded text or `own` */
	size_t len;
	char *own; /* a line made by this run */
};

struct table {
	struct bv_buf text; /* the file as read */
	struct entry *v;
	size_t n, alloc;
	bool dir_known; /* the first line has the directory's numbers */
	uint64_t dir[BV_STAT_KEY_LEN];
};

/* A tier that a line can carry as it is: short, no space, no control character. */
static bool plain_tier(const char *t)
{
	size_t n = strlen(t);
	if (!n || n > 64)
		return false;
	for (; *t; t++)
		if (!isalnum((unsigned char)*t) && !strchr("._+-", *t))
			return false;
	return true;
}

/* `n` decimal numbers, each followed by one space; the rest after them in *rest. */
static bool parse_numbers(uint64_t *out, size_t n, const char *p, const char **rest)
{
	char *end;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)*p))
			return false;
		errno = 0;
		out[i] = strtoull(p, &end, 10);
		if (errno || *end != ' ')
			return false;
		p = end + 1;
	}
	*rest = p;
	return true;
}

/*
 * The tier a line records: true with *tier NULL ("-") or a new string ("=<name>"), false when
 * the last field is neither.
 */
static bool line_tier(const struct entry *e, char **tier)
{
	const char *end = e->line + e->len - 1, *sp = memrchr(e->line, ' ', e->len);
	char t[72];
	if (!sp || sp < e->line + HEX_LEN)
		return false;
	sp++;
	if (end - sp == 1 && *sp == '-') {
		*tier = NULL;
		return true;
	}
	if (*sp != '=' || (size_t)(end - sp) > sizeof(t))
		return false;
	memcpy(t, sp + 1, (size_t)(end - sp - 1));
	t[end - sp - 1] = '\0';
	if (!plain_tier(t))
		return false;
	*tier = bv_xstrdup(t);
	return true;
}

/* Whether a line still describes its copy: the copy's stat gives the line's numbers. */
static bool line_holds(int dfd, const struct entry *e)
{
	_cleanup_free_ char *copy = bv_xstrndup(e->line, e->len - 1);
	char name[HEX_LEN + 8], *tier = NULL;
	uint64_t key[BV_STAT_KEY_LEN], now[BV_STAT_KEY_LEN];
	const char *rest;
	struct stat st;
	memcpy(name, e->line, HEX_LEN);
	name[HEX_LEN] = '\0';
	if (!bv_sha256_hex_valid(name))
		return false;
	memcpy(name + HEX_LEN, ".toml", 6);
	if (!parse_numbers(key, BV_STAT_KEY_LEN, copy + HEX_LEN + 1, &rest) || !line_tier(e, &tier))
		return false;
	free(tier);
	if (fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
		return false;
	bv_stat_key(now, &st);
	return memcmp(key, now, sizeof(key)) == 0;
}

/* The cache file's lines, or none when it is missing, fails its sum or is out of order. */
static void load_table(struct table *t, const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	const char *sum, *p, *nl;
	char hex[SUM_HEX + 1];
	size_t body;
	if (fd < 0 || bv_buf_read_fd(&t->text, fd, TIERS_MAX_SIZE, NULL) < 0 ||
	    t->text.len < SUM_LINE)
		return;
	/* the last line: "sum <hex>\n" over everything before it */
	body = t->text.len - SUM_LINE;
	sum = t->text.buf + body;
	if (memcmp(sum, "sum ", 4) != 0 || t->text.buf[t->text.len - 1] != '\n' ||
	    (body && t->text.buf[body - 1] != '\n'))
		return;
	snprintf(hex, sizeof(hex), "%016" PRIx64, bv_fnv1a64(t->text.buf, body));
	if (memcmp(hex, sum + 4, SUM_HEX) != 0)
		return;
	/* the first line: the directory's numbers, or "-" */
	p = t->text.buf;
	nl = memchr(p, '\n', (size_t)(sum - p));
	if (!nl || (size_t)(nl - p) < strlen(TIERS_MAGIC) ||
	    memcmp(p, TIERS_MAGIC, strlen(TIERS_MAGIC)) != 0)
		return;
	if (strncmp(p + strlen(TIERS_MAGIC), "-\n", 2) != 0) {
		/* 7 numbers, one space after each but the last: one added to the copy */
		_cleanup_free_ char *first = bv_xasprintf("%.*s ", (int)(nl - p), p);
		const char *rest;
		if (!parse_numbers(t->dir, BV_STAT_KEY_LEN, first + strlen(TIERS_MAGIC), &rest) ||
		    *rest)
			return;
		t->dir_known = true;
	}
	/* the copies' lines, strictly in order (lookups are a binary search) */
	for (p = nl + 1; p < sum; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(sum - p));
		if (!nl || nl - p < HEX_LEN + 3 || p[HEX_LEN] != ' ' ||
		    (t->n && memcmp(t->v[t->n - 1].line, p, HEX_LEN) >= 0)) {
			t->n = 0;
			t->dir_known = false;
			return;
		}
		BV_GROW(t->v, t->alloc, t->n + 1);
		t->v[t->n++] = (struct entry){.line = p, .len = (size_t)(nl - p) + 1};
	}
}

static void free_table(struct table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].own);
	free(t->v);
	bv_buf_release(&t->text);
}

static int compare_entries(const void *a, const void *b)
{
	return memcmp(((const struct entry *)a)->line, ((const struct entry *)b)->line, HEX_LEN);
}

static struct entry *find(struct entry *v, size_t n, const char *hex)
{
	struct entry key = {.line = hex, .len = HEX_LEN};
	if (!n)
		return NULL;
	return bsearch(&key, v, n, sizeof(*v), compare_entries);
}

/* Writes the table (sorted by hex; one line per hex) as the cache file.  Best effort. */
static void store_table(struct table *t, const char *path, const uint64_t *dir)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	_cleanup_free_ char *tmp = bv_xasprintf("%s.%ld", path, (long)getpid());
	size_t kept = 0;
	if (dir)
		bv_buf_printf(&b,
			      TIERS_MAGIC "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
					  " %" PRIu64 " %" PRIu64 "\n",
			      dir[0], dir[1], dir[2], dir[3], dir[4], dir[5], dir[6]);
	else
		bv_buf_puts(&b, TIERS_MAGIC "-\n");
	for (size_t i = 0; i < t->n && kept < TIERS_MAX_KEEP; i++) {
		if (i && memcmp(t->v[i].line, t->v[i - 1].line, HEX_LEN) == 0)
			continue;
		bv_buf_add(&b, t->v[i].line, t->v[i].len);
		kept++;
	}
	bv_buf_printf(&b, "sum %016" PRIx64 "\n", bv_fnv1a64(b.buf, b.len));
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return; /* a cache this user cannot write: list still works */
	if (bv_write_all(fd, b.buf, b.len) < 0 || close(TAKE_FD(fd)) < 0 || rename(tmp, path) < 0)
		(void)unlink(tmp);
}

/*
 * The tier of the copy `name` (already stat'ed as `st`) read from the file, and a line for
 * it when one can be recorded: the file read was the one stat'ed, its ctime had settled and
 * its tier fits a line.
 */
static char *read_copy(char **line, int dfd, const struct bv_lock_tool *t, const char *cache_dir,
		       const char *name, const struct stat *st)
{
	uint64_t key[BV_STAT_KEY_LEN], key2[BV_STAT_KEY_LEN];
	bool settled = bv_stat_settled(st);
	struct bv_manifest *m = bv_run_plan_saved_manifest(t, cache_dir);
	struct stat again;
	char *tier = m && m->tier ? bv_xstrdup(m->tier) : NULL;
	*line = NULL;
	bv_stat_key(key, st);
	if (m && settled && (!m->tier || plain_tier(m->tier)) &&
	    fstatat(dfd, name, &again, 0) == 0) {
		bv_stat_key(key2, &again);
		if (memcmp(key, key2, sizeof(key)) == 0)
			*line = bv_xasprintf("%.64s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
					     " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s%s\n",
					     name, key[0], key[1], key[2], key[3], key[4], key[5],
					     key[6], m->tier ? "=" : "-", m->tier ? m->tier : "");
	}
	bv_manifest_free(m);
	return tier;
}

char **bv_run_plan_saved_tiers(const struct bv_lockfile *lock, const char *cache_dir)
{
	char **tiers = bv_xcalloc(lock->n_tools + 1, sizeof(*tiers));
	_cleanup_free_ char *dir = bv_path_join(cache_dir, "manifests");
	_cleanup_free_ char *path = bv_path_join(cache_dir, TIERS_NAME);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct table t = {.text = BV_BUF_INIT};
	uint64_t dkey[BV_STAT_KEY_LEN];
	struct stat dst;
	bool trusted, dir_settled, changed = false;
	size_t n_sorted;

	if (dfd < 0 || fstat(dfd, &dst) < 0)
		return tiers; /* no copies at all */
	/* the directory first: whatever changes in it after this moves its numbers */
	bv_stat_key(dkey, &dst);
	dir_settled = bv_stat_settled(&dst);
	load_table(&t, path);
	trusted = t.dir_known && memcmp(t.dir, dkey, sizeof(dkey)) == 0;
	if (!trusted) { /* the directory changed: keep the lines whose copies did not */
		size_t kept = 0;
		for (size_t i = 0; i < t.n; i++)
			if (line_holds(dfd, &t.v[i]))
				t.v[kept++] = t.v[i];
		/* written again when a line went, or to record the directory's new numbers */
		changed = kept != t.n || dir_settled;
		t.n = kept;
	}
	n_sorted = t.n;
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *tool = &lock->tools[i];
		const char *hex = tool->manifest_sha256 + 7;
		char name[HEX_LEN + 8], *line;
		struct entry *e;
		struct stat st;
		if (!bv_digest_valid(tool->manifest_sha256))
			continue;
		e = find(t.v, n_sorted, hex);
		if (e && line_tier(e, &tiers[i]))
			continue;
		snprintf(name, sizeof(name), "%s.toml", hex);
		if (fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue; /* no copy: no tier, as bv_run_plan_saved_manifest() says */
		tiers[i] = read_copy(&line, dfd, tool, cache_dir, name, &st);
		if (!line)
			continue;
		if (!e) {
			BV_GROW(t.v, t.alloc, t.n + 1);
			e = &t.v[t.n++];
			*e = (struct entry){0};
		}
		free(e->own);
		e->own = line;
		e->line = line;
		e->len = strlen(line);
		changed = true;
	}
	if (changed) {
		if (t.n > 1) /* none at all: qsort() must not be given a NULL array */
			qsort(t.v, t.n, sizeof(*t.v), compare_entries);
		store_table(&t, path, dir_settled ? dkey : NULL);
	}
	free_table(&t);
	return tiers;
}
