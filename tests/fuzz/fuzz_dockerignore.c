/*
 * libFuzzer target for .dockerignore matching (include/bv/services.h).
 *
 * The input is split at the first NUL byte: before it a .dockerignore, after it paths
 * relative to the build context, one per line.  Checked for every path:
 *   - the answers are deterministic: asking twice, or of a second parse of the same text,
 *     gives the same answer;
 *   - the walk's pruning follows the docker CLI's rule: below an excluded directory the walk
 *     goes on only when some exception's text starts with that directory's path and '/', so
 *     a file an exception matches can still be dropped with its directory (excluding all of
 *     lib, then excepting every .so below it, drops lib/x/b.so, as docker does); checked
 *     here is only that the answers agree between two parses of the same text;
 *   - "the last pattern that matches decides": with "!<path>" appended, the path is not
 *     excluded, and with "<path>" appended it is.  This holds for paths that a pattern names
 *     literally: clean (no empty, "." or ".." component), no glob, escape or regular
 *     expression characters (docker passes ^ + ( ) { } | on to its regular expression), no
 *     white space at either end, not starting with '#' or '!'.
 * A violation aborts, which libFuzzer reports as a finding.
 */
#include <bv/error.h>
#include <bv/services.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fuzz_dockerignore: %s: '%s'\n", what, path);
	abort();
}

static struct bv_dockerignore *parse(const char *text, size_t len)
{
	struct bv_dockerignore *d = NULL;
	struct bv_error *err = NULL;
	if (bv_dockerignore_parse(&d, text, len, ".dockerignore", &err) < 0) {
		if (!err || err->code != BV_EINVALID || strncmp(err->message, ".dockerignore:", 14))
			die("a rejection without a positioned message", err ? err->message : "");
		if (d)
			die("a rejected file was returned", "");
		bv_error_free(err);
		return NULL;
	}
	if (!d)
		die("success without a result", "");
	return d;
}

/* Whether a pattern line "<path>" names exactly `path` (see the top of the file). */
static bool literal(const char *path)
{
	size_t n = strlen(path);
	const char *c = path;
	if (!n || path[0] == '#' || path[0] == '!' || isspace((unsigned char)path[0]) ||
	    isspace((unsigned char)path[n - 1]))
		return false;
	/* docker hands ^ + ( ) { } | on to its regular expression, and so does bv */
	if (strpbrk(path, "*?[]\\\r\n^+(){}|"))
		return false;
	for (;;) {
		size_t len = strcspn(c, "/");
		if (!len || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!c[len])
			return true;
		c += len + 1;
	}
}

static void check_appended(const char *text, size_t len, const char *path, const char *prefix,
			   bool want)
{
	struct bv_buf b = BV_BUF_INIT;
	struct bv_dockerignore *d;
	bv_buf_add(&b, text, len);
	bv_buf_printf(&b, "\n%s%s\n", prefix, path);
	d = parse(b.buf, b.len);
	if (!d)
		die("appending a literal pattern made the file invalid", path);
	if (bv_dockerignore_excluded(d, path) != want)
		die(want ? "a pattern appended last does not exclude its path"
			 : "an exception appended last does not bring its path back",
		    path);
	bv_dockerignore_free(d);
	bv_buf_release(&b);
}

static void check_path(const struct bv_dockerignore *d, const struct bv_dockerignore *again,
		       const char *text, size_t len, const char *path)
{
	bool excluded = bv_dockerignore_excluded(d, path);
	char *dir = bv_xstrdup(path);

	if (bv_dockerignore_excluded(d, path) != excluded ||
	    bv_dockerignore_excluded(again, path) != excluded)
		die("excluded() is not deterministic", path);
	if (bv_dockerignore_may_include_below(d, path) !=
	    bv_dockerignore_may_include_below(again, path))
		die("may_include_below() is not deterministic", path);

	/* every directory the path is in, shortest first: the same answers asked twice */
	for (char *slash = strchr(dir, '/'); slash; slash = strchr(slash + 1, '/')) {
		bool below;
		*slash = '\0';
		below = bv_dockerignore_may_include_below(d, dir);
		if (bv_dockerignore_may_include_below(again, dir) != below)
			die("may_include_below() differs between two parses", dir);
		*slash = '/';
	}
	free(dir);

	if (literal(path)) {
		check_appended(text, len, path, "!", false);
		check_appended(text, len, path, "", true);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(data, '\0', size);
	size_t len = nul ? (size_t)(nul - text) : size;
	struct bv_dockerignore *d, *again;
	char *paths, *line;
	int n = 0;

	d = parse(text, len);
	if (!d)
		return 0;
	again = parse(text, len);
	if (!again)
		die("the same text parsed once", "");
	paths = nul ? bv_xstrndup(nul + 1, size - len - 1) : bv_xstrdup("");
	/* at most 16 paths: each appended pattern parses the whole file again */
	for (line = paths; line && n < 16; n++) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		check_path(d, again, text, len, line);
		line = nl ? nl + 1 : NULL;
	}
	free(paths);
	bv_dockerignore_free(d);
	bv_dockerignore_free(again);
	return 0;
}
