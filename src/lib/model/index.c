/*
 * index.c - opening, cloning and refreshing a registry, and listing what it holds
 * (see include/bv/index.h and index-internal.h).
 */
#include <bv/error.h>
#include <bv/paths.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/model/index-internal.h"
#include "lib/model/paths-internal.h"
#include "lib/model/version-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/lock.h"
#include "util/parse.h"
#include "util/proc.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define STAMP_NAME     ".bv-refresh"
#define SNAPSHOT_NAME  ".bv-snapshot"
#define SNAPSHOT_MAX   (64u * 1024 * 1024)
#define GIT_OUTPUT_MAX (256 * 1024)
#define GIT_CONFIG_MAX (64u * 1024)
#define SUMMARIES_MAX  (64u * 1024 * 1024)
#define CLONE_NAME_MAX 40
#define REASON_LINES   3
#define REASON_MAX     600
#define TOKEN_USER_MIN 8

/* One manifest of a cloned registry, as recorded in its snapshot (see load_snapshot()). */
struct snapshot_entry {
	char *tool;
	char *version;
	char *digest; /* "sha256:<hex>" of the file */
};

struct bv_index {
	char *url;
	char *root;
	char *warning;
	struct snapshot_entry *snap; /* sorted by tool, then version order; NULL in place */
	size_t n_snap;
	/* the snapshot file read, whose strings the entries point into; NULL when the entries
	 * own theirs (a snapshot just built) */
	char *snap_text;
	/* for bv_index_sources(): how it was opened, and the stamp and snapshot as read */
	enum bv_index_refresh mode;
	char *source_paths[2];
	struct stat source_stats[2];
	bool sources_known;
};

const char *bv_registry_url_choose(const char *flag, const char *from_bv_toml)
{
	const char *env = getenv("BV_REGISTRY");
	if (flag && *flag)
		return flag;
	if (env && *env)
		return env;
	if (from_bv_toml && *from_bv_toml)
		return from_bv_toml;
	return BV_DEFAULT_REGISTRY;
}

/* ---- URLs ---------------------------------------------------------------------------- */

/*
 * The user-info of a "scheme://" URL: its offset and length (without the '@'), or false when
 * there is none.  The authority ends at the first '/', '?' or '#'; the last '@' in it ends the
 * user-info, since passwords may contain '@' when written unencoded.
 */
static bool find_userinfo(const char *url, size_t *start, size_t *len)
{
	const char *p = strstr(url, "://");
	size_t auth;
	const char *at = NULL;
	if (!p)
		return false;
	p += 3;
	auth = strcspn(p, "/?#");
	for (size_t i = 0; i < auth; i++)
		if (p[i] == '@')
			at = p + i;
	if (!at)
		return false;
	*start = (size_t)(p - url);
	*len = (size_t)(at - p);
	return true;
}

char *bv_index_redact_url(const char *url)
{
	size_t start, len;
	if (!find_userinfo(url, &start, &len))
		return bv_xstrdup(url);
	return bv_xasprintf("%.*s***%s", (int)start, url, url + start + len);
}

static void replace_all(struct bv_buf *text, const char *needle, size_t nlen)
{
	struct bv_buf out = BV_BUF_INIT;
	const char *s = text->buf;
	const char *hit;
	if (!nlen)
		return;
	while ((hit = memmem(s, text->len - (size_t)(s - text->buf), needle, nlen))) {
		bv_buf_add(&out, s, (size_t)(hit - s));
		bv_buf_puts(&out, "***");
		s = hit + nlen;
	}
	bv_buf_add(&out, s, text->len - (size_t)(s - text->buf));
	bv_buf_release(text);
	*text = out;
}

/*
 * Removes `url`'s secrets from text git printed: the whole user-info, the password, and a
 * user name long enough to be a token (https://TOKEN@host); short names such as "git" are
 * left alone, since replacing them would garble the message without protecting anything.
 */
static void scrub_secrets(struct bv_buf *text, const char *url)
{
	size_t start, len;
	const char *info, *colon;
	if (!find_userinfo(url, &start, &len))
		return;
	info = url + start;
	replace_all(text, info, len);
	colon = memchr(info, ':', len);
	if (colon) {
		replace_all(text, colon + 1, len - (size_t)(colon + 1 - info));
	} else if (len >= TOKEN_USER_MIN) {
		replace_all(text, info, len);
	}
}

enum url_kind { URL_PATH, URL_FILE, URL_GIT };

static enum url_kind classify(const char *url, const char **file_path)
{
	const char *colon, *slash;
	if (bv_str_has_prefix(url, "file://")) {
		const char *p = url + strlen("file://");
		if (bv_str_has_prefix(p, "localhost/"))
			p += strlen("localhost");
		if (*p == '/') {
			*file_path = p;
			return URL_FILE;
		}
		return URL_GIT; /* file://host/path: let git say what it makes of it */
	}
	if (strstr(url, "://"))
		return URL_GIT;
	/* git's rule: a ':' before the first '/' makes "host:path" an scp-like address. */
	colon = strchr(url, ':');
	slash = strchr(url, '/');
	if (colon && (!slash || colon < slash))
		return URL_GIT;
	return URL_PATH;
}

