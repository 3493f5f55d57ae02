#include "xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

void bv_oom(void)
{
	static const char msg[] = "fatal: out of memory\n";
	ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)ignored;
	abort();
}

void *bv_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		bv_oom();
	return p;
}

void *bv_xcalloc(size_t n, size_t size)
{
	void *p;
	if (n && size > SIZE_MAX / n)
		bv_oom();
	p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		bv_oom();
	return p;
}

void *bv_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		bv_oom();
	return p;
}

void *bv_xreallocarray(void *ptr, size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n)
		bv_oom();
	return bv_xrealloc(ptr, n * size);
}

char *bv_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		bv_oom();
	return p;
}

char *bv_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		bv_oom();
	return p;
}

char *bv_xvasprintf(const char *fmt, va_list ap)
{
	/* most results are paths and short messages: formatted once on the stack and copied
	 * at their size, which costs about half of vasprintf()'s growing buffer */
	char small[256];
	va_list cp;
	char *p;
	int n;
	va_copy(cp, ap);
	n = vsnprintf(small, sizeof(small), fmt, cp);
	va_end(cp);
	if (n < 0)
		bv_oom(); /* as vasprintf() failing was */
	p = bv_xmalloc((size_t)n + 1);
	if ((size_t)n < sizeof(small))
		memcpy(p, small, (size_t)n + 1);
	else if (vsnprintf(p, (size_t)n + 1, fmt, ap) != n)
		bv_oom();
	return p;
}

char *bv_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	va_start(ap, fmt);
	p = bv_xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void bv_grow(void **array, size_t *alloc, size_t need, size_t size)
{
	size_t n;
	if (need <= *alloc)
		return;
	n = *alloc < 8 ? 8 : *alloc;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			bv_oom();
		n *= 2;
	}
	*array = bv_xreallocarray(*array, n, size);
	*alloc = n;
}
