/*
 * The blob store against real files in temporary directories: ingest (verification, resume,
 * limits, a concurrent ingest and a kill -9 in the middle, both in forked children), small
 * blobs, corruption, index.json, verify, gc, scratch cleaning, and a tiny image that skopeo
 * and umoci must be able to read (they are in scripts/deps.sh: missing tools fail the test).
 */
#include <bv/error.h>
#include <bv/store.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/proc.h"
#include "util/strv.h"

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX    "application/vnd.oci.image.index.v1+json"

/* A store in a new temporary directory; *base_out is that directory (drop() it). */
static struct bv_store *new_store(char **base_out)
{
	struct bv_error *err = NULL;
	struct bv_store *s = NULL;
	char *base = test_mkdtemp("store");
	char *dir;
	assert_non_null(base);
	dir = bv_path_join(base, "store");
	assert_ok(bv_store_open(&s, dir, &err), &err);
	assert_non_null(s);
	free(dir);
	*base_out = base;
	return s;
}

static void drop(struct bv_store *s, char *base)
{
	bv_store_free(s);
	assert_int_equal(bv_rm_rf(base, NULL), 0);
	free(base);
}

static char *digest_of(const void *data, size_t len)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	bv_sha256_hex(hex, data, len);
	return bv_xasprintf("sha256:%s", hex);
}

/* Deterministic, non-repeating test data of `len` bytes. */
static char *make_data(size_t len, unsigned seed)
{
	char *p = bv_xmalloc(len);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (char)(x & 0xff);
	}
	return p;
}

static char *store_path(const struct bv_store *s, const char *rel)
{
	return bv_path_join(bv_store_dir(s), rel);
}

static char *partial_path(const struct bv_store *s, const char *digest)
{
	return bv_xasprintf("%s/tmp/%s.partial", bv_store_dir(s), digest + 7);
}

static bool exists_rel(const struct bv_store *s, const char *rel)
{
	char *p = store_path(s, rel);
	bool r = bv_path_exists(p);
	free(p);
	return r;
}

static char *read_file(const char *path)
{
	struct bv_buf b = BV_BUF_INIT;
	struct bv_error *err = NULL;
	assert_ok(bv_buf_read_file(&b, path, 1 << 26, &err), &err);
	return bv_buf_detach(&b, NULL);
}

/* Ingests `data` in chunks of `chunk` bytes and commits. */
static int ingest_all(struct bv_store *s, const char *digest, int64_t expected, const char *data,
		      size_t len, size_t chunk, struct bv_error **err)
{
	struct bv_store_ingest *in = NULL;
	int r = bv_store_ingest_begin(&in, s, digest, expected, err);
	if (r < 0)
		return r;
	for (size_t off = (size_t)bv_store_ingest_offset(in); off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		r = bv_store_ingest_write(in, data + off, n, err);
		if (r < 0) {
			bv_store_ingest_abort(in, false);
			return r;
		}
	}
	return bv_store_ingest_commit(in, err);
}

static void assert_message_contains(struct bv_error *err, const char *needle)
{
	char *msg = bv_error_format(err);
	if (!strstr(msg, needle)) {
		print_error("message '%s' lacks '%s'\n", msg, needle);
		free(msg);
		fail();
	}
	free(msg);
}

/* Sets the mtime of `path` `seconds` into the past. */
static void age(const char *path, time_t seconds)
{
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= seconds;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* ---- names and layout ----------------------------------------------------------------- */

static void test_store__ref_name_rules(void **state)
{
	(void)state;
	assert_true(bv_store_ref_name_valid("quay.io/biocontainers/samtools:1.21--h50ea8bc_0"));
	assert_true(bv_store_ref_name_valid("a"));
	assert_true(bv_store_ref_name_valid("x/y@sha256:00ff"));
	assert_false(bv_store_ref_name_valid(""));
	assert_false(bv_store_ref_name_valid("a//b"));
	assert_false(bv_store_ref_name_valid("a---b"));
	assert_false(bv_store_ref_name_valid("a_.b"));
	assert_false(bv_store_ref_name_valid("-a"));
	assert_false(bv_store_ref_name_valid("a/"));
	assert_false(bv_store_ref_name_valid("a b"));

	static const char *const cases[][2] = {
		{"quay.io/biocontainers/samtools:1.21--h50ea8bc_0",
		 "quay.io/biocontainers/samtools:1.21--h50ea8bc_0"},
		{"/a//b/", "a/b"},
		{"a b%c", "a-b-c"},
		{"a---b", "a--b"},
		{"a_.-b", "a_b"},
		{"..x..", "x"},
		{"", "image"},
		{"/_/", "image"},
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(cases); i++) {
		char *n = bv_store_ref_name(cases[i][0]);
		assert_string_equal(n, cases[i][1]);
		assert_true(bv_store_ref_name_valid(n));
		free(n);
	}
}

static void test_store__open_creates_oci_layout(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_store *s2 = NULL;
	char *base, *text, *dir;
	struct bv_store *s = new_store(&base);
	json_error_t je;
	json_t *doc;

	dir = store_path(s, "oci-layout");
	text = read_file(dir);
	free(dir);
	doc = json_loads(text, 0, &je);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "imageLayoutVersion")), "1.0.0");
	json_decref(doc);
	free(text);

	dir = store_path(s, "index.json");
	text = read_file(dir);
	free(dir);
	doc = json_loads(text, 0, &je);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "schemaVersion")), 2);
	assert_true(json_is_array(json_object_get(doc, "manifests")));
	assert_int_equal(json_array_size(json_object_get(doc, "manifests")), 0);
	json_decref(doc);
	free(text);
	assert_true(exists_rel(s, "blobs/sha256"));
	assert_true(exists_rel(s, "tmp"));
	assert_true(exists_rel(s, "locks"));

	/* The default location is <cache>/store. */
	dir = bv_path_join(base, "cache");
	setenv("BV_CACHE_DIR", dir, 1);
	assert_ok(bv_store_open(&s2, NULL, &err), &err);
	text = bv_path_join(dir, "store");
	assert_string_equal(bv_store_dir(s2), text);
	free(text);
	text = bv_path_join(dir, "store/index.json");
	assert_true(bv_path_exists(text));
	free(text);
	free(dir);
	unsetenv("BV_CACHE_DIR");
	bv_store_free(s2);
	drop(s, base);
}

