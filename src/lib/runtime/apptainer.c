/*
 * apptainer.c - the Apptainer (Singularity) backend: SIF files pulled with `apptainer pull`
 * from the locked reference pinned by digest, kept in bv's cache under that digest, and run
 * with `apptainer run` (see include/bv/apptainer.h for the layout, apptainer-internal.h for the
 * command lines).
 *
 * Concurrency.  Jobs on many nodes share one cache over NFS.  A pull holds an exclusive OFD
 * lock on sif/sha256-<hex>.lock (OFD locks reach the NFS server; the kernel drops them when a
 * process dies), checks again whether another process finished the image meanwhile, pulls
 * into a staging file of its own, hashes it, writes the record, and renames the staging
 * file onto the final name.  A reader therefore sees no SIF, or a complete one whose record
 * is already there.  Staging files left by killed jobs are removed after a day.
 */
#include <bv/error.h>
#include <bv/paths.h>
#include <bv/runtime.h>
#include <bv/store.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/oci/registry/imageref-internal.h"
#include "lib/runtime/apptainer-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define SHA256_PREFIX     "sha256:"
#define SHA256_PREFIX_LEN 7
#define RECORD_MAX        (64u * 1024)
#define TAIL_KEEP         (16u * 1024) /* bytes of apptainer's output kept for errors */
#define TAIL_LINES        10
#define VERSION_MAX       (64u * 1024)
#define STAGING_STALE_S   (24 * 3600) /* a pull of a huge image on a slow link takes hours */
#define CAPTURE_MAX       (256u * 1024 * 1024)

/* ---- pure parts: sources and command lines ---------------------------------------------- */

void bv_apptainer_source_release(struct bv_apptainer_source *s)
{
	free(s->uri);
	free(s->host);
	s->uri = s->host = NULL;
	s->plain_http = false;
}

int bv_apptainer_source(struct bv_apptainer_source *out, const char *reference, const char *digest,
			const struct bv_mirrors *mirrors, struct bv_error **err)
{
	struct bv_imageref ref = {0};
	const char *host;
	int r;
	if (!bv_digest_valid(digest))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid image digest '%s' for '%s'",
				     digest ? digest : "", reference);
	r = bv_imageref_parse(&ref, reference, err);
	if (r < 0)
		return r;
	if (ref.digest && strcmp(ref.digest, digest) != 0) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "image reference '%s' names a digest other than the locked %s",
				  reference, digest);
		bv_imageref_release(&ref);
		return r;
	}
	host = mirrors ? bv_mirrors_lookup(mirrors, ref.registry) : NULL;
	if (!host)
		host = ref.registry;
	/*
	 * Tag dropped: containers/image (inside Apptainer) refuses a tag and a digest together
	 * in older versions, and the digest alone is what bv.lock pins.  Docker Hub is written
	 * out as docker.io; a mirror gets the same repository path, as in bv's own client.
	 */
	out->uri = bv_xasprintf("docker://%s/%s@%s", host, ref.repository, digest);
	out->host = bv_xstrdup(host);
	/* bv's registry client speaks plain http to the same hosts (registry-internal.h). */
	out->plain_http = bv_imageref_host_is_loopback(host) ||
			  (mirrors && bv_mirrors_insecure(mirrors, host));
	bv_imageref_release(&ref);
	return 0;
}

void bv_apptainer_pull_argv(struct bv_strv *argv, const char *bin, const char *staging,
			    const struct bv_apptainer_source *src)
{
	bv_strv_push(argv, bin);
	bv_strv_push(argv, "pull");
	bv_strv_push(argv, "--disable-cache");
	if (src->plain_http)
		bv_strv_push(argv, "--no-https");
	bv_strv_push(argv, staging);
	bv_strv_push(argv, src->uri);
}

bool bv_apptainer_wants_cache_fallbacks(const struct bv_run_request *req)
{
	for (size_t i = 0; i < req->n_mounts; i++)
		if (req->mounts[i].kind == BV_MOUNT_CACHE)
			return false;
	return true;
}

static bool mount_targets(const struct bv_run_request *req, const char *target)
{
	for (size_t i = 0; i < req->n_mounts; i++)
		if (!strcmp(req->mounts[i].target, target))
			return true;
	return false;
}

/* Apptainer's --bind splits its argument at ',' (several binds) and ':' (fields). */
static int check_bind_path(const char *path, const char *what, struct bv_error **err)
{
	if (!path || !*path)
		return bv_error_setc(err, BV_EINVALID, 0, "mount with an empty %s path", what);
	if (strpbrk(path, ",:"))
		return bv_error_setc(
			err, BV_EINVALID, 0,
			"cannot bind '%s' with apptainer: its %s path contains ':' or ','", path,
			what);
	return 0;
}

