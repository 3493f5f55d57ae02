/*
 * bv/engine.h - a client of the Docker Engine API over its unix socket (dockerd, or Podman's
 * Docker-compatible service), used by the docker backend, sessions and project services.
 *
 * Calling sequence:
 *   struct bv_engine *e;
 *   if (bv_engine_open(&e, NULL, &err) < 0) ...     DOCKER_HOST (unix://) or the default socket;
 *                                                    pings and negotiates the API version
 *   long status; json_t *resp;
 *   bv_engine_call(&status, &resp, e, "POST", "/containers/create?name=x", body, &err);
 *   if (status >= 400) return bv_engine_fail(err, status, resp, "cannot create container 'x'");
 *   json_decref(resp);
 *   bv_engine_stream(&status, &error_body, e, "GET", "/containers/x/logs?follow=1&stdout=1", NULL,
 * -1, on_data, p, &err); bv_engine_attach(e,
 * "/containers/x/attach?stream=1&stdin=1&stdout=1&stderr=1", ...); bv_engine_free(e);
 *
 * Paths are given without the "/v1.41" prefix; the client adds the negotiated version (the
 * lower of the server's ApiVersion and the newest this client speaks, 1.41).  Query values
 * must be escaped by the caller with bv_engine_escape().
 *
 * This is the transport.  The library itself calls the typed functions of
 * lib/engine/engine-internal.h, which alone build Engine API paths, escape their values and
 * decide, once per endpoint, which statuses mean success.
 *
 * Status codes are data, not errors: bv_engine_call() fails only when the request could not
 * be made (no socket, the daemon died, a body that is not JSON).  Callers decide what 404 or
 * 304 mean for them, and turn the rest into a message with bv_engine_fail(), which reads the
 * engine's {"message": ...} and classifies by status code: 404 "not found", 409 "conflict",
 * 500 "engine error"; a refused or missing socket is "the Docker daemon is not running at
 * <socket>"; EACCES on the socket is "permission denied on <socket>".
 *
 * Deadlines.  No call waits forever for an engine that accepted it and never answers.  Each
 * is of one class (the typed layer, engine-internal.h, says which), with limits read from the
 * environment by bv_engine_open() as seconds, fractions allowed ("0.5"); a value that is not
 * a number above 0 and up to a week fails the open with BV_EINVALID naming the variable:
 *   short   BV_ENGINE_TIMEOUT, default 60: the whole call (ping, version, inspect, list,
 *           create, start, remove, kill, exec create, network calls); a stop or restart gets
 *           its stop timeout on top;
 *   long    BV_ENGINE_LONG_TIMEOUT, default 600: no total, but that long without a byte
 *           either way ends the call (pulls, builds, commits, archive uploads, logs);
 *   none    attach and exec streams, `logs -f`, wait: only connecting is bounded (short), and
 *           for attach and exec the response head too.
 * bv_engine_call() is short and bv_engine_stream() long.  A call past its limit fails with
 * "the engine at '<socket>' did not answer GET /containers/json within 1 s; raise
 * BV_ENGINE_TIMEOUT or check the daemon" (or "sent nothing for ... during ..."); a
 * connection closed halfway with "lost the connection to the engine at '<socket>' during
 * <call>: ..."; a body that is not JSON with "the engine's response to <call> is not JSON".
 *
 * Ownership: json bodies passed in are borrowed; *resp_out is a new reference (NULL when the
 * response had no body).  The engine handle is not thread-safe and holds one connection.
 *
 * Errors: 0 or a negative code with *err set; messages name the socket and the operation.
 */
#ifndef BV_ENGINE_H
#define BV_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct bv_error;
struct bv_engine;

int bv_engine_open(struct bv_engine **out, const char *host, struct bv_error **err);
void bv_engine_free(struct bv_engine *e);

const char *bv_engine_socket(const struct bv_engine *e);
const char *bv_engine_api_version(const struct bv_engine *e);    /* "1.41" */
const char *bv_engine_server_version(const struct bv_engine *e); /* "20.10.24+dfsg1" */
bool bv_engine_is_podman(const struct bv_engine *e);

/* Percent-escapes a query value; the result is the caller's. */
char *bv_engine_escape(const char *value);

/* One request with an optional JSON body and a JSON (or empty) response. */
int bv_engine_call(long *status_out, json_t **resp_out, struct bv_engine *e, const char *method,
		   const char *path, json_t *body, struct bv_error **err);

/* Turns an HTTP failure into an error: "<what>: <engine message>"; returns a negative code
 * (BV_ENOTFOUND for 404, BV_EEXISTS for 409, else BV_ERR). */
