/*
 * registry-internal.h - the OCI Distribution API client: resolve image references to digests
 * and pull their blobs into the store.
 *
 * Internal to the library: only src/lib/ and its tests (unit, fuzz) include it, never src/cli/
 * or a header of include/bv/.  It includes bv/registry.h (platforms and pull progress, which
 * the CLI uses); the CLI pulls through bv_install() (bv/install.h).
 *
 * Calling sequence:
 *   struct bv_registry_options o = { .store = store, .progress = show, .progress_payload = ui };
 *   struct bv_registry_client *c = NULL;
 *   if (bv_registry_client_new(&c, &o, &err) < 0) ...
 *   struct bv_resolved r;
 *   if (bv_registry_resolve(&r, c, &ref, NULL, &err) < 0) ...     NULL: this machine's platform
 *           r.top_digest goes into bv.lock; index and manifest are now in the store
 *   struct bv_pull_request req = { .ref = &ref, .resolved = &r };
 *   if (bv_registry_pull(c, &req, 1, &err) < 0) ...                config and layers
 *   bv_resolved_release(&r);
 *   bv_registry_client_free(c);
 *
 * Transport: libcurl, loaded on first use (src/lib/oci/registry/curl_loader.h), one multi handle
 * per client, so connections (and HTTP/2 streams) are shared by every request of the client.
 * bv_registry_pull() runs the config and layer downloads of all images at once, at most
 * `jobs` at a time, each streamed into the store (memory stays flat whatever the layer size).
 * A blob needed by several images is downloaded once.  Blobs already in the store are not
 * downloaded; a partial download left by an earlier run is resumed with a Range request.
 *
 * Scheme: https with the system CA store, or with $XDG_CONFIG_HOME/bv/certs.d/<host>/ca.crt
 * (like docker's certs.d) when that file exists.  Plain http only for hosts without such a
 * file that are loopback (bv_imageref_host_is_loopback()), listed as insecure in the mirror
 * configuration, or listed in options.insecure_hosts.
 *
 * Mirrors: when the image's registry has a mirror, every request goes to the mirror host with
 * the same repository path; what is recorded (the store's image names) stays the upstream
 * reference.
 *
 * Authentication: a request answered 401 is retried once with credentials.  Bearer challenges
 * get a token from the realm (with Basic credentials of bv_credentials_lookup() when there are
 * some, anonymously otherwise), cached per registry and scope "repository:<repo>:pull" for
 * its lifetime.  Basic challenges need credentials.  Credentials and tokens never appear in
 * errors: curl's verbose mode stays off and messages name URLs without user-info.
 *
 * Robustness: connect timeout 15 s; a transfer slower than 1 KB/s for 30 s is abandoned.
 * Responses 5xx and 429, connection failures, resets and timeouts are retried (3 times by
 * default) after 0.5, 1, 2 s (with jitter); during a pull the delay of one blob never holds
 * the other transfers back.  A retry that made progress does not use up an attempt, because
 * the next one resumes after the received bytes.  Redirects (blob storage on another host is
 * common) are followed, at most 5, over http and https only, and without the Authorization
 * header once the host changes.  Manifests are limited to 4 MiB and verified: by the digest
 * asked for, else by the registry's Docker-Content-Digest.  Blobs are verified by the store.
 *
 * Ownership: the client borrows the store and mirrors of its options for its whole life;
 * option strings are copied.  A struct bv_resolved owns its strings and arrays (release with
 * bv_resolved_release()).  Pull requests are borrowed.
 *
 * Errors: 0 or a negative enum bv_error_code with a message in `err`; outputs written only on
 * success.  BV_ENOTFOUND: the registry does not know the image (or blob); BV_EINVALID: a
 * malformed manifest or an unsupported manifest type.  Pull errors name the image and the blob:
 * "could not pull quay.io/biocontainers/samtools:1.21: layer sha256:1a2b3c4d5e6f: registry
 * returned 500 after 4 attempts".  A failed pull publishes nothing incomplete: the store only
 * publishes verified blobs, and images are added only after all their blobs are in.  The
 * library never prints; progress goes through the callback.
 */
#ifndef BV_LIB_REGISTRY_INTERNAL_H
#define BV_LIB_REGISTRY_INTERNAL_H

#include <bv/registry.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_error;
struct bv_imageref;
struct bv_mirrors;
struct bv_store;
struct bv_registry_client;

#define BV_REGISTRY_MANIFEST_MAX (4u << 20)

