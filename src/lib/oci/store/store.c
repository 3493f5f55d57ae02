/*
 * store.c - the content-addressed blob store in OCI image layout (see include/bv/store.h).
 */
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/store.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define SHA256_PREFIX     "sha256:"
#define SHA256_PREFIX_LEN 7
#define DIGEST_LEN        (SHA256_PREFIX_LEN + BV_SHA256_HEX_LEN)
#define INDEX_MAX         (64u * 1024 * 1024)
#define MANIFEST_MAX      (16u * 1024 * 1024)
#define MANIFEST_DEPTH    8
#define PARTIAL_SUFFIX    ".partial"
#define INDEX_NAME        "index.json"
#define INDEX_TMP_PREFIX  "." INDEX_NAME "."
#define GC_LOCK_NAME      "gc.lock"
#define WRITEBACK_STEP    (8u << 20)
#define INDEX_LOCK_NAME   "index.lock"

#define OCI_LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}\n"
#define EMPTY_INDEX_TEXT                                                                           \
	"{\n  \"manifests\": [],\n  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n" \
	"  \"schemaVersion\": 2\n}\n"

static const char *const manifest_media_types[] = {
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
};

struct bv_store {
	char *dir;
	char *blobs; /* <dir>/blobs/sha256 */
	char *tmp;
	char *locks;
	char *index_path;
	struct bv_lock users; /* shared on locks/gc.lock while open; -1 on a read-only store */
	unsigned n_ingests;   /* open ingests of this handle: gc must not run under them */
};

struct bv_store_ingest {
	struct bv_store *s;
	char digest[DIGEST_LEN + 1];
	int64_t expected; /* -1: unknown */
	int64_t offset;   /* bytes in the partial file, all of them fed to `h` */
	int64_t kicked;   /* where write-back was last started (ingest_writeback()) */
	int fd;
	bool broken; /* a write failed half-way: file and hash may disagree */
	char *partial;
	struct bv_lock lock;
	struct bv_sha256 *h;
};

/* ---- names ---------------------------------------------------------------------------- */

