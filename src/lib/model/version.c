/*
 * version.c - SemVer parsing and precedence, the natural order over registry version names,
 * requirements in the style of Cargo and the "tool@req" spec of `bv add`.
 */
#include <bv/error.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/model/version-internal.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "util/xalloc.h"

#include "util/banned.h"

#define TOOL_ID_MAX 64

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int sign(int c)
{
	return (c > 0) - (c < 0);
}

/* Digit strings of any length by value: leading zeros skipped, then longer is larger. */
static int compare_digits(const char *a, size_t alen, const char *b, size_t blen)
{
	while (alen > 1 && *a == '0')
		a++, alen--;
	while (blen > 1 && *b == '0')
		b++, blen--;
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return sign(memcmp(a, b, alen));
}

static int compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return sign(c);
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/* A number of `len` digits; `strict` rejects leading zeros as SemVer does. */
static int parse_number(const char *s, size_t len, bool strict, uint64_t *out)
{
	char tmp[24];

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return -1;
	if (strict && len > 1 && s[0] == '0')
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return bv_parse_u64(out, tmp) < 0 ? -1 : 0;
}

/* Dot-separated identifiers of [0-9A-Za-z-]; in a pre-release numeric ones have no leading 0. */
static bool valid_identifiers(const char *s, size_t len, bool pre)
{
	const char *end = s + len;

	if (len == 0)
		return false;
	for (;;) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		const char *e = dot ? dot : end;
		bool numeric = true;

		if (e == s)
			return false;
		for (const char *p = s; p < e; p++) {
			if (!is_digit(*p) && !is_alpha(*p) && *p != '-')
				return false;
			if (!is_digit(*p))
				numeric = false;
		}
		if (pre && numeric && e - s > 1 && *s == '0')
			return false;
		if (e == end)
			return true;
		s = e + 1;
	}
}

/* SemVer precedence of two pre-release strings; an empty one is a release and ranks highest. */
static int compare_pre(const char *a, size_t alen, const char *b, size_t blen)
{
	const char *aend = a + alen, *bend = b + blen;

	if (alen == 0 || blen == 0)
		return alen == blen ? 0 : (alen == 0 ? 1 : -1);
	for (;;) {
		const char *ae = memchr(a, '.', (size_t)(aend - a));
		const char *be = memchr(b, '.', (size_t)(bend - b));
		bool anum = true, bnum = true;
		int c;

		if (!ae)
			ae = aend;
		if (!be)
			be = bend;
		for (const char *p = a; p < ae; p++)
			anum = anum && is_digit(*p);
		for (const char *p = b; p < be; p++)
			bnum = bnum && is_digit(*p);
		if (anum && bnum)
			c = compare_digits(a, (size_t)(ae - a), b, (size_t)(be - b));
		else if (anum != bnum)
			c = anum ? -1 : 1;
		else
			c = compare_bytes(a, (size_t)(ae - a), b, (size_t)(be - b));
		if (c)
			return c;
		if (ae == aend || be == bend)
			return (ae == aend) == (be == bend) ? 0 : (ae == aend ? -1 : 1);
		a = ae + 1;
		b = be + 1;
	}
}

/* A parsed version that points into the string it came from. */
struct sv {
	uint64_t major, minor, patch;
	const char *pre;
	size_t pre_len;
	const char *build;
	size_t build_len;
};

static int parse_strict(struct sv *out, const char *s)
{
	uint64_t part[3];
	const char *p = s, *q;
	struct sv v = {0};

	for (int i = 0; i < 3; i++) {
		for (q = p; is_digit(*q); q++)
			;
		if (parse_number(p, (size_t)(q - p), true, &part[i]) < 0)
			return -1;
		if (i < 2 && *q != '.')
			return -1;
		p = i < 2 ? q + 1 : q;
	}
	v.major = part[0];
	v.minor = part[1];
	v.patch = part[2];
	v.pre = v.build = "";
	if (*p == '-') {
		v.pre = ++p;
		p += strcspn(p, "+");
		v.pre_len = (size_t)(p - v.pre);
		if (!valid_identifiers(v.pre, v.pre_len, true))
			return -1;
	}
	if (*p == '+') {
		v.build = ++p;
		v.build_len = strlen(p);
		if (!valid_identifiers(v.build, v.build_len, false))
			return -1;
		p += v.build_len;
	}
	if (*p)
		return -1;
	*out = v;
	return 0;
}

