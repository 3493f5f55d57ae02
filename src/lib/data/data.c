/*
 * data.c - reference data: fetching datasets into the cache, and the cache's datasets (see
 * include/bv/data.h).
 */
#include <bv/data.h>
#include <bv/error.h>
#include <bv/manifest.h>
#include <bv/paths.h>
#include <bv/toml.h>
#include <bv/unpack.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/data/data-internal.h"
#include "lib/model/index-internal.h"
#include "lib/model/paths-internal.h"
#include "lib/model/resolve-internal.h"
#include "lib/model/schema.h"
#include "lib/model/validate.h"
#include "lib/oci/registry/curl_loader.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/store/unpack-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/log.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define NS_PER_MS 1000000ull
/* No single file of a dataset may be larger: the largest public databases are a few TB. */
#define DATA_FILE_MAX (16ull << 40)
/* A dataset's record; one line per file, so even a million files fit. */
#define RECORD_MAX (256u * 1024 * 1024)
/* curl hands the write callback up to this much at once (CURLOPT_BUFFERSIZE's maximum is
 * 10 MiB); with the write buffer below, one 1 GiB file is a thousand write(2) calls. */
#define CURL_BUFFER    (512 * 1024)
#define WRITE_BUFFER   (1024 * 1024)
#define WRITEBACK_STEP (16ull << 20)
#define DIRECT_WRITE   (128 * 1024)
#define MAX_REDIRECTS  10L
#define PROGRESS_MS    100
#define WAIT_NOTE_MS   1000
#define CHECK_BODY_MAX (64 * 1024)
#define TREE_MAX_DEPTH 128

/* ------------------------------------------------------------------------------------------ */
/* URLs */

/* The scheme (lower case compared) and host of `url`, as pointers into it. */
static bool url_parts(const char *url, const char **scheme_end, const char **host, size_t *host_len,
		      const char **path)
{
	const char *sep = strstr(url, "://");
	const char *h, *end, *at;
	if (!sep || sep == url)
		return false;
	*scheme_end = sep;
	h = sep + 3;
	end = h + strcspn(h, "/?#");
	at = memchr(h, '@', (size_t)(end - h));
	if (at)
		h = at + 1;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));
		if (!close)
			return false;
		*host = h + 1;
		*host_len = (size_t)(close - h - 1);
	} else {
		const char *colon = memchr(h, ':', (size_t)(end - h));
		*host = h;
		*host_len = (size_t)((colon ? colon : end) - h);
	}
	*path = end;
	return *host_len > 0;
}

static bool scheme_is(const char *url, const char *scheme_end, const char *scheme)
{
	size_t n = strlen(scheme);
	return (size_t)(scheme_end - url) == n && !strncasecmp(url, scheme, n);
}

bool bv_data_url_allowed(const char *url, const char **why)
{
	const char *se, *host, *path;
	size_t hl;
	if (!url_parts(url, &se, &host, &hl, &path)) {
		*why = "it is not a URL with a host";
		return false;
	}
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			*why = "it contains spaces or control characters";
			return false;
		}
	if (scheme_is(url, se, "https") || scheme_is(url, se, "ftp") || scheme_is(url, se, "ftps"))
		return true;
	if (scheme_is(url, se, "http")) {
		if (bv_url_host_is_loopback(host, hl))
			return true;
		*why = "plain http is only allowed to a loopback host; use https";
		return false;
	}
	*why = "only https, ftp, ftps (and http to loopback) are supported";
	return false;
}

int bv_data_url_name(char **out, const char *url, struct bv_error **err)
{
	const char *se, *host, *path, *end, *start;
	size_t hl;
	_cleanup_free_ char *name = NULL;
	if (!url_parts(url, &se, &host, &hl, &path))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid URL '%s'", url);
	end = path + strcspn(path, "?#");
	while (end > path && end[-1] == '/')
		end--;
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	name = bv_xstrndup(start, (size_t)(end - start));
	/* the name becomes a path in the cache: a plain name, never "..", "x/y" or "-rf" */
	if (!*name || !bv_valid_name(name))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "URL '%s' does not end in a usable file name (%s)", url,
				     BV_NAME_RULE);
	*out = TAKE_PTR(name);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Mirrors */

struct bv_data_mirrors {
	struct bv_strv src, dst;
};

struct bv_data_mirrors *bv_data_mirrors_new(void)
{
	struct bv_data_mirrors *m = bv_xcalloc(1, sizeof(*m));
	bv_strv_init(&m->src);
	bv_strv_init(&m->dst);
	return m;
}

void bv_data_mirrors_free(struct bv_data_mirrors *m)
{
	if (!m)
		return;
	bv_strv_clear(&m->src);
	bv_strv_clear(&m->dst);
	free(m);
}

static void mirrors_set(struct bv_data_mirrors *m, const char *src, const char *dst)
{
	for (size_t i = 0; i < m->src.n; i++)
		if (!strcmp(m->src.v[i], src)) {
			free(m->dst.v[i]);
			m->dst.v[i] = bv_xstrdup(dst);
			return;
		}
	bv_strv_push(&m->src, src);
	bv_strv_push(&m->dst, dst);
}

static bool mirror_side_valid(const char *s)
{
	const char *why;
	return bv_data_url_allowed(s, &why);
}

int bv_data_mirrors_parse_env(struct bv_data_mirrors *m, const char *env, struct bv_error **err)
{
	_cleanup_free_ char *copy = bv_xstrdup(env);
	char *save = NULL;
	for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		char *eq;
		while (*e == ' ')
			e++;
		if (!*e)
			continue;
		eq = strchr(e, '=');
		if (!eq)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "invalid BV_DATA_MIRRORS entry '%s': expected "
					     "'prefix=replacement'",
					     e);
		*eq = '\0';
		if (!mirror_side_valid(e) || !mirror_side_valid(eq + 1)) {
			*eq = '=';
			return bv_error_setc(err, BV_EINVALID, 0,
					     "invalid BV_DATA_MIRRORS entry '%s': both sides must "
					     "be https, ftp or ftps URLs (http only to loopback)",
					     e);
		}
		mirrors_set(m, e, eq + 1);
	}
	return 0;
}

char *bv_data_mirror_apply(const struct bv_data_mirrors *m, const char *url)
{
	size_t best = 0, best_len = 0;
	bool found = false;
	for (size_t i = 0; m && i < m->src.n; i++) {
		size_t n = strlen(m->src.v[i]);
		if (n > best_len && !strncmp(url, m->src.v[i], n)) {
			best = i;
			best_len = n;
			found = true;
		}
	}
	if (!found)
		return bv_xstrdup(url);
	return bv_xasprintf("%s%s", m->dst.v[best], url + best_len);
}

static int mirrors_from_file(struct bv_data_mirrors *m, const char *path, struct bv_error **err)
{
	struct bv_toml_doc *doc = NULL;
	struct bv_schema s = {.file = path, .warnings = NULL, .err = err};
	struct bv_schema_table top, data;
	int r = bv_toml_parse_file(&doc, path, err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(err ? TAKE_PTR(*err) : NULL);
		return 0;
	}
	if (r < 0)
		return r;
	top = bv_schema_root(&s, bv_toml_doc_root(doc));
	r = bv_schema_table(&s, &top, "data", false, &data);
	for (size_t i = 0; r > 0 && i < data.t->n; i++) {
		const struct bv_toml_kv *kv = &data.t->items[i];
		if (strlen(kv->key) != kv->key_len || !mirror_side_valid(kv->key)) {
			r = bv_schema_fail(&s, kv->pos,
					   "'%s' in [data] is not a URL prefix bv can use",
					   kv->key);
			break;
		}
		if (kv->value.type != BV_TOML_STRING ||
		    strlen(kv->value.u.string.ptr) != kv->value.u.string.len ||
		    !mirror_side_valid(kv->value.u.string.ptr)) {
			r = bv_schema_fail(&s, kv->value.pos,
					   "mirror of '%s' must be an https, ftp or ftps URL (http "
					   "only to loopback)",
					   kv->key);
			break;
		}
		mirrors_set(m, kv->key, kv->value.u.string.ptr);
	}
	bv_schema_release(&s);
	bv_toml_doc_free(doc);
	return r < 0 ? r : 0;
}