/* ---- ingest --------------------------------------------------------------------------- */

static void test_store__ingest_publishes_read_only_blob(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	size_t len = 300 * 1000; /* several hash buffers, not a multiple of any chunk */
	char *data = make_data(len, 1);
	char *digest = digest_of(data, len);
	char *path = bv_store_blob_path(s, digest);
	char *partial = partial_path(s, digest);
	struct bv_buf got = BV_BUF_INIT;
	struct stat st;

	assert_false(bv_store_has_blob(s, digest));
	assert_ok(ingest_all(s, digest, (int64_t)len, data, len, 7001, &err), &err);
	assert_true(bv_store_has_blob(s, digest));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(st.st_size, len);
	assert_ok(bv_buf_read_file(&got, path, len + 1, &err), &err);
	assert_int_equal(got.len, len);
	assert_memory_equal(got.buf, data, len);
	assert_false(bv_path_exists(partial));

	/* Unknown size works too. */
	bv_buf_release(&got);
	free(data);
	free(digest);
	data = make_data(1000, 2);
	digest = digest_of(data, 1000);
	assert_ok(ingest_all(s, digest, -1, data, 1000, 333, &err), &err);
	assert_true(bv_store_has_blob(s, digest));
	free(data);
	free(digest);
	free(path);
	free(partial);
	drop(s, base);
}