/* "36.0" and "2024": one to three dot-separated plain numbers, leading zeros allowed. */
static int parse_lenient(struct sv *out, const char *s)
{
	uint64_t part[3] = {0, 0, 0};
	const char *p = s;
	int i = 0;

	for (;;) {
		const char *q = p;
		while (is_digit(*q))
			q++;
		if (i == 3 || parse_number(p, (size_t)(q - p), false, &part[i]) < 0)
			return -1;
		i++;
		if (*q == '\0')
			break;
		if (*q != '.')
			return -1;
		p = q + 1;
	}
	*out = (struct sv){
		.major = part[0], .minor = part[1], .patch = part[2], .pre = "", .build = ""};
	return 0;
}

static int compare_sv(const struct sv *a, const struct sv *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return compare_pre(a->pre, a->pre_len, b->pre, b->pre_len);
}

int bv_semver_parse(struct bv_semver *out, const char *s)
{
	struct sv v;

	if (!s || parse_strict(&v, s) < 0)
		return BV_EINVALID;
	out->major = v.major;
	out->minor = v.minor;
	out->patch = v.patch;
	out->pre = v.pre_len ? bv_xstrndup(v.pre, v.pre_len) : NULL;
	out->build = v.build_len ? bv_xstrndup(v.build, v.build_len) : NULL;
	return 0;
}

void bv_semver_release(struct bv_semver *v)
{
	free(v->pre);
	free(v->build);
	v->pre = v->build = NULL;
}

int bv_semver_compare(const struct bv_semver *a, const struct bv_semver *b)
{
	struct sv x = {
		a->major, a->minor, a->patch, a->pre ? a->pre : "", a->pre ? strlen(a->pre) : 0,
		"",       0};
	struct sv y = {
		b->major, b->minor, b->patch, b->pre ? b->pre : "", b->pre ? strlen(b->pre) : 0,
		"",       0};
	return compare_sv(&x, &y);
}

/*
 * The natural order.  Runs are ranked by class first; the end of the string is a class of its
 * own that sits above a run starting with '-', so a pre-release suffix sorts before the bare
 * version.  Ranking by a fixed class order (instead of special cases) keeps it a total order.
 */
enum run_class { RUN_DASH, RUN_END, RUN_DIGITS, RUN_TEXT };

struct run {
	enum run_class cls;
	const char *p;
	size_t len;
};

static struct run next_run(const char **sp)
{
	const char *s = *sp, *e = s;
	struct run r = {RUN_END, s, 0};

	if (!*s)
		return r;
	if (is_digit(*s)) {
		while (is_digit(*e))
			e++;
		r.cls = RUN_DIGITS;
	} else {
		while (*e && !is_digit(*e))
			e++;
		r.cls = *s == '-' ? RUN_DASH : RUN_TEXT;
	}
	r.len = (size_t)(e - s);
	*sp = e;
	return r;
}

static int natural_compare(const char *a, const char *b)
{
	for (;;) {
		struct run x = next_run(&a), y = next_run(&b);
		int c;

		if (x.cls != y.cls)
			return x.cls < y.cls ? -1 : 1;
		if (x.cls == RUN_END)
			return 0;
		if (x.cls == RUN_DIGITS)
			c = compare_digits(x.p, x.len, y.p, y.len);
		else
			c = compare_bytes(x.p, x.len, y.p, y.len);
		if (c)
			return c;
	}
}

int bv_version_compare(const char *a, const char *b)
{
	struct sv x, y;
	int c;

	if (parse_strict(&x, a) == 0 && parse_strict(&y, b) == 0)
		c = compare_sv(&x, &y);
	else
		c = natural_compare(a, b);
	return c ? c : sign(strcmp(a, b));
}

/* Requirements. */

enum op { OP_EXACT, OP_GT, OP_GE, OP_LT, OP_LE, OP_TILDE, OP_CARET, OP_WILDCARD, OP_LITERAL };

struct comparator {
	enum op op;
	uint64_t major, minor, patch;
	bool has_minor, has_patch;
	char *pre;     /* "" for none */
	char *literal; /* OP_LITERAL: the exact version text */
};

struct bv_version_req {
	char *text;
	struct comparator *c;
	size_t n, alloc;
};

void bv_version_req_free(struct bv_version_req *req)
{
	if (!req)
		return;
	for (size_t i = 0; i < req->n; i++) {
		free(req->c[i].pre);
		free(req->c[i].literal);
	}
	free(req->c);
	free(req->text);
	free(req);
}

static void req_freep(struct bv_version_req **req)
{
	bv_version_req_free(*req);
}

static bool is_wildcard(char c)
{
	return c == '*' || c == 'x' || c == 'X';
}