int bv_data_mirrors_load(struct bv_data_mirrors **out, struct bv_error **err)
{
	struct bv_data_mirrors *m = bv_data_mirrors_new();
	_cleanup_free_ char *path = bv_mirrors_path();
	const char *env = getenv("BV_DATA_MIRRORS");
	int r = path ? mirrors_from_file(m, path, err) : 0;
	if (r == 0 && env && *env)
		r = bv_data_mirrors_parse_env(m, env, err);
	if (r < 0) {
		bv_data_mirrors_free(m);
		return r;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Specs and the registry */

int bv_data_spec_parse(char **id, char **version, const char *spec, struct bv_error **err)
{
	const char *at = strchr(spec, '@');
	_cleanup_free_ char *i = at ? bv_xstrndup(spec, (size_t)(at - spec)) : bv_xstrdup(spec);
	_cleanup_free_ char *v = at ? bv_xstrdup(at + 1) : NULL;
	if (!bv_valid_name(i))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid dataset id '%s': %s", i,
				     BV_NAME_RULE);
	if (v && !bv_valid_name(v))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid dataset version '%s': %s", v,
				     BV_NAME_RULE);
	*id = TAKE_PTR(i);
	*version = TAKE_PTR(v);
	return 0;
}

int bv_data_resolve(struct bv_dataset **out, const struct bv_index *idx, const char *spec,
		    struct bv_error **err)
{
	_cleanup_free_ char *id = NULL, *version = NULL;
	int r = bv_data_spec_parse(&id, &version, spec, err);
	if (r < 0)
		return r;
	return bv_resolve_dataset(out, idx, id, version, err);
}

int bv_data_registry_ids(char ***out, size_t *n, const struct bv_index *idx, struct bv_error **err)
{
	struct bv_strv ids = BV_STRV_INIT;
	int r = bv_index_list_data(&ids, idx, err);
	if (r < 0) {
		bv_strv_clear(&ids);
		return r;
	}
	*n = ids.n;
	*out = bv_strv_detach(&ids);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Cache paths */

static char *data_root(const char *cache)
{
	return bv_path_join(cache, "data");
}

static char *dataset_path(const char *cache, const char *id, const char *version,
			  const char *suffix)
{
	return bv_xasprintf("%s/data/%s/%s%s", cache, id, version, suffix);
}

static int cache_of(char **owned, const char **cache, const char *given, struct bv_error **err)
{
	*cache = given;
	if (given)
		return 0;
	if (bv_cache_dir(owned, err) < 0)
		return BV_ERR;
	*cache = *owned;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Hashing trees: what a record lists, and what verify --local compares with it */

static void hash_fd(int fd, char out[BV_DIGEST_LEN + 1], uint64_t *size, int *e)
{
	memcpy(out, BV_DIGEST_PREFIX, 7);
	*size = 0;
	*e = bv_sha256_fd_hex(fd, out + 7, size) < 0 ? errno : 0;
}

/* Appends {"path","size","sha256"} for files and {"path","link"} for symlinks below `fd`. */
static int hash_tree(json_t *files, int fd, const char *prefix, unsigned depth, uint64_t *total,
		     struct bv_error **err)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	_cleanup_closedir_ DIR *d = NULL;
	struct bv_strv names = BV_STRV_INIT;
	struct dirent *de;
	int r = 0;

	if (depth > TREE_MAX_DEPTH)
		return bv_error_setc(err, BV_EINVALID, 0, "'%s' is nested too deeply", prefix);
	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		if (dup_fd >= 0)
			close(dup_fd);
		return bv_error_set_errno(err, "could not read directory '%s'", prefix);
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			bv_strv_push(&names, de->d_name);
	bv_strv_sort(&names);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		const char *name = names.v[i];
		_cleanup_free_ char *rel =
			*prefix ? bv_xasprintf("%s/%s", prefix, name) : bv_xstrdup(name);
		struct stat st;
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = bv_error_set_errno(err, "could not stat '%s'", rel);
		} else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub =
				openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				r = bv_error_set_errno(err, "could not open '%s'", rel);
			else
				r = hash_tree(files, sub, rel, depth + 1, total, err);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(fd, name, target, sizeof(target) - 1);
			if (n < 0) {
				r = bv_error_set_errno(err, "could not read link '%s'", rel);
			} else {
				target[n] = '\0';
				json_array_append_new(
					files, json_pack("{s:s,s:s}", "path", rel, "link", target));
			}
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			char digest[BV_DIGEST_LEN + 1];
			uint64_t size = 0;
			int e = 0;
			if (f < 0)
				r = bv_error_set_errno(err, "could not open '%s'", rel);
			else
				hash_fd(f, digest, &size, &e);
			if (r == 0 && e)
				r = bv_error_setc(err, BV_ERR, e, "could not read '%s'", rel);
			if (r == 0) {
				json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "path", rel,
								       "size", (json_int_t)size,
								       "sha256", digest));
				*total += size;
			}
		} else {
			r = bv_error_setc(err, BV_EINVALID, 0,
					  "'%s' is not a file, directory or symlink", rel);
		}
	}
	bv_strv_clear(&names);
	return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Fetching */

enum xfer_state { X_QUEUED, X_DELAYED, X_RUNNING, X_DONE };

struct job;

struct xfer {
	struct job *job;
	const struct bv_curl *cu;
	char *url;  /* after mirrors */
	char *name; /* from the manifest's URL */
	bool primary;
	uint64_t limit;         /* most bytes accepted */
	int64_t expect_size;    /* -1: not declared */
	const char *expect_sha; /* NULL: not declared */
	int fd;
	struct bv_sha256 *h;
	uint64_t written;  /* bytes hashed (in the file or in buf) */
	uint64_t kicked;   /* bytes whose write-back was started */
	uint64_t received; /* body bytes of this attempt */
	unsigned char *buf;
	size_t buf_len;
	enum xfer_state state;
	uint64_t not_before;
	unsigned failures;
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *content_range;
	bool checked, discard;
	struct bv_error *write_err;
	char digest[BV_DIGEST_LEN + 1];
};

struct job {
	const struct bv_dataset *d;
	struct bv_lock lock;
	bool skip; /* in the cache already */
	char *tmp, *dl, *tree;
	int dl_fd;
	struct xfer *x;
	size_t n_x;
	uint64_t bytes_total, bytes_done;
	bool finished_reported;
};

struct fetch {
	const struct bv_curl *cu;
	CURLM *multi;
	const struct bv_data_options *o;
	const char *cache;
	struct job *jobs;
	size_t n_jobs;
	unsigned jobs_max, retries, backoff_ms;
	size_t running, remaining;
	uint64_t start, last_progress, bytes;
	uint64_t rng;
	struct bv_error *fatal;
	int fatal_code;
};

static uint64_t now_ns(void)
{
	return bv_time_monotonic_ns();
}

static uint64_t backoff_ns(struct fetch *f, unsigned attempt)
{
	uint64_t ms = f->backoff_ms;
	uint64_t x = f->rng;
	for (unsigned i = 1; i < attempt && ms < 30000; i++)
		ms *= 2;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	f->rng = x;
	return (ms - ms / 4 + (ms / 2 ? x % (ms / 2 + 1) : 0)) * NS_PER_MS;
}

__attribute__((format(printf, 4, 5))) static void fetch_fail(struct fetch *f, const struct xfer *x,
							     int code, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	va_list ap;
	if (f->fatal)
		return;
	va_start(ap, fmt);
	what = bv_xvasprintf(fmt, ap);
	va_end(ap);
	f->fatal_code = code;
	bv_error_setc(&f->fatal, code, 0, "could not fetch %s %s: %s: %s", x->job->d->id,
		      x->job->d->version, x->name, what);
}

/*
 * Starts the write-back of what was written since the last call once it is WRITEBACK_STEP
 * bytes, so the one fsync at the end finds little left to do: without it a 1 GiB download
 * ended in a 1 GiB flush, a second or more that curl -o (which never syncs) does not pay.
 */
static void xfer_writeback(struct xfer *x, bool force)
{
	uint64_t on_disk = x->written - x->buf_len;
	if (on_disk - x->kicked < WRITEBACK_STEP && !force)
		return;
	(void)sync_file_range(x->fd, (off64_t)x->kicked, (off64_t)(on_disk - x->kicked),
			      SYNC_FILE_RANGE_WRITE);
	x->kicked = on_disk;
}