static bool is_git_repository(const char *dir)
{
	_cleanup_free_ char *dotgit = bv_path_join(dir, ".git");
	_cleanup_free_ char *head = bv_path_join(dir, "HEAD");
	_cleanup_free_ char *objects = bv_path_join(dir, "objects");
	_cleanup_free_ char *refs = bv_path_join(dir, "refs");
	struct stat st;
	if (bv_path_exists(dotgit))
		return true;
	return stat(head, &st) == 0 && S_ISREG(st.st_mode) && stat(objects, &st) == 0 &&
	       S_ISDIR(st.st_mode) && stat(refs, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "bv-registry" from ".../bv-registry.git/", restricted to [A-Za-z0-9._-]. */
static char *clone_name(const char *url)
{
	const char *p = strstr(url, "://");
	const char *path;
	size_t n, b;
	struct bv_buf name = BV_BUF_INIT;

	if (p) {
		p += 3;
		path = p + strcspn(p, "/?#");
	} else {
		const char *colon = strchr(url, ':');
		path = colon ? colon + 1 : url;
	}
	n = strcspn(path, "?#");
	while (n && path[n - 1] == '/')
		n--;
	if (n >= 4 && !memcmp(path + n - 4, ".git", 4))
		n -= 4;
	while (n && path[n - 1] == '/')
		n--;
	b = n;
	while (b && path[b - 1] != '/' && path[b - 1] != ':')
		b--;
	for (size_t i = b; i < n && name.len < CLONE_NAME_MAX; i++) {
		unsigned char c = (unsigned char)path[i];
		if (!name.len && (c == '.' || c == '-'))
			continue;
		bv_buf_putc(&name, isalnum(c) || c == '.' || c == '_' || c == '-' ? (char)c : '_');
	}
	if (!name.len)
		bv_buf_puts(&name, "registry");
	return bv_buf_detach(&name, NULL);
}

/* ---- git ----------------------------------------------------------------------------- */

static const char *strip_git_prefix(const char *line)
{
	static const char *const prefixes[] = {"fatal: ", "error: "};
	for (size_t k = 0; k < BV_ARRAY_SIZE(prefixes); k++)
		if (bv_str_has_prefix(line, prefixes[k]))
			return line + strlen(prefixes[k]);
	return line;
}

/*
 * What git said went wrong: its last "fatal:" or "error:" line and the two non-empty lines
 * before it (where ssh or a first "fatal:" says why), prefixes removed and joined with "; ".
 * The advice git prints after it ("Please make sure you have the correct access rights") is
 * left out.  Without such a line, the last non-empty line.  Bounded in length.
 */
static char *git_reason(const struct bv_buf *out)
{
	_cleanup_strv_ struct bv_strv lines = BV_STRV_INIT;
	struct bv_buf r = BV_BUF_INIT;
	const char *s = out->buf, *end = out->buf + out->len;
	size_t last, first;

	while (s < end) {
		size_t n = strcspn(s, "\r\n");
		if (n)
			bv_strv_push_take(&lines, bv_xstrndup(s, n));
		s += n;
		while (s < end && (*s == '\r' || *s == '\n' || *s == '\0'))
			s++;
	}
	if (!lines.n)
		return bv_xstrdup("");
	last = lines.n - 1;
	for (size_t i = lines.n; i-- > 0;) {
		if (strip_git_prefix(lines.v[i]) != lines.v[i]) {
			last = i;
			break;
		}
	}
	first = last >= REASON_LINES - 1 ? last - (REASON_LINES - 1) : 0;
	if (strip_git_prefix(lines.v[last]) == lines.v[last])
		first = last;
	for (size_t i = first; i <= last; i++) {
		if (r.len)
			bv_buf_puts(&r, "; ");
		bv_buf_puts(&r, strip_git_prefix(lines.v[i]));
	}
	if (r.len > REASON_MAX) {
		bv_buf_setlen(&r, REASON_MAX);
		bv_buf_puts(&r, "...");
	}
	return bv_buf_detach(&r, NULL);
}

/*
 * Runs git with `args` (after the options every call shares).  On failure stores in *reason
 * what went wrong, scrubbed of `url`'s secrets, and returns BV_ERR.
 */
static int run_git(const char *const *args, const char *url, char **reason)
{
	static const char *const unset[] = {
		"GIT_DIR",
		"GIT_WORK_TREE",
		"GIT_INDEX_FILE",
		"GIT_OBJECT_DIRECTORY",
		"GIT_COMMON_DIR",
		"GIT_NAMESPACE",
		"GIT_ALTERNATE_OBJECT_DIRECTORIES",
		"GIT_PREFIX",
	};
	struct bv_proc p = BV_PROC_INIT;
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT;
	struct bv_error *perr = NULL;
	int status = 0, r;

	bv_strv_push(&p.args, "git");
	bv_strv_push(&p.args, "-c");
	bv_strv_push(&p.args, "credential.helper=");
	bv_strv_push(&p.args, "-c");
	bv_strv_push(&p.args, "protocol.ext.allow=never");
	bv_strv_pushv(&p.args, args);
	for (size_t i = 0; i < BV_ARRAY_SIZE(unset); i++)
		bv_strv_push(&p.env, unset[i]);
	bv_strv_push(&p.env, "GIT_TERMINAL_PROMPT=0");
	bv_strv_push(&p.env, "GCM_INTERACTIVE=never");
	p.no_stdin = true;
	p.stderr_to_stdout = true;
	r = bv_proc_capture(&out, &status, &p, GIT_OUTPUT_MAX, &perr);
	bv_proc_clear(&p);
	if (r < 0) {
		char *text = bv_error_format(perr);
		bv_error_free(perr);
		bv_buf_puts(&out, text);
		free(text);
	} else if (status == 0) {
		return 0;
	}
	scrub_secrets(&out, url);
	*reason = git_reason(&out);
	if (!**reason) {
		free(*reason);
		*reason = bv_xasprintf("git exited with status %d", status);
	}
	return BV_ERR;
}

static int git_clone(const char *url, const char *dir, char **reason)
{
	if (bv_offline()) {
		*reason = bv_xstrdup("bv is offline (--offline or BV_OFFLINE is set)");
		return BV_ERR;
	}
	const char *args[] = {"clone", "--depth", "1", "--quiet", "--", url, dir, NULL};
	return run_git(args, url, reason);
}

static int git_refresh(const char *url, const char *dir, char **reason)
{
	const char *fetch[] = {"-C", dir, "fetch", "--depth", "1", "--quiet", "origin", NULL};
	const char *reset[] = {"-C", dir, "reset", "--hard", "--quiet", "FETCH_HEAD", NULL};
	int r = run_git(fetch, url, reason);
	return r < 0 ? r : run_git(reset, url, reason);
}

/* ---- opening ------------------------------------------------------------------------- */

static int read_ttl(int64_t *out, struct bv_error **err)
{
	const char *v = getenv("BV_INDEX_TTL");
	uint64_t ttl;
	if (!v || !*v) {
		*out = BV_INDEX_DEFAULT_TTL;
		return 0;
	}
	if (bv_parse_u64(&ttl, v) < 0)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid BV_INDEX_TTL '%s': expected a number of seconds", v);
	*out = ttl > INT64_MAX ? INT64_MAX : (int64_t)ttl;
	return 0;
}

static bool has_clone(const char *dir)
{
	_cleanup_free_ char *dotgit = bv_path_join(dir, ".git");
	return bv_path_exists(dotgit);
}

/* Whether the copy in `dir` was refreshed less than `ttl` seconds ago. */
static bool is_fresh(const char *dir, int64_t ttl)
{
	if (bv_offline())
		return true; /* a clone is used as it is: refreshing it needs the network */
	_cleanup_free_ char *stamp = bv_path_join(dir, STAMP_NAME);
	struct stat st;
	int64_t age;
	if (ttl <= 0 || stat(stamp, &st) < 0)
		return false;
	age = bv_time_now() - (int64_t)st.st_mtime;
	return age >= 0 && age < ttl; /* a stamp from the future means a wrong clock: refresh */
}

static int write_stamp(const char *dir, struct bv_error **err)
{
	_cleanup_free_ char *stamp = bv_path_join(dir, STAMP_NAME);
	_cleanup_free_ char *text = NULL;
	char now[BV_RFC3339_LEN + 1];
	/* Only the mtime matters; the text is for people looking at the cache. */
	if (bv_time_format_rfc3339(now, bv_time_now()) < 0)
		now[0] = '\0';
	text = bv_xasprintf("%s\n", now);
	return bv_write_file_atomic(stamp, text, strlen(text), 0644, err);
}

static char *stale_warning(const char *shown_url, const char *dir, const char *reason)
{
	_cleanup_free_ char *stamp = bv_path_join(dir, STAMP_NAME);
	char when[BV_RFC3339_LEN + 1];
	struct stat st;
	if (stat(stamp, &st) == 0 && bv_time_format_rfc3339(when, (int64_t)st.st_mtime) == 0)
		return bv_xasprintf("could not refresh registry '%s' (%s); using the copy from %s",
				    shown_url, reason, when);
	return bv_xasprintf("could not refresh registry '%s' (%s); using the existing copy",
			    shown_url, reason);
}

/* Clones `url` into `dir` through `<dir>.tmp`; the caller holds the lock. */
static int clone_into(const char *url, const char *shown, const char *dir, struct bv_error **err)
{
	_cleanup_free_ char *tmp = bv_xasprintf("%s.tmp", dir);
	_cleanup_free_ char *reason = NULL;
	int r;

	/* Left over by a bv killed mid-clone; nobody else uses it while we hold the lock. */
	r = bv_rm_rf(tmp, err);
	if (r < 0)
		return r;
	if (git_clone(url, tmp, &reason) < 0) {
		(void)bv_rm_rf(tmp, NULL);
		return bv_error_set(err, "could not clone registry '%s': %s", shown, reason);
	}
	r = write_stamp(tmp, err);
	/* A directory without .git at `dir` is debris (a clone someone half-deleted). */
	if (r >= 0)
		r = bv_rm_rf(dir, err);
	if (r >= 0 && rename(tmp, dir) < 0)
		r = bv_error_set_errno(err, "could not rename '%s' to '%s'", tmp, dir);
	if (r < 0)
		(void)bv_rm_rf(tmp, NULL);
	return r;
}

static int open_clone(struct bv_index *idx, enum bv_index_refresh mode, struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL;
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *name = clone_name(idx->url);
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ char *lock_path = NULL;
	_cleanup_free_ char *shown = bv_index_redact_url(idx->url);
	_cleanup_free_ char *reason = NULL;
	struct bv_lock lk = BV_LOCK_INIT;
	int64_t ttl = 0;
	int r;

	if (mode == BV_INDEX_REFRESH_STALE) {
		r = read_ttl(&ttl, err);
		if (r < 0)
			return r;
	}
	r = bv_cache_dir(&cache, err);
	if (r < 0)
		return r;
	/*
	 * The directory only has to tell URLs apart, so a 64-bit FNV-1a of the URL does: SHA-256
	 * here cost a millisecond of OpenSSL start-up on every command that reads the registry.
	 */
	base = bv_path_join(cache, "index");
	dir = bv_xasprintf("%s/%s-%016" PRIx64, base, name, bv_fnv1a64(idx->url, strlen(idx->url)));

	if (mode == BV_INDEX_OFFLINE) {
		if (!has_clone(dir))
			return bv_error_setc(
				err, BV_ENOTFOUND, 0,
				"registry '%s' has not been fetched yet; run 'bv lock' "
				"or 'bv add' while online to fetch it",
				shown);
		idx->root = TAKE_PTR(dir);
		return 0;
	}
	if (mode == BV_INDEX_REFRESH_STALE && has_clone(dir) && is_fresh(dir, ttl)) {
		idx->root = TAKE_PTR(dir);
		return 0;
	}

	r = bv_mkdir_p(base, 0755, err);
	if (r < 0)
		return r;
	lock_path = bv_xasprintf("%s.lock", dir);
	r = bv_lock_acquire(&lk, lock_path, BV_LOCK_EXCLUSIVE, true, err);
	if (r < 0)
		return r;
	if (!has_clone(dir)) {
		r = clone_into(idx->url, shown, dir, err);
	} else if (mode == BV_INDEX_REFRESH_STALE && is_fresh(dir, ttl)) {
		r = 0; /* another bv refreshed it while we waited for the lock */
	} else if (git_refresh(idx->url, dir, &reason) < 0) {
		idx->warning = stale_warning(shown, dir, reason);
		r = 0;
	} else {
		r = write_stamp(dir, err);
	}
	bv_lock_release(&lk);
	if (r < 0)
		return r;
	idx->root = TAKE_PTR(dir);
	return 0;
}

static int load_snapshot(struct bv_index *idx, struct bv_error **err);

static int open_in_place(struct bv_index *idx, const char *path, struct bv_error **err)
{
	_cleanup_free_ char *expanded = bv_expand_home(path);
	_cleanup_free_ char *shown = bv_index_redact_url(idx->url);
	char *real = realpath(expanded, NULL);
	struct stat st;

	if (!real) {
		if (errno == ENOENT)
			return bv_error_setc(err, BV_ENOTFOUND, 0,
					     "registry directory '%s' does not exist", shown);
		return bv_error_set_errno(err, "could not resolve registry directory '%s'", shown);
	}
	if (stat(real, &st) < 0) {
		int e = errno;
		free(real);
		return bv_error_setc(err, BV_ERR, e, "could not stat registry directory '%s'",
				     shown);
	}
	if (!S_ISDIR(st.st_mode)) {
		free(real);
		return bv_error_setc(err, BV_EINVALID, 0, "registry '%s' is not a directory",
				     shown);
	}
	idx->root = real;
	return 0;
}

/* Whether idx->root is a clone in bv's cache (as opposed to a directory used in place). */
static bool is_cloned(const struct bv_index *idx)
{
	_cleanup_free_ char *cache = NULL;
	size_t n;
	if (bv_cache_dir(&cache, NULL) < 0)
		return false;
	n = strlen(cache);
	return !strncmp(idx->root, cache, n) && idx->root[n] == '/' && has_clone(idx->root);
}

int bv_index_open(struct bv_index **out, const char *url, enum bv_index_refresh mode,
		  struct bv_error **err)
{
	struct bv_index *idx;
	const char *file_path = NULL;
	int r;

	if (!url || !*url)
		return bv_error_setc(err, BV_EINVALID, 0, "empty registry URL");
	idx = bv_xcalloc(1, sizeof(*idx));
	idx->url = bv_xstrdup(url);
	idx->mode = mode;
	switch (classify(url, &file_path)) {
	case URL_PATH:
		r = open_in_place(idx, url, err);
		break;
	case URL_FILE: {
		struct stat st;
		if (stat(file_path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    !is_git_repository(file_path))
			r = open_in_place(idx, file_path, err);
		else
			r = open_clone(idx, mode, err);
		break;
	}
	default:
		r = open_clone(idx, mode, err);
		break;
	}
	if (r >= 0 && idx->root && is_cloned(idx))
		r = load_snapshot(idx, err);
	if (r < 0) {
		bv_index_free(idx);
		return r;
	}
	*out = idx;
	return 0;
}

const char *bv_index_location(const struct bv_index *idx, bool *cloned)
{
	*cloned = is_cloned(idx);
	return idx->root;
}

bool bv_index_sources(const struct bv_index *idx, struct bv_index_sources *out)
{
	int64_t ttl, refreshed;
	if (!idx->sources_known || idx->warning || idx->mode == BV_INDEX_REFRESH_ALWAYS)
		return false;
	refreshed = (int64_t)idx->source_stats[0].st_mtime;
	if (bv_offline() || idx->mode == BV_INDEX_OFFLINE) {
		out->fresh_from = INT64_MIN;
		out->fresh_until = INT64_MAX;
	} else {
		/* is_fresh()'s rule: refreshed when the stamp is `ttl` seconds old, or from the
		 * future (a clock set back) */
		if (read_ttl(&ttl, NULL) < 0 || ttl <= 0)
			return false;
		out->fresh_from = refreshed;
		out->fresh_until = refreshed > INT64_MAX - ttl ? INT64_MAX : refreshed + ttl;
	}
	for (int i = 0; i < 2; i++) {
		out->paths[i] = idx->source_paths[i];
		out->stats[i] = &idx->source_stats[i];
	}
	return true;
}

int bv_index_ttl(int64_t *out, struct bv_error **err)
{
	return read_ttl(out, err);
}

/* The url of [remote "origin"] in a git config text, or NULL. */
static char *origin_url(char *text)
{
	bool in_origin = false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " \t");
		if (*line == '[') {
			in_origin = bv_str_has_prefix(line, "[remote \"origin\"]");
			continue;
		}
		if (in_origin && bv_str_has_prefix(line, "url")) {
			char *v = line + 3;
			v += strspn(v, " \t");
			if (*v++ != '=')
				continue;
			v += strspn(v, " \t");
			v[strcspn(v, "\r")] = '\0';
			return *v && bv_text_is_printable(v, false) ? bv_index_redact_url(v) : NULL;
		}
	}
	return NULL;
}

static int compare_clones(const void *a, const void *b)
{
	return strcmp(((const struct bv_index_clone *)a)->dir,
		      ((const struct bv_index_clone *)b)->dir);
}

int bv_index_list_clones(struct bv_index_clone **out, size_t *n_out, struct bv_error **err)
{
	_cleanup_free_ char *cache = NULL, *base = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct bv_index_clone *list = NULL;
	struct dirent *e;
	size_t n = 0;
	int r = bv_cache_dir(&cache, err);
	if (r < 0)
		return r;
	base = bv_path_join(cache, "index");
	d = opendir(base);
	if (!d && errno != ENOENT)
		return bv_error_set_errno(err, "could not open '%s'", base);
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *dir = NULL, *config = NULL, *stamp = NULL;
		struct bv_buf text = BV_BUF_INIT;
		struct stat st;
		if (e->d_name[0] == '.' || bv_str_has_suffix(e->d_name, ".lock") ||
		    bv_str_has_suffix(e->d_name, ".tmp"))
			continue;
		dir = bv_path_join(base, e->d_name);
		if (!has_clone(dir))
			continue;
		list = bv_xrealloc(list, (n + 1) * sizeof(*list));
		list[n] = (struct bv_index_clone){.refreshed = -1};
		config = bv_path_join(dir, ".git/config");
		if (bv_buf_read_file(&text, config, GIT_CONFIG_MAX, NULL) == 0)
			list[n].url = origin_url(text.buf);
		bv_buf_release(&text);
		stamp = bv_path_join(dir, STAMP_NAME);
		if (stat(stamp, &st) == 0)
			list[n].refreshed = (int64_t)st.st_mtime;
		list[n++].dir = TAKE_PTR(dir);
	}
	if (n)
		qsort(list, n, sizeof(*list), compare_clones);
	*out = list;
	*n_out = n;
	return 0;
}

