/*
 * tiers.c - the tier of every locked tool from the kept manifest copies, for `bv list`,
 * through a cache of what those copies said: <cache>/manifests/.tiers (see bv/runplan.h).
 *
 * One line per copy: "<64 hex> <dev> <ino> <size> <mtime s> <mtime ns> <ctime s> <ctime ns>
 * <tier>", the tier as "=<name>" or "-" when the manifest has none, and a last line "sum
 * <16 hex digits>", the FNV-1a hash of the lines before (against damage, and it needs no
 * libcrypto, which a list otherwise never loads).  A line counts only while the copy's stat(2)
 * gives the very same numbers; a copy is recorded only when its ctime had settled before it was
 * read (bv_stat_settled), so an edit in place always changes the numbers.  A file that does not end
 * with the right sum is ignored whole.  Written beside the copies by rename, without fsync (a torn
 * file fails its sum).
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
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define TIERS_NAME     ".tiers"
#define TIERS_MAX_SIZE (16u << 20)
#define TIERS_MAX_KEEP 100000
#define HEX_LEN        64
#define SUM_HEX        16
#define SUM_LINE       (4 + SUM_HEX + 1)

struct entry {
	char hex[HEX_LEN + 1];
	uint64_t key[BV_STAT_KEY_LEN];
	char *line; /* the whole line, newline included */
	char *tier; /* NULL: the manifest has none */
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

static bool parse_line(struct entry *e, const char *line, size_t len)
{
	_cleanup_free_ char *copy = NULL;
	char *p, *end;
	if (len < HEX_LEN + 2 || len > 400 || line[len - 1] != '\n')
		return false;
	memcpy(e->hex, line, HEX_LEN);
	e->hex[HEX_LEN] = '\0';
	if (!bv_sha256_hex_valid(e->hex) || line[HEX_LEN] != ' ')
		return false;
	/* a NUL-terminated copy of the rest: 7 decimal numbers and the tier, one space apart */
	copy = bv_xstrndup(line + HEX_LEN + 1, len - HEX_LEN - 2);
	p = copy;
	for (size_t i = 0; i < 7; i++) {
		if (!isdigit((unsigned char)*p))
			return false;
		errno = 0;
		e->key[i] = strtoull(p, &end, 10);
		if (errno || *end != ' ')
			return false;
		p = end + 1;
	}
	if (strcmp(p, "-") == 0)
		e->tier = NULL;
	else if (p[0] == '=' && plain_tier(p + 1))
		e->tier = bv_xstrdup(p + 1);
	else
		return false;
	e->line = bv_xstrndup(line, len);
	return true;
}

/* The entries of the cache file, or none when it is missing or fails its sum. */
static struct entry *load_entries(int dfd, size_t *n_out)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_close_ int fd = openat(dfd, TIERS_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct entry *v = NULL;
	size_t n = 0, alloc = 0, body;
	const char *sum, *p;
	char hex[SUM_HEX + 1];
	*n_out = 0;
	if (fd < 0 || bv_buf_read_fd(&text, fd, TIERS_MAX_SIZE, NULL) < 0 || text.len < SUM_LINE)
		return NULL;
	/* the last line: "sum <hex>\n" over everything before it */
	body = text.len - SUM_LINE;
	sum = text.buf + body;
	if (memcmp(sum, "sum ", 4) != 0 || text.buf[text.len - 1] != '\n' ||
	    (body && text.buf[body - 1] != '\n'))
		return NULL;
	snprintf(hex, sizeof(hex), "%016" PRIx64, bv_fnv1a64(text.buf, body));
	if (memcmp(hex, sum + 4, SUM_HEX) != 0)
		return NULL;
	for (p = text.buf; p < sum;) {
		const char *nl = memchr(p, '\n', (size_t)(sum - p));
		struct entry e;
		if (!nl)
			break;
		if (parse_line(&e, p, (size_t)(nl - p) + 1)) {
			bv_grow((void **)&v, &alloc, n + 1, sizeof(*v));
			v[n++] = e;
		}
		p = nl + 1;
	}
	*n_out = n;
	return v;
}

static void free_entries(struct entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].line);
		free(v[i].tier);
	}
	free(v);
}

static int compare_hex(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->hex, ((const struct entry *)b)->hex);
}