static bool env_name_valid(const char *s, size_t len)
{
	if (!len || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* SINGULARITYENV_ for the singularity binary, APPTAINERENV_ for apptainer (and others). */
static const char *env_prefix(const char *bin)
{
	const char *base = strrchr(bin, '/');
	base = base ? base + 1 : bin;
	return bv_str_has_prefix(base, "singularity") ? "SINGULARITYENV_" : "APPTAINERENV_";
}

int bv_apptainer_run_argv(struct bv_strv *argv, struct bv_strv *env, const char *bin,
			  const char *sif, const struct bv_run_request *req,
			  const char *fallback_dir, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv a = BV_STRV_INIT, e = BV_STRV_INIT;
	const char *workdir = req->workdir ? req->workdir : "/";
	int r;
	if (workdir[0] != '/')
		return bv_error_setc(err, BV_EINVALID, 0,
				     "working directory '%s' is not an absolute path", workdir);
	bv_strv_push(&a, bin);
	/* exec runs exactly argv (every Apptainer and Singularity has it); only a request for
	 * the image's own command needs run. */
	bv_strv_push(&a, req->argv && req->argv[0] ? "exec" : "run");
	/* Nothing of bv's environment or home reaches the tool: the run is reproducible. */
	bv_strv_push(&a, "--cleanenv");
	bv_strv_push(&a, "--no-home");
	bv_strv_push(&a, "--pwd");
	bv_strv_push(&a, workdir);
	for (size_t i = 0; i < req->n_mounts; i++) {
		const struct bv_run_mount *m = &req->mounts[i];
		if ((r = check_bind_path(m->host, "host", err)) < 0 ||
		    (r = check_bind_path(m->target, "container", err)) < 0)
			return r;
		if (m->target[0] != '/')
			return bv_error_setc(err, BV_EINVALID, 0,
					     "mount target '%s' is not an absolute path",
					     m->target);
		bv_strv_push(&a, "--bind");
		bv_strv_pushf(&a, "%s:%s%s", m->host, m->target, m->read_only ? ":ro" : "");
	}
	if (fallback_dir && bv_apptainer_wants_cache_fallbacks(req)) {
		static const char *const targets[] = {"/cache", "/root/.cache"};
		static const char *const names[] = {"cache", "root-cache"};
		for (size_t i = 0; i < BV_ARRAY_SIZE(targets); i++) {
			_cleanup_free_ char *host = NULL;
			if (mount_targets(req, targets[i]))
				continue;
			host = bv_path_join(fallback_dir, names[i]);
			if ((r = check_bind_path(host, "host", err)) < 0)
				return r;
			bv_strv_push(&a, "--bind");
			bv_strv_pushf(&a, "%s:%s", host, targets[i]);
		}
	}
	if (req->gpu)
		bv_strv_push(&a, "--nv");
	for (const char *const *kv = req->env; kv && *kv; kv++) {
		const char *eq = strchr(*kv, '=');
		if (!eq || !env_name_valid(*kv, (size_t)(eq - *kv)))
			return bv_error_setc(err, BV_EINVALID, 0,
					     "invalid environment entry '%s': expected NAME=value",
					     *kv);
		/* --env is parsed as one CSV record of K=V fields. */
		if (strpbrk(eq + 1, ",\"\n\r")) {
			bv_strv_pushf(&e, "%s%s", env_prefix(bin), *kv);
		} else {
			bv_strv_push(&a, "--env");
			bv_strv_push(&a, *kv);
		}
	}
	bv_strv_push(&a, sif);
	for (const char *const *arg = req->argv; arg && *arg; arg++)
		bv_strv_push(&a, *arg);
	bv_strv_pushv(argv, (const char *const *)a.v);
	bv_strv_pushv(env, (const char *const *)e.v);
	return 0;
}

char *bv_apptainer_parse_version(const char *text)
{
	const char *end, *v, *key = " version ";
	if (!text)
		return NULL;
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	end = strchrnul(text, '\n');
	/* "apptainer version 1.3.4": the word after the last " version " of the first line. */
	v = NULL;
	for (const char *p = text; (p = strstr(p, key)) && p < end; p++)
		v = p + strlen(key);
	if (!v)
		v = bv_str_has_prefix(text, "version ") ? text + strlen("version ") : text;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	if (end == v || memchr(v, ' ', (size_t)(end - v)))
		return NULL;
	return bv_xstrndup(v, (size_t)(end - v));
}

/* The SIF of a digest the caller has checked with bv_digest_valid(). */
static char *sif_file(const char *cache_dir, const char *digest)
{
	return bv_xasprintf("%s/sif/sha256-%s.sif", cache_dir, digest + SHA256_PREFIX_LEN);
}

static int invalid_digest(const char *digest, struct bv_error **err)
{
	return bv_error_setc(err, BV_EINVALID, 0, "invalid image digest '%s'",
			     digest ? digest : "");
}

int bv_apptainer_sif_path(char **out, const char *cache_dir, const char *digest,
			  struct bv_error **err)
{
	if (!bv_digest_valid(digest))
		return invalid_digest(digest, err);
	*out = sif_file(cache_dir, digest);
	return 0;
}

/* ---- records ----------------------------------------------------------------------------- */

struct sif_record {
	char sha256[SHA256_PREFIX_LEN + BV_SHA256_HEX_LEN + 1]; /* of the SIF file's bytes */
	int64_t size;
	int64_t mtime_ns;
};

static char *record_path(const char *sif)
{
	return bv_xasprintf("%s.json", sif);
}

static int64_t stat_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + (int64_t)st->st_mtim.tv_nsec;
}

/* BV_ENOTFOUND when there is no record. */
static int record_read(struct sif_record *out, const char *sif, struct bv_error **err)
{
	_cleanup_free_ char *path = record_path(sif);
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_error_t je;
	json_t *doc, *size, *mtime;
	const char *sha;
	int r = bv_buf_read_file(&text, path, RECORD_MAX, err);
	if (r < 0)
		return r;
	doc = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return bv_error_setc(err, BV_EINVALID, 0, "%s:%d:%d: %s", path, je.line, je.column,
				     je.text);
	sha = json_string_value(json_object_get(doc, "sha256"));
	size = json_object_get(doc, "size");
	mtime = json_object_get(doc, "mtime_ns");
	if (!sha || strlen(sha) != sizeof(out->sha256) - 1 || !bv_digest_valid(sha) ||
	    !json_is_integer(size) || !json_is_integer(mtime) || json_integer_value(size) < 0) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "%s: expected \"sha256\", \"size\" and \"mtime_ns\"", path);
	}
	memcpy(out->sha256, sha, sizeof(out->sha256));
	out->size = json_integer_value(size);
	out->mtime_ns = json_integer_value(mtime);
	json_decref(doc);
	return 0;
}

