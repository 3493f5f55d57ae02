/*
 * engine.c - the Docker Engine API client (see bv/engine.h).
 *
 * Ordinary requests go through one libcurl easy handle that talks HTTP/1.1 over the engine's
 * unix socket (CURLOPT_UNIX_SOCKET_PATH) and keeps the connection between requests.
 *
 * Attaching is different.  POST /containers/{id}/attach and POST /exec/{id}/start "hijack"
 * the connection: the engine answers "101 UPGRADED" and from then on the socket carries the
 * container's stdin one way and its multiplexed stdout and stderr the other, with no HTTP
 * framing.  libcurl 7.x cannot hand such an upgraded HTTP/1.1 connection to its caller (its
 * WebSocket support is for "Upgrade: websocket" only), and a write callback cannot send
 * anything back.  So the attach uses a second easy handle with CURLOPT_CONNECT_ONLY: curl
 * connects to the socket and stops; we write the request head ourselves with
 * curl_easy_send(), read the response head with curl_easy_recv(), and then use the same two
 * calls for the stream.  curl keeps owning the socket (and closes it on cleanup); we only
 * poll() it (CURLINFO_ACTIVESOCKET) and half-close it with shutdown(SHUT_WR) when stdin ends,
 * which is how the engine learns to close the container's stdin.  The request head is
 * minimal on purpose: the engine needs the method, the path, Host, the two Upgrade headers
 * and a Content-Length; nothing in it depends on the server being dockerd or Podman.
 *
 * Errors never depend on message text: connection failures are classified by the errno curl
 * recorded for connect(2) (CURLINFO_OS_ERRNO), HTTP failures by status code.
 */
#include <bv/engine.h>
#include <bv/error.h>
#include <bv/paths.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/engine/engine-internal.h"
#include "lib/oci/registry/auth-internal.h"
#include "lib/oci/registry/curl_loader.h"
#include "lib/oci/registry/imageref-internal.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/time.h"
#include "util/url.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define DEFAULT_SOCKET "/var/run/docker.sock"
#define CLIENT_MAJOR   1u
#define CLIENT_MINOR   41u
/*
 * Deadlines (see bv/engine.h).  Short calls get a minute: dockerd on a loaded 2-core machine
 * with the vfs driver takes seconds to create or remove a container, never tens.  Long calls
 * (pulls, builds, commits, uploads) have no total, since a large image over a slow link may
 * take an hour, but ten minutes without a byte either way ends them: a pull reports progress
 * every second and a build every step.
 */
#define SHORT_DEFAULT_MS 60000L
#define LONG_DEFAULT_MS  600000L
#define DEADLINE_MAX_MS  (7ull * 24 * 3600 * 1000) /* a week: above it, a typo */
#define ENV_SHORT        "BV_ENGINE_TIMEOUT"
#define ENV_LONG         "BV_ENGINE_LONG_TIMEOUT"
#define RESPONSE_MAX     (64u << 20) /* a JSON response (image lists can be large) */
#define ERROR_BODY_MAX   (1u << 20)
#define HEAD_MAX         (64u << 10)
#define IO_CHUNK         (64u << 10)
#define MESSAGE_SHOWN    500
#define PULL_LINE_MAX    (1u << 20)
#define NO_SLOT          ((nfds_t)-1) /* an fd not polled this round */

struct bv_engine {
	const struct bv_curl *cu;
	CURL *h;
	char *socket;
	char *api_version;
	char *server_version;
	bool podman;
	long short_ms; /* BV_ENGINE_TIMEOUT */
	long long_ms;  /* BV_ENGINE_LONG_TIMEOUT */
	char errbuf[CURL_ERROR_SIZE];
};

/* One HTTP request on the engine's handle and what came back. */
struct request {
	struct bv_engine *e;
	const char *method;
	const char *path; /* with the version prefix already, or unversioned ("/_ping") */
	const char *body; /* NULL: none */
	size_t body_len;
	const char *content_type;
	int upload_fd; /* >= 0: the body is read from here (chunked) */
	const char *const *headers;
	long timeout_ms;   /* the whole request; 0: none */
	long idle_ms;      /* no byte either way for this long ends it; 0: no limit */
	long connect_ms;   /* 0: libcurl's default */
	const char *raise; /* the variable that sets the limit, for the message; may be NULL */
	bv_engine_data_fn on_data;
	void *payload;
	/* results */
	long status;
	struct bv_buf resp; /* the body when on_data is NULL, or for status >= 400 */
	size_t resp_max;
	bool overflow;
	int data_rc;
	int upload_errno;
	bool idle_expired;
	uint64_t last_ns;    /* when a byte last moved */
	curl_off_t last_sum; /* bytes moved by then, both ways */
	bool libpod;         /* a Libpod-Api-Version header came back */
	char *api_header;    /* Api-Version, when the response had one */
	char *server_header; /* Server */
};

/* ------------------------------------------------------------------------------------ */
/* Small helpers */

char *bv_engine_escape(const char *value)
{
	return bv_url_escape(value, NULL);
}

/* The socket path of DOCKER_HOST-style `host` (NULL: $DOCKER_HOST, else the default). */
static int socket_path(char **out, const char *host, struct bv_error **err)
{
	if (!host || !host[0])
		host = getenv("DOCKER_HOST");
	if (!host || !host[0]) {
		*out = bv_xstrdup(DEFAULT_SOCKET);
		return 0;
	}
	if (bv_str_has_prefix(host, "unix://") && host[7] == '/') {
		*out = bv_xstrdup(host + 7);
		return 0;
	}
	if (host[0] == '/') {
		*out = bv_xstrdup(host);
		return 0;
	}
	_cleanup_free_ char *shown = bv_str_shown(host, strlen(host), 200);
	return bv_error_setc(err, BV_EINVALID, 0,
			     "unsupported Docker host '%s': bv talks to engines on unix:// sockets "
			     "only",
			     shown);
}

/* The error of a connection that failed, classified by the errno of connect(2). */
static int connect_failed(const char *socket, long os_errno, struct bv_error **err)
{
	switch (os_errno) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTSOCK:
		return bv_error_setc(err, BV_ERR, (int)os_errno,
				     "the Docker daemon is not running at '%s'", socket);
	case EACCES:
	case EPERM:
		/* no errno: "Permission denied" would only repeat the message */
		return bv_error_setc(err, BV_ERR, 0, "permission denied on '%s'", socket);
	default:
		return bv_error_setc(err, BV_ERR, (int)os_errno,
				     "could not connect to the Docker daemon at '%s'", socket);
	}
}

static bool is_connect_error(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_OPERATION_TIMEDOUT;
}

/* "1 s", "0.5 s", "2.25 s": a deadline as the user wrote it. */
static char *seconds_text(long ms)
{
	if (ms % 1000 == 0)
		return bv_xasprintf("%ld s", ms / 1000);
	if (ms % 100 == 0)
		return bv_xasprintf("%ld.%ld s", ms / 1000, (ms % 1000) / 100);
	if (ms % 10 == 0)
		return bv_xasprintf("%ld.%02ld s", ms / 1000, (ms % 1000) / 10);
	return bv_xasprintf("%ld.%03ld s", ms / 1000, ms % 1000);
}

