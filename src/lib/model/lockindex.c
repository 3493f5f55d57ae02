/*
 * lockindex.c - bv_lockfile_load() and bv_lockfile_save() (bv/lockfile.h) through the
 * parsed-lock cache, <project>/.bv/lock.idx: bv.lock as a compact binary image, so that the
 * commands that only read the lock (list, run and the shims, lock --check, sync with nothing
 * to do) skip parsing 550 KB of TOML on a 1000-tool project.  lockfile.c parses and writes
 * the text; every reader and writer of bv.lock comes through here without knowing.
 *
 * Loading: stat(2) bv.lock; an index whose key matches is decoded and nothing else is read.
 * Otherwise bv.lock is opened, fstat'ed (was its ctime settled?), read, parsed and fstat'ed
 * again; when it was settled and unchanged, the index is written for that key.
 *
 * Validity.  The index records the identity of the bv.lock it was made from: st_dev, st_ino,
 * st_size, st_mtim and st_ctim (ctime: no one can set it back, so an edit by hand that
 * restores the size and the mtime with touch -d is still seen), plus a format version and the
 * GNU build id of the running executable (another build may lay out the lock differently), and
 * a checksum of the payload.  Any mismatch, a short or damaged file, or anything the decoder
 * does not expect is a miss: bv.lock is parsed as if there were no index.  An index is only
 * written for a bv.lock whose ctime had settled (bv_stat_settled: two ticks of the kernel's
 * file clock old) before it was read, so a later edit in place cannot keep the recorded ctime
 * (the "racily clean" case git knows).  A writer (bv_lockfile_save) waits up to
 * INDEX_SETTLE_MS for that, reads the file back and indexes what a reader's parse gives, only
 * when the file still holds exactly what it wrote.  A build without a build id never reads or
 * writes an index.  BV_LOCK_INDEX=0 in the environment turns the index off.
 *
 * Writing: only into an existing <dir>/.bv/ (no directory is ever created for it) of a file
 * named bv.lock, as a temporary file renamed over lock.idx, so a reader sees a whole index,
 * old or new, never a partial one.  Not flushed with fsync: a torn index after a crash fails
 * its checksum and is ignored.  Errors of the index are never reported: it is best effort.
 *
 * Layout, in the machine's byte order (the build id pins the machine kind as well):
 *   "bvlkidx" NUL, then 64-bit words: format, build id length, 64 bytes of build id,
 *   st_dev, st_ino, st_size, mtime s, mtime ns, ctime s, ctime ns, payload length, checksum;
 *   then the payload: the lock's fields in declaration order, each integer a 64-bit word and
 *   each string a 64-bit length, its bytes and a NUL (NULL strings have length NULL_STRING and
 *   no bytes).
 *
 * Reading maps the index (MAP_POPULATE: one call instead of a page fault per page, and no
 * heap pages to fill) and, when the mapping can be lent (lockfile-internal.h), the decoded
 * lock points into it for its strings, whose NUL is why the format keeps one after each: on
 * a 1000-tool project that spares some ten thousand allocations and the pages they touch,
 * which is most of what reading the lock costs.  The index is only ever replaced by rename,
 * never rewritten in place, so the mapping stays what was checked (as git maps its index).
 */
#include <bv/error.h>
#include <bv/lockfile.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/model/lockfile-internal.h"
#include "util/buf.h"
#include "util/buildid.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define LOCK_MAX_SIZE (64u << 20)
/* How long a writer waits for the new bv.lock's ctime to settle before indexing it. */
#define INDEX_SETTLE_MS 40
#define INDEX_NAME      ".bv/lock.idx"
#define INDEX_FORMAT    3 /* 3: the checksum in four lanes */
#define BUILD_ID_MAX    BV_BUILD_ID_MAX
#define NULL_STRING     UINT64_MAX
#define INDEX_MAX_SIZE  (256u << 20)
#define N_KEY           BV_STAT_KEY_LEN

static const char magic[8] = "bvlkidx";

struct header {
	char magic[8];
	uint64_t format;
	uint64_t build_id_len;
	unsigned char build_id[BUILD_ID_MAX];
	uint64_t key[N_KEY];
	uint64_t payload_len;
	uint64_t checksum;
};

