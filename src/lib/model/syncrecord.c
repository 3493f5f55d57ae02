/*
 * syncrecord.c - .bv/sync.ok (bv/syncrecord.h).
 *
 * The file is text, one item per line, ending with a checksum of everything before it:
 *   bv-sync-record 1
 *   build <hex of the build id>
 *   from <seconds since the epoch>
 *   until <seconds since the epoch, excluded>
 *   tools <n>
 *   context <length>
 *   <the context, that many bytes>
 *   file <seven hex words of the stat key> <path>      one per file
 *   sum <16 hex of FNV-1a-64 of the lines above>
 * A path holding a newline is never recorded (the line could not carry it), which spoils the
 * record: such a project just gets no record.
 */
#include <bv/error.h>
#include <bv/syncrecord.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/buildid.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define RECORD_NAME  ".bv/sync.ok"
#define RECORD_MAGIC "bv-sync-record 1\n"
#define RECORD_MAX   (1u << 20)

struct recorded_file {
	char *path;
	uint64_t key[BV_STAT_KEY_LEN];
};

struct bv_sync_record {
	char *context;
	struct recorded_file *files;
	size_t n_files;
	size_t alloc;
	int64_t from, until;
	bool spoiled;
};

static bool records_enabled(void)
{
	const char *env = getenv("BV_SYNC_RECORD");
	const unsigned char *id;
	return !(env && strcmp(env, "0") == 0) && bv_build_id(&id) > 0;
}

struct bv_sync_record *bv_sync_record_new(const char *context)
{
	struct bv_sync_record *rec = bv_xcalloc(1, sizeof(*rec));
	rec->context = bv_xstrdup(context);
	rec->from = INT64_MIN;
	rec->until = INT64_MAX;
	if (!records_enabled())
		bv_sync_record_spoil(rec, "records are off (BV_SYNC_RECORD=0, or no build id)");
	return rec;
}

void bv_sync_record_free(struct bv_sync_record *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->n_files; i++)
		free(rec->files[i].path);
	free(rec->files);
	free(rec->context);
	free(rec);
}

void bv_sync_record_spoil(struct bv_sync_record *rec, const char *why)
{
	if (!rec->spoiled)
		bv_logf(BV_LOG_DEBUG, "sync record: none kept: %s", why);
	rec->spoiled = true;
}

void bv_sync_record_add_stat(struct bv_sync_record *rec, const char *path, const struct stat *st)
{
	struct recorded_file *f;
	if (rec->spoiled)
		return;
	if (strchr(path, '\n')) {
		bv_sync_record_spoil(rec, "a path holds a newline");
		return;
	}
	/* unsettled: a write later in this tick could leave the very key recorded here */
	if (!bv_stat_settled(st)) {
		bv_logf(BV_LOG_DEBUG, "sync record: none kept: '%s' changed a moment ago", path);
		rec->spoiled = true;
		return;
	}
	BV_GROW(rec->files, rec->alloc, rec->n_files + 1);
	f = &rec->files[rec->n_files++];
	f->path = bv_xstrdup(path);
	bv_stat_key(f->key, st);
}

void bv_sync_record_add(struct bv_sync_record *rec, const char *path)
{
	struct stat st;
	if (rec->spoiled)
		return;
	if (stat(path, &st) < 0) {
		bv_logf(BV_LOG_DEBUG, "sync record: none kept: no '%s'", path);
		rec->spoiled = true;
	} else
		bv_sync_record_add_stat(rec, path, &st);
}

void bv_sync_record_window(struct bv_sync_record *rec, int64_t from, int64_t until)
{
	if (from > rec->from)
		rec->from = from;
	if (until < rec->until)
		rec->until = until;
}

static void add_build_line(struct bv_buf *b)
{
	const unsigned char *id;
	size_t len = bv_build_id(&id);
	bv_buf_puts(b, "build ");
	for (size_t i = 0; i < len; i++)
		bv_buf_printf(b, "%02x", id[i]);
	bv_buf_putc(b, '\n');
}

static void add_key(struct bv_buf *b, const uint64_t key[BV_STAT_KEY_LEN])
{
	for (size_t k = 0; k < BV_STAT_KEY_LEN; k++)
		bv_buf_printf(b, " %" PRIx64, key[k]);
}

bool bv_sync_record_write(const struct bv_sync_record *rec, const char *project_root,
			  size_t n_tools)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	_cleanup_free_ char *path = NULL;
	struct bv_error *err = NULL;
	int64_t now = bv_time_now();
	if (rec->spoiled)
		return false;
	if (now < rec->from || now >= rec->until) {
		bv_logf(BV_LOG_DEBUG, "sync record: none kept: the registry copy is due for a "
				      "refresh");
		return false;
	}
	bv_buf_puts(&b, RECORD_MAGIC);
	add_build_line(&b);
	bv_buf_printf(&b, "from %" PRId64 "\nuntil %" PRId64 "\ntools %zu\ncontext %zu\n",
		      rec->from, rec->until, n_tools, strlen(rec->context));
	bv_buf_puts(&b, rec->context);
	bv_buf_putc(&b, '\n');
	for (size_t i = 0; i < rec->n_files; i++) {
		const struct recorded_file *f = &rec->files[i];
		uint64_t key[BV_STAT_KEY_LEN];
		struct stat st;
		/* changed while the sync read it: what the sync concluded may be about the old */
		if (stat(f->path, &st) == 0)
			bv_stat_key(key, &st);
		else
			memset(key, 0, sizeof(key));
		if (memcmp(key, f->key, sizeof(key)) != 0) {
			bv_logf(BV_LOG_DEBUG, "sync record: none kept: '%s' changed meanwhile",
				f->path);
			return false;
		}
		bv_buf_puts(&b, "file");
		add_key(&b, f->key);
		bv_buf_printf(&b, " %s\n", f->path);
	}
	bv_buf_printf(&b, "sum %016" PRIx64 "\n", bv_fnv1a64(b.buf, b.len));
	path = bv_path_join(project_root, RECORD_NAME);
	/* a read-only checkout, a project without .bv/: no record, and nothing to say */
	if (bv_write_file_atomic(path, b.buf, b.len, 0644, &err) < 0) {
		bv_error_free(err);
		return false;
	}
	bv_logf(BV_LOG_DEBUG, "sync record: kept in '%s'", path);
	return true;
}