static int record_write(const char *sif, const struct sif_record *rec, const char *reference,
			const char *digest, const char *source, struct bv_error **err)
{
	_cleanup_free_ char *path = record_path(sif);
	json_t *doc = json_object();
	char *text;
	int r;
	json_object_set_new(doc, "sha256", json_string(rec->sha256));
	json_object_set_new(doc, "size", json_integer(rec->size));
	json_object_set_new(doc, "mtime_ns", json_integer(rec->mtime_ns));
	json_object_set_new(doc, "digest", json_string(digest));
	if (reference)
		json_object_set_new(doc, "reference", json_string(reference));
	if (source)
		json_object_set_new(doc, "source", json_string(source));
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		bv_oom();
	r = bv_write_file_atomic(path, text, strlen(text), 0644, err);
	free(text);
	return r;
}

/*
 * Hashes the file at `path`; with `sync`, also fsyncs it (staging files, before they are
 * published).  *st_out is the file's state after reading.
 */
static int hash_file(const char *path, bool sync,
		     char out[SHA256_PREFIX_LEN + BV_SHA256_HEX_LEN + 1], struct stat *st_out,
		     struct bv_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char hex[BV_SHA256_HEX_LEN + 1];
	if (fd < 0)
		return bv_error_set_errno(err, "could not open '%s'", path);
	if (bv_sha256_fd_hex(fd, hex, NULL) < 0)
		return bv_error_set_errno(err, "could not read '%s'", path);
	if (sync && fsync(fd) < 0)
		return bv_error_set_errno(err, "could not sync '%s'", path);
	if (fstat(fd, st_out) < 0)
		return bv_error_set_errno(err, "could not stat '%s'", path);
	memcpy(out, SHA256_PREFIX, SHA256_PREFIX_LEN);
	memcpy(out + SHA256_PREFIX_LEN, hex, BV_SHA256_HEX_LEN + 1);
	return 0;
}

enum sif_state {
	SIF_MISSING,   /* no SIF file */
	SIF_OK,        /* size and mtime match the record */
	SIF_UNCERTAIN, /* a SIF whose record is missing, unreadable or does not match */
};

/* The cheap check of every run: existence, then size and mtime against the record. */
static enum sif_state sif_check(const char *sif, struct stat *st_out, struct sif_record *rec_out)
{
	struct stat st;
	struct sif_record rec;
	if (stat(sif, &st) < 0 || !S_ISREG(st.st_mode))
		return SIF_MISSING;
	if (st_out)
		*st_out = st;
	if (record_read(&rec, sif, NULL) < 0)
		return SIF_UNCERTAIN;
	if (rec_out)
		*rec_out = rec;
	if (rec.size != (int64_t)st.st_size || rec.mtime_ns != stat_mtime_ns(&st))
		return SIF_UNCERTAIN;
	return SIF_OK;
}