static int check_digest(const char *digest, struct bv_error **err)
{
	if (bv_digest_valid(digest))
		return 0;
	return bv_error_setc(err, BV_EINVALID, 0,
			     "invalid digest '%s': expected sha256: and 64 lower-case hex digits",
			     digest ? digest : "(null)");
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_sep(char c)
{
	return c && strchr("-._:@+", c) != NULL;
}

bool bv_store_ref_name_valid(const char *name)
{
	const char *p = name;
	if (!p)
		return false;
	for (;;) {
		if (!is_alnum(*p))
			return false;
		while (is_alnum(*p))
			p++;
		while (is_sep(*p)) {
			p += (p[0] == '-' && p[1] == '-') ? 2 : 1;
			if (!is_alnum(*p))
				return false;
			while (is_alnum(*p))
				p++;
		}
		if (*p == '\0')
			return true;
		if (*p != '/')
			return false;
		p++;
	}
}

char *bv_store_ref_name(const char *image_ref)
{
	struct bv_buf out = BV_BUF_INIT;
	const char *p = image_ref ? image_ref : "";

	while (*p) {
		struct bv_buf comp = BV_BUF_INIT;
		char sep[2];
		size_t n_sep = 0;
		for (; *p && *p != '/'; p++) {
			char c = (is_alnum(*p) || is_sep(*p)) ? *p : '-';
			if (is_alnum(c)) {
				if (comp.len && n_sep)
					bv_buf_add(&comp, sep, n_sep);
				n_sep = 0;
				bv_buf_putc(&comp, c);
			} else if (n_sep == 0 || (n_sep == 1 && sep[0] == '-' && c == '-')) {
				sep[n_sep++] =
					c; /* a separator, or "--", which is one of its own */
			}
		}
		if (comp.len) {
			if (out.len)
				bv_buf_putc(&out, '/');
			bv_buf_add(&out, comp.buf, comp.len);
		}
		bv_buf_release(&comp);
		if (*p == '/')
			p++;
	}
	if (!out.len)
		bv_buf_puts(&out, "image");
	return bv_buf_detach(&out, NULL);
}

static bool media_type_known(const char *media_type)
{
	for (size_t i = 0; i < BV_ARRAY_SIZE(manifest_media_types); i++)
		if (media_type && strcmp(media_type, manifest_media_types[i]) == 0)
			return true;
	return false;
}

/* ---- small file helpers --------------------------------------------------------------- */

static int fsync_dir(const char *dir, struct bv_error **err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bv_error_set_errno(err, "could not open directory '%s'", dir);
	/* Some file systems cannot fsync a directory at all (EINVAL); there is nothing to do. */
	if (fsync(fd) < 0 && errno != EINVAL)
		return bv_error_set_errno(err, "could not flush directory '%s'", dir);
	return 0;
}

static char *blob_path_hex(const struct bv_store *s, const char *hex)
{
	return bv_path_join(s->blobs, hex);
}

/* ---- opening -------------------------------------------------------------------------- */

static void store_freep(struct bv_store **sp)
{
	bv_store_free(*sp);
}

static int lock_index(const struct bv_store *s, struct bv_lock *lk, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(s->locks, INDEX_LOCK_NAME);
	return bv_lock_acquire(lk, path, BV_LOCK_EXCLUSIVE, true, err);
}

/* Writes an empty index.json unless one exists; under the index lock, so none is replaced. */
static int ensure_index(struct bv_store *s, struct bv_error **err)
{
	struct bv_lock lk = BV_LOCK_INIT;
	int r = lock_index(s, &lk, err);
	if (r < 0)
		return r;
	if (!bv_path_exists(s->index_path))
		r = bv_write_file_atomic(s->index_path, EMPTY_INDEX_TEXT, strlen(EMPTY_INDEX_TEXT),
					 0644, err);
	bv_lock_release(&lk);
	return r;
}

int bv_store_open(struct bv_store **out, const char *dir, struct bv_error **err)
{
	_cleanup_(store_freep) struct bv_store *s = NULL;
	_cleanup_free_ char *cache = NULL;
	_cleanup_free_ char *layout = NULL;
	_cleanup_free_ char *gc_lock = NULL;
	struct bv_error *lock_err = NULL;
	const char *dirs[3];
	int r;

	if (!dir) {
		r = bv_cache_dir(&cache, err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not locate the blob store");
	}
	s = bv_xcalloc(1, sizeof(*s));
	s->users = (struct bv_lock)BV_LOCK_INIT;
	s->dir = dir ? bv_xstrdup(dir) : bv_path_join(cache, "store");
	s->blobs = bv_path_join(s->dir, "blobs/sha256");
	s->tmp = bv_path_join(s->dir, "tmp");
	s->locks = bv_path_join(s->dir, "locks");
	s->index_path = bv_path_join(s->dir, INDEX_NAME);
	layout = bv_path_join(s->dir, "oci-layout");

	dirs[0] = s->blobs;
	dirs[1] = s->tmp;
	dirs[2] = s->locks;
	for (size_t i = 0; i < BV_ARRAY_SIZE(dirs); i++) {
		r = bv_mkdir_p(dirs[i], 0755, err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not create the blob store '%s'",
					     s->dir);
	}

	/* Waits while a gc runs elsewhere; a read-only store simply goes without the lock. */
	gc_lock = bv_path_join(s->locks, GC_LOCK_NAME);
	r = bv_lock_acquire(&s->users, gc_lock, BV_LOCK_SHARED, true, &lock_err);
	if (r < 0) {
		int e = bv_error_errno(lock_err);
		if (e != EACCES && e != EROFS) {
			r = bv_error_wrap(&lock_err, r, "could not open the blob store '%s'",
					  s->dir);
			if (err)
				*err = lock_err;
			else
				bv_error_free(lock_err);
			return r;
		}
		bv_error_free(lock_err);
	}

	if (!bv_path_exists(s->index_path)) {
		r = ensure_index(s, err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not create the blob store '%s'",
					     s->dir);
	}
	/* Written last: its presence tells OCI tools the layout is complete. */
	if (!bv_path_exists(layout)) {
		r = bv_write_file_atomic(layout, OCI_LAYOUT_TEXT, strlen(OCI_LAYOUT_TEXT), 0644,
					 err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not create the blob store '%s'",
					     s->dir);
	}
	*out = TAKE_PTR(s);
	return 0;
}

void bv_store_free(struct bv_store *s)
{
	if (!s)
		return;
	bv_lock_release(&s->users);
	free(s->dir);
	free(s->blobs);
	free(s->tmp);
	free(s->locks);
	free(s->index_path);
	free(s);
}

const char *bv_store_dir(const struct bv_store *s)
{
	return s->dir;
}

bool bv_store_has_blob(const struct bv_store *s, const char *digest)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;
	if (!bv_digest_valid(digest))
		return false;
	path = blob_path_hex(s, digest + SHA256_PREFIX_LEN);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *bv_store_blob_path(const struct bv_store *s, const char *digest)
{
	if (!bv_digest_valid(digest))
		return NULL;
	return blob_path_hex(s, digest + SHA256_PREFIX_LEN);
}

/* ---- ingest --------------------------------------------------------------------------- */

static void ingest_free(struct bv_store_ingest *in)
{
	if (!in)
		return;
	if (in->fd >= 0)
		close(in->fd);
	bv_sha256_free(in->h);
	bv_lock_release(&in->lock);
	free(in->partial);
	if (in->s && in->s->n_ingests)
		in->s->n_ingests--;
	free(in);
}

static void ingest_freep(struct bv_store_ingest **inp)
{
	ingest_free(*inp);
}

int bv_store_ingest_begin(struct bv_store_ingest **out, struct bv_store *s, const char *digest,
			  int64_t expected_size, struct bv_error **err)
{
	_cleanup_(ingest_freep) struct bv_store_ingest *in = NULL;
	_cleanup_free_ char *lock_path = NULL;
	const char *hex;
	struct stat st;
	uint64_t done;
	int r;

	r = check_digest(digest, err);
	if (r < 0)
		return r;
	if (expected_size < -1)
		return bv_error_setc(err, BV_EINVALID, 0, "invalid size %" PRId64 " for blob '%s'",
				     expected_size, digest);
	hex = digest + SHA256_PREFIX_LEN;

	in = bv_xcalloc(1, sizeof(*in));
	in->fd = -1;
	in->lock = (struct bv_lock)BV_LOCK_INIT;
	in->expected = expected_size;
	memcpy(in->digest, digest, DIGEST_LEN + 1);
	in->s = s;
	s->n_ingests++;

	lock_path = bv_xasprintf("%s/%s.lock", s->locks, hex);
	r = bv_lock_acquire(&in->lock, lock_path, BV_LOCK_EXCLUSIVE, false, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not store blob '%s'", digest);

	/* O_NOFOLLOW: a symlink planted in tmp/ must not redirect our writes. */
	in->partial = bv_xasprintf("%s/%s" PARTIAL_SUFFIX, s->tmp, hex);
	in->fd = open(in->partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
	if (in->fd < 0)
		return bv_error_set_errno(err, "could not open '%s'", in->partial);
	if (fstat(in->fd, &st) < 0)
		return bv_error_set_errno(err, "could not stat '%s'", in->partial);
	if (!S_ISREG(st.st_mode))
		return bv_error_set(err, "'%s' is not a regular file", in->partial);
	if (expected_size >= 0 && st.st_size > expected_size && ftruncate(in->fd, 0) < 0)
		return bv_error_set_errno(err, "could not truncate '%s'", in->partial);

	/* Re-hash what an earlier attempt left, so the digest covers exactly the file. */
	in->h = bv_sha256_new();
	if (lseek(in->fd, 0, SEEK_SET) < 0 || bv_sha256_update_fd(in->h, in->fd, &done) < 0)
		return bv_error_set_errno(err, "could not read '%s'", in->partial);
	in->offset = in->kicked = (int64_t)done;
	if (lseek(in->fd, in->offset, SEEK_SET) < 0)
		return bv_error_set_errno(err, "could not seek in '%s'", in->partial);
	*out = TAKE_PTR(in);
	return 0;
}

int64_t bv_store_ingest_offset(const struct bv_store_ingest *in)
{
	return in->offset;
}

const char *bv_store_ingest_path(const struct bv_store_ingest *in)
{
	return in->partial;
}

/*
 * Starts the write-back of what arrived since the last call once it is WRITEBACK_STEP bytes,
 * so that the fsync at the end finds little left to write: a large layer otherwise ends in
 * one flush of all of it, after the download, on the pull's critical path (the same as
 * src/lib/data does for datasets).
 */
static void ingest_writeback(struct bv_store_ingest *in)
{
	if (in->offset - in->kicked < (int64_t)WRITEBACK_STEP)
		return;
	(void)sync_file_range(in->fd, (off64_t)in->kicked, (off64_t)(in->offset - in->kicked),
			      SYNC_FILE_RANGE_WRITE);
	in->kicked = in->offset;
}

int bv_store_ingest_write(struct bv_store_ingest *in, const void *data, size_t len,
			  struct bv_error **err)
{
	if (in->broken)
		return bv_error_set(err, "cannot write blob '%s' after a failed write", in->digest);
	if (len == 0)
		return 0;
	if (in->expected >= 0 && (uint64_t)len > (uint64_t)(in->expected - in->offset))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "blob '%s' is larger than the expected %" PRId64 " bytes",
				     in->digest, in->expected);
	if (bv_write_all(in->fd, data, len) < 0) {
		in->broken = true;
		return bv_error_set_errno(err, "could not write '%s'", in->partial);
	}
	bv_sha256_update(in->h, data, len);
	in->offset += (int64_t)len;
	ingest_writeback(in);
	return 0;
}

int bv_store_ingest_reset(struct bv_store_ingest *in, struct bv_error **err)
{
	if (ftruncate(in->fd, 0) < 0 || lseek(in->fd, 0, SEEK_SET) < 0) {
		in->broken = true;
		return bv_error_set_errno(err, "could not truncate '%s'", in->partial);
	}
	bv_sha256_free(in->h);
	in->h = bv_sha256_new();
	in->offset = in->kicked = 0;
	in->broken = false;
	return 0;
}

/* Deletes the partial (still under the lock) and reports why it was not the blob. */
static int verification_failed(struct bv_store_ingest *in, const char *expected, const char *got,
			       struct bv_error **err)
{
	unlink(in->partial);
	return bv_error_setc(err, BV_EINVALID, 0,
			     "blob '%.19s' failed verification: expected %s, got %s", in->digest,
			     expected, got);
}

static int commit(struct bv_store_ingest *in, struct bv_error **err)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *final = NULL;
	int fd;

	if (in->broken)
		return bv_error_set(err, "cannot commit blob '%s' after a failed write",
				    in->digest);
	if (fsync(in->fd) < 0)
		return bv_error_set_errno(err, "could not flush '%s'", in->partial);
	if (in->expected >= 0 && in->offset != in->expected) {
		_cleanup_free_ char *want = bv_xasprintf("%" PRId64 " bytes", in->expected);
		_cleanup_free_ char *got = bv_xasprintf("%" PRId64, in->offset);
		return verification_failed(in, want, got, err);
	}
	bv_sha256_final_hex(hex, in->h);
	in->h = NULL;
	if (strcmp(hex, in->digest + SHA256_PREFIX_LEN) != 0) {
		_cleanup_free_ char *got = bv_xasprintf(SHA256_PREFIX "%s", hex);
		return verification_failed(in, in->digest, got, err);
	}

	/* Read-only, so nothing rewrites a blob in place by accident. */
	if (fchmod(in->fd, 0444) < 0)
		return bv_error_set_errno(err, "could not change the mode of '%s'", in->partial);
	fd = in->fd;
	in->fd = -1;
	/* close() reports deferred write errors on NFS. */
	if (close(fd) < 0)
		return bv_error_set_errno(err, "could not close '%s'", in->partial);
	final = blob_path_hex(in->s, hex);
	if (rename(in->partial, final) < 0)
		return bv_error_set_errno(err, "could not rename '%s' to '%s'", in->partial, final);
	return fsync_dir(in->s->blobs, err);
}

int bv_store_ingest_commit(struct bv_store_ingest *in, struct bv_error **err)
{
	int r = commit(in, err);
	ingest_free(in);
	return r;
}

void bv_store_ingest_abort(struct bv_store_ingest *in, bool keep_partial)
{
	if (!in)
		return;
	if (!keep_partial && in->partial)
		unlink(in->partial); /* before the lock goes, so no new writer loses its file */
	ingest_free(in);
}

/* ---- small blobs ---------------------------------------------------------------------- */

int bv_store_put_blob(char **digest_out, struct bv_store *s, const void *data, size_t len,
		      const char *expected_digest, struct bv_error **err)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *final = NULL;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (expected_digest) {
		r = check_digest(expected_digest, err);
		if (r < 0)
			return r;
	}
	bv_sha256_hex(hex, data, len);
	if (expected_digest && strcmp(expected_digest + SHA256_PREFIX_LEN, hex) != 0)
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"blob '%.19s' failed verification: expected %s, got " SHA256_PREFIX "%s",
			expected_digest, expected_digest, hex);

	final = blob_path_hex(s, hex);
	if (!bv_path_exists(final)) {
		/* No lock needed: the bytes are verified before the file exists at all. */
		tmp = bv_xasprintf("%s/put-%.12s.XXXXXX", s->tmp, hex);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0)
			return bv_error_set_errno(err, "could not create a temporary file in '%s'",
						  s->tmp);
		if (bv_write_all(fd, data, len) < 0 || fchmod(fd, 0444) < 0 || fsync(fd) < 0 ||
		    close(TAKE_FD(fd)) < 0) {
			r = bv_error_set_errno(err, "could not write '%s'", tmp);
			unlink(tmp);
			return r;
		}
		if (rename(tmp, final) < 0) {
			r = bv_error_set_errno(err, "could not rename '%s' to '%s'", tmp, final);
			unlink(tmp);
			return r;
		}
		r = fsync_dir(s->blobs, err);
		if (r < 0)
			return r;
	}
	if (digest_out)
		*digest_out = bv_xasprintf(SHA256_PREFIX "%s", hex);
	return 0;
}

