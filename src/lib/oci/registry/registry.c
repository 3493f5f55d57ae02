/*
 * registry.c - the OCI Distribution API client (see registry-internal.h).
 *
 * Two curl multi handles: `sync` runs one request at a time for manifests and tokens (it is
 * also used for a token request in the middle of a pull, which must not consume the pull's
 * completion messages), `multi` runs the blob transfers of bv_registry_pull().
 */
#include "config.h"

#include <bv/error.h>
#include <bv/paths.h>
#include <bv/store.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "lib/model/paths-internal.h"
#include "lib/oci/registry/auth-internal.h"
#include "lib/oci/registry/curl_loader.h"
#include "lib/oci/registry/imageref-internal.h"
#include "lib/oci/registry/registry-internal.h"
#include "lib/oci/store/stream.h"
#include "lib/oci/store/unpack-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define ACCEPT_MANIFESTS                                                                   \
	"Accept: " BV_MEDIA_OCI_INDEX ", " BV_MEDIA_OCI_MANIFEST ", " BV_MEDIA_DOCKER_LIST \
	", " BV_MEDIA_DOCKER_V2
#define TOKEN_MAX      (1u << 20)
#define ERROR_BODY_MAX (16u << 10)
#define MAX_REDIRECTS  5L
#define LOCK_POLL_MS   250
#define PROGRESS_MS    200
#define NS_PER_MS      1000000ull

struct basic_entry {
	char *registry;
	char *header; /* "Authorization: Basic ..." (wiped on free) */
};

struct bv_registry_client {
	const struct bv_curl *curl;
	CURLM *sync;
	CURLM *multi;
	struct bv_store *store;
	const struct bv_mirrors *mirrors;
	struct bv_strv insecure;
	char *certs_dir;
	char *user_agent;
	unsigned jobs;
	long connect_timeout_s, low_speed_limit, low_speed_time_s;
	unsigned retries, backoff_ms, lock_wait_s;
	bv_pull_progress_fn progress;
	void *progress_payload;
	struct bv_token_cache *tokens;
	struct basic_entry *basics;
	size_t n_basics, alloc_basics;
	struct bv_registry_stats stats;
	uint64_t rng;
	char *unpack_dir; /* NULL: layers are not unpacked while they download */
};

/* Where the requests for one image go. */
struct endpoint {
	char *registry;   /* key for credentials and tokens: the host contacted */
	char *base;       /* "https://host" */
	char *repository; /* "biocontainers/samtools" */
	char *scope;      /* "repository:<repo>:pull" */
	char *display;    /* the upstream reference, for messages */
	char *cafile;     /* certs.d/<host>/ca.crt or NULL */
};

/* One HTTP exchange: handle, captured response headers and the body sink. */
struct request {
	struct bv_registry_client *c;
	CURL *h;
	struct curl_slist *hdrs;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	/* headers of the last response (redirect hops reset them) */
	char *content_type, *docker_digest, *www_auth, *content_range, *location;
	struct bv_buf body; /* manifests, tokens and error bodies */
	size_t body_max;
	bool body_too_big;
	struct blob *blob; /* non-NULL: successful bodies go into the blob's ingest */
	bool checked;      /* the status of the final response has been looked at */
	bool to_ingest;
	struct upload *upload; /* non-NULL: the request body comes from the upload's file */
};

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                            */

static void endpoint_release(struct endpoint *ep)
{
	free(ep->registry);
	free(ep->base);
	free(ep->repository);
	free(ep->scope);
	free(ep->display);
	free(ep->cafile);
	memset(ep, 0, sizeof(*ep));
}

static uint64_t now_ns(void)
{
	return bv_time_monotonic_ns();
}

static uint64_t rng_next(struct bv_registry_client *c)
{
	/* xorshift64: jitter only needs to differ between processes, not be unpredictable */
	uint64_t x = c->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->rng = x;
	return x;
}

/* Delay before retry number `attempt` (1-based): base * 2^(attempt-1), +-25 %. */
static uint64_t backoff_ns(struct bv_registry_client *c, unsigned attempt)
{
	uint64_t ms = c->backoff_ms;
	for (unsigned i = 1; i < attempt && ms < 60000; i++)
		ms *= 2;
	uint64_t jitter = ms / 2 ? rng_next(c) % (ms / 2 + 1) : 0;
	return (ms - ms / 4 + jitter) * NS_PER_MS;
}

static char *short_digest(const char *digest)
{
	const char *colon = strchr(digest, ':');
	size_t keep = colon ? (size_t)(colon - digest) + 1 + 12 : 19;
	return bv_xstrndup(digest, keep);
}

static void trim_value(const char **start, size_t *len)
{
	while (*len && (**start == ' ' || **start == '\t')) {
		(*start)++;
		(*len)--;
	}
	while (*len && ((*start)[*len - 1] == '\r' || (*start)[*len - 1] == '\n' ||
			(*start)[*len - 1] == ' ' || (*start)[*len - 1] == '\t'))
		(*len)--;
}

/* "FAILED_CODE: message" from a registry's JSON error body, or NULL. */
static char *registry_error_text(const struct bv_buf *body)
{
	json_t *root, *errors, *first;
	const char *code, *message;
	char *text = NULL;

	if (!body->len)
		return NULL;
	root = json_loadb(body->buf, body->len, 0, NULL);
	if (!root)
		return NULL;
	errors = json_object_get(root, "errors");
	first = json_is_array(errors) ? json_array_get(errors, 0) : NULL;
	if (json_is_object(first)) {
		code = json_string_value(json_object_get(first, "code"));
		message = json_string_value(json_object_get(first, "message"));
		if (code && message)
			text = bv_xasprintf("%s: %.200s", code, message);
		else if (code)
			text = bv_xstrdup(code);
	}
	json_decref(root);
	return text;
}

/* ---------------------------------------------------------------------------------------- */
/* client                                                                                   */

static char *default_certs_dir(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	_cleanup_free_ char *home = bv_home_dir();
	if (xdg && *xdg == '/')
		return bv_path_join(xdg, "bv/certs.d");
	if (home && *home)
		return bv_path_join(home, ".config/bv/certs.d");
	return NULL;
}

int bv_registry_client_new(struct bv_registry_client **out, const struct bv_registry_options *opts,
			   struct bv_error **err)
{
	static const struct bv_registry_options none;
	const struct bv_curl *curl;
	struct bv_registry_client *c;

	if (!opts)
		opts = &none;
	if (bv_offline())
		return bv_offline_error(err, "reach an image registry");
	curl = bv_curl_get(err);
	if (!curl)
		return BV_ERR;

	c = bv_xcalloc(1, sizeof(*c));
	c->curl = curl;
	c->store = opts->store;
	c->mirrors = opts->mirrors;
	bv_strv_init(&c->insecure);
	if (opts->insecure_hosts)
		bv_strv_pushv(&c->insecure, opts->insecure_hosts);
	c->certs_dir = opts->certs_dir ? bv_xstrdup(opts->certs_dir) : default_certs_dir();
	c->user_agent =
		opts->user_agent ? bv_xstrdup(opts->user_agent) : bv_xasprintf("bv/%s", BV_VERSION);
	c->jobs = opts->jobs;
	if (!c->jobs) {
		const char *env = getenv("BV_JOBS");
		unsigned j;
		c->jobs = 8;
		if (env && *env) {
			if (bv_parse_uint(&j, env) < 0 || j == 0 || j > 256) {
				bv_registry_client_free(c);
				return bv_error_setc(err, BV_EINVALID, 0,
						     "invalid BV_JOBS '%s': expected a number "
						     "from 1 to 256",
						     env);
			}
			c->jobs = j;
		}
	}
	c->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 15;
	c->low_speed_limit = opts->low_speed_limit > 0 ? opts->low_speed_limit : 1024;
	c->low_speed_time_s = opts->low_speed_time_s > 0 ? opts->low_speed_time_s : 30;
	c->retries = opts->retries < 0 ? 0 : opts->retries == 0 ? 3 : (unsigned)opts->retries;
	c->backoff_ms = opts->backoff_ms ? opts->backoff_ms : 500;
	c->lock_wait_s = opts->lock_wait_s ? opts->lock_wait_s : 600;
	c->progress = opts->progress;
	c->progress_payload = opts->progress_payload;
	c->unpack_dir = opts->unpack_dir ? bv_xstrdup(opts->unpack_dir) : NULL;
	c->rng = (now_ns() ^ ((uint64_t)getpid() << 32)) | 1;
	c->tokens = bv_token_cache_new();
	c->sync = curl->multi_init();
	c->multi = curl->multi_init();
	if (!c->sync || !c->multi) {
		bv_registry_client_free(c);
		return bv_error_set(err, "could not initialise libcurl");
	}
	*out = c;
	return 0;
}

void bv_registry_client_free(struct bv_registry_client *c)
{
	if (!c)
		return;
	if (c->sync)
		c->curl->multi_cleanup(c->sync);
	if (c->multi)
		c->curl->multi_cleanup(c->multi);
	for (size_t i = 0; i < c->n_basics; i++) {
		free(c->basics[i].registry);
		explicit_bzero(c->basics[i].header, strlen(c->basics[i].header));
		free(c->basics[i].header);
	}
	free(c->basics);
	bv_token_cache_free(c->tokens);
	bv_strv_clear(&c->insecure);
	free(c->certs_dir);
	free(c->user_agent);
	free(c->unpack_dir);
	free(c);
}

void bv_registry_client_stats(struct bv_registry_stats *out, const struct bv_registry_client *c)
{
	*out = c->stats;
}

static const char *machine_platform(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return "linux/amd64";
	if (!strcmp(u.machine, "aarch64") || !strcmp(u.machine, "arm64"))
		return "linux/arm64/v8";
	if (!strncmp(u.machine, "armv7", 5))
		return "linux/arm/v7";
	if (!strncmp(u.machine, "armv6", 5))
		return "linux/arm/v6";
	if (!strcmp(u.machine, "ppc64le"))
		return "linux/ppc64le";
	if (!strcmp(u.machine, "s390x"))
		return "linux/s390x";
	if (!strcmp(u.machine, "riscv64"))
		return "linux/riscv64";
	if (u.machine[0] == 'i' && !strcmp(u.machine + 2, "86"))
		return "linux/386";
	return "linux/amd64";
}

const char *bv_registry_default_platform(void)
{
	/* asked once: the machine does not change under a process, and `bv sync` asks for
	 * every locked tool (a uname(2) each, 1000 on a 1000-tool project) */
	static const char *platform;
	if (!platform)
		platform = machine_platform();
	return platform;
}

static int endpoint_init(struct bv_registry_client *c, const struct bv_imageref *ref,
			 struct endpoint *ep)
{
	const char *mirror = c->mirrors ? bv_mirrors_lookup(c->mirrors, ref->registry) : NULL;
	const char *host = mirror ? mirror : bv_imageref_api_host(ref->registry);
	bool plain;