/*
 * A request's path for messages: no "/v1.41" prefix, no query (escaped filters are noise), and
 * ids of 64 hex digits cut to the 12 that `docker ps` shows (the engine takes those too).
 */
static char *path_shown(const char *path)
{
	const char *p = path;
	struct bv_buf b = BV_BUF_INIT;
	size_t len;
	char *out;
	if (p[0] == '/' && p[1] == 'v' && isdigit((unsigned char)p[2])) {
		const char *q = p + 2;
		while (isdigit((unsigned char)*q) || *q == '.')
			q++;
		if (*q == '/')
			p = q;
	}
	len = strcspn(p, "?");
	for (size_t i = 0; i < len;) {
		size_t seg = strcspn(p + i, "/?");
		size_t hex = strspn(p + i, "0123456789abcdef");
		if (seg == 64 && hex == 64)
			seg = 12;
		else if (seg == 0)
			seg = 1; /* the '/' itself */
		bv_buf_add(&b, p + i, seg);
		i += seg == 12 && hex == 64 ? 64 : seg;
	}
	out = bv_str_shown(b.buf ? b.buf : "", b.len, 200);
	bv_buf_release(&b);
	return out;
}

/* One deadline variable: unset or empty is the default; else seconds, > 0, at most a week. */
static int deadline_env(long *out, const char *name, long def, struct bv_error **err)
{
	const char *v = getenv(name);
	uint64_t ms = 0;
	if (!v || !*v) {
		*out = def;
		return 0;
	}
	if (bv_parse_seconds_ms(&ms, v, DEADLINE_MAX_MS) < 0 || ms == 0) {
		_cleanup_free_ char *shown = bv_str_shown(v, strlen(v), 40);
		return bv_error_setc(err, BV_EINVALID, 0,
				     "invalid %s '%s': give seconds above 0 and up to a week, such "
				     "as 30 or 0.5",
				     name, shown);
	}
	*out = (long)ms;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Requests */

/* The value of header `name` if the header line `data` is that header (a new string). */
static char *header_value(const char *data, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *v, *end = data + len;
	if (len <= nlen || strncasecmp(data, name, nlen) != 0 || data[nlen] != ':')
		return NULL;
	for (v = data + nlen + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return bv_xstrndup(v, (size_t)(end - v));
}

static size_t on_header(char *data, size_t size, size_t n, void *payload)
{
	struct request *r = payload;
	size_t len = size * n;
	char *v;
	if ((v = header_value(data, len, "Libpod-Api-Version"))) {
		r->libpod = true;
		free(v);
	} else if ((v = header_value(data, len, "Api-Version"))) {
		free(r->api_header);
		r->api_header = v;
	} else if ((v = header_value(data, len, "Server"))) {
		free(r->server_header);
		r->server_header = v;
	}
	return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *payload)
{
	struct request *r = payload;
	size_t len = size * n;
	if (!r->status)
		r->e->cu->easy_getinfo(r->e->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->on_data && r->status < 400) {
		int rc = r->on_data(data, len, r->payload);
		if (rc < 0) {
			r->data_rc = rc;
			return 0;
		}
		return len;
	}
	if (r->resp.len + len > r->resp_max) {
		r->overflow = true;
		return 0;
	}
	bv_buf_add(&r->resp, data, len);
	return len;
}

static size_t on_read(char *data, size_t size, size_t n, void *payload)
{
	struct request *r = payload;
	for (;;) {
		ssize_t got = read(r->upload_fd, data, size * n);
		if (got >= 0)
			return (size_t)got;
		if (errno == EINTR)
			continue;
		r->upload_errno = errno;
		return CURL_READFUNC_ABORT;
	}
}

/* The error of a request that got no complete response (curl's `rc`). */
static int transfer_failed(struct request *r, CURLcode rc, long os_errno, struct bv_error **err)
{
	struct bv_engine *e = r->e;
	const struct bv_curl *cu = e->cu;
	_cleanup_free_ char *shown = path_shown(r->path);

	if (r->upload_errno)
		return bv_error_setc(err, BV_ERR, r->upload_errno,
				     "could not read the body of %s %s", r->method, shown);
	if (r->overflow)
		return bv_error_set(err, "the engine's response to %s %s is larger than %zu bytes",
				    r->method, shown, r->resp_max);
	if (!r->status && is_connect_error(rc) && os_errno)
		return connect_failed(e->socket, os_errno, err);
	if (rc == CURLE_OPERATION_TIMEDOUT && !r->timeout_ms && !r->idle_expired) {
		_cleanup_free_ char *limit = seconds_text(r->connect_ms);
		return bv_error_set(err, "the engine at '%s' did not accept a connection within %s",
				    e->socket, limit);
	}
	if (rc == CURLE_OPERATION_TIMEDOUT || r->idle_expired) {
		_cleanup_free_ char *limit =
			seconds_text(r->idle_expired ? r->idle_ms : r->timeout_ms);
		_cleanup_free_ char *hint =
			r->raise ? bv_xasprintf("; raise %s or check the daemon", r->raise)
				 : bv_xstrdup("");
		if (r->idle_expired)
			return bv_error_set(err,
					    "the engine at '%s' sent nothing for %s during %s %s%s",
					    e->socket, limit, r->method, shown, hint);
		return bv_error_set(err, "the engine at '%s' did not %s %s %s within %s%s",
				    e->socket, r->status ? "finish" : "answer", r->method, shown,
				    limit, hint);
	}
	return bv_error_setc(err, BV_ERR, (int)os_errno,
			     "lost the connection to the engine at '%s' during %s %s: %s",
			     e->socket, r->method, shown,
			     e->errbuf[0] ? e->errbuf : cu->easy_strerror(rc));
}

/* Ends a transfer in which no byte moved, either way, for idle_ms. */
static int on_progress(void *payload, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct request *r = payload;
	uint64_t now = bv_time_monotonic_ns();
	(void)dltotal;
	(void)ultotal;
	if (dlnow + ulnow != r->last_sum || !r->last_ns) {
		r->last_sum = dlnow + ulnow;
		r->last_ns = now;
		return 0;
	}
	if (now - r->last_ns >= (uint64_t)r->idle_ms * 1000000u) {
		r->idle_expired = true;
		return 1;
	}
	return 0;
}

/* Performs the request; 0 when an HTTP response arrived (whatever its status). */
static int perform(struct request *r, struct bv_error **err)
{
	struct bv_engine *e = r->e;
	const struct bv_curl *cu = e->cu;
	struct curl_slist *hdrs = NULL;
	_cleanup_free_ char *url = bv_xasprintf("http://localhost%s", r->path);
	_cleanup_free_ char *ctype = NULL;
	CURLcode rc;
	long os_errno = 0;

	cu->easy_reset(e->h);
	e->errbuf[0] = '\0';
	if (!r->resp_max)
		r->resp_max = RESPONSE_MAX;
	bv_logf(BV_LOG_DEBUG, "engine: %s %s (%s)", r->method, r->path, e->socket);
	cu->easy_setopt(e->h, CURLOPT_UNIX_SOCKET_PATH, e->socket);
	cu->easy_setopt(e->h, CURLOPT_URL, url);
	cu->easy_setopt(e->h, CURLOPT_PROTOCOLS_STR, "http");
	cu->easy_setopt(e->h, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(e->h, CURLOPT_ERRORBUFFER, e->errbuf);
	cu->easy_setopt(e->h, CURLOPT_USERAGENT, "bv");
	cu->easy_setopt(e->h, CURLOPT_CUSTOMREQUEST, r->method);
	cu->easy_setopt(e->h, CURLOPT_HEADERFUNCTION, on_header);
	cu->easy_setopt(e->h, CURLOPT_HEADERDATA, (void *)r);
	cu->easy_setopt(e->h, CURLOPT_WRITEFUNCTION, on_write);
	cu->easy_setopt(e->h, CURLOPT_WRITEDATA, (void *)r);
	if (r->timeout_ms)
		cu->easy_setopt(e->h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	if (r->connect_ms)
		cu->easy_setopt(e->h, CURLOPT_CONNECTTIMEOUT_MS, r->connect_ms);
	if (r->idle_ms) {
		/* not CURLOPT_LOW_SPEED_TIME: whole seconds only, and tests need fractions */
		cu->easy_setopt(e->h, CURLOPT_NOPROGRESS, 0L);
		cu->easy_setopt(e->h, CURLOPT_XFERINFOFUNCTION, on_progress);
		cu->easy_setopt(e->h, CURLOPT_XFERINFODATA, (void *)r);
	}
	if (r->content_type) {
		ctype = bv_xasprintf("Content-Type: %s", r->content_type);
		hdrs = cu->slist_append(hdrs, ctype);
	}
	if (r->upload_fd >= 0) {
		/* Unknown length: curl sends it chunked; no "Expect: 100-continue" round trip. */
		hdrs = cu->slist_append(hdrs, "Expect:");
		cu->easy_setopt(e->h, CURLOPT_UPLOAD, 1L);
		cu->easy_setopt(e->h, CURLOPT_READFUNCTION, on_read);
		cu->easy_setopt(e->h, CURLOPT_READDATA, (void *)r);
	} else if (r->body) {
		cu->easy_setopt(e->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		cu->easy_setopt(e->h, CURLOPT_POSTFIELDS, r->body);
	} else if (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0) {
		/* An explicit empty body, so curl sends "Content-Length: 0". */
		cu->easy_setopt(e->h, CURLOPT_POSTFIELDSIZE, 0L);
		cu->easy_setopt(e->h, CURLOPT_POSTFIELDS, "");
	}
	for (const char *const *h = r->headers; h && *h; h++)
		hdrs = cu->slist_append(hdrs, *h);
	if (hdrs)
		cu->easy_setopt(e->h, CURLOPT_HTTPHEADER, hdrs);

	rc = cu->easy_perform(e->h);
	cu->easy_getinfo(e->h, CURLINFO_RESPONSE_CODE, &r->status);
	cu->easy_getinfo(e->h, CURLINFO_OS_ERRNO, &os_errno);
	cu->easy_setopt(e->h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	cu->slist_free_all(hdrs);
	if (rc == CURLE_OK)
		return 0;
	if (r->data_rc < 0)
		return r->data_rc;
	return transfer_failed(r, rc, os_errno, err);
}

/* The versioned path: "/v1.41" + path. */
static char *versioned(const struct bv_engine *e, const char *path)
{
	return bv_xasprintf("/v%s%s", e->api_version, path);
}

/* Sets the limits of `r` for a call of class `wait` (engine-internal.h). */
static void set_deadline(struct request *r, enum bv_engine_wait wait, long extra_ms)
{
	const struct bv_engine *e = r->e;
	r->connect_ms = e->short_ms;
	switch (wait) {
	case BV_ENGINE_WAIT_SHORT:
		r->timeout_ms = e->short_ms + extra_ms;
		r->raise = ENV_SHORT;
		break;
	case BV_ENGINE_WAIT_LONG:
		r->idle_ms = e->long_ms;
		r->raise = ENV_LONG;
		break;
	case BV_ENGINE_WAIT_STREAM:
		break;
	}
}

/* The body of an error response as JSON; text that is not JSON becomes {"message": text}. */
static json_t *error_json(const struct bv_buf *b)
{
	json_t *j;
	size_t len = b->len;
	if (!len)
		return NULL;
	j = json_loadb(b->buf, len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, NULL);
	if (json_is_object(j))
		return j;
	json_decref(j);
	while (len && isspace((unsigned char)b->buf[len - 1]))
		len--;
	return json_pack("{s:s%}", "message", b->buf, len);
}

static void request_release(struct request *r)
{
	bv_buf_release(&r->resp);
	free(r->api_header);
	free(r->server_header);
}

/* ------------------------------------------------------------------------------------ */
/* Opening, version negotiation */

static struct bv_engine *engine_new(const struct bv_curl *cu, char *socket)
{
	struct bv_engine *e = bv_xcalloc(1, sizeof(*e));
	e->cu = cu;
	e->socket = socket;
	e->short_ms = SHORT_DEFAULT_MS;
	e->long_ms = LONG_DEFAULT_MS;
	e->h = cu->easy_init();
	if (!e->h)
		bv_oom();
	return e;
}

void bv_engine_free(struct bv_engine *e)
{
	if (!e)
		return;
	if (e->h)
		e->cu->easy_cleanup(e->h);
	free(e->socket);
	free(e->api_version);
	free(e->server_version);
	free(e);
}

static int parse_version(const char *s, unsigned *major, unsigned *minor)
{
	const char *dot = s ? strchr(s, '.') : NULL;
	_cleanup_free_ char *maj = NULL;
	if (!dot)
		return -EINVAL;
	maj = bv_xstrndup(s, (size_t)(dot - s));
	if (bv_parse_uint(major, maj) < 0 || bv_parse_uint(minor, dot + 1) < 0)
		return -EINVAL;
	return 0;
}

static void set_version(struct bv_engine *e, unsigned major, unsigned minor)
{
	if (major > CLIENT_MAJOR || (major == CLIENT_MAJOR && minor > CLIENT_MINOR)) {
		major = CLIENT_MAJOR;
		minor = CLIENT_MINOR;
	}
	e->api_version = bv_xasprintf("%u.%u", major, minor);
}

/* Reads GET /version: the API version to speak, the server's version, Podman or not. */
static int negotiate_by_version(struct bv_engine *e, struct bv_error **err)
{
	struct request r = {
		.e = e, .method = "GET", .path = "/version", .upload_fd = -1, .resp = BV_BUF_INIT};
	json_t *v = NULL, *comps;
	const char *api, *version;
	unsigned major = 0, minor = 0;
	int ret = 0;

	set_deadline(&r, BV_ENGINE_WAIT_SHORT, 0);
	if ((ret = perform(&r, err)) < 0)
		goto out;
	if (r.status != 200) {
		json_t *body = error_json(&r.resp);
		ret = bv_engine_fail(err, r.status, body, "the engine at '%s' refused GET /version",
				     e->socket);
		json_decref(body);
		goto out;
	}
	v = json_loadb(r.resp.buf, r.resp.len, 0, NULL);
	api = json_string_value(json_object_get(v, "ApiVersion"));
	if (!json_is_object(v) || parse_version(api, &major, &minor) < 0) {
		ret = bv_error_set(err,
				   "the engine at '%s' sent no valid API version in GET /version",
				   e->socket);
		goto out;
	}
	set_version(e, major, minor);
	version = json_string_value(json_object_get(v, "Version"));
	e->server_version = bv_xstrdup(version ? version : "unknown");
	e->podman = r.libpod;
	comps = json_object_get(v, "Components");
	for (size_t i = 0; json_is_array(comps) && i < json_array_size(comps); i++) {
		const char *name =
			json_string_value(json_object_get(json_array_get(comps, i), "Name"));
		if (name && strcmp(name, "Podman Engine") == 0)
			e->podman = true;
	}
out:
	json_decref(v);
	request_release(&r);
	return ret;
}

/*
 * Negotiates from the headers of GET /_ping (Api-Version; Server: "Docker/20.10.24 (linux)"
 * or "Libpod/4.3.1 (linux)"; Libpod-Api-Version), as the docker CLI does: Podman answers
 * /version only after asking conmon and the OCI runtime for theirs, about a second.  An
 * engine whose ping says nothing about versions is asked GET /version.
 */
static int negotiate(struct bv_engine *e, struct bv_error **err)
{
	struct request r = {.e = e,
			    .method = "GET",
			    .path = "/_ping",
			    .upload_fd = -1,
			    .resp = BV_BUF_INIT,
			    .resp_max = 4096};
	unsigned major = 0, minor = 0;
	int ret;

	set_deadline(&r, BV_ENGINE_WAIT_SHORT, 0);
	if ((ret = perform(&r, err)) < 0)
		goto out;
	if (r.status != 200) {
		json_t *body = error_json(&r.resp);
		ret = bv_engine_fail(err, r.status, body, "the engine at '%s' refused GET /_ping",
				     e->socket);
		json_decref(body);
		goto out;
	}
	if (!r.api_header || parse_version(r.api_header, &major, &minor) < 0) {
		ret = negotiate_by_version(e, err);
		goto out;
	}
	set_version(e, major, minor);
	e->podman = r.libpod;
	if (r.server_header && strchr(r.server_header, '/')) {
		const char *v = strchr(r.server_header, '/') + 1;
		e->server_version = bv_xstrndup(v, strcspn(v, " "));
	} else {
		e->server_version = bv_xstrdup("unknown");
	}
out:
	request_release(&r);
	return ret;
}

int bv_engine_open(struct bv_engine **out, const char *host, struct bv_error **err)
{
	const struct bv_curl *cu;
	char *sock = NULL;
	struct bv_engine *e;
	int r;

	if ((r = socket_path(&sock, host, err)) < 0)
		return r;
	if (!(cu = bv_curl_get(err))) {
		free(sock);
		return BV_ERR;
	}
	e = engine_new(cu, sock);
	if ((r = deadline_env(&e->short_ms, ENV_SHORT, SHORT_DEFAULT_MS, err)) < 0 ||
	    (r = deadline_env(&e->long_ms, ENV_LONG, LONG_DEFAULT_MS, err)) < 0 ||
	    (r = negotiate(e, err)) < 0) {
		bv_engine_free(e);
		return r;
	}
	*out = e;
	return 0;
}

int bv_engine_ping(const char *host, long timeout_ms, struct bv_error **err)
{
	const struct bv_curl *cu;
	char *sock = NULL;
	struct bv_engine *e;
	struct request r = {.method = "GET",
			    .path = "/_ping",
			    .upload_fd = -1,
			    .timeout_ms = timeout_ms > 0 ? timeout_ms : 1000,
			    .resp = BV_BUF_INIT,
			    .resp_max = 4096};
	int ret;

	if ((ret = socket_path(&sock, host, err)) < 0)
		return ret;
	if (!(cu = bv_curl_get(err))) {
		free(sock);
		return BV_ERR;
	}
	e = engine_new(cu, sock);
	r.e = e;
	cu->easy_setopt(e->h, CURLOPT_CONNECTTIMEOUT_MS, r.timeout_ms);
	ret = perform(&r, err);
	if (ret >= 0 && r.status != 200)
		ret = bv_error_set(err, "the engine at '%s' answered GET /_ping with HTTP %ld",
				   e->socket, r.status);
	request_release(&r);
	bv_engine_free(e);
	return ret;
}

const char *bv_engine_socket(const struct bv_engine *e)
{
	return e->socket;
}

const char *bv_engine_api_version(const struct bv_engine *e)
{
	return e->api_version;
}

const char *bv_engine_server_version(const struct bv_engine *e)
{
	return e->server_version;
}

bool bv_engine_is_podman(const struct bv_engine *e)
{
	return e->podman;
}

/* ------------------------------------------------------------------------------------ */
/* Calls and streams */

int bv_engine_call(long *status_out, json_t **resp_out, struct bv_engine *e, const char *method,
		   const char *path, json_t *body, struct bv_error **err)
{
	return bv_engine_call_within(status_out, resp_out, e, method, path, body,
				     BV_ENGINE_WAIT_SHORT, 0, err);
}

int bv_engine_call_within(long *status_out, json_t **resp_out, struct bv_engine *e,
			  const char *method, const char *path, json_t *body,
			  enum bv_engine_wait wait, long extra_ms, struct bv_error **err)
{
	_cleanup_free_ char *vpath = versioned(e, path);
	_cleanup_free_ char *text = NULL;
	struct request r = {
		.e = e, .method = method, .path = vpath, .upload_fd = -1, .resp = BV_BUF_INIT};
	json_t *resp = NULL;
	int ret;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text)
			bv_oom();
		r.body = text;
		r.body_len = strlen(text);
		r.content_type = "application/json";
	}
	set_deadline(&r, wait, extra_ms);
	if ((ret = perform(&r, err)) < 0)
		goto out;
	if (r.status >= 400) {
		resp = error_json(&r.resp);
	} else if (r.resp.len) {
		json_error_t jerr;
		resp = json_loadb(r.resp.buf, r.resp.len, JSON_DECODE_ANY, &jerr);
		if (!resp) {
			_cleanup_free_ char *shown = path_shown(path);
			_cleanup_free_ char *why = bv_str_shown(jerr.text, strlen(jerr.text), 200);
			ret = bv_error_set(err,
					   "the engine's response to %s %s is not JSON: %s (line "
					   "%d)",
					   method, shown, why, jerr.line);
			goto out;
		}
	}
	*status_out = r.status;
	*resp_out = resp;
	resp = NULL;
out:
	json_decref(resp);
	request_release(&r);
	return ret;
}

static const char *status_class(long status)
{
	switch (status) {
	case 400:
		return "bad request";
	case 401:
	case 403:
		return "permission denied";
	case 404:
		return "not found";
	case 409:
		return "conflict";
	case 500:
		return "engine error";
	default:
		return status >= 500 ? "engine error" : "unexpected response";
	}
}

int bv_engine_fail(struct bv_error **err, long status, json_t *resp, const char *what, ...)
{
	const char *msg = json_string_value(json_object_get(resp, "message"));
	int code = status == 404 ? BV_ENOTFOUND : status == 409 ? BV_EEXISTS : BV_ERR;
	_cleanup_free_ char *head = NULL, *shown = NULL;
	va_list ap;

	va_start(ap, what);
	head = bv_xvasprintf(what, ap);
	va_end(ap);
	if (msg && msg[0]) {
		shown = bv_str_shown(msg, strlen(msg), MESSAGE_SHOWN);
		return bv_error_setc(err, code, 0, "%s: %s", head, shown);
	}
	return bv_error_setc(err, code, 0, "%s: %s (HTTP %ld)", head, status_class(status), status);
}

int bv_engine_stream(long *status_out, json_t **error_body_out, struct bv_engine *e,
		     const char *method, const char *path, const char *content_type, int upload_fd,
		     bv_engine_data_fn on_data, void *payload, struct bv_error **err)
{
	return bv_engine_stream_within(status_out, error_body_out, e, method, path, content_type,
				       upload_fd, on_data, payload, BV_ENGINE_WAIT_LONG, err);
}

int bv_engine_stream_within(long *status_out, json_t **error_body_out, struct bv_engine *e,
			    const char *method, const char *path, const char *content_type,
			    int upload_fd, bv_engine_data_fn on_data, void *payload,
			    enum bv_engine_wait wait, struct bv_error **err)
{
	_cleanup_free_ char *vpath = versioned(e, path);
	struct request r = {.e = e,
			    .method = method,
			    .path = vpath,
			    .upload_fd = upload_fd,
			    .content_type = upload_fd >= 0 ? content_type : NULL,
			    .on_data = on_data,
			    .payload = payload,
			    .resp = BV_BUF_INIT,
			    .resp_max = ERROR_BODY_MAX};
	int ret;
	set_deadline(&r, wait, 0);
	ret = perform(&r, err);
	if (ret >= 0) {
		*status_out = r.status;
		if (error_body_out)
			*error_body_out = r.status >= 400 ? error_json(&r.resp) : NULL;
	}
	request_release(&r);
	return ret;
}

/* ------------------------------------------------------------------------------------ */
/* Pulls */

void bv_engine_progress_release(struct bv_engine_progress *p)
{
	free(p->line);
	free(p->error);
	p->line = p->error = NULL;
	p->len = p->alloc = 0;
}

static int progress_line(struct bv_engine_progress *p, const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	int r = 0;
	if (!json_is_object(j)) {
		json_decref(j);
		return 0; /* blank lines and anything else that is not an event */
	}
	if (!p->error) {
		const char *msg = json_string_value(
			json_object_get(json_object_get(j, "errorDetail"), "message"));
		if (!msg)
			msg = json_string_value(json_object_get(j, "error"));
		if (msg)
			p->error = bv_str_shown(msg, strlen(msg), MESSAGE_SHOWN);
	}
	if (p->on_event)
		r = p->on_event(j, p->payload);
	json_decref(j);
	return r;
}

int bv_engine_progress_feed(const char *data, size_t len, void *payload)
{
	struct bv_engine_progress *p = payload;
	for (size_t i = 0; i < len; i++) {
		int r;
		if (data[i] != '\n' && data[i] != '\r') {
			if (p->len >= PULL_LINE_MAX) {
				p->too_long = true;
				continue;
			}
			BV_GROW(p->line, p->alloc, p->len + 1);
			p->line[p->len++] = data[i];
			continue;
		}
		if (!p->len)
			continue;
		r = p->too_long ? 0 : progress_line(p, p->line, p->len);
		p->len = 0;
		p->too_long = false;
		if (r < 0)
			return r;
	}
	return 0;
}

int bv_engine_progress_finish(struct bv_engine_progress *p)
{
	int r = 0;
	if (p->len && !p->too_long)
		r = progress_line(p, p->line, p->len);
	p->len = 0;
	return r;
}

/* "X-Registry-Auth: <base64url of {"username","password","serveraddress"}>", or NULL. */
static char *registry_auth_header(const char *image)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct bv_imageref ref = {0};
	struct bv_credential cred = {0};
	struct bv_error *ignored = NULL;
	struct bv_buf out = BV_BUF_INIT;
	json_t *j = NULL;
	char *text = NULL;
	size_t len;

	if (bv_imageref_parse(&ref, image, &ignored) < 0 ||
	    bv_credentials_lookup(&cred, ref.registry, &ignored) < 0) {
		bv_error_free(ignored);
		bv_imageref_release(&ref);
		return NULL;
	}
	if (strcmp(cred.username, "<token>") == 0)
		j = json_pack("{s:s, s:s}", "identitytoken", cred.secret, "serveraddress",
			      ref.registry);
	else
		j = json_pack("{s:s, s:s, s:s}", "username", cred.username, "password", cred.secret,
			      "serveraddress", ref.registry);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!text)
		bv_oom();
	len = strlen(text);
	bv_buf_puts(&out, "X-Registry-Auth: ");
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)(unsigned char)text[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)(unsigned char)text[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)text[i + 2];
		bv_buf_putc(&out, b64[(v >> 18) & 63]);
		bv_buf_putc(&out, b64[(v >> 12) & 63]);
		bv_buf_putc(&out, i + 1 < len ? b64[(v >> 6) & 63] : '=');
		bv_buf_putc(&out, i + 2 < len ? b64[v & 63] : '=');
	}
	explicit_bzero(text, len);
	free(text);
	json_decref(j);
	bv_credential_release(&cred);
	bv_imageref_release(&ref);
	return bv_buf_detach(&out, NULL);
}