int bv_store_read_blob(struct bv_buf *out, const struct bv_store *s, const char *digest, size_t max,
		       struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf b = BV_BUF_INIT;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	char hex[BV_SHA256_HEX_LEN + 1];
	int r;

	r = check_digest(digest, err);
	if (r < 0)
		return r;
	path = blob_path_hex(s, digest + SHA256_PREFIX_LEN);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "blob '%s' is not in the store", digest);
	if (fd < 0)
		return bv_error_set_errno(err, "could not open blob '%s'", path);
	r = bv_buf_read_fd(&b, fd, max, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not read blob '%s'", digest);
	bv_sha256_hex(hex, b.buf, b.len);
	if (strcmp(hex, digest + SHA256_PREFIX_LEN) != 0)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "blob '%s' is corrupt: its content hashes to " SHA256_PREFIX
				     "%s",
				     digest, hex);
	bv_buf_add(out, b.buf, b.len);
	return 0;
}

/* ---- index.json ----------------------------------------------------------------------- */

/* Reads index.json; returns a new reference whose "manifests" is an array. */
static int index_load(const struct bv_store *s, json_t **out, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_error_t je;
	json_t *doc, *manifests;
	int r = bv_buf_read_file(&text, s->index_path, INDEX_MAX, err);
	if (r < 0)
		return r;
	doc = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return bv_error_setc(err, BV_EINVALID, 0, "%s:%d:%d: %s", s->index_path, je.line,
				     je.column, je.text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0, "%s:1:1: expected an object",
				     s->index_path);
	}
	manifests = json_object_get(doc, "manifests");
	if (!manifests) {
		json_object_set_new(doc, "manifests", json_array());
	} else if (!json_is_array(manifests)) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0, "'%s': \"manifests\" is not an array",
				     s->index_path);
	}
	*out = doc;
	return 0;
}