#define BV_MEDIA_OCI_INDEX    "application/vnd.oci.image.index.v1+json"
#define BV_MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BV_MEDIA_DOCKER_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"
#define BV_MEDIA_DOCKER_V2    "application/vnd.docker.distribution.manifest.v2+json"

struct bv_registry_options {
	struct bv_store *store;            /* required for pull; resolve stores manifests in it */
	unsigned jobs;                     /* parallel transfers; 0: $BV_JOBS, else 8 */
	const struct bv_mirrors *mirrors;  /* may be NULL */
	const char *const *insecure_hosts; /* NULL-terminated; hosts allowed over plain http */
	const char *certs_dir;             /* NULL: $XDG_CONFIG_HOME/bv/certs.d (~/.config/...) */
	const char *user_agent;            /* NULL: "bv/<version>" */
	long connect_timeout_s;            /* 0: 15 */
	long low_speed_limit;              /* bytes/s; 0: 1024 */
	long low_speed_time_s;             /* 0: 30 */
	int retries;                       /* retries after the first attempt; < 0: none; 0: 3 */
	unsigned backoff_ms;               /* first retry delay, doubled each time; 0: 500 */
	unsigned lock_wait_s;              /* waiting for another process's download; 0: 600 */
	bv_pull_progress_fn progress;      /* may be NULL */
	void *progress_payload;
	/*
	 * NULL, or where layer trees go (<cache>/layers): each layer downloaded is unpacked into
	 * <unpack_dir>/<hex> while it arrives (src/lib/oci/store/stream.h), the tree published
	 * only after the blob is; bv_registry_pull() returns when those unpacks are done.
	 */
	const char *unpack_dir;
};

struct bv_resolved {
	char *top_digest;       /* what the tag points to (index or manifest): bv.lock's digest */
	char *top_media_type;   /* of that document */
	char *manifest_digest;  /* the platform's image manifest (== top_digest without index) */
	char *media_type;       /* of the image manifest */
	uint64_t manifest_size; /* bytes of the image manifest */
	char *platform;         /* "linux/amd64" or "linux/arm64/v8", as matched */
	struct bv_descriptor config;
	struct bv_descriptor *layers;
	size_t n_layers;
	uint64_t total_size; /* config + layers, compressed */
};

struct bv_pull_request {
	const struct bv_imageref *ref;      /* upstream reference; names the image in the store */
	const struct bv_resolved *resolved; /* from bv_registry_resolve() */
};

/* Transfer counters of a client since it was created (for tests and summaries). */
struct bv_registry_stats {
	uint64_t requests;       /* transfers completed (every attempt; redirects within one) */
	uint64_t blob_bytes;     /* bytes of blob bodies received */
	uint64_t blobs_fetched;  /* blobs committed to the store by this client */
	uint64_t token_requests; /* requests to token endpoints */
};

int bv_registry_client_new(struct bv_registry_client **out, const struct bv_registry_options *opts,
			   struct bv_error **err);

/* Accepts NULL. */
void bv_registry_client_free(struct bv_registry_client *c);

void bv_registry_client_stats(struct bv_registry_stats *out, const struct bv_registry_client *c);

/* Fills `d` (strings it owns) from an OCI descriptor object; BV_EINVALID when malformed. */
int bv_registry_parse_descriptor(const json_t *obj, struct bv_descriptor *d);

/*
 * The parsers of bv_registry_resolve() and of token responses without any network, for
 * tests and fuzzing.  A document with "manifests" is an index: the descriptor for `platform`
 * is picked (attestations never) and its digest put in out->manifest_digest; anything else
 * is read as an image manifest (config and layers).  Release `out` with
 * bv_resolved_release().  A token response gives a new string in *token_out (wipe and free
 * it) and "expires_in" when present; BV_EINVALID when it holds no usable token.
 */
int bv_registry_parse_document(struct bv_resolved *out, const char *body, size_t len,
			       const char *platform, struct bv_error **err);
int bv_registry_parse_token(char **token_out, int64_t *expires_in_out, const char *body,
			    size_t len);

/*
 * Resolves `ref` (by tag or digest) for `platform` ("os/arch[/variant]", NULL: the default):
 * fetches and verifies the manifest, follows an index to the platform's manifest, stores both
 * documents in the store (when the client has one) and describes the image in `out`.
 * BV_ENOTFOUND when the registry does not know the reference or the index has no manifest for
 * the platform.
 */
int bv_registry_resolve(struct bv_resolved *out, struct bv_registry_client *c,
			const struct bv_imageref *ref, const char *platform, struct bv_error **err);