int bv_apptainer_verify(struct bv_strv *problems, uint64_t *checked_out, const char *cache_dir,
			struct bv_error **err)
{
	_cleanup_free_ char *dir = bv_path_join(cache_dir, "sif");
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t checked = 0;
	if (!d) {
		if (errno == ENOENT) {
			if (checked_out)
				*checked_out = 0;
			return 0;
		}
		return bv_error_set_errno(err, "could not open '%s'", dir);
	}
	while ((errno = 0, de = readdir(d))) {
		_cleanup_free_ char *sif = NULL;
		struct sif_record rec;
		struct bv_error *e = NULL;
		char actual[SHA256_PREFIX_LEN + BV_SHA256_HEX_LEN + 1];
		struct stat st;
		int r;
		if (!bv_str_has_prefix(de->d_name, "sha256-") ||
		    !bv_str_has_suffix(de->d_name, ".sif"))
			continue;
		sif = bv_path_join(dir, de->d_name);
		if (stat(sif, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		checked++;
		r = record_read(&rec, sif, &e);
		if (r == BV_ENOTFOUND) {
			bv_strv_pushf(problems, "SIF %s: no record", de->d_name);
		} else if (r < 0) {
			char *msg = bv_error_format(e);
			bv_strv_pushf(problems, "SIF %s: record cannot be read: %s", de->d_name,
				      msg);
			free(msg);
		}
		bv_error_free(e);
		e = NULL;
		if (r < 0)
			continue;
		if (hash_file(sif, false, actual, &st, err) < 0)
			return BV_ERR;
		if (strcmp(actual, rec.sha256) != 0)
			bv_strv_pushf(problems, "SIF %s: %s does not match its record (%s)",
				      de->d_name, actual, rec.sha256);
	}
	if (errno)
		return bv_error_set_errno(err, "could not read '%s'", dir);
	if (checked_out)
		*checked_out = checked;
	return 0;
}

/* ---- subprocesses ------------------------------------------------------------------------ */

/*
 * The last TAIL_LINES lines of `text`, each made safe for a terminal and indented, for the
 * end of an error message.
 */
static char *tail_lines(const char *text, size_t len)
{
	struct bv_buf out = BV_BUF_INIT;
	size_t start = len, lines = 0;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	start = len;
	while (start > 0) {
		if (text[start - 1] == '\n' && ++lines == TAIL_LINES)
			break;
		start--;
	}
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t n = nl ? (size_t)(nl - (text + start)) : len - start;
		char *shown;
		if (n && text[start + n - 1] == '\r')
			n--;
		shown = bv_str_shown(text + start, n, 1000);
		bv_buf_printf(&out, "\n    %s", shown);
		free(shown);
		start += (nl ? (size_t)(nl - (text + start)) : len - start) + 1;
	}
	return bv_buf_detach(&out, NULL);
}

static void keep_tail(const char *data, size_t len, void *payload)
{
	struct bv_buf *tail = payload;
	bv_buf_add(tail, data, len);
	if (tail->len > 2 * TAIL_KEEP) {
		memmove(tail->buf, tail->buf + tail->len - TAIL_KEEP, TAIL_KEEP);
		bv_buf_setlen(tail, TAIL_KEEP);
	}
}

/* Runs `p` with stdout and stderr merged into a pipe; keeps the last TAIL_KEEP bytes. */
static int run_tail(struct bv_proc *p, struct bv_buf *tail, int *status, struct bv_error **err)
{
	return bv_proc_stream(status, p, keep_tail, tail, err);
}

/* Runs `p` with stdin from /dev/null and stdout and stderr captured separately. */
static int run_capture(struct bv_proc *p, struct bv_buf *out, struct bv_buf *errb, int *status,
		       struct bv_error **err)
{
	char chunk[8192];
	int r;
	p->out = -1;
	p->err = -1;
	p->no_stdin = true;
	r = bv_proc_start(p, err);
	if (r < 0)
		return r;
	for (;;) {
		struct pollfd fds[2] = {{.fd = p->out, .events = POLLIN},
					{.fd = p->err, .events = POLLIN}};
		if (p->out < 0 && p->err < 0)
			break;
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &p->out : &p->err;
			struct bv_buf *b = i == 0 ? out : errb;
			ssize_t n;
			if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(*fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (b->len + (size_t)n > CAPTURE_MAX)
				continue; /* keep draining, so the tool is not blocked */
			bv_buf_add(b, chunk, (size_t)n);
		}
	}
	return bv_proc_finish(status, p, err);
}

/* ---- the backend --------------------------------------------------------------------------- */

struct apptainer {
	struct bv_runtime rt; /* first: the runtime pointer is the allocation */
	char *bin;            /* the binary, once found */
	char *cache;          /* bv's cache directory, once needed */
	struct bv_mirrors *mirrors;
	bool mirrors_loaded;
};

static struct apptainer *self(struct bv_runtime *rt)
{
	return rt->state;
}

static bool is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *search_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (;;) {
		const char *end = strchrnul(path, ':');
		_cleanup_free_ char *dir =
			end == path ? bv_xstrdup(".") : bv_xstrndup(path, (size_t)(end - path));
		char *candidate = bv_path_join(dir, name);
		if (is_executable_file(candidate))
			return candidate;
		free(candidate);
		if (!*end)
			return NULL;
		path = end + 1;
	}
}