static int index_save(const struct bv_store *s, const json_t *doc, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	char *dump = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!dump)
		bv_oom();
	bv_buf_puts(&text, dump);
	bv_buf_putc(&text, '\n');
	free(dump);
	return bv_write_file_atomic(s->index_path, text.buf, text.len, 0644, err);
}

/* Borrowed string members of one descriptor; NULL when absent or not a string. */
static const char *desc_string(const json_t *desc, const char *key)
{
	return json_string_value(json_object_get(desc, key));
}

static const char *desc_ref_name(const json_t *desc)
{
	return json_string_value(json_object_get(json_object_get(desc, "annotations"),
						 BV_STORE_REF_NAME_ANNOTATION));
}

static json_t *new_descriptor(const char *ref_name, const char *digest, const char *media_type,
			      int64_t size, const char *source_digest)
{
	json_t *d = json_object();
	json_t *ann = json_object();
	json_object_set_new(ann, BV_STORE_REF_NAME_ANNOTATION, json_string(ref_name));
	json_object_set_new(ann, BV_STORE_DIGEST_ANNOTATION, json_string(source_digest));
	json_object_set_new(d, "mediaType", json_string(media_type));
	json_object_set_new(d, "digest", json_string(digest));
	json_object_set_new(d, "size", json_integer(size));
	json_object_set_new(d, "annotations", ann);
	if (!d || !ann)
		bv_oom();
	return d;
}

static bool descriptor_equal(const json_t *d, const char *digest, const char *media_type,
			     int64_t size, const char *source_digest)
{
	const json_t *sz = json_object_get(d, "size");
	const char *pinned = json_string_value(
		json_object_get(json_object_get(d, "annotations"), BV_STORE_DIGEST_ANNOTATION));
	return json_is_integer(sz) && json_integer_value(sz) == size &&
	       strcmp(desc_string(d, "digest") ? desc_string(d, "digest") : "", digest) == 0 &&
	       strcmp(desc_string(d, "mediaType") ? desc_string(d, "mediaType") : "", media_type) ==
		       0 &&
	       pinned && strcmp(pinned, source_digest) == 0;
}

static ssize_t find_ref(const json_t *manifests, const char *ref_name)
{
	for (size_t i = 0; i < json_array_size(manifests); i++) {
		const char *name = desc_ref_name(json_array_get(manifests, i));
		if (name && strcmp(name, ref_name) == 0)
			return (ssize_t)i;
	}
	return -1;
}

int bv_store_add_image(struct bv_store *s, const char *ref_name, const char *manifest_digest,
		       const char *media_type, int64_t size, struct bv_error **err)
{
	return bv_store_add_image_as(s, ref_name, manifest_digest, media_type, size,
				     manifest_digest, err);
}

int bv_store_add_image_as(struct bv_store *s, const char *ref_name, const char *manifest_digest,
			  const char *media_type, int64_t size, const char *source_digest,
			  struct bv_error **err)
{
	struct bv_lock lk = BV_LOCK_INIT;
	_cleanup_free_ char *path = NULL;
	json_t *doc = NULL, *manifests;
	struct stat st;
	ssize_t at;
	int r;