/* What went wrong in a comparator, as a new string: "unexpected '>'". */
static char *unexpected(const char *p, const char *end)
{
	if (p >= end)
		return bv_xstrdup("unexpected end of input");
	return bv_xasprintf("unexpected '%c'", *p);
}

/* One numeric part at *pp, strict as SemVer; sets *detail on failure. */
static int read_part(const char **pp, const char *end, uint64_t *out, char **detail)
{
	const char *p = *pp, *q = p;

	while (q < end && is_digit(*q))
		q++;
	if (q == p) {
		*detail = unexpected(p, end);
		return -1;
	}
	if (q - p > 1 && *p == '0') {
		*detail = bv_xasprintf("leading zero in '%.*s'", (int)(q - p), p);
		return -1;
	}
	if (parse_number(p, (size_t)(q - p), true, out) < 0) {
		*detail = bv_xasprintf("number too large '%.*s'", (int)(q - p), p);
		return -1;
	}
	*pp = q;
	return 0;
}

/* The version of a comparator: the token [p, end) must be a partial version, wholly. */
static int parse_partial(struct comparator *c, bool default_op, const char *p, const char *end,
			 char **detail)
{
	bool wildcard = false;

	if (p < end && is_wildcard(*p) && p + 1 == end) {
		*detail = bv_xasprintf("wildcard '%c' must be the only comparator", *p);
		return -1;
	}
	if (read_part(&p, end, &c->major, detail) < 0)
		return -1;
	if (p < end && *p == '.') {
		p++;
		if (p < end && is_wildcard(*p)) {
			p++;
			wildcard = true;
		} else {
			if (read_part(&p, end, &c->minor, detail) < 0)
				return -1;
			c->has_minor = true;
		}
	}
	if (p < end && *p == '.') {
		p++;
		if (p < end && is_wildcard(*p)) {
			p++;
			wildcard = true;
		} else if (wildcard) {
			*detail = bv_xasprintf("unexpected '%c' after a wildcard",
					       p < end ? *p : '.');
			return -1;
		} else {
			if (read_part(&p, end, &c->patch, detail) < 0)
				return -1;
			c->has_patch = true;
		}
	}
	if (p < end && (*p == '-' || *p == '+') && !c->has_patch) {
		*detail = bv_xasprintf("'%c' needs a full major.minor.patch version", *p);
		return -1;
	}
	if (p < end && *p == '-') {
		const char *pre = ++p;
		while (p < end && *p != '+')
			p++;
		if (!valid_identifiers(pre, (size_t)(p - pre), true)) {
			*detail = bv_xasprintf("invalid pre-release '%.*s'", (int)(p - pre), pre);
			return -1;
		}
		c->pre = bv_xstrndup(pre, (size_t)(p - pre));
	}
	if (p < end && *p == '+') {
		/* Build metadata takes no part in matching, as in SemVer precedence. */
		const char *build = ++p;
		if (!valid_identifiers(build, (size_t)(end - build), false)) {
			*detail = bv_xasprintf("invalid build metadata '%.*s'", (int)(end - build),
					       build);
			return -1;
		}
		p = end;
	}
	if (p < end) {
		*detail = unexpected(p, end);
		return -1;
	}
	if (!c->pre)
		c->pre = bv_xstrdup("");
	if (wildcard && default_op)
		c->op = OP_WILDCARD;
	return 0;
}

/* Text that could be a version name of its own ("2024_01"), for literal comparators. */
static bool literal_token(const char *p, const char *end)
{
	if (p >= end || !(is_digit(*p) || is_alpha(*p)))
		return false;
	for (; p < end; p++)
		if (!is_digit(*p) && !is_alpha(*p) && !strchr("._+-", *p))
			return false;
	return true;
}

/* "2024_01", "v1.2": worth a hint that "=" pins such names, unlike "1.2.3.4" or "01". */
static bool looks_like_a_name(const char *p, const char *end)
{
	while (p < end && (is_digit(*p) || *p == '.'))
		p++;
	return p < end && (*p == '_' || is_alpha(*p));
}

static const char *read_op(const char *p, enum op *op, bool *default_op)
{
	*default_op = false;
	switch (*p) {
	case '=':
		*op = OP_EXACT;
		return p + 1;
	case '>':
		*op = p[1] == '=' ? OP_GE : OP_GT;
		return p + (p[1] == '=' ? 2 : 1);
	case '<':
		*op = p[1] == '=' ? OP_LE : OP_LT;
		return p + (p[1] == '=' ? 2 : 1);
	case '~':
		*op = OP_TILDE;
		return p + 1;
	case '^':
		*op = OP_CARET;
		return p + 1;
	default:
		*op = OP_CARET;
		*default_op = true;
		return p;
	}
}

