/*
 * imageref-internal.h - container image references ("quay.io/biocontainers/samtools:1.21@
 * sha256:...") and the look-ups in a set of registry mirrors.
 *
 * Internal to the library: only src/lib/ and its tests (unit, fuzz) include it, never src/cli/
 * or a header of include/bv/.  It includes bv/imageref.h, which loads and frees the mirror set
 * (what the CLI does) and describes its configuration.
 *
 * bv pins every tool as an OCI image by digest, and the same image is written many ways:
 * "ubuntu", "docker.io/library/ubuntu:22.04", "docker://index.docker.io/library/ubuntu".  This
 * module turns any of them into one canonical form, so lock files, the store, credentials,
 * mirrors and the token cache all key on the same strings.
 *
 * Calling sequence:
 *   struct bv_imageref ref;
 *   if (bv_imageref_parse(&ref, "biocontainers/samtools:1.21", &err) < 0) ...
 *           ref.registry "docker.io", ref.repository "biocontainers/samtools", ref.tag "1.21"
 *   char *name = bv_imageref_format(&ref);          "docker.io/biocontainers/samtools:1.21"
 *   char *pin = bv_imageref_pinned(&ref, digest);   "docker.io/biocontainers/samtools@sha256:..."
 *   bv_imageref_api_host(ref.registry)              "registry-1.docker.io"
 *   bv_imageref_release(&ref);
 *
 *   const char *host = bv_mirrors_lookup(m, ref.registry);  NULL: talk to ref.registry itself
 *   bool plain_http = bv_mirrors_insecure(m, host);
 *
 * Normalisation (what Docker and upstream bv do): a leading "docker://" is dropped; the first
 * path component names a registry only if it contains '.' or ':' or is "localhost", else the
 * registry is Docker Hub; "docker.io", "index.docker.io" and "registry-1.docker.io" all become
 * "docker.io"; a one-component repository on Docker Hub gets "library/"; registry host names
 * are lower-cased (DNS is case-insensitive, and credentials and mirrors must match however the
 * user spelt the host).  A tag can only follow the last '/', so in "host:5000/repo" the 5000 is
 * a port.  Repository components follow the distribution specification's grammar
 * ([a-z0-9]+ joined by '.', '_', "__" or runs of '-'), tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127},
 * and the only digest algorithm accepted is sha256 with 64 lower-case hex digits: bv verifies
 * every blob it stores by sha256, so another algorithm could never be pinned.
 *
 * Ownership: a parsed reference owns its four strings (release with bv_imageref_release());
 * formatted strings are new and the caller frees them; strings returned by bv_mirrors_lookup()
 * belong to the mirror set.
 *
 * Errors: bv_imageref_parse() returns 0 or BV_EINVALID with a message naming the reference
 * ("invalid image reference 'Ubuntu': repository must be lower case").  The output struct is
 * written only on success.
 */
#ifndef BV_LIB_IMAGEREF_INTERNAL_H
#define BV_LIB_IMAGEREF_INTERNAL_H

#include <bv/imageref.h>
#include <stdbool.h>

struct bv_error;
struct bv_mirrors;

#define BV_IMAGEREF_MAX_LEN    4096 /* a whole reference, as text */
#define BV_IMAGEREF_DOCKER_HUB "docker.io"

struct bv_imageref {
	char *registry;   /* "docker.io", "quay.io", "127.0.0.1:5000", "[::1]:5000" */
	char *repository; /* "library/ubuntu", "biocontainers/samtools" */
	char *tag;        /* NULL when none */
	char *digest;     /* "sha256:<64 hex>" or NULL */
};

int bv_imageref_parse(struct bv_imageref *out, const char *text, struct bv_error **err);

/* "registry/repository[:tag][@digest]"; parsing it again gives the same reference. */
char *bv_imageref_format(const struct bv_imageref *r);

/*
 * "registry/repository@digest" with the tag dropped: what a lock file records.  `digest`
 * NULL means r->digest; returns NULL when both are NULL.
 */
char *bv_imageref_pinned(const struct bv_imageref *r, const char *digest);

/* Frees the strings and zeroes the struct; accepts a zeroed struct. */
void bv_imageref_release(struct bv_imageref *r);

/*
 * The host that serves the registry's HTTP API: "registry-1.docker.io" for Docker Hub (whose
 * canonical name docker.io does not serve /v2/), the registry itself otherwise.
 */
const char *bv_imageref_api_host(const char *registry);

/* Whether two registry names are the same registry (case, Docker Hub's aliases). */
bool bv_imageref_same_registry(const char *a, const char *b);

/*
 * Whether `registry` ("host" or "host:port") is this machine: localhost, 127.0.0.0/8 in
 * dotted-quad form, or "[::1]" (IPv6 needs brackets, as in a reference).  Anything that does
 * not parse as one of those, "127.0.0.1.example.com" included, is not loopback.
 */
bool bv_imageref_host_is_loopback(const char *registry);

/* The mirror host for `registry` (any spelling of it), or NULL. */
const char *bv_mirrors_lookup(const struct bv_mirrors *m, const char *registry);

/* Whether `host` is listed under [insecure] registries (case-insensitive). */
bool bv_mirrors_insecure(const struct bv_mirrors *m, const char *host);

/* The mirrors file, $XDG_CONFIG_HOME/bv/mirrors.toml or ~/.config/bv/mirrors.toml (new
 * string), or NULL without a home directory; its [data] table is read by src/lib/data. */
char *bv_mirrors_path(void);

#endif