	memset(ep, 0, sizeof(*ep));
	ep->registry = bv_xstrdup(mirror ? mirror : ref->registry);
	ep->repository = bv_xstrdup(ref->repository);
	ep->scope = bv_xasprintf("repository:%s:pull", ref->repository);
	ep->display = bv_imageref_format(ref);
	if (c->certs_dir) {
		_cleanup_free_ char *dir = bv_path_join(c->certs_dir, host);
		char *ca = bv_path_join(dir, "ca.crt");
		if (access(ca, R_OK) == 0)
			ep->cafile = ca;
		else
			free(ca);
	}
	plain = !ep->cafile && (bv_imageref_host_is_loopback(host) ||
				(c->mirrors && bv_mirrors_insecure(c->mirrors, host)) ||
				bv_strv_contains(&c->insecure, host));
	ep->base = bv_xasprintf("%s://%s", plain ? "http" : "https", host);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* requests                                                                                 */

static void request_reset_headers(struct request *r)
{
	free(r->content_type);
	free(r->docker_digest);
	free(r->www_auth);
	free(r->content_range);
	free(r->location);
	r->content_type = r->docker_digest = r->www_auth = r->content_range = r->location = NULL;
}

static void request_init(struct request *r, size_t body_max)
{
	memset(r, 0, sizeof(*r));
	bv_buf_init(&r->body, 0);
	r->body_max = body_max;
}

static void request_release(struct request *r)
{
	if (r->h) {
		r->c->curl->easy_cleanup(r->h);
		r->h = NULL;
	}
	if (r->hdrs) {
		/* may hold an Authorization header */
		for (struct curl_slist *l = r->hdrs; l; l = l->next)
			explicit_bzero(l->data, strlen(l->data));
		r->c->curl->slist_free_all(r->hdrs);
		r->hdrs = NULL;
	}
	request_reset_headers(r);
	free(r->url);
	r->url = NULL;
	bv_buf_release(&r->body);
}

static size_t on_header(char *data, size_t size, size_t n, void *payload)
{
	struct request *r = payload;
	size_t len = size * n;
	const char *colon, *value;
	size_t vlen;
	char **slot = NULL;

	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* a new response (after a redirect or a 100 Continue) */
		request_reset_headers(r);
		return len;
	}
	colon = memchr(data, ':', len);
	if (!colon)
		return len;
#define HEADER_IS(name) \
	((size_t)(colon - data) == sizeof(name) - 1 && !strncasecmp(data, name, sizeof(name) - 1))
	if (HEADER_IS("content-type"))
		slot = &r->content_type;
	else if (HEADER_IS("docker-content-digest"))
		slot = &r->docker_digest;
	else if (HEADER_IS("www-authenticate"))
		slot = &r->www_auth;
	else if (HEADER_IS("content-range"))
		slot = &r->content_range;
	else if (HEADER_IS("location"))
		slot = &r->location;
#undef HEADER_IS
	if (!slot || *slot)
		return len;
	value = colon + 1;
	vlen = len - (size_t)(value - data);
	trim_value(&value, &vlen);
	if (vlen > BV_WWW_AUTH_MAX_LEN)
		return len;
	*slot = bv_xstrndup(value, vlen);
	return len;
}

static int blob_write(struct request *r, const char *data, size_t len);

static size_t on_write(char *data, size_t size, size_t n, void *payload)
{
	struct request *r = payload;
	size_t len = size * n;

	if (r->blob)
		return blob_write(r, data, len) < 0 ? 0 : len;
	if (r->body.len + len > r->body_max) {
		r->body_too_big = true;
		return 0;
	}
	bv_buf_add(&r->body, data, len);
	return len;
}

/*
 * Sets up r->h for `url`.  `auth` is a whole "Authorization: ..." line or NULL; `range_from`
 * > 0 asks for the bytes from there on.
 */
static int request_setup(struct bv_registry_client *c, struct request *r, const struct endpoint *ep,
			 const char *url, bool head, const char *accept, const char *auth,
			 int64_t range_from, struct bv_error **err)
{
	const struct bv_curl *cu = c->curl;
	CURL *h = cu->easy_init();

	if (!h)
		return bv_error_set(err, "could not create a libcurl handle");
	r->c = c;
	r->h = h;
	r->url = bv_xstrdup(url);
	r->errbuf[0] = '\0';
	if (!r->body_max)
		r->body_max = ERROR_BODY_MAX;
	if (accept)
		r->hdrs = cu->slist_append(r->hdrs, accept);
	if (auth)
		r->hdrs = cu->slist_append(r->hdrs, auth);

	bv_log_url(BV_LOG_DEBUG, "registry: request", r->url);
	cu->easy_setopt(h, CURLOPT_URL, r->url);
	cu->easy_setopt(h, CURLOPT_PRIVATE, (void *)r);
	cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(h, CURLOPT_VERBOSE, 0L);
	cu->easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	cu->easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cu->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	cu->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	cu->easy_setopt(h, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	cu->easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
	cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, c->low_speed_limit);
	cu->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
	cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	cu->easy_setopt(h, CURLOPT_HEADERDATA, (void *)r);
	cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	cu->easy_setopt(h, CURLOPT_WRITEDATA, (void *)r);
	if (r->hdrs)
		cu->easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	if (head)
		cu->easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (ep && ep->cafile)
		cu->easy_setopt(h, CURLOPT_CAINFO, ep->cafile);
	if (range_from > 0) {
		char range[32];
		snprintf(range, sizeof(range), "%lld-", (long long)range_from);
		cu->easy_setopt(h, CURLOPT_RANGE, range);
	}
	return 0;
}

