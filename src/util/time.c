#include "time.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "banned.h"

int bv_time_format_rfc3339(char out[static BV_RFC3339_LEN + 1], int64_t unix_seconds)
{
	struct tm tm;
	time_t t = (time_t)unix_seconds;
	int n;
	if (!out)
		return -EINVAL;
	if ((int64_t)t != unix_seconds || !gmtime_r(&t, &tm))
		return -EOVERFLOW;
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -EOVERFLOW;
	n = snprintf(out, BV_RFC3339_LEN + 1, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n != BV_RFC3339_LEN)
		return -EOVERFLOW;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly `n` digits at *p and advances it. */
static bool digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

int bv_time_parse_rfc3339(int64_t *unix_seconds_out, uint32_t *nanos_out, const char *s)
{
	unsigned year, mon, day, hour, min, sec, oh = 0, om = 0;
	uint32_t nanos = 0;
	int sign = 0;
	int64_t t;
	const char *p = s;

	if (!s || !unix_seconds_out)
		return -EINVAL;
	if (!digits(&p, 4, &year) || !expect(&p, '-') || !digits(&p, 2, &mon) || !expect(&p, '-') ||
	    !digits(&p, 2, &day))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	if (!digits(&p, 2, &hour) || !expect(&p, ':') || !digits(&p, 2, &min) || !expect(&p, ':') ||
	    !digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		int n = 0;
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 9)
				nanos = nanos * 10 + (uint32_t)(*p - '0');
		for (; n < 9; n++)
			nanos *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;

	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
		return -EINVAL;
	if (hour > 23 || min > 59 || sec > 59 || oh > 23 || om > 59)
		return -EINVAL;

	t = days_from_civil(year, mon, day) * 86400 + (int64_t)hour * 3600 + (int64_t)min * 60 +
	    sec;
	/* Local time = UTC + offset, so UTC = local time - offset. */
	t -= sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	*unix_seconds_out = t;
	if (nanos_out)
		*nanos_out = nanos;
	return 0;
}

int64_t bv_time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t bv_time_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
