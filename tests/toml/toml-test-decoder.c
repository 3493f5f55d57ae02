/*
 * toml-test-decoder: the decoder interface of https://github.com/toml-lang/toml-test.
 * Reads TOML on stdin, writes tagged JSON on stdout, exits 1 with a message on stderr when
 * the input is not valid TOML 1.0.
 */
#include <bv/error.h>
#include <bv/toml.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "toml/toml_json.h"
#include "util/buf.h"
#include "util/fs.h"

#include "util/banned.h"

int main(void)
{
	struct bv_buf in = BV_BUF_INIT;
	struct bv_error *err = NULL;
	struct bv_toml_doc *doc = NULL;
	json_t *j;
	int rc = 0;

	if (bv_buf_read_fd(&in, STDIN_FILENO, 64u << 20, &err) < 0 ||
	    bv_toml_parse(&doc, in.buf, in.len, "<stdin>", &err) < 0) {
		char *msg = bv_error_format(err);
		fprintf(stderr, "error: %s\n", msg);
		free(msg);
		bv_error_free(err);
		bv_buf_release(&in);
		return 1;
	}
	j = bv_toml_to_tagged_json(bv_toml_doc_root(doc));
	if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
		rc = 1;
	json_decref(j);
	bv_toml_doc_free(doc);
	bv_buf_release(&in);
	return rc;
}