static void test_store__ingest_rejects_wrong_digest_and_size(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	char *data = make_data(5000, 3);
	char *digest = digest_of(data, 5000);
	char *partial = partial_path(s, digest);
	char *short_digest;

	/* One flipped byte: the digest does not match. */
	data[100] ^= 1;
	assert_int_equal(ingest_all(s, digest, 5000, data, 5000, 1024, &err), BV_EINVALID);
	assert_message_contains(err, "failed verification");
	short_digest = bv_xasprintf("blob '%.19s'", digest);
	assert_message_contains(err, short_digest);
	assert_message_contains(err, digest);
	free(short_digest);
	bv_error_free(err);
	err = NULL;
	assert_false(bv_store_has_blob(s, digest));
	assert_false(bv_path_exists(partial));

	/* The right bytes, but fewer than announced. */
	data[100] ^= 1;
	assert_int_equal(ingest_all(s, digest, 5000, data, 4000, 1024, &err), BV_EINVALID);
	assert_message_contains(err, "expected 5000 bytes, got 4000");
	bv_error_free(err);
	err = NULL;
	assert_false(bv_store_has_blob(s, digest));
	assert_false(bv_path_exists(partial));

	/* The right bytes, announced with the wrong size: the blob is not its claimed size. */
	assert_int_equal(ingest_all(s, digest, 4999, data, 5000, 5000, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_false(bv_store_has_blob(s, digest));

	/* And the same bytes properly announced go through: nothing was left behind. */
	assert_ok(ingest_all(s, digest, 5000, data, 5000, 999, &err), &err);
	assert_true(bv_store_has_blob(s, digest));
	free(data);
	free(digest);
	free(partial);
	drop(s, base);
}

static void test_store__ingest_rejects_excess_bytes(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_store_ingest *in = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	char *data = make_data(100, 4);
	char *digest = digest_of(data, 100);
	char *partial = partial_path(s, digest);
	struct stat st;

	assert_ok(bv_store_ingest_begin(&in, s, digest, 100, &err), &err);
	assert_ok(bv_store_ingest_write(in, data, 60, &err), &err);
	assert_int_equal(bv_store_ingest_write(in, data + 60, 41, &err), BV_EINVALID);
	assert_message_contains(err, "larger than the expected 100 bytes");
	bv_error_free(err);
	err = NULL;
	/* Nothing of the rejected chunk was written. */
	assert_int_equal(bv_store_ingest_offset(in), 60);
	assert_int_equal(stat(partial, &st), 0);
	assert_int_equal(st.st_size, 60);
	assert_ok(bv_store_ingest_write(in, data + 60, 40, &err), &err);
	assert_ok(bv_store_ingest_commit(in, &err), &err);
	assert_true(bv_store_has_blob(s, digest));
	free(data);
	free(digest);
	free(partial);
	drop(s, base);
}

static void test_store__ingest_resumes_and_resets(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_store_ingest *in = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	size_t len = 200 * 1000, half = len / 2;
	char *data = make_data(len, 5);
	char *digest = digest_of(data, len);
	char *partial = partial_path(s, digest);
	struct bv_buf got = BV_BUF_INIT;

	assert_ok(bv_store_ingest_begin(&in, s, digest, (int64_t)len, &err), &err);
	assert_int_equal(bv_store_ingest_offset(in), 0);
	assert_ok(bv_store_ingest_write(in, data, half, &err), &err);
	bv_store_ingest_abort(in, true);
	in = NULL;
	assert_true(bv_path_exists(partial));
	assert_false(bv_store_has_blob(s, digest));

	assert_ok(bv_store_ingest_begin(&in, s, digest, (int64_t)len, &err), &err);
	assert_int_equal(bv_store_ingest_offset(in), half);
	assert_ok(bv_store_ingest_write(in, data + half, len - half, &err), &err);
	assert_ok(bv_store_ingest_commit(in, &err), &err);
	assert_ok(bv_store_read_blob(&got, s, digest, len, &err), &err);
	assert_memory_equal(got.buf, data, len);
	bv_buf_release(&got);

	/* A server that ignores Range sends everything again: reset and start over. */
	free(data);
	free(digest);
	free(partial);
	data = make_data(len, 6);
	digest = digest_of(data, len);
	partial = partial_path(s, digest);
	in = NULL;
	assert_ok(bv_store_ingest_begin(&in, s, digest, (int64_t)len, &err), &err);
	assert_ok(bv_store_ingest_write(in, data, half, &err), &err);
	bv_store_ingest_abort(in, true);
	in = NULL;
	assert_ok(bv_store_ingest_begin(&in, s, digest, (int64_t)len, &err), &err);
	assert_int_equal(bv_store_ingest_offset(in), half);
	assert_ok(bv_store_ingest_reset(in, &err), &err);
	assert_int_equal(bv_store_ingest_offset(in), 0);
	assert_ok(bv_store_ingest_write(in, data, len, &err), &err);
	assert_ok(bv_store_ingest_commit(in, &err), &err);
	assert_true(bv_store_has_blob(s, digest));

	/* abort without keeping deletes the partial. */
	free(data);
	free(digest);
	free(partial);
	data = make_data(10, 7);
	digest = digest_of(data, 10);
	partial = partial_path(s, digest);
	in = NULL;
	assert_ok(bv_store_ingest_begin(&in, s, digest, 10, &err), &err);
	assert_ok(bv_store_ingest_write(in, data, 5, &err), &err);
	bv_store_ingest_abort(in, false);
	assert_false(bv_path_exists(partial));
	free(data);
	free(digest);
	free(partial);
	drop(s, base);
}

/* A pipe for a child to say "ready" (a byte) once it is where the parent wants it. */
static void wait_ready(int fd)
{
	char c;
	ssize_t n;
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	assert_int_equal(n, 1);
}

static void test_store__concurrent_ingest_gets_eexists(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_store_ingest *in = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	char *data = make_data(1000, 8);
	char *digest = digest_of(data, 1000);
	int ready[2], go[2], status;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		struct bv_store_ingest *child = NULL;
		if (bv_store_ingest_begin(&child, s, digest, 1000, NULL) < 0 ||
		    bv_store_ingest_write(child, data, 10, NULL) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		bv_store_ingest_abort(child, true);
		_exit(0);
	}
	wait_ready(ready[0]);
	assert_int_equal(bv_store_ingest_begin(&in, s, digest, 1000, &err), BV_EEXISTS);
	assert_null(in);
	assert_message_contains(err, "another bv process");
	bv_error_free(err);
	err = NULL;
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Once the child is done the lock is free, and its 10 bytes are resumed. */
	assert_ok(bv_store_ingest_begin(&in, s, digest, 1000, &err), &err);
	assert_int_equal(bv_store_ingest_offset(in), 10);
	assert_ok(bv_store_ingest_write(in, data + 10, 990, &err), &err);
	assert_ok(bv_store_ingest_commit(in, &err), &err);
	assert_true(bv_store_has_blob(s, digest));
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	free(data);
	free(digest);
	drop(s, base);
}

static void test_store__kill_9_mid_write_leaves_no_blob(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	size_t len = 1 << 20;
	char *data = make_data(len, 9);
	char *digest = digest_of(data, len);
	char *partial = partial_path(s, digest);
	int ready[2], status;
	struct stat st;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct bv_store_ingest *child = NULL;
		if (bv_store_ingest_begin(&child, s, digest, (int64_t)len, NULL) < 0 ||
		    bv_store_ingest_write(child, data, len / 3, NULL) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		/* Keeps writing, slowly, and never reaches the end: the kill lands mid-blob. */
		for (size_t off = len / 3; off + 4096 < len; off += 4096) {
			if (bv_store_ingest_write(child, data + off, 4096, NULL) < 0)
				_exit(3);
			usleep(1000);
		}
		for (;;)
			pause();
	}
	wait_ready(ready[0]);
	usleep(5000);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	assert_false(bv_store_has_blob(s, digest));
	assert_int_equal(stat(partial, &st), 0);
	assert_true(st.st_size >= (off_t)(len / 3) && st.st_size < (off_t)len);
	/* The dead child's lock is gone with it; the next ingest resumes and verifies. */
	assert_ok(ingest_all(s, digest, (int64_t)len, data, len, 65536, &err), &err);
	assert_true(bv_store_has_blob(s, digest));
	assert_false(bv_path_exists(partial));
	close(ready[0]);
	close(ready[1]);
	free(data);
	free(digest);
	free(partial);
	drop(s, base);
}

/* ---- small blobs ---------------------------------------------------------------------- */

static void test_store__put_and_read_blob(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	const char *text = "{\"schemaVersion\":2}";
	char *want = digest_of(text, strlen(text));
	char *got = NULL, *other, *path;
	struct bv_buf b = BV_BUF_INIT;
	struct stat st;

	assert_ok(bv_store_put_blob(&got, s, text, strlen(text), NULL, &err), &err);
	assert_string_equal(got, want);
	free(got);
	got = NULL;
	/* Again, with the digest given: already there, fine. */
	assert_ok(bv_store_put_blob(&got, s, text, strlen(text), want, &err), &err);
	assert_string_equal(got, want);
	path = bv_store_blob_path(s, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0444);

	assert_ok(bv_store_read_blob(&b, s, want, 1024, &err), &err);
	assert_int_equal(b.len, strlen(text));
	assert_memory_equal(b.buf, text, b.len);
	bv_buf_release(&b);

	/* Too large for the caller's limit. */
	assert_int_equal(bv_store_read_blob(&b, s, want, 5, &err), BV_ERR);
	assert_int_equal(bv_error_errno(err), EFBIG);
	assert_int_equal(b.len, 0);
	bv_error_free(err);
	err = NULL;

	/* Data that does not hash to the expected digest is not stored. */
	other = digest_of("other", 5);
	assert_int_equal(bv_store_put_blob(NULL, s, "different", 9, other, &err), BV_EINVALID);
	assert_message_contains(err, "failed verification");
	bv_error_free(err);
	err = NULL;
	assert_false(bv_store_has_blob(s, other));
	assert_int_equal(bv_store_read_blob(&b, s, other, 1024, &err), BV_ENOTFOUND);
	bv_error_free(err);
	free(other);
	free(got);
	free(want);
	free(path);
	drop(s, base);
}

static void test_store__read_detects_corruption(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	char *data = make_data(4096, 10);
	char *digest = NULL, *path;
	struct bv_buf b = BV_BUF_INIT;
	int fd;

	assert_ok(bv_store_put_blob(&digest, s, data, 4096, NULL, &err), &err);
	path = bv_store_blob_path(s, digest);
	assert_int_equal(chmod(path, 0644), 0);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	data[2000] ^= 0x40;
	assert_int_equal(pwrite(fd, data + 2000, 1, 2000), 1);
	close(fd);

	assert_int_equal(bv_store_read_blob(&b, s, digest, 1 << 20, &err), BV_EINVALID);
	assert_message_contains(err, digest);
	assert_message_contains(err, "corrupt");
	assert_int_equal(b.len, 0);
	bv_error_free(err);
	free(digest);
	free(path);
	free(data);
	drop(s, base);
}

static void test_store__bad_digests_rejected(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_store_ingest *in = NULL;
	struct bv_buf b = BV_BUF_INIT;
	char *base;
	struct bv_store *s = new_store(&base);
	static const char *const bad[] = {
		"sha256:../../../../etc/passwd",
		"sha256:0123",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/",
		"",
	};
	for (size_t i = 0; i < BV_ARRAY_SIZE(bad); i++) {
		const char *keep[] = {bad[i]};
		assert_false(bv_store_has_blob(s, bad[i]));
		assert_null(bv_store_blob_path(s, bad[i]));
		assert_int_equal(bv_store_ingest_begin(&in, s, bad[i], 1, &err), BV_EINVALID);
		assert_null(in);
		assert_message_contains(err, "invalid digest");
		bv_error_free(err);
		err = NULL;
		assert_int_equal(bv_store_put_blob(NULL, s, "", 0, bad[i], &err), BV_EINVALID);
		bv_error_free(err);
		err = NULL;
		assert_int_equal(bv_store_read_blob(&b, s, bad[i], 10, &err), BV_EINVALID);
		bv_error_free(err);
		err = NULL;
		assert_int_equal(bv_store_add_image(s, "x", bad[i], OCI_MANIFEST, 0, &err),
				 BV_EINVALID);
		bv_error_free(err);
		err = NULL;
		assert_int_equal(bv_store_gc(s, keep, 1, true, NULL, NULL, &err), BV_EINVALID);
		bv_error_free(err);
		err = NULL;
	}
	/* Nothing escaped the store. */
	assert_false(bv_path_exists("/etc/passwd.partial"));
	drop(s, base);
}

/* ---- images --------------------------------------------------------------------------- */

/* Puts a config, `n_layers` small layers and a manifest; returns the manifest digest. */
static char *put_image(struct bv_store *s, unsigned seed, size_t n_layers, char **layers_out,
		       int64_t *size_out)
{
	struct bv_error *err = NULL;
	struct bv_buf m = BV_BUF_INIT;
	char *config =
		bv_xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":%u}", seed);
	char *cdigest = NULL, *mdigest = NULL;
	assert_ok(bv_store_put_blob(&cdigest, s, config, strlen(config), NULL, &err), &err);
	bv_buf_printf(&m,
		      "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
		      "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		      "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
		      cdigest, strlen(config));
	for (size_t i = 0; i < n_layers; i++) {
		char *layer = bv_xasprintf("layer %u.%zu", seed, i);
		char *ld = NULL;
		assert_ok(bv_store_put_blob(&ld, s, layer, strlen(layer), NULL, &err), &err);
		bv_buf_printf(&m,
			      "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
			      "\"digest\":\"%s\",\"size\":%zu}",
			      i ? "," : "", ld, strlen(layer));
		if (layers_out)
			layers_out[i] = ld;
		else
			free(ld);
		free(layer);
	}
	bv_buf_puts(&m, "]}");
	assert_ok(bv_store_put_blob(&mdigest, s, m.buf, m.len, NULL, &err), &err);
	*size_out = (int64_t)m.len;
	bv_buf_release(&m);
	free(config);
	free(cdigest);
	return mdigest;
}

static json_t *load_index(const struct bv_store *s)
{
	char *path = store_path(s, "index.json");
	char *text = read_file(path);
	json_error_t je;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		print_error("index.json: %d:%d: %s\n", je.line, je.column, je.text);
	assert_non_null(doc);
	free(text);
	free(path);
	return doc;
}

static ino_t index_inode(const struct bv_store *s)
{
	char *path = store_path(s, "index.json");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	free(path);
	return st.st_ino;
}

static void test_store__add_list_remove_images(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_store_image *imgs = NULL;
	size_t n = 0;
	char *base;
	struct bv_store *s = new_store(&base);
	int64_t size1, size2;
	char *m1 = put_image(s, 1, 2, NULL, &size1);
	char *m2 = put_image(s, 2, 1, NULL, &size2);
	const char *name = "quay.io/biocontainers/samtools:1.21--h50ea8bc_0";
	char *absent = digest_of("absent", 6);
	json_t *doc, *d;
	ino_t ino;

	assert_ok(bv_store_add_image(s, name, m1, OCI_MANIFEST, size1, &err), &err);
	ino = index_inode(s);
	/* The same again changes nothing, not even the file. */
	assert_ok(bv_store_add_image(s, name, m1, OCI_MANIFEST, size1, &err), &err);
	assert_int_equal(index_inode(s), ino);
	assert_ok(bv_store_add_image(s, "other/tool:2", m2, OCI_MANIFEST, size2, &err), &err);

	doc = load_index(s);
	assert_int_equal(json_array_size(json_object_get(doc, "manifests")), 2);
	d = json_array_get(json_object_get(doc, "manifests"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "digest")), m1);
	assert_int_equal(json_integer_value(json_object_get(d, "size")), size1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(d, "annotations"),
							      BV_STORE_REF_NAME_ANNOTATION)),
			    name);
	assert_string_equal(json_string_value(json_object_get(json_object_get(d, "annotations"),
							      BV_STORE_DIGEST_ANNOTATION)),
			    m1);
	json_decref(doc);

	/* Same name, new manifest: replaced in place, not added. */
	assert_ok(bv_store_add_image(s, name, m2, OCI_MANIFEST, size2, &err), &err);
	assert_ok(bv_store_list_images(&imgs, &n, s, &err), &err);
	assert_int_equal(n, 2);
	assert_string_equal(imgs[0].ref_name, name);
	assert_string_equal(imgs[0].digest, m2);
	assert_string_equal(imgs[0].media_type, OCI_MANIFEST);
	assert_int_equal(imgs[0].size, size2);
	assert_string_equal(imgs[1].ref_name, "other/tool:2");
	bv_store_images_free(imgs, n);

	/* Refusals: missing manifest, wrong size, bad name, unknown media type. */
	assert_int_equal(bv_store_add_image(s, "x", absent, OCI_MANIFEST, 1, &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_store_add_image(s, "x", m1, OCI_MANIFEST, size1 + 1, &err),
			 BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_store_add_image(s, "bad name", m1, OCI_MANIFEST, size1, &err),
			 BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	assert_int_equal(bv_store_add_image(s, "x", m1, "text/plain", size1, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;

	assert_ok(bv_store_remove_image(s, name, &err), &err);
	assert_int_equal(bv_store_remove_image(s, name, &err), BV_ENOTFOUND);
	bv_error_free(err);
	err = NULL;
	assert_ok(bv_store_list_images(&imgs, &n, s, &err), &err);
	assert_int_equal(n, 1);
	assert_string_equal(imgs[0].ref_name, "other/tool:2");
	bv_store_images_free(imgs, n);
	doc = load_index(s); /* still valid JSON */
	assert_int_equal(json_array_size(json_object_get(doc, "manifests")), 1);
	json_decref(doc);
	assert_ok(bv_store_remove_image(s, "other/tool:2", &err), &err);
	assert_ok(bv_store_list_images(&imgs, &n, s, &err), &err);
	assert_int_equal(n, 0);
	assert_null(imgs);
	free(absent);
	free(m1);
	free(m2);
	drop(s, base);
}

static void test_store__verify_reports_problems(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_strv problems = BV_STRV_INIT;
	char *base;
	struct bv_store *s = new_store(&base);
	char *layers[2];
	int64_t size;
	char *m = put_image(s, 3, 2, layers, &size);
	char *p0 = bv_store_blob_path(s, layers[0]);
	char *p1 = bv_store_blob_path(s, layers[1]);
	char *line;
	int fd;

	assert_ok(bv_store_add_image(s, "t:1", m, OCI_MANIFEST, size, &err), &err);
	assert_ok(bv_store_verify(s, &problems, &err), &err);
	assert_int_equal(problems.n, 0);

	/* Corrupt layer 0, delete layer 1. */
	assert_int_equal(chmod(p0, 0644), 0);
	fd = open(p0, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "!", 1), 1);
	close(fd);
	assert_int_equal(unlink(p1), 0);

	assert_ok(bv_store_verify(s, &problems, &err), &err);
	assert_int_equal(problems.n, 2);
	line = bv_xasprintf("blob %s is corrupt", layers[0]);
	assert_true(bv_strv_contains(&problems, line));
	free(line);
	line = bv_xasprintf("image t:1: layer %s is missing", layers[1]);
	assert_true(bv_strv_contains(&problems, line));
	free(line);

	/* A missing manifest is reported for its image. */
	bv_strv_clear(&problems);
	line = bv_store_blob_path(s, m);
	assert_int_equal(unlink(line), 0);
	free(line);
	assert_ok(bv_store_verify(s, &problems, &err), &err);
	line = bv_xasprintf("image t:1: manifest %s is missing", m);
	assert_true(bv_strv_contains(&problems, line));
	free(line);
	bv_strv_clear(&problems);
	free(layers[0]);
	free(layers[1]);
	free(p0);
	free(p1);
	free(m);
	drop(s, base);
}

static void test_store__verify_follows_index_children(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_strv problems = BV_STRV_INIT;
	char *base;
	struct bv_store *s = new_store(&base);
	char *layers[1];
	int64_t size;
	char *m = put_image(s, 4, 1, layers, &size);
	char *absent = digest_of("other platform", 14);
	char *idx_text =
		bv_xasprintf("{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\","
			     "\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
			     "\",\"digest\":\"%s\",\"size\":%lld},"
			     "{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":10}]}",
			     m, (long long)size, absent);
	char *idx = NULL, *line, *p;

	assert_ok(bv_store_put_blob(&idx, s, idx_text, strlen(idx_text), NULL, &err), &err);
	assert_ok(bv_store_add_image(s, "multi:1", idx, OCI_INDEX, (int64_t)strlen(idx_text), &err),
		  &err);
	/* The absent other platform is not a problem. */
	assert_ok(bv_store_verify(s, &problems, &err), &err);
	assert_int_equal(problems.n, 0);
	/* A missing layer of the present child is. */
	p = bv_store_blob_path(s, layers[0]);
	assert_int_equal(unlink(p), 0);
	free(p);
	assert_ok(bv_store_verify(s, &problems, &err), &err);
	line = bv_xasprintf("image multi:1: layer %s is missing", layers[0]);
	assert_true(bv_strv_contains(&problems, line));
	free(line);
	bv_strv_clear(&problems);
	free(layers[0]);
	free(idx);
	free(idx_text);
	free(absent);
	free(m);
	drop(s, base);
}