static int xfer_flush(struct xfer *x)
{
	if (x->buf_len && bv_write_all(x->fd, x->buf, x->buf_len) < 0)
		return bv_error_set_errno(&x->write_err, "could not write '%s'", x->name);
	x->buf_len = 0;
	xfer_writeback(x, false);
	return 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *payload)
{
	struct xfer *x = payload;
	size_t len = size * n;
	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		free(x->content_range);
		x->content_range = NULL;
		return len;
	}
	if (len > 14 && !strncasecmp(data, "content-range:", 14) && !x->content_range &&
	    len < 256) {
		const char *v = data + 14;
		size_t vl = len - 14;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		x->content_range = bv_xstrndup(v, vl);
	}
	return len;
}

/*
 * Whether a transfer ended, after any redirects, on an http or https URL.  *plain_remote (may
 * be NULL): it ended on plain http to a host other than loopback, where bv never downloads.
 */
static bool effective_is_http(const struct bv_curl *cu, CURL *h, bool *plain_remote)
{
	char *eff = NULL;
	const char *se, *host, *path;
	size_t hl;
	bool plain;
	if (plain_remote)
		*plain_remote = false;
	cu->easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
	if (!eff || !url_parts(eff, &se, &host, &hl, &path))
		return false;
	plain = scheme_is(eff, se, "http");
	if (plain_remote)
		*plain_remote = plain && !bv_url_host_is_loopback(host, hl);
	return plain || scheme_is(eff, se, "https");
}

/* The first bytes of a response: where they go, decided once per attempt. */
static int xfer_check(const struct bv_curl *cu, struct xfer *x)
{
	long status = 0;
	bool plain_remote, http = effective_is_http(cu, x->curl, &plain_remote);
	x->checked = true;
	/* a redirect may not take the download to plain http on the network */
	if (plain_remote)
		return bv_error_setc(&x->write_err, BV_EINVALID, 0,
				     "redirected to plain http on a non-loopback host");
	if (!http)
		return 0; /* ftp: errors come as curl results */
	cu->easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 206 && x->written > 0) {
		char expect[48];
		int n = snprintf(expect, sizeof(expect), "bytes %" PRIu64 "-", x->written);
		if (!x->content_range || strncmp(x->content_range, expect, (size_t)n) != 0)
			return bv_error_set(
				&x->write_err, "the server answered a range request with '%s'",
				x->content_range ? x->content_range : "no Content-Range");
		return 0;
	}
	if (status == 200 && x->written > 0) {
		/* the server ignored Range: start again from the first byte */
		if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
			return bv_error_set_errno(&x->write_err, "could not truncate '%s'",
						  x->name);
		bv_sha256_free(x->h);
		x->h = bv_sha256_new();
		x->job->bytes_done -= x->written;
		x->written = 0;
		x->kicked = 0;
		x->buf_len = 0;
		return 0;
	}
	if (status != 200 && status != 206)
		x->discard = true;
	return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *payload)
{
	struct xfer *x = payload;
	size_t len = size * n;
	if (!x->checked && xfer_check(x->cu, x) < 0)
		return 0;
	if (x->discard)
		return len; /* an error page: the status says what went wrong */
	if (len > x->limit - x->written) {
		bv_error_setc(&x->write_err, BV_EINVALID, 0,
			      "the server sent more than the %" PRIu64 " bytes declared", x->limit);
		return 0;
	}
	bv_sha256_update(x->h, data, len);
	x->written += len;
	x->received += len;
	x->job->bytes_done += len;
	if ((x->buf_len + len > WRITE_BUFFER || len >= DIRECT_WRITE) && xfer_flush(x) < 0)
		return 0;
	/* what curl hands over in large pieces is written as it is, without a copy */
	if (len >= DIRECT_WRITE) {
		if (bv_write_all(x->fd, data, len) < 0) {
			bv_error_set_errno(&x->write_err, "could not write '%s'", x->name);
			return 0;
		}
		xfer_writeback(x, false);
		return len;
	}
	memcpy(x->buf + x->buf_len, data, len);
	x->buf_len += len;
	return len;
}

static void setup_common(const struct bv_curl *cu, CURL *h, const char *url, char *errbuf)
{
	bv_log_url(BV_LOG_DEBUG, "data: request", url);
	cu->easy_setopt(h, CURLOPT_URL, url);
	cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cu->easy_setopt(h, CURLOPT_USERAGENT, "bv (reference data)");
	cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps");
	cu->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https,ftp,ftps");
	cu->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	cu->easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L);
	cu->easy_setopt(h, CURLOPT_FTP_USE_EPSV, 1L);
}

static void xfer_stop(struct fetch *f, struct xfer *x)
{
	if (x->curl) {
		f->cu->multi_remove_handle(f->multi, x->curl);
		f->cu->easy_cleanup(x->curl);
		x->curl = NULL;
	}
	if (x->state == X_RUNNING)
		f->running--;
}

static void xfer_start(struct fetch *f, struct xfer *x)
{
	const struct bv_curl *cu = f->cu;
	CURL *h = cu->easy_init();
	if (!h) {
		fetch_fail(f, x, BV_ERR, "could not create a libcurl handle");
		return;
	}
	x->curl = h;
	x->cu = cu;
	x->checked = x->discard = false;
	x->received = 0;
	x->errbuf[0] = '\0';
	free(x->content_range);
	x->content_range = NULL;
	setup_common(cu, h, x->url, x->errbuf);
	cu->easy_setopt(h, CURLOPT_PRIVATE, (void *)x);
	cu->easy_setopt(h, CURLOPT_BUFFERSIZE, (long)CURL_BUFFER);
	cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	cu->easy_setopt(h, CURLOPT_HEADERDATA, (void *)x);
	cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	cu->easy_setopt(h, CURLOPT_WRITEDATA, (void *)x);
	/* the bytes are hashed as they come; a compressed transfer would hash the wrong ones */
	cu->easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (x->written > 0)
		cu->easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->written);
	if (cu->multi_add_handle(f->multi, h) != CURLM_OK) {
		cu->easy_cleanup(h);
		x->curl = NULL;
		fetch_fail(f, x, BV_ERR, "libcurl refused the transfer");
		return;
	}
	x->state = X_RUNNING;
	f->running++;
}

static void xfer_retry(struct fetch *f, struct xfer *x, const char *why)
{
	bool progressed = x->received > 0;
	xfer_stop(f, x);
	if (xfer_flush(x) < 0) {
		_cleanup_free_ char *msg = bv_error_format(x->write_err);
		fetch_fail(f, x, BV_ERR, "%s", msg);
		return;
	}
	/* an attempt that moved the resume point does not use up a retry */
	if (!progressed)
		x->failures++;
	if (x->failures > f->retries) {
		fetch_fail(f, x, BV_ERR, "%s after %u attempts", why, x->failures);
		return;
	}
	x->state = X_DELAYED;
	x->not_before = now_ns() + (progressed ? 0 : backoff_ns(f, x->failures));
}

static void xfer_complete(struct fetch *f, struct xfer *x)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	if (xfer_flush(x) < 0) {
		_cleanup_free_ char *msg = bv_error_format(x->write_err);
		fetch_fail(f, x, BV_ERR, "%s", msg);
		return;
	}
	bv_sha256_final_hex(hex, x->h);
	x->h = NULL;
	memcpy(x->digest, BV_DIGEST_PREFIX, 7);
	memcpy(x->digest + 7, hex, sizeof(hex));
	if (x->expect_size >= 0 && x->written != (uint64_t)x->expect_size) {
		fetch_fail(f, x, BV_EINVALID,
			   "size mismatch (the registry says %" PRId64
			   " bytes, the server sent %" PRIu64 ")",
			   x->expect_size, x->written);
		return;
	}
	if (x->expect_sha && strcmp(x->expect_sha, x->digest) != 0) {
		fetch_fail(f, x, BV_EINVALID, "sha256 mismatch (the registry says %s, got %s)",
			   x->expect_sha, x->digest);
		return;
	}
	/* one fsync per file, when it is complete; the data is then on disk before the rename */
	if (fchmod(x->fd, 0444) < 0 || fsync(x->fd) < 0) {
		bv_error_set_errno(&x->write_err, "could not sync '%s'", x->name);
		_cleanup_free_ char *msg = bv_error_format(x->write_err);
		fetch_fail(f, x, BV_ERR, "%s", msg);
		return;
	}
	close(x->fd);
	x->fd = -1;
	x->state = X_DONE;
	f->remaining--;
}