/* BV_APPTAINER (a path, or a name looked up in PATH), else apptainer, else singularity. */
static int find_bin(struct apptainer *a, struct bv_error **err)
{
	const char *want = getenv("BV_APPTAINER");
	if (a->bin)
		return 0;
	if (want && *want) {
		if (strchr(want, '/')) {
			if (is_executable_file(want))
				a->bin = bv_xstrdup(want);
		} else {
			a->bin = search_path(want);
		}
		if (!a->bin)
			return bv_error_setc(
				err, BV_ENOTFOUND, 0,
				"apptainer not found: BV_APPTAINER names '%s', which is "
				"not an executable file%s",
				want, strchr(want, '/') ? "" : " on PATH");
		return 0;
	}
	a->bin = search_path("apptainer");
	if (!a->bin)
		a->bin = search_path("singularity");
	if (!a->bin)
		return bv_error_setc(
			err, BV_ENOTFOUND, 0,
			"apptainer not found: neither 'apptainer' nor 'singularity' is "
			"on PATH (set BV_APPTAINER to its path)");
	return 0;
}

static int cache_dir(struct apptainer *a, struct bv_error **err)
{
	return a->cache ? 0 : bv_cache_dir(&a->cache, err);
}

static bool apptainer_is_usable(struct bv_runtime *rt)
{
	return find_bin(self(rt), NULL) == 0;
}

static int apptainer_health(struct bv_runtime *rt, struct bv_runtime_info *out,
			    struct bv_error **err)
{
	struct apptainer *a = self(rt);
	struct bv_proc p = BV_PROC_INIT;
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	char *version;
	int status = 0, r = find_bin(a, err);
	if (r < 0)
		return r;
	bv_strv_push(&p.args, a->bin);
	bv_strv_push(&p.args, "--version");
	r = run_tail(&p, &text, &status, err);
	bv_proc_clear(&p);
	if (r < 0)
		return bv_error_wrap(err, r, "could not ask '%s' for its version", a->bin);
	version = status == 0 ? bv_apptainer_parse_version(text.buf) : NULL;
	if (!version) {
		_cleanup_free_ char *tail = tail_lines(text.buf, text.len);
		return bv_error_set(err, "'%s --version' %s%s", a->bin,
				    status ? "failed" : "printed no version", tail);
	}
	out->name = bv_xstrdup("apptainer");
	out->version = version;
	out->detail = bv_xstrdup(a->bin);
	return 0;
}

static int load_mirrors(struct apptainer *a, struct bv_error **err)
{
	int r;
	if (a->mirrors_loaded)
		return 0;
	r = bv_mirrors_load(&a->mirrors, err);
	if (r < 0)
		return r;
	a->mirrors_loaded = true;
	return 0;
}

/* Staging files of pulls killed before they could clean up (a job's time limit). */
static void clean_stale_staging(const char *tmp)
{
	_cleanup_closedir_ DIR *d = opendir(tmp);
	struct dirent *de;
	time_t now = time(NULL);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || !bv_str_has_suffix(de->d_name, ".sif"))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && now - st.st_mtime > STAGING_STALE_S)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
}