static long request_status(const struct request *r)
{
	long status = 0;
	r->c->curl->easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* Runs r->h alone on the sync multi handle; returns curl's result for it. */
static CURLcode run_sync(struct bv_registry_client *c, struct request *r)
{
	const struct bv_curl *cu = c->curl;
	CURLcode result = CURLE_FAILED_INIT;
	bool done = false;
	int running, queued;
	CURLMcode mc;

	mc = cu->multi_add_handle(c->sync, r->h);
	if (mc != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (!done) {
		CURLMsg *msg;
		mc = cu->multi_perform(c->sync, &running);
		if (mc != CURLM_OK)
			break;
		while ((msg = cu->multi_info_read(c->sync, &queued))) {
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == r->h) {
				result = msg->data.result;
				done = true;
			}
		}
		if (done || !running)
			break;
		if (cu->multi_poll(c->sync, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	cu->multi_remove_handle(c->sync, r->h);
	c->stats.requests++;
	return result;
}

/* Waits `ns` without holding anything back (the sync handle has no transfers). */
static void delay(struct bv_registry_client *c, uint64_t ns)
{
	uint64_t end = now_ns() + ns;
	for (uint64_t t = now_ns(); t < end; t = now_ns()) {
		uint64_t ms = (end - t) / NS_PER_MS + 1;
		c->curl->multi_poll(c->sync, NULL, 0, (int)(ms > 1000 ? 1000 : ms), NULL);
	}
}

static bool retryable_status(long status)
{
	return status == 429 || status >= 500;
}

/* What went wrong with a finished transfer, in words (no URL, no credentials). */
static char *curl_failure(const struct bv_registry_client *c, const struct request *r, CURLcode rc)
{
	if (rc == CURLE_RECV_ERROR && strstr(r->errbuf, "reset"))
		return bv_xstrdup("connection reset");
	if (r->errbuf[0])
		return bv_xstrdup(r->errbuf);
	return bv_xstrdup(c->curl->easy_strerror(rc));
}

static const char *find_basic(const struct bv_registry_client *c, const char *registry)
{
	for (size_t i = 0; i < c->n_basics; i++)
		if (!strcmp(c->basics[i].registry, registry))
			return c->basics[i].header;
	return NULL;
}

/* The Authorization line to send to `ep`, new (wipe and free it), or NULL. */
static char *auth_line(struct bv_registry_client *c, const struct endpoint *ep)
{
	const char *token = bv_token_cache_get(c->tokens, ep->registry, ep->scope);
	const char *basic;
	if (token)
		return bv_xasprintf("Authorization: Bearer %s", token);
	basic = find_basic(c, ep->registry);
	return basic ? bv_xstrdup(basic) : NULL;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int lookup_credentials(struct bv_credential *cred, const struct endpoint *ep, bool *found,
			      struct bv_error **err)
{
	int r = bv_credentials_lookup(cred, ep->registry, err);
	*found = r == 0;
	if (r == BV_ENOTFOUND) {
		if (err) {
			bv_error_free(*err);
			*err = NULL;
		}
		return 0;
	}
	if (r < 0)
		return bv_error_wrap(err, r, "could not read credentials for '%s'", ep->registry);
	return 0;
}

int bv_registry_parse_token(char **token_out, int64_t *expires_in_out, const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *t = json_object_get(root, "token");
	const char *token = json_string_value(t);
	int ret = 0;

	if (!token || !*token || strlen(token) != json_string_length(t)) {
		t = json_object_get(root, "access_token");
		token = json_string_value(t);
	}
	*token_out = NULL;
	*expires_in_out = 0;
	/* a token goes into an HTTP header: no NUL, no line break, nothing unprintable */
	if (!token || !*token || strlen(token) != json_string_length(t) || strpbrk(token, "\r\n") ||
	    strlen(token) > TOKEN_MAX) {
		ret = BV_EINVALID;
	} else {
		*token_out = bv_xstrdup(token);
		if (json_is_integer(json_object_get(root, "expires_in")))
			*expires_in_out = json_integer_value(json_object_get(root, "expires_in"));
	}
	if (root) {
		/* the token strings inside jansson's copy; wipe what we can reach */
		static const char *const keys[] = {"token", "access_token"};
		for (size_t i = 0; i < BV_ARRAY_SIZE(keys); i++) {
			json_t *v = json_object_get(root, keys[i]);
			if (json_is_string(v))
				explicit_bzero((char *)(uintptr_t)json_string_value(v),
					       json_string_length(v));
		}
		json_decref(root);
	}
	return ret;
}

/* GETs a bearer token for `ep` as the challenge `a` asks, and caches it. */
static int fetch_token(struct bv_registry_client *c, const struct endpoint *ep,
		       const struct bv_www_auth *a, struct bv_error **err)
{
	_cleanup_free_ char *url = NULL;
	struct bv_credential cred = {0};
	struct request r = {.body = BV_BUF_INIT};
	char *basic = NULL, *line = NULL;
	bool have_cred = false;
	char *token = NULL;
	int64_t expires_in = 0;
	CURLcode rc;
	long status;
	int ret;

	ret = bv_auth_token_url(&url, a, ep->scope, err);
	if (ret < 0)
		return bv_error_wrap(err, ret, "could not authenticate to '%s'", ep->registry);
	ret = lookup_credentials(&cred, ep, &have_cred, err);
	if (ret < 0)
		return ret;
	if (have_cred) {
		basic = bv_basic_auth_header(&cred);
		line = bv_xasprintf("Authorization: %s", basic);
		free_secret(basic);
		bv_credential_release(&cred);
	}
	r.body_max = TOKEN_MAX;
	ret = request_setup(c, &r, ep, url, false, NULL, line, 0, err);
	free_secret(line);
	if (ret < 0) {
		request_release(&r);
		return ret;
	}
	c->stats.token_requests++;
	rc = run_sync(c, &r);
	status = request_status(&r);
	if (rc != CURLE_OK) {
		_cleanup_free_ char *why = curl_failure(c, &r, rc);
		ret = bv_error_set(err, "could not get a token for '%s' from '%s': %s", ep->display,
				   a->realm, why);
		goto out;
	}
	if (status == 401 || status == 403) {
		ret = bv_error_set(
			err, "could not get a token for '%s' from '%s': %s", ep->display, a->realm,
			have_cred ? "the credentials were rejected"
				  : "access denied (no credentials found; log in first)");
		goto out;
	}
	if (status != 200) {
		ret = bv_error_set(err, "could not get a token for '%s' from '%s': HTTP %ld",
				   ep->display, a->realm, status);
		goto out;
	}
	if (bv_registry_parse_token(&token, &expires_in, r.body.buf, r.body.len) < 0) {
		ret = bv_error_setc(err, BV_EINVALID, 0,
				    "could not get a token for '%s' from '%s': the response has no "
				    "token",
				    ep->display, a->realm);
		goto out;
	}
	bv_token_cache_put(c->tokens, ep->registry, ep->scope, token,
			   bv_token_expires_at(time(NULL), expires_in));
	ret = 0;
out:
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	explicit_bzero(r.body.buf, r.body.len);
	request_release(&r);
	return ret;
}

/* Acts on a 401 challenge from `ep`; afterwards auth_line() has something to send. */
static int authenticate(struct bv_registry_client *c, const struct endpoint *ep,
			const char *challenge, struct bv_error **err)
{
	struct bv_www_auth a = {0};
	struct bv_credential cred = {0};
	bool found = false;
	int ret;

	if (!challenge)
		return bv_error_set(err, "'%s' answered 401 without an authentication challenge",
				    ep->registry);
	ret = bv_www_authenticate_parse(&a, challenge, err);
	if (ret < 0)
		return bv_error_wrap(err, ret, "could not authenticate to '%s'", ep->registry);
	if (a.scheme == BV_AUTH_BEARER) {
		ret = fetch_token(c, ep, &a, err);
		bv_www_auth_release(&a);
		return ret;
	}
	bv_www_auth_release(&a);
	ret = lookup_credentials(&cred, ep, &found, err);
	if (ret < 0)
		return ret;
	if (!found)
		return bv_error_set(
			err,
			"'%s' requires authentication and no credentials were found for "
			"it (docker login %s, or set DOCKER_CONFIG)",
			ep->registry, ep->registry);
	if (find_basic(c, ep->registry)) {
		bv_credential_release(&cred);
		return bv_error_set(err, "'%s' rejected the credentials for '%s'", ep->registry,
				    ep->display);
	}
	char *basic = bv_basic_auth_header(&cred);
	bv_credential_release(&cred);
	BV_GROW(c->basics, c->alloc_basics, c->n_basics + 1);
	c->basics[c->n_basics].registry = bv_xstrdup(ep->registry);
	c->basics[c->n_basics].header = bv_xasprintf("Authorization: %s", basic);
	c->n_basics++;
	free_secret(basic);
	return 0;
}

/*
 * A request with retries and authentication.  On success (any HTTP status) *r holds the
 * response; the caller releases it.  Transport failures after the retries are errors.
 */
/* What a request sends besides GET/HEAD: a method, a small body and its type. */
struct send {
	const char *method;       /* "PUT", "POST" */
	const char *content_type; /* NULL: none */
	const void *data;
	size_t len;
};

static void request_send(struct bv_registry_client *c, struct request *r, const struct send *s)
{
	const struct bv_curl *cu = c->curl;
	if (!s)
		return;
	if (s->content_type) {
		_cleanup_free_ char *line = bv_xasprintf("Content-Type: %s", s->content_type);
		r->hdrs = cu->slist_append(r->hdrs, line);
		cu->easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
	}
	cu->easy_setopt(r->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->len);
	cu->easy_setopt(r->h, CURLOPT_POSTFIELDS, s->data ? s->data : "");
	cu->easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, s->method);
	/* a 3xx answer to a PUT must not turn it into a GET */
	cu->easy_setopt(r->h, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
}

static int request_sync_send(struct bv_registry_client *c, const struct endpoint *ep,
			     const char *url, bool head, const char *accept, const struct send *s,
			     size_t body_max, struct request *r, struct bv_error **err);

static int request_sync(struct bv_registry_client *c, const struct endpoint *ep, const char *url,
			bool head, const char *accept, size_t body_max, struct request *r,
			struct bv_error **err)
{
	return request_sync_send(c, ep, url, head, accept, NULL, body_max, r, err);
}

static int request_sync_send(struct bv_registry_client *c, const struct endpoint *ep,
			     const char *url, bool head, const char *accept, const struct send *s,
			     size_t body_max, struct request *r, struct bv_error **err)
{
	bool authed = false;
	unsigned attempt = 0;

	for (;;) {
		char *auth = auth_line(c, ep);
		CURLcode rc;
		long status;
		int ret;

		request_release(r);
		request_init(r, body_max);
		ret = request_setup(c, r, ep, url, head, accept, auth, 0, err);
		free_secret(auth);
		if (ret < 0)
			return ret;
		request_send(c, r, s);
		rc = run_sync(c, r);
		attempt++;
		if (rc != CURLE_OK) {
			if (r->body_too_big)
				return 0;
			if (bv_curl_retryable(rc) && attempt <= c->retries) {
				delay(c, backoff_ns(c, attempt));
				continue;
			}
			_cleanup_free_ char *why = curl_failure(c, r, rc);
			if (attempt > 1)
				return bv_error_set(err,
						    "could not reach '%s': %s after %u attempts",
						    url, why, attempt);
			return bv_error_set(err, "could not reach '%s': %s", url, why);
		}
		status = request_status(r);
		if (status == 401 && authed) {
			/* a push may be refused to credentials that can pull: say what to do */
			bool push = bv_str_has_suffix(ep->scope, ",push");
			const char *hint = push ? "; log in with 'docker login " : "";
			const char *tail =
				push ? "' or check the credentials in DOCKER_CONFIG" : "";
			return find_basic(c, ep->registry)
				       ? bv_error_set(
						 err,
						 "'%s' rejected the credentials for '%s'%s%s%s",
						 ep->registry, ep->display, hint,
						 push ? ep->registry : "", tail)
				       : bv_error_set(err,
						      "'%s' denied access to '%s' (HTTP 401)%s%s%s",
						      ep->registry, ep->display, hint,
						      push ? ep->registry : "", tail);
		}
		if (status == 401 && !authed) {
			authed = true;
			ret = authenticate(c, ep, r->www_auth, err);
			if (ret < 0)
				return ret;
			attempt--;
			continue;
		}
		if (retryable_status(status) && attempt <= c->retries) {
			delay(c, backoff_ns(c, attempt));
			continue;
		}
		return 0;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* manifests                                                                                */

static char *media_type_of(const char *content_type)
{
	size_t n;
	if (!content_type)
		return NULL;
	n = strcspn(content_type, "; \t");
	return n ? bv_xstrndup(content_type, n) : NULL;
}

static int http_error(const struct endpoint *ep, const char *what, const struct request *r,
		      long status, struct bv_error **err)
{
	_cleanup_free_ char *detail = registry_error_text(&r->body);
	int code = status == 404 ? BV_ENOTFOUND : BV_ERR;

	if (status == 404)
		return bv_error_setc(err, code, 0, "%s of '%s' not found in the registry%s%s%s",
				     what, ep->display, detail ? " (" : "", detail ? detail : "",
				     detail ? ")" : "");
	if (status == 401 || status == 403)
		return bv_error_set(err, "access to %s of '%s' denied (HTTP %ld)%s%s", what,
				    ep->display, status, detail ? ": " : "", detail ? detail : "");
	return bv_error_setc(err, code, 0, "could not fetch %s of '%s': registry returned %ld%s%s",
			     what, ep->display, status, detail ? ": " : "", detail ? detail : "");
}

static char *body_digest(const struct bv_buf *b)
{
	char hex[BV_SHA256_HEX_LEN + 1];
	bv_sha256_hex(hex, b->buf, b->len);
	return bv_xasprintf("sha256:%s", hex);
}

/*
 * Fetches the manifest `reference` (tag or digest) into `body`, verified against `expect`
 * (may be NULL) or the registry's Docker-Content-Digest.  Takes it from the store when
 * `expect` is set and the store has it.  *digest_out and *media_type_out are new strings.
 */
static int fetch_manifest(struct bv_registry_client *c, const struct endpoint *ep,
			  const char *reference, const char *expect, struct bv_buf *body,
			  char **digest_out, char **media_type_out, struct bv_error **err)
{
	struct request r = {.body = BV_BUF_INIT};
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *got = NULL;
	char *media_type;
	long status;
	int ret;

	if (expect && c->store && bv_store_has_blob(c->store, expect)) {
		struct bv_buf tmp = BV_BUF_INIT;
		ret = bv_store_read_blob(&tmp, c->store, expect, BV_REGISTRY_MANIFEST_MAX, NULL);
		if (ret == 0) {
			json_t *root = json_loadb(tmp.buf, tmp.len, 0, NULL);
			const char *mt = json_string_value(json_object_get(root, "mediaType"));
			*media_type_out = mt ? bv_xstrdup(mt) : NULL;
			json_decref(root);
			*digest_out = bv_xstrdup(expect);
			bv_buf_add(body, tmp.buf, tmp.len);
			bv_buf_release(&tmp);
			return 0;
		}
		bv_buf_release(&tmp); /* unreadable or corrupt: fetch it again */
	}

	url = bv_xasprintf("%s/v2/%s/manifests/%s", ep->base, ep->repository, reference);
	ret = request_sync(c, ep, url, false, ACCEPT_MANIFESTS, BV_REGISTRY_MANIFEST_MAX, &r, err);
	if (ret < 0)
		goto out;
	if (r.body_too_big) {
		ret = bv_error_set(err, "manifest of '%s' is larger than %u MiB", ep->display,
				   BV_REGISTRY_MANIFEST_MAX >> 20);
		goto out;
	}
	status = request_status(&r);
	if (status != 200) {
		ret = http_error(ep, "manifest", &r, status, err);
		goto out;
	}
	got = body_digest(&r.body);
	if (!expect && r.docker_digest && bv_str_has_prefix(r.docker_digest, "sha256:"))
		expect = r.docker_digest;
	if (expect && strcmp(expect, got) != 0) {
		ret = bv_error_setc(
			err, BV_EINVALID, 0,
			"manifest of '%s' does not match its digest: expected %s, got %s",
			ep->display, expect, got);
		goto out;
	}
	media_type = media_type_of(r.content_type);
	if (!media_type || !strcmp(media_type, "application/json") ||
	    !strcmp(media_type, "text/plain")) {
		json_t *root = json_loadb(r.body.buf, r.body.len, 0, NULL);
		const char *mt = json_string_value(json_object_get(root, "mediaType"));
		free(media_type);
		media_type = mt ? bv_xstrdup(mt) : NULL;
		json_decref(root);
	}
	bv_buf_add(body, r.body.buf, r.body.len);
	*digest_out = TAKE_PTR(got);
	*media_type_out = media_type;
	ret = 0;
out:
	request_release(&r);
	return ret;
}

static bool is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, BV_MEDIA_OCI_INDEX) || !strcmp(mt, BV_MEDIA_DOCKER_LIST));
}

static bool is_manifest_type(const char *mt)
{
	return mt && (!strcmp(mt, BV_MEDIA_OCI_MANIFEST) || !strcmp(mt, BV_MEDIA_DOCKER_V2));
}

int bv_registry_parse_descriptor(const json_t *obj, struct bv_descriptor *d)
{
	const char *mt = json_string_value(json_object_get(obj, "mediaType"));
	const char *digest = json_string_value(json_object_get(obj, "digest"));
	json_t *size = json_object_get(obj, "size");

	if (!json_is_object(obj) || !digest || !bv_digest_valid(digest) || !json_is_integer(size) ||
	    json_integer_value(size) < 0)
		return BV_EINVALID;
	d->media_type = bv_xstrdup(mt ? mt : "");
	d->digest = bv_xstrdup(digest);
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

static void descriptor_release(struct bv_descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	memset(d, 0, sizeof(*d));
}

void bv_resolved_release(struct bv_resolved *r)
{
	if (!r)
		return;
	free(r->top_digest);
	free(r->top_media_type);
	free(r->manifest_digest);
	free(r->media_type);
	free(r->platform);
	descriptor_release(&r->config);
	for (size_t i = 0; i < r->n_layers; i++)
		descriptor_release(&r->layers[i]);
	free(r->layers);
	memset(r, 0, sizeof(*r));
}

struct platform {
	char os[32], arch[32], variant[32];
};

/* The variant an architecture means when it names none (containerd's normalisation). */
static const char *default_variant(const char *arch)
{
	if (!strcmp(arch, "arm64"))
		return "v8";
	if (!strcmp(arch, "arm"))
		return "v7";
	return "";
}

static int parse_platform(const char *text, struct platform *p, struct bv_error **err)
{
	const char *s1 = text ? strchr(text, '/') : NULL;
	const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	size_t n_os = s1 ? (size_t)(s1 - text) : 0;
	size_t n_arch = s1 ? (s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1)) : 0;
	size_t n_var = s2 ? strlen(s2 + 1) : 0;

	memset(p, 0, sizeof(*p));
	if (!s1 || !n_os || !n_arch || (s2 && !n_var) || n_os >= sizeof(p->os) ||
	    n_arch >= sizeof(p->arch) || n_var >= sizeof(p->variant) || (s2 && strchr(s2 + 1, '/')))
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid platform '%s': expected os/architecture[/variant], "
				     "such as linux/amd64 or linux/arm64",
				     text ? text : "");
	memcpy(p->os, text, n_os);
	memcpy(p->arch, s1 + 1, n_arch);
	if (s2)
		memcpy(p->variant, s2 + 1, n_var);
	/* the kernel's names for what OCI calls amd64 and arm64 */
	if (!strcmp(p->arch, "x86_64") || !strcmp(p->arch, "x86-64"))
		snprintf(p->arch, sizeof(p->arch), "amd64");
	else if (!strcmp(p->arch, "aarch64"))
		snprintf(p->arch, sizeof(p->arch), "arm64");
	if (!p->variant[0])
		snprintf(p->variant, sizeof(p->variant), "%s", default_variant(p->arch));
	return 0;
}

/*
 * Does an image of `os`/`arch`/`variant` (variant may be NULL) run on `want`?  An absent
 * variant means the architecture's default (arm64 is v8, arm is v7); a want without variant
 * (and without a default) accepts any.
 */
static bool platform_fits(const struct platform *want, const char *os, const char *arch,
			  const char *variant)
{
	if (!os || !arch || strcmp(os, want->os) || strcmp(arch, want->arch))
		return false;
	if (!variant || !variant[0])
		variant = default_variant(arch);
	return !want->variant[0] || !strcmp(variant, want->variant);
}

static void format_platform(const struct platform *p, struct bv_buf *out)
{
	bv_buf_printf(out, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

int bv_platform_normalize(char **out, const char *text, struct bv_error **err)
{
	struct platform p;
	struct bv_buf b = BV_BUF_INIT;
	int r = parse_platform(text, &p, err);
	if (r < 0)
		return r;
	format_platform(&p, &b);
	*out = bv_buf_detach(&b, NULL);
	return 0;
}

bool bv_platform_matches(const char *want, const char *have)
{
	struct platform w, h;
	if (parse_platform(want, &w, NULL) < 0 || parse_platform(have, &h, NULL) < 0)
		return false;
	return platform_fits(&w, h.os, h.arch, h.variant);
}

/*
 * BuildKit stores provenance and SBOM attestations as manifests in the image's index, with
 * platform unknown/unknown and an annotation saying so: never an image to run.
 */
static bool is_attestation(const json_t *m)
{
	const char *type = json_string_value(
		json_object_get(json_object_get(m, "annotations"), "vnd.docker.reference.type"));
	const char *os = json_string_value(json_object_get(json_object_get(m, "platform"), "os"));
	return (type && !strcmp(type, "attestation-manifest")) || (os && !strcmp(os, "unknown"));
}

/* Picks the descriptor for `want` in an index; *d filled; BV_ENOTFOUND when none. */
static bool platform_part_valid(const char *s)
{
	/* as long as struct platform can hold (parse_platform refuses longer) */
	if (!s || !*s || strlen(s) >= sizeof(((struct platform *)0)->os))
		return false;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int pick_platform(const struct endpoint *ep, const json_t *root, const char *want_text,
			 const struct platform *want, struct bv_descriptor *d, char **platform_out,
			 struct bv_error **err)
{
	const json_t *list = json_object_get(root, "manifests");
	struct bv_buf seen = BV_BUF_INIT;
	size_t i;
	json_t *m;
	int ret;

	if (!json_is_array(list))
		return bv_error_setc(err, BV_EINVALID, 0, "index of '%s' has no manifest list",
				     ep->display);
	json_array_foreach(list, i, m)
	{
		const json_t *plat = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(plat, "os"));
		const char *arch = json_string_value(json_object_get(plat, "architecture"));
		const char *variant = json_string_value(json_object_get(plat, "variant"));
		if (is_attestation(m))
			continue;
		/* a platform bv could not name back ("linux/amd64/", "a/b" as an os) is none */
		if (!platform_part_valid(os) || !platform_part_valid(arch) ||
		    (variant && !platform_part_valid(variant)))
			continue;
		if (!platform_fits(want, os, arch, variant)) {
			if (os && arch)
				bv_buf_printf(&seen, "%s%s/%s%s%s", seen.len ? ", " : "", os, arch,
					      variant ? "/" : "", variant ? variant : "");
			continue;
		}
		if (bv_registry_parse_descriptor(m, d) < 0) {
			bv_buf_release(&seen);
			return bv_error_setc(err, BV_EINVALID, 0,
					     "index of '%s' has a malformed entry for '%s'",
					     ep->display, want_text);
		}
		*platform_out = bv_xasprintf("%s/%s%s%s", os, arch, variant ? "/" : "",
					     variant ? variant : "");
		bv_buf_release(&seen);
		return 0;
	}
	ret = bv_error_setc(err, BV_ENOTFOUND, 0, "'%s' has no image for platform '%s'%s%s%s",
			    ep->display, want_text, seen.len ? " (it has " : "",
			    seen.len ? seen.buf : "", seen.len ? ")" : "");
	bv_buf_release(&seen);
	return ret;
}

static int parse_image_manifest(const struct endpoint *ep, const struct bv_buf *body,
				struct bv_resolved *out, struct bv_error **err)
{
	json_t *root = json_loadb(body->buf, body->len, 0, NULL);
	const json_t *layers;
	size_t i;
	json_t *l;
	int ret = 0;

	if (!json_is_object(root)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0, "manifest of '%s' is not a JSON object",
				     ep->display);
	}
	layers = json_object_get(root, "layers");
	if (bv_registry_parse_descriptor(json_object_get(root, "config"), &out->config) < 0 ||
	    !json_is_array(layers)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "manifest of '%s' lacks a valid config or layer list",
				     ep->display);
	}
	out->n_layers = json_array_size(layers);
	out->layers = bv_xcalloc(out->n_layers ? out->n_layers : 1, sizeof(*out->layers));
	out->total_size = out->config.size;
	json_array_foreach(layers, i, l)
	{
		if (bv_registry_parse_descriptor(l, &out->layers[i]) < 0) {
			ret = bv_error_setc(err, BV_EINVALID, 0,
					    "manifest of '%s' has a malformed layer %zu",
					    ep->display, i + 1);
			break;
		}
		out->total_size += out->layers[i].size;
	}
	json_decref(root);
	return ret;
}

static int store_document(struct bv_registry_client *c, const struct bv_buf *body,
			  const char *digest, struct bv_error **err)
{
	if (!c->store || bv_store_has_blob(c->store, digest))
		return 0;
	return bv_store_put_blob(NULL, c->store, body->buf, body->len, digest, err);
}

/* Digest of what `ref` names, by HEAD; NULL in *out when the registry does not say. */
static int head_manifest(struct bv_registry_client *c, const struct endpoint *ep,
			 const char *reference, char **out, struct bv_error **err)
{
	struct request r = {.body = BV_BUF_INIT};
	_cleanup_free_ char *url =
		bv_xasprintf("%s/v2/%s/manifests/%s", ep->base, ep->repository, reference);
	long status;
	int ret = request_sync(c, ep, url, true, ACCEPT_MANIFESTS, ERROR_BODY_MAX, &r, err);

	if (ret < 0) {
		request_release(&r);
		return ret;
	}
	status = request_status(&r);
	if (status != 200) {
		ret = http_error(ep, "manifest", &r, status, err);
		request_release(&r);
		return ret;
	}
	*out = r.docker_digest && bv_digest_valid(r.docker_digest) ? bv_xstrdup(r.docker_digest)
								   : NULL;
	request_release(&r);
	return 0;
}

int bv_registry_resolve(struct bv_resolved *out, struct bv_registry_client *c,
			const struct bv_imageref *ref, const char *platform, struct bv_error **err)
{
	struct endpoint ep;
	struct platform want;
	struct bv_resolved res = {0};
	struct bv_buf top = BV_BUF_INIT, body = BV_BUF_INIT;
	_cleanup_free_ char *head_digest = NULL;
	const char *expect;
	int ret;

	if (!platform)
		platform = bv_registry_default_platform();
	ret = parse_platform(platform, &want, err);
	if (ret < 0)
		return ret;
	if (!ref->tag && !ref->digest)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "image reference has neither tag nor digest");
	endpoint_init(c, ref, &ep);

	expect = ref->digest;
	if (!expect) {
		/* HEAD first: a manifest already in the store then costs no GET */
		ret = head_manifest(c, &ep, ref->tag, &head_digest, err);
		if (ret < 0)
			goto fail;
		expect = head_digest;
	}
	ret = fetch_manifest(c, &ep, expect ? expect : ref->tag, expect, &top, &res.top_digest,
			     &res.top_media_type, err);
	if (ret < 0)
		goto fail;
	if (!res.top_media_type) {
		/* OCI allows leaving mediaType out; tell the kinds apart by their fields */
		json_t *root = json_loadb(top.buf, top.len, 0, NULL);
		if (json_is_array(json_object_get(root, "manifests")))
			res.top_media_type = bv_xstrdup(BV_MEDIA_OCI_INDEX);
		else if (json_is_object(json_object_get(root, "config")))
			res.top_media_type = bv_xstrdup(BV_MEDIA_OCI_MANIFEST);
		json_decref(root);
	}

	if (is_index_type(res.top_media_type)) {
		struct bv_descriptor d = {0};
		json_t *root = json_loadb(top.buf, top.len, 0, NULL);
		ret = pick_platform(&ep, root, platform, &want, &d, &res.platform, err);
		json_decref(root);
		if (ret < 0)
			goto fail;
		ret = fetch_manifest(c, &ep, d.digest, d.digest, &body, &res.manifest_digest,
				     &res.media_type, err);
		if (ret == 0 && body.len != d.size)
			ret = bv_error_setc(err, BV_EINVALID, 0,
					    "manifest %s of '%s' is %zu bytes, the index says %llu",
					    d.digest, ep.display, body.len,
					    (unsigned long long)d.size);
		if (ret == 0 && !res.media_type && d.media_type[0])
			res.media_type = bv_xstrdup(d.media_type);
		descriptor_release(&d);
		if (ret < 0)
			goto fail;
		if (!res.media_type)
			res.media_type = bv_xstrdup(BV_MEDIA_OCI_MANIFEST);
	} else {
		bv_buf_add(&body, top.buf, top.len);
		res.manifest_digest = bv_xstrdup(res.top_digest);
		res.media_type = res.top_media_type ? bv_xstrdup(res.top_media_type) : NULL;
	}
	if (!is_manifest_type(res.media_type)) {
		ret = bv_error_setc(err, BV_EINVALID, 0,
				    "'%s' has an unsupported manifest type '%s'", ep.display,
				    res.media_type ? res.media_type : "(none)");
		goto fail;
	}
	res.manifest_size = body.len;
	ret = parse_image_manifest(&ep, &body, &res, err);
	if (ret < 0)
		goto fail;
	ret = store_document(c, &top, res.top_digest, err);
	if (ret == 0 && strcmp(res.top_digest, res.manifest_digest) != 0)
		ret = store_document(c, &body, res.manifest_digest, err);
	if (ret < 0) {
		bv_error_wrap(err, ret, "could not store the manifest of '%s'", ep.display);
		goto fail;
	}
	*out = res;
	bv_buf_release(&top);
	bv_buf_release(&body);
	endpoint_release(&ep);
	return 0;
fail:
	bv_resolved_release(&res);
	bv_buf_release(&top);
	bv_buf_release(&body);
	endpoint_release(&ep);
	return ret;
}

int bv_registry_parse_document(struct bv_resolved *out, const char *body, size_t len,
			       const char *platform, struct bv_error **err)
{
	char display[] = "the document";
	struct endpoint ep = {.display = display};
	struct bv_resolved res = {0};
	struct bv_buf doc = BV_BUF_INIT;
	struct platform want;
	json_t *root;
	int ret;

	if (!platform)
		platform = bv_registry_default_platform();
	ret = parse_platform(platform, &want, err);
	if (ret < 0)
		return ret;
	root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return bv_error_setc(err, BV_EINVALID, 0, "the document is not a JSON object");
	}
	if (json_is_array(json_object_get(root, "manifests"))) {
		struct bv_descriptor d = {0};
		ret = pick_platform(&ep, root, platform, &want, &d, &res.platform, err);
		if (ret == 0)
			res.manifest_digest = bv_xstrdup(d.digest);
		descriptor_release(&d);
	} else {
		bv_buf_add(&doc, body, len);
		ret = parse_image_manifest(&ep, &doc, &res, err);
		bv_buf_release(&doc);
	}
	json_decref(root);
	if (ret < 0) {
		bv_resolved_release(&res);
		return ret;
	}
	*out = res;
	return 0;
}

int bv_registry_head_digest(char **digest_out, struct bv_registry_client *c,
			    const struct bv_imageref *ref, struct bv_error **err)
{
	struct endpoint ep;
	char *digest = NULL;
	const char *reference = ref->digest ? ref->digest : ref->tag;
	int ret;

	if (!reference)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "image reference has neither tag nor digest");
	endpoint_init(c, ref, &ep);
	ret = head_manifest(c, &ep, reference, &digest, err);
	if (ret == 0 && ref->digest) {
		free(digest);
		digest = bv_xstrdup(ref->digest);
	} else if (ret == 0 && !digest) {
		/* the registry did not send Docker-Content-Digest: hash the document */
		struct bv_buf body = BV_BUF_INIT;
		char *mt = NULL;
		ret = fetch_manifest(c, &ep, reference, NULL, &body, &digest, &mt, err);
		free(mt);
		bv_buf_release(&body);
	}
	endpoint_release(&ep);
	if (ret < 0)
		return ret;
	*digest_out = digest;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* pull                                                                                     */

enum blob_state {
	BLOB_QUEUED,  /* start when a slot is free */
	BLOB_DELAYED, /* retry after not_before */
	BLOB_LOCKED,  /* another process ingests it; look again after not_before */
	BLOB_RUNNING,
	BLOB_DONE,
};

struct pull;

struct blob {
	struct pull *pull;
	const struct bv_descriptor *desc;
	bool is_config;
	size_t owner; /* the image whose endpoint serves it */
	size_t *users;
	size_t n_users, alloc_users;
	enum blob_state state;
	uint64_t not_before, lock_deadline;
	unsigned failures;
	bool auth_retried;
	bool restarted_whole; /* a resumed download failed its digest and began again at 0 */
	struct bv_store_ingest *in;
	struct bv_unpack_stream *stream; /* the layer unpacked as it downloads, or NULL */
	bool no_stream;                  /* the partial was rewritten: unpack from the store */
	int64_t offset;                  /* where this attempt started */
	uint64_t received;               /* body bytes of this attempt */
	uint64_t done;                   /* bytes in the store or the partial, for progress */
	uint64_t fetched; /* body bytes of every attempt: what this pull downloaded */
	struct bv_error *write_err;
	struct request req;
};

struct image {
	struct endpoint ep;
	char *name;
	uint64_t bytes_total;
	size_t blobs_total, blobs_done;
	bool finished_reported;
};

struct pull {
	struct bv_registry_client *c;
	const struct bv_pull_request *reqs;
	struct image *images;
	size_t n_images;
	struct blob *blobs;
	size_t n_blobs;
	size_t running, remaining;
	uint64_t start, last_progress, bytes;
	struct bv_error *fatal;
	int fatal_code;
	/* streams whose blob is verified, until their child answers; live: all of them */
	struct bv_unpack_stream **verified;
	size_t n_verified, alloc_verified, live_streams;
};

static const char *blob_kind(const struct blob *b)
{
	return b->is_config ? "config" : "layer";
}

__attribute__((format(printf, 4, 5))) static void pull_fail(struct pull *p, struct blob *b,
							    int code, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	_cleanup_free_ char *sd = short_digest(b->desc->digest);
	va_list ap;

	if (p->fatal)
		return;
	va_start(ap, fmt);
	what = bv_xvasprintf(fmt, ap);
	va_end(ap);
	p->fatal_code = code;
	bv_error_setc(&p->fatal, code, 0, "could not pull %s: %s %s: %s", p->images[b->owner].name,
		      blob_kind(b), sd, what);
}

/*
 * Streaming (src/lib/oci/store/stream.h): a layer is unpacked by a child process while it
 * downloads, into <unpack_dir>/<hex>, published by the child only once the blob is.  At most
 * `jobs` children live at once; a layer that finds no free slot, or whose partial is
 * rewritten, is unpacked from the store afterwards as before (bv_install()).
 */
static void stream_begin(struct pull *p, struct blob *b)
{
	struct bv_registry_client *c = p->c;
	_cleanup_free_ char *dest = NULL;
	struct bv_error *e = NULL;

	if (!c->unpack_dir || b->is_config || b->no_stream || b->stream ||
	    p->live_streams >= c->jobs)
		return;
	dest = bv_xasprintf("%s/%s", c->unpack_dir, b->desc->digest + 7);
	if (bv_unpack_is_sealed(dest))
		return;
	if (bv_unpack_stream_start(&b->stream, bv_store_ingest_path(b->in), b->desc->size,
				   b->desc->media_type, dest, b->desc->digest, &e) < 0) {
		/* not fatal: the layer is unpacked from the store after the download */
		bv_logf(BV_LOG_DEBUG, "not unpacking %s while it downloads: %s", b->desc->digest,
			e && e->message ? e->message : "");
		bv_error_free(e);
		b->stream = NULL;
		return;
	}
	p->live_streams++;
}

static void stream_abort(struct blob *b)
{
	struct bv_error *e = NULL;
	if (!b->stream)
		return;
	bv_unpack_stream_verdict(b->stream, false);
	(void)bv_unpack_stream_finish(TAKE_PTR(b->stream), &e);
	bv_logf(BV_LOG_DEBUG, "layer %s: the tree unpacked while it downloaded is discarded: %s",
		b->desc->digest, e && e->message ? e->message : "done");
	bv_error_free(e);
	b->pull->live_streams--;
}

/* The blob is published: its child may publish the tree once it is through. */
static void stream_verified(struct pull *p, struct blob *b)
{
	if (!b->stream)
		return;
	bv_unpack_stream_verdict(b->stream, true);
	BV_GROW(p->verified, p->alloc_verified, p->n_verified + 1);
	p->verified[p->n_verified++] = TAKE_PTR(b->stream);
}

/*
 * Collects the children that answered (all of them when `wait`).  A child that failed is
 * not an error of the pull: its layer is unpacked again from the store by bv_install(), which
 * reports what is wrong with it in the usual words.
 */
static void stream_reap(struct pull *p, bool wait)
{
	size_t kept = 0;
	for (size_t i = 0; i < p->n_verified; i++) {
		struct bv_unpack_stream *s = p->verified[i];
		struct bv_error *e = NULL;
		if (!wait && !bv_unpack_stream_ready(s)) {
			p->verified[kept++] = s;
			continue;
		}
		if (bv_unpack_stream_finish(s, &e) < 0)
			bv_logf(BV_LOG_DEBUG, "unpacking a layer while it downloaded failed: %s",
				e && e->message ? e->message : "");
		else
			bv_logf(BV_LOG_DEBUG, "a layer was unpacked while it downloaded");
		bv_error_free(e);
		p->live_streams--;
	}
	p->n_verified = kept;
}

static int blob_write(struct request *r, const char *data, size_t len)
{
	struct blob *b = r->blob;

	if (!r->checked) {
		long status = request_status(r);
		r->checked = true;
		r->to_ingest = status == 200 || status == 206;
		if (status == 206 && b->offset > 0) {
			char expect[48];
			int n = snprintf(expect, sizeof(expect), "bytes %lld-",
					 (long long)b->offset);
			if (!r->content_range ||
			    strncmp(r->content_range, expect, (size_t)n) != 0) {
				bv_error_set(&b->write_err,
					     "the registry answered a range request with '%s'",
					     r->content_range ? r->content_range
							      : "no Content-Range");
				return -1;
			}
		} else if (status == 200 && bv_store_ingest_offset(b->in) > 0) {
			/* the server ignored Range and sends everything */
			/* the child read the old bytes: it must not mix them with these */
			stream_abort(b);
			b->no_stream = true;
			if (bv_store_ingest_reset(b->in, &b->write_err) < 0)
				return -1;
			b->offset = 0;
			b->done = 0;
		}
	}
	if (!r->to_ingest) {
		if (r->body.len + len <= ERROR_BODY_MAX)
			bv_buf_add(&r->body, data, len);
		return 0;
	}
	if (bv_store_ingest_write(b->in, data, len, &b->write_err) < 0)
		return -1;
	bv_unpack_stream_notify(b->stream, (uint64_t)bv_store_ingest_offset(b->in));
	b->received += len;
	b->fetched += len;
	b->done += len;
	r->c->stats.blob_bytes += len;
	return 0;
}

static void blob_stop(struct pull *p, struct blob *b, bool keep_partial)
{
	stream_abort(b);
	if (b->req.h) {
		p->c->curl->multi_remove_handle(p->c->multi, b->req.h);
		request_release(&b->req);
	}
	if (b->in) {
		bv_store_ingest_abort(b->in, keep_partial);
		b->in = NULL;
	}
	if (b->state == BLOB_RUNNING)
		p->running--;
}

static void blob_finish(struct pull *p, struct blob *b)
{
	b->state = BLOB_DONE;
	b->done = b->desc->size;
	p->remaining--;
	for (size_t i = 0; i < b->n_users; i++)
		p->images[b->users[i]].blobs_done++;
}

/* Starts (or restarts) the transfer of `b`. */
static void blob_start(struct pull *p, struct blob *b)
{
	struct bv_registry_client *c = p->c;
	struct endpoint *ep = &p->images[b->owner].ep;
	struct bv_error *e = NULL;
	_cleanup_free_ char *url = NULL;
	char *auth;
	int ret;

	if (bv_store_has_blob(c->store, b->desc->digest)) {
		blob_finish(p, b);
		return;
	}
	if (!b->in) {
		ret = bv_store_ingest_begin(&b->in, c->store, b->desc->digest,
					    (int64_t)b->desc->size, &e);
		if (ret == BV_EEXISTS) {
			uint64_t now = now_ns();
			bv_error_free(e);
			if (b->state != BLOB_LOCKED)
				b->lock_deadline = now + (uint64_t)c->lock_wait_s * 1000000000ull;
			else if (now >= b->lock_deadline) {
				pull_fail(p, b, BV_ERR,
					  "another bv process is downloading it; gave up waiting "
					  "after %u s",
					  c->lock_wait_s);
				return;
			}
			b->state = BLOB_LOCKED;
			b->not_before = now + LOCK_POLL_MS * NS_PER_MS;
			return;
		}
		if (ret < 0) {
			_cleanup_free_ char *msg = bv_error_format(e);
			bv_error_free(e);
			pull_fail(p, b, ret, "%s", msg);
			return;
		}
		/* Another process may have published it between the check above and taking
		 * the blob's lock (a small config, on a cluster where 64 tasks sync at once):
		 * fetching it again would only cost a GET. */
		if (bv_store_has_blob(c->store, b->desc->digest)) {
			bv_store_ingest_abort(b->in, false);
			b->in = NULL;
			blob_finish(p, b);
			return;
		}
	}
	b->offset = bv_store_ingest_offset(b->in);
	b->done = (uint64_t)b->offset;
	b->received = 0;
	if ((uint64_t)b->offset == b->desc->size) {
		/* a complete partial from an earlier run: only the commit is missing */
		ret = bv_store_ingest_commit(b->in, &e);
		b->in = NULL;
		if (ret == 0) {
			c->stats.blobs_fetched++;
			blob_finish(p, b);
		} else {
			bv_error_free(e);
			b->state = BLOB_QUEUED; /* the partial is gone; download it afresh */
		}
		return;
	}

	stream_begin(p, b);
	url = bv_xasprintf("%s/v2/%s/blobs/%s", ep->base, ep->repository, b->desc->digest);
	auth = auth_line(c, ep);
	request_init(&b->req, ERROR_BODY_MAX);
	b->req.blob = b;
	ret = request_setup(c, &b->req, ep, url, false, NULL, auth, b->offset, &e);
	free_secret(auth);
	if (ret < 0 || c->curl->multi_add_handle(c->multi, b->req.h) != CURLM_OK) {
		_cleanup_free_ char *msg = e ? bv_error_format(e) : bv_xstrdup("libcurl failed");
		bv_error_free(e);
		request_release(&b->req);
		pull_fail(p, b, BV_ERR, "%s", msg);
		return;
	}
	b->state = BLOB_RUNNING;
	p->running++;
}

static void blob_retry_later(struct pull *p, struct blob *b, const char *why)
{
	struct bv_registry_client *c = p->c;
	bool progressed = b->received > 0;

	blob_stop(p, b, true);
	/* an attempt that got bytes moved the resume point: it does not use up a retry */
	if (!progressed)
		b->failures++;
	if (b->failures > c->retries) {
		pull_fail(p, b, BV_ERR, "%s after %u attempts", why, b->failures);
		return;
	}
	b->state = BLOB_DELAYED;
	b->not_before = now_ns() + (progressed ? 0 : backoff_ns(c, b->failures));
}

static void blob_done(struct pull *p, struct blob *b, CURLcode rc)
{
	struct bv_registry_client *c = p->c;
	long status = request_status(&b->req);
	struct bv_error *e = NULL;
	int ret;

	c->stats.requests++;
	if (b->write_err) {
		_cleanup_free_ char *msg = bv_error_format(b->write_err);
		int code = b->write_err->code;
		bv_error_free(b->write_err);
		b->write_err = NULL;
		blob_stop(p, b, code != BV_EINVALID);
		pull_fail(p, b, code, "%s", msg);
		return;
	}
	if (rc == CURLE_OK && (status == 200 || status == 206)) {
		c->curl->multi_remove_handle(c->multi, b->req.h);
		request_release(&b->req);
		p->running--;
		ret = bv_store_ingest_commit(b->in, &e);
		b->in = NULL;
		if (ret == 0)
			stream_verified(p, b);
		else
			stream_abort(b);
		if (ret == BV_EINVALID && b->offset > 0 && !b->restarted_whole) {
			/*
			 * This attempt resumed a partial left by an earlier one, whose bytes may
			 * have come from a server that sent wrong ones: the commit deleted it, so
			 * the blob is downloaded once more from its first byte before its digest
			 * is called wrong.
			 */
			bv_error_free(e);
			b->restarted_whole = true;
			b->offset = 0;
			b->done = 0;
			b->state = BLOB_QUEUED;
			return;
		}
		if (ret < 0) {
			_cleanup_free_ char *msg = bv_error_format(e);
			bv_error_free(e);
			b->state = BLOB_QUEUED;
			pull_fail(p, b, ret,
				  ret == BV_EINVALID ? "digest mismatch (%s)"
						     : "could not store it: %s",
				  msg);
			return;
		}
		c->stats.blobs_fetched++;
		blob_finish(p, b);
		return;
	}
	if (rc == CURLE_OK && status == 401 && !b->auth_retried) {
		char *challenge = b->req.www_auth ? bv_xstrdup(b->req.www_auth) : NULL;
		blob_stop(p, b, true);
		b->auth_retried = true;
		ret = authenticate(c, &p->images[b->owner].ep, challenge, &e);
		free(challenge);
		if (ret < 0) {
			_cleanup_free_ char *msg = bv_error_format(e);
			bv_error_free(e);
			pull_fail(p, b, ret, "%s", msg);
			return;
		}
		b->state = BLOB_QUEUED;
		return;
	}
	if (rc == CURLE_OK && retryable_status(status)) {
		char why[64];
		snprintf(why, sizeof(why), "registry returned %ld", status);
		blob_retry_later(p, b, why);
		return;
	}
	if (rc != CURLE_OK && bv_curl_retryable(rc)) {
		_cleanup_free_ char *why = curl_failure(c, &b->req, rc);
		blob_retry_later(p, b, why);
		return;
	}
	if (rc != CURLE_OK) {
		_cleanup_free_ char *why = curl_failure(c, &b->req, rc);
		blob_stop(p, b, true);
		pull_fail(p, b, BV_ERR, "%s", why);
		return;
	}
	_cleanup_free_ char *detail = registry_error_text(&b->req.body);
	blob_stop(p, b, true);
	pull_fail(p, b, status == 404 ? BV_ENOTFOUND : BV_ERR, "registry returned %ld%s%s", status,
		  detail ? ": " : "", detail ? detail : "");
}

static void report_progress(struct pull *p, bool force)
{
	struct bv_registry_client *c = p->c;
	uint64_t now = now_ns();
	double secs;

	if (!c->progress || (!force && now - p->last_progress < PROGRESS_MS * NS_PER_MS))
		return;
	p->last_progress = now;
	secs = (double)(now - p->start) / 1e9;
	for (size_t i = 0; i < p->n_images; i++) {
		struct image *im = &p->images[i];
		struct bv_pull_progress pr = {0};
		if (im->finished_reported)
			continue;
		pr.image = i;
		pr.name = im->name;
		pr.bytes_total = im->bytes_total;
		pr.layers_total = im->blobs_total;
		pr.layers_done = im->blobs_done;
		for (size_t j = 0; j < p->n_blobs; j++) {
			struct blob *b = &p->blobs[j];
			for (size_t k = 0; k < b->n_users; k++)
				if (b->users[k] == i) {
					pr.bytes_done += b->done;
					pr.bytes_fetched += b->fetched;
				}
		}
		pr.rate = secs > 0 ? (double)c->stats.blob_bytes / secs : 0;
		pr.finished = im->blobs_done == im->blobs_total;
		im->finished_reported = pr.finished;
		c->progress(&pr, c->progress_payload);
	}
}

static void add_blob(struct pull *p, size_t image, const struct bv_descriptor *d, bool is_config)
{
	struct image *im = &p->images[image];
	struct blob *b = NULL;

	for (size_t i = 0; i < p->n_blobs; i++)
		if (!strcmp(p->blobs[i].desc->digest, d->digest)) {
			b = &p->blobs[i];
			break;
		}
	if (b) {
		for (size_t i = 0; i < b->n_users; i++)
			if (b->users[i] == image)
				return; /* the same layer twice in one image */
	} else {
		b = &p->blobs[p->n_blobs++];
		memset(b, 0, sizeof(*b));
		b->pull = p;
		b->desc = d;
		b->is_config = is_config;
		b->owner = image;
		b->state = BLOB_QUEUED;
		p->remaining++;
	}
	BV_GROW(b->users, b->alloc_users, b->n_users + 1);
	b->users[b->n_users++] = image;
	im->blobs_total++;
	im->bytes_total += d->size;
}

static void pull_release(struct pull *p)
{
	for (size_t i = 0; i < p->n_blobs; i++) {
		struct blob *b = &p->blobs[i];
		if (b->req.h || b->in)
			blob_stop(p, b, true);
		stream_abort(b);
		bv_error_free(b->write_err);
		free(b->users);
	}
	stream_reap(p, true);
	free(p->verified);
	free(p->blobs);
	for (size_t i = 0; i < p->n_images; i++) {
		endpoint_release(&p->images[i].ep);
		free(p->images[i].name);
	}
	free(p->images);
	bv_error_free(p->fatal);
}

/*
 * The one curl_multi scheduler of pulls and pushes.  Each round starts the transfers that are
 * due while slots are free, drives libcurl, hands every finished transfer back, then sleeps
 * in curl until a socket is ready or the next delayed transfer (a retry's back-off, a blob
 * another process holds) becomes due, at most a second.  It ends when *remaining reaches 0
 * or *fatal is set.
 */
static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

struct transfer_ops {
	void (*start_due)(void *ctx, uint64_t now);
	void (*transfer_done)(void *ctx, struct request *r, CURLcode result);
	void (*round_done)(void *ctx); /* optional */
	/* the wait until the next transfer is due, no longer than wait_ns */
	uint64_t (*next_due)(void *ctx, uint64_t now, uint64_t wait_ns);
};

static void run_transfers(struct bv_registry_client *c, const struct transfer_ops *ops, void *ctx,
			  const size_t *remaining, struct bv_error **fatal, const char *verb,
			  const char *name)
{
	const struct bv_curl *cu = c->curl;

	while (!*fatal && *remaining) {
		uint64_t wait_ns;
		int still, queued;
		CURLMsg *msg;
		CURLMcode mc;

		ops->start_due(ctx, now_ns());
		if (*fatal || !*remaining)
			break;
		mc = cu->multi_perform(c->multi, &still);
		if (mc != CURLM_OK) {
			bv_error_set(fatal, "could not %s %s: libcurl: %s", verb, name,
				     cu->multi_strerror(mc));
			break;
		}
		while (!*fatal && (msg = cu->multi_info_read(c->multi, &queued))) {
			char *priv = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			cu->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			if (priv)
				ops->transfer_done(ctx, (struct request *)(void *)priv,
						   msg->data.result);
		}
		if (ops->round_done)
			ops->round_done(ctx);
		if (*fatal || !*remaining)
			break;
		wait_ns = ops->next_due(ctx, now_ns(), 1000 * NS_PER_MS);
		if (wait_ns &&
		    cu->multi_poll(c->multi, NULL, 0, (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS),
				   NULL) != CURLM_OK)
			break;
	}
}

/* Makes sure the image manifest is in the store (the caller may not have resolved here). */
static int ensure_manifest(struct pull *p, size_t i, struct bv_error **err)
{
	struct bv_registry_client *c = p->c;
	const struct bv_resolved *res = p->reqs[i].resolved;
	struct bv_buf body = BV_BUF_INIT;
	char *digest = NULL, *mt = NULL;
	int ret;

	if (bv_store_has_blob(c->store, res->manifest_digest))
		return 0;
	ret = fetch_manifest(c, &p->images[i].ep, res->manifest_digest, res->manifest_digest, &body,
			     &digest, &mt, err);
	if (ret == 0)
		ret = store_document(c, &body, res->manifest_digest, err);
	free(digest);
	free(mt);
	bv_buf_release(&body);
	return ret;
}

static void pull_start_due(void *ctx, uint64_t now)
{
	struct pull *p = ctx;

	for (size_t i = 0; i < p->n_blobs && !p->fatal && p->running < p->c->jobs; i++) {
		struct blob *b = &p->blobs[i];
		if (b->state == BLOB_QUEUED ||
		    ((b->state == BLOB_DELAYED || b->state == BLOB_LOCKED) && b->not_before <= now))
			blob_start(p, b);
	}
}

static void pull_transfer_done(void *ctx, struct request *r, CURLcode result)
{
	if (r->blob)
		blob_done(ctx, r->blob, result);
}

static void pull_round_done(void *ctx)
{
	stream_reap(ctx, false);
	report_progress(ctx, false);
}

static uint64_t pull_next_due(void *ctx, uint64_t now, uint64_t wait_ns)
{
	struct pull *p = ctx;

	for (size_t i = 0; i < p->n_blobs; i++) {
		const struct blob *b = &p->blobs[i];
		if (b->state != BLOB_DELAYED && b->state != BLOB_LOCKED)
			continue;
		wait_ns = b->not_before <= now ? 0 : min_u64(wait_ns, b->not_before - now);
	}
	return wait_ns;
}

static void pull_loop(struct pull *p)
{
	static const struct transfer_ops ops = {
		.start_due = pull_start_due,
		.transfer_done = pull_transfer_done,
		.round_done = pull_round_done,
		.next_due = pull_next_due,
	};
	run_transfers(p->c, &ops, p, &p->remaining, &p->fatal, "pull", p->images[0].name);
}

/* Docker schema 2 media types and their OCI equivalents (same bytes, other names). */
static const char *oci_media_type(const char *docker)
{
	static const char *const map[][2] = {
		{"application/vnd.docker.container.image.v1+json",
		 "application/vnd.oci.image.config.v1+json"},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip",
		 "application/vnd.oci.image.layer.v1.tar+gzip"},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		 "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
	};
	for (size_t i = 0; docker && i < BV_ARRAY_SIZE(map); i++)
		if (!strcmp(docker, map[i][0]))
			return map[i][1];
	return docker;
}