void bv_index_clones_free(struct bv_index_clone *clones, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(clones[i].dir);
		free(clones[i].url);
	}
	free(clones);
}

const char *bv_index_root(const struct bv_index *idx)
{
	return idx->root;
}

const char *bv_index_url(const struct bv_index *idx)
{
	return idx->url;
}

const char *bv_index_warning(const struct bv_index *idx)
{
	return idx->warning;
}

static void drop_snapshot(struct bv_index *idx);

void bv_index_free(struct bv_index *idx)
{
	if (!idx)
		return;
	drop_snapshot(idx);
	free(idx->source_paths[0]);
	free(idx->source_paths[1]);
	free(idx->url);
	free(idx->root);
	free(idx->warning);
	free(idx);
}

/* ---- listing ------------------------------------------------------------------------- */

static int version_qsort_cmp(const void *a, const void *b)
{
	return bv_version_compare(*(char *const *)a, *(char *const *)b);
}

static bool valid_id(const char *id)
{
	return id && id[0] && id[0] != '.' && !strchr(id, '/');
}

/*
 * Opens <root>/<sub> as a directory stream, refusing a symlink as the last component.
 * Returns 0, BV_ENOTFOUND when it does not exist (or is not a directory), BV_ERR otherwise.
 */
static int open_dir(DIR **out, const char *path, struct bv_error **err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return BV_ENOTFOUND;
		return bv_error_set_errno(err, "could not open '%s'", path);
	}
	d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return bv_error_setc(err, BV_ERR, e, "could not open '%s'", path);
	}
	*out = d;
	return 0;
}