/* Parses one comparator at *pp (leading space skipped) up to ',' or the end. */
static int parse_comparator(struct comparator *c, const char **pp, char **detail)
{
	const char *p = *pp, *tok;
	bool default_op;

	while (is_space(*p))
		p++;
	if (!*p || *p == ',') {
		*detail = *p ? bv_xstrdup("unexpected ','") : bv_xstrdup("unexpected end of input");
		return -1;
	}
	p = read_op(p, &c->op, &default_op);
	while (is_space(*p))
		p++;
	tok = p;
	while (*p && *p != ',' && !is_space(*p))
		p++;
	if (parse_partial(c, default_op, tok, p, detail) < 0) {
		if (c->op == OP_EXACT && literal_token(tok, p)) {
			free(*detail);
			*detail = NULL;
			free(c->pre);
			*c = (struct comparator){.op = OP_LITERAL,
						 .literal = bv_xstrndup(tok, (size_t)(p - tok))};
		} else {
			if (default_op && literal_token(tok, p) && looks_like_a_name(tok, p)) {
				char *d = bv_xasprintf("%s (write '=%.*s' for a version that is "
						       "not semver)",
						       *detail, (int)(p - tok), tok);
				free(*detail);
				*detail = d;
			}
			return -1;
		}
	}
	while (is_space(*p))
		p++;
	*pp = p;
	return 0;
}

int bv_version_req_parse(struct bv_version_req **out, const char *s, struct bv_error **err)
{
	_cleanup_(req_freep) struct bv_version_req *req = bv_xcalloc(1, sizeof(*req));
	const char *start = s, *end, *p;

	while (is_space(*start))
		start++;
	end = start + strlen(start);
	while (end > start && is_space(end[-1]))
		end--;
	req->text = bv_xstrndup(start, (size_t)(end - start));
	if (!req->text[0] || !strcasecmp(req->text, "latest") ||
	    (req->text[0] && !req->text[1] && is_wildcard(req->text[0]))) {
		req->text[0] = '\0';
		*out = TAKE_PTR(req);
		return 0;
	}
	p = req->text;
	for (;;) {
		struct comparator c = {0};
		char *detail = NULL;

		if (parse_comparator(&c, &p, &detail) < 0) {
			int r = bv_error_setc(err, BV_EINVALID, 0,
					      "invalid version requirement '%s': %s", req->text,
					      detail);
			free(detail);
			free(c.pre);
			return r;
		}
		BV_GROW(req->c, req->alloc, req->n + 1);
		req->c[req->n++] = c;
		if (!*p)
			break;
		if (*p != ',') {
			char *detail2 = unexpected(p, p + 1);
			int r = bv_error_setc(err, BV_EINVALID, 0,
					      "invalid version requirement '%s': %s, expected ','",
					      req->text, detail2);
			free(detail2);
			return r;
		}
		p++;
	}
	*out = TAKE_PTR(req);
	return 0;
}

static int cmp_pre(const struct comparator *c, const struct sv *v)
{
	return compare_pre(v->pre, v->pre_len, c->pre, strlen(c->pre));
}

/* The comparison functions below mirror how Cargo reads partial versions. */
static bool matches_exact(const struct comparator *c, const struct sv *v)
{
	if (v->major != c->major)
		return false;
	if (c->has_minor && v->minor != c->minor)
		return false;
	if (c->has_patch && v->patch != c->patch)
		return false;
	return cmp_pre(c, v) == 0;
}

static bool matches_greater(const struct comparator *c, const struct sv *v)
{
	if (v->major != c->major)
		return v->major > c->major;
	if (!c->has_minor)
		return false;
	if (v->minor != c->minor)
		return v->minor > c->minor;
	if (!c->has_patch)
		return false;
	if (v->patch != c->patch)
		return v->patch > c->patch;
	return cmp_pre(c, v) > 0;
}

static bool matches_less(const struct comparator *c, const struct sv *v)
{
	if (v->major != c->major)
		return v->major < c->major;
	if (!c->has_minor)
		return false;
	if (v->minor != c->minor)
		return v->minor < c->minor;
	if (!c->has_patch)
		return false;
	if (v->patch != c->patch)
		return v->patch < c->patch;
	return cmp_pre(c, v) < 0;
}