static void rename_media_type(json_t *desc)
{
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	if (mt)
		json_object_set_new(desc, "mediaType", json_string(oci_media_type(mt)));
}

/*
 * Records a Docker schema 2 image under an OCI manifest naming the same config and layers,
 * because OCI tools (skopeo's and umoci's oci: layouts) do not read Docker manifests.  The
 * registry's manifest stays in the store, and bv.lock keeps pinning it: the OCI manifest is
 * only a second, derived view (bv_store_add_image_as()).
 */
static int add_oci_view(struct bv_store *store, const char *ref_name, const struct bv_resolved *res,
			struct bv_error **err)
{
	_cleanup_buf_ struct bv_buf text = BV_BUF_INIT;
	_cleanup_free_ char *digest = NULL;
	json_t *doc, *layers, *layer;
	char *out;
	size_t i, len;
	int r = bv_store_read_blob(&text, store, res->manifest_digest, BV_REGISTRY_MANIFEST_MAX,
				   err);
	if (r < 0)
		return r;
	doc = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bv_error_setc(err, BV_EINVALID, 0, "manifest %s cannot be parsed",
				     res->manifest_digest);
	}
	json_object_set_new(doc, "mediaType", json_string(BV_MEDIA_OCI_MANIFEST));
	rename_media_type(json_object_get(doc, "config"));
	layers = json_object_get(doc, "layers");
	json_array_foreach(layers, i, layer) rename_media_type(layer);
	out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!out)
		bv_oom();
	len = strlen(out);
	r = bv_store_put_blob(&digest, store, out, len, NULL, err);
	free(out);
	if (r < 0)
		return r;
	return bv_store_add_image_as(store, ref_name, digest, BV_MEDIA_OCI_MANIFEST, (int64_t)len,
				     res->manifest_digest, err);
}