static void xfer_done(struct fetch *f, struct xfer *x, CURLcode rc)
{
	long status = 0;
	bool http = effective_is_http(f->cu, x->curl, NULL);
	f->cu->easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	if (x->write_err) {
		_cleanup_free_ char *msg = bv_error_format(x->write_err);
		int code = x->write_err->code;
		xfer_stop(f, x);
		fetch_fail(f, x, code, "%s", msg);
		return;
	}
	if (rc == CURLE_OK && (!http || status == 200 || status == 206)) {
		if (!x->checked && xfer_check(f->cu, x) < 0) {
			xfer_done(f, x, rc);
			return;
		}
		xfer_stop(f, x);
		xfer_complete(f, x);
		return;
	}
	if (rc == CURLE_OK && status == 416 && x->expect_size >= 0 &&
	    x->written == (uint64_t)x->expect_size) {
		/* cut just after the last byte: a range from the end has nothing left to send */
		xfer_stop(f, x);
		xfer_complete(f, x);
		return;
	}
	if (rc == CURLE_OK && (status == 429 || status >= 500)) {
		char why[48];
		(void)snprintf(why, sizeof(why), "the server returned %ld", status);
		xfer_retry(f, x, why);
		return;
	}
	if (rc == CURLE_OK) {
		xfer_stop(f, x);
		fetch_fail(f, x, status == 404 ? BV_ENOTFOUND : BV_ERR, "the server returned %ld",
			   status);
		return;
	}
	if (rc == CURLE_RANGE_ERROR || rc == CURLE_BAD_DOWNLOAD_RESUME) {
		/* the server cannot resume: download the file again from its first byte */
		xfer_stop(f, x);
		if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0) {
			fetch_fail(f, x, BV_ERR, "could not truncate the partial file");
			return;
		}
		bv_sha256_free(x->h);
		x->h = bv_sha256_new();
		x->job->bytes_done -= x->written;
		x->written = 0;
		x->kicked = 0;
		x->buf_len = 0;
		x->failures++;
		x->state = x->failures > f->retries ? X_DONE : X_QUEUED;
		if (x->state == X_DONE)
			fetch_fail(f, x, BV_ERR, "the server cannot resume a download");
		return;
	}
	{
		_cleanup_free_ char *why =
			bv_xasprintf("%s", x->errbuf[0] ? x->errbuf : f->cu->easy_strerror(rc));
		if (bv_curl_retryable(rc)) {
			xfer_retry(f, x, why);
			return;
		}
		xfer_stop(f, x);
		fetch_fail(f, x, BV_ERR, "%s", why);
	}
}

static void report_progress(struct fetch *f, bool force)
{
	uint64_t now = now_ns();
	double secs;
	if (!f->o->progress || (!force && now - f->last_progress < PROGRESS_MS * NS_PER_MS))
		return;
	f->last_progress = now;
	secs = (double)(now - f->start) / 1e9;
	for (size_t i = 0; i < f->n_jobs; i++) {
		struct job *j = &f->jobs[i];
		struct bv_data_progress p = {0};
		bool finished = true;
		uint64_t all = 0;
		if (j->skip || j->finished_reported)
			continue;
		for (size_t k = 0; k < j->n_x; k++)
			finished = finished && j->x[k].state == X_DONE;
		for (size_t k = 0; k < f->n_jobs; k++)
			all += f->jobs[k].bytes_done;
		p.id = j->d->id;
		p.version = j->d->version;
		p.bytes_done = j->bytes_done;
		p.bytes_total = j->bytes_total;
		for (size_t k = 0; k < j->n_x; k++)
			if (j->x[k].expect_size < 0)
				p.bytes_total += j->x[k].written; /* sidecars: as far as known */
		p.rate = secs > 0 ? (double)all / secs : 0;
		p.finished = finished;
		j->finished_reported = finished;
		f->o->progress(&p, f->o->payload);
	}
}

static void fetch_loop(struct fetch *f)
{
	const struct bv_curl *cu = f->cu;
	while (!f->fatal && f->remaining) {
		uint64_t now = now_ns(), wait_ns = 1000 * NS_PER_MS;
		int still, queued;
		CURLMsg *msg;
		for (size_t i = 0; i < f->n_jobs && !f->fatal; i++)
			for (size_t k = 0; k < f->jobs[i].n_x && f->running < f->jobs_max; k++) {
				struct xfer *x = &f->jobs[i].x[k];
				if (x->state == X_QUEUED ||
				    (x->state == X_DELAYED && x->not_before <= now))
					xfer_start(f, x);
			}
		if (f->fatal)
			break;
		if (cu->multi_perform(f->multi, &still) != CURLM_OK) {
			bv_error_set(&f->fatal, "libcurl failed");
			break;
		}
		while (!f->fatal && (msg = cu->multi_info_read(f->multi, &queued))) {
			char *priv = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			cu->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			if (priv)
				xfer_done(f, (struct xfer *)(void *)priv, msg->data.result);
		}
		report_progress(f, false);
		if (f->fatal || !f->remaining)
			break;
		now = now_ns();
		for (size_t i = 0; i < f->n_jobs; i++)
			for (size_t k = 0; k < f->jobs[i].n_x; k++) {
				struct xfer *x = &f->jobs[i].x[k];
				if (x->state != X_DELAYED)
					continue;
				if (x->not_before <= now)
					wait_ns = 0;
				else if (x->not_before - now < wait_ns)
					wait_ns = x->not_before - now;
			}
		if (wait_ns &&
		    cu->multi_poll(f->multi, NULL, 0, (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS),
				   NULL) != CURLM_OK)
			break;
	}
	report_progress(f, true);
}

/* Removes staging directories of this dataset left by processes that died (we hold its lock). */
static void clean_stale(const char *cache, const struct bv_dataset *d)
{
	_cleanup_free_ char *tmp = bv_xasprintf("%s/data/.tmp", cache);
	_cleanup_free_ char *prefix = bv_xasprintf("%s@%s.", d->id, d->version);
	_cleanup_closedir_ DIR *dir = opendir(tmp);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		_cleanup_free_ char *p = NULL;
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		p = bv_path_join(tmp, de->d_name);
		(void)bv_unpack_remove_tree(p, NULL);
	}
}

static bool is_published(const char *cache, const struct bv_dataset *d)
{
	_cleanup_free_ char *dir = dataset_path(cache, d->id, d->version, "");
	_cleanup_free_ char *rec = dataset_path(cache, d->id, d->version, ".json");
	return bv_path_exists(dir) && bv_path_exists(rec);
}

struct wait_note {
	const struct bv_data_options *o;
	const struct bv_dataset *d;
};

static void note_wait(const char *path, void *payload)
{
	struct wait_note *w = payload;
	(void)path;
	if (w->o->on_wait)
		w->o->on_wait(w->d->id, w->d->version, w->o->payload);
}

static int lock_dataset(struct job *j, const char *cache, const struct bv_data_options *o,
			struct bv_error **err)
{
	_cleanup_free_ char *dir = bv_xasprintf("%s/data/%s", cache, j->d->id);
	_cleanup_free_ char *path = dataset_path(cache, j->d->id, j->d->version, ".lock");
	struct wait_note w = {.o = o, .d = j->d};
	if (bv_mkdir_p(dir, 0755, err) < 0)
		return BV_ERR;
	return bv_lock_acquire_noting(&j->lock, path, BV_LOCK_EXCLUSIVE, WAIT_NOTE_MS, note_wait,
				      &w, err);
}