/*
 * Appends the names in `path` that are regular files ending in `suffix` (with the suffix
 * removed) or, with a NULL suffix, directories; hidden names are skipped.
 */
static int read_names(const char *path, const char *suffix, struct bv_strv *out,
		      struct bv_error **err)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r = open_dir(&d, path, err);
	if (r < 0)
		return r;
	for (;;) {
		struct stat st;
		size_t n;
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				return bv_error_set_errno(err, "could not read '%s'", path);
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* removed while we read: not there */
		if (!suffix) {
			if (S_ISDIR(st.st_mode))
				bv_strv_push(out, de->d_name);
			continue;
		}
		n = strlen(de->d_name);
		if (!S_ISREG(st.st_mode) || !bv_str_has_suffix(de->d_name, suffix) ||
		    n == strlen(suffix))
			continue;
		bv_strv_push_take(out, bv_xstrndup(de->d_name, n - strlen(suffix)));
	}
	return 0;
}

static int list_versions(const struct bv_index *idx, const char *sub, const char *what,
			 const char *id, struct bv_strv *out, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv v = BV_STRV_INIT;
	_cleanup_free_ char *path = NULL;
	int r;

	if (!valid_id(id))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid %s name '%s'", what,
				     id ? id : "");
	path = bv_xasprintf("%s/%s/%s", idx->root, sub, id);
	r = read_names(path, ".toml", &v, err);
	if (r == BV_ENOTFOUND)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "%s '%s' is not in the registry", what,
				     id);
	if (r < 0)
		return r;
	if (v.n)
		qsort(v.v, v.n, sizeof(*v.v), version_qsort_cmp);
	for (size_t i = 0; i < v.n; i++)
		bv_strv_push_take(out, TAKE_PTR(v.v[i]));
	return 0;
}