int bv_registry_pull(struct bv_registry_client *c, const struct bv_pull_request *reqs, size_t n,
		     struct bv_error **err)
{
	struct pull p = {0};
	size_t max_blobs = 0;
	int ret = 0;

	if (!c->store)
		return bv_error_setc(err, BV_EINVALID, 0, "cannot pull without a store");
	p.c = c;
	p.reqs = reqs;
	p.n_images = n;
	p.images = bv_xcalloc(n ? n : 1, sizeof(*p.images));
	for (size_t i = 0; i < n; i++)
		max_blobs += 1 + reqs[i].resolved->n_layers;
	p.blobs = bv_xcalloc(max_blobs ? max_blobs : 1, sizeof(*p.blobs));
	for (size_t i = 0; i < n; i++) {
		const struct bv_resolved *res = reqs[i].resolved;
		endpoint_init(c, reqs[i].ref, &p.images[i].ep);
		p.images[i].name = bv_xstrdup(p.images[i].ep.display);
		add_blob(&p, i, &res->config, true);
		for (size_t j = 0; j < res->n_layers; j++)
			add_blob(&p, i, &res->layers[j], false);
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		ret = ensure_manifest(&p, i, err);
		if (ret < 0)
			bv_error_wrap(err, ret, "could not pull %s", p.images[i].name);
	}
	if (ret < 0) {
		pull_release(&p);
		return ret;
	}