static char *staging_path(const char *tmp, const char *hex)
{
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rnd = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid();
	}
	return bv_xasprintf("%s/%s.%ld.%08" PRIx32 ".sif", tmp, hex, (long)getpid(), rnd);
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Pulls `image` into `sif` (the caller holds its lock and has removed any old copy). */
static int pull_one(struct apptainer *a, const struct bv_image_spec *image, const char *sif,
		    const char *tmp, struct bv_error **err)
{
	struct bv_apptainer_source src = {0};
	struct bv_proc p = BV_PROC_INIT;
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT;
	_cleanup_free_ char *staging = NULL;
	struct sif_record rec = {0};
	struct stat st;
	int status = 0, r;
	r = bv_apptainer_source(&src, image->reference, image->digest, a->mirrors, err);
	if (r < 0)
		return r;
	staging = staging_path(tmp, image->digest + SHA256_PREFIX_LEN);
	bv_apptainer_pull_argv(&p.args, a->bin, staging, &src);
	r = run_tail(&p, &out, &status, err);
	bv_proc_clear(&p);
	if (r < 0) {
		r = bv_error_wrap(err, r, "could not run '%s'", a->bin);
		goto out;
	}
	if (status != 0) {
		_cleanup_free_ char *tail = tail_lines(out.buf, out.len);
		r = bv_error_set(err, "apptainer could not pull %s (exit status %d)%s", src.uri,
				 status, tail);
		goto out;
	}
	r = hash_file(staging, true, rec.sha256, &st, err);
	if (r < 0) {
		r = bv_error_wrap(err, r, "apptainer pull of %s reported success", src.uri);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		r = bv_error_set(err, "apptainer pull of %s wrote an empty image", src.uri);
		goto out;
	}
	rec.size = (int64_t)st.st_size;
	rec.mtime_ns = stat_mtime_ns(&st);
	/* Record first: rename(2) keeps the mtime, and a SIF never appears without its record. */
	r = record_write(sif, &rec, image->reference, image->digest, src.uri, err);
	if (r < 0)
		goto out;
	if (rename(staging, sif) < 0) {
		r = bv_error_set_errno(err, "could not move '%s' to '%s'", staging, sif);
		goto out;
	}
	{
		/* the rename is durable once the SIF's directory is */
		_cleanup_free_ char *dir = bv_xstrndup(sif, (size_t)(strrchr(sif, '/') - sif));
		sync_dir(dir);
	}
	r = 0;
out:
	if (r < 0 && staging)
		(void)unlink(staging);
	bv_apptainer_source_release(&src);
	return r;
}

/*
 * A SIF whose size or mtime differs from its record: the same bytes (copied, touched) get a
 * fresh record; anything else is removed so that it is pulled again.  Sets *ok.
 */
static int recheck(const char *sif, const struct bv_image_spec *image, bool *ok,
		   struct bv_error **err)
{
	struct sif_record rec, now = {0};
	struct stat st;
	bool have_record = record_read(&rec, sif, NULL) == 0;
	_cleanup_free_ char *record = record_path(sif);
	int r = hash_file(sif, false, now.sha256, &st, err);
	if (r < 0)
		return r;
	*ok = have_record && !strcmp(rec.sha256, now.sha256) && rec.size == (int64_t)st.st_size;
	if (*ok) {
		now.size = (int64_t)st.st_size;
		now.mtime_ns = stat_mtime_ns(&st);
		return record_write(sif, &now, image->reference, image->digest, NULL, err);
	}
	if (unlink(sif) < 0 && errno != ENOENT)
		return bv_error_set_errno(err, "could not remove '%s'", sif);
	if (unlink(record) < 0 && errno != ENOENT)
		return bv_error_set_errno(err, "could not remove '%s'", record);
	return 0;
}

static char *lock_path(const char *cache, const char *digest)
{
	return bv_xasprintf("%s/sif/sha256-%s.lock", cache, digest + SHA256_PREFIX_LEN);
}

