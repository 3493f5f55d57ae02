/*
 * time.h - wall-clock and monotonic time, and RFC 3339 timestamps in UTC.
 *
 * Calling sequence:
 *   char stamp[BV_RFC3339_LEN + 1];
 *   bv_time_format_rfc3339(stamp, bv_time_now());          "2026-11-23T13:30:16Z"
 *   int64_t t;
 *   if (bv_time_parse_rfc3339(&t, NULL, text) < 0) ...      lock files, registry metadata
 *   uint64_t t0 = bv_time_monotonic_ns();                   durations, timeouts
 *
 * Why not strptime()/timegm()/mktime(): mktime() and the libc formatting functions depend on
 * TZ and the locale, timegm() is not POSIX, and strptime() accepts far more than RFC 3339.
 * Conversion from a civil date uses Howard Hinnant's days-from-civil algorithm, which is exact
 * for the whole proleptic Gregorian calendar.
 *
 * Leap seconds: a seconds field of 60 is rejected.  POSIX time has no representation for it
 * and mapping it to the next second would make two different strings compare equal; bv never
 * writes such a timestamp and registries do not either.
 *
 * Ownership: nothing is allocated; `out` is a caller-provided array.
 *
 * Errors: leaf helpers returning a negative errno (-EINVAL, -EOVERFLOW) rather than a
 * struct bv_error, like parse.h.  Outputs are written only on success.
 */
#ifndef BV_UTIL_TIME_H
#define BV_UTIL_TIME_H

#include <stdint.h>

/* Length of "YYYY-MM-DDTHH:MM:SSZ" without the terminating NUL. */
#define BV_RFC3339_LEN 20

/*
 * Formats `unix_seconds` as UTC with a 'Z' suffix and no fraction.  Returns -EOVERFLOW when the
 * year does not fit in four digits (before 0000 or after 9999) and -EINVAL for a NULL `out`.
 */
int bv_time_format_rfc3339(char out[static BV_RFC3339_LEN + 1], int64_t unix_seconds);

/*
 * Parses "YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+hh:mm|-hh:mm)" and converts it to UTC.
 * The fraction keeps nine digits (nanoseconds); more digits are accepted and truncated.
 * `nanos_out` may be NULL.  Returns 0 or -EINVAL.
 */
int bv_time_parse_rfc3339(int64_t *unix_seconds_out, uint32_t *nanos_out, const char *s);

/* Seconds since the epoch (CLOCK_REALTIME). */
int64_t bv_time_now(void);

/* Nanoseconds of CLOCK_MONOTONIC, for measuring intervals only. */
uint64_t bv_time_monotonic_ns(void);

#endif