	if (!ref_name || !bv_store_ref_name_valid(ref_name))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid image name '%s'",
				     ref_name ? ref_name : "(null)");
	r = check_digest(manifest_digest, err);
	if (r < 0)
		return r;
	r = check_digest(source_digest, err);
	if (r < 0)
		return r;
	if (!media_type_known(media_type))
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' is not a manifest media type",
				     media_type ? media_type : "(null)");
	path = blob_path_hex(s, manifest_digest + SHA256_PREFIX_LEN);
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "cannot add image '%s': manifest '%s' is not in the store",
				     ref_name, manifest_digest);
	if (size < 0 || st.st_size != size)
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"cannot add image '%s': manifest '%s' is %lld bytes, not %" PRId64,
			ref_name, manifest_digest, (long long)st.st_size, size);

	r = lock_index(s, &lk, err);
	if (r < 0)
		return r;
	r = index_load(s, &doc, err);
	if (r < 0)
		goto out;
	manifests = json_object_get(doc, "manifests");
	at = find_ref(manifests, ref_name);
	if (at >= 0 && descriptor_equal(json_array_get(manifests, (size_t)at), manifest_digest,
					media_type, size, source_digest))
		goto out; /* already recorded: leave the file alone */
	if (at >= 0)
		json_array_set_new(
			manifests, (size_t)at,
			new_descriptor(ref_name, manifest_digest, media_type, size, source_digest));
	else
		json_array_append_new(manifests, new_descriptor(ref_name, manifest_digest,
								media_type, size, source_digest));
	r = index_save(s, doc, err);
out:
	json_decref(doc);
	bv_lock_release(&lk);
	if (r < 0)
		return bv_error_wrap(err, r, "could not add image '%s'", ref_name);
	return 0;
}

void bv_store_images_free(struct bv_store_image *images, size_t n)
{
	for (size_t i = 0; images && i < n; i++) {
		free(images[i].ref_name);
		free(images[i].digest);
		free(images[i].pinned_digest);
		free(images[i].media_type);
	}
	free(images);
}

/* Config + layers of the manifest `digest`, as its descriptors say; -1 when not a manifest. */
static int64_t content_size(const struct bv_store *s, const char *digest)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	struct bv_error *err = NULL;
	json_t *m, *layers, *layer;
	size_t i;
	int64_t total = -1;
	if (bv_store_read_blob(&text, s, digest, 4u << 20, &err) < 0) {
		bv_error_free(err);
		return -1;
	}
	m = json_loadb(text.buf, text.len, 0, NULL);
	layers = json_object_get(m, "layers");
	if (json_is_array(layers)) {
		total = json_integer_value(json_object_get(json_object_get(m, "config"), "size"));
		json_array_foreach(layers, i, layer) total +=
			json_integer_value(json_object_get(layer, "size"));
	}
	json_decref(m);
	return total;
}

int bv_store_list_images(struct bv_store_image **out, size_t *n_out, const struct bv_store *s,
			 struct bv_error **err)
{
	struct bv_store_image *v = NULL;
	size_t n = 0, alloc = 0;
	json_t *doc = NULL, *manifests;
	int r = index_load(s, &doc, err);
	if (r < 0)
		return r;
	manifests = json_object_get(doc, "manifests");
	for (size_t i = 0; i < json_array_size(manifests); i++) {
		const json_t *d = json_array_get(manifests, i);
		const char *name = desc_ref_name(d);
		const char *digest = desc_string(d, "digest");
		const char *media_type = desc_string(d, "mediaType");
		const json_t *size = json_object_get(d, "size");
		if (!name || !digest || !media_type || !json_is_integer(size))
			continue;
		BV_GROW(v, alloc, n + 1);
		v[n].ref_name = bv_xstrdup(name);
		v[n].digest = bv_xstrdup(digest);
		{
			const char *pinned = json_string_value(json_object_get(
				json_object_get(d, "annotations"), BV_STORE_DIGEST_ANNOTATION));
			v[n].pinned_digest = bv_xstrdup(pinned && *pinned ? pinned : digest);
		}
		v[n].media_type = bv_xstrdup(media_type);
		v[n].size = json_integer_value(size);
		v[n].content_size = content_size(s, digest);
		n++;
	}
	json_decref(doc);
	*out = v;
	*n_out = n;
	return 0;
}

int bv_store_remove_image(struct bv_store *s, const char *ref_name, struct bv_error **err)
{
	struct bv_lock lk = BV_LOCK_INIT;
	json_t *doc = NULL, *manifests;
	ssize_t at;
	int r;

	if (!ref_name)
		return bv_error_setc(err, BV_EINVALID, 0, "no image name given");
	r = lock_index(s, &lk, err);
	if (r < 0)
		return r;
	r = index_load(s, &doc, err);
	if (r < 0)
		goto out;
	manifests = json_object_get(doc, "manifests");
	at = find_ref(manifests, ref_name);
	if (at < 0) {
		r = bv_error_setc(err, BV_ENOTFOUND, 0, "image '%s' is not in the store", ref_name);
		goto out;
	}
	json_array_remove(manifests, (size_t)at);
	r = index_save(s, doc, err);
	if (r < 0)
		r = bv_error_wrap(err, r, "could not remove image '%s'", ref_name);
out:
	json_decref(doc);
	bv_lock_release(&lk);
	return r;
}

/* ---- manifests ------------------------------------------------------------------------ */

/* What one manifest or index refers to. */
struct refs {
	struct bv_strv children; /* manifests of an index */
	struct bv_strv configs;
	struct bv_strv layers;
};

static void refs_clear(struct refs *r)
{
	bv_strv_clear(&r->children);
	bv_strv_clear(&r->configs);
	bv_strv_clear(&r->layers);
}

static int push_digest(struct bv_strv *v, const json_t *desc, const char *what,
		       struct bv_error **err)
{
	const char *d = desc_string(desc, "digest");
	if (!bv_digest_valid(d))
		return bv_error_setc(err, BV_EINVALID, 0, "%s has an invalid digest '%s'", what,
				     d ? d : "(none)");
	bv_strv_push(v, d);
	return 0;
}

