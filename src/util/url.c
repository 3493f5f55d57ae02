/*
 * url.c - percent-encoding (see url.h).
 */
#include "util/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

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

bool bv_url_host_is_loopback(const char *host, size_t len)
{
	char lit[INET6_ADDRSTRLEN];
	struct in_addr a4;
	struct in6_addr a6;

	if (len == 9 && !strncasecmp(host, "localhost", 9))
		return true;
	if (len == 0 || len >= sizeof(lit) || memchr(host, '\0', len))
		return false;
	memcpy(lit, host, len);
	lit[len] = '\0';
	if (inet_pton(AF_INET, lit, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, lit, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}