/* ---- gc and scratch ------------------------------------------------------------------- */

static void test_store__gc_removes_only_unreachable(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_strv removed = BV_STRV_INIT;
	struct bv_strv problems = BV_STRV_INIT;
	char *base;
	struct bv_store *s = new_store(&base);
	char *l1[2], *l2[2];
	int64_t size1, size2, freed = -1, bytes_before, bytes_after, expect_freed = 0;
	size_t blobs_before, blobs_after;
	char *m1 = put_image(s, 5, 2, l1, &size1);
	char *m2 = put_image(s, 6, 2, l2, &size2);
	char *stray = NULL;
	const char *keep[1];
	struct bv_store_image *imgs = NULL;
	size_t n;

	assert_ok(bv_store_put_blob(&stray, s, "stray", 5, NULL, &err), &err);
	assert_ok(bv_store_add_image(s, "keep:1", m1, OCI_MANIFEST, size1, &err), &err);
	assert_ok(bv_store_add_image(s, "drop:1", m2, OCI_MANIFEST, size2, &err), &err);
	assert_ok(bv_store_usage(&bytes_before, &blobs_before, s, &err), &err);
	assert_int_equal(blobs_before, 9); /* 2 x (config + 2 layers + manifest) + stray */

	keep[0] = m1;
	/* Dry run: reports m2, its config and layers and the stray blob, deletes nothing. */
	assert_ok(bv_store_gc(s, keep, 1, true, &removed, &freed, &err), &err);
	assert_int_equal(removed.n, 5);
	assert_true(bv_strv_contains(&removed, m2));
	assert_true(bv_strv_contains(&removed, l2[0]));
	assert_true(bv_strv_contains(&removed, l2[1]));
	assert_true(bv_strv_contains(&removed, stray));
	assert_false(bv_strv_contains(&removed, m1));
	assert_false(bv_strv_contains(&removed, l1[0]));
	assert_ok(bv_store_usage(&bytes_after, &blobs_after, s, &err), &err);
	assert_int_equal(blobs_after, blobs_before);
	assert_true(bv_store_has_blob(s, m2));
	assert_ok(bv_store_list_images(&imgs, &n, s, &err), &err);
	assert_int_equal(n, 2);
	bv_store_images_free(imgs, n);
	bv_strv_foreach (d, &removed) {
		char *p = bv_store_blob_path(s, *d);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		expect_freed += st.st_size;
		free(p);
	}
	assert_int_equal(freed, expect_freed);
	bv_strv_clear(&removed);

	/* For real. */
	assert_ok(bv_store_gc(s, keep, 1, false, &removed, &freed, &err), &err);
	assert_int_equal(removed.n, 5);
	assert_int_equal(freed, expect_freed);
	assert_false(bv_store_has_blob(s, m2));
	assert_false(bv_store_has_blob(s, l2[0]));
	assert_false(bv_store_has_blob(s, stray));
	assert_true(bv_store_has_blob(s, m1));
	assert_true(bv_store_has_blob(s, l1[0]));
	assert_true(bv_store_has_blob(s, l1[1]));
	assert_ok(bv_store_usage(&bytes_after, &blobs_after, s, &err), &err);
	assert_int_equal(blobs_after, 4);
	assert_int_equal(bytes_after, bytes_before - expect_freed);
	/* The dropped image left index.json too, so the store verifies clean. */
	assert_ok(bv_store_list_images(&imgs, &n, s, &err), &err);
	assert_int_equal(n, 1);
	assert_string_equal(imgs[0].ref_name, "keep:1");
	bv_store_images_free(imgs, n);
	assert_ok(bv_store_verify(s, &problems, &err), &err);
	assert_int_equal(problems.n, 0);

	/* Keeping nothing empties the store. */
	bv_strv_clear(&removed);
	assert_ok(bv_store_gc(s, NULL, 0, false, &removed, NULL, &err), &err);
	assert_int_equal(removed.n, 4);
	assert_ok(bv_store_usage(&bytes_after, &blobs_after, s, &err), &err);
	assert_int_equal(blobs_after, 0);
	assert_int_equal(bytes_after, 0);
	bv_strv_clear(&removed);
	for (size_t i = 0; i < 2; i++) {
		free(l1[i]);
		free(l2[i]);
	}
	free(m1);
	free(m2);
	free(stray);
	drop(s, base);
}