/* ---- the build id of the running executable (util/buildid.h) ---- */

/* False when there is no build id (or BV_LOCK_INDEX=0): then there is no index at all. */
static bool index_enabled(void)
{
	const char *env = getenv("BV_LOCK_INDEX");
	if (env && strcmp(env, "0") == 0)
		return false;
	const unsigned char *id;
	return bv_build_id(&id) > 0;
}

/* ---- the key: which bv.lock an index was made from ---- */

static bool same_file(const struct stat *a, const struct stat *b)
{
	uint64_t ka[N_KEY], kb[N_KEY];
	bv_stat_key(ka, a);
	bv_stat_key(kb, b);
	return memcmp(ka, kb, sizeof(ka)) == 0;
}

/*
 * A checksum against damage (not against an adversary: .bv/ is the project's own).  Four
 * words at a step in four independent lanes, folded at the end: one lane made each
 * multiplication wait for the one before, and took 0.4M instructions on a 1000-tool lock.
 * The shift after each multiplication carries a word's high bits down, so that the same bit
 * flipped in two words does not cancel out.
 */
#define CHECKSUM_K 0xff51afd7ed558ccdull

static uint64_t checksum_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * CHECKSUM_K;
	return h ^ (h >> 29);
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0x6a09e667f3bcc909ull,
		 c = 0xbb67ae8584caa73bull, d = 0x3c6ef372fe94f82bull, h, w[4];
	for (; n >= sizeof(w); p += sizeof(w), n -= sizeof(w)) {
		memcpy(w, p, sizeof(w));
		a = checksum_step(a, w[0]);
		b = checksum_step(b, w[1]);
		c = checksum_step(c, w[2]);
		d = checksum_step(d, w[3]);
	}
	h = checksum_step(checksum_step(checksum_step(a, b), c), d);
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(w, p, 8);
		h = checksum_step(h, w[0]);
	}
	for (; n; p++, n--)
		h = (h ^ *p) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

static char *index_path(const char *lock_path)
{
	const char *slash = strrchr(lock_path, '/');
	const char *base = slash ? slash + 1 : lock_path;
	if (strcmp(base, "bv.lock") != 0)
		return NULL;
	return bv_xasprintf("%.*s%s", (int)(base - lock_path), lock_path, INDEX_NAME);
}

/* ---- encoding ---- */

static void put_u64(struct bv_buf *b, uint64_t v)
{
	bv_buf_add(b, &v, sizeof(v));
}

static void put_str(struct bv_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	put_u64(b, s ? n : NULL_STRING);
	if (s)
		bv_buf_add(b, s, n + 1); /* with its NUL, so a reader can lend it */
}

static void put_tool(struct bv_buf *b, const struct bv_lock_tool *t)
{
	put_str(b, t->tool_id);
	put_str(b, t->declared_version_req);
	put_str(b, t->version);
	put_u64(b, t->factored);
	put_str(b, t->image_reference);
	put_str(b, t->image_digest);
	put_str(b, t->manifest_sha256);
	put_u64(b, (uint64_t)t->image_size_bytes);
	put_str(b, t->resolved_at);
	put_u64(b, t->n_layers);
	for (size_t i = 0; i < t->n_layers; i++) {
		const struct bv_lock_layer *l = &t->layers[i];
		put_str(b, l->digest);
		put_u64(b, (uint64_t)l->size);
		put_str(b, l->media_type);
		put_u64(b, l->conda != NULL);
		if (l->conda) {
			put_str(b, l->conda->name);
			put_str(b, l->conda->version);
			put_str(b, l->conda->build);
			put_str(b, l->conda->channel);
			put_str(b, l->conda->sha256);
		}
	}
	put_u64(b, t->n_pins);
	for (size_t i = 0; i < t->n_pins; i++) {
		put_str(b, t->pins[i].key);
		put_str(b, t->pins[i].id);
		put_str(b, t->pins[i].version);
		put_str(b, t->pins[i].sha256);
	}
	put_u64(b, t->binaries.n);
	bv_strv_foreach (s, &t->binaries)
		put_str(b, *s);
}