	p.start = p.last_progress = now_ns();
	pull_loop(&p);
	report_progress(&p, true);
	if (p.fatal) {
		ret = p.fatal_code < 0 ? p.fatal_code : BV_ERR;
		if (err) {
			*err = p.fatal;
			p.fatal = NULL;
		}
		pull_release(&p);
		return ret;
	}
	if (p.remaining) {
		pull_release(&p);
		return bv_error_set(err, "could not pull %s: libcurl failed while waiting",
				    n ? p.images[0].name : "images");
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		const struct bv_resolved *res = reqs[i].resolved;
		_cleanup_free_ char *ref_name = bv_store_ref_name(p.images[i].name);
		if (!strcmp(res->media_type, BV_MEDIA_DOCKER_V2))
			ret = add_oci_view(c->store, ref_name, res, err);
		else
			ret = bv_store_add_image(c->store, ref_name, res->manifest_digest,
						 res->media_type, (int64_t)res->manifest_size, err);
		if (ret < 0)
			bv_error_wrap(err, ret, "could not pull %s", p.images[i].name);
	}
	pull_release(&p);
	return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* push                                                                                     */

int bv_registry_fetch_manifest(struct bv_buf *body, char **digest_out, char **media_type_out,
			       struct bv_registry_client *c, const struct bv_imageref *ref,
			       const char *reference, const char *expect, struct bv_error **err)
{
	struct endpoint ep;
	int ret;

	endpoint_init(c, ref, &ep);
	ret = fetch_manifest(c, &ep, reference, expect, body, digest_out, media_type_out, err);
	endpoint_release(&ep);
	return ret;
}

int bv_registry_fetch_blobs(struct bv_registry_client *c, const struct bv_imageref *ref,
			    const struct bv_descriptor *descs, size_t n, struct bv_error **err)
{
	struct pull p = {0};
	int ret = 0;

	if (!c->store)
		return bv_error_setc(err, BV_EINVALID, 0, "cannot fetch blobs without a store");
	p.c = c;
	p.n_images = 1;
	p.images = bv_xcalloc(1, sizeof(*p.images));
	endpoint_init(c, ref, &p.images[0].ep);
	p.images[0].name = bv_xstrdup(p.images[0].ep.display);
	p.blobs = bv_xcalloc(n ? n : 1, sizeof(*p.blobs));
	for (size_t i = 0; i < n; i++)
		add_blob(&p, 0, &descs[i], false);
	p.start = p.last_progress = now_ns();
	pull_loop(&p);
	if (p.fatal) {
		ret = p.fatal_code < 0 ? p.fatal_code : BV_ERR;
		if (err) {
			*err = p.fatal;
			p.fatal = NULL;
		}
	} else if (p.remaining) {
		ret = bv_error_set(err, "could not pull %s: libcurl failed while waiting",
				   p.images[0].name);
	}
	pull_release(&p);
	return ret;
}

/*
 * Pushes go to the registry the reference names, never to its mirror: a mirror is a cache
 * of upstream, and an image pushed there would be one nobody else can pull.
 */
static void push_endpoint_init(struct bv_registry_client *c, const struct bv_imageref *ref,
			       struct endpoint *ep)
{
	const struct bv_mirrors *mirrors = c->mirrors;
	c->mirrors = NULL;
	endpoint_init(c, ref, ep);
	c->mirrors = mirrors;
	free(ep->scope);
	ep->scope = bv_xasprintf("repository:%s:pull,push", ref->repository);
}

static int push_http_error(const struct endpoint *ep, const char *what, const struct request *r,
			   long status, struct bv_error **err)
{
	_cleanup_free_ char *detail = registry_error_text(&r->body);

	if (status == 401 || status == 403)
		return bv_error_set(err,
				    "'%s' denied push access to '%s' (HTTP %ld)%s%s; log in with "
				    "'docker login %s' or check the credentials in DOCKER_CONFIG",
				    ep->registry, ep->display, status, detail ? ": " : "",
				    detail ? detail : "", ep->registry);
	return bv_error_setc(err, status == 404 ? BV_ENOTFOUND : BV_ERR, 0,
			     "could not push %s to '%s': registry returned %ld%s%s", what,
			     ep->display, status, detail ? ": " : "", detail ? detail : "");
}

/* HEAD of a blob in the destination: 200 has it, 404 has not. */
static int push_blob_exists(bool *exists, struct bv_registry_client *c, const struct endpoint *ep,
			    const struct bv_push_blob *b, struct bv_error **err)
{
	struct request r = {.body = BV_BUF_INIT};
	_cleanup_free_ char *url =
		bv_xasprintf("%s/v2/%s/blobs/%s", ep->base, ep->repository, b->digest);
	_cleanup_free_ char *what = bv_xasprintf("blob %s", b->digest);
	long status;
	int ret = request_sync(c, ep, url, true, NULL, ERROR_BODY_MAX, &r, err);

	if (ret == 0) {
		status = request_status(&r);
		if (status == 200)
			*exists = true;
		else if (status == 404)
			*exists = false;
		else
			ret = push_http_error(ep, what, &r, status, err);
	}
	request_release(&r);
	return ret;
}

/*
 * Cross-repository mount: 201 means the registry linked the blob from `from` without any
 * byte sent.  Anything else (202 opens an ordinary upload, 401/403/404 when `from` is not
 * readable) only means the blob must be uploaded, so failures are not errors here.
 */
static bool push_blob_mount(struct bv_registry_client *c, const struct endpoint *ep,
			    const struct bv_push_blob *b, const char *from)
{
	struct request r = {.body = BV_BUF_INIT};
	_cleanup_free_ char *url = bv_xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s",
						ep->base, ep->repository, b->digest, from);
	struct send s = {.method = "POST"};
	struct bv_error *e = NULL;
	bool mounted = false;
	int ret = request_sync_send(c, ep, url, false, NULL, &s, ERROR_BODY_MAX, &r, &e);

