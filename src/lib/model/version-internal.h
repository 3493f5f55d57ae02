/*
 * version-internal.h - semantic versions, the order of version strings, and what the library
 * asks of a parsed requirement (its text, whether it is "any", its latest match).
 *
 * Internal to the library: only src/lib/ and its tests include it, never src/cli/ or a header
 * of include/bv/.  It includes bv/version.h (requirements and "tool@req" specs, which the CLI
 * parses), where the grammar of requirements is described.
 *
 * Registry manifests are named after their version (tools/<id>/<version>.toml).  Besides
 * whether a version satisfies a requirement (bv/version.h), the resolver asks which of these
 * versions is the latest.
 *
 * Calling sequence:
 *   int i = bv_version_req_best(req, names, n);          index of the latest match, or -1
 *
 * Strict versions (bv_semver_*) follow SemVer 2.0.0 to the letter: MAJOR.MINOR.PATCH without
 * leading zeros, an optional "-pre.release" whose numeric identifiers have no leading zeros,
 * and optional "+build" metadata that takes no part in precedence.
 *
 * Ordering (bv_version_compare) must work for every file name a registry may hold, including
 * calendar versions ("2024_01") and versions that are not semver ("36.0").  The rule:
 *   - two strict semver versions compare by SemVer precedence;
 *   - otherwise both strings are split into runs of digits and runs of other bytes and the
 *     runs compared in turn: digit runs by numeric value (of any length, so "7.525.0" >
 *     "7.5.0" and "2024_11" < "2025"), other runs bytewise, a digit run below another run.
 *     A string that is a prefix of the other is smaller, except that a remainder starting
 *     with '-' marks a pre-release and makes the longer string the smaller one ("1.0-rc" <
 *     "1.0"), as in SemVer;
 *   - strings equal under either rule ("1.0.0+a" and "1.0.0+b", "01" and "1") are ordered by
 *     strcmp(), so only identical strings compare equal.
 * Each rule is a total order on its own.  Mixing them can only disagree on pre-release
 * identifiers that mix letters and digits ("rc9" vs "rc10": SemVer compares those as text),
 * which registry file names do not do.
 *
 * Ownership: bv_semver_parse() fills a caller-provided struct whose strings
 * bv_semver_release() frees; the string bv_version_req_text() returns belongs to the requirement.
 *
 * Errors: bv_semver_parse() returns 0 or BV_EINVALID.  Out parameters are written only on
 * success.
 */
#ifndef BV_LIB_VERSION_INTERNAL_H
#define BV_LIB_VERSION_INTERNAL_H

#include <bv/version.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_version_req;

struct bv_semver {
	uint64_t major, minor, patch;
	char *pre;   /* "rc.1", or NULL for a release */
	char *build; /* "linux.x86", or NULL */
};

/* Parses a strict SemVer 2.0.0 version; returns 0 or BV_EINVALID (no message: callers know
 * what the string was). */
int bv_semver_parse(struct bv_semver *out, const char *s);
void bv_semver_release(struct bv_semver *v);
/* Negative, 0 or positive by SemVer precedence; build metadata is ignored. */
int bv_semver_compare(const struct bv_semver *a, const struct bv_semver *b);

/* The total order over version strings described above: negative, 0 (a == b) or positive. */
int bv_version_compare(const char *a, const char *b);

/* Whether `id` is a tool id as "tool@req" specs take it (bv_tool_spec_parse() with no '@'). */
bool bv_tool_id_valid(const char *id);

/* The requirement as written, without surrounding whitespace; "" for any version. */
const char *bv_version_req_text(const struct bv_version_req *req);
bool bv_version_req_is_any(const struct bv_version_req *req);

/*
 * Index of the latest (by bv_version_compare) of the `n` versions that match `req`, or -1 when
 * none does.  Of identical strings the first wins.
 */
int bv_version_req_best(const struct bv_version_req *req, const char *const *versions, size_t n);

#endif
