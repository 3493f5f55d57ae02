/*
 * Runs every case of toml-test's files-toml-1.0.0 list through the reader, in process:
 * valid cases must parse and match the expected tagged JSON, invalid cases must be rejected.
 * Prints TAP, one line per case.  Usage: toml_suite <toml-test dir>.  When the directory is
 * absent the whole suite is reported as skipped (TAP "1..0 # SKIP"), so a checkout without
 * ../shared still passes, visibly.
 */
#include <bv/error.h>
#include <bv/toml.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml/toml_json.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/parse.h"
#include "util/strv.h"

#include "util/banned.h"

/*
 * jansson cannot load an object key containing U+0000 (valid/key/quoted-unicode has one), so
 * both sides are compared after the JSON text replaces every \u0000 escape with a run of
 * private-use characters that no toml-test case contains.  Escapes are followed pair by pair
 * so that an escaped backslash before "u0000" is left alone.
 */
static json_t *load_normalised(const char *text, json_error_t *jerr)
{
	struct bv_buf b = BV_BUF_INIT;
	json_t *j;
	for (const char *s = text; *s; s++) {
		if (s[0] == '\\' && bv_str_has_prefix(s + 1, "u0000")) {
			bv_buf_puts(&b, "\\uF8FF\\uF8FE\\uF8FD");
			s += 5;
		} else if (s[0] == '\\' && s[1]) {
			bv_buf_add(&b, s, 2);
			s++;
		} else {
			bv_buf_putc(&b, *s);
		}
	}
	j = json_loads(b.buf, 0, jerr);
	bv_buf_release(&b);
	return j;
}

static int run_case(const char *dir, const char *name, char **why)
{
	struct bv_buf path = BV_BUF_INIT, text = BV_BUF_INIT;
	struct bv_error *err = NULL;
	struct bv_toml_doc *doc = NULL;
	bool valid = bv_str_has_prefix(name, "valid/");
	int ok = 0;

	bv_buf_printf(&path, "%s/%s", dir, name);
	if (bv_buf_read_file(&text, path.buf, 64u << 20, &err) < 0) {
		*why = bv_error_format(err);
		goto out;
	}
	if (bv_toml_parse(&doc, text.buf, text.len, name, &err) < 0) {
		if (valid)
			*why = bv_error_format(err);
		ok = !valid;
		goto out;
	}
	if (!valid) {
		*why = strdup("accepted invalid TOML");
		goto out;
	}
	{
		json_error_t jerr;
		json_t *tagged = bv_toml_to_tagged_json(bv_toml_doc_root(doc));
		char *got_text = json_dumps(tagged, JSON_COMPACT);
		json_t *got = load_normalised(got_text, &jerr), *want = NULL;
		struct bv_buf expected = BV_BUF_INIT;
		bv_buf_setlen(&path, path.len - 4);
		bv_buf_puts(&path, "json");
		if (bv_buf_read_file(&expected, path.buf, 64u << 20, &err) < 0)
			*why = bv_error_format(err);
		else
			want = load_normalised(expected.buf, &jerr);
		json_decref(tagged);
		free(got_text);
		bv_buf_release(&expected);
		if (*why) {
		} else if (!want || !got) {
			*why = strdup(jerr.text);
		} else if (!bv_toml_tagged_json_equal(want, got)) {
			char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
			*why = g;
		} else {
			ok = 1;
		}
		json_decref(got);
		json_decref(want);
	}
out:
	bv_toml_doc_free(doc);
	bv_error_free(err);
	bv_buf_release(&path);
	bv_buf_release(&text);
	return ok;
}

int main(int argc, char **argv)
{
	struct bv_buf list = BV_BUF_INIT, path = BV_BUF_INIT;
	struct bv_strv cases = BV_STRV_INIT;
	size_t failed = 0, n = 0, n_valid = 0, n_invalid = 0;
	char *line, *save = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: toml_suite <toml-test dir>\n");
		return 2;
	}
	bv_buf_printf(&path, "%s/files-toml-1.0.0", argv[1]);
	if (bv_buf_read_file(&list, path.buf, 1u << 20, NULL) < 0) {
		printf("1..0 # SKIP toml-test not found at '%s'\n", argv[1]);
		bv_buf_release(&path);
		return 0;
	}
	for (line = strtok_r(list.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (bv_str_has_suffix(line, ".toml"))
			bv_strv_push(&cases, line);
	printf("1..%zu\n", cases.n);
	bv_strv_foreach (c, &cases) {
		char *why = NULL;
		int ok = run_case(argv[1], *c, &why);
		n++;
		if (bv_str_has_prefix(*c, "valid/"))
			n_valid++;
		else
			n_invalid++;
		if (ok) {
			printf("ok %zu - %s\n", n, *c);
		} else {
			failed++;
			printf("not ok %zu - %s\n# %s\n", n, *c, why ? why : "");
		}
		free(why);
	}
	printf("# %zu valid and %zu invalid cases, %zu failed\n", n_valid, n_invalid, failed);
	bv_strv_clear(&cases);
	bv_buf_release(&list);
	bv_buf_release(&path);
	return failed ? 1 : 0;
}