static int list_ids(const struct bv_index *idx, const char *sub, struct bv_strv *out,
		    struct bv_error **err);

static int compare_entry_tool(const void *key, const void *entry)
{
	return strcmp(key, ((const struct snapshot_entry *)entry)->tool);
}

/* The first snapshot entry of `tool` and how many there are; NULL when none. */
static const struct snapshot_entry *snapshot_find(const struct bv_index *idx, const char *tool,
						  size_t *n_out)
{
	const struct snapshot_entry *hit =
		bsearch(tool, idx->snap, idx->n_snap, sizeof(*idx->snap), compare_entry_tool);
	const struct snapshot_entry *first, *end = idx->snap + idx->n_snap;
	if (!hit)
		return NULL;
	first = hit;
	while (first > idx->snap && !strcmp(first[-1].tool, tool))
		first--;
	while (hit < end && !strcmp(hit->tool, tool))
		hit++;
	*n_out = (size_t)(hit - first);
	return first;
}

int bv_index_tool_versions(struct bv_strv *out, const struct bv_index *idx, const char *tool,
			   struct bv_error **err)
{
	const struct snapshot_entry *e;
	size_t n = 0;
	if (!idx->snap || !valid_id(tool))
		return list_versions(idx, "tools", "tool", tool, out, err);
	e = snapshot_find(idx, tool, &n);
	if (!e)
		return bv_error_setc(err, BV_ENOTFOUND, 0, "tool '%s' is not in the registry",
				     tool);
	for (size_t i = 0; i < n; i++)
		bv_strv_push(out, e[i].version);
	return 0;
}