/* The transfers of a dataset that is not in the cache, and its staging directory. */
static int prepare_job(struct fetch *f, struct job *j, struct bv_error **err)
{
	const struct bv_dataset *d = j->d;
	_cleanup_free_ char *tmp_root = bv_xasprintf("%s/data/.tmp", f->cache);
	_cleanup_free_ char *final = dataset_path(f->cache, d->id, d->version, "");
	int r;

	if (!d->source_urls.n)
		return bv_error_setc(err, BV_EINVALID, 0, "dataset %s %s has no source_urls", d->id,
				     d->version);
	/* a directory without its record: a crash between the two renames; fetch it again */
	if (bv_path_exists(final) && bv_unpack_remove_tree(final, err) < 0)
		return BV_ERR;
	clean_stale(f->cache, d);
	j->x = bv_xcalloc(d->source_urls.n, sizeof(*j->x));
	for (size_t i = 0; i < d->source_urls.n; i++) {
		struct xfer *x = &j->x[j->n_x++];
		const char *why;
		x->fd = -1;
		x->job = j;
		x->primary = i == 0;
		r = bv_data_url_name(&x->name, d->source_urls.v[i], err);
		if (r < 0)
			return bv_error_wrap(err, r, "dataset %s %s", d->id, d->version);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(j->x[k].name, x->name))
				return bv_error_setc(err, BV_EINVALID, 0,
						     "dataset %s %s: two source URLs end in '%s'",
						     d->id, d->version, x->name);
		x->url = bv_data_mirror_apply(f->o->mirrors, d->source_urls.v[i]);
		if (!bv_data_url_allowed(x->url, &why))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "dataset %s %s: cannot download '%s': %s", d->id,
					     d->version, x->url, why);
		x->expect_size = x->primary ? d->size_bytes : -1;
		x->expect_sha = x->primary ? d->sha256 : NULL;
		x->limit = x->expect_size >= 0 ? (uint64_t)x->expect_size : DATA_FILE_MAX;
		if (x->expect_size >= 0)
			j->bytes_total += (uint64_t)x->expect_size;
	}
	if (bv_mkdir_p(tmp_root, 0755, err) < 0)
		return BV_ERR;
	j->tmp = bv_xasprintf("%s/%s@%s.XXXXXX", tmp_root, d->id, d->version);
	if (!mkdtemp(j->tmp)) {
		r = bv_error_set_errno(err, "could not create a directory in '%s'", tmp_root);
		free(j->tmp);
		j->tmp = NULL;
		return r;
	}
	j->dl = bv_path_join(j->tmp, "dl");
	j->tree = bv_path_join(j->tmp, "tree");
	if (mkdir(j->dl, 0700) < 0 || mkdir(j->tree, 0755) < 0)
		return bv_error_set_errno(err, "could not create directories in '%s'", j->tmp);
	j->dl_fd = open(j->dl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dl_fd < 0)
		return bv_error_set_errno(err, "could not open '%s'", j->dl);
	for (size_t i = 0; i < j->n_x; i++) {
		struct xfer *x = &j->x[i];
		x->fd = openat(j->dl_fd, x->name,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (x->fd < 0)
			return bv_error_set_errno(err, "could not create '%s/%s'", j->dl, x->name);
		x->h = bv_sha256_new();
		x->buf = bv_xmalloc(WRITE_BUFFER);
		x->state = X_QUEUED;
		f->remaining++;
	}
	return 0;
}

static void job_release(struct job *j)
{
	for (size_t i = 0; i < j->n_x; i++) {
		struct xfer *x = &j->x[i];
		if (x->fd >= 0)
			close(x->fd);
		if (x->h)
			bv_sha256_free(x->h);
		bv_error_free(x->write_err);
		free(x->buf);
		free(x->url);
		free(x->name);
		free(x->content_range);
	}
	free(j->x);
	if (j->dl_fd >= 0)
		close(j->dl_fd);
	if (j->tmp)
		(void)bv_unpack_remove_tree(j->tmp, NULL);
	free(j->tmp);
	free(j->dl);
	free(j->tree);
	bv_lock_release(&j->lock);
}

static bool is_compressed(int dfd, const char *name)
{
	unsigned char m[6] = {0};
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd >= 0 ? bv_read_all(fd, m, sizeof(m)) : -1;
	return (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) ||
	       (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) ||
	       (n >= 3 && !memcmp(m, "BZh", 3)) ||
	       (n >= 6 && !memcmp(m,
				  "\xfd"
				  "7zXZ",
				  6));
}

static char *decompressed_name(const char *name)
{
	static const char *const suffixes[] = {".gz", ".bgz", ".bz2", ".xz", ".zst", ".zstd"};
	size_t n = strlen(name);
	for (size_t i = 0; i < BV_ARRAY_SIZE(suffixes); i++) {
		size_t s = strlen(suffixes[i]);
		if (n > s && !strcasecmp(name + n - s, suffixes[i]))
			return bv_xstrndup(name, n - s);
	}
	return bv_xstrdup(name);
}

static int move_into_tree(struct job *j, int tree_fd, const struct xfer *x, struct bv_error **err)
{
	if (renameat2(j->dl_fd, x->name, tree_fd, x->name, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST)
			return bv_error_setc(err, BV_EINVALID, 0,
					     "dataset %s %s: '%s' is also a file of its archive",
					     j->d->id, j->d->version, x->name);
		return bv_error_set_errno(err, "could not move '%s' into '%s'", x->name, j->tree);
	}
	return 0;
}

/* post_download_action, then the record's file list. */
static int post_process(struct job *j, int tree_fd, json_t *files, uint64_t *total,
			struct bv_error **err)
{
	const char *action = j->d->post_download_action ? j->d->post_download_action : "noop";
	_cleanup_free_ char *label = NULL;
	int r = 0;

	if (!strcmp(action, "extract")) {
		_cleanup_free_ char *path = bv_path_join(j->dl, j->x[0].name);
		label = bv_xasprintf("'%s' of %s %s", j->x[0].name, j->d->id, j->d->version);
		r = bv_unpack_archive(tree_fd, path, label, NULL, err);
		for (size_t i = 1; r == 0 && i < j->n_x; i++)
			r = move_into_tree(j, tree_fd, &j->x[i], err);
		if (r == 0)
			r = hash_tree(files, tree_fd, "", 0, total, err);
		if (r == 0 && syncfs(tree_fd) < 0)
			r = bv_error_set_errno(err, "could not sync '%s'", j->tree);
		return r;
	}
	if (!strcmp(action, "decompress")) {
		for (size_t i = 0; r == 0 && i < j->n_x; i++) {
			const struct xfer *x = &j->x[i];
			_cleanup_free_ char *out = NULL, *path = NULL;
			_cleanup_close_ int fd = -1;
			struct bv_sha256 *h;
			char digest[BV_DIGEST_LEN + 1];
			uint64_t size = 0;
			if (!is_compressed(j->dl_fd, x->name)) {
				r = move_into_tree(j, tree_fd, x, err);
				if (r == 0) {
					json_array_append_new(
						files, json_pack("{s:s,s:I,s:s}", "path", x->name,
								 "size", (json_int_t)x->written,
								 "sha256", x->digest));
					*total += x->written;
				}
				continue;
			}
			out = decompressed_name(x->name);
			path = bv_path_join(j->dl, x->name);
			fd = openat(tree_fd, out,
				    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd < 0)
				return bv_error_set_errno(err, "could not create '%s/%s'", j->tree,
							  out);
			label = bv_xasprintf("'%s' of %s %s", x->name, j->d->id, j->d->version);
			h = bv_sha256_new();
			r = bv_unpack_decompress(&size, fd, path, label, 0, h, err);
			free(label);
			label = NULL;
			memcpy(digest, BV_DIGEST_PREFIX, 7);
			bv_sha256_final_hex(digest + 7, h);
			if (r == 0 && fchmod(fd, 0444) < 0)
				r = bv_error_set_errno(err, "could not make '%s' read-only", out);
			if (r == 0) {
				json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "path", out,
								       "size", (json_int_t)size,
								       "sha256", digest));
				*total += size;
			}
		}
		if (r == 0 && syncfs(tree_fd) < 0)
			r = bv_error_set_errno(err, "could not sync '%s'", j->tree);
		return r;
	}
	for (size_t i = 0; r == 0 && i < j->n_x; i++) {
		const struct xfer *x = &j->x[i];
		r = move_into_tree(j, tree_fd, x, err);
		if (r == 0) {
			json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "path", x->name,
							       "size", (json_int_t)x->written,
							       "sha256", x->digest));
			*total += x->written;
		}
	}
	return r;
}