/* The next line of [*p, end) without its newline, NUL-terminated in place; NULL at the end. */
static char *next_line(char **p, char *end)
{
	char *line = *p, *nl;
	if (line >= end || !(nl = memchr(line, '\n', (size_t)(end - line))))
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

/* Whether `line` is "file <key> <path>" for a file whose stat key is still that one. */
static bool file_unchanged(const char *line)
{
	_cleanup_buf_ struct bv_buf now = BV_BUF_INIT;
	uint64_t key[BV_STAT_KEY_LEN];
	const char *path = line;
	struct stat st;
	/* the path follows the word and the seven words of the key, none holding a space */
	for (size_t k = 0; k <= BV_STAT_KEY_LEN; k++) {
		path = strchr(path, ' ');
		if (!path++)
			return false;
	}
	if (!*path)
		return false;
	if (stat(path, &st) < 0) {
		bv_logf(BV_LOG_DEBUG, "sync record: '%s' is gone", path);
		return false;
	}
	bv_stat_key(key, &st);
	bv_buf_puts(&now, "file");
	add_key(&now, key);
	bv_buf_printf(&now, " %s", path);
	if (strcmp(now.buf, line) != 0) {
		bv_logf(BV_LOG_DEBUG, "sync record: '%s' changed", path);
		return false;
	}
	return true;
}

/* NULL when the record at `path` holds for `context` (then *n_tools is set), else why not. */
static const char *record_misses(const char *path, const char *context, size_t *n_tools)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT, expect = BV_BUF_INIT;
	char *p, *end, *sum, *line;
	char want_sum[24];
	uint64_t tools, len;
	int64_t from, until, now;
	size_t n_files = 0;

	if (bv_buf_read_file(&text, path, RECORD_MAX, NULL) < 0)
		return "none";
	if (text.len < 2 || text.buf[text.len - 1] != '\n')
		return "damaged";
	/* the checksum first: everything after it is then as it was written */
	text.buf[text.len - 1] = '\0';
	sum = strrchr(text.buf, '\n');
	if (!sum)
		return "damaged";
	snprintf(want_sum, sizeof(want_sum), "sum %016" PRIx64,
		 bv_fnv1a64(text.buf, (size_t)(sum + 1 - text.buf)));
	if (strcmp(sum + 1, want_sum) != 0)
		return "damaged";
	end = sum + 1;
	p = text.buf;

	bv_buf_puts(&expect, RECORD_MAGIC);
	add_build_line(&expect);
	if (strncmp(p, expect.buf, expect.len) != 0)
		return "made by another build of bv";
	p += expect.len;
	if (!(line = next_line(&p, end)) || strncmp(line, "from ", 5) != 0 ||
	    bv_parse_i64(&from, line + 5) < 0 || !(line = next_line(&p, end)) ||
	    strncmp(line, "until ", 6) != 0 || bv_parse_i64(&until, line + 6) < 0)
		return "damaged";
	now = bv_time_now();
	if (now < from || now >= until)
		return "the registry copy is due for a refresh";
	if (!(line = next_line(&p, end)) || strncmp(line, "tools ", 6) != 0 ||
	    bv_parse_u64(&tools, line + 6) < 0 || tools > SIZE_MAX)
		return "damaged";
	if (!(line = next_line(&p, end)) || strncmp(line, "context ", 8) != 0 ||
	    bv_parse_u64(&len, line + 8) < 0 || (uint64_t)(end - p) <= len || p[len] != '\n')
		return "damaged";
	if (len != strlen(context) || memcmp(p, context, (size_t)len) != 0)
		return "made with other arguments, environment or machine";
	p += len + 1;
	while ((line = next_line(&p, end))) {
		if (strncmp(line, "file ", 5) != 0)
			return "damaged";
		if (!file_unchanged(line))
			return "a file it depends on changed";
		n_files++;
	}
	if (p != end || !n_files)
		return "damaged";
	*n_tools = (size_t)tools;
	return NULL;
}

bool bv_sync_record_check(const char *project_root, const char *context, size_t *n_tools)
{
	_cleanup_free_ char *path = NULL;
	const char *miss;
	if (!records_enabled())
		return false;
	path = bv_path_join(project_root, RECORD_NAME);
	miss = record_misses(path, context, n_tools);
	if (miss)
		bv_logf(BV_LOG_DEBUG, "sync record '%s': does not hold (%s)", path, miss);
	else
		bv_logf(BV_LOG_DEBUG, "sync record '%s': holds; nothing else read", path);
	return !miss;
}
