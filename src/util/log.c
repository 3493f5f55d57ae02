#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

#include "banned.h"

/* Process-wide settings, set once by the command line before anything runs. */
static bv_log_sink log_sink;
static enum bv_log_level log_level = BV_LOG_WARN;

void bv_log_set_sink(bv_log_sink sink)
{
	log_sink = sink;
}

void bv_log_set_level(enum bv_log_level level)
{
	log_level = level;
}

bool bv_log_enabled(enum bv_log_level level)
{
	return log_sink && level <= log_level;
}

int bv_log_parse_level(const char *name)
{
	static const char *const names[] = {"warn", "info", "debug", "trace"};
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcasecmp(name, names[i]))
			return i;
	return -1;
}

void bv_log_url(enum bv_log_level level, const char *what, const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	size_t host_len = strcspn(host, "/?#");
	const char *at = memchr(host, '@', host_len);
	const char *rest;
	if (!bv_log_enabled(level))
		return;
	if (at) {
		host_len -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	rest = host + host_len;
	bv_logf(level, "%s %.*s%.*s%.*s%s", what, scheme ? (int)(scheme + 3 - url) : 0, url,
		(int)host_len, host, (int)strcspn(rest, "?#"), rest,
		rest[strcspn(rest, "?#")] ? "?..." : "");
}

void bv_logf(enum bv_log_level level, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	if (!bv_log_enabled(level))
		return;
	va_start(ap, fmt);
	msg = bv_xvasprintf(fmt, ap);
	va_end(ap);
	log_sink(level, msg);
	free(msg);
}