/* Parses an OCI or Docker v2 manifest or index (the mediaType field is optional in OCI). */
static int parse_refs(const struct bv_buf *text, struct refs *out, struct bv_error **err)
{
	json_error_t je;
	json_t *doc = json_loadb(text->buf, text->len, JSON_REJECT_DUPLICATES, &je);
	json_t *manifests, *config, *layers, *sv;
	int r = 0;

	if (!doc)
		return bv_error_setc(err, BV_EINVALID, 0, "%d:%d: %s", je.line, je.column, je.text);
	manifests = json_object_get(doc, "manifests");
	config = json_object_get(doc, "config");
	layers = json_object_get(doc, "layers");
	sv = json_object_get(doc, "schemaVersion");
	if (!json_is_object(doc)) {
		r = bv_error_setc(err, BV_EINVALID, 0, "not a JSON object");
	} else if (json_is_integer(sv) && json_integer_value(sv) == 1) {
		r = bv_error_setc(err, BV_EINVALID, 0, "schema 1 manifests are not supported");
	} else if (json_is_array(manifests)) {
		for (size_t i = 0; r == 0 && i < json_array_size(manifests); i++)
			r = push_digest(&out->children, json_array_get(manifests, i), "a manifest",
					err);
	} else if (json_is_object(config)) {
		r = push_digest(&out->configs, config, "the config", err);
		if (r == 0 && layers && !json_is_array(layers))
			r = bv_error_setc(err, BV_EINVALID, 0, "\"layers\" is not an array");
		for (size_t i = 0; r == 0 && i < json_array_size(layers); i++)
			r = push_digest(&out->layers, json_array_get(layers, i), "a layer", err);
	} else {
		r = bv_error_setc(err, BV_EINVALID, 0, "neither an image manifest nor an index");
	}
	json_decref(doc);
	return r;
}

/* Reads, verifies and parses a manifest blob. */
static int load_refs(const struct bv_store *s, const char *digest, struct refs *out,
		     struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	int r = bv_store_read_blob(&text, s, digest, MANIFEST_MAX, err);
	if (r < 0)
		return r;
	r = parse_refs(&text, out, err);
	if (r < 0)
		return bv_error_wrap(err, r, "manifest '%s' cannot be parsed", digest);
	return 0;
}

/* ---- verify --------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names in `dir` (without "." and ".."), sorted. */
static int list_dir(const char *dir, struct bv_strv *names, struct bv_error **err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return bv_error_set_errno(err, "could not open directory '%s'", dir);
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e)
			break;
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			bv_strv_push(names, e->d_name);
	}
	if (errno)
		return bv_error_set_errno(err, "could not read directory '%s'", dir);
	bv_strv_sort(names);
	return 0;
}

static bool sorted_contains(const struct bv_strv *v, const char *s)
{
	return v->n && bsearch(&s, v->v, v->n, sizeof(char *), cmp_str) != NULL;
}

static void check_image(const struct bv_store *s, const char *name, const char *digest, int depth,
			const struct bv_strv *corrupt, struct bv_strv *problems)
{
	struct refs refs = {BV_STRV_INIT, BV_STRV_INIT, BV_STRV_INIT};
	struct bv_error *e = NULL;
	size_t present = 0;

	if (!bv_digest_valid(digest)) {
		bv_strv_pushf(problems, "image %s: invalid manifest digest '%s'", name,
			      digest ? digest : "(none)");
		return;
	}
	if (!bv_store_has_blob(s, digest)) {
		bv_strv_pushf(problems, "image %s: manifest %s is missing", name, digest);
		return;
	}
	if (sorted_contains(corrupt, digest)) {
		bv_strv_pushf(problems, "image %s: manifest %s is corrupt", name, digest);
		return;
	}
	if (load_refs(s, digest, &refs, &e) < 0) {
		char *msg = bv_error_format(e);
		bv_strv_pushf(problems, "image %s: %s", name, msg);
		free(msg);
		bv_error_free(e);
		refs_clear(&refs);
		return;
	}
	bv_strv_foreach (c, &refs.configs)
		if (!bv_store_has_blob(s, *c))
			bv_strv_pushf(problems, "image %s: config %s is missing", name, *c);
	bv_strv_foreach (l, &refs.layers)
		if (!bv_store_has_blob(s, *l))
			bv_strv_pushf(problems, "image %s: layer %s is missing", name, *l);
	bv_strv_foreach (m, &refs.children) {
		if (!bv_store_has_blob(s, *m))
			continue;
		present++;
		if (depth >= MANIFEST_DEPTH)
			bv_strv_pushf(problems, "image %s: index %s is nested too deeply", name,
				      digest);
		else
			check_image(s, name, *m, depth + 1, corrupt, problems);
	}
	if (refs.children.n && !present)
		bv_strv_pushf(problems,
			      "image %s: none of the %zu manifests of index %s is present", name,
			      refs.children.n, digest);
	refs_clear(&refs);
}