int bv_engine_fail(struct bv_error **err, long status, json_t *resp, const char *what, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A request whose response body is streamed to on_data as it arrives (logs, pull and build
 * progress, exports).  The request body, when upload_fd >= 0, is read from that fd until EOF
 * with the given content type (build contexts and archive uploads as tar).  on_data returns 0
 * to go on or a negative value to stop (the call then returns that value).  For status >= 400
 * the body is collected instead and returned in *error_body_out (a new reference, may be NULL).
 */
typedef int (*bv_engine_data_fn)(const char *data, size_t len, void *payload);
int bv_engine_stream(long *status_out, json_t **error_body_out, struct bv_engine *e,
		     const char *method, const char *path, const char *content_type, int upload_fd,
		     bv_engine_data_fn on_data, void *payload, struct bv_error **err);

/*
 * Docker's multiplexed stream: 8-byte headers (stream 1 stdout, 2 stderr, then a big-endian
 * length) in front of each frame.  Feed it raw bytes in any chunking; it calls on_frame with
 * whole or partial frame payloads in order.
 */
struct bv_engine_demux {
	unsigned char header[8];
	size_t header_len;
	size_t remaining; /* payload bytes left in the current frame */
	int stream;       /* of the current frame */
	int (*on_frame)(int stream, const char *data, size_t len, void *payload);
	void *payload;
};
int bv_engine_demux_feed(struct bv_engine_demux *d, const char *data, size_t len);

/*
 * A hijacked, bidirectional connection (POST /containers/{id}/attach, POST /exec/{id}/start):
 * upgrades the connection, then copies stdin_fd (when >= 0) into it until EOF (and
 * half-closes), and demultiplexes what comes back to stdout_fd and stderr_fd (raw when tty),
 * until the engine closes the stream.  `body` is the JSON request body, or NULL.
 * `on_ready`, when not NULL, is called once the upgrade succeeded (e.g. to start the
 * container after attaching, so no output is lost).
 */
int bv_engine_attach(struct bv_engine *e, const char *path, json_t *body, bool tty, int stdin_fd,
		     int stdout_fd, int stderr_fd,
		     int (*on_ready)(void *payload, struct bv_error **err), void *payload,
		     struct bv_error **err);

/*
 * Whether an engine answers GET /_ping on `host` (NULL: DOCKER_HOST or the default socket)
 * within `timeout_ms`.  No version negotiation: cheap enough for backend selection ("auto").
 * Fails with the same classified errors as bv_engine_open().
 */
int bv_engine_ping(const char *host, long timeout_ms, struct bv_error **err);

/*
 * bv_engine_attach() with every option: output may go to a callback instead of fds (so a
 * caller can capture it without a thread), and one more fd can be watched while the stream
 * runs (e.g. a self-pipe of signal handlers, to forward signals to the container).
 */
struct bv_engine_attach_options {
	bool tty;      /* the container has a tty: the stream is raw, not multiplexed */
	int stdin_fd;  /* copied into the connection until EOF, then half-closed; -1: none */
	int stdout_fd; /* where stream 1 goes when on_output is NULL; -1: discarded */
	int stderr_fd; /* stream 2, likewise */
	/* Called with the payload of stream 1 (stdout) or 2 (stderr); < 0 stops the attach. */
	int (*on_output)(int stream, const char *data, size_t len, void *payload,
			 struct bv_error **err);
	/* Called once the connection is upgraded, before any output is read. */
	int (*on_ready)(void *payload, struct bv_error **err);
	int watch_fd; /* -1: none; when it becomes readable, on_watch is called */
	int (*on_watch)(void *payload, struct bv_error **err);
	void *payload;
};
int bv_engine_attach_with(struct bv_engine *e, const char *path, json_t *body,
			  const struct bv_engine_attach_options *o, struct bv_error **err);

/*
 * POST /images/create?fromImage=<image>&tag=<tag> (tag may be a digest, "sha256:..."), with
 * the registry credentials bv finds for the image's registry (auth.h) in X-Registry-Auth.
 * The engine streams JSON progress objects; each is passed to on_event (borrowed; may be
 * NULL).  An {"error": ...} in the stream fails the pull with that message, as does an HTTP
 * status >= 400 (BV_ENOTFOUND for 404).
 */
int bv_engine_pull(struct bv_engine *e, const char *image, const char *tag,
		   int (*on_event)(json_t *event, void *payload), void *payload,
		   struct bv_error **err);

#endif
