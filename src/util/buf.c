#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#include "banned.h"

char bv_buf_empty[1];

void bv_buf_init(struct bv_buf *b, size_t hint)
{
	b->buf = bv_buf_empty;
	b->len = 0;
	b->alloc = 0;
	if (hint)
		bv_buf_grow(b, hint);
}

void bv_buf_release(struct bv_buf *b)
{
	if (b->alloc)
		free(b->buf);
	bv_buf_init(b, 0);
}

void bv_buf_reset(struct bv_buf *b)
{
	bv_buf_setlen(b, 0);
}

void bv_buf_grow(struct bv_buf *b, size_t extra)
{
	size_t need;
	if (extra > SIZE_MAX - b->len - 1)
		bv_oom();
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return;
	if (!b->alloc) {
		char *fresh = NULL;
		size_t alloc = 0;
		bv_grow((void **)&fresh, &alloc, need, 1);
		b->buf = fresh;
		b->buf[0] = '\0';
		b->alloc = alloc;
		return;
	}
	bv_grow((void **)&b->buf, &b->alloc, need, 1);
}

void bv_buf_setlen(struct bv_buf *b, size_t len)
{
	if (!b->alloc)
		return; /* the shared empty string stays empty */
	if (len >= b->alloc)
		abort();
	b->len = len;
	b->buf[len] = '\0';
}

void bv_buf_add(struct bv_buf *b, const void *data, size_t len)
{
	if (!len)
		return;
	bv_buf_grow(b, len);
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
}

void bv_buf_puts(struct bv_buf *b, const char *s)
{
	bv_buf_add(b, s, strlen(s));
}

void bv_buf_putc(struct bv_buf *b, char c)
{
	bv_buf_grow(b, 1);
	b->buf[b->len++] = c;
	b->buf[b->len] = '\0';
}

size_t bv_utf8_decode(const char *str, unsigned *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;
	unsigned c = s[0], min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Walks `s`; appends to `b` when it is not NULL; returns whether anything needs escaping. */
static bool add_printable(struct bv_buf *b, const char *s, bool keep_newlines)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	bool escaped = false;
	while (*p) {
		unsigned cp = 0;
		size_t n = bv_utf8_decode((const char *)p, &cp);
		bool control = n == 0 ||
			       (cp < 0x20 && cp != '\t' && (cp != '\n' || !keep_newlines)) ||
			       (cp >= 0x7f && cp <= 0x9f);
		if (n == 0)
			n = 1;
		if (!control) {
			if (b)
				bv_buf_add(b, p, n);
			p += n;
			continue;
		}
		escaped = true;
		for (; n; n--, p++) {
			char e[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 0xf]};
			if (b)
				bv_buf_add(b, e, sizeof(e));
		}
	}
	return escaped;
}

bool bv_buf_add_printable(struct bv_buf *b, const char *s, bool keep_newlines)
{
	return add_printable(b, s, keep_newlines);
}

bool bv_text_is_printable(const char *s, bool keep_newlines)
{
	/* printable ASCII, what names nearly always are, without decoding UTF-8 byte by byte
	 * (asked for every name a table prints); the rest from the first other byte */
	while ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f)
		s++;
	return !*s || !add_printable(NULL, s, keep_newlines);
}

void bv_buf_vprintf(struct bv_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	bv_buf_grow(b, 64);
	va_copy(cp, ap);
	n = vsnprintf(b->buf + b->len, b->alloc - b->len, fmt, cp);
	va_end(cp);
	if (n < 0)
		abort(); /* only an invalid format string gets here */
	if ((size_t)n >= b->alloc - b->len) {
		bv_buf_grow(b, (size_t)n);
		va_copy(cp, ap);
		n = vsnprintf(b->buf + b->len, b->alloc - b->len, fmt, cp);
		va_end(cp);
	}
	b->len += (size_t)n;
}

void bv_buf_printf(struct bv_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bv_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *bv_buf_detach(struct bv_buf *b, size_t *len)
{
	char *s;
	if (!b->alloc)
		bv_buf_grow(b, 0);
	s = b->buf;
	if (len)
		*len = b->len;
	bv_buf_init(b, 0);
	return s;
}