static void digest_bytes(char out[72], const void *data, size_t len)
{
	memcpy(out, "sha256:", 7);
	bv_sha256_hex(out + 7, data, len);
}

int bv_index_manifest_digest(const struct bv_index *idx, const char *tool, const char *version,
			     char out[72], struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_free_ char *path = NULL;
	int r;
	if (idx->snap) {
		size_t n = 0;
		const struct snapshot_entry *e = snapshot_find(idx, tool, &n);
		for (size_t i = 0; e && i < n; i++) {
			if (!strcmp(e[i].version, version)) {
				memcpy(out, e[i].digest, 72); /* checked: "sha256:" and 64 digits */
				return 0;
			}
		}
		return bv_error_setc(err, BV_ENOTFOUND, 0, "tool '%s' %s is not in the registry",
				     tool, version);
	}
	if (!valid_id(tool) || !valid_id(version))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid tool '%s' %s", tool, version);
	path = bv_index_tool_path(idx, tool, version);
	r = bv_buf_read_file(&text, path, SNAPSHOT_MAX, err);
	if (r < 0)
		return r;
	digest_bytes(out, text.buf, text.len);
	return 0;
}

/*
 * Snapshots.  A cloned registry does not change between refreshes, so the list of its tool
 * manifests, with their versions and digests, is recorded once per refresh in
 * <clone>/.bv-snapshot.  Commands then learn which versions exist and whether a manifest is
 * the one locked without opening a directory or a file per tool: on a 1000-tool project
 * this replaced about 12,000 system calls with one read.  The snapshot names the mtime of
 * the refresh stamp it was made for; any other stamp means it is out of date.  Registries
 * used in place (a local directory) may change at any time and get no snapshot.
 */
