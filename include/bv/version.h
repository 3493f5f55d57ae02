/*
 * bv/version.h - semantic versions, version ordering, version requirements and "tool@req" specs.
 *
 * Registry manifests are named after their version (tools/<id>/<version>.toml), and bv.toml
 * holds what the user asked for ("samtools@1.21", "blast@>=2.14,<3").  This module answers the
 * two questions the resolver has: does this version satisfy that requirement, and which of
 * these versions is the latest.
 *
 * Calling sequence:
 *   char *id, *text;
 *   if (bv_tool_spec_parse(&id, &text, "samtools@1.21", &err) < 0) ...   id "samtools", "1.21"
 *   struct bv_version_req *req;
 *   if (bv_version_req_parse(&req, text, &err) < 0) ...
 *   int i = bv_version_req_best(req, names, n);          index of the latest match, or -1
 *   bv_version_req_free(req); free(id); free(text);
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
 * Requirements follow the Rust semver crate's VersionReq (which upstream bv uses), with two
 * additions.  Grammar:
 *   ""  "*"  "x"  "latest" (any case)       any version
 *   comparator {"," comparator}             all comparators must hold
 *   comparator := [op] major ["." minor ["." patch ["-" pre] ["+" build]]]
 *   op := "=" | ">" | ">=" | "<" | "<=" | "~" | "^"      (none means "^", as in Cargo)
 *   minor and patch may be a wildcard "*", "x" or "X": "1.*" is ">=1.0.0, <2.0.0", "1.2.x" is
 *   ">=1.2.0, <1.3.0"; whitespace is allowed around operators and commas.
 * Meaning, with missing parts taken as "any":
 *   ^1.2.3 >=1.2.3,<2.0.0   ^0.2.3 >=0.2.3,<0.3.0   ^0.0.3 =0.0.3   ^1.2 >=1.2.0,<2.0.0
 *   ^0.0 >=0.0.0,<0.1.0     ^1 / ~1 / =1  >=1.0.0,<2.0.0
 *   ~1.2.3 >=1.2.3,<1.3.0   ~1.2 / =1.2  >=1.2.0,<1.3.0
 *   >1.2 >=1.3.0            <=1.2 <1.3.0   >=1 >=1.0.0   <1 <1.0.0
 * A version with a pre-release ("2.0.0-rc.1") matches only when, besides satisfying every
 * comparator, some comparator names the same major.minor.patch with a pre-release, so
 * ">=1.0" never picks a release candidate but ">=2.0.0-rc.1" does.
 *
 * Versions that are not strict semver: a string of one to three dot-separated plain numbers
 * ("36.0", "2024", "1.02.3") is read as the semver version it spells (36.0.0, 2024.0.0,
 * 1.2.3).  Any other string ("2024_01", "v1.2") matches only the "any" requirement and a
 * literal comparator: "=" followed by text that is not a version ("=2024_01") matches exactly
 * that text and nothing else.
 *
 * Ownership: a struct bv_version_req belongs to the caller of bv_version_req_parse() and is
 * freed with bv_version_req_free(); strings returned through out parameters are new and freed
 * with free().  bv_semver_parse() fills a caller-provided struct whose strings
 * bv_semver_release() frees.
 *
 * Errors: parsers return 0 or BV_EINVALID; the message names the offending input, e.g.
 * "invalid version requirement '>>1': unexpected '>'".  Out parameters are written only on
 * success.
 */
#ifndef BV_VERSION_H
#define BV_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bv_error;

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

struct bv_version_req;

int bv_version_req_parse(struct bv_version_req **out, const char *s, struct bv_error **err);
bool bv_version_req_matches(const struct bv_version_req *req, const char *version);
/* The requirement as written, without surrounding whitespace; "" for any version. */
const char *bv_version_req_text(const struct bv_version_req *req);
bool bv_version_req_is_any(const struct bv_version_req *req);
/* Accepts NULL. */
void bv_version_req_free(struct bv_version_req *req);

/*
 * Index of the latest (by bv_version_compare) of the `n` versions that match `req`, or -1 when
 * none does.  Of identical strings the first wins.
 */
int bv_version_req_best(const struct bv_version_req *req, const char *const *versions, size_t n);

/*
 * Splits "tool" or "tool@requirement" as given to `bv add`.  The id must be 1 to 64 characters
 * of [a-z0-9._-] starting with a letter or digit.  The requirement is checked with
 * bv_version_req_parse() and returned trimmed; "tool", "tool@latest" and "tool@*" give "".
 * A bare version ("tool@2.5") stays "2.5", which the parser reads as "^2.5".
 */
int bv_tool_spec_parse(char **id_out, char **req_out, const char *spec, struct bv_error **err);

#endif
