/*
 * url.c - percent-encoding (see url.h).
 */
#include "util/url.h"

#include <string.h>

#include "util/buf.h"

#include "util/banned.h"

static int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void bv_url_encode(struct bv_buf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (keep && strchr(keep, *p))) {
			bv_buf_putc(b, (char)*p);
		} else {
			bv_buf_putc(b, '%');
			bv_buf_putc(b, hex[*p >> 4]);
			bv_buf_putc(b, hex[*p & 15]);
		}
	}
}

char *bv_url_escape(const char *s, const char *keep)
{
	struct bv_buf b = BV_BUF_INIT;
	bv_buf_grow(&b, strlen(s));
	bv_url_encode(&b, s, keep);
	return bv_buf_detach(&b, NULL);
}