static char *stamp_id(const char *dir, struct stat *st)
{
	_cleanup_free_ char *stamp = bv_path_join(dir, STAMP_NAME);
	if (stat(stamp, st) < 0)
		return NULL;
	return bv_xasprintf("%lld.%09ld", (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
}

static int compare_entries(const void *a, const void *b)
{
	const struct snapshot_entry *x = a, *y = b;
	int c = strcmp(x->tool, y->tool);
	return c ? c : bv_version_compare(x->version, y->version);
}

/* The entry's strings are copied when the index owns no snapshot text, else lent from it. */
static void snapshot_add(struct bv_index *idx, size_t *alloc, char *tool, char *version,
			 char *digest)
{
	struct snapshot_entry *e;
	bool lend = idx->snap_text != NULL;
	BV_GROW(idx->snap, *alloc, idx->n_snap + 1);
	e = &idx->snap[idx->n_snap++];
	e->tool = lend ? tool : bv_xstrdup(tool);
	e->version = lend ? version : bv_xstrdup(version);
	e->digest = lend ? digest : bv_xstrdup(digest);
}

/* Whether the entries are in compare_entries() order already (a snapshot is written so). */
static bool snapshot_sorted(const struct bv_index *idx)
{
	for (size_t i = 1; i < idx->n_snap; i++)
		if (compare_entries(&idx->snap[i - 1], &idx->snap[i]) > 0)
			return false;
	return true;
}

/*
 * Parses a snapshot file, which idx keeps: the entries point into it rather than each
 * holding three copies (a thousand tools were three thousand allocations and frees per
 * command).  False when it is malformed or made for another refresh.
 */
static bool parse_snapshot(struct bv_index *idx, char *text, const char *want_stamp)
{
	size_t alloc = 0;
	char *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	if (!line || strcmp(line, "bv-index-snapshot 1"))
		return false;
	line = strtok_r(NULL, "\n", &save);
	if (!line || strcmp(line, want_stamp))
		return false;
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *tool = line, *version = strchr(tool, '\t'), *digest;
		if (!version)
			return false;
		*version++ = '\0';
		digest = strchr(version, '\t');
		if (!digest || !bv_digest_valid(digest + 1) || !valid_id(tool) ||
		    !valid_id(version))
			return false;
		*digest++ = '\0';
		snapshot_add(idx, &alloc, tool, version, digest);
	}
	return true;
}

static void drop_snapshot(struct bv_index *idx)
{
	for (size_t i = 0; !idx->snap_text && i < idx->n_snap; i++) {
		free(idx->snap[i].tool);
		free(idx->snap[i].version);
		free(idx->snap[i].digest);
	}
	free(idx->snap);
	free(idx->snap_text);
	idx->snap = NULL;
	idx->snap_text = NULL;
	idx->n_snap = 0;
}

/* Walks tools/ of the clone and records every manifest; written atomically. */
static int build_snapshot(struct bv_index *idx, const char *stamp, struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv tools = BV_STRV_INIT;
	_cleanup_buf_ struct bv_buf out = BV_BUF_INIT;
	_cleanup_free_ char *path = bv_path_join(idx->root, SNAPSHOT_NAME);
	size_t alloc = 0;
	int r = list_ids(idx, "tools", &tools, err);
	if (r < 0)
		return r;
	bv_buf_printf(&out, "bv-index-snapshot 1\n%s\n", stamp);
	bv_strv_foreach (tool, &tools) {
		_cleanup_strv_ struct bv_strv versions = BV_STRV_INIT;
		r = list_versions(idx, "tools", "tool", *tool, &versions, err);
		if (r < 0)
			return r;
		bv_strv_foreach (version, &versions) {
			_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
			_cleanup_free_ char *file = bv_index_tool_path(idx, *tool, *version);
			char digest[72];
			if (!valid_id(*version))
				continue;
			r = bv_buf_read_file(&text, file, SNAPSHOT_MAX, err);
			if (r < 0)
				return r;
			digest_bytes(digest, text.buf, text.len);
			bv_buf_printf(&out, "%s\t%s\t%s\n", *tool, *version, digest);
			snapshot_add(idx, &alloc, *tool, *version, digest);
		}
	}
	qsort(idx->snap, idx->n_snap, sizeof(*idx->snap), compare_entries);
	/* Several bv processes may build the same snapshot at once; each rename is whole. */
	return bv_write_file_atomic(path, out.buf, out.len, 0644, err);
}

static int load_snapshot(struct bv_index *idx, struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_free_ char *path = bv_path_join(idx->root, SNAPSHOT_NAME);
	struct stat stamp_st, snap_st;
	_cleanup_free_ char *stamp = stamp_id(idx->root, &stamp_st);
	int r;
	if (!stamp)
		return 0; /* no stamp, no snapshot: list directories as they are */
	if (stat(path, &snap_st) == 0 && bv_buf_read_file(&text, path, SNAPSHOT_MAX, NULL) == 0) {
		idx->snap_text = bv_buf_detach(&text, NULL);
		if (parse_snapshot(idx, idx->snap_text, stamp)) {
			if (!snapshot_sorted(idx))
				qsort(idx->snap, idx->n_snap, sizeof(*idx->snap), compare_entries);
			/* both stats were taken before what they describe was read */
			idx->source_paths[0] = bv_path_join(idx->root, STAMP_NAME);
			idx->source_paths[1] = TAKE_PTR(path);
			idx->source_stats[0] = stamp_st;
			idx->source_stats[1] = snap_st;
			idx->sources_known = true;
			return 0;
		}
	}
	drop_snapshot(idx);
	r = build_snapshot(idx, stamp, err);
	if (r < 0)
		drop_snapshot(idx);
	return r;
}

int bv_index_data_versions(struct bv_strv *out, const struct bv_index *idx, const char *id,
			   struct bv_error **err)
{
	return list_versions(idx, "data", "dataset", id, out, err);
}

static int list_ids(const struct bv_index *idx, const char *sub, struct bv_strv *out,
		    struct bv_error **err)
{
	_cleanup_strv_ struct bv_strv v = BV_STRV_INIT;
	_cleanup_free_ char *path = bv_path_join(idx->root, sub);
	int r = read_names(path, NULL, &v, err);
	if (r == BV_ENOTFOUND)
		return 0;
	if (r < 0)
		return r;
	bv_strv_sort(&v);
	for (size_t i = 0; i < v.n; i++)
		bv_strv_push_take(out, TAKE_PTR(v.v[i]));
	return 0;
}

int bv_index_list_tools(struct bv_strv *out, const struct bv_index *idx, struct bv_error **err)
{
	return list_ids(idx, "tools", out, err);
}

int bv_index_list_data(struct bv_strv *out, const struct bv_index *idx, struct bv_error **err)
{
	return list_ids(idx, "data", out, err);
}

char *bv_index_tool_path(const struct bv_index *idx, const char *tool, const char *version)
{
	return bv_xasprintf("%s/tools/%s/%s.toml", idx->root, tool, version);
}

char *bv_index_data_path(const struct bv_index *idx, const char *id, const char *version)
{
	return bv_xasprintf("%s/data/%s/%s.toml", idx->root, id, version);
}

/* ---- index.json ---------------------------------------------------------------------- */

int bv_index_load_summaries(json_t **out, const struct bv_index *idx, struct bv_error **err)
{
	_cleanup_free_ char *path = bv_path_join(idx->root, "index.json");
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	json_error_t je;
	json_t *doc, *version, *tools;
	int r = bv_buf_read_file(&text, path, SUMMARIES_MAX, err);
	if (r < 0)
		return r;
	doc = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return bv_error_setc(err, BV_EINVALID, 0, "%s:%d:%d: %s", path, je.line, je.column,
				     je.text);
	version = json_is_object(doc) ? json_object_get(doc, "schema_version") : NULL;
	if (!json_is_integer(version)) {
		r = bv_error_setc(err, BV_EINVALID, 0, "%s: no integer schema_version", path);
	} else if (json_integer_value(version) != 1) {
		r = bv_error_setc(err, BV_EINVALID, 0,
				  "%s: unsupported index.json schema_version %" JSON_INTEGER_FORMAT,
				  path, json_integer_value(version));
	} else if (!json_is_array(tools = json_object_get(doc, "tools"))) {
		r = bv_error_setc(err, BV_EINVALID, 0, "%s: no \"tools\" array", path);
	} else {
		*out = json_incref(tools);
	}
	json_decref(doc);
	return r;
}
