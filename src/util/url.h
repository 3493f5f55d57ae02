/*
 * url.h - percent-encoding (RFC 3986) of the values bv puts into URLs: query values of the
 * registry's token requests and of the Docker Engine API, and image references in Engine API
 * paths; and whether a URL's host is this machine.
 *
 * Calling sequence:
 *   bv_url_encode(&buf, scope, NULL);                  appends "repository%3Ax%3Apull"
 *   char *q = bv_url_escape(filters, NULL);            a query value, new string
 *   char *p = bv_url_escape(reference, BV_URL_KEEP_REF);  a path: '/', ':', '@', '+' stay
 *   if (bv_url_host_is_loopback(host, len)) ...          "localhost", 127.0.0.0/8, ::1
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

#include <stdbool.h>
#include <stddef.h>

struct bv_buf;

/* What an image reference needs to stay readable in a path: "quay.io/x/y@sha256:..". */
#define BV_URL_KEEP_REF ":/@+"

/* Appends `s` percent-encoded; `keep` (may be NULL) lists more bytes kept as they are. */
void bv_url_encode(struct bv_buf *b, const char *s, const char *keep);

/* `s` percent-encoded, as a new string. */
char *bv_url_escape(const char *s, const char *keep);

/*
 * Whether the `len` bytes at `host` (a bare host: no port, no brackets around an IPv6
 * literal) name this machine: "localhost" in any case, an IPv4 address in 127.0.0.0/8 in
 * dotted-quad form, or the IPv6 loopback address in any of its spellings.  Names that merely
 * resolve to loopback do not count: what is allowed over plain HTTP must not depend on DNS.
 */
bool bv_url_host_is_loopback(const char *host, size_t len);

#endif