/*
 * The digest the tag of `ref` points to (HEAD request; GET when the registry does not send
 * Docker-Content-Digest), as a new string.  For a reference with a digest, checks that the
 * registry has it and returns a copy.
 */
int bv_registry_head_digest(char **digest_out, struct bv_registry_client *c,
			    const struct bv_imageref *ref, struct bv_error **err);

/*
 * Downloads the config and layers of all `n` images that are not in the store yet, then
 * records each image in the store (bv_store_add_image(): name = the formatted upstream
 * reference, digest = the image manifest).  Images are recorded only once every blob of
 * every image is in; after a failed download none is recorded, while the blobs completed so
 * far stay in the store (they are verified) and interrupted ones stay as partials to resume.
 */
int bv_registry_pull(struct bv_registry_client *c, const struct bv_pull_request *reqs, size_t n,
		     struct bv_error **err);

/* Frees the contents and zeroes the struct; accepts a zeroed struct. */
void bv_resolved_release(struct bv_resolved *r);

/*
 * Push (bv_push() in src/lib/oci/push.c drives it):
 *   bool needed[n];
 *   bv_registry_push_prepare(needed, &st, c, &dest, blobs, n, mount_from, &err);
 *   ... make the bytes of every needed blob readable at blobs[i].path, verified ...
 *   bv_registry_push_blobs(&st, c, &dest, blobs, needed, n, chunk_size, &err);
 *   for each document, children before the index that lists them:
 *           bv_registry_push_manifest(c, &dest, digest_or_tag, &doc, &err);
 *
 * Every push request goes to dest's registry itself, never to a mirror, with the scope
 * "repository:<repo>:pull,push" (a mount's challenge adds the source repository, and the
 * token then asked for covers both).  prepare() HEADs each blob (present: not needed) and,
 * with `mount_from` (a repository of the same registry that has the blobs), tries a
 * cross-repository mount.  push_blobs() uploads the needed blobs in the client's multi loop,
 * `jobs` at a time: POST, then one PUT ?digest= for blobs up to `chunk_size` (0:
 * BV_PUSH_CHUNK_DEFAULT), else PATCH chunks with Content-Range, following the Location every
 * answer gives (relative ones too), and a closing PUT.  5xx, 429 and connection failures
 * start the blob's upload again with a new session after the backoff; 401 authenticates
 * once.  The registry's Docker-Content-Digest must be the blob's (or document's) digest.
 * Errors name the destination; 401/403 say to log in.
 */
#define BV_PUSH_CHUNK_DEFAULT (64ull << 20)

struct bv_push_blob {
	const char *digest;
	uint64_t size;
	const char *path; /* a file with the verified bytes (needed blobs only) */
};

struct bv_push_document {
	const char *digest;
	const char *media_type;
	const char *data;
	size_t len;
};

struct bv_push_stats {
	size_t blobs_present; /* the registry had them */
	size_t blobs_mounted; /* linked from mount_from */
	size_t blobs_uploaded;
	uint64_t bytes_uploaded;
};

int bv_registry_push_prepare(bool *needed, struct bv_push_stats *st, struct bv_registry_client *c,
			     const struct bv_imageref *dest, const struct bv_push_blob *blobs,
			     size_t n, const char *mount_from, struct bv_error **err);
int bv_registry_push_blobs(struct bv_push_stats *st, struct bv_registry_client *c,
			   const struct bv_imageref *dest, const struct bv_push_blob *blobs,
			   const bool *needed, size_t n, uint64_t chunk_size,
			   struct bv_error **err);
int bv_registry_push_manifest(struct bv_registry_client *c, const struct bv_imageref *dest,
			      const char *reference, const struct bv_push_document *doc,
			      struct bv_error **err);

/*
 * For copies from a registry: the manifest `reference` of `ref`'s repository (verified against
 * `expect` when given, else the registry's Docker-Content-Digest; appended to `body`), and
 * blobs downloaded into the store (verified there; those in the store already are kept).
 */
struct bv_buf;
int bv_registry_fetch_manifest(struct bv_buf *body, char **digest_out, char **media_type_out,
			       struct bv_registry_client *c, const struct bv_imageref *ref,
			       const char *reference, const char *expect, struct bv_error **err);
int bv_registry_fetch_blobs(struct bv_registry_client *c, const struct bv_imageref *ref,
			    const struct bv_descriptor *descs, size_t n, struct bv_error **err);

#endif