int bv_engine_image_pull(struct bv_engine *e, const char *repo, const char *tag,
			 int (*on_event)(json_t *event, void *payload), void *payload,
			 const char *what, struct bv_error **err)
{
	_cleanup_free_ char *qi = bv_url_escape(repo, NULL), *qt = bv_url_escape(tag, NULL);
	_cleanup_free_ char *path = bv_xasprintf("/images/create?fromImage=%s&tag=%s", qi, qt);
	_cleanup_free_ char *vpath = versioned(e, path);
	_cleanup_free_ char *named = what ? NULL : bv_xasprintf("'%s@%s'", repo, tag);
	char *auth = NULL;
	const char *headers[] = {NULL, NULL};
	struct bv_engine_progress p = {.on_event = on_event, .payload = payload};
	struct request r = {.e = e,
			    .method = "POST",
			    .path = vpath,
			    .upload_fd = -1,
			    .on_data = bv_engine_progress_feed,
			    .payload = &p,
			    .resp = BV_BUF_INIT,
			    .resp_max = ERROR_BODY_MAX};
	int ret;

	if (!what)
		what = named;
	/* the engine would reach the registry: not when bv is offline */
	if (bv_offline()) {
		_cleanup_free_ char *msg = bv_xasprintf("pull %s", what);
		return bv_offline_error(err, msg);
	}
	auth = registry_auth_header(repo);
	headers[0] = auth;
	r.headers = auth ? headers : NULL;
	set_deadline(&r, BV_ENGINE_WAIT_LONG, 0);
	ret = perform(&r, err);

	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (ret < 0 && !r.data_rc) {
		ret = bv_error_wrap(err, ret, "could not pull %s", what);
	} else if (ret >= 0 && r.status >= 400) {
		json_t *body = error_json(&r.resp);
		ret = bv_engine_fail(err, r.status, body, "could not pull %s", what);
		json_decref(body);
	} else if (ret >= 0) {
		ret = bv_engine_progress_finish(&p);
		if (ret >= 0 && p.error)
			ret = bv_error_set(err, "could not pull %s: %s", what, p.error);
	}
	bv_engine_progress_release(&p);
	request_release(&r);
	return ret;
}

