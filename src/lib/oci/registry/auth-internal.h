/*
 * auth-internal.h - registry authentication: WWW-Authenticate challenges, token URLs, Docker
 * credentials and an in-memory token cache.
 *
 * Internal to the library: only src/lib/ and its tests (unit, fuzz) include it, never src/cli/
 * or a header of include/bv/.  The CLI uses none of it; it reaches authentication through
 * bv_install() (bv/install.h) and the backends.
 *
 * A pull from an OCI registry goes: GET /v2/ → 401 with a challenge; look up credentials for
 * the registry; GET <realm>?service=...&scope=repository:<repo>:pull (with Basic credentials
 * when there are any) → a bearer token; use that token for every manifest and blob of the
 * repository until it expires.  This module does every step except the HTTP requests, so it
 * does not need libcurl (bv loads libcurl only when a download starts).
 *
 * Calling sequence:
 *   struct bv_www_auth ch;
 *   if (bv_www_authenticate_parse(&ch, header_value, &err) < 0) ...
 *   if (ch.scheme == BV_AUTH_BEARER)
 *           bv_auth_token_url(&url, &ch, "repository:biocontainers/samtools:pull", &err);
 *   bv_www_auth_release(&ch);
 *
 *   struct bv_credential cred;
 *   r = bv_credentials_lookup(&cred, "quay.io", &err);  BV_ENOTFOUND: go anonymous
 *   char *hdr = bv_basic_auth_header(&cred);             "Basic dXNlcjpwYXNz"
 *   ... explicit_bzero(hdr, strlen(hdr)); free(hdr);
 *   bv_credential_release(&cred);
 *
 *   struct bv_token_cache *tc = bv_token_cache_new();
 *   const char *tok = bv_token_cache_get(tc, "quay.io", scope);   NULL: fetch one, then
 *   bv_token_cache_put(tc, "quay.io", scope, token, bv_token_expires_at(time(NULL), expires_in));
 *   bv_token_cache_free(tc);
 *
 * Challenges (RFC 7235): the header may hold several challenges ("Basic realm=x, Bearer
 * realm=y"); the Bearer one wins, then Basic; other schemes are skipped.  Scheme and parameter
 * names are case-insensitive, values are tokens or quoted strings with backslash escapes,
 * unknown parameters are ignored, a repeated parameter is an error (which realm would be
 * meant?).  Bearer needs a realm; Basic's realm is informative and may be missing.  Headers
 * longer than 8 KiB are refused.
 *
 * Credentials come from $DOCKER_CONFIG/config.json, else ~/.docker/config.json, as Docker
 * stores them: credHelpers[registry], then credsStore (both run
 * `docker-credential-<helper> get` with the server URL on stdin), then auths[registry] ("auth"
 * is base64 "user:password"; or "username"/"password"; or "identitytoken").  A helper or store
 * that does not know the registry falls through to the next source.  Keys match whatever the
 * scheme and path: "quay.io", "https://quay.io", "https://quay.io/v1/"; for Docker Hub also
 * "https://index.docker.io/v1/", which is the key `docker login` writes.  An identity token
 * (an OAuth refresh token) comes back with username "<token>", as credential helpers return it.
 *
 * Secrets: a secret is never part of an error message, whatever failed, and jansson's parse
 * messages (which quote the text near the error) are not used for files holding secrets.
 * bv's own copies (struct bv_credential, the file and helper output buffers, the token cache,
 * intermediate base64) are wiped with explicit_bzero() before they are freed.  jansson's
 * internal copies of a parsed config.json are freed without wiping; replacing jansson's
 * allocator would affect the whole process.
 *
 * Ownership: every string in the structs belongs to the struct; release functions free them.
 * Strings returned by bv_token_cache_get() belong to the cache and stay valid until the next
 * put for the same key or bv_token_cache_free().  The cache is not thread-safe.
 *
 * Errors: 0 or BV_EINVALID (malformed challenge, realm that is not http(s), malformed
 * config.json or helper output), BV_ENOTFOUND (no credentials), BV_ERR (a file or helper
 * that cannot be read or run).  Outputs are written only on success.
 */
#ifndef BV_LIB_AUTH_INTERNAL_H
#define BV_LIB_AUTH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct bv_error;

#define BV_WWW_AUTH_MAX_LEN 8192

enum bv_auth_scheme {
	BV_AUTH_BASIC = 1,
	BV_AUTH_BEARER,
};

struct bv_www_auth {
	enum bv_auth_scheme scheme;
	char *realm;   /* NULL when absent (Basic only) */
	char *service; /* NULL when absent */
	char *scope;   /* NULL when absent */
};

int bv_www_authenticate_parse(struct bv_www_auth *out, const char *header_value,
			      struct bv_error **err);

/* Frees the strings and zeroes the struct. */
void bv_www_auth_release(struct bv_www_auth *a);

/*
 * "<realm>?service=<service>&scope=<scope>" with the values percent-encoded (everything but
 * RFC 3986's unreserved characters), '&' instead of '?' when the realm has a query already,
 * and parameters without a value left out.  The challenge's scope wins over `fallback_scope`
 * (the /v2/ ping has no scope; a 401 on a blob names the one it wants).  A realm that is not
 * http:// or https://, or that holds blanks, control characters or a fragment, is
 * BV_EINVALID.
 */
int bv_auth_token_url(char **out, const struct bv_www_auth *a, const char *fallback_scope,
		      struct bv_error **err);

struct bv_credential {
	char *username; /* "<token>" when secret is an identity token */
	char *secret;   /* password or identity token */
};

int bv_credentials_lookup(struct bv_credential *out, const char *registry, struct bv_error **err);

/* Wipes and frees the secret, frees the username, zeroes the struct. */
void bv_credential_release(struct bv_credential *c);

/* "Basic <base64(username:secret)>"; the caller wipes and frees it. */
char *bv_basic_auth_header(const struct bv_credential *c);

struct bv_token_cache;

struct bv_token_cache *bv_token_cache_new(void);

/*
 * The token for (registry, scope), or NULL when there is none or it expires within the next
 * BV_TOKEN_EXPIRY_MARGIN seconds: a token that runs out halfway through a large blob fails the
 * download, so an almost expired one is as good as none.
 */
#define BV_TOKEN_EXPIRY_MARGIN 10
const char *bv_token_cache_get(struct bv_token_cache *c, const char *registry, const char *scope);

/* Stores (a copy of) `token`, replacing and wiping any earlier one for the same key. */
void bv_token_cache_put(struct bv_token_cache *c, const char *registry, const char *scope,
			const char *token, time_t expires_at);

/*
 * The absolute expiry of a token issued at `now` with the token response's "expires_in":
 * as the distribution token specification says, a missing or smaller value means 60 seconds.
 */
time_t bv_token_expires_at(time_t now, int64_t expires_in);

/* Wipes every token; accepts NULL. */
void bv_token_cache_free(struct bv_token_cache *c);

#endif