static void test_store__gc_needs_the_store_to_itself(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_strv removed = BV_STRV_INIT;
	char *base;
	struct bv_store *s = new_store(&base);
	char *dir = bv_xstrdup(bv_store_dir(s));
	char *stray = NULL;
	int ready[2], go[2], status;
	pid_t pid;

	assert_ok(bv_store_put_blob(&stray, s, "stray", 5, NULL, &err), &err);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Another bv process with the store open, holding nothing else. */
		struct bv_store *other = NULL;
		char c;
		bv_store_free(s);
		if (bv_store_open(&other, dir, NULL) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		bv_store_free(other);
		_exit(0);
	}
	wait_ready(ready[0]);
	assert_int_equal(bv_store_gc(s, NULL, 0, false, &removed, NULL, &err), BV_EEXISTS);
	assert_message_contains(err, "in use by another bv process");
	bv_error_free(err);
	err = NULL;
	assert_int_equal(removed.n, 0);
	assert_true(bv_store_has_blob(s, stray));
	/* A dry run only reads, so it works meanwhile. */
	assert_ok(bv_store_gc(s, NULL, 0, true, &removed, NULL, &err), &err);
	assert_true(bv_strv_contains(&removed, stray));
	bv_strv_clear(&removed);

	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_ok(bv_store_gc(s, NULL, 0, false, &removed, NULL, &err), &err);
	assert_true(bv_strv_contains(&removed, stray));
	assert_false(bv_store_has_blob(s, stray));
	/* Our handle is an ordinary user again: a second gc still works. */
	assert_ok(bv_store_gc(s, NULL, 0, false, NULL, NULL, &err), &err);
	bv_strv_clear(&removed);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	free(stray);
	free(dir);
	drop(s, base);
}