static int ensure_one(struct apptainer *a, const struct bv_image_spec *image, const char *tmp,
		      struct bv_error **err)
{
	_cleanup_free_ char *sif = NULL, *lockfile = NULL;
	struct bv_lock lk = BV_LOCK_INIT;
	enum sif_state state;
	bool ok = false;
	int r;
	if (!bv_digest_valid(image->digest))
		return invalid_digest(image->digest, err);
	sif = sif_file(a->cache, image->digest);
	/* Warm syncs on a shared file system: two stats and a small read, no lock. */
	if (sif_check(sif, NULL, NULL) == SIF_OK)
		return 0;
	lockfile = lock_path(a->cache, image->digest);
	r = bv_lock_acquire(&lk, lockfile, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	/* Another process may have pulled it while this one waited for the lock. */
	state = sif_check(sif, NULL, NULL);
	if (state == SIF_OK)
		goto out;
	if (state == SIF_UNCERTAIN) {
		r = recheck(sif, image, &ok, err);
		if (r < 0 || ok)
			goto out;
	}
	r = pull_one(a, image, sif, tmp, err);
out:
	bv_lock_release(&lk);
	return r;
}

static int apptainer_ensure(struct bv_runtime *rt, const struct bv_image_spec *images, size_t n,
			    const struct bv_ensure_options *o, struct bv_error **err)
{
	struct apptainer *a = self(rt);
	_cleanup_free_ char *tmp = NULL;
	int r;
	(void)o; /* pulls run one after another: each is Apptainer's own parallel download */
	if ((r = find_bin(a, err)) < 0 || (r = cache_dir(a, err)) < 0 ||
	    (r = load_mirrors(a, err)) < 0)
		return r;
	tmp = bv_xasprintf("%s/sif/tmp", a->cache);
	r = bv_mkdir_p(tmp, 0755, err);
	if (r < 0)
		return r;
	clean_stale_staging(tmp);
	for (size_t i = 0; i < n; i++) {
		r = ensure_one(a, &images[i], tmp, err);
		if (r < 0)
			return bv_error_wrap(err, r, "could not get %s%s%s for apptainer",
					     images[i].reference, images[i].tool_id ? " of " : "",
					     images[i].tool_id ? images[i].tool_id : "");
	}
	return 0;
}

/* The SIF path of a locked image, after checking its digest and finding the cache. */
static int sif_of_image(struct apptainer *a, const struct bv_image_spec *image, char **sif_out,
			struct bv_error **err)
{
	int r;
	*sif_out = NULL;
	if (!bv_digest_valid(image->digest)) {
		invalid_digest(image->digest, err);
		return BV_EINVALID;
	}
	if ((r = cache_dir(a, err)) < 0)
		return r;
	*sif_out = sif_file(a->cache, image->digest);
	return *sif_out ? 0 : BV_ERR;
}

static int apptainer_is_available(struct bv_runtime *rt, const struct bv_image_spec *image,
				  bool *available_out, struct bv_error **err)
{
	struct apptainer *a = self(rt);
	_cleanup_free_ char *sif = NULL;
	int r;
	/* a SIF in the cache is of no use without apptainer to run it: say that first */
	if ((r = find_bin(a, err)) < 0 || (r = sif_of_image(a, image, &sif, err)) < 0)
		return r;
	*available_out = sif_check(sif, NULL, NULL) == SIF_OK;
	return 0;
}

static int apptainer_inspect(struct bv_runtime *rt, const struct bv_image_spec *image,
			     struct bv_image_info *out, struct bv_error **err)
{
	struct apptainer *a = self(rt);
	_cleanup_free_ char *sif = NULL;
	struct stat st;
	int r;
	if ((r = sif_of_image(a, image, &sif, err)) < 0)
		return r;
	if (stat(sif, &st) < 0) {
		if (errno == ENOENT)
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "no SIF of %s in the cache: run 'bv sync'",
					     image->reference);
		return bv_error_set_errno(err, "could not stat '%s'", sif);
	}
	out->size = (int64_t)st.st_size;
	return 0;
}

static int apptainer_remove(struct bv_runtime *rt, const struct bv_image_spec *image,
			    struct bv_error **err)
{
	struct apptainer *a = self(rt);
	_cleanup_free_ char *sif = NULL, *record = NULL, *lockfile = NULL;
	struct bv_lock lk = BV_LOCK_INIT;
	int r;
	if ((r = sif_of_image(a, image, &sif, err)) < 0)
		return r;
	record = record_path(sif);
	if (!bv_path_exists(sif) && !bv_path_exists(record))
		return 0;
	lockfile = lock_path(a->cache, image->digest);
	/* Not in the middle of another process's publication. */
	r = bv_lock_acquire(&lk, lockfile, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	/* The SIF first: a record without its SIF is an absent image, the reverse is not. */
	if (unlink(sif) < 0 && errno != ENOENT)
		r = bv_error_set_errno(err, "could not remove '%s'", sif);
	else if (unlink(record) < 0 && errno != ENOENT)
		r = bv_error_set_errno(err, "could not remove '%s'", record);
	bv_lock_release(&lk);
	return r;
}

/* environ with `extra` ("K=V", keys unique) on top. */
static char **exec_env(const struct bv_strv *extra)
{
	struct bv_strv v = BV_STRV_INIT;
	for (char **e = environ; e && *e; e++) {
		size_t klen = (size_t)(strchrnul(*e, '=') - *e);
		bool replaced = false;
		bv_strv_foreach (x, extra)
			if (!strncmp(*x, *e, klen) && (*x)[klen] == '=')
				replaced = true;
		if (!replaced)
			bv_strv_push(&v, *e);
	}
	bv_strv_pushv(&v, (const char *const *)extra->v);
	return bv_strv_detach(&v);
}

/*
 * Becomes apptainer, so that a batch scheduler's signals and the exit status concern the tool
 * directly.  Signal dispositions bv changed (SIGPIPE is ignored for libcurl) and the mask are
 * reset first, as for any child; they are put back if execve() fails.
 */
static int replace_process(const char *bin, const struct bv_strv *argv, const struct bv_strv *env,
			   struct bv_error **err)
{
	static struct sigaction saved[NSIG];
	sigset_t none, old_mask;
	char **envp = exec_env(env);
	int saved_errno;
	for (int s = 1; s < NSIG; s++)
		(void)sigaction(s, NULL, &saved[s]);
	fflush(NULL);
	bv_proc_default_signals();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, &old_mask);
	execve(bin, argv->v, envp);
	saved_errno = errno;
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	for (int s = 1; s < NSIG; s++)
		(void)sigaction(s, &saved[s], NULL);
	bv_strv_free(envp);
	errno = saved_errno;
	return bv_error_set_errno(err, "could not run '%s'", bin);
}