int bv_store_verify(struct bv_store *s, struct bv_strv *problems, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	_cleanup_strv_ struct bv_strv found = BV_STRV_INIT;
	_cleanup_strv_ struct bv_strv corrupt = BV_STRV_INIT;
	struct bv_error *e = NULL;
	json_t *doc = NULL;
	int r = list_dir(s->blobs, &names, err);
	if (r < 0)
		return r;

	bv_strv_foreach (name, &names) {
		_cleanup_free_ char *path = bv_path_join(s->blobs, *name);
		_cleanup_close_ int fd = -1;
		char hex[BV_SHA256_HEX_LEN + 1];
		struct stat st;

		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
		if (!bv_sha256_hex_valid(*name) || (fd < 0 && errno == ELOOP) ||
		    (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)))) {
			bv_strv_pushf(&found, "unexpected file 'blobs/sha256/%s'", *name);
			continue;
		}
		if (fd < 0 && errno == ENOENT)
			continue; /* removed meanwhile (a concurrent gc) */
		if (fd < 0 || bv_sha256_fd_hex(fd, hex, NULL) < 0)
			return bv_error_set_errno(err, "could not read blob '%s'", path);
		if (strcmp(hex, *name) != 0) {
			bv_strv_pushf(&found, "blob sha256:%s is corrupt", *name);
			bv_strv_pushf(&corrupt, SHA256_PREFIX "%s", *name);
		}
	}
	bv_strv_sort(&corrupt);

	if (index_load(s, &doc, &e) < 0) {
		char *msg = bv_error_format(e);
		bv_strv_pushf(&found, "%s", msg);
		free(msg);
		bv_error_free(e);
	} else {
		const json_t *manifests = json_object_get(doc, "manifests");
		for (size_t i = 0; i < json_array_size(manifests); i++) {
			const json_t *d = json_array_get(manifests, i);
			const char *digest = desc_string(d, "digest");
			const char *name = desc_ref_name(d);
			check_image(s, name ? name : (digest ? digest : "(unnamed)"), digest, 0,
				    &corrupt, &found);
		}
		json_decref(doc);
	}
	bv_strv_foreach (p, &found)
		bv_strv_push(problems, *p);
	return 0;
}