/* A partial of `len` bytes of blob `seed`, left by an aborted ingest; returns its digest. */
static char *leave_partial(struct bv_store *s, unsigned seed, size_t len)
{
	struct bv_error *err = NULL;
	struct bv_store_ingest *in = NULL;
	char *data = make_data(2 * len, seed);
	char *digest = digest_of(data, 2 * len);
	assert_ok(bv_store_ingest_begin(&in, s, digest, (int64_t)(2 * len), &err), &err);
	assert_ok(bv_store_ingest_write(in, data, len, &err), &err);
	bv_store_ingest_abort(in, true);
	free(data);
	return digest;
}

static void test_store__clean_tmp_keeps_young_and_held_partials(void **state)
{
	(void)state;
	struct bv_error *err = NULL;
	struct bv_strv removed = BV_STRV_INIT;
	struct bv_store_ingest *held = NULL;
	char *base;
	struct bv_store *s = new_store(&base);
	char *old = leave_partial(s, 11, 100);
	char *young = leave_partial(s, 12, 100);
	char *busy = leave_partial(s, 13, 100);
	char *old_p = partial_path(s, old), *young_p = partial_path(s, young);
	char *busy_p = partial_path(s, busy);
	char *old_tmp = store_path(s, "tmp/put-0123.abcdef");
	char *young_tmp = store_path(s, "tmp/put-4567.abcdef");
	char *index_tmp = store_path(s, ".index.json.Xy12ab");
	char *line;

	assert_ok(bv_write_file_atomic(old_tmp, "x", 1, 0444, &err), &err);
	assert_ok(bv_write_file_atomic(young_tmp, "y", 1, 0444, &err), &err);
	assert_ok(bv_write_file_atomic(index_tmp, "{", 1, 0644, &err), &err);
	age(old_p, 2 * BV_STORE_STALE_SECONDS);
	age(busy_p, 2 * BV_STORE_STALE_SECONDS);
	age(old_tmp, BV_STORE_STALE_SECONDS + 10);
	age(index_tmp, BV_STORE_STALE_SECONDS + 10);
	/* Old, but an ingest is writing it right now. */
	assert_ok(bv_store_ingest_begin(&held, s, busy, 200, &err), &err);
	age(busy_p, 2 * BV_STORE_STALE_SECONDS);

	assert_ok(bv_store_clean_tmp(s, &removed, &err), &err);
	assert_int_equal(removed.n, 3);
	line = bv_xasprintf("tmp/%s.partial", old + 7);
	assert_true(bv_strv_contains(&removed, line));
	free(line);
	assert_true(bv_strv_contains(&removed, "tmp/put-0123.abcdef"));
	assert_true(bv_strv_contains(&removed, ".index.json.Xy12ab"));
	assert_false(bv_path_exists(old_p));
	assert_false(bv_path_exists(old_tmp));
	assert_false(bv_path_exists(index_tmp));
	assert_true(bv_path_exists(young_p));
	assert_true(bv_path_exists(busy_p));
	assert_true(bv_path_exists(young_tmp));
	bv_strv_clear(&removed);

	/* gc refuses to run under this handle's own ingest ... */
	assert_int_equal(bv_store_gc(s, NULL, 0, false, NULL, NULL, &err), BV_EINVALID);
	bv_error_free(err);
	err = NULL;
	bv_store_ingest_abort(held, true);

	/* ... and afterwards, alone, drops every temporary but keeps young partials to resume. */
	assert_ok(bv_store_gc(s, NULL, 0, false, &removed, NULL, &err), &err);
	assert_true(bv_strv_contains(&removed, "tmp/put-4567.abcdef"));
	line = bv_xasprintf("tmp/%s.partial", busy + 7);
	assert_true(bv_strv_contains(&removed, line));
	free(line);
	assert_false(bv_path_exists(young_tmp));
	assert_false(bv_path_exists(busy_p));
	assert_true(bv_path_exists(young_p));
	/* Per-blob lock files go too; the store's own locks stay. */
	line = bv_xasprintf("locks/%s.lock", young + 7);
	assert_false(exists_rel(s, line));
	free(line);
	assert_true(exists_rel(s, "locks/gc.lock"));
	assert_true(exists_rel(s, "locks/index.lock"));
	/* The young partial still resumes. */
	assert_ok(bv_store_ingest_begin(&held, s, young, 200, &err), &err);
	assert_int_equal(bv_store_ingest_offset(held), 100);
	bv_store_ingest_abort(held, false);
	bv_strv_clear(&removed);
	free(old);
	free(young);
	free(busy);
	free(old_p);
	free(young_p);
	free(busy_p);
	free(old_tmp);
	free(young_tmp);
	free(index_tmp);
	drop(s, base);
}