static int apptainer_run(struct bv_runtime *rt, const struct bv_run_request *req,
			 struct bv_run_result *out, struct bv_error **err)
{
	struct apptainer *a = self(rt);
	_cleanup_free_ char *sif = NULL, *fallback = NULL;
	_cleanup_strv_ struct bv_strv argv = BV_STRV_INIT, env = BV_STRV_INIT;
	struct bv_proc p = BV_PROC_INIT;
	struct sif_record rec = {0};
	struct stat st;
	enum sif_state state;
	int status = 0, r;
	if (!bv_digest_valid(req->image.digest))
		return invalid_digest(req->image.digest, err);
	if ((r = find_bin(a, err)) < 0 || (r = cache_dir(a, err)) < 0)
		return r;
	sif = sif_file(a->cache, req->image.digest);
	state = sif_check(sif, &st, &rec);
	if (state == SIF_MISSING)
		return bv_error_setc(err, BV_ENOTFOUND, 0,
				     "%s (%.19s) has not been pulled for apptainer: run 'bv sync'",
				     req->image.reference, req->image.digest);
	if (state == SIF_UNCERTAIN)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "SIF '%s' of %s does not match its record (size %" PRId64
				     ", recorded %" PRId64
				     "): it changed after bv pulled it; run 'bv sync' to "
				     "check it and pull it again",
				     sif, req->image.reference, (int64_t)st.st_size, rec.size);
	if (bv_apptainer_wants_cache_fallbacks(req)) {
		_cleanup_free_ char *c = NULL, *rc = NULL;
		fallback = bv_xasprintf("%s/tool-cache/%s", a->cache,
					req->image.tool_id ? req->image.tool_id
							   : req->image.digest + SHA256_PREFIX_LEN);
		c = bv_path_join(fallback, "cache");
		rc = bv_path_join(fallback, "root-cache");
		if ((r = bv_mkdir_p(c, 0755, err)) < 0 || (r = bv_mkdir_p(rc, 0755, err)) < 0)
			return r;
	}
	r = bv_apptainer_run_argv(&argv, &env, a->bin, sif, req, fallback, err);
	if (r < 0)
		return r;
	if (req->may_replace_process && req->stdio == BV_STDIO_INHERIT)
		return replace_process(a->bin, &argv, &env, err);
	bv_strv_pushv(&p.args, (const char *const *)argv.v);
	bv_strv_pushv(&p.env, (const char *const *)env.v);
	if (req->stdio == BV_STDIO_CAPTURE) {
		_cleanup_buf_ struct bv_buf o = BV_BUF_INIT, e = BV_BUF_INIT;
		r = run_capture(&p, &o, &e, &status, err);
		if (r >= 0) {
			out->out = bv_buf_detach(&o, &out->out_len);
			out->err = bv_buf_detach(&e, &out->err_len);
		}
	} else {
		r = bv_proc_run(&status, &p, err);
	}
	bv_proc_clear(&p);
	if (r < 0)
		return bv_error_wrap(err, r, "could not run '%s'", a->bin);
	out->status = status;
	return 0;
}

/* The state only: bv_runtime_free() frees `rt`, which is the start of the allocation. */
static void apptainer_free(struct bv_runtime *rt)
{
	struct apptainer *a = self(rt);
	free(a->bin);
	free(a->cache);
	bv_mirrors_free(a->mirrors);
	a->bin = a->cache = NULL;
	a->mirrors = NULL;
}

static const struct bv_runtime_ops apptainer_ops = {
	.name = "apptainer",
	.is_usable = apptainer_is_usable,
	.health = apptainer_health,
	.ensure = apptainer_ensure,
	.is_available = apptainer_is_available,
	.inspect = apptainer_inspect,
	.run = apptainer_run,
	.remove = apptainer_remove,
	.free = apptainer_free,
};

int bv_runtime_apptainer_new(struct bv_runtime **out, struct bv_error **err)
{
	struct apptainer *a = bv_xcalloc(1, sizeof(*a));
	(void)err;
	a->rt.ops = &apptainer_ops;
	a->rt.state = a;
	*out = &a->rt;
	return 0;
}