static int compare_paths(const void *a, const void *b)
{
	const json_t *const *x = a, *const *y = b;
	return strcmp(json_string_value(json_object_get(*x, "path")),
		      json_string_value(json_object_get(*y, "path")));
}

/* The files of a flat dataset in the order hash_tree() lists a directory (by name). */
static void sort_files(json_t *files)
{
	size_t n = json_array_size(files);
	json_t **v = bv_xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(files, i));
	qsort(v, n, sizeof(*v), compare_paths);
	json_array_clear(files);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(files, v[i]);
	free(v);
}

static int publish(struct fetch *f, struct job *j, struct bv_error **err)
{
	const struct bv_dataset *d = j->d;
	_cleanup_free_ char *final = dataset_path(f->cache, d->id, d->version, "");
	_cleanup_free_ char *record = dataset_path(f->cache, d->id, d->version, ".json");
	_cleanup_free_ char *parent = bv_xasprintf("%s/data/%s", f->cache, d->id);
	_cleanup_close_ int tree_fd = open(j->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int pfd = -1;
	_cleanup_free_ char *text = NULL;
	char when[BV_RFC3339_LEN + 1];
	json_t *files = json_array(), *urls = json_array(), *rec;
	uint64_t total = 0;
	int r;

	if (tree_fd < 0) {
		json_decref(files);
		json_decref(urls);
		return bv_error_set_errno(err, "could not open '%s'", j->tree);
	}
	r = post_process(j, tree_fd, files, &total, err);
	if (r == 0)
		sort_files(files);
	if (r == 0)
		r = bv_unpack_read_only(tree_fd, j->tree, err);
	/* moving a directory to another parent rewrites its "..": it must stay writable until
	 * the rename (for a user without root), then it is read-only like the rest */
	if (r == 0 && fchmod(tree_fd, 0755) < 0)
		r = bv_error_set_errno(err, "could not change the mode of '%s'", j->tree);
	if (r < 0) {
		json_decref(files);
		json_decref(urls);
		return r;
	}
	for (size_t i = 0; i < d->source_urls.n; i++)
		json_array_append_new(urls, json_string(d->source_urls.v[i]));
	(void)bv_time_format_rfc3339(when, bv_time_now());
	rec = json_pack("{s:i,s:s,s:s,s:s,s:s?,s:s,s:I,s:o,s:o,s:s}", "record_version", 1, "id",
			d->id, "version", d->version, "sha256", j->x[0].digest, "declared_sha256",
			d->sha256, "primary", j->x[0].name, "size", (json_int_t)total, "files",
			files, "source_urls", urls, "fetched_at", when);
	if (!rec)
		bv_oom();
	text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(rec);
	if (!text)
		bv_oom();
	if (renameat2(AT_FDCWD, j->tree, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
		return bv_error_set_errno(err, "could not rename '%s' to '%s'", j->tree, final);
	if (fchmod(tree_fd, 0555) < 0)
		return bv_error_set_errno(err, "could not make '%s' read-only", final);
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fsync(pfd) < 0)
		return bv_error_set_errno(err, "could not sync directory '%s'", parent);
	return bv_write_file_atomic(record, text, strlen(text), 0644, err);
}

static int compare_jobs(const void *a, const void *b)
{
	const struct job *x = a, *y = b;
	int c = strcmp(x->d->id, y->d->id);
	return c ? c : strcmp(x->d->version, y->d->version);
}

int bv_data_fetch(enum bv_data_outcome *out, const struct bv_dataset *const *sets, size_t n,
		  const struct bv_data_options *o, struct bv_error **err)
{
	static const struct bv_data_options none;
	_cleanup_free_ char *cache_owned = NULL;
	struct fetch f = {0};
	int r = 0;

	o = o ? o : &none;
	if (cache_of(&cache_owned, &f.cache, o->cache_dir, err) < 0)
		return BV_ERR;
	f.o = o;
	f.jobs_max = o->jobs ? o->jobs : 4;
	f.retries = o->retries ? o->retries : 5;
	f.backoff_ms = o->backoff_ms ? o->backoff_ms : 250;
	f.rng = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
	f.jobs = bv_xcalloc(n ? n : 1, sizeof(*f.jobs));
	f.n_jobs = n;
	for (size_t i = 0; i < n; i++) {
		f.jobs[i].d = sets[i];
		f.jobs[i].lock = (struct bv_lock)BV_LOCK_INIT;
		f.jobs[i].dl_fd = -1;
	}
	/* one order for every process, so two fetching {a, b} and {b, a} cannot deadlock */
	qsort(f.jobs, n, sizeof(*f.jobs), compare_jobs);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct job *j = &f.jobs[i];
		if (i && !compare_jobs(j, j - 1)) {
			j->skip = true; /* the same dataset twice */
			continue;
		}
		r = lock_dataset(j, f.cache, o, err);
		if (r == 0 && is_published(f.cache, j->d))
			j->skip = true;
		else if (r == 0)
			r = prepare_job(&f, j, err);
	}
	if (r == 0 && f.remaining && bv_offline())
		r = bv_offline_error(err, "download reference data");
	if (r == 0 && f.remaining) {
		f.cu = bv_curl_get(err);
		if (!f.cu)
			r = BV_ERR;
		if (r == 0) {
			f.multi = f.cu->multi_init();
			if (!f.multi)
				r = bv_error_set(err, "could not create a libcurl multi handle");
		}
		if (r == 0) {
			f.start = now_ns();
			fetch_loop(&f);
			if (f.fatal) {
				r = f.fatal_code ? f.fatal_code : BV_ERR;
				if (err)
					*err = TAKE_PTR(f.fatal);
			}
		}
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		if (!f.jobs[i].skip)
			r = publish(&f, &f.jobs[i], err);
	for (size_t i = 0; r == 0 && i < n; i++)
		for (size_t k = 0; k < n; k++)
			if (f.jobs[k].d == sets[i])
				out[i] = f.jobs[k].skip ? BV_DATA_CACHED : BV_DATA_FETCHED;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < f.jobs[i].n_x; k++)
			if (f.jobs[i].x[k].curl)
				xfer_stop(&f, &f.jobs[i].x[k]);
		job_release(&f.jobs[i]);
	}
	if (f.multi)
		f.cu->multi_cleanup(f.multi);
	bv_error_free(f.fatal);
	free(f.jobs);
	return r;
}

/* ------------------------------------------------------------------------------------------ */
/* The cache's datasets */

void bv_data_entry_release(struct bv_data_entry *e)
{
	free(e->id);
	free(e->version);
	free(e->path);
	free(e->sha256);
	free(e->fetched_at);
	memset(e, 0, sizeof(*e));
}

void bv_data_entries_free(struct bv_data_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		bv_data_entry_release(&e[i]);
	free(e);
}

static int load_record(json_t **out, const char *cache, const char *id, const char *version,
		       struct bv_error **err)
{
	_cleanup_free_ char *path = dataset_path(cache, id, version, ".json");
	_cleanup_free_ char *dir = dataset_path(cache, id, version, "");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_error_t je;
	json_t *j;
	int r;
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return bv_error_setc(err, BV_ENOTFOUND, 0, "dataset %s %s is not in the cache", id,
				     version);
	r = bv_buf_read_file(&text, path, RECORD_MAX, err);
	if (r == BV_ENOTFOUND) {
		bv_error_free(err ? TAKE_PTR(*err) : NULL);
		return bv_error_setc(err, BV_ENOTFOUND, 0, "dataset %s %s is not in the cache", id,
				     version);
	}
	if (r < 0)
		return r;
	j = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, &je);
	if (!j || !json_is_object(j) || !json_is_array(json_object_get(j, "files"))) {
		json_decref(j);
		return bv_error_setc(err, BV_EINVALID, 0, "the record '%s' is damaged", path);
	}
	*out = j;
	return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