static void put_lock(struct bv_buf *b, const struct bv_lockfile *lock)
{
	put_u64(b, (uint64_t)lock->version);
	put_str(b, lock->bv_version);
	put_str(b, lock->generated_at);
	put_str(b, lock->hardware_summary);
	put_u64(b, lock->n_tools);
	for (size_t i = 0; i < lock->n_tools; i++)
		put_tool(b, &lock->tools[i]);
	put_u64(b, lock->n_binary_index);
	for (size_t i = 0; i < lock->n_binary_index; i++) {
		put_str(b, lock->binary_index[i].binary);
		put_str(b, lock->binary_index[i].tool);
	}
}

/* ---- decoding: every read is bounds-checked; the first failure makes the rest fail ---- */

struct reader {
	unsigned char *p, *end; /* not const: lent strings are the lock's `char *` fields */
	bool bad;
	bool lend; /* strings point into the index (the lock owns its mapping) */
};

static uint64_t get_u64(struct reader *r)
{
	uint64_t v = 0;
	if (r->bad || (size_t)(r->end - r->p) < sizeof(v)) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, r->p, sizeof(v));
	r->p += sizeof(v);
	return v;
}

/* A count of items each taking at least `min` bytes: never more than what is left. */
static size_t get_count(struct reader *r, size_t min)
{
	uint64_t n = get_u64(r);
	if (r->bad || n > (uint64_t)(r->end - r->p) / min) {
		r->bad = true;
		return 0;
	}
	return (size_t)n;
}

/*
 * A string of the lock: lent from the index when r->lend and not `copy`, else a new copy;
 * NULL for a NULL string or on failure (then r->bad, unless `nullable`).
 */
static char *take_str(struct reader *r, bool nullable, bool copy)
{
	uint64_t n = get_u64(r);
	char *s = (char *)r->p;
	if (!r->bad && n == NULL_STRING && nullable)
		return NULL;
	/* n bytes, then a NUL.  A NUL among the n bytes would only shorten the string; the writer
	 * never puts one there (put_str() counts with strlen()) and the checksum stands for the
	 * rest, so no scan for one: that strlen() was a tenth of reading the index */
	if (r->bad || n >= (uint64_t)(r->end - r->p) || s[n] != '\0') {
		r->bad = true;
		return NULL;
	}
	r->p += n + 1;
	if (r->lend && !copy)
		return s; /* lent: the lock frees it with its mapping */
	return memcpy(bv_xmalloc((size_t)n + 1), s, (size_t)n + 1);
}

static char *get_str(struct reader *r, bool nullable)
{
	return take_str(r, nullable, false);
}

/* Always a heap copy: for `binaries`, which callers may clear with bv_strv_clear(). */
static char *get_copy(struct reader *r)
{
	return take_str(r, false, true);
}

static void get_tool(struct reader *r, struct bv_lock_tool *t)
{
	size_t n;
	t->tool_id = get_str(r, false);
	t->declared_version_req = get_str(r, false);
	t->version = get_str(r, false);
	t->factored = get_u64(r) != 0;
	t->image_reference = get_str(r, false);
	t->image_digest = get_str(r, false);
	t->manifest_sha256 = get_str(r, false);
	t->image_size_bytes = (int64_t)get_u64(r);
	t->resolved_at = get_str(r, false);
	bv_strv_init(&t->binaries);
	n = get_count(r, 4 * sizeof(uint64_t));
	if (n)
		t->layers = bv_xcalloc(n, sizeof(*t->layers));
	for (size_t i = 0; i < n && !r->bad; i++) {
		struct bv_lock_layer *l = &t->layers[i];
		t->n_layers++;
		l->digest = get_str(r, false);
		l->size = (int64_t)get_u64(r);
		l->media_type = get_str(r, false);
		if (get_u64(r)) {
			l->conda = bv_xcalloc(1, sizeof(*l->conda));
			l->conda->name = get_str(r, false);
			l->conda->version = get_str(r, false);
			l->conda->build = get_str(r, false);
			l->conda->channel = get_str(r, false);
			l->conda->sha256 = get_str(r, false);
		}
	}
	n = get_count(r, 4 * sizeof(uint64_t));
	if (n)
		t->pins = bv_xcalloc(n, sizeof(*t->pins));
	for (size_t i = 0; i < n && !r->bad; i++) {
		t->n_pins++;
		t->pins[i].key = get_str(r, false);
		t->pins[i].id = get_str(r, false);
		t->pins[i].version = get_str(r, false);
		t->pins[i].sha256 = get_str(r, false);
	}
	n = get_count(r, sizeof(uint64_t));
	for (size_t i = 0; i < n && !r->bad; i++) {
		char *s = get_copy(r);
		if (s)
			bv_strv_push_take(&t->binaries, s);
	}
}

