/*
 * log.h - diagnostics for -v/--verbose and BV_LOG: what bv asked of registries and engines,
 * lock decisions, mounts.  The library calls bv_logf(); only the command line prints, through
 * the sink it installs, so a program using the library sees nothing unless it asks.
 *
 * Calling sequence:
 *   bv_log_set_sink(print_to_stderr);               the CLI, once
 *   bv_log_set_level(BV_LOG_DEBUG);                 from -v or BV_LOG
 *   bv_logf(BV_LOG_DEBUG, "GET %s", url_without_credentials);
 *
 * Never log a credential: callers pass URLs without user info and never pass headers.
 *
 * Ownership: the message handed to the sink is valid for the call only.  Errors: none.
 */
#ifndef BV_UTIL_LOG_H
#define BV_UTIL_LOG_H

#include <stdbool.h>

enum bv_log_level {
	BV_LOG_WARN = 0, /* the default: nothing beyond errors and warnings the CLI prints */
	BV_LOG_INFO = 1,
	BV_LOG_DEBUG = 2, /* -v, BV_LOG=debug */
	BV_LOG_TRACE = 3, /* -vv, BV_LOG=trace */
};

typedef void (*bv_log_sink)(enum bv_log_level level, const char *message);

void bv_log_set_sink(bv_log_sink sink);
void bv_log_set_level(enum bv_log_level level);
bool bv_log_enabled(enum bv_log_level level);
/* "warn", "info", "debug" or "trace" (any case); -1 for anything else. */
int bv_log_parse_level(const char *name);
__attribute__((format(printf, 2, 3))) void bv_logf(enum bv_log_level level, const char *fmt, ...);
/*
 * "<what> <url>" at `level`, the URL without user info and without its query (a redirect to
 * object storage carries a signature there).
 */
void bv_log_url(enum bv_log_level level, const char *what, const char *url);

#endif