	if (ret == 0 && request_status(&r) == 201)
		mounted = !r.docker_digest || !strcmp(r.docker_digest, b->digest);
	bv_error_free(e);
	request_release(&r);
	return mounted;
}

int bv_registry_push_prepare(bool *needed, struct bv_push_stats *st, struct bv_registry_client *c,
			     const struct bv_imageref *dest, const struct bv_push_blob *blobs,
			     size_t n, const char *mount_from, struct bv_error **err)
{
	struct endpoint ep;
	int ret = 0;

	push_endpoint_init(c, dest, &ep);
	for (size_t i = 0; i < n && ret == 0; i++) {
		bool exists = false;
		ret = push_blob_exists(&exists, c, &ep, &blobs[i], err);
		if (ret < 0)
			break;
		needed[i] = !exists;
		if (exists) {
			st->blobs_present++;
			continue;
		}
		if (mount_from && strcmp(mount_from, dest->repository) != 0 &&
		    push_blob_mount(c, &ep, &blobs[i], mount_from)) {
			needed[i] = false;
			st->blobs_mounted++;
		}
	}
	endpoint_release(&ep);
	return ret;
}

enum up_step {
	UP_POST,  /* open an upload session */
	UP_PATCH, /* send one chunk */
	UP_PUT,   /* close it with ?digest= (with the whole blob when it is not chunked) */
};

enum up_state {
	UP_QUEUED,
	UP_DELAYED,
	UP_RUNNING,
	UP_DONE,
};

struct upload {
	const struct bv_push_blob *blob;
	int fd;
	enum up_step step;
	enum up_state state;
	char *location;     /* the session's URL, absolute */
	uint64_t offset;    /* bytes of the blob the session holds */
	uint64_t send_from; /* body of the request running: [send_from, send_from + send_len) */
	uint64_t send_len, sent;
	uint64_t not_before;
	unsigned failures;
	bool auth_retried;
	struct request req;
};

struct push {
	struct bv_registry_client *c;
	struct endpoint ep;
	struct upload *ups;
	size_t n, running, remaining;
	uint64_t chunk;
	struct bv_push_stats *st;
	struct bv_error *fatal;
	int fatal_code;
};

static size_t on_read(char *buf, size_t size, size_t n, void *payload)
{
	struct request *r = payload;
	struct upload *u = r->upload;
	uint64_t left = u->send_len - u->sent;
	size_t want = size * n;
	ssize_t got;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	got = pread(u->fd, buf, want, (off_t)(u->send_from + u->sent));
	if (got <= 0)
		return CURL_READFUNC_ABORT;
	u->sent += (uint64_t)got;
	return (size_t)got;
}

/* curl rewinds the body when it must send it again (a redirect, an authentication retry). */
static int on_seek(void *payload, curl_off_t off, int origin)
{
	struct request *r = payload;
	struct upload *u = r->upload;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > u->send_len)
		return CURL_SEEKFUNC_FAIL;
	u->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/*
 * Locations are often relative ("/v2/<repo>/blobs/uploads/<id>?_state=..."); a relative one
 * without a leading '/' is taken relative to the uploads directory, where every request of a
 * session goes.
 */
static char *resolve_location(const struct endpoint *ep, const char *loc)
{
	if (!strncasecmp(loc, "http://", 7) || !strncasecmp(loc, "https://", 8))
		return bv_xstrdup(loc);
	if (loc[0] == '/')
		return bv_xasprintf("%s%s", ep->base, loc);
	return bv_xasprintf("%s/v2/%s/blobs/uploads/%s", ep->base, ep->repository, loc);
}

/* Credentials go only where the endpoint is, not to a storage host a Location names. */
static bool same_origin(const struct endpoint *ep, const char *url)
{
	size_t n = strlen(ep->base);
	return !strncmp(url, ep->base, n) && (url[n] == '/' || url[n] == '\0' || url[n] == '?');
}

