/*
 * parse.h - strict parsing of numbers, booleans and string affixes.
 *
 * Calling sequence:
 *   uint64_t n;
 *   if (bv_parse_u64(&n, value) < 0)
 *           return bv_error_setc(err, BV_EINVALID, 0, "invalid number '%s'", value);
 *
 * Why not strtoul() or atoi(): they skip leading whitespace, accept "-1" for unsigned types
 * (wrapping it to the maximum), stop silently at the first junk character and need errno
 * juggling to notice overflow.  Every number bv reads comes from a file or the environment and
 * must be either exactly right or rejected.
 *
 * Accepted syntax: decimal digits only, the whole string, no whitespace anywhere.  Unsigned
 * parsers reject any sign; signed parsers accept one leading '-' or '+'.  Leading zeros are
 * accepted ("007" is 7) because config files contain them and they are unambiguous here.
 *
 * Ownership: nothing is allocated.
 *
 * Errors: these are leaf helpers whose callers know far better what the string was, so they
 * return a negative errno instead of filling a struct bv_error: -EINVAL for malformed input
 * (including NULL and the empty string) and -ERANGE for a value that does not fit.  *out is
 * written only on success.
 */
#ifndef BV_UTIL_PARSE_H
#define BV_UTIL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int bv_parse_u64(uint64_t *out, const char *s);
int bv_parse_i64(int64_t *out, const char *s);
int bv_parse_uint(unsigned *out, const char *s);
int bv_parse_int(int *out, const char *s);
int bv_parse_size(size_t *out, const char *s);

/*
 * Parses a duration in seconds as people write it in environment variables, with an optional
 * decimal fraction ("30", "0.5", "2.25"), into milliseconds; digits past the third decimal are
 * dropped.  No sign, exponent or unit.  Returns 0, -EINVAL or -ERANGE (above `max_ms`).
 */
int bv_parse_seconds_ms(uint64_t *ms_out, const char *s, uint64_t max_ms);

/*
 * Parses a boolean as people write it in environment variables: 1/0, true/false, yes/no,
 * on/off, in any case.  Returns 0 or -EINVAL.
 */
int bv_parse_bool(bool *out, const char *s);

bool bv_str_has_prefix(const char *s, const char *prefix);
bool bv_str_has_suffix(const char *s, const char *suffix);
/* The first `len` bytes of `name` are an environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool bv_env_name_valid(const char *name, size_t len);

/*
 * A copy of `len` bytes of `text` fit for quoting untrusted input in a message: at most `max`
 * characters (then "..."), and every byte that is not printable ASCII shown as '?', so a
 * hostile header or reference cannot write escape sequences to the user's terminal.  The
 * caller frees the result.
 */
char *bv_str_shown(const char *text, size_t len, size_t max);

#endif