/* Decodes into `lock`, new and empty (and lent the index when r->lend). */
static struct bv_lockfile *get_lock(struct reader *r, struct bv_lockfile *lock)
{
	size_t n;
	lock->version = (int64_t)get_u64(r);
	lock->bv_version = get_str(r, false);
	lock->generated_at = get_str(r, false);
	lock->hardware_summary = get_str(r, true);
	/* a tool takes at least its 9 fixed fields and 3 counts */
	n = get_count(r, 12 * sizeof(uint64_t));
	if (n)
		lock->tools = bv_xcalloc(n, sizeof(*lock->tools));
	for (size_t i = 0; i < n && !r->bad; i++) {
		lock->n_tools++;
		get_tool(r, &lock->tools[i]);
	}
	n = get_count(r, 2 * sizeof(uint64_t));
	if (n)
		lock->binary_index = bv_xcalloc(n, sizeof(*lock->binary_index));
	for (size_t i = 0; i < n && !r->bad; i++) {
		lock->n_binary_index++;
		lock->binary_index[i].binary = get_str(r, false);
		lock->binary_index[i].tool = get_str(r, false);
	}
	if (r->bad || r->p != r->end || lock->version != BV_LOCKFILE_VERSION) {
		bv_lockfile_free(lock);
		return NULL;
	}
	return lock;
}

/* ---- reading and writing the file ---- */

static int index_load(struct bv_lockfile **out, const char *lock_path, const struct stat *st)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct header h;
	struct stat ist;
	uint64_t key[N_KEY];
	struct reader r;
	struct bv_lockfile *lock;
	const unsigned char *build_id;
	size_t build_id_len = bv_build_id(&build_id);
	unsigned char *map;
	size_t len;

	if (!index_enabled() || !(path = index_path(lock_path)))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &ist) < 0 || !S_ISREG(ist.st_mode) ||
	    ist.st_size < (off_t)sizeof(h) || ist.st_size > (off_t)INDEX_MAX_SIZE)
		return -1;
	len = (size_t)ist.st_size;
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		return -1;
	memcpy(&h, map, sizeof(h));
	bv_stat_key(key, st);
	if (memcmp(h.magic, magic, sizeof(magic)) != 0 || h.format != INDEX_FORMAT ||
	    h.build_id_len != build_id_len || memcmp(h.build_id, build_id, build_id_len) != 0 ||
	    memcmp(h.key, key, sizeof(key)) != 0 || h.payload_len != len - sizeof(h) ||
	    h.checksum != checksum(map + sizeof(h), h.payload_len)) {
		(void)munmap(map, len);
		return -1;
	}
	lock = bv_xcalloc(1, sizeof(*lock));
	r = (struct reader){.p = map + sizeof(h), .end = map + len};
	r.lend = bv_lockfile_lend(lock, map, len);
	lock = get_lock(&r, lock); /* on failure, freed with the mapping when lent */
	if (!r.lend)
		(void)munmap(map, len);
	if (!lock)
		return -1;
	*out = lock;
	return 0;
}

static void index_store(const struct bv_lockfile *lock, const char *lock_path,
			const struct stat *before, const struct stat *after)
{
	/* `before` was settled when taken (the caller's check), so any change since has given
	 * the file another key, and `after` equal to it means what was read is that file */
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	_cleanup_close_ int fd = -1;
	const unsigned char *build_id;
	struct header h;

	if (!index_enabled() || !same_file(before, after) || !S_ISREG(after->st_mode) ||
	    !(path = index_path(lock_path)))
		return;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, magic, sizeof(magic));
	h.format = INDEX_FORMAT;
	h.build_id_len = bv_build_id(&build_id);
	memcpy(h.build_id, build_id, h.build_id_len);
	bv_stat_key(h.key, after);
	bv_buf_init(&b, (size_t)after->st_size + sizeof(h));
	bv_buf_add(&b, &h, sizeof(h));
	put_lock(&b, lock);
	h.payload_len = b.len - sizeof(h);
	h.checksum = checksum((const unsigned char *)b.buf + sizeof(h), h.payload_len);
	memcpy(b.buf, &h, sizeof(h));

	/* a temporary file beside it, renamed over it: readers see a whole index or none */
	tmp = bv_xasprintf("%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return; /* no .bv/ (a read-only checkout, a project never synced): no index */
	if (fchmod(fd, 0644) < 0 || bv_write_all(fd, b.buf, b.len) < 0 || close(TAKE_FD(fd)) < 0 ||
	    rename(tmp, path) < 0)
		(void)unlink(tmp);
}