/* ---- the OCI tools -------------------------------------------------------------------- */

static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = bv_xstrdup(path && *path ? path : "/usr/bin:/bin");
	char *result = NULL;
	for (char *dir = copy, *next; dir && !result; dir = next) {
		char *candidate;
		next = strchr(dir, ':');
		if (next)
			*next++ = '\0';
		candidate = bv_path_join(*dir ? dir : ".", name);
		if (access(candidate, X_OK) == 0)
			result = candidate;
		else
			free(candidate);
	}
	free(copy);
	return result;
}

static void run(struct bv_buf *out, const char *arg0, ...)
{
	struct bv_error *err = NULL;
	struct bv_proc p = BV_PROC_INIT;
	va_list ap;
	int status = -1;
	bv_strv_push(&p.args, arg0);
	va_start(ap, arg0);
	for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
		bv_strv_push(&p.args, a);
	va_end(ap);
	p.no_stdin = true;
	if (out) {
		assert_ok(bv_proc_capture(out, &status, &p, 1 << 24, &err), &err);
	} else {
		p.out = STDERR_FILENO; /* stdout is cmocka's TAP stream */
		assert_ok(bv_proc_run(&status, &p, &err), &err);
	}
	if (status != 0) {
		print_error("'%s ...' exited with status %d\n", arg0, status);
		bv_proc_clear(&p);
		fail();
	}
	bv_proc_clear(&p);
}