int bv_engine_pull(struct bv_engine *e, const char *image, const char *tag,
		   int (*on_event)(json_t *event, void *payload), void *payload,
		   struct bv_error **err)
{
	return bv_engine_image_pull(e, image, tag, on_event, payload, NULL, err);
}

/* ------------------------------------------------------------------------------------ */
/* What the typed layer shares (engine-internal.h) */

int bv_engine_request(json_t **out, struct bv_engine *e, const char *method, const char *path,
		      json_t *body, const long *also_ok, const char *verb, const char *what,
		      struct bv_error **err)
{
	return bv_engine_request_within(out, e, method, path, body, also_ok, verb, what,
					BV_ENGINE_WAIT_SHORT, 0, err);
}

int bv_engine_request_within(json_t **out, struct bv_engine *e, const char *method,
			     const char *path, json_t *body, const long *also_ok, const char *verb,
			     const char *what, enum bv_engine_wait wait, long extra_ms,
			     struct bv_error **err)
{
	json_t *resp = NULL;
	long status = 0;
	bool ok;
	int r = bv_engine_call_within(&status, &resp, e, method, path, body, wait, extra_ms, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not %s %s", verb, what);
	ok = status >= 200 && status < 300;
	for (const long *a = also_ok; !ok && a && *a; a++)
		ok = status == *a;
	if (!ok) {
		r = bv_engine_fail(err, status, resp, "could not %s %s", verb, what);
		json_decref(resp);
		return r;
	}
	if (out)
		*out = resp;
	else
		json_decref(resp);
	return 0;
}

int bv_engine_inspect(json_t **out, struct bv_engine *e, const char *path, const char *what,
		      struct bv_error **err)
{
	json_t *resp = NULL;
	long status = 0;
	int r = bv_engine_call(&status, &resp, e, "GET", path, NULL, err);
	if (r < 0)
		return bv_error_wrap(err, r, "could not inspect %s", what);
	if (status == 404) {
		json_decref(resp);
		*out = NULL;
		return 0;
	}
	if (status != 200) {
		r = bv_engine_fail(err, status, resp, "could not inspect %s", what);
		json_decref(resp);
		return r;
	}
	*out = resp;
	return 0;
}

const char *bv_engine_label(json_t *labels, const char *name)
{
	const char *v;
	if (!json_is_object(labels))
		return NULL;
	v = json_string_value(json_object_get(labels, name));
	if (!v && bv_str_has_prefix(name, "bv.")) {
		/* bv before the one namespace wrote io.bv.* (the docker backend's containers) */
		_cleanup_free_ char *old = bv_xasprintf("io.%s", name);
		v = json_string_value(json_object_get(labels, old));
	}
	return v;
}

bool bv_engine_repo_digests_match(json_t *repo_digests, const char *digest)
{
	size_t i;
	json_t *v;
	json_array_foreach(repo_digests, i, v)
	{
		const char *s = json_string_value(v);
		const char *at = s ? strrchr(s, '@') : NULL;
		if (at && strcmp(at + 1, digest) == 0)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------------------------ */
/* Demultiplexing */

int bv_engine_demux_feed(struct bv_engine_demux *d, const char *data, size_t len)
{
	while (len) {
		if (d->remaining == 0) {
			size_t take = sizeof(d->header) - d->header_len;
			if (take > len)
				take = len;
			memcpy(d->header + d->header_len, data, take);
			d->header_len += take;
			data += take;
			len -= take;
			if (d->header_len < sizeof(d->header))
				break;
			d->header_len = 0;
			d->stream = d->header[0];
			d->remaining = (size_t)d->header[4] << 24 | (size_t)d->header[5] << 16 |
				       (size_t)d->header[6] << 8 | (size_t)d->header[7];
			continue;
		}
		size_t take = d->remaining < len ? d->remaining : len;
		int r = d->on_frame ? d->on_frame(d->stream, data, take, d->payload) : 0;
		if (r < 0)
			return r;
		d->remaining -= take;
		data += take;
		len -= take;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Hijacked connections */

struct hijack {
	struct bv_engine *e;
	CURL *h;
	int sock;
	const struct bv_engine_attach_options *o;
	struct bv_error **err;
	struct bv_buf head;   /* the response head, then leftover stream bytes */
	const char *vpath;    /* the request's */
	uint64_t deadline_ns; /* for the response head (the short deadline); the stream has none */
};

/* Milliseconds left until the head's deadline, at least 0 (poll's timeout). */
static int hj_left_ms(const struct hijack *hj)
{
	uint64_t now = bv_time_monotonic_ns();
	uint64_t left = hj->deadline_ns > now ? (hj->deadline_ns - now) / 1000000u : 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int hj_timed_out(struct hijack *hj)
{
	_cleanup_free_ char *shown = path_shown(hj->vpath);
	_cleanup_free_ char *limit = seconds_text(hj->e->short_ms);
	return bv_error_set(
		hj->err,
		"the engine at '%s' did not answer POST %s within %s; raise %s or check "
		"the daemon",
		hj->e->socket, shown, limit, ENV_SHORT);
}

/* Waits until `fd` is ready for `events`; -1 with errno on failure, 0 on timeout. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int n = poll(&p, 1, timeout_ms);
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

static int hj_send_all(struct hijack *hj, const char *data, size_t len)
{
	while (len) {
		size_t sent = 0;
		CURLcode rc = hj->e->cu->easy_send(hj->h, data, len, &sent);
		if (rc == CURLE_AGAIN) {
			if (wait_fd(hj->sock, POLLOUT, hj_left_ms(hj)) <= 0)
				return hj_timed_out(hj);
			continue;
		}
		if (rc != CURLE_OK)
			return bv_error_set(hj->err, "could not send to '%s': %s", hj->e->socket,
					    hj->e->cu->easy_strerror(rc));
		data += sent;
		len -= sent;
	}
	return 0;
}

/* Receives some bytes into `b` before the deadline; returns 1, 0 at EOF, or a negative error. */
static int hj_recv(struct hijack *hj, struct bv_buf *b)
{
	for (;;) {
		size_t got = 0;
		CURLcode rc;
		bv_buf_grow(b, IO_CHUNK);
		rc = hj->e->cu->easy_recv(hj->h, b->buf + b->len, IO_CHUNK, &got);
		if (rc == CURLE_AGAIN) {
			if (wait_fd(hj->sock, POLLIN, hj_left_ms(hj)) <= 0)
				return hj_timed_out(hj);
			continue;
		}
		if (rc != CURLE_OK)
			return bv_error_set(hj->err, "could not read from '%s': %s", hj->e->socket,
					    hj->e->cu->easy_strerror(rc));
		bv_buf_setlen(b, b->len + got);
		return (int)(got > 0);
	}
}

/* The value of header `name` in a response head, or NULL (a new string). */
static char *head_value(const char *head, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = memchr(head, '\n', len), *end = head + len;
	while (p && p < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			break;
		if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
		    line[nlen] == ':') {
			const char *v = line + nlen + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			return bv_xstrndup(v, (size_t)(ve - v));
		}
		p = eol;
	}
	return NULL;
}

/* Whether a chunked body in `b` is complete (the last chunk has arrived); decodes it then. */
static bool dechunk(struct bv_buf *b)
{
	struct bv_buf out = BV_BUF_INIT;
	size_t i = 0;
	for (;;) {
		const char *eol = memchr(b->buf + i, '\n', b->len - i);
		uint64_t size = 0;
		size_t j;
		if (!eol)
			goto incomplete;
		for (j = i; j < (size_t)(eol - b->buf) && isxdigit((unsigned char)b->buf[j]); j++) {
			char c = (char)tolower((unsigned char)b->buf[j]);
			if (size > (1u << 24))
				goto incomplete;
			size = size * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
		}
		i = (size_t)(eol - b->buf) + 1;
		if (size == 0)
			break;
		if (b->len - i < size + 2)
			goto incomplete;
		bv_buf_add(&out, b->buf + i, size);
		i += size + 2;
	}
	bv_buf_release(b);
	*b = out;
	return true;
incomplete:
	bv_buf_release(&out);
	return false;
}

/* Reads the body of an error response after its head, for bv_engine_fail(). */
static json_t *hj_error_body(struct hijack *hj, size_t head_len)
{
	_cleanup_free_ char *clen = head_value(hj->head.buf, head_len, "Content-Length");
	_cleanup_free_ char *te = head_value(hj->head.buf, head_len, "Transfer-Encoding");
	struct bv_buf body = BV_BUF_INIT;
	struct bv_error *ignored = NULL;
	struct bv_error **saved = hj->err;
	size_t want = 0;
	bool chunked = te && strcasecmp(te, "chunked") == 0;
	json_t *j;

	if (clen && bv_parse_size(&want, clen) < 0)
		want = 0;
	if (want > ERROR_BODY_MAX)
		want = ERROR_BODY_MAX;
	bv_buf_add(&body, hj->head.buf + head_len, hj->head.len - head_len);
	hj->err = &ignored;
	while (body.len < ERROR_BODY_MAX) {
		if (clen && body.len >= want)
			break;
		if (chunked && dechunk(&body))
			break;
		if (hj_recv(hj, &body) <= 0)
			break;
	}
	hj->err = saved;
	bv_error_free(ignored);
	if (clen && body.len > want)
		bv_buf_setlen(&body, want);
	j = error_json(&body);
	bv_buf_release(&body);
	return j;
}

/* Writes everything to `fd`, waiting when it is non-blocking; EPIPE is reported as such. */
static int write_fd(int fd, const char *data, size_t len, struct bv_error **err)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				wait_fd(fd, POLLOUT, -1);
				continue;
			}
			return bv_error_set_errno(err, "could not write the container's output");
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int deliver(struct hijack *hj, int stream, const char *data, size_t len)
{
	const struct bv_engine_attach_options *o = hj->o;
	int fd;
	if (stream != 1 && stream != 2)
		return 0; /* stdin echo (stream 0) or frames of a newer protocol */
	if (o->on_output)
		return o->on_output(stream, data, len, o->payload, hj->err);
	fd = stream == 1 ? o->stdout_fd : o->stderr_fd;
	return fd >= 0 ? write_fd(fd, data, len, hj->err) : 0;
}

static int on_frame(int stream, const char *data, size_t len, void *payload)
{
	return deliver(payload, stream, data, len);
}

/* Connects, sends the request and reads the response head; returns the HTTP status. */
static int hj_open(struct hijack *hj, const char *vpath, const char *body, long *status_out,
		   size_t *head_len_out)
{
	const struct bv_curl *cu = hj->e->cu;
	struct bv_buf req = BV_BUF_INIT;
	curl_socket_t s = CURL_SOCKET_BAD;
	long os_errno = 0;
	CURLcode rc;
	char *end;
	int r;

	hj->h = cu->easy_init();
	if (!hj->h)
		bv_oom();
	cu->easy_setopt(hj->h, CURLOPT_UNIX_SOCKET_PATH, hj->e->socket);
	cu->easy_setopt(hj->h, CURLOPT_URL, "http://localhost/");
	cu->easy_setopt(hj->h, CURLOPT_PROTOCOLS_STR, "http");
	cu->easy_setopt(hj->h, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(hj->h, CURLOPT_CONNECT_ONLY, 1L);
	cu->easy_setopt(hj->h, CURLOPT_CONNECTTIMEOUT_MS, hj->e->short_ms);
	hj->vpath = vpath;
	hj->deadline_ns = bv_time_monotonic_ns() + (uint64_t)hj->e->short_ms * 1000000u;
	rc = cu->easy_perform(hj->h);
	if (rc != CURLE_OK) {
		cu->easy_getinfo(hj->h, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno)
			return connect_failed(hj->e->socket, os_errno, hj->err);
		return bv_error_set(hj->err, "could not connect to '%s': %s", hj->e->socket,
				    cu->easy_strerror(rc));
	}
	cu->easy_getinfo(hj->h, CURLINFO_ACTIVESOCKET, &s);
	if (s == CURL_SOCKET_BAD)
		return bv_error_set(hj->err, "libcurl gave no socket for '%s'", hj->e->socket);
	hj->sock = (int)s;

	bv_buf_printf(&req,
		      "POST %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bv\r\n"
		      "Connection: Upgrade\r\nUpgrade: tcp\r\n",
		      vpath);
	if (body)
		bv_buf_printf(&req,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			      strlen(body), body);
	else
		bv_buf_puts(&req, "Content-Length: 0\r\n\r\n");
	r = hj_send_all(hj, req.buf, req.len);
	bv_buf_release(&req);
	if (r < 0)
		return r;

	for (;;) {
		end = memmem(hj->head.buf, hj->head.len, "\r\n\r\n", 4);
		if (end)
			break;
		if (hj->head.len > HEAD_MAX)
			return bv_error_set(hj->err,
					    "the engine at '%s' sent an oversized response",
					    hj->e->socket);
		r = hj_recv(hj, &hj->head);
		if (r < 0)
			return r;
		if (r == 0) {
			_cleanup_free_ char *shown = path_shown(vpath);
			return bv_error_set(hj->err,
					    "the engine at '%s' closed the connection of POST %s "
					    "before it answered",
					    hj->e->socket, shown);
		}
	}
	*head_len_out = (size_t)(end - hj->head.buf) + 4;
	if (hj->head.len < 12 || memcmp(hj->head.buf, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)hj->head.buf[9]) || !isdigit((unsigned char)hj->head.buf[10]) ||
	    !isdigit((unsigned char)hj->head.buf[11])) {
		_cleanup_free_ char *shown = path_shown(vpath);
		return bv_error_set(hj->err, "the engine at '%s' sent no HTTP response to POST %s",
				    hj->e->socket, shown);
	}
	*status_out = (hj->head.buf[9] - '0') * 100 + (hj->head.buf[10] - '0') * 10 +
		      (hj->head.buf[11] - '0');
	return 0;
}

/* Copies both ways until the engine closes the stream. */
static int hj_pump(struct hijack *hj, struct bv_engine_demux *d)
{
	const struct bv_engine_attach_options *o = hj->o;
	const struct bv_curl *cu = hj->e->cu;
	_cleanup_free_ char *in = bv_xmalloc(IO_CHUNK);
	size_t in_off = 0, in_len = 0;
	bool in_open = o->stdin_fd >= 0, shut = false;
	struct bv_buf rx = BV_BUF_INIT;
	int r = 0;

	if (!in_open) {
		shutdown(hj->sock, SHUT_WR);
		shut = true;
	}
	for (;;) {
		struct pollfd p[3];
		nfds_t n = 0, i_sock, i_in = NO_SLOT, i_watch = NO_SLOT;
		p[n] = (struct pollfd){.fd = hj->sock, .events = POLLIN};
		if (in_len)
			p[n].events |= POLLOUT;
		i_sock = n++;
		if (in_open && !in_len) {
			p[n] = (struct pollfd){.fd = o->stdin_fd, .events = POLLIN};
			i_in = n++;
		}
		if (o->watch_fd >= 0) {
			p[n] = (struct pollfd){.fd = o->watch_fd, .events = POLLIN};
			i_watch = n++;
		}
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = bv_error_set_errno(hj->err, "poll failed");
			break;
		}
		if (i_watch != NO_SLOT && (p[i_watch].revents & (POLLIN | POLLHUP)) &&
		    (r = o->on_watch(o->payload, hj->err)) < 0)
			break;
		if (p[i_sock].revents & (POLLIN | POLLHUP | POLLERR)) {
			/* Drain what is there; CURLE_AGAIN ends the round. */
			bool eof = false;
			for (;;) {
				size_t got = 0;
				CURLcode rc;
				bv_buf_reset(&rx);
				bv_buf_grow(&rx, IO_CHUNK);
				rc = cu->easy_recv(hj->h, rx.buf, IO_CHUNK, &got);
				if (rc == CURLE_AGAIN)
					break;
				if (rc != CURLE_OK) {
					r = bv_error_set(hj->err, "could not read from '%s': %s",
							 hj->e->socket, cu->easy_strerror(rc));
					goto out;
				}
				if (!got) {
					eof = true;
					break;
				}
				r = o->tty ? deliver(hj, 1, rx.buf, got)
					   : bv_engine_demux_feed(d, rx.buf, got);
				if (r < 0)
					goto out;
			}
			if (eof && !o->tty && (d->remaining || d->header_len)) {
				/* a clean end falls between frames; this is a daemon that died
				 * or a proxy that cut the stream */
				_cleanup_free_ char *shown = path_shown(hj->vpath);
				r = bv_error_set(
					hj->err,
					"lost the connection to the engine at '%s' during "
					"POST %s: the stream ended in the middle of a frame",
					hj->e->socket, shown);
				goto out;
			}
			if (eof)
				break;
		}
		if (in_len && (p[i_sock].revents & POLLOUT)) {
			size_t sent = 0;
			CURLcode rc = cu->easy_send(hj->h, in + in_off, in_len, &sent);
			if (rc == CURLE_OK) {
				in_off += sent;
				in_len -= sent;
			} else if (rc != CURLE_AGAIN) {
				/* The engine closed its side for stdin (the tool is gone or
				 * closed it): what the tool will never read is dropped. */
				in_len = 0;
				in_open = false;
			}
			if (!in_len && !in_open && !shut) {
				shutdown(hj->sock, SHUT_WR);
				shut = true;
			}
		}
		if (i_in != NO_SLOT &&
		    (p[i_in].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
			ssize_t got = read(o->stdin_fd, in, IO_CHUNK);
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got <= 0) {
				/* EOF (or an unreadable stdin, which is as good as EOF): tell the
				 * engine, so it closes the tool's stdin. */
				in_open = false;
				if (!shut) {
					shutdown(hj->sock, SHUT_WR);
					shut = true;
				}
			} else {
				in_off = 0;
				in_len = (size_t)got;
			}
		}
	}
out:
	bv_buf_release(&rx);
	return r;
}

int bv_engine_attach_with(struct bv_engine *e, const char *path, json_t *body,
			  const struct bv_engine_attach_options *o, struct bv_error **err)
{
	_cleanup_free_ char *vpath = versioned(e, path);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct hijack hj = {.e = e, .sock = -1, .o = o, .err = err, .head = BV_BUF_INIT};
	struct bv_engine_demux d = {.on_frame = on_frame, .payload = &hj};
	size_t head_len = 0;
	long status = 0;
	int r;

	if (body && !text)
		bv_oom();
	r = hj_open(&hj, vpath, text, &status, &head_len);
	if (r < 0)
		goto out;
	if (status >= 400) {
		json_t *j = hj_error_body(&hj, head_len);
		r = bv_engine_fail(err, status, j, "could not attach");
		json_decref(j);
		goto out;
	}
	if (status != 101 && status != 200) {
		r = bv_error_set(err, "the engine at '%s' answered POST %s with HTTP %ld",
				 e->socket, path, status);
		goto out;
	}
	if (o->on_ready && (r = o->on_ready(o->payload, err)) < 0)
		goto out;
	/* Bytes that came with the head are the start of the stream. */
	if (hj.head.len > head_len) {
		r = o->tty ? deliver(&hj, 1, hj.head.buf + head_len, hj.head.len - head_len)
			   : bv_engine_demux_feed(&d, hj.head.buf + head_len,
						  hj.head.len - head_len);
		if (r < 0)
			goto out;
	}
	r = hj_pump(&hj, &d);
out:
	if (hj.h)
		e->cu->easy_cleanup(hj.h);
	bv_buf_release(&hj.head);
	return r;
}

int bv_engine_attach(struct bv_engine *e, const char *path, json_t *body, bool tty, int stdin_fd,
		     int stdout_fd, int stderr_fd,
		     int (*on_ready)(void *payload, struct bv_error **err), void *payload,
		     struct bv_error **err)
{
	struct bv_engine_attach_options o = {.tty = tty,
					     .stdin_fd = stdin_fd,
					     .stdout_fd = stdout_fd,
					     .stderr_fd = stderr_fd,
					     .on_ready = on_ready,
					     .watch_fd = -1,
					     .payload = payload};
	return bv_engine_attach_with(e, path, body, &o, err);
}