/* ---- bv.lock, through the index ---- */

/*
 * Reads the open bv.lock `fd` into `text`; *indexable when what was read may be indexed as
 * the file `*st` describes (see the top of this file).
 */
static int read_lock_fd(struct bv_buf *text, int fd, const char *path, struct stat *st,
			bool *indexable, struct bv_error **err)
{
	struct stat before;
	bool settled = fstat(fd, &before) == 0 && bv_stat_settled(&before);
	int r = bv_buf_read_fd(text, fd, LOCK_MAX_SIZE, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not read '%s'", path);
	*indexable = settled && fstat(fd, st) == 0 && st->st_ino == before.st_ino &&
		     st->st_size == before.st_size && st->st_ctim.tv_sec == before.st_ctim.tv_sec &&
		     st->st_ctim.tv_nsec == before.st_ctim.tv_nsec &&
		     st->st_mtim.tv_sec == before.st_mtim.tv_sec &&
		     st->st_mtim.tv_nsec == before.st_mtim.tv_nsec;
	return 0;
}

int bv_lockfile_load(struct bv_lockfile **out, const char *path, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_close_ int fd = -1;
	struct stat st;
	bool indexable = false;
	int r;
	/* the parsed-lock cache first: a hit costs one stat(2) and one small read */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && index_load(out, path, &st) == 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int code = errno == ENOENT ? BV_ENOTFOUND : BV_ERR;
		return bv_error_setc(err, code, errno, "could not open '%s'", path);
	}
	if ((r = read_lock_fd(&text, fd, path, &st, &indexable, err)) < 0)
		return r;
	r = bv_lockfile_parse(out, text.buf, text.len, path, err);
	if (r == 0 && indexable)
		index_store(*out, path, &st, &st);
	return r;
}

/*
 * Indexes the bv.lock just written with `text`: once its ctime has settled (a few ms), the
 * file is read back and indexed only when it still holds exactly `text`, so a writer that
 * replaced it meanwhile is never indexed under the wrong content.  Best effort; writers take
 * hundreds of milliseconds anyway, and the first reader after them gains the parse.
 */
static void index_saved(const char *path, const struct bv_buf *text)
{
	_cleanup_buf_ struct bv_buf again = BV_BUF_INIT;
	struct bv_lockfile *parsed = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	bool indexable = false;
	_cleanup_free_ char *index = index_path(path);
	if (!index)
		return;
	for (int waited = 0; stat(path, &st) == 0 && !bv_stat_settled(&st); waited += 2) {
		const struct timespec two_ms = {.tv_sec = 0, .tv_nsec = 2000000};
		if (waited >= INDEX_SETTLE_MS)
			return;
		(void)nanosleep(&two_ms, NULL);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || read_lock_fd(&again, fd, path, &st, &indexable, NULL) < 0 || !indexable ||
	    again.len != text->len || memcmp(again.buf, text->buf, text->len) != 0)
		return;
	/* what a reader's parse gives, not the writer's model, which may differ in detail */
	if (bv_lockfile_parse(&parsed, again.buf, again.len, path, NULL) == 0)
		index_store(parsed, path, &st, &st);
	bv_lockfile_free(parsed);
}

int bv_lockfile_save(const struct bv_lockfile *lock, const char *path, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int r;
	bv_lockfile_write(&text, lock);
	r = bv_write_file_atomic(path, text.buf, text.len, 0644, err);
	if (r == 0)
		index_saved(path, &text);
	return r;
}