__attribute__((format(printf, 4, 5))) static void push_fail(struct push *p, struct upload *u,
							    int code, const char *fmt, ...)
{
	_cleanup_free_ char *what = NULL;
	_cleanup_free_ char *sd = short_digest(u->blob->digest);
	va_list ap;

	if (p->fatal)
		return;
	va_start(ap, fmt);
	what = bv_xvasprintf(fmt, ap);
	va_end(ap);
	p->fatal_code = code;
	bv_error_setc(&p->fatal, code, 0, "could not push %s: blob %s: %s", p->ep.display, sd,
		      what);
}

static void upload_stop(struct push *p, struct upload *u)
{
	if (u->req.h) {
		p->c->curl->multi_remove_handle(p->c->multi, u->req.h);
		request_release(&u->req);
	}
	if (u->state == UP_RUNNING) {
		p->running--;
		u->state = UP_QUEUED;
	}
}

static void upload_start(struct push *p, struct upload *u)
{
	struct bv_registry_client *c = p->c;
	const struct bv_curl *cu = c->curl;
	const struct bv_push_blob *b = u->blob;
	_cleanup_free_ char *url = NULL;
	struct bv_error *e = NULL;
	char *auth = NULL;
	char line[96];
	int ret;

	if (u->step == UP_POST)
		url = bv_xasprintf("%s/v2/%s/blobs/uploads/", p->ep.base, p->ep.repository);
	else if (u->step == UP_PATCH)
		url = bv_xstrdup(u->location);
	else
		url = bv_xasprintf("%s%cdigest=%s", u->location,
				   strchr(u->location, '?') ? '&' : '?', b->digest);
	if (same_origin(&p->ep, url))
		auth = auth_line(c, &p->ep);
	request_init(&u->req, ERROR_BODY_MAX);
	ret = request_setup(c, &u->req, &p->ep, url, false, NULL, auth, 0, &e);
	free_secret(auth);
	if (ret < 0) {
		_cleanup_free_ char *msg = bv_error_format(e);
		bv_error_free(e);
		request_release(&u->req);
		push_fail(p, u, ret, "%s", msg);
		return;
	}
	u->req.upload = u;
	u->sent = 0;
	if (u->step == UP_POST) {
		struct send s = {.method = "POST"};
		u->send_len = 0;
		request_send(c, &u->req, &s);
	} else {
		u->send_from = u->offset;
		if (u->step == UP_PATCH)
			u->send_len =
				b->size - u->offset < p->chunk ? b->size - u->offset : p->chunk;
		else
			u->send_len =
				b->size - u->offset; /* the whole blob, or nothing after chunks */
		u->req.hdrs =
			cu->slist_append(u->req.hdrs, "Content-Type: application/octet-stream");
		if (u->step == UP_PATCH) {
			/* distribution's form: first-last, inclusive, without "bytes " */
			snprintf(line, sizeof(line), "Content-Range: %llu-%llu",
				 (unsigned long long)u->send_from,
				 (unsigned long long)(u->send_from + u->send_len - 1));
			u->req.hdrs = cu->slist_append(u->req.hdrs, line);
			cu->easy_setopt(u->req.h, CURLOPT_CUSTOMREQUEST, "PATCH");
		}
		cu->easy_setopt(u->req.h, CURLOPT_HTTPHEADER, u->req.hdrs);
		cu->easy_setopt(u->req.h, CURLOPT_UPLOAD, 1L);
		cu->easy_setopt(u->req.h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u->send_len);
		cu->easy_setopt(u->req.h, CURLOPT_READFUNCTION, on_read);
		cu->easy_setopt(u->req.h, CURLOPT_READDATA, (void *)&u->req);
		cu->easy_setopt(u->req.h, CURLOPT_SEEKFUNCTION, on_seek);
		cu->easy_setopt(u->req.h, CURLOPT_SEEKDATA, (void *)&u->req);
	}
	if (cu->multi_add_handle(c->multi, u->req.h) != CURLM_OK) {
		request_release(&u->req);
		push_fail(p, u, BV_ERR, "libcurl failed");
		return;
	}
	u->state = UP_RUNNING;
	p->running++;
}

/*
 * An upload session that failed halfway is not resumed: the next attempt opens a new one, as
 * every step of a fresh session is safe to repeat.
 */
static void upload_retry_later(struct push *p, struct upload *u, const char *why)
{
	upload_stop(p, u);
	u->failures++;
	if (u->failures > p->c->retries) {
		push_fail(p, u, BV_ERR, "%s after %u attempts", why, u->failures);
		return;
	}
	free(u->location);
	u->location = NULL;
	u->offset = 0;
	u->step = UP_POST;
	u->state = UP_DELAYED;
	u->not_before = now_ns() + backoff_ns(p->c, u->failures);
}

static void upload_done(struct push *p, struct upload *u, CURLcode rc)
{
	struct bv_registry_client *c = p->c;
	long status = request_status(&u->req);
	struct bv_error *e = NULL;
	const char *what = u->step == UP_POST ? "POST" : u->step == UP_PATCH ? "PATCH" : "PUT";
	int ret;

	c->stats.requests++;
	if (rc != CURLE_OK) {
		_cleanup_free_ char *why = curl_failure(c, &u->req, rc);
		if (bv_curl_retryable(rc)) {
			upload_retry_later(p, u, why);
			return;
		}
		upload_stop(p, u);
		push_fail(p, u, BV_ERR, "%s", why);
		return;
	}
	if (status == 401 && !u->auth_retried) {
		char *challenge = u->req.www_auth ? bv_xstrdup(u->req.www_auth) : NULL;
		upload_stop(p, u);
		u->auth_retried = true;
		ret = authenticate(c, &p->ep, challenge, &e);
		free(challenge);
		if (ret < 0) {
			_cleanup_free_ char *msg = bv_error_format(e);
			bv_error_free(e);
			push_fail(p, u, ret, "%s", msg);
		}
		return;
	}
	if (retryable_status(status)) {
		char why[64];
		snprintf(why, sizeof(why), "registry returned %ld", status);
		upload_retry_later(p, u, why);
		return;
	}
	if ((u->step == UP_POST || u->step == UP_PATCH) && status == 202) {
		if (u->req.location) {
			free(u->location);
			u->location = resolve_location(&p->ep, u->req.location);
		}
		if (!u->location) {
			upload_stop(p, u);
			push_fail(p, u, BV_ERR, "the registry answered %s without a Location",
				  what);
			return;
		}
		if (u->step == UP_PATCH)
			u->offset += u->send_len;
		u->auth_retried = false;
		u->step =
			u->offset >= u->blob->size || u->blob->size <= p->chunk ? UP_PUT : UP_PATCH;
		upload_stop(p, u);
		return;
	}
	if (u->step == UP_PUT && status == 201) {
		if (u->req.docker_digest && strcmp(u->req.docker_digest, u->blob->digest) != 0) {
			_cleanup_free_ char *got = bv_xstrdup(u->req.docker_digest);
			upload_stop(p, u);
			push_fail(p, u, BV_EINVALID,
				  "the registry stored it as %.80s, not as what bv computed", got);
			return;
		}
		upload_stop(p, u);
		u->state = UP_DONE;
		p->remaining--;
		p->st->blobs_uploaded++;
		p->st->bytes_uploaded += u->blob->size;
		return;
	}
	{
		struct bv_error *he = NULL;
		_cleanup_free_ char *sd = short_digest(u->blob->digest);
		_cleanup_free_ char *msg = NULL;
		_cleanup_free_ char *thing = bv_xasprintf("blob %s (%s)", sd, what);
		ret = push_http_error(&p->ep, thing, &u->req, status, &he);
		msg = bv_error_format(he);
		bv_error_free(he);
		upload_stop(p, u);
		if (!p->fatal) {
			p->fatal_code = ret;
			bv_error_setc(&p->fatal, ret, 0, "%s", msg);
		}
	}
}

static void push_start_due(void *ctx, uint64_t now)
{
	struct push *p = ctx;

	for (size_t i = 0; i < p->n && !p->fatal && p->running < p->c->jobs; i++) {
		struct upload *u = &p->ups[i];
		if (u->state == UP_QUEUED || (u->state == UP_DELAYED && u->not_before <= now))
			upload_start(p, u);
	}
}

static void push_transfer_done(void *ctx, struct request *r, CURLcode result)
{
	if (r->upload)
		upload_done(ctx, r->upload, result);
}

static uint64_t push_next_due(void *ctx, uint64_t now, uint64_t wait_ns)
{
	struct push *p = ctx;

	for (size_t i = 0; i < p->n; i++) {
		const struct upload *u = &p->ups[i];
		/* queued ones wait for a free slot, which only a transfer's end makes */
		if (u->state == UP_QUEUED && p->running < p->c->jobs)
			wait_ns = 0;
		else if (u->state == UP_DELAYED)
			wait_ns = u->not_before <= now ? 0 : min_u64(wait_ns, u->not_before - now);
	}
	return wait_ns;
}

static void push_loop(struct push *p)
{
	static const struct transfer_ops ops = {
		.start_due = push_start_due,
		.transfer_done = push_transfer_done,
		.next_due = push_next_due,
	};
	run_transfers(p->c, &ops, p, &p->remaining, &p->fatal, "push", p->ep.display);
}

int bv_registry_push_blobs(struct bv_push_stats *st, struct bv_registry_client *c,
			   const struct bv_imageref *dest, const struct bv_push_blob *blobs,
			   const bool *needed, size_t n, uint64_t chunk_size, struct bv_error **err)
{
	struct push p = {0};
	int ret = 0;

	p.c = c;
	p.st = st;
	p.chunk = chunk_size ? chunk_size : BV_PUSH_CHUNK_DEFAULT;
	push_endpoint_init(c, dest, &p.ep);
	p.ups = bv_xcalloc(n ? n : 1, sizeof(*p.ups));
	for (size_t i = 0; i < n; i++) {
		struct upload *u = &p.ups[p.n];
		if (!needed[i])
			continue;
		u->blob = &blobs[i];
		u->fd = open(blobs[i].path, O_RDONLY | O_CLOEXEC);
		if (u->fd < 0) {
			ret = bv_error_set_errno(err, "could not open '%s'", blobs[i].path);
			break;
		}
		u->state = UP_QUEUED;
		p.n++;
		p.remaining++;
	}
	if (ret == 0) {
		push_loop(&p);
		if (p.fatal) {
			ret = p.fatal_code < 0 ? p.fatal_code : BV_ERR;
			if (err) {
				*err = p.fatal;
				p.fatal = NULL;
			}
		} else if (p.remaining) {
			ret = bv_error_set(err, "could not push %s: libcurl failed while waiting",
					   p.ep.display);
		}
	}
	for (size_t i = 0; i < p.n; i++) {
		upload_stop(&p, &p.ups[i]);
		free(p.ups[i].location);
		close(p.ups[i].fd);
	}
	free(p.ups);
	bv_error_free(p.fatal);
	endpoint_release(&p.ep);
	return ret;
}

int bv_registry_push_manifest(struct bv_registry_client *c, const struct bv_imageref *dest,
			      const char *reference, const struct bv_push_document *doc,
			      struct bv_error **err)
{
	struct endpoint ep;
	struct request r = {.body = BV_BUF_INIT};
	struct send s = {.method = "PUT",
			 .content_type = doc->media_type,
			 .data = doc->data,
			 .len = doc->len};
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *what = NULL;
	long status;
	int ret;

	push_endpoint_init(c, dest, &ep);
	url = bv_xasprintf("%s/v2/%s/manifests/%s", ep.base, ep.repository, reference);
	what = bv_xasprintf("manifest %s", doc->digest);
	ret = request_sync_send(c, &ep, url, false, NULL, &s, ERROR_BODY_MAX, &r, err);
	if (ret == 0) {
		status = request_status(&r);
		if (status != 201 && status != 200)
			ret = push_http_error(&ep, what, &r, status, err);
		else if (r.docker_digest && strcmp(r.docker_digest, doc->digest) != 0)
			ret = bv_error_setc(err, BV_EINVALID, 0,
					    "could not push manifest %s to '%s': the registry "
					    "stored it as %.80s",
					    doc->digest, ep.display, r.docker_digest);
	}
	request_release(&r);
	endpoint_release(&ep);
	return ret;
}
