/*
 * bv/version.h - version requirements and "tool@req" specs.
 *
 * bv.toml holds what the user asked for ("samtools@1.21", "blast@>=2.14,<3"); registry
 * manifests are named after their version (tools/<id>/<version>.toml).  This module answers
 * whether a version satisfies a requirement.  Strict SemVer versions, the order of version
 * strings and picking the latest match, which only the library and its tests use, are in
 * src/lib/model/version-internal.h.
 *
 * Calling sequence:
 *   char *id, *text;
 *   if (bv_tool_spec_parse(&id, &text, "samtools@1.21", &err) < 0) ...   id "samtools", "1.21"
 *   struct bv_version_req *req;
 *   if (bv_version_req_parse(&req, text, &err) < 0) ...
 *   if (bv_version_req_matches(req, "1.21.1")) ...
 *   bv_version_req_free(req); free(id); free(text);
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
 * with free().
 *
 * Errors: parsers return 0 or BV_EINVALID; the message names the offending input, e.g.
 * "invalid version requirement '>>1': unexpected '>'".  Out parameters are written only on
 * success.
 */
#ifndef BV_VERSION_H
#define BV_VERSION_H

#include <stdbool.h>

struct bv_error;

struct bv_version_req;

int bv_version_req_parse(struct bv_version_req **out, const char *s, struct bv_error **err);
bool bv_version_req_matches(const struct bv_version_req *req, const char *version);
/* Accepts NULL. */
void bv_version_req_free(struct bv_version_req *req);

/*
 * Splits "tool" or "tool@requirement" as given to `bv add`.  The id must be 1 to 64 characters
 * of [a-z0-9._-] starting with a letter or digit.  The requirement is checked with
 * bv_version_req_parse() and returned trimmed; "tool", "tool@latest" and "tool@*" give "".
 * A bare version ("tool@2.5") stays "2.5", which the parser reads as "^2.5".
 */
int bv_tool_spec_parse(char **id_out, char **req_out, const char *spec, struct bv_error **err);

#endif