int bv_data_lookup(struct bv_data_entry *out, const char *cache_dir, const char *id,
		   const char *version, struct bv_error **err)
{
	_cleanup_free_ char *owned = NULL;
	const char *cache;
	json_t *rec = NULL;
	int r;
	if (cache_of(&owned, &cache, cache_dir, err) < 0)
		return BV_ERR;
	if (!bv_valid_name(id) || !bv_valid_name(version))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid dataset '%s@%s'", id, version);
	r = load_record(&rec, cache, id, version, err);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->id = bv_xstrdup(id);
	out->version = bv_xstrdup(version);
	out->path = dataset_path(cache, id, version, "");
	out->size = json_integer_value(json_object_get(rec, "size"));
	out->n_files = json_array_size(json_object_get(rec, "files"));
	out->sha256 = bv_xstrdup(jstr(rec, "sha256"));
	out->fetched_at = bv_xstrdup(jstr(rec, "fetched_at"));
	out->verified =
		*jstr(rec, "declared_sha256") && !strcmp(jstr(rec, "declared_sha256"), out->sha256);
	json_decref(rec);
	return 0;
}

static void names_in(struct bv_strv *out, const char *dir, bool dirs)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || !bv_valid_name(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode) == dirs)
			bv_strv_push(out, de->d_name);
	}
	bv_strv_sort(out);
}

int bv_data_list(struct bv_data_entry **out, size_t *n, const char *cache_dir,
		 struct bv_error **err)
{
	_cleanup_free_ char *owned = NULL, *root = NULL;
	const char *cache;
	struct bv_strv ids = BV_STRV_INIT;
	struct bv_data_entry *list = NULL;
	size_t count = 0, alloc = 0;
	if (cache_of(&owned, &cache, cache_dir, err) < 0)
		return BV_ERR;
	root = data_root(cache);
	names_in(&ids, root, true);
	bv_strv_foreach (id, &ids) {
		_cleanup_free_ char *dir = bv_path_join(root, *id);
		struct bv_strv versions = BV_STRV_INIT;
		names_in(&versions, dir, true);
		bv_strv_foreach (v, &versions) {
			struct bv_data_entry e;
			struct bv_error *e2 = NULL;
			if (bv_data_lookup(&e, cache, *id, *v, &e2) < 0) {
				bv_error_free(e2);
				continue; /* being fetched, or without its record */
			}
			BV_GROW(list, alloc, count + 1);
			list[count++] = e;
		}
		bv_strv_clear(&versions);
	}
	bv_strv_clear(&ids);
	*out = list;
	*n = count;
	return 0;
}

/* What differs between a record's file list and a tree's, or NULL when nothing does. */
static char *compare_files(const json_t *want, const json_t *now)
{
	size_t i;
	for (i = 0; i < json_array_size(want) && i < json_array_size(now); i++) {
		const json_t *a = json_array_get(want, i), *b = json_array_get(now, i);
		if (strcmp(jstr(a, "path"), jstr(b, "path")) != 0)
			return bv_xasprintf("'%s' is missing or unexpected",
					    strcmp(jstr(a, "path"), jstr(b, "path")) < 0
						    ? jstr(a, "path")
						    : jstr(b, "path"));
		if (json_integer_value(json_object_get(a, "size")) !=
			    json_integer_value(json_object_get(b, "size")) ||
		    strcmp(jstr(a, "sha256"), jstr(b, "sha256")) != 0 ||
		    strcmp(jstr(a, "link"), jstr(b, "link")) != 0)
			return bv_xasprintf("'%s' has changed", jstr(a, "path"));
	}
	if (json_array_size(want) != json_array_size(now))
		return bv_xasprintf(
			"'%s' is %s",
			jstr(json_array_get(i < json_array_size(want) ? want : now, i), "path"),
			i < json_array_size(want) ? "missing" : "not in the record");
	return NULL;
}

int bv_data_verify_local(char **problem, const char *cache_dir, const char *id, const char *version,
			 struct bv_error **err)
{
	_cleanup_free_ char *owned = NULL, *dir = NULL;
	const char *cache;
	_cleanup_close_ int fd = -1;
	json_t *rec = NULL, *now = json_array();
	uint64_t total = 0;
	int r = cache_of(&owned, &cache, cache_dir, err);
	if (r >= 0)
		r = load_record(&rec, cache, id, version, err);
	if (r < 0) {
		json_decref(now);
		return r;
	}
	dir = dataset_path(cache, id, version, "");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		r = bv_error_set_errno(err, "could not open '%s'", dir);
	else
		r = hash_tree(now, fd, "", 0, &total, err);
	if (r < 0) {
		json_decref(rec);
		json_decref(now);
		return r;
	}
	*problem = compare_files(json_object_get(rec, "files"), now);
	json_decref(rec);
	json_decref(now);
	return *problem ? 0 : 1;
}