int bv_store_usage(int64_t *bytes_out, size_t *blobs_out, const struct bv_store *s,
		   struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	int64_t bytes = 0;
	size_t blobs = 0;
	int r = list_dir(s->blobs, &names, err);
	if (r < 0)
		return r;
	bv_strv_foreach (name, &names) {
		_cleanup_free_ char *path = bv_path_join(s->blobs, *name);
		struct stat st;
		if (!bv_sha256_hex_valid(*name) || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		bytes += st.st_size;
		blobs++;
	}
	if (bytes_out)
		*bytes_out = bytes;
	if (blobs_out)
		*blobs_out = blobs;
	return 0;
}

/* ---- scratch files, gc ---------------------------------------------------------------- */

/* Whether `name` is "<64 hex>.partial"; copies the hex part. */
static bool partial_hex(const char *name, char hex[BV_SHA256_HEX_LEN + 1])
{
	if (strlen(name) != BV_SHA256_HEX_LEN + strlen(PARTIAL_SUFFIX) ||
	    !bv_str_has_suffix(name, PARTIAL_SUFFIX))
		return false;
	memcpy(hex, name, BV_SHA256_HEX_LEN);
	hex[BV_SHA256_HEX_LEN] = '\0';
	return bv_sha256_hex_valid(hex);
}

/*
 * Removes (or, dry, only counts) stale scratch files: in tmp/ and the index.json temporaries
 * of the store root.  `exclusive` means gc holds the store to itself, so every file except a
 * partial younger than BV_STORE_STALE_SECONDS (kept for resuming) is garbage.
 */
static int clean_scratch(struct bv_store *s, bool exclusive, bool dry_run, struct bv_strv *removed,
			 int64_t *freed, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	_cleanup_strv_ struct bv_strv root = BV_STRV_INIT;
	time_t now = time(NULL);
	int r = list_dir(s->tmp, &names, err);
	if (r < 0)
		return r;
	r = list_dir(s->dir, &root, err);
	if (r < 0)
		return r;
	bv_strv_foreach (name, &root)
		if (bv_str_has_prefix(*name, INDEX_TMP_PREFIX))
			bv_strv_pushf(&names, "../%s", *name);

	bv_strv_foreach (name, &names) {
		_cleanup_free_ char *path = bv_path_join(s->tmp, *name);
		struct bv_lock lk = BV_LOCK_INIT;
		char hex[BV_SHA256_HEX_LEN + 1];
		bool partial = partial_hex(*name, hex);
		bool stale;
		struct stat st;

		if (lstat(path, &st) < 0)
			continue; /* gone meanwhile */
		stale = now - st.st_mtime >= BV_STORE_STALE_SECONDS;
		if (partial ? !stale : !(stale || exclusive))
			continue;
		if (partial) {
			/* An ingest holding the blob's lock is still writing it, however old. */
			_cleanup_free_ char *lock_path = bv_xasprintf("%s/%s.lock", s->locks, hex);
			if (bv_lock_acquire(&lk, lock_path, BV_LOCK_EXCLUSIVE, false, NULL) < 0)
				continue;
		}
		if (!dry_run)
			r = bv_rm_rf(path, err);
		bv_lock_release(&lk);
		if (r < 0)
			return r;
		if (removed)
			bv_strv_pushf(removed, bv_str_has_prefix(*name, "../") ? "%s" : "tmp/%s",
				      bv_str_has_prefix(*name, "../") ? *name + 3 : *name);
		if (freed && S_ISREG(st.st_mode))
			*freed += st.st_size;
	}
	return 0;
}

int bv_store_clean_tmp(struct bv_store *s, struct bv_strv *removed, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv found = BV_STRV_INIT;
	int64_t freed = 0;
	int r = clean_scratch(s, false, false, &found, &freed, err);
	if (r < 0)
		return r;
	if (removed)
		bv_strv_foreach (p, &found)
			bv_strv_push(removed, *p);
	return 0;
}

/* Converts this handle's lock on gc.lock in place (no window without a lock). */
static int users_lock(struct bv_store *s, bool exclusive, struct bv_error **err)
{
	struct flock fl = {
		.l_type = exclusive ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
		.l_pid = 0,
	};
	if (s->users.fd < 0)
		return bv_error_set(err, "the blob store '%s' is read-only", s->dir);
	for (;;) {
		if (fcntl(s->users.fd, exclusive ? F_OFD_SETLK : F_OFD_SETLKW, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			return bv_error_setc(err, BV_EEXISTS, 0,
					     "the blob store '%s' is in use by another bv process",
					     s->dir);
		return bv_error_set_errno(err, "could not lock '%s'", s->users.path);
	}
}

/* Everything reachable from `keep`, sorted: manifests, configs, layers, index children. */
static int mark(const struct bv_store *s, const char *const *keep, size_t n_keep,
		struct bv_strv *reach, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv todo = BV_STRV_INIT;
	for (size_t i = 0; i < n_keep; i++)
		bv_strv_push(&todo, keep[i]);
	while (todo.n) {
		struct refs refs = {BV_STRV_INIT, BV_STRV_INIT, BV_STRV_INIT};
		_cleanup_free_ char *digest = bv_xstrdup(todo.v[todo.n - 1]);
		int r;
		bv_strv_pop(&todo);
		if (bv_strv_contains(reach, digest))
			continue;
		bv_strv_push(reach, digest);
		if (!bv_store_has_blob(s, digest))
			continue;
		r = load_refs(s, digest, &refs, err);
		if (r < 0) {
			refs_clear(&refs);
			return r;
		}
		bv_strv_foreach (c, &refs.configs)
			bv_strv_push(reach, *c);
		bv_strv_foreach (l, &refs.layers)
			bv_strv_push(reach, *l);
		bv_strv_foreach (m, &refs.children)
			if (bv_store_has_blob(s, *m))
				bv_strv_push(&todo, *m);
		refs_clear(&refs);
	}
	bv_strv_sort(reach);
	return 0;
}

static int gc_locked(struct bv_store *s, const char *const *keep, size_t n_keep, bool dry_run,
		     struct bv_strv *removed, int64_t *freed, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv reach = BV_STRV_INIT;
	_cleanup_strv_ struct bv_strv names = BV_STRV_INIT;
	json_t *doc = NULL, *manifests;
	bool changed = false;
	int r = mark(s, keep, n_keep, &reach, err);
	if (r < 0)
		return bv_error_wrap(err, r, "cannot collect garbage in '%s'", s->dir);

	/* Index entries first: a crash must not leave an entry whose manifest is gone. */
	r = index_load(s, &doc, err);
	if (r < 0)
		return r;
	manifests = json_object_get(doc, "manifests");
	for (size_t i = json_array_size(manifests); i-- > 0;) {
		const json_t *desc = json_array_get(manifests, i);
		const char *d = desc_string(desc, "digest");
		const char *source = json_string_value(json_object_get(
			json_object_get(desc, "annotations"), BV_STORE_DIGEST_ANNOTATION));
		/*
		 * An OCI manifest bv wrote for a Docker image (bv_store_add_image_as()) stays
		 * while the Docker manifest it was made from is kept: it names the same blobs.
		 */
		if (d && source && strcmp(d, source) && sorted_contains(&reach, source) &&
		    !sorted_contains(&reach, d)) {
			bv_strv_push(&reach, d);
			bv_strv_sort(&reach);
		}
		if (!d || !sorted_contains(&reach, d)) {
			json_array_remove(manifests, i);
			changed = true;
		}
	}
	if (changed && !dry_run)
		r = index_save(s, doc, err);
	json_decref(doc);
	if (r < 0)
		return r;

	r = list_dir(s->blobs, &names, err);
	if (r < 0)
		return r;
	bv_strv_foreach (name, &names) {
		_cleanup_free_ char *path = bv_path_join(s->blobs, *name);
		_cleanup_free_ char *digest = bv_xasprintf(SHA256_PREFIX "%s", *name);
		struct stat st;
		if (!bv_sha256_hex_valid(*name) || sorted_contains(&reach, digest) ||
		    lstat(path, &st) < 0)
			continue;
		if (!dry_run && unlink(path) < 0 && errno != ENOENT)
			return bv_error_set_errno(err, "could not remove '%s'", path);
		bv_strv_push(removed, digest);
		*freed += st.st_size;
	}
	if (!dry_run) {
		r = fsync_dir(s->blobs, err);
		if (r < 0)
			return r;
	}

	/* A dry run reports what a real one, which runs alone, would remove. */
	r = clean_scratch(s, true, dry_run, removed, freed, err);
	if (r < 0 || dry_run)
		return r;

	/* Nobody else has the store open, so no lock file can be in use or about to be. */
	bv_strv_clear(&names);
	r = list_dir(s->locks, &names, err);
	if (r < 0)
		return r;
	bv_strv_foreach (name, &names) {
		if (bv_str_has_suffix(*name, ".lock") && strcmp(*name, GC_LOCK_NAME) != 0 &&
		    strcmp(*name, INDEX_LOCK_NAME) != 0) {
			_cleanup_free_ char *path = bv_path_join(s->locks, *name);
			unlink(path);
		}
	}
	return 0;
}

int bv_store_gc(struct bv_store *s, const char *const *keep_manifest_digests, size_t n_keep,
		bool dry_run, struct bv_strv *removed, int64_t *freed_bytes, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv found = BV_STRV_INIT;
	struct bv_lock lk = BV_LOCK_INIT;
	int64_t freed = 0;
	int r = 0;

	for (size_t i = 0; i < n_keep; i++) {
		r = check_digest(keep_manifest_digests[i], err);
		if (r < 0)
			return r;
	}
	if (!dry_run) {
		if (s->n_ingests)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "cannot collect garbage while blobs are being stored");
		r = users_lock(s, true, err);
		if (r < 0)
			return r;
		r = lock_index(s, &lk, err);
	}
	if (r >= 0)
		r = gc_locked(s, keep_manifest_digests, n_keep, dry_run, &found, &freed, err);
	bv_lock_release(&lk);
	if (!dry_run) {
		/* Back to an ordinary user of the store; waiting cannot deadlock, we were alone. */
		int r2 = users_lock(s, false, r < 0 ? NULL : err);
		if (r >= 0)
			r = r2;
	}
	if (r < 0)
		return r;
	if (removed)
		bv_strv_foreach (p, &found)
			bv_strv_push(removed, *p);
	if (freed_bytes)
		*freed_bytes = freed;
	return 0;
}