static bool matches_tilde(const struct comparator *c, const struct sv *v)
{
	if (v->major != c->major)
		return false;
	if (c->has_minor && v->minor != c->minor)
		return false;
	if (c->has_patch && v->patch != c->patch)
		return v->patch > c->patch;
	return cmp_pre(c, v) >= 0;
}

/* ^ allows changes that do not touch the leftmost non-zero part. */
static bool matches_caret(const struct comparator *c, const struct sv *v)
{
	if (v->major != c->major)
		return false;
	if (!c->has_minor)
		return true;
	if (!c->has_patch)
		return c->major > 0 ? v->minor >= c->minor : v->minor == c->minor;
	if (c->major > 0) {
		if (v->minor != c->minor)
			return v->minor > c->minor;
		if (v->patch != c->patch)
			return v->patch > c->patch;
	} else if (c->minor > 0) {
		if (v->minor != c->minor)
			return false;
		if (v->patch != c->patch)
			return v->patch > c->patch;
	} else if (v->minor != c->minor || v->patch != c->patch) {
		return false;
	}
	return cmp_pre(c, v) >= 0;
}

static bool matches_one(const struct comparator *c, const struct sv *v)
{
	switch (c->op) {
	case OP_EXACT:
	case OP_WILDCARD:
		return matches_exact(c, v);
	case OP_GT:
		return matches_greater(c, v);
	case OP_GE:
		return matches_exact(c, v) || matches_greater(c, v);
	case OP_LT:
		return matches_less(c, v);
	case OP_LE:
		return matches_exact(c, v) || matches_less(c, v);
	case OP_TILDE:
		return matches_tilde(c, v);
	case OP_CARET:
		return matches_caret(c, v);
	case OP_LITERAL:
		break;
	}
	return false;
}

bool bv_version_req_matches(const struct bv_version_req *req, const char *version)
{
	struct sv v;
	bool semver;

	if (!version)
		return false;
	if (req->n == 0)
		return true;
	semver = parse_strict(&v, version) == 0 || parse_lenient(&v, version) == 0;
	for (size_t i = 0; i < req->n; i++) {
		const struct comparator *c = &req->c[i];
		if (c->op == OP_LITERAL) {
			if (strcmp(c->literal, version))
				return false;
		} else if (!semver || !matches_one(c, &v)) {
			return false;
		}
	}
	if (!semver || v.pre_len == 0)
		return true;
	/* A pre-release is only wanted where a comparator asks for one on the same release. */
	for (size_t i = 0; i < req->n; i++) {
		const struct comparator *c = &req->c[i];
		if (c->op != OP_LITERAL && c->has_minor && c->has_patch && c->pre[0] &&
		    c->major == v.major && c->minor == v.minor && c->patch == v.patch)
			return true;
	}
	return false;
}

const char *bv_version_req_text(const struct bv_version_req *req)
{
	return req->text;
}

bool bv_version_req_is_any(const struct bv_version_req *req)
{
	return req->n == 0;
}

int bv_version_req_best(const struct bv_version_req *req, const char *const *versions, size_t n)
{
	int best = -1;

	for (size_t i = 0; i < n && i <= (size_t)INT_MAX; i++) {
		if (!versions[i] || !bv_version_req_matches(req, versions[i]))
			continue;
		if (best < 0 || bv_version_compare(versions[i], versions[best]) > 0)
			best = (int)i;
	}
	return best;
}

bool bv_tool_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > TOOL_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		bool ok = is_digit(c) || (c >= 'a' && c <= 'z') ||
			  (i > 0 && (c == '.' || c == '_' || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

int bv_tool_spec_parse(char **id_out, char **req_out, const char *spec, struct bv_error **err)
{
	const char *at = strchr(spec, '@');
	_cleanup_free_ char *id = at ? bv_xstrndup(spec, (size_t)(at - spec)) : bv_xstrdup(spec);
	struct bv_version_req *req = NULL;
	const char *r;
	int ret;

	if (!bv_tool_id_valid(id))
		return bv_error_setc(err, BV_EINVALID, 0, "invalid tool name '%s'", id);
	if (!at) {
		*id_out = TAKE_PTR(id);
		*req_out = bv_xstrdup("");
		return 0;
	}
	for (r = at + 1; is_space(*r); r++)
		;
	if (!*r)
		return bv_error_setc(err, BV_EINVALID, 0,
				     "missing version requirement after '@' in '%s'", spec);
	ret = bv_version_req_parse(&req, at + 1, err);
	if (ret < 0)
		return ret;
	*req_out = bv_xstrdup(bv_version_req_text(req));
	*id_out = TAKE_PTR(id);
	bv_version_req_free(req);
	return 0;
}
