#include "parse.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

#include "banned.h"

/* Parses the digits of s (no sign) into *out, rejecting anything above `max`. */
static int parse_digits(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned)(*s - '0');
		if (v > (max - d) / 10) {
			/* Keep scanning: "99999999999999999999x" is malformed, not too large. */
			for (s++; *s; s++)
				if (*s < '0' || *s > '9')
					return -EINVAL;
			return -ERANGE;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_unsigned(const char *s, uint64_t max, uint64_t *out)
{
	if (!s)
		return -EINVAL;
	return parse_digits(s, max, out);
}

static int parse_signed(const char *s, int64_t min, int64_t max, int64_t *out)
{
	bool neg = false;
	uint64_t mag, limit;
	int r;
	if (!s)
		return -EINVAL;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	/* The magnitude of min is one more than max; compute it without overflowing. */
	limit = neg ? (uint64_t)(-(min + 1)) + 1 : (uint64_t)max;
	r = parse_digits(s, limit, &mag);
	if (r < 0)
		return r;
	if (neg)
		*out = mag ? -(int64_t)(mag - 1) - 1 : 0;
	else
		*out = (int64_t)mag;
	return 0;
}

int bv_parse_u64(uint64_t *out, const char *s)
{
	return parse_unsigned(s, UINT64_MAX, out);
}

int bv_parse_seconds_ms(uint64_t *ms_out, const char *s, uint64_t max_ms)
{
	const char *dot = s ? strchr(s, '.') : NULL;
	uint64_t whole = 0, ms = 0;
	char intpart[24];
	int r;
	if (!s || !*s || dot == s)
		return -EINVAL;
	if (!dot) {
		r = parse_digits(s, UINT64_MAX / 1000, &whole);
	} else {
		size_t n = (size_t)(dot - s);
		if (n >= sizeof(intpart)) {
			r = -ERANGE;
		} else {
			memcpy(intpart, s, n);
			intpart[n] = '\0';
			r = parse_digits(intpart, UINT64_MAX / 1000, &whole);
		}
		if (!dot[1])
			return -EINVAL; /* "1." */
		for (const char *f = dot + 1; *f; f++) {
			if (*f < '0' || *f > '9')
				return -EINVAL;
			if (f - dot <= 3)
				ms = ms * 10 + (uint64_t)(*f - '0');
		}
		for (long k = (long)strlen(dot + 1); k < 3; k++)
			ms *= 10;
	}
	if (r < 0)
		return r;
	if (ms > max_ms || whole > (max_ms - ms) / 1000)
		return -ERANGE;
	*ms_out = whole * 1000 + ms;
	return 0;
}

int bv_parse_size(size_t *out, const char *s)
{
	uint64_t v;
	int r = parse_unsigned(s, SIZE_MAX, &v);
	if (r < 0)
		return r;
	*out = (size_t)v;
	return 0;
}

int bv_parse_uint(unsigned *out, const char *s)
{
	uint64_t v;
	int r = parse_unsigned(s, UINT_MAX, &v);
	if (r < 0)
		return r;
	*out = (unsigned)v;
	return 0;
}

int bv_parse_i64(int64_t *out, const char *s)
{
	return parse_signed(s, INT64_MIN, INT64_MAX, out);
}

int bv_parse_int(int *out, const char *s)
{
	int64_t v;
	int r = parse_signed(s, INT_MIN, INT_MAX, &v);
	if (r < 0)
		return r;
	*out = (int)v;
	return 0;
}

int bv_parse_bool(bool *out, const char *s)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

bool bv_str_has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

bool bv_str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return m <= n && !memcmp(s + n - m, suffix, m);
}

char *bv_str_shown(const char *text, size_t len, size_t max)
{
	size_t n = len < max ? len : max;
	char *s = bv_xmalloc(n + 4);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		s[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (n < len)
		memcpy(s + n, "...", 4);
	else
		s[n] = '\0';
	return s;
}

bool bv_env_name_valid(const char *name, size_t len)
{
	if (!len || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(name[i] == '_' || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}