static void test_store__skopeo_and_umoci_read_the_store(void **state)
{
	(void)state;
	static const char *const tools[] = {"skopeo", "umoci", "tar", "gzip"};
	struct bv_error *err = NULL;
	struct bv_store_ingest *in = NULL;
	struct bv_buf tar = BV_BUF_INIT, gz = BV_BUF_INIT, m = BV_BUF_INIT, out = BV_BUF_INIT;
	const char *name = "quay.io/biocontainers/samtools:1.21--h50ea8bc_0";
	char *base;
	struct bv_store *s = new_store(&base);
	char *rootfs = bv_path_join(base, "rootfs");
	char *hello = bv_path_join(rootfs, "hello.txt");
	char *tar_path = bv_path_join(base, "layer.tar");
	char *bundle = bv_path_join(base, "bundle");
	char *unpacked = bv_path_join(bundle, "rootfs/hello.txt");
	char *diff_id, *layer, *config, *cdigest = NULL, *mdigest = NULL, *arg, *text;

	for (size_t i = 0; i < BV_ARRAY_SIZE(tools); i++) {
		char *found = find_program(tools[i]);
		if (!found) {
			print_error(
				"'%s' is not installed: run scripts/deps.sh (it installs skopeo "
				"and umoci); this test needs the real OCI tools\n",
				tools[i]);
			fail();
		}
		free(found);
	}

	assert_ok(bv_mkdir_p(rootfs, 0755, &err), &err);
	assert_ok(bv_write_file_atomic(hello, "hello from bv\n", 14, 0644, &err), &err);
	run(NULL, "tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C", rootfs,
	    "-cf", tar_path, ".", NULL);
	assert_ok(bv_buf_read_file(&tar, tar_path, 1 << 24, &err), &err);
	diff_id = digest_of(tar.buf, tar.len);
	run(&gz, "gzip", "-n", "-c", tar_path, NULL);
	layer = digest_of(gz.buf, gz.len);

	/* The layer goes through the streaming path, in small chunks. */
	assert_ok(bv_store_ingest_begin(&in, s, layer, (int64_t)gz.len, &err), &err);
	for (size_t off = 0; off < gz.len; off += 100)
		assert_ok(bv_store_ingest_write(in, gz.buf + off,
						gz.len - off < 100 ? gz.len - off : 100, &err),
			  &err);
	assert_ok(bv_store_ingest_commit(in, &err), &err);

	config = bv_xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
			      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
			      diff_id);
	assert_ok(bv_store_put_blob(&cdigest, s, config, strlen(config), NULL, &err), &err);
	bv_buf_printf(&m,
		      "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\","
		      "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		      "\"digest\":\"%s\",\"size\":%zu},"
		      "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
		      "\"digest\":\"%s\",\"size\":%zu}]}",
		      cdigest, strlen(config), layer, gz.len);
	assert_ok(bv_store_put_blob(&mdigest, s, m.buf, m.len, NULL, &err), &err);
	assert_ok(bv_store_add_image(s, name, mdigest, OCI_MANIFEST, (int64_t)m.len, &err), &err);

	arg = bv_xasprintf("oci:%s:%s", bv_store_dir(s), name);
	run(&out, "skopeo", "inspect", arg, NULL);
	free(arg);
	if (!strstr(out.buf, mdigest)) {
		print_error("skopeo inspect does not show %s:\n%s\n", mdigest, out.buf);
		fail();
	}

	arg = bv_xasprintf("%s:%s", bv_store_dir(s), name);
	run(NULL, "umoci", "unpack", "--rootless", "--image", arg, bundle, NULL);
	free(arg);
	text = read_file(unpacked);
	assert_string_equal(text, "hello from bv\n");
	free(text);

	/* The tools changed nothing bv relies on. */
	{
		struct bv_strv problems = BV_STRV_INIT;
		assert_ok(bv_store_verify(s, &problems, &err), &err);
		if (problems.n)
			print_error("first problem: %s\n", problems.v[0]);
		assert_int_equal(problems.n, 0);
		bv_strv_clear(&problems);
	}
	bv_buf_release(&tar);
	bv_buf_release(&gz);
	bv_buf_release(&m);
	bv_buf_release(&out);
	free(diff_id);
	free(layer);
	free(config);
	free(cdigest);
	free(mdigest);
	free(rootfs);
	free(hello);
	free(tar_path);
	free(bundle);
	free(unpacked);
	drop(s, base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store__ref_name_rules),
		cmocka_unit_test(test_store__open_creates_oci_layout),
		cmocka_unit_test(test_store__ingest_publishes_read_only_blob),
		cmocka_unit_test(test_store__ingest_rejects_wrong_digest_and_size),
		cmocka_unit_test(test_store__ingest_rejects_excess_bytes),
		cmocka_unit_test(test_store__ingest_resumes_and_resets),
		cmocka_unit_test(test_store__concurrent_ingest_gets_eexists),
		cmocka_unit_test(test_store__kill_9_mid_write_leaves_no_blob),
		cmocka_unit_test(test_store__put_and_read_blob),
		cmocka_unit_test(test_store__read_detects_corruption),
		cmocka_unit_test(test_store__bad_digests_rejected),
		cmocka_unit_test(test_store__add_list_remove_images),
		cmocka_unit_test(test_store__verify_reports_problems),
		cmocka_unit_test(test_store__verify_follows_index_children),
		cmocka_unit_test(test_store__gc_removes_only_unreachable),
		cmocka_unit_test(test_store__gc_needs_the_store_to_itself),
		cmocka_unit_test(test_store__clean_tmp_keeps_young_and_held_partials),
		cmocka_unit_test(test_store__skopeo_and_umoci_read_the_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