/* Writes `v` (sorted by hex; one line per hex) as the cache file.  Best effort. */
static void store_entries(int dfd, struct entry *v, size_t n)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	char tmp[32];
	size_t kept = 0;
	for (size_t i = 0; i < n && kept < TIERS_MAX_KEEP; i++) {
		if (i && strcmp(v[i].hex, v[i - 1].hex) == 0)
			continue;
		bv_buf_puts(&b, v[i].line);
		kept++;
	}
	bv_buf_printf(&b, "sum %016" PRIx64 "\n", bv_fnv1a64(b.buf, b.len));
	snprintf(tmp, sizeof(tmp), "%s.%ld", TIERS_NAME, (long)getpid());
	_cleanup_close_ int fd =
		openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return; /* a cache this user cannot write: list still works */
	if (bv_write_all(fd, b.buf, b.len) < 0 || close(TAKE_FD(fd)) < 0 ||
	    renameat(dfd, tmp, dfd, TIERS_NAME) < 0)
		(void)unlinkat(dfd, tmp, 0);
}

static struct entry *find(struct entry *v, size_t n, const char *hex)
{
	struct entry key;
	if (!n)
		return NULL;
	memcpy(key.hex, hex, sizeof(key.hex));
	return bsearch(&key, v, n, sizeof(*v), compare_hex);
}

char **bv_run_plan_saved_tiers(const struct bv_lockfile *lock, const char *cache_dir)
{
	char **tiers = bv_xcalloc(lock->n_tools + 1, sizeof(*tiers));
	_cleanup_free_ char *dir = bv_path_join(cache_dir, "manifests");
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n = 0, alloc, n_old;
	struct entry *v;
	bool added = false;

	if (dfd < 0)
		return tiers; /* no copies at all */
	v = load_entries(dfd, &n);
	if (n && v)
		qsort(v, n, sizeof(*v), compare_hex);
	n_old = alloc = n;
	for (size_t i = 0; i < lock->n_tools; i++) {
		const struct bv_lock_tool *t = &lock->tools[i];
		const char *hex = t->manifest_sha256 + 7;
		char name[HEX_LEN + 8];
		struct stat st;
		uint64_t key[BV_STAT_KEY_LEN];
		struct entry *e;
		bool settled;
		struct bv_manifest *m;
		if (!bv_digest_valid(t->manifest_sha256))
			continue;
		snprintf(name, sizeof(name), "%s.toml", hex);
		if (fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue; /* no copy: no tier, as bv_run_plan_saved_manifest() says */
		bv_stat_key(key, &st);
		e = find(v, n_old, hex);
		if (e && memcmp(e->key, key, sizeof(key)) == 0) {
			tiers[i] = e->tier ? bv_xstrdup(e->tier) : NULL;
			continue;
		}
		settled = bv_stat_settled(&st);
		m = bv_run_plan_saved_manifest(t, cache_dir);
		if (m && m->tier)
			tiers[i] = bv_xstrdup(m->tier);
		/* recorded when the file read was the one stat'ed, and its tier fits a line */
		if (m && settled && (!m->tier || plain_tier(m->tier))) {
			struct stat again;
			_cleanup_free_ char *line = NULL;
			if (fstatat(dfd, name, &again, 0) == 0) {
				uint64_t key2[BV_STAT_KEY_LEN];
				bv_stat_key(key2, &again);
				if (memcmp(key, key2, sizeof(key)) == 0) {
					line = bv_xasprintf(
						"%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
						" %" PRIu64 " %" PRIu64 " %" PRIu64 " %s%s\n",
						hex, key[0], key[1], key[2], key[3], key[4], key[5],
						key[6], m->tier ? "=" : "-",
						m->tier ? m->tier : "");
					if (e) { /* the copy changed: its line is replaced */
						free(e->line);
						e->line = TAKE_PTR(line);
					} else {
						bv_grow((void **)&v, &alloc, n + 1, sizeof(*v));
						memset(&v[n], 0, sizeof(v[n]));
						memcpy(v[n].hex, hex, HEX_LEN + 1);
						v[n].line = TAKE_PTR(line);
						n++;
					}
					added = true;
				}
			}
		}
		bv_manifest_free(m);
	}
	if (added) {
		qsort(v, n, sizeof(*v), compare_hex);
		store_entries(dfd, v, n);
	}
	free_entries(v, n);
	return tiers;
}