int bv_data_import(const char *cache_dir, const char *id, const char *version, const char *sha256,
		   const char *staged_dir, const char *staged_record, struct bv_error **err)
{
	_cleanup_free_ char *owned = NULL, *final = NULL, *record = NULL, *lockp = NULL;
	_cleanup_free_ char *parent = NULL, *problem = NULL;
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_close_ int fd = -1;
	struct bv_lock lk = BV_LOCK_INIT;
	const char *cache;
	json_t *rec = NULL, *now = json_array();
	uint64_t total = 0;
	int r = cache_of(&owned, &cache, cache_dir, err);
	if (r >= 0)
		r = bv_buf_read_file(&text, staged_record, RECORD_MAX, err);
	if (r >= 0) {
		rec = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(rec) || !json_is_array(json_object_get(rec, "files")) ||
		    strcmp(jstr(rec, "id"), id) || strcmp(jstr(rec, "version"), version) ||
		    (sha256 && sha256[0] && strcmp(jstr(rec, "sha256"), sha256)))
			r = bv_error_setc(err, BV_EINVALID, 0, "its record does not match bv.lock");
	}
	if (r >= 0) {
		fd = open(staged_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			r = bv_error_set_errno(err, "could not open '%s'", staged_dir);
	}
	/* every byte against the record, the record against bv.lock: then it counts as fetched */
	if (r >= 0)
		r = hash_tree(now, fd, "", 0, &total, err);
	if (r >= 0 && (problem = compare_files(json_object_get(rec, "files"), now)))
		r = bv_error_setc(err, BV_EINVALID, 0, "%s", problem);
	json_decref(rec);
	json_decref(now);
	if (r < 0)
		return bv_error_wrap(err, r, "dataset %s %s in the bundle", id, version);
	final = dataset_path(cache, id, version, "");
	record = dataset_path(cache, id, version, ".json");
	lockp = dataset_path(cache, id, version, ".lock");
	parent = bv_xasprintf("%s/data/%s", cache, id);
	r = bv_mkdir_p(parent, 0755, err);
	if (r >= 0)
		r = bv_lock_acquire(&lk, lockp, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	if (bv_path_exists(final) && bv_path_exists(record))
		goto done; /* another fetch or bundle was first */
	if (bv_path_exists(final))
		r = bv_rm_rf(final, err); /* a crash between the two renames */
	if (r >= 0 && renameat2(AT_FDCWD, staged_dir, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
		r = bv_error_set_errno(err, "could not rename '%s' to '%s'", staged_dir, final);
	if (r >= 0 && fchmod(fd, 0555) < 0)
		r = bv_error_set_errno(err, "could not make '%s' read-only", final);
	if (r >= 0)
		r = bv_write_file_atomic(record, text.buf, text.len, 0644, err);
done:
	bv_lock_release(&lk);
	return r;
}

static int remove_one(const char *cache, const char *id, const char *version, struct bv_error **err)
{
	_cleanup_free_ char *dir = dataset_path(cache, id, version, "");
	_cleanup_free_ char *rec = dataset_path(cache, id, version, ".json");
	_cleanup_free_ char *lockp = dataset_path(cache, id, version, ".lock");
	struct bv_lock lk = BV_LOCK_INIT;
	int r = bv_lock_acquire(&lk, lockp, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	/* the record first: without it the directory no longer counts as present */
	if (unlink(rec) < 0 && errno != ENOENT)
		r = bv_error_set_errno(err, "could not remove '%s'", rec);
	if (r == 0)
		r = bv_unpack_remove_tree(dir, err);
	/* the lock file stays: a process waiting on it would otherwise hold a lock on a file
	 * nobody else can find, and fetch beside a third one */
	bv_lock_release(&lk);
	return r;
}

int bv_data_remove(size_t *removed, const char *cache_dir, const char *id, const char *version,
		   struct bv_error **err)
{
	_cleanup_free_ char *owned = NULL, *dir = NULL;
	const char *cache;
	struct bv_strv versions = BV_STRV_INIT;
	size_t count = 0;
	int r = 0;
	if (cache_of(&owned, &cache, cache_dir, err) < 0)
		return BV_ERR;
	if (!bv_valid_name(id) || (version && !bv_valid_name(version)))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid dataset '%s'", id);
	dir = bv_xasprintf("%s/data/%s", cache, id);
	names_in(&versions, dir, true);
	bv_strv_foreach (v, &versions) {
		if (version && strcmp(*v, version) != 0)
			continue;
		r = remove_one(cache, id, *v, err);
		if (r < 0)
			break;
		count++;
	}
	bv_strv_clear(&versions);
	if (r < 0)
		return r;
	if (!count)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "dataset %s%s%s is not in the cache", id,
				     version ? " " : "", version ? version : "");
	(void)rmdir(dir);
	*removed = count;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Checking the registry's servers */

struct check {
	struct bv_data_check *res;
	const struct bv_dataset *d;
	char *url;
	CURL *curl;
	bool ranged, started, done;
	size_t body;
	char errbuf[CURL_ERROR_SIZE];
	char *content_range;
	struct xfer hdr; /* only its content_range, through on_header */
};

static size_t on_check_body(char *data, size_t size, size_t n, void *payload)
{
	struct check *c = payload;
	(void)data;
	c->body += size * n;
	/* a server that ignores Range sends the whole file: its size is known, stop there */
	return c->body > CHECK_BODY_MAX ? 0 : size * n;
}

static int check_start(const struct bv_curl *cu, CURLM *multi, struct check *c)
{
	CURL *h = cu->easy_init();
	if (!h)
		return BV_ERR;
	c->curl = h;
	c->body = 0;
	free(c->hdr.content_range);
	c->hdr.content_range = NULL;
	setup_common(cu, h, c->url, c->errbuf);
	cu->easy_setopt(h, CURLOPT_PRIVATE, (void *)c);
	cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	cu->easy_setopt(h, CURLOPT_HEADERDATA, (void *)&c->hdr);
	cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_check_body);
	cu->easy_setopt(h, CURLOPT_WRITEDATA, (void *)c);
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	if (c->ranged)
		cu->easy_setopt(h, CURLOPT_RANGE, "0-0");
	else
		cu->easy_setopt(h, CURLOPT_NOBODY, 1L);
	c->started = true;
	return cu->multi_add_handle(multi, h) == CURLM_OK ? 0 : BV_ERR;
}

static void check_result(struct check *c, enum bv_data_status st, int64_t actual, char *detail,
			 double tolerance)
{
	c->done = true;
	c->res->actual = actual;
	c->res->detail = detail;
	if (st != BV_DATA_PASS) {
		c->res->status = st;
		return;
	}
	c->res->status = BV_DATA_PASS;
	if (c->res->declared > 0 && actual >= 0) {
		double diff = (double)(actual - c->res->declared) / (double)c->res->declared;
		if (diff < 0)
			diff = -diff;
		if (diff > tolerance)
			c->res->status = BV_DATA_MISMATCH;
	}
}

/* A finished request: a result, or (HEAD refused or silent) the ranged GET next. */
static bool check_done(const struct bv_curl *cu, struct check *c, CURLcode rc, double tolerance)
{
	long status = 0;
	curl_off_t len = -1;
	bool plain_remote, http = effective_is_http(cu, c->curl, &plain_remote);
	int64_t actual = -1;
	cu->easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	cu->easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	if (plain_remote) {
		check_result(c, BV_DATA_FAIL, -1,
			     bv_xstrdup("redirected to plain http on a non-loopback host"),
			     tolerance);
		return false;
	}
	if (rc != CURLE_OK && !(c->ranged && rc == CURLE_WRITE_ERROR)) {
		if (!c->ranged && http && rc != CURLE_COULDNT_CONNECT &&
		    rc != CURLE_COULDNT_RESOLVE_HOST)
			return true;
		check_result(c, BV_DATA_FAIL, -1,
			     bv_xstrdup(c->errbuf[0] ? c->errbuf : cu->easy_strerror(rc)),
			     tolerance);
		return false;
	}
	if (!http) {
		check_result(c, BV_DATA_PASS, len >= 0 ? (int64_t)len : -1, NULL, tolerance);
		return false;
	}
	if (!c->ranged && (status == 405 || status == 403 || status == 501 || status == 400 ||
			   (status == 200 && len < 0)))
		return true;
	if (status == 206 && c->hdr.content_range) {
		const char *slash = strrchr(c->hdr.content_range, '/');
		if (slash && slash[1] != '*')
			actual = strtoll(slash + 1, NULL, 10);
	} else if (status == 200) {
		actual = len >= 0 ? (int64_t)len : -1;
	} else {
		check_result(c, BV_DATA_FAIL, -1, bv_xasprintf("the server returned %ld", status),
			     tolerance);
		return false;
	}
	check_result(c, BV_DATA_PASS, actual, NULL, tolerance);
	return false;
}

void bv_data_checks_free(struct bv_data_check *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i].detail);
	free(c);
}

int bv_data_check_remote(struct bv_data_check **out, const struct bv_dataset *const *sets, size_t n,
			 double tolerance, const struct bv_data_options *o, struct bv_error **err)
{
	static const struct bv_data_options none;
	const struct bv_curl *cu = NULL;
	struct bv_data_check *res;
	struct check *cs;
	CURLM *multi;
	size_t running = 0, left = n;
	unsigned jobs;

	if (bv_offline())
		return bv_offline_error(err, "ask the servers of reference data");
	cu = bv_curl_get(err);
	if (!cu)
		return BV_ERR;
	o = o ? o : &none;
	jobs = o->jobs ? o->jobs : 8;
	multi = cu->multi_init();
	if (!multi)
		return bv_error_set(err, "could not create a libcurl multi handle");
	res = bv_xcalloc(n ? n : 1, sizeof(*res));
	cs = bv_xcalloc(n ? n : 1, sizeof(*cs));
	for (size_t i = 0; i < n; i++) {
		const char *why;
		cs[i].res = &res[i];
		cs[i].d = sets[i];
		res[i].declared = sets[i]->size_bytes;
		res[i].actual = -1;
		if (!sets[i]->source_urls.n) {
			check_result(&cs[i], BV_DATA_FAIL, -1, bv_xstrdup("no source_urls"),
				     tolerance);
			left--;
			continue;
		}
		cs[i].url = bv_data_mirror_apply(o->mirrors, sets[i]->source_urls.v[0]);
		if (!bv_data_url_allowed(cs[i].url, &why)) {
			check_result(&cs[i], BV_DATA_FAIL, -1, bv_xstrdup(why), tolerance);
			left--;
		}
	}
	while (left) {
		int still, queued;
		CURLMsg *msg;
		for (size_t i = 0; i < n && running < jobs; i++)
			if (!cs[i].done && !cs[i].started) {
				if (check_start(cu, multi, &cs[i]) < 0) {
					check_result(&cs[i], BV_DATA_FAIL, -1,
						     bv_xstrdup("libcurl refused the request"),
						     tolerance);
					left--;
					continue;
				}
				running++;
			}
		if (cu->multi_perform(multi, &still) != CURLM_OK)
			break;
		while ((msg = cu->multi_info_read(multi, &queued))) {
			char *priv = NULL;
			struct check *c;
			bool again;
			if (msg->msg != CURLMSG_DONE)
				continue;
			cu->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			c = (struct check *)(void *)priv;
			again = check_done(cu, c, msg->data.result, tolerance);
			cu->multi_remove_handle(multi, c->curl);
			cu->easy_cleanup(c->curl);
			c->curl = NULL;
			running--;
			if (again) {
				c->ranged = true;
				c->started = false;
			} else {
				left--;
			}
		}
		if (left && cu->multi_poll(multi, NULL, 0, 200, NULL) != CURLM_OK)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (cs[i].curl) {
			cu->multi_remove_handle(multi, cs[i].curl);
			cu->easy_cleanup(cs[i].curl);
		}
		if (!cs[i].done)
			check_result(&cs[i], BV_DATA_FAIL, -1, bv_xstrdup("not checked"),
				     tolerance);
		free(cs[i].url);
		free(cs[i].hdr.content_range);
	}
	free(cs);
	cu->multi_cleanup(multi);
	*out = res;
	return 0;
}
