/*
 * url.h - percent-encoding (RFC 3986) of the values bv puts into URLs: query values of the
 * registry's token requests and of the Docker Engine API, and image references in Engine API
 * paths.
 *
 * Calling sequence:
 *   bv_url_encode(&buf, scope, NULL);                  appends "repository%3Ax%3Apull"
 *   char *q = bv_url_escape(filters, NULL);            a query value, new string
 *   char *p = bv_url_escape(reference, BV_URL_KEEP_REF);  a path: '/', ':', '@', '+' stay
 *
 * Every byte but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~) and those in `keep`
 * becomes %XX with upper-case hex, so a value can never end its field ('&', '=', '?', '#')
 * or the request line (a blank or a newline), whatever it holds.
 *
 * Ownership: `s` and `keep` are borrowed; bv_url_escape() returns a new string.
 * Errors: none (allocation failure aborts).
 */
#ifndef BV_UTIL_URL_H
#define BV_UTIL_URL_H

struct bv_buf;

/* What an image reference needs to stay readable in a path: "quay.io/x/y@sha256:..". */
#define BV_URL_KEEP_REF ":/@+"

/* Appends `s` percent-encoded; `keep` (may be NULL) lists more bytes kept as they are. */
void bv_url_encode(struct bv_buf *b, const char *s, const char *keep);

/* `s` percent-encoded, as a new string. */
char *bv_url_escape(const char *s, const char *keep);

#endif
